"""When backups and checks run: `Schedule`, `Cadence` and the rolling spread of full backups.

A `Schedule` is a 5-field cron expression evaluated on the wall clock of a time
zone, plus a *start window*: the time after each scheduled run within which the
job must start. The seed policy's "every 24 hours, at 4am GMT" is::

    Schedule.daily(at="04:00", tz="UTC", window="1h")

A `Cadence` is a calendar period (hour, day, ISO week, month, quarter, year) in
a time zone. It keys "at least once per quarter" requirements and the rolling
spread of full backups (`rolling_slots`, `full_backups_due`): each target gets
one day of the period for its full backup, so that every target has a full
backup within each period and the days carry an even load.

Daylight saving time: croniter matches the expression against wall-clock times
of the zone; this module maps each match to instants:

* A scheduled local time that does not exist (clocks spring forward over it)
  runs at the first instant after the gap, and several skipped times run once
  there (croniter's and Vixie cron's behaviour): ``30 1 * * *`` in
  Europe/London runs at 02:00 BST on the spring-forward day.
* A scheduled local time that occurs twice (clocks fall back) runs once, at its
  first occurrence, when the hour field does not cover every hour (as cron(8)
  and EventBridge Scheduler do), so a daily backup stays daily. Schedules whose
  hour field is ``*`` (every hour) keep both occurrences: they follow elapsed time.
  This holds for shifts of any length (Australia/Lord_Howe moves 30 minutes).

All datetimes passed in must be timezone-aware; every datetime returned is in UTC.
"""

from __future__ import annotations

import difflib
import enum
import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import attrs
from croniter import CroniterBadDateError, CroniterError, croniter

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware

__all__ = ["Cadence", "Schedule", "full_backups_due", "rolling_slots"]

_CRON_EXPECTED: Final = (
    "a 5-field cron expression 'minute hour day-of-month month day-of-week' like '0 4 * * *'"
)
_TZ_EXPECTED: Final = "an IANA time zone name like 'UTC' or 'Europe/London'"
_AT_EXPECTED: Final = "a time of day 'HH:MM' like '04:00'"
_MINUTE_EXPECTED: Final = "a minute past the hour ':MM' like ':15'"
_WEEKDAY_EXPECTED: Final = "a weekday name like 'sun' or 'monday'"
_MONTH_DAY_EXPECTED: Final = "a day of the month from 1 to 28, or 'last'"

_ALIASES: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_MONTH_NAMES: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_NAMES: Final = (
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
)


def _field_pattern(item: str) -> re.Pattern[str]:
    """A cron field: comma-separated ``*``, ``item`` or ``item-item``, each with an optional ``/step``."""
    term = rf"(?:\*|{item}(?:-{item})?)(?:/\d+)?"
    return re.compile(rf"^{term}(?:,{term})*$", re.IGNORECASE)


# Only standard cron syntax (plus croniter's "L" for the last day of the month and
# "#" for the n-th weekday): croniter's "R" (random) and "H" (hashed) are rejected,
# because a backup schedule must be the same every time it is read.
_FIELDS: Final = (
    ("minute", _field_pattern(r"\d+")),
    ("hour", _field_pattern(r"\d+")),
    ("day-of-month", _field_pattern(r"(?:\d+|l)")),
    ("month", _field_pattern(rf"(?:\d+|{'|'.join(_MONTHS)})")),
    ("day-of-week", _field_pattern(rf"(?:\d+|{'|'.join(_WEEKDAYS)})(?:#\d)?")),
)

# How far `_min_gap` looks: runs from a leap year that starts on a Saturday.
_GAP_ORIGIN: Final = datetime(2000, 1, 1, tzinfo=UTC)
_GAP_MAX_RUNS: Final = 1000
_GAP_MAX_SPAN: Final = timedelta(days=28 * 366)
# More than any change of a zone's UTC offset (DST shifts are 30 min to 2 h).
_DST_MARGIN: Final = timedelta(hours=3)


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
        hint = _did_you_mean(value, _CADENCE_WORDS) if isinstance(value, str) else ""
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
        zone = _zone(tz, "tz")
        moment = ensure_aware(moment, field="moment").astimezone(UTC)
        local = moment.astimezone(zone)
        wall = self._wall_start(local.replace(tzinfo=None))
        start, end = _resolve(wall, zone), _resolve(self._wall_next(wall), zone)
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
        local = ensure_aware(moment, field="moment").astimezone(_zone(tz, "tz"))
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


@functools.cache
def _zone_by_name(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(value: str | tzinfo, field: str) -> ZoneInfo:
    """A `ZoneInfo` for a zone name (or a ZoneInfo, or `datetime.UTC`)."""
    if isinstance(value, ZoneInfo):
        return value
    if value is UTC:
        return _zone_by_name("UTC")
    if isinstance(value, str) and value.strip():
        try:
            return _zone_by_name(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    hint = _did_you_mean(value, _zone_names()) if isinstance(value, str) else ""
    raise PolicyError.for_field(field, _TZ_EXPECTED, value, hint=hint)


def _tz_name(value: str | tzinfo) -> str:
    return str(_zone(value, "tz").key)


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time of *moment* in *zone*."""
    return moment.astimezone(zone).replace(tzinfo=None)


def _gap_end(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the offset change between *before* and *after* (UTC), to the second."""
    offset = before.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return after.replace(microsecond=0)


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant at which the wall clock of *zone* reads *wall* (or after its gap).

    ``fold=0`` picks the first of two occurrences and, for a time skipped by DST,
    the instant the gap ends (for gaps that start at *wall*).
    """
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _did_you_mean(value: object, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(str(value), list(choices), n=1)
    return f"Did you mean {matches[0]!r}?" if matches else ""


def _to_cron(value: str) -> str:
    """Normalise whitespace and expand ``@daily``-style aliases; check the syntax."""
    if not isinstance(value, str):
        raise PolicyError.for_field("cron", _CRON_EXPECTED, value)
    text = " ".join(value.split())
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            hint = "Aliases: " + ", ".join(_ALIASES) + "."
            raise PolicyError.for_field("cron", _CRON_EXPECTED, value, hint=hint)
        text = _ALIASES[text.lower()]
    parts = text.split(" ")
    if len(parts) != len(_FIELDS):
        hint = f"It has {len(parts)} fields; seconds and years are not supported."
        raise PolicyError.for_field("cron", _CRON_EXPECTED, value, hint=hint)
    for part, (name, pattern) in zip(parts, _FIELDS, strict=True):
        if not pattern.match(part):
            hint = f"The {name} field {part!r} is not valid cron syntax."
            raise PolicyError.for_field("cron", _CRON_EXPECTED, value, hint=hint)
    try:
        croniter(text, _GAP_ORIGIN).get_next(datetime)
    except CroniterBadDateError:
        hint = "It matches no date (e.g. 30 February)."
        raise PolicyError.for_field("cron", _CRON_EXPECTED, value, hint=hint) from None
    except (CroniterError, ValueError) as exc:
        raise PolicyError.for_field("cron", _CRON_EXPECTED, value, hint=f"({exc})") from exc
    return text


@functools.lru_cache(maxsize=256)
def _min_gap(cron: str) -> timedelta:
    """The shortest time between two runs of *cron* evaluated in UTC (the nominal gap).

    Runs are scanned from 2000-01-01 (a leap year) for up to 1000 runs or 28 years.
    Minutes and hours repeat on every matching day, so the shortest gap within a
    day and across midnight shows on the first matching days; day patterns
    repeat within 28 years.
    """
    runs = croniter(cron, _GAP_ORIGIN - timedelta(minutes=1))
    previous: datetime = runs.get_next(datetime)
    shortest: timedelta | None = None
    for _ in range(_GAP_MAX_RUNS):
        current: datetime = runs.get_next(datetime)
        gap = current - previous
        shortest = gap if shortest is None else min(shortest, gap)
        if current - _GAP_ORIGIN > _GAP_MAX_SPAN or shortest <= timedelta(minutes=1):
            break
        previous = current
    assert shortest is not None  # noqa: S101 - the loop runs at least once
    return shortest


@functools.lru_cache(maxsize=256)
def _every_hour(cron: str) -> bool:
    """Whether the hour field of *cron* matches all 24 hours."""
    hours = croniter(cron, _GAP_ORIGIN).expanded[1]
    return hours == ["*"] or len(set(hours)) == 24  # noqa: PLR2004


def _to_window(value: Duration | str | timedelta) -> Duration:
    return Duration.coerce(value, field="window")


def _check_window(inst: Schedule, _attribute: attrs.Attribute[Duration], value: Duration) -> None:
    if value.is_zero:
        expected = "a start window longer than zero, like '1h'"
        raise PolicyError.for_field("window", expected, str(value))
    gap = _min_gap(inst.cron)
    if value.approx_timedelta() >= gap:
        expected = f"a start window shorter than the {_format_td(gap)} between two runs"
        raise PolicyError.for_field("window", expected, str(value))


def _format_td(value: timedelta) -> str:
    hours, minutes = divmod(value.seconds // 60, 60)
    return Duration(days=value.days, hours=hours, minutes=minutes).describe()


def _parse_at(value: object, *, field: str) -> tuple[int, int]:
    """``"04:00"`` -> ``(4, 0)``."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:  # noqa: PLR2004
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool):
            hint = 'In YAML, quote the time: at: "04:00" (unquoted 4:00 reads as the number 240).'
        raise PolicyError.for_field(field, _AT_EXPECTED, value, hint=hint)
    return int(match.group(1)), int(match.group(2))


def _parse_minute(value: object, *, field: str) -> int:
    """``":15"`` -> ``15`` (for hourly schedules)."""
    match = re.fullmatch(r":(\d{2})", value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 59:  # noqa: PLR2004
        raise PolicyError.for_field(field, _MINUTE_EXPECTED, value)
    return int(match.group(1))


def _parse_weekday(value: object, *, field: str) -> int:
    """``"sun"`` / ``"Sunday"`` -> ``0`` (cron numbering)."""
    if isinstance(value, str):
        text = value.strip().lower()
        for number, (short, name) in enumerate(zip(_WEEKDAYS, _WEEKDAY_NAMES, strict=True)):
            if text in {short, name.lower()}:
                return number
    hint = _did_you_mean(value, _WEEKDAYS) if isinstance(value, str) else ""
    raise PolicyError.for_field(field, _WEEKDAY_EXPECTED, value, hint=hint)


def _parse_month_day(value: object, *, field: str) -> str:
    """``1`` .. ``28`` -> ``"1"`` .. ``"28"``; ``"last"`` -> ``"L"``."""
    if isinstance(value, str) and value.strip().lower() == "last":
        return "L"
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 28:  # noqa: PLR2004
        return str(value)
    hint = ""
    if isinstance(value, int) and not isinstance(value, bool) and 29 <= value <= 31:  # noqa: PLR2004
        hint = "Months shorter than that would be skipped; use 'last' for the last day."
    raise PolicyError.for_field(field, _MONTH_DAY_EXPECTED, value, hint=hint)


def _parse_month(value: object, *, field: str, last: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= last:
        return value
    raise PolicyError.for_field(field, f"a month number from 1 to {last}", value)


def _refuse(field: str, value: object, cadence: Cadence) -> None:
    if value is not None:
        raise PolicyError.for_field(field, f"nothing for a {cadence.adverb} schedule", value)


def _cron_for(cadence: Cadence, *, at: object, day: object, month: object) -> str:
    """The canonical cron expression of an ``every <cadence>`` schedule."""
    if cadence is Cadence.HOUR:
        _refuse("day", day, cadence)
        _refuse("month", month, cadence)
        return f"{_parse_minute(':00' if at is None else at, field='at')} * * * *"
    hour, minute = _parse_at("04:00" if at is None else at, field="at")
    if cadence is Cadence.DAY:
        _refuse("day", day, cadence)
        _refuse("month", month, cadence)
        return f"{minute} {hour} * * *"
    if cadence is Cadence.WEEK:
        _refuse("month", month, cadence)
        weekday = _parse_weekday("sun" if day is None else day, field="day")
        return f"{minute} {hour} * * {weekday}"
    month_day = _parse_month_day(1 if day is None else day, field="day")
    if cadence is Cadence.MONTH:
        _refuse("month", month, cadence)
        return f"{minute} {hour} {month_day} * *"
    if cadence is Cadence.QUARTER:
        first = _parse_month(1 if month is None else month, field="month", last=3)
        months = ",".join(str(first + 3 * q) for q in range(4))
        return f"{minute} {hour} {month_day} {months} *"
    number = _parse_month(1 if month is None else month, field="month", last=12)
    return f"{minute} {hour} {month_day} {number} *"


def _default_window(cadence: Cadence) -> Duration:
    return Duration(minutes=30) if cadence is Cadence.HOUR else Duration(hours=1)


_CANONICAL: Final = re.compile(
    r"^(?P<minute>\d+) (?P<hour>\d+|\*) (?P<dom>\d+|L|\*) (?P<month>[\d,]+|\*) (?P<dow>\d|\*)$"
)


@attrs.frozen
class _Every:
    """An ``every <cadence>`` reading of a canonical cron expression."""

    cadence: Cadence
    at: str
    day: int | str | None = None
    month: int | None = None


def _recognise(cron: str) -> _Every | None:
    """Read a cron expression that `_cron_for` would build back as ``every <cadence>``."""
    match = _CANONICAL.match(cron)
    if match is None:
        return None
    minute, hour, dom, months, dow = match.group("minute", "hour", "dom", "month", "dow")
    candidate: _Every | None = None
    if hour == "*":
        candidate = _Every(Cadence.HOUR, f":{int(minute):02d}")
    else:
        at = f"{int(hour):02d}:{int(minute):02d}"
        day: int | str = "last" if dom == "L" else (int(dom) if dom.isdigit() else 0)
        if (dom, months, dow) == ("*", "*", "*"):
            candidate = _Every(Cadence.DAY, at)
        elif (dom, months) == ("*", "*"):
            candidate = _Every(Cadence.WEEK, at, _WEEKDAYS[int(dow) % 7])
        elif (months, dow) == ("*", "*"):
            candidate = _Every(Cadence.MONTH, at, day)
        elif dow == "*" and "," in months:
            candidate = _Every(Cadence.QUARTER, at, day, int(months.split(",")[0]))
        elif dow == "*" and months.isdigit():
            candidate = _Every(Cadence.YEAR, at, day, int(months))
    if candidate is None:
        return None
    try:
        rebuilt = _cron_for(
            candidate.cadence, at=candidate.at, day=candidate.day, month=candidate.month
        )
    except PolicyError:
        return None
    return candidate if rebuilt == cron else None


_SPEC_KEYS: Final = ("cron", "every", "at", "day", "month", "tz", "window")
# Words people write for a spec key that difflib would not match.
_KEY_SYNONYMS: Final = {
    "timezone": "tz",
    "time_zone": "tz",
    "zone": "tz",
    "time": "at",
    "expression": "cron",
    "weekday": "day",
    "cadence": "every",
    "frequency": "every",
}


@attrs.frozen
class Schedule:
    """When a job runs: a cron expression on the wall clock of a time zone, with a start window.

    Build one with a constructor (`daily`, `weekly`, `monthly`, `quarterly`,
    `yearly`, `hourly`, `every`), from a policy file with `from_spec`, or from a
    raw cron expression.

    Example:
        >>> from datetime import datetime, UTC
        >>> nightly = Schedule.daily(at="04:00")
        >>> nightly.cron
        '0 4 * * *'
        >>> nightly.next_run(datetime(2026, 12, 31, 4, 0, tzinfo=UTC))
        datetime.datetime(2027, 1, 1, 4, 0, tzinfo=datetime.timezone.utc)
        >>> nightly.is_overdue(datetime(2026, 11, 25, 4, 2, tzinfo=UTC),
        ...                    now=datetime(2026, 11, 26, 5, 0, tzinfo=UTC))
        True
        >>> nightly.describe()
        'daily at 04:00 UTC (start within 1h)'

    Attributes:
        cron: A 5-field cron expression (``minute hour day-of-month month
            day-of-week``), evaluated on the wall clock of *tz*. ``@daily``-style
            aliases are expanded; whitespace is normalised.
        tz: IANA name of the time zone the expression is read in.
        window: How long after each scheduled run the job may start (the
            off-peak window). Longer than zero and shorter than the shortest
            gap between two runs (measured in UTC), so every instant belongs to
            at most one run's window.
    """

    cron: str = attrs.field(converter=_to_cron)
    tz: str = attrs.field(default="UTC", converter=_tz_name)
    window: Duration = attrs.field(
        default=Duration(hours=1), converter=_to_window, validator=_check_window
    )

    # -- constructors ---------------------------------------------------------------

    @classmethod
    def every(
        cls,
        cadence: Cadence | str,
        *,
        at: str | None = None,
        day: int | str | None = None,
        month: int | None = None,
        tz: str | tzinfo = "UTC",
        window: Duration | str | timedelta | None = None,
    ) -> Schedule:
        """A schedule that runs once per *cadence*.

        Args:
            cadence: The period (`Cadence` or ``"day"``, ``"weekly"`` ...).
            at: Time of day ``"HH:MM"`` (default ``"04:00"``); for hourly schedules
                the minute ``":MM"`` (default ``":00"``).
            day: Weekly: a weekday name (default ``"sun"``). Monthly, quarterly and
                yearly: day of the month 1-28 or ``"last"`` (default 1).
            month: Quarterly: month of the quarter 1-3 (default 1, i.e. January,
                April, July, October). Yearly: month 1-12 (default 1).
            tz: Time zone the time of day is read in.
            window: Start window; default 1h (30min for hourly schedules).

        Raises:
            PolicyError: A value is out of range or does not apply to the cadence.
        """
        found = Cadence.coerce(cadence, path="every")
        cron = _cron_for(found, at=at, day=day, month=month)
        return cls(cron, tz=tz, window=_default_window(found) if window is None else window)

    @classmethod
    def hourly(
        cls, at: str = ":00", *, tz: str | tzinfo = "UTC", window: Duration | str = "30min"
    ) -> Schedule:
        """Every hour at minute *at* (``":15"``)."""
        return cls.every(Cadence.HOUR, at=at, tz=tz, window=window)

    @classmethod
    def daily(
        cls, at: str = "04:00", *, tz: str | tzinfo = "UTC", window: Duration | str = "1h"
    ) -> Schedule:
        """Every day at *at* (``"HH:MM"``) in *tz*.

        Example:
            >>> Schedule.daily(at="01:30", tz="Europe/London").cron
            '30 1 * * *'
        """
        return cls.every(Cadence.DAY, at=at, tz=tz, window=window)

    @classmethod
    def weekly(
        cls,
        day: str = "sun",
        at: str = "04:00",
        *,
        tz: str | tzinfo = "UTC",
        window: Duration | str = "1h",
    ) -> Schedule:
        """Every week on weekday *day* (``"sun"``, ``"monday"`` ...) at *at*."""
        return cls.every(Cadence.WEEK, at=at, day=day, tz=tz, window=window)

    @classmethod
    def monthly(
        cls,
        day: int | str = 1,
        at: str = "04:00",
        *,
        tz: str | tzinfo = "UTC",
        window: Duration | str = "1h",
    ) -> Schedule:
        """Every month on day *day* (1-28 or ``"last"``) at *at*."""
        return cls.every(Cadence.MONTH, at=at, day=day, tz=tz, window=window)

    @classmethod
    def quarterly(
        cls,
        day: int | str = 1,
        at: str = "04:00",
        *,
        month: int = 1,
        tz: str | tzinfo = "UTC",
        window: Duration | str = "1h",
    ) -> Schedule:
        """Every quarter on day *day* of its *month*-th month (1-3) at *at*.

        Example:
            >>> Schedule.quarterly().describe()
            'quarterly on day 1 of January, April, July and October at 04:00 UTC (start within 1h)'
        """
        return cls.every(Cadence.QUARTER, at=at, day=day, month=month, tz=tz, window=window)

    @classmethod
    def yearly(
        cls,
        day: int | str = 1,
        at: str = "04:00",
        *,
        month: int = 1,
        tz: str | tzinfo = "UTC",
        window: Duration | str = "1h",
    ) -> Schedule:
        """Every year on day *day* of month *month* (1-12) at *at*."""
        return cls.every(Cadence.YEAR, at=at, day=day, month=month, tz=tz, window=window)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | str, *, path: str = "schedule") -> Schedule:
        """Read a schedule from a policy file.

        Forms: a bare cron string (``"0 4 * * *"``, time zone UTC, window 1h);
        ``{"cron": "0 4 * * *", "tz": "UTC", "window": "1h"}``;
        ``{"every": "day", "at": "04:00", "tz": "Europe/London"}``;
        ``{"every": "week", "day": "sun", "at": "04:00"}``; ``"month"``,
        ``"quarter"`` and ``"year"`` also take ``day`` and ``month`` (see `every`).

        Example:
            >>> Schedule.from_spec({"every": "week", "day": "sun", "at": "04:00"}).cron
            '0 4 * * 0'
            >>> Schedule.from_spec({"cron": "0 4 * * *", "windw": "2h"})
            Traceback (most recent call last):
            ...
            backuppolicy.core.exceptions.PolicyError: schedule.windw: expected one of cron, every, at, day, month, tz, window (got 'windw'). Did you mean 'window'?

        Raises:
            PolicyError: The spec is invalid; the message names the field under *path*.
        """
        try:
            return cls._from_value(spec)
        except PolicyError as exc:
            raise _under(exc, path) from None

    @classmethod
    def _from_value(cls, spec: object) -> Schedule:
        """`from_spec` with error paths relative to the spec."""
        if isinstance(spec, str):
            return cls(spec)
        if not isinstance(spec, Mapping):
            raise PolicyError.for_field(
                "", "a cron string or a mapping with 'cron' or 'every'", spec
            )
        for key in spec:
            if key not in _SPEC_KEYS:
                expected = "one of " + ", ".join(_SPEC_KEYS)
                synonym = _KEY_SYNONYMS.get(str(key).lower())
                hint = f"Did you mean {synonym!r}?" if synonym else _did_you_mean(key, _SPEC_KEYS)
                raise PolicyError.for_field(key, expected, key, hint=hint)
        if ("cron" in spec) == ("every" in spec):
            raise PolicyError.for_field("", "exactly one of 'cron' or 'every'", dict(spec))
        tz = spec.get("tz", "UTC")
        window = spec.get("window")
        if "cron" in spec:
            for key in ("at", "day", "month"):
                if key in spec:
                    raise PolicyError.for_field(key, "no value next to 'cron'", spec[key])
            return cls(spec["cron"], tz=tz, window="1h" if window is None else window)
        cadence = Cadence.coerce(spec["every"], path="every")
        cron = _cron_for(cadence, at=spec.get("at"), day=spec.get("day"), month=spec.get("month"))
        return cls(cron, tz=tz, window=_default_window(cadence) if window is None else window)

    def to_spec(self) -> dict[str, Any]:
        """The policy-file form, read back by `from_spec` into an equal schedule.

        Cron expressions that a constructor would build come out in the ``every`` form.

        Example:
            >>> Schedule.weekly("sun", tz="Europe/London").to_spec()
            {'every': 'week', 'day': 'sun', 'at': '04:00', 'tz': 'Europe/London', 'window': '1h'}
        """
        every = _recognise(self.cron)
        spec: dict[str, Any]
        if every is None:
            spec = {"cron": self.cron}
        else:
            spec = {"every": every.cadence.value}
            if every.day is not None:
                spec["day"] = every.day
            if every.month is not None:
                spec["month"] = every.month
            spec["at"] = every.at
        spec["tz"] = self.tz
        spec["window"] = str(self.window)
        return spec

    # -- queries ---------------------------------------------------------------------

    @property
    def cadence(self) -> Cadence | None:
        """The `Cadence` if the cron expression is a plain ``every <cadence>`` one, else None."""
        every = _recognise(self.cron)
        return None if every is None else every.cadence

    def next_run(self, after: datetime) -> datetime:
        """The first scheduled run strictly after *after*, in UTC.

        Raises:
            PolicyError: *after* is naive.
        """
        return next(self._forward(ensure_aware(after, field="after")))

    def last_due(self, before: datetime) -> datetime | None:
        """The most recent scheduled run at or before *before*, in UTC (None before year 1).

        Raises:
            PolicyError: *before* is naive.
        """
        before = ensure_aware(before, field="before").astimezone(UTC)
        try:
            previous = next(self._backward(before))
        except OverflowError:
            return None
        following = self.next_run(previous)
        return following if following <= before else previous

    def runs_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The scheduled runs in ``[start, end)``, in order, in UTC.

        Raises:
            PolicyError: *start* or *end* is naive.
        """
        start = ensure_aware(start, field="start").astimezone(UTC)
        end = ensure_aware(end, field="end").astimezone(UTC)
        return self._runs_between(start, end)

    def _runs_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        for run in self._forward(start - timedelta(microseconds=1)):
            if run >= end:
                return
            yield run

    def window_end(self, run: datetime) -> datetime:
        """The end of the start window of *run* (exclusive), in UTC.

        Raises:
            PolicyError: *run* is naive.
        """
        return self.window.after(ensure_aware(run, field="run").astimezone(UTC))

    def in_window(self, now: datetime) -> bool:
        """Whether *now* is inside the start window ``[run, run + window)`` of a run.

        Raises:
            PolicyError: *now* is naive.
        """
        due = self.last_due(now)
        return due is not None and now < self.window_end(due)

    def deadline(self, run: datetime, grace: Duration | str = "0h") -> datetime:
        """When *run* becomes overdue: the end of its start window plus *grace*, in UTC.

        Raises:
            PolicyError: *run* is naive or *grace* is not a duration.
        """
        return Duration.coerce(grace, field="grace").after(self.window_end(run))

    def last_missed(
        self, last_success: datetime | None, now: datetime, grace: Duration | str = "0h"
    ) -> datetime | None:
        """The run that is overdue at *now*, or None.

        That is the latest run whose `deadline` is at or before *now*, when
        *last_success* is None or older than that run.

        Raises:
            PolicyError: A datetime is naive or *grace* is not a duration.
        """
        grace_d = Duration.coerce(grace, field="grace")
        now = ensure_aware(now, field="now").astimezone(UTC)
        if last_success is not None:
            last_success = ensure_aware(last_success, field="last_success")
        run = self._latest_past_deadline(now, grace_d)
        if run is None or (last_success is not None and last_success >= run):
            return None
        return run

    def is_overdue(
        self, last_success: datetime | None, now: datetime, grace: Duration | str = "0h"
    ) -> bool:
        """Whether a run is overdue: its start window plus *grace* passed with no success since.

        A run at ``R`` with window ``W`` is overdue from ``R + W + grace`` on (that
        instant included) while *last_success* is None or before ``R``. A success
        at exactly ``R`` counts.

        Raises:
            PolicyError: A datetime is naive or *grace* is not a duration.
        """
        return self.last_missed(last_success, now, grace) is not None

    def describe(self) -> str:
        """Words for the policy document: ``"daily at 04:00 UTC (start within 1h)"``."""
        every = _recognise(self.cron)
        window = f"(start within {self.window})"
        if every is None:
            return f"cron '{self.cron}' in {self.tz} {window}"
        when = every.cadence.adverb
        if every.cadence is Cadence.WEEK:
            when += f" on {_WEEKDAY_NAMES[_WEEKDAYS.index(str(every.day))]}"
        elif every.cadence is Cadence.MONTH:
            when += f" on {_day_words(every.day)}"
        elif every.cadence is Cadence.QUARTER:
            first = every.month or 1
            names = [_MONTH_NAMES[first - 1 + 3 * q] for q in range(4)]
            when += f" on {_day_words(every.day)} of {', '.join(names[:3])} and {names[3]}"
        elif every.cadence is Cadence.YEAR:
            when += f" on {_day_words(every.day)} of {_MONTH_NAMES[(every.month or 1) - 1]}"
        return f"{when} at {every.at} {self.tz} {window}"

    # -- iteration: croniter matches wall-clock times, we map them to instants ----------

    def _forward(self, after: datetime) -> Iterator[datetime]:
        """Runs strictly after *after* (aware), in UTC, in order."""
        zone = _zone_by_name(self.tz)
        walls = croniter(self.cron, _wall(after, zone) - _DST_MARGIN)
        pending: list[datetime] = []
        last = after
        while True:
            wall: datetime = walls.get_next(datetime)
            pending.extend(t for t in self._instants(wall, zone) if t > last)
            # Later wall-clock times map to instants after this horizon.
            horizon = _resolve(wall, zone) - _DST_MARGIN
            while pending and min(pending) < horizon:
                run = min(pending)
                pending = [t for t in pending if t != run]
                last = run
                yield run

    def _backward(self, before: datetime) -> Iterator[datetime]:
        """Runs strictly before *before* (aware), in UTC, newest first."""
        zone = _zone_by_name(self.tz)
        walls = croniter(self.cron, _wall(before, zone) + _DST_MARGIN)
        pending: list[datetime] = []
        last = before
        while True:
            wall: datetime = walls.get_prev(datetime)
            pending.extend(t for t in self._instants(wall, zone) if t < last)
            horizon = _resolve(wall, zone) + _DST_MARGIN
            while pending and max(pending) > horizon:
                run = max(pending)
                pending = [t for t in pending if t != run]
                last = run
                yield run

    def _instants(self, wall: datetime, zone: ZoneInfo) -> list[datetime]:
        """The instants (UTC) at which the schedule runs for the wall-clock match *wall*.

        One for a time that exists once; the first (or, for schedules that run every
        hour, both) of a time repeated by DST; the end of the gap for a skipped time.
        """
        first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if first.astimezone(zone).replace(tzinfo=None) == wall:  # repeated: first < second
            return [first, second] if _every_hour(self.cron) else [first]
        return [_gap_end(second, first, zone)]  # skipped: second < gap end <= first

    def _latest_past_deadline(self, now: datetime, grace: Duration) -> datetime | None:
        """The latest run with ``deadline(run) <= now``."""
        approx = grace.before(now)
        approx = None if approx is None else self.window.before(approx)
        run = None if approx is None else self.last_due(approx)
        # Calendar durations (months) do not invert exactly: settle on the exact run.
        while run is not None and grace.after(self.window.after(run)) > now:
            run = self.last_due(run - timedelta(microseconds=1))
        while run is not None:
            following = self.next_run(run)
            if grace.after(self.window.after(following)) > now:
                break
            run = following
        return run


def _day_words(day: int | str | None) -> str:
    return "the last day" if day == "last" else f"day {day}"


def _under(exc: PolicyError, path: str) -> PolicyError:
    """*exc* with its field moved under *path* (``window`` -> ``schedule.window``)."""
    if not path:
        return exc
    field = f"{path}.{exc.path}" if exc.path else path
    message = f"{path}.{exc}" if exc.path else f"{path}: {exc}"
    return PolicyError(message, path=field, expected=exc.expected, got=exc.got)


# -- rolling full backups -------------------------------------------------------------------


def _slot_count(period: Cadence | str, slots: int | None) -> tuple[Cadence, int]:
    cadence = Cadence.coerce(period, path="period")
    if cadence is Cadence.HOUR:
        raise PolicyError.for_field("period", "a period of a day or longer", cadence.value)
    if slots is None:
        return cadence, cadence.min_days
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= cadence.min_days:
        expected = f"an integer from 1 to {cadence.min_days} (days in every {cadence.value})"
        raise PolicyError.for_field("slots", expected, slots)
    return cadence, slots


def _hash_key(name: str) -> tuple[bytes, str]:
    return hashlib.sha256(name.encode("utf-8")).digest(), name


def rolling_slots(
    targets: Iterable[str],
    *,
    period: Cadence | str = Cadence.WEEK,
    slots: int | None = None,
) -> dict[str, int]:
    """Give each target the day of the period on which its full backup runs (seed 1.5).

    Slot ``k`` is the ``k``-th day of the period (0 is its first day: Monday for
    a week, the 1st for a month, 1 January/April/July/October for a quarter,
    1 January for a year). By default there are as many slots as the shortest
    period has days (7, 28, 90, 365), so every slot exists in every period.

    Algorithm: sort the targets by the SHA-256 of their name (a fixed shuffle
    that depends on nothing else) and give the target of rank ``i`` among ``N``
    the slot ``i * slots // N``: consecutive ranks fill the slots in contiguous runs.

    * **Balanced:** the numbers of targets on any two slots differ by at most 1,
      and with ``N <= slots`` no two targets share a day.
    * **Stable:** adding (or removing) one target moves at most
      ``min(N, slots - 1)`` of the ``N`` existing targets: at most one per slot
      boundary, because each boundary ``k * N / slots`` shifts by less than one
      rank. When ``N >= slots`` a moved target moves by exactly one day.
    * **Deterministic:** the result depends only on the set of names.

    Example:
        >>> spread = rolling_slots(["orders-db", "web-config", "app-code", "assets"])
        >>> sorted(spread.values())
        [0, 1, 3, 5]

    Raises:
        PolicyError: A target is not a string or appears twice, the period is
            shorter than a day, or *slots* is out of range.
    """
    _, count = _slot_count(period, slots)
    names = list(targets)
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise PolicyError.for_field(f"targets[{index}]", "a target name (str)", name)
        if name in seen:
            raise PolicyError.for_field(f"targets[{index}]", "a name not listed before", name)
        seen.add(name)
    ordered = sorted(names, key=_hash_key)
    return {name: rank * count // len(ordered) for rank, name in enumerate(ordered)}


def full_backups_due(
    targets: Iterable[str],
    day: date | datetime,
    *,
    period: Cadence | str = Cadence.WEEK,
    slots: int | None = None,
    tz: str | tzinfo = "UTC",
) -> list[str]:
    """The targets whose rolling full backup falls on *day* (see `rolling_slots`), in input order.

    *day* is a date, or an aware datetime whose date is taken in *tz*. Days past
    the last slot (the 29th-31st of a month with 28 slots) have none.

    Example:
        >>> from datetime import date
        >>> names = ["orders-db", "web-config", "app-code", "assets"]
        >>> monday = date(2026, 11, 23)
        >>> [full_backups_due(names, monday + timedelta(days=n)) for n in range(7)]
        [['orders-db'], ['web-config'], [], ['assets'], [], ['app-code'], []]

    Raises:
        PolicyError: As `rolling_slots`; or *day* is a naive datetime, or *tz* is unknown.
    """
    names = list(targets)
    cadence, _ = _slot_count(period, slots)
    if isinstance(day, datetime):
        day = ensure_aware(day, field="day").astimezone(_zone(tz, "tz")).date()
    elif not isinstance(day, date):
        raise PolicyError.for_field("day", "a date or an aware datetime", day)
    index = (day - cadence.first_day(day)).days
    spread = rolling_slots(names, period=cadence, slots=slots)
    return [name for name in names if spread[name] == index]
