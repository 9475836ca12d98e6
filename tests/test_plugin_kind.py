"""A target kind added as a plug-in, outside the library: the SQLite file kind of ``examples/``.

Issue 11, rule 3: "a target kind is one module plus one registry entry". The kind lives in
``examples/sqlite_target.py``; the ``plugin`` fixture registers it the way an installed package
does (a ``*.dist-info`` directory with ``entry_points.txt`` on ``sys.path``, found by
`importlib.metadata`), without pip. Every workflow then runs against it through the public API
only: backup, prune (floors hold), verify, restore test (with data proof), restore, ``export
iam`` and the audit.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import time_machine

import backuppolicy as bp
from backuppolicy.aws.iam import iam_policy, iam_table
from backuppolicy.core import registry
from backuppolicy.core.targets import (
    BackupTarget,
    Destination,
    IsolationProfile,
    RestoredResource,
    get_target_class,
    known_target_kinds,
)
from backuppolicy.testing import BackupTargetContract

EXAMPLES = Path(__file__).parents[1] / "examples"
KIND = "sqlite-file"
DAY0 = datetime(2026, 11, 20, 4, 10, tzinfo=UTC)
DAYS = 6


def _install(site: Path) -> None:
    """What ``pip install`` of a package declaring the kind leaves behind: its dist-info."""
    dist = site / "sqlite_target_example-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sqlite-target-example\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        f"[backuppolicy.targets]\n{KIND} = sqlite_target:SqliteFile\n", encoding="utf-8"
    )


@pytest.fixture(name="plugin")
def _plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The kind registered through the entry-point group, as an installed package would be."""
    site = tmp_path / "site-packages"
    _install(site)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the plug-in's module
    monkeypatch.syspath_prepend(str(site))  # its metadata
    sys.modules.pop("sqlite_target", None)
    factory = get_target_class(KIND)
    module = sys.modules["sqlite_target"]
    assert module.SqliteFile is factory
    yield module
    sys.modules.pop("sqlite_target", None)


@attrs.frozen
class _World:
    """A database with a table of notes, and a policy that protects it with the plug-in kind."""

    db: Path
    archive: Path
    offsite: Path
    policy: bp.Policy
    plugin: ModuleType

    def add_note(self, text: str) -> None:
        with sqlite3.connect(self.db) as conn:
            conn.execute("insert into notes (text) values (?)", (text,))
        conn.close()

    def rows(self, path: Path) -> int:
        with sqlite3.connect(path) as conn:
            count: int = conn.execute("select count(*) from notes").fetchone()[0]
        conn.close()
        return count


@pytest.fixture(name="world")
def _world(tmp_path: Path, plugin: ModuleType) -> _World:
    db = tmp_path / "app" / "notes.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("create table notes (id integer primary key, text text not null)")
    conn.close()
    archive, offsite = tmp_path / "backups", tmp_path / "offsite"
    policy = bp.Policy.from_dict(
        {
            "name": "notes-policy",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"keep_last": 2},
            "tiers": [
                {"name": "local", "every": "day", "location": {"store": str(archive)}},
                {"name": "offsite", "every": "week", "location": {"store": str(offsite)}},
            ],
            "targets": [
                {
                    "name": "notes",
                    "kind": KIND,
                    "application": "notes",
                    "settings": {"path": str(db)},
                }
            ],
        }
    )
    return _World(db, archive, offsite, policy, plugin)


def _back_up_days(world: _World) -> list[bp.RunReport]:
    """One note and one scheduled backup a day for `DAYS` days, through `bp.backup`."""
    reports = []
    for day in range(DAYS):
        now = DAY0 + timedelta(days=day)
        world.add_note(f"note of day {day}")
        with time_machine.travel(now, tick=False):
            reports.append(bp.backup(world.policy, now=now, notifiers=[]))
    return reports


def _points(world: _World, tier: str = "local") -> list[bp.RecoveryPoint]:
    target = bp.build_targets(world.policy)["notes"]
    return sorted((p for p in target.list_points() if p.tier == tier), key=lambda p: p.created_at)


class TestRegistration:
    def test_only_the_entry_point_makes_the_kind_known(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without its dist-info the kind is unknown; with it, it resolves lazily to the class."""
        monkeypatch.syspath_prepend(str(EXAMPLES))
        assert KIND not in known_target_kinds()
        with pytest.raises(bp.BackendNotFoundError):
            get_target_class(KIND)
        _install(tmp_path / "site")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        try:
            assert KIND in known_target_kinds()
            assert get_target_class(KIND).__name__ == "SqliteFile"
        finally:
            sys.modules.pop("sqlite_target", None)

    def test_from_spec_builds_the_target_with_its_tiers(self, world: _World) -> None:
        """`bp.build_targets` asks the kind to read its own spec: path, archive and copy tiers."""
        target = bp.build_targets(world.policy)["notes"]
        assert isinstance(target, world.plugin.SqliteFile)
        assert isinstance(target, BackupTarget)
        assert (target.name, target.policy, target.path) == ("notes", "notes-policy", world.db)
        assert {"local": world.archive, "offsite": world.offsite} == target.archives

    def test_from_spec_names_a_missing_archive(self, world: _World) -> None:
        """A spec without an archive anywhere is refused, naming the setting."""
        policy = bp.Policy.from_dict(
            {
                **world.policy.to_dict(),
                "tiers": [{"name": "local", "every": "day"}],
            }
        )
        with pytest.raises(bp.PolicyError, match=r"targets\[notes\]\.settings\.archive"):
            bp.build_targets(policy)


class TestWorkflows:
    def test_backup_takes_daily_points_and_weekly_copies(self, world: _World) -> None:
        """`bp.backup` makes one consistent copy a day and copies to the off-site tier weekly."""
        reports = _back_up_days(world)
        assert all(r.ok for r in reports), [r.summary() for r in reports]
        local, offsite = _points(world), _points(world, "offsite")
        assert DAYS == len(local)
        # Friday 20 November to Wednesday 25: one copy in each of the two ISO weeks.
        assert [DAY0, DAY0 + timedelta(days=3)] == [p.created_at for p in offsite]
        assert [d + 1 for d in range(DAYS)] == [world.rows(Path(p.location)) for p in local]
        assert all(p.managed and p.status is bp.Status.COMPLETED for p in local + offsite)

    def test_a_rerun_of_the_same_day_makes_no_duplicate(self, world: _World) -> None:
        """Backing up again for the same slot returns nothing new."""
        with time_machine.travel(DAY0, tick=False):
            bp.backup(world.policy, now=DAY0, notifiers=[])
            again = bp.backup(world.policy, now=DAY0 + timedelta(minutes=5), notifiers=[])
        assert again.ok
        assert 1 == len(_points(world))

    def test_prune_keeps_the_rule_the_hold_and_the_floor(self, world: _World) -> None:
        """`bp.plan_retention` + `bp.apply`: keep_last 2, the held point, and never the newest."""
        _back_up_days(world)
        local = _points(world)
        held = bp.place_hold(
            world.policy, local[0], reason="litigation", reference="case-17", now=DAY0
        )
        assert held.held
        now = DAY0 + timedelta(days=DAYS)
        plan = bp.plan_retention(world.policy, now=now)
        assert {p.id for p in local[1:-2]} == {p.id for p in plan.delete if p.tier == "local"}
        report = bp.apply(plan)
        assert report.ok, report.summary()
        left = {p.id for p in _points(world)}
        assert {local[0].id, local[-2].id, local[-1].id} == left
        # A hand-made plan that deletes everything: the floor and the hold still hold.
        points = _points(world)
        forced = attrs.evolve(plan, keep=[], delete=points, reasons={})
        outcomes = {o.point.id: o for o in bp.apply(forced).outcomes}
        assert "skipped" == outcomes[local[-1].id].action
        assert "skipped" == outcomes[local[0].id].action
        assert {local[0].id, local[-1].id} == {p.id for p in _points(world)}

    def test_verify_checks_each_point_and_catches_a_damaged_one(self, world: _World) -> None:
        """`bp.run_checks` with `IntegrityCheck`: SHA-256 and integrity_check; damage fails it."""
        _back_up_days(world)
        now = DAY0 + timedelta(days=DAYS - 1, hours=1)
        checks = [bp.Completed(), bp.Fresh(), bp.IntegrityCheck(deep=True)]
        results = bp.run_checks(world.policy, now=now, checks=checks, notifiers=[])
        assert {(r.check, r.tier): r.status.value for r in results} == {
            ("completed", "local"): "pass",
            ("completed", "offsite"): "pass",
            ("fresh", None): "pass",
            ("integrity", "local"): "pass",
            ("integrity", "offsite"): "pass",
        }
        newest = _points(world)[-1]
        with Path(newest.location).open("r+b") as handle:
            handle.seek(100)
            handle.write(b"\xff" * 16)
        failed = bp.run_checks(
            world.policy, now=now, checks=[bp.IntegrityCheck()], tiers=["local"], notifiers=[]
        )
        assert ["fail"] == [r.status.value for r in failed]
        assert "changed since its backup" in failed[0].details

    def test_restore_test_proves_the_data_and_cleans_up(
        self, world: _World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`bp.restore_test` restores into a temp dir, probes integrity and rows, removes it."""
        _back_up_days(world)
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        monkeypatch.setenv("TMPDIR", str(scratch))
        monkeypatch.setattr("tempfile.tempdir", None)
        now = DAY0 + timedelta(days=DAYS - 1, hours=1)
        probes = world.plugin.sqlite_probes("notes", rows=DAYS)
        log = bp.TestLog.open("memory://")
        [result] = bp.restore_test(world.policy, now=now, probes=probes, log=log, notifiers=[])
        assert "pass" == result.status.value, result.details
        evidence = result.evidence
        assert [(p["name"], p["ok"]) for p in evidence["probes"]] == [
            ("sql: PRAGMA integrity_check", True),
            ("sql: select count(*) from notes", True),
        ]
        assert [["ok"]] == evidence["probes"][0]["evidence"]["rows"]
        assert evidence["restored"]["id"].startswith(str(scratch / "bp-restore-"))
        assert evidence["torn_down"] is True
        assert [] == list(scratch.iterdir())
        wrong = world.plugin.sqlite_probes("notes", rows=DAYS + 1)
        [failed] = bp.restore_test(world.policy, now=now, probes=wrong, notifiers=[])
        assert "fail" == failed.status.value
        assert f"expected {DAYS + 1}" in failed.details

    def test_restore_to_a_new_file_through_the_plugin(self, world: _World, tmp_path: Path) -> None:
        """The kind's own `restore_to` makes a new, checked file and never overwrites one."""
        _back_up_days(world)
        target = bp.build_targets(world.policy)["notes"]
        point = _points(world)[2]
        restored = target.restore_to(point, tmp_path / "restored" / "notes.db")
        assert 3 == world.rows(restored)
        with pytest.raises(bp.PolicyError, match="where nothing exists yet"):
            target.restore_to(point, restored)

    def test_restore_through_the_public_api(self, world: _World, tmp_path: Path) -> None:
        """`bp.plan_restore` + `bp.restore` restore a point of the plug-in kind to a new file."""
        _back_up_days(world)
        point = _points(world)[2]
        dest = tmp_path / "restored.db"
        plan = bp.plan_restore(world.policy, "notes", point=point, into=dest)
        assert not plan.destructive
        result = bp.restore(plan)
        assert result.ok
        assert 3 == world.rows(dest)

    def test_restore_refuses_a_destination_that_appeared_after_the_plan(
        self, world: _World, tmp_path: Path
    ) -> None:
        """A file written at the destination after the plan is refused, and kept even with confirm."""
        _back_up_days(world)
        dest = tmp_path / "restored.db"
        plan = bp.plan_restore(world.policy, "notes", into=dest)
        assert {str(dest): "absent"} == dict(plan.observed)
        dest.write_bytes(b"someone else's file")
        with pytest.raises(bp.PolicyError, match="changed since the plan"):
            bp.restore(plan)
        with pytest.raises(bp.PolicyError, match="where nothing exists yet"):
            bp.restore(plan, confirm=True)
        assert b"someone else's file" == dest.read_bytes()

    def test_export_iam_needs_nothing_for_this_kind(self, world: _World) -> None:
        """The kind says it needs no AWS permission: an empty document, also from the CLI."""
        assert {"Version": "2012-10-17", "Statement": []} == iam_policy(world.policy)
        assert [] == iam_table(world.policy)
        from backuppolicy.cli.main import main

        policy_file = world.db.parent / "policy.yaml"
        policy_file.write_text(world.policy.to_yaml(), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        code = main(["export", "iam", "--policy", str(policy_file)], out=out, err=err)
        assert (0, []) == (code, json.loads(out.getvalue())["Statement"]), err.getvalue()

    def test_audit_finds_the_kind_compliant_with_evidence(self, world: _World) -> None:
        """`bp.audit` reads the points and the testing log of the plug-in kind like any other."""
        _back_up_days(world)
        now = DAY0 + timedelta(days=DAYS - 1, hours=1)
        log = bp.TestLog.open("memory://")
        bp.run_checks(world.policy, now=now, checks=[bp.IntegrityCheck()], log=log, notifiers=[])
        probes = world.plugin.sqlite_probes("notes", rows=DAYS)
        bp.restore_test(world.policy, now=now, probes=probes, log=log, notifiers=[])
        report = bp.audit(world.policy, now=now, log=log, notifiers=[])
        found = {
            key: [f.compliant for f in report.of(key)]
            for key in (
                "daily-backup",
                "offsite-copy",
                "integrity-check",
                "application-restore-test",
            )
        }
        assert {
            "daily-backup": [True],
            "offsite-copy": [True],
            "integrity-check": [True, True],
            "application-restore-test": [True],
        } == found


class _Undeclared:
    """A kind that does not say which IAM actions it needs."""

    kind = "undeclared"


class _OnS3:
    """A kind that needs S3, and says so."""

    kind = "on-s3"

    @classmethod
    def iam_actions(cls, spec: bp.TargetSpec) -> dict[str, list[dict[str, Any]]]:
        bucket = spec.settings["bucket"]
        return {
            "backup": [{"Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}],
            "prune": [{"Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
        }


class TestIamOfPluginKinds:
    @staticmethod
    def _policy(kind: str) -> bp.Policy:
        return bp.Policy.from_dict(
            {
                "name": "p",
                "schedule": {"every": "day"},
                "retention": {"max_age": "35d"},
                "targets": [{"name": "t", "kind": kind, "settings": {"bucket": "b"}}],
            }
        )

    def test_a_kind_that_says_nothing_is_refused_not_left_out(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A document without the kind's permissions would be silently wrong: it is refused."""
        monkeypatch.setitem(registry._REGISTERED, "testing:undeclared", _Undeclared)
        with pytest.raises(bp.PolicyError, match=r"targets\[t\]\.kind.*iam_actions"):
            iam_policy(self._policy("testing:undeclared"))

    def test_declared_statements_go_into_the_document(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A kind's statements appear under their workflows, merged like the built-in ones."""
        monkeypatch.setitem(registry._REGISTERED, "testing:on-s3", _OnS3)
        document = iam_policy(self._policy("testing:on-s3"), {"prune"})
        assert [(["s3:DeleteObject"], ["arn:aws:s3:::b/*"])] == [
            (s["Action"], s["Resource"]) for s in document["Statement"]
        ]
        rows = iam_table(self._policy("testing:on-s3"))
        assert [("backup", "s3:PutObject"), ("prune", "s3:DeleteObject")] == [
            (r["workflow"], r["action"]) for r in rows
        ]

    def test_a_malformed_declaration_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A statement without resources, or an unknown workflow, names what is wrong."""

        class Bad(_OnS3):
            @classmethod
            def iam_actions(cls, spec: bp.TargetSpec) -> dict[str, list[dict[str, Any]]]:
                return {"restore": [{"Action": ["s3:GetObject"]}]}

        monkeypatch.setitem(registry._REGISTERED, "testing:on-s3", Bad)
        with pytest.raises(bp.PolicyError, match="a workflow among"):
            iam_policy(self._policy("testing:on-s3"))


class TestSqliteFileContract(BackupTargetContract):
    """The plug-in passes the contract suite of `backuppolicy.testing`."""

    @pytest.fixture(name="target")
    def _target(self, world: _World) -> BackupTarget:
        target: BackupTarget = bp.build_targets(world.policy)["notes"]
        return target

    @pytest.fixture(name="destination")
    def _destination(self, world: _World) -> Destination:
        return Destination(tier="offsite", store=str(world.offsite))

    @pytest.fixture(name="isolation")
    def _isolation(self) -> IsolationProfile:
        return IsolationProfile(name_prefix="rt-sqlite-")

    @pytest.fixture(name="foreign_point")
    def _foreign_point(self, world: _World) -> bp.RecoveryPoint:
        """A point of the same file made by another policy: not ours."""
        other = world.plugin.SqliteFile(world.db, archive=world.archive, name="notes", policy="x")
        made = other.create_backup()
        target = bp.build_targets(world.policy)["notes"]
        return next(p for p in target.list_points() if p.id == made.id)

    def restored_exists(self, target: BackupTarget, restored: RestoredResource) -> bool | None:
        """Whether the restored file is still there."""
        return Path(restored.id).exists()
