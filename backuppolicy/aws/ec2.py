"""EC2 and EBS targets: `Ec2Instance` (crash-consistent multi-volume backups) and `EbsVolume`.

* `EbsVolume` takes one snapshot of one volume per backup (``CreateSnapshot``); the point's
  id is the snapshot id.
* `Ec2Instance` snapshots every volume attached to the instance at the same moment
  (``CreateSnapshots``, crash-consistent), optionally without the boot volume. The snapshots
  of one backup form **one** recovery point (kind ``"ec2-instance-backup"``) whose id is the
  group id recorded in the `TAG_GROUP` tag of every snapshot of the group.

Every snapshot we create carries the ownership tags (`backuppolicy.core.model.TAG_POLICY` ...),
so `list_points` finds ours by tag, and snapshots of the same volumes taken by someone else
are listed with ``managed=False``. ``OwnerIds=["self"]`` is sent, and owner and tags are
checked again on our side (moto ignores ``OwnerIds``).

Copies to another region are encrypted with the destination's KMS key: a KMS key is
required when the source is encrypted or ``encrypt_copies=True`` (EC2 would otherwise pick
the region's default key, and moto would silently copy without encryption).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self

import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._iam_statements import (
    ACCOUNT,
    PARTITION,
    REGION,
    REGIONS,
    Grant,
    by_workflow,
    created,
    owned,
    swept,
)
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_REASON,
    TAG_TARGET,
    TAG_TIER,
    TAG_TOKEN,
    LegalHold,
    RecoveryPoint,
    Status,
    is_owned,
)
from backuppolicy.core.targets import (
    Destination,
    IsolationProfile,
    RestoredResource,
    SweptResource,
)

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "KIND_EBS_SNAPSHOT",
    "KIND_INSTANCE_BACKUP",
    "TAG_GROUP",
    "TAG_GROUP_SIZE",
    "TAG_INSTANCE",
    "TAG_SOURCE_GROUP",
    "TAG_SOURCE_REGION",
    "TAG_SOURCE_SNAPSHOT",
    "EbsVolume",
    "Ec2Instance",
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

KIND_EBS_SNAPSHOT = "ebs-snapshot"
"""`RecoveryPoint.kind` of a single EBS snapshot."""
KIND_INSTANCE_BACKUP = "ec2-instance-backup"
"""`RecoveryPoint.kind` of the group of snapshots of one `Ec2Instance` backup."""

_GIB = 1024**3
_RESERVED_PREFIX = "backuppolicy:"
_AMI_RE = re.compile(r"\bami-[0-9a-zA-Z]+\b")
_IN_USE = "InvalidSnapshot.InUse"
_MAX_RESULTS = 1000
_STATUS = {
    "completed": Status.COMPLETED,
    "pending": Status.PENDING,
    "recovering": Status.PENDING,
    "error": Status.FAILED,
    "recoverable": Status.FAILED,
}


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "target"


def _tag_dict(snapshot: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in snapshot.get("Tags") or ()}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _check_id(field: str, value: Any, prefix: str, example: str) -> str:
    if not isinstance(value, str) or not value.startswith(prefix) or len(value) <= len(prefix):
        raise PolicyError.for_field(field, f"an id like {example!r}", value)
    return value


def sweep_volumes(
    backend: AwsBackend,
    region: str,
    isolation: IsolationProfile,
    before: datetime,
    *,
    dry_run: bool,
) -> list[SweptResource]:
    """Restore-test volumes in *region*: the sweep tag, made before *before*, not being deleted."""
    swept: list[SweptResource] = []
    for page in backend.paginate(
        "ec2",
        "describe_volumes",
        region=region,
        Filters=[{"Name": "tag-key", "Values": [isolation.sweep_tag]}],
    ):
        for volume in page.get("Volumes", ()):
            tags = {str(t.get("Key")): str(t.get("Value")) for t in volume.get("Tags") or ()}
            created = volume.get("CreateTime")
            if isinstance(created, datetime) and created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            vid = str(volume["VolumeId"])
            if isolation.sweep_tag not in tags or not isinstance(created, datetime):
                continue
            if created >= before:
                continue  # re-checked: a backend may ignore the filter
            if volume.get("State") in ("deleting", "deleted"):
                continue
            swept.append(
                SweptResource.sweep(
                    "ebs-volume",
                    vid,
                    created,
                    region,
                    dry_run=dry_run,
                    delete=functools.partial(
                        backend.call,
                        "ec2",
                        "delete_volume",
                        resource=vid,
                        region=region,
                        VolumeId=vid,
                    ),
                )
            )
    return swept


def _iam_grants(spec: TargetSpec, *, instance: bool) -> list[Grant]:
    """What an instance's or volume's workflows need (placeholders: `backuppolicy.aws.iam`)."""
    base = f"arn:{PARTITION}:ec2"
    snaps = (f"{base}:{REGIONS}::snapshot/*",)
    src_snaps = f"{base}:{REGION}::snapshot/*"
    volumes = f"{base}:{REGION}:{ACCOUNT}:volume/*"
    # EC2's Describe* actions support no resource-level permissions: "*" is the only choice.
    reads = (
        ("ec2:DescribeSnapshots", "ec2:DescribeInstances")
        if instance
        else ("ec2:DescribeSnapshots",)
    )
    grants = [Grant((), reads, ("*",))]
    if instance:
        source = f"{base}:{REGION}:{ACCOUNT}:instance/{spec.settings['instance_id']}"
        grants.append(Grant(("backup",), ("ec2:CreateSnapshots",), (source, volumes, src_snaps)))
        create = "CreateSnapshots"
    else:
        source = f"{base}:{REGION}:{ACCOUNT}:volume/{spec.settings['volume_id']}"
        grants.append(Grant(("backup",), ("ec2:CreateSnapshot",), (source, src_snaps)))
        create = "CreateSnapshot"
    grants += [
        Grant(("backup",), ("ec2:CreateTags",), (src_snaps,), created(create)),
        Grant(("backup",), ("ec2:CopySnapshot",), snaps, copies=True),
        Grant(("backup",), ("ec2:CreateTags",), snaps, created("CopySnapshot"), copies=True),
        Grant(("prune",), ("ec2:DeleteSnapshot",), snaps, owned()),
        Grant(
            ("restore-test",),
            ("ec2:DescribeVolumes", "ec2:DescribeAvailabilityZones"),
            ("*",),
        ),
        Grant(("restore-test",), ("ec2:CreateVolume",), (volumes, src_snaps)),
        Grant(("restore-test",), ("ec2:CreateTags",), (volumes,), created("CreateVolume")),
        Grant(("restore-test",), ("ec2:DeleteVolume",), (volumes,), swept()),
    ]
    return grants


class _SnapshotTarget(AwsBackend):
    """Shared listing, copy, delete, restore and hold logic of the EBS snapshot targets."""

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
        clients: Mapping[str, Any] | None,
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

    # -- the kind -------------------------------------------------------------------------

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

    iam_copy_keys: ClassVar[bool] = True
    """Copies are encrypted with the copy tiers' ``kms_key_id``: `iam_policy` grants its use."""

    _setting: ClassVar[str] = ""  # the setting that names the instance or volume

    @classmethod
    def from_spec(
        cls,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> Self:
        """The target of *spec*: its instance or volume, its region (default *region*), its copy regions.

        The copy regions are those of the policy's copy tiers (every tier after the first).
        ``no_reboot`` is accepted and ignored: ``CreateSnapshots`` never reboots the instance.
        """
        settings = spec.settings
        make: Callable[..., Self] = cls  # each kind's own constructor (the base's has no defaults)
        return make(
            settings[cls._setting],
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=settings.get("region") or region,
            copy_regions=[
                t.location["region"] for t in policy.tiers_for(spec)[1:] if "region" in t.location
            ],
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, Any]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in)."""
        return by_workflow(_iam_grants(spec, instance=cls._setting == "instance_id"))

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

    def _describe(self, region: str, filters: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
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
            snapshots: dict[str, dict[str, Any]] = {}
            for snapshot in self._describe(region, self._ownership_filters()):
                tags = _tag_dict(snapshot)
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
        self, snapshots: Sequence[Mapping[str, Any]], region: str, devices: Mapping[str, str]
    ) -> list[RecoveryPoint]:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        points: list[RecoveryPoint] = []
        for snapshot in snapshots:
            tags = _tag_dict(snapshot)
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

    def _member(self, snapshot: Mapping[str, Any], devices: Mapping[str, str]) -> dict[str, Any]:
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
            "source_snapshot_id": _tag_dict(snapshot).get(TAG_SOURCE_SNAPSHOT),
        }

    def _tier(self, tags: Mapping[str, str], region: str) -> str:
        if TAG_TIER in tags:
            return tags[TAG_TIER]
        return "local" if region == self.region else "offsite"

    def _point(
        self, snapshot: Mapping[str, Any], region: str, devices: Mapping[str, str]
    ) -> RecoveryPoint:
        tags = _tag_dict(snapshot)
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
        members: Sequence[Mapping[str, Any]],
        region: str,
        devices: Mapping[str, str],
    ) -> RecoveryPoint:
        ordered = sorted(members, key=lambda s: str(s["SnapshotId"]))
        parts = [self._member(s, devices) for s in ordered]
        tag_sets = [_tag_dict(s) for s in ordered]
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
                if self._is_ours(_tag_dict(s)) and _tag_dict(s).get(TAG_GROUP) == point.id
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
        found = [s for s in self._describe(region, filters) if _tag_dict(s).get(key) == value]
        found = [s for s in found if self._is_ours(_tag_dict(s))]
        if devices is None:
            devices = self._devices() if region == self.region else {}
        return self._points(found, region, devices)

    # -- creating -------------------------------------------------------------------------

    def _creation_tags(
        self, *, reason: str, tags: Mapping[str, str] | None, token: str
    ) -> dict[str, str]:
        if not isinstance(reason, str) or not reason:
            raise PolicyError.for_field("reason", "a non-empty string", reason)
        merged: dict[str, str] = {}
        for key, value in (tags or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise PolicyError.for_field(f"tags[{key!r}]", "a str value under a str key", value)
            if key.startswith(_RESERVED_PREFIX):
                raise PolicyError.for_field(
                    f"tags[{key!r}]", f"a key outside the reserved {_RESERVED_PREFIX!r} prefix", key
                )
            merged[key] = value
        merged.update(
            {
                TAG_POLICY: self.policy,
                TAG_TARGET: self.name,
                TAG_REASON: reason,
                TAG_TOKEN: token,
                TAG_TIER: "local",
            }
        )
        return merged

    @staticmethod
    def _token(token: str | None) -> str:
        if token is None:
            return uuid.uuid4().hex
        if not isinstance(token, str) or not token:
            raise PolicyError.for_field("token", "None or a non-empty string", token)
        return token

    # -- copying --------------------------------------------------------------------------

    def _check_destination(self, destination: Destination) -> tuple[str, str | None]:
        if not isinstance(destination, Destination):
            raise PolicyError.for_field("destination", "a backuppolicy.Destination", destination)
        region = destination.region
        if not isinstance(region, str) or not region:
            raise PolicyError.for_field("destination.region", "an AWS region name", region)
        key = destination.kms_key_id
        if key is not None and (not isinstance(key, str) or not key):
            raise PolicyError.for_field("destination.kms_key_id", "None or a KMS key id", key)
        if key is None and self.encrypt_copies:
            self._need_key(region, "the target was created with encrypt_copies=True")
        if destination.account is not None and destination.account != self.account_id:
            raise PolicyError.for_field(
                "destination.account",
                f"None or this account {self.account_id!r} (cross-account EBS copies need "
                "snapshot sharing, which this target does not do)",
                destination.account,
            )
        return region, key

    @staticmethod
    def _need_key(region: str, why: str) -> NoReturn:
        raise PolicyError.for_field(
            "destination.kms_key_id",
            f"a KMS key id or ARN in {region} ({why})",
            None,
            hint="EC2 would otherwise use the region's default key, or copy unencrypted.",
        )

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* to *destination*'s region, encrypted with its KMS key, and return the copy.

        Copying again returns the existing copy (found by the `TAG_SOURCE_SNAPSHOT` tag).
        An instance backup is copied snapshot by snapshot (at most ``max_workers`` at once)
        and the copies form one point again.

        Raises:
            PolicyError: No destination region, or no ``destination.kms_key_id`` although
                the point is encrypted or the target was made with ``encrypt_copies=True``.
                Nothing was called.
            BackendError: The point is not completed.
        """
        dest_region, key = self._check_destination(destination)
        if point.encrypted is None and key is None:
            point = self._reread(point)  # is the source encrypted? We must know before copying.
        if key is None and point.encrypted:
            self._need_key(dest_region, f"point {point.id!r} is encrypted")
        if point.status is not Status.COMPLETED:
            self._incomplete(point, "CopySnapshot", "copy")
        source_region = self._region_of(point) or self.region
        snapshots = [s for s in point.details.get("snapshots", ()) if isinstance(s, Mapping)]
        if not snapshots:
            snapshots = [{"snapshot_id": point.id}]
        group = f"{point.id}-{dest_region}" if point.kind == KIND_INSTANCE_BACKUP else None
        base_tags = self._copy_tags(point, destination, source_region, group, len(snapshots))

        def one(member: Mapping[str, Any]) -> str:
            source_id = str(member["snapshot_id"])
            existing = self._copies_of(source_id, dest_region)
            if existing:
                return existing[0]
            tags = {**base_tags, TAG_SOURCE_SNAPSHOT: source_id}
            params: dict[str, Any] = {
                "SourceRegion": source_region,
                "SourceSnapshotId": source_id,
                "Description": f"backuppolicy copy of {source_id} ({source_region}) for {self.name}",
                "TagSpecifications": [{"ResourceType": "snapshot", "Tags": _tag_list(tags)}],
            }
            if key is not None:
                params["Encrypted"] = True
                params["KmsKeyId"] = key
            result = self.call(
                "ec2", "copy_snapshot", resource=source_id, region=dest_region, **params
            )
            return str(result["SnapshotId"])

        copy_ids = self._fan_out(one, snapshots)
        if group is not None:
            found = self._find_by_tag(TAG_GROUP, group, dest_region)
        else:
            found = self._find_by_tag(TAG_SOURCE_SNAPSHOT, point.id, dest_region)
            found = [p for p in found if p.id in copy_ids] or found
        if not found:
            raise BackendError(
                f"{self.name}: copies {copy_ids} of {point.id!r} are not listed in {dest_region}",
                backend=self.name,
                operation="DescribeSnapshots",
                resource=point.id,
            )
        return found[0]

    def _copy_tags(
        self,
        point: RecoveryPoint,
        destination: Destination,
        source_region: str,
        group: str | None,
        size: int,
    ) -> dict[str, str]:
        # No hold (it is the source's) and no token (a same-region copy must not answer
        # create_backup's token lookup).
        tags = {
            k: v
            for k, v in point.tags.items()
            if k not in {TAG_HOLD, TAG_TOKEN, TAG_SOURCE_SNAPSHOT}
        }
        tags.update(
            {
                TAG_POLICY: self.policy,
                TAG_TARGET: self.name,
                TAG_TIER: destination.tier,
                TAG_SOURCE_REGION: source_region,
            }
        )
        if group is not None:
            tags.update({TAG_GROUP: group, TAG_SOURCE_GROUP: point.id, TAG_GROUP_SIZE: str(size)})
        return tags

    def _incomplete(self, point: RecoveryPoint, operation: str, verb: str) -> NoReturn:
        raise BackendError(
            f"{self.name}: {verb} of {point.id!r}: expected a completed point "
            f"(got {point.status.value!r}).",
            backend=self.name,
            operation=operation,
            resource=point.id,
        )

    def _copies_of(self, source_id: str, region: str) -> list[str]:
        filters = [
            *self._ownership_filters(),
            {"Name": f"tag:{TAG_SOURCE_SNAPSHOT}", "Values": [source_id]},
        ]
        return [
            str(s["SnapshotId"])
            for s in self._describe(region, filters)
            if _tag_dict(s).get(TAG_SOURCE_SNAPSHOT) == source_id and self._is_ours(_tag_dict(s))
        ]

    def _fan_out(
        self, func: Callable[[Mapping[str, Any]], str], items: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Run *func* over *items* with at most ``max_workers`` at once; errors are raised."""
        if len(items) <= 1 or self.max_workers == 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            futures = [pool.submit(func, item) for item in items]
            return [future.result() for future in futures]

    # -- deleting -------------------------------------------------------------------------

    def _refuse(self, point: RecoveryPoint) -> None:
        why = ""
        if not point.managed:
            why = f"it is not managed by policy {self.policy!r} of target {self.name!r}"
        elif point.held:
            assert point.legal_hold is not None  # noqa: S101 - narrowed by point.held
            why = f"it is under {point.legal_hold.describe()}"
        elif point.status is Status.PENDING:
            why = "it is still pending"
        if why:
            raise ProtectedPointError(
                f"{self.name}: refused to delete point {point.id!r}: {why}. Nothing was deleted.",
                point=point,
            )

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point* (every snapshot of an instance backup).

        The point is re-read first and checked again, so a hold placed in the meantime
        still protects it.

        Raises:
            ProtectedPointError: The point is unmanaged, held or pending; nothing deleted.
            ResourceNotFoundError: The point does not exist.
            BackendError: A snapshot is used by an AMI (code ``InvalidSnapshot.InUse``; the
                message names the AMI to deregister first).
        """
        self._refuse(point)
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: point {point.id!r} does not exist (any more)",
                backend=self.name,
                operation="DeleteSnapshot",
                resource=point.id,
            )
        self._refuse(fresh)
        region = self._region_of(fresh) or self.region
        deleted: list[str] = []
        # Sequential on purpose: an instance backup has a handful of snapshots, and stopping
        # at the first AMI-referenced one keeps the rest of the group intact.
        for snapshot_id in fresh.details.get("snapshot_ids", [fresh.id]):
            self._delete_snapshot(fresh, str(snapshot_id), region, deleted)
            deleted.append(str(snapshot_id))

    def _delete_snapshot(
        self, point: RecoveryPoint, snapshot_id: str, region: str, deleted: Sequence[str]
    ) -> None:
        try:
            self.call(
                "ec2",
                "delete_snapshot",
                resource=snapshot_id,
                region=region,
                SnapshotId=snapshot_id,
            )
        except ResourceNotFoundError:
            # We saw it a moment ago: a retried DeleteSnapshot whose first attempt went
            # through (the response was lost), or a concurrent delete. Either way it is gone.
            return
        except BackendError as exc:
            if exc.code != _IN_USE:
                raise
            ami = self._ami_using(snapshot_id, region, str(exc))
            user = f"AMI {ami}" if ami else "an AMI"
            done = f" Already deleted from this point: {', '.join(deleted)}." if deleted else ""
            fix = f"deregister {ami} first" if ami else "deregister the AMI first"
            message = (
                f"{self.name}: cannot delete snapshot {snapshot_id} of point {point.id!r}: "
                f"it is used by {user}; {fix} or keep the point.{done}"
            )
            raise BackendError(
                message,
                backend=self.name,
                operation=exc.operation,
                resource=snapshot_id,
                code=exc.code,
            ) from exc

    def _ami_using(self, snapshot_id: str, region: str, message: str) -> str | None:
        found = _AMI_RE.search(message)
        if found:
            return found.group(0)
        try:
            result = self.call(
                "ec2",
                "describe_images",
                resource=snapshot_id,
                region=region,
                Owners=["self"],
                Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snapshot_id]}],
            )
        except BackendError:
            return None
        images = result.get("Images") or []
        return str(images[0]["ImageId"]) if images else None

    # -- holds ----------------------------------------------------------------------------

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *hold* on every snapshot of *point* (tag `TAG_HOLD`) and return the re-read point."""
        if not isinstance(hold, LegalHold):
            raise PolicyError.for_field("hold", "a backuppolicy.LegalHold", hold)
        region = self._region_of(point) or self.region
        self.call(
            "ec2",
            "create_tags",
            resource=point.id,
            region=region,
            Resources=list(point.details.get("snapshot_ids", [point.id])),
            Tags=[{"Key": TAG_HOLD, "Value": hold.to_tag()}],
        )
        return self._reread(point)

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold tag from every snapshot of *point*; return the re-read point."""
        region = self._region_of(point) or self.region
        self.call(
            "ec2",
            "delete_tags",
            resource=point.id,
            region=region,
            Resources=list(point.details.get("snapshot_ids", [point.id])),
            Tags=[{"Key": TAG_HOLD}],
        )
        return self._reread(point)

    def _reread(self, point: RecoveryPoint) -> RecoveryPoint:
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: point {point.id!r} does not exist (any more)",
                backend=self.name,
                operation="DescribeSnapshots",
                resource=point.id,
            )
        return fresh

    # -- restoring ------------------------------------------------------------------------

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> contextlib.AbstractContextManager[RestoredResource]:
        """Create a volume from each snapshot of *point*; delete them when the context exits.

        The volumes are made in ``into.availability_zone`` (default: the region's first
        zone), tagged with ``into.sweep_tag`` and ``into.tags``, and waited for until
        ``available`` (polling every ``poll_interval`` seconds, at most ``wait_timeout``).
        They are deleted on exit, also when the block or the wait raised.

        Raises:
            PolicyError: The zone is not in the point's region.
            BackendError: The point is not completed, or a volume went to ``error`` or was
                not available in time.
        """
        if point.status is not Status.COMPLETED:
            self._incomplete(point, "CreateVolume", "restore")
        return self._restore(point, into or IsolationProfile())

    @contextlib.contextmanager
    def _restore(
        self, point: RecoveryPoint, profile: IsolationProfile
    ) -> Iterator[RestoredResource]:
        region = self._region_of(point) or self.region
        zone = profile.availability_zone
        if zone is not None and not zone.startswith(region):
            raise PolicyError.for_field(
                "into.availability_zone", f"a zone of {region} (where the point is)", zone
            )
        members = [s for s in point.details.get("snapshots", ()) if isinstance(s, Mapping)]
        if not members:
            members = [{"snapshot_id": point.id}]
        created: list[dict[str, Any]] = []
        try:
            zone = zone or self.first_zone(region)
            for member in members:
                snapshot_id = str(member["snapshot_id"])
                tags = {
                    **profile.tags,
                    "Name": f"{profile.name_prefix}{point.id}",
                    profile.sweep_tag: point.id,
                    TAG_POLICY: self.policy,
                    TAG_TARGET: self.name,
                    TAG_SOURCE_SNAPSHOT: snapshot_id,
                }
                volume = self.call(
                    "ec2",
                    "create_volume",
                    resource=snapshot_id,
                    region=region,
                    SnapshotId=snapshot_id,
                    AvailabilityZone=zone,
                    ClientToken=uuid.uuid4().hex,  # the same token on retries: no duplicates
                    TagSpecifications=[{"ResourceType": "volume", "Tags": _tag_list(tags)}],
                )
                created.append(
                    {
                        "volume_id": volume["VolumeId"],
                        "snapshot_id": snapshot_id,
                        "source_volume_id": member.get("volume_id"),
                        "device": member.get("device"),
                    }
                )
            self._wait_available([str(v["volume_id"]) for v in created], region, point)
            ids = [str(v["volume_id"]) for v in created]
            yield RestoredResource(
                id=ids[0] if len(ids) == 1 else ",".join(ids),
                kind="ebs-volume" if len(ids) == 1 else "ebs-volumes",
                point=point,
                details={"region": region, "availability_zone": zone, "volumes": created},
            )
        except BaseException as exc:
            for error in self._teardown(created, region):
                exc.add_note(f"teardown: {error}")
            raise
        else:
            errors = self._teardown(created, region)
            if errors:
                raise errors[0]

    # ----------------------------------------------------------------- restores: RestorableVolumes

    def describe_instance(
        self, instance_id: str, region: str | None = None
    ) -> dict[str, Any] | None:
        """The instance *instance_id* as EC2 describes it; ``None`` if it does not exist."""
        try:
            found = self.call(
                "ec2",
                "describe_instances",
                resource=instance_id,
                region=region,
                InstanceIds=[instance_id],
            )
        except ResourceNotFoundError:
            return None
        for reservation in found.get("Reservations", ()):
            for item in reservation.get("Instances", ()):
                return dict(item)
        return None

    def volumes_tagged(self, key: str, value: str, *, region: str) -> list[dict[str, Any]]:
        """The volumes that carry the tag *key* = *value*, as EC2 describes them."""
        found = self.call(
            "ec2",
            "describe_volumes",
            region=region,
            Filters=[{"Name": f"tag:{key}", "Values": [value]}],
        )
        return list(found.get("Volumes", ()))

    def volume_states(self, volume_ids: list[str], *, region: str | None) -> dict[str, str]:
        """Volume id -> its state (``"available"``, ``"in-use"``) of the volumes *volume_ids*."""
        found = self.call("ec2", "describe_volumes", region=region, VolumeIds=volume_ids)
        return {str(v["VolumeId"]): str(v.get("State")) for v in found.get("Volumes", ())}

    def create_volume_from(
        self,
        snapshot_id: str,
        *,
        zone: str,
        region: str,
        client_token: str,
        tags: Mapping[str, str],
    ) -> str:
        """Start creating a volume from *snapshot_id* in *zone*; return its id."""
        created = self.call(
            "ec2",
            "create_volume",
            resource=snapshot_id,
            region=region,
            SnapshotId=snapshot_id,
            AvailabilityZone=zone,
            ClientToken=client_token,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        return str(created["VolumeId"])

    def stop_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to stop."""
        self.call(
            "ec2", "stop_instances", resource=instance_id, region=region, InstanceIds=[instance_id]
        )

    def start_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to start."""
        self.call(
            "ec2", "start_instances", resource=instance_id, region=region, InstanceIds=[instance_id]
        )

    def attach_volume(
        self, volume_id: str, instance_id: str, device: str, *, region: str | None
    ) -> None:
        """Attach *volume_id* to *instance_id* at *device*."""
        self.call(
            "ec2",
            "attach_volume",
            resource=volume_id,
            region=region,
            VolumeId=volume_id,
            InstanceId=instance_id,
            Device=device,
        )

    def detach_volume(
        self,
        volume_id: str,
        instance_id: str,
        device: str,
        *,
        region: str | None,
        force: bool = False,
    ) -> None:
        """Detach *volume_id* from *instance_id* at *device* (the volume is kept).

        With *force*, the instance is not asked to unmount it first (drill teardown).
        """
        params: dict[str, Any] = {"Force": True} if force else {}
        self.call(
            "ec2",
            "detach_volume",
            resource=volume_id,
            region=region,
            VolumeId=volume_id,
            InstanceId=instance_id,
            Device=device,
            **params,
        )

    # ----------------------------------------------------------------- recovery: RecoverableInstance

    def reboot_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to reboot."""
        self.call(
            "ec2",
            "reboot_instances",
            resource=instance_id,
            region=region,
            InstanceIds=[instance_id],
        )

    def terminate_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Terminate the instance *instance_id*."""
        self.call(
            "ec2",
            "terminate_instances",
            resource=instance_id,
            region=region,
            InstanceIds=[instance_id],
        )

    def instances_matching(
        self, filters: Sequence[Mapping[str, Any]], *, region: str | None = None
    ) -> list[dict[str, Any]]:
        """The instances that match the DescribeInstances *filters*, as EC2 describes them."""
        found = self.call("ec2", "describe_instances", region=region, Filters=list(filters))
        return [dict(i) for r in found.get("Reservations", ()) for i in r.get("Instances", ())]

    def launch_instance(
        self,
        *,
        image_id: str,
        instance_type: str,
        client_token: str,
        tags: Mapping[str, str],
        subnet_id: str | None = None,
        security_group_ids: Sequence[str] = (),
        key_name: str | None = None,
        region: str | None = None,
    ) -> str:
        """Launch one instance of *image_id* (the same *client_token*: the same instance); its id."""
        params: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        }
        if subnet_id:
            params["SubnetId"] = subnet_id
        if security_group_ids:
            params["SecurityGroupIds"] = list(security_group_ids)
        if key_name:
            params["KeyName"] = key_name
        launched = self.call("ec2", "run_instances", resource=image_id, region=region, **params)
        return str(launched["Instances"][0]["InstanceId"])

    # Verify capabilities (`SnapshotPoints`, `PointSharing`, `Sweepable`) ----------------------

    def point_snapshot_ids(self, point: RecoveryPoint) -> list[str] | None:
        """The snapshots of *point* (each snapshot of an instance backup); ``None``: not ours."""
        if point.kind not in (KIND_EBS_SNAPSHOT, KIND_INSTANCE_BACKUP):
            return None
        return [str(s) for s in point.details.get("snapshot_ids") or [point.id]]

    def describe_volumes(
        self, volume_ids: list[str], *, region: str | None, resource: str = ""
    ) -> list[dict[str, Any]]:
        """The volumes *volume_ids* as EC2 describes them.

        Raises:
            ResourceNotFoundError: None of them exists (any more).
        """
        result = self.call(
            "ec2", "describe_volumes", resource=resource, region=region, VolumeIds=volume_ids
        )
        return list(result.get("Volumes", ()))

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Whether a snapshot of *point* lets everyone create volumes (``group=all``)."""
        ids = None if point is None else self.point_snapshot_ids(point)
        if ids is None:
            return None
        shared: dict[str, list[str]] = {}
        issues: list[str] = []
        for snapshot_id in ids:
            result = self.call(
                "ec2",
                "describe_snapshot_attribute",
                resource=snapshot_id,
                region=region,
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
            )
            perms = result.get("CreateVolumePermissions", [])
            shared[snapshot_id] = [
                str(p.get("Group") or p.get("UserId"))
                for p in perms
                if p.get("Group") or p.get("UserId")
            ]
            if any(p.get("Group") == "all" for p in perms):
                issues.append(
                    f"snapshot {snapshot_id}: createVolumePermission shared with group 'all'"
                )
        return {"create_volume_permissions": shared}, issues

    def sweep_restore_tests(
        self,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: MutableSet[str],
        temp_dir: str | os.PathLike[str] | None = None,  # noqa: ARG002 - no directories here
    ) -> list[SweptResource]:
        """Remove restored volumes left behind (sweep tag, made before *before*), in every region."""
        swept: list[SweptResource] = []
        for region in self._regions():
            if f"ec2:{region}" in seen:
                continue
            seen.add(f"ec2:{region}")
            swept.extend(sweep_volumes(self, region, isolation, before, dry_run=dry_run))
        return swept

    def first_zone(self, region: str) -> str:
        """The first available zone of *region* (sorted by name)."""
        result = self.call(
            "ec2",
            "describe_availability_zones",
            region=region,
            Filters=[{"Name": "state", "Values": ["available"]}],
        )
        zones = sorted(str(z["ZoneName"]) for z in result.get("AvailabilityZones", ()))
        if not zones:
            raise BackendError(
                f"{self.name}: no available zone in {region} to restore into",
                backend=self.name,
                operation="DescribeAvailabilityZones",
            )
        return zones[0]

    def _wait_available(self, volume_ids: list[str], region: str, point: RecoveryPoint) -> None:
        polls = max(1, math.ceil(self.wait_timeout / self.poll_interval))
        states: dict[str, str] = {}
        for attempt in range(polls + 1):
            result = self.call(
                "ec2", "describe_volumes", resource=point.id, region=region, VolumeIds=volume_ids
            )
            states = {
                str(v["VolumeId"]): str(v.get("State", "")) for v in result.get("Volumes", ())
            }
            failed = sorted(v for v, s in states.items() if s == "error")
            if failed:
                raise BackendError(
                    f"{self.name}: restored volume(s) {', '.join(failed)} of point {point.id!r} "
                    "went to state 'error'",
                    backend=self.name,
                    operation="CreateVolume",
                    resource=failed[0],
                )
            if all(states.get(v) == "available" for v in volume_ids):
                return
            if attempt < polls:
                self.retry.sleep(self.poll_interval)
        raise BackendError(
            f"{self.name}: restored volume(s) of point {point.id!r} not available after "
            f"{self.wait_timeout:g} s (states: {states})",
            backend=self.name,
            operation="DescribeVolumes",
            resource=point.id,
            code="Timeout",
        )

    def _teardown(self, created: Sequence[Mapping[str, Any]], region: str) -> list[BaseException]:
        errors: list[BaseException] = []
        for volume in created:
            volume_id = str(volume["volume_id"])
            try:
                self.call(
                    "ec2", "delete_volume", resource=volume_id, region=region, VolumeId=volume_id
                )
            except ResourceNotFoundError:
                continue
            except BackendError as exc:
                errors.append(exc)
        return errors


class EbsVolume(_SnapshotTarget):
    """An EBS volume, backed up as single-volume snapshots (``CreateSnapshot``).

    Example:
        >>> from backuppolicy.aws.ec2 import EbsVolume
        >>> volume = EbsVolume("vol-0123456789abcdef0", name="data", account_id="123456789012")
        >>> volume.name, volume.kind, volume.volume_id
        ('data', 'ebs-volume', 'vol-0123456789abcdef0')

    Args:
        volume_id: The volume (``vol-...``).
        name: Name of the target in the policy; default: *volume_id*.
        policy: Name of the policy that owns the snapshots (tag `backuppolicy:policy`).
        copy_regions: Regions where copies live, listed by `list_points` too.
        account_id: The AWS account; default: read once from STS.
        encrypt_copies: Require a KMS key for every copy, also of unencrypted snapshots.
        max_workers: Most concurrent calls when an operation fans out.
        poll_interval: Seconds between checks while a restored volume is created.
        wait_timeout: Longest wait for a restored volume, in seconds.
        session: A `boto3.Session`; default: the default session.
        region: The volume's region; default: the session's.
        endpoint_url: Endpoint for every client (moto server, LocalStack).
        clients: Ready clients by service (``{"ec2": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.

    Attributes:
        volume_id: The protected volume.
        policy: Name of the owning policy.
        copy_regions: Regions listed for copies.
        encrypt_copies: Whether every copy must be encrypted with a given KMS key.
        max_workers: Most concurrent calls when an operation fans out.
        poll_interval: Seconds between checks of a restored volume.
        wait_timeout: Longest wait for a restored volume, in seconds.
    """

    _kind = "ebs-volume"
    _setting = "volume_id"

    def __init__(
        self,
        volume_id: str,
        *,
        name: str | None = None,
        policy: str = "default",
        copy_regions: Iterable[str] = (),
        account_id: str | None = None,
        encrypt_copies: bool = False,
        max_workers: int = 8,
        poll_interval: float = 5.0,
        wait_timeout: float = 600.0,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.volume_id = _check_id("volume_id", volume_id, "vol-", "vol-0123456789abcdef0")
        super().__init__(
            volume_id,
            name=name,
            policy=policy,
            copy_regions=copy_regions,
            account_id=account_id,
            encrypt_copies=encrypt_copies,
            max_workers=max_workers,
            poll_interval=poll_interval,
            wait_timeout=wait_timeout,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.EbsVolume(name={self.name!r}, volume_id={self.volume_id!r})>"

    def _source_volume_ids(self, devices: Mapping[str, str]) -> list[str]:  # noqa: ARG002
        return [self.volume_id]

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Snapshot the volume now and return its point (usually `Status.PENDING` on AWS).

        The same *token* returns the existing snapshot instead of taking another one.
        """
        token = self._token(token)
        all_tags = self._creation_tags(reason=reason, tags=tags, token=token)
        existing = self._find_by_tag(TAG_TOKEN, token, self.region)
        if existing:
            return existing[0]
        result = self.call(
            "ec2",
            "create_snapshot",
            resource=self.volume_id,
            VolumeId=self.volume_id,
            Description=f"backuppolicy {self.policy}/{self.name}: {reason}",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(all_tags)}],
        )
        snapshot = dict(result)
        snapshot.setdefault("Tags", _tag_list(all_tags))
        snapshot.setdefault("OwnerId", self.account_id)
        return self._point(snapshot, self.region, {})


class Ec2Instance(_SnapshotTarget):
    """An EC2 instance, backed up as crash-consistent snapshots of all its volumes.

    One backup is one ``CreateSnapshots`` call; its snapshots share the `TAG_GROUP` tag and
    are one `RecoveryPoint` of kind ``"ec2-instance-backup"`` whose id is the group id
    (``bp-<target>-<UTC stamp>-<token digest>``). The point is `Status.COMPLETED` when
    every snapshot is, `Status.PENDING` while any is pending, `Status.FAILED` when all
    failed and `Status.PARTIAL` when some failed or are missing.

    Example:
        >>> from backuppolicy.aws.ec2 import Ec2Instance
        >>> web = Ec2Instance("i-0123456789abcdef0", name="web", include_boot_volume=False,
        ...                       account_id="123456789012")
        >>> web.name, web.kind, web.include_boot_volume
        ('web', 'ec2-instance', False)

    Args:
        instance_id: The instance (``i-...``).
        include_boot_volume: Whether the boot (root) volume is snapshotted too.
        name: Name of the target in the policy; default: *instance_id*.
        policy: Name of the policy that owns the snapshots.
        copy_regions: Regions where copies live, listed by `list_points` too.
        account_id: The AWS account; default: read once from STS.
        encrypt_copies: Require a KMS key for every copy, also of unencrypted snapshots.
        max_workers: Most concurrent copy calls for one instance backup.
        poll_interval: Seconds between checks while restored volumes are created.
        wait_timeout: Longest wait for restored volumes, in seconds.
        session: A `boto3.Session`; default: the default session.
        region: The instance's region; default: the session's.
        endpoint_url: Endpoint for every client (moto server, LocalStack).
        clients: Ready clients by service (``{"ec2": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.

    Attributes:
        instance_id: The protected instance.
        include_boot_volume: Whether the boot volume is part of each backup.
        policy: Name of the owning policy.
        copy_regions: Regions listed for copies.
        encrypt_copies: Whether every copy must be encrypted with a given KMS key.
        max_workers: Most concurrent calls when an operation fans out.
        poll_interval: Seconds between checks of restored volumes.
        wait_timeout: Longest wait for restored volumes, in seconds.
    """

    _kind = "ec2-instance"
    _setting = "instance_id"

    def __init__(
        self,
        instance_id: str,
        *,
        include_boot_volume: bool = True,
        name: str | None = None,
        policy: str = "default",
        copy_regions: Iterable[str] = (),
        account_id: str | None = None,
        encrypt_copies: bool = False,
        max_workers: int = 8,
        poll_interval: float = 5.0,
        wait_timeout: float = 600.0,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.instance_id = _check_id("instance_id", instance_id, "i-", "i-0123456789abcdef0")
        if not isinstance(include_boot_volume, bool):
            raise PolicyError.for_field("include_boot_volume", "True or False", include_boot_volume)
        self.include_boot_volume = include_boot_volume
        super().__init__(
            instance_id,
            name=name,
            policy=policy,
            copy_regions=copy_regions,
            account_id=account_id,
            encrypt_copies=encrypt_copies,
            max_workers=max_workers,
            poll_interval=poll_interval,
            wait_timeout=wait_timeout,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.aws.Ec2Instance(name={self.name!r}, instance_id={self.instance_id!r})>"
        )

    def _instance(self) -> dict[str, Any] | None:
        try:
            result = self.call(
                "ec2",
                "describe_instances",
                resource=self.instance_id,
                InstanceIds=[self.instance_id],
            )
        except ResourceNotFoundError:
            return None
        for reservation in result.get("Reservations", ()):
            for instance in reservation.get("Instances", ()):
                if instance.get("InstanceId") == self.instance_id:
                    return dict(instance)
        return None

    @staticmethod
    def _mappings(instance: Mapping[str, Any]) -> dict[str, str]:
        return {
            str(m["Ebs"]["VolumeId"]): str(m["DeviceName"])
            for m in instance.get("BlockDeviceMappings", ())
            if m.get("Ebs", {}).get("VolumeId")
        }

    def _devices(self) -> dict[str, str]:
        instance = self._instance()
        return self._mappings(instance) if instance else {}

    def _source_volume_ids(self, devices: Mapping[str, str]) -> list[str]:
        return sorted(devices)

    def _group_id(self, token: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz")
        digest = hashlib.sha256(token.encode()).hexdigest()[:8]
        return f"bp-{_slug(self.name)}-{stamp}-{digest}"

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Snapshot the instance's volumes at one moment and return the group's point.

        The same *token* returns the existing group instead of taking another one.

        Raises:
            ResourceNotFoundError: The instance does not exist.
            PolicyError: ``include_boot_volume=False`` but the instance has no other volume.
        """
        token = self._token(token)
        all_tags = self._creation_tags(reason=reason, tags=tags, token=token)
        instance = self._instance()
        devices = self._mappings(instance) if instance else {}
        found = self._find_by_tag(TAG_TOKEN, token, self.region, devices)
        existing = [p for p in found if p.kind == KIND_INSTANCE_BACKUP]
        if existing:
            return existing[0]
        if instance is None:
            raise ResourceNotFoundError(
                f"{self.name}: instance {self.instance_id!r} does not exist",
                backend=self.name,
                operation="DescribeInstances",
                resource=self.instance_id,
                code="InvalidInstanceID.NotFound",
            )
        root = instance.get("RootDeviceName")
        wanted = {v: d for v, d in devices.items() if self.include_boot_volume or d != root}
        if not wanted:
            raise PolicyError.for_field(
                "include_boot_volume",
                f"True, or an instance with a data volume ({self.instance_id} has only its boot volume)",
                self.include_boot_volume,
            )
        group = self._group_id(token)
        all_tags.update(
            {
                TAG_GROUP: group,
                TAG_GROUP_SIZE: str(len(wanted)),
                TAG_INSTANCE: self.instance_id,
            }
        )
        result = self.call(
            "ec2",
            "create_snapshots",
            resource=self.instance_id,
            InstanceSpecification={
                "InstanceId": self.instance_id,
                "ExcludeBootVolume": not self.include_boot_volume,
            },
            Description=f"backuppolicy {self.policy}/{self.name}: {reason} ({group})",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(all_tags)}],
        )
        snapshots = [dict(s) for s in result.get("Snapshots", ())]
        if snapshots and len(snapshots) != len(wanted):
            # The volumes changed between DescribeInstances and CreateSnapshots: record the
            # real size so the group is not reported as partial forever.
            all_tags[TAG_GROUP_SIZE] = str(len(snapshots))
            self.call(
                "ec2",
                "create_tags",
                resource=group,
                Resources=[s["SnapshotId"] for s in snapshots],
                Tags=[{"Key": TAG_GROUP_SIZE, "Value": all_tags[TAG_GROUP_SIZE]}],
            )
        if not snapshots:
            raise BackendError(
                f"{self.name}: CreateSnapshots on {self.instance_id} returned no snapshots",
                backend=self.name,
                operation="CreateSnapshots",
                resource=self.instance_id,
            )
        for snapshot in snapshots:
            snapshot["Tags"] = _tag_list(all_tags)
            snapshot.setdefault("OwnerId", self.account_id)
        point = self._group_point(group, snapshots, self.region, devices)
        if all("State" in s for s in snapshots):
            return point
        # The response lacks the snapshots' state (moto leaves it out): read the group back.
        return self.refresh(point) or point
