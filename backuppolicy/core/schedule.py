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

This module holds `Schedule` and re-exports the rest of the public names. The code lives
in one module per idea: ``_cadence`` (`Cadence`), ``_cron`` (cron syntax and the
``every`` form), ``_wallclock`` (zones and DST) and ``_rolling`` (`rolling_slots`,
`full_backups_due`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

import attrs
from croniter import croniter

from backuppolicy.core._cadence import Cadence
from backuppolicy.core._cron import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    WEEKDAYS,
    cron_for,
    default_window,
    every_hour,
    min_gap,
    recognise,
    to_cron,
)
from backuppolicy.core._rolling import full_backups_due, rolling_slots
from backuppolicy.core._wallclock import (
    did_you_mean,
    gap_end,
    resolve_wall,
    tz_name,
    wall_clock,
    zone_by_name,
)
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware

__all__ = ["Cadence", "Schedule", "full_backups_due", "rolling_slots"]

# More than any change of a zone's UTC offset (DST shifts are 30 min to 2 h).
_DST_MARGIN: Final = timedelta(hours=3)


def _to_window(value: Duration | str | timedelta) -> Duration:
    return Duration.coerce(value, field="window")


def _check_window(inst: Schedule, _attribute: attrs.Attribute[Duration], value: Duration) -> None:
    if value.is_zero:
        expected = "a start window longer than zero, like '1h'"
        raise PolicyError.for_field("window", expected, str(value))
    gap = min_gap(inst.cron)
    if value.approx_timedelta() >= gap:
        expected = f"a start window shorter than the {_format_td(gap)} between two runs"
        raise PolicyError.for_field("window", expected, str(value))


def _format_td(value: timedelta) -> str:
    hours, minutes = divmod(value.seconds // 60, 60)
    return Duration(days=value.days, hours=hours, minutes=minutes).describe()


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

    cron: str = attrs.field(converter=to_cron)
    tz: str = attrs.field(default="UTC", converter=tz_name)
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
        cron = cron_for(found, at=at, day=day, month=month)
        return cls(cron, tz=tz, window=default_window(found) if window is None else window)

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
    def from_spec(cls, spec: Mapping[str, object] | str, *, path: str = "schedule") -> Schedule:
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
                hint = f"Did you mean {synonym!r}?" if synonym else did_you_mean(key, _SPEC_KEYS)
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
        cron = cron_for(cadence, at=spec.get("at"), day=spec.get("day"), month=spec.get("month"))
        return cls(cron, tz=tz, window=default_window(cadence) if window is None else window)

    def to_spec(self) -> dict[str, object]:
        """The policy-file form, read back by `from_spec` into an equal schedule.

        Cron expressions that a constructor would build come out in the ``every`` form.

        Example:
            >>> Schedule.weekly("sun", tz="Europe/London").to_spec()
            {'every': 'week', 'day': 'sun', 'at': '04:00', 'tz': 'Europe/London', 'window': '1h'}
        """
        every = recognise(self.cron)
        spec: dict[str, object]
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
        every = recognise(self.cron)
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
        every = recognise(self.cron)
        window = f"(start within {self.window})"
        if every is None:
            return f"cron '{self.cron}' in {self.tz} {window}"
        when = every.cadence.adverb
        if every.cadence is Cadence.WEEK:
            when += f" on {WEEKDAY_NAMES[WEEKDAYS.index(str(every.day))]}"
        elif every.cadence is Cadence.MONTH:
            when += f" on {_day_words(every.day)}"
        elif every.cadence is Cadence.QUARTER:
            first = every.month or 1
            names = [MONTH_NAMES[first - 1 + 3 * q] for q in range(4)]
            when += f" on {_day_words(every.day)} of {', '.join(names[:3])} and {names[3]}"
        elif every.cadence is Cadence.YEAR:
            when += f" on {_day_words(every.day)} of {MONTH_NAMES[(every.month or 1) - 1]}"
        return f"{when} at {every.at} {self.tz} {window}"

    # -- iteration: croniter matches wall-clock times, we map them to instants ----------

    def _forward(self, after: datetime) -> Iterator[datetime]:
        """Runs strictly after *after* (aware), in UTC, in order."""
        zone = zone_by_name(self.tz)
        walls = croniter(self.cron, wall_clock(after, zone) - _DST_MARGIN)
        pending: list[datetime] = []
        last = after
        while True:
            wall: datetime = walls.get_next(datetime)
            pending.extend(t for t in self._instants(wall, zone) if t > last)
            # Later wall-clock times map to instants after this horizon.
            horizon = resolve_wall(wall, zone) - _DST_MARGIN
            while pending and min(pending) < horizon:
                run = min(pending)
                pending = [t for t in pending if t != run]
                last = run
                yield run

    def _backward(self, before: datetime) -> Iterator[datetime]:
        """Runs strictly before *before* (aware), in UTC, newest first."""
        zone = zone_by_name(self.tz)
        walls = croniter(self.cron, wall_clock(before, zone) + _DST_MARGIN)
        pending: list[datetime] = []
        last = before
        while True:
            wall: datetime = walls.get_prev(datetime)
            pending.extend(t for t in self._instants(wall, zone) if t < last)
            horizon = resolve_wall(wall, zone) + _DST_MARGIN
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
            return [first, second] if every_hour(self.cron) else [first]
        return [gap_end(second, first, zone)]  # skipped: second < gap end <= first

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
