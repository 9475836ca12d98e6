"""Tier locks (`lock:` in the policy file): validation, and pruning around locked points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import backuppolicy as bp
from backuppolicy.core.locks import PointLock, TierLock, retention_floor, retention_span
from backuppolicy.core.retention import RetentionPlan
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows.pruning import apply, defer_locked, plan_retention

MONDAY = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)


def _policy(lock: object, *, retention: object = None, policy_retention: str = "35d") -> bp.Policy:
    offsite: dict[str, Any] = {"name": "offsite", "every": "week", "lock": lock}
    if retention is not None:
        offsite["retention"] = retention
    return bp.Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": policy_retention},
            "targets": [{"name": "db", "kind": "testing:memory", "application": "shop"}],
            "tiers": [{"name": "local", "every": "day"}, offsite],
        }
    )


class TestPolicyLock:
    def test_short_form_locks_for_the_retention(self):
        """`lock: compliance` reads back as a compliance lock for the tier's retention (35 days)."""
        policy = _policy("compliance")
        lock = policy.tiers[1].lock
        assert (TierLock("compliance"), "35d") == (lock, str(lock.lock_for(policy.retention)))

    def test_round_trips_through_to_dict(self):
        """A lock with a duration and a cool-off survives to_dict / from_dict."""
        spec = {"mode": "compliance", "for": "5w", "cool_off": "24h"}
        policy = _policy(spec, retention={"max_age": "35d"})
        assert policy == bp.Policy.from_dict(policy.to_dict())
        assert spec == policy.to_dict()["tiers"][1]["lock"]

    def test_lock_outliving_retention_names_both_fields(self):
        """A 400-day lock on a 35-day tier is a PolicyError naming the lock and the retention."""
        with pytest.raises(bp.PolicyError) as info:
            _policy({"mode": "compliance", "for": "400d"}, retention={"max_age": "35d"})
        assert "tiers[1].lock.for" == info.value.path
        assert "tiers[1].retention" in str(info.value)

    def test_lock_shorter_than_retention_floor_names_both_fields(self):
        """A 7-day lock where the policy's retention keeps everything 35 days is refused."""
        with pytest.raises(bp.PolicyError) as info:
            _policy({"mode": "governance", "for": "7d"})
        assert "tiers[1].lock.for" == info.value.path
        assert "expected a lock at least as long as retention" in str(info.value)

    def test_count_rules_span_their_periods(self):
        """KeepWeekly(4) spans 5 weeks: a 5-week lock passes, a 6-week one does not."""
        _policy({"mode": "compliance", "for": "5w"}, retention={"keep_weekly": 4})
        with pytest.raises(bp.PolicyError, match=r"tiers\[1\]\.retention keeps a point"):
            _policy({"mode": "compliance", "for": "6w"}, retention={"keep_weekly": 4})

    def test_unbounded_retention_needs_explicit_duration(self):
        """keep_weekly: -1 keeps forever: a lock must say how long."""
        with pytest.raises(bp.PolicyError, match=r"tiers\[1\]\.lock\.for"):
            _policy("compliance", retention={"keep_weekly": -1})

    @pytest.mark.parametrize(
        ("lock", "path"),
        [
            ("frozen", "tiers[1].lock.mode"),
            ({"mode": "compliance", "until": "35d"}, "tiers[1].lock.until"),
            ({"mode": "governance", "cool_off": "24h"}, "tiers[1].lock.cool_off"),
            ({"mode": "compliance", "cool_off": "100h"}, "tiers[1].lock.cool_off"),
            ({"mode": "compliance", "for": "soon"}, "tiers[1].lock.for"),
        ],
    )
    def test_bad_lock_fields_are_named(self, lock, path):
        """Unknown modes, keys and bad durations name the field."""
        with pytest.raises(bp.PolicyError) as info:
            _policy(lock)
        assert path == info.value.path

    def test_none_locks_nothing(self):
        """`lock: none` never conflicts with a retention."""
        policy = _policy("none", retention={"keep_weekly": -1})
        assert policy.tiers[1].lock.point_lock(policy.retention, MONDAY) is None

    def test_floor_and_span(self):
        """The floor is the longest time window; the span also counts periods of count rules."""
        rule = bp.MaxAge(days=35) | bp.KeepMonthly(3)
        assert ("35d", "124d") == (str(retention_floor(rule)), str(retention_span(rule)))


def _locked(days: int, mode: str = "compliance") -> PointLock:
    return PointLock(mode, datetime.now(UTC) + timedelta(days=days))


class TestPruningLockedPoints:
    def test_plan_defers_a_locked_point_to_its_expiry(self):
        """A locked point past retention is kept, and the reason names the day it goes."""
        until = MONDAY + timedelta(days=48)
        target = MemoryTarget("db", policy="shop", clock=lambda: MONDAY)
        old = target.add_point(
            created_at=MONDAY - timedelta(days=40), lock=PointLock("compliance", until)
        )
        plain = target.add_point(created_at=MONDAY - timedelta(days=41))
        target.add_point(created_at=MONDAY)
        plan = plan_retention(_policy("none"), now=MONDAY, targets={"db": target})
        assert [plain.id] == [p.id for p in plan.delete]
        assert "locked (compliance) until 2027-01-10; deletes then" in plan.reasons[old.id]

    def test_expired_lock_is_deleted_on_schedule(self):
        """Once its lock has expired, the point is planned for deletion like any other."""
        target = MemoryTarget("db", policy="shop", clock=lambda: MONDAY)
        old = target.add_point(
            created_at=MONDAY - timedelta(days=40),
            lock=PointLock("governance", MONDAY - timedelta(days=1)),
        )
        target.add_point(created_at=MONDAY)
        plan = plan_retention(_policy("none"), now=MONDAY, targets={"db": target})
        assert [old.id] == [p.id for p in plan.delete]

    def test_defer_leaves_unlocked_plans_alone(self):
        """A plan without locked deletions comes back unchanged."""
        point = bp.RecoveryPoint(id="a", target="db", created_at=MONDAY)
        plan = RetentionPlan(keep=[], delete=[point], reasons={"a": ["old"]}, now=MONDAY)
        assert plan == defer_locked(plan)

    def test_apply_refuses_a_locked_point_in_a_hand_made_plan(self):
        """A hand-made plan deleting a locked point: apply skips it and the point survives."""
        target = MemoryTarget("db", policy="shop")
        locked = target.add_point(created_at=MONDAY - timedelta(days=40), lock=_locked(30))
        target.add_point(created_at=MONDAY)
        plan = RetentionPlan(
            keep=[], delete=[locked], reasons={locked.id: ["hand-made"]}, now=MONDAY
        )
        report = apply(plan, targets={"db": target})
        assert ([], [locked.id]) == (report.deleted, [o.point.id for o in report.skipped])
        assert "locked (compliance) until" in report.skipped[0].reason
        assert locked.id in {p.id for p in target.list_points()}

    def test_apply_refuses_when_the_plan_hides_the_lock(self):
        """The plan's copy of the point has no lock; the re-read one has: still skipped."""
        target = MemoryTarget("db", policy="shop")
        locked = target.add_point(created_at=MONDAY - timedelta(days=40), lock=_locked(30))
        target.add_point(created_at=MONDAY)
        bare = locked.evolve(lock=None)
        plan = RetentionPlan(keep=[], delete=[bare], reasons={bare.id: ["x"]}, now=MONDAY)
        report = apply(plan, targets={"db": target})
        assert [] == report.deleted
        assert locked.id in {p.id for p in target.list_points()}

    def test_backend_refuses_a_locked_delete(self):
        """MemoryTarget.delete refuses an active lock, as AWS does."""
        target = MemoryTarget("db", policy="shop")
        locked = target.add_point(created_at=MONDAY, lock=_locked(30, "governance"))
        with pytest.raises(bp.ProtectedPointError, match=r"locked \(governance\)"):
            target.delete(locked)


class LockingMemory(MemoryTarget):
    """A MemoryTarget that locks points (as S3 and EBS do) and enforces holds with a lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locked: list[tuple[str, PointLock]] = []
        self.enforced: list[str] = []
        self.released: list[tuple[str, PointLock | None]] = []

    def lock_point(self, point: bp.RecoveryPoint, lock: PointLock, *, cool_off: Any = None) -> Any:
        """Record the lock and store it on the point."""
        del cool_off
        self.locked.append((point.id, lock))
        with self._lock:
            self._points[point.id] = self._points[point.id].evolve(lock=lock)
        return self.refresh(point)

    def enforce_hold(self, point: bp.RecoveryPoint) -> bp.RecoveryPoint:
        """Record the enforcement."""
        self.enforced.append(point.id)
        return point

    def release_enforcement(self, point: bp.RecoveryPoint, tier_lock: PointLock | None) -> None:
        """Record the release and the tier lock to restore."""
        self.released.append((point.id, tier_lock))

    def hold_gaps(self, point: bp.RecoveryPoint) -> list[str]:
        """A gap unless enforce_hold ran on the point."""
        return [] if point.id in self.enforced else ["not enforced"]


def _locked_policy() -> bp.Policy:
    return bp.Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "targets": [{"name": "db", "kind": "testing:memory", "application": "shop"}],
            "tiers": [{"name": "local", "every": "day", "lock": "compliance"}],
        }
    )


class TestBackupLocks:
    def test_new_points_are_locked_for_the_retention(self):
        """bp.backup locks the new point of a locked tier until created_at + 35 days."""
        target = LockingMemory("db", policy="shop", clock=lambda: MONDAY)
        report = bp.backup(_locked_policy(), now=MONDAY, targets={"db": target})
        point = report.runs[0].point
        assert [(point.id, PointLock("compliance", point.created_at + timedelta(days=35)))] == (
            target.locked
        )

    def test_a_kind_that_cannot_lock_is_an_error_of_the_run(self):
        """A locked tier on a kind without locks: the backup is kept, the run reports an error."""
        target = MemoryTarget("db", policy="shop", clock=lambda: MONDAY)
        report = bp.backup(_locked_policy(), now=MONDAY, targets={"db": target})
        assert report.runs[0].point is not None
        assert "cannot lock its points" in (report.runs[0].error or "")


class TestHoldsBelowTheLibrary:
    def test_place_hold_enforces_and_release_lifts(self):
        """place_hold asks the backend to enforce; release_hold lifts it and names the tier lock."""
        policy = _locked_policy()
        target = LockingMemory("db", policy="shop", clock=lambda: MONDAY)
        point = target.add_point(created_at=MONDAY)
        bp.place_hold(policy, point, reason="litigation", now=MONDAY, targets={"db": target})
        bp.release_hold(policy, point, targets={"db": target})
        until = MONDAY + timedelta(days=35)
        assert ([point.id], [(point.id, PointLock("compliance", until))]) == (
            target.enforced,
            target.released,
        )


class TestAuditLocks:
    def test_tag_only_hold_is_reported(self):
        """A held point of a kind that enforces nothing below the library is non-compliant."""
        target = MemoryTarget("db", policy="shop", clock=lambda: MONDAY)
        point = target.add_point(created_at=MONDAY, legal_hold=bp.LegalHold(reason="x"))
        report = bp.audit(_policy("none"), now=MONDAY, targets={"db": target})
        [finding] = report.of("hold-enforcement")
        assert (False, (point.id,)) == (finding.compliant, finding.evidence)
        assert "tag only" in finding.detail

    def test_enforced_hold_is_compliant(self):
        """Once the backend enforces the hold, the finding is compliant."""
        policy = _policy("none")
        target = LockingMemory("db", policy="shop", clock=lambda: MONDAY)
        point = target.add_point(created_at=MONDAY)
        bp.place_hold(policy, point, reason="x", now=MONDAY, targets={"db": target})
        [finding] = bp.audit(policy, now=MONDAY, targets={"db": target}).of("hold-enforcement")
        assert finding.compliant

    def test_unlocked_point_of_a_locked_tier_is_reported(self):
        """A point of a locked tier without its lock makes tier-locks non-compliant."""
        target = LockingMemory("db", policy="shop", clock=lambda: MONDAY)
        bare = target.add_point(created_at=MONDAY - timedelta(days=1))
        locked = target.add_point(created_at=MONDAY)
        target.lock_point(locked, PointLock("compliance", MONDAY + timedelta(days=35)))
        [finding] = bp.audit(_locked_policy(), now=MONDAY, targets={"db": target}).of("tier-locks")
        assert (False, f"{bare.id}: not locked") == (finding.compliant, finding.detail)

    def test_governance_where_compliance_is_asked_is_reported(self):
        """A governance lock on a compliance tier is weaker than the policy asks."""
        target = LockingMemory("db", policy="shop", clock=lambda: MONDAY)
        point = target.add_point(created_at=MONDAY)
        target.lock_point(point, PointLock("governance", MONDAY + timedelta(days=35)))
        [finding] = bp.audit(_locked_policy(), now=MONDAY, targets={"db": target}).of("tier-locks")
        assert not finding.compliant
        assert "governance, the tier wants compliance" in finding.detail
