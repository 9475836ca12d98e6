"""Cron expressions: checking their syntax, and the ``every <cadence>`` form they are built from.

One idea: the text of a schedule. `to_cron` checks and normalises a 5-field expression,
`cron_for` builds one from ``every``/``at``/``day``/``month``, and `recognise` reads it
back. Private to `backuppolicy.core.schedule`.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs
from croniter import CroniterBadDateError, CroniterError, croniter

from backuppolicy.core._cadence import Cadence
from backuppolicy.core._wallclock import did_you_mean
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError

__all__ = [
    "MONTH_NAMES",
    "WEEKDAYS",
    "WEEKDAY_NAMES",
    "Every",
    "cron_for",
    "default_window",
    "every_hour",
    "min_gap",
    "recognise",
    "to_cron",
]

_CRON_EXPECTED: Final = (
    "a 5-field cron expression 'minute hour day-of-month month day-of-week' like '0 4 * * *'"
)
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
MONTH_NAMES: Final = (
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
WEEKDAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
WEEKDAY_NAMES: Final = (
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
    ("day-of-week", _field_pattern(rf"(?:\d+|{'|'.join(WEEKDAYS)})(?:#\d)?")),
)

# How far `min_gap` looks: runs from a leap year that starts on a Saturday.
_GAP_ORIGIN: Final = datetime(2000, 1, 1, tzinfo=UTC)
_GAP_MAX_RUNS: Final = 1000
_GAP_MAX_SPAN: Final = timedelta(days=28 * 366)


def to_cron(value: str) -> str:
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
def min_gap(cron: str) -> timedelta:
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
def every_hour(cron: str) -> bool:
    """Whether the hour field of *cron* matches all 24 hours."""
    hours = croniter(cron, _GAP_ORIGIN).expanded[1]
    return hours == ["*"] or len(set(hours)) == 24  # noqa: PLR2004


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
        for number, (short, name) in enumerate(zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)):
            if text in {short, name.lower()}:
                return number
    hint = did_you_mean(value, WEEKDAYS) if isinstance(value, str) else ""
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


def cron_for(cadence: Cadence, *, at: object, day: object, month: object) -> str:
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


def default_window(cadence: Cadence) -> Duration:
    return Duration(minutes=30) if cadence is Cadence.HOUR else Duration(hours=1)


_CANONICAL: Final = re.compile(
    r"^(?P<minute>\d+) (?P<hour>\d+|\*) (?P<dom>\d+|L|\*) (?P<month>[\d,]+|\*) (?P<dow>\d|\*)$"
)


@attrs.frozen
class Every:
    """An ``every <cadence>`` reading of a canonical cron expression."""

    cadence: Cadence
    at: str
    day: int | str | None = None
    month: int | None = None


def recognise(cron: str) -> Every | None:
    """Read a cron expression that `_cron_for` would build back as ``every <cadence>``."""
    match = _CANONICAL.match(cron)
    if match is None:
        return None
    minute, hour, dom, months, dow = match.group("minute", "hour", "dom", "month", "dow")
    candidate: Every | None = None
    if hour == "*":
        candidate = Every(Cadence.HOUR, f":{int(minute):02d}")
    else:
        at = f"{int(hour):02d}:{int(minute):02d}"
        day: int | str = "last" if dom == "L" else (int(dom) if dom.isdigit() else 0)
        if (dom, months, dow) == ("*", "*", "*"):
            candidate = Every(Cadence.DAY, at)
        elif (dom, months) == ("*", "*"):
            candidate = Every(Cadence.WEEK, at, WEEKDAYS[int(dow) % 7])
        elif (months, dow) == ("*", "*"):
            candidate = Every(Cadence.MONTH, at, day)
        elif dow == "*" and "," in months:
            candidate = Every(Cadence.QUARTER, at, day, int(months.split(",")[0]))
        elif dow == "*" and months.isdigit():
            candidate = Every(Cadence.YEAR, at, day, int(months))
    if candidate is None:
        return None
    try:
        rebuilt = cron_for(
            candidate.cadence, at=candidate.at, day=candidate.day, month=candidate.month
        )
    except PolicyError:
        return None
    return candidate if rebuilt == cron else None
