"""`Cadence`: a calendar period (hour, day, ISO week, month, quarter, year) in a time zone.

One idea: the periods that key "at least once per quarter" requirements and the rolling
spread of full backups. Re-exported by `backuppolicy.core.schedule`.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final

from backuppolicy.core._wallclock import did_you_mean, resolve_wall, zone_info
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware

__all__ = ["Cadence"]


class Cadence(enum.Enum):
    """A calendar period in a time zone: how often something must happen at least.

    Periods follow the wall clock of the time zone: a day runs from local
    midnight to local midnight (23 or 25 hours across a DST change), a week is
    an ISO week (Monday to Sunday), a quarter is January-March, April-June, ...

    Example:
        >>> from datetime import datetime, UTC
        >>> moment = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        >>> Cadence.QUARTER.period_key(moment), Cadence.WEEK.period_key(moment)
        ('2026-Q4', '2026-W48')
        >>> Cadence.QUARTER.period_start(moment)
        datetime.datetime(2026, 10, 1, 0, 0, tzinfo=datetime.timezone.utc)
        >>> Cadence.coerce("quarterly")
        <Cadence.QUARTER: 'quarter'>
    """

    HOUR = "hour"
    """Clock hours."""
    DAY = "day"
    """Calendar days, from local midnight."""
    WEEK = "week"
    """ISO weeks, Monday to Sunday."""
    MONTH = "month"
    """Calendar months."""
    QUARTER = "quarter"
    """Calendar quarters: January, April, July and October start one."""
    YEAR = "year"
    """Calendar years."""

    @classmethod
    def coerce(cls, value: Cadence | str, *, path: str = "cadence") -> Cadence:
        """Accept a `Cadence`, its value (``"week"``) or its adverb (``"weekly"``, ``"annually"``).

        Raises:
            PolicyError: *value* names no cadence; the message names *path*.
        """
        if isinstance(value, Cadence):
            return value
        if isinstance(value, str):
            found = _CADENCE_WORDS.get(value.strip().lower())
            if found is not None:
                return found
        expected = "one of " + ", ".join(repr(c.value) for c in cls)
        hint = did_you_mean(value, _CADENCE_WORDS) if isinstance(value, str) else ""
        raise PolicyError.for_field(path, expected, value, hint=hint)

    @property
    def adverb(self) -> str:
        """The word for "every <period>": ``"hourly"``, ``"daily"`` ... ``"yearly"``."""
        return _ADVERBS[self]

    @property
    def min_days(self) -> int:
        """The fewest calendar days a period can have (0 for `HOUR`): 1, 7, 28, 90, 365."""
        return _MIN_DAYS[self]

    def period_start(self, moment: datetime, tz: str | tzinfo = "UTC") -> datetime:
        """The first instant of the period of *tz* that contains *moment*, in UTC.

        When local midnight (or the start of the hour) is skipped by a DST change,
        the period starts at the first instant after the gap.

        Raises:
            PolicyError: *moment* is naive or *tz* is unknown.
        """
        return self._bounds(moment, tz)[0]

    def period_end(self, moment: datetime, tz: str | tzinfo = "UTC") -> datetime:
        """The first instant after the period that contains *moment* (the next period's start), in UTC.

        Raises:
            PolicyError: *moment* is naive or *tz* is unknown.
        """
        return self._bounds(moment, tz)[1]

    def _bounds(self, moment: datetime, tz: str | tzinfo) -> tuple[datetime, datetime]:
        zone = zone_info(tz, "tz")
        moment = ensure_aware(moment, field="moment").astimezone(UTC)
        local = moment.astimezone(zone)
        wall = self._wall_start(local.replace(tzinfo=None))
        start, end = resolve_wall(wall, zone), resolve_wall(self._wall_next(wall), zone)
        if not start <= moment < end:
            # A repeat longer than the period (Antarctica/Troll turns its clock back
            # 2 h): the second pass of the hour is an hour of its own.
            start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            end = start + timedelta(hours=1)
        return start, end

    def period_key(self, moment: datetime, tz: str | tzinfo = "UTC") -> str:
        """A sortable label of the period of *tz* that contains *moment*.

        ``"2026-11-26T04"``, ``"2026-11-26"``, ``"2026-W48"`` (ISO year and week),
        ``"2026-11"``, ``"2026-Q4"``, ``"2026"``. Both passes of an hour repeated
        by DST share one key: periods follow the wall clock.

        Raises:
            PolicyError: *moment* is naive or *tz* is unknown.
        """
        local = ensure_aware(moment, field="moment").astimezone(zone_info(tz, "tz"))
        if self is Cadence.HOUR:
            return f"{local:%Y-%m-%dT%H}"
        if self is Cadence.DAY:
            return f"{local:%Y-%m-%d}"
        if self is Cadence.WEEK:
            year, week, _ = local.isocalendar()
            return f"{year:04d}-W{week:02d}"
        if self is Cadence.MONTH:
            return f"{local:%Y-%m}"
        if self is Cadence.QUARTER:
            return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
        return f"{local.year:04d}"

    def first_day(self, day: date) -> date:
        """The first calendar day of the period that contains *day* (`HOUR` counts as `DAY`)."""
        if self in {Cadence.HOUR, Cadence.DAY}:
            return day
        if self is Cadence.WEEK:
            return day - timedelta(days=day.weekday())
        if self is Cadence.MONTH:
            return day.replace(day=1)
        if self is Cadence.QUARTER:
            return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return date(day.year, 1, 1)

    def _wall_start(self, wall: datetime) -> datetime:
        if self is Cadence.HOUR:
            return wall.replace(minute=0, second=0, microsecond=0)
        first = self.first_day(wall.date())
        return datetime(first.year, first.month, first.day)  # noqa: DTZ001 - a wall-clock time

    def _wall_next(self, start: datetime) -> datetime:
        if self is Cadence.HOUR:
            return start + timedelta(hours=1)
        if self is Cadence.DAY:
            return start + timedelta(days=1)
        if self is Cadence.WEEK:
            return start + timedelta(days=7)
        months = {Cadence.MONTH: 1, Cadence.QUARTER: 3, Cadence.YEAR: 12}[self]
        index = start.month - 1 + months
        return start.replace(year=start.year + index // 12, month=index % 12 + 1)


_ADVERBS: Final = {
    Cadence.HOUR: "hourly",
    Cadence.DAY: "daily",
    Cadence.WEEK: "weekly",
    Cadence.MONTH: "monthly",
    Cadence.QUARTER: "quarterly",
    Cadence.YEAR: "yearly",
}
_MIN_DAYS: Final = {
    Cadence.HOUR: 0,
    Cadence.DAY: 1,
    Cadence.WEEK: 7,
    Cadence.MONTH: 28,
    Cadence.QUARTER: 90,
    Cadence.YEAR: 365,
}
_CADENCE_WORDS: Final = {
    **{c.value: c for c in Cadence},
    **{adverb: c for c, adverb in _ADVERBS.items()},
    "annually": Cadence.YEAR,
}
