"""S3Bucket: versions as points, per-key retention, manifests, holds, point-in-time restore.

Most tests run against ``moto.mock_aws`` in-process. Ages come from ``time_machine.travel``
(with ``tick=True``) around each phase of writes: moto stamps ``LastModified`` with the
(travelled) clock. Limits and failures moto does not produce (two-token pagination with a
delete marker and its versions on different pages in a chosen layout, throttling, access
denied, the 1000-key DeleteObjects limit, objects above 5 GiB) use `botocore.stub.Stubber` on
a client injected with ``clients=``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from backuppolicy.aws import _s3_base
from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws._s3_listing import Entry, Prefetcher
from backuppolicy.aws._s3_restore import decide
from backuppolicy.aws.s3 import (
    DELETE_BATCH_LIMIT,
    MAX_COPY_OBJECT_SIZE,
    RestoreReport,
    S3Bucket,
    null_version_refused,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PermissionDeniedError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import TAG_POLICY, TAG_TARGET, TAG_TIER, LegalHold, RecoveryPoint
from backuppolicy.core.retention import KeepDaily, KeepLast, MaxAge
from backuppolicy.core.targets import Destination, IsolationProfile, RestoredResource
from backuppolicy.testing import BackupTargetContract
from tests.aws.aws_defaults import PUBLIC_ACCESS_FLAGS, create_bucket

BUCKET = "assets"
DEST = "assets-restored"
ACCOUNT = "123456789012"
T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
TOKEN = "t1"
TOKEN_2 = "t2"


def _at(moment: datetime) -> time_machine.travel:
    """Travel to *moment* with a ticking clock: moto stamps LastModified from it."""
    return time_machine.travel(moment, tick=True)


def _body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def _live(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {k: _body(s3, bucket, k) for k in keys if not k.startswith("_backuppolicy/")}


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    create_bucket(client, Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    create_bucket(client, Bucket=DEST)
    return client


@pytest.fixture(name="target")
def _target(s3: Any) -> S3Bucket:
    return S3Bucket(BUCKET, account_id=ACCOUNT, retry=RetryPolicy(sleep=lambda _s: None))


@pytest.fixture(name="history")
def _history(s3: Any) -> datetime:
    """Three phases of writes around T = T0 + 20 s; returns T.

    * 10:00:00  a=v1 b=v1 c=v1 d=v1
    * 10:00:10  a=v2, c deleted
    * T         10:00:20
    * 10:00:30  a=v3 b=v2 e=v1 (new), d deleted, c=v2 (written again)

    At T: a=v2, b=v1, d=v1; c deleted; e not yet written.
    """
    with _at(T0):
        for key in "abcd":
            s3.put_object(Bucket=BUCKET, Key=f"{key}.txt", Body=f"{key}1".encode())
    with _at(T0 + timedelta(seconds=10)):
        s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"a2")
        s3.delete_object(Bucket=BUCKET, Key="c.txt")
    with _at(T0 + timedelta(seconds=30)):
        s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"a3")
        s3.put_object(Bucket=BUCKET, Key="b.txt", Body=b"b2")
        s3.put_object(Bucket=BUCKET, Key="e.txt", Body=b"e1")
        s3.delete_object(Bucket=BUCKET, Key="d.txt")
        s3.put_object(Bucket=BUCKET, Key="c.txt", Body=b"c2")
    return T0 + timedelta(seconds=20)


EXPECTED_AT_T = {"a.txt": b"a2", "b.txt": b"b1", "d.txt": b"d1"}


class TestConstruction:
    def test_name_defaults_to_bucket_and_prefix(self):
        """The target name is the bucket, or bucket/prefix."""
        assert ("assets", "assets/img/") == (
            S3Bucket("assets", region="us-east-1").name,
            S3Bucket("assets", prefix="img/", region="us-east-1").name,
        )

    def test_repr_and_kind(self):
        """The repr names bucket and prefix; the kind is s3-bucket."""
        target = S3Bucket("assets", prefix="img/", region="us-east-1")
        assert "<backuppolicy.aws.S3Bucket(bucket='assets', prefix='img/')>" == repr(target)
        assert "s3-bucket" == target.kind

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"bucket": ""}, "bucket"), ({"bucket": "b", "internal_prefix": "x"}, "internal_prefix")],
    )
    def test_bad_arguments_name_the_field(self, kwargs, field):
        """Invalid constructor arguments raise PolicyError naming the field."""
        with pytest.raises(PolicyError, match=f"^{field}: expected"):
            S3Bucket(**kwargs)


class TestSettings:
    def test_versioning_enabled(self, target):
        """The versioning status of a versioned bucket reads Enabled."""
        assert "Enabled" == target.versioning()

    def test_ensure_versioning_enables_and_reports_before(self, s3):
        """ensure_versioning turns versioning on and returns the earlier status."""
        create_bucket(s3, Bucket="plain")
        target = S3Bucket("plain", account_id=ACCOUNT)
        assert ("Disabled", "Enabled", "Enabled") == (
            target.ensure_versioning(),
            target.versioning(),
            target.ensure_versioning(),
        )

    def test_settings_of_a_new_bucket(self, target):
        """A new bucket as AWS creates it: SSE-S3 default encryption, all public access blocked.

        (moto creates buckets without either; `create_bucket` sets AWS's defaults explicitly.)
        """
        settings = target.settings()
        assert (True, False, False, "AES256", None, True) == (
            settings.versioned,
            settings.mfa_delete,
            settings.object_lock,
            settings.encryption,
            settings.kms_key_id,
            settings.blocks_public_access,
        )

    def test_settings_once_public_access_is_opened(self, target, s3):
        """A bucket whose public access block was removed, or one flag turned off, does not block."""
        s3.put_public_access_block(
            Bucket=BUCKET,
            PublicAccessBlockConfiguration={
                **dict.fromkeys(PUBLIC_ACCESS_FLAGS, True),
                "RestrictPublicBuckets": False,
            },
        )
        one_off = target.settings().blocks_public_access
        s3.delete_public_access_block(Bucket=BUCKET)
        removed = target.settings()
        assert (False, False, {}) == (
            one_off,
            removed.blocks_public_access,
            dict(removed.public_access_block),
        )

    def test_settings_of_a_protected_bucket(self, s3):
        """Object Lock, KMS default encryption (replacing SSE-S3) and the block are reported."""
        create_bucket(s3, Bucket="locked", ObjectLockEnabledForBucket=True)
        s3.put_bucket_encryption(
            Bucket="locked",
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": "alias/backups",
                        }
                    }
                ]
            },
        )
        settings = S3Bucket("locked", account_id=ACCOUNT).settings()
        assert (True, True, "aws:kms", "alias/backups", True) == (
            settings.versioned,
            settings.object_lock,
            settings.encryption,
            settings.kms_key_id,
            settings.blocks_public_access,
        )


class TestListPoints:
    def test_versions_are_points_with_documented_ids(self, target, history):
        """Every version is a point '<key>@<version id>'; delete markers are not points."""
        points = list(target.list_points())
        assert 9 == len(points)
        assert all("s3-version" == p.kind and BUCKET == p.target for p in points)
        for point in points:
            key, _, version = point.id.rpartition("@")
            assert (key, version) == (point.details["key"], point.details["version_id"])

    def test_current_versions_unmanaged_noncurrent_managed(self, target, history):
        """Current versions are live data (unmanaged); noncurrent ones are managed."""
        points = list(target.list_points())
        current = sorted(p.details["key"] for p in points if not p.managed)
        assert ["a.txt", "b.txt", "c.txt", "e.txt"] == current

    def test_noncurrent_dated_when_replaced(self, target, history):
        """A noncurrent version's created_at is when it was replaced; details keep LastModified."""
        a = sorted(
            (p for p in target.list_points() if p.details["key"] == "a.txt"),
            key=lambda p: p.details["last_modified"],
        )
        assert [
            T0 + timedelta(seconds=10),
            T0 + timedelta(seconds=30),
            T0 + timedelta(seconds=30),
        ] == [p.created_at.replace(microsecond=0) for p in a]
        assert T0 == a[0].details["last_modified"].replace(microsecond=0)

    def test_location_from_sts(self, s3, history):
        """Without account_id, the location's account comes from STS."""
        point = next(S3Bucket(BUCKET).list_points())
        assert "aws:123456789012:us-east-1" == point.location  # moto's default account

    def test_prefix_limits_points(self, s3):
        """Only keys under the prefix are listed."""
        s3.put_object(Bucket=BUCKET, Key="img/x.png", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key="doc/y.txt", Body=b"y")
        target = S3Bucket(BUCKET, prefix="img/", account_id=ACCOUNT)
        assert ["img/x.png"] == [p.details["key"] for p in target.list_points()]

    def test_manage_noncurrent_false_makes_all_unmanaged(self, s3, history):
        """With manage_noncurrent=False nothing is managed."""
        target = S3Bucket(BUCKET, account_id=ACCOUNT, manage_noncurrent=False)
        assert not any(p.managed for p in target.list_points())


class TestDelete:
    def _noncurrent(self, target: S3Bucket, key: str) -> RecoveryPoint:
        return next(p for p in target.list_points() if p.details["key"] == key and p.managed)

    def test_delete_noncurrent_version(self, target, s3, history):
        """A noncurrent version is deleted permanently; the current one is untouched."""
        point = self._noncurrent(target, "b.txt")
        target.delete(point)
        assert point.id not in {p.id for p in target.list_points()}
        assert b"b2" == _body(s3, BUCKET, "b.txt")

    def test_delete_current_version_refused(self, target, s3, history):
        """The current version of a key is refused, even when passed as managed."""
        current = next(
            p for p in target.list_points() if p.details["key"] == "b.txt" and not p.managed
        )
        with pytest.raises(ProtectedPointError, match="current version"):
            target.delete(current.evolve(managed=True))
        assert b"b2" == _body(s3, BUCKET, "b.txt")

    def test_delete_of_a_point_that_became_current_refused(self, target, s3, history):
        """A version that became current since it was listed is refused (re-read before delete)."""
        points = [p for p in target.list_points() if p.details["key"] == "b.txt"]
        old = next(p for p in points if p.managed)
        newest = next(p for p in points if not p.managed)
        s3.delete_object(Bucket=BUCKET, Key="b.txt", VersionId=newest.details["version_id"])
        with pytest.raises(ProtectedPointError):
            target.delete(old)

    def test_delete_missing_version_raises_not_found(self, target, history):
        """Deleting a version that is gone raises ResourceNotFoundError."""
        point = self._noncurrent(target, "b.txt")
        target.delete(point)
        with pytest.raises(ResourceNotFoundError):
            target.delete(point)

    def test_foreign_target_point_refused(self, target, history):
        """A point of another target is rejected with a field error."""
        point = self._noncurrent(target, "b.txt").evolve(target="other")
        with pytest.raises(PolicyError, match="point.target"):
            target.delete(point)


class TestLegalHolds:
    @pytest.fixture(name="locked")
    def _locked(self, s3: Any) -> S3Bucket:
        create_bucket(s3, Bucket="vault", ObjectLockEnabledForBucket=True)
        s3.put_object(Bucket="vault", Key="k", Body=b"1")
        s3.put_object(Bucket="vault", Key="k", Body=b"2")
        return S3Bucket("vault", account_id=ACCOUNT)

    def test_hold_via_object_lock_refuses_delete(self, locked, s3):
        """A held version reads back as held (Object Lock ON) and delete refuses it."""
        hold = LegalHold(reason="litigation", reference="case-17", since=T0)
        point = next(p for p in locked.list_points() if p.managed)
        held = locked.place_hold(point, hold)
        status = s3.get_object_legal_hold(
            Bucket="vault", Key="k", VersionId=point.details["version_id"]
        )
        assert (hold, "ON") == (held.legal_hold, status["LegalHold"]["Status"])
        with pytest.raises(ProtectedPointError, match="case-17"):
            locked.delete(point)

    def test_release_hold_allows_delete(self, locked):
        """After release, the version can be deleted."""
        point = next(p for p in locked.list_points() if p.managed)
        locked.place_hold(point, LegalHold(reason="audit"))
        released = locked.release_hold(point)
        locked.delete(released)
        assert 1 == len(list(locked.list_points()))

    def test_retention_until_future_is_the_points_lock(self, s3):
        """An unexpired Object Lock retention is the point's lock (not a hold) and refuses delete."""
        create_bucket(s3, Bucket="vault", ObjectLockEnabledForBucket=True)
        s3.put_object(
            Bucket="vault",
            Key="k",
            Body=b"1",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=30),
        )
        s3.put_object(Bucket="vault", Key="k", Body=b"2")
        target = S3Bucket("vault", account_id=ACCOUNT)
        point = target.refresh(next(p for p in target.list_points() if p.managed))
        assert point is not None
        assert (None, "governance") == (point.legal_hold, point.lock.mode)
        with pytest.raises(ProtectedPointError, match=r"locked \(governance\)"):
            target.delete(point)

    def test_hold_on_version_needs_object_lock(self, target, history):
        """Without Object Lock a data version cannot be held: PolicyError names the setting."""
        point = next(p for p in target.list_points() if p.managed)
        with pytest.raises(PolicyError, match="object_lock"):
            target.place_hold(point, LegalHold(reason="audit"))


class TestManifests:
    def test_create_backup_records_current_versions(self, target, s3, history):
        """The manifest lists the current version of every live key, with ownership tags."""
        point = target.create_backup(reason="manual", token=TOKEN, tags={"team": "web"})
        lines = {line["key"]: line["version_id"] for line in target.read_manifest(point)}
        current = {
            v["Key"]: v["VersionId"]
            for v in s3.list_object_versions(Bucket=BUCKET)["Versions"]
            if v["IsLatest"] and not v["Key"].startswith("_backuppolicy/")
        }
        assert current == lines
        assert ("s3-manifest", True, BUCKET, "web", 4) == (
            point.kind,
            point.managed,
            point.tags[TAG_TARGET],
            point.tags["team"],
            point.details["objects"],
        )

    def test_manifest_not_treated_as_data(self, target, history):
        """Manifests are listed as manifests, never as data versions."""
        target.create_backup(token=TOKEN)
        kinds = Counter(p.kind for p in target.list_points())
        assert {"s3-manifest": 1, "s3-version": 9} == dict(kinds)

    def test_a_manifest_deleted_during_the_listing_is_not_listed(
        self, target, s3, history, monkeypatch
    ):
        """A manifest deleted after its listing page and before its HeadObject is skipped."""
        first = target.create_backup(token="one")
        second = target.create_backup(token="two")
        original = S3Bucket._entries

        def entries(self: S3Bucket, prefix: str | None = None, **kwargs: Any) -> Any:
            listed = list(original(self, prefix, **kwargs))
            if prefix == self._manifest_prefix:
                details = first.details
                s3.delete_object(Bucket=BUCKET, Key=details["key"], VersionId=details["version_id"])
            yield from listed

        monkeypatch.setattr(S3Bucket, "_entries", entries)

        manifests = [p.id for p in target.list_points() if p.kind == "s3-manifest"]

        assert [second.id] == manifests

    def test_foreign_tags_make_manifest_unmanaged(self, s3, history):
        """A manifest of another policy is listed as unmanaged."""
        S3Bucket(BUCKET, account_id=ACCOUNT, policy="other").create_backup(token=TOKEN)
        listed = [
            p for p in S3Bucket(BUCKET, account_id=ACCOUNT).list_points() if p.kind == "s3-manifest"
        ]
        assert [("other", False)] == [(p.tags[TAG_POLICY], p.managed) for p in listed]

    def test_restore_manifest_copies_and_purges(self, target, s3, history):
        """Restoring a manifest copies its versions under a scratch prefix and purges it on exit."""
        point = target.create_backup(token=TOKEN)
        s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"a4")
        with target.restore(point, IsolationProfile(name_prefix="rt-")) as restored:
            prefix = restored.details["prefix"]
            copied = {k.removeprefix(prefix): v for k, v in _live_all(s3, BUCKET, prefix).items()}
            assert {"a.txt": b"a3", "b.txt": b"b2", "c.txt": b"c2", "e.txt": b"e1"} == copied
        versions = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
        assert ([], []) == (versions.get("Versions", []), versions.get("DeleteMarkers", []))

    def test_copy_version_to_other_bucket(self, target, s3, history):
        """A version copy lands in the destination with the version's bytes."""
        point = next(p for p in target.list_points() if p.details["key"] == "a.txt" and p.managed)
        copy = target.copy(point, Destination(tier="offsite", store=f"s3://{DEST}/copies/"))
        assert ("offsite", "copies/a.txt") == (copy.tier, copy.details["key"])
        assert _body(s3, DEST, "copies/a.txt") in {b"a1", b"a2"}


def _live_all(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: _body(s3, bucket, o["Key"]) for o in page.get("Contents", [])}


class TestRetention:
    @pytest.fixture(name="aged")
    def _aged(self, s3: Any) -> datetime:
        """doc.txt: versions 100, 60, 30 and 1 days ago; gone.txt: written 100, deleted 50 days ago."""
        now = T0 + timedelta(days=100)
        for days_ago in (100, 60, 30, 1):
            with _at(now - timedelta(days=days_ago)):
                s3.put_object(Bucket=BUCKET, Key="doc.txt", Body=f"d{days_ago}".encode())
        with _at(now - timedelta(days=100)):
            s3.put_object(Bucket=BUCKET, Key="gone.txt", Body=b"g")
        with _at(now - timedelta(days=50)):
            s3.delete_object(Bucket=BUCKET, Key="gone.txt")
        return now

    def _deleted_bodies(self, target: S3Bucket, rule: Any, now: datetime) -> dict[str, int]:
        plans = {p.key: p for p in target.noncurrent_retention_plan(rule, now=now)}
        return {key: len(plan.delete) for key, plan in plans.items()}

    def test_max_age_counts_from_replacement(self, target, aged):
        """MaxAge(35d) keeps versions replaced within 35 days, even if written long before."""
        plans = {p.key: p for p in target.noncurrent_retention_plan(MaxAge(days=35), now=aged)}
        kept = sorted(p.details["last_modified"] for p in plans["doc.txt"].keep)
        assert [aged - timedelta(days=60), aged - timedelta(days=30), aged - timedelta(days=1)] == [
            k.replace(microsecond=0) for k in kept
        ]
        assert 1 == len(plans["doc.txt"].delete)

    def test_deleted_key_expires_like_aws(self, target, aged):
        """A key deleted 50 days ago loses its last version; the delete marker stays."""
        plan = next(
            p
            for p in target.noncurrent_retention_plan(MaxAge(days=35), now=aged)
            if p.key == "gone.txt"
        )
        assert (["s3-version"], ["s3-delete-marker"]) == (
            [p.kind for p in plan.delete],
            [p.kind for p in plan.keep],
        )

    def test_current_version_never_deleted(self, target, aged):
        """Even a rule that keeps nothing recent leaves the current version in keep."""
        plan = next(
            p
            for p in target.noncurrent_retention_plan(
                MaxAge(hours=1), now=aged + timedelta(days=400)
            )
            if p.key == "doc.txt"
        )
        current = [p for p in plan.keep if p.details["is_latest"]]
        assert 1 == len(current)
        assert 3 == len(plan.delete)

    def test_keep_last_counts_current_version(self, target, aged):
        """KeepLast(2) keeps the current version and the newest noncurrent one."""
        plan = next(
            p
            for p in target.noncurrent_retention_plan(MaxAge(days=1) | KeepLast(2), now=aged)
            if p.key == "doc.txt"
        )
        assert (2, 2) == (len(plan.keep), len(plan.delete))

    def test_every_point_has_reasons(self, target, aged):
        """Every kept and deleted point has at least one reason."""
        for plan in target.noncurrent_retention_plan(MaxAge(days=35), now=aged):
            assert all(plan.reasons[p.id] for p in (*plan.keep, *plan.delete))

    def test_apply_deletes_planned_versions(self, target, s3, aged):
        """Applying deletes exactly the planned versions, in one DeleteObjects batch."""
        report = target.apply_noncurrent_retention(MaxAge(days=35), now=aged)
        assert (2, 2, 1, 0) == (report.keys, report.deleted, report.batches, report.held)
        # One HeadObject per key with deletions: its current version, never deleted.
        assert {"ListObjectVersions": 1, "HeadObject": 2, "DeleteObjects": 1} == dict(
            report.requests
        )
        left = s3.list_object_versions(Bucket=BUCKET)
        assert 3 == len(left["Versions"])
        assert b"d1" == _body(s3, BUCKET, "doc.txt")

    def test_apply_dry_run_deletes_nothing(self, target, s3, aged):
        """A dry run reports the deletions and makes no DeleteObjects request."""
        report = target.apply_noncurrent_retention(MaxAge(days=35), now=aged, dry_run=True)
        assert (2, 0) == (report.deleted, report.batches)
        assert 5 == len(s3.list_object_versions(Bucket=BUCKET)["Versions"])

    def test_apply_is_idempotent(self, target, aged):
        """A second run finds nothing more to delete."""
        target.apply_noncurrent_retention(MaxAge(days=35), now=aged)
        assert 0 == target.apply_noncurrent_retention(MaxAge(days=35), now=aged).deleted

    def test_apply_skips_object_lock_held_versions(self, s3):
        """With Object Lock, held versions planned for deletion are skipped and counted."""
        create_bucket(s3, Bucket="vault", ObjectLockEnabledForBucket=True)
        with _at(T0):
            s3.put_object(Bucket="vault", Key="k", Body=b"1")
            old = s3.put_object(Bucket="vault", Key="j", Body=b"1")["VersionId"]
        with _at(T0 + timedelta(days=1)):
            s3.put_object(Bucket="vault", Key="k", Body=b"2")
            s3.put_object(Bucket="vault", Key="j", Body=b"2")
        s3.put_object_legal_hold(Bucket="vault", Key="j", VersionId=old, LegalHold={"Status": "ON"})
        target = S3Bucket("vault", account_id=ACCOUNT)
        report = target.apply_noncurrent_retention(MaxAge(days=35), now=T0 + timedelta(days=100))
        assert (1, 1) == (report.deleted, report.held)

    def test_throttled_deletes_delete_each_version_once(self, s3, aged):
        """Every other DeleteObjects is throttled: the planned versions are deleted, once."""
        client = boto3.client("s3", region_name="us-east-1")
        calls = Counter[str]()

        def flaky(**_kwargs: Any) -> Any:
            calls["DeleteObjects"] += 1
            if calls["DeleteObjects"] % 2 == 1:
                response = AWSResponse("https://s3", 503, {}, None)
                return response, {
                    "Error": {"Code": "SlowDown", "Message": "slow down"},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                }
            return None

        client.meta.events.register("before-call.s3.DeleteObjects", flaky)
        target = S3Bucket(
            BUCKET,
            clients={"s3": client},
            retry=RetryPolicy(sleep=lambda _s: None),
            account_id=ACCOUNT,
        )
        report = target.apply_noncurrent_retention(MaxAge(days=35), now=aged, batch_size=1)
        left = s3.list_object_versions(Bucket=BUCKET)["Versions"]
        assert (2, 2, 4) == (report.deleted, report.batches, calls["DeleteObjects"])
        assert 3 == len(left)

    def test_failed_later_page_deletes_nothing_already_planned(self, s3, monkeypatch):
        """ListObjectVersions fails on page 6: nothing is deleted, not even on earlier pages.

        The keys of the first pages were completely listed and decided; still nothing goes
        (the README's promise: an error in the middle of a listing deletes nothing). The
        failure is injected by a botocore event hook under moto; read-ahead is off so the
        earlier pages are surely planned before it.
        """
        monkeypatch.setattr(_s3_base, "PREFETCH_PAGES", 0)
        now = T0 + timedelta(days=100)
        keys = [f"{name}.txt" for name in "abcdefgh"]
        for days_ago in (100, 60):  # each key's old version was replaced 60 days ago
            with _at(now - timedelta(days=days_ago)):
                for key in keys:
                    s3.put_object(Bucket=BUCKET, Key=key, Body=f"{key}{days_ago}".encode())
        client = boto3.client("s3", region_name="us-east-1")
        pages = Counter[str]()

        def fail_on_page_6(**_kwargs: Any) -> Any:
            pages["ListObjectVersions"] += 1
            if pages["ListObjectVersions"] < 6:
                return None
            response = AWSResponse("https://s3", 403, {}, None)
            return response, {
                "Error": {"Code": "AccessDenied", "Message": "denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }

        client.meta.events.register("before-call.s3.ListObjectVersions", fail_on_page_6)
        target = S3Bucket(
            BUCKET,
            clients={"s3": client},
            retry=RetryPolicy(sleep=lambda _s: None),
            account_id=ACCOUNT,
        )
        before = s3.list_object_versions(Bucket=BUCKET)["Versions"]

        with pytest.raises(PermissionDeniedError):
            # Two versions a page (one key), one batch per version.
            target.apply_noncurrent_retention(
                MaxAge(days=35), now=now, page_size=2, batch_size=1, max_workers=1
            )

        assert 6 == pages["ListObjectVersions"]
        assert sorted(v["VersionId"] for v in before) == sorted(
            v["VersionId"] for v in s3.list_object_versions(Bucket=BUCKET)["Versions"]
        )

    def test_equal_last_modified_keeps_the_newest_listed_version(self, s3):
        """Versions written in one second are ordered by S3's listing (newest first), not by id.

        moto's version ids are random, so this test writes keys (three versions each, within
        one second) until one key's two noncurrent versions have ids ordered opposite to the
        listing: the newer has the smaller id, so restic's id rule would call the older one
        newer. Both were replaced in that second, so their times tie; KeepLast(2) keeps the
        current version and the newer noncurrent one, and the apply deletes the older. (The
        clock ticks: moto, like S3, then lists newest first, with LastModified in seconds.)
        """
        for attempt in range(64):
            key = f"k{attempt:02d}"
            with _at(T0 + timedelta(minutes=attempt)):
                for body in (b"v1", b"v2", b"v3"):
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
            one_second = len({v["LastModified"] for v in listed}) == 1
            if one_second and listed[1]["VersionId"] < listed[2]["VersionId"]:
                break
        else:  # pragma: no cover - probability 2**-64
            pytest.fail("moto never gave a newer version a smaller id")
        ids = [v["VersionId"] for v in listed]
        # Like S3, moto lists the key's versions newest first (the test relies on it).
        assert [b"v3", b"v2", b"v1"] == [
            s3.get_object(Bucket=BUCKET, Key=key, VersionId=vid)["Body"].read() for vid in ids
        ]
        target = S3Bucket(BUCKET, prefix=key, account_id=ACCOUNT)
        now = T0 + timedelta(days=1)

        (plan,) = target.noncurrent_retention_plan(KeepLast(2), now=now)
        report = target.apply_noncurrent_retention(KeepLast(2), now=now)

        assert ([f"{key}@{ids[0]}", f"{key}@{ids[1]}"], [f"{key}@{ids[2]}"]) == (
            [p.id for p in plan.keep],
            [p.id for p in plan.delete],
        )
        assert 1 == report.deleted
        assert [b"v3", b"v2"] == [
            s3.get_object(Bucket=BUCKET, Key=key, VersionId=v["VersionId"])["Body"].read()
            for v in s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
        ]

    def test_a_version_made_current_after_planning_is_not_deleted(self, s3, monkeypatch):
        """Undelete between planning and deleting: the version now current stays.

        ``doc`` was deleted (a delete marker) long ago, so its versions are noncurrent and
        planned for deletion. Before the deletes run, someone removes the delete marker (the
        usual S3 undelete): the newest version is current again and must not be deleted.
        """
        with _at(T0):
            s3.put_object(Bucket=BUCKET, Key="doc", Body=b"one")
            s3.put_object(Bucket=BUCKET, Key="doc", Body=b"two")
        with _at(T0 + timedelta(days=1)):
            marker = s3.delete_object(Bucket=BUCKET, Key="doc")["VersionId"]
        target = S3Bucket(BUCKET, account_id=ACCOUNT)
        planned = target._plan_keys

        def plan_then_undelete(*args: Any, **kwargs: Any) -> Any:
            yield from planned(*args, **kwargs)
            s3.delete_object(Bucket=BUCKET, Key="doc", VersionId=marker)

        monkeypatch.setattr(target, "_plan_keys", plan_then_undelete)

        report = target.apply_noncurrent_retention(MaxAge(days=35), now=T0 + timedelta(days=100))

        assert b"two" == _body(s3, BUCKET, "doc")
        assert 1 == report.deleted

    @pytest.mark.parametrize("size", [0, DELETE_BATCH_LIMIT + 1, True])
    def test_batch_size_validated(self, target, size):
        """batch_size must be 1..1000: AWS's DeleteObjects limit is refused before any call."""
        with pytest.raises(PolicyError, match="^batch_size: expected an integer from 1 to 1000"):
            target.apply_noncurrent_retention(MaxAge(days=35), now=T0, batch_size=size)

    def test_lifecycle_rule_for_max_age_and_keep_last(self, target):
        """MaxAge(35d) | KeepLast(3) compiles to NoncurrentDays=35, NewerNoncurrentVersions=2."""
        rule = target.lifecycle_rule_for(MaxAge(days=35) | KeepLast(3))
        assert {"NoncurrentDays": 35, "NewerNoncurrentVersions": 2} == rule[
            "NoncurrentVersionExpiration"
        ]
        assert {"Prefix": ""} == rule["Filter"]

    @pytest.mark.parametrize("rule", [KeepDaily(7), MaxAge(months=1), KeepLast(3)])
    def test_lifecycle_rule_for_refuses_inexpressible(self, target, rule):
        """Rules S3 lifecycle cannot express are refused with a field error."""
        with pytest.raises(PolicyError, match="^rule: expected MaxAge"):
            target.lifecycle_rule_for(rule)

    def test_put_lifecycle_rule_keeps_other_rules(self, s3):
        """Our rule is added next to existing ones and replaced on the next put.

        The assertions are on the PutBucketLifecycleConfiguration requests the library sends,
        captured with a botocore event hook, not on what moto returns: moto drops
        ``NewerNoncurrentVersions`` when the configuration is read back; S3 keeps it.
        """
        other = {
            "ID": "logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Expiration": {"Days": 9},
        }
        s3.put_bucket_lifecycle_configuration(
            Bucket=BUCKET, LifecycleConfiguration={"Rules": [other]}
        )
        client = boto3.client("s3", region_name="us-east-1")
        sent: list[list[dict[str, Any]]] = []

        def capture(params: dict[str, Any], **_kwargs: Any) -> None:
            sent.append(params["LifecycleConfiguration"]["Rules"])

        client.meta.events.register(
            "provide-client-params.s3.PutBucketLifecycleConfiguration", capture
        )
        target = S3Bucket(BUCKET, clients={"s3": client}, account_id=ACCOUNT)
        ours = f"backuppolicy-noncurrent-{BUCKET}"

        target.put_lifecycle_rule(target.lifecycle_rule_for(MaxAge(days=35) | KeepLast(3)))
        target.put_lifecycle_rule(target.lifecycle_rule_for(MaxAge(days=40)))

        assert [["logs", ours], ["logs", ours]] == [[r["ID"] for r in rules] for rules in sent]
        assert (other, other) == (sent[0][0], sent[1][0])
        assert [
            {"NoncurrentDays": 35, "NewerNoncurrentVersions": 2},
            {"NoncurrentDays": 40},
        ] == [rules[1]["NoncurrentVersionExpiration"] for rules in sent]


class TestRestoreToTime:
    def test_restore_into_other_bucket(self, target, s3, history):
        """Keys alive at T are copied with their bytes at T; deleted and later keys are not."""
        report = target.restore_to_time(history, dest_bucket=DEST)
        assert EXPECTED_AT_T == _live(s3, DEST)
        assert (5, 3, 0, {"deleted at T": 1, "created after T": 1}) == (
            report.keys,
            report.restored,
            report.deleted,
            dict(report.skipped),
        )
        assert {"ListObjectVersions": 1, "CopyObject": 3} == dict(report.requests)

    def test_restore_in_place(self, target, s3, history):
        """In place only changed keys are copied; later keys get a delete marker."""
        report = target.restore_to_time(history)
        assert EXPECTED_AT_T == _live(s3, BUCKET)
        assert (True, 3, 2) == (report.in_place, report.restored, report.deleted)
        assert {
            "GetBucketVersioning": 1,
            "ListObjectVersions": 1,
            "CopyObject": 3,
            "DeleteObjects": 1,
        } == dict(report.requests)

    def test_in_place_restore_refused_once_versioning_is_suspended(self, target, s3, history):
        """Versioning suspended: an in-place restore would overwrite or remove null versions for good.

        ``f.txt`` is written after suspension (its only version is the null version); the
        restore to T would delete it, and with versioning suspended the null delete marker
        replaces that version. The backend refuses before writing anything.
        """
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
        s3.put_object(Bucket=BUCKET, Key="f.txt", Body=b"f1")
        before = _live(s3, BUCKET)

        with pytest.raises(PolicyError, match="versioning"):
            target.restore_to_time(history)

        assert before == _live(s3, BUCKET)

    def test_in_place_restore_is_reversible_and_idempotent(self, target, s3, history):
        """A second in-place restore to T changes nothing; history keeps every version."""
        target.restore_to_time(history)
        second = target.restore_to_time(history)
        assert (0, 0, {"unchanged": 3, "deleted at T": 1, "created after T": 1}) == (
            second.restored,
            second.deleted,
            dict(second.skipped),
        )
        report = target.restore_to_time(T0 + timedelta(seconds=40))
        assert {"a.txt": b"a3", "b.txt": b"b2", "c.txt": b"c2", "e.txt": b"e1"} == _live(s3, BUCKET)
        assert (4, 1) == (report.restored, report.deleted)

    def test_restore_into_prefix_of_same_bucket(self, s3, history):
        """A prefix restore into another prefix of the same bucket relocates keys."""
        s3.put_object(Bucket=BUCKET, Key="img/x.png", Body=b"x")
        target = S3Bucket(BUCKET, prefix="img/", account_id=ACCOUNT)
        target.restore_to_time(
            datetime.now(UTC) + timedelta(seconds=5), dest_prefix="restored/img/"
        )
        assert {"restored/img/x.png": b"x"} == _live(s3, BUCKET, "restored/")

    @pytest.mark.parametrize(("prefix", "dest_prefix"), [("", "restored/"), ("img/", "")])
    def test_overlapping_destination_refused(self, s3, prefix, dest_prefix):
        """A destination overlapping the source prefix (but not equal) is refused."""
        target = S3Bucket(BUCKET, prefix=prefix, account_id=ACCOUNT)
        with pytest.raises(
            PolicyError, match="^dest_prefix: expected a prefix that does not overlap"
        ):
            target.restore_to_time(T0, dest_prefix=dest_prefix)

    def test_naive_when_refused(self, target):
        """A naive datetime is refused with the standard message."""
        with pytest.raises(PolicyError, match="^when: expected a timezone-aware datetime"):
            target.restore_to_time(datetime(2026, 1, 1))

    def test_dry_run_writes_nothing(self, target, s3, history):
        """A dry run reports the plan and only lists."""
        report = target.restore_to_time(history, dest_bucket=DEST, dry_run=True)
        assert (3, {"ListObjectVersions": 1}, {}) == (
            report.restored,
            dict(report.requests),
            _live(s3, DEST),
        )

    def test_same_second_counts_as_at_or_before(self, target, s3):
        """A write later in the same second as `when` is included (whole-second rule)."""
        with _at(T0 + timedelta(milliseconds=100)):
            s3.put_object(Bucket=BUCKET, Key="k", Body=b"old")
        with _at(T0 + timedelta(seconds=5, milliseconds=700)):
            s3.put_object(Bucket=BUCKET, Key="k", Body=b"new")
        target.restore_to_time(T0 + timedelta(seconds=5, milliseconds=200), dest_bucket=DEST)
        target.restore_to_time(
            T0 + timedelta(seconds=4, milliseconds=999), dest_bucket=DEST, dest_prefix="before/"
        )
        assert {"k": b"new", "before/k": b"old"} == _live(s3, DEST)

    def test_delete_marker_on_other_page_than_versions(self, target, s3):
        """With one entry per page, a key deleted before T is not restored (s3-pit-restore bug)."""
        with _at(T0):
            s3.put_object(Bucket=BUCKET, Key="k", Body=b"1")
            s3.put_object(Bucket=BUCKET, Key="z", Body=b"1")
        with _at(T0 + timedelta(seconds=10)):
            s3.delete_object(Bucket=BUCKET, Key="k")
        with _at(T0 + timedelta(seconds=30)):
            s3.put_object(Bucket=BUCKET, Key="k", Body=b"2")
        report = target.restore_to_time(T0 + timedelta(seconds=20), dest_bucket=DEST, page_size=1)
        assert {"z": b"1"} == _live(s3, DEST)
        assert (4, {"deleted at T": 1}) == (
            report.requests["ListObjectVersions"],
            dict(report.skipped),
        )

    def test_throttled_copies_complete_once(self, s3, history):
        """A third of CopyObject calls are throttled: every key is still restored, once."""
        client = boto3.client("s3", region_name="us-east-1")
        calls = Counter[str]()

        def flaky(**_kwargs: Any) -> Any:
            calls["all"] += 1
            if calls["all"] % 3 == 1:
                response = AWSResponse("https://s3", 503, {}, None)
                return response, {
                    "Error": {"Code": "SlowDown", "Message": "slow down"},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                }
            return None

        client.meta.events.register("before-call.s3.CopyObject", flaky)
        slept: list[float] = []
        target = S3Bucket(
            BUCKET,
            clients={"s3": client},
            retry=RetryPolicy(sleep=slept.append),
            account_id=ACCOUNT,
        )
        report = target.restore_to_time(history, dest_bucket=DEST, max_workers=2)
        assert EXPECTED_AT_T == _live(s3, DEST)
        assert 3 == report.restored
        assert 3 == len(s3.list_object_versions(Bucket=DEST).get("Versions", []))
        assert len(slept) >= 1


class TestDecide:
    def _e(
        self, second: int, *, marker: bool = False, latest: bool = False, vid: str = ""
    ) -> Entry:
        return Entry(
            key="k",
            version_id=vid or f"v{second}{'m' if marker else ''}",
            last_modified=T0 + timedelta(seconds=second),
            is_latest=latest,
            is_marker=marker,
        )

    @pytest.mark.parametrize(
        ("entries", "in_place", "expected"),
        [
            ([(30, False), (10, False)], False, "copy"),
            ([(30, False), (10, True), (0, False)], False, "deleted at T"),
            ([(30, False)], False, "created after T"),
            ([(30, False)], True, "delete"),
            ([(30, True), (10, False)], True, "copy"),
            ([(10, False)], True, "unchanged"),
            ([(30, True), (10, True), (0, False)], True, "deleted at T"),
        ],
    )
    def test_actions(self, entries, in_place, expected):
        """Each key's action follows from its newest entry at or before T and its current entry."""
        group = [self._e(s, marker=m, latest=i == 0) for i, (s, m) in enumerate(entries)]
        cutoff = math.floor((T0 + timedelta(seconds=20)).timestamp())
        assert expected == decide(group, cutoff, in_place=in_place)[0]

    def test_tie_between_marker_and_version_is_ambiguous(self):
        """A marker and a version in the deciding second are flagged as ambiguous."""
        group = [self._e(10), self._e(10, marker=True)]
        cutoff = math.floor((T0 + timedelta(seconds=20)).timestamp())
        assert ("copy", True) == (
            decide(group, cutoff, in_place=False)[0],
            decide(group, cutoff, in_place=False)[2],
        )


class TestNullVersionRefused:
    @pytest.mark.parametrize(
        ("code", "version", "expected"),
        [
            ("400", "null", True),
            ("BadRequest", "null", True),
            ("400", "v1", False),
            ("AccessDenied", "null", False),
            ("400", None, False),
        ],
    )
    def test_only_a_bare_400_to_the_null_version(self, code, version, expected):
        """Only moto's bare 400 to versionId=null is retried without the version id."""
        error = BackendError("x", backend="b", operation="HeadObject", code=code)
        assert expected is null_version_refused(error, version)


class TestPrefetcher:
    def test_pages_in_order(self):
        """Read-ahead yields every page in order."""
        pages = [{"n": i} for i in range(10)]
        assert pages == list(Prefetcher(iter(pages), 2))

    def test_listing_error_reaches_consumer(self):
        """An error of the listing is raised to the consumer after the pages before it."""

        def pages() -> Iterator[dict[str, Any]]:
            yield {"n": 0}
            raise PermissionDeniedError("denied")

        seen = []
        with pytest.raises(PermissionDeniedError, match="denied"):
            seen.extend(Prefetcher(pages(), 2))
        assert [{"n": 0}] == seen


# Stubber tests ---------------------------------------------------------------------------


def _version(
    key: str, vid: str, seconds: int, *, latest: bool = False, size: int = 3
) -> dict[str, Any]:
    return {
        "Key": key,
        "VersionId": vid,
        "LastModified": T0 + timedelta(seconds=seconds),
        "IsLatest": latest,
        "Size": size,
        "ETag": '"e"',
    }


def _marker(key: str, vid: str, seconds: int, *, latest: bool = False) -> dict[str, Any]:
    return {
        "Key": key,
        "VersionId": vid,
        "LastModified": T0 + timedelta(seconds=seconds),
        "IsLatest": latest,
    }


@pytest.fixture(name="stubbed")
def _stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Bucket, Stubber, list[float]]]:
    # Stubber answers in a fixed order: list pages in the calling thread (no read-ahead), so
    # list and copy requests interleave deterministically. The moto tests cover read-ahead.
    monkeypatch.setattr(_s3_base, "PREFETCH_PAGES", 0)
    client = boto3.client("s3", region_name="us-east-1")
    slept: list[float] = []
    target = S3Bucket(
        BUCKET, clients={"s3": client}, retry=RetryPolicy(sleep=slept.append), account_id=ACCOUNT
    )
    with Stubber(client) as stubber:
        yield target, stubber, slept
        stubber.assert_no_pending_responses()


def _copy_params(key: str, vid: str, dest_key: str | None = None) -> dict[str, Any]:
    return {
        "Bucket": DEST,
        "Key": dest_key or key,
        "CopySource": {"Bucket": BUCKET, "Key": key, "VersionId": vid},
    }


class TestStubbed:
    def test_marker_and_versions_on_different_pages(self, stubbed):
        """Page 1 ends with k's delete marker, page 2 holds k's versions: k is not restored."""
        target, stubber, _ = stubbed
        # The one copy (key l) follows the last page: the Stubber answers in a fixed order, and
        # a copy between the two pages would race the listing of page 2.
        stubber.add_response(
            "list_object_versions",
            {
                "DeleteMarkers": [_marker("k", "m1", 10, latest=True)],
                "IsTruncated": True,
                "NextKeyMarker": "k",
                "NextVersionIdMarker": "m1",
            },
            {"Bucket": BUCKET, "Prefix": ""},
        )
        stubber.add_response(
            "list_object_versions",
            {
                "Versions": [
                    _version("k", "k2", 5),
                    _version("k", "k1", 0),
                    _version("l", "l1", 0, latest=True),
                ],
                "IsTruncated": False,
            },
            {"Bucket": BUCKET, "Prefix": "", "KeyMarker": "k", "VersionIdMarker": "m1"},
        )
        stubber.add_response("copy_object", {}, _copy_params("l", "l1"))
        report = target.restore_to_time(T0 + timedelta(seconds=20), dest_bucket=DEST, max_workers=1)
        assert (1, {"deleted at T": 1}) == (report.restored, dict(report.skipped))

    def test_versions_split_across_pages_pick_version_at_t(self, stubbed):
        """A key's newer versions on page 1 and older ones on page 2: the version at T is copied."""
        target, stubber, _ = stubbed
        stubber.add_response(
            "list_object_versions",
            {
                "Versions": [_version("k", "k3", 30, latest=True)],
                "IsTruncated": True,
                "NextKeyMarker": "k",
                "NextVersionIdMarker": "k3",
            },
            {"Bucket": BUCKET, "Prefix": ""},
        )
        stubber.add_response(
            "list_object_versions",
            {"Versions": [_version("k", "k2", 10), _version("k", "k1", 0)], "IsTruncated": False},
            {"Bucket": BUCKET, "Prefix": "", "KeyMarker": "k", "VersionIdMarker": "k3"},
        )
        stubber.add_response("copy_object", {}, _copy_params("k", "k2"))
        assert (
            1
            == target.restore_to_time(
                T0 + timedelta(seconds=20), dest_bucket=DEST, max_workers=1
            ).restored
        )

    def test_throttled_listing_retried(self, stubbed):
        """A SlowDown on the listing is retried with the injected sleep, then succeeds."""
        target, stubber, slept = stubbed
        stubber.add_client_error("list_object_versions", "SlowDown", http_status_code=503)
        stubber.add_response(
            "list_object_versions",
            {"Versions": [_version("k", "k1", 0, latest=True)], "IsTruncated": False},
        )
        stubber.add_response("copy_object", {}, _copy_params("k", "k1"))
        report = target.restore_to_time(T0 + timedelta(seconds=20), dest_bucket=DEST, max_workers=1)
        assert (1, 1) == (report.restored, len(slept))

    def test_access_denied_on_copy_raises(self, stubbed):
        """AccessDenied on a copy is raised as PermissionDeniedError, not swallowed."""
        target, stubber, _ = stubbed
        stubber.add_response(
            "list_object_versions",
            {"Versions": [_version("k", "k1", 0, latest=True)], "IsTruncated": False},
        )
        stubber.add_client_error("copy_object", "AccessDenied", http_status_code=403)
        with pytest.raises(PermissionDeniedError, match="CopyObject"):
            target.restore_to_time(T0 + timedelta(seconds=20), dest_bucket=DEST, max_workers=1)

    def test_failed_later_page_deletes_nothing(self, stubbed):
        """In place: when page 2 of the listing fails, no DeleteObjects request is sent."""
        target, stubber, _ = stubbed
        # In place: the bucket's versioning is checked before anything is written.
        stubber.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": BUCKET})
        stubber.add_response(
            "list_object_versions",
            {
                "Versions": [_version("new", "n1", 30, latest=True)],
                "IsTruncated": True,
                "NextKeyMarker": "new",
                "NextVersionIdMarker": "n1",
            },
        )
        stubber.add_client_error("list_object_versions", "AccessDenied", http_status_code=403)
        with pytest.raises(PermissionDeniedError):
            target.restore_to_time(T0 + timedelta(seconds=20), max_workers=1)

    def test_retention_deletes_nothing_when_a_later_page_fails(self, stubbed):
        """Decided keys are not deleted when the listing fails before the batch is full."""
        target, stubber, _ = stubbed
        stubber.add_response(
            "get_object_lock_configuration",
            {"ObjectLockConfiguration": {"ObjectLockEnabled": "Disabled"}},
        )
        stubber.add_response(
            "list_object_versions",
            {
                "Versions": [
                    _version("a", "a2", 86400 * 99, latest=True),
                    _version("a", "a1", 0),
                    _version("b", "b2", 86400 * 99, latest=True),
                ],
                "IsTruncated": True,
                "NextKeyMarker": "b",
                "NextVersionIdMarker": "b2",
            },
        )
        stubber.add_client_error("list_object_versions", "AccessDenied", http_status_code=403)
        with pytest.raises(PermissionDeniedError):
            target.apply_noncurrent_retention(MaxAge(days=35), now=T0 + timedelta(days=200))

    def test_versions_in_one_second_follow_the_listing_order(self, stubbed):
        """Equal LastModified, ids opposite to S3's listing: the first-listed version is kept.

        KeepLast(2) keeps the current delete marker and the version S3 lists first (newest),
        the deleted key's last content. Stubber: moto cannot be told which version ids to give.
        """
        target, stubber, _ = stubbed
        stubber.add_response(
            "list_object_versions",
            {
                "DeleteMarkers": [_marker("k", "a-marker", 0, latest=True)],
                "Versions": [_version("k", "b", 0), _version("k", "c", 0), _version("k", "d", 0)],
                "IsTruncated": False,
            },
            {"Bucket": BUCKET, "Prefix": ""},
        )
        (plan,) = target.noncurrent_retention_plan(KeepLast(2), now=T0 + timedelta(days=1))
        assert (["k@a-marker", "k@b"], ["k@c", "k@d"]) == (
            [p.id for p in plan.keep],
            [p.id for p in plan.delete],
        )

    def test_in_place_deletes_in_batches_of_1000(self, stubbed):
        """2500 keys created after T are removed with three DeleteObjects of 1000, 1000, 500."""
        target, stubber, _ = stubbed
        # In place: the bucket's versioning is checked before anything is written.
        stubber.add_response("get_bucket_versioning", {"Status": "Enabled"}, {"Bucket": BUCKET})
        keys = [f"k{i:05d}" for i in range(2500)]
        stubber.add_response(
            "list_object_versions",
            {"Versions": [_version(k, "v1", 30, latest=True) for k in keys], "IsTruncated": False},
        )
        for chunk in (keys[:1000], keys[1000:2000], keys[2000:]):
            stubber.add_response(
                "delete_objects",
                {},
                {
                    "Bucket": BUCKET,
                    "Delete": {"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                },
            )
        report = target.restore_to_time(T0 + timedelta(seconds=20), max_workers=1)
        assert (2500, 3) == (report.deleted, report.requests["DeleteObjects"])

    def test_delete_objects_refuses_over_1000(self, stubbed):
        """A batch of 1001 keys is refused before any request."""
        target, _, _ = stubbed
        with pytest.raises(PolicyError, match="^objects: expected at most 1000 keys"):
            target.delete_objects([(f"k{i}", None) for i in range(1001)])

    def test_delete_objects_per_key_errors_raise(self, stubbed):
        """Per-key errors in a DeleteObjects answer are raised with the first keys named."""
        target, stubber, _ = stubbed
        stubber.add_response(
            "delete_objects",
            {"Errors": [{"Key": "k", "VersionId": "v", "Code": "AccessDenied", "Message": "no"}]},
        )
        with pytest.raises(
            Exception, match=r"DeleteObjects failed for 1 of 1 keys \(k@v: AccessDenied\)"
        ):
            target.delete_objects([("k", "v")])

    def test_multipart_copy_above_5_gib(self, stubbed):
        """A 6 GiB version is copied with UploadPartCopy in 512 MiB ranges, then completed."""
        target, stubber, _ = stubbed
        size = 6 * 1024**3
        part = 512 * 1024**2
        stubber.add_response(
            "list_object_versions",
            {"Versions": [_version("big", "b1", 0, latest=True, size=size)], "IsTruncated": False},
        )
        stubber.add_response(
            "head_object",
            {
                "ContentLength": size,
                "ContentType": "application/octet-stream",
                "Metadata": {"a": "b"},
            },
            {"Bucket": BUCKET, "Key": "big", "VersionId": "b1"},
        )
        stubber.add_response(
            "create_multipart_upload",
            {"UploadId": "u1"},
            {
                "Bucket": DEST,
                "Key": "big",
                "Metadata": {"a": "b"},
                "ContentType": "application/octet-stream",
            },
        )
        ranges = [(s, min(s + part, size) - 1) for s in range(0, size, part)]
        for number, (start, end) in enumerate(ranges, start=1):
            stubber.add_response(
                "upload_part_copy",
                {"CopyPartResult": {"ETag": f'"p{number}"'}},
                {
                    "Bucket": DEST,
                    "Key": "big",
                    "UploadId": "u1",
                    "PartNumber": number,
                    "CopySource": {"Bucket": BUCKET, "Key": "big", "VersionId": "b1"},
                    "CopySourceRange": f"bytes={start}-{end}",
                },
            )
        stubber.add_response(
            "complete_multipart_upload",
            {"VersionId": "new"},
            {
                "Bucket": DEST,
                "Key": "big",
                "UploadId": "u1",
                "MultipartUpload": {
                    "Parts": [{"PartNumber": n, "ETag": f'"p{n}"'} for n in range(1, 13)]
                },
            },
        )
        report = target.restore_to_time(T0 + timedelta(seconds=20), dest_bucket=DEST, max_workers=1)
        assert 12 == len(ranges)
        assert {
            "ListObjectVersions": 1,
            "HeadObject": 1,
            "CreateMultipartUpload": 1,
            "UploadPartCopy": 12,
            "CompleteMultipartUpload": 1,
        } == dict(report.requests)
        assert size > MAX_COPY_OBJECT_SIZE

    def test_multipart_copy_aborts_on_failure(self, stubbed):
        """A failing part aborts the multipart upload and raises."""
        target, stubber, _ = stubbed
        size = MAX_COPY_OBJECT_SIZE + 1
        stubber.add_response(
            "list_object_versions",
            {"Versions": [_version("big", "b1", 0, latest=True, size=size)], "IsTruncated": False},
        )
        stubber.add_response("head_object", {"ContentLength": size})
        stubber.add_response("create_multipart_upload", {"UploadId": "u1"})
        stubber.add_client_error("upload_part_copy", "AccessDenied", http_status_code=403)
        stubber.add_response(
            "abort_multipart_upload", {}, {"Bucket": DEST, "Key": "big", "UploadId": "u1"}
        )
        with pytest.raises(PermissionDeniedError):
            target.restore_to_time(T0 + timedelta(seconds=20), dest_bucket=DEST, max_workers=1)

    def test_bad_max_workers_refused(self, stubbed):
        """max_workers must be a positive integer."""
        target, _, _ = stubbed
        with pytest.raises(PolicyError, match="^max_workers: expected an integer >= 1"):
            target.restore_to_time(T0, dest_bucket=DEST, max_workers=0)

    def test_report_totals(self):
        """A report sums skipped keys and requests."""
        report = RestoreReport(
            when=T0,
            source="s3://a/",
            destination="s3://b/",
            in_place=False,
            dry_run=False,
            keys=5,
            restored=3,
            deleted=0,
            skipped={"deleted at T": 1, "created after T": 1},
            ambiguous=0,
            bytes_copied=9,
            requests={"ListObjectVersions": 1, "CopyObject": 3},
        )
        assert (2, 4) == (report.skipped_total, report.total_requests)


# Contract ---------------------------------------------------------------------------------


class TestS3BucketContract(BackupTargetContract):
    """S3Bucket passes the BackupTarget contract (points: manifests) under moto."""

    @pytest.fixture(name="target")
    def _contract_target(self, s3: Any) -> S3Bucket:
        create_bucket(s3, Bucket="contract", ObjectLockEnabledForBucket=True)
        s3.put_object(Bucket="contract", Key="data/a.txt", Body=b"a1")
        s3.put_object(Bucket="contract", Key="data/a.txt", Body=b"a2")
        return S3Bucket(
            "contract",
            account_id=ACCOUNT,
            policy="prod",
            copy_stores={f"s3://{DEST}/offsite/": "offsite"},
        )

    @pytest.fixture(name="destination")
    def _contract_destination(self) -> Destination:
        return Destination(tier="offsite", store=f"s3://{DEST}/offsite/")

    @pytest.fixture(name="foreign_point")
    def _contract_foreign(self, target: S3Bucket) -> RecoveryPoint:
        return next(p for p in target.list_points() if p.kind == "s3-version" and not p.managed)

    def restored_exists(self, target: Any, restored: RestoredResource) -> bool | None:
        """Whether anything is left under the restore prefix."""
        client = boto3.client("s3", region_name="us-east-1")
        page = client.list_object_versions(Bucket="contract", Prefix=restored.details["prefix"])
        return bool(page.get("Versions") or page.get("DeleteMarkers"))


# Copy stores ---------------------------------------------------------------------------------

OFFSITE = "assets-offsite"
OFFSITE_REGION = "eu-west-1"
STORE = f"s3://{OFFSITE}/web-apps"  # no trailing slash: the prefix is a folder all the same
MONDAY = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)


def _versions(s3: Any, bucket: str, prefix: str = "") -> set[tuple[str, str]]:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", [])
    return {(v["Key"], v["VersionId"]) for v in listed}


def _store_policy(retention: str = "7d", offsite_retention: str = "30d") -> Any:
    from backuppolicy.core.policy import Policy

    return Policy.from_dict(
        {
            "name": "web-apps",
            "timezone": "UTC",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": retention},
            "tiers": [
                {"name": "local", "every": "day"},
                {
                    "name": "offsite",
                    "every": "week",
                    "location": {"region": OFFSITE_REGION, "store": STORE},
                    "retention": {"max_age": offsite_retention},
                },
            ],
            "targets": [
                {
                    "name": "assets",
                    "kind": "s3-bucket",
                    "settings": {"bucket": BUCKET, "region": "us-east-1"},
                }
            ],
        }
    )


class TestCopyStores:
    @pytest.fixture(name="offsite")
    def _offsite(self, s3: Any) -> Any:
        client = boto3.client("s3", region_name=OFFSITE_REGION)
        create_bucket(
            client, Bucket=OFFSITE, CreateBucketConfiguration={"LocationConstraint": OFFSITE_REGION}
        )
        client.put_bucket_versioning(Bucket=OFFSITE, VersioningConfiguration={"Status": "Enabled"})
        return client

    @pytest.fixture(name="stored")
    def _stored(self, s3: Any, offsite: Any, history: datetime) -> S3Bucket:
        return S3Bucket(
            BUCKET,
            account_id=ACCOUNT,
            retry=RetryPolicy(sleep=lambda _s: None),
            copy_stores={STORE: "offsite"},
        )

    def _copy(self, target: S3Bucket, point: RecoveryPoint, **kw: Any) -> RecoveryPoint:
        kw.setdefault("region", OFFSITE_REGION)
        return target.copy(point, Destination(tier="offsite", store=STORE, **kw))

    def _offsite_points(self, target: S3Bucket) -> list[RecoveryPoint]:
        return [p for p in target.list_points() if p.tier == "offsite"]

    def test_copy_is_listed_in_its_tier(self, stored):
        """A manifest copied to the store is listed as a managed point of the store's tier."""
        point = stored.create_backup(token=TOKEN)
        copy = self._copy(stored, point)
        listed = self._offsite_points(stored)
        assert [copy.id] == [p.id for p in listed]
        assert (
            "s3-manifest",
            True,
            point.created_at,
            OFFSITE,
            OFFSITE_REGION,
            f"aws:{ACCOUNT}:{OFFSITE_REGION}",
            f"s3://{OFFSITE}/web-apps/manifests/{BUCKET}/",
        ) == (
            listed[0].kind,
            listed[0].managed,
            listed[0].created_at,
            listed[0].details["bucket"],
            listed[0].details["region"],
            listed[0].location,
            listed[0].id.rpartition("/")[0] + "/",
        )

    def test_store_region_is_read_from_the_bucket_location(self, stored):
        """Without a region in the destination, the copy's region is the store bucket's."""
        copy = self._copy(stored, stored.create_backup(token=TOKEN), region=None)
        fresh = S3Bucket(BUCKET, account_id=ACCOUNT, copy_stores=[(STORE, "offsite")])
        assert [OFFSITE_REGION, OFFSITE_REGION] == [
            copy.details["region"],
            self._offsite_points(fresh)[0].details["region"],
        ]

    def test_copy_manifest_lists_the_copied_versions(self, stored, s3, offsite):
        """The copy's manifest names versions in the store with the source versions' bytes."""
        point = stored.create_backup(token=TOKEN)
        copy = self._copy(stored, point)
        lines = list(stored.read_manifest(copy))
        source = {line["key"]: line["version_id"] for line in stored.read_manifest(point)}
        copied = {
            line["key"]: offsite.get_object(
                Bucket=OFFSITE, Key=line["key"], VersionId=line["version_id"]
            )["Body"].read()
            for line in lines
        }
        expected = {
            f"web-apps/{key}": s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)[
                "Body"
            ].read()
            for key, version in source.items()
        }
        assert expected == copied
        assert len(source) == copy.details["objects"]

    def test_copy_keeps_ownership_tags_and_adds_the_tier(self, stored, offsite, s3):
        """The manifest copy has the source's tags plus the tier tag; data keeps its tags."""
        s3.put_object(Bucket=BUCKET, Key="tagged.txt", Body=b"t", Tagging="class=public")
        point = stored.create_backup(token=TOKEN, tags={"team": "web"})
        copy = self._copy(stored, point)
        tag_set = offsite.get_object_tagging(
            Bucket=OFFSITE, Key=copy.details["key"], VersionId=copy.details["version_id"]
        )["TagSet"]
        tags = {t["Key"]: t["Value"] for t in tag_set}
        data_tags = offsite.get_object_tagging(Bucket=OFFSITE, Key="web-apps/tagged.txt")["TagSet"]
        assert {**point.tags, TAG_TIER: "offsite"} == tags
        assert [{"Key": "class", "Value": "public"}] == data_tags

    def test_copying_again_returns_the_existing_copy(self, stored, offsite):
        """A second copy of the same manifest to the same store copies nothing."""
        point = stored.create_backup(token=TOKEN)
        first = self._copy(stored, point)
        before = _versions(offsite, OFFSITE)
        second = self._copy(stored, point)
        assert (first.id, before) == (second.id, _versions(offsite, OFFSITE))

    def test_refresh_rereads_the_copy_and_none_once_gone(self, stored, offsite):
        """refresh re-reads a copy from its store, and gives None once it is deleted."""
        copy = self._copy(stored, stored.create_backup(token=TOKEN))
        fresh = stored.refresh(copy)
        assert fresh is not None
        assert (copy.id, copy.tier, copy.tags, True) == (
            fresh.id,
            fresh.tier,
            fresh.tags,
            fresh.managed,
        )
        offsite.delete_object(
            Bucket=OFFSITE, Key=copy.details["key"], VersionId=copy.details["version_id"]
        )
        assert stored.refresh(copy) is None

    def test_delete_removes_the_copy_and_its_data(self, stored, offsite, s3):
        """Deleting a copy removes its manifest and the versions only it lists; the other stays."""
        first = self._copy(stored, stored.create_backup(token=TOKEN))
        s3.put_object(Bucket=BUCKET, Key="b.txt", Body=b"b3")
        second = self._copy(stored, stored.create_backup(token=TOKEN_2))
        first_data = {(line["key"], line["version_id"]) for line in stored.read_manifest(first)}
        stored.delete(first)
        second_data = {(line["key"], line["version_id"]) for line in stored.read_manifest(second)}
        remaining = _versions(offsite, OFFSITE, "web-apps/")
        assert [second.id] == [p.id for p in self._offsite_points(stored)]
        assert (set(), second_data) == (
            first_data & remaining,
            second_data & remaining,
        )

    def test_refresh_reads_the_null_version_of_a_store_versioned_later(self, s3, history):
        """A re-read of a copy made in an unversioned store reads its ``null`` version.

        After the store enables versioning and the key is overwritten, ``refresh`` still reads
        the copy (versionId=null), not the current object.
        """
        create_bucket(s3, Bucket=OFFSITE)  # unversioned: the copy's version id is "null"
        target = S3Bucket(BUCKET, account_id=ACCOUNT, copy_stores={STORE: "offsite"})
        copy = target.copy(
            target.create_backup(token=TOKEN), Destination(tier="offsite", store=STORE)
        )
        s3.put_bucket_versioning(Bucket=OFFSITE, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(
            Bucket=OFFSITE, Key=copy.details["key"], Body=b"{}", Metadata={"objects": "99"}
        )

        fresh = target.refresh(copy)

        assert "null" == copy.details["version_id"]
        assert fresh is not None
        assert (copy.size_bytes, copy.details["objects"], copy.created_at) == (
            fresh.size_bytes,
            fresh.details["objects"],
            fresh.created_at,
        )

    def test_delete_keeps_data_another_copy_lists(self, s3, history):
        """In an unversioned store both copies list the same 'null' versions: they are kept."""
        create_bucket(s3, Bucket=OFFSITE)
        target = S3Bucket(BUCKET, account_id=ACCOUNT, copy_stores={STORE: "offsite"})
        destination = Destination(tier="offsite", store=STORE)
        first = target.copy(target.create_backup(token=TOKEN), destination)
        second = target.copy(target.create_backup(token=TOKEN_2), destination)
        target.delete(first)
        data = {(line["key"], line["version_id"]) for line in target.read_manifest(second)}
        assert data <= _versions(s3, OFFSITE, "web-apps/")
        assert [second.id] == [p.id for p in self._offsite_points(target)]

    def test_delete_refuses_held_and_foreign_copies(self, stored, offsite):
        """A held copy, or one of another policy, is refused; nothing is deleted."""
        copy = self._copy(stored, stored.create_backup(token=TOKEN))
        before = _versions(offsite, OFFSITE)
        held = stored.place_hold(copy, LegalHold(reason="litigation", since=T0))
        other = S3Bucket(BUCKET, account_id=ACCOUNT, policy="other", copy_stores={STORE: "offsite"})
        foreign = self._offsite_points(other)[0]
        with pytest.raises(ProtectedPointError):
            stored.delete(copy)  # the caller's copy has no hold: the re-read finds it
        with pytest.raises(ProtectedPointError):
            other.delete(foreign.evolve(managed=True))
        assert (True, before) == (held.held, _versions(offsite, OFFSITE))

    def test_restore_reads_the_copy_not_the_source(self, stored, s3):
        """A copy restores even after the source versions are gone."""
        point = stored.create_backup(token=TOKEN)
        expected = {
            line["key"]: s3.get_object(
                Bucket=BUCKET, Key=line["key"], VersionId=line["version_id"]
            )["Body"].read()
            for line in stored.read_manifest(point)
        }
        copy = self._copy(stored, point)
        for line in stored.read_manifest(point):
            s3.delete_object(Bucket=BUCKET, Key=line["key"], VersionId=line["version_id"])
        with stored.restore(copy) as restored:
            prefix = restored.details["prefix"]
            copied = {k.removeprefix(prefix): v for k, v in _live_all(s3, BUCKET, prefix).items()}
        assert expected == copied

    def test_integrity_check_passes_on_a_copy(self, stored):
        """IntegrityCheck reads the copied versions in the store and finds them intact."""
        from backuppolicy.checks.integrity import IntegrityCheck
        from backuppolicy.checks.verify import VerifyContext
        from backuppolicy.core.results import CheckStatus

        copy = self._copy(stored, stored.create_backup(token=TOKEN))
        result = IntegrityCheck().verify(stored, copy, VerifyContext(now=T0))
        assert CheckStatus.PASS == result.status, result.details

    def test_invalid_copy_stores_are_refused(self, s3):
        """Non-S3 URLs, empty tiers and stores inside the protected objects are refused."""
        for stores in ({"/srv/backups": "offsite"}, {STORE: ""}, {f"s3://{BUCKET}/x/": "offsite"}):
            with pytest.raises(PolicyError, match="copy_stores"):
                S3Bucket(BUCKET, copy_stores=stores)


class TestCopyStoresInWorkflows:
    @pytest.fixture(name="world")
    def _world(self, s3: Any) -> Any:
        offsite = boto3.client("s3", region_name=OFFSITE_REGION)
        create_bucket(
            offsite,
            Bucket=OFFSITE,
            CreateBucketConfiguration={"LocationConstraint": OFFSITE_REGION},
        )
        offsite.put_bucket_versioning(Bucket=OFFSITE, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"a1")
        return offsite

    def test_one_offsite_copy_per_week(self, world):
        """The second daily run of the week backs up again but makes no new off-site copy."""
        from backuppolicy.workflows.backups import backup, build_targets

        policy = _store_policy()
        targets = build_targets(policy, region="us-east-1")
        reports = []
        for day in range(2):
            with _at(MONDAY + timedelta(days=day)):
                reports.append(backup(policy, now=MONDAY + timedelta(days=day), targets=targets))
        offsite = [p for p in targets["assets"].list_points() if p.tier == "offsite"]
        assert ([1, 1], [1, 0], 1) == (
            [len(r.created) for r in reports],
            [len(r.copies) for r in reports],
            len(offsite),
        )

    def test_retention_plans_the_copy_tier_with_its_rule(self, world):
        """Local manifests follow the policy's 7 days, off-site copies their tier's 30 days."""
        from backuppolicy.workflows.backups import build_targets
        from backuppolicy.workflows.pruning import apply, plan_retention

        policy = _store_policy()
        target = build_targets(policy, region="us-east-1")["assets"]
        assert isinstance(target, S3Bucket)
        now = MONDAY + timedelta(days=60)
        copies = {}
        for age in (40, 20, 10):
            point = target.create_backup(token=f"t{age}", now=now - timedelta(days=age))
            copies[age] = target.copy(
                point, Destination(tier="offsite", store=STORE, region=OFFSITE_REGION)
            )
        plan = plan_retention(policy, now=now, targets={"assets": target})
        deleted = {(p.tier, p.created_at) for p in plan.delete if p.kind == "s3-manifest"}
        assert {
            ("local", now - timedelta(days=40)),
            ("local", now - timedelta(days=20)),
            ("offsite", now - timedelta(days=40)),
        } == deleted
        apply(plan)
        left = sorted(p.id for p in target.list_points() if p.tier == "offsite")
        assert sorted([copies[20].id, copies[10].id]) == left
