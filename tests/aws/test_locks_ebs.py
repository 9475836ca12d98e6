"""EBS snapshot locks: a tier's lock and the lock behind a legal hold.

moto 5.2 lacks LockSnapshot, UnlockSnapshot and DescribeLockedSnapshots (it raises
NotImplementedError), so these tests use `botocore.stub.Stubber` on an injected EC2 client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws._ec2_base import TAG_LOCK
from backuppolicy.aws.ec2 import EbsVolume
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import ProtectedPointError
from backuppolicy.core.locks import HoldEnforcing, LockablePoints, PointLock
from backuppolicy.core.model import TAG_HOLD, TAG_POLICY, TAG_TARGET, LegalHold

REGION = "us-east-1"
ACCOUNT = "123456789012"
START = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
UNTIL = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
OURS = {TAG_POLICY: "prod", TAG_TARGET: "data"}


def _snapshot(**tags: str) -> dict[str, Any]:
    return {
        "SnapshotId": "snap-1",
        "VolumeId": "vol-1",
        "State": "completed",
        "StartTime": START,
        "OwnerId": ACCOUNT,
        "VolumeSize": 8,
        "Encrypted": True,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


@pytest.fixture(name="stubbed")
def _stubbed() -> tuple[EbsVolume, Stubber]:
    client = boto3.Session(region_name=REGION).client("ec2", region_name=REGION)
    target = EbsVolume(
        "vol-1",
        name="data",
        policy="prod",
        account_id=ACCOUNT,
        clients={"ec2": client},
        retry=RetryPolicy(sleep=lambda _: None),
    )
    return target, Stubber(client)


def _point(target: EbsVolume, stub: Stubber, **tags: str) -> Any:
    stub.add_response("describe_snapshots", {"Snapshots": [_snapshot(**OURS, **tags)]})
    with stub:
        return target.refresh(target_point(target))


def target_point(target: EbsVolume) -> Any:
    """A bare point naming snap-1 of *target*."""
    from backuppolicy.core.model import RecoveryPoint

    return RecoveryPoint(
        id="snap-1",
        target=target.name,
        created_at=START,
        kind="ebs-snapshot",
        location=f"aws:{ACCOUNT}:{REGION}",
        details={"region": REGION, "snapshot_ids": ["snap-1"]},
    )


class TestSnapshotLock:
    def test_is_lockable_and_enforces_holds(self, stubbed):
        """EBS targets implement both lock protocols."""
        target, _ = stubbed
        assert (True, True) == (
            isinstance(target, LockablePoints),
            isinstance(target, HoldEnforcing),
        )

    def test_compliance_lock_with_cool_off(self, stubbed):
        """LockSnapshot is called in compliance mode with the expiry and cool-off; tag recorded."""
        target, stub = stubbed
        point = _point(target, stub)
        tag = f"compliance|{UNTIL.isoformat()}"
        stub.add_response(
            "lock_snapshot",
            {"SnapshotId": "snap-1", "LockState": "compliance-cooloff"},
            {
                "SnapshotId": "snap-1",
                "LockMode": "compliance",
                "ExpirationDate": UNTIL,
                "CoolOffPeriod": 24,
            },
        )
        stub.add_response(
            "create_tags",
            {},
            {"Resources": ["snap-1"], "Tags": [{"Key": TAG_LOCK, "Value": tag}]},
        )
        stub.add_response(
            "describe_snapshots", {"Snapshots": [_snapshot(**OURS, **{TAG_LOCK: tag})]}
        )
        with stub:
            locked = target.lock_point(
                point, PointLock("compliance", UNTIL), cool_off=Duration(hours=24)
            )
        stub.assert_no_pending_responses()
        assert PointLock("compliance", UNTIL, source="ebs-snapshot-lock") == locked.lock

    def test_locked_snapshot_is_never_sent_to_delete(self, stubbed):
        """A locked point is refused before any DeleteSnapshot (Stubber fails on an extra call)."""
        target, stub = stubbed
        point = _point(target, stub, **{TAG_LOCK: f"governance|{UNTIL.isoformat()}"})
        with stub, pytest.raises(ProtectedPointError, match=r"locked \(governance\)"):
            target.delete(point)

    def test_a_longer_lock_is_not_shortened(self, stubbed):
        """A point already locked past the requested expiry is not locked again."""
        target, stub = stubbed
        later = UNTIL + timedelta(days=10)
        point = _point(target, stub, **{TAG_LOCK: f"compliance|{later.isoformat()}"})
        stub.add_response("describe_snapshots", {"Snapshots": [_snapshot(**OURS)]})
        with stub:
            target.lock_point(point, PointLock("compliance", UNTIL))
        stub.assert_no_pending_responses()


class TestHoldLock:
    def test_hold_is_a_governance_lock(self, stubbed):
        """enforce_hold locks the snapshot in governance mode for EC2's longest duration."""
        target, stub = stubbed
        point = _point(target, stub, **{TAG_HOLD: "case-17||litigation"})
        stub.add_response(
            "lock_snapshot",
            {"SnapshotId": "snap-1", "LockState": "governance"},
            {"SnapshotId": "snap-1", "LockMode": "governance", "LockDuration": 36500},
        )
        stub.add_response("create_tags", {}, {"Resources": ["snap-1"], "Tags": ANY})
        tags = {TAG_HOLD: "case-17||litigation", TAG_LOCK: "governance||hold"}
        stub.add_response("describe_snapshots", {"Snapshots": [_snapshot(**OURS, **tags)]})
        with stub:
            held = target.enforce_hold(point)
        assert ("governance", None) == (held.lock.mode, held.lock.until)

    def test_release_unlocks(self, stubbed):
        """Releasing a hold without a tier lock unlocks the snapshot and drops the lock tag."""
        target, stub = stubbed
        point = _point(target, stub, **{TAG_LOCK: "governance||hold"})
        stub.add_response("unlock_snapshot", {"SnapshotId": "snap-1"}, {"SnapshotId": "snap-1"})
        stub.add_response("delete_tags", {}, {"Resources": ["snap-1"], "Tags": [{"Key": TAG_LOCK}]})
        with stub:
            target.release_enforcement(point, None)
        stub.assert_no_pending_responses()

    def test_release_restores_the_tier_lock(self, stubbed):
        """Releasing a hold on a tier-locked snapshot puts the tier's governance lock back."""
        target, stub = stubbed
        point = _point(target, stub, **{TAG_LOCK: "governance||hold"})
        stub.add_response(
            "lock_snapshot",
            {"SnapshotId": "snap-1"},
            {"SnapshotId": "snap-1", "LockMode": "governance", "ExpirationDate": UNTIL},
        )
        stub.add_response("create_tags", {}, {"Resources": ["snap-1"], "Tags": ANY})
        with stub:
            target.release_enforcement(point, PointLock("governance", UNTIL))
        stub.assert_no_pending_responses()

    def test_gap_when_ec2_reports_no_lock(self, stubbed):
        """A held snapshot that DescribeLockedSnapshots does not list is a gap."""
        target, stub = stubbed
        point = _point(target, stub).evolve(legal_hold=LegalHold(reason="audit"))
        stub.add_response(
            "describe_locked_snapshots", {"Snapshots": []}, {"SnapshotIds": ["snap-1"]}
        )
        with stub:
            assert ["snapshot snap-1: no snapshot lock"] == target.hold_gaps(point)

    def test_no_gap_when_hold_lock_is_in_place(self, stubbed):
        """A 100-year governance lock behind the hold is no gap."""
        target, stub = stubbed
        point = _point(target, stub).evolve(legal_hold=LegalHold(reason="audit"))
        far = datetime.now(UTC) + timedelta(days=36000)
        stub.add_response(
            "describe_locked_snapshots",
            {
                "Snapshots": [
                    {"SnapshotId": "snap-1", "LockState": "governance", "LockExpiresOn": far}
                ]
            },
        )
        with stub:
            assert [] == target.hold_gaps(point)
