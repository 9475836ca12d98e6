"""The backup run hands its listing on: `TargetRun.points` and `RunReport.listed`.

A run lists every target before backing it up; with the point and the copies it made, that
is the target's listing after the run, which `plan_retention(listed=)` and
`integrity_due(listed=)` take instead of listing every target again. These tests compare it
with a fresh `list_points()`: with `MemoryTarget`, and with every kind the demo uses in
moto (RDS instances, an EC2 instance, an S3 bucket, directories with an S3 store).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import backuppolicy as bp
from backuppolicy.core.exceptions import BackendError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import Status
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows import backup, plan_retention

MONDAY = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)

_FIELDS = (
    "id",
    "target",
    "tier",
    "kind",
    "location",
    "status",
    "managed",
    "created_at",
    "size_bytes",
    "encrypted",
    "legal_hold",
    "lock",
    "checksum",
)


def _policy(*names: str, lock: str | None = None) -> bp.Policy:
    local: dict[str, Any] = {"name": "local", "every": "day"}
    if lock is not None:
        local["lock"] = lock
    return bp.Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "3d"},
            "tiers": [local, {"name": "offsite", "every": "week"}],
            "targets": [
                {"name": n, "kind": "testing:memory", "application": "shop"} for n in names
            ],
        }
    )


class _Clock:
    def __init__(self) -> None:
        self.now = MONDAY

    def __call__(self) -> datetime:
        return self.now


def _targets(clock: _Clock, *names: str) -> dict[str, MemoryTarget]:
    return {n: MemoryTarget(n, policy="shop", clock=clock) for n in names}


def _view(point: bp.RecoveryPoint) -> tuple[object, ...]:
    """What a listing says of a point: its fields and tags (details are the backend's own)."""
    return (*(getattr(point, f) for f in _FIELDS), dict(point.tags))


def _fresh(targets: dict[str, Any], names: Any) -> dict[str, list[tuple[object, ...]]]:
    return {n: sorted(_view(p) for p in targets[n].list_points()) for n in names}


def _handed(listed: dict[str, list[bp.RecoveryPoint]]) -> dict[str, list[tuple[object, ...]]]:
    return {n: sorted(_view(p) for p in points) for n, points in listed.items()}


class TestMemory:
    def test_the_listing_after_the_run_is_a_fresh_listing(self):
        """Day by day, with the weekly copies: listed() is what list_points() gives; same plan."""
        clock = _Clock()
        policy = _policy("db", "web")
        targets = _targets(clock, "db", "web")
        targets["db"].add_point(created_at=MONDAY - timedelta(days=5))
        copies = 0
        for day in range(9):
            clock.now = MONDAY + timedelta(days=day)
            report = backup(policy, now=clock.now, targets=targets, notifiers=[])
            copies += len(report.copies)
            listed = report.listed()
            assert list(listed) == ["db", "web"]
            assert _fresh(targets, targets) == _handed(listed)
            plan = plan_retention(policy, now=clock.now, targets=targets, listed=listed)
            own = plan_retention(policy, now=clock.now, targets=targets)
            assert [p.id for p in own.delete] == [p.id for p in plan.delete]
            bp.apply(plan)
        assert copies >= 4  # each target's weekly copies were made and handed on

    def test_a_pending_backup_found_again_is_listed_once(self):
        """A re-run that finds its pending backup (same token) hands it on once, re-read."""
        clock = _Clock()
        policy = _policy("db")
        targets = _targets(clock, "db")
        first = backup(policy, now=MONDAY, targets=targets, notifiers=[]).created[0]
        targets["db"].set_status(first, Status.PENDING)
        clock.now = MONDAY + timedelta(minutes=30)
        report = backup(policy, now=clock.now, targets=targets, notifiers=[])
        assert [first.id] == [p.id for p in report.created]
        assert _fresh(targets, ["db"]) == _handed(report.listed())
        assert [first.id] == [p.id for p in report.listed()["db"] if p.tier == "local"]

    def test_the_locked_point_is_handed_on_with_its_lock(self):
        """The point of a locked tier is handed on as lock_point re-read it, lock included."""
        policy = _policy("db", lock="compliance")
        target = _Locking("db", policy="shop", clock=lambda: MONDAY)
        report = backup(policy, now=MONDAY, targets={"db": target}, notifiers=[])
        [point] = [p for p in report.listed()["db"] if p.tier == "local"]
        assert point.lock is not None
        assert report.created[0].lock is None  # what create_backup returned had none yet
        assert _fresh({"db": target}, ["db"]) == _handed(report.listed())

    @pytest.mark.parametrize("operation", ["list_points", "create_backup", "copy"])
    def test_a_target_whose_run_failed_is_left_out(self, operation: str):
        """A failed listing, backup or copy: no points handed on, the other target still is."""
        clock = _Clock()
        policy = _policy("db", "web")
        targets = _targets(clock, "db", "web")
        targets["db"].fail_next(operation, BackendError("boom", backend="db", operation="x"))
        report = backup(policy, now=MONDAY, targets=targets, notifiers=[])
        [failed] = report.failed
        assert ("db", None) == (failed.target, failed.points)
        assert ["web"] == list(report.listed())

    def test_a_failed_listing_deletes_nothing(self):
        """Left out of listed(), the target is listed by the plan; failing there, nothing goes."""
        clock = _Clock()
        policy = _policy("db")
        targets = _targets(clock, "db")
        old = targets["db"].add_point(created_at=MONDAY - timedelta(days=30))
        error = BackendError("page 2 failed", backend="db", operation="list")
        targets["db"].fail_next("list_points", error)
        report = backup(policy, now=MONDAY, targets=targets, notifiers=[])
        targets["db"].fail_next("list_points", error)
        plan = plan_retention(policy, now=MONDAY, targets=targets, listed=report.listed())
        applied = bp.apply(plan)
        assert ({}, ["db"], []) == (report.listed(), list(plan.errors), applied.deleted)
        assert old.id in {p.id for p in targets["db"].list_points()}


class _Locking(MemoryTarget):
    """A MemoryTarget that locks points (as S3 and EBS do)."""

    def lock_point(self, point: bp.RecoveryPoint, lock: PointLock, *, cool_off: Any = None) -> Any:
        """Store the lock on the point; return it re-read."""
        del cool_off
        with self._lock:
            self._points[point.id] = self._points[point.id].evolve(lock=lock)
        return self.refresh(point)


class TestUnattended:
    def test_the_prune_plans_from_the_backup_run_listing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """bp.run hands the backup's listing to the prune instead of listing every target again."""
        from backuppolicy.workflows import pruning

        clock = _Clock()
        policy = _policy("db", "web")
        targets = _targets(clock, "db", "web")
        given: list[object] = []
        plan = pruning.plan_retention

        def spy(*args: Any, **kwargs: Any) -> Any:
            given.append(kwargs.get("listed"))
            return plan(*args, **kwargs)

        monkeypatch.setattr(pruning, "plan_retention", spy)
        log = bp.TestLog(bp.JsonlLogStore(tmp_path / "log.jsonl"), clock=clock)
        bp.run(policy, now=MONDAY, log=log, targets=targets, heartbeat=False, restore_tests=False)
        listed = given[0]  # the prune's plan (the audit after it plans too)
        assert isinstance(listed, dict)
        assert _fresh(targets, ["db", "web"]) == _handed(listed)


# --------------------------------------------------------------------------- moto: the demo's kinds


def _details(listings: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The details of every point, by target, tier and id (``manifest_bytes`` included)."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for points in listings:
        for p in points:
            out[(p.target, p.tier, p.id)] = dict(p.details)
    return out


@pytest.fixture(name="demo_world", scope="module")
def _demo_world() -> Iterator[tuple[bp.Policy, dict[str, Any]]]:
    """The demo's world (moto, fake credentials, its targets of every kind), for this module."""
    from backuppolicy import demo

    with ExitStack() as stack:
        _, policy, targets, _ = demo._enter_world(stack)
        yield policy, targets


def test_every_kind_of_the_demo_hands_on_a_fresh_listing(demo_world):
    """RDS, EC2 instance, S3 bucket and directories in S3: listed() is a fresh listing.

    Three simulated days: the first makes each target's backup and its first off-site copy,
    the next ones a backup each (and the copies the rolling spread makes due). Every point
    is compared on its fields and tags; the order of points is not (plans and schedules
    order points by `RecoveryPoint.order_key`, never by listing order).
    """
    import time_machine

    from backuppolicy import demo

    policy, targets = demo_world
    kinds = {t.kind for t in targets.values()}
    assert {"rds-instance", "ec2-instance", "s3-bucket", "directory"} <= kinds
    made: set[str] = set()
    for day in range(3):
        now = demo.START + timedelta(days=day)
        with time_machine.travel(now, tick=False):
            report = backup(policy, now=now, targets=targets, max_workers=1, notifiers=[])
            assert [] == report.failed
            listed = report.listed()
            assert set(targets) == set(listed)
            assert _fresh(targets, targets) == _handed(listed)
            assert _details(targets[n].list_points() for n in targets) == _details(listed.values())
            made.update(f"{targets[c.target].kind}:{c.tier}" for c in report.copies)
            made.update(f"{targets[p.target].kind}:{p.tier}" for p in report.created)
    assert {f"{k}:{tier}" for k in kinds for tier in ("local", "offsite")} <= made
