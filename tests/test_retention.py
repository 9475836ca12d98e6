"""Retention rules, the planner and RetentionPlan, where restic's reference data is silent."""

from __future__ import annotations

import gc
import html
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest
from dateutil import tz as dateutil_tz

import backuppolicy as bp
from backuppolicy import LegalHold, PolicyError, RecoveryPoint, Status
from backuppolicy.core.retention import (
    AnyOf,
    KeepDaily,
    KeepHourly,
    KeepLast,
    KeepMonthly,
    KeepTags,
    KeepWeekly,
    KeepWithin,
    KeepYearly,
    MaxAge,
    RetentionPlan,
    RetentionRule,
    as_rule,
    rule_from_spec,
)

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
HOLD = LegalHold(reason="litigation", reference="case-17")


def point(pid: str, when: datetime, target: str = "orders-db", **kwargs) -> RecoveryPoint:
    """A recovery point with the fields that matter here."""
    return RecoveryPoint(id=pid, target=target, created_at=when, **kwargs)


def daily(days: int, *, at: datetime = NOW, target: str = "orders-db") -> list[RecoveryPoint]:
    """One point a day, the newest at *at*, ids d00 (newest), d01, ..."""
    return [point(f"d{i:02d}", at - timedelta(days=i), target) for i in range(days)]


def kept_ids(result: dict[str, list[str]] | RetentionPlan) -> list[str]:
    """Kept ids, sorted."""
    if isinstance(result, RetentionPlan):
        return sorted(p.id for p in result.keep)
    return sorted(result)


class TestSeedPolicy:
    """The seed's "we retain backups for 35 days" (§2.1/2.2) as MaxAge(days=35)."""

    @pytest.fixture(name="points")
    def _points(self):
        """60 days of daily 04:00 UTC backups, the newest at NOW."""
        return daily(60)

    def test_keeps_exactly_the_last_35_days(self, points):
        """Of 60 daily points, the 35 younger than 35 days are kept, 25 deleted."""
        plan = MaxAge(days=35).plan(points, now=NOW)

        assert [f"d{i:02d}" for i in range(35)] == [p.id for p in plan.keep]
        assert [f"d{i:02d}" for i in range(35, 60)] == [p.id for p in plan.delete]

    def test_point_exactly_35_days_old_is_deleted(self, points):
        """created_at == now - 35 days is not strictly newer than the cutoff: deleted."""
        plan = MaxAge(days=35).plan(points, now=NOW)

        assert NOW - timedelta(days=35) == points[35].created_at
        assert (["older than 35d"], ["younger than 35d"]) == (
            plan.reasons["d35"],
            plan.reasons["d34"],
        )

    def test_one_microsecond_younger_is_kept(self):
        """A point a microsecond younger than 35 days is kept."""
        edge = point("edge", NOW - timedelta(days=35) + timedelta(microseconds=1))

        assert {"edge": ["younger than 35d"]} == MaxAge(days=35).keep([edge], now=NOW)

    def test_newest_point_gets_the_floor_reason_too(self, points):
        """The newest completed point carries the rule's and the floor's reasons."""
        plan = MaxAge(days=35).plan(points, now=NOW)

        assert ["younger than 35d", "newest completed point of orders-db"] == plan.reasons["d00"]


class TestCountRules:
    """KeepLast and the per-period rules: newest of each period, budget, oldest."""

    def test_keep_last_counts_only_completed_points(self):
        """Failed and partial points are skipped by KeepLast."""
        points = [
            point("a", NOW, status=Status.FAILED),
            point("b", NOW - timedelta(hours=1)),
            point("c", NOW - timedelta(hours=2), status=Status.PARTIAL),
            point("d", NOW - timedelta(hours=3)),
            point("e", NOW - timedelta(hours=4)),
        ]

        assert {"b": ["last 1"], "d": ["last 2"]} == KeepLast(2).keep(points, now=NOW)

    def test_daily_keeps_newest_of_each_day(self):
        """Two points a day: the later one of each day is kept."""
        points = [point(f"p{i}", NOW - timedelta(hours=12 * i)) for i in range(6)]

        result = KeepDaily(2).keep(points, now=NOW)

        assert {"p0": ["daily 2026-11-26"], "p1": ["daily 2026-11-25"]} == result

    def test_oldest_point_kept_while_budget_is_left(self):
        """With budget left, the oldest point is kept too, labelled 'oldest'."""
        points = [point(f"p{i}", NOW - timedelta(hours=12 * i)) for i in range(5)]

        result = KeepDaily(5).keep(points, now=NOW)

        assert ["oldest daily 2026-11-24"] == result["p4"]
        assert ["p0", "p1", "p3", "p4"] == kept_ids(result)

    def test_oldest_point_starting_a_new_period_is_plain(self):
        """When the oldest point starts a new period, its reason has no 'oldest' prefix."""
        points = [point(f"p{i}", NOW - timedelta(hours=12 * i)) for i in range(4)]

        assert ["daily 2026-11-24"] == KeepDaily(5).keep(points, now=NOW)["p3"]

    def test_oldest_point_not_kept_when_budget_is_spent(self):
        """With the budget spent, the oldest point is not kept."""
        points = [point(f"p{i}", NOW - timedelta(hours=12 * i)) for i in range(5)]

        assert ["p0", "p1", "p3"] == kept_ids(KeepDaily(3).keep(points, now=NOW))

    def test_failed_points_do_not_fill_buckets(self):
        """A failed point is not the day's backup: the day's newest completed one is kept."""
        points = [
            point("failed", NOW, status=Status.FAILED),
            point("good", NOW - timedelta(hours=1)),
            point("yesterday", NOW - timedelta(days=1)),
        ]

        assert ["good", "yesterday"] == kept_ids(KeepDaily(7).keep(points, now=NOW))

    def test_each_target_has_its_own_budget(self):
        """KeepDaily(1) keeps one point per target."""
        points = daily(3, target="a") + [
            point(f"b{i}", NOW - timedelta(days=i), "b") for i in range(3)
        ]

        assert ["b0", "d00"] == kept_ids(KeepDaily(1).keep(points, now=NOW))

    @pytest.mark.parametrize(
        ("rule", "reason"),
        [
            (KeepHourly(1), "hourly 2026-11-26T04"),
            (KeepDaily(1), "daily 2026-11-26"),
            (KeepWeekly(1), "weekly 2026-W48"),
            (KeepMonthly(1), "monthly 2026-11"),
            (KeepYearly(1), "yearly 2026"),
            (KeepLast(1), "last 1"),
        ],
    )
    def test_reason_wording(self, rule, reason):
        """Each count rule names the period it kept the point for."""
        assert {"d00": [reason]} == rule.keep(daily(3), now=NOW)

    def test_unlimited_keeps_every_period(self):
        """-1 keeps the newest point of every period that has one."""
        points = [point(f"p{i}", NOW - timedelta(days=40 * i)) for i in range(12)]

        assert 12 == len(KeepMonthly(-1).keep(points, now=NOW))

    @pytest.mark.parametrize("bad", [0, -2, True, "7", 1.5, None])
    def test_invalid_count_is_refused(self, bad):
        """n must be an integer >= 1 or -1."""
        with pytest.raises(PolicyError, match=r"^n: expected an integer >= 1, or -1 for unlimited"):
            KeepDaily(bad)


class TestIsoWeeks:
    """Weeks are ISO weeks named by ISO year, not calendar year."""

    def test_week_53_spans_new_year(self):
        """28 Dec 2026 to 3 Jan 2027 is one week, 2026-W53; 4 Jan 2027 starts 2027-W01."""
        points = [
            point("mon", datetime(2026, 12, 28, 9, tzinfo=UTC)),
            point("sun", datetime(2027, 1, 3, 9, tzinfo=UTC)),
            point("next", datetime(2027, 1, 4, 9, tzinfo=UTC)),
        ]
        now = datetime(2027, 1, 5, tzinfo=UTC)

        result = KeepWeekly(2).keep(points, now=now)

        assert {"next": ["weekly 2027-W01"], "sun": ["weekly 2026-W53"]} == result

    def test_iso_year_differs_from_calendar_year(self):
        """29 Dec 2025 is in 2026-W01 for weeks, but in 2025 for years."""
        points = [
            point("dec", datetime(2025, 12, 29, tzinfo=UTC)),
            point("jan", datetime(2026, 1, 2, tzinfo=UTC)),
        ]

        weekly = KeepWeekly(-1).keep(points, now=NOW)
        yearly = KeepYearly(-1).keep(points, now=NOW)

        assert {"jan": ["weekly 2026-W01"], "dec": ["oldest weekly 2026-W01"]} == weekly
        assert {"jan": ["yearly 2026"], "dec": ["yearly 2025"]} == yearly


class TestWindows:
    """The strict boundaries and calendar arithmetic of KeepWithin and MaxAge."""

    def test_keep_within_boundary_is_strict(self):
        """A point exactly 7 days older than the newest is outside; 1 µs younger is inside."""
        points = [
            point("ref", NOW),
            point("edge", NOW - timedelta(days=7)),
            point("inside", NOW - timedelta(days=7) + timedelta(microseconds=1)),
        ]

        assert ["inside", "ref"] == kept_ids(KeepWithin("7d").keep(points, now=NOW))

    def test_keep_within_is_measured_from_newest_completed_point(self):
        """The reference is the newest completed, non-future point, not now."""
        stale = NOW - timedelta(days=100)
        points = [
            point("future", NOW + timedelta(days=1)),
            point("failed", NOW, status=Status.FAILED),
            point("ref", stale),
            point("in", stale - timedelta(days=6)),
            point("out", stale - timedelta(days=8)),
        ]

        result = KeepWithin(days=7).keep(points, now=NOW)

        assert ["failed", "future", "in", "ref"] == kept_ids(result)

    def test_keep_within_without_completed_point_is_unbounded(self):
        """A target with no completed point has no reference: everything is within (restic)."""
        points = [point("f", NOW - timedelta(days=400), status=Status.FAILED)]

        assert {"f": ["within 7d"]} == KeepWithin("7d").keep(points, now=NOW)

    def test_one_month_before_31_march_is_3_march(self):
        """Months step on the calendar and overflow: 31 March - 1 month = 3 March (2026)."""
        now = datetime(2026, 3, 31, tzinfo=UTC)
        points = [
            point("clamp", datetime(2026, 3, 2, 12, tzinfo=UTC)),
            point("edge", datetime(2026, 3, 3, tzinfo=UTC)),
            point("in", datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC)),
        ]

        assert ["in"] == kept_ids(MaxAge(months=1).keep(points, now=now))

    def test_one_month_before_31_march_in_a_leap_year_is_2_march(self):
        """29 February exists in 2028, so the overflow lands on 2 March."""
        now = datetime(2028, 3, 31, tzinfo=UTC)
        points = [
            point("edge", datetime(2028, 3, 2, tzinfo=UTC)),
            point("in", datetime(2028, 3, 2, 0, 0, 1, tzinfo=UTC)),
        ]

        assert ["in"] == kept_ids(MaxAge("1m").keep(points, now=now))

    def test_within_month_end_uses_reference_point(self):
        """KeepWithin('1m') from a 31 March reference reaches back to 3 March, exclusive."""
        points = [
            point("ref", datetime(2026, 3, 31, tzinfo=UTC)),
            point("edge", datetime(2026, 3, 3, tzinfo=UTC)),
            point("in", datetime(2026, 3, 3, 1, tzinfo=UTC)),
        ]

        assert ["in", "ref"] == kept_ids(KeepWithin(months=1).keep(points, now=NOW))

    def test_window_before_year_one_is_unbounded(self):
        """A window reaching before year 1 keeps every point."""
        points = [point("old", datetime(1, 1, 2, tzinfo=UTC)), point("new", NOW)]

        assert ["new", "old"] == kept_ids(MaxAge("9999y").keep(points, now=NOW))

    def test_within_daily_keeps_newest_per_day_inside_window(self):
        """keep_within_daily: one point per day within the window, with the window named."""
        points = [point(f"p{i}", NOW - timedelta(hours=12 * i)) for i in range(8)]

        result = KeepWithin("2d", per="day").keep(points, now=NOW)

        assert {
            "p0": ["daily within 2d 2026-11-26"],
            "p1": ["daily within 2d 2026-11-25"],
            "p3": ["daily within 2d 2026-11-24"],
        } == result

    def test_max_age_keeps_any_status(self):
        """MaxAge keeps failed and partial points that are young enough."""
        points = [point("f", NOW, status=Status.FAILED), point("p", NOW, status="partial")]

        assert ["f", "p"] == kept_ids(MaxAge(days=1).keep(points, now=NOW))


class TestTimeZones:
    """Periods and calendar steps follow the policy's time zone."""

    def test_daily_buckets_by_local_day(self):
        """23:30 UTC in June is the next day in London: two London days, one UTC day."""
        points = [
            point("late", datetime(2026, 6, 1, 23, 30, tzinfo=UTC)),
            point("noon", datetime(2026, 6, 1, 12, tzinfo=UTC)),
        ]
        now = datetime(2026, 6, 2, 6, tzinfo=UTC)

        london = KeepDaily(-1).keep(points, now=now, tz="Europe/London")
        utc = KeepDaily(1).keep(points, now=now)

        assert {"late": ["daily 2026-06-02"], "noon": ["daily 2026-06-01"]} == london
        assert {"late": ["daily 2026-06-01"]} == utc

    def test_spring_forward_day_is_one_local_day(self):
        """29 March 2026 in London has 23 hours; 00:30 GMT and 23:30 BST share it."""
        points = [
            point("next", datetime(2026, 3, 29, 23, 30, tzinfo=UTC)),  # 00:30 BST on the 30th
            point("late", datetime(2026, 3, 29, 22, 30, tzinfo=UTC)),  # 23:30 BST
            point("early", datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),  # 00:30 GMT
        ]
        now = datetime(2026, 3, 30, 6, tzinfo=UTC)

        result = KeepDaily(2).keep(points, now=now, tz=ZoneInfo("Europe/London"))

        assert {"next": ["daily 2026-03-30"], "late": ["daily 2026-03-29"]} == result

    def test_fall_back_repeated_hour_is_one_hourly_bucket(self):
        """01:30 EDT and 01:30 EST on 1 Nov 2026 share the wall-clock hour 01 in New York."""
        points = [
            point("est", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
            point("edt", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
            point("before", datetime(2026, 11, 1, 4, 30, tzinfo=UTC)),  # 00:30 EDT
        ]

        new_york = KeepHourly(2).keep(points, now=NOW, tz="America/New_York")
        utc = KeepHourly(3).keep(points, now=NOW)

        assert {"est": ["hourly 2026-11-01T01"], "before": ["hourly 2026-11-01T00"]} == new_york
        assert 3 == len(utc)

    def test_max_age_steps_days_on_local_wall_clock(self):
        """35 days before 12:00 BST is 12:00 GMT: one hour less elapsed time than in UTC."""
        now = datetime(2026, 4, 5, 11, tzinfo=UTC)  # 12:00 BST
        points = [
            point("edge", datetime(2026, 3, 1, 12, tzinfo=UTC)),  # 12:00 GMT, 35 local days
            point("mid", datetime(2026, 3, 1, 11, 30, tzinfo=UTC)),
        ]

        london = MaxAge(days=35).keep(points, now=now, tz="Europe/London")
        utc = MaxAge(days=35).keep(points, now=now)

        assert ([], ["edge", "mid"]) == (kept_ids(london), kept_ids(utc))

    def test_points_with_other_offsets_are_compared_as_instants(self):
        """created_at in +02:00 is converted; equal instants are equal points."""
        plus2 = timezone(timedelta(hours=2))
        points = [
            point("a", datetime(2026, 11, 26, 6, 0, tzinfo=plus2)),  # 04:00 UTC
            point("b", datetime(2026, 11, 26, 4, 0, tzinfo=UTC)),
            point("c", datetime(2026, 11, 26, 5, 0, tzinfo=plus2)),  # 03:00 UTC
        ]

        assert {"b": ["last 1"], "a": ["last 2"]} == KeepLast(2).keep(points, now=NOW)

    def test_other_offsets_are_read_on_the_policy_clock(self):
        """Periods and the within reference of a +02:00 point are read on the UTC clock."""
        plus2 = timezone(timedelta(hours=2))
        ref = point("ref", datetime(2026, 3, 1, 0, 30, tzinfo=plus2))  # 02-28 22:30 UTC
        older = point("older", datetime(2026, 1, 30, 12, tzinfo=UTC))
        now = datetime(2026, 3, 2, tzinfo=UTC)

        daily = KeepDaily(1).keep([ref], now=now)
        # A month before 02-28 22:30 UTC is 01-28 22:30 UTC (on the +02:00 clock: 01-31 22:30).
        within = KeepWithin("1m").keep([ref, older], now=now)

        assert {"ref": ["daily 2026-02-28"]} == daily
        assert ["older", "ref"] == sorted(within)

    @pytest.mark.parametrize("bad", ["Mars/Olympus", "../etc", 5])
    def test_unknown_time_zone_is_refused(self, bad):
        """tz must name an IANA zone or be a tzinfo."""
        with pytest.raises(PolicyError, match=r"^tz: expected an IANA time zone name"):
            KeepDaily(1).keep([], now=NOW, tz=bad)

    def test_ambiguous_local_midnight_starts_the_day_at_its_first_occurrence(self):
        """Where clocks go back from 01:00 to 00:00, the whole repeated hour is that day."""
        zone = "America/Havana"  # 2026-11-01 01:00 CDT -> 00:00 CST
        points = [
            point("second", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # 00:30 CST
            point("first", datetime(2026, 11, 1, 4, 30, tzinfo=UTC)),  # 00:30 CDT
            point("prev", datetime(2026, 11, 1, 3, 30, tzinfo=UTC)),  # 23:30 CDT, 31 Oct
        ]

        result = KeepDaily(-1).keep(points, now=NOW, tz=zone)

        assert {"second": ["daily 2026-11-01"], "prev": ["daily 2026-10-31"]} == result


class TestEqualTimestamps:
    """Equal created_at: the backend's order (ordinal) decides, else the larger id is newer."""

    @pytest.mark.parametrize("order", [["a", "b"], ["b", "a"]])
    def test_larger_id_counts_as_newer(self, order):
        """KeepLast(1) keeps the larger id whatever the input order."""
        points = [point(pid, NOW) for pid in order]

        assert {"b": ["last 1"]} == KeepLast(1).keep(points, now=NOW)

    def test_smaller_id_is_the_oldest(self):
        """With budget left, the smaller id of a tie is 'the oldest' of its day."""
        points = [point("b", NOW), point("a", NOW)]

        assert {"b": ["daily 2026-11-26"], "a": ["oldest daily 2026-11-26"]} == KeepDaily(3).keep(
            points, now=NOW
        )

    @pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
    def test_backend_order_beats_the_id(self, order):
        """With ordinals, the larger ordinal is the newer point, even where its id is smaller.

        S3 lists a key's versions newest first; their ids carry no time order on AWS.
        """
        listed = [  # newest first, as the backend listed them; ids in the opposite order
            point("k@aaa", NOW, ordinal=2),
            point("k@mmm", NOW, ordinal=1),
            point("k@zzz", NOW, ordinal=0),
        ]
        points = [listed[i] for i in order]

        assert {"k@aaa": ["last 1"]} == KeepLast(1).keep(points, now=NOW)
        plan = KeepLast(2).plan(points, now=NOW)
        assert (["k@aaa", "k@mmm"], ["k@zzz"]) == (
            [p.id for p in plan.keep],
            [p.id for p in plan.delete],
        )

    def test_ordinal_breaks_ties_only(self):
        """A newer created_at wins over any ordinal: the ordinal only orders equal times."""
        points = [point("old", NOW - timedelta(seconds=1), ordinal=9), point("new", NOW, ordinal=0)]

        assert {"new": ["last 1"]} == KeepLast(1).keep(points, now=NOW)

    def test_point_with_ordinal_is_newer_than_one_without(self):
        """Mixed ties are still a total order: a point the backend ordered counts as newer."""
        points = [point("zzz", NOW), point("aaa", NOW, ordinal=-5)]

        assert {"aaa": ["last 1"]} == KeepLast(1).keep(points, now=NOW)
        assert ["aaa", "zzz"] == [p.id for p in KeepLast(-1).plan(points, now=NOW).keep]

    @pytest.mark.parametrize("bad", [True, 1.5, "1"])
    def test_ordinal_must_be_an_integer(self, bad):
        """The ordinal is None or an int (not a bool)."""
        with pytest.raises(PolicyError, match="ordinal"):
            point("a", NOW, ordinal=bad)


class TestPlanner:
    """The planner's floors and reasons on top of any rule."""

    def test_legal_hold_is_kept_with_its_reason(self):
        """A held point is kept whatever the rule, with the hold's description."""
        points = [*daily(3), point("held", NOW - timedelta(days=90), legal_hold=HOLD)]

        plan = KeepLast(1).plan(points, now=NOW)

        assert ["legal hold: case-17 (litigation)"] == plan.reasons["held"]
        assert "held" in {p.id for p in plan.keep}

    def test_newest_completed_point_survives_an_expired_policy(self):
        """When every point is older than 35 days, the newest completed one is kept."""
        points = daily(3)
        later = NOW + timedelta(days=90)

        plan = MaxAge(days=35).plan(points, now=later)

        assert (["d00"], ["newest completed point of orders-db"]) == (
            kept_ids(plan),
            plan.reasons["d00"],
        )

    def test_newest_floor_skips_failed_and_future_points(self):
        """The floor is the newest completed point not in the future."""
        points = [
            point("future", NOW + timedelta(hours=1)),
            point("failed", NOW - timedelta(days=50), status=Status.FAILED),
            point("good", NOW - timedelta(days=60)),
            point("old", NOW - timedelta(days=61)),
        ]

        plan = MaxAge(days=35).plan(points, now=NOW)

        assert {
            "future": ["younger than 35d", "created in the future (clock skew?)"],
            "failed": ["older than 35d", "failed backup"],
            "good": ["newest completed point of orders-db"],
            "old": ["older than 35d"],
        } == plan.reasons

    def test_pending_and_unmanaged_points_are_never_deleted(self):
        """Pending and unmanaged points are kept with their own reasons."""
        points = [
            *daily(2),
            point("pending", NOW - timedelta(days=80), status=Status.PENDING),
            point("rds-auto", NOW - timedelta(days=80), managed=False),
        ]

        plan = KeepLast(1).plan(points, now=NOW)

        assert (["pending"], ["not managed by backuppolicy"]) == (
            plan.reasons["pending"],
            plan.reasons["rds-auto"],
        )
        assert ["d01"] == [p.id for p in plan.delete]

    def test_unmanaged_points_do_not_fill_buckets(self):
        """An unmanaged point never takes a managed point's place in a bucket."""
        points = [
            point("auto", NOW, managed=False),
            point("manual", NOW - timedelta(hours=1)),
        ]

        plan = KeepDaily(1).plan(points, now=NOW)

        assert ["daily 2026-11-26", "newest completed point of orders-db"] == plan.reasons["manual"]

    def test_delete_reason_without_max_age(self):
        """Without MaxAge, a deleted point is 'not kept by any rule'."""
        plan = KeepLast(1).plan(daily(2), now=NOW)

        assert ["not kept by any rule"] == plan.reasons["d01"]

    def test_lists_are_by_target_then_newest_first(self):
        """keep and delete are ordered by target name, then newest first."""
        points = [*daily(2, target="b"), *reversed(daily(2, target="a"))]
        points = [p.evolve(id=f"{p.target}{p.id}") for p in points]

        plan = KeepLast(-1).plan(points, now=NOW)

        assert ["ad00", "ad01", "bd00", "bd01"] == [p.id for p in plan.keep]

    def test_duplicate_ids_are_refused(self):
        """Two points with one id raise ValueError naming the id."""
        points = [point("snap-1", NOW), point("snap-1", NOW, "other")]

        with pytest.raises(ValueError, match="duplicate recovery point id 'snap-1'"):
            KeepLast(1).plan(points, now=NOW)
        with pytest.raises(ValueError, match="duplicate recovery point id 'snap-1'"):
            KeepLast(1).keep(points, now=NOW)

    def test_non_points_are_refused(self):
        """Items must be RecoveryPoints."""
        with pytest.raises(TypeError, match="expected RecoveryPoint items"):
            KeepLast(1).plan(["snap-1"], now=NOW)  # type: ignore[list-item]

    def test_naive_now_is_refused(self):
        """now must be timezone-aware."""
        with pytest.raises(PolicyError, match="^now: expected a timezone-aware datetime"):
            KeepLast(1).plan([], now=datetime(2026, 11, 26))

    def test_accepts_any_iterable(self):
        """A generator of points is planned like a list."""
        plan = KeepLast(1).plan((p for p in daily(3)), now=NOW)

        assert (1, 2) == (len(plan.keep), len(plan.delete))

    def test_rare_floor_points_among_many_get_their_floors(self):
        """Held, pending, unmanaged and failed points among 400 plain ones, mixed up.

        The planner finds such rare points by their time; here each shares its time with a
        plain point (two of them as the same instant on another zone's clock).
        """
        hours = [NOW - timedelta(hours=i) for i in range(400)]
        berlin = ZoneInfo("Europe/Berlin")
        points = [
            *(point(f"p{i:03d}", at) for i, at in enumerate(hours)),
            point("held", hours[100], legal_hold=HOLD),
            point("pending", hours[200].astimezone(berlin), status=Status.PENDING),
            point("auto", hours[300], managed=False),
            point("failed", hours[350].astimezone(berlin), status=Status.FAILED),
        ]
        points = [*reversed(points[::3]), *points[1::3], *reversed(points[2::3])]  # mixed up

        plan = KeepLast(2).plan(points, now=NOW)

        deleted = [f"p{i:03d}" for i in range(2, 400)]
        deleted.insert(deleted.index("p350") + 1, "failed")  # equal times: the larger id first
        assert (["p000", "p001", "held", "pending", "auto"], deleted) == (
            [p.id for p in plan.keep],
            [p.id for p in plan.delete],
        )
        assert {
            "held": ["legal hold: case-17 (litigation)"],
            "pending": ["pending"],
            "auto": ["not managed by backuppolicy"],
            "failed": ["not kept by any rule", "failed backup"],
            "p100": ["not kept by any rule"],
        } == {pid: plan.reasons[pid] for pid in ("held", "pending", "auto", "failed", "p100")}

    def test_floor_points_are_found_when_times_do_not_compare_as_one_order(self):
        """Times in a DST fold on one zone's clock next to UTC times still get their floors.

        Python compares two times of one zone by their wall clock and times of two zones as
        instants, so around a fold the three below compare in a circle (a > b > c > a); the
        planner must still find the held and pending points wherever the sort put them.
        """
        berlin = ZoneInfo("Europe/Berlin")
        base = datetime(2026, 10, 25, 2, 0, tzinfo=berlin)
        points = [
            *(point(f"p{i:03d}", base + timedelta(hours=3 + i)) for i in range(100)),
            point("held", base.replace(minute=30), legal_hold=HOLD),  # 00:30 UTC
            point("pending", base.replace(minute=15, fold=1), status=Status.PENDING),  # 01:15 UTC
            point("utc", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),
        ]

        plan = KeepLast(1).plan(points, now=NOW)

        assert ({"p099", "held", "pending"}, ["pending"]) == (
            {p.id for p in plan.keep},
            plan.reasons["pending"],
        )
        assert ["legal hold: case-17 (litigation)"] == plan.reasons["held"]

    def test_times_in_a_dst_fold_of_one_zone_are_ordered_as_instants(self):
        """Two times of one zone compare by wall clock (PEP 495): the plan orders instants.

        On 2026-10-25 London's clocks go back from 02:00 BST to 01:00 GMT: 01:30 (first
        fold, 00:30 UTC) is 45 minutes older than 01:15 (second fold, 01:15 UTC), although
        its wall clock reads later.
        """
        london = ZoneInfo("Europe/London")
        older = point("bst-0130", datetime(2026, 10, 25, 1, 30, tzinfo=london))
        newer = point("gmt-0115", datetime(2026, 10, 25, 1, 15, fold=1, tzinfo=london))
        assert older.created_at > newer.created_at  # the wall clock says so
        assert older.created_at.astimezone(UTC) < newer.created_at.astimezone(UTC)
        now = datetime(2026, 10, 26, 4, 0, tzinfo=UTC)

        for rule in (KeepLast(1), KeepDaily(1)):
            plan = rule.plan([older, newer], now=now)
            assert ([newer.id], [older.id]) == (
                [p.id for p in plan.keep],
                [p.id for p in plan.delete],
            ), rule
        # With a point at the same instant as another (ties are ordered by the whole key).
        twin = point("bst-0130-twin", older.created_at)
        for rule in (KeepLast(2), KeepDaily(1), KeepHourly(2)):
            plan = rule.plan([twin, older, newer], now=now)
            assert newer.id == next(p.id for p in plan.keep), rule
        assert {newer.id, twin.id} == {
            p.id for p in KeepLast(2).plan([twin, older, newer], now=now).keep
        }

    def test_times_of_unhashable_zones_are_planned(self):
        """dateutil's ``tzlocal`` (what botocore's own parser can give) is not hashable."""
        local, london = dateutil_tz.tzlocal(), dateutil_tz.gettz("Europe/London")
        points = [
            point("local", NOW.astimezone(local) - timedelta(hours=1)),
            point("london", NOW.astimezone(london) - timedelta(hours=2)),
            point("utc", NOW - timedelta(hours=3)),
        ]

        plan = KeepLast(2).plan(points, now=NOW)

        assert (["local", "london"], ["utc"]) == (
            [p.id for p in plan.keep],
            [p.id for p in plan.delete],
        )

    def test_a_rare_point_the_search_misses_is_found_by_a_full_pass(self):
        """Where the binary search on a time does not lead to its point, every point is read."""
        from backuppolicy.core._prepared import _positions

        members = [point(f"p{i:02d}", NOW - timedelta(hours=i)) for i in range(20)]
        members[5], members[15] = members[15], members[5]  # out of order: the search misses
        created = [p.created_at for p in members]

        assert [5, 15] == _positions(members, created, [members[15], members[5]])

    def test_gc_state_is_restored(self):
        """Planning leaves the garbage collector enabled (or disabled) as it found it."""
        gc.disable()
        try:
            KeepLast(1).plan(daily(3), now=NOW)
            disabled_after = gc.isenabled()
        finally:
            gc.enable()
        KeepLast(1).plan(daily(3), now=NOW)

        assert (False, True) == (disabled_after, gc.isenabled())


class TestKeepTags:
    """KeepTags: lists of keys or mappings of required values."""

    def test_key_list_and_mapping(self):
        """A key list matches any value; a mapping needs the value."""
        points = [
            point("keep", NOW, tags={"keep": "yes"}),
            point("prod", NOW - timedelta(hours=1), tags={"env": "prod"}),
            point("dev", NOW - timedelta(hours=2), tags={"env": "dev"}),
        ]

        result = KeepTags(["keep"], {"env": "prod"}).keep(points, now=NOW)

        assert {"keep": ["has tags [keep]"], "prod": ["has tags [env=prod]"]} == result

    def test_all_tags_of_a_set_are_needed(self):
        """A set with two keys needs both."""
        points = [point("one", NOW, tags={"a": ""}), point("both", NOW, tags={"a": "", "b": ""})]

        assert ["both"] == kept_ids(KeepTags(["a", "b"]).keep(points, now=NOW))

    @pytest.mark.parametrize("bad", [[], {}, "keep", [1], {"env": 2}])
    def test_invalid_sets_are_refused(self, bad):
        """A set must be a non-empty list of keys or a mapping of key to value."""
        with pytest.raises(PolicyError, match=r"^sets\[0\]: expected a non-empty list"):
            KeepTags(bad)

    def test_no_sets_is_refused(self):
        """KeepTags() keeps nothing and is refused."""
        with pytest.raises(PolicyError, match="^sets: expected at least one tag set"):
            KeepTags()


class TestUnion:
    """`|`, AnyOf and plain callables."""

    def test_or_flattens(self):
        """(a | b) | (c | d) is AnyOf(a, b, c, d)."""
        a, b, c, d = KeepLast(1), KeepDaily(2), KeepWeekly(3), MaxAge("35d")

        assert AnyOf(a, b, c, d) == (a | b) | (c | d)

    def test_reasons_of_every_rule_in_order(self):
        """A point kept by several rules lists every reason, in rule order."""
        rule = MaxAge(days=35) | KeepDaily(7) | KeepLast(1)

        assert ["younger than 35d", "daily 2026-11-26", "last 1"] == rule.keep(daily(2), now=NOW)[
            "d00"
        ]

    def test_callable_rule(self):
        """A plain callable combines with rules on either side of |."""

        def manual(points, *, now, tz):
            return {p.id: ["manual"] for p in points if p.tags.get("reason") == "manual"}

        points = [*daily(3), point("m", NOW - timedelta(days=9), tags={"reason": "manual"})]

        left, right = manual | KeepLast(1), KeepLast(1) | manual

        assert {"d00": ["last 1"], "m": ["manual"]} == left.keep(points, now=NOW)
        assert left.keep(points, now=NOW) == right.keep(points, now=NOW)
        assert (
            "keep what TestUnion.test_callable_rule.<locals>.manual keeps"
            == as_rule(manual).describe()
        )

    def test_plan_keeps_what_a_callable_or_subclass_keeps(self):
        """Rules that only write reasons (a callable, a subclass) still keep in a plan."""

        def manual(points, *, now, tz):
            return {p.id: ["manual"] for p in points if p.tags.get("reason") == "manual"}

        class KeepEndingIn3(RetentionRule):
            def _apply(self, prepared, out):
                for group in prepared.groups:
                    for pid in group.ids:
                        if pid.endswith("3"):
                            out[pid] = ("ends in 3",)

            def describe(self):
                return "keep ids ending in 3"

            def to_spec(self):
                return {}

        points = [*daily(4), point("m", NOW - timedelta(days=9), tags={"reason": "manual"})]

        plan = (MaxAge(days=2) | manual | KeepEndingIn3()).plan(points, now=NOW)

        assert ["d00", "d01", "d03", "m"] == sorted(p.id for p in plan.keep)
        assert ["d02"] == [p.id for p in plan.delete]
        assert (["manual"], ["ends in 3"]) == (plan.reasons["m"], plan.reasons["d03"])

    def test_callable_with_empty_reasons_gets_a_default(self):
        """A callable that gives no reason is named as the reason."""

        def everything(points, *, now, tz):
            return {p.id: [] for p in points}

        result = as_rule(everything).keep(daily(1), now=NOW)

        assert {
            "d00": [
                "kept by TestUnion.test_callable_with_empty_reasons_gets_a_default.<locals>.everything"
            ]
        } == result

    def test_callable_returning_unknown_id_is_an_error(self):
        """Keeping an id that is not among the points raises ValueError."""
        rule = as_rule(lambda points, *, now, tz: {"ghost": ["boo"]})

        with pytest.raises(ValueError, match="unknown point id 'ghost'"):
            rule.keep(daily(1), now=NOW)

    def test_callable_repr(self):
        """A wrapped callable shows its name."""

        def mine(points, *, now, tz):
            return {}

        assert "as_rule(TestUnion.test_callable_repr.<locals>.mine)" == repr(as_rule(mine))

    def test_as_rule_refuses_non_callables(self):
        """as_rule needs a rule or a callable."""
        with pytest.raises(PolicyError, match="^rule: expected a RetentionRule or a callable"):
            as_rule(7)  # type: ignore[arg-type]

    def test_empty_union_keeps_nothing(self):
        """AnyOf() keeps nothing; the plan still keeps the floor."""
        plan = AnyOf().plan(daily(3), now=NOW)

        assert ({}, ["d00"]) == (AnyOf().keep(daily(3), now=NOW), kept_ids(plan))


class TestConstructors:
    """Validation and reprs of the rules."""

    @pytest.mark.parametrize(
        ("rule", "text"),
        [
            (KeepLast(3), "KeepLast(3)"),
            (KeepDaily(-1), "KeepDaily(-1)"),
            (MaxAge(days=35), "MaxAge('35d')"),
            (KeepWithin(timedelta(hours=36)), "KeepWithin('1d12h')"),
            (KeepWithin("1m", per="month"), "KeepWithin('1m', per='month')"),
            (KeepTags(["a"], {"b": "c"}), "KeepTags(['a'], {'b': 'c'})"),
            (AnyOf(KeepLast(1), MaxAge("7d")), "AnyOf(KeepLast(1), MaxAge('7d'))"),
        ],
    )
    def test_repr(self, rule, text):
        """Reprs are short and read like the code that builds the rule."""
        assert text == repr(rule)

    def test_duration_and_parts_together_are_refused(self):
        """Give a duration or keyword parts, not both."""
        with pytest.raises(PolicyError, match="^duration: expected either a duration or keyword"):
            MaxAge("35d", days=35)

    @pytest.mark.parametrize(
        ("factory", "args"), [(MaxAge, ()), (KeepWithin, ("0d",))], ids=["max-age", "within"]
    )
    def test_zero_duration_is_refused(self, factory, args):
        """A zero window would keep nothing."""
        with pytest.raises(PolicyError, match="^duration: expected a duration longer than zero"):
            factory(*args)

    def test_negative_part_is_refused(self):
        """Keyword parts must be >= 0."""
        with pytest.raises(PolicyError, match=r"^duration\.days: expected an integer >= 0"):
            MaxAge(days=-1)

    def test_unknown_period_is_refused(self):
        """per must be hour, day, week, month or year."""
        with pytest.raises(PolicyError, match="^per: expected None or one of 'hour'"):
            KeepWithin("7d", per="fortnight")

    @pytest.mark.parametrize(
        ("rule", "words"),
        [
            (KeepLast(1), "keep the last completed backup"),
            (KeepLast(-1), "keep every completed backup"),
            (
                KeepDaily(7),
                "keep the newest completed backup of each of the last 7 days that have one",
            ),
            (
                KeepYearly(1),
                "keep the newest completed backup of each of the last 1 year that have one",
            ),
            (KeepWeekly(-1), "keep the newest completed backup of every week"),
            (
                KeepWithin("7d"),
                "keep every backup less than 7 days older than the newest completed backup",
            ),
            (MaxAge(days=35), "keep every backup younger than 35 days"),
            (
                KeepWithin("7d", per="day"),
                (
                    "keep the newest completed backup of each day less than 7 days older than "
                    "the newest completed backup"
                ),
            ),
            (
                KeepTags(["legal", "audit"], {"env": "prod"}),
                "keep every backup tagged legal, audit, or tagged env=prod",
            ),
            (AnyOf(), "keep nothing"),
            (
                MaxAge(days=35) | KeepLast(2),
                "keep every backup younger than 35 days; keep the last 2 completed backups",
            ),
        ],
    )
    def test_describe(self, rule, words):
        """describe() gives the words of the policy document."""
        assert words == rule.describe()


class TestRuleFromSpec:
    """rule_from_spec: the retention mapping of a policy file."""

    def test_every_key(self):
        """Every documented key builds its rule, in mapping order."""
        spec = {
            "max_age": "35d",
            "keep_last": 3,
            "keep_hourly": 24,
            "keep_daily": 7,
            "keep_weekly": 4,
            "keep_monthly": 12,
            "keep_yearly": "unlimited",
            "keep_within": "2d",
            "keep_within_hourly": "1d",
            "keep_within_daily": "7d",
            "keep_within_weekly": "1m",
            "keep_within_monthly": "1y",
            "keep_within_yearly": "10y",
            "keep_tags": [["legal"], {"env": "prod"}],
        }

        rule = rule_from_spec(spec)

        assert (
            AnyOf(
                MaxAge("35d"),
                KeepLast(3),
                KeepHourly(24),
                KeepDaily(7),
                KeepWeekly(4),
                KeepMonthly(12),
                KeepYearly(-1),
                KeepWithin("2d"),
                KeepWithin("1d", per="hour"),
                KeepWithin("7d", per="day"),
                KeepWithin("1m", per="week"),
                KeepWithin("1y", per="month"),
                KeepWithin("10y", per="year"),
                KeepTags(["legal"], {"env": "prod"}),
            )
            == rule
        )
        assert {**spec, "keep_yearly": -1} == rule.to_spec()

    def test_single_key_gives_the_rule_itself(self):
        """One key is that rule, not a union of one."""
        assert MaxAge(days=35) == rule_from_spec({"max_age": "35d"})

    def test_unknown_key_suggests_the_closest(self):
        """A typo names the field and suggests the right key."""
        with pytest.raises(PolicyError) as info:
            rule_from_spec({"keep_dayly": 7}, path="targets[0].retention")

        assert "targets[0].retention.keep_dayly" == info.value.path
        assert str(info.value).startswith(
            "targets[0].retention.keep_dayly: expected one of max_age"
        )
        assert str(info.value).endswith("(got 'keep_dayly'); did you mean 'keep_daily'?")

    def test_unknown_key_without_close_match(self):
        """A key like nothing we know gets no suggestion."""
        with pytest.raises(PolicyError, match=r"\(got 'colour'\)\.$"):
            rule_from_spec({"colour": "blue"})

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            (
                {"keep_daily": 0},
                "retention.keep_daily: expected an integer >= 1, or -1 for unlimited (got 0).",
            ),
            (
                {"keep_daily": "7"},
                "retention.keep_daily: expected an integer >= 1, or -1 for unlimited (got '7').",
            ),
            ({"max_age": "soon"}, "retention.max_age: expected a duration like '35d'"),
            (
                {"max_age": "0d"},
                "retention.max_age: expected a duration longer than zero (got '0d').",
            ),
            (
                {"keep_within_daily": 7},
                "retention.keep_within_daily: expected a duration like '35d'",
            ),
            ({"keep_tags": "legal"}, "retention.keep_tags: expected a list of tag sets"),
            ({"keep_tags": [["legal"], []]}, r"retention.keep_tags[1]: expected a non-empty list"),
        ],
    )
    def test_bad_values_name_the_field(self, spec, message):
        """A bad value names the field, what it expects and what it got."""
        with pytest.raises(PolicyError) as info:
            rule_from_spec(spec)

        assert str(info.value).startswith(message)

    def test_empty_spec_is_refused(self):
        """A policy that keeps nothing is refused, and the message says why."""
        with pytest.raises(PolicyError) as info:
            rule_from_spec({}, path="targets[1].retention")

        assert re.match(
            r"targets\[1\]\.retention: expected at least one retention option \(got \{\}\)\. "
            r"A policy that keeps nothing is refused",
            str(info.value),
        )

    def test_non_mapping_is_refused(self):
        """The spec must be a mapping."""
        with pytest.raises(
            PolicyError, match="^retention: expected a mapping of retention options"
        ):
            rule_from_spec(["keep_daily", 7])  # type: ignore[arg-type]

    def test_to_spec_refuses_two_rules_of_one_kind(self):
        """KeepDaily(7) | KeepDaily(3) has no spec form."""
        with pytest.raises(PolicyError, match="^retention.keep_daily: expected at most one rule"):
            (KeepDaily(7) | KeepDaily(3)).to_spec()

    def test_to_spec_merges_tag_rules(self):
        """Two KeepTags rules become one keep_tags list."""
        assert {"keep_tags": [["a"], {"b": "c"}]} == (
            KeepTags(["a"]) | KeepTags({"b": "c"})
        ).to_spec()

    def test_callable_has_no_spec(self):
        """A plain callable cannot be written to a policy file."""
        with pytest.raises(PolicyError, match="^retention: expected a built-in rule"):
            as_rule(lambda points, *, now, tz: {}).to_spec()


class TestRetentionPlan:
    """RetentionPlan: repr, summary, HTML, dict, combine."""

    @pytest.fixture(name="plan")
    def _plan(self):
        """A plan that keeps 3 and deletes 2."""
        return KeepLast(3).plan(daily(5), now=NOW)

    def test_repr(self, plan):
        """The repr is short and shows the counts."""
        assert "<backuppolicy.RetentionPlan(keep=3, delete=2)>" == repr(plan)

    def test_summary_has_a_row_per_point(self, plan):
        """summary() has a title, a header, then deletes and keeps with reasons."""
        lines = plan.summary().splitlines()

        assert "Retention plan at 2026-11-26T04:00:00+00:00: keep 3, delete 2" == lines[0]
        assert ["action", "target", "id", "created", "(UTC)", "status", "reasons"] == lines[
            1
        ].split()
        assert [
            ("delete", "d03"),
            ("delete", "d04"),
            ("keep", "d00"),
            ("keep", "d01"),
            ("keep", "d02"),
        ] == [tuple(line.split()[0:4:2]) for line in lines[3:]]

    def test_summary_limit(self, plan):
        """summary(limit=) shows that many rows and says how many more there are."""
        assert "... and 3 more" == plan.summary(limit=2).splitlines()[-1]

    def test_html_escapes_and_agrees_with_text(self):
        """Every value is escaped, and the HTML table and the <pre> text show the same rows."""
        nasty = point("<script>x</script>", NOW, target="a&b", legal_hold=LegalHold(reason="<b>"))
        plan = KeepLast(1).plan([nasty, *daily(2)], now=NOW)

        page = plan._repr_html_()

        assert "<script>" not in page
        assert "&lt;script&gt;x&lt;/script&gt;" in page
        pre = re.search(r"<pre[^>]*>(.*?)</pre>", page, re.DOTALL)
        assert pre is not None
        assert plan.summary(limit=200) == html.unescape(pre.group(1))
        cells = [
            [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", page)
            if "<td>" in row
        ]
        assert [list(row) for row in plan.rows()] == cells

    def test_to_dict_is_json(self, plan):
        """to_dict() round-trips through JSON and has every reason."""
        data = json.loads(json.dumps(plan.to_dict()))

        assert {"keep": 3, "delete": 2} == data["counts"]
        assert ["not kept by any rule"] == data["delete"][0]["reasons"]
        assert "2026-11-26T04:00:00+00:00" == data["keep"][0]["created_at"]

    def test_combine_merges_plans(self):
        """Plans of two targets combine into one with both targets' points."""
        first = KeepLast(1).plan(daily(2, target="a"), now=NOW)
        second = KeepLast(1).plan([p.evolve(id=f"b{p.id}") for p in daily(2, target="b")], now=NOW)

        combined = RetentionPlan.combine(
            [attrs.evolve(second, errors={"c": "AccessDenied"}), first]
        )

        assert (["d00", "bd00"], ["d01", "bd01"]) == (
            [p.id for p in combined.keep],
            [p.id for p in combined.delete],
        )
        assert (4, {"c": "AccessDenied"}) == (len(combined.reasons), combined.errors)

    def test_combine_refuses_duplicate_ids(self, plan):
        """A point id in two plans is an error naming the id."""
        with pytest.raises(ValueError, match=r"id 'd0\d' appears in more than one plan"):
            RetentionPlan.combine([plan, plan])

    def test_combine_refuses_different_times(self, plan):
        """Plans made for different times do not combine."""
        other = KeepLast(1).plan([point("x", NOW)], now=NOW + timedelta(hours=1))

        with pytest.raises(ValueError, match="expected plans made for the same now"):
            RetentionPlan.combine([plan, other])

    def test_combine_refuses_nothing(self):
        """Combining no plans is an error."""
        with pytest.raises(ValueError, match="expected at least one RetentionPlan"):
            RetentionPlan.combine([])


class TestReasonMap:
    """`RetentionPlan.reasons` is a read-only mapping of fresh lists over shared tuples."""

    def _plan(self) -> bp.RetentionPlan:
        now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        points = [
            bp.RecoveryPoint(id=f"d{i:02d}", target="db", created_at=now - timedelta(days=i))
            for i in range(60)
        ]
        return bp.MaxAge(days=35).plan(points, now=now)

    def test_lookup_returns_a_fresh_list_that_cannot_change_the_plan(self) -> None:
        """Editing a looked-up list leaves the plan as it was."""
        plan = self._plan()
        got = plan.reasons["d50"]
        assert isinstance(got, list)
        got.append("tampered")
        assert ["older than 35d"] == plan.reasons["d50"]

    def test_points_with_the_same_reasons_share_one_stored_tuple(self) -> None:
        """Deleted points share one reasons tuple (memory at 10^6 points)."""
        from backuppolicy.core._planner import ReasonMap

        plan = self._plan()
        assert isinstance(plan.reasons, ReasonMap)
        stored = plan.reasons.stored()
        deleted = {id(stored[p.id]) for p in plan.delete}
        assert len(plan.delete) == 25  # d35..d59: exactly 35 days old is "older than 35d"
        assert len(deleted) == 1

    def test_a_plan_built_from_a_dict_of_lists_reads_the_same(self) -> None:
        """A plain dict of lists is converted and compares equal."""
        plan = self._plan()
        copy = bp.RetentionPlan(
            keep=plan.keep,
            delete=plan.delete,
            reasons={pid: list(r) for pid, r in plan.reasons.items()},
            now=plan.now,
        )
        assert copy == plan
        assert dict(copy.reasons) == dict(plan.reasons)

    def test_plan_reasons_read_as_a_dict_over_every_planned_point(self) -> None:
        """Lookups, membership, length, iteration and stored() agree; unknown ids miss.

        The plan stores the shared delete reasons once with the set of planned ids; this pins
        that it still reads exactly like ``{id: reasons}`` for kept, deleted and failed points.
        """
        now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        points = [
            bp.RecoveryPoint(
                id=f"{target}{i:02d}",
                target=target,
                created_at=now - timedelta(days=i),
                status=bp.Status.FAILED if i == 40 else bp.Status.COMPLETED,
            )
            for target in ("b", "a")
            for i in range(45)
        ]
        plan = bp.MaxAge(days=35).plan(points, now=now)
        reasons = plan.reasons

        expected = {
            **{p.id: ["older than 35d"] for p in plan.delete},
            **{p.id: ["younger than 35d"] for p in plan.keep},
            "a00": ["younger than 35d", "newest completed point of a"],
            "b00": ["younger than 35d", "newest completed point of b"],
            "a40": ["older than 35d", "failed backup"],
            "b40": ["older than 35d", "failed backup"],
        }
        assert expected == dict(reasons.items())
        assert (90, 90) == (len(reasons), len(list(reasons)))
        assert sorted(p.id for p in points) == sorted(reasons)
        assert {pid: list(r) for pid, r in reasons.stored().items()} == expected
        assert list(reasons.stored()) == list(reasons)
        assert "a44" in reasons
        assert "c00" not in reasons
        assert reasons.get("c00") is None
        with pytest.raises(KeyError):
            reasons["c00"]
