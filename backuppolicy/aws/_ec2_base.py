"""The shared base of the EC2 and EBS targets: their tags, and reading snapshots as points.

`Ec2Base` holds the constructor, the ownership check and the listing of snapshots (one
point per snapshot, or one per group of an `Ec2Instance` backup). The snapshot and
restore mixins (`backuppolicy.aws._ec2_snapshots`, ``_ec2_restore``) build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_TARGET,
    TAG_TIER,
    LegalHold,
    RecoveryPoint,
    Status,
    is_owned,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from types_boto3_ec2.type_defs import SnapshotTypeDef

__all__ = [
    "KIND_EBS_SNAPSHOT",
    "KIND_INSTANCE_BACKUP",
    "LOCK_SOURCE",
    "TAG_GROUP",
    "TAG_GROUP_SIZE",
    "TAG_INSTANCE",
    "TAG_LOCK",
    "TAG_SOURCE_GROUP",
    "TAG_SOURCE_REGION",
    "TAG_SOURCE_SNAPSHOT",
    "Ec2Base",
    "lock_from_tags",
    "tag_dict",
    "tag_list",
]

TAG_GROUP = "backuppolicy:group"
"""Tag on every snapshot of one `Ec2Instance` backup: the group id (the point's id)."""
TAG_GROUP_SIZE = "backuppolicy:group-size"
"""Tag on every snapshot of one `Ec2Instance` backup: how many snapshots the group has."""
TAG_INSTANCE = "backuppolicy:instance"
"""Tag on every snapshot of one `Ec2Instance` backup: the instance id."""
TAG_SOURCE_GROUP = "backuppolicy:source-group"
"""Tag on the copies of an instance backup: the group id of the source backup."""
TAG_SOURCE_SNAPSHOT = "backuppolicy:source-snapshot"
"""Tag on a copy: the id of the snapshot it was copied from."""
TAG_SOURCE_REGION = "backuppolicy:source-region"
"""Tag on a copy: the region of the snapshot it was copied from."""

TAG_LOCK = "backuppolicy:lock"
"""Tag recording a snapshot's lock: ``<mode>|<expiry ISO 8601>[|hold]``."""

LOCK_SOURCE = "ebs-snapshot-lock"
"""`PointLock.source` of an EBS snapshot lock."""


def lock_from_tags(tags: Mapping[str, str]) -> PointLock | None:
    """The lock recorded in the ``backuppolicy:lock`` tag, or ``None``."""
    value = tags.get(TAG_LOCK)
    if not value:
        return None
    parts = value.split("|")
    try:
        until = datetime.fromisoformat(parts[1]) if len(parts) > 1 else None
    except ValueError:
        until = None
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return PointLock(parts[0], until, source=LOCK_SOURCE)


KIND_EBS_SNAPSHOT = "ebs-snapshot"
"""`RecoveryPoint.kind` of a single EBS snapshot."""
KIND_INSTANCE_BACKUP = "ec2-instance-backup"
"""`RecoveryPoint.kind` of the group of snapshots of one `Ec2Instance` backup."""

_GIB = 1024**3
_MAX_RESULTS = 1000
_STATUS = {
    "completed": Status.COMPLETED,
    "pending": Status.PENDING,
    "recovering": Status.PENDING,
    "error": Status.FAILED,
    "recoverable": Status.FAILED,
}


def tag_dict(snapshot: SnapshotTypeDef) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in snapshot.get("Tags") or ()}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _aware(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


class Ec2Base(AwsBackend):
    """The constructor, the ownership check and the points of the EBS snapshot targets."""

    _kind = ""

    def __init__(
        self,
        resource_id: str,
        *,
        name: str | None,
        policy: str,
        copy_regions: Iterable[str],
        account_id: str | None,
        encrypt_copies: bool,
        max_workers: int,
        poll_interval: float,
        wait_timeout: float,
        session: boto3.Session | None,
        region: str | None,
        endpoint_url: str | None,
        clients: Mapping[str, BaseClient] | None,
        config: Config | None,
        retry: RetryPolicy | None,
    ) -> None:
        target_name = resource_id if name is None else name
        if not isinstance(target_name, str) or not target_name:
            raise PolicyError.for_field("name", "a non-empty string", target_name)
        if not isinstance(policy, str) or not policy:
            raise PolicyError.for_field("policy", "a non-empty string", policy)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise PolicyError.for_field("max_workers", "an integer >= 1", max_workers)
        for field, number in (("poll_interval", poll_interval), ("wait_timeout", wait_timeout)):
            if isinstance(number, bool) or not isinstance(number, int | float) or number <= 0:
                raise PolicyError.for_field(field, "a number of seconds > 0", number)
        super().__init__(
            target_name,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )
        self.policy = policy
        self.copy_regions = tuple(copy_regions)
        self.encrypt_copies = encrypt_copies
        self.max_workers = max_workers
        self.poll_interval = float(poll_interval)
        self.wait_timeout = float(wait_timeout)
        self._account_id = account_id

    # -- identity -------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """Registered kind of the target."""
        return self._kind

    @property
    def account_id(self) -> str:
        """The AWS account the target's snapshots belong to (given, or read once from STS)."""
        if self._account_id is None:
            identity = self.call("sts", "get_caller_identity")
            self._account_id = str(identity["Account"])
        return self._account_id

    def _ownership_filters(self) -> list[dict[str, Any]]:
        return [
            {"Name": f"tag:{TAG_POLICY}", "Values": [self.policy]},
            {"Name": f"tag:{TAG_TARGET}", "Values": [self.name]},
        ]

    def _is_ours(self, tags: Mapping[str, str]) -> bool:
        return is_owned(tags, policy=self.policy, target=self.name)

    # -- hooks for the subclasses ---------------------------------------------------------

    def _source_volume_ids(self, devices: Mapping[str, str]) -> list[str]:
        """Volumes whose foreign snapshots are listed too (unmanaged)."""
        raise NotImplementedError

    def _devices(self) -> dict[str, str]:
        """Current device name of each volume of the target, if known."""
        return {}

    # -- reading --------------------------------------------------------------------------

    def _describe(self, region: str, filters: list[dict[str, Any]]) -> Iterator[SnapshotTypeDef]:
        """Our account's snapshots matching *filters* in *region*, every page, owner re-checked."""
        account = self.account_id
        for page in self.paginate(
            "ec2",
            "describe_snapshots",
            resource=self.name,
            region=region,
            OwnerIds=["self"],
            Filters=filters,
            MaxResults=_MAX_RESULTS,
        ):
            for snapshot in page.get("Snapshots", ()):
                # moto ignores OwnerIds: check the owner ourselves.
                if str(snapshot.get("OwnerId", account)) == account:
                    yield snapshot

    def _regions(self) -> list[str]:
        regions = [self.region]
        regions.extend(r for r in self.copy_regions if r not in regions)
        return regions

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream every point of the target, ours marked ``managed=True``.

        Lists our tagged snapshots in the target's region and in ``copy_regions``, and the
        snapshots of the target's volumes that someone else took (``managed=False``). Every
        page is read; a page that still fails after the retries raises.
        """
        devices = self._devices()
        for region in self._regions():
            snapshots: dict[str, SnapshotTypeDef] = {}
            for snapshot in self._describe(region, self._ownership_filters()):
                tags = tag_dict(snapshot)
                if self._is_ours(tags):  # re-check: a backend may ignore tag filters
                    snapshots[snapshot["SnapshotId"]] = snapshot
            if region == self.region:
                volume_ids = self._source_volume_ids(devices)
                if volume_ids:
                    volume_filter = [{"Name": "volume-id", "Values": volume_ids}]
                    for snapshot in self._describe(region, volume_filter):
                        snapshots.setdefault(snapshot["SnapshotId"], snapshot)
            yield from self._points(list(snapshots.values()), region, devices)

    def _points(
        self, snapshots: Sequence[SnapshotTypeDef], region: str, devices: Mapping[str, str]
    ) -> list[RecoveryPoint]:
        groups: dict[str, list[SnapshotTypeDef]] = {}
        points: list[RecoveryPoint] = []
        for snapshot in snapshots:
            tags = tag_dict(snapshot)
            group = tags.get(TAG_GROUP)
            if group and self._is_ours(tags):
                groups.setdefault(group, []).append(snapshot)
            else:
                points.append(self._point(snapshot, region, devices))
        points.extend(
            self._group_point(group, members, region, devices) for group, members in groups.items()
        )
        points.sort(key=lambda p: p.order_key)
        return points

    def _member(self, snapshot: SnapshotTypeDef, devices: Mapping[str, str]) -> dict[str, Any]:
        volume_id = snapshot.get("VolumeId")
        return {
            "snapshot_id": snapshot["SnapshotId"],
            "volume_id": volume_id,
            "device": devices.get(str(volume_id)),
            "state": snapshot.get("State", "pending"),
            "progress": snapshot.get("Progress"),
            "size_gib": snapshot.get("VolumeSize"),
            "encrypted": bool(snapshot.get("Encrypted", False)),
            "kms_key_id": snapshot.get("KmsKeyId"),
            "state_message": snapshot.get("StateMessage"),
            "source_snapshot_id": tag_dict(snapshot).get(TAG_SOURCE_SNAPSHOT),
        }

    def _tier(self, tags: Mapping[str, str], region: str) -> str:
        if TAG_TIER in tags:
            return tags[TAG_TIER]
        return "local" if region == self.region else "offsite"

    def _point(
        self, snapshot: SnapshotTypeDef, region: str, devices: Mapping[str, str]
    ) -> RecoveryPoint:
        tags = tag_dict(snapshot)
        member = self._member(snapshot, devices)
        owner = str(snapshot.get("OwnerId") or self.account_id)
        size = snapshot.get("VolumeSize")
        hold = tags.get(TAG_HOLD)
        snapshot_id = str(snapshot["SnapshotId"])
        return RecoveryPoint(
            id=snapshot_id,
            target=self.name,
            created_at=_aware(snapshot["StartTime"]),
            kind=KIND_EBS_SNAPSHOT,
            location=f"aws:{owner}:{region}",
            tier=self._tier(tags, region),
            status=_STATUS.get(str(member["state"]), Status.PENDING),
            size_bytes=int(size) * _GIB if size is not None else None,
            encrypted=member["encrypted"],
            tags=tags,
            legal_hold=LegalHold.from_tag(hold) if hold is not None else None,
            managed=self._is_ours(tags) and owner == self.account_id,
            lock=lock_from_tags(tags),
            details={
                "region": region,
                "arn": f"arn:aws:ec2:{region}::snapshot/{snapshot_id}",
                "snapshot_ids": [snapshot_id],
                "snapshots": [member],
                "volume_id": member["volume_id"],
                "kms_key_id": member["kms_key_id"],
                "description": snapshot.get("Description", ""),
                "source_snapshot_id": tags.get(TAG_SOURCE_SNAPSHOT),
                "source_region": tags.get(TAG_SOURCE_REGION),
            },
        )

    def _group_point(
        self,
        group: str,
        members: Sequence[SnapshotTypeDef],
        region: str,
        devices: Mapping[str, str],
    ) -> RecoveryPoint:
        ordered = sorted(members, key=lambda s: str(s["SnapshotId"]))
        parts = [self._member(s, devices) for s in ordered]
        tag_sets = [tag_dict(s) for s in ordered]
        tags = dict(tag_sets[0])
        tags.pop(TAG_SOURCE_SNAPSHOT, None)  # per snapshot, listed in details["snapshots"]
        holds = [t[TAG_HOLD] for t in tag_sets if TAG_HOLD in t]
        if holds:
            tags[TAG_HOLD] = holds[0]
        else:
            tags.pop(TAG_HOLD, None)
        sizes = [int(t[TAG_GROUP_SIZE]) for t in tag_sets if t.get(TAG_GROUP_SIZE, "").isdigit()]
        expected = max(sizes) if sizes else len(parts)
        states = [str(p["state"]) for p in parts]
        statuses = [_STATUS.get(s, Status.PENDING) for s in states]
        status = Status.COMPLETED
        if Status.PENDING in statuses:
            status = Status.PENDING
        elif Status.FAILED in statuses:
            status = Status.PARTIAL if Status.COMPLETED in statuses else Status.FAILED
        elif len(parts) < expected:
            status = Status.PARTIAL
        owners = {str(s.get("OwnerId") or self.account_id) for s in ordered}
        owner = min(owners)
        known_sizes = [p["size_gib"] for p in parts if p["size_gib"] is not None]
        keys = sorted({p["kms_key_id"] for p in parts if p["kms_key_id"]})
        return RecoveryPoint(
            id=group,
            target=self.name,
            created_at=min(_aware(s["StartTime"]) for s in ordered),
            kind=KIND_INSTANCE_BACKUP,
            location=f"aws:{owner}:{region}",
            tier=self._tier(tags, region),
            status=status,
            size_bytes=sum(int(s) for s in known_sizes) * _GIB if known_sizes else None,
            encrypted=all(p["encrypted"] for p in parts),
            tags=tags,
            legal_hold=LegalHold.from_tag(holds[0]) if holds else None,
            managed=owners == {self.account_id},
            lock=lock_from_tags(tags),
            details={
                "region": region,
                "group": group,
                "group_size": expected,
                "instance_id": tags.get(TAG_INSTANCE),
                "arns": [f"arn:aws:ec2:{region}::snapshot/{p['snapshot_id']}" for p in parts],
                "snapshot_ids": [p["snapshot_id"] for p in parts],
                "snapshots": parts,
                "kms_key_ids": keys,
                "kms_key_id": keys[0] if len(keys) == 1 else None,
                "source_group": tags.get(TAG_SOURCE_GROUP),
                "source_region": tags.get(TAG_SOURCE_REGION),
            },
        )

    @staticmethod
    def _region_of(point: RecoveryPoint) -> str | None:
        region = point.details.get("region")
        if isinstance(region, str) and region:
            return region
        parts = point.location.split(":")
        expected_parts = 3
        if len(parts) == expected_parts and parts[0] == "aws" and parts[2]:
            return parts[2]
        return None

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* from EC2; ``None`` if it no longer exists."""
        region = self._region_of(point) or self.region
        devices = {
            str(s.get("volume_id")): str(s["device"])
            for s in point.details.get("snapshots", ())
            if isinstance(s, Mapping) and s.get("device")
        }
        if point.kind == KIND_INSTANCE_BACKUP:
            filters = [
                *self._ownership_filters(),
                {"Name": f"tag:{TAG_GROUP}", "Values": [point.id]},
            ]
            members = [
                s
                for s in self._describe(region, filters)
                if self._is_ours(tag_dict(s)) and tag_dict(s).get(TAG_GROUP) == point.id
            ]
            if not members:
                return None
            return self._group_point(point.id, members, region, devices)
        try:
            page = self.call(
                "ec2",
                "describe_snapshots",
                resource=point.id,
                region=region,
                SnapshotIds=[point.id],
            )
        except ResourceNotFoundError:
            return None
        found = [s for s in page.get("Snapshots", ()) if s.get("SnapshotId") == point.id]
        return self._point(found[0], region, devices) if found else None

    def _find_by_tag(
        self, key: str, value: str, region: str, devices: Mapping[str, str] | None = None
    ) -> list[RecoveryPoint]:
        filters = [*self._ownership_filters(), {"Name": f"tag:{key}", "Values": [value]}]
        found = [s for s in self._describe(region, filters) if tag_dict(s).get(key) == value]
        found = [s for s in found if self._is_ours(tag_dict(s))]
        if devices is None:
            devices = self._devices() if region == self.region else {}
        return self._points(found, region, devices)

    def _incomplete(self, point: RecoveryPoint, operation: str, verb: str) -> NoReturn:
        raise BackendError(
            f"{self.name}: {verb} of {point.id!r}: expected a completed point "
            f"(got {point.status.value!r}).",
            backend=self.name,
            operation=operation,
            resource=point.id,
        )
