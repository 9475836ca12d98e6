"""End to end: ``python -m backuppolicy`` as a subprocess against moto's ThreadedMotoServer.

The policy file has an RDS instance (on the moto server, reached with ``--endpoint-url``) and
a directory of configuration files (archives in a store under ``tmp_path``). The subprocess gets
fake credentials in its environment, as a cron job would get real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(name="server")
def _server(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> str:
    """The moto server's URL, without EC2's default AMIs (set before the reset that follows)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return endpoint_url


@pytest.fixture(name="policy_file")
def _policy_file(server: str, tmp_path: Path) -> Path:
    """A policy with one RDS instance on the server and one directory, and the resources."""
    rds = boto3.client("rds", region_name=REGION, endpoint_url=server)
    rds.create_db_instance(
        DBInstanceIdentifier="orders",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="secret-password-1",
        BackupRetentionPeriod=0,
    )
    config = tmp_path / "etc-shop"
    config.mkdir()
    (config / "shop.conf").write_text("workers = 4\n")
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""\
name: shop
schedule: {{every: day, at: "04:00"}}
retention: {{max_age: 35d}}
tiers:
  - name: local
    every: day
    location: {{store: {tmp_path / "store"}}}
targets:
  - name: orders-db
    kind: rds-instance
    settings: {{db_instance_id: orders, region: {REGION}}}
  - name: shop-config
    kind: directory
    settings: {{path: {config}}}
"""
    )
    return path


@pytest.fixture(name="cli")
def _cli(server: str, policy_file: Path, tmp_path: Path) -> Any:
    """Run ``python -m backuppolicy <command> --policy FILE --endpoint-url URL ...``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "BACKUPPOLICY_"))
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )

    def run(
        command: str, *args: str, policy: Path = policy_file
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "backuppolicy", command, "--policy", str(policy)]
        return subprocess.run(
            [*argv, "--endpoint-url", server, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    return run


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


class TestCliEndToEnd:
    @pytest.mark.slow
    def test_backup_hold_prune_and_list(self, cli, server, tmp_path):
        """backup (twice, then forced), a legal hold, prune --apply 40 days on, holds."""
        t0 = datetime.now(UTC).replace(microsecond=0)

        first = cli("backup", "--now", _iso(t0), "--json")
        again = cli("backup", "--now", _iso(t0), "--json")
        forced = cli("backup", "--now", _iso(t0 + timedelta(hours=1)), "--force", "--json")

        made = {r["target"]: r["point"] for r in _json(first)["runs"]}
        assert (0, 0, 0) == (first.returncode, again.returncode, forced.returncode)
        assert {"orders-db", "shop-config"} == {t for t, p in made.items() if p}
        assert [None, None] == [r["point"] for r in _json(again)["runs"]], "duplicates"
        newer = {r["target"]: r["point"] for r in _json(forced)["runs"]}
        assert all(newer[t] not in (None, made[t]) for t in made)

        placed = cli(
            "holds",
            "--target",
            "orders-db",
            "--place",
            made["orders-db"],
            "--reason",
            "litigation",
            "--reference",
            "case-17",
            "--json",
        )
        assert (0, {"id": made["orders-db"], "held": True}) == (placed.returncode, _json(placed))

        dry = cli("prune", "--now", _iso(t0 + timedelta(days=40)), "--json")
        pruned = cli("prune", "--now", _iso(t0 + timedelta(days=40)), "--apply", "--yes", "--json")

        assert [made["shop-config"]] == [o["id"] for o in _json(dry)["apply"]["outcomes"]]
        assert 0 == pruned.returncode
        outcomes = _json(pruned)["apply"]["outcomes"]
        assert [(made["shop-config"], "deleted")] == [(o["id"], o["action"]) for o in outcomes]

        rds = boto3.client("rds", region_name=REGION, endpoint_url=server)
        snapshots = {
            s["DBSnapshotIdentifier"]
            for s in rds.describe_db_snapshots(DBInstanceIdentifier="orders")["DBSnapshots"]
        }
        assert {made["orders-db"], newer["orders-db"]} <= snapshots
        archives = sorted(p.name for p in (tmp_path / "store").glob("*.tar.gz"))
        assert [f"{newer['shop-config']}.tar.gz"] == archives

        listed = cli("holds", "--json")
        assert [(made["orders-db"], "case-17")] == [
            (h["id"], h["reference"]) for h in _json(listed)
        ]

    def test_bad_policy_file_is_one_line_and_exit_2(self, cli, tmp_path):
        """A missing policy file: exit 2, one error line naming it, no traceback."""
        missing = tmp_path / "missing.yaml"
        result = cli("backup", policy=missing)
        assert 2 == result.returncode
        assert 1 == len(result.stderr.splitlines()), result.stderr
        assert str(missing) in result.stderr
        assert "" == result.stdout
