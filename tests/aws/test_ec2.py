"""EC2 and EBS targets: Ec2Instance (grouped multi-volume backups) and EbsVolume.

Most tests run against moto in-process (the ``aws`` fixture). Where moto is too lenient
or too simple, a real boto3 client wrapped in `botocore.stub.Stubber` is injected through
``clients=``: moto returns describe_snapshots in one page (so multi-page listings are
scripted), never throttles, never denies, only raises InvalidSnapshot.InUse for snapshots
made by CreateImage and does not implement the ``block-device-mapping.snapshot-id``
filter of DescribeImages.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.ec2 import (
    KIND_EBS_SNAPSHOT,
    KIND_INSTANCE_BACKUP,
    TAG_GROUP,
    TAG_GROUP_SIZE,
    TAG_SOURCE_SNAPSHOT,
    EbsVolume,
    Ec2Instance,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PermissionDeniedError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_TARGET,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
)
from backuppolicy.core.targets import (
    BackupTarget,
    Destination,
    IsolationProfile,
    RestoredResource,
    get_target_class,
)
from backuppolicy.testing import BackupTargetContract

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
KEY = f"arn:aws:kms:{OTHER_REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000001"
START = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
T1 = "t-1"  # idempotency tokens
T2 = "t-2"


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(name="session", scope="module")
def _session() -> boto3.Session:
    """One boto3 session for the module: each new session re-reads botocore's models.

    That costs about 0.7 s a target here; moto intercepts this session's clients all the same.
    """
    import moto.core.models  # noqa: F401 - registers moto's botocore hook first

    return boto3.Session(region_name=REGION)


@pytest.fixture(name="no_default_amis")
def _no_default_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep moto's ~300 default AMIs (and their snapshots) out of EC2's backends.

    moto reads the variable when it (re)builds a backend, also when ``mock_aws`` starts
    and stops, so it must be set before the ``aws`` fixture and stay set until after it.
    """
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture(name="ec2")
def _ec2(no_default_amis: None, aws: None, session: boto3.Session) -> Any:
    """An EC2 client on moto."""
    return session.client("ec2")


@pytest.fixture(name="slept")
def _slept() -> list[float]:
    return []


@pytest.fixture(name="retry")
def _retry(slept: list[float]) -> RetryPolicy:
    return RetryPolicy(sleep=slept.append)


@pytest.fixture(name="instance_id")
def _instance_id(ec2: Any) -> str:
    """An instance with its boot volume (/dev/sda1) and one data volume (/dev/sdf)."""
    reservation = ec2.run_instances(
        ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    data = ec2.create_volume(Size=10, AvailabilityZone=f"{REGION}a")
    ec2.attach_volume(VolumeId=data["VolumeId"], InstanceId=instance_id, Device="/dev/sdf")
    return instance_id


@pytest.fixture(name="volumes")
def _volumes(ec2: Any, instance_id: str) -> dict[str, str]:
    """Device name -> volume id of the instance."""
    described = ec2.describe_instances(InstanceIds=[instance_id])
    mappings = described["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
    return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in mappings}


@pytest.fixture(name="volume_id")
def _volume_id(ec2: Any) -> str:
    volume_id: str = ec2.create_volume(Size=5, AvailabilityZone=f"{REGION}a")["VolumeId"]
    return volume_id


@pytest.fixture(name="web")
def _web(instance_id: str, retry: RetryPolicy, session: boto3.Session) -> Ec2Instance:
    return Ec2Instance(
        instance_id,
        name="web",
        policy="prod",
        copy_regions=[OTHER_REGION],
        retry=retry,
        session=session,
    )


@pytest.fixture(name="data")
def _data(volume_id: str, retry: RetryPolicy, session: boto3.Session) -> EbsVolume:
    return EbsVolume(
        volume_id,
        name="data",
        policy="prod",
        copy_regions=[OTHER_REGION],
        retry=retry,
        session=session,
    )


def _snapshots(ec2: Any, **params: Any) -> list[dict[str, Any]]:
    return list(ec2.describe_snapshots(**params)["Snapshots"])


def _tags(snapshot: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}


_STUB_SESSION = boto3.Session(region_name=REGION)


def _stubbed(region: str = REGION) -> tuple[Any, Stubber]:
    client = _STUB_SESSION.client("ec2", region_name=region)
    return client, Stubber(client)


def _snapshot_answer(
    snapshot_id: str, *, volume_id: str = "vol-1", state: str = "completed", **tags: str
) -> dict[str, Any]:
    return {
        "SnapshotId": snapshot_id,
        "VolumeId": volume_id,
        "State": state,
        "StartTime": START,
        "OwnerId": ACCOUNT,
        "VolumeSize": 8,
        "Encrypted": False,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


OURS = {TAG_POLICY: "prod", TAG_TARGET: "data"}


def _ownership_filters(target: str = "data") -> list[dict[str, Any]]:
    return [
        {"Name": f"tag:{TAG_POLICY}", "Values": ["prod"]},
        {"Name": f"tag:{TAG_TARGET}", "Values": [target]},
    ]


# -- the contract suite -------------------------------------------------------------------


def _volume_exists(ec2: Any, restored: RestoredResource) -> bool:
    ids = [str(v["volume_id"]) for v in restored.details["volumes"]]
    found = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": ids}])["Volumes"]
    return bool(found)


class TestEc2InstanceContract(BackupTargetContract):
    """Ec2Instance passes the BackupTarget contract on moto."""

    @pytest.fixture(name="target")
    def _contract_target(self, web: Ec2Instance) -> Ec2Instance:
        return web

    @pytest.fixture(name="destination")
    def _contract_destination(self) -> Destination:
        return Destination(tier="offsite", region=OTHER_REGION, kms_key_id=KEY)

    @pytest.fixture(name="foreign_point")
    def _contract_foreign(self, ec2: Any, volumes: dict[str, str]) -> RecoveryPoint:
        snapshot = ec2.create_snapshot(VolumeId=volumes["/dev/sdf"])
        return RecoveryPoint(
            id=snapshot["SnapshotId"], target="web", created_at=START, managed=False
        )

    @pytest.fixture(name="isolation")
    def _contract_isolation(self) -> IsolationProfile:
        return IsolationProfile(availability_zone=f"{REGION}b")

    def restored_exists(self, target: BackupTarget, restored: RestoredResource) -> bool:
        """Whether the restored volumes still exist in moto."""
        return _volume_exists(boto3.client("ec2", region_name=REGION), restored)


class TestEbsVolumeContract(BackupTargetContract):
    """EbsVolume passes the BackupTarget contract on moto."""

    @pytest.fixture(name="target")
    def _contract_target(self, data: EbsVolume) -> EbsVolume:
        return data

    @pytest.fixture(name="destination")
    def _contract_destination(self) -> Destination:
        return Destination(tier="offsite", region=OTHER_REGION)

    @pytest.fixture(name="foreign_point")
    def _contract_foreign(self, ec2: Any, volume_id: str) -> RecoveryPoint:
        snapshot = ec2.create_snapshot(VolumeId=volume_id)
        return RecoveryPoint(
            id=snapshot["SnapshotId"], target="data", created_at=START, managed=False
        )

    def restored_exists(self, target: BackupTarget, restored: RestoredResource) -> bool:
        """Whether the restored volume still exists in moto."""
        return _volume_exists(boto3.client("ec2", region_name=REGION), restored)


# -- construction -------------------------------------------------------------------------


class TestConstruction:
    """Arguments are validated before any AWS call."""

    @pytest.mark.parametrize(
        ("cls", "field", "value"),
        [
            (Ec2Instance, "instance_id", "vol-0123"),
            (Ec2Instance, "instance_id", "i-"),
            (EbsVolume, "volume_id", "i-0123"),
            (EbsVolume, "volume_id", 42),
        ],
    )
    def test_bad_resource_id(self, cls: type[Any], field: str, value: Any):
        """A malformed resource id names the argument, the expected form and the value."""
        with pytest.raises(PolicyError, match=f"^{field}: expected an id like") as info:
            cls(value)
        assert value == info.value.got

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"max_workers": 0}, "max_workers"),
            ({"poll_interval": 0}, "poll_interval"),
            ({"wait_timeout": -1}, "wait_timeout"),
            ({"policy": ""}, "policy"),
            ({"name": ""}, "name"),
            ({"include_boot_volume": "no"}, "include_boot_volume"),
        ],
    )
    def test_bad_option(self, kwargs: dict[str, Any], field: str):
        """A bad option is refused with a message naming it."""
        with pytest.raises(PolicyError, match=f"^{field}: expected"):
            Ec2Instance("i-0123456789abcdef0", **kwargs)

    def test_name_defaults_to_resource_id(self):
        """Without a name, the target is named after its resource id."""
        assert ("i-0abc", "vol-0abc") == (Ec2Instance("i-0abc").name, EbsVolume("vol-0abc").name)

    def test_repr(self):
        """The repr names the class, the target and the resource."""
        assert "<backuppolicy.aws.EbsVolume(name='data', volume_id='vol-1')>" == repr(
            EbsVolume("vol-1", name="data")
        )
        assert "<backuppolicy.aws.Ec2Instance(name='web', instance_id='i-1')>" == repr(
            Ec2Instance("i-1", name="web")
        )

    def test_registered_kinds(self):
        """The registry resolves the two kinds to these classes."""
        assert (Ec2Instance, EbsVolume) == (
            get_target_class("ec2-instance"),
            get_target_class("ebs-volume"),
        )


# -- Ec2Instance backups ------------------------------------------------------------------


class TestInstanceBackup:
    """CreateSnapshots of every volume, grouped into one point."""

    def test_one_point_for_all_volumes(self, web: Ec2Instance, volumes: dict[str, str]):
        """A backup snapshots every volume and returns one completed group point."""
        point = web.create_backup(reason="manual", token=T1)
        assert (KIND_INSTANCE_BACKUP, Status.COMPLETED, True) == (
            point.kind,
            point.status,
            point.managed,
        )
        by_volume = {s["volume_id"]: s["device"] for s in point.details["snapshots"]}
        assert {v: d for d, v in volumes.items()} == by_volume
        assert (8 + 10) * 1024**3 == point.size_bytes

    def test_group_tag_on_every_snapshot(self, ec2: Any, web: Ec2Instance):
        """Every snapshot of the group carries the group id, its size and the ownership tags."""
        point = web.create_backup(token=T1)
        snapshots = _snapshots(ec2, SnapshotIds=point.details["snapshot_ids"])
        expected = {(point.id, "2", "prod", "web", "t-1")}
        actual = {
            (t[TAG_GROUP], t[TAG_GROUP_SIZE], t[TAG_POLICY], t[TAG_TARGET], t[TAG_TOKEN])
            for t in map(_tags, snapshots)
        }
        assert expected == actual

    def test_group_id_is_named_after_target(self, web: Ec2Instance):
        """The group id reads bp-<target>-<UTC stamp>-<token digest>."""
        with time_machine.travel(datetime(2026, 11, 26, 4, 0, 0, tzinfo=UTC), tick=False):
            point = web.create_backup(token=T1)
        assert point.id.startswith("bp-web-20261126t040000z-")

    def test_exclude_boot_volume(self, session, instance_id: str, volumes: dict[str, str]):
        """include_boot_volume=False snapshots only the data volume."""
        target = Ec2Instance(instance_id, name="web", include_boot_volume=False, session=session)
        point = target.create_backup(token=T1)
        assert [volumes["/dev/sdf"]] == [s["volume_id"] for s in point.details["snapshots"]]

    def test_boot_only_instance_without_boot_volume(self, ec2: Any, session):
        """Excluding the boot volume of an instance that has nothing else is a PolicyError."""
        instance = ec2.run_instances(ImageId="ami-0", MinCount=1, MaxCount=1)["Instances"][0]
        target = Ec2Instance(instance["InstanceId"], include_boot_volume=False, session=session)
        with pytest.raises(PolicyError, match="^include_boot_volume: expected True, or an"):
            target.create_backup()
        assert [] == _snapshots(ec2)

    def test_missing_instance(self, ec2: Any, session):
        """Backing up an instance that does not exist raises ResourceNotFoundError."""
        target = Ec2Instance("i-0123456789abcdef0", session=session)
        with pytest.raises(ResourceNotFoundError, match="does not exist"):
            target.create_backup()

    def test_same_token_same_point(self, ec2: Any, web: Ec2Instance):
        """A second create with the same token returns the group without new snapshots."""
        first = web.create_backup(token=T1)
        second = web.create_backup(token=T1)
        assert (first.id, 2) == (second.id, len(_snapshots(ec2)))

    def test_same_token_after_instance_is_gone(self, ec2: Any, web: Ec2Instance):
        """The same token still finds the group once the instance is terminated."""
        first = web.create_backup(token=T1)
        ec2.terminate_instances(InstanceIds=[web.instance_id])
        assert first.id == web.create_backup(token=T1).id

    def test_user_tags_kept(self, ec2: Any, web: Ec2Instance):
        """Tags given to create_backup are on every snapshot of the group."""
        point = web.create_backup(tags={"team": "web"}, token=T1)
        assert {"web"} == {_tags(s)["team"] for s in _snapshots(ec2)}
        assert "web" == point.tags["team"]

    def test_reserved_tag_refused(self, ec2: Any, web: Ec2Instance):
        """A user tag under the backuppolicy: prefix is refused before any snapshot."""
        with pytest.raises(PolicyError, match=r"^tags\['backuppolicy:policy'\]: expected a key"):
            web.create_backup(tags={TAG_POLICY: "other"})
        assert [] == _snapshots(ec2)

    def test_created_at_from_aws(self, web: Ec2Instance):
        """created_at is the snapshots' start time (moto stamps now: travel with ticking)."""
        with time_machine.travel(datetime(2025, 1, 2, 4, 0, tzinfo=UTC), tick=True):
            point = web.create_backup(token=T1)
        created = point.created_at
        assert ((2025, 1, 2, 4), UTC) == (
            (created.year, created.month, created.day, created.hour),
            created.tzinfo,
        )


class TestGroupStatus:
    """The status of a group follows its snapshots' states."""

    @pytest.mark.parametrize(
        ("states", "size", "expected"),
        [
            (["completed", "completed"], 2, Status.COMPLETED),
            (["completed", "pending"], 2, Status.PENDING),
            (["pending", "error"], 2, Status.PENDING),
            (["completed", "error"], 2, Status.PARTIAL),
            (["error", "error"], 2, Status.FAILED),
            (["completed"], 2, Status.PARTIAL),
            (["completed", "mystery"], 2, Status.PENDING),
        ],
    )
    def test_status(self, states: list[str], size: int, expected: Status):
        """All completed: COMPLETED; any pending: PENDING; errors: FAILED/PARTIAL; missing: PARTIAL."""
        target = Ec2Instance("i-1", name="web", policy="prod", account_id=ACCOUNT)
        tags = {TAG_POLICY: "prod", TAG_TARGET: "web", TAG_GROUP: "g", TAG_GROUP_SIZE: str(size)}
        members = [
            _snapshot_answer(f"snap-{n}", volume_id=f"vol-{n}", state=state, **tags)
            for n, state in enumerate(states)
        ]
        assert expected == target._group_point("g", members, REGION, {}).status

    def test_hold_on_any_member_holds_group(self):
        """A hold tag on any snapshot of the group puts the whole point under hold."""
        target = Ec2Instance("i-1", name="web", policy="prod", account_id=ACCOUNT)
        hold = LegalHold(reason="audit", reference="A-1", since=START)
        tags = {TAG_POLICY: "prod", TAG_TARGET: "web", TAG_GROUP: "g"}
        members = [
            _snapshot_answer("snap-1", **tags),
            _snapshot_answer("snap-2", **tags, **{TAG_HOLD: hold.to_tag()}),
        ]
        assert hold == target._group_point("g", members, REGION, {}).legal_hold


# -- EbsVolume backups --------------------------------------------------------------------


class TestVolumeBackup:
    """CreateSnapshot of one volume, tagged for ownership."""

    def test_snapshot_point(self, ec2: Any, data: EbsVolume, volume_id: str):
        """A backup is one snapshot, tagged, whose id is the point's id."""
        point = data.create_backup(reason="manual", token=T1)
        (snapshot,) = _snapshots(ec2)
        assert (snapshot["SnapshotId"], KIND_EBS_SNAPSHOT, volume_id) == (
            point.id,
            point.kind,
            point.details["volume_id"],
        )
        assert {"prod", "data", "t-1"} <= set(_tags(snapshot).values())
        assert f"aws:{ACCOUNT}:{REGION}" == point.location

    def test_same_token_same_point(self, ec2: Any, data: EbsVolume):
        """The same token returns the same snapshot."""
        assert data.create_backup(token=T2).id == data.create_backup(token=T2).id
        assert 1 == len(_snapshots(ec2))

    def test_throttled_then_created(self, slept: list[float]):
        """A throttled CreateSnapshot is retried (Stubber: moto never throttles)."""
        client, stub = _stubbed()
        stub.add_response("describe_snapshots", {"Snapshots": []})
        stub.add_client_error("create_snapshot", "RequestLimitExceeded", http_status_code=503)
        stub.add_response("create_snapshot", _snapshot_answer("snap-1", state="pending", **OURS))
        target = EbsVolume(
            "vol-1",
            name="data",
            policy="prod",
            account_id=ACCOUNT,
            clients={"ec2": client},
            retry=RetryPolicy(sleep=slept.append),
        )
        with stub:
            point = target.create_backup(token=T1)
        assert ("snap-1", Status.PENDING, 1) == (point.id, point.status, len(slept))

    def test_unauthorized(self):
        """UnauthorizedOperation becomes PermissionDeniedError with the code and operation."""
        client, stub = _stubbed()
        stub.add_response("describe_snapshots", {"Snapshots": []})
        stub.add_client_error("create_snapshot", "UnauthorizedOperation", http_status_code=403)
        target = EbsVolume("vol-1", account_id=ACCOUNT, clients={"ec2": client})
        with stub, pytest.raises(PermissionDeniedError) as info:
            target.create_backup(token=T1)
        assert ("UnauthorizedOperation", "CreateSnapshot", "vol-1") == (
            info.value.code,
            info.value.operation,
            info.value.resource,
        )


# -- listing ------------------------------------------------------------------------------


class TestList:
    """Ours by tag and owner; the rest of the volume's snapshots as unmanaged."""

    def test_foreign_snapshot_of_instance_volume(
        self, ec2: Any, web: Ec2Instance, volumes: dict[str, str]
    ):
        """A snapshot someone else took of the instance's volume is listed as unmanaged."""
        ours = web.create_backup(token=T1)
        theirs = ec2.create_snapshot(VolumeId=volumes["/dev/sdf"])["SnapshotId"]
        listed = {p.id: (p.kind, p.managed) for p in web.list_points()}
        assert {ours.id: (KIND_INSTANCE_BACKUP, True), theirs: (KIND_EBS_SNAPSHOT, False)} == listed

    def test_other_policy_unmanaged(self, session, data: EbsVolume, volume_id: str):
        """A snapshot of the volume owned by another policy is listed as unmanaged."""
        other = EbsVolume(volume_id, name="data", policy="staging", session=session)
        snapshot = other.create_backup(token=T1)
        assert [(snapshot.id, False)] == [(p.id, p.managed) for p in data.list_points()]

    def test_unrelated_snapshots_not_listed(self, ec2: Any, data: EbsVolume):
        """Snapshots of other volumes, untagged, are not the target's points."""
        other = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
        ec2.create_snapshot(VolumeId=other)
        assert [] == list(data.list_points())

    def test_copies_listed_offsite(self, data: EbsVolume):
        """Copies in copy_regions are listed in their tier and region."""
        point = data.create_backup(token=T1)
        copy = data.copy(point, Destination(tier="vault", region=OTHER_REGION))
        listed = {p.id: (p.tier, p.location) for p in data.list_points()}
        assert {
            point.id: ("local", f"aws:{ACCOUNT}:{REGION}"),
            copy.id: ("vault", f"aws:{ACCOUNT}:{OTHER_REGION}"),
        } == listed

    def test_all_pages_and_owner_filter(self):
        """Every page is read and snapshots of another owner are dropped (Stubber: moto has one page)."""
        client, stub = _stubbed()
        tag_filter = {
            "OwnerIds": ["self"],
            "Filters": _ownership_filters(),
            "MaxResults": 1000,
        }
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": [_snapshot_answer("snap-1", **OURS)], "NextToken": "page-2"},
            tag_filter,
        )
        foreign_owner = {**_snapshot_answer("snap-x", **OURS), "OwnerId": "999999999999"}
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": [_snapshot_answer("snap-2", **OURS), foreign_owner]},
            {**tag_filter, "NextToken": "page-2"},
        )
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": [_snapshot_answer("snap-1", **OURS), _snapshot_answer("snap-3")]},
            {
                "OwnerIds": ["self"],
                "Filters": [{"Name": "volume-id", "Values": ["vol-1"]}],
                "MaxResults": 1000,
            },
        )
        target = EbsVolume(
            "vol-1", name="data", policy="prod", account_id=ACCOUNT, clients={"ec2": client}
        )
        with stub:
            listed = [(p.id, p.managed) for p in target.list_points()]
            stub.assert_no_pending_responses()
        assert [("snap-1", True), ("snap-2", True), ("snap-3", False)] == listed

    def test_failed_later_page_raises(self):
        """A page that fails after the first raises: no truncated listing reaches the caller."""
        client, stub = _stubbed()
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": [_snapshot_answer("snap-1", **OURS)], "NextToken": "page-2"},
        )
        stub.add_client_error("describe_snapshots", "UnauthorizedOperation", http_status_code=403)
        target = EbsVolume(
            "vol-1", name="data", policy="prod", account_id=ACCOUNT, clients={"ec2": client}
        )
        seen: list[RecoveryPoint] = []
        with stub, pytest.raises(PermissionDeniedError):
            seen.extend(target.list_points())
        assert [] == seen

    def test_account_from_sts(self, ec2: Any, data: EbsVolume):
        """Without account_id, the account comes from STS once."""
        assert ACCOUNT == data.account_id


# -- delete -------------------------------------------------------------------------------


class TestDelete:
    """Only managed, unheld, completed points; AMI-referenced snapshots explained."""

    def test_group_deleted(self, ec2: Any, web: Ec2Instance):
        """Deleting an instance backup deletes every snapshot of the group."""
        point = web.create_backup(token=T1)
        web.delete(point)
        assert ([], None) == (_snapshots(ec2), web.refresh(point))

    def test_partial_group_deleted(self, ec2: Any, web: Ec2Instance):
        """A group missing a snapshot is PARTIAL and its remaining snapshots are deleted."""
        point = web.create_backup(token=T1)
        ec2.delete_snapshot(SnapshotId=point.details["snapshot_ids"][0])
        partial = web.refresh(point)
        assert partial is not None
        assert Status.PARTIAL == partial.status
        web.delete(partial)
        assert [] == _snapshots(ec2)

    def test_foreign_refused(self, ec2: Any, web: Ec2Instance, volumes: dict[str, str]):
        """A foreign snapshot is refused even when passed as managed; nothing deleted."""
        theirs = ec2.create_snapshot(VolumeId=volumes["/dev/sda1"])["SnapshotId"]
        (listed,) = [p for p in web.list_points() if p.id == theirs]
        with pytest.raises(ProtectedPointError, match="not managed by policy 'prod'"):
            web.delete(listed.evolve(managed=True))
        assert 1 == len(_snapshots(ec2))

    def test_pending_refused(self, ec2: Any, web: Ec2Instance):
        """A pending point is refused."""
        point = web.create_backup(token=T1)
        with pytest.raises(ProtectedPointError, match="still pending"):
            web.delete(point.evolve(status=Status.PENDING))
        assert 2 == len(_snapshots(ec2))

    def test_ami_referenced_snapshot(
        self, ec2: Any, session, instance_id: str, volumes: dict[str, str]
    ):
        """A snapshot used by an AMI gives an error naming the AMI, and stays."""
        image = ec2.create_image(InstanceId=instance_id, Name="golden")["ImageId"]
        (snapshot,) = _snapshots(ec2)  # CreateImage's snapshot of the boot volume
        ec2.create_tags(
            Resources=[snapshot["SnapshotId"]],
            Tags=[{"Key": TAG_POLICY, "Value": "prod"}, {"Key": TAG_TARGET, "Value": "boot"}],
        )
        target = EbsVolume(volumes["/dev/sda1"], name="boot", policy="prod", session=session)
        (point,) = target.list_points()
        with pytest.raises(
            BackendError, match=f"used by AMI {image}; deregister {image} first"
        ) as info:
            target.delete(point)
        assert ("InvalidSnapshot.InUse", 1) == (info.value.code, len(_snapshots(ec2)))

    def test_ami_looked_up_when_message_lacks_it(self):
        """Without an AMI id in the message, DescribeImages by snapshot id names it (Stubber: moto lacks that filter)."""
        client, stub = _stubbed()
        stub.add_response("describe_snapshots", {"Snapshots": [_snapshot_answer("snap-1", **OURS)]})
        stub.add_client_error("delete_snapshot", "InvalidSnapshot.InUse", "The snapshot is in use.")
        stub.add_response(
            "describe_images",
            {"Images": [{"ImageId": "ami-0feed"}]},
            {
                "Owners": ["self"],
                "Filters": [{"Name": "block-device-mapping.snapshot-id", "Values": ["snap-1"]}],
            },
        )
        target = EbsVolume(
            "vol-1", name="data", policy="prod", account_id=ACCOUNT, clients={"ec2": client}
        )
        point = RecoveryPoint(id="snap-1", target="data", created_at=START)
        with stub, pytest.raises(BackendError, match="used by AMI ami-0feed"):
            target.delete(point)

    def test_gone_point(self, ec2: Any, data: EbsVolume):
        """Deleting a point that no longer exists raises ResourceNotFoundError."""
        point = data.create_backup(token=T1)
        ec2.delete_snapshot(SnapshotId=point.id)
        with pytest.raises(ResourceNotFoundError):
            data.delete(point)


# -- holds --------------------------------------------------------------------------------


class TestHolds:
    """Legal holds as tags on every snapshot of a point."""

    def test_place_and_release_on_group(self, ec2: Any, web: Ec2Instance):
        """A hold tags every snapshot, protects the point, and can be released."""
        point = web.create_backup(token=T1)
        hold = LegalHold(reason="litigation", reference="case-17", since=START)
        held = web.place_hold(point, hold)
        assert (hold, {hold.to_tag()}) == (
            held.legal_hold,
            {_tags(s)[TAG_HOLD] for s in _snapshots(ec2)},
        )
        with pytest.raises(ProtectedPointError, match="legal hold: case-17"):
            web.delete(point)
        released = web.release_hold(held)
        assert released.legal_hold is None
        web.delete(released)
        assert [] == _snapshots(ec2)

    def test_hold_must_be_legal_hold(self, data: EbsVolume):
        """place_hold refuses anything but a LegalHold."""
        point = data.create_backup(token=T1)
        with pytest.raises(PolicyError, match="^hold: expected a backuppolicy.LegalHold"):
            data.place_hold(point, "case-17")  # type: ignore[arg-type]


# -- copy ---------------------------------------------------------------------------------


class TestCopy:
    """Cross-region copies, encrypted with the destination's key."""

    def test_encrypted_copy(self, data: EbsVolume):
        """The copy is made in the destination with Encrypted=True and the given key."""
        point = data.create_backup(token=T1)
        copy = data.copy(point, Destination(region=OTHER_REGION, kms_key_id=KEY))
        remote = boto3.client("ec2", region_name=OTHER_REGION)
        (snapshot,) = _snapshots(remote, SnapshotIds=[copy.id])
        assert (True, KEY, point.id, "offsite") == (
            snapshot["Encrypted"],
            snapshot["KmsKeyId"],
            _tags(snapshot)[TAG_SOURCE_SNAPSHOT],
            copy.tier,
        )
        assert (True, KEY) == (copy.encrypted, copy.details["kms_key_id"])

    def test_copy_is_idempotent(self, data: EbsVolume):
        """Copying the same point again returns the existing copy."""
        point = data.create_backup(token=T1)
        destination = Destination(region=OTHER_REGION, kms_key_id=KEY)
        first = data.copy(point, destination)
        assert first.id == data.copy(point, destination).id
        assert 1 == len(_snapshots(boto3.client("ec2", region_name=OTHER_REGION)))

    def test_group_copy(self, web: Ec2Instance):
        """Every snapshot of an instance backup is copied, and the copies form one point."""
        point = web.create_backup(token=T1)
        copy = web.copy(point, Destination(region=OTHER_REGION, kms_key_id=KEY))
        sources = sorted(s["source_snapshot_id"] for s in copy.details["snapshots"])
        assert (
            KIND_INSTANCE_BACKUP,
            f"{point.id}-{OTHER_REGION}",
            sorted(point.details["snapshot_ids"]),
        ) == (
            copy.kind,
            copy.id,
            sources,
        )
        assert (point.id, Status.COMPLETED, True) == (
            copy.details["source_group"],
            copy.status,
            copy.encrypted,
        )

    def test_encrypted_source_needs_key(self):
        """An encrypted source without a destination key is a PolicyError before any call."""
        client, stub = _stubbed(OTHER_REGION)  # no answers queued: any call would fail
        target = EbsVolume("vol-1", account_id=ACCOUNT, clients={"ec2": client})
        point = RecoveryPoint(id="snap-1", target="vol-1", created_at=START, encrypted=True)
        with (
            stub,
            pytest.raises(
                PolicyError,
                match=r"^destination.kms_key_id: expected a KMS key id or ARN in eu-west-1 \(point 'snap-1' is encrypted\)",
            ),
        ):
            target.copy(point, Destination(region=OTHER_REGION))
        stub.assert_no_pending_responses()

    def test_encryption_requested_needs_key(self):
        """encrypt_copies=True without a destination key is a PolicyError before any call."""
        client, stub = _stubbed()
        target = EbsVolume(
            "vol-1", account_id=ACCOUNT, encrypt_copies=True, clients={"ec2": client}
        )
        point = RecoveryPoint(id="snap-1", target="vol-1", created_at=START, encrypted=False)
        with stub, pytest.raises(PolicyError, match="encrypt_copies=True"):
            target.copy(point, Destination(region=OTHER_REGION))

    def test_encrypted_source_in_moto(self, ec2: Any, session):
        """An encrypted snapshot (moto) is refused without a key and copied with one."""
        volume = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a", Encrypted=True)
        target = EbsVolume(volume["VolumeId"], name="secret", session=session)
        point = target.create_backup(token=T1)
        assert point.encrypted
        with pytest.raises(PolicyError, match="is encrypted"):
            target.copy(point, Destination(region=OTHER_REGION))
        assert target.copy(point, Destination(region=OTHER_REGION, kms_key_id=KEY)).encrypted

    def test_needs_region(self, data: EbsVolume):
        """A destination without a region is refused."""
        point = RecoveryPoint(id="snap-1", target="data", created_at=START, encrypted=False)
        with pytest.raises(PolicyError, match="^destination.region: expected an AWS region name"):
            data.copy(point, Destination())

    def test_incomplete_refused(self, data: EbsVolume):
        """Only completed points are copied."""
        point = data.create_backup(token=T1).evolve(status=Status.PENDING)
        with pytest.raises(BackendError, match="expected a completed point"):
            data.copy(point, Destination(region=OTHER_REGION))


# -- restore ------------------------------------------------------------------------------


class TestRestore:
    """Volumes from snapshots in the isolation zone, always deleted afterwards."""

    def test_group_restore(self, ec2: Any, web: Ec2Instance):
        """Every snapshot of the group becomes a tagged, available volume, deleted on exit."""
        point = web.create_backup(token=T1)
        before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
        profile = IsolationProfile(availability_zone=f"{REGION}c", tags={"team": "dr"})
        with web.restore(point, profile) as restored:
            made = ec2.describe_volumes(
                Filters=[{"Name": "tag:backuppolicy:restore-test", "Values": [point.id]}]
            )["Volumes"]
            assert {f"{REGION}c"} == {v["AvailabilityZone"] for v in made}
            assert {"available"} == {v["State"] for v in made}
            assert {"dr"} == {_tags(v)["team"] for v in made}
            assert sorted(point.details["snapshot_ids"]) == sorted(v["SnapshotId"] for v in made)
        assert "ebs-volumes" == restored.kind
        assert before == {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}

    def test_deleted_on_error(self, ec2: Any, data: EbsVolume):
        """The volume is deleted when the block raises, and the error propagates."""
        point = data.create_backup(token=T1)
        with pytest.raises(KeyError), data.restore(point) as restored:
            raise KeyError(restored.id)
        assert (
            []
            == ec2.describe_volumes(
                VolumeIds=[], Filters=[{"Name": "volume-id", "Values": [restored.id]}]
            )["Volumes"]
        )

    def test_default_zone_is_first(self, data: EbsVolume):
        """Without a zone in the profile, the region's first zone is used."""
        point = data.create_backup(token=T1)
        with data.restore(point) as restored:
            assert f"{REGION}a" == restored.details["availability_zone"]

    def test_zone_of_other_region(self, data: EbsVolume):
        """A zone outside the point's region is refused."""
        point = data.create_backup(token=T1)
        with pytest.raises(
            PolicyError, match="^into.availability_zone: expected a zone of us-east-1"
        ):
            data.restore(point, IsolationProfile(availability_zone="eu-west-1a")).__enter__()

    def test_incomplete_refused(self, data: EbsVolume):
        """A point that is not completed is not restored."""
        point = data.create_backup(token=T1).evolve(status=Status.FAILED)
        with pytest.raises(BackendError, match="expected a completed point"):
            data.restore(point)

    def _restore_stub(self, states: list[str]) -> tuple[Any, Stubber]:
        client, stub = _stubbed()
        stub.add_response(
            "create_volume",
            {"VolumeId": "vol-r", "State": "creating", "AvailabilityZone": f"{REGION}a"},
        )
        for state in states:
            stub.add_response(
                "describe_volumes", {"Volumes": [{"VolumeId": "vol-r", "State": state}]}
            )
        return client, stub

    def test_waits_until_available(self):
        """Restore polls until the volume is available, sleeping poll_interval (Stubber: moto is instant)."""
        client, stub = self._restore_stub(["creating", "creating", "available"])
        stub.add_response("delete_volume", {}, {"VolumeId": "vol-r"})
        slept: list[float] = []
        target = EbsVolume(
            "vol-1",
            account_id=ACCOUNT,
            clients={"ec2": client},
            poll_interval=7,
            retry=RetryPolicy(sleep=slept.append),
        )
        point = RecoveryPoint(id="snap-1", target="vol-1", created_at=START)
        with (
            stub,
            target.restore(point, IsolationProfile(availability_zone=f"{REGION}a")) as restored,
        ):
            assert "vol-r" == restored.id
        stub.assert_no_pending_responses()
        assert [7.0, 7.0] == slept

    def test_wait_is_bounded(self):
        """A volume that never becomes available raises after wait_timeout and is deleted."""
        client, stub = self._restore_stub(["creating"] * 4)
        stub.add_response("delete_volume", {}, {"VolumeId": "vol-r"})
        slept: list[float] = []
        target = EbsVolume(
            "vol-1",
            account_id=ACCOUNT,
            clients={"ec2": client},
            poll_interval=5,
            wait_timeout=15,
            retry=RetryPolicy(sleep=slept.append),
        )
        point = RecoveryPoint(id="snap-1", target="vol-1", created_at=START)
        with stub, pytest.raises(BackendError, match="not available after 15 s"):
            target.restore(point, IsolationProfile(availability_zone=f"{REGION}a")).__enter__()
        stub.assert_no_pending_responses()
        assert [5.0, 5.0, 5.0] == slept


# -- fault injection ----------------------------------------------------------------------


class _Faults:
    """Fails a share of EC2 calls with RequestLimitExceeded or a bare 500, before they are sent.

    Records every DeleteSnapshot that really reached moto.
    """

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.random = random.Random(seed)  # noqa: S311 - deterministic fault schedule
        self.injected = 0
        self.deleted: list[str] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.ec2.*", self._before)

    def _before(self, model: Any, params: dict[str, Any], **_kwargs: Any) -> Any:
        if self.random.random() < self.share:
            self.injected += 1
            if self.random.random() < 0.5:
                code, status = "RequestLimitExceeded", 503
            else:
                code, status = "InternalError", 500
            response = AWSResponse("https://ec2.fault", status, {}, None)
            parsed = {
                "Error": {"Code": code, "Message": "injected"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
            return response, parsed
        if model.name == "DeleteSnapshot":
            self.deleted.append(params["body"]["SnapshotId"])
        return None


class TestFaultInjection:
    """~30% of EC2 calls fail transiently; every operation still completes, exactly once."""

    @pytest.fixture(name="faults")
    def _faults(self) -> _Faults:
        return _Faults(share=0.3, seed=20261126)

    @pytest.mark.parametrize("kind", ["instance", "volume"])
    def test_operations_complete(
        self, session, instance_id: str, volume_id: str, faults: _Faults, kind: str
    ):
        """Create, list, copy, restore and delete succeed; each snapshot is deleted once."""
        retry = RetryPolicy(sleep=lambda _s: None, max_attempts=12)
        target: Ec2Instance | EbsVolume
        if kind == "instance":
            target = Ec2Instance(
                instance_id,
                name="t",
                copy_regions=[OTHER_REGION],
                account_id=ACCOUNT,
                retry=retry,
                session=session,
            )
        else:
            target = EbsVolume(
                volume_id,
                name="t",
                copy_regions=[OTHER_REGION],
                account_id=ACCOUNT,
                retry=retry,
                session=session,
            )
        faults.attach(target.client("ec2"))
        faults.attach(target.client("ec2", region=OTHER_REGION))
        points = [target.create_backup(token=f"t-{n}") for n in range(3)]
        assert 3 == len({p.id for p in points})
        copy = target.copy(points[0], Destination(region=OTHER_REGION, kms_key_id=KEY))
        with target.restore(points[1]):
            pass
        listed = list(target.list_points())
        assert sorted([*(p.id for p in points), copy.id]) == sorted(p.id for p in listed)
        for point in listed:
            target.delete(point)
        expected = sorted(s for p in listed for s in p.details["snapshot_ids"])
        assert expected == sorted(faults.deleted)
        assert [] == list(target.list_points())
        assert faults.injected > 0
