"""The built-in retention rules: restic's count rules, `KeepWithin`, `MaxAge` and `KeepTags`.

One idea: each class answers "which points do I keep, and why?" over prepared points.
Re-exported by `backuppolicy.core.retention`, whose docstring states the semantics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import ClassVar, TypeAlias

import attrs

from backuppolicy.core._periods import ADJECTIVE, PERIODS, keep_heads
from backuppolicy.core._prepared import (
    Prepared,
    Reasons,
    add_all,
    add_reason,
    count_after,
    window_start,
)
from backuppolicy.core._rules import RetentionRule
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError

__all__ = [
    "KeepDaily",
    "KeepHourly",
    "KeepLast",
    "KeepMonthly",
    "KeepTags",
    "KeepWeekly",
    "KeepWithin",
    "KeepYearly",
    "MaxAge",
    "TagSet",
    "check_count",
    "tag_set",
]


def check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise PolicyError.for_field(name, "an integer >= 1, or -1 for unlimited", value)
    return value


def _count_validator(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_count(attribute.name, value)


def _n_field() -> int:
    return attrs.field(validator=_count_validator)


@attrs.frozen(repr=False)
class _CountRule(RetentionRule):
    """restic's count rules: keep the newest completed point of each of the last *n* periods."""

    n: int = _n_field()

    _period: ClassVar[str] = "day"
    _spec_key: ClassVar[str] = "keep_daily"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        adjective = ADJECTIVE[self._period]
        for group in prepared.groups:
            keep_heads(
                out,
                group.good_ids,
                group.good_created,
                group.good_kept,
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

    def to_spec(self) -> dict[str, object]:
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

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        for group in prepared.groups:
            ids = group.good_ids
            stop = len(ids) if self.n == -1 else min(self.n, len(ids))
            group.good_kept.extend(range(stop))
            for index in range(stop):
                add_reason(out, ids[index], f"last {index + 1}")

    def describe(self) -> str:
        """Human words: ``"keep the last 3 completed backups"``."""
        if self.n == -1:
            return "keep every completed backup"
        if self.n == 1:
            return "keep the last completed backup"
        return f"keep the last {self.n} completed backups"

    def to_spec(self) -> dict[str, object]:
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
    if per is None or (isinstance(per, str) and per in PERIODS):
        return per
    raise PolicyError.for_field("per", "None or one of " + ", ".join(map(repr, PERIODS)), per)


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

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        tz = prepared.tz
        if self.per is None:
            reason = f"within {self.duration}"
            for group in prepared.groups:
                cutoff = None if group.ref is None else window_start(self.duration, group.ref, tz)
                created = group.created
                stop = len(created) if cutoff is None else count_after(created, cutoff)
                add_all(out, group.ids[:stop], reason)
                group.kept_prefix = max(group.kept_prefix, stop)
            return
        prefix = f"{ADJECTIVE[self.per]} within {self.duration}"
        for group in prepared.groups:
            cutoff = None if group.ref is None else window_start(self.duration, group.ref, tz)
            created = group.good_created
            stop = len(created) if cutoff is None else count_after(created, cutoff)
            keep_heads(
                out,
                group.good_ids,
                created,
                group.good_kept,
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

    def to_spec(self) -> dict[str, object]:
        """``{"keep_within": "7d"}`` or ``{"keep_within_daily": "7d"}`` and so on."""
        key = "keep_within" if self.per is None else f"keep_within_{ADJECTIVE[self.per]}"
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

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        cutoff = window_start(self.duration, prepared.now, prepared.tz)
        reason = f"younger than {self.duration}"
        for group in prepared.groups:
            created = group.created
            stop = len(created) if cutoff is None else count_after(created, cutoff)
            add_all(out, group.ids[:stop], reason)
            group.kept_prefix = max(group.kept_prefix, stop)

    def _delete_reasons(self) -> list[str]:
        return [f"older than {self.duration}"]

    def describe(self) -> str:
        """Human words: ``"keep every backup younger than 35 days"``."""
        return f"keep every backup younger than {self.duration.describe()}"

    def to_spec(self) -> dict[str, object]:
        """``{"max_age": "35d"}``."""
        return {"max_age": str(self.duration)}


TagSet: TypeAlias = tuple[tuple[str, str | None], ...]


def tag_set(value: object, where: str) -> TagSet:
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


def _tags_words(tag_set: TagSet) -> str:
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

    sets: tuple[TagSet, ...]

    def __init__(self, *sets: Iterable[str] | Mapping[str, str]) -> None:
        if not sets:
            raise PolicyError.for_field("sets", "at least one tag set", ())
        self.__attrs_init__(tuple(tag_set(s, f"sets[{i}]") for i, s in enumerate(sets)))

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

    def _apply(self, prepared: Prepared, out: Reasons) -> None:
        checks = [(tag_set, f"has tags [{_tags_words(tag_set)}]") for tag_set in self.sets]
        for group in prepared.groups:
            for index, point in enumerate(group.points):
                tags = point.tags
                if not tags:
                    continue
                for tag_set, reason in checks:
                    if all(
                        key in tags and (value is None or tags[key] == value)
                        for key, value in tag_set
                    ):
                        add_reason(out, point.id, reason)
                        group.kept_at.append(index)

    def describe(self) -> str:
        """Human words: ``"keep every backup tagged keep, or tagged env=prod"``."""
        return "keep every backup tagged " + ", or tagged ".join(
            _tags_words(tag_set) for tag_set in self.sets
        )

    def to_spec(self) -> dict[str, object]:
        """``{"keep_tags": [[...] or {...}, ...]}``."""
        return {"keep_tags": self._plain()}
