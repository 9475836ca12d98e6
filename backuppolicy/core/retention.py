"""Retention rules and the retention planner: which recovery points to keep, and why.

A rule answers one question, "which of these points do I keep?", with a reason for
each point it keeps. The count rules follow restic's ``forget`` exactly (see
``tests/data/restic`` for the 40 reference cases they reproduce); `MaxAge` is the
seed policy's "we retain backups for 35 days", measured from ``now``. Rules
combine by union with ``|``::

    rule = MaxAge(days=35) | KeepDaily(7) | KeepWeekly(4)
    rule.keep(points, now=now)   # {point.id: [reasons]}: the pure rule, no floors
    rule.plan(points, now=now)   # RetentionPlan: the rule plus the planner's safety floors

Semantics, in short (the explanation page has the long form):

* Points are grouped by the point's ``target``; every target is evaluated on its own.
* Order is newest first by ``created_at``; equal times are ordered by the backend's own
  order where it has one (the larger `RecoveryPoint.ordinal` is newer: S3 lists a key's
  versions newest first), else by ``id`` descending (restic's rule: the larger id counts as
  the newer point). See `RecoveryPoint.order_key`; the input order never matters.
* Count and per-period rules (`KeepLast`, `KeepHourly` ... `KeepYearly`,
  ``KeepWithin(per=...)``) and the reference point of `KeepWithin` consider only
  completed points. `MaxAge`, plain `KeepWithin` and `KeepTags` apply to any status.
* Periods are wall-clock hours, days, ISO weeks (ISO year + ISO week), months and
  years in the policy's time zone *tz* (default UTC).
* Windows are strict: `MaxAge` keeps points created strictly after ``now - duration``;
  a point exactly 35 days old is not kept by ``MaxAge(days=35)``.

The planner adds, with their own reasons: points under legal hold are kept; the
newest completed point of each target is kept; pending points, points created in the
future and points not managed by backuppolicy are never deleted. Rules see only
managed points in a plan: a point we do not own never fills a bucket, because its
owner may delete it behind our back.
"""

from __future__ import annotations

import abc
import contextlib
import difflib
import functools
import gc
import html
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, ClassVar, Self, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError, _cut_path, short_repr
from backuppolicy.core.model import LegalHold, RecoveryPoint, Status, ensure_aware

__all__ = [
    "AnyOf",
    "KeepDaily",
    "KeepHourly",
    "KeepLast",
    "KeepMonthly",
    "KeepTags",
    "KeepWeekly",
    "KeepWithin",
    "KeepYearly",
    "MaxAge",
    "RetentionPlan",
    "RetentionRule",
    "RetentionRuleT",
    "as_rule",
    "rule_from_spec",
]

_COMPLETED = Status.COMPLETED
_PENDING = Status.PENDING
_PERIODS = ("hour", "day", "week", "month", "year")
_ADJECTIVE = {
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "year": "yearly",
}
_NOT_KEPT = "not kept by any rule"
_FUTURE = "created in the future (clock skew?)"
_UNMANAGED = "not managed by backuppolicy"
_PENDING_REASON = "pending"

# A reasons dict under construction: point id -> reasons (appended to by every rule).
_Out: TypeAlias = dict[str, list[str]]


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
_Row: TypeAlias = tuple[datetime, str, Status, bool, LegalHold | None, RecoveryPoint]


class _Group:
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

    def __init__(
        self, target: str, rows: list[_Row], created: list[datetime] | None = None
    ) -> None:
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

    def managed_only(self) -> _Group:
        """The group restricted to its managed points (itself if all are)."""
        if self.all_managed:
            return self
        return _Group(self.target, list(itertools.compress(self.rows, map(_ITEM3, self.rows))))

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


class _Prepared:
    """Everything a rule evaluation needs: groups, now (UTC), the time zone."""

    __slots__ = ("groups", "now", "tz")

    def __init__(self, groups: list[_Group], now: datetime, tz: tzinfo) -> None:
        self.groups = groups
        self.now = now
        self.tz = tz
        for group in groups:
            # The within reference: the newest completed point that is not in the future.
            index = _count_after(group.good_created, now)
            if index < len(group.good_created):
                group.ref = group.good_created[index]
                group.ref_index = index

    def iter_points(self) -> Iterator[RecoveryPoint]:
        for group in self.groups:
            yield from group.points


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
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


def _group_points(points: Iterable[RecoveryPoint], *, check_ids: bool = True) -> list[_Group]:
    """Group by target (sorted by name), each newest first, with UTC times.

    This is the one loop that touches every point object (in input order, which is where
    the memory is); everything after works on the rows it builds. With *check_ids* false
    the caller checks that ids are unique (the planner does, for free, from its result).

    Raises:
        TypeError: An item is not a `RecoveryPoint`.
        ValueError: Two points share an id.
    """
    groups: dict[str, list[_Row]] = {}
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
            _raise_duplicate(ids)
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
        result.append(_Group(target, rows, created))
    return result


def _row_order(row: _Row) -> tuple[datetime, bool, int, str]:
    """`RecoveryPoint.order_key` of a row (its time already in UTC)."""
    ordinal = row[5].ordinal
    return (row[0], ordinal is not None, ordinal or 0, row[1])


def _raise_duplicate(ids: list[str]) -> None:
    seen: set[str] = set()
    for pid in ids:
        if pid in seen:
            raise ValueError(f"points: duplicate recovery point id {pid!r}; ids must be unique.")
        seen.add(pid)


def _count_after(created: Sequence[datetime], cutoff: datetime, low: int = 0) -> int:
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


def _count_from(created: Sequence[datetime], start: datetime, low: int = 0) -> int:
    """Index of the first item of *created* (sorted descending) strictly before *start*."""
    high = len(created)
    while low < high:
        mid = (low + high) // 2
        if created[mid] >= start:
            low = mid + 1
        else:
            high = mid
    return low


def _zone(tz: str | tzinfo) -> tzinfo:
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


def _now(now: datetime) -> datetime:
    return _utc(ensure_aware(now, field="now"))


def _cutoff(duration: Duration, moment: datetime, tz: tzinfo) -> datetime | None:
    """``moment - duration`` stepped on the wall clock of *tz*, in UTC (None: unbounded)."""
    local = moment if tz is UTC else moment.astimezone(tz)
    start = duration.before(local)
    return None if start is None else _utc(start)


# --------------------------------------------------------------------------------------
# Periods: an int key per hour/day/ISO week/month/year of local wall-clock time, and its label.
# --------------------------------------------------------------------------------------


def _key_hour(local: datetime) -> int:
    return local.toordinal() * 24 + local.hour


def _key_day(local: datetime) -> int:
    return local.toordinal()


def _key_week(local: datetime) -> int:
    # Ordinal 1 (0001-01-01) is a Monday, so this counts ISO weeks: Monday to Sunday.
    return (local.toordinal() - 1) // 7


def _key_month(local: datetime) -> int:
    return local.year * 12 + local.month - 1


def _key_year(local: datetime) -> int:
    return local.year


def _label_hour(key: int) -> str:
    return f"{date.fromordinal(key // 24).isoformat()}T{key % 24:02d}"


def _label_day(key: int) -> str:
    return date.fromordinal(key).isoformat()


def _label_week(key: int) -> str:
    iso = date.fromordinal(key * 7 + 1).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def _label_month(key: int) -> str:
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def _label_year(key: int) -> str:
    return f"{key:04d}"


def _start_hour(key: int) -> datetime:
    return datetime.combine(date.fromordinal(key // 24), time(key % 24))


def _start_day(key: int) -> datetime:
    return datetime.combine(date.fromordinal(key), time())


def _start_week(key: int) -> datetime:
    return datetime.combine(date.fromordinal(key * 7 + 1), time())


def _start_month(key: int) -> datetime:
    return datetime(key // 12, key % 12 + 1, 1)  # noqa: DTZ001 - local wall clock, zone added later


def _start_year(key: int) -> datetime:
    return datetime(key, 1, 1)  # noqa: DTZ001 - local wall clock, zone added later


class _Period:
    """How one kind of period (hour, day, week, month, year) keys, names and starts."""

    __slots__ = ("key", "label", "start")

    def __init__(
        self,
        key: Callable[[datetime], int],
        label: Callable[[int], str],
        start: Callable[[int], datetime],
    ) -> None:
        self.key = key
        self.label = label
        self.start = start


_KEYS: dict[str, _Period] = {
    "hour": _Period(_key_hour, _label_hour, _start_hour),
    "day": _Period(_key_day, _label_day, _start_day),
    "week": _Period(_key_week, _label_week, _start_week),
    "month": _Period(_key_month, _label_month, _start_month),
    "year": _Period(_key_year, _label_year, _start_year),
}


def _keep_heads(
    out: _Out,
    ids: list[str],
    created: list[datetime],
    *,
    stop: int,
    budget: int,
    per: str,
    tz: tzinfo,
    prefix: str,
) -> None:
    """Walk restic's buckets over ``ids[:stop]`` (newest first): keep each period's newest point.

    *budget* is the number of periods to keep (-1: unlimited). While budget is left, the
    oldest point of the whole list (index ``len(ids) - 1``) is kept too, with an
    ``oldest`` prefix when its period was already kept (restic's rule 5).
    """
    period = _KEYS[per]
    last_index = len(ids) - 1
    index, kept_index = 0, -1
    key = 0
    while index < stop and budget != 0:
        key = _key_at(period, created, index, tz)
        _add(out, ids[index], f"{prefix} {period.label(key)}")
        kept_index = index
        if budget > 0:
            budget -= 1
        index = _next_period(period, created, index, key, tz)
    if budget != 0 and kept_index >= 0 and kept_index != last_index < stop:
        _add(out, ids[last_index], f"oldest {prefix} {period.label(key)}")


def _key_at(period: _Period, created: list[datetime], index: int, tz: tzinfo) -> int:
    when = created[index]
    return period.key(when if tz is UTC else when.astimezone(tz))


def _next_period(period: _Period, created: list[datetime], index: int, key: int, tz: tzinfo) -> int:
    """The first index after *index* whose point lies before the start of period *key*.

    A binary search instead of a walk: a count rule looks at O(periods x log n) points, not
    all of them. This takes a period to be one stretch of time, from the first instant the
    wall clock of *tz* shows it to the first instant it shows the next one: true for UTC and
    for every zone whose clock changes do not jump back across a period boundary (say from
    00:30 back to 23:30). In a zone that does, the repeated stretch counts for the newer period.
    """
    start = period.start(key)
    if tz is UTC:
        return _count_from(created, start.replace(tzinfo=UTC), index + 1)
    # fold=0: an ambiguous start is its first occurrence, a skipped one the transition itself.
    return _count_from(created, start.replace(tzinfo=tz).astimezone(UTC), index + 1)


def _add_all(out: _Out, ids: list[str], reason: str) -> None:
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


def _add(out: _Out, pid: str, reason: str) -> None:
    reasons = out.get(pid)
    if reasons is None:
        out[pid] = [reason]
    else:
        reasons.append(reason)


# --------------------------------------------------------------------------------------
# The rules.
# --------------------------------------------------------------------------------------


class RetentionRule(abc.ABC):
    """Base of every retention rule: ``keep``, ``plan``, ``|``, ``describe`` and ``to_spec``.

    Subclasses implement ``_apply`` (the rule over prepared, grouped, sorted points),
    `describe` and `to_spec`. Plain callables are accepted wherever a rule is, see `as_rule`.

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> from backuppolicy import RecoveryPoint
        >>> now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        >>> points = [RecoveryPoint(id=f"s{i}", target="db", created_at=now - timedelta(days=i))
        ...           for i in range(5)]
        >>> rule = KeepLast(2) | MaxAge(days=3)
        >>> rule.keep(points, now=now)["s1"]
        ['last 2', 'younger than 3d']
        >>> rule.plan(points, now=now)
        <backuppolicy.RetentionPlan(keep=3, delete=2)>
    """

    __slots__ = ()

    def keep(
        self, points: Iterable[RecoveryPoint], *, now: datetime, tz: str | tzinfo = "UTC"
    ) -> dict[str, list[str]]:
        """Return ``{point.id: [reasons]}`` for the points this rule keeps (no floors, no holds).

        Args:
            points: The recovery points, of any number of targets, in any order.
            now: The current time (timezone-aware); `MaxAge` measures from it, and points
                created after it are "in the future" (they never serve as the `KeepWithin`
                reference).
            tz: The policy's time zone: the wall clock that defines hours, days, weeks,
                months and years, and on which calendar durations step.

        Raises:
            ValueError: Two points share an id.
            PolicyError: *now* is naive or *tz* is not a time zone.
        """
        now, zone = _now(now), _zone(tz)
        out: _Out = {}
        with _gc_paused():
            self._apply(_Prepared(_group_points(points), now, zone), out)
        return out

    def plan(
        self, points: Iterable[RecoveryPoint], *, now: datetime, tz: str | tzinfo = "UTC"
    ) -> RetentionPlan:
        """Split *points* into keep and delete, with at least one reason for every point.

        The rule runs over the managed points; then the planner's floors apply: legal holds,
        the newest completed point of each target, pending points, points created in the
        future and unmanaged points are always kept.

        Raises:
            ValueError: Two points share an id.
            PolicyError: *now* is naive or *tz* is not a time zone.
        """
        return _plan(self, points, now=_now(now), tz=_zone(tz))

    def __or__(self, other: RetentionRuleT) -> AnyOf:
        return AnyOf(self, other)

    def __ror__(self, other: RetentionRuleT) -> AnyOf:
        return AnyOf(other, self)

    @abc.abstractmethod
    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        """Append this rule's reasons for the points it keeps to *out*."""

    def _delete_reasons(self) -> list[str]:
        """Reasons that explain, for any point this rule does not keep, why (if it can say)."""
        return []

    @abc.abstractmethod
    def describe(self) -> str:
        """Human words for the policy document, e.g. ``"keep every backup younger than 35 days"``."""

    @abc.abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """Return the spec mapping that `rule_from_spec` turns back into an equal rule.

        Raises:
            PolicyError: The rule has no spec form (a plain callable, or two rules of the same kind).
        """


RetentionRuleT: TypeAlias = RetentionRule | Callable[..., Mapping[str, list[str]]]
"""A retention rule or a plain callable ``f(points, *, now, tz) -> {id: [reasons]}``."""


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise PolicyError.for_field(name, "an integer >= 1, or -1 for unlimited", value)
    return value


def _count_validator(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    _check_count(attribute.name, value)


def _n_field() -> Any:
    return attrs.field(validator=_count_validator)


@attrs.frozen(repr=False)
class _CountRule(RetentionRule):
    """restic's count rules: keep the newest completed point of each of the last *n* periods."""

    n: int = _n_field()

    _period: ClassVar[str] = "day"
    _spec_key: ClassVar[str] = "keep_daily"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        adjective = _ADJECTIVE[self._period]
        for group in prepared.groups:
            _keep_heads(
                out,
                group.good_ids,
                group.good_created,
                stop=len(group.good_ids),
                budget=self.n,
                per=self._period,
                tz=prepared.tz,
                prefix=adjective,
            )

    def describe(self) -> str:
        """Human words, e.g. ``"keep the newest backup of each of the last 7 days that have one"``."""
        if self.n == -1:
            return f"keep the newest completed backup of every {self._period}"
        unit = self._period if self.n == 1 else f"{self._period}s"
        return f"keep the newest completed backup of each of the last {self.n} {unit} that have one"

    def to_spec(self) -> dict[str, Any]:
        """``{"keep_daily": 7}`` and so on."""
        return {self._spec_key: self.n}


@attrs.frozen(repr=False)
class KeepLast(RetentionRule):
    """Keep the *n* newest completed points of each target (restic ``--keep-last``).

    Example:
        >>> KeepLast(3).describe()
        'keep the last 3 completed backups'

    Attributes:
        n: How many to keep, >= 1, or -1 for all.
    """

    n: int = _n_field()

    def __repr__(self) -> str:
        return f"KeepLast({self.n})"

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        for group in prepared.groups:
            ids = group.good_ids
            stop = len(ids) if self.n == -1 else min(self.n, len(ids))
            for index in range(stop):
                _add(out, ids[index], f"last {index + 1}")

    def describe(self) -> str:
        """Human words: ``"keep the last 3 completed backups"``."""
        if self.n == -1:
            return "keep every completed backup"
        if self.n == 1:
            return "keep the last completed backup"
        return f"keep the last {self.n} completed backups"

    def to_spec(self) -> dict[str, Any]:
        """``{"keep_last": n}``."""
        return {"keep_last": self.n}


@attrs.frozen(repr=False)
class KeepHourly(_CountRule):
    """Keep the newest completed point of each of the last *n* hours that have one.

    Attributes:
        n: How many hours, >= 1, or -1 for all.
    """

    _period: ClassVar[str] = "hour"
    _spec_key: ClassVar[str] = "keep_hourly"


@attrs.frozen(repr=False)
class KeepDaily(_CountRule):
    """Keep the newest completed point of each of the last *n* days that have one (restic ``--keep-daily``).

    Only days with a completed point count, so ``KeepDaily(7)`` over a target that was
    backed up every other day reaches 14 days back. While budget is left, the oldest
    completed point is kept too (reason ``"oldest daily ..."``).

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> from backuppolicy import RecoveryPoint
        >>> now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        >>> points = [RecoveryPoint(id=f"s{i}", target="db", created_at=now - timedelta(hours=12 * i))
        ...           for i in range(4)]
        >>> KeepDaily(7).keep(points, now=now)
        {'s0': ['daily 2026-11-26'], 's1': ['daily 2026-11-25'], 's3': ['daily 2026-11-24']}

    Attributes:
        n: How many days, >= 1, or -1 for all.
    """

    _period: ClassVar[str] = "day"
    _spec_key: ClassVar[str] = "keep_daily"


@attrs.frozen(repr=False)
class KeepWeekly(_CountRule):
    """Keep the newest completed point of each of the last *n* ISO weeks that have one.

    Weeks run Monday to Sunday and are named by ISO year and week (``"weekly 2026-W53"``
    covers 28 December 2026 to 3 January 2027).

    Attributes:
        n: How many weeks, >= 1, or -1 for all.
    """

    _period: ClassVar[str] = "week"
    _spec_key: ClassVar[str] = "keep_weekly"


@attrs.frozen(repr=False)
class KeepMonthly(_CountRule):
    """Keep the newest completed point of each of the last *n* calendar months that have one.

    Attributes:
        n: How many months, >= 1, or -1 for all.
    """

    _period: ClassVar[str] = "month"
    _spec_key: ClassVar[str] = "keep_monthly"


@attrs.frozen(repr=False)
class KeepYearly(_CountRule):
    """Keep the newest completed point of each of the last *n* calendar years that have one.

    Attributes:
        n: How many years, >= 1, or -1 for all.
    """

    _period: ClassVar[str] = "year"
    _spec_key: ClassVar[str] = "keep_yearly"


def _duration_arg(name: str, duration: object, parts: Mapping[str, int]) -> Duration:
    if duration is not None and any(parts.values()):
        given = ", ".join(f"{k}={v}" for k, v in parts.items() if v)
        raise PolicyError.for_field(
            name, "either a duration or keyword parts, not both", f"{duration!r} and {given}"
        )
    if duration is None:
        try:
            value = Duration(**parts)
        except PolicyError as exc:
            raise PolicyError.for_field(f"{name}.{exc.path}", "an integer >= 0", exc.got) from None
    else:
        value = Duration.coerce(duration, field=name)
    if value.is_zero:
        raise PolicyError.for_field(name, "a duration longer than zero", str(value))
    return value


def _check_per(per: object) -> str | None:
    if per is None or (isinstance(per, str) and per in _PERIODS):
        return per
    raise PolicyError.for_field("per", "None or one of " + ", ".join(map(repr, _PERIODS)), per)


@attrs.frozen(init=False, repr=False)
class KeepWithin(RetentionRule):
    """Keep points within *duration* of the newest completed point (restic ``--keep-within``).

    The reference is the target's newest completed point that is not in the future, not
    ``now``: a target whose backups stopped a month ago keeps its last week of backups.
    A point is inside the window when it is strictly newer than ``reference - duration``
    (calendar-aware, stepped in the policy's time zone). Without *per* every point inside
    is kept, whatever its status; with ``per="day"`` (``"hour"``, ``"week"``, ``"month"``,
    ``"year"``) only the newest completed point of each such period inside the window
    (restic ``--keep-within-daily`` ...), plus the oldest completed point if it lies inside.
    A target without any completed point has no reference: the window is then unbounded,
    as in restic.

    Example:
        >>> KeepWithin("7d").describe()
        'keep every backup less than 7 days older than the newest completed backup'
        >>> KeepWithin(days=30, per="week")
        KeepWithin('30d', per='week')

    Attributes:
        duration: The window, a `backuppolicy.Duration`.
        per: ``None`` or the period of which to keep one point.
    """

    duration: Duration
    per: str | None

    def __init__(
        self,
        duration: Duration | str | timedelta | None = None,
        *,
        per: str | None = None,
        years: int = 0,
        months: int = 0,
        days: int = 0,
        hours: int = 0,
    ) -> None:
        parts = {"years": years, "months": months, "days": days, "hours": hours}
        self.__attrs_init__(_duration_arg("duration", duration, parts), _check_per(per))

    def __repr__(self) -> str:
        per = f", per={self.per!r}" if self.per else ""
        return f"KeepWithin({str(self.duration)!r}{per})"

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        tz = prepared.tz
        if self.per is None:
            reason = f"within {self.duration}"
            for group in prepared.groups:
                cutoff = None if group.ref is None else _cutoff(self.duration, group.ref, tz)
                created = group.created
                stop = len(created) if cutoff is None else _count_after(created, cutoff)
                _add_all(out, group.ids[:stop], reason)
            return
        prefix = f"{_ADJECTIVE[self.per]} within {self.duration}"
        for group in prepared.groups:
            cutoff = None if group.ref is None else _cutoff(self.duration, group.ref, tz)
            created = group.good_created
            stop = len(created) if cutoff is None else _count_after(created, cutoff)
            _keep_heads(
                out,
                group.good_ids,
                created,
                stop=stop,
                budget=-1,
                per=self.per,
                tz=tz,
                prefix=prefix,
            )

    def describe(self) -> str:
        """Human words for the policy document."""
        words = self.duration.describe()
        if self.per is None:
            return f"keep every backup less than {words} older than the newest completed backup"
        return (
            f"keep the newest completed backup of each {self.per} less than {words} older "
            "than the newest completed backup"
        )

    def to_spec(self) -> dict[str, Any]:
        """``{"keep_within": "7d"}`` or ``{"keep_within_daily": "7d"}`` and so on."""
        key = "keep_within" if self.per is None else f"keep_within_{_ADJECTIVE[self.per]}"
        return {key: str(self.duration)}


@attrs.frozen(init=False, repr=False)
class MaxAge(RetentionRule):
    """Keep every point younger than *duration*, measured from ``now`` (the seed's "35 days").

    A point is kept when it was created strictly after ``now - duration``; so with
    ``MaxAge(days=35)`` a point exactly 35 days old is **not** kept, one a microsecond
    younger is. Days, months and years step on the calendar of the policy's time zone, so
    "35 days" before 12:00 is 12:00 local time 35 days earlier, even across a DST change.
    Any status counts: a failed backup younger than 35 days is kept too. Points that no
    rule keeps get the delete reason ``"older than 35d"``.

    Example:
        >>> MaxAge(days=35)
        MaxAge('35d')
        >>> MaxAge("35d").describe()
        'keep every backup younger than 35 days'

    Attributes:
        duration: The maximum age, a `backuppolicy.Duration`.
    """

    duration: Duration

    def __init__(
        self,
        duration: Duration | str | timedelta | None = None,
        *,
        years: int = 0,
        months: int = 0,
        weeks: int = 0,
        days: int = 0,
        hours: int = 0,
    ) -> None:
        parts = {"years": years, "months": months, "weeks": weeks, "days": days, "hours": hours}
        self.__attrs_init__(_duration_arg("duration", duration, parts))

    def __repr__(self) -> str:
        return f"MaxAge({str(self.duration)!r})"

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        cutoff = _cutoff(self.duration, prepared.now, prepared.tz)
        reason = f"younger than {self.duration}"
        for group in prepared.groups:
            created = group.created
            stop = len(created) if cutoff is None else _count_after(created, cutoff)
            _add_all(out, group.ids[:stop], reason)

    def _delete_reasons(self) -> list[str]:
        return [f"older than {self.duration}"]

    def describe(self) -> str:
        """Human words: ``"keep every backup younger than 35 days"``."""
        return f"keep every backup younger than {self.duration.describe()}"

    def to_spec(self) -> dict[str, Any]:
        """``{"max_age": "35d"}``."""
        return {"max_age": str(self.duration)}


_TagSet: TypeAlias = tuple[tuple[str, str | None], ...]


def _tag_set(value: object, where: str) -> _TagSet:
    expected = "a non-empty list of tag keys or a mapping of tag key to value"
    items: list[tuple[str, str | None]]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(key, None) for key in value]
    else:
        raise PolicyError.for_field(where, expected, value)
    if not items:
        raise PolicyError.for_field(where, expected, value)
    for key, required in items:
        if (
            not isinstance(key, str)
            or not key
            or not (required is None or isinstance(required, str))
        ):
            raise PolicyError.for_field(where, expected, value)
    return tuple(items)


def _tags_words(tag_set: _TagSet) -> str:
    return ", ".join(key if value is None else f"{key}={value}" for key, value in tag_set)


@attrs.frozen(init=False, repr=False)
class KeepTags(RetentionRule):
    """Keep every point that carries all tags of at least one set (restic ``--keep-tag``).

    A set is a list of tag keys (any value matches) or a mapping of key to required value.
    Any status counts. The reason names the set: ``"has tags [legal, audit]"``.

    Example:
        >>> KeepTags(["keep"], {"env": "prod", "tier": "gold"})
        KeepTags(['keep'], {'env': 'prod', 'tier': 'gold'})

    Attributes:
        sets: The tag sets, each a tuple of ``(key, required value or None)``.
    """

    sets: tuple[_TagSet, ...]

    def __init__(self, *sets: Iterable[str] | Mapping[str, str]) -> None:
        if not sets:
            raise PolicyError.for_field("sets", "at least one tag set", ())
        self.__attrs_init__(tuple(_tag_set(s, f"sets[{i}]") for i, s in enumerate(sets)))

    def __repr__(self) -> str:
        return f"KeepTags({', '.join(repr(s) for s in self._plain())})"

    def _plain(self) -> list[list[str] | dict[str, str]]:
        plain: list[list[str] | dict[str, str]] = []
        for tag_set in self.sets:
            if all(value is None for _, value in tag_set):
                plain.append([key for key, _ in tag_set])
            else:
                plain.append({key: value or "" for key, value in tag_set})
        return plain

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        checks = [(tag_set, f"has tags [{_tags_words(tag_set)}]") for tag_set in self.sets]
        for point in prepared.iter_points():
            tags = point.tags
            if not tags:
                continue
            for tag_set, reason in checks:
                if all(
                    key in tags and (value is None or tags[key] == value) for key, value in tag_set
                ):
                    _add(out, point.id, reason)

    def describe(self) -> str:
        """Human words: ``"keep every backup tagged keep, or tagged env=prod"``."""
        return "keep every backup tagged " + ", or tagged ".join(
            _tags_words(tag_set) for tag_set in self.sets
        )

    def to_spec(self) -> dict[str, Any]:
        """``{"keep_tags": [[...] or {...}, ...]}``."""
        return {"keep_tags": self._plain()}


@attrs.frozen(repr=False)
class _CallableRule(RetentionRule):
    """A plain callable ``f(points, *, now, tz) -> {id: [reasons]}`` used as a rule."""

    func: Callable[..., Mapping[str, list[str]]]

    def __repr__(self) -> str:
        return f"as_rule({self._name()})"

    def _name(self) -> str:
        return str(getattr(self.func, "__qualname__", None) or repr(self.func))

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        points = list(prepared.iter_points())
        known = {point.id for point in points}
        result = self.func(points, now=prepared.now, tz=prepared.tz)
        for pid, reasons in result.items():
            if pid not in known:
                raise ValueError(
                    f"retention callable {self._name()} kept an unknown point id {pid!r}."
                )
            for reason in reasons or [f"kept by {self._name()}"]:
                _add(out, pid, str(reason))

    def describe(self) -> str:
        """Human words: ``"keep what my_rule keeps"``."""
        return f"keep what {self._name()} keeps"

    def to_spec(self) -> dict[str, Any]:
        """A callable has no spec form.

        Raises:
            PolicyError: Always.
        """
        raise PolicyError.for_field(
            "retention", "a built-in rule (a callable has no spec)", self.func
        )


def as_rule(rule: RetentionRuleT) -> RetentionRule:
    """Return *rule* if it is a `RetentionRule`, else wrap the plain callable as one.

    The callable is called once per evaluation as ``func(points, now=now, tz=tz)`` with
    every point (all targets, each target's points newest first; *now* in UTC, *tz* a
    ``tzinfo``) and returns ``{point.id: [reasons]}`` for the points it keeps.

    Raises:
        PolicyError: *rule* is neither a rule nor callable.

    Example:
        >>> def keep_manual(points, *, now, tz):
        ...     return {p.id: ["manual"] for p in points if p.tags.get("backuppolicy:reason") == "manual"}
        >>> rule = KeepDaily(7) | keep_manual
        >>> rule.describe()
        'keep the newest completed backup of each of the last 7 days that have one; keep what keep_manual keeps'
    """
    if isinstance(rule, RetentionRule):
        return rule
    if callable(rule):
        return _CallableRule(rule)
    raise PolicyError.for_field("rule", "a RetentionRule or a callable", rule)


def _flatten(rules: Iterable[RetentionRuleT]) -> tuple[RetentionRule, ...]:
    flat: list[RetentionRule] = []
    for rule in rules:
        wrapped = as_rule(rule)
        if isinstance(wrapped, AnyOf):
            flat.extend(wrapped.rules)
        else:
            flat.append(wrapped)
    return tuple(flat)


@attrs.frozen(init=False, repr=False)
class AnyOf(RetentionRule):
    """The union of rules: a point is kept if any rule keeps it, with every rule's reasons.

    ``a | b`` builds an ``AnyOf``; nested unions are flattened, so ``a | b | c`` is
    ``AnyOf(a, b, c)``. ``AnyOf()`` keeps nothing.

    Example:
        >>> KeepDaily(7) | KeepWeekly(4) | MaxAge(days=35)
        AnyOf(KeepDaily(7), KeepWeekly(4), MaxAge('35d'))

    Attributes:
        rules: The rules, in the order their reasons are listed.
    """

    rules: tuple[RetentionRule, ...]

    def __init__(self, *rules: RetentionRuleT) -> None:
        self.__attrs_init__(_flatten(rules))

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.rules))})"

    def _apply(self, prepared: _Prepared, out: _Out) -> None:
        for rule in self.rules:
            rule._apply(prepared, out)  # noqa: SLF001 - same class family

    def _delete_reasons(self) -> list[str]:
        return [reason for rule in self.rules for reason in rule._delete_reasons()]  # noqa: SLF001

    def describe(self) -> str:
        """The rules' descriptions joined by ``"; "``."""
        return "; ".join(rule.describe() for rule in self.rules) or "keep nothing"

    def to_spec(self) -> dict[str, Any]:
        """Merge the rules' specs (``keep_tags`` lists are concatenated).

        Raises:
            PolicyError: Two rules write the same key (``KeepDaily(7) | KeepDaily(3)``).
        """
        spec: dict[str, Any] = {}
        for rule in self.rules:
            for key, value in rule.to_spec().items():
                if key == "keep_tags" and key in spec:
                    spec[key] = [*spec[key], *value]
                elif key in spec:
                    raise PolicyError.for_field(
                        f"retention.{key}",
                        "at most one rule per option",
                        f"{spec[key]!r} and {value!r}",
                    )
                else:
                    spec[key] = value
        return spec


# --------------------------------------------------------------------------------------
# rule_from_spec
# --------------------------------------------------------------------------------------

_COUNT_KEYS: dict[str, type[RetentionRule]] = {
    "keep_last": KeepLast,
    "keep_hourly": KeepHourly,
    "keep_daily": KeepDaily,
    "keep_weekly": KeepWeekly,
    "keep_monthly": KeepMonthly,
    "keep_yearly": KeepYearly,
}
_WITHIN_KEYS = {f"keep_within_{_ADJECTIVE[per]}": per for per in _PERIODS}
_SPEC_KEYS = ("max_age", *_COUNT_KEYS, "keep_within", *_WITHIN_KEYS, "keep_tags")


def _spec_count(value: object, where: str) -> int:
    if value == "unlimited":
        return -1
    return _check_count(where, value)


def _spec_duration(value: object, where: str) -> Duration:
    duration = Duration.coerce(value, field=where)
    if duration.is_zero:
        raise PolicyError.for_field(where, "a duration longer than zero", value)
    return duration


def _spec_tags(value: object, where: str) -> KeepTags:
    expected = "a list of tag sets, each a list of tag keys or a mapping of key to value"
    if not isinstance(value, (list, tuple)) or not value:
        raise PolicyError.for_field(where, expected, value)
    for index, item in enumerate(value):
        _tag_set(item, f"{where}[{index}]")
    return KeepTags(*value)


def rule_from_spec(spec: Mapping[str, Any], *, path: str = "retention") -> RetentionRule:
    """Build a rule from a policy file's ``retention`` mapping.

    Keys: ``max_age`` (``"35d"``), ``keep_last``, ``keep_hourly``, ``keep_daily``,
    ``keep_weekly``, ``keep_monthly``, ``keep_yearly`` (integers >= 1, or -1 or
    ``"unlimited"``), ``keep_within`` and ``keep_within_hourly`` ... ``keep_within_yearly``
    (durations), ``keep_tags`` (a list of tag sets). One key gives that rule; several give
    an `AnyOf` in the order of the mapping.

    Args:
        spec: The mapping.
        path: Where the mapping sits in the policy, for error messages.

    Raises:
        PolicyError: The mapping is empty (a policy that keeps nothing is refused: it would
            delete every backup), has an unknown key (with a "did you mean" suggestion), or
            a value is invalid; the error names the field, e.g. ``retention.keep_daily``.

    Example:
        >>> rule_from_spec({"max_age": "35d", "keep_monthly": 12})
        AnyOf(MaxAge('35d'), KeepMonthly(12))
        >>> rule_from_spec({"keep_dayly": 7})
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: retention.keep_dayly: expected one of max_age, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_within_hourly, keep_within_daily, keep_within_weekly, keep_within_monthly, keep_within_yearly, keep_tags (got 'keep_dayly'); did you mean 'keep_daily'?
    """
    if not isinstance(spec, Mapping):
        raise PolicyError.for_field(path, "a mapping of retention options", spec)
    if not spec:
        raise PolicyError(
            f"{path}: expected at least one retention option (got {{}}). A policy that keeps "
            "nothing is refused: it would delete every backup. Set max_age, keep_daily, ...",
            path=path,
            expected="at least one retention option",
            got={},
        )
    rules: list[RetentionRule] = []
    for key, value in spec.items():
        where = _cut_path(f"{path}.{key}")
        if key == "max_age":
            rules.append(MaxAge(_spec_duration(value, where)))
        elif key in _COUNT_KEYS:
            rules.append(_COUNT_KEYS[key](_spec_count(value, where)))  # type: ignore[call-arg]
        elif key == "keep_within":
            rules.append(KeepWithin(_spec_duration(value, where)))
        elif key in _WITHIN_KEYS:
            rules.append(KeepWithin(_spec_duration(value, where), per=_WITHIN_KEYS[key]))
        elif key == "keep_tags":
            rules.append(_spec_tags(value, where))
        else:
            expected = "one of " + ", ".join(_SPEC_KEYS)
            close = difflib.get_close_matches(str(key), _SPEC_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise PolicyError(
                f"{where}: expected {expected} (got {short_repr(key)}){hint}",
                path=where,
                expected=expected,
                got=key,
            )
    return rules[0] if len(rules) == 1 else AnyOf(*rules)


# --------------------------------------------------------------------------------------
# The planner and its result.
# --------------------------------------------------------------------------------------


def _plan(
    rule: RetentionRule, points: Iterable[RecoveryPoint], *, now: datetime, tz: tzinfo
) -> RetentionPlan:
    with _gc_paused():
        # _plan_body's temporaries (rows, columns) are freed when it returns, before the
        # collector resumes: it then only meets the plan's own lists.
        return _plan_body(rule, points, now=now, tz=tz)


def _plan_body(
    rule: RetentionRule, points: Iterable[RecoveryPoint], *, now: datetime, tz: tzinfo
) -> RetentionPlan:
    groups = _group_points(points, check_ids=False)
    managed_groups = [group.managed_only() for group in groups]
    kept: _Out = {}
    rule._apply(_Prepared(managed_groups, now, tz), kept)  # noqa: SLF001 - same family
    for group in managed_groups:
        if group.ref_index >= 0:
            pid = group.good_ids[group.ref_index]
            _add(kept, pid, f"newest completed point of {group.target}")
    base = tuple(rule._delete_reasons() or [_NOT_KEPT])  # noqa: SLF001
    keep: list[RecoveryPoint] = []
    delete: list[RecoveryPoint] = []
    reasons: dict[str, list[str]] = {}
    total = 0
    for group in groups:
        _apply_floors(group, kept, now)
        ids, group_points = group.ids, group.points
        total += len(ids)
        mask = list(map(kept.__contains__, ids))
        inverse = list(map(operator.not_, mask))
        keep.extend(itertools.compress(group_points, mask))
        delete.extend(itertools.compress(group_points, inverse))
        delete_ids = list(itertools.compress(ids, inverse))
        reasons.update(
            zip(delete_ids, map(list, itertools.repeat(base, len(delete_ids))), strict=True)
        )
        if group.good_mask is not None:  # some points are not completed
            for index in itertools.compress(range(len(ids)), map(operator.not_, group.good_mask)):
                if inverse[index]:
                    reasons[ids[index]].append(f"{group.statuses[index].value} backup")
    reasons.update(kept)
    if len(reasons) != total:  # a duplicate id collapsed two entries
        _raise_duplicate([pid for group in groups for pid in group.ids])
    return RetentionPlan(keep=keep, delete=delete, reasons=reasons, now=now)


def _apply_floors(group: _Group, kept: _Out, now: datetime) -> None:
    """Add the planner's reasons (hold, pending, future, unmanaged) to *kept*."""
    future = _count_after(group.created, now)
    for index in group.special_indices(future):
        extra = _floors(group.points[index], future=index < future)
        pid = group.ids[index]
        got = kept.get(pid)
        kept[pid] = extra if got is None else [*got, *extra]


def _floors(point: RecoveryPoint, *, future: bool) -> list[str]:
    """The planner's own keep reasons for *point* (hold, pending, future, unmanaged)."""
    extra = []
    if point.legal_hold is not None:
        extra.append(point.legal_hold.describe())
    if point.status is _PENDING:
        extra.append(_PENDING_REASON)
    if future:
        extra.append(_FUTURE)
    if not point.managed:
        extra.append(_UNMANAGED)
    return extra


def _row(action: str, point: RecoveryPoint, reasons: Sequence[str]) -> tuple[str, ...]:
    return (
        action,
        point.target,
        point.id,
        _utc(point.created_at).isoformat(timespec="seconds"),
        point.status.value,
        "; ".join(reasons),
    )


_HEADER = ("action", "target", "id", "created (UTC)", "status", "reasons")


@attrs.frozen(repr=False)
class RetentionPlan:
    """The result of planning: every point is in exactly one of ``keep`` and ``delete``.

    Both lists are ordered by target name, then newest first (ties: `RecoveryPoint.order_key`).
    ``reasons`` has at least one reason for every point, keep or delete.

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> from backuppolicy import RecoveryPoint
        >>> now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        >>> points = [RecoveryPoint(id=f"s{i}", target="db", created_at=now - timedelta(days=20 * i))
        ...           for i in range(3)]
        >>> plan = MaxAge(days=35).plan(points, now=now)
        >>> plan
        <backuppolicy.RetentionPlan(keep=2, delete=1)>
        >>> plan.reasons["s2"]
        ['older than 35d']

    Attributes:
        keep: The points to keep.
        delete: The points to delete.
        reasons: ``{point.id: [reasons]}`` for every point.
        now: The time the plan was made for (UTC).
        targets: The targets whose listings the plan was made from, by name, so that
            `backuppolicy.apply` can re-check and delete; empty for plans of bare rules.
        errors: ``{target: error}`` for targets whose listing failed: nothing of them is in the
            plan, so nothing of them is deleted.
    """

    keep: list[RecoveryPoint]
    delete: list[RecoveryPoint]
    reasons: dict[str, list[str]]
    now: datetime
    targets: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False, kw_only=True)
    errors: Mapping[str, str] = attrs.field(factory=dict, eq=False, kw_only=True)

    def __repr__(self) -> str:
        return f"<backuppolicy.RetentionPlan(keep={len(self.keep)}, delete={len(self.delete)})>"

    @classmethod
    def combine(cls, plans: Iterable[RetentionPlan]) -> Self:
        """Merge plans of different targets or tiers made for the same *now* into one.

        Points are ordered as in a plan (target name, then newest first); ``targets`` and
        ``errors`` are merged too.

        Raises:
            ValueError: No plans, plans for different times, or a point id in two plans.
        """
        plans = list(plans)
        if not plans:
            raise ValueError("plans: expected at least one RetentionPlan (got none).")
        now = plans[0].now
        reasons: dict[str, list[str]] = {}
        keep: list[RecoveryPoint] = []
        delete: list[RecoveryPoint] = []
        targets: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for plan in plans:
            if plan.now != now:
                raise ValueError(
                    f"plans: expected plans made for the same now {now.isoformat()} "
                    f"(got {plan.now.isoformat()})."
                )
            for pid in plan.reasons:
                if pid in reasons:
                    raise ValueError(
                        f"plans: recovery point id {pid!r} appears in more than one plan."
                    )
            reasons.update(plan.reasons)
            keep.extend(plan.keep)
            delete.extend(plan.delete)
            targets.update(plan.targets)
            errors.update(plan.errors)
        return cls(
            keep=_plan_order(keep),
            delete=_plan_order(delete),
            reasons=reasons,
            now=now,
            targets=targets,
            errors=errors,
        )

    def rows(self, limit: int | None = None) -> list[tuple[str, ...]]:
        """Table rows ``(action, target, id, created, status, reasons)``: deletes, then keeps.

        Args:
            limit: At most this many rows (``None``: all).
        """
        rows: list[tuple[str, ...]] = []
        for action, points in (("delete", self.delete), ("keep", self.keep)):
            for point in points:
                if limit is not None and len(rows) >= limit:
                    return rows
                rows.append(_row(action, point, self.reasons[point.id]))
        return rows

    def _title(self) -> str:
        return (
            f"Retention plan at {self.now.isoformat()}: "
            f"keep {len(self.keep)}, delete {len(self.delete)}"
        )

    def _more(self, shown: int) -> str:
        rest = len(self.keep) + len(self.delete) - shown
        return f"... and {rest} more" if rest > 0 else ""

    def summary(self, limit: int | None = None) -> str:
        """A plain-text table of the plan, deletes first.

        Args:
            limit: Show at most this many rows (``None``: all).
        """
        rows = [_HEADER, *self.rows(limit)]
        widths = [max(len(row[col]) for row in rows) for col in range(len(_HEADER))]
        lines = [self._title()]
        lines.extend(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )
        more = self._more(len(rows) - 1)
        if more:
            lines.append(more)
        return "\n".join(lines)

    def _repr_html_(self, limit: int = 200) -> str:
        """HTML table for notebooks, every value escaped, with a ``<pre>`` text fallback."""
        rows = self.rows(limit)
        esc = html.escape
        head = "".join(f"<th>{esc(cell)}</th>" for cell in _HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        more = self._more(len(rows))
        more_html = f"<p>{esc(more)}</p>" if more else ""
        return (
            '<div class="backuppolicy-plan">'
            f"<pre hidden>{esc(self.summary(limit))}</pre>"
            f"<p><strong>{esc(self._title())}</strong></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more_html}</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: ``now``, counts, and ``keep``/``delete`` lists of point dicts."""

        def one(point: RecoveryPoint) -> dict[str, Any]:
            return {
                "id": point.id,
                "target": point.target,
                "created_at": _utc(point.created_at).isoformat(),
                "status": point.status.value,
                "tier": point.tier,
                "reasons": list(self.reasons[point.id]),
            }

        return {
            "now": self.now.isoformat(),
            "counts": {"keep": len(self.keep), "delete": len(self.delete)},
            "keep": [one(point) for point in self.keep],
            "delete": [one(point) for point in self.delete],
        }


def _plan_order(points: list[RecoveryPoint]) -> list[RecoveryPoint]:
    ordered = sorted(points, key=_order_key, reverse=True)
    ordered.sort(key=lambda p: p.target)
    return ordered
