"""Verifiers, integrity checks, restore tests and the sweeper on AWS targets, under moto in-process.

moto runs no database engine: the RDS restore test restores through moto and resolves the
restored instance to a local SQLite file that stands in for it (`StaticEndpoint`), so the
evidence says where the probe really connected.
"""

# "token" is an idempotency token, not a password.
from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
import time_machine

from backuppolicy.aws import EbsVolume, RdsInstance, RetryPolicy, S3Bucket
from backuppolicy.checks._declared import ManifestProbe
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.metadata import (
    Encrypted,
    NotPublic,
    ObjectLock,
    SettingsMatchPolicy,
    VersioningEnabled,
)
from backuppolicy.checks.probes import S3ObjectProbe, SqlProbe, StaticEndpoint
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckStatus
from backuppolicy.core.targets import IsolationProfile
from backuppolicy.workflows.verify import _chosen_points, sweep_restore_tests
from tests.aws.aws_defaults import PUBLIC_ACCESS_FLAGS, create_bucket

REGION = "us-east-1"
# One session for every test: each new session parses the service models again.
SESSION = boto3.Session(region_name=REGION)
FAST = RetryPolicy(sleep=lambda _seconds: None)
ISOLATION = IsolationProfile(name_prefix="bp-restore-", sweep_tag="backuppolicy:restore-test")


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(name="aws")
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, without EC2's default AMIs (slow to load)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with moto.mock_aws():
        yield


@pytest.fixture(name="context")
def _context() -> VerifyContext:
    return VerifyContext(now=_now(), isolation=ISOLATION)


# --------------------------------------------------------------------------- EBS


@pytest.fixture(name="ec2")
def _ec2(aws: None) -> Any:
    return SESSION.client("ec2")


@pytest.fixture(name="volume")
def _volume(ec2: Any) -> EbsVolume:
    key = SESSION.client("kms").create_key()["KeyMetadata"]["Arn"]
    vid = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a", Encrypted=True, KmsKeyId=key)[
        "VolumeId"
    ]
    return EbsVolume(
        vid, name="web-data", session=SESSION, region=REGION, retry=FAST, poll_interval=0.01
    )


def _our_volumes(ec2: Any) -> list[str]:
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": [ISOLATION.sweep_tag]}])
    return [v["VolumeId"] for v in volumes["Volumes"]]


class TestEbs:
    def test_integrity_restores_a_volume_of_the_right_size_and_tears_it_down(
        self, volume, ec2, context
    ):
        """Without the EBS direct APIs, the snapshot is restored to an 8 GiB volume, then removed."""
        point = volume.create_backup()
        result = IntegrityCheck(ebs_direct=False).verify(volume, point, context)
        assert (CheckStatus.PASS, "restore-to-volume", True) == (
            result.status,
            result.evidence["method"],
            result.evidence["torn_down"],
        )
        assert [8] == [v["size_gib"] for v in result.evidence["volumes"]]
        assert [] == _our_volumes(ec2)

    def test_without_restore_only_the_state_is_checked(self, volume, ec2, context):
        """restore_volumes=False checks the snapshot state and creates nothing."""
        point = volume.create_backup()
        result = IntegrityCheck(ebs_direct=False, restore_volumes=False).verify(
            volume, point, context
        )
        assert (CheckStatus.PASS, "snapshot-state") == (result.status, result.evidence["method"])

    def test_encrypted_snapshot_passes(self, volume, context):
        """The snapshot of an encrypted volume passes (moto omits the snapshot's KmsKeyId)."""
        point = volume.create_backup()
        result = Encrypted().verify(volume, point, context)
        assert (CheckStatus.PASS, True) == (result.status, result.evidence["encrypted"])

    def test_unencrypted_snapshot_fails(self, ec2, context):
        """The snapshot of an unencrypted volume fails Encrypted."""
        vid = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
        plain = EbsVolume(vid, session=SESSION, region=REGION, retry=FAST)
        assert CheckStatus.FAIL == Encrypted().verify(plain, plain.create_backup(), context).status

    def test_public_snapshot_fails(self, volume, ec2, context):
        """Sharing createVolumePermission with group 'all' fails NotPublic; private passes."""
        point = volume.create_backup()
        assert CheckStatus.PASS == NotPublic().verify(volume, point, context).status
        ec2.modify_snapshot_attribute(
            SnapshotId=point.id,
            Attribute="createVolumePermission",
            OperationType="add",
            GroupNames=["all"],
        )
        result = NotPublic().verify(volume, point, context)
        assert (
            CheckStatus.FAIL,
            (f"snapshot {point.id}: createVolumePermission shared with group 'all'",),
        ) == (
            result.status,
            result.issues,
        )


class TestSweepEbs:
    def test_old_tagged_volumes_are_deleted(self, volume, ec2):
        """An old volume with the sweep tag is deleted; a new one and an untagged old one stay."""
        tags = [
            {"ResourceType": "volume", "Tags": [{"Key": ISOLATION.sweep_tag, "Value": "snap-x"}]}
        ]
        now = _now()
        with time_machine.travel(now - timedelta(days=2), tick=True):
            old = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a", TagSpecifications=tags)
            untagged = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")
        new = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a", TagSpecifications=tags)
        swept = sweep_restore_tests([volume], older_than="1d", now=now)
        assert [("ebs-volume", old["VolumeId"], "deleted")] == [
            (s.kind, s.id, s.action) for s in swept
        ]
        left = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
        assert {new["VolumeId"], untagged["VolumeId"], volume.volume_id} == left


# --------------------------------------------------------------------------- RDS


@pytest.fixture(name="rds")
def _rds(aws: None) -> Any:
    return SESSION.client("rds")


@pytest.fixture(name="db")
def _db(rds: Any) -> RdsInstance:
    rds.create_db_instance(
        DBInstanceIdentifier="shop-prod",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin",
        MasterUserPassword="password1",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
        PreferredBackupWindow="04:00-05:00",
    )
    return RdsInstance(
        "shop-prod",
        name="shop-db",
        policy="web-apps",
        session=SESSION,
        region=REGION,
        retry=FAST,
        sleep=lambda _s: None,
        poll_interval=0,
    )


@pytest.fixture(name="stand_in")
def _stand_in(tmp_path: Path) -> Path:
    """A real SQLite database with the data the restored RDS instance stands for."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table orders (id integer primary key, total integer)")
        conn.executemany("insert into orders (total) values (?)", [(10,), (20,), (30,)])
    conn.close()
    return path


class TestRds:
    def test_restore_test_composes_moto_restore_and_local_database(
        self, db, rds, stand_in, context
    ):
        """moto restores and deletes the instance; the probe runs on the local stand-in, as the evidence says."""
        point = db.create_backup()
        resolver = StaticEndpoint(
            str(stand_in),
            description="local SQLite stand-in for the restored instance (moto runs no database)",
        )
        probe = SqlProbe(
            "select count(*), sum(total) from orders", expect=[(3, 60)], connect=sqlite3.connect
        )
        ctx = VerifyContext(now=_now(), isolation=ISOLATION, endpoint_resolver=resolver)
        result = RestoreTest(probes=[probe]).verify(db, point, ctx)
        assert CheckStatus.PASS == result.status
        assert resolver.description == result.evidence["probe_endpoint_resolved_by"]
        assert str(stand_in) == result.evidence["probe_endpoint"]
        restored = result.evidence["restored"]
        assert restored["id"].startswith("bp-restore-")
        assert ["shop-prod"] == [
            i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]
        ]

    def test_wrong_expectation_fails(self, db, stand_in, context):
        """The same restore with a wrong expectation fails."""
        point = db.create_backup()
        probe = SqlProbe("select count(*) from orders", expect=4, connect=sqlite3.connect)
        ctx = VerifyContext(now=_now(), endpoint_resolver=StaticEndpoint(str(stand_in)))
        assert CheckStatus.FAIL == RestoreTest(probes=[probe]).verify(db, point, ctx).status

    def test_snapshot_shared_with_all_fails(self, db, rds, context):
        """A snapshot whose restore attribute contains 'all' fails NotPublic."""
        point = db.create_backup()
        assert CheckStatus.PASS == NotPublic().verify(db, point, context).status
        rds.modify_db_snapshot_attribute(
            DBSnapshotIdentifier=point.id, AttributeName="restore", ValuesToAdd=["all"]
        )
        assert CheckStatus.FAIL == NotPublic().verify(db, point, context).status

    def test_settings_drift_from_policy(self, db):
        """Retention 7 days drifts from the policy's 35; after enforce it matches."""
        policy = Policy.from_dict(
            {
                "name": "web-apps",
                "schedule": {"every": "day", "at": "04:00", "tz": "GMT"},
                "retention": {"max_age": "35d"},
                "targets": [
                    {
                        "name": "shop-db",
                        "kind": "rds-instance",
                        "settings": {"db_instance_id": "shop-prod"},
                    }
                ],
            }
        )
        ctx = VerifyContext(now=_now(), policy=policy)
        result = SettingsMatchPolicy().verify(db, None, ctx)
        assert (CheckStatus.FAIL, ("retention_days: expected 35, actual 7",)) == (
            result.status,
            result.issues,
        )
        db.enforce({"retention_days": 35}, apply=True)
        assert CheckStatus.PASS == SettingsMatchPolicy().verify(db, None, ctx).status

    def test_integrity_of_rds_snapshot_status_is_not_a_pass(self, db, context):
        """RDS keeps no checksum: status available proves existence only, UNPROVEN, never a PASS."""
        point = db.create_backup()
        result = IntegrityCheck().verify(db, point, context)
        assert (CheckStatus.UNPROVEN, "rds-snapshot-status") == (
            result.status,
            result.evidence["method"],
        )


class TestSweepRds:
    def test_old_restored_instance_is_deleted(self, db, rds):
        """A restored instance left behind (sweep tag, old) is deleted; the source stays."""
        now = _now()
        with time_machine.travel(now - timedelta(days=2), tick=True):
            rds.create_db_instance(
                DBInstanceIdentifier="bp-restore-shop-db-1234",
                Engine="postgres",
                DBInstanceClass="db.t3.micro",
                MasterUsername="admin",
                MasterUserPassword="password1",
                AllocatedStorage=20,
                Tags=[{"Key": ISOLATION.sweep_tag, "Value": "2026-01-01T00:00:00+00:00"}],
            )
        swept = sweep_restore_tests({"shop-db": db}, older_than="1d", now=now)
        assert [("rds-instance", "bp-restore-shop-db-1234", "deleted")] == [
            (s.kind, s.id, s.action) for s in swept
        ]
        assert ["shop-prod"] == [
            i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]
        ]

    def test_sweep_by_session_and_region(self, rds):
        """Without targets, a session and a region are enough."""
        now = _now()
        with time_machine.travel(now - timedelta(days=2), tick=True):
            rds.create_db_instance(
                DBInstanceIdentifier="bp-restore-x-1",
                Engine="postgres",
                DBInstanceClass="db.t3.micro",
                MasterUsername="admin",
                MasterUserPassword="password1",
                AllocatedStorage=20,
                Tags=[{"Key": ISOLATION.sweep_tag, "Value": "x"}],
            )
        swept = sweep_restore_tests(
            older_than="1d", now=now, session=SESSION, regions=[REGION], dry_run=True
        )
        assert [("bp-restore-x-1", "would delete")] == [
            (s.id, s.action) for s in swept if s.kind == "rds-instance"
        ]


# --------------------------------------------------------------------------- S3


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = SESSION.client("s3")
    create_bucket(client, Bucket="acme-assets")
    client.put_bucket_versioning(
        Bucket="acme-assets", VersioningConfiguration={"Status": "Enabled"}
    )
    return client


@pytest.fixture(name="bucket")
def _bucket(s3: Any) -> S3Bucket:
    return S3Bucket(
        "acme-assets", prefix="img/", name="assets", session=SESSION, region=REGION, retry=FAST
    )


def _version(bucket: S3Bucket, key: str) -> Any:
    return next(
        p for p in bucket.list_points() if p.details.get("key") == key and p.details["is_latest"]
    )


class TestS3:
    def test_stored_sha256_checks_without_download(self, bucket, s3, context):
        """An object uploaded with a SHA-256 checksum is checked from its metadata alone."""
        s3.put_object(
            Bucket="acme-assets", Key="img/a.png", Body=b"png bytes", ChecksumAlgorithm="SHA256"
        )
        result = IntegrityCheck().verify(bucket, _version(bucket, "img/a.png"), context)
        assert (CheckStatus.PASS, "stored-sha256", 0) == (
            result.status,
            result.evidence["method"],
            result.evidence["downloaded_bytes"],
        )

    def test_single_part_unencrypted_uses_etag(self, bucket, s3, context):
        """Without a SHA-256 checksum, a single-part object's ETag (MD5) is the proof."""
        s3.put_object(Bucket="acme-assets", Key="img/b.png", Body=b"other bytes")
        result = IntegrityCheck().verify(bucket, _version(bucket, "img/b.png"), context)
        assert (CheckStatus.PASS, "etag-md5") == (result.status, result.evidence["method"])

    def test_always_downloads_and_hashes(self, bucket, s3, context):
        """content='always' re-reads the object and records its SHA-256."""
        body = b"x" * 3000
        s3.put_object(Bucket="acme-assets", Key="img/c.bin", Body=body, ChecksumAlgorithm="SHA256")
        result = IntegrityCheck(content="always").verify(
            bucket, _version(bucket, "img/c.bin"), context
        )
        assert (CheckStatus.PASS, 3000, hashlib.sha256(body).hexdigest()) == (
            result.status,
            result.evidence["downloaded_bytes"],
            result.evidence["sha256"],
        )

    def test_mismatch_with_recorded_values_fails(self, bucket, s3, context):
        """A version whose size, ETag or checksum differ from what was recorded fails."""
        s3.put_object(
            Bucket="acme-assets", Key="img/d.png", Body=b"abc", ChecksumAlgorithm="SHA256"
        )
        point = _version(bucket, "img/d.png")
        wrong = point.evolve(
            size_bytes=4,
            checksum="sha256:" + hashlib.sha256(b"abd").hexdigest(),
            details={**point.details, "etag": "0" * 32},
        )
        result = IntegrityCheck().verify(bucket, wrong, context)
        assert CheckStatus.FAIL == result.status
        assert 3 == len(result.issues)

    def test_missing_version_fails(self, bucket, s3, context):
        """A version deleted since it was listed fails as missing."""
        s3.put_object(Bucket="acme-assets", Key="img/e.png", Body=b"e")
        point = _version(bucket, "img/e.png")
        s3.delete_object(
            Bucket="acme-assets", Key="img/e.png", VersionId=point.details["version_id"]
        )
        result = IntegrityCheck().verify(bucket, point, context)
        assert (CheckStatus.FAIL, True) == (result.status, result.issues[0].endswith(": missing"))

    def test_manifest_checks_every_listed_version(self, bucket, s3, context):
        """A manifest point checks each version it lists; a deleted one fails the check."""
        for name in ("f1", "f2", "f3"):
            s3.put_object(
                Bucket="acme-assets",
                Key=f"img/{name}",
                Body=name.encode(),
                ChecksumAlgorithm="SHA256",
            )
        manifest = bucket.create_backup(token="t1")
        ok = IntegrityCheck().verify(bucket, manifest, context)
        assert (CheckStatus.PASS, 3, {"stored-sha256": 3}) == (
            ok.status,
            ok.evidence["objects"],
            ok.evidence["methods"],
        )
        gone = _version(bucket, "img/f2").details["version_id"]
        s3.delete_object(Bucket="acme-assets", Key="img/f2", VersionId=gone)
        bad = IntegrityCheck().verify(bucket, manifest, context)
        assert (CheckStatus.FAIL, 1) == (bad.status, len(bad.issues))

    @pytest.fixture(name="legacy")
    def _legacy(self, aws: None) -> tuple[S3Bucket, Any]:
        """A bucket whose object was written before versioning was enabled, then overwritten.

        The first write is the "null" version (S3 addresses it as versionId=null); the
        overwrite is the current version, of another size and content.
        """
        client = SESSION.client("s3")
        create_bucket(client, Bucket="acme-legacy")
        client.put_object(Bucket="acme-legacy", Key="img/old.png", Body=b"before versioning")
        client.put_bucket_versioning(
            Bucket="acme-legacy", VersioningConfiguration={"Status": "Enabled"}
        )
        target = S3Bucket("acme-legacy", prefix="img/", session=SESSION, region=REGION, retry=FAST)
        return target, client

    def test_null_version_is_the_one_checked(self, legacy, context):
        """The integrity check of a noncurrent null version reads that version, not the current."""
        target, client = legacy
        client.put_object(Bucket="acme-legacy", Key="img/old.png", Body=b"after")
        (point,) = [p for p in target.list_points() if p.details["version_id"] == "null"]
        old = hashlib.sha256(b"before versioning").hexdigest()
        new = hashlib.sha256(b"after").hexdigest()

        right = IntegrityCheck(content="always").verify(
            target, point.evolve(checksum=f"sha256:{old}"), context
        )
        wrong = IntegrityCheck(content="always").verify(
            target, point.evolve(checksum=f"sha256:{new}"), context
        )

        assert (CheckStatus.PASS, len(b"before versioning"), old) == (
            right.status,
            right.evidence["downloaded_bytes"],
            right.evidence["sha256"],
        )
        assert (CheckStatus.FAIL, old) == (wrong.status, wrong.evidence["sha256"])

    def test_null_version_of_a_never_versioned_bucket(self, aws, context):
        """In a bucket never versioned every object is its null version; the check reads it.

        (moto refuses versionId=null there with a bare 400, S3 does not: the check then asks
        without the version id, which names the same, only, version.)
        """
        client = SESSION.client("s3")
        create_bucket(client, Bucket="acme-plain")
        client.put_object(Bucket="acme-plain", Key="img/p.png", Body=b"plain")
        target = S3Bucket("acme-plain", prefix="img/", session=SESSION, region=REGION, retry=FAST)
        (point,) = target.list_points()

        result = IntegrityCheck(content="always").verify(target, point, context)

        assert ("img/p.png@null", CheckStatus.PASS, 5) == (
            point.id,
            result.status,
            result.evidence["downloaded_bytes"],
        )

    def test_manifest_listing_a_null_version_checks_it(self, legacy, context):
        """A manifest that lists key@null checks the null version after the key is overwritten."""
        target, client = legacy
        manifest = target.create_backup(token="t1")
        client.put_object(Bucket="acme-legacy", Key="img/old.png", Body=b"after")

        result = IntegrityCheck(content="always").verify(target, manifest, context)

        assert ["null"] == [line["version_id"] for line in target.read_manifest(manifest)]
        assert (CheckStatus.PASS, len(b"before versioning")) == (
            result.status,
            result.evidence["downloaded_bytes"],
        ), result.details

    def test_newest_version_chosen_by_listing_order_on_ties(self, bucket, s3):
        """Versions of one second: the check picks the version S3 lists first, not the larger id."""
        with time_machine.travel(datetime(2026, 1, 1, 10, tzinfo=UTC), tick=True):
            for body in (b"v1", b"v2"):  # moto, like S3, stamps LastModified in whole seconds
                s3.put_object(Bucket="acme-assets", Key="img/t.png", Body=body)
        points = list(bucket.list_points())
        newest = next(p for p in points if p.details["is_latest"])
        # Give the older version the larger id: S3's ids carry no time order.
        older = next(p for p in points if not p.details["is_latest"])
        renamed = [older.evolve(id="img/t.png@zzz"), newest.evolve(id="img/t.png@aaa")]

        (chosen,) = _chosen_points(renamed, None, all_points=False)

        assert (newest.created_at, "img/t.png@aaa") == (older.created_at, chosen.id)

    def test_versioning_and_object_lock(self, bucket, s3, context):
        """Versioning passes when enabled; Object Lock off fails, or warns when not required."""
        assert CheckStatus.PASS == VersioningEnabled().verify(bucket, None, context).status
        assert (CheckStatus.FAIL, CheckStatus.WARN) == (
            ObjectLock().verify(bucket, None, context).status,
            ObjectLock(required=False).verify(bucket, None, context).status,
        )
        s3.put_bucket_versioning(
            Bucket="acme-assets", VersioningConfiguration={"Status": "Suspended"}
        )
        assert CheckStatus.FAIL == VersioningEnabled().verify(bucket, None, context).status

    def test_public_access_block(self, bucket, s3, context):
        """A new bucket passes NotPublic (AWS blocks public access by default).

        It fails once a flag is turned off or the block is removed.
        """
        new = NotPublic().verify(bucket, None, context).status
        s3.put_public_access_block(
            Bucket="acme-assets",
            PublicAccessBlockConfiguration={
                **dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
                "BlockPublicPolicy": False,
            },
        )
        one_off = NotPublic().verify(bucket, None, context).status
        s3.delete_public_access_block(Bucket="acme-assets")
        removed = NotPublic().verify(bucket, None, context).status
        assert (CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.FAIL) == (new, one_off, removed)

    def test_new_objects_are_encrypted_like_aws(self, bucket, s3, context):
        """AWS encrypts every new object with SSE-S3: Encrypted passes, naming no KMS key."""
        s3.put_object(Bucket="acme-assets", Key="img/s.png", Body=b"s")
        result = Encrypted().verify(bucket, _version(bucket, "img/s.png"), context)
        assert (CheckStatus.PASS, True, "AES256") == (
            result.status,
            result.evidence["encrypted"],
            result.evidence["kms_key_id"],
        )

    def test_restore_test_with_object_probe(self, bucket, s3, context):
        """A manifest restores under a scratch prefix; the probe finds the object; the prefix is purged."""
        s3.put_object(Bucket="acme-assets", Key="img/logo.png", Body=b"logo")
        manifest = bucket.create_backup(token="t2")
        probe = S3ObjectProbe({"logo.png": "sha256:" + hashlib.sha256(b"logo").hexdigest()})
        result = RestoreTest(probes=[probe]).verify(bucket, manifest, context)
        assert CheckStatus.PASS == result.status, result.details
        left = s3.list_object_versions(Bucket="acme-assets", Prefix="_backuppolicy/restore-tests/")
        assert [] == left.get("Versions", []) + left.get("DeleteMarkers", [])


class TestS3ManifestFingerprint:
    """Restore tests check restored objects against the S3 manifest (issue 12)."""

    def _damaging(self, bucket: S3Bucket, s3: Any, key: str) -> Any:
        """The bucket, whose restores come back with *key* overwritten (a faulty restore)."""
        restore = bucket.restore

        @contextlib.contextmanager
        def damaged(point: Any, into: Any = None) -> Iterator[Any]:
            with restore(point, into) as resource:
                prefix = resource.details["prefix"]
                s3.put_object(Bucket="acme-assets", Key=prefix + key, Body=b"damaged")
                yield resource

        bucket.restore = damaged  # type: ignore[method-assign]
        return bucket

    def _manifest(self, bucket: S3Bucket, s3: Any) -> Any:
        for name in ("f1", "f2", "f3", "f4"):
            s3.put_object(Bucket="acme-assets", Key=f"img/{name}", Body=name.encode() * 100)
        return bucket.create_backup(token="t1")

    def test_every_restored_object_matches_its_backed_up_version(self, bucket, s3, context):
        """Each object the manifest lists is read back from the restore and from the backup."""
        manifest = self._manifest(bucket, s3)
        probes = [ManifestProbe(), ManifestProbe(("f2",), sample=0, name="s3-keys")]
        result = RestoreTest(probes=probes).verify(bucket, manifest, context)
        every, named = result.evidence["probes"]
        assert (CheckStatus.PASS, 4, 4, 1) == (
            result.status,
            every["evidence"]["manifest_entries"],
            every["evidence"]["matched"],
            named["evidence"]["matched"],
        )
        first = every["evidence"]["comparisons"][0]
        assert (
            first["expected"]
            == first["observed"]
            == ("sha256:" + hashlib.sha256(b"f1" * 100).hexdigest())
        )

    def test_damaged_restored_object_is_named(self, bucket, s3, context):
        """A restored object that differs from its backed-up version fails, named."""
        manifest = self._manifest(bucket, s3)
        damaged = self._damaging(bucket, s3, "f3")
        result = RestoreTest(probes=[ManifestProbe(sample=2, seed="x")]).verify(
            damaged, manifest, context
        )
        result_all = RestoreTest(probes=[ManifestProbe()]).verify(damaged, manifest, context)
        (bad,) = [
            c for c in result_all.evidence["probes"][0]["evidence"]["comparisons"] if not c["ok"]
        ]
        assert ("f3", CheckStatus.FAIL) == (bad["path"], result_all.status)
        assert 2 == result.evidence["probes"][0]["evidence"]["checked"]
