"""Verifiers, integrity checks of archives, restore tests with SQLite probes, runners, sweeper, CLI."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

import backuppolicy.cli.main as cli
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.metadata import (
    Completed,
    Encrypted,
    Fresh,
    HasOffsiteCopy,
    NotPublic,
    ObjectLock,
    SettingsMatchPolicy,
    VersioningEnabled,
    expected_rds_settings,
)
from backuppolicy.checks.probes import (
    FileProbe,
    ProbeContext,
    ProbeResult,
    SqlProbe,
    StaticEndpoint,
    run_probe,
)
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core import registry
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import Status
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import Destination, IsolationProfile, SweptResource
from backuppolicy.local import Directory, DirectoryStore
from backuppolicy.notify import Event, EventKind
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows.verify import (
    default_checks,
    isolation_for,
    restore_test,
    run_checks,
    sweep_restore_tests,
)

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
BACKUP_AT = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)

POLICY = {
    "name": "shop",
    "schedule": {"every": "day", "at": "04:00"},
    "retention": {"max_age": "35d"},
    "tiers": [
        {"name": "local", "every": "day"},
        {"name": "offsite", "every": "week", "location": {"region": "eu-west-1"}},
    ],
    "targets": [
        {"name": "db", "kind": "testing:memory", "application": "shop"},
        {"name": "web", "kind": "testing:memory", "application": "blog"},
    ],
    "verification": {"isolation": {"name_prefix": "bp-test-", "tags": {"purpose": "test"}}},
}


class Recorder:
    """A testing log that keeps what it is given."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def record(self, result: CheckResult) -> None:
        """Keep *result*."""
        self.results.append(result)


class Notifier:
    """A notifier that keeps its events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        """Keep *event*."""
        self.events.append(event)


@pytest.fixture(name="policy")
def _policy() -> Policy:
    return Policy.from_dict(POLICY)


@pytest.fixture(name="db")
def _db() -> MemoryTarget:
    return MemoryTarget("db", policy="shop", clock=lambda: BACKUP_AT)


@pytest.fixture(name="context")
def _context(policy: Policy) -> VerifyContext:
    return VerifyContext(now=NOW, policy=policy, application="shop")


def _sqlite_app(root: Path, orders: int) -> Path:
    """A directory holding a SQLite database with *orders* rows, as an application would."""
    root.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(root / "shop.db") as conn:
        conn.execute("create table orders (id integer primary key, total integer)")
        conn.executemany(
            "insert into orders (total) values (?)", [(i * 10,) for i in range(orders)]
        )
    conn.close()
    (root / "app.conf").write_text("port = 8080\n")
    return root


@pytest.fixture(name="app")
def _app(tmp_path: Path) -> Directory:
    source = _sqlite_app(tmp_path / "src", orders=5)
    store = DirectoryStore(tmp_path / "store")
    return Directory(source, name="shop-data", store=store, policy="shop")


def _sqlite(endpoint: Any) -> sqlite3.Connection:
    """Connection factory: the restored directory's SQLite file stands in for a database server."""
    return sqlite3.connect(Path(endpoint) / "shop.db")


class TestCompleted:
    def test_completed_point_passes(self, db, context):
        """A completed point passes."""
        point = db.create_backup()
        assert CheckStatus.PASS == Completed().verify(db, point, context).status

    def test_pending_point_warns(self, db, context):
        """A pending point is not a failure yet: it warns."""
        point = db.add_point(status=Status.PENDING)
        assert CheckStatus.WARN == Completed().verify(db, point, context).status

    def test_failed_point_fails_with_issue(self, db, context):
        """A failed point fails and names its status."""
        point = db.add_point(status=Status.FAILED)
        result = Completed().verify(db, point, context)
        assert (CheckStatus.FAIL, ("status failed",)) == (result.status, result.issues)

    def test_snapshot_below_full_progress_fails(self, db, context):
        """A completed point whose snapshot reports less than 100% fails."""
        point = db.create_backup().evolve(
            details={
                "snapshots": [{"snapshot_id": "snap-1", "state": "completed", "progress": "99%"}]
            }
        )
        result = Completed().verify(db, point, context)
        assert (CheckStatus.FAIL, ("snapshot snap-1: progress 99%",)) == (
            result.status,
            result.issues,
        )

    def test_result_fields_come_from_context_and_point(self, db, context):
        """The result names target, point, tier, application, time and kind."""
        point = db.create_backup()
        result = Completed().verify(db, point, attrs_evolve(context, ran_by="ops@host"))
        assert ("db", point.id, "local", "shop", NOW, CheckKind.VERIFICATION, "ops@host") == (
            result.target,
            result.point_id,
            result.tier,
            result.application,
            result.checked_at,
            result.kind,
            result.ran_by,
        )


class FailingTeardown:
    """A target whose restored resources cannot be deleted."""

    def __init__(self, inner: MemoryTarget) -> None:
        self.inner = inner
        self.name = inner.name
        self.kind = "memory"

    @contextlib.contextmanager
    def restore(self, point: Any, into: Any = None) -> Iterator[Any]:
        """Restore through the inner target, then fail to tear down."""
        with self.inner.restore(point, into) as resource:
            yield resource
        raise BackendError("delete failed")


def attrs_evolve(context: VerifyContext, **changes: Any) -> VerifyContext:
    """The context with *changes*."""
    return attrs.evolve(context, **changes)


class TestEncrypted:
    def test_encrypted_point_names_key(self, db, context):
        """The KMS key of an encrypted point is in the evidence and the details."""
        point = db.create_backup().evolve(details={"kms_key_id": "alias/backups"})
        result = Encrypted().verify(db, point, context)
        assert (CheckStatus.PASS, "alias/backups") == (result.status, result.evidence["kms_key_id"])

    def test_unencrypted_point_fails(self, db, context):
        """An unencrypted point fails; not required, it warns."""
        point = db.create_backup().evolve(encrypted=False)
        assert (CheckStatus.FAIL, CheckStatus.WARN) == (
            Encrypted().verify(db, point, context).status,
            Encrypted(required=False).verify(db, point, context).status,
        )

    def test_local_archive_store_is_unencrypted(self, app, context):
        """Archives in a plain directory store are reported as not encrypted."""
        point = app.create_backup()
        assert CheckStatus.FAIL == Encrypted().verify(app, point, context).status


class TestNotApplicable:
    @pytest.mark.parametrize(
        "check",
        [NotPublic(), VersioningEnabled(), ObjectLock(), SettingsMatchPolicy(expected={})],
        ids=lambda c: c.name,
    )
    def test_aws_checks_skip_other_targets(self, db, context, check):
        """AWS-only checks are skipped (with a reason) on a non-AWS target."""
        result = check.verify(db, db.create_backup(), context)
        assert CheckStatus.SKIPPED == result.status
        assert result.details


class TestFresh:
    def test_recent_backup_passes(self, db, context):
        """A backup two hours old is fresh under the policy's 24 h RPO plus 2 h grace."""
        db.create_backup()
        result = Fresh().verify(db, None, context)
        assert (CheckStatus.PASS, 7200.0) == (result.status, result.evidence["age_seconds"])

    @pytest.mark.parametrize(
        ("age", "expected"),
        [
            (timedelta(hours=26), CheckStatus.PASS),
            (timedelta(hours=26, minutes=1), CheckStatus.FAIL),
        ],
    )
    def test_boundary_is_rpo_plus_grace(self, db, context, age, expected):
        """Exactly RPO + grace old still passes; a minute more fails."""
        db.add_point(created_at=NOW - age)
        assert expected == Fresh().verify(db, None, context).status

    def test_explicit_max_age(self, db, context):
        """An explicit max_age wins over the policy."""
        db.add_point(created_at=NOW - timedelta(hours=3))
        assert CheckStatus.FAIL == Fresh("2h").verify(db, None, context).status

    def test_failed_newest_does_not_count(self, db, context):
        """A newer failed point does not make the target fresh."""
        db.add_point(created_at=NOW - timedelta(days=3))
        db.add_point(created_at=NOW - timedelta(hours=1), status=Status.FAILED)
        assert CheckStatus.FAIL == Fresh().verify(db, None, context).status

    def test_no_backup_fails(self, db, context):
        """A target without any completed backup fails."""
        result = Fresh().verify(db, None, context)
        assert ("no completed backup",) == result.issues

    def test_without_policy_or_max_age_cannot_run(self, db):
        """Without a limit the check cannot run: a PolicyError names max_age."""
        with pytest.raises(PolicyError, match="^max_age: expected a duration"):
            Fresh().verify(db, None, VerifyContext(now=NOW))


class TestHasOffsiteCopy:
    def test_copy_this_week_passes(self, db, context):
        """A completed copy in the weekly off-site tier made this week passes."""
        db.add_point(created_at=NOW - timedelta(days=1), tier="offsite")
        assert CheckStatus.PASS == HasOffsiteCopy().verify(db, None, context).status

    def test_copy_from_last_week_still_counts(self, db, context):
        """Last week's copy counts (this week's slot may not have come yet)."""
        db.add_point(created_at=datetime(2026, 11, 17, tzinfo=UTC), tier="offsite")
        assert CheckStatus.PASS == HasOffsiteCopy().verify(db, None, context).status

    def test_older_copy_fails(self, db, context):
        """A copy older than the previous week fails."""
        db.add_point(created_at=datetime(2026, 11, 10, tzinfo=UTC), tier="offsite")
        assert CheckStatus.FAIL == HasOffsiteCopy().verify(db, None, context).status

    def test_no_copy_fails(self, db, context):
        """Local points alone do not make an off-site copy."""
        db.create_backup()
        result = HasOffsiteCopy().verify(db, None, context)
        assert ("no completed copy in tier 'offsite'",) == result.issues

    def test_within_overrides_the_cadence(self, db, context):
        """An explicit window is used instead of the tier's cadence."""
        db.add_point(created_at=NOW - timedelta(days=3), tier="offsite")
        assert CheckStatus.FAIL == HasOffsiteCopy(within="2d").verify(db, None, context).status

    def test_target_without_copy_tier_is_skipped(self, db):
        """A target whose policy has no copy tier is skipped."""
        policy = Policy.from_dict({**POLICY, "tiers": []})
        ctx = VerifyContext(now=NOW, policy=policy)
        assert CheckStatus.SKIPPED == HasOffsiteCopy().verify(db, None, ctx).status


class TestIntegrityArchives:
    def test_intact_archive_passes(self, app, context):
        """An archive whose bytes match the sidecar passes, with the checksum as evidence."""
        point = app.create_backup()
        result = IntegrityCheck().verify(app, point, context)
        assert (CheckStatus.PASS, CheckKind.INTEGRITY, point.checksum) == (
            result.status,
            result.kind,
            result.evidence["checksum"],
        )

    def test_corrupted_archive_fails(self, app, tmp_path, context):
        """A flipped byte in the stored archive fails the check; nothing raises."""
        point = app.create_backup()
        archive = tmp_path / "store" / f"{point.id}.tar.gz"
        data = bytearray(archive.read_bytes())
        data[len(data) // 2] ^= 0xFF
        archive.write_bytes(bytes(data))
        result = IntegrityCheck().verify(app, point, context)
        assert CheckStatus.FAIL == result.status
        assert hashlib.sha256(bytes(data)).hexdigest() == result.evidence["mismatch"]["actual"]

    def test_deep_check_restores_every_file(self, app, context):
        """deep=True also restores the archive and checks each file against the manifest."""
        point = app.create_backup()
        result = IntegrityCheck(deep=True).verify(app, point, context)
        assert (CheckStatus.PASS, 2) == (result.status, result.evidence["restored_files"])

    def test_every_tier_is_checked(self, app, tmp_path, policy):
        """run_checks checks the local archive and its off-site copy (seed 4.2)."""
        point = app.create_backup()
        app.copy(
            point,
            Destination(tier="offsite", store=DirectoryStore(tmp_path / "off", tier="offsite")),
        )
        spec = {**POLICY, "targets": [{"name": "shop-data", "kind": "testing:memory"}]}
        results = run_checks(
            Policy.from_dict(spec),
            now=NOW,
            targets={"shop-data": app},
            checks=[IntegrityCheck()],
            notifiers=[],
        )
        assert [("local", "pass"), ("offsite", "pass")] == sorted(
            (r.tier, r.status.value) for r in results
        )

    def test_failed_point_fails(self, db, context):
        """A failed point is not restorable: the integrity check fails."""
        point = db.add_point(status=Status.FAILED)
        assert CheckStatus.FAIL == IntegrityCheck().verify(db, point, context).status

    def test_target_without_a_method_is_skipped(self, db, context):
        """A kind with no integrity method is skipped, saying so."""
        result = IntegrityCheck().verify(db, db.create_backup(), context)
        assert (
            CheckStatus.SKIPPED,
            "no integrity check for kind 'memory-snapshot' on MemoryTarget",
        ) == (
            result.status,
            result.details,
        )


class TestRestoreTest:
    def test_sqlite_probe_passes_on_restored_data(self, app, context):
        """The restored SQLite database has the rows that were backed up."""
        point = app.create_backup()
        probe = SqlProbe(
            "select count(*), sum(total) from orders", expect=[(5, 100)], connect=_sqlite
        )
        result = RestoreTest(probes=[probe]).verify(app, point, context)
        assert (CheckStatus.PASS, CheckKind.RESTORE_TEST) == (result.status, result.kind)
        assert [True] == [p["ok"] for p in result.evidence["probes"]]

    def test_wrong_expectation_fails(self, app, context):
        """A probe whose expectation does not hold fails the restore test."""
        point = app.create_backup()
        probe = SqlProbe("select count(*) from orders", expect=6, connect=_sqlite, name="orders")
        result = RestoreTest(probes=[probe]).verify(app, point, context)
        assert (CheckStatus.FAIL, ("probe orders: expected 6 (got 5)",)) == (
            result.status,
            result.issues,
        )

    def test_data_written_after_the_backup_is_absent(self, app, context):
        """The probe sees the backed-up state, not the live database."""
        point = app.create_backup()
        with sqlite3.connect(app.path / "shop.db") as conn:
            conn.execute("insert into orders (total) values (999)")
        conn.close()
        probe = SqlProbe("select count(*) from orders", expect=5, connect=_sqlite)
        assert CheckStatus.PASS == RestoreTest(probes=[probe]).verify(app, point, context).status

    def test_restored_directory_is_torn_down(self, app, context):
        """The restored directory is gone once the test is over, even after a failed probe."""
        point = app.create_backup()
        seen: list[Path] = []

        def probe(ctx: ProbeContext) -> bool:
            seen.append(Path(ctx.endpoint))
            return False

        result = RestoreTest(probes=[probe]).verify(app, point, context)
        assert (CheckStatus.FAIL, True, False) == (
            result.status,
            result.evidence["torn_down"],
            seen[0].exists(),
        )

    def test_file_probe_with_checksums(self, app, context):
        """FileProbe finds the configuration file with its checksum."""
        point = app.create_backup()
        digest = "sha256:" + hashlib.sha256(b"port = 8080\n").hexdigest()
        probe = FileProbe({"app.conf": digest, "shop.db": None})
        assert CheckStatus.PASS == RestoreTest(probes=[probe]).verify(app, point, context).status

    def test_rto_and_rpo_evidence(self, db, context):
        """The evidence has the restore duration, the point's age and the objectives."""
        point = db.create_backup()
        result = RestoreTest().verify(db, point, context)
        evidence = result.evidence
        assert (7200.0, "24h", True) == (
            evidence["point_age_seconds"],
            evidence["rpo"],
            evidence["restore_seconds"] >= 0,
        )

    def test_resolver_is_used_and_named(self, db, context):
        """Probes connect to the resolved endpoint, and the evidence says who resolved it."""
        point = db.create_backup()
        resolver = StaticEndpoint("127.0.0.1:5432", description="local stand-in")
        ctx = attrs_evolve(context, endpoint_resolver=resolver)
        result = RestoreTest(probes=[lambda c: c.endpoint == "127.0.0.1:5432"]).verify(
            db, point, ctx
        )
        assert (CheckStatus.PASS, "127.0.0.1:5432", "local stand-in") == (
            result.status,
            result.evidence["probe_endpoint"],
            result.evidence["probe_endpoint_resolved_by"],
        )

    def test_restore_failure_is_a_failed_result(self, db, context):
        """A restore that raises gives a failed result, not an exception."""
        point = db.create_backup()
        db.fail_next("restore", BackendError("no capacity"))
        result = RestoreTest().verify(db, point, context)
        assert (CheckStatus.FAIL, ("restore failed: BackendError: no capacity",)) == (
            result.status,
            result.issues,
        )

    def test_teardown_failure_fails(self, db, context):
        """A teardown that raises fails the test and records that nothing was torn down."""
        point = db.create_backup()
        result = RestoreTest().verify(FailingTeardown(db), point, context)
        assert (CheckStatus.FAIL, ("teardown failed: BackendError: delete failed",), False) == (
            result.status,
            result.issues,
            result.evidence["torn_down"],
        )

    def test_resolver_failure_fails_and_tears_down(self, db, context):
        """A resolver that raises fails the test; the restored resource is still torn down."""
        point = db.create_backup()

        def resolver(_resource: Any) -> str:
            raise LookupError("no tunnel")

        result = RestoreTest().verify(db, point, attrs_evolve(context, endpoint_resolver=resolver))
        assert (("endpoint resolution failed: LookupError: no tunnel",), 1) == (
            result.issues,
            len(db.teardowns),
        )

    def test_isolation_profile_is_used(self, db, context):
        """The restore goes into the context's isolation profile."""
        point = db.create_backup()
        ctx = attrs_evolve(context, isolation=IsolationProfile(name_prefix="iso-"))
        RestoreTest().verify(db, point, ctx)
        assert db.restores[0].id.startswith("iso-")

    def test_no_point_fails(self, db, context):
        """Without a point to restore the test fails."""
        assert CheckStatus.FAIL == RestoreTest().verify(db, None, context).status


class TestProbes:
    def test_callable_expectation(self):
        """expect may be a predicate over the rows."""
        probe = SqlProbe(
            "select 1 union select 2", expect=lambda rows: len(rows) == 2, connect=sqlite3.connect
        )
        assert run_probe(probe, ProbeContext(None, ":memory:")).ok

    def test_probe_raising_fails(self):
        """A probe that raises fails with the error text."""

        def boom(_ctx: ProbeContext) -> None:
            raise RuntimeError("connection refused")

        result = run_probe(boom, ProbeContext(None, None))
        assert ProbeResult("boom", ok=False, details="RuntimeError: connection refused") == result

    def test_bad_return_value_fails(self):
        """A probe returning something else than a result, bool or None fails."""
        assert not run_probe(lambda _c: "yes", ProbeContext(None, None)).ok

    def test_file_probe_checksum_mismatch(self, tmp_path):
        """A file with other content fails FileProbe."""
        (tmp_path / "a.txt").write_text("changed")
        wanted = "sha256:" + hashlib.sha256(b"original").hexdigest()
        result = FileProbe({"a.txt": wanted}).run(ProbeContext(None, tmp_path))
        assert not result.ok

    @pytest.mark.parametrize("files", [{}, {"../etc/passwd": None}, {"a": "md5:x"}])
    def test_file_probe_validates(self, files):
        """Empty mappings, paths escaping the root and non-sha256 checksums are refused."""
        with pytest.raises(PolicyError):
            FileProbe(files)

    def test_empty_query_refused(self):
        """A blank query is refused at construction."""
        with pytest.raises(PolicyError, match="^query: expected a non-empty SQL query"):
            SqlProbe(" ", expect=1, connect=sqlite3.connect)


class TestRunChecks:
    def test_every_result_is_logged_and_failures_notified(self, policy):
        """Every result goes to the log; each failure becomes a verification_failed event."""
        db = MemoryTarget("db", policy="shop", clock=lambda: BACKUP_AT)
        web = MemoryTarget("web", policy="shop", clock=lambda: BACKUP_AT)
        db.create_backup()
        web.add_point(status=Status.FAILED)
        log, notifier = Recorder(), Notifier()
        results = run_checks(
            policy,
            now=NOW,
            targets={"db": db, "web": web},
            checks=[Completed(), Fresh()],
            log=log,
            notifiers=[notifier],
            ran_by="tester",
        )
        assert results == log.results
        failed = [(r.target, r.check) for r in results if r.status is CheckStatus.FAIL]
        assert [("web", "completed"), ("web", "fresh")] == failed
        assert [(EventKind.VERIFICATION_FAILED, "web")] * 2 == [
            (e.kind, e.target) for e in notifier.events
        ]
        assert {"tester"} == {r.ran_by for r in results}

    def test_listing_failure_is_a_result(self, policy, db):
        """A target whose listing fails gives one failed 'listing' result; others still run."""
        web = MemoryTarget("web", policy="shop", clock=lambda: BACKUP_AT)
        web.create_backup()
        db.fail_next("list_points", BackendError("throttled"))
        results = run_checks(
            policy, now=NOW, targets={"db": db, "web": web}, checks=[Completed()], notifiers=[]
        )
        assert [("db", "listing", "fail"), ("web", "completed", "pass")] == [
            (r.target, r.check, r.status.value) for r in results
        ]

    def test_all_points_checks_every_point(self, policy, db):
        """all_points=True checks every point; by default only the newest per tier."""
        web = MemoryTarget("web", policy="shop")
        for hours in (30, 20, 10):
            db.add_point(created_at=NOW - timedelta(hours=hours))
        kwargs: dict[str, Any] = {
            "now": NOW,
            "targets": {"db": db, "web": web},
            "checks": [Completed()],
            "only": ["db"],
            "notifiers": [],
        }
        assert (1, 3) == (
            len(run_checks(policy, **kwargs)),
            len(run_checks(policy, all_points=True, **kwargs)),
        )

    def test_tiers_limit_the_points(self, policy, db):
        """tiers= restricts point-level checks to those tiers."""
        db.create_backup()
        db.add_point(tier="offsite")
        results = run_checks(
            policy,
            now=NOW,
            targets={"db": db},
            checks=[Completed()],
            only=["db"],
            tiers=["offsite"],
            notifiers=[],
        )
        assert ["offsite"] == [r.tier for r in results]

    def test_default_checks_follow_the_policy(self):
        """Without require_encryption/require_private those checks are left out."""
        policy = Policy.from_dict(
            {**POLICY, "verification": {"require_encryption": False, "require_private": False}}
        )
        names = [c.name for c in default_checks(policy)]
        assert [
            "completed",
            "fresh",
            "offsite-copy",
            "versioning",
            "object-lock",
            "rds-settings",
            "bucket-encryption",  # a target's own settings: checked whenever it states them
            "bucket-public-access",
            "integrity",
        ] == names

    def test_isolation_from_policy(self, policy):
        """The policy's isolation settings become the IsolationProfile."""
        profile = isolation_for(policy)
        assert ("bp-test-", {"purpose": "test"}) == (profile.name_prefix, dict(profile.tags))


class TestRestoreTestRunner:
    def test_newest_completed_point_of_each_target_of_the_application(self, policy, db):
        """Per application, each target's newest completed point is restored (no probe: unproven)."""
        web = MemoryTarget("web", policy="shop")
        old = db.add_point(created_at=NOW - timedelta(days=2))
        good = db.add_point(created_at=NOW - timedelta(days=1))
        db.add_point(created_at=NOW - timedelta(hours=1), status=Status.FAILED)
        log = Recorder()
        results = restore_test(
            policy,
            now=NOW,
            application="shop",
            targets={"db": db, "web": web},
            log=log,
            notifiers=[],
        )
        assert [("db", good.id, "unproven")] == [
            (r.target, r.point_id, r.status.value) for r in results
        ]
        assert old.id != good.id
        assert results == log.results

    def test_probes_and_resolvers_per_target(self, policy, db):
        """Probes and resolvers given per target name reach that target's test only.

        The stand-in's proof is marked simulated; the target without probes is unproven.
        """
        web = MemoryTarget("web", policy="shop")
        db.create_backup()
        web.create_backup()
        results = restore_test(
            policy,
            now=NOW,
            targets={"db": db, "web": web},
            probes={"db": [lambda c: c.endpoint == "pg://stand-in"]},
            endpoint_resolver={"db": StaticEndpoint("pg://stand-in", description="stand-in")},
            notifiers=[],
        )
        assert [
            ("db", "pass", "stand-in", 1, True),
            ("web", "unproven", "the restored resource's own endpoint", 0, False),
        ] == [
            (
                r.target,
                r.status.value,
                r.evidence["probe_endpoint_resolved_by"],
                len(r.evidence["probes"]),
                r.simulated,
            )
            for r in results
        ]

    def test_target_without_backup_fails_and_notifies(self, policy, db):
        """A target with nothing to restore fails, and the failure is notified."""
        notifier = Notifier()
        results = restore_test(
            policy, now=NOW, only=["db"], targets={"db": db}, notifiers=[notifier]
        )
        assert (["fail"], ["db"]) == (
            [r.status.value for r in results],
            [e.target for e in notifier.events],
        )


def _crashed_restore_dir(parent: Path) -> Path:
    """A restore-test directory as a crashed test leaves it: marked as ours, no longer locked."""
    from backuppolicy.local import _leftovers

    path, lock = _leftovers.owned_tempdir("bp-restore-", parent)
    os.close(lock)
    return path


class TestSweepDirectories:
    def test_old_restore_directories_are_removed(self, tmp_path):
        """Directories with the restore prefix older than the limit are removed; others stay."""
        old, new = (_crashed_restore_dir(tmp_path) for _ in range(2))
        other = tmp_path / "keep-me"
        for path in (old, new, other):
            (path / "data").mkdir(parents=True, exist_ok=True)
        stamp = (NOW - timedelta(days=2)).timestamp()
        for path in (old, other):
            os.utime(path, (stamp, stamp))
        os.utime(new, (NOW.timestamp(), NOW.timestamp()))
        swept = sweep_restore_tests(older_than="1d", now=NOW, temp_dir=tmp_path)
        assert [("directory", str(old), "deleted")] == [(s.kind, s.id, s.action) for s in swept]
        assert (False, True, True) == (old.exists(), new.exists(), other.exists())

    def test_dry_run_deletes_nothing(self, tmp_path):
        """A dry run reports what it would delete and deletes nothing."""
        old = _crashed_restore_dir(tmp_path)
        stamp = (NOW - timedelta(days=2)).timestamp()
        os.utime(old, (stamp, stamp))
        swept = sweep_restore_tests(older_than="1d", now=NOW, temp_dir=tmp_path, dry_run=True)
        assert (["would delete"], True) == ([s.action for s in swept], old.exists())


class TestSweepDirectoriesTouchOnlyOurs:
    """The restore-test sweep removes only directories a restore test made and left."""

    def test_a_users_directory_with_our_prefix_survives(self, tmp_path):
        """An old ``bp-restore-notes`` of the user's (no marker of ours) is neither listed nor removed."""
        users = tmp_path / "bp-restore-notes"
        (users / "data").mkdir(parents=True)
        stamp = (NOW - timedelta(days=2)).timestamp()
        os.utime(users, (stamp, stamp))

        swept = sweep_restore_tests(older_than="1d", now=NOW, temp_dir=tmp_path)

        assert ([], True) == (swept, (users / "data").exists())

    def test_a_running_restore_test_is_not_swept(self, tmp_path, monkeypatch):
        """A restore test still running (its directory locked), however old, keeps its directory."""
        import tempfile

        source = tmp_path / "src"
        source.mkdir()
        (source / "a.txt").write_text("a")
        target = Directory(source, name="app", store=DirectoryStore(tmp_path / "store"))
        point = target.create_backup()
        temp = tmp_path / "tmp"
        temp.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(temp))
        with target.restore(point) as restored:
            [base] = list(temp.iterdir())
            stamp = (NOW - timedelta(days=2)).timestamp()
            os.utime(base, (stamp, stamp))

            swept = sweep_restore_tests(older_than="1d", now=NOW, temp_dir=temp)

            assert [] == swept
            assert (Path(restored.endpoint) / "a.txt").exists()


class _LeftoverTarget(MemoryTarget):
    """A throwaway plug-in kind that sweeps its own restore-test leftovers (`Sweepable`)."""

    def __init__(self, name: str, leftovers: dict[str, datetime]) -> None:
        super().__init__(name)
        self.leftovers = leftovers
        self.asked: list[tuple[str, datetime, bool]] = []

    def sweep_restore_tests(
        self,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: set[str],
        temp_dir: str | os.PathLike[str] | None = None,
    ) -> list[SweptResource]:
        self.asked.append((isolation.sweep_tag, before, dry_run))
        if "memory:leftovers" in seen:  # one store of leftovers, shared by every such target
            return []
        seen.add("memory:leftovers")
        old = sorted(rid for rid, made in self.leftovers.items() if made < before)
        return [
            SweptResource.sweep(
                "memory-copy",
                rid,
                self.leftovers[rid],
                None,
                dry_run=dry_run,
                delete=lambda rid=rid: self.leftovers.pop(rid),
            )
            for rid in old
        ]


class TestSweepPluginKind:
    """A kind that implements ``Sweepable`` is swept with the built-in ones, without naming it."""

    def test_a_sweepable_plugin_target_is_asked_and_swept(self, tmp_path):
        """Its old leftovers are deleted, its new ones kept; it is told the cutoff and the profile."""
        leftovers = {"old": NOW - timedelta(days=2), "new": NOW - timedelta(hours=1)}
        target = _LeftoverTarget("plugin", leftovers)
        profile = IsolationProfile(sweep_tag="acme:restore-test")
        swept = sweep_restore_tests(
            [target], older_than="1d", now=NOW, isolation=profile, temp_dir=tmp_path
        )
        assert (
            [("memory-copy", "old", "deleted")],
            ["new"],
            [("acme:restore-test", NOW - timedelta(days=1), False)],
        ) == ([(s.kind, s.id, s.action) for s in swept], list(leftovers), target.asked)

    def test_a_scope_already_swept_is_swept_once(self, tmp_path):
        """Two targets sharing one scope: the first sweeps it, the second skips it (a dry run)."""
        leftovers = {"old": NOW - timedelta(days=2)}
        first, second = (_LeftoverTarget(n, leftovers) for n in ("a", "b"))
        swept = sweep_restore_tests(
            {"a": first, "b": second}, older_than="1d", now=NOW, temp_dir=tmp_path, dry_run=True
        )
        assert ([("old", "would delete")], ["old"], 1) == (
            [(s.id, s.action) for s in swept],
            list(leftovers),
            len(second.asked),
        )

    def test_a_target_that_cannot_sweep_is_ignored(self, tmp_path):
        """A target without the hook is left alone; the directory sweep still runs."""
        assert [] == sweep_restore_tests(
            [MemoryTarget("plain")], older_than="1d", now=NOW, temp_dir=tmp_path
        )


class TestExpectedRdsSettings:
    def test_retention_is_capped_at_35_days(self):
        """A longer max_age asks RDS for its maximum, 35 days; the window comes from the schedule."""
        policy = Policy.from_dict(
            {
                "name": "p",
                "schedule": {
                    "every": "day",
                    "at": "04:00",
                    "tz": "Europe/London",
                    "window": "30min",
                },
                "retention": {"max_age": "90d"},
                "targets": [
                    {"name": "db", "kind": "rds-instance", "settings": {"db_instance_id": "db"}}
                ],
            }
        )
        summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
        assert {"retention_days": 35, "backup_window": "03:00-03:30"} == expected_rds_settings(
            policy, "db", now=summer
        )


# --------------------------------------------------------------------------------------------
# CLI

CLI_POLICY = """\
name: shop
schedule: {every: day, at: "04:00"}
retention: {max_age: 35d}
targets:
  - {name: db, kind: "testing:memory", application: shop}
  - {name: web, kind: "testing:memory", application: blog}
"""


@pytest.fixture(name="cli_targets")
def _cli_targets(monkeypatch: pytest.MonkeyPatch) -> dict[str, MemoryTarget]:
    kept: dict[str, MemoryTarget] = {}

    def factory(*, name: str, policy: str, **_settings: Any) -> MemoryTarget:
        return kept.setdefault(name, MemoryTarget(name, policy=policy, clock=lambda: BACKUP_AT))

    monkeypatch.setitem(registry._REGISTERED, "testing:memory", factory)
    monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)
    return kept


@pytest.fixture(name="run")
def _run(
    cli_targets: dict[str, MemoryTarget], tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(CLI_POLICY)

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(
            [*argv, "--policy", str(policy_file), "--now", "2026-11-26T06:00:00Z"], out=out, err=err
        )
        return code, out.getvalue(), err.getvalue()

    return run


class TestCli:
    def test_verify_fails_and_logs(self, run, tmp_path):
        """verify exits 1 when a check fails and appends every result to --log as JSON lines."""
        log = tmp_path / "testing.jsonl"
        code, out, _ = run("verify", "--check", "completed", "--check", "fresh", "--log", str(log))
        assert 1 == code  # nothing was backed up yet: fresh fails
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert {("db", "fresh", "fail"), ("web", "fresh", "fail")} == {
            (e["target"], e["check"], e["status"]) for e in lines
        }
        assert "2 check(s): 2 fail" in out

    def test_verify_json_after_backups(self, run, cli_targets):
        """With fresh backups verify exits 0 and --json prints the results."""
        code, _, _ = run("backup")
        assert 0 == code
        code, out, _ = run("verify", "--check", "completed", "--check", "fresh", "--json")
        assert 0 == code
        assert {("db", "completed"), ("db", "fresh"), ("web", "completed"), ("web", "fresh")} == {
            (r["target"], r["check"]) for r in json.loads(out)
        }

    def test_unknown_check_is_a_usage_error(self, run):
        """An unknown --check name exits 2 naming the known ones."""
        code, _, err = run("verify", "--check", "freshness")
        assert 2 == code
        assert "--check: expected one of" in err

    def test_restore_test_of_one_application(self, run):
        """restore-test --application restores only that application's targets.

        Without probes nothing proves the data: the test is unproven and the exit code is 1.
        """
        run("backup")
        code, out, _ = run("restore-test", "--application", "blog", "--json")
        assert (1, [("web", "restore-test", "unproven")]) == (
            code,
            [(r["target"], r["check"], r["status"]) for r in json.loads(out)],
        )

    def test_restore_test_unknown_application(self, run):
        """An unknown application is a usage error (exit 2)."""
        code, _, err = run("restore-test", "--application", "nope")
        assert 2 == code
        assert "application" in err
