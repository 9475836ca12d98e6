"""EBS snapshot locks of the EC2 and EBS targets: a tier's lock, and the lock behind a legal hold.

`SnapshotLocks.lock_point` locks every snapshot of a point with ``LockSnapshot`` (governance, or
compliance with an optional cool-off) and records the lock in the ``backuppolicy:lock`` tag, so
that a listing (``DescribeSnapshots``) knows it without another call. `snapshot_locks` asks EC2
itself (``DescribeLockedSnapshots``): the audit trusts only that.

A legal hold is also a governance lock (`enforce_hold`): a hold has no end date, so the lock
runs for the longest period EC2 allows, and `release_enforcement` puts back the tier's own lock
(or unlocks the snapshot) when the hold is released. A compliance-locked snapshot keeps its
compliance lock (it cannot be weakened to governance); the audit reports the day it expires.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backuppolicy.aws._ec2_base import LOCK_SOURCE as SOURCE
from backuppolicy.aws._ec2_base import TAG_LOCK, Ec2Base
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import RecoveryPoint

__all__ = ["HOLD_LOCK_DAYS", "SnapshotLocks"]

HOLD_LOCK_DAYS = 36500
"""Length of the governance lock behind a legal hold: EC2's longest (``LockDuration``)."""


def _tag(lock: PointLock, *, hold: bool = False) -> str:
    until = lock.until.astimezone(UTC).isoformat() if lock.until else ""
    return f"{lock.mode}|{until}" + ("|hold" if hold else "")


class SnapshotLocks(Ec2Base):
    """Locks the snapshots of the volume or instance (a mixin of `EbsVolume`, `Ec2Instance`)."""

    def _ids(self, point: RecoveryPoint) -> list[str]:
        return [str(s) for s in point.details.get("snapshot_ids") or [point.id]]

    def _lock_snapshots(
        self,
        point: RecoveryPoint,
        lock: PointLock,
        *,
        cool_off: Duration | None = None,
        hold: bool = False,
    ) -> None:
        region = self._region_of(point) or self.region
        params: dict[str, object] = {"LockMode": lock.mode}
        if lock.until is None:
            params["LockDuration"] = HOLD_LOCK_DAYS
        else:
            params["ExpirationDate"] = lock.until
        if cool_off is not None and lock.mode == "compliance":
            params["CoolOffPeriod"] = int(cool_off.approx_timedelta() / timedelta(hours=1))
        ids = self._ids(point)
        for snapshot_id in ids:
            self.call(
                "ec2",
                "lock_snapshot",
                resource=snapshot_id,
                region=region,
                SnapshotId=snapshot_id,
                **params,
            )
        self.call(
            "ec2",
            "create_tags",
            resource=point.id,
            region=region,
            Resources=ids,
            Tags=[{"Key": TAG_LOCK, "Value": _tag(lock, hold=hold)}],
        )

    def lock_point(
        self, point: RecoveryPoint, lock: PointLock, *, cool_off: Duration | None = None
    ) -> RecoveryPoint:
        """Lock every snapshot of *point* with ``LockSnapshot``; return the re-read point.

        A lock already in place that lasts as long or longer is left alone (EC2 never shortens
        a compliance lock; we never try).

        Raises:
            PolicyError: *lock* is not governance or compliance with an expiry date.
        """
        if lock.mode not in {"governance", "compliance"} or lock.until is None:
            raise PolicyError.for_field(
                "lock", "a governance or compliance lock with an expiry date", lock
            )
        current = point.lock
        if current is None or current.until is None or current.until < lock.until:
            self._lock_snapshots(point, lock, cool_off=cool_off)
        return self._reread(point)  # type: ignore[attr-defined, no-any-return]

    def snapshot_locks(self, point: RecoveryPoint) -> dict[str, PointLock | None]:
        """Each snapshot's lock as EC2 reports it (``DescribeLockedSnapshots``)."""
        region = self._region_of(point) or self.region
        ids = self._ids(point)
        result = self.call(
            "ec2", "describe_locked_snapshots", resource=point.id, region=region, SnapshotIds=ids
        )
        found: dict[str, PointLock | None] = dict.fromkeys(ids)
        for item in result.get("Snapshots", []):
            state = str(item.get("LockState", ""))
            if state in {"governance", "compliance", "compliance-cooloff"}:
                mode = "compliance" if state.startswith("compliance") else "governance"
                until = item.get("LockExpiresOn")
                found[str(item["SnapshotId"])] = PointLock(
                    mode, until if isinstance(until, datetime) else None, source=SOURCE
                )
        return found

    # -- holds enforced below the library ---------------------------------------------------

    def enforce_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Back the legal hold on *point* with a governance snapshot lock; return it re-read.

        A compliance lock already on the point stays (it cannot become governance); the audit
        reports when it expires before the hold is released.
        """
        current = point.lock
        if current is not None and current.mode == "compliance" and current.until is not None:
            return point
        self._lock_snapshots(point, PointLock("governance"), hold=True)
        return self._reread(point)  # type: ignore[attr-defined, no-any-return]

    def release_enforcement(self, point: RecoveryPoint, tier_lock: PointLock | None) -> None:
        """Lift the hold's governance lock: back to *tier_lock* (if unexpired) or unlocked."""
        current = point.lock
        if current is None or current.mode != "governance":
            return
        region = self._region_of(point) or self.region
        now = datetime.now(UTC)
        if tier_lock is not None and tier_lock.until is not None and tier_lock.until > now:
            self._lock_snapshots(point, tier_lock)
            return
        ids = self._ids(point)
        for snapshot_id in ids:
            self.call(
                "ec2",
                "unlock_snapshot",
                resource=snapshot_id,
                region=region,
                SnapshotId=snapshot_id,
            )
        self.call(
            "ec2",
            "delete_tags",
            resource=point.id,
            region=region,
            Resources=ids,
            Tags=[{"Key": TAG_LOCK}],
        )

    def hold_gaps(self, point: RecoveryPoint) -> list[str]:
        """How the hold on *point* is weaker than EBS allows (empty: a lock backs it)."""
        if point.legal_hold is None:
            return []
        locks = self.snapshot_locks(point)
        gaps = [f"snapshot {sid}: no snapshot lock" for sid, lock in locks.items() if lock is None]
        horizon = datetime.now(UTC) + timedelta(days=365)
        for sid, lock in locks.items():
            if lock is not None and lock.until is not None and lock.until < horizon:
                gaps.append(f"snapshot {sid}: {lock.describe()}; the hold is tag-only after that")
        return gaps
