"""End to end over moto's ThreadedMotoServer: a recovery that crashes half-way and is resumed.

The plan restores an RDS database (swapped into place), an S3 prefix (in place) and a directory,
checks the database, then switches traffic. The switch hook "crashes" the first time (a
BaseException, as if the process died); the second run with the same state file finishes the
plan without repeating a finished step: no second restored database, no second aside copy.
"""

# "token" is an idempotency token, not a password.

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.rds import RdsInstance
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.local import Directory, DirectoryStore
from backuppolicy.workflows.recovery import RecoveryPlan

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


def _no_sleep(_seconds: float) -> None:
    """Retries and polls never wait in tests."""


class _Crash(BaseException):
    """The process dies (not an Exception: no step catches it as a failure)."""


@pytest.fixture(name="server")
def _server(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> str:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return endpoint_url


def _world(server: str, tmp_path: Path) -> dict[str, Any]:
    # The server runs in this process: travel back two hours for the backups, so that the
    # vandalism after them falls in a later second (S3 versions count by LastModified second).
    with time_machine.travel(datetime.now(UTC) - timedelta(hours=2), tick=True):
        world = _backed_up(server, tmp_path)
    world["s3"].put_object(Bucket="assets", Key="img/logo.png", Body=b"vandalised")
    (tmp_path / "etc-shop" / "shop.conf").write_text("workers = broken\n")
    return world


def _backed_up(server: str, tmp_path: Path) -> dict[str, Any]:
    session = boto3.Session(region_name=REGION)
    rds = session.client("rds", endpoint_url=server)
    rds.create_db_instance(
        DBInstanceIdentifier="shop-prod",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password-123",
    )
    s3 = session.client("s3", endpoint_url=server)
    s3.create_bucket(Bucket="assets")
    s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="assets", Key="img/logo.png", Body=b"v1")
    common: dict[str, Any] = {
        "session": session,
        "endpoint_url": server,
        "region": REGION,
        "retry": RetryPolicy(sleep=_no_sleep),
    }
    db = RdsInstance("shop-prod", name="shop-db", sleep=_no_sleep, **common)
    assets = S3Bucket("assets", prefix="img/", name="assets", account_id="123456789012", **common)
    source = tmp_path / "etc-shop"
    source.mkdir()
    (source / "shop.conf").write_text("workers = 4\n")
    config = Directory(source, name="shop-config", store=DirectoryStore(tmp_path / "store"))
    db.create_backup(token="daily")
    assets.create_backup(token="daily")
    config.create_backup(token="daily")
    return {
        "rds": rds,
        "s3": s3,
        "targets": {"shop-db": db, "assets": assets, "shop-config": config},
    }


PLAN = {
    "name": "shop-recovery",
    "application": "shop",
    "steps": [
        {"id": "restore-db", "kind": "restore-database", "target": "shop-db", "swap": True},
        {"id": "restore-assets", "kind": "restore-s3", "target": "assets"},
        {"id": "restore-config", "kind": "restore-directory", "target": "shop-config"},
        {
            "id": "check-db",
            "kind": "health-check",
            "needs": ["restore-db"],
            "endpoint": "step:restore-db",
            "check": {"kind": "callable", "function": "db_up"},
            "attempts": 2,
        },
        {
            "id": "switch",
            "kind": "switch-traffic",
            "hook": "switch",
            "needs": ["check-db", "restore-assets", "restore-config"],
        },
    ],
}


def test_crash_in_the_middle_and_resume(server: str, tmp_path: Path) -> None:
    """A crash leaves finished steps in the state file; the resumed run completes without repeats."""
    world = _world(server, tmp_path)
    crashes = [True]
    endpoints: list[str | None] = []

    def switch(_context: Any) -> None:
        if crashes:
            crashes.pop()
            raise _Crash

    def db_up(endpoint: str | None) -> bool:
        endpoints.append(endpoint)
        return bool(endpoint)

    plan = RecoveryPlan.from_dict(PLAN, hooks={"switch": switch, "db_up": db_up})
    state = tmp_path / "state.json"
    now = datetime.now(UTC) + timedelta(minutes=1)
    with pytest.raises(_Crash):
        plan.execute(
            confirm=True, state_file=state, now=now, targets=world["targets"], sleep=_no_sleep
        )
    finished = sorted(json.loads(state.read_text())["steps"])
    assert ["check-db", "restore-assets", "restore-config", "restore-db"] == finished
    stamp = f"{now:%Y%m%dt%H%M%Sz}"
    instances = sorted(
        i["DBInstanceIdentifier"] for i in world["rds"].describe_db_instances()["DBInstances"]
    )
    assert ["shop-prod", f"shop-prod-before-restore-{stamp}"] == instances

    report = plan.execute(confirm=True, state_file=state, targets=world["targets"], sleep=_no_sleep)
    assert {
        "restore-db": "resumed",
        "restore-assets": "resumed",
        "restore-config": "resumed",
        "check-db": "resumed",
        "switch": "done",
    } == {s.id: s.status.value for s in report.steps}
    again = sorted(
        i["DBInstanceIdentifier"] for i in world["rds"].describe_db_instances()["DBInstances"]
    )
    assert instances == again
    body = world["s3"].get_object(Bucket="assets", Key="img/logo.png")["Body"].read()
    assert b"v1" == body
    assert "workers = 4\n" == (tmp_path / "etc-shop" / "shop.conf").read_text()
    asides = sorted(p.name for p in tmp_path.iterdir() if "before-restore" in p.name)
    assert [f"etc-shop.before-restore-{stamp}"] == asides
    assert 1 == len(endpoints)  # check-db ran once, in the first run
    assert report.rpo is not None
