"""End to end: Ec2Instance and EbsVolume against moto's ThreadedMotoServer over real HTTP.

Each test runs create -> list -> copy to eu-west-1 -> delete -> restore through the
``endpoint_url`` of the server, as a user pointing the library at LocalStack would.
"""

from __future__ import annotations

import random
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.ec2 import KIND_EBS_SNAPSHOT, KIND_INSTANCE_BACKUP, EbsVolume, Ec2Instance
from backuppolicy.core.exceptions import ProtectedPointError
from backuppolicy.core.model import Status
from backuppolicy.core.targets import Destination, IsolationProfile

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
TOKENS = ("e2e-1", "e2e-2")  # idempotency tokens
KEY = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000002"


@pytest.fixture(name="session", scope="module")
def _session() -> boto3.Session:
    """One session for the module (a new one re-reads botocore's models for every target)."""
    return boto3.Session(region_name=REGION)


@pytest.fixture(name="no_default_amis")
def _no_default_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep moto's ~300 default AMIs (and their snapshots) out of the server's EC2 backends.

    The server runs in this process and rebuilds its backends when it is reset (after each
    test, by ``endpoint_url``), reading this variable: set it before and keep it until after.
    """
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(name="ec2")
def _ec2(no_default_amis: None, endpoint_url: str, session: boto3.Session) -> Any:
    """An EC2 client on the moto server."""
    return session.client("ec2", endpoint_url=endpoint_url)


@pytest.fixture(name="instance_id")
def _instance_id(ec2: Any) -> str:
    reservation = ec2.run_instances(
        ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    data = ec2.create_volume(Size=4, AvailabilityZone=f"{REGION}a")
    ec2.attach_volume(VolumeId=data["VolumeId"], InstanceId=instance_id, Device="/dev/sdf")
    return instance_id


@pytest.fixture(name="volume_id")
def _volume_id(ec2: Any) -> str:
    volume_id: str = ec2.create_volume(Size=2, AvailabilityZone=f"{REGION}a")["VolumeId"]
    return volume_id


def _target(
    kind: str, ids: dict[str, str], endpoint_url: str, session: boto3.Session, **kwargs: Any
) -> Ec2Instance | EbsVolume:
    common: dict[str, Any] = {
        "name": f"e2e-{kind}",
        "policy": "e2e",
        "copy_regions": [OTHER_REGION],
        "session": session,
        "endpoint_url": endpoint_url,
        **kwargs,
    }
    if kind == "instance":
        return Ec2Instance(ids["instance"], **common)
    return EbsVolume(ids["volume"], **common)


@pytest.fixture(name="ids")
def _ids(instance_id: str, volume_id: str) -> dict[str, str]:
    return {"instance": instance_id, "volume": volume_id}


EXPECTED_KIND = {"instance": KIND_INSTANCE_BACKUP, "volume": KIND_EBS_SNAPSHOT}


class TestLifecycle:
    """create -> list -> copy -> delete -> restore over HTTP, for both targets."""

    @pytest.mark.parametrize("kind", ["instance", "volume"])
    def test_lifecycle(
        self, ec2: Any, ids: dict[str, str], endpoint_url: str, session: boto3.Session, kind: str
    ):
        """Every step works against the server and leaves nothing behind."""
        target = _target(kind, ids, endpoint_url, session)
        first = target.create_backup(reason="manual", token=TOKENS[0])
        second = target.create_backup(token=TOKENS[1])
        assert first.id == target.create_backup(reason="manual", token=TOKENS[0]).id

        listed = {p.id: p for p in target.list_points()}
        assert {first.id, second.id} == set(listed)
        assert {EXPECTED_KIND[kind]} == {p.kind for p in listed.values()}
        assert {(True, Status.COMPLETED)} == {(p.managed, p.status) for p in listed.values()}

        copy = target.copy(listed[first.id], Destination(region=OTHER_REGION, kms_key_id=KEY))
        assert (True, "offsite", f"aws:123456789012:{OTHER_REGION}") == (
            copy.encrypted,
            copy.tier,
            copy.location,
        )
        assert {first.id, second.id, copy.id} == {p.id for p in target.list_points()}

        target.delete(copy)
        target.delete(listed[first.id])
        assert [second.id] == [p.id for p in target.list_points()]

        volumes_before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
        with target.restore(
            listed[second.id], IsolationProfile(availability_zone=f"{REGION}b")
        ) as restored:
            ids_made = [v["volume_id"] for v in restored.details["volumes"]]
            made = ec2.describe_volumes(VolumeIds=ids_made)["Volumes"]
            assert {"available"} == {v["State"] for v in made}
        assert volumes_before == {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}

    def test_foreign_snapshot_kept(
        self, ec2: Any, ids: dict[str, str], endpoint_url: str, session: boto3.Session
    ):
        """A snapshot of the volume made outside the library is listed unmanaged and never deleted."""
        target = _target("volume", ids, endpoint_url, session)
        theirs = ec2.create_snapshot(VolumeId=ids["volume"])["SnapshotId"]
        (point,) = target.list_points()
        assert (theirs, False) == (point.id, point.managed)
        with pytest.raises(ProtectedPointError):
            target.delete(point.evolve(managed=True))
        kept = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [ids["volume"]]}])
        assert [theirs] == [s["SnapshotId"] for s in kept["Snapshots"]]


class TestFaults:
    """Over HTTP, a third of the EC2 calls fail transiently and everything still completes."""

    @pytest.mark.parametrize("kind", ["instance", "volume"])
    def test_lifecycle_with_faults(
        self, ec2: Any, ids: dict[str, str], endpoint_url: str, session: boto3.Session, kind: str
    ):
        """Create, copy and delete finish; each snapshot is deleted exactly once."""
        rng = random.Random(7)  # noqa: S311 - deterministic fault schedule
        deleted: list[str] = []

        def fault(model: Any, params: dict[str, Any], **_kwargs: Any) -> Any:
            if rng.random() < 0.3:
                code, status = rng.choice([("RequestLimitExceeded", 503), ("InternalError", 500)])
                parsed = {
                    "Error": {"Code": code, "Message": "injected"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                }
                return AWSResponse(endpoint_url, status, {}, None), parsed
            if model.name == "DeleteSnapshot":
                deleted.append(params["body"]["SnapshotId"])
            return None

        target = _target(
            kind,
            ids,
            endpoint_url,
            session,
            account_id="123456789012",
            retry=RetryPolicy(sleep=lambda _s: None, max_attempts=12),
        )
        for region in (REGION, OTHER_REGION):
            target.client("ec2", region=region).meta.events.register("before-call.ec2.*", fault)
        points = [target.create_backup(token=f"f-{n}") for n in range(2)]
        target.copy(points[0], Destination(region=OTHER_REGION, kms_key_id=KEY))
        listed = list(target.list_points())
        for point in listed:
            target.delete(point)
        assert sorted(s for p in listed for s in p.details["snapshot_ids"]) == sorted(deleted)
        assert [] == list(target.list_points())
