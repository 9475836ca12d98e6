"""Probes and fingerprints declared in the policy file: loading, building, running, evidence."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import backuppolicy.cli.main as cli
from backuppolicy.checks._declared import (
    FingerprintProbe,
    ManifestProbe,
    declared_probes,
    fingerprint_value,
    record_fingerprints,
)
from backuppolicy.checks.health import HttpCheck
from backuppolicy.checks.probes import SqlProbe
from backuppolicy.core.exceptions import BackupPolicyError, PolicyError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import IsolationProfile, RestoredResource
from backuppolicy.lambda_handler import handler
from backuppolicy.local import Directory
from backuppolicy.workflows.backups import backup, build_targets
from backuppolicy.workflows.verify import restore_test

BACKUP_AT = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SECRET = "hunter2-Very-Secret-pw"


def _source(root: Path, orders: int = 5) -> Path:
    """An application directory: a SQLite database with *orders* rows and a config file."""
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(root / "shop.db")) as conn, conn:
        conn.execute("create table orders (id integer primary key, total integer)")
        conn.executemany("insert into orders (total) values (?)", [(i,) for i in range(orders)])
    (root / "app.conf").write_text("port = 8080\n")
    (root / "static").mkdir()
    for i in range(6):
        (root / "static" / f"page{i}.html").write_text(f"<p>{i}</p>\n")
    return root


def _policy(tmp_path: Path, **target: object) -> dict[str, Any]:
    source = tmp_path / "src"
    if not source.exists():
        _source(source)
    return {
        "name": "shop",
        "schedule": {"every": "day", "at": "04:00"},
        "retention": {"max_age": "35d"},
        "tiers": [
            {"name": "local", "every": "day", "location": {"store": str(tmp_path / "store")}}
        ],
        "targets": [
            {
                "name": "shop-data",
                "kind": "directory",
                "application": "shop",
                "settings": {"path": str(source)},
                **target,
            }
        ],
    }


def _backed_up(tmp_path: Path, **target: object) -> tuple[Policy, Directory]:
    policy = Policy.from_dict(_policy(tmp_path, **target))
    built = build_targets(policy)
    report = backup(policy, now=BACKUP_AT, targets=built, notifiers=[])
    assert report.ok, report.summary()
    found = built["shop-data"]
    assert isinstance(found, Directory)
    return policy, found


class Tampering(Directory):
    """A directory target whose restores come back damaged (what a restore bug would do)."""

    damage: Any = None

    @contextlib.contextmanager
    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> Iterator[RestoredResource]:
        """Restore, then damage the restored copy with `damage`."""
        with super().restore(point, into) as resource:
            type(self).damage(Path(resource.endpoint))
            yield resource


def _tampering(target: Directory, damage: Any) -> Tampering:
    tampering = Tampering(target.path, name=target.name, store=target.store, policy="shop")
    Tampering.damage = staticmethod(damage)
    return tampering


def _probe(result: Any, name: str) -> dict[str, Any]:
    return next(p for p in result.evidence["probes"] if p["name"] == name)


# --------------------------------------------------------------------------------------------


class TestLoading:
    def test_round_trip(self, tmp_path):
        """Declared probes and fingerprints load, and to_dict gives back what from_dict reads."""
        data = _policy(
            tmp_path,
            probes={
                "database": {
                    "dsn": "postgresql://app:{password}@{endpoint}/shop",
                    "password": {"env": "SHOP_DB_PASSWORD"},
                    "driver": "psycopg:connect",
                },
                "sql": [{"name": "one", "query": "select 1", "expect": 1}],
                "files": ["app.conf"],
                "s3_keys": ["index.json"],
                "http": {"url": "http://{endpoint}/health", "contains": "ok"},
            },
            fingerprint={
                "sample": 10,
                "seed": "fixed",
                "source": {"dsn": "/srv/shop.db"},
                "queries": [
                    {"name": "orders", "query": "select count(*) from orders", "tolerance": "2%"}
                ],
            },
        )
        policy = Policy.from_dict(data)
        again = Policy.from_dict(policy.to_dict())
        assert policy.target("shop-data") == again.target("shop-data")
        assert 10 == again.target("shop-data").fingerprint.sample

    @pytest.mark.parametrize(
        ("target", "path", "hint"),
        [
            ({"probes": {"file": ["a"]}}, "targets[0].probes.file", "Did you mean 'files'?"),
            ({"probe": {}}, "targets[0].probe", "Did you mean 'probes'?"),
            ({"fingerprint": {"sampel": 3}}, "targets[0].fingerprint.sampel", "'sample'"),
            (
                {"probes": {"sql": [{"query": "select 1", "expct": 1}]}},
                "targets[0].probes.sql[0].expct",
                "'expect'",
            ),
            ({"probes": {"http": {"ur": "http://x/"}}}, "targets[0].probes.http.ur", "'url'"),
            ({"probes": {"files": ["/etc/passwd"]}}, "targets[0].probes.files[0]", ""),
            ({"probes": {"files": ["../up"]}}, "targets[0].probes.files[0]", ""),
            ({"fingerprint": {"sample": 0}}, "targets[0].fingerprint.sample", ""),
            (
                {
                    "fingerprint": {
                        "queries": [{"name": "n", "query": "q", "tolerance": "lots"}],
                        "source": "/x",
                    }
                },
                "targets[0].fingerprint.queries[0].tolerance",
                "",
            ),
            (
                {"fingerprint": {"queries": [{"name": "n", "query": "q"}]}},
                "targets[0].fingerprint.source",
                "",
            ),
            (
                {"probes": {"database": {"dsn": "x", "driver": "sqlit"}}},
                "targets[0].probes.database.driver",
                "'sqlite'",
            ),
            (
                {"probes": {"database": {"dsn": "postgresql://app:{password}@h/db"}}},
                "targets[0].probes.database.password",
                "",
            ),
        ],
    )
    def test_bad_field_names_the_field(self, tmp_path, target, path, hint):
        """Each wrong or misspelt field is a PolicyError naming it (with did-you-mean)."""
        with pytest.raises(PolicyError) as caught:
            Policy.from_dict(_policy(tmp_path, **target))
        assert path == caught.value.path
        assert hint in str(caught.value)

    @pytest.mark.parametrize(
        ("probes", "path"),
        [
            ({"database": f"postgresql://app:{SECRET}@db/shop"}, "targets[0].probes.database.dsn"),
            (
                {
                    "database": {
                        "dsn": "postgresql://app:{password}@{endpoint}/shop",
                        "password": SECRET,
                    }
                },
                "targets[0].probes.database.password",
            ),
            ({"http": f"https://shop.example/health?token={SECRET}"}, "targets[0].probes.http.url"),
        ],
    )
    def test_literal_secret_is_refused_unquoted(self, tmp_path, probes, path):
        """A password or token written inline is a PolicyError that never quotes it."""
        with pytest.raises(PolicyError) as caught:
            Policy.from_dict(_policy(tmp_path, probes=probes))
        assert (path, False) == (
            caught.value.path,
            SECRET in str(caught.value) + repr(caught.value),
        )


class TestBuilding:
    def test_probes_built_from_the_spec(self, tmp_path):
        """Each declared probe becomes a probe of the family, the manifest check first."""
        policy = Policy.from_dict(
            _policy(
                tmp_path,
                probes={
                    "sql": [{"name": "orders", "query": "select 1", "expect": 1}],
                    "files": ["app.conf"],
                    "http": "http://{endpoint}/health",
                },
                fingerprint={
                    "sample": 3,
                    "source": "/x.db",
                    "queries": [{"name": "n", "query": "q"}],
                },
            )
        )
        target = build_targets(policy)["shop-data"]
        built = declared_probes(policy.target("shop-data"), target)
        assert [ManifestProbe, FingerprintProbe, ManifestProbe, SqlProbe, HttpCheck] == [
            type(p) for p in built
        ]
        assert (3, ("app.conf",)) == (built[0].sample, built[2].paths)

    def test_no_manifest_check_for_targets_without_manifests(self):
        """A target that keeps no manifest gets only what its spec declares."""
        policy = Policy.from_dict(
            {
                "name": "p",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "targets": [{"name": "db", "kind": "testing:memory"}],
            }
        )
        assert [] == declared_probes(policy.target("db"), object())

    def test_fingerprint_value(self):
        """Numbers are kept as text; anything else as a SHA-256 of its rows."""
        assert ("42", "1.5") == (fingerprint_value([(42,)]), fingerprint_value([(1.5,)]))
        assert fingerprint_value([("a",)]) != fingerprint_value([("b",)])


class TestDirectoryFingerprint:
    def test_every_file_checked_against_the_manifest(self, tmp_path):
        """By default every restored file is compared with the manifest's SHA-256."""
        policy, target = _backed_up(tmp_path)
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": target}, notifiers=[])
        probe = _probe(result, "fingerprint: manifest")
        assert ("pass", True, 8, 8) == (
            result.status.value,
            probe["ok"],
            probe["evidence"]["manifest_entries"],
            probe["evidence"]["matched"],
        )
        first = probe["evidence"]["comparisons"][0]
        assert first["expected"] == first["observed"]
        assert first["expected"].startswith("sha256:")

    def test_tampered_file_is_caught_and_named(self, tmp_path):
        """A restored file that differs from the manifest fails the test, naming the file."""
        policy, target = _backed_up(tmp_path)
        tampering = _tampering(
            target, lambda root: (root / "static" / "page3.html").write_text("defaced")
        )
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": tampering}, notifiers=[])
        probe = _probe(result, "fingerprint: manifest")
        (bad,) = [c for c in probe["evidence"]["comparisons"] if not c["ok"]]
        assert ("fail", "static/page3.html") == (result.status.value, bad["path"])
        assert bad["expected"] != bad["observed"]
        assert "static/page3.html" in result.details

    def test_sample_is_deterministic_and_recorded(self, tmp_path):
        """A sample of the set size is chosen from the seed, and the seed is in the evidence."""
        policy, target = _backed_up(tmp_path, fingerprint={"sample": 3, "seed": "s1"})
        runs = [
            _probe(
                restore_test(policy, now=NOW, targets={"shop-data": target}, notifiers=[])[0],
                "fingerprint: manifest",
            )["evidence"]
            for _ in range(2)
        ]
        assert ("s1", 3, 3) == (runs[0]["seed"], runs[0]["checked"], runs[0]["matched"])
        assert runs[0]["comparisons"] == runs[1]["comparisons"]

    def test_named_file_checked_even_outside_the_sample(self, tmp_path):
        """A file named in probes.files is checked whatever the sample; a missing one fails."""
        policy, target = _backed_up(
            tmp_path, probes={"files": ["app.conf"]}, fingerprint={"enabled": False}
        )
        tampering = _tampering(target, lambda root: (root / "app.conf").unlink())
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": tampering}, notifiers=[])
        probe = _probe(result, "files")
        assert (False, ["app.conf: missing after the restore"]) == (
            probe["ok"],
            probe["evidence"]["problems"],
        )
        assert [] == [p for p in result.evidence["probes"] if p["name"] == "fingerprint: manifest"]

    def test_file_not_in_the_manifest_fails(self, tmp_path):
        """A declared file the backup never held fails: it cannot be proven."""
        policy, target = _backed_up(tmp_path, probes={"files": ["nope.txt"]})
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": target}, notifiers=[])
        assert ["nope.txt: not in the backup's manifest"] == _probe(result, "files")["evidence"][
            "problems"
        ]


def _db_target(tmp_path: Path, **fingerprint: object) -> dict[str, object]:
    return {
        "probes": {
            "database": "{endpoint}/shop.db",
            "sql": [
                {"name": "has-orders", "query": "select count(*) > 0 from orders", "expect": 1}
            ],
        },
        "fingerprint": {
            "source": str(tmp_path / "src" / "shop.db"),
            "queries": [
                {"name": "orders", "query": "select count(*) from orders"},
                {"name": "totals", "query": "select id, total from orders order by id"},
            ],
            **fingerprint,
        },
    }


def _lose_rows(root: Path) -> None:
    with contextlib.closing(sqlite3.connect(root / "shop.db")) as conn, conn:
        conn.execute("delete from orders where id > 3")


class TestDatabaseFingerprint:
    def test_recorded_at_backup_and_compared_after_restore(self, tmp_path):
        """The source's fingerprints go with the point; an intact restore matches them."""
        policy, target = _backed_up(tmp_path, **_db_target(tmp_path))
        (point,) = list(target.list_points())
        assert "5" == point.tags["fingerprint:orders"]
        assert point.tags["fingerprint:totals"].startswith("sha256:")
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": target}, notifiers=[])
        probe = _probe(result, "fingerprint: queries")
        assert (
            "pass",
            [
                ("orders", "5", "5"),
                ("totals", point.tags["fingerprint:totals"], point.tags["fingerprint:totals"]),
            ],
        ) == (
            result.status.value,
            [(c["name"], c["expected"], c["observed"]) for c in probe["evidence"]["comparisons"]],
        )
        assert _probe(result, "has-orders")["ok"]

    def test_rows_lost_fail_with_both_sides(self, tmp_path):
        """A restored database that lost rows fails; the evidence has both sides."""
        policy, target = _backed_up(tmp_path, **_db_target(tmp_path))
        tampering = _tampering(target, _lose_rows)
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": tampering}, notifiers=[])
        probe = _probe(result, "fingerprint: queries")
        orders = probe["evidence"]["comparisons"][0]
        assert ("fail", "5", "3", False) == (
            result.status.value,
            orders["expected"],
            orders["observed"],
            orders["ok"],
        )
        assert "orders: expected 5 (backup time), observed 3 after the restore" in probe["details"]

    def test_tolerance(self, tmp_path):
        """Within the declared tolerance a count that moved still passes; beyond it, it fails."""
        target = _db_target(tmp_path)
        target["fingerprint"]["queries"] = [  # type: ignore[index]
            {"name": "orders", "query": "select count(*) from orders", "tolerance": "40%"},
            {"name": "orders-abs", "query": "select count(*) from orders", "tolerance": 1},
        ]
        policy, built = _backed_up(tmp_path, **target)
        tampering = _tampering(built, _lose_rows)
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": tampering}, notifiers=[])
        comparisons = _probe(result, "fingerprint: queries")["evidence"]["comparisons"]
        assert [("orders", True), ("orders-abs", False)] == [
            (c["name"], c["ok"]) for c in comparisons
        ]

    def test_unreachable_source_does_not_fail_the_backup(self, tmp_path):
        """No source: the backup is taken, the point says why, and the restore test fails."""
        target = _db_target(tmp_path)
        target["fingerprint"]["source"] = str(tmp_path / "missing" / "shop.db")  # type: ignore[index]
        policy, built = _backed_up(tmp_path, **target)
        (point,) = list(built.list_points())
        assert "orders" in point.tags["fingerprint-error"]
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": built}, notifiers=[])
        assert (
            "no fingerprint recorded at backup time"
            in _probe(result, "fingerprint: queries")["details"]
        )
        assert "fail" == result.status.value


class TestSecrets:
    def test_password_never_printed(self, tmp_path, monkeypatch):
        """The referenced password reaches the driver only, never the evidence or reprs."""
        monkeypatch.setenv("SHOP_DB_PASSWORD", SECRET)
        seen: list[str] = []

        def failing_connect(dsn: str) -> Any:
            seen.append(dsn)
            raise ConnectionError(f"could not connect to {dsn}: password {SECRET} rejected")

        monkeypatch.setattr("backuppolicy.checks._declared._driver", lambda name: failing_connect)
        policy, target = _backed_up(
            tmp_path,
            probes={
                "database": {
                    "dsn": "postgresql://app:{password}@{endpoint}/shop",
                    "password": {"env": "SHOP_DB_PASSWORD"},
                    "driver": "psycopg:connect",
                },
                "sql": [{"name": "one", "query": "select 1", "expect": 1}],
            },
        )
        (result,) = restore_test(policy, now=NOW, targets={"shop-data": target}, notifiers=[])
        shown = json.dumps(result.to_dict(), default=str) + repr(policy) + str(policy.to_dict())
        shown += repr(policy.target("shop-data"))
        assert SECRET in seen[0]
        assert (SECRET in shown, "fail") == (False, result.status.value)


# --------------------------------------------------------------------------------------------
# Regression (issue 12): probes could be declared only in Python, so a restore test run by the
# CLI, cron or Lambda proved no more than "it restored".


class TestSameProofEverywhere:
    def _file(self, tmp_path: Path) -> Path:
        data = _policy(
            tmp_path,
            probes={
                "sql": [{"name": "orders", "query": "select count(*) from orders", "expect": 99}],
                "database": "{endpoint}/shop.db",
            },
        )
        path = tmp_path / "policy.json"
        path.write_text(json.dumps(data))
        yaml_path = tmp_path / "policy.yaml"
        yaml_path.write_text(json.dumps(data))  # JSON is YAML
        return yaml_path

    def test_cli_runs_file_declared_probes(self, tmp_path, monkeypatch):
        """backuppolicy restore-test runs the policy file's probes: a wrong count exits 1."""
        monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)
        path = self._file(tmp_path)
        now = ["--policy", str(path), "--now", "2026-11-26T06:00:00Z"]
        assert 0 == cli.main(["backup", *now], out=io.StringIO(), err=io.StringIO())
        out = io.StringIO()
        code = cli.main(["restore-test", "--json", *now], out=out, err=io.StringIO())
        (result,) = json.loads(out.getvalue())
        names = [p["name"] for p in result["evidence"]["probes"]]
        assert (1, ["fingerprint: manifest", "orders"]) == (code, names)
        assert "expected 99 (got 5)" in result["details"]

    def test_lambda_runs_file_declared_probes(self, tmp_path, monkeypatch):
        """The Lambda handler's restore-test runs the same probes, and fails the invocation."""
        monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)
        path = self._file(tmp_path)
        event = {"policy": str(path), "now": "2026-11-26T06:00:00Z"}
        handler({**event, "action": "backup"})
        with pytest.raises(BackupPolicyError, match=r"expected 99 \(got 5\)"):
            handler({**event, "action": "restore-test", "log": str(tmp_path / "log.jsonl")})
        (entry,) = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
        assert ["fingerprint: manifest", "orders"] == [
            p["name"] for p in entry["evidence"]["probes"]
        ]

    def test_python_probes_are_added_to_the_declared(self, tmp_path):
        """probes= in Python runs after the policy file's probes, not instead of them."""
        policy, target = _backed_up(tmp_path, probes={"files": ["app.conf"]})
        (result,) = restore_test(
            policy,
            now=NOW,
            targets={"shop-data": target},
            probes={"shop-data": [lambda ctx: True]},
            notifiers=[],
        )
        assert ["fingerprint: manifest", "files", "<lambda>"] == [
            p["name"] for p in result.evidence["probes"]
        ]


def test_record_fingerprints_without_source_is_empty(tmp_path):
    """A target without fingerprint queries gets no fingerprint tags."""
    policy = Policy.from_dict(_policy(tmp_path, fingerprint={"sample": 2}))
    assert {} == record_fingerprints(policy.target("shop-data"))
