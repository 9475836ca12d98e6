"""The retention planner and its result, `RetentionPlan`.

One idea: run a rule over the managed points, add the planner's safety floors (holds, the
newest completed point, pending, future and unmanaged points), and present the result
(text, HTML, JSON). Re-exported by `backuppolicy.core.retention`.
"""

from __future__ import annotations

import bisect
import html
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Self, TypeAlias

import attrs

from backuppolicy.core._prepared import (
    Group,
    Prepared,
    Reasons,
    add_reason,
    count_after,
    gc_paused,
    group_points,
    raise_duplicate,
    utc,
)
from backuppolicy.core.model import RecoveryPoint, Status
from backuppolicy.core.tables import render_table

if TYPE_CHECKING:
    from backuppolicy.core.targets import BackupTarget

__all__ = ["ReasonMap", "RetentionPlan", "plan_points"]

_PENDING = Status.PENDING
_NOT_KEPT = "not kept by any rule"
_FUTURE = "created in the future (clock skew?)"
_UNMANAGED = "not managed by backuppolicy"
_PENDING_REASON = "pending"


_order_key = operator.attrgetter("order_key")
_IDS = operator.attrgetter("ids")

# A rule's evaluation: append its reasons for the points it keeps to the reasons dict.
RuleApply: TypeAlias = Callable[[Prepared, Reasons], None]


def plan_points(
    apply: RuleApply,
    delete_reasons: Sequence[str],
    points: Iterable[RecoveryPoint],
    *,
    now: datetime,
    tz: tzinfo,
) -> RetentionPlan:
    """Plan *points* with a rule's *apply* and its *delete_reasons*, plus the floors.

    *now* is in UTC and *tz* a ``tzinfo``, as `RetentionRule.plan` passes them.
    """
    with gc_paused():
        # _plan_body's temporaries (rows, columns) are freed when it returns, before the
        # collector resumes: it then only meets the plan's own lists.
        return _plan_body(apply, delete_reasons, points, now=now, tz=tz)


def _plan_body(
    apply: RuleApply,
    delete_reasons: Sequence[str],
    points: Iterable[RecoveryPoint],
    *,
    now: datetime,
    tz: tzinfo,
) -> RetentionPlan:
    groups = group_points(points, check_ids=False)
    managed_groups = [group.managed_only() for group in groups]
    kept: Reasons = {}
    apply(Prepared(managed_groups, now, tz), kept)
    for group in managed_groups:
        if group.ref_index >= 0:
            pid = group.good_ids[group.ref_index]
            add_reason(kept, pid, f"newest completed point of {group.target}")
            group.good_kept.append(group.ref_index)
    base = tuple(delete_reasons or [_NOT_KEPT])
    specials = [_apply_floors(group, kept, now) for group in groups]
    # Every point not kept is deleted for the base reasons: the plan's reasons store those
    # once (one shared tuple) with the ids in plan order, not a million dict entries. Only
    # kept and failed points get entries of their own. The set of every id finds duplicate
    # ids; the plan does not keep it (`_PlanReasons` builds its own when first asked).
    order = list(map(_IDS, groups))
    total = sum(map(len, order))
    if len(set(itertools.chain.from_iterable(order))) != total:
        raise_duplicate(list(itertools.chain.from_iterable(order)))
    bads = [group.bad for group in groups]
    kept_ats = _marked(groups, managed_groups, specials, bads, kept)
    if kept_ats is None:  # a rule kept points without marking them: look every id up
        is_kept = set(kept).__contains__
        kept_ats = [list(itertools.compress(range(len(ids)), map(is_kept, ids))) for ids in order]
    keep: list[RecoveryPoint] = []
    delete: list[RecoveryPoint] = []
    failed: dict[str, tuple[str, ...]] = {}
    for group, kept_at in zip(groups, kept_ats, strict=True):
        _split(group.points, kept_at, keep, delete)
        ids = group.ids
        points = group.points
        for index in group.bad:
            pid = ids[index]
            if pid not in kept:
                status = points[index].status.value
                extra = failed.get(status)
                if extra is None:
                    extra = failed[status] = (*base, f"{status} backup")
                kept[pid] = extra  # from here on, kept holds the failed points too
    reasons = _PlanReasons(kept, base, order, total)
    return RetentionPlan(keep=keep, delete=delete, reasons=reasons, now=now)


def _split(
    members: list[RecoveryPoint],
    kept_at: list[int],
    keep: list[RecoveryPoint],
    delete: list[RecoveryPoint],
) -> None:
    """Append ``members[i]`` for *kept_at* (ascending) to *keep*, every other member to *delete*.

    The kept points are few and mostly in runs, so the deleted ones are copied as slices.
    """
    keep.extend(map(members.__getitem__, kept_at))
    start = 0
    for index in kept_at:
        if index > start:
            delete.extend(members[start:index])
        start = index + 1
    delete.extend(members[start:])


def _apply_floors(group: Group, kept: Reasons, now: datetime) -> list[int]:
    """Add the planner's reasons (hold, pending, future, unmanaged) to *kept*.

    Returns the indices of the points they keep.
    """
    future = count_after(group.created, now)
    special = group.special_indices(future)
    for index in special:
        extra = _floors(group.points[index], future=index < future)
        pid = group.ids[index]
        got = kept.get(pid)
        kept[pid] = extra if got is None else (*got, *extra)
    return special


def _marked(
    groups: list[Group],
    ruled: list[Group],
    specials: list[list[int]],
    bads: list[list[int]],
    kept: Reasons,
) -> list[list[int]] | None:
    """Each group's kept indices from the marks the rules left, or None if they fall short.

    The marks are only trusted when they tell exactly which points *kept* names: every
    marked point is in *kept*, and there are as many as *kept* has entries (ids are
    unique). A rule that keeps points without marking them (a subclass of our own, a
    rule that saw only the managed points) fails that check, and the planner looks
    every id up instead.
    """
    result: list[list[int]] = []
    total = 0
    for group, seen, special, bad in zip(groups, ruled, specials, bads, strict=True):
        if seen is not group:  # the rules saw the managed points only: other indices
            return None
        marks = set(range(group.kept_prefix))
        marks.update(group.kept_at, special)
        good = group.good_kept
        if bad:  # good index g is index g + (the number of bad points before it)
            goods_before = [index - rank for rank, index in enumerate(bad)]
            good = [g + bisect.bisect_right(goods_before, g) for g in good]
        marks.update(good)
        kept_at = sorted(marks)
        ids = group.ids
        if not all(map(kept.__contains__, map(ids.__getitem__, kept_at))):
            return None
        total += len(kept_at)
        result.append(kept_at)
    return result if total == len(kept) else None


def _floors(point: RecoveryPoint, *, future: bool) -> tuple[str, ...]:
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
    return tuple(extra)


def _row(action: str, point: RecoveryPoint, reasons: Sequence[str]) -> tuple[str, ...]:
    return (
        action,
        point.target,
        point.id,
        utc(point.created_at).isoformat(timespec="seconds"),
        point.status.value,
        "; ".join(reasons),
    )


_HEADER = ("action", "target", "id", "created (UTC)", "status", "reasons")


class ReasonMap(Mapping[str, list[str]]):
    """The reasons of a plan, ``{point.id: [reasons]}``: read-only, a fresh list per lookup.

    Points with the same reasons share one stored tuple, so a plan of 10^6 points keeps a
    handful of reason lists, not a million. Lookups return a new ``list`` every time, so a
    caller that edits one changes nothing in the plan.

    Example:
        >>> reasons = ReasonMap({"s1": ("older than 35d",)})
        >>> reasons["s1"]
        ['older than 35d']
        >>> dict(reasons)
        {'s1': ['older than 35d']}
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Sequence[str]]) -> None:
        self._data: Mapping[str, Sequence[str]] = data

    def __getitem__(self, key: str) -> list[str]:
        return list(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ReasonMap({len(self._data)} points)"

    def stored(self) -> Mapping[str, Sequence[str]]:
        """The underlying ``{point.id: reasons}`` (shared tuples; do not mutate)."""
        return self._data


class _PlanReasons(ReasonMap):
    """A plan's reasons: *explicit* ones for some points, *default* for every other point.

    *order* holds the ids in plan order (one list per target) and *total* their number,
    so that a 10^6-point plan stores one tuple for the points it deletes for the rule's
    reasons, not one dict entry each. The set of every id, which only a lookup of a point
    without explicit reasons needs, is built on the first such lookup.
    """

    __slots__ = ("_default", "_everyone", "_order", "_total")

    def __init__(
        self,
        explicit: Mapping[str, Sequence[str]],
        default: tuple[str, ...],
        order: list[list[str]],
        total: int,
    ) -> None:
        super().__init__(explicit)
        self._default = default
        self._order = order
        self._total = total
        self._everyone: AbstractSet[str] | None = None

    def _all(self) -> AbstractSet[str]:
        everyone = self._everyone
        if everyone is None:
            everyone = self._everyone = set(itertools.chain.from_iterable(self._order))
        return everyone

    def __getitem__(self, key: str) -> list[str]:
        found = self._data.get(key)
        if found is not None:
            return list(found)
        if key in self._all():
            return list(self._default)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data or key in self._all()

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._order)

    def __len__(self) -> int:
        return self._total

    def stored(self) -> Mapping[str, Sequence[str]]:
        """Every ``{point.id: reasons}``, in plan order (shared tuples; do not mutate)."""
        data: dict[str, Sequence[str]] = dict.fromkeys(self, self._default)
        data.update(self._data)
        return data


def _reason_map(value: Mapping[str, Sequence[str]]) -> ReasonMap:
    if isinstance(value, ReasonMap):
        return value
    return ReasonMap({pid: tuple(reasons) for pid, reasons in value.items()})


@attrs.frozen(repr=False)
class RetentionPlan:
    """The result of planning: every point is in exactly one of ``keep`` and ``delete``.

    Both lists are ordered by target name, then newest first (ties: `RecoveryPoint.order_key`).
    ``reasons`` has at least one reason for every point, keep or delete.

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> from backuppolicy import MaxAge, RecoveryPoint
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
        reasons: ``{point.id: [reasons]}`` for every point, a read-only `ReasonMap` (any
            mapping of reason sequences passed in is converted).
        now: The time the plan was made for (UTC).
        targets: The targets whose listings the plan was made from, by name, so that
            `backuppolicy.apply` can re-check and delete; empty for plans of bare rules.
        errors: ``{target: error}`` for targets whose listing failed: nothing of them is in the
            plan, so nothing of them is deleted.
    """

    keep: list[RecoveryPoint]
    delete: list[RecoveryPoint]
    reasons: Mapping[str, list[str]] = attrs.field(converter=_reason_map)
    now: datetime = attrs.field()
    targets: Mapping[str, BackupTarget] = attrs.field(
        factory=dict, eq=False, repr=False, kw_only=True
    )
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
        reasons: dict[str, Sequence[str]] = {}
        keep: list[RecoveryPoint] = []
        delete: list[RecoveryPoint] = []
        targets: dict[str, BackupTarget] = {}
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
            reasons.update(_reason_map(plan.reasons).stored())
            keep.extend(plan.keep)
            delete.extend(plan.delete)
            targets.update(plan.targets)
            errors.update(plan.errors)
        return cls(
            keep=_plan_order(keep),
            delete=_plan_order(delete),
            reasons=ReasonMap(reasons),
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
        """A text table of the plan, deletes first, fitted to the terminal (`render_table`).

        Args:
            limit: Show at most this many rows (``None``: all).
        """
        rows = self.rows(limit)
        lines = [self._title()]
        if rows:
            lines.append(render_table(_HEADER, rows))
        more = self._more(len(rows))
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

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable dict: ``now``, counts, and ``keep``/``delete`` lists of point dicts."""

        def one(point: RecoveryPoint) -> dict[str, object]:
            return {
                "id": point.id,
                "target": point.target,
                "created_at": utc(point.created_at).isoformat(),
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
