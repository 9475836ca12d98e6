"""The rolling integrity schedule (seed §4): every copy checked within its window, spread by day.

The schedule is pure (`integrity_slots_due`); `integrity_due` runs it and records the results;
the audit's ``copy-integrity`` clause shows when each copy was last checked.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backuppolicy import Policy, RecoveryPoint
from backuppolicy.core.exceptions import PolicyError, VerificationError
from backuppolicy.core.integrity_schedule import integrity_slots_due, integrity_window_days
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows._audit import audit
from backuppolicy.workflows._copy_integrity import copy_integrity_status
from backuppolicy.workflows.testlog import TestLog
from backuppolicy.workflows.verify import integrity_due, integrity_plan, last_integrity_checks

START = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def _policy(max_age: str = "35d", every: str = "year", covers: list[str] | None = None) -> Policy:
    return Policy.from_dict(
        {
            "name": "p",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": max_age},
            "tiers": [
                {"name": "local", "every": "day"},
                {"name": "offsite", "every": "week", "location": {"region": "eu-west-1"}},
            ],
            "targets": [
                {"name": "db", "kind": "testing:memory", "application": "shop"},
                {"name": "web", "kind": "testing:memory", "application": "shop"},
            ],
            "verification": {
                "integrity_check_every": every,
                "integrity_covers_tiers": covers if covers is not None else ["local", "offsite"],
            },
        }
    )


def _point(pid: str, day: int, *, target: str = "db", tier: str = "local") -> RecoveryPoint:
    return RecoveryPoint(
        id=pid,
        target=target,
        created_at=START + timedelta(days=day),
        kind="memory-snapshot",
        tier=tier,
    )


class TestWindow:
    def test_the_window_is_the_cadence_shortened_to_the_retention(self):
        """Yearly checks, 35-day retention: a copy's window is 34 days; without MaxAge, 365."""
        assert 34 == integrity_window_days(_policy(), "db", "local")
        assert 365 == integrity_window_days(_policy(max_age="2y"), "db", "local")
        assert 7 == integrity_window_days(_policy(every="week"), "db", "offsite")


class TestSlots:
    def test_a_new_copy_is_due_on_its_slot_day_once(self):
        """Checked on its slot day, a copy is not due again until its next cycle."""
        policy = _policy()
        point = _point("p1", 0)
        days = [START + timedelta(days=d) for d in range(34)]
        due_days = [d for d in days if integrity_slots_due(policy, [point], now=d)]
        first = due_days[0]
        assert days[days.index(first) :] == due_days  # never checked: due from its slot day on
        checked = {("db", "p1"): first}
        later = [
            d for d in days if integrity_slots_due(policy, [point], now=d, last_checked=checked)
        ]
        assert [] == later  # checked in this cycle: not due again before the next one
        assert "slot" == integrity_slots_due(policy, [point], now=first)[0].reason

    def test_the_result_does_not_depend_on_input_order_or_wall_clock(self):
        """Deterministic: the same inputs give the same list, whatever their order."""
        policy = _policy()
        points = [_point(f"p{n}", -n % 30, target=("db", "web")[n % 2]) for n in range(60)]
        now = START + timedelta(days=20)
        assert integrity_slots_due(policy, points, now=now) == integrity_slots_due(
            policy, list(reversed(points)), now=now
        )

    def test_overdue_copies_come_first_and_the_backlog_is_bounded(self):
        """Never-checked old copies are overdue, first, at most *catch_up* a day."""
        policy = _policy(max_age="2y")  # window 365 days
        old = [_point(f"old{n}", -400 - n) for n in range(10)]
        due = integrity_slots_due(policy, old, now=START, catch_up=3)
        assert [("overdue", "old9"), ("overdue", "old8"), ("overdue", "old7")] == [
            (s.reason, s.point_id) for s in due
        ]

    def test_uncovered_tiers_and_bad_points_are_left_out(self):
        """Only covered tiers, only completed points."""
        policy = _policy(covers=["offsite"])
        points = [_point("l", -40), _point("o", -40, tier="offsite")]
        assert ["o"] == [s.point_id for s in integrity_slots_due(policy, points, now=START)]

    def test_catch_up_must_be_a_count(self):
        """catch_up=-1 is refused naming the field."""
        with pytest.raises(PolicyError, match="catch_up"):
            integrity_slots_due(_policy(), [], now=START, catch_up=-1)

    def test_the_daily_load_is_spread(self):
        """100 targets x 35 daily copies: no day checks much more than the mean (~100)."""
        policy = _policy()
        points = [_point(f"t{t}-{d}", -d, target=f"t{t}") for t in range(100) for d in range(35)]
        counts = [
            len(
                [
                    s
                    for s in integrity_slots_due(policy, points, now=START + timedelta(days=k))
                    if s.reason == "slot"
                ]
            )
            for k in range(3)
        ]
        assert all(40 < c < 160 for c in counts), counts


# Lifetimes and creation days of a population of copies over a simulated cadence.
_copies = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=120),  # created on this day of the simulation
        st.integers(min_value=1, max_value=200),  # lives this many days
        st.sampled_from(["db", "web"]),
        st.sampled_from(["local", "offsite"]),
    ),
    min_size=1,
    max_size=40,
)


class TestProperties:
    @given(copies=_copies, every=st.sampled_from(["month", "quarter", "year"]))
    def test_every_copy_that_lives_its_window_is_checked_within_it(self, copies, every):
        """Checking each day what is due, every copy living a full window is checked in it."""
        policy = _policy(max_age="35d", every=every)
        points = [
            (_point(f"c{n}", born, target=t, tier=tier), born, life)
            for n, (born, life, t, tier) in enumerate(copies)
        ]
        checked: dict[tuple[str, str], list[int]] = {}
        last: dict[tuple[str, str], datetime] = {}
        for day in range(330):
            now = START + timedelta(days=day, hours=1)
            alive = [p for p, born, life in points if born <= day < born + life]
            for slot in integrity_slots_due(policy, alive, now=now, last_checked=last):
                key = (slot.target, slot.point_id)
                last[key] = now
                checked.setdefault(key, []).append(day)
        for point, born, life in points:
            window = integrity_window_days(policy, point.target, point.tier)
            if life >= window and born + window <= 330:
                days = checked.get((point.target, point.id), [])
                assert [d for d in days if born <= d < born + window], (point.id, born, window)

    @given(backlog=st.integers(min_value=1, max_value=60), per_day=st.integers(1, 10))
    def test_a_backlog_is_cleared_at_catch_up_per_day(self, backlog, per_day):
        """Old never-checked copies are all checked within ceil(backlog / catch_up) days."""
        policy = _policy(max_age="3y")
        old = [_point(f"o{n}", -500 - n) for n in range(backlog)]
        last: dict[tuple[str, str], datetime] = {}
        days = -(-backlog // per_day)
        for day in range(days):
            now = START + timedelta(days=day)
            due = integrity_slots_due(policy, old, now=now, last_checked=last, catch_up=per_day)
            assert len([s for s in due if s.reason != "slot"]) <= per_day
            for slot in due:
                last[(slot.target, slot.point_id)] = now
        assert len(old) == len(last)


# --------------------------------------------------------------------------- the workflow


class _Checked(MemoryTarget):
    """A memory target whose copies have a checksum to verify (like an archive)."""

    tampered: frozenset[str] = frozenset()

    def verify(self, point: RecoveryPoint) -> str:
        if point.id in self.tampered:
            raise VerificationError(f"{point.id}: checksum mismatch", result={"point": point.id})
        return f"sha256:{point.id}"


def _world(now: datetime) -> tuple[Policy, dict[str, Any]]:
    policy = _policy()
    targets: dict[str, Any] = {}
    for name in ("db", "web"):
        target = _Checked(name, policy="p", clock=lambda: now)
        for day in range(35):
            target.add_point(id=f"{name}-{day}", created_at=now - timedelta(days=day, hours=1))
        for week in range(5):
            target.add_point(
                id=f"{name}-w{week}",
                created_at=now - timedelta(days=7 * week, hours=2),
                tier="offsite",
            )
        targets[name] = target
    return policy, targets


class TestIntegrityDue:
    def test_each_day_checks_the_due_copies_and_records_them(self):
        """A month of daily runs records a pass for every copy of the first day's world."""
        now = START
        policy, targets = _world(now)
        log = TestLog.open("memory://", ran_by="test")
        for day in range(34):
            when = now + timedelta(days=day, hours=2)
            results = integrity_due(policy, now=when, targets=targets, log=log, notifiers=[])
            assert all(r.kind is CheckKind.INTEGRITY for r in results)
            assert all("schedule" in r.evidence for r in results)
        last = last_integrity_checks(log.entries())
        every = {(p.target, p.id) for t in targets.values() for p in t.list_points()}
        assert every == set(last)

    def test_a_tampered_copy_fails_and_stays_due(self):
        """A failing copy is recorded FAIL and is due again the next day."""
        now = START
        policy, targets = _world(now)
        targets["db"].tampered = frozenset({"db-3"})
        log = TestLog.open("memory://", ran_by="test")
        failed = []
        for day in range(34):
            when = now + timedelta(days=day, hours=2)
            results = integrity_due(policy, now=when, targets=targets, log=log, notifiers=[])
            failed += [r for r in results if r.status is CheckStatus.FAIL]
        assert {"db-3"} == {r.point_id for r in failed}
        assert len(failed) > 1  # checked again after failing

    def test_the_plan_is_the_schedule_without_running_it(self):
        """integrity_plan lists what integrity_due would check, and records nothing."""
        policy, targets = _world(START)
        log = TestLog.open("memory://", ran_by="test")
        plan = integrity_plan(policy, now=START, targets=targets, log=log)
        ran = integrity_due(policy, now=START, targets=targets, log=log, notifiers=[])
        assert sorted((s.target, s.point_id) for s in plan) == sorted(
            (r.target, r.point_id) for r in ran
        )
        assert plan


# --------------------------------------------------------------------------- the audit


def _pass(
    target: str, pid: str, at: datetime, status: CheckStatus = CheckStatus.PASS
) -> CheckResult:
    return CheckResult(
        check="integrity",
        status=status,
        target=target,
        checked_at=at,
        point_id=pid,
        kind=CheckKind.INTEGRITY,
        tier="local",
    )


class TestAuditLastChecked:
    def test_each_copy_shows_when_it_was_last_checked(self):
        """The status lists every copy with its last check, and the audit's evidence too."""
        now = START + timedelta(days=40)
        policy = _policy()
        db = MemoryTarget("db", policy="p", clock=lambda: now)
        db.add_point(id="fresh", created_at=now - timedelta(days=2))
        db.add_point(id="checked", created_at=now - timedelta(days=30))
        history = [_pass("db", "checked", now - timedelta(days=5))]
        status = {
            c.point_id: c for c in copy_integrity_status(policy, db.list_points(), history, now=now)
        }
        assert (now - timedelta(days=5), False) == (
            status["checked"].last_passed,
            status["checked"].overdue,
        )
        assert (None, False) == (status["fresh"].last_checked, status["fresh"].overdue)
        assert (now - timedelta(days=2)).date() + timedelta(days=34) == status["fresh"].due_by
        report = audit(policy, now=now, targets={"db": db}, checks=history, notifiers=[])
        [finding] = report.of("copy-integrity")
        assert finding.compliant
        assert any(e.startswith("checked: last checked 2026-") for e in finding.evidence)
        assert any(e.startswith("fresh: never checked") for e in finding.evidence)

    def test_a_copy_never_checked_within_its_window_makes_section_4_red(self):
        """A 34-day-old copy without a passing check: not compliant, and it is named."""
        now = START + timedelta(days=40)
        policy = _policy()
        db = MemoryTarget("db", policy="p", clock=lambda: now)
        db.add_point(id="fresh", created_at=now - timedelta(days=2))
        db.add_point(id="forgotten", created_at=now - timedelta(days=34, hours=12))
        db.add_point(id="failed", created_at=now - timedelta(days=34, hours=12))
        history = [_pass("db", "failed", now - timedelta(days=1), CheckStatus.FAIL)]
        report = audit(policy, now=now, targets={"db": db}, checks=history, notifiers=[])
        [finding] = report.of("copy-integrity")
        assert not finding.compliant
        assert "forgotten" in finding.detail
        assert "failed" in finding.detail
        assert "fresh" not in finding.detail.split("window:")[1]

    def test_a_copy_whose_latest_check_failed_is_red_within_its_window(self):
        """A young copy whose latest check failed (corruption found) is named, not met.

        The window has days left, but time left never outweighs a failure; a later pass
        clears it again.
        """
        now = START + timedelta(days=40)
        policy = _policy()
        db = MemoryTarget("db", policy="p", clock=lambda: now)
        db.add_point(id="tampered", created_at=now - timedelta(days=5))
        failed = [
            _pass("db", "tampered", now - timedelta(days=3)),
            _pass("db", "tampered", now - timedelta(days=1), CheckStatus.FAIL),
        ]
        [red] = audit(policy, now=now, targets={"db": db}, checks=failed, notifiers=[]).of(
            "copy-integrity"
        )
        passed_again = [*failed, _pass("db", "tampered", now - timedelta(hours=1))]
        [green] = audit(policy, now=now, targets={"db": db}, checks=passed_again, notifiers=[]).of(
            "copy-integrity"
        )
        assert (False, True) == (red.compliant, green.compliant)
        assert "1 failed their latest check: tampered" in red.detail

    def test_counts_of_the_status_by_tier(self):
        """Copies are grouped by tier, one finding each."""
        now = START + timedelta(days=3)
        policy = _policy()
        db = MemoryTarget("db", policy="p", clock=lambda: now)
        db.add_point(id="a", created_at=now - timedelta(days=1))
        db.add_point(id="b", created_at=now - timedelta(days=1), tier="offsite")
        report = audit(policy, now=now, targets={"db": db}, notifiers=[])
        assert Counter({"local": 1, "offsite": 1}) == Counter(
            f.tier for f in report.of("copy-integrity")
        )
