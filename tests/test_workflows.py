# Idempotency tokens such as token="chg-42" are not passwords.
"""Workflows: backups and tier copies, manual backups, retention plan and apply, holds, reports.

Most tests drive `backuppolicy.testing.MemoryTarget` objects (passed with ``targets=``) whose
clock the test moves by hand, so "now" is the same for the workflow and for the points it
creates. `TestRealBackends` runs the same workflows against RDS and EBS under moto in-process
and a directory target in ``tmp_path``.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import backuppolicy as bp
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
    ThrottledError,
)
from backuppolicy.core.model import TAG_REASON, TAG_TOKEN, LegalHold, RecoveryPoint, Status
from backuppolicy.core.retention import RetentionPlan
from backuppolicy.core.schedule import Cadence, rolling_slots
from backuppolicy.notify import Event, EventKind
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows.backups import (
    TAG_REQUESTED_BY,
    RunReport,
    TargetRun,
    backup,
    backup_now,
)
from backuppolicy.workflows.holds import holds, place_hold, release_hold
from backuppolicy.workflows.pruning import ApplyReport, DeleteOutcome, apply, plan_retention

MONDAY = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)  # ten minutes after the 04:00 run
HOLD = LegalHold(reason="litigation", reference="case-17", since=MONDAY)


class Clock:
    """A clock the test sets; targets stamp their points with it."""

    def __init__(self, now: datetime = MONDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """The current time."""
        return self.now


class Recorder:
    """A notifier that remembers every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        """Record *event*."""
        self.events.append(event)


class Broken:
    """A notifier that always fails."""

    def notify(self, event: Event) -> None:
        """Fail."""
        raise ConnectionError(f"cannot deliver {event.kind.value}")


class Slow(MemoryTarget):
    """A target whose backups and copies start pending, as RDS and EBS snapshots do."""

    def create_backup(self, **kwargs: Any) -> RecoveryPoint:
        """A new point, pending."""
        return self.set_status(super().create_backup(**kwargs), Status.PENDING)

    def copy(self, point: RecoveryPoint, destination: Any) -> RecoveryPoint:
        """A new copy, pending."""
        return self.set_status(super().copy(point, destination), Status.PENDING)


class HalfListing(MemoryTarget):
    """A target whose listing yields its first points, then fails (a late page that fails)."""

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Two points, then a throttling error."""
        points = list(super().list_points())
        yield from points[:2]
        raise ThrottledError("list page 2 throttled", backend=self.name, operation="list")


def _policy(
    names: tuple[str, ...] = ("db", "web"),
    *,
    tiers: list[dict[str, Any]] | None = None,
    rolling: str | None = None,
    retention: str = "35d",
    timezone: str = "UTC",
    at: str = "04:00",
    target_retention: dict[str, str] | None = None,
) -> bp.Policy:
    data: dict[str, Any] = {
        "name": "shop",
        "timezone": timezone,
        "schedule": {"every": "day", "at": at},
        "retention": {"max_age": retention},
        "targets": [
            {"name": n, "kind": "testing:memory", "application": "shop"}
            | (
                {"retention": {"max_age": target_retention[n]}}
                if target_retention and n in target_retention
                else {}
            )
            for n in names
        ],
    }
    if tiers is not None:
        data["tiers"] = tiers
    if rolling is not None:
        data["rolling_period"] = rolling
    return bp.Policy.from_dict(data)


LOCAL = {"name": "local", "every": "day"}
OFFSITE = {"name": "offsite", "every": "week", "location": {"region": "eu-west-1"}}


def _targets(policy: bp.Policy, clock: Clock) -> dict[str, MemoryTarget]:
    return {t.name: MemoryTarget(t.name, policy=policy.name, clock=clock) for t in policy.targets}


def _ids(points: Any) -> list[str]:
    return sorted(p.id for p in points)


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="recorder")
def _recorder() -> Recorder:
    return Recorder()


# -- backup ------------------------------------------------------------------------------------


class TestBackup:
    def test_backs_up_only_targets_whose_newest_point_is_older_than_the_last_run(self, clock):
        """A target backed up after today's 04:00 run is skipped; one from yesterday is due."""
        policy = _policy()
        targets = _targets(policy, clock)
        fresh = targets["db"].add_point(created_at=MONDAY - timedelta(minutes=5))
        targets["web"].add_point(created_at=MONDAY - timedelta(days=1))

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[])

        assert ["web"] == [p.target for p in report.created]
        db_run = next(r for r in report.runs if r.target == "db")
        assert f"not due: newest backup {fresh.created_at.isoformat()}" == db_run.skipped
        assert 1 == len(list(targets["db"].list_points()))

    def test_failed_unmanaged_and_pending_points_do_not_make_a_target_up_to_date(self, clock):
        """Only a completed point of ours counts as the last backup."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        recent = MONDAY - timedelta(minutes=5)
        targets["db"].add_point(created_at=recent, status=Status.FAILED)
        targets["db"].add_point(created_at=recent, managed=False)
        targets["db"].add_point(created_at=recent, status=Status.PENDING)

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[])

        assert 1 == len(report.created)

    def test_nothing_is_due_before_the_first_scheduled_run_of_the_day(self, clock):
        """At 03:59 the last run is yesterday's; a point from yesterday 04:05 is up to date."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        targets["db"].add_point(created_at=MONDAY - timedelta(days=1) - timedelta(minutes=5))

        report = backup(policy, now=MONDAY - timedelta(minutes=11), targets=targets, notifiers=[])

        assert [] == report.created

    def test_running_the_job_twice_makes_no_second_backup(self, clock):
        """The second run of the same job finds the first run's point and skips."""
        policy = _policy()
        targets = _targets(policy, clock)

        first = backup(policy, now=MONDAY, targets=targets, notifiers=[])
        clock.now = MONDAY + timedelta(minutes=10)
        second = backup(policy, now=clock.now, targets=targets, notifiers=[])

        assert 2 == len(first.created)
        assert [] == second.created
        assert 2 == sum(len(list(t.list_points())) for t in targets.values())

    def test_rerun_while_the_backup_is_pending_returns_the_same_point(self, clock):
        """The token is derived from the scheduled run, so a re-run cannot duplicate a pending backup."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        first = backup(policy, now=MONDAY, targets=targets, notifiers=[]).created[0]
        targets["db"].set_status(first, Status.PENDING)  # not good: the target looks due again

        clock.now = MONDAY + timedelta(minutes=30)
        again = backup(policy, now=clock.now, targets=targets, notifiers=[]).created

        assert [first.id] == [p.id for p in again]
        assert [first.id] == [p.id for p in targets["db"].list_points()]
        assert "shop-db-20261123T040000Z" == first.tags[TAG_TOKEN]

    def test_force_backs_up_even_when_nothing_is_due(self, clock):
        """force=True takes a new backup; forcing twice at the same moment still makes one."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        backup(policy, now=MONDAY, targets=targets, notifiers=[])
        clock.now = MONDAY + timedelta(hours=1)

        forced = backup(policy, now=clock.now, targets=targets, notifiers=[], force=True)
        again = backup(policy, now=clock.now, targets=targets, notifiers=[], force=True)

        assert 1 == len(forced.created)
        assert _ids(forced.created) == _ids(again.created)
        assert 2 == len(list(targets["db"].list_points()))

    def test_scheduled_points_are_tagged_scheduled(self, clock):
        """The reason tag of a scheduled backup is 'scheduled'."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)

        point = backup(policy, now=MONDAY, targets=targets, notifiers=[]).created[0]

        assert "scheduled" == point.tags[TAG_REASON]

    def test_only_runs_the_named_targets(self, clock):
        """only= limits the run to those targets."""
        policy = _policy()
        targets = _targets(policy, clock)

        report = backup(policy, now=MONDAY, targets=targets, only=["web"], notifiers=[])

        assert ["web"] == [r.target for r in report.runs]

    def test_one_failing_target_does_not_stop_the_others_and_is_notified(self, clock, recorder):
        """A failed backup is reported and notified; the other target is backed up."""
        policy = _policy()
        targets = _targets(policy, clock)
        targets["db"].fail_next("create_backup", ThrottledError("Rate exceeded", backend="db"))

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[recorder])

        assert ["web"] == [p.target for p in report.created]
        assert ["db"] == [r.target for r in report.failed]
        assert "backup: ThrottledError: Rate exceeded" == report.failed[0].error
        assert not report.ok
        assert [(EventKind.BACKUP_FAILED, "db")] == [(e.kind, e.target) for e in recorder.events]
        assert "ThrottledError: Rate exceeded" == recorder.events[0].error

    def test_a_failing_listing_is_a_failed_backup(self, clock, recorder):
        """When the target cannot be listed the run fails at the listing stage."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        targets["db"].fail_next("list_points", BackendError("denied", backend="db"))

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[recorder])

        assert "listing: BackendError: denied" == report.runs[0].error
        assert [EventKind.BACKUP_FAILED] == [e.kind for e in recorder.events]

    def test_a_failing_notifier_does_not_hide_the_failure(self, clock, recorder):
        """The broken notifier is reported; the working one still hears of the failure."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        targets["db"].fail_next("create_backup", BackendError("boom", backend="db"))

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[Broken(), recorder])

        assert "backup: BackendError: boom" == report.runs[0].error
        assert 1 == len(report.notify_failures)
        assert 1 == len(recorder.events)

    def test_a_target_without_an_object_is_a_failure(self, clock):
        """A policy target missing from targets= fails alone."""
        policy = _policy()
        targets = _targets(policy, clock)
        del targets["db"]

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[])

        assert ["db"] == [r.target for r in report.failed]
        assert ["web"] == [p.target for p in report.created]

    def test_progress_is_called_once_per_target(self, clock):
        """progress("backup", done, total) counts the targets."""
        policy = _policy()
        calls: list[tuple[str, int, int]] = []

        backup(
            policy,
            now=MONDAY,
            targets=_targets(policy, clock),
            notifiers=[],
            progress=lambda *a: calls.append(a),
        )

        assert [("backup", 1, 2), ("backup", 2, 2)] == calls

    def test_naive_now_is_refused(self, clock):
        """now must be timezone-aware."""
        policy = _policy()
        with pytest.raises(PolicyError, match="now"):
            backup(policy, now=datetime(2026, 11, 23), targets=_targets(policy, clock))


class TestCopyTiers:
    def _run_days(self, policy, targets, clock, days, recorder=None):
        """Run the daily job for *days* days from MONDAY; {target: [day index of each copy]}."""
        copies: dict[str, list[int]] = {name: [] for name in targets}
        for day in range(days):
            clock.now = MONDAY + timedelta(days=day)
            report = backup(
                policy, now=clock.now, targets=targets, notifiers=[recorder] if recorder else []
            )
            for run in report.runs:
                copies[run.target] += [day] * len(run.copies)
        return copies

    def test_weekly_offsite_copy_is_made_once_per_week(self, clock):
        """Without a rolling spread every target is copied off-site on the first day of each week."""
        policy = _policy(tiers=[LOCAL, OFFSITE])
        targets = _targets(policy, clock)

        copies = self._run_days(policy, targets, clock, 14)

        assert {"db": [0, 7], "web": [0, 7]} == copies
        offsite = [p for p in targets["db"].list_points() if p.tier == "offsite"]
        assert 2 == len(offsite)
        assert 14 == sum(1 for p in targets["db"].list_points() if p.tier == "local")

    def test_rolling_spread_defers_each_copy_to_the_targets_slot_day(self, clock):
        """With rolling_period: week each target's off-site copy lands on its own day of the week."""
        names = ("orders-db", "web-config", "app-code", "assets", "blog-db")
        policy = _policy(names, tiers=[LOCAL, OFFSITE], rolling="week")
        targets = _targets(policy, clock)

        copies = self._run_days(policy, targets, clock, 14)

        slots = rolling_slots(names, period=Cadence.WEEK)
        assert {n: [slots[n], slots[n] + 7] for n in names} == copies
        assert len(names) == len({days[0] for days in copies.values()})  # spread, not bunched

    def test_rolling_spread_uses_the_policys_days_not_utc_days(self):
        """In Asia/Tokyo a 10:00 run is 01:00 UTC: the slot day is counted in Tokyo's calendar."""
        names = ("orders-db", "web-config", "app-code", "assets", "blog-db")
        policy = _policy(
            names, tiers=[LOCAL, OFFSITE], rolling="week", timezone="Asia/Tokyo", at="10:00"
        )
        monday_tokyo = datetime(2026, 11, 23, 1, 10, tzinfo=UTC)  # Monday 10:10 JST
        clock = Clock(monday_tokyo)
        targets = _targets(policy, clock)
        copies: dict[str, list[int]] = {name: [] for name in names}
        for day in range(7):
            clock.now = monday_tokyo + timedelta(days=day)
            for run in backup(policy, now=clock.now, targets=targets, notifiers=[]).runs:
                copies[run.target] += [day] * len(run.copies)

        slots = rolling_slots(names, period=Cadence.WEEK)
        assert {n: [slots[n]] for n in names} == copies

    def test_a_failed_copy_is_reported_notified_and_retried_next_day(self, clock, recorder):
        """The local backup stands, the copy error is reported and notified, the next run copies."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE])
        targets = _targets(policy, clock)
        targets["db"].fail_next("copy", BackendError("KMS key not found", backend="db"))

        first = backup(policy, now=MONDAY, targets=targets, notifiers=[recorder])
        clock.now = MONDAY + timedelta(days=1)
        second = backup(policy, now=clock.now, targets=targets, notifiers=[recorder])

        assert 1 == len(first.created)
        assert [] == first.copies
        assert "copy to offsite: BackendError: KMS key not found" == first.runs[0].error
        assert [EventKind.COPY_FAILED] == [e.kind for e in recorder.events]
        assert "offsite" == recorder.events[0].details["tier"]
        assert ["offsite"] == [c.tier for c in second.copies]
        assert second.ok

    def test_a_copy_is_made_from_the_newest_point_when_no_backup_is_due(self, clock):
        """A target already backed up today still gets its copy, from that point."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE])
        targets = _targets(policy, clock)
        existing = targets["db"].add_point(created_at=MONDAY - timedelta(minutes=5))

        report = backup(policy, now=MONDAY, targets=targets, notifiers=[])

        assert [] == report.created
        assert [existing.id] == [c.details["source"] for c in report.copies]

    def test_a_pending_new_backup_defers_the_copy_to_a_completed_point_of_the_week(self, clock):
        """Snapshots start pending (as on AWS): the copy waits for a completed point of its week."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE])
        target = Slow("db", policy="shop", clock=clock)
        target.add_point(created_at=MONDAY - timedelta(days=1))  # last week's

        monday = backup(policy, now=MONDAY, targets={"db": target}, notifiers=[])
        target.set_status(monday.created[0], Status.COMPLETED)
        clock.now = MONDAY + timedelta(days=1)
        tuesday = backup(policy, now=clock.now, targets={"db": target}, notifiers=[])

        assert ([], True) == (monday.copies, monday.ok)
        assert Status.PENDING is tuesday.created[0].status
        assert [monday.created[0].id] == [c.details["source"] for c in tuesday.copies]
        assert tuesday.ok

    def test_a_first_backup_still_pending_defers_the_copy_without_failing(self, clock):
        """With no completed point yet the copy waits for the next run; that is no failure."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE])
        target = Slow("db", policy="shop", clock=clock)

        first = backup(policy, now=MONDAY, targets={"db": target}, notifiers=[])
        target.set_status(first.created[0], Status.COMPLETED)
        clock.now = MONDAY + timedelta(hours=1)
        second = backup(policy, now=clock.now, targets={"db": target}, notifiers=[])

        assert ([], True) == (first.copies, first.ok)
        assert [first.created[0].id] == [c.details["source"] for c in second.copies]

    def test_hourly_calls_copy_once_a_week_and_a_point_of_that_week(self, clock):
        """A call on Monday before the day's backup copies nothing; the 04:10 call makes the one copy.

        A copy keeps its source's time: copying Sunday's point at 00:10 on Monday left the week
        without a copy of its own, and the 04:10 call copied Monday's backup too (two a week).
        """
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE])
        targets = _targets(policy, clock)
        copies: list[tuple[datetime, str]] = []
        for hour in range(-28, 24 * 7 - 4):  # from Sunday 00:10 to the next Sunday, hourly
            clock.now = MONDAY + timedelta(hours=hour)
            report = backup(policy, now=clock.now, targets=targets, notifiers=[])
            copies += [(clock.now, c.details["source"]) for c in report.copies]

        monday_backup = next(p.id for p in targets["db"].list_points() if p.created_at == MONDAY)
        sunday = MONDAY - timedelta(hours=28)  # last week: its backup, made at the first call
        sunday_backup = next(p.id for p in targets["db"].list_points() if p.created_at == sunday)
        assert [(sunday, sunday_backup), (MONDAY, monday_backup)] == copies

    def test_a_copy_still_pending_counts_for_its_week(self, clock):
        """Cross-region copies take hours: the next day's run makes no second copy that week."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE])
        target = Slow("db", policy="shop", clock=clock)
        target.add_point(created_at=MONDAY - timedelta(minutes=5))  # today's, completed
        backup(policy, now=MONDAY, targets={"db": target}, notifiers=[])

        clock.now = MONDAY + timedelta(days=1)
        tuesday = backup(policy, now=clock.now, targets={"db": target}, notifiers=[])

        assert ([], True) == (tuesday.copies, tuesday.ok)
        assert 1 == sum(1 for p in target.list_points() if p.tier == "offsite")


# -- manual backups ----------------------------------------------------------------------------


class TestBackupNow:
    def test_tags_the_reason_and_who_asked(self, clock):
        """The point says 'manual: <reason>' and records who requested it."""
        policy = _policy()
        targets = _targets(policy, clock)

        point = backup_now(
            policy,
            "db",
            reason="  before the 2.0 migration ",
            requested_by="alice",
            now=MONDAY,
            targets=targets,
        )

        assert "manual: before the 2.0 migration" == point.tags[TAG_REASON]
        assert "alice" == point.tags[TAG_REQUESTED_BY]
        assert "manual-db-20261123T041000Z" == point.tags[TAG_TOKEN]
        assert [point.id] == [p.id for p in targets["db"].list_points()]
        assert [] == list(targets["web"].list_points())

    def test_without_requested_by_no_tag_is_written(self, clock):
        """requested_by is optional."""
        policy = _policy()
        point = backup_now(policy, "db", reason="r", now=MONDAY, targets=_targets(policy, clock))

        assert TAG_REQUESTED_BY not in point.tags

    @pytest.mark.parametrize("reason", ["", "   ", None])
    def test_refuses_an_empty_reason(self, clock, reason):
        """A manual backup needs a reason; nothing is created without one."""
        policy = _policy()
        targets = _targets(policy, clock)

        with pytest.raises(PolicyError, match="reason"):
            backup_now(policy, "db", reason=reason, targets=targets)
        assert [] == list(targets["db"].list_points())

    def test_refuses_an_unknown_target(self, clock):
        """The error names the unknown target."""
        policy = _policy()
        with pytest.raises(bp.PolicyLookupError, match="dbx"):
            backup_now(policy, "dbx", reason="r", targets=_targets(policy, clock))

    def test_the_same_token_gives_the_same_point(self, clock):
        """A retried manual backup with the same token makes no duplicate."""
        policy = _policy()
        targets = _targets(policy, clock)
        first = backup_now(policy, "db", reason="r", targets=targets, token="chg-42")
        second = backup_now(policy, "db", reason="r", targets=targets, token="chg-42")

        assert first.id == second.id


# -- retention ---------------------------------------------------------------------------------


def _aged(target: MemoryTarget, days: list[int], tier: str = "local") -> list[RecoveryPoint]:
    return [target.add_point(created_at=MONDAY - timedelta(days=d), tier=tier) for d in days]


class TestPlanRetention:
    def test_each_tier_is_planned_with_its_own_rule(self, clock):
        """Local points follow the policy's 7 days, off-site points their tier's 30 days."""
        offsite = {**OFFSITE, "retention": {"max_age": "30d"}}
        policy = _policy(("db",), tiers=[LOCAL, offsite], retention="7d")
        targets = _targets(policy, clock)
        local = _aged(targets["db"], [1, 10, 20])
        remote = _aged(targets["db"], [10, 20, 40], tier="offsite")

        plan = plan_retention(policy, now=MONDAY, targets=targets)

        assert _ids([local[1], local[2], remote[2]]) == _ids(plan.delete)
        assert ["older than 7d"] == plan.reasons[local[1].id]
        assert ["older than 30d"] == plan.reasons[remote[2].id]

    def test_a_targets_rule_overrides_the_tiers_and_the_policys(self, clock):
        """The target's own retention applies to all its tiers."""
        offsite = {**OFFSITE, "retention": {"max_age": "30d"}}
        policy = _policy(tiers=[LOCAL, offsite], retention="7d", target_retention={"web": "15d"})
        targets = _targets(policy, clock)
        db_local = _aged(targets["db"], [1, 10])
        web_local = _aged(targets["web"], [1, 10, 20])
        web_remote = _aged(targets["web"], [10, 20], tier="offsite")

        plan = plan_retention(policy, now=MONDAY, targets=targets)

        assert _ids([db_local[1], web_local[2], web_remote[1]]) == _ids(plan.delete)

    def test_the_newest_point_of_each_tier_is_kept_however_old(self, clock):
        """The floor keeps the newest completed point of every tier."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE], retention="7d")
        targets = _targets(policy, clock)
        local = _aged(targets["db"], [50, 60])
        remote = _aged(targets["db"], [50], tier="offsite")

        plan = plan_retention(policy, now=MONDAY, targets=targets)

        assert _ids([local[1]]) == _ids(plan.delete)
        assert _ids([local[0], remote[0]]) == _ids(plan.keep)

    def test_held_unmanaged_and_pending_points_are_never_planned_for_deletion(self, clock):
        """Holds, foreign points and pending points stay, whatever their age."""
        policy = _policy(("db",), retention="7d")
        targets = _targets(policy, clock)
        db = targets["db"]
        db.add_point(created_at=MONDAY)
        kept = [
            db.add_point(created_at=MONDAY - timedelta(days=40), legal_hold=HOLD),
            db.add_point(created_at=MONDAY - timedelta(days=40), managed=False),
            db.add_point(created_at=MONDAY - timedelta(days=40), status=Status.PENDING),
        ]
        old = db.add_point(created_at=MONDAY - timedelta(days=40))

        plan = plan_retention(policy, now=MONDAY, targets=targets)

        assert [old.id] == _ids(plan.delete)
        assert set(_ids(kept)) <= set(_ids(plan.keep))

    def test_a_listing_that_fails_midway_contributes_nothing(self, clock):
        """The half-listed target is in plan.errors, none of its points are planned or deleted."""
        policy = _policy(retention="7d")
        targets: dict[str, MemoryTarget] = {
            "db": HalfListing("db", policy="shop", clock=clock),
            "web": MemoryTarget("web", policy="shop", clock=clock),
        }
        _aged(targets["db"], [30, 20, 10, 1])
        web = _aged(targets["web"], [1, 30])

        plan = plan_retention(policy, now=MONDAY, targets=targets)
        report = apply(plan)

        assert ["db"] == list(plan.errors)
        assert "ThrottledError" in plan.errors["db"]
        assert [] == [p for p in [*plan.keep, *plan.delete] if p.target == "db"]
        assert [web[1].id] == [p.id for p in report.deleted]
        assert [] == targets["db"].deleted
        assert 4 == len(list(MemoryTarget.list_points(targets["db"])))

    def test_plans_are_made_for_now_and_remember_their_targets(self, clock):
        """plan.now is the given now and plan.targets holds the targets that were listed."""
        policy = _policy()
        targets = _targets(policy, clock)

        plan = plan_retention(policy, now=MONDAY, targets=targets)

        assert MONDAY == plan.now
        assert set(targets) == set(plan.targets)
        assert {} == dict(plan.errors)

    def test_progress_counts_targets(self, clock):
        """progress("plan", done, total) is called after each target."""
        policy = _policy()
        calls: list[tuple[str, int, int]] = []
        plan_retention(
            policy,
            now=MONDAY,
            targets=_targets(policy, clock),
            progress=lambda *a: calls.append(a),
        )
        assert [("plan", 1, 2), ("plan", 2, 2)] == calls


class TestApply:
    @pytest.fixture(name="setup")
    def _setup(self, clock):
        """A policy keeping 7 days, one target with points 0, 10 and 20 days old."""
        policy = _policy(("db",), retention="7d")
        targets = _targets(policy, clock)
        points = _aged(targets["db"], [0, 10, 20])
        return policy, targets, points

    def test_deletes_what_the_plan_deletes_with_its_reasons(self, setup):
        """Each deleted point is reported with the planner's reason."""
        policy, targets, points = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)

        report = apply(plan)

        assert _ids(points[1:]) == _ids(report.deleted)
        assert sorted(targets["db"].deleted) == _ids(points[1:])
        assert {"older than 7d"} == {o.reason for o in report.outcomes}
        assert report.ok

    def test_dry_run_deletes_nothing_and_shows_what_would_go(self, setup):
        """dry_run reports 'would delete' for every planned deletion and touches nothing."""
        policy, targets, points = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)

        report = apply(plan, dry_run=True)

        assert [] == targets["db"].deleted
        assert ["would delete"] * 2 == [o.action for o in report.outcomes]
        assert _ids(points[1:]) == _ids(o.point for o in report.outcomes)
        assert report.dry_run

    def test_a_point_held_after_planning_is_skipped(self, setup):
        """The re-check sees the new legal hold and keeps the point."""
        policy, targets, points = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        place_hold(policy, points[2], reason="litigation", reference="case-17", targets=targets)

        report = apply(plan)

        assert [points[1].id] == [p.id for p in report.deleted]
        assert [points[2].id] == [o.point.id for o in report.skipped]
        assert "now under legal hold" in report.skipped[0].reason
        assert "case-17" in report.skipped[0].reason

    def test_a_vanished_point_is_skipped(self, setup):
        """A point deleted by someone else since planning is skipped, not an error."""
        policy, targets, points = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        targets["db"].delete(points[1])

        report = apply(plan)

        assert [("skipped", "no longer exists")] == [
            (o.action, o.reason) for o in report.outcomes if o.point.id == points[1].id
        ]
        assert report.ok

    def test_nothing_of_a_tier_is_deleted_when_its_newest_kept_point_vanished(self, setup):
        """If the point the floor relies on is gone, the tier's deletions are all skipped."""
        policy, targets, points = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        targets["db"].delete(points[0])

        report = apply(plan)

        assert [] == report.deleted
        assert {"the newest kept point of its tier vanished"} == {o.reason for o in report.skipped}
        assert [points[0].id] == targets["db"].deleted

    def test_other_tiers_are_not_blocked_by_a_vanished_newest_point(self, clock):
        """Only the tier whose newest kept point vanished is spared."""
        policy = _policy(("db",), tiers=[LOCAL, OFFSITE], retention="7d")
        targets = _targets(policy, clock)
        local = _aged(targets["db"], [0, 10])
        remote = _aged(targets["db"], [0, 10], tier="offsite")
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        targets["db"].delete(local[0])

        report = apply(plan)

        assert [remote[1].id] == [p.id for p in report.deleted]

    def test_a_point_that_became_pending_is_skipped(self, setup):
        """The re-check refuses a point that is pending now."""
        policy, targets, points = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        targets["db"].set_status(points[1], Status.PENDING)

        report = apply(plan)

        assert ["pending"] == [o.reason for o in report.skipped]

    def test_an_unmanaged_point_in_a_plan_is_skipped(self, clock):
        """A hand-made plan that lists a foreign point deletes nothing."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        foreign = target.add_point(created_at=MONDAY - timedelta(days=90), managed=False)
        plan = RetentionPlan(keep=[], delete=[foreign], reasons={foreign.id: ["x"]}, now=MONDAY)

        report = apply(plan, targets={"db": target})

        assert [("skipped", "not managed by backuppolicy")] == [
            (o.action, o.reason) for o in report.outcomes
        ]
        assert [] == target.deleted

    def test_a_point_that_changed_since_planning_is_skipped(self, clock):
        """A point whose creation time differs from the plan's is not the planned point."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        point = target.add_point(created_at=MONDAY - timedelta(days=90))
        target.add_point(created_at=MONDAY)  # the newest: the floor keeps it
        stale = point.evolve(created_at=point.created_at - timedelta(days=1))
        plan = RetentionPlan(keep=[], delete=[stale], reasons={stale.id: ["x"]}, now=MONDAY)

        report = apply(plan, targets={"db": target})

        assert ["changed since the plan was made"] == [o.reason for o in report.skipped]

    def test_a_failed_delete_is_reported_and_the_rest_goes_on(self, setup):
        """A backend error fails one deletion; the report is not ok."""
        policy, targets, _ = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        targets["db"].fail_next("delete", BackendError("AccessDenied", backend="db"))

        report = apply(plan, max_workers=1)

        assert 1 == len(report.failed)
        assert "BackendError: AccessDenied" == report.failed[0].reason
        assert 1 == len(report.deleted)
        assert not report.ok

    def test_a_plan_with_points_of_unknown_targets_is_refused(self, clock):
        """apply refuses to start when it cannot re-check every point."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        point = target.add_point(created_at=MONDAY - timedelta(days=90))
        plan = RetentionPlan(keep=[], delete=[point], reasons={point.id: ["x"]}, now=MONDAY)

        with pytest.raises(PolicyError, match="targets"):
            apply(plan, targets={})
        assert [] == target.deleted

    def test_applying_twice_deletes_nothing_twice(self, setup):
        """A second apply of the same plan skips what the first deleted."""
        policy, targets, _ = setup
        plan = plan_retention(policy, now=MONDAY, targets=targets)
        apply(plan)

        again = apply(plan)

        assert [] == again.deleted
        assert 2 == len(targets["db"].deleted)


def _everything(targets: dict[str, Any]) -> RetentionPlan:
    """A hand-made plan that deletes every point of *targets* and keeps none."""
    points = [p for t in targets.values() for p in t.list_points()]
    return RetentionPlan(keep=[], delete=points, reasons={p.id: ["x"] for p in points}, now=MONDAY)


def _newest_per_tier(points: list[RecoveryPoint]) -> set[tuple[str, str]]:
    newest: dict[str, RecoveryPoint] = {}
    for point in points:
        if point.is_good and point.managed:
            best = newest.get(point.tier)
            if best is None or (point.created_at, point.id) > (best.created_at, best.id):
                newest[point.tier] = point
    return {(tier, p.id) for tier, p in newest.items()}


class TestFloorsWhateverThePlan:
    """apply keeps the newest completed point of every (target, tier), whatever plan it gets."""

    def test_a_plan_deleting_everything_keeps_each_tiers_newest_memory(self, clock):
        """MemoryTarget: every point but the newest completed one of each tier is deleted."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        local = _aged(target, [30, 20, 10])
        remote = _aged(target, [40, 25], tier="offsite")
        target.add_point(created_at=MONDAY, status=Status.FAILED)  # newer, but not good
        expected = {("local", local[2].id), ("offsite", remote[1].id)}
        assert expected == _newest_per_tier(list(target.list_points()))

        report = apply(_everything({"db": target}), targets={"db": target})

        assert expected == {(p.tier, p.id) for p in target.list_points()}
        assert expected == {(o.point.tier, o.point.id) for o in report.skipped}
        assert {
            "newest completed point of db in tier 'local'",
            "newest completed point of db in tier 'offsite'",
        } == {o.reason for o in report.skipped}
        assert 4 == len(report.deleted)
        assert report.ok

    def test_a_plan_deleting_everything_keeps_each_tiers_newest_directory(self, tmp_path: Path):
        """Directory with a local and an off-site store: each store keeps its newest archive."""
        from backuppolicy.local import Directory, DirectoryStore

        source = tmp_path / "src"
        source.mkdir()
        (source / "app.conf").write_text("port = 8080\n")
        stamps = iter(MONDAY + timedelta(minutes=i) for i in range(10))
        target = Directory(
            source, name="app", store=DirectoryStore(tmp_path / "lo"), clock=lambda: next(stamps)
        )
        made = [target.create_backup() for _ in range(3)]
        offsite = bp.Destination(store=DirectoryStore(tmp_path / "off", tier="offsite"))
        for point in made[:2]:
            target.copy(point, offsite)
        expected = _newest_per_tier(list(target.list_points()))
        assert {"local", "offsite"} == {tier for tier, _ in expected}

        report = apply(_everything({"app": target}), targets={"app": target})

        assert expected == {(p.tier, p.id) for p in target.list_points()}
        assert 3 == len(report.deleted)
        assert report.ok

    def test_the_floor_is_the_newest_at_apply_time_not_at_plan_time(self, clock):
        """A plan made before the newest point vanished cannot delete the new newest."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        points = _aged(target, [0, 10, 20])
        plan = RetentionPlan(
            keep=[], delete=points[1:], reasons={p.id: ["x"] for p in points}, now=MONDAY
        )
        target.delete(points[0])

        report = apply(plan, targets={"db": target})

        assert [points[1].id] == [p.id for p in target.list_points()]
        assert [points[2].id] == _ids(report.deleted)

    def test_a_target_that_cannot_be_re_read_deletes_nothing(self, clock):
        """If the re-read before deleting fails, every point of that target fails, none goes."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        other = MemoryTarget("web", policy="shop", clock=clock)
        _aged(target, [0, 10, 20])
        kept, old = _aged(other, [0, 10])
        plan = _everything({"db": target, "web": other})
        target.fail_next("list_points", BackendError("ListSnapshots: Throttling", backend="db"))

        report = apply(plan, targets={"db": target, "web": other})

        assert [] == target.deleted
        assert 3 == len(report.failed)
        assert all("could not re-read" in o.reason for o in report.failed)
        assert [old.id] == _ids(report.deleted)
        assert [kept.id] == [p.id for p in other.list_points()]


class TestEscapingErrors:
    """An unexpected exception while deleting one point becomes that point's failed outcome."""

    def test_an_os_error_from_delete_is_a_failed_outcome(self, clock):
        """OSError from delete: one failed outcome, the report survives, the others go on."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        _aged(target, [0, 10, 20, 30])
        plan = _everything({"db": target})
        target.fail_next("delete", OSError(5, "Input/output error"))

        report = apply(plan, targets={"db": target}, max_workers=1)

        assert 1 == len(report.failed)
        assert "OSError: [Errno 5] Input/output error" == report.failed[0].reason
        assert 2 == len(report.deleted)
        assert 1 == len(report.skipped)
        assert not report.ok

    def test_any_exception_from_refresh_is_a_failed_outcome(self, clock):
        """A plugin's bug (a RuntimeError from refresh) fails one point, not the whole apply."""
        target = MemoryTarget("db", policy="shop", clock=clock)
        _aged(target, [0, 10, 20])
        target.fail_next("refresh", RuntimeError("x" * 2000))

        report = apply(_everything({"db": target}), targets={"db": target}, max_workers=1)

        assert 1 == len(report.failed)
        assert report.failed[0].reason.startswith("RuntimeError: xxx")
        assert len(report.failed[0].reason) <= 500
        assert 3 == len(report.outcomes)

    def test_an_os_error_from_a_directory_store_is_a_failed_outcome(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """A local store whose unlink fails (EACCES) reports the failure for that archive only."""
        from backuppolicy.local import Directory, DirectoryStore

        source = tmp_path / "src"
        source.mkdir()
        (source / "a").write_text("a")
        stamps = iter(MONDAY + timedelta(minutes=i) for i in range(10))
        store = DirectoryStore(tmp_path / "lo")
        target = Directory(source, name="app", store=store, clock=lambda: next(stamps))
        made = [target.create_backup() for _ in range(3)]
        original = DirectoryStore.remove

        def remove(self: DirectoryStore, key: str) -> None:
            if key.startswith(made[0].id):
                raise PermissionError(13, "Permission denied", key)
            original(self, key)

        monkeypatch.setattr(DirectoryStore, "remove", remove)

        report = apply(_everything({"app": target}), targets={"app": target})

        assert [made[0].id] == [o.point.id for o in report.failed]
        assert "PermissionError" in report.failed[0].reason
        assert [made[1].id] == _ids(report.deleted)
        assert [made[2].id] == [o.point.id for o in report.skipped]


def _age(path: Path, days: float) -> Path:
    """Set *path*'s modification time *days* before the OS clock's now."""
    when = time.time() - days * 86400
    os.utime(path, (when, when), follow_symlinks=False)
    return path


class TestCrashLeftovers:
    """The backup run sweeps its own target's crash leftovers of earlier runs and reports them."""

    def test_a_backup_run_sweeps_old_leftovers_and_reports_them(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ):
        """Old orphans and temp files go; young, locked and other targets' leftovers stay."""
        from backuppolicy.local import Directory, DirectoryStore

        source = tmp_path / "src"
        source.mkdir()
        (source / "app.conf").write_text("port = 8080\n")
        store = DirectoryStore(tmp_path / "lo")
        store.path.mkdir()
        orphan = store.path / "bp-app-20261101t040000z.tar.gz"
        orphan.write_bytes(b"half an archive")
        _age(orphan, 2)
        tmp_file = store.path / ".tmp-bp-app-20261102t040000z.tar.gz.k2j3"
        tmp_file.write_bytes(b"partial")
        _age(tmp_file, 2)
        young = store.path / "bp-app-20261103t040000z.tar.gz"
        young.write_bytes(b"being finished right now")
        _age(young, 0)  # the process clock's now (the kernel stamps files with the real one)
        other = store.path / "bp-web-20261101t040000z.tar.gz"
        other.write_bytes(b"another target's orphan")
        _age(other, 2)
        live = store.path / ".tmp-bp-app-20261104t040000z.tar.gz.live"
        live.write_bytes(b"a concurrent, slow writer")
        handle = live.open("rb")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        _age(live, 2)
        target = Directory(source, name="app", store=store)
        failed_before = [p.id for p in target.list_points() if p.status is Status.FAILED]
        policy = _policy(("app",))

        try:
            with caplog.at_level("WARNING", logger="backuppolicy"):
                report = backup(policy, now=MONDAY, targets={"app": target}, notifiers=[])
        finally:
            handle.close()

        url = store.url
        assert [f"{url}/{orphan.name}", f"{url}/{tmp_file.name}"] == report.swept
        assert report.swept == report.to_dict()["runs"][0]["swept"]
        assert report.ok
        assert not orphan.exists()
        assert not tmp_file.exists()
        assert young.exists()
        assert other.exists()
        assert live.exists()
        assert ["bp-app-20261101t040000z", "bp-app-20261103t040000z"] == failed_before
        assert ["bp-app-20261103t040000z"] == [
            p.id for p in target.list_points() if p.status is Status.FAILED
        ]
        assert any("removed 2 crash leftovers" in r.getMessage() for r in caplog.records)

    def test_a_failing_sweep_never_fails_the_backup(self, clock):
        """A sweep that raises is logged; the backup still runs."""

        class Sweeping(MemoryTarget):
            def sweep_incomplete(self) -> list[str]:
                raise OSError(13, "Permission denied")

        policy = _policy(("db",))
        target = Sweeping("db", policy=policy.name, clock=clock)

        report = backup(policy, now=MONDAY, targets={"db": target}, notifiers=[])

        assert report.ok
        assert 1 == len(report.created)
        assert [] == report.swept


class TestHolds:
    def test_place_list_and_release(self, clock):
        """A placed hold is listed by holds() and blocks deletion until released."""
        policy = _policy(("db",), retention="7d")
        targets = _targets(policy, clock)
        _, old = _aged(targets["db"], [0, 30])

        held = place_hold(
            policy, old, reason="litigation", reference="case-17", now=MONDAY, targets=targets
        )
        listed = holds(policy, targets=targets)
        apply(plan_retention(policy, now=MONDAY, targets=targets))
        released = release_hold(policy, held, targets=targets)
        apply(plan_retention(policy, now=MONDAY, targets=targets))

        assert LegalHold(reason="litigation", reference="case-17", since=MONDAY) == held.legal_hold
        assert [old.id] == [p.id for p in listed]
        assert released.legal_hold is None
        assert [old.id] == targets["db"].deleted
        assert [] == holds(policy, targets=targets)

    def test_a_hold_needs_a_reason(self, clock):
        """An empty reason is refused."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        point = targets["db"].add_point()
        with pytest.raises(PolicyError, match="reason"):
            place_hold(policy, point, reason=" ", targets=targets)

    def test_a_hold_can_be_placed_and_released_by_point_id(self, clock):
        """place_hold and release_hold accept the point's id and find it in the targets."""
        policy = _policy(("db",), retention="7d")
        targets = _targets(policy, clock)
        _, old = _aged(targets["db"], [0, 30])

        held = place_hold(policy, old.id, reason="litigation", now=MONDAY, targets=targets)
        listed = holds(policy, targets=targets)
        released = release_hold(policy, old.id, targets=targets)

        assert (old.id, "litigation") == (held.id, held.legal_hold.reason)
        assert [old.id] == [p.id for p in listed]
        assert released.legal_hold is None

    def test_an_unknown_point_id_is_named_with_close_ids(self, clock):
        """An id no target has gives ResourceNotFoundError naming it and suggesting close ids."""
        policy = _policy(("db",))
        targets = _targets(policy, clock)
        point = targets["db"].add_point(id="snap-20261201")
        with pytest.raises(ResourceNotFoundError, match="'snap-20261210'") as caught:
            place_hold(policy, "snap-20261210", reason="litigation", targets=targets)
        assert f"did you mean {point.id!r}?" in str(caught.value)
        assert [] == holds(policy, targets=targets)


# -- reports -----------------------------------------------------------------------------------


class TestReports:
    @pytest.fixture(name="run_report")
    def _run_report(self, clock):
        policy = _policy(tiers=[LOCAL, OFFSITE])
        targets = _targets(policy, clock)
        targets["web"].fail_next("create_backup", BackendError("boom", backend="web"))
        return backup(policy, now=MONDAY, targets=targets, notifiers=[])

    def test_run_report_repr_counts(self, run_report):
        """The repr counts targets, backups, copies and failures."""
        assert "<backuppolicy.RunReport(targets=2, created=1, copies=1, failed=1)>" == repr(
            run_report
        )

    def test_run_report_summary_has_a_row_per_target(self, run_report):
        """The text table lists each target's backup, copy and result."""
        lines = run_report.summary().splitlines()
        db = run_report.created[0]

        assert lines[0].startswith("backup run of policy 'shop' at 2026-11-23T04:10:00+00:00")
        assert ["target", "backup", "copies", "took", "result"] == lines[1].split()
        db_row, web_row = lines[3].split(), lines[4].split()
        assert ["db", db.id, f"offsite:{run_report.copies[0].id}"] == db_row[:3]
        assert "ok" == db_row[-1]
        assert ["web", "-", "-"] == web_row[:3]
        assert lines[4].endswith("backup: BackendError: boom")

    def test_run_report_to_dict_is_json(self, run_report):
        """to_dict() round-trips through JSON with the run's facts."""
        data = json.loads(json.dumps(run_report.to_dict()))

        assert {"policy", "now", "ok", "runs", "notify_failures"} == set(data)
        assert data["ok"] is False
        assert "2026-11-23T04:10:00+00:00" == data["now"]
        assert run_report.created[0].id == data["runs"][0]["point"]
        assert [f"offsite:{run_report.copies[0].id}"] == data["runs"][0]["copies"]
        assert "backup: BackendError: boom" == data["runs"][1]["error"]

    def test_html_escapes_every_value_and_embeds_the_text(self):
        """A target named '<script>' is escaped; the text summary is embedded."""
        report = RunReport(
            policy="p&q",
            now=MONDAY,
            runs=(TargetRun(target="<script>", error="<b>bad</b>"),),
        )

        markup = report._repr_html_()

        assert "<script>" not in markup
        assert "&lt;script&gt;" in markup
        assert "<b>bad</b>" not in markup
        assert html.escape(report.summary()) in markup

    def test_apply_report_repr_summary_dict_and_html(self, clock):
        """ApplyReport counts outcomes, tabulates them and serialises them."""
        point = MemoryTarget("<script>", clock=clock).add_point(created_at=MONDAY)
        report = ApplyReport(
            outcomes=(
                DeleteOutcome(point, "deleted", "older than 7d"),
                DeleteOutcome(point.evolve(id="x2"), "skipped", "now under legal hold"),
                DeleteOutcome(point.evolve(id="x3"), "failed", "BackendError: <denied>"),
            )
        )

        data = json.loads(json.dumps(report.to_dict()))
        markup = report._repr_html_()

        expected = "<backuppolicy.ApplyReport(deleted=1, skipped=1, failed=1, dry_run=False)>"
        assert expected == repr(report)
        assert ["target", "tier", "point", "created", "action", "reason"] == (
            report.summary().splitlines()[1].split()
        )
        assert 6 == len(report.summary().splitlines())
        assert ["deleted", "skipped", "failed"] == [o["action"] for o in data["outcomes"]]
        assert data["ok"] is False
        assert "<script>" not in markup
        assert "&lt;denied&gt;" in markup
        assert html.escape(report.summary()) in markup

    def test_target_run_ok_and_dict(self):
        """A run without error is ok; its dict rounds the duration."""
        run = TargetRun(target="db", skipped="not due", duration=1.23456)

        assert run.ok
        assert {
            "target": "db",
            "point": None,
            "copies": [],
            "skipped": "not due",
            "error": None,
            "duration": 1.235,
            "swept": [],
        } == run.to_dict()


# -- real backends under moto ------------------------------------------------------------------


class TestRealBackends:
    """RDS and EBS under moto in-process plus a directory, built from the policy itself."""

    @pytest.fixture(name="world")
    def _world(self, aws, monkeypatch, tmp_path: Path) -> dict[str, Any]:
        import boto3

        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        rds = boto3.client("rds", region_name="us-east-1")
        rds.create_db_instance(
            DBInstanceIdentifier="orders",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="secret-password-1",
            BackupRetentionPeriod=0,
        )
        ec2 = boto3.client("ec2", region_name="us-east-1")
        volume = ec2.create_volume(Size=5, AvailabilityZone="us-east-1a")["VolumeId"]
        config = tmp_path / "etc"
        config.mkdir()
        (config / "app.conf").write_text("port = 8080\n")
        data = {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "3d"},
            "tiers": [
                {"name": "local", "every": "day", "location": {"store": str(tmp_path / "lo")}},
                {
                    "name": "offsite",
                    "every": "week",
                    "location": {"region": "eu-west-1", "store": str(tmp_path / "off")},
                },
            ],
            "targets": [
                {
                    "name": "orders-db",
                    "kind": "rds-instance",
                    "settings": {"db_instance_id": "orders"},
                },
                {"name": "data-vol", "kind": "ebs-volume", "settings": {"volume_id": volume}},
                {"name": "app-config", "kind": "directory", "settings": {"path": str(config)}},
            ],
        }
        return {"policy": bp.Policy.from_dict(data)}

    def test_backup_copy_plan_and_apply(self, world):
        """Daily backups without duplicates, weekly copies to eu-west-1, 3-day pruning."""
        import boto3
        import time_machine

        from backuppolicy.workflows.backups import build_targets

        policy = world["policy"]
        targets = build_targets(policy, session=boto3.Session(), region="us-east-1")
        created: dict[str, list[RecoveryPoint]] = {name: [] for name in targets}
        for day in range(6):
            now = MONDAY + timedelta(days=day)
            with time_machine.travel(now, tick=False):
                report = backup(policy, now=now, targets=targets, notifiers=[])
                again = backup(policy, now=now, targets=targets, notifiers=[])
            assert report.ok, report.summary()
            assert [] == again.created, "a re-run made duplicates"
            for point in report.created:
                created[point.target].append(point)
            if day == 0:
                assert {("offsite", n) for n in targets} == {
                    (c.tier, c.target) for c in report.copies
                }
                rds_copy = next(c for c in report.copies if c.target == "orders-db")
                assert "eu-west-1" in rds_copy.location
            else:
                assert [] == report.copies

        now = MONDAY + timedelta(days=5)
        with time_machine.travel(now + timedelta(minutes=1), tick=False):
            plan = plan_retention(policy, now=now, targets=targets)
            result = apply(plan)

        cutoff = now - timedelta(days=3)
        for name, target in targets.items():
            local = [p for p in target.list_points() if p.managed and p.tier == "local"]
            offsite = [p for p in target.list_points() if p.managed and p.tier == "offsite"]
            assert 6 == len(created[name])
            expected_left = {p.id for p in created[name] if p.created_at > cutoff}
            assert expected_left == {p.id for p in local}, name
            assert 1 == len(offsite), f"{name}: the newest off-site copy is kept, though 5 days old"
        assert {p.target for p in result.deleted} == set(targets)
        assert all(p.created_at <= cutoff for p in result.deleted)
        assert [] == result.failed

    def test_manual_backups_record_reason_and_requester_on_every_backend(self, world):
        """backup_now works on RDS, EBS and directories: reason and requester are tags."""
        import boto3

        from backuppolicy.workflows.backups import build_targets

        policy = world["policy"]
        targets = build_targets(policy, session=boto3.Session(), region="us-east-1")

        points = {
            name: backup_now(
                policy,
                name,
                reason="before the 2.0 migration",
                requested_by="alice@example.com",
                now=MONDAY,
                targets=targets,
            )
            for name in targets
        }

        for name, point in points.items():
            listed = next(p for p in targets[name].list_points() if p.id == point.id)
            assert "manual: before the 2.0 migration" == listed.tags[TAG_REASON], name
            assert "alice@example.com" == listed.tags[TAG_REQUESTED_BY], name


class TestFloorsAgainstLyingPlans:
    """The floor is keyed by what the backend says a point is, never by what the plan claims."""

    def test_a_point_claiming_another_tier_is_still_the_newest_of_its_own(self, clock):
        """A plan's point labelled tier 'offsite' that really is the newest local point stays."""
        import attrs

        target = MemoryTarget("db", policy="shop", clock=clock)
        older, newest = _aged(target, [10, 0])
        _aged(target, [5], tier="offsite")
        liar = attrs.evolve(newest, tier="nowhere")
        plan = RetentionPlan(keep=[], delete=[liar], reasons={liar.id: ["x"]}, now=MONDAY)

        report = apply(plan, targets={"db": target})

        assert newest.id in {p.id for p in target.list_points()}
        assert [] == report.deleted
        assert older.id in {p.id for p in target.list_points()}

    def test_a_point_claiming_to_be_an_object_version_is_still_floored(self, clock):
        """A backup labelled kind 's3-version' in a hand-made plan does not escape the floor."""
        import attrs

        target = MemoryTarget("db", policy="shop", clock=clock)
        _older, newest = _aged(target, [10, 0])
        liar = attrs.evolve(newest, kind="s3-version")
        plan = RetentionPlan(keep=[], delete=[liar], reasons={liar.id: ["x"]}, now=MONDAY)

        report = apply(plan, targets={"db": target})

        assert newest.id in {p.id for p in target.list_points()}
        assert [] == report.deleted
