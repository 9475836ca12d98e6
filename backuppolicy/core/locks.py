"""Immutability: a tier's lock (`TierLock`) and the lock a backend reports on a point (`PointLock`).

A tier of the policy file may say how its copies are locked below the library, so that even a
stolen admin role cannot delete them early::

    tiers:
      - name: offsite
        every: weekly
        lock: compliance                      # for the tier's retention
      - name: local
        every: daily
        lock: {mode: governance, for: 35d}

``none`` (the default) locks nothing. ``governance`` is a lock that a principal holding the
bypass permission (``s3:BypassGovernanceRetention``, ``ec2:UnlockSnapshot``) can lift;
``compliance`` is a lock that nobody, the root user included, can lift before it expires.

The lock lasts ``for`` (default: the tier's retention, see `retention_span`). A lock and a
retention must agree, or the policy is refused (`check_lock_against_retention`): a lock longer
than the retention can ever keep a point holds copies that the policy says are gone, and a lock
shorter than the age the retention guarantees (``MaxAge``/``KeepWithin``) leaves points the
policy promises to keep deletable by anyone with delete rights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError

if TYPE_CHECKING:
    from backuppolicy.core.model import RecoveryPoint

__all__ = [
    "LOCK_MODES",
    "HoldEnforcing",
    "LockablePoints",
    "PointLock",
    "TierLock",
    "check_lock_against_retention",
    "retention_floor",
    "retention_span",
]

LOCK_MODES: Final = ("none", "governance", "compliance")
"""What a tier's ``lock`` may be (``mode``)."""

_LOCK_KEYS: Final = ("mode", "for", "cool_off")
_PERIOD_DAYS: Final = {"hour": 1 / 24, "day": 1, "week": 7, "month": 31, "year": 366}


def _mode(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in LOCK_MODES:
        raise PolicyError.for_field(attribute.name, "one of " + ", ".join(LOCK_MODES), value)


@attrs.frozen
class TierLock:
    """How the copies of a tier are locked against deletion, below the library.

    Example:
        >>> TierLock.from_spec({"mode": "compliance", "for": "35d"}).describe()
        'compliance lock for 35 days'
        >>> TierLock.from_spec("governance").to_spec()
        'governance'

    Attributes:
        mode: ``"none"``, ``"governance"`` or ``"compliance"``.
        duration: How long each copy stays locked from its creation; ``None``: the tier's
            retention (`retention_floor`, else `retention_span`).
        cool_off: EBS compliance locks only: the cool-off period during which a compliance
            lock may still be lifted by a privileged user (``LockSnapshot``'s
            ``CoolOffPeriod``, 1 to 72 hours); ``None`` for no cool-off.
    """

    mode: str = attrs.field(default="none", validator=_mode)
    duration: Duration | None = attrs.field(default=None, kw_only=True)
    cool_off: Duration | None = attrs.field(default=None, kw_only=True)

    @property
    def enabled(self) -> bool:
        """Whether the tier locks anything (mode is not ``"none"``)."""
        return self.mode != "none"

    def describe(self) -> str:
        """``"compliance lock for 35 days"`` or ``"no lock"``."""
        if not self.enabled:
            return "no lock"
        span = self.duration.describe() if self.duration else "the tier's retention"
        cool = f", cool-off {self.cool_off.describe()}" if self.cool_off else ""
        return f"{self.mode} lock for {span}{cool}"

    def to_spec(self) -> str | dict[str, str]:
        """Plain data as `from_spec` reads it."""
        if self.duration is None and self.cool_off is None:
            return self.mode
        data = {"mode": self.mode}
        if self.duration is not None:
            data["for"] = str(self.duration)
        if self.cool_off is not None:
            data["cool_off"] = str(self.cool_off)
        return data

    @classmethod
    def from_spec(cls, value: object, *, path: str = "lock") -> TierLock:
        """Read ``"compliance"`` or ``{mode: compliance, for: 35d, cool_off: 24h}``.

        Raises:
            PolicyError: Unknown keys, an unknown mode, a bad duration or cool-off (the
                cool-off is 1 to 72 whole hours, and only for compliance locks).
        """
        if isinstance(value, TierLock):
            return value
        if isinstance(value, str):
            value = {"mode": value}
        if not isinstance(value, Mapping):
            raise PolicyError.for_field(
                path, "a lock mode (none, governance, compliance) or a mapping", value
            )
        for key in value:
            if key not in _LOCK_KEYS:
                raise PolicyError.for_field(
                    f"{path}.{key}", "a known key: " + ", ".join(_LOCK_KEYS), key
                )
        mode = value.get("mode", "none")
        if mode not in LOCK_MODES:
            raise PolicyError.for_field(f"{path}.mode", "one of " + ", ".join(LOCK_MODES), mode)
        duration = (
            Duration.coerce(value["for"], field=f"{path}.for")
            if value.get("for") is not None
            else None
        )
        if duration is not None and duration.is_zero:
            raise PolicyError.for_field(f"{path}.for", "a duration longer than zero", str(duration))
        cool_off = None
        if value.get("cool_off") is not None:
            cool_off = Duration.coerce(value["cool_off"], field=f"{path}.cool_off")
            hours = cool_off.approx_timedelta() / timedelta(hours=1)
            if mode != "compliance" or not 1 <= hours <= 72 or hours != int(hours):  # noqa: PLR2004
                raise PolicyError.for_field(
                    f"{path}.cool_off",
                    "1 to 72 whole hours, on a compliance lock only",
                    str(cool_off),
                )
        return cls(str(mode), duration=duration, cool_off=cool_off)

    def lock_for(self, rule: object) -> Duration | None:
        """How long each copy is locked: ``duration``, else the floor or span of *rule*."""
        if not self.enabled:
            return None
        if self.duration is not None:
            return self.duration
        return retention_floor(rule) or retention_span(rule)

    def point_lock(self, rule: object, created_at: datetime) -> PointLock | None:
        """The `PointLock` to put on a copy created at *created_at* (``None``: no lock)."""
        length = self.lock_for(rule)
        if length is None:
            return None
        return PointLock(mode=self.mode, until=length.after(created_at.astimezone(UTC)))


@attrs.frozen
class PointLock:
    """A lock a backend reports on a recovery point: nobody may delete it before *until*.

    Example:
        >>> lock = PointLock("compliance", datetime(2027, 1, 10, tzinfo=UTC))
        >>> lock.describe()
        'locked (compliance) until 2027-01-10'
        >>> lock.active(datetime(2027, 1, 9, tzinfo=UTC))
        True

    Attributes:
        mode: ``"governance"``, ``"compliance"`` or ``"legal-hold"`` (a hold the service
            enforces, such as an AWS Backup legal hold: no expiry date).
        until: When the lock expires (timezone-aware); ``None``: until it is lifted.
        source: What enforces it (``"s3-object-lock"``, ``"ebs-snapshot-lock"``, ...).
    """

    mode: str
    until: datetime | None = None
    source: str = attrs.field(default="", kw_only=True)

    def active(self, now: datetime) -> bool:
        """Whether the lock still forbids deletion at *now*."""
        return self.until is None or self.until > now

    def describe(self) -> str:
        """``"locked (compliance) until 2027-01-10"``."""
        if self.until is None:
            return f"locked ({self.mode}) until released"
        return f"locked ({self.mode}) until {self.until.astimezone(UTC).date().isoformat()}"


def _parts(rule: object) -> Iterator[object]:
    inner = getattr(rule, "rules", None)
    if isinstance(inner, tuple):
        for part in inner:
            yield from _parts(part)
    else:
        yield rule


def retention_floor(rule: object) -> Duration | None:
    """The age up to which *rule* keeps **every** point (its longest ``MaxAge``/``KeepWithin``).

    ``None`` if no part of the rule keeps every point up to an age (count rules only).
    """
    found: Duration | None = None
    for part in _parts(rule):
        if type(part).__name__ in {"MaxAge", "KeepWithin"} and getattr(part, "per", None) is None:
            duration = part.duration  # type: ignore[attr-defined]
            if found is None or duration.approx_timedelta() > found.approx_timedelta():
                found = duration
    return found


def retention_span(rule: object) -> Duration | None:
    """The longest *rule* can keep a point: time windows, and count rules as periods (+1).

    ``KeepWeekly(4)`` spans 5 weeks (the oldest kept weekly point is at most that old);
    ``KeepLast`` and ``KeepHourly`` are counted in hours. ``None``: unbounded (``-1``,
    ``KeepTags``, or a plain callable), so no lock can outlive it.
    """
    longest = timedelta(0)
    for part in _parts(rule):
        name = type(part).__name__
        if name in {"MaxAge", "KeepWithin"}:
            longest = max(longest, part.duration.approx_timedelta())  # type: ignore[attr-defined]
            continue
        n = getattr(part, "n", None)
        period = getattr(part, "_period", "hour") if name != "KeepLast" else "hour"
        if not isinstance(n, int) or n < 0:
            return None
        longest = max(longest, timedelta(days=(n + 1) * _PERIOD_DAYS[period]))
    whole = -(-longest // timedelta(hours=1))  # whole hours, rounded up
    return Duration(days=whole // 24, hours=whole % 24)


def check_lock_against_retention(
    lock: TierLock, rule: object, *, lock_path: str, retention_path: str
) -> None:
    """Refuse a lock that outlives the retention, or that is shorter than what it guarantees.

    Raises:
        PolicyError: Naming both fields: the lock's ``for`` is longer than `retention_span`
            of *rule* (copies would stay locked after the policy deletes them), or shorter
            than `retention_floor` (the copies the policy promises to keep could be deleted
            by anyone with delete rights once the lock expires); or no lock length can be
            derived (an unbounded retention needs an explicit ``for``).
    """
    if not lock.enabled:
        return
    span, floor = retention_span(rule), retention_floor(rule)
    length = lock.lock_for(rule)
    field = f"{lock_path}.for"
    if length is None:
        raise PolicyError.for_field(
            field,
            f"an explicit lock duration ({retention_path} keeps points without a time limit)",
            None,
        )
    got = length.approx_timedelta()
    if span is not None and got > span.approx_timedelta():
        raise PolicyError.for_field(
            field,
            f"a lock no longer than {retention_path} keeps a point ({span.describe()}), "
            "or copies stay locked after the policy deletes them",
            str(length),
        )
    if floor is not None and got < floor.approx_timedelta():
        raise PolicyError.for_field(
            field,
            f"a lock at least as long as {retention_path} guarantees ({floor.describe()}), "
            "or the copies it promises to keep are deletable once the lock expires",
            str(length),
            hint=f"Omit {field} to lock for the retention.",
        )


@runtime_checkable
class LockablePoints(Protocol):
    """**Protocol:** a target that can lock its points against deletion, below the library.

    The backup workflow calls `lock_point` on every new point and copy of a tier whose
    `TierLock` is enabled; the backend enforces the lock (S3 Object Lock retention, an EBS
    snapshot lock), so that nobody, with any credentials, can delete the point early.
    """

    def lock_point(
        self, point: RecoveryPoint, lock: PointLock, *, cool_off: Duration | None = None
    ) -> RecoveryPoint:
        """Lock *point* with *lock* (never shortening a longer lock); return it re-read.

        *cool_off* is the tier's `TierLock.cool_off`, for backends that have one (EBS).
        """
        ...


@runtime_checkable
class HoldEnforcing(Protocol):
    """**Protocol:** a target that enforces legal holds below the library, not by a tag alone.

    `backuppolicy.workflows.holds.place_hold` calls `enforce_hold` after the hold's tag is
    placed, and `release_enforcement` before the tag is removed; the audit asks `hold_gaps`.
    """

    def enforce_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Make the service itself refuse to delete the held *point*; return it re-read."""
        ...

    def release_enforcement(self, point: RecoveryPoint, tier_lock: PointLock | None) -> None:
        """Lift what `enforce_hold` placed, restoring *tier_lock* (the tier's own lock) if any."""
        ...

    def hold_gaps(self, point: RecoveryPoint) -> list[str]:
        """How the hold on *point* is weaker than its kind allows; empty when it is not."""
        ...
