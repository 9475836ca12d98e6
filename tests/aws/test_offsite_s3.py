"""S3 targets with a copy tier in another account: manifests and versions in the backup account.

moto (in-process) keeps one set of buckets per account; with ``MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS``
off, a request for another account's bucket is refused (``AccessDenied``), as AWS refuses it
without a bucket policy. Every test here runs so: the copy streams (production reads, the backup
account writes), so it works without any cross-account grant, and production's credentials
cannot read or delete the copies. Credentials from STS ``AssumeRole`` act as the role's account.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from backuppolicy.aws import _s3_copy
from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import TAG_TIER, RecoveryPoint
from backuppolicy.core.policy import Policy
from backuppolicy.core.targets import Destination
from tests.aws.accounts import BACKUP, REGION, ROLE, assert_denied, backup_session

SOURCE = "shop-assets"
STORE_BUCKET = "shop-offsite"
STORE = f"s3://{STORE_BUCKET}/assets"


def _no_sleep(_seconds: float) -> None:
    """Retries never wait in tests."""


FAST = RetryPolicy(sleep=_no_sleep, max_attempts=2)


@pytest.fixture(name="prod")
def _prod(accounts_apart: None) -> boto3.Session:
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=SOURCE)
    s3.put_bucket_versioning(Bucket=SOURCE, VersioningConfiguration={"Status": "Enabled"})
    return session


@pytest.fixture(name="backup")
def _backup(prod: boto3.Session) -> boto3.Session:
    """The backup account, as its own credentials see it; it owns the store's bucket."""
    session = backup_session(prod)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=STORE_BUCKET)
    s3.put_bucket_versioning(Bucket=STORE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return session


@pytest.fixture(name="key")
def _key(backup: boto3.Session) -> str:
    return str(backup.client("kms").create_key()["KeyMetadata"]["Arn"])


def _policy(key: str, *, store: str | None = STORE) -> Policy:
    location: dict[str, str] = {"region": REGION, "kms_key_id": key}
    if store is not None:
        location["store"] = store
    return Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day"},
            "retention": {"max_age": "35d"},
            "tiers": [
                {"name": "local", "every": "day"},
                {"name": "offsite", "every": "week", "account": ROLE, "location": location},
            ],
            "targets": [
                {
                    "name": "assets",
                    "kind": "s3-bucket",
                    "settings": {"bucket": SOURCE, "prefix": "img/", "region": REGION},
                }
            ],
        }
    )


@pytest.fixture(name="target")
def _target(prod: boto3.Session, key: str) -> S3Bucket:
    policy = _policy(key)
    target = S3Bucket.from_spec(policy.target("assets"), policy, session=prod)
    target.retry = FAST
    return target


def _put(session: boto3.Session, key: str, body: bytes) -> None:
    session.client("s3").put_object(Bucket=SOURCE, Key=key, Body=body)


def _backup_of_three_parts(
    target: S3Bucket, prod: boto3.Session, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> RecoveryPoint:
    """A manifest of ``img/big.bin``: 11 MiB of *body*, three parts of at most 5 MiB to stream."""
    assert 11 * 1024**2 == len(body)
    monkeypatch.setattr(_s3_copy, "STREAM_PART_SIZE", 5 * 1024**2)
    _put(prod, "img/big.bin", body)
    return target.create_backup()


def _offsite(target: S3Bucket) -> Destination:
    return Destination(tier="offsite", region=REGION, account=BACKUP, store=STORE)


def _copy(target: S3Bucket, prod: boto3.Session) -> tuple[RecoveryPoint, RecoveryPoint]:
    _put(prod, "img/a.png", b"version one of a")
    _put(prod, "img/b.png", b"b" * 100)
    manifest = target.create_backup(token="2026-11-26")
    return manifest, target.copy(manifest, _offsite(target))


class TestCopyIntoBackupAccount:
    def test_copy_lands_in_the_backup_accounts_bucket_encrypted_with_its_key(
        self, target: S3Bucket, prod: boto3.Session, backup: boto3.Session, key: str
    ) -> None:
        """Manifest and versions are written by the backup account, with the tier's key."""
        _, copy = _copy(target, prod)
        assert f"aws:{BACKUP}:{REGION}" == copy.location
        assert "offsite" == copy.tier
        assert copy.managed
        assert 2 == copy.details["objects"]
        s3 = backup.client("s3")
        data = s3.get_object(Bucket=STORE_BUCKET, Key="assets/a.png")
        assert b"version one of a" == data["Body"].read()
        assert "aws:kms" == data["ServerSideEncryption"]
        assert key == data["SSEKMSKeyId"]
        head = s3.head_object(Bucket=STORE_BUCKET, Key=copy.details["key"])
        assert key == head["SSEKMSKeyId"]
        tags = s3.get_object_tagging(Bucket=STORE_BUCKET, Key=copy.details["key"])["TagSet"]
        assert {"Key": TAG_TIER, "Value": "offsite"} in tags

    def test_copies_are_points_of_their_tier_and_copying_again_copies_nothing(
        self, target: S3Bucket, prod: boto3.Session, backup: boto3.Session
    ) -> None:
        """list_points shows the copy in its tier; a second copy returns the first."""
        manifest, copy = _copy(target, prod)
        listed = {p.id: p for p in target.list_points() if p.kind == "s3-manifest"}
        assert {manifest.id, copy.id} == set(listed)
        assert "offsite" == listed[copy.id].tier
        assert f"aws:{BACKUP}:{REGION}" == listed[copy.id].location
        again = target.copy(manifest, _offsite(target))
        assert copy.id == again.id
        versions = backup.client("s3").list_object_versions(Bucket=STORE_BUCKET)["Versions"]
        assert 3 == len(versions)  # two objects and the manifest, written once

    def test_large_object_streams_in_parts(
        self,
        target: S3Bucket,
        prod: boto3.Session,
        backup: boto3.Session,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Above the part size a version is uploaded in parts of ranged reads, byte for byte."""
        body = bytes(range(256)) * (11 * 1024 * 4)
        manifest = _backup_of_three_parts(target, prod, monkeypatch, body)
        target.copy(manifest, _offsite(target))
        got = backup.client("s3").get_object(Bucket=STORE_BUCKET, Key="assets/big.bin")
        assert body == got["Body"].read()
        assert got["ETag"].strip('"').endswith("-3")

    def test_a_part_that_cannot_be_read_aborts_the_streamed_upload(
        self,
        target: S3Bucket,
        prod: boto3.Session,
        backup: boto3.Session,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A failed ranged read aborts the store's multipart upload: no parts are left behind."""
        manifest = _backup_of_three_parts(target, prod, monkeypatch, bytes(11 * 1024**2))
        read = target.call

        def second_part_fails(service: str, operation: str, **params: Any) -> dict[str, Any]:
            if operation == "get_object" and str(params.get("Range")).startswith("bytes=5242880-"):
                raise BackendError("read failed", operation="GetObject")
            return read(service, operation, **params)

        monkeypatch.setattr(target, "call", second_part_fails)
        with pytest.raises(BackendError, match="read failed"):
            target.copy(manifest, _offsite(target))
        store = backup.client("s3")
        assert [] == store.list_multipart_uploads(Bucket=STORE_BUCKET).get("Uploads", [])
        assert "Versions" not in store.list_object_versions(
            Bucket=STORE_BUCKET, Prefix="assets/big"
        )

    def test_copies_are_checked_with_the_backup_accounts_credentials(
        self, target: S3Bucket, prod: boto3.Session
    ) -> None:
        """Integrity reads (manifest entries, backed-up versions) of a copy run in its account."""
        _, copy = _copy(target, prod)
        entries = target.manifest_entries(copy)
        assert {"a.png", "b.png"} == {e.path for e in entries}
        a = next(e for e in entries if e.path == "a.png")
        assert b"version one of a" == target.open_backed_up(a).read()
        fresh = target.refresh(copy)
        assert fresh is not None
        assert copy.id == fresh.id


class TestBlastRadius:
    def test_production_credentials_cannot_read_or_delete_the_copy(
        self, target: S3Bucket, prod: boto3.Session, backup: boto3.Session
    ) -> None:
        """The copy belongs to the backup account: production's own credentials are refused."""
        _, copy = _copy(target, prod)
        s3 = prod.client("s3")
        where = {"Bucket": STORE_BUCKET, "Key": copy.details["key"]}
        assert_denied(lambda: s3.delete_object(**where, VersionId=copy.details["version_id"]))
        assert_denied(lambda: s3.delete_object(**where))
        assert_denied(lambda: s3.list_object_versions(Bucket=STORE_BUCKET))
        assert backup.client("s3").head_object(**where)["ContentLength"] > 0

    def test_prune_deletes_with_the_backup_accounts_credentials(
        self, target: S3Bucket, prod: boto3.Session, backup: boto3.Session
    ) -> None:
        """Deleting the copy (prune) removes its manifest and its data, in the backup account."""
        _, copy = _copy(target, prod)
        target.delete(copy)
        left = backup.client("s3").list_object_versions(Bucket=STORE_BUCKET)
        assert [] == left.get("Versions", [])
        assert copy.id not in {p.id for p in target.list_points()}
        assert 2 == len(
            prod.client("s3").list_object_versions(Bucket=SOURCE, Prefix="img/")["Versions"]
        )

    def test_restore_of_an_old_version_from_the_copy_after_production_lost_it(
        self, target: S3Bucket, prod: boto3.Session, backup: boto3.Session
    ) -> None:
        """Every version in production is destroyed; the off-site copy still restores version one."""
        _, copy = _copy(target, prod)
        s3 = prod.client("s3")
        _put(prod, "img/a.png", b"encrypted by ransomware")
        for version in s3.list_object_versions(Bucket=SOURCE)["Versions"]:
            s3.delete_object(Bucket=SOURCE, Key=version["Key"], VersionId=version["VersionId"])
        with target.restore(copy) as restored:
            bucket, _, prefix = restored.id.removeprefix("s3://").partition("/")
            assert STORE_BUCKET == bucket
            body = backup.client("s3").get_object(Bucket=bucket, Key=f"{prefix}a.png")["Body"]
            assert b"version one of a" == body.read()
            assert 2 == restored.details["objects"]
        scratch = backup.client("s3").list_object_versions(Bucket=bucket, Prefix=prefix)
        assert [] == scratch.get("Versions", [])


class TestPolicy:
    def test_tier_in_another_account_needs_its_store(self, prod: boto3.Session, key: str) -> None:
        """An S3 copy tier in another account without location.store names the field."""
        policy = _policy(key, store=None)
        with pytest.raises(PolicyError) as info:
            S3Bucket.from_spec(policy.target("assets"), policy, session=prod)
        assert "tiers[offsite].location.store" == info.value.path

    def test_copy_to_another_store_than_the_tiers_is_refused(
        self, target: S3Bucket, prod: boto3.Session, backup: boto3.Session
    ) -> None:
        """The destination's store must be the tier's: nothing else is written there."""
        _put(prod, "img/a.png", b"a")
        manifest = target.create_backup()
        other = Destination(
            tier="offsite", region=REGION, account=BACKUP, store=f"s3://{STORE_BUCKET}/elsewhere"
        )
        with pytest.raises(PolicyError) as info:
            target.copy(manifest, other)
        assert "destination.store" == info.value.path
        assert "Versions" not in backup.client("s3").list_object_versions(Bucket=STORE_BUCKET)
