"""Restores of RDS, Aurora, EC2/EBS and S3 targets under moto (in-process)."""

# "token" is an idempotency token, not a password.

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import time_machine

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.ec2 import EbsVolume, Ec2Instance
from backuppolicy.aws.rds import AuroraCluster, RdsInstance
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.results import CheckResult
from backuppolicy.workflows._restore import (
    TAG_MOVED_ASIDE,
    TAG_RESTORE_ID,
    StepAction,
    plan_restore,
    restore,
)

REGION = "us-east-1"


def _no_sleep(_seconds: float) -> None:
    """Polls and retries never wait in tests."""


class _Log:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def record(self, result: CheckResult) -> None:
        self.results.append(result)


@pytest.fixture(name="log")
def _log() -> _Log:
    return _Log()


@pytest.fixture(name="rds")
def _rds(aws: None) -> Any:
    client = boto3.client("rds", region_name=REGION)
    client.create_db_instance(
        DBInstanceIdentifier="shop-prod",
        DBInstanceClass="db.t3.small",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password-123",
        BackupRetentionPeriod=1,
    )
    return client


@pytest.fixture(name="db")
def _db(rds: Any) -> RdsInstance:
    return RdsInstance(
        "shop-prod",
        name="shop-db",
        policy="web-apps",
        region=REGION,
        retry=RetryPolicy(sleep=_no_sleep),
        sleep=_no_sleep,
    )


def _ids(rds: Any) -> list[str]:
    return sorted(i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"])


NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


class TestDatabase:
    def test_plan_is_a_new_instance_from_the_newest_snapshot(self, db: RdsInstance) -> None:
        """Without point= the newest completed snapshot is restored next to the original."""
        db.create_backup(token="one")
        newest = db.create_backup(token="two")
        plan = plan_restore(db, point=None, now=NOW)
        assert newest.id == plan.point.id  # type: ignore[union-attr]
        assert "shop-prod-restored-20261126t093000z" == plan.destination
        assert [StepAction.CREATE, StepAction.VERIFY] == [s.action for s in plan.steps]
        assert not plan.destructive

    def test_restore_copies_the_originals_settings(
        self, db: RdsInstance, rds: Any, log: _Log
    ) -> None:
        """The restored instance gets the original's class and the restore's tags, and is logged."""
        point = db.create_backup(token="one")
        result = restore(plan_restore(db, point=point, now=NOW), log=log, sleep=_no_sleep)
        restored = rds.describe_db_instances(DBInstanceIdentifier=result.resource)["DBInstances"][0]
        tags = {t["Key"]: t["Value"] for t in restored["TagList"]}
        assert (True, "db.t3.small", "20261126t093000z") == (
            result.ok,
            restored["DBInstanceClass"],
            tags[TAG_RESTORE_ID],
        )
        assert ["shop-prod", "shop-prod-restored-20261126t093000z"] == _ids(rds)
        assert [("restore", "pass", point.id)] == [
            (r.check, r.status.value, r.point_id) for r in log.results
        ]

    def test_swap_refuses_without_confirm(self, db: RdsInstance, rds: Any) -> None:
        """Renaming into place is destructive: without confirm=True nothing happens."""
        db.create_backup(token="one")
        plan = plan_restore(db, swap=True, now=NOW)
        with pytest.raises(PolicyError, match=r"confirm: expected True .*--apply"):
            restore(plan, sleep=_no_sleep)
        assert ["shop-prod"] == _ids(rds)

    def test_swap_keeps_the_original_renamed_aside(self, db: RdsInstance, rds: Any) -> None:
        """With swap=True the original is renamed aside, never deleted, and the restore takes its name."""
        db.create_backup(token="one")
        plan = plan_restore(db, swap=True, now=NOW)
        result = restore(plan, confirm=True, sleep=_no_sleep)
        assert ["shop-prod", "shop-prod-before-restore-20261126t093000z"] == _ids(rds)
        assert ("shop-prod", ("rds:shop-prod-before-restore-20261126t093000z",)) == (
            result.resource,
            result.kept,
        )
        live = rds.describe_db_instances(DBInstanceIdentifier="shop-prod")["DBInstances"][0]
        assert plan.token == {t["Key"]: t["Value"] for t in live["TagList"]}[TAG_RESTORE_ID]

    def test_resumed_swap_adopts_what_the_first_run_made(self, db: RdsInstance, rds: Any) -> None:
        """Re-running a swap with the same token after it finished changes nothing more."""
        db.create_backup(token="one")
        restore(plan_restore(db, swap=True, now=NOW), confirm=True, sleep=_no_sleep)
        again = plan_restore(db, swap=True, now=NOW, point=None, token="20261126t093000z")
        restore(again, confirm=True, sleep=_no_sleep)
        assert ["shop-prod", "shop-prod-before-restore-20261126t093000z"] == _ids(rds)

    def test_swap_resumed_after_the_original_was_moved_aside(
        self, db: RdsInstance, rds: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A crash after the rename aside: the resumed swap knows the renamed original by its tag."""
        db.create_backup(token="one")
        plan = plan_restore(db, swap=True, now=NOW)
        new_id, aside = plan.options["new_id"], plan.options["aside"]
        call = db.call

        def crash(service: str, operation: str, **kwargs: Any) -> Any:
            if operation == "modify_db_instance" and kwargs["DBInstanceIdentifier"] == new_id:
                raise _Crash
            return call(service, operation, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(db, "call", crash)
            with pytest.raises(_Crash):
                restore(plan, confirm=True, sleep=_no_sleep)
        assert sorted([aside, new_id]) == _ids(rds)
        again = plan_restore(db, swap=True, now=NOW, token=plan.token)
        result = restore(again, confirm=True, sleep=_no_sleep)
        assert (["shop-prod", aside], (f"rds:{aside}",), True) == (
            _ids(rds),
            result.kept,
            result.ok,
        )

    def test_into_an_identifier_in_use_is_refused(self, db: RdsInstance, rds: Any) -> None:
        """A restore never takes over an instance another restore or a person made."""
        db.create_backup(token="one")
        with pytest.raises(PolicyError, match=r"^into: expected a new identifier"):
            plan_restore(db, into="shop-prod", now=NOW)
        restore(plan_restore(db, into="shop-copy", now=NOW), sleep=_no_sleep)
        with pytest.raises(PolicyError, match=r"^into: expected an identifier that is not in use"):
            plan_restore(db, into="shop-copy", now=NOW + timedelta(hours=1))

    @pytest.mark.parametrize("swap", [False, True])
    def test_foreign_instance_under_the_planned_id_is_never_adopted(
        self, db: RdsInstance, rds: Any, swap: bool
    ) -> None:
        """An instance someone made under the planned id after planning is refused, even confirmed."""
        db.create_backup(token="one")
        plan = plan_restore(db, swap=swap, now=NOW)
        new_id = plan.options["new_id"]
        _foreign(rds, new_id)
        before = _identities(rds)
        with pytest.raises(
            PolicyError,
            match=rf"^plan: expected rds:{new_id} made by this restore .*"
            rf"\(got 'rds:{new_id} exists with no {TAG_RESTORE_ID} tag'\)",
        ):
            restore(plan, confirm=True, sleep=_no_sleep)
        assert before == _identities(rds)

    def test_foreign_instance_under_the_aside_name_is_refused(
        self, db: RdsInstance, rds: Any
    ) -> None:
        """A swap never renames production onto, or adopts, a database it did not move aside."""
        db.create_backup(token="one")
        plan = plan_restore(db, swap=True, now=NOW)
        _foreign(rds, plan.options["aside"])
        before = _identities(rds)
        with pytest.raises(
            PolicyError, match=rf"^plan: expected rds:{plan.options['aside']} moved"
        ):
            restore(plan, confirm=True, sleep=_no_sleep)
        assert before == _identities(rds)

    def test_production_replaced_since_the_plan_needs_confirm_and_is_kept(
        self, db: RdsInstance, rds: Any
    ) -> None:
        """A swap whose original changed since the plan names the change; confirmed, it keeps it aside."""
        db.create_backup(token="one")
        plan = plan_restore(db, swap=True, now=NOW)
        rds.modify_db_instance(
            DBInstanceIdentifier="shop-prod",
            NewDBInstanceIdentifier="shop-old",
            ApplyImmediately=True,
        )
        _foreign(rds, "shop-prod")
        replaced = _identities(rds)["shop-prod"]
        with pytest.raises(PolicyError, match=r"Changed since the plan: rds:shop-prod: 'database"):
            restore(plan, sleep=_no_sleep)
        result = restore(plan, confirm=True, sleep=_no_sleep)
        aside = "shop-prod-before-restore-20261126t093000z"
        kept = rds.describe_db_instances(DBInstanceIdentifier=aside)["DBInstances"][0]
        tags = {t["Key"]: t["Value"] for t in kept["TagList"]}
        assert (True, replaced, plan.token) == (
            result.ok,
            (kept["DbiResourceId"], kept["InstanceCreateTime"]),
            tags[TAG_MOVED_ASIDE],
        )

    def test_point_in_time(self, db: RdsInstance, rds: Any) -> None:
        """at= restores the instance as it was then; the data time is that moment."""
        when = datetime.now(UTC) - timedelta(minutes=5)
        plan = plan_restore(db, at=when, into="shop-pitr")
        result = restore(plan, sleep=_no_sleep)
        assert (when, None, "shop-pitr", True) == (
            plan.data_time,
            plan.point,
            result.resource,
            result.ok,
        )
        assert "shop-pitr" in _ids(rds)

    def test_unknown_point_id_suggests_a_close_one(self, db: RdsInstance) -> None:
        """A mistyped point id names the field and suggests the nearest id."""
        point = db.create_backup(token="one")
        with pytest.raises(PolicyError, match=rf"^point: .*Did you mean '{point.id}'"):
            plan_restore(db, point=point.id + "x", now=NOW)

    def test_aurora_cluster_swap(self, rds: Any) -> None:
        """An Aurora cluster is restored with one instance and swapped into place, the old one kept."""
        rds.create_db_cluster(
            DBClusterIdentifier="orders",
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password-123",
        )
        cluster = AuroraCluster(
            "orders", region=REGION, sleep=_no_sleep, retry=RetryPolicy(sleep=_no_sleep)
        )
        cluster.create_backup(token="one")
        result = restore(plan_restore(cluster, swap=True, now=NOW), confirm=True, sleep=_no_sleep)
        clusters = sorted(
            c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]
        )
        assert ["orders", "orders-before-restore-20261126t093000z"] == clusters
        assert result.ok

    def test_foreign_cluster_under_the_planned_id_is_refused(self, rds: Any) -> None:
        """An Aurora swap never adopts a cluster it did not make; nothing is renamed."""
        for name in ("orders", "orders-restored-20261126t093000z"):
            rds.create_db_cluster(
                DBClusterIdentifier=name,
                Engine="aurora-postgresql",
                MasterUsername="admin",
                MasterUserPassword="password-123",
            )
            if name == "orders":
                cluster = AuroraCluster(
                    "orders", region=REGION, sleep=_no_sleep, retry=RetryPolicy(sleep=_no_sleep)
                )
                cluster.create_backup(token="one")
                plan = plan_restore(cluster, swap=True, now=NOW)
        with pytest.raises(PolicyError, match=r"^plan: expected rds:orders-restored-\S+ made by"):
            restore(plan, confirm=True, sleep=_no_sleep)
        clusters = sorted(
            c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]
        )
        assert ["orders", "orders-restored-20261126t093000z"] == clusters


@pytest.fixture(name="ec2")
def _ec2(aws: None) -> Any:
    return boto3.client("ec2", region_name=REGION)


def _instance(ec2: Any) -> str:
    image = ec2.register_image(Name="base", RootDeviceName="/dev/sda1")["ImageId"]
    return str(
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}}],
        )["Instances"][0]["InstanceId"]
    )


def _attached(ec2: Any, instance_id: str) -> dict[str, str]:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in found["BlockDeviceMappings"]}


class _Crash(BaseException):
    """Stands in for the process dying (no Exception: nothing catches it as a failure)."""


def _foreign(rds: Any, identifier: str) -> None:
    """An instance a person made, without the restore's tags."""
    # moto names the automated snapshot of a new instance by its id and the minute of the wall
    # clock: made at another moment, it cannot clash with the first instance of that name.
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="password-123",
        )


def _identities(rds: Any) -> dict[str, tuple[str, datetime]]:
    """Identifier -> who the instance is (moto gives every instance the same DbiResourceId)."""
    return {
        i["DBInstanceIdentifier"]: (i["DbiResourceId"], i["InstanceCreateTime"])
        for i in rds.describe_db_instances()["DBInstances"]
    }


class TestVolumes:
    def test_new_volumes_from_an_instance_backup(self, ec2: Any) -> None:
        """Every snapshot of one instance backup becomes an available volume, tagged with the token."""
        instance = _instance(ec2)
        target = Ec2Instance(
            instance, name="web", region=REGION, retry=RetryPolicy(sleep=_no_sleep)
        )
        point = target.create_backup(token="one")
        plan = plan_restore(target, point=point, now=NOW)
        result = restore(plan, sleep=_no_sleep)
        volumes = ec2.describe_volumes(
            Filters=[{"Name": f"tag:{TAG_RESTORE_ID}", "Values": [plan.token]}]
        )["Volumes"]
        assert len(point.details["snapshot_ids"]) == len(volumes)
        assert {"available"} == {v["State"] for v in volumes}
        assert result.ok

    def test_attach_over_a_device_detaches_and_keeps_the_old_volume(self, ec2: Any) -> None:
        """Attaching where a volume is detaches it (kept) and needs confirm; the instance restarts."""
        instance = _instance(ec2)
        before = _attached(ec2, instance)
        volume = EbsVolume(
            before["/dev/sdf"], name="data", region=REGION, retry=RetryPolicy(sleep=_no_sleep)
        )
        point = volume.create_backup(token="one")
        plan = plan_restore(volume, point=point, attach_to=instance, devices=["/dev/sdf"], now=NOW)
        assert plan.destructive
        with pytest.raises(PolicyError, match="confirm"):
            restore(plan, sleep=_no_sleep)
        result = restore(plan, confirm=True, sleep=_no_sleep)
        after = _attached(ec2, instance)
        old = ec2.describe_volumes(VolumeIds=[before["/dev/sdf"]])["Volumes"][0]
        assert (("ebs:" + before["/dev/sdf"],), "available") == (result.kept, old["State"])
        assert before["/dev/sdf"] != after["/dev/sdf"]
        assert result.details["devices"]["/dev/sdf"] == after["/dev/sdf"]
        state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
        assert "running" == state["State"]["Name"]

    def test_attach_to_a_free_device_is_not_destructive(self, ec2: Any) -> None:
        """A free device takes the volume without stopping the instance."""
        instance = _instance(ec2)
        volume = EbsVolume(
            _attached(ec2, instance)["/dev/sdf"], region=REGION, retry=RetryPolicy(sleep=_no_sleep)
        )
        point = volume.create_backup(token="one")
        plan = plan_restore(volume, point=point, attach_to=instance, devices=["/dev/sdg"], now=NOW)
        assert not plan.destructive
        assert [StepAction.CREATE, StepAction.VERIFY, StepAction.ATTACH] == [
            s.action for s in plan.steps
        ]
        restore(plan, sleep=_no_sleep)
        assert "/dev/sdg" in _attached(ec2, instance)

    def test_volume_attached_since_the_plan_needs_confirm_and_is_kept(self, ec2: Any) -> None:
        """A device free at planning but taken now: refused and named; confirmed, the volume is kept."""
        instance = _instance(ec2)
        volume = EbsVolume(
            _attached(ec2, instance)["/dev/sdf"], region=REGION, retry=RetryPolicy(sleep=_no_sleep)
        )
        point = volume.create_backup(token="one")
        plan = plan_restore(volume, point=point, attach_to=instance, devices=["/dev/sdg"], now=NOW)
        assert not plan.destructive
        zone = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0][
            "Placement"
        ]["AvailabilityZone"]
        theirs = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
        ec2.attach_volume(VolumeId=theirs, InstanceId=instance, Device="/dev/sdg")
        with pytest.raises(
            PolicyError,
            match=rf"Changed since the plan: ec2:{instance}:/dev/sdg: 'free' at planning, "
            rf"'volume {theirs}' now",
        ):
            restore(plan, sleep=_no_sleep)
        assert theirs == _attached(ec2, instance)["/dev/sdg"]
        result = restore(plan, confirm=True, sleep=_no_sleep)
        kept = ec2.describe_volumes(VolumeIds=[theirs])["Volumes"][0]
        assert ((f"ebs:{theirs}",), "available") == (result.kept, kept["State"])
        assert result.details["devices"]["/dev/sdg"] == _attached(ec2, instance)["/dev/sdg"]


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket="assets")
    client.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Enabled"})
    return client


def _write(s3: Any, when: datetime, **objects: str) -> None:
    # moto stamps LastModified with the wall clock: travel to the moment of each write.
    with time_machine.travel(when, tick=False):
        for key, body in objects.items():
            s3.put_object(Bucket="assets", Key=f"img/{key}", Body=body.encode())


def _read(s3: Any, bucket: str = "assets", prefix: str = "img/") -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"].removeprefix(prefix): s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]
        .read()
        .decode()
        for o in listed
    }


T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class TestS3:
    def test_in_place_needs_confirm_and_keeps_versions(self, s3: Any) -> None:
        """An in-place restore is destructive; after it the prefix is as it was, old versions kept."""
        _write(s3, T0, a="a1", b="b1")
        _write(s3, T0 + timedelta(hours=2), a="a2", c="c2")
        bucket = S3Bucket(
            "assets", prefix="img/", region=REGION, retry=RetryPolicy(sleep=_no_sleep)
        )
        plan = plan_restore(bucket, at=T0 + timedelta(hours=1), now=T0 + timedelta(days=1))
        assert (True, True) == (plan.in_place, plan.destructive)
        with pytest.raises(PolicyError, match="confirm"):
            restore(plan)
        assert {"a": "a2", "b": "b1", "c": "c2"} == _read(s3)
        result = restore(plan, confirm=True)
        assert {"a": "a1", "b": "b1"} == _read(s3)
        versions = s3.list_object_versions(Bucket="assets", Prefix="img/a")["Versions"]
        assert ({"a1", "a2"}, True) == (
            {
                s3.get_object(Bucket="assets", Key="img/a", VersionId=v["VersionId"])["Body"]
                .read()
                .decode()
                for v in versions
            },
            result.ok,
        )

    def test_in_place_without_versioning_is_refused(self, s3: Any) -> None:
        """Without versioning an in-place restore would lose the current data: refused at planning."""
        _write(s3, T0, a="a1")
        s3.put_bucket_versioning(Bucket="assets", VersioningConfiguration={"Status": "Suspended"})
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        with pytest.raises(
            PolicyError, match=r"^into: expected another bucket or prefix.*versioning Suspended"
        ):
            plan_restore(bucket, at=T0, now=T0 + timedelta(days=1))

    def test_into_another_bucket_is_not_destructive(self, s3: Any) -> None:
        """A restore into an empty bucket creates objects only, and is verified by listing them."""
        _write(s3, T0, a="a1", b="b1")
        _write(s3, T0 + timedelta(hours=2), a="a2")
        s3.create_bucket(Bucket="assets-restored")
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        plan = plan_restore(
            bucket,
            at=T0 + timedelta(hours=1),
            into="s3://assets-restored/img/",
            now=T0 + timedelta(days=1),
        )
        assert not plan.destructive
        result = restore(plan)
        assert ({"a": "a1", "b": "b1"}, True) == (_read(s3, "assets-restored"), result.ok)

    def test_into_an_occupied_unversioned_bucket_is_refused(self, s3: Any) -> None:
        """Objects at an unversioned destination would be overwritten silently: refused."""
        _write(s3, T0, a="a1")
        s3.create_bucket(Bucket="other")
        s3.put_object(Bucket="other", Key="img/a", Body=b"theirs")
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        with pytest.raises(PolicyError, match=r"^into: expected an empty destination"):
            plan_restore(bucket, at=T0, into="s3://other/img/", now=T0 + timedelta(days=1))

    def test_earlier_version_of_one_object(self, s3: Any) -> None:
        """point='key@version' puts that version back as the current one; the newer stays in history."""
        _write(s3, T0, a="a1")
        _write(s3, T0 + timedelta(hours=2), a="a2")
        first = s3.list_object_versions(Bucket="assets", Prefix="img/a")["Versions"][-1][
            "VersionId"
        ]
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        plan = plan_restore(bucket, point=f"img/a@{first}", now=T0 + timedelta(days=1))
        assert plan.destructive
        result = restore(plan, confirm=True)
        assert ({"a": "a1"}, True) == (_read(s3), result.ok)

    def test_object_written_into_the_destination_after_planning(self, s3: Any) -> None:
        """A destination empty at planning but written since: refused and named; confirmed, kept."""
        _write(s3, T0, a="a1")
        s3.create_bucket(Bucket="copy")
        s3.put_bucket_versioning(Bucket="copy", VersioningConfiguration={"Status": "Enabled"})
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        plan = plan_restore(bucket, at=T0, into="s3://copy/img/", now=T0 + timedelta(days=1))
        assert not plan.destructive
        s3.put_object(Bucket="copy", Key="img/a", Body=b"theirs")
        with pytest.raises(
            PolicyError,
            match=r"Changed since the plan: s3://copy/img/: 'no objects' at planning, "
            r"'1 object\(s\) .*newest: img/a\)' now",
        ):
            restore(plan)
        assert {"a": "theirs"} == _read(s3, "copy")
        result = restore(plan, confirm=True)
        assert ({"a": "a1"}, {"a1", "theirs"}) == (_read(s3, "copy"), _bodies(s3, "copy", "img/a"))
        assert result.ok

    def test_unversioned_destination_written_after_planning_is_refused_even_confirmed(
        self, s3: Any
    ) -> None:
        """What was written since the plan could not be kept without versioning: never overwritten."""
        _write(s3, T0, a="a1")
        s3.create_bucket(Bucket="copy")
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        plan = plan_restore(bucket, at=T0, into="s3://copy/img/", now=T0 + timedelta(days=1))
        s3.put_object(Bucket="copy", Key="img/a", Body=b"theirs")
        with pytest.raises(PolicyError, match=r"^into: expected an empty destination"):
            restore(plan, confirm=True)
        assert {"a": "theirs"} == _read(s3, "copy")

    def test_in_place_plan_with_nothing_to_do_refuses_live_changes(self, s3: Any) -> None:
        """An in-place plan made when nothing differed does not overwrite what changed since."""
        _write(s3, T0, a="a1")
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        plan = plan_restore(bucket, at=T0 + timedelta(hours=1), now=T0 + timedelta(days=1))
        assert not plan.destructive
        _write(s3, T0 + timedelta(hours=2), a="live")
        with pytest.raises(PolicyError, match=r"Changed since the plan: s3://assets/img/: "):
            restore(plan)
        assert {"a": "live"} == _read(s3)
        result = restore(plan, confirm=True)
        assert ({"a": "a1"}, {"a1", "live"}) == (_read(s3), _bodies(s3, "assets", "img/a"))
        assert result.ok

    def test_version_copied_over_a_key_written_after_planning(self, s3: Any) -> None:
        """One object's version into a key free at planning and written since: refused, then kept."""
        _write(s3, T0, a="a1")
        first = s3.list_object_versions(Bucket="assets", Prefix="img/a")["Versions"][0]["VersionId"]
        s3.create_bucket(Bucket="copy")
        s3.put_bucket_versioning(Bucket="copy", VersioningConfiguration={"Status": "Enabled"})
        bucket = S3Bucket("assets", prefix="img/", region=REGION)
        plan = plan_restore(
            bucket, point=f"img/a@{first}", into="s3://copy/img/", now=T0 + timedelta(days=1)
        )
        assert not plan.destructive
        s3.put_object(Bucket="copy", Key="img/a", Body=b"theirs")
        with pytest.raises(PolicyError, match=r"s3://copy/img/a: 'absent' at planning, 'version "):
            restore(plan)
        restore(plan, confirm=True)
        assert ({"a": "a1"}, {"a1", "theirs"}) == (_read(s3, "copy"), _bodies(s3, "copy", "img/a"))


def _bodies(s3: Any, bucket: str, key: str) -> set[str]:
    """The contents of every version of *key*."""
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return {
        s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read().decode()
        for v in versions
    }
