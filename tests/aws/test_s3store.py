"""S3Store: Directory archives in a bucket prefix (the off-site tier), under moto in-process.

Faults moto does not produce (throttling, a failing part, bytes changed in transit) are
injected with botocore ``before-call`` / ``before-parameter-build`` event hooks on the
store's own client, which is injected with ``clients=``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.core.exceptions import (
    BackendError,
    ProtectedPointError,
    ResourceNotFoundError,
    VerificationError,
)
from backuppolicy.core.model import TAG_HOLD, LegalHold, RecoveryPoint, Status
from backuppolicy.core.targets import BackupTarget, Destination
from backuppolicy.local import Directory, DirectoryStore, S3Store, _archive_store, open_store
from backuppolicy.testing import BackupTargetContract

BUCKET = "bp-offsite"
VAULT = "bp-vault"
PREFIX = "backups/"
T0 = datetime(2026, 11, 26, 4, 0, 0, tzinfo=UTC)
MiB = 1024 * 1024
HOLD = LegalHold(reason="litigation", reference="case-17", since=datetime(2026, 1, 5, tzinfo=UTC))


class Clock:
    """A clock that moves one minute per reading."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        """The current reading; the next one is a minute later."""
        current = self.now
        self.now += timedelta(minutes=1)
        return current


def _error(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    response = AWSResponse("https://s3", status, {}, None)
    return response, {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    """A plain S3 client on moto with the two buckets created."""
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket=VAULT)
    return client


@pytest.fixture(name="client")
def _client(s3: Any) -> Any:
    """The client injected into the store (fault-injection hooks go on it)."""
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture(name="slept")
def _slept() -> list[float]:
    """Backoff waits recorded instead of slept."""
    return []


@pytest.fixture(name="store")
def _store(client: Any, slept: list[float]) -> S3Store:
    """The off-site store under test."""
    return S3Store(
        BUCKET,
        PREFIX,
        clients={"s3": client},
        retry=RetryPolicy(sleep=slept.append),
        part_size=5 * MiB,
    )


@pytest.fixture(name="source")
def _source(tmp_path: Path) -> Path:
    """A small configuration directory."""
    root = tmp_path / "src"
    (root / "conf.d").mkdir(parents=True)
    (root / "app.conf").write_text("port = 8080\n")
    (root / "conf.d" / "tls.conf").write_text("tls = on\n")
    (root / "current").symlink_to("app.conf")
    return root


@pytest.fixture(name="target")
def _target(source: Path, store: S3Store) -> Directory:
    """The source directory backed up straight into S3."""
    return Directory(source, name="app-config", store=store, clock=Clock())


def _body(s3: Any, key: str, bucket: str = BUCKET) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


class TestS3DirectoryContract(BackupTargetContract):
    """Directory with an S3Store passes the BackupTarget contract."""

    @pytest.fixture(name="target")
    def _contract_target(self, source: Path, store: S3Store) -> Directory:
        return Directory(source, name="app-config", store=store, clock=Clock())

    @pytest.fixture(name="destination")
    def _contract_destination(self, client: Any) -> Destination:
        vault = S3Store(VAULT, tier="vault", clients={"s3": client})
        return Destination(store=vault, tier="vault")

    @pytest.fixture(name="foreign_point")
    def _contract_foreign(self, source: Path, store: S3Store) -> RecoveryPoint:
        other = Directory(source, name="app-config", store=store, policy="other", clock=Clock())
        return other.create_backup(reason="someone else's")

    def restored_exists(self, target: BackupTarget, restored: Any) -> bool | None:
        """The restored directory exists only inside the restore block."""
        return Path(restored.endpoint).exists()


class TestBackupToS3:
    def test_objects_and_point(self, target: Directory, s3: Any):
        """A backup writes the archive and its sidecar under the prefix; the point describes them."""
        point = target.create_backup()
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
        assert [f"{PREFIX}{point.id}.json", f"{PREFIX}{point.id}.tar.gz"] == keys
        archive = _body(s3, f"{PREFIX}{point.id}.tar.gz")
        assert f"sha256:{hashlib.sha256(archive).hexdigest()}" == point.checksum
        assert ("s3://bp-offsite/backups/", "offsite", len(archive)) == (
            point.location,
            point.tier,
            point.size_bytes,
        )

    def test_round_trip(self, target: Directory, tmp_path: Path):
        """A point in S3 restores to the same files and links."""
        point = target.create_backup()
        restored = target.restore_to(point, tmp_path / "out")
        assert "tls = on\n" == (restored / "conf.d" / "tls.conf").read_text()
        assert "app.conf" == str((restored / "current").readlink())

    def test_sse_kms(self, source: Path, client: Any, s3: Any):
        """With kms_key_id, the archive (multipart) and the sidecar are written with SSE-KMS."""
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        (source / "big.bin").write_bytes(os.urandom(6 * MiB))
        store = S3Store(
            BUCKET, PREFIX, kms_key_id=key_id, clients={"s3": client}, part_size=5 * MiB
        )
        point = Directory(source, name="app", store=store, clock=Clock()).create_backup()
        for suffix in (".tar.gz", ".json"):
            head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}{point.id}{suffix}")
            assert "aws:kms" == head["ServerSideEncryption"]
            assert key_id in head["SSEKMSKeyId"]
        assert point.encrypted is True
        assert "aws:kms" == point.details["encryption"]

    def test_large_archive_uses_multipart(self, source: Path, client: Any, s3: Any):
        """An archive larger than one part is uploaded in parts and completes intact."""
        (source / "big.bin").write_bytes(os.urandom(11 * MiB))
        calls = Counter[str]()

        def count(event_name: str, **_kwargs: Any) -> None:
            calls[event_name.rsplit(".", 1)[-1]] += 1

        client.meta.events.register("before-call.s3.*", count)
        store = S3Store(BUCKET, PREFIX, clients={"s3": client}, part_size=5 * MiB)
        point = Directory(source, name="app", store=store, clock=Clock()).create_backup()
        archive = _body(s3, f"{PREFIX}{point.id}.tar.gz")
        assert f"sha256:{hashlib.sha256(archive).hexdigest()}" == point.checksum
        assert 3 == calls["UploadPart"]
        assert (1, 1) == (calls["CreateMultipartUpload"], calls["CompleteMultipartUpload"])

    def test_failed_part_aborts_upload(self, source: Path, client: Any, s3: Any):
        """A part that fails for good aborts the multipart upload: no object, no pending parts."""
        (source / "big.bin").write_bytes(os.urandom(11 * MiB))
        parts = Counter[str]()

        def fail_second(**_kwargs: Any) -> Any:
            parts["n"] += 1
            return _error("InvalidRequest", 400) if parts["n"] == 2 else None

        client.meta.events.register("before-call.s3.UploadPart", fail_second)
        store = S3Store(BUCKET, PREFIX, clients={"s3": client}, part_size=5 * MiB)
        with pytest.raises(BackendError, match="UploadPart"):
            Directory(source, name="app", store=store, clock=Clock()).create_backup()
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
        assert [] == s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])

    def test_throttling_is_retried(self, source: Path, client: Any, slept: list[float], s3: Any):
        """A third of all calls answer SlowDown: backup, listing, copy and restore still succeed."""
        calls = Counter[str]()

        def flaky(**_kwargs: Any) -> Any:
            calls["all"] += 1
            return _error("SlowDown", 503) if calls["all"] % 3 == 1 else None

        client.meta.events.register("before-call.s3.*", flaky)
        store = S3Store(
            BUCKET, PREFIX, clients={"s3": client}, retry=RetryPolicy(sleep=slept.append)
        )
        vault = S3Store(
            VAULT, tier="vault", clients={"s3": client}, retry=RetryPolicy(sleep=slept.append)
        )
        target = Directory(source, name="app", store=store, clock=Clock())
        points = [target.create_backup(token=f"t{i}") for i in range(3)]
        copy = target.copy(points[0], Destination(store=vault, tier="vault"))
        assert [p.id for p in points] + [copy.id] == [p.id for p in target.list_points()]
        with target.restore(copy) as restored:
            assert "port = 8080\n" == Path(restored.endpoint, "app.conf").read_text()
        assert len(slept) >= 5
        assert 6 == len(s3.list_objects_v2(Bucket=BUCKET)["Contents"])

    def test_listing_many_points(self, target: Directory):
        """Listing reads every sidecar (concurrently) and keeps the store's order."""
        created = [target.create_backup().id for _ in range(12)]
        assert created == [p.id for p in target.list_points()]


class TestS3Points:
    def test_hold_recorded_in_sidecar(self, target: Directory, s3: Any):
        """place_hold rewrites the sidecar in S3; delete is then refused; release undoes it."""
        point = target.create_backup()
        held = target.place_hold(point, HOLD)
        sidecar = _body(s3, f"{PREFIX}{point.id}.json").decode()
        assert TAG_HOLD in sidecar
        with pytest.raises(ProtectedPointError, match="legal hold"):
            target.delete(held)
        target.delete(target.release_hold(held))
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)

    def test_missing_point(self, target: Directory):
        """Deleting a point that is gone raises ResourceNotFoundError; refresh gives None."""
        point = target.create_backup()
        target.delete(point)
        assert target.refresh(point) is None
        with pytest.raises(ResourceNotFoundError):
            target.delete(point)

    def test_interrupted_upload_listed_failed_and_swept(self, target: Directory, s3: Any):
        """An archive without sidecar lists as FAILED and unmanaged, and sweep removes it."""
        s3.put_object(
            Bucket=BUCKET, Key=f"{PREFIX}bp-app-config-20261126t030000z.tar.gz", Body=b"x"
        )
        [point] = target.list_points()
        assert (Status.FAILED, False) == (point.status, point.managed)
        assert [] == target.store.sweep_incomplete()
        later = datetime.now(UTC) + timedelta(days=1)
        removed = target.store.sweep_incomplete(now=later)
        assert ["bp-app-config-20261126t030000z.tar.gz"] == removed
        assert [] == list(target.list_points())

    def test_open_store_url(self, client: Any):
        """open_store turns s3://bucket/prefix into an S3Store with that prefix."""
        store = open_store("s3://bp-offsite/backups/", tier="offsite", clients={"s3": client})
        assert isinstance(store, S3Store)
        assert (BUCKET, PREFIX, "s3://bp-offsite/backups/") == (
            store.bucket,
            store.prefix,
            store.url,
        )
        assert (
            "<backuppolicy.local.S3Store(bucket='bp-offsite', prefix='backups/', tier='offsite')>"
            == repr(store)
        )


class TestHoldsRacingDeletes:
    """Holds and deletes of one point are conditional writes (If-Match on the sidecar's ETag)."""

    def test_a_delete_between_the_holds_read_and_write_wins(
        self, target: Directory, store: S3Store, monkeypatch: pytest.MonkeyPatch
    ):
        """The hold's PutObject finds the sidecar gone: ResourceNotFoundError, nothing rewritten."""
        point = target.create_backup()
        original = S3Store.read_sidecar
        raced: list[str] = []

        def read_then_delete(self: S3Store, p: RecoveryPoint, operation: str = "read") -> Any:
            data = original(self, p, operation)
            if operation == "place_hold" and not raced:
                raced.append(p.id)
                target.delete(point)
            return data

        monkeypatch.setattr(S3Store, "read_sidecar", read_then_delete)

        with pytest.raises(ResourceNotFoundError, match=point.id):
            target.place_hold(point, HOLD)
        assert [point.id] == raced
        assert [] == list(store.keys())

    def test_a_hold_between_the_deletes_check_and_removal_wins(
        self, target: Directory, store: S3Store, monkeypatch: pytest.MonkeyPatch
    ):
        """The delete's conditional DeleteObject sees the new hold: refused, the point stays held."""
        point = target.create_backup()
        original = _archive_store.refuse_protected
        raced: list[str] = []

        def check_then_hold(p: RecoveryPoint, where: str) -> None:
            original(p, where)
            if where == store.url and not raced:
                raced.append(p.id)
                target.place_hold(point, HOLD)

        monkeypatch.setattr(_archive_store, "refuse_protected", check_then_hold)

        with pytest.raises(ProtectedPointError, match="legal hold"):
            target.delete(point)
        assert [point.id] == raced
        assert HOLD == target.refresh(point).legal_hold  # type: ignore[union-attr]
        assert store.exists(f"{point.id}.tar.gz")


class TestCopies:
    def test_local_to_s3_and_back(self, source: Path, tmp_path: Path, store: S3Store, s3: Any):
        """A local archive copied to S3 is byte-identical, listed, and restores from S3."""
        target = Directory(
            source, name="app", store=DirectoryStore(tmp_path / "local"), clock=Clock()
        )
        point = target.create_backup()
        copy = target.copy(point, Destination(store=store, tier="offsite"))
        local_bytes = (tmp_path / "local" / f"{point.id}.tar.gz").read_bytes()
        assert local_bytes == _body(s3, f"{PREFIX}{point.id}-offsite.tar.gz")
        assert [("local", point.id), ("offsite", f"{point.id}-offsite")] == [
            (p.tier, p.id) for p in target.list_points()
        ]
        back = DirectoryStore(tmp_path / "back", tier="restore-test")
        again = target.copy(copy, Destination(store=back, tier="restore-test"))
        assert point.checksum == again.checksum

    def test_corrupted_upload_is_removed(self, source: Path, tmp_path: Path, client: Any, s3: Any):
        """Bytes changed on the way to S3 fail the copy's check; the bad object is deleted."""

        def flip(params: dict[str, Any], **_kwargs: Any) -> None:
            if params["Key"].endswith(".tar.gz"):
                body = bytes(params["Body"])
                params["Body"] = bytes([body[0] ^ 0xFF]) + body[1:]

        client.meta.events.register("before-parameter-build.s3.PutObject", flip)
        offsite = S3Store(BUCKET, PREFIX, clients={"s3": client})
        target = Directory(
            source, name="app", store=DirectoryStore(tmp_path / "local"), clock=Clock()
        )
        point = target.create_backup()
        with pytest.raises(VerificationError, match="the bad copy was removed"):
            target.copy(point, Destination(store=offsite, tier="offsite"))
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
        assert [point.id] == [p.id for p in target.list_points()]

    def test_copy_to_url_uses_destination_key(
        self, source: Path, tmp_path: Path, client: Any, s3: Any
    ):
        """A destination given as an s3:// URL opens an S3Store with store_options and the Destination's KMS key."""
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        target = Directory(
            source,
            name="app",
            store=DirectoryStore(tmp_path / "local"),
            store_options={"clients": {"s3": client}},
            clock=Clock(),
        )
        point = target.create_backup()
        destination = Destination(
            store=f"s3://{BUCKET}/{PREFIX}", tier="offsite", kms_key_id=key_id
        )
        copy = target.copy(point, destination)
        head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}{point.id}-offsite.tar.gz")
        assert ("aws:kms", True) == (head["ServerSideEncryption"], copy.encrypted)
        assert key_id in head["SSEKMSKeyId"]
