"""The retention engine's prepared input: points grouped by target as sorted columns.

One idea: turn an iterable of `RecoveryPoint` into per-target columns, newest first,
once, so that every rule of a union reads the same lists; plus the binary searches and
the reasons dict the rules write into. Private to `backuppolicy.core.retention`.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timezone, tzinfo
from typing import TypeAlias, TypeVar
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
    "without",
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
# Speed: a plan over 10^6 points should take under one second, so the per-point work
# is done by C-level builtins (map, zip, compress, sort) over plain lists ("columns");
# Python loops run only over what is kept or inspected (a period's head, a window).
# --------------------------------------------------------------------------------------

_CREATED = operator.attrgetter("created_at")
_ID = operator.attrgetter("id")
_order_key = operator.attrgetter("order_key")
_CREATED_UTC = operator.attrgetter("created_utc")
_TZINFO = operator.attrgetter("tzinfo")
_FIXED_ZONES: frozenset[type] = frozenset({timezone})
"""Zone types whose times compare as instants also within one zone: fixed offsets."""
_T = TypeVar("_T")


class Group:
    """The points of one target as columns, newest first; ``good_*``: completed points only.

    ``created`` holds each point's own ``created_at``, in whatever fixed-offset zone it
    came: the binary searches compare instants, and the few times read on a wall clock (a
    period's head, the within reference) are converted to UTC then (no pass over every
    point). A target with times in a zone with daylight saving has them in UTC (see
    `_group`): two times of one such zone compare by wall clock, not as instants.

    Most points are plain: completed, not held, managed. Only the others (``odd``, found
    while grouping) are looked at one by one; the plain ones are only ever read as
    columns (``ids``, ``created``) and slices of them.

    Attributes:
        odd: Ascending indices of the points that are not completed, or under legal hold,
            or not managed.
        bad: Ascending indices of the points that are not completed.
        all_managed: Whether every point is managed.
        kept_prefix: The built-in rules keep ``ids[:kept_prefix]`` (at least).
        kept_at: Indices into ``ids`` that the built-in rules keep.
        good_kept: Indices into ``good_ids`` that the built-in rules keep.

    The ``kept_*`` marks let the planner split keep from delete by position; they are
    a hint it checks against the reasons (a rule that only writes reasons is still right).
    """

    __slots__ = (
        "all_managed",
        "bad",
        "created",
        "good_created",
        "good_ids",
        "good_kept",
        "ids",
        "kept_at",
        "kept_prefix",
        "odd",
        "points",
        "ref",
        "ref_index",
        "target",
    )

    def __init__(
        self, target: str, points: list[RecoveryPoint], created: list[datetime], odd: list[int]
    ) -> None:
        self.target = target
        self.points = points
        self.created = created
        self.ids: list[str] = list(map(_ID, points))
        self.odd = odd
        self.bad = [index for index in odd if points[index].status is not _COMPLETED]
        self.all_managed = all(points[index].managed for index in odd)
        self.good_ids, self.good_created = self.ids, self.created
        if self.bad:
            self.good_ids = without(self.ids, self.bad)
            self.good_created = without(self.created, self.bad)
        self.ref: datetime | None = None
        self.ref_index = -1
        self.kept_prefix = 0
        self.kept_at: list[int] = []
        self.good_kept: list[int] = []

    def managed_only(self) -> Group:
        """The group restricted to its managed points (itself if all are)."""
        if self.all_managed:
            return self
        points = self.points
        drop = [index for index in self.odd if not points[index].managed]
        kept = [index for index in self.odd if points[index].managed]
        return Group(
            self.target,
            without(points, drop),
            without(self.created, drop),
            _shift_down(kept, drop),
        )

    def special_indices(self, future: int) -> list[int]:
        """Ascending indices of the points a floor protects: future, held, pending, unmanaged."""
        special = list(range(future))
        points = self.points
        for index in self.odd:
            if index >= future:
                point = points[index]
                if point.legal_hold is not None or point.status is _PENDING or not point.managed:
                    special.append(index)
        return special


def without(items: list[_T], drop: list[int]) -> list[_T]:
    """*items* without the indices *drop* (ascending), copied as slices between them."""
    result: list[_T] = []
    start = 0
    for index in drop:
        result += items[start:index]
        start = index + 1
    result += items[start:]
    return result


def _shift_down(indices: list[int], drop: list[int]) -> list[int]:
    """Each of *indices* (ascending) less the number of *drop* (ascending) below it."""
    result: list[int] = []
    below, count = 0, len(drop)
    for index in indices:
        while below < count and drop[below] < index:
            below += 1
        result.append(index - below)
    return result


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
    the memory is): it appends each point to its target's list and notes the few points
    that are not plain (not completed, held or unmanaged). Everything after runs per
    target in C-level passes (``sort``, ``map``, slices) over those lists, and in Python
    only over the noted points. With *check_ids* false the caller checks that ids are
    unique (the planner does, from the ids it has anyway).

    Raises:
        TypeError: An item is not a `RecoveryPoint`.
        ValueError: Two points share an id.
    """
    groups: dict[str, list[RecoveryPoint]] = {}
    odd: list[RecoveryPoint] = []
    add_odd = odd.append
    completed = _COMPLETED
    point: object = None
    try:
        for point in points:
            try:
                groups[point.target].append(point)
            except KeyError:
                groups[point.target] = [point]
            if point.status is not completed or point.legal_hold is not None or not point.managed:
                add_odd(point)
    except AttributeError:
        raise TypeError(f"points: expected RecoveryPoint items (got {point!r}).") from None
    odd_of: dict[str, list[RecoveryPoint]] = {}
    for point in odd:
        odd_of.setdefault(point.target, []).append(point)
    result = [_group(target, groups[target], odd_of.get(target)) for target in sorted(groups)]
    if check_ids:
        ids = [pid for group in result for pid in group.ids]
        if len(set(ids)) != len(ids):
            raise_duplicate(ids)
    return result


def _group(target: str, members: list[RecoveryPoint], odd: list[RecoveryPoint] | None) -> Group:
    """One target's points as a `Group`: newest first, ties by `RecoveryPoint.order_key`."""
    try:
        members.sort(key=_CREATED, reverse=True)
        created = list(map(_CREATED, members))
    except (AttributeError, TypeError):
        bad = next((p for p in members if not isinstance(p, RecoveryPoint)), members[0])
        raise TypeError(f"points: expected RecoveryPoint items (got {bad!r}).") from None
    column = _CREATED
    if not _FIXED_ZONES.issuperset(set(map(type, map(_TZINFO, created)))):
        # Times of different zones compare as instants, but two times of one zone compare by
        # their wall clock (PEP 495), which is not the instants' order in a daylight-saving
        # fold. Only fixed-offset zones (what backends give) are safe as they are; any other
        # group is ordered, and kept, in UTC.
        column = _CREATED_UTC
        members.sort(key=column, reverse=True)
        created = list(map(column, members))
    if any(map(operator.eq, created, itertools.islice(created, 1, None))):
        # Only when two points share a time do we pay for the whole key (it orders in UTC).
        members.sort(key=_order_key, reverse=True)
        created = list(map(column, members))
    return Group(target, members, created, _positions(members, created, odd) if odd else [])


def _positions(
    members: list[RecoveryPoint], created: list[datetime], odd: list[RecoveryPoint]
) -> list[int]:
    """Ascending indices in *members* (sorted as `_group` sorts) of the points of *odd*.

    Each is found by a binary search on its time, then by identity among the points of
    that same time; when they are many, or one is not found where the search says (times
    that do not compare as one order), by one identity pass over every point.
    """
    wanted = set(map(id, odd))
    count = len(members)
    if len(odd) * 16 < count:
        found: set[int] = set()
        scanned: set[int] = set()
        for point in odd:
            when = point.created_at
            # created is newest first: the first index whose time is not after `when`.
            index = count_after(created, when)
            if index in scanned:
                continue
            scanned.add(index)
            while index < count and created[index] == when:
                if id(members[index]) in wanted:
                    found.add(index)
                index += 1
        if len(found) == len(odd):
            return sorted(found)
    return list(itertools.compress(range(count), map(wanted.__contains__, map(id, members))))


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
    # The key is False while an item is after the cutoff, then True: a C-level search.
    return bisect.bisect_left(created, x=True, lo=low, key=cutoff.__ge__)


def count_from(created: Sequence[datetime], start: datetime, low: int = 0) -> int:
    """Index of the first item of *created* (sorted descending) strictly before *start*."""
    return bisect.bisect_left(created, x=True, lo=low, key=start.__gt__)


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
