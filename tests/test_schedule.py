"""Tests for backuppolicy.core.schedule."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.schedule import Cadence, Schedule, full_backups_due, rolling_slots

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
US = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def london(*args: int, fold: int = 0) -> datetime:
    """A Europe/London wall-clock datetime (fold=1 for the second pass of a repeated hour)."""
    return datetime(*args, tzinfo=LONDON, fold=fold)  # type: ignore[misc]


ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# Each test cron with a span that surely holds two of its runs (for brute-force oracles).
SPANS = {
    "0 4 * * *": timedelta(days=2),
    "30 1 * * *": timedelta(days=2),
    "0 * * * *": timedelta(days=1),
    "*/20 * * * *": timedelta(days=1),
    "15 2 * * 0": timedelta(days=15),
    "0 4 L * *": timedelta(days=63),
    "0 4 1 1,4,7,10 *": timedelta(days=185),
    "0 0 29 2 *": timedelta(days=8 * 366),
    "0 1,3 * * 1-5": timedelta(days=5),
    "45 23 31 12 *": timedelta(days=733),
}
CRONS = list(SPANS)

instants = st.datetimes(
    min_value=datetime(2001, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.just(UTC),
)
# Instants near the 2026 DST changes of London, New York and Lord Howe (a 30-minute shift).
dst_instants = st.sampled_from(
    [
        utc(2026, 3, 8, 7),
        utc(2026, 3, 29, 1),
        utc(2026, 10, 25, 1),
        utc(2026, 11, 1, 6),
        utc(2026, 4, 4, 15),
        utc(2026, 10, 3, 15, 30),
    ]
).flatmap(
    lambda centre: st.integers(-36 * 60, 36 * 60).map(lambda m: centre + timedelta(minutes=m))
)
schedules = st.builds(
    lambda cron, tz: Schedule(cron, tz=tz, window="10min"),
    st.sampled_from(CRONS),
    st.sampled_from(ZONES),
)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


class TestCadence:
    def test_coerce_accepts_values_and_adverbs(self):
        """Values and adverbs name cadences; "annually" is a year."""
        words = ["hour", "daily", "Weekly", " month ", "quarterly", "annually"]
        assert list(Cadence) == [Cadence.coerce(word) for word in words]

    def test_coerce_rejects_unknown_with_hint(self):
        """An unknown cadence names the path, the choices and a close match."""
        with pytest.raises(PolicyError, match=r"^tests\.every: expected one of 'hour'.*Did you"):
            Cadence.coerce("quartrly", path="tests.every")

    @pytest.mark.parametrize(
        ("cadence", "expected"),
        [
            (Cadence.HOUR, "2026-11-26T04"),
            (Cadence.DAY, "2026-11-26"),
            (Cadence.WEEK, "2026-W48"),
            (Cadence.MONTH, "2026-11"),
            (Cadence.QUARTER, "2026-Q4"),
            (Cadence.YEAR, "2026"),
        ],
    )
    def test_period_keys(self, cadence, expected):
        """Each cadence labels its period."""
        assert expected == cadence.period_key(utc(2026, 11, 26, 4, 30))

    def test_iso_week_crosses_the_year(self):
        """1 January 2027 (a Friday) is in ISO week 53 of 2026, which started on Monday 28 Dec."""
        moment = utc(2027, 1, 1, 12)
        assert "2026-W53" == Cadence.WEEK.period_key(moment)
        assert utc(2026, 12, 28) == Cadence.WEEK.period_start(moment)
        assert utc(2027, 1, 4) == Cadence.WEEK.period_end(moment)

    @pytest.mark.parametrize(
        ("moment", "start", "end", "key"),
        [
            (utc(2026, 2, 14), utc(2026, 1, 1), utc(2026, 4, 1), "2026-Q1"),
            (utc(2026, 6, 30, 23, 59), utc(2026, 4, 1), utc(2026, 7, 1), "2026-Q2"),
            (utc(2026, 7, 1), utc(2026, 7, 1), utc(2026, 10, 1), "2026-Q3"),
            (utc(2026, 12, 31, 23, 59), utc(2026, 10, 1), utc(2027, 1, 1), "2026-Q4"),
        ],
    )
    def test_quarters(self, moment, start, end, key):
        """Quarters start in January, April, July and October (seed 3.2)."""
        got = (
            Cadence.QUARTER.period_start(moment),
            Cadence.QUARTER.period_end(moment),
            Cadence.QUARTER.period_key(moment),
        )
        assert (start, end, key) == got

    def test_periods_follow_the_local_calendar(self):
        """At 23:30 UTC on 30 June, London is already in July and Q3."""
        moment = utc(2026, 6, 30, 23, 30)
        assert ("2026-Q2", "2026-Q3") == (
            Cadence.QUARTER.period_key(moment),
            Cadence.QUARTER.period_key(moment, "Europe/London"),
        )
        assert utc(2026, 6, 30, 23) == Cadence.QUARTER.period_start(moment, LONDON)

    def test_days_across_dst_are_23_and_25_hours(self):
        """Days are local days: the spring-forward day is 23 h and the fall-back day 25 h long."""
        lengths = [
            Cadence.DAY.period_end(moment, "Europe/London")
            - Cadence.DAY.period_start(moment, "Europe/London")
            for moment in (utc(2026, 3, 29, 12), utc(2026, 10, 25, 12))
        ]
        assert [timedelta(hours=23), timedelta(hours=25)] == lengths

    def test_repeated_hour_is_one_wall_clock_period(self):
        """Both passes of 01:00-02:00 on the fall-back day share a key and one period."""
        first, second = london(2026, 10, 25, 1, 30), london(2026, 10, 25, 1, 30, fold=1)
        assert Cadence.HOUR.period_key(first, LONDON) == Cadence.HOUR.period_key(second, LONDON)
        assert (utc(2026, 10, 25, 0), utc(2026, 10, 25, 2)) == (
            Cadence.HOUR.period_start(second, LONDON),
            Cadence.HOUR.period_end(first, LONDON),
        )

    def test_naive_moment_and_unknown_zone_are_rejected(self):
        """Naive datetimes and unknown zones raise PolicyError naming the field."""
        with pytest.raises(PolicyError, match="^moment: expected a timezone-aware datetime"):
            Cadence.DAY.period_key(datetime(2026, 1, 1))
        with pytest.raises(PolicyError, match="^tz: expected an IANA time zone name"):
            Cadence.DAY.period_key(utc(2026, 1, 1), "Mars/Olympus")

    def test_first_day_and_min_days(self):
        """first_day gives the first calendar day; min_days the shortest period in days."""
        day = date(2026, 11, 26)
        firsts = [cadence.first_day(day) for cadence in Cadence]
        assert [day, day, date(2026, 11, 23), date(2026, 11, 1), date(2026, 10, 1)] == firsts[:5]
        assert date(2026, 1, 1) == firsts[5]
        assert [0, 1, 7, 28, 90, 365] == [cadence.min_days for cadence in Cadence]

    @given(
        moment=instants | dst_instants,
        cadence=st.sampled_from(Cadence),
        tz=st.sampled_from(ZONES),
    )
    def test_period_contains_moment(self, moment, cadence, tz):
        """start <= moment < end, the start has the moment's key and the end the next key."""
        start, end = cadence.period_start(moment, tz), cadence.period_end(moment, tz)
        assert start <= moment < end
        assert cadence.period_key(moment, tz) == cadence.period_key(start, tz)
        assert cadence.period_key(end, tz) > cadence.period_key(moment, tz)
        assert cadence.period_key(end - US, tz) == cadence.period_key(moment, tz)


class TestConstructors:
    @pytest.mark.parametrize(
        ("schedule", "cron"),
        [
            (Schedule.hourly(), "0 * * * *"),
            (Schedule.hourly(":15"), "15 * * * *"),
            (Schedule.daily(), "0 4 * * *"),
            (Schedule.daily("23:05"), "5 23 * * *"),
            (Schedule.weekly(), "0 4 * * 0"),
            (Schedule.weekly("Saturday", "02:30"), "30 2 * * 6"),
            (Schedule.monthly(), "0 4 1 * *"),
            (Schedule.monthly("last"), "0 4 L * *"),
            (Schedule.quarterly(), "0 4 1 1,4,7,10 *"),
            (Schedule.quarterly(15, month=2), "0 4 15 2,5,8,11 *"),
            (Schedule.yearly(), "0 4 1 1 *"),
            (Schedule.yearly(31 - 3, month=2), "0 4 28 2 *"),
            (Schedule.every("weekly", day="mon", at="01:00"), "0 1 * * 1"),
        ],
    )
    def test_constructors_build_cron(self, schedule, cron):
        """Each constructor builds the canonical cron expression."""
        assert cron == schedule.cron

    def test_defaults_match_the_seed(self):
        """Schedule.daily() is the seed's 04:00 UTC (GMT) run with a one-hour window."""
        assert Schedule("0 4 * * *", tz="UTC", window=Duration(hours=1)) == Schedule.daily()

    def test_zone_objects_become_names(self):
        """A ZoneInfo or datetime.UTC is stored as its IANA name."""
        assert ["Europe/London", "UTC"] == [
            Schedule.daily(tz=LONDON).tz,
            Schedule("0 4 * * *", tz=UTC).tz,
        ]

    def test_hourly_default_window_fits_the_hour(self):
        """Hourly schedules default to a 30-minute window (1h would not fit between runs)."""
        assert Duration(minutes=30) == Schedule.every("hour").window

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: Schedule.daily("25:00"), r"^at: expected a time of day 'HH:MM'"),
            (lambda: Schedule.daily(240), r"^at: .*\(got 240\)\. In YAML, quote the time"),  # type: ignore[arg-type]
            (lambda: Schedule.hourly("15"), r"^at: expected a minute past the hour ':MM'"),
            (lambda: Schedule.weekly("sno"), r"^day: expected a weekday name.*'sun'\?"),
            (lambda: Schedule.monthly(31), r"^day: expected a day of the month.*use 'last'"),
            (lambda: Schedule.monthly(0), r"^day: expected a day of the month from 1 to 28"),
            (lambda: Schedule.quarterly(month=4), r"^month: expected a month number from 1 to 3"),
            (lambda: Schedule.yearly(month=13), r"^month: expected a month number from 1 to 12"),
            (lambda: Schedule.every("day", day="mon"), r"^day: expected nothing for a daily"),
            (lambda: Schedule.every("week", month=1), r"^month: expected nothing for a weekly"),
            (lambda: Schedule.every("fortnight"), r"^every: expected one of 'hour'"),
            (
                lambda: Schedule.daily(tz="Europe/Lodnon"),
                r"^tz: expected an IANA time zone name .*Did you mean 'Europe/London'\?",
            ),
            (lambda: Schedule.daily(window="0h"), r"^window: expected a start window longer"),
            (lambda: Schedule.daily(window="soon"), r"^window: expected a duration like '35d'"),
            (
                lambda: Schedule.daily(window="1d"),
                (
                    r"^window: expected a start window shorter than the 1 day between two runs "
                    r"\(got '1d'\)\.$"
                ),
            ),
        ],
    )
    def test_bad_values_name_the_field(self, build, message):
        """Every bad value raises PolicyError naming the field, the expectation and the value."""
        with pytest.raises(PolicyError, match=message):
            build()


class TestCron:
    @pytest.mark.parametrize(
        ("given", "cron"),
        [
            ("@daily", "0 0 * * *"),
            ("@HOURLY", "0 * * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@annually", "0 0 1 1 *"),
            ("  0   4 *  * *\t", "0 4 * * *"),
            ("0 4 * jan,jul mon-fri", "0 4 * jan,jul mon-fri"),
            ("*/15 1-5/2 1,15 * *", "*/15 1-5/2 1,15 * *"),
            ("0 4 * * 1#2", "0 4 * * 1#2"),
        ],
    )
    def test_aliases_and_whitespace_are_normalised(self, given, cron):
        """Aliases expand and whitespace collapses; other text is kept as written."""
        assert cron == Schedule(given, window="1min").cron

    @pytest.mark.parametrize(
        ("cron", "hint"),
        [
            ("0 4 * * * 0", "It has 6 fields"),
            ("0 4 * *", "It has 4 fields"),
            ("R 4 * * *", "The minute field 'R' is not valid"),
            ("H 4 * * *", "The minute field 'H' is not valid"),
            ("0 4 * * R", "The day-of-week field 'R' is not valid"),
            ("0 4 ? * *", "The day-of-month field '?' is not valid"),
            ("0 24 * * *", "out of range"),
            ("61 4 * * *", "out of range"),
            ("0 4 * * 1#6", "Invalid day_of_week"),
            ("0 0 30 2 *", "It matches no date"),
            ("@reboot", "Aliases: @hourly"),
            ("", "It has 1 fields"),
        ],
    )
    def test_invalid_cron_is_rejected(self, cron, hint):
        """Invalid, random, hashed and impossible expressions are rejected with the reason."""
        with pytest.raises(PolicyError, match=r"^cron: expected a 5-field cron expression") as info:
            Schedule(cron)
        assert hint in str(info.value)
        assert (cron, "cron") == (info.value.got, info.value.path)

    def test_non_string_cron_is_rejected(self):
        """A cron expression must be text."""
        with pytest.raises(PolicyError, match=r"^cron: .*\(got 4\)\.$"):
            Schedule(4)  # type: ignore[arg-type]

    def test_window_must_be_shorter_than_the_shortest_gap(self):
        """The shortest gap counts: 04:00 and 05:00 daily are one hour apart."""
        with pytest.raises(PolicyError, match="shorter than the 1 hour between two runs"):
            Schedule("0 4,5 * * *")
        assert Duration(minutes=59) == Schedule("0 4,5 * * *", window="59min").window

    def test_window_gap_spans_weekends(self):
        """Weekday runs at 23:00 and 01:00 are 2 h apart across midnight."""
        with pytest.raises(PolicyError, match="shorter than the 2 hours between two runs"):
            Schedule("0 1,23 * * 1-5", window="2h")


class TestNextRunLastDue:
    def test_next_run_is_strictly_after(self):
        """A run exactly at *after* is not returned; the next one is."""
        schedule = Schedule.daily()
        assert utc(2026, 11, 27, 4) == schedule.next_run(utc(2026, 11, 26, 4))
        assert utc(2026, 11, 26, 4) == schedule.next_run(utc(2026, 11, 26, 4) - US)

    def test_last_due_includes_the_instant(self):
        """A run exactly at *before* is the last due run."""
        schedule = Schedule.daily()
        assert utc(2026, 11, 26, 4) == schedule.last_due(utc(2026, 11, 26, 4))
        assert utc(2026, 11, 25, 4) == schedule.last_due(utc(2026, 11, 26, 4) - US)

    def test_midnight(self):
        """A midnight run belongs to the new day, from either side of midnight."""
        schedule = Schedule.daily("00:00")
        assert utc(2026, 11, 27) == schedule.next_run(utc(2026, 11, 26, 23, 59, 59, 999999))
        assert utc(2026, 11, 27) == schedule.last_due(utc(2026, 11, 27))
        assert utc(2026, 11, 26) == schedule.last_due(utc(2026, 11, 26, 23, 59, 59))

    def test_year_end(self):
        """Daily and yearly schedules cross the new year."""
        assert utc(2027, 1, 1, 4) == Schedule.daily().next_run(utc(2026, 12, 31, 4))
        yearly = Schedule.yearly()
        assert utc(2027, 1, 1, 4) == yearly.next_run(utc(2026, 6, 1))
        assert utc(2026, 1, 1, 4) == yearly.last_due(utc(2027, 1, 1, 3, 59))
        late = Schedule("45 23 31 12 *")
        assert utc(2026, 12, 31, 23, 45) == late.last_due(utc(2027, 1, 1))

    def test_last_day_of_month_and_leap_day(self):
        """'last' follows month lengths; 29 February waits for a leap year."""
        monthly = Schedule.monthly("last")
        got = list(monthly.runs_between(utc(2027, 1, 15), utc(2027, 4, 1)))
        assert [utc(2027, 1, 31, 4), utc(2027, 2, 28, 4), utc(2027, 3, 31, 4)] == got
        assert utc(2028, 2, 29, 4) == monthly.next_run(utc(2028, 2, 1))
        assert utc(2028, 2, 29) == Schedule("0 0 29 2 *").next_run(utc(2026, 1, 1))

    def test_quarterly_runs_four_times_a_year(self):
        """A quarterly schedule (seed 3.2) runs once in each calendar quarter."""
        runs = list(Schedule.quarterly().runs_between(utc(2026, 1, 1), utc(2027, 1, 1)))
        assert [utc(2026, m, 1, 4) for m in (1, 4, 7, 10)] == runs
        keys = [Cadence.QUARTER.period_key(run) for run in runs]
        assert ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"] == keys

    def test_runs_between_is_half_open(self):
        """runs_between includes a run at start and excludes one at end."""
        schedule = Schedule.daily()
        runs = list(schedule.runs_between(utc(2026, 11, 26, 4), utc(2026, 11, 28, 4)))
        assert [utc(2026, 11, 26, 4), utc(2026, 11, 27, 4)] == runs

    def test_time_zone_follows_summer_time(self):
        """04:00 in London is 03:00 UTC in summer and 04:00 UTC in winter; results are UTC."""
        schedule = Schedule.daily(tz="Europe/London")
        summer, winter = schedule.next_run(utc(2026, 7, 1)), schedule.next_run(utc(2026, 12, 1))
        assert (utc(2026, 7, 1, 3), utc(2026, 12, 1, 4)) == (summer, winter)
        assert (UTC, UTC) == (summer.tzinfo, winter.tzinfo)

    def test_any_input_zone_is_accepted(self):
        """Aware inputs in any zone give the same UTC answer."""
        schedule = Schedule.daily()
        offset = datetime(2026, 11, 26, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata"))  # 03:30 UTC
        assert utc(2026, 11, 26, 4) == schedule.next_run(offset)

    def test_naive_inputs_are_rejected(self):
        """Naive datetimes raise PolicyError naming the argument."""
        schedule = Schedule.daily()
        naive = datetime(2026, 11, 26)
        for call, field in [
            (lambda: schedule.next_run(naive), "after"),
            (lambda: schedule.last_due(naive), "before"),
            (lambda: list(schedule.runs_between(naive, naive)), "start"),
            (lambda: schedule.is_overdue(None, naive), "now"),
            (lambda: schedule.is_overdue(naive, utc(2026, 1, 1)), "last_success"),
        ]:
            with pytest.raises(PolicyError, match=f"^{field}: expected a timezone-aware"):
                call()

    def test_last_due_before_year_one_is_none(self):
        """There is no run before the first representable day."""
        assert None is Schedule.daily().last_due(utc(1, 1, 1, 3))

    @given(schedule=schedules, moment=instants | dst_instants)
    def test_next_and_last_are_consistent(self, schedule, moment):
        """last_due(x) <= x < next_run(x), with no run between them."""
        after, before = schedule.next_run(moment), schedule.last_due(moment)
        assert before is not None
        assert before <= moment < after
        assert after == schedule.next_run(before)
        assert after == schedule.last_due(after)
        assert before == schedule.last_due(after - US)

    @given(schedule=schedules, moment=dst_instants)
    def test_runs_between_matches_stepping(self, schedule, moment):
        """runs_between yields what repeated next_run yields, each run once."""
        end = moment + timedelta(days=2)
        stepped, run = [], schedule.next_run(moment - US)
        while run < end:
            stepped.append(run)
            run = schedule.next_run(run)
        assert stepped == list(schedule.runs_between(moment, end))


class TestDaylightSaving:
    def test_spring_forward_runs_after_the_gap(self):
        """01:30 does not exist on 29 March 2026 in London: that day runs at 02:00 BST."""
        schedule = Schedule.daily("01:30", tz="Europe/London")
        runs = list(schedule.runs_between(utc(2026, 3, 28), utc(2026, 3, 31)))
        assert [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)] == runs
        assert london(2026, 3, 29, 2) == runs[1]

    def test_spring_forward_merges_skipped_runs(self):
        """01:00 and 01:30 are both skipped; they run once, at the end of the gap."""
        schedule = Schedule("0,30 1 * * *", tz="Europe/London", window="29min")
        runs = list(schedule.runs_between(utc(2026, 3, 29), utc(2026, 3, 30)))
        assert [utc(2026, 3, 29, 1)] == runs

    def test_fall_back_runs_a_daily_job_once(self):
        """01:30 occurs twice on 25 October 2026 in London: the job runs at the first one only."""
        schedule = Schedule.daily("01:30", tz="Europe/London")
        runs = list(schedule.runs_between(utc(2026, 10, 24), utc(2026, 10, 27)))
        assert [
            utc(2026, 10, 24, 0, 30),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 26, 1, 30),
        ] == runs
        second_pass = london(2026, 10, 25, 1, 45, fold=1)
        assert utc(2026, 10, 25, 0, 30) == schedule.last_due(second_pass)
        assert utc(2026, 10, 26, 1, 30) == schedule.next_run(london(2026, 10, 25, 1, 30))

    def test_fall_back_keeps_both_passes_of_every_hour_schedules(self):
        """An hourly schedule follows elapsed time: the repeated hour runs twice."""
        schedule = Schedule("0 * * * *", tz="Europe/London", window="30min")
        runs = list(schedule.runs_between(utc(2026, 10, 24, 23), utc(2026, 10, 25, 3)))
        assert [utc(2026, 10, 24, 23) + timedelta(hours=h) for h in range(4)] == runs

    def test_fall_back_in_new_york(self):
        """America/New_York falls back on 1 November 2026; 01:30 runs once, at 05:30 UTC."""
        schedule = Schedule.daily("01:30", tz="America/New_York")
        runs = list(schedule.runs_between(utc(2026, 11, 1), utc(2026, 11, 3)))
        assert [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)] == runs

    def test_half_hour_shift_of_lord_howe(self):
        """Lord Howe turns its clock back 30 min (02:00 to 01:30) at 15:00 UTC on 4 April 2026.

        Every-hour schedules run both passes of the repeated half hour; a daily job runs once.
        """
        every_20 = Schedule("*/20 * * * *", tz="Australia/Lord_Howe", window="10min")
        runs = list(every_20.runs_between(utc(2026, 4, 4, 14), utc(2026, 4, 4, 15, 40)))
        expected = [(14, 0), (14, 20), (14, 40), (15, 10), (15, 30)]
        assert [utc(2026, 4, 4, h, m) for h, m in expected] == runs
        assert utc(2026, 4, 4, 15, 10) == every_20.next_run(utc(2026, 4, 4, 14, 40, 40))
        daily = Schedule.daily("01:45", tz="Australia/Lord_Howe")
        runs = list(daily.runs_between(utc(2026, 4, 4), utc(2026, 4, 6)))
        assert [utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15)] == runs

    def test_overdue_across_fall_back(self):
        """A success at the first 01:30 keeps the job on time through the repeated hour."""
        schedule = Schedule.daily("01:30", tz="Europe/London")
        success = utc(2026, 10, 25, 0, 31)
        assert not schedule.is_overdue(success, now=utc(2026, 10, 26, 1, 29))
        assert schedule.is_overdue(success, now=utc(2026, 10, 26, 2, 30))


class TestWindowAndOverdue:
    @pytest.fixture(name="schedule")
    def _schedule(self):
        return Schedule.daily("04:00", window="1h")

    def test_in_window_is_half_open(self, schedule):
        """The window is [04:00, 05:00)."""
        moments = [utc(2026, 11, 26, 3, 59), utc(2026, 11, 26, 4), utc(2026, 11, 26, 5) - US]
        moments.append(utc(2026, 11, 26, 5))
        assert [False, True, True, False] == [schedule.in_window(m) for m in moments]

    def test_overdue_exactly_at_window_end(self, schedule):
        """Without grace, a missed 04:00 run is overdue from 05:00 on, not a microsecond before."""
        yesterday = utc(2026, 11, 25, 4, 10)
        assert not schedule.is_overdue(yesterday, now=utc(2026, 11, 26, 5) - US)
        assert schedule.is_overdue(yesterday, now=utc(2026, 11, 26, 5))

    def test_grace_extends_the_deadline(self, schedule):
        """With 2h grace, the 04:00 run is overdue from 07:00."""
        yesterday = utc(2026, 11, 25, 4, 10)
        assert utc(2026, 11, 26, 7) == schedule.deadline(utc(2026, 11, 26, 4), grace="2h")
        assert not schedule.is_overdue(yesterday, now=utc(2026, 11, 26, 7) - US, grace="2h")
        assert schedule.is_overdue(yesterday, now=utc(2026, 11, 26, 7), grace=Duration(hours=2))

    def test_success_at_the_run_counts(self, schedule):
        """A success at exactly the run time counts; one a microsecond earlier does not."""
        now = utc(2026, 11, 26, 12)
        assert not schedule.is_overdue(utc(2026, 11, 26, 4), now=now)
        assert schedule.is_overdue(utc(2026, 11, 26, 4) - US, now=now)

    def test_not_overdue_while_the_next_run_is_in_its_window(self, schedule):
        """Yesterday's success covers today until today's window closes."""
        assert not schedule.is_overdue(utc(2026, 11, 25, 4, 5), now=utc(2026, 11, 26, 4, 30))

    def test_never_backed_up_is_overdue(self, schedule):
        """No success at all is overdue once a deadline has passed."""
        assert schedule.is_overdue(None, now=utc(2026, 11, 26, 5))

    def test_last_missed_names_the_run(self, schedule):
        """last_missed returns the latest run whose deadline passed unmet."""
        got = schedule.last_missed(utc(2026, 11, 20, 4), now=utc(2026, 11, 26, 4, 30))
        assert utc(2026, 11, 25, 4) == got
        assert None is schedule.last_missed(utc(2026, 11, 25, 4), now=utc(2026, 11, 26, 4, 30))

    def test_calendar_grace(self):
        """A one-month grace steps on the calendar: 31 Jan 05:00 + 1 month is 3 March."""
        schedule = Schedule.monthly("last")
        success = utc(2026, 12, 31, 4)
        assert not schedule.is_overdue(success, now=utc(2027, 3, 3, 5) - US, grace="1m")
        assert utc(2027, 1, 31, 4) == schedule.last_missed(success, utc(2027, 3, 3, 5), "1m")

    def test_bad_grace_is_rejected(self, schedule):
        """Grace must be a duration."""
        with pytest.raises(PolicyError, match="^grace: expected a duration"):
            schedule.is_overdue(None, now=utc(2026, 1, 1), grace="later")

    @given(schedule=schedules, now=instants | dst_instants)
    def test_success_at_last_due_is_never_overdue(self, schedule, now):
        """Succeeding at the latest due run leaves nothing overdue; never succeeding is overdue."""
        assert not schedule.is_overdue(schedule.last_due(now), now)
        assert schedule.is_overdue(None, now + timedelta(days=1462))

    @given(schedule=schedules, now=instants | dst_instants)
    def test_overdue_matches_definition(self, schedule, now):
        """Overdue iff the latest run with deadline <= now is after the last success."""
        last_success = now - timedelta(days=3)
        candidates = [
            run
            for run in schedule.runs_between(now - SPANS[schedule.cron], now + US)
            if schedule.deadline(run) <= now
        ][-1:]
        expected = bool(candidates) and last_success < candidates[0]
        assert expected == schedule.is_overdue(last_success, now)


class TestSpec:
    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            ("0 4 * * *", Schedule.daily()),
            ({"cron": "0 4 * * *", "tz": "UTC", "window": "1h"}, Schedule.daily()),
            (
                {"every": "day", "at": "04:00", "tz": "Europe/London"},
                Schedule.daily(tz="Europe/London"),
            ),
            ({"every": "week", "day": "sun", "at": "04:00"}, Schedule.weekly()),
            (
                {"every": "quarterly", "day": "last", "month": 3},
                Schedule.quarterly("last", month=3),
            ),
            ({"every": "hour", "at": ":05"}, Schedule.hourly(":05")),
            ({"every": "year", "month": 7, "window": "3h"}, Schedule.yearly(month=7, window="3h")),
        ],
    )
    def test_spec_forms(self, spec, expected):
        """Bare cron strings, cron mappings and every-mappings all read."""
        assert expected == Schedule.from_spec(spec)

    def test_yaml_spec(self):
        """A YAML policy fragment reads, with a quoted time of day."""
        spec = yaml.safe_load('every: week\nday: sun\nat: "04:00"\ntz: Europe/London\n')
        assert Schedule.weekly(tz="Europe/London") == Schedule.from_spec(spec)

    @pytest.mark.parametrize(
        ("spec", "path", "message"),
        [
            ({"cron": "0 4 * *"}, "schedule.cron", "expected a 5-field cron expression"),
            ({"cron": "0 4 * * *", "window": "2d"}, "schedule.window", "shorter than the 1 day"),
            ({"cron": "0 4 * * *", "tz": "Narnia"}, "schedule.tz", "an IANA time zone"),
            ({"every": "day", "at": "4am"}, "schedule.at", "a time of day 'HH:MM'"),
            ({"every": "day", "at": 240}, "schedule.at", "quote the time"),
            ({"every": "fortnight"}, "schedule.every", "one of 'hour', 'day'"),
            ({"every": "week", "day": 0}, "schedule.day", "a weekday name"),
            ({"cron": "0 4 * * *", "at": "04:00"}, "schedule.at", "no value next to 'cron'"),
            ({"cron": "0 4 * * *", "every": "day"}, "schedule", "exactly one of 'cron' or"),
            ({"tz": "UTC"}, "schedule", "exactly one of 'cron' or 'every'"),
            (5, "schedule", "a cron string or a mapping"),
            ("0 4 * * * *", "schedule.cron", "It has 6 fields"),
        ],
    )
    def test_errors_name_the_field_path(self, spec, path, message):
        """Errors carry the dotted path of the field and say what was expected."""
        with pytest.raises(PolicyError, match=message) as info:
            Schedule.from_spec(spec)
        assert path == info.value.path
        assert str(info.value).startswith(f"{path}: ")

    def test_unknown_key_suggests_a_close_one(self):
        """An unknown key is named with its path and a difflib suggestion."""
        with pytest.raises(PolicyError) as info:
            Schedule.from_spec({"every": "day", "timezone": "UTC"}, path="targets[2].schedule")
        assert "targets[2].schedule.timezone" == info.value.path
        assert str(info.value).endswith("(got 'timezone'). Did you mean 'tz'?")

    def test_unknown_key_hint_for_typo(self):
        """A misspelt key gets the closest valid key as a hint."""
        with pytest.raises(PolicyError, match=r"^schedule\.windw: .*Did you mean 'window'\?$"):
            Schedule.from_spec({"cron": "0 4 * * *", "windw": "2h"})

    @pytest.mark.parametrize(
        ("schedule", "spec"),
        [
            (
                Schedule.daily(),
                {"every": "day", "at": "04:00", "tz": "UTC", "window": "1h"},
            ),
            (
                Schedule.quarterly(month=2),
                {
                    "every": "quarter",
                    "day": 1,
                    "month": 2,
                    "at": "04:00",
                    "tz": "UTC",
                    "window": "1h",
                },
            ),
            (
                Schedule("0 4 * * 1-5", tz="Europe/London", window="90min"),
                {"cron": "0 4 * * 1-5", "tz": "Europe/London", "window": "90min"},
            ),
        ],
    )
    def test_to_spec(self, schedule, spec):
        """Constructor schedules dump in the every-form, others as cron."""
        assert spec == schedule.to_spec()

    @given(
        schedule=schedules
        | st.builds(
            lambda cadence, day, tz: Schedule.every(
                cadence,
                day=day if cadence in {Cadence.MONTH, Cadence.QUARTER, Cadence.YEAR} else None,
                tz=tz,
            ),
            st.sampled_from(Cadence),
            st.sampled_from([1, 15, 28, "last"]),
            st.sampled_from(ZONES),
        )
    )
    def test_spec_round_trips(self, schedule):
        """from_spec(to_spec(s)) == s, also through YAML."""
        dumped = yaml.safe_dump(schedule.to_spec())
        assert schedule == Schedule.from_spec(yaml.safe_load(dumped))

    @pytest.mark.parametrize(
        ("schedule", "text"),
        [
            (Schedule.daily(), "daily at 04:00 UTC (start within 1h)"),
            (Schedule.hourly(":15"), "hourly at :15 UTC (start within 30min)"),
            (
                Schedule.weekly(tz="Europe/London", window="2h"),
                "weekly on Sunday at 04:00 Europe/London (start within 2h)",
            ),
            (Schedule.monthly("last"), "monthly on the last day at 04:00 UTC (start within 1h)"),
            (
                Schedule.quarterly(5, month=3),
                (
                    "quarterly on day 5 of March, June, September and December at 04:00 UTC"
                    " (start within 1h)"
                ),
            ),
            (Schedule.yearly(month=7), "yearly on day 1 of July at 04:00 UTC (start within 1h)"),
            (
                Schedule("0 4 * * 1-5", tz="Europe/London"),
                "cron '0 4 * * 1-5' in Europe/London (start within 1h)",
            ),
        ],
    )
    def test_describe(self, schedule, text):
        """describe() reads well in the policy document."""
        assert text == schedule.describe()

    def test_cadence_is_recognised(self):
        """Plain every-schedules know their cadence; other cron expressions have none."""
        got = [
            Schedule.daily().cadence,
            Schedule.quarterly().cadence,
            Schedule("0 4 * * 1-5").cadence,
        ]
        assert [Cadence.DAY, Cadence.QUARTER, None] == got


class TestRollingSlots:
    def test_seven_targets_fill_a_week(self):
        """Seven targets get the seven days of the week, one each."""
        spread = rolling_slots([f"db-{n}" for n in range(7)])
        assert list(range(7)) == sorted(spread.values())

    def test_ten_targets_load_days_evenly(self):
        """Ten targets over seven days: three days carry two, four carry one."""
        loads = Counter(rolling_slots([f"app-{n}" for n in range(10)]).values())
        assert [1, 1, 1, 1, 2, 2, 2] == sorted(loads[slot] for slot in range(7))

    def test_input_order_does_not_matter(self):
        """The spread depends on the set of names only."""
        targets = [f"t{n}" for n in range(20)]
        assert rolling_slots(targets) == rolling_slots(reversed(targets))

    def test_month_and_custom_slot_counts(self):
        """Months use 28 slots by default; slots= narrows the spread."""
        targets = [f"t{n}" for n in range(56)]
        assert set(range(28)) == set(rolling_slots(targets, period="month").values())
        assert set(range(5)) == set(rolling_slots(targets, slots=5).values())

    def test_empty_targets(self):
        """No targets, no slots."""
        assert {} == rolling_slots([])

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda: rolling_slots(["a", "b", "a"]), r"^targets\[2\]: expected a name not listed"),
            (lambda: rolling_slots(["a", 3]), r"^targets\[1\]: expected a target name"),  # type: ignore[list-item]
            (lambda: rolling_slots(["a"], period="hour"), r"^period: expected a period of a day"),
            (lambda: rolling_slots(["a"], slots=8), r"^slots: .* to 7 .*\(got 8\)"),
            (lambda: rolling_slots(["a"], slots=0), r"^slots: .* to 7 .*\(got 0\)"),
        ],
    )
    def test_bad_arguments(self, call, message):
        """Duplicates, non-names, sub-day periods and impossible slot counts are rejected."""
        with pytest.raises(PolicyError, match=message):
            call()

    @given(
        targets=st.sets(names, max_size=60),
        period=st.sampled_from([Cadence.DAY, Cadence.WEEK, Cadence.MONTH, Cadence.QUARTER]),
    )
    def test_balanced(self, targets, period):
        """Loads of any two slots differ by at most 1; with N <= slots no day is shared."""
        spread = rolling_slots(targets, period=period)
        loads = Counter(spread.values())
        assert all(0 <= slot < period.min_days for slot in spread.values())
        per_slot = [loads[slot] for slot in range(period.min_days)]
        assert max(per_slot) - min(per_slot) <= 1
        if len(targets) <= period.min_days:
            assert len(targets) == len(loads)

    @given(
        targets=st.sets(names, max_size=60),
        new=names,
        period=st.sampled_from([Cadence.WEEK, Cadence.MONTH, Cadence.YEAR]),
    )
    def test_adding_a_target_moves_few(self, targets, new, period):
        """Adding one target moves at most min(N, slots - 1) others; by one day when N >= slots."""
        assume(new not in targets)
        before = rolling_slots(targets, period=period)
        after = rolling_slots([*targets, new], period=period)
        moved = {
            name: after[name] - before[name] for name in targets if after[name] != before[name]
        }
        assert len(moved) <= min(len(targets), period.min_days - 1)
        if len(targets) >= period.min_days:
            assert all(abs(step) == 1 for step in moved.values())


class TestFullBackupsDue:
    def test_each_target_once_a_week(self):
        """Over any seven days from a Monday, each target's full backup is due exactly once."""
        targets = [f"db-{n}" for n in range(12)]
        week = [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]
        due = [name for day in week for name in full_backups_due(targets, day)]
        assert sorted(targets) == sorted(due)

    def test_due_day_matches_slot(self):
        """A target is due on the day of its slot: Monday is slot 0."""
        targets = ["orders-db", "web-config", "app-code", "assets"]
        spread = rolling_slots(targets)
        monday = date(2026, 11, 23)
        for name, slot in spread.items():
            assert name in full_backups_due(targets, monday + timedelta(days=slot))

    def test_month_days_past_the_slots_are_free(self):
        """With 28 monthly slots, the 29th to 31st carry no full backups."""
        targets = [f"t{n}" for n in range(100)]
        tail = [full_backups_due(targets, date(2026, 12, d), period="month") for d in (29, 30, 31)]
        assert [[], [], []] == tail

    def test_datetime_uses_the_local_date(self):
        """23:30 UTC on Sunday 5 July is already Monday in London."""
        targets = [f"t{n}" for n in range(7)]
        monday = full_backups_due(targets, date(2026, 7, 6))
        assert monday == full_backups_due(targets, utc(2026, 7, 5, 23, 30), tz="Europe/London")

    def test_naive_datetime_and_non_date_are_rejected(self):
        """Naive datetimes and non-dates raise PolicyError naming day."""
        with pytest.raises(PolicyError, match="^day: expected a timezone-aware datetime"):
            full_backups_due(["a"], datetime(2026, 7, 6))
        with pytest.raises(PolicyError, match="^day: expected a date or an aware datetime"):
            full_backups_due(["a"], "2026-07-06")  # type: ignore[arg-type]

    @given(
        targets=st.sets(names, max_size=40),
        start=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)),
        period=st.sampled_from([Cadence.WEEK, Cadence.MONTH, Cadence.QUARTER]),
    )
    def test_every_target_once_per_period(self, targets, start, period):
        """Over the days of any period, every target is due exactly once."""
        first = period.first_day(start)
        end = Cadence.DAY.period_end(
            period.period_end(datetime(first.year, first.month, first.day, tzinfo=UTC)) - US
        )
        days = (end.date() - first).days
        due = list(
            itertools.chain.from_iterable(
                full_backups_due(targets, first + timedelta(days=n), period=period)
                for n in range(days)
            )
        )
        assert sorted(targets) == sorted(due)
