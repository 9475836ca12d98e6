"""S3 Object Lock retention from a tier's lock: nobody deletes a locked version early (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from backuppolicy.aws.s3 import S3Bucket
from backuppolicy.core.exceptions import PolicyError, ProtectedPointError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import LegalHold, RecoveryPoint
from backuppolicy.core.retention import MaxAge
from backuppolicy.core.targets import Destination
from backuppolicy.workflows.pruning import defer_locked
from tests.aws.aws_defaults import create_bucket

ACCOUNT = "123456789012"


def _lock(mode: str, days: int = 30) -> PointLock:
    return PointLock(mode, (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0))


@pytest.fixture(name="s3")
def _s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    create_bucket(client, Bucket="vault", ObjectLockEnabledForBucket=True)
    for body in (b"1", b"2"):
        client.put_object(Bucket="vault", Key="data/a", Body=body)
    client.put_object(Bucket="vault", Key="data/b", Body=b"b")
    return client


@pytest.fixture(name="target")
def _target(s3: Any) -> S3Bucket:
    return S3Bucket("vault", prefix="data/", policy="shop", account_id=ACCOUNT)


def _manifest(target: S3Bucket, token: str = "t1") -> RecoveryPoint:  # noqa: S107 - idempotency token
    return target.create_backup(reason="manual", token=token)


def _delete(s3: Any, bucket: str, key: str, version: str, *, bypass: bool) -> None:
    extra = {"BypassGovernanceRetention": True} if bypass else {}
    s3.delete_object(Bucket=bucket, Key=key, VersionId=version, **extra)


class TestObjectLockRetention:
    def test_locked_manifest_and_its_data_cannot_be_deleted_by_anyone(self, target, s3):
        """Compliance: the manifest and each version it lists refuse deletion, bypass or not."""
        point = _manifest(target)
        lock = _lock("compliance")
        locked = target.lock_point(point, lock)
        assert ("compliance", lock.until) == (locked.lock.mode, locked.lock.until)
        pairs = [(point.details["key"], point.details["version_id"])]
        pairs += [(e["key"], e["version_id"]) for e in target.read_manifest(point)]
        assert 3 == len(pairs)
        for key, version in pairs:
            for bypass in (False, True):
                with pytest.raises(ClientError, match="AccessDenied"):
                    _delete(s3, "vault", key, version, bypass=bypass)
        # moto answers GetObjectRetention with a 500; HeadObject carries the same facts.
        head = s3.head_object(Bucket="vault", Key=pairs[1][0], VersionId=pairs[1][1])
        assert "COMPLIANCE" == head["ObjectLockMode"]

    def test_governance_refuses_without_bypass(self, target, s3):
        """Governance: a delete without the bypass header fails; only a bypass can lift it."""
        point = target.lock_point(_manifest(target), _lock("governance"))
        key, version = point.details["key"], point.details["version_id"]
        with pytest.raises(ClientError, match="AccessDenied"):
            _delete(s3, "vault", key, version, bypass=False)
        _delete(s3, "vault", key, version, bypass=True)  # the documented escape hatch

    def test_library_refuses_before_asking_s3(self, target):
        """S3Bucket.delete refuses a point whose lock is active: ProtectedPointError."""
        point = target.lock_point(_manifest(target), _lock("governance"))
        with pytest.raises(ProtectedPointError, match=r"locked \(governance\)"):
            target.delete(point)

    def test_listing_reports_the_lock(self, target):
        """list_points reads the retention back as the point's lock."""
        point = target.lock_point(_manifest(target), _lock("compliance"))
        listed = next(p for p in target.list_points() if p.id == point.id)
        assert point.lock == listed.lock

    def test_a_longer_lock_is_never_shortened(self, target):
        """Locking again for less leaves the longer retention in place."""
        point = _manifest(target)
        long = target.lock_point(point, _lock("compliance", 60))
        again = target.lock_point(point, _lock("compliance", 10))
        assert long.lock == again.lock

    def test_bucket_without_object_lock_is_a_clear_error(self, s3):
        """A bucket without Object Lock: PolicyError naming the bucket's object_lock setting."""
        create_bucket(s3, Bucket="plain")
        s3.put_bucket_versioning(Bucket="plain", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="plain", Key="a", Body=b"1")
        target = S3Bucket("plain", policy="shop", account_id=ACCOUNT)
        with pytest.raises(PolicyError) as info:
            target.lock_point(_manifest(target), _lock("compliance"))
        assert "plain.object_lock" == info.value.path

    def test_copy_in_a_locked_store_is_locked_with_its_versions(self, target, s3):
        """A manifest copy in an Object Lock store: the copy and its copied versions are locked."""
        create_bucket(s3, Bucket="offsite", ObjectLockEnabledForBucket=True)
        copy = target.copy(_manifest(target), Destination(tier="offsite", store="s3://offsite/c/"))
        locked = target.lock_point(copy, _lock("compliance"))
        assert "compliance" == locked.lock.mode
        for entry in target.read_manifest(copy):
            with pytest.raises(ClientError, match="AccessDenied"):
                _delete(s3, "offsite", entry["key"], entry["version_id"], bypass=True)

    def test_pruning_plans_a_locked_manifest_for_its_expiry(self, target):
        """The older manifest is past MaxAge but locked: kept, with the day it will go."""
        old = _manifest(target, "t1")
        _manifest(target, "t2")
        lock = _lock("compliance")
        target.lock_point(old, lock)
        manifests = [p for p in target.list_points() if p.kind == "s3-manifest"]
        later = datetime.now(UTC) + timedelta(days=2)
        plan = defer_locked(MaxAge(days=1).plan(manifests, now=later))
        assert [] == plan.delete
        expected = f"locked (compliance) until {lock.until.date().isoformat()}; deletes then"
        assert expected in plan.reasons[old.id]


class TestHoldsBelowTheLibrary:
    def _status(self, s3: Any, key: str, version: str) -> str:
        head = s3.head_object(Bucket="vault", Key=key, VersionId=version)
        return str(head.get("ObjectLockLegalHoldStatus", "OFF"))

    def test_hold_on_a_manifest_holds_its_versions(self, target, s3):
        """enforce_hold: Object Lock legal hold ON for the manifest and each version it lists."""
        point = target.place_hold(_manifest(target), LegalHold(reason="audit"))
        held = target.enforce_hold(point)
        pairs = [(e["key"], e["version_id"]) for e in target.read_manifest(point)]
        assert ["ON", "ON"] == [self._status(s3, k, v) for k, v in pairs]
        assert [] == target.hold_gaps(held)
        for key, version in pairs:
            with pytest.raises(ClientError, match="AccessDenied"):
                _delete(s3, "vault", key, version, bypass=True)

    def test_tag_only_hold_is_a_gap(self, target):
        """A manifest held by the tag alone (no enforce_hold): each version is a gap."""
        point = target.place_hold(_manifest(target), LegalHold(reason="audit"))
        gaps = target.hold_gaps(point)
        assert 2 == len(gaps)
        assert all("no Object Lock legal hold" in gap for gap in gaps)

    def test_release_keeps_versions_another_held_manifest_lists(self, target, s3):
        """Releasing one of two held manifests keeps the legal hold on their shared versions."""
        first = target.enforce_hold(
            target.place_hold(_manifest(target, "t1"), LegalHold(reason="a"))
        )
        second = target.enforce_hold(
            target.place_hold(_manifest(target, "t2"), LegalHold(reason="b"))
        )
        target.release_enforcement(first, None)
        target.release_hold(first)
        pairs = [(e["key"], e["version_id"]) for e in target.read_manifest(second)]
        assert ["ON", "ON"] == [self._status(s3, k, v) for k, v in pairs]
        target.release_enforcement(second, None)
        assert ["OFF", "OFF"] == [self._status(s3, k, v) for k, v in pairs]
