"""The retention engine's prepared input: points grouped by target as sorted columns.

One idea: turn an iterable of `RecoveryPoint` into per-target columns, newest first,
once, so that every rule of a union reads the same lists; plus the binary searches and
the reasons dict the rules write into. Private to `backuppolicy.core.retention`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import LegalHold, RecoveryPoint, Status, ensure_aware

__all__ = [
    "Group",
    "Prepared",
    "Reasons",
    "Row",
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

# A reasons dict under construction: point id -> reasons (appended to by every rule).
Reasons: TypeAlias = dict[str, list[str]]


# --------------------------------------------------------------------------------------
# Prepared input: points grouped by target, sorted once, shared by every rule of a union.
#
# Speed: a plan over 10^6 points must take well under two seconds, so the per-point work
# is done by C-level builtins (map, zip, compress, sort) over plain lists ("columns");
# Python loops run only over what is kept or inspected (a period's head, a window).
# --------------------------------------------------------------------------------------

_ROW_FIELDS = operator.attrgetter("target", "created_at", "id", "status", "managed", "legal_hold")
_ITEM0 = operator.itemgetter(0)
_order_key = operator.attrgetter("order_key")
_ORDINAL = operator.attrgetter("ordinal")
_ITEM1 = operator.itemgetter(1)
_ITEM2 = operator.itemgetter(2)
_ITEM3 = operator.itemgetter(3)
_ITEM4 = operator.itemgetter(4)
_ITEM5 = operator.itemgetter(5)
_is_completed = functools.partial(operator.is_, _COMPLETED)
_is_pending = functools.partial(operator.is_, _PENDING)

# One row per point: (created_at in UTC, id, status, managed, legal_hold, point). Rows sort
# by created_at, and on ties by the point's `RecoveryPoint.order_key` (`_row_order`).
Row: TypeAlias = tuple[datetime, str, Status, bool, LegalHold | None, RecoveryPoint]


class Group:
    """The points of one target as columns, newest first; ``good_*``: completed points only.

    Attributes:
        good_mask: ``None`` when every point is completed, else one bool per point.
        all_managed: Whether every point is managed.
    """

    __slots__ = (
        "all_managed",
        "created",
        "good_created",
        "good_ids",
        "good_mask",
        "ids",
        "points",
        "ref",
        "ref_index",
        "rows",
        "statuses",
        "target",
    )

    def __init__(self, target: str, rows: list[Row], created: list[datetime] | None = None) -> None:
        self.target = target
        self.rows = rows
        self.created: list[datetime] = list(map(_ITEM0, rows)) if created is None else created
        self.ids: list[str] = list(map(_ITEM1, rows))
        self.statuses: list[Status] = list(map(_ITEM2, rows))
        self.points: list[RecoveryPoint] = list(map(_ITEM5, rows))
        self.all_managed = all(map(_ITEM3, rows))
        mask = list(map(_is_completed, self.statuses))
        self.good_mask: list[bool] | None = None
        self.good_ids, self.good_created = self.ids, self.created
        if not all(mask):
            self.good_mask = mask
            self.good_ids = list(itertools.compress(self.ids, mask))
            self.good_created = list(itertools.compress(self.created, mask))
        self.ref: datetime | None = None
        self.ref_index = -1

    def managed_only(self) -> Group:
        """The group restricted to its managed points (itself if all are)."""
        if self.all_managed:
            return self
        return Group(self.target, list(itertools.compress(self.rows, map(_ITEM3, self.rows))))

    def special_indices(self, future: int) -> list[int]:
        """Indices of the points a floor protects: future, held, pending, unmanaged."""
        special = set(range(future))
        rows, count = self.rows, len(self.rows)
        if any(map(operator.is_not, map(_ITEM4, rows), itertools.repeat(None))):
            holds = map(operator.is_not, map(_ITEM4, rows), itertools.repeat(None))
            special.update(itertools.compress(range(count), holds))
        if _PENDING in self.statuses:
            special.update(itertools.compress(range(count), map(_is_pending, self.statuses)))
        if not self.all_managed:
            special.update(itertools.compress(range(count), map(operator.not_, map(_ITEM3, rows))))
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
                group.ref = group.good_created[index]
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
    """Group by target (sorted by name), each newest first, with UTC times.

    This is the one loop that touches every point object (in input order, which is where
    the memory is); everything after works on the rows it builds. With *check_ids* false
    the caller checks that ids are unique (the planner does, for free, from its result).

    Raises:
        TypeError: An item is not a `RecoveryPoint`.
        ValueError: Two points share an id.
    """
    groups: dict[str, list[Row]] = {}
    point: object = None
    try:
        for point in points:
            target, created, pid, status, managed, hold = _ROW_FIELDS(point)
            if created.tzinfo is not UTC:
                created = created.astimezone(UTC)
            rows = groups.get(target)
            if rows is None:
                rows = groups[target] = []
            rows.append((created, pid, status, managed, hold, point))
    except AttributeError:
        raise TypeError(f"points: expected RecoveryPoint items (got {point!r}).") from None
    if check_ids:
        ids = [pid for rows in groups.values() for pid in map(_ITEM1, rows)]
        if len(set(ids)) != len(ids):
            raise_duplicate(ids)
    result = []
    for target in sorted(groups):
        rows = groups[target]
        # Newest first; on equal created_at the backend's order (ordinal) first, then the
        # larger id (RecoveryPoint.order_key). Sorting on created_at alone is cheaper; only
        # if two points share a time do we sort on the whole key.
        rows.sort(key=_ITEM0, reverse=True)
        created = list(map(_ITEM0, rows))
        if any(map(operator.eq, created, itertools.islice(created, 1, None))):
            ordinals = list(map(_ORDINAL, map(_ITEM5, rows)))
            if ordinals.count(None) == len(ordinals):  # no backend order: (created_at, id)
                rows.sort(reverse=True)
            else:
                rows.sort(key=_row_order, reverse=True)
            created = list(map(_ITEM0, rows))
        result.append(Group(target, rows, created))
    return result


def _row_order(row: Row) -> tuple[datetime, bool, int, str]:
    """`RecoveryPoint.order_key` of a row (its time already in UTC)."""
    ordinal = row[5].ordinal
    return (row[0], ordinal is not None, ordinal or 0, row[1])


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
    if not out:
        out.update(zip(ids, map(list, itertools.repeat((reason,), len(ids))), strict=True))
        return
    get = out.get
    for pid in ids:
        reasons = get(pid)
        if reasons is None:
            out[pid] = [reason]
        else:
            reasons.append(reason)


def add_reason(out: Reasons, pid: str, reason: str) -> None:
    reasons = out.get(pid)
    if reasons is None:
        out[pid] = [reason]
    else:
        reasons.append(reason)
