"""Calendar-aware durations: ``"35d"``, ``"1y2m3d4h"``, ``Duration(days=35)``.

Months and years step on the calendar, the way Go's ``time.AddDate`` does (and
so restic's ``--keep-within``): 31 March minus one month is "31 February",
which rolls over into 3 March (2 March in a leap year). Days step on the wall
clock of the datetime's own time zone; hours and minutes are exact elapsed time.

Spelling (restic's, plus weeks and minutes): ``y`` years, ``m`` months (not
minutes!), ``w`` weeks, ``d`` days, ``h`` hours, ``min`` minutes, in any order,
each at most once, e.g. ``"1y2m3d4h"``, ``"35d"``, ``"24h"``, ``"90min"``.
"""

from __future__ import annotations

import re
from datetime import UTC as _UTC
from datetime import datetime, timedelta

import attrs

from backuppolicy.core.exceptions import PolicyError

__all__ = ["Duration", "format_duration"]

_PART = re.compile(r"(\d+)(min|y|m|w|d|h)")
_UNIT_FIELDS = {
    "y": "years",
    "m": "months",
    "w": "weeks",
    "d": "days",
    "h": "hours",
    "min": "minutes",
}


def _non_negative(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError.for_field(attribute.name, "an integer >= 0", value)


@attrs.frozen
class Duration:
    """A calendar-aware length of time.

    Example:
        >>> d = Duration.parse("1m")
        >>> from datetime import datetime, UTC
        >>> d.before(datetime(2026, 3, 31, tzinfo=UTC))
        datetime.datetime(2026, 3, 3, 0, 0, tzinfo=datetime.timezone.utc)
        >>> str(Duration(days=35))
        '35d'

    Attributes:
        years: Calendar years.
        months: Calendar months.
        weeks: Weeks of seven calendar days.
        days: Calendar days.
        hours: Elapsed hours.
        minutes: Elapsed minutes.
    """

    years: int = attrs.field(default=0, validator=_non_negative, kw_only=True)
    months: int = attrs.field(default=0, validator=_non_negative, kw_only=True)
    weeks: int = attrs.field(default=0, validator=_non_negative, kw_only=True)
    days: int = attrs.field(default=0, validator=_non_negative, kw_only=True)
    hours: int = attrs.field(default=0, validator=_non_negative, kw_only=True)
    minutes: int = attrs.field(default=0, validator=_non_negative, kw_only=True)

    @classmethod
    def parse(cls, spec: str, *, field: str = "duration") -> Duration:
        """Parse ``"1y2m3d4h"``-style text; *field* names the value in errors.

        Raises:
            PolicyError: The text is not a duration.
        """
        expected = "a duration like '35d', '24h' or '1y2m3d4h' (units y, m, w, d, h, min)"
        if not isinstance(spec, str):
            raise PolicyError.for_field(field, expected, spec)
        text = spec.strip().lower().replace(" ", "")
        pos = 0
        values: dict[str, int] = {}
        for match in _PART.finditer(text):
            unit = match.group(2)
            if match.start() != pos or _UNIT_FIELDS[unit] in values:
                break
            values[_UNIT_FIELDS[unit]] = int(match.group(1))
            pos = match.end()
        if not text or pos != len(text):
            raise PolicyError.for_field(field, expected, spec)
        return cls(**values)

    @classmethod
    def coerce(cls, value: object, *, field: str = "duration") -> Duration:
        """Accept a `Duration`, a spec string, a `datetime.timedelta` or a mapping of parts.

        Raises:
            PolicyError: *value* cannot be read as a duration.
        """
        if isinstance(value, Duration):
            return value
        if isinstance(value, str):
            return cls.parse(value, field=field)
        if isinstance(value, timedelta):
            if value < timedelta(0):
                raise PolicyError.for_field(field, "a non-negative duration", value)
            whole_minutes, rest = divmod(value, timedelta(minutes=1))
            if rest:
                raise PolicyError.for_field(field, "a whole number of minutes", value)
            days, minutes = divmod(whole_minutes, 24 * 60)
            return cls(days=days, hours=minutes // 60, minutes=minutes % 60)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(_UNIT_FIELDS.values()))
            if unknown:
                raise PolicyError.for_field(
                    f"{field}.{unknown[0]}",
                    "one of " + ", ".join(_UNIT_FIELDS.values()),
                    unknown[0],
                )
            try:
                return cls(**value)
            except PolicyError as exc:
                raise PolicyError.for_field(
                    f"{field}.{exc.path}", "an integer >= 0", exc.got
                ) from None
        raise PolicyError.for_field(field, "a duration like '35d'", value)

    @property
    def is_zero(self) -> bool:
        """Whether every part is zero."""
        return not any(attrs.astuple(self))

    @property
    def is_exact(self) -> bool:
        """Whether the duration has no calendar parts (years, months), so it is a fixed timedelta.

        Days and weeks count as exact here: they are 24 h each except across a DST change.
        """
        return self.years == 0 and self.months == 0

    def approx_timedelta(self) -> timedelta:
        """A fixed-length approximation (a year is 365 days, a month 30 days), for sorting and display."""
        days = self.years * 365 + self.months * 30 + self.weeks * 7 + self.days
        return timedelta(days=days, hours=self.hours, minutes=self.minutes)

    def before(self, moment: datetime) -> datetime | None:
        """Return *moment* minus this duration, or ``None`` if that falls before year 1.

        Calendar parts step on the wall clock of *moment*'s time zone (Go ``AddDate``
        semantics: an overflowing day rolls into the next month); hours and minutes
        are then subtracted as elapsed time.
        """
        try:
            shifted = _add_date(moment, -self.years, -self.months, -(self.weeks * 7 + self.days))
            if shifted.tzinfo is not None:
                exact = timedelta(hours=self.hours, minutes=self.minutes)
                utc = shifted.astimezone(_UTC) - exact
                return utc.astimezone(shifted.tzinfo)
            return shifted - timedelta(hours=self.hours, minutes=self.minutes)
        except (OverflowError, ValueError):
            return None

    def after(self, moment: datetime) -> datetime:
        """Return *moment* plus this duration (same calendar rules as `before`).

        Raises:
            OverflowError: The result is past year 9999.
        """
        shifted = _add_date(moment, self.years, self.months, self.weeks * 7 + self.days)
        exact = timedelta(hours=self.hours, minutes=self.minutes)
        if shifted.tzinfo is not None:
            return (shifted.astimezone(_UTC) + exact).astimezone(shifted.tzinfo)
        return shifted + exact

    def __str__(self) -> str:
        parts = [
            f"{value}{unit}"
            for unit, value in (
                ("y", self.years),
                ("m", self.months),
                ("w", self.weeks),
                ("d", self.days),
                ("h", self.hours),
                ("min", self.minutes),
            )
            if value
        ]
        return "".join(parts) or "0d"

    def describe(self) -> str:
        """Human words: ``"35 days"``, ``"1 year 2 months"``."""
        words = []
        for name, value in attrs.asdict(self).items():
            if value:
                unit = name if value != 1 else name[:-1]
                words.append(f"{value} {unit}")
        return " ".join(words) or "0 days"


def _add_date(moment: datetime, years: int, months: int, days: int) -> datetime:
    """Go's ``AddDate`` on the wall-clock fields of *moment* (overflowing days roll over)."""
    month_index = moment.month - 1 + months
    year = moment.year + years + month_index // 12
    month = month_index % 12 + 1
    first = moment.replace(year=year, month=month, day=1)
    return first + timedelta(days=moment.day - 1 + days)


_UNITS_SHORT = (("d", 86400), ("h", 3600), ("min", 60))


def format_duration(value: timedelta | float) -> str:
    """A span of time as a person reads it: ``"8.6 s"``, ``"3 min 5 s"``, ``"3 d 4 h"``.

    *value* is a `~datetime.timedelta` or a number of seconds. Under a minute it shows tenths
    of a second (whole seconds from 10 s on); above, the two largest units, rounded down. A
    negative span gets a leading ``-``.

    >>> format_duration(8.635864)
    '8.6 s'
    >>> format_duration(timedelta(days=3, hours=4, minutes=59))
    '3 d 4 h'
    >>> format_duration(timedelta(hours=26))
    '1 d 2 h'
    >>> format_duration(185)
    '3 min 5 s'
    >>> format_duration(0)
    '0 s'
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 10:  # noqa: PLR2004 - tenths of a second are worth reading below 10 s
        tenths = round(seconds, 1)
        if tenths == 0:
            return "0 s" if seconds == 0 else "< 0.1 s"
        return f"{tenths:g} s"
    whole = int(seconds)
    if whole < 60:  # noqa: PLR2004 - a minute
        return f"{whole} s"
    parts: list[str] = []
    for unit, size in _UNITS_SHORT:
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append(f"{count} {unit}")
    parts.append(f"{whole} s")
    shown = [part for part in parts[:2] if not part.startswith("0 ")]
    return " ".join(shown) or parts[0]
