"""End to end: RdsInstance and AuroraCluster against moto's ThreadedMotoServer over real HTTP.

create -> list -> copy to eu-west-1 -> plan (MaxAge 35 days) -> delete -> restore, through
the ``endpoint_url`` of the server, as a user pointing the library at LocalStack would.
"""

# "token" is an idempotency token, not a password.

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.rds import AuroraCluster, BackupSettings, RdsInstance
from backuppolicy.core.exceptions import ProtectedPointError
from backuppolicy.core.model import LegalHold
from backuppolicy.core.retention import MaxAge
from backuppolicy.core.targets import Destination, IsolationProfile

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ACCOUNT = "123456789012"


def _no_sleep(_seconds: float) -> None:
    """Retries and restore polls never wait in tests."""


@pytest.fixture(name="session", scope="module")
def _session() -> boto3.Session:
    """One session for the module (a new one re-reads botocore's models for every target)."""
    return boto3.Session(region_name=REGION)


@pytest.fixture(name="server")
def _server(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> str:
    """The moto server's URL, without EC2's default AMIs (RDS touches EC2 to check networks).

    The server runs in this process and rebuilds its backends when it is reset after each
    test, reading this variable: set it before and keep it until after.
    """
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    return endpoint_url


@pytest.fixture(name="rds")
def _rds(server: str, session: boto3.Session) -> Any:
    return session.client("rds", endpoint_url=server)


@pytest.fixture(name="destination")
def _destination(server: str, session: boto3.Session) -> Destination:
    kms = session.client("kms", region_name=OTHER_REGION, endpoint_url=server)
    return Destination(region=OTHER_REGION, kms_key_id=kms.create_key()["KeyMetadata"]["Arn"])


def _make(kind: str, rds: Any, server: str, session: boto3.Session) -> RdsInstance | AuroraCluster:
    common: dict[str, Any] = {
        "name": f"e2e-{kind}",
        "policy": "e2e",
        "region": REGION,
        "copy_regions": [OTHER_REGION],
        "session": session,
        "endpoint_url": server,
        "retry": RetryPolicy(sleep=_no_sleep),
        "sleep": _no_sleep,
    }
    if kind == "instance":
        rds.create_db_instance(
            DBInstanceIdentifier="orders-db",
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="admin",
            MasterUserPassword="password1",
            AllocatedStorage=20,
            StorageEncrypted=True,
            BackupRetentionPeriod=7,
        )
        return RdsInstance("orders-db", **common)
    rds.create_db_cluster(
        DBClusterIdentifier="orders",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password1",
        StorageEncrypted=True,
        BackupRetentionPeriod=7,
    )
    return AuroraCluster("orders", **common)


def _backdate(target: RdsInstance | AuroraCluster, snapshot_id: str, when: datetime) -> None:
    """Backdate a snapshot by editing moto's backend object (the server runs in this process).

    moto stamps snapshots with the wall clock and the API cannot change that.
    """
    from moto.rds.models import rds_backends

    backend = rds_backends[ACCOUNT][REGION]
    snaps = (
        backend.cluster_snapshots
        if isinstance(target, AuroraCluster)
        else backend.database_snapshots
    )
    snapshot = snaps[snapshot_id]
    snapshot.created = when.astimezone(UTC).replace(tzinfo=None)
    # For a snapshot that is no copy, AWS reports OriginalSnapshotCreateTime equal to it.
    snapshot.original_snapshot_create_time = snapshot.created


def _exists(rds: Any, kind: str, identifier: str) -> bool:
    try:
        if kind == "aurora-cluster":
            rds.describe_db_clusters(DBClusterIdentifier=identifier)
        else:
            rds.describe_db_instances(DBInstanceIdentifier=identifier)
    except rds.exceptions.ClientError:
        return False
    return True


@pytest.mark.parametrize("kind", ["instance", "cluster"])
class TestLifecycle:
    def test_create_list_copy_plan_delete_restore(self, kind, rds, server, session, destination):
        """The whole life of RDS backups works over HTTP, and the plan deletes only the old ones."""
        target = _make(kind, rds, server, session)
        points = [target.create_backup(reason="e2e", token=f"day-{i}") for i in range(3)]
        assert points == [target.create_backup(reason="e2e", token=f"day-{i}") for i in range(3)]
        now = datetime.now(UTC) + timedelta(seconds=1)  # after the creates, as a real run
        _backdate(target, points[1].id, now - timedelta(days=40))
        _backdate(target, points[2].id, now - timedelta(days=50))

        listed = list(target.list_points())
        assert {p.id for p in points} == {p.id for p in listed if p.managed}
        assert [False] == [p.managed for p in listed if p.details["snapshot_type"] == "automated"]

        copy = target.copy(points[0], destination)
        assert (OTHER_REGION, "offsite", True) == (copy.details["region"], copy.tier, copy.managed)
        assert destination.kms_key_id == copy.details["kms_key_id"]

        plan = MaxAge(days=35).plan(target.list_points(), now=now)
        assert {points[1].id, points[2].id} == {p.id for p in plan.delete}
        assert [points[1].id] == target.delete_many(p for p in plan.delete if p.id == points[1].id)
        target.delete(next(p for p in plan.delete if p.id == points[2].id))
        remaining = {(p.id, p.tier) for p in target.list_points() if p.managed}
        assert {(points[0].id, "local"), (copy.id, "offsite")} == remaining

        with target.restore(points[0], IsolationProfile(name_prefix="e2e-")) as restored:
            assert _exists(rds, restored.kind, restored.id)
            assert restored.endpoint
        assert not _exists(rds, restored.kind, restored.id)

    def test_hold_blocks_delete(self, kind, rds, server, session):
        """A legal hold placed over HTTP is read back and blocks the delete."""
        target = _make(kind, rds, server, session)
        point = target.create_backup(token="held")
        target.place_hold(point, LegalHold(reason="audit | 2026", reference="case-9"))
        with pytest.raises(ProtectedPointError, match="legal hold"):
            target.delete(point)
        fresh = target.refresh(point)
        assert fresh is not None
        assert "audit | 2026" == fresh.legal_hold.reason  # type: ignore[union-attr]

    def test_settings_enforced(self, kind, rds, server, session):
        """Drift is reported, then enforced over HTTP."""
        target = _make(kind, rds, server, session)
        expected = BackupSettings(
            retention_days=35, backup_window="04:00-05:00", copy_tags_to_snapshot=True
        )
        assert ["retention_days", "backup_window", "copy_tags_to_snapshot"] == [
            d.field for d in target.drift(expected)
        ]
        target.enforce(expected, apply=True)
        assert expected == target.settings()

    def test_point_in_time_restore(self, kind, rds, server, session):
        """A point-in-time restore over HTTP is torn down after the block."""
        target = _make(kind, rds, server, session)
        with target.restore_to_point_in_time(datetime.now(UTC) - timedelta(minutes=1)) as restored:
            assert _exists(rds, restored.kind, restored.id)
        assert not _exists(rds, restored.kind, restored.id)
