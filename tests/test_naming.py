"""One naming rule for every kind (core/naming.py, issue 15).

A scheduled backup is named after the slot it fills: the latest scheduled run at or before the
run (`Schedule.last_due`). A job that runs at 03:17 on 2026-12-06 under a daily 04:00 UTC
schedule is late for the 2026-12-05 04:00 slot (the 2026-12-06 slot is not due until 04:00),
so its backup is named ``…-20261205t040000z…``. A manual backup is named after the time it was
taken. Each kind runs on its own backend (moto for the AWS kinds), through `backuppolicy.backup`
and `backuppolicy.backup_now`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest

import backuppolicy as bp
from backuppolicy.aws.ec2 import EbsVolume, Ec2Instance
from backuppolicy.aws.rds import RdsInstance
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.naming import manual_token, name_stamp, scheduled_token, token_stamp
from backuppolicy.core.targets import BackupTarget
from backuppolicy.local import Directory, DirectoryStore
from backuppolicy.testing import MemoryTarget

REGION = "us-east-1"
RUN = datetime(2026, 12, 6, 3, 17, tzinfo=UTC)
"""The job runs at 03:17, 43 minutes before the day's 04:00 slot."""
SLOT = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
"""The slot that run fills: the latest 04:00 at or before 03:17 on 12-06."""
POLICY = bp.Policy.from_dict(
    {
        "name": "shop",
        "timezone": "UTC",
        "schedule": {"every": "day", "at": "04:00"},
        "retention": {"max_age": "35d"},
        "targets": [{"name": "app", "kind": "testing:memory", "application": "shop"}],
    }
)


def _name(point: RecoveryPoint) -> str:
    """The name a person sees: the id, the EBS snapshot's Name tag, the manifest's file name."""
    if point.kind == "ebs-snapshot":
        return point.tags["Name"]
    if point.kind.endswith("manifest"):
        return str(point.details["key"]).rsplit("/", 1)[-1]
    return point.id


@pytest.fixture(name="moto_aws")
def _moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with moto.mock_aws():
        yield boto3.Session(region_name=REGION)


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> BackupTarget:
    return MemoryTarget("app", policy="shop", clock=lambda: RUN)


def _directory(tmp_path: Path, request: pytest.FixtureRequest) -> BackupTarget:
    source = tmp_path / "source"
    source.mkdir()
    (source / "app.conf").write_text("x = 1\n")
    store = DirectoryStore(tmp_path / "store")
    return Directory(source, name="app", policy="shop", store=store, clock=lambda: RUN)


def _rds(tmp_path: Path, request: pytest.FixtureRequest) -> BackupTarget:
    session: boto3.Session = request.getfixturevalue("moto_aws")
    session.client("rds").create_db_instance(
        DBInstanceIdentifier="orders-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="password1",
        AllocatedStorage=20,
    )
    return RdsInstance("orders-db", name="app", policy="shop", session=session, clock=lambda: RUN)


def _ebs(tmp_path: Path, request: pytest.FixtureRequest) -> BackupTarget:
    session: boto3.Session = request.getfixturevalue("moto_aws")
    volume = session.client("ec2").create_volume(Size=5, AvailabilityZone=f"{REGION}a")
    return EbsVolume(volume["VolumeId"], name="app", policy="shop", session=session)


def _ec2(tmp_path: Path, request: pytest.FixtureRequest) -> BackupTarget:
    session: boto3.Session = request.getfixturevalue("moto_aws")
    ec2 = session.client("ec2")
    reservation = ec2.run_instances(
        ImageId="ami-00000000000000000", MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    instance_id = reservation["Instances"][0]["InstanceId"]
    return Ec2Instance(instance_id, name="app", policy="shop", session=session)


def _s3(tmp_path: Path, request: pytest.FixtureRequest) -> BackupTarget:
    session: boto3.Session = request.getfixturevalue("moto_aws")
    s3 = session.client("s3")
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="a.txt", Body=b"a")
    return S3Bucket("assets", name="app", policy="shop", session=session)


KINDS: dict[str, Callable[[Path, pytest.FixtureRequest], BackupTarget]] = {
    "memory": _memory,
    "directory": _directory,
    "rds": _rds,
    "ebs": _ebs,
    "ec2": _ec2,
    "s3-manifest": _s3,
}


@pytest.fixture(name="target", params=sorted(KINDS))
def _target(request: pytest.FixtureRequest, tmp_path: Path) -> BackupTarget:
    return KINDS[request.param](tmp_path, request)


class TestSlot:
    def test_run_at_0317_fills_the_previous_0400_slot(self):
        """The slot semantics the names rely on: the latest scheduled run at or before the run."""
        assert (SLOT, SLOT) == (
            POLICY.schedule.last_due(RUN),
            token_stamp(scheduled_token("shop", "app", POLICY.schedule.last_due(RUN))),
        )

    def test_token_without_a_stamp_names_after_now(self):
        """A token of one's own that ends in no time: the name takes the time of the backup."""
        assert ("20261206t031700z", None) == (
            name_stamp("change-42", RUN),
            token_stamp("change-20261399T000000Z"),  # digits that are no date
        )


class TestEveryKind:
    def test_scheduled_backup_is_named_after_its_slot(self, target: Any):
        """A backup made at 03:17 on 12-06 for the 12-05 04:00 slot is named …-20261205t040000z…."""
        report = bp.backup(POLICY, now=RUN, targets={"app": target})
        (point,) = report.created
        assert _name(point).startswith("bp-app-20261205t040000z"), _name(point)

    def test_second_run_in_the_slot_makes_no_second_backup(self, target: Any):
        """The same slot gives the same token: a re-run finds the first backup."""
        first = bp.backup(POLICY, now=RUN, targets={"app": target}).created
        again = bp.backup(POLICY, now=RUN, targets={"app": target}, force=False)
        assert ([], 1) == (again.created, sum(1 for p in target.list_points() if p.managed))
        assert first

    def test_manual_backups_are_named_after_the_time_they_were_taken(self, target: Any):
        """Manual: the request's time; two in the same second still get two names."""
        first = bp.backup_now(
            POLICY, "app", reason="before upgrade", now=RUN, targets={"app": target}
        )
        again = f"again-{manual_token('app', RUN)}"  # another token, the same second
        second = bp.backup_now(
            POLICY, "app", reason="again", now=RUN, targets={"app": target}, token=again
        )
        names = [_name(first), _name(second)]
        assert all(n.startswith("bp-app-20261206t031700z") for n in names), names
        assert names[0] != names[1]


def test_s3_finds_a_manifest_named_before_the_rule(moto_aws: boto3.Session, tmp_path: Path):
    """A re-run in the slot after an upgrade finds the manifest under its old name, no duplicate."""
    target = _s3(tmp_path, _Request(moto_aws))  # type: ignore[arg-type]
    token = scheduled_token("shop", "app", SLOT)
    made = target.create_backup(token=token)
    s3 = moto_aws.client("s3")
    key = str(made.details["key"])
    legacy = key.rsplit("/", 1)[0] + "/token-" + key.rsplit("-", 1)[-1]
    s3.copy_object(Bucket="assets", Key=legacy, CopySource={"Bucket": "assets", "Key": key})
    s3.delete_object(Bucket="assets", Key=key)
    again = target.create_backup(token=token)
    assert legacy == again.details["key"]


class _Request:
    """Enough of a pytest request for the factories: the moto session."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session

    def getfixturevalue(self, name: str) -> boto3.Session:
        return self.session
