"""The retention engine's prepared input: points grouped by target as sorted columns.

One idea: turn an iterable of `RecoveryPoint` into per-target columns, newest first,
once, so that every rule of a union reads the same lists; plus the binary searches and
the reasons dict the rules write into. Private to `backuppolicy.core.retention`.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint, Status, ensure_aware

__all__ = [
    "Group",
    "Prepared",
    "Reasons",
    "add_all",
    "add_reason",
    "count_after",
    "count_from",
    "gc_paused",
    "group_points",
    "now_utc",
    "raise_duplicate",
    "utc",
    "window_start",
    "zone",
]

_COMPLETED = Status.COMPLETED
_PENDING = Status.PENDING

# A reasons dict under construction: point id -> reasons (extended by every rule). Tuples,
# never changed in place, so that points with the same reasons can share one.
Reasons: TypeAlias = dict[str, tuple[str, ...]]


# --------------------------------------------------------------------------------------
# Prepared input: points grouped by target, sorted once, shared by every rule of a union.
#
# Speed: a plan over 10^6 points must take well under two seconds, so the per-point work
# is done by C-level builtins (map, zip, compress, sort) over plain lists ("columns");
# Python loops run only over what is kept or inspected (a period's head, a window).
# --------------------------------------------------------------------------------------

_TARGET = operator.attrgetter("target")
_CREATED = operator.attrgetter("created_at")
_ID = operator.attrgetter("id")
_STATUS = operator.attrgetter("status")
_MANAGED = operator.attrgetter("managed")
_HOLD = operator.attrgetter("legal_hold")
_order_key = operator.attrgetter("order_key")
_COMPLETED_EACH = itertools.repeat(_COMPLETED)  # map(operator.is_, ...) beats a partial


class Group:
    """The points of one target as columns, newest first; ``good_*``: completed points only.

    ``created`` holds each point's own ``created_at``, in whatever zone it came: the
    binary searches compare instants, and the few times read on a wall clock (a period's
    head, the within reference) are converted to UTC then (no pass over every point).

    Attributes:
        good_mask: ``None`` when every point is completed, else one bool per point.
        all_managed: Whether every point is managed.
        kept_prefix: The built-in rules keep ``ids[:kept_prefix]`` (at least).
        kept_at: Indices into ``ids`` that the built-in rules keep.
        good_kept: Indices into ``good_ids`` that the built-in rules keep.

    The ``kept_*`` marks let the planner split keep from delete by position; they are
    a hint it checks against the reasons (a rule that only writes reasons is still right).
    """

    __slots__ = (
        "all_managed",
        "created",
        "good_created",
        "good_ids",
        "good_kept",
        "good_mask",
        "ids",
        "kept_at",
        "kept_prefix",
        "points",
        "ref",
        "ref_index",
        "statuses",
        "target",
    )

    def __init__(self, target: str, points: list[RecoveryPoint], created: list[datetime]) -> None:
        self.target = target
        self.points = points
        self.created = created
        self.ids: list[str] = list(map(_ID, points))
        self.statuses: list[Status] = list(map(_STATUS, points))
        self.all_managed = all(map(_MANAGED, points))
        self.good_mask: list[bool] | None = None
        self.good_ids, self.good_created = self.ids, self.created
        if self.statuses.count(_COMPLETED) != len(self.statuses):
            mask = list(map(operator.is_, self.statuses, _COMPLETED_EACH))
            self.good_mask = mask
            self.good_ids = list(itertools.compress(self.ids, mask))
            self.good_created = list(itertools.compress(self.created, mask))
        self.ref: datetime | None = None
        self.ref_index = -1
        self.kept_prefix = 0
        self.kept_at: list[int] = []
        self.good_kept: list[int] = []

    def managed_only(self) -> Group:
        """The group restricted to its managed points (itself if all are)."""
        if self.all_managed:
            return self
        mask = list(map(_MANAGED, self.points))
        return Group(
            self.target,
            list(itertools.compress(self.points, mask)),
            list(itertools.compress(self.created, mask)),
        )

    def special_indices(self, future: int) -> list[int]:
        """Indices of the points a floor protects: future, held, pending, unmanaged."""
        special = set(range(future))
        points, count = self.points, len(self.points)
        holds = list(map(_HOLD, points))
        if holds.count(None) != count:  # count() compares by identity first: a C-level pass
            held = map(operator.is_not, holds, itertools.repeat(None))
            special.update(itertools.compress(range(count), held))
        statuses = self.statuses
        index = -1
        for _ in range(statuses.count(_PENDING)):  # rare: find each by a C-level scan
            index = statuses.index(_PENDING, index + 1)
            special.add(index)
        if not self.all_managed:
            managed = map(_MANAGED, points)
            special.update(itertools.compress(range(count), map(operator.not_, managed)))
        return sorted(special)


class Prepared:
    """Everything a rule evaluation needs: groups, now (UTC), the time zone."""

    __slots__ = ("groups", "now", "tz")

    def __init__(self, groups: list[Group], now: datetime, tz: tzinfo) -> None:
        self.groups = groups
        self.now = now
        self.tz = tz
        for group in groups:
            # The within reference: the newest completed point that is not in the future.
            index = count_after(group.good_created, now)
            if index < len(group.good_created):
                group.ref = utc(group.good_created[index])
                group.ref_index = index

    def iter_points(self) -> Iterator[RecoveryPoint]:
        for group in self.groups:
            yield from group.points


def utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while we build millions of short-lived tuples.

    We create no reference cycles, and the temporaries are freed (by reference counting)
    before the collector resumes. Without the pause, CPython runs full collections over
    every object of the process during a 10^6-point plan (a third of its time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def group_points(points: Iterable[RecoveryPoint], *, check_ids: bool = True) -> list[Group]:
    """Group by target (sorted by name), each newest first (as instants).

    This is the one loop that touches every point object (in input order, which is where
    the memory is): it only appends each point to its target's list. Everything after runs
    per target in C-level passes (``sort``, ``map``, ``compress``) over those lists. With
    *check_ids* false the caller checks that ids are unique (the planner does, for free,
    from its result).

    Raises:
        TypeError: An item is not a `RecoveryPoint`.
        ValueError: Two points share an id.
    """
    groups: dict[str, list[RecoveryPoint]] = {}
    get = groups.get
    point: object = None
    try:
        for point in points:
            members = get(point.target)
            if members is None:
                groups[point.target] = [point]
            else:
                members.append(point)
    except AttributeError:
        raise TypeError(f"points: expected RecoveryPoint items (got {point!r}).") from None
    result = [_group(target, groups[target]) for target in sorted(groups)]
    if check_ids:
        ids = [pid for group in result for pid in group.ids]
        if len(set(ids)) != len(ids):
            raise_duplicate(ids)
    return result


def _group(target: str, members: list[RecoveryPoint]) -> Group:
    """One target's points as a `Group`: newest first, ties by `RecoveryPoint.order_key`."""
    try:
        # Aware datetimes compare as instants whatever their zone, so this is the UTC order.
        members.sort(key=_CREATED, reverse=True)
        created = list(map(_CREATED, members))
    except (AttributeError, TypeError):
        bad = next((p for p in members if not isinstance(p, RecoveryPoint)), members[0])
        raise TypeError(f"points: expected RecoveryPoint items (got {bad!r}).") from None
    if any(map(operator.eq, created, itertools.islice(created, 1, None))):
        # Only when two points share a time do we pay for the whole key.
        members.sort(key=_order_key, reverse=True)
        created = list(map(_CREATED, members))
    return Group(target, members, created)


def raise_duplicate(ids: list[str]) -> None:
    seen: set[str] = set()
    for pid in ids:
        if pid in seen:
            raise ValueError(f"points: duplicate recovery point id {pid!r}; ids must be unique.")
        seen.add(pid)


def count_after(created: Sequence[datetime], cutoff: datetime, low: int = 0) -> int:
    """Index of the first item of *created* (sorted descending) not after *cutoff*.

    That is the number of items strictly after *cutoff* when *low* is 0.
    """
    high = len(created)
    while low < high:
        mid = (low + high) // 2
        if created[mid] > cutoff:
            low = mid + 1
        else:
            high = mid
    return low


def count_from(created: Sequence[datetime], start: datetime, low: int = 0) -> int:
    """Index of the first item of *created* (sorted descending) strictly before *start*."""
    high = len(created)
    while low < high:
        mid = (low + high) // 2
        if created[mid] >= start:
            low = mid + 1
        else:
            high = mid
    return low


def zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str):
        if tz in {"UTC", "Etc/UTC", "utc"}:
            return UTC
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise PolicyError.for_field("tz", "an IANA time zone name like 'Europe/London' or a tzinfo", tz)


def now_utc(now: datetime) -> datetime:
    return utc(ensure_aware(now, field="now"))


def window_start(duration: Duration, moment: datetime, tz: tzinfo) -> datetime | None:
    """``moment - duration`` stepped on the wall clock of *tz*, in UTC (None: unbounded)."""
    local = moment if tz is UTC else moment.astimezone(tz)
    start = duration.before(local)
    return None if start is None else utc(start)


def add_all(out: Reasons, ids: list[str], reason: str) -> None:
    """Add *reason* for every id of *ids*."""
    one = (reason,)
    if not out:
        # One tuple shared by every id: the common case of the first rule of a union.
        out.update(zip(ids, itertools.repeat(one, len(ids)), strict=True))
        return
    get = out.get
    for pid in ids:
        reasons = get(pid)
        out[pid] = one if reasons is None else (*reasons, reason)


def add_reason(out: Reasons, pid: str, reason: str) -> None:
    reasons = out.get(pid)
    out[pid] = (reason,) if reasons is None else (*reasons, reason)
