"""The rolling integrity schedule: which copies are checked today (seed §4.1, §4.2).

Every copy (recovery point) in every tier the integrity checks cover is checked at least once
per *integrity window*, spread over the days like the rolling full backups
(`backuppolicy.core.schedule.rolling_slots`):

* **Window.** A copy's window is the policy's ``verification.integrity_check_every`` (a year in
  the seed, 365 days), shortened to the copy's guaranteed life when its retention is a
  `~backuppolicy.MaxAge` (35 days in the seed gives a window of 34 days), so that a copy
  that lives less than the cadence is still checked while it exists.
* **Slot.** A copy gets one offset ``o`` in ``[0, window)`` from the SHA-256 of its target and
  id: a fixed shuffle that depends on nothing else. Its *cycles* start on the days
  ``created + o + k * window`` (``k = 0, 1, ...``, calendar days in the policy's time zone). A
  copy is due once in each cycle: on its slot day (``"slot"``), or on a later day of the same
  cycle when the slot passed without a check (``"missed"``).
* **Catch-up.** A copy whose last check (or, never checked, its creation) is more than a
  window ago is ``"overdue"`` and comes first. Overdue and missed copies form the *backlog*, bounded
  per day by *catch_up* (by default the steady daily load: ``ceil(copies / window)``); today's
  slots are always due.

So a copy that lives through its first window is checked within it, and then at most a window
after each check, as long as each day's slots are checked.

`integrity_slots_due` is pure and deterministic: it depends only on its arguments (never on
the wall clock); ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

from backuppolicy.core._wallclock import zone_info
from backuppolicy.core.exceptions import BackupPolicyError, PolicyError
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.retention import MaxAge

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy

__all__ = ["IntegritySlot", "integrity_copies", "integrity_slots_due", "integrity_window_days"]

SLOT: Final = "slot"
MISSED: Final = "missed"
OVERDUE: Final = "overdue"
_ORDER: Final = {OVERDUE: 0, SLOT: 1, MISSED: 2}


@attrs.frozen
class IntegritySlot:
    """One copy due for its integrity check today.

    Attributes:
        target: Name of the target.
        point_id: Id of the copy (recovery point).
        tier: Tier of the copy.
        created_at: When the copy was made.
        reason: ``"overdue"`` (last check more than a window ago), ``"slot"`` (today is its slot
            day) or ``"missed"`` (its slot day passed without a check).
        since: The day it became due: its slot day, or for an overdue copy the first day
            after its window.
        window_days: The copy's integrity window, in days.
        last_checked: Its last conclusive integrity check, or ``None``.
    """

    target: str
    point_id: str
    tier: str | None
    created_at: datetime
    reason: str
    since: date
    window_days: int
    last_checked: datetime | None = None


def _slot(
    point: RecoveryPoint, reason: str, since: date, window: int, last: datetime | None
) -> IntegritySlot:
    return IntegritySlot(
        target=point.target,
        point_id=point.id,
        tier=point.tier,
        created_at=point.created_at,
        reason=reason,
        since=since,
        window_days=window,
        last_checked=last,
    )


def _offset(target: str, point_id: str, window: int) -> int:
    digest = hashlib.sha256(f"{target}\0{point_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % window


def _guaranteed_days(rule: object) -> int | None:
    """Days a point is sure to be kept under *rule* (its `MaxAge`s), ``None`` if unknown."""
    if isinstance(rule, MaxAge):
        return rule.duration.approx_timedelta().days
    found = [d for r in getattr(rule, "rules", ()) if (d := _guaranteed_days(r)) is not None]
    return max(found) if found else None


def integrity_window_days(policy: Policy, target: str, tier: str | None) -> int:
    """The integrity window of *target*'s copies in *tier*, in days (see the module docs).

    The integrity cadence's shortest period (365 days for ``year``), shortened to one day less
    than the retention's maximum age where that is shorter; at least 1.
    """
    cadence_days = max(1, policy.verification.integrity_check_every.min_days)
    try:
        rule: object = policy.retention_for(target, tier)
    except BackupPolicyError:  # a tier or target the policy does not name: its own rule
        try:
            rule = policy.retention_for(target)
        except BackupPolicyError:
            rule = policy.retention
    life = _guaranteed_days(rule)
    if life is None:
        return cadence_days
    return max(1, min(cadence_days, life - 1))


def integrity_copies(policy: Policy, points: Iterable[RecoveryPoint]) -> list[RecoveryPoint]:
    """The copies the integrity schedule covers: completed, in a covered tier.

    S3 object versions count only for targets that have no other points (a bucket's manifests
    cover its versions).
    """
    tiers = set(policy.verification.integrity_covers_tiers)
    good = [p for p in points if p.is_good and (not tiers or p.tier in tiers)]
    with_backups = {p.target for p in good if p.kind != "s3-version"}
    # S3 object versions are the data itself: checked through the manifests when there are any
    return [p for p in good if p.kind != "s3-version" or p.target not in with_backups]


def integrity_slots_due(
    policy: Policy,
    points: Iterable[RecoveryPoint],
    *,
    now: datetime,
    last_checked: Mapping[tuple[str, str], datetime] | None = None,
    catch_up: int | None = None,
) -> list[IntegritySlot]:
    """The copies whose integrity check is due on *now*'s day (see the module docs).

    Example:
        >>> from datetime import datetime, UTC, timedelta
        >>> import backuppolicy as bp
        >>> policy = bp.Policy.from_dict({"name": "p", "schedule": {"every": "day", "at": "04:00"},
        ...     "retention": {"max_age": "35d"}, "targets": [{"name": "db", "kind": "testing:memory"}]})
        >>> start = datetime(2026, 1, 1, 4, tzinfo=UTC)
        >>> points = [bp.RecoveryPoint(id=f"p{n}", target="db", created_at=start + timedelta(days=n),
        ...                            kind="memory") for n in range(3)]
        >>> days = [start + timedelta(days=d) for d in range(40)]
        >>> checked = {}
        >>> for day in days:
        ...     for slot in integrity_slots_due(policy, points, now=day, last_checked=checked):
        ...         checked[(slot.target, slot.point_id)] = day
        >>> sorted(checked) == [("db", "p0"), ("db", "p1"), ("db", "p2")]
        True

    Args:
        policy: The policy (integrity cadence, covered tiers, retention, time zone).
        points: The copies that exist now, of any targets.
        now: The time of the run (timezone-aware); its day in the policy's time zone counts.
        last_checked: When each copy was last checked conclusively, by ``(target, point id)``
            (from the testing log: `backuppolicy.workflows.verify.last_integrity_checks`).
        catch_up: Most overdue and missed copies due per day (default: the steady daily load,
            ``ceil(copies / window)``, at least 1). Today's slots are always due.

    Returns:
        The due copies: overdue first (longest overdue first), then today's slots, then missed
        slots (oldest first); ties by target and id.

    Raises:
        PolicyError: *now* is naive, or *catch_up* is not an integer >= 0.
    """
    ensure_aware(now, field="now")
    if catch_up is not None and (
        isinstance(catch_up, bool) or not isinstance(catch_up, int) or catch_up < 0
    ):
        raise PolicyError.for_field("catch_up", "an integer >= 0", catch_up)
    checks = last_checked or {}
    tz = zone_info(policy.timezone, "timezone")
    today = now.astimezone(tz).date()
    windows: dict[tuple[str, str | None], int] = {}
    regular: list[IntegritySlot] = []
    backlog: list[IntegritySlot] = []
    load = 0.0
    for point in integrity_copies(policy, points):
        created = point.created_at.astimezone(tz).date()
        if created > today:
            continue
        key = (point.target, point.tier)
        if key not in windows:
            windows[key] = integrity_window_days(policy, point.target, point.tier)
        window = windows[key]
        load += 1 / window
        last = checks.get((point.target, point.id))
        last_day = last.astimezone(tz).date() if last is not None else None
        reference = last_day if last_day is not None else created
        first = created + timedelta(days=_offset(point.target, point.id, window))
        if (today - reference).days > window:
            backlog.append(
                _slot(point, OVERDUE, reference + timedelta(days=window + 1), window, last)
            )
            continue
        if today < first:
            continue
        cycle = first + timedelta(days=(today - first).days // window * window)
        if last_day is not None and last_day >= cycle:
            continue
        if cycle == today:
            regular.append(_slot(point, SLOT, cycle, window, last))
        else:
            backlog.append(_slot(point, MISSED, cycle, window, last))
    limit = catch_up if catch_up is not None else max(1, math.ceil(load))
    backlog.sort(key=lambda s: (_ORDER[s.reason], s.since, s.target, s.point_id))
    regular.sort(key=lambda s: (s.target, s.point_id))
    chosen = backlog[:limit]
    overdue = [s for s in chosen if s.reason == OVERDUE]
    missed = [s for s in chosen if s.reason != OVERDUE]
    return [*overdue, *regular, *missed]
