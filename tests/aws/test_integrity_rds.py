"""RDS integrity on the rolling schedule: each copy (off-site ones too) restored into isolation and probed.

moto runs no database engine: the restored instance is resolved to a local SQLite file that
stands in for it (`StaticEndpoint`), and the evidence says so. moto restores and deletes the
instances for real.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import moto
import pytest
import time_machine

from backuppolicy.aws import RdsInstance, RetryPolicy
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.probes import SqlProbe, StaticEndpoint
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckStatus
from backuppolicy.core.targets import Destination
from backuppolicy.workflows.testlog import TestLog
from backuppolicy.workflows.verify import integrity_due, restore_test

LOCAL, OFFSITE = "eu-west-2", "eu-west-1"
SESSION = boto3.Session(region_name=LOCAL)
FAST = RetryPolicy(sleep=lambda _seconds: None)


def _now() -> datetime:
    return datetime.now(UTC)


POLICY = Policy.from_dict(
    {
        "name": "web-apps",
        "schedule": {"every": "day", "at": "04:00"},
        "retention": {"max_age": "35d"},
        "tiers": [
            {"name": "local", "every": "day"},
            {"name": "offsite", "every": "week", "location": {"region": OFFSITE}},
        ],
        "targets": [
            {
                "name": "shop-db",
                "kind": "rds-instance",
                "application": "shop",
                "settings": {"db_instance_id": "shop-prod", "region": LOCAL},
            }
        ],
        "verification": {"integrity_covers_tiers": ["local", "offsite"]},
    }
)


@pytest.fixture(name="db")
def _db(monkeypatch: pytest.MonkeyPatch) -> Iterator[RdsInstance]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with moto.mock_aws():
        SESSION.client("rds").create_db_instance(
            DBInstanceIdentifier="shop-prod",
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            BackupRetentionPeriod=7,
        )
        yield RdsInstance(
            "shop-prod",
            name="shop-db",
            policy="web-apps",
            session=SESSION,
            region=LOCAL,
            copy_regions=[OFFSITE],
            retry=FAST,
            sleep=lambda _s: None,
            poll_interval=0,
        )


@pytest.fixture(name="stand_in")
def _stand_in(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table orders (id integer primary key, total integer)")
        conn.executemany("insert into orders (total) values (?)", [(10,), (20,), (30,)])
    conn.close()
    return path


def _probe(expect: int) -> SqlProbe:
    return SqlProbe("select count(*) from orders", expect=expect, connect=sqlite3.connect)


def _resolver(stand_in: Path) -> StaticEndpoint:
    return StaticEndpoint(
        str(stand_in), description="local SQLite stand-in (moto runs no database)"
    )


def _instances() -> list[str]:
    ids = []
    for region in (LOCAL, OFFSITE):
        found = SESSION.client("rds", region_name=region).describe_db_instances()["DBInstances"]
        ids += [i["DBInstanceIdentifier"] for i in found]
    return ids


class TestRdsIntegrity:
    def test_available_alone_is_not_a_pass(self, db):
        """Without a restore, status available is evidence of existence only: UNPROVEN."""
        point = db.create_backup()
        result = IntegrityCheck().verify(db, point, VerifyContext(now=_now()))
        assert CheckStatus.UNPROVEN == result.status

    def test_a_restore_without_probes_is_not_a_pass(self, db):
        """Restored and torn down but nothing probed: the data is unproven (UNPROVEN)."""
        point = db.create_backup()
        result = IntegrityCheck(restore_databases=True).verify(db, point, VerifyContext(now=_now()))
        assert (CheckStatus.UNPROVEN, "restore-into-isolation+probes") == (
            result.status,
            result.evidence["method"],
        )

    def test_every_copy_is_restored_and_probed_on_the_schedule(self, db, stand_in):
        """Over a window, the local snapshot and its off-site copy each pass a restore+probe."""
        start = _now()
        point = db.create_backup()
        copy = db.copy(point, Destination(tier="offsite", region=OFFSITE))
        log = TestLog.open("memory://", ran_by="test")
        results = []
        for day in range(35):
            with time_machine.travel(start + timedelta(days=day), tick=False):
                results += integrity_due(
                    POLICY,
                    now=start + timedelta(days=day),
                    targets={"shop-db": db},
                    log=log,
                    probes={"shop-db": [_probe(3)]},
                    endpoint_resolver=_resolver(stand_in),
                    notifiers=[],
                )
        by_point = {r.point_id: r for r in results}
        assert {point.id, copy.id} <= set(by_point)
        assert [CheckStatus.PASS, CheckStatus.PASS] == [
            by_point[point.id].status,
            by_point[copy.id].status,
        ]
        restored = by_point[copy.id].evidence["restore"]
        assert (OFFSITE, True) == (copy.details["region"], restored["torn_down"])
        assert str(stand_in) == restored["probe_endpoint"]  # says where the probe really ran
        assert ["shop-prod"] == _instances()

    def test_a_copy_whose_probe_fails_is_a_fail(self, db, stand_in):
        """Lost rows: the integrity restore of the copy fails."""
        point = db.create_backup()
        check = IntegrityCheck(restore_databases=True, probes=[_probe(4)])
        ctx = VerifyContext(now=_now(), endpoint_resolver=_resolver(stand_in))
        assert CheckStatus.FAIL == check.verify(db, point, ctx).status


class TestRestoreTestPoint:
    def test_restore_test_takes_a_point(self, db, stand_in):
        """restore_test(points=) restores that point (here the off-site copy), not the newest."""
        point = db.create_backup()
        copy = db.copy(point, Destination(tier="offsite", region=OFFSITE))
        [result] = restore_test(
            POLICY,
            now=_now(),
            targets={"shop-db": db},
            probes={"shop-db": [_probe(3)]},
            endpoint_resolver=_resolver(stand_in),
            points={"shop-db": copy},
            notifiers=[],
        )
        assert (CheckStatus.PASS, copy.id) == (result.status, result.point_id)
