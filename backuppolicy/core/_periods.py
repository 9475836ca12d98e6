"""Periods of local wall-clock time for the retention rules, and restic's bucket walk.

One idea: an int key per hour, day, ISO week, month and year of a time zone's wall
clock, its label and its start, and `keep_heads`, which keeps the newest point of each
period. Private to `backuppolicy.core.retention`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo

from backuppolicy.core._prepared import Reasons, add_reason, count_from

__all__ = ["ADJECTIVE", "PERIODS", "keep_heads"]

PERIODS = ("hour", "day", "week", "month", "year")
ADJECTIVE = {
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "year": "yearly",
}


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


def keep_heads(
    out: Reasons,
    ids: list[str],
    created: list[datetime],
    marks: list[int],
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
    ``oldest`` prefix when its period was already kept (restic's rule 5). The index of
    every point kept is appended to *marks*.
    """
    period = _KEYS[per]
    last_index = len(ids) - 1
    index, kept_index = 0, -1
    key = 0
    while index < stop and budget != 0:
        key = _key_at(period, created, index, tz)
        add_reason(out, ids[index], f"{prefix} {period.label(key)}")
        marks.append(index)
        kept_index = index
        if budget > 0:
            budget -= 1
        index = _next_period(period, created, index, key, tz)
    if budget != 0 and kept_index >= 0 and kept_index != last_index < stop:
        add_reason(out, ids[last_index], f"oldest {prefix} {period.label(key)}")
        marks.append(last_index)


def _key_at(period: _Period, created: list[datetime], index: int, tz: tzinfo) -> int:
    when = created[index]
    if when.tzinfo is not UTC:  # the columns keep each point's own zone (see Group)
        when = when.astimezone(UTC)
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
        return count_from(created, start.replace(tzinfo=UTC), index + 1)
    # fold=0: an ambiguous start is its first occurrence, a skipped one the transition itself.
    return count_from(created, start.replace(tzinfo=tz).astimezone(UTC), index + 1)
