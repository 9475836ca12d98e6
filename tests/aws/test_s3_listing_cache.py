"""Listings of S3-backed points read each immutable thing once, and every mutable thing each time.

`S3Bucket` keeps the head (metadata, size) of each manifest version it listed and skips its
``HeadObject`` on later listings while the bucket has no Object Lock; `S3Store` keeps each
sidecar's content by key and ETag. These tests count the requests of a second listing and
change the bucket between listings (another process placing a hold, Object Lock and a
retention, a rewritten or deleted sidecar or manifest): the second listing must see it.

moto runs in-process (the ``aws`` fixture). moto refuses ``PutObjectLockConfiguration`` on a
bucket that holds objects ("Bucket needs to be empty"), which AWS allows since 2023; the test
of Object Lock enabled between two listings therefore uses a bucket created with Object Lock
and answers the first listing's ``GetObjectLockConfiguration`` with
``ObjectLockConfigurationNotFoundError`` through a botocore ``before-call`` hook (the bucket
as it was before Object Lock was enabled).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.model import LegalHold, RecoveryPoint
from backuppolicy.local import Directory, S3Store
from tests.aws.aws_defaults import create_bucket

BUCKET = "assets"
VAULT = "vault"
STORE_BUCKET = "bp-offsite"
PREFIX = "backups/"
ACCOUNT = "123456789012"
HOLD = LegalHold(reason="litigation", reference="case-17", since=datetime(2026, 1, 5, tzinfo=UTC))
T0 = datetime(2026, 11, 26, 4, 0, 0, tzinfo=UTC)


def _calls(client: Any) -> Counter[str]:
    """The S3 operations *client* makes from now on, counted by name."""
    calls: Counter[str] = Counter()

    def record(model: Any, **_kwargs: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.s3", record)
    return calls


def _not_found(**_kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
    """S3's answer for a bucket without Object Lock."""
    code = "ObjectLockConfigurationNotFoundError"
    return AWSResponse("https://s3", 404, {}, None), {
        "Error": {"Code": code, "Message": "Object Lock configuration does not exist"},
        "ResponseMetadata": {"HTTPStatusCode": 404},
    }


def _manifests(target: S3Bucket) -> dict[str, RecoveryPoint]:
    return {p.id: p for p in target.list_points() if p.kind == "s3-manifest"}


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    create_bucket(client, Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    create_bucket(client, Bucket=VAULT, ObjectLockEnabledForBucket=True)
    client.put_object(Bucket=BUCKET, Key="img/a.png", Body=b"a1")
    client.put_object(Bucket=VAULT, Key="img/a.png", Body=b"a1", ChecksumAlgorithm="SHA256")
    return client


@pytest.fixture(name="client")
def _client(s3: Any) -> Any:
    """The client of the target under test (counting and fault hooks go on it)."""
    return boto3.client("s3", region_name="us-east-1")


def _target(client: Any, bucket: str = BUCKET) -> S3Bucket:
    return S3Bucket(
        bucket,
        prefix="img/",
        clients={"s3": client},
        account_id=ACCOUNT,
        retry=RetryPolicy(sleep=lambda _s: None),
    )


class TestManifestHeads:
    def test_second_listing_asks_tags_and_no_heads(self, client: Any):
        """N known manifests, no Object Lock: N GetObjectTagging, 0 HeadObject, 1 lock check."""
        target = _target(client)
        for _ in range(3):
            target.create_backup()
        calls = _calls(client)
        first = _manifests(target)
        assert (3, 3, 1) == (
            calls["HeadObject"],
            calls["GetObjectTagging"],
            calls["GetObjectLockConfiguration"],
        )
        calls.clear()
        second = _manifests(target)
        assert (0, 3, 1) == (
            calls["HeadObject"],
            calls["GetObjectTagging"],
            calls["GetObjectLockConfiguration"],
        )
        assert first == second

    def test_hold_placed_by_another_process_is_seen(self, s3: Any, client: Any):
        """A hold tag written by another S3Bucket between two listings is in the second one."""
        target = _target(client)
        point = target.create_backup()
        assert not _manifests(target)[point.id].held
        other = S3Bucket(BUCKET, prefix="img/", account_id=ACCOUNT)  # its own client
        other.place_hold(point, HOLD)
        listed = _manifests(target)[point.id]
        assert ("litigation", "case-17") == (listed.legal_hold.reason, listed.legal_hold.reference)
        other.release_hold(listed)
        assert not _manifests(target)[point.id].held

    def test_deleted_manifest_is_not_listed(self, s3: Any, client: Any):
        """A manifest deleted (or hidden by a delete marker) between listings is gone from the next."""
        target = _target(client)
        kept, gone, hidden = (target.create_backup() for _ in range(3))
        assert {kept.id, gone.id, hidden.id} == set(_manifests(target))
        key, version = gone.id.rsplit("@", 1)
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
        s3.delete_object(Bucket=BUCKET, Key=hidden.id.rsplit("@", 1)[0])  # a delete marker
        assert [kept.id] == list(_manifests(target))

    def test_object_lock_enabled_between_listings_is_seen(self, s3: Any, client: Any):
        """Object Lock enabled and a retention put after a listing: the next listing reads it."""
        target = _target(client, VAULT)
        point = target.create_backup()
        client.meta.events.register(
            "before-call.s3.GetObjectLockConfiguration", _not_found, unique_id="before-lock"
        )
        first = _manifests(target)[point.id]  # the bucket as it was: no Object Lock
        assert first.lock is None
        client.meta.events.unregister(
            "before-call.s3.GetObjectLockConfiguration", unique_id="before-lock"
        )
        key, version = point.id.rsplit("@", 1)
        until = datetime.now(UTC) + timedelta(days=30)
        s3.put_object_retention(
            Bucket=VAULT,
            Key=key,
            VersionId=version,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
        )
        calls = _calls(client)
        second = _manifests(target)[point.id]
        assert second.lock is not None
        assert ("governance", until.replace(microsecond=0)) == (
            second.lock.mode,
            second.lock.until.replace(microsecond=0),
        )
        assert (1, 1) == (calls["HeadObject"], calls["GetObjectLockConfiguration"])

    def test_locked_bucket_heads_every_listing(self, s3: Any, client: Any):
        """With Object Lock, each listing asks each head (retention changes) and no lock check again."""
        target = _target(client, VAULT)
        points = [target.create_backup() for _ in range(2)]
        assert all(p.lock is None for p in _manifests(target).values())
        key, version = points[0].id.rsplit("@", 1)
        until = datetime.now(UTC) + timedelta(days=7)
        s3.put_object_retention(
            Bucket=VAULT,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
        )
        calls = _calls(client)
        listed = _manifests(target)
        assert "compliance" == listed[points[0].id].lock.mode
        assert listed[points[1].id].lock is None
        assert (2, 0) == (calls["HeadObject"], calls["GetObjectLockConfiguration"])

    def test_unreadable_lock_configuration_heads_every_manifest(self, client: Any):
        """Access denied on GetObjectLockConfiguration proves nothing: every head is asked."""
        target = _target(client)
        target.create_backup()
        _manifests(target)

        def denied(**_kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://s3", 403, {}, None), {
                "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }

        client.meta.events.register("before-call.s3.GetObjectLockConfiguration", denied)
        calls = _calls(client)
        assert 1 == len(_manifests(target))
        assert 1 == calls["HeadObject"]


# S3Store: sidecars by ETag ------------------------------------------------------------------


class Clock:
    """A clock that moves one minute per reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        """The current reading; the next one is a minute later."""
        current = self.now
        self.now += timedelta(minutes=1)
        return current


@pytest.fixture(name="store_client")
def _store_client(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=STORE_BUCKET)
    return client


def _store(client: Any) -> S3Store:
    return S3Store(
        STORE_BUCKET, PREFIX, clients={"s3": client}, retry=RetryPolicy(sleep=lambda _s: None)
    )


@pytest.fixture(name="directory")
def _directory(tmp_path: Path, store_client: Any) -> Directory:
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.conf").write_text("port = 8080\n")
    return Directory(source, name="app-config", store=_store(store_client), clock=Clock())


def _points(store: S3Store) -> dict[str, RecoveryPoint]:
    return {p.id: p for p in store.list_points()}


class TestSidecarReads:
    def test_second_listing_reads_no_sidecar(self, directory: Directory, store_client: Any):
        """N unchanged sidecars: the second listing is one ListObjectsV2 and no GetObject."""
        for _ in range(3):
            directory.create_backup()
        store = directory.store
        assert isinstance(store, S3Store)
        calls = _calls(store_client)
        first = _points(store)
        assert (3, 1) == (calls["GetObject"], calls["ListObjectsV2"])
        calls.clear()
        second = _points(store)
        assert {"ListObjectsV2": 1} == dict(calls)
        assert first == second

    def test_hold_placed_by_another_store_is_seen(self, directory: Directory, store_client: Any):
        """A hold written into the sidecar by another S3Store between listings is seen."""
        point = directory.create_backup()
        store = directory.store
        assert isinstance(store, S3Store)
        assert not _points(store)[point.id].held
        other = _store(boto3.client("s3", region_name="us-east-1"))
        other.place_hold(point, HOLD)
        assert _points(store)[point.id].held
        other.release_hold(point)
        assert not _points(store)[point.id].held

    def test_sidecar_rewritten_during_the_listing_is_not_kept_under_the_old_etag(
        self, directory: Directory, store_client: Any
    ):
        """A hold written between ListObjectsV2 and GetObject is read, and kept under no ETag.

        Releasing the hold brings back the sidecar's first bytes, hence its first ETag: a
        listing must then show no hold (a content kept under the ETag the listing named, not
        the one read, would show the released hold).
        """
        point = directory.create_backup()
        store = directory.store
        assert isinstance(store, S3Store)
        other = _store(boto3.client("s3", region_name="us-east-1"))
        raced: list[str] = []

        def hold_first(**_kwargs: Any) -> None:
            if not raced:
                raced.append("held")
                other.place_hold(point, HOLD)

        store_client.meta.events.register("before-call.s3.GetObject", hold_first)
        assert _points(store)[point.id].held  # the read after the race sees the hold
        other.release_hold(point)  # the sidecar's bytes (and ETag) as first listed
        assert not _points(store)[point.id].held

    def test_deleted_point_is_not_listed(self, directory: Directory, store_client: Any):
        """A point deleted by another store between listings is gone from the next listing."""
        kept, gone = directory.create_backup(), directory.create_backup()
        store = directory.store
        assert isinstance(store, S3Store)
        assert {kept.id, gone.id} == set(_points(store))
        _store(boto3.client("s3", region_name="us-east-1")).delete_point(gone)
        assert [kept.id] == list(_points(store))

    def test_kms_sidecars_are_read_once_too(self, tmp_path: Path, store_client: Any):
        """SSE-KMS ETags are no MD5 of the content, yet name it: the second listing reads nothing."""
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        source = tmp_path / "src"
        source.mkdir()
        (source / "app.conf").write_text("port = 8080\n")
        store = S3Store(STORE_BUCKET, PREFIX, kms_key_id=key, clients={"s3": store_client})
        directory = Directory(source, name="app-config", store=store, clock=Clock())
        point = directory.create_backup()
        assert [point.id] == list(_points(store))
        calls = _calls(store_client)
        other = S3Store(
            STORE_BUCKET,
            PREFIX,
            kms_key_id=key,
            clients={"s3": boto3.client("s3", region_name="us-east-1")},
        )
        other.place_hold(point, HOLD)
        assert _points(store)[point.id].held
        calls.clear()
        assert _points(store)[point.id].held
        assert 0 == calls["GetObject"]
