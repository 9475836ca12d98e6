"""Points listed once and shared: ``plan_retention(listed=)``, ``integrity_due(listed=)``.

Also ``run_checks(endpoint_resolver=)`` and the fingerprints of a manual backup
(``backup_now``), which the demo's daily job and its broken case rely on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backuppolicy import Policy, RecoveryPoint
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.probes import StaticEndpoint
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows import apply, backup_now, plan_retention
from backuppolicy.workflows.verify import integrity_due, run_checks

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


def _policy(**target: object) -> Policy:
    return Policy.from_dict(
        {
            "name": "p",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "targets": [{"name": "db", "kind": "testing:memory", **target}],
        }
    )


class _Counted(MemoryTarget):
    """A memory target that counts its listings."""

    listings = 0

    def list_points(self) -> Iterator[RecoveryPoint]:
        self.listings += 1
        return super().list_points()


class TestPlanRetentionListed:
    def test_the_given_listing_is_planned_without_listing_again(self):
        """With listed=, the target is not listed; the plan is the one its own listing gives."""
        db = _Counted("db", policy="p", clock=lambda: NOW)
        db.add_point(id="old", created_at=NOW - timedelta(days=40))
        db.add_point(id="new", created_at=NOW - timedelta(days=1))
        listed = {"db": list(db.list_points())}
        before = db.listings
        plan = plan_retention(_policy(), now=NOW, targets={"db": db}, listed=listed)
        after = db.listings
        own = plan_retention(_policy(), now=NOW, targets={"db": db})
        assert (before, ["old"]) == (after, [p.id for p in plan.delete])
        assert [p.id for p in own.delete] == [p.id for p in plan.delete]

    def test_a_stale_listing_deletes_nothing_that_changed(self):
        """apply re-reads each point: one deleted since the listing is skipped, not re-deleted."""
        db = MemoryTarget("db", policy="p", clock=lambda: NOW)
        old = db.add_point(id="old", created_at=NOW - timedelta(days=40))
        db.add_point(id="new", created_at=NOW - timedelta(days=1))
        listed = {"db": list(db.list_points())}
        db.delete(old)  # someone else deleted it after the listing
        plan = plan_retention(_policy(), now=NOW, targets={"db": db}, listed=listed)
        outcomes = apply(plan, targets={"db": db}).outcomes
        assert [("old", "skipped", "no longer exists")] == [
            (o.point.id, o.action, o.reason) for o in outcomes
        ]
        assert ["old"] == db.deleted


class TestIntegrityDueListed:
    def test_the_given_listing_chooses_the_copies(self):
        """integrity_due(listed=) checks the copies of the listing without listing again."""
        db = _Counted("db", policy="p", clock=lambda: NOW)
        point = db.add_point(id="p1", created_at=NOW - timedelta(days=40))
        results = integrity_due(
            _policy(),
            now=NOW,
            targets={"db": db},
            listed={"db": [point]},
            catch_up=10,
            notifiers=[],
            simulated=True,
        )
        assert (0, [("p1", True)]) == (db.listings, [(r.point_id, r.simulated) for r in results])


class TestRunChecksEndpointResolver:
    def test_a_resolver_keyed_by_an_unknown_target_is_refused(self):
        """endpoint_resolver keys must name targets (with a did-you-mean)."""
        db = MemoryTarget("db", policy="p", clock=lambda: NOW)
        with pytest.raises(PolicyError, match=r"endpoint_resolver\['dbb'\]"):
            run_checks(
                _policy(),
                now=NOW,
                targets={"db": db},
                checks=[IntegrityCheck()],
                endpoint_resolver={"dbb": StaticEndpoint("x")},
                notifiers=[],
            )


class TestBackupNowFingerprints:
    def test_a_manual_backup_records_the_fingerprints(self, tmp_path: Path):
        """backup_now runs the fingerprint queries on the source, as the scheduled job does."""
        source = tmp_path / "source.sqlite"
        with sqlite3.connect(source) as conn:
            conn.execute("create table orders (id integer)")
            conn.executemany("insert into orders values (?)", [(i,) for i in range(3)])
        conn.close()
        policy = _policy(
            fingerprint={
                "source": str(source),
                "queries": [{"name": "orders", "query": "select count(*) from orders"}],
            }
        )
        db = MemoryTarget("db", policy="p", clock=lambda: NOW)
        point = backup_now(policy, "db", reason="before the migration", targets={"db": db})
        assert "3" == point.tags.get("fingerprint:orders")
