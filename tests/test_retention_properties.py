"""Properties of the retention planner that hold for any points and any built-in rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from backuppolicy import PolicyError, RecoveryPoint, Status
from backuppolicy.core.retention import KeepLast, RetentionPlan, RetentionRule, rule_from_spec
from tests.strategies import NOW, listed_point_lists, point_lists, retention_rules, time_zones


def newest_completed(points: list[RecoveryPoint]) -> dict[str, RecoveryPoint]:
    """The newest completed point of each target (ties: ordinal, then larger id), naively."""
    newest: dict[str, RecoveryPoint] = {}
    for point in points:
        if point.status is not Status.COMPLETED:
            continue
        best = newest.get(point.target)
        if best is None or point.order_key > best.order_key:
            newest[point.target] = point
    return newest


def ids(points: list[RecoveryPoint]) -> set[str]:
    """The ids of *points*."""
    return {point.id for point in points}


class TestPlanProperties:
    """Safety floors, partition, determinism and idempotence of RetentionRule.plan."""

    @given(points=point_lists(), rule=retention_rules, tz=time_zones)
    def test_every_point_in_exactly_one_list_with_a_reason(self, points, rule, tz):
        """Every point is kept or deleted, never both, and has at least one reason."""
        plan = rule.plan(points, now=NOW, tz=tz)

        assert (set(), ids(points)) == (
            ids(plan.keep) & ids(plan.delete),
            ids(plan.keep) | ids(plan.delete),
        )
        assert len(points) == len(plan.keep) + len(plan.delete)
        assert ids(points) == set(plan.reasons)
        assert all(plan.reasons[point.id] for point in points)

    @given(points=point_lists(), rule=retention_rules, tz=time_zones)
    def test_newest_completed_point_of_each_target_is_kept(self, points, rule, tz):
        """Whatever the rule, the newest completed point of every target survives."""
        plan = rule.plan(points, now=NOW, tz=tz)

        assert set() == {p.id for p in newest_completed(points).values()} - ids(plan.keep)

    @given(points=point_lists(), rule=retention_rules, tz=time_zones)
    def test_held_pending_unmanaged_and_future_points_are_kept(self, points, rule, tz):
        """Points under hold, pending, unmanaged or created after now are never deleted."""
        plan = rule.plan(points, now=NOW, tz=tz)

        protected = [
            p
            for p in points
            if p.held or p.status is Status.PENDING or not p.managed or p.created_at > NOW
        ]
        assert set() == ids(protected) & ids(plan.delete)

    @given(points=point_lists(), rule=retention_rules, tz=time_zones, data=st.data())
    def test_plan_does_not_depend_on_input_order(self, points, rule, tz, data):
        """The same points in another order give the same plan, list orders included."""
        shuffled = data.draw(st.permutations(points))

        first = rule.plan(points, now=NOW, tz=tz)
        second = rule.plan(shuffled, now=NOW, tz=tz)

        assert first == second

    @given(
        points=point_lists(),
        rule=retention_rules,
        tz=time_zones,
        written_in=st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata"]),
        in_fold=st.booleans(),
    )
    def test_plan_does_not_depend_on_the_zone_times_are_written_in(
        self, points, rule, tz, written_in, in_fold
    ):
        """The same instants written on another zone's clock (with its DST) give the same plan.

        With *in_fold*, the times are moved into the two hours around London's autumn change
        (2026-10-25 00:00-02:00 UTC), where London's 01:00-02:00 happens twice.
        """
        if in_fold:
            fold = datetime(2026, 10, 25, tzinfo=UTC)
            points = [
                p.evolve(created_at=fold + timedelta(seconds=p.created_at.timestamp() % 7200))
                for p in points
            ]
            written_in = "Europe/London"
        zone = ZoneInfo(written_in)
        moved = [p.evolve(created_at=p.created_at.astimezone(zone)) for p in points]

        first = rule.plan(points, now=NOW, tz=tz)
        second = rule.plan(moved, now=NOW, tz=tz)

        assert ([p.id for p in first.keep], [p.id for p in first.delete], dict(first.reasons)) == (
            [p.id for p in second.keep],
            [p.id for p in second.delete],
            dict(second.reasons),
        )

    @given(points=point_lists(), rule=retention_rules, tz=time_zones)
    def test_replanning_the_kept_points_deletes_nothing(self, points, rule, tz):
        """Planning again on what a plan keeps (after applying it) deletes nothing more."""
        plan = rule.plan(points, now=NOW, tz=tz)

        again = rule.plan(plan.keep, now=NOW, tz=tz)

        assert [] == again.delete

    @given(points=point_lists(), first=retention_rules, second=retention_rules, tz=time_zones)
    def test_union_keeps_a_superset(self, points, first, second, tz):
        """A | B keeps everything A keeps, in the pure rule and in the plan."""
        union = first | second

        assert set(first.keep(points, now=NOW, tz=tz)) <= set(union.keep(points, now=NOW, tz=tz))
        assert ids(first.plan(points, now=NOW, tz=tz).keep) <= ids(
            union.plan(points, now=NOW, tz=tz).keep
        )

    @given(points=point_lists(), rule=retention_rules, tz=time_zones)
    def test_plan_keeps_what_the_rule_keeps_among_managed_points(self, points, rule, tz):
        """The planner only adds to the rule: every managed point the rule keeps is kept."""
        managed = [p for p in points if p.managed]

        kept = rule.keep(managed, now=NOW, tz=tz)
        plan = rule.plan(points, now=NOW, tz=tz)

        assert set(kept) <= ids(plan.keep)
        assert all(plan.reasons[pid][: len(reasons)] == reasons for pid, reasons in kept.items())

    @given(points=point_lists(), rule=retention_rules)
    def test_combining_per_target_plans_equals_one_plan(self, points, rule):
        """Planning each target alone and combining gives the plan of all targets at once."""
        targets = sorted({p.target for p in points})
        parts = [rule.plan([p for p in points if p.target == t], now=NOW) for t in targets]

        whole = rule.plan(points, now=NOW)

        if parts:
            assert whole == RetentionPlan.combine(parts)

    @given(rule=retention_rules)
    def test_spec_round_trip(self, rule: RetentionRule):
        """to_spec and rule_from_spec are inverses whenever the rule has a spec form."""
        try:
            spec = rule.to_spec()
        except PolicyError:
            return  # two rules of one kind in a union: no spec form
        assert spec == rule_from_spec(spec).to_spec()


class TestBackendOrderProperties:
    """Ties of created_at follow the backend's order (ordinal) where points have one."""

    @given(points=listed_point_lists(), rule=retention_rules, tz=time_zones, data=st.data())
    def test_plan_does_not_depend_on_input_order(self, points, rule, tz, data):
        """With ordinals too, the same points in another order give the same plan."""
        shuffled = data.draw(st.permutations(points))

        assert rule.plan(points, now=NOW, tz=tz) == rule.plan(shuffled, now=NOW, tz=tz)

    @given(points=listed_point_lists(), rule=retention_rules, tz=time_zones)
    def test_floors_hold(self, points, rule, tz):
        """The newest completed point (by the backend's order on ties) and held points stay."""
        plan = rule.plan(points, now=NOW, tz=tz)

        newest = {p.id for p in newest_completed(points).values()}
        assert set() == newest - ids(plan.keep)
        assert set() == ids([p for p in points if p.held]) & ids(plan.delete)

    @given(count=st.integers(min_value=2, max_value=12), keep=st.integers(1, 11), data=st.data())
    def test_keep_last_keeps_the_newest_by_listing_order(self, count, keep, data):
        """KeepLast(n) keeps the n first listed (newest), whatever the input order.

        As S3 versions of one key in one second: ids ordered opposite to the listing order.
        """
        listed = [  # newest first, with the smallest id: restic's rule would say oldest
            RecoveryPoint(id=f"k@{i:03d}", target="k", created_at=NOW, ordinal=count - 1 - i)
            for i in range(count)
        ]
        shuffled = data.draw(st.permutations(listed))

        plan = KeepLast(keep).plan(shuffled, now=NOW)

        assert [p.id for p in listed[:keep]] == [p.id for p in plan.keep]
