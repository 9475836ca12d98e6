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

The parts live in private modules, one idea each (`backuppolicy.aws._ec2_base`: tags and
points; ``_ec2_snapshots``; ``_ec2_restore``). This module holds the kind: the two
targets, building them from a spec, their IAM actions and the sweep of restored volumes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableSet
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._ebs_direct import EbsDirect
from backuppolicy.aws._ec2_base import (
    KIND_EBS_SNAPSHOT,
    KIND_INSTANCE_BACKUP,
    TAG_GROUP,
    TAG_GROUP_SIZE,
    TAG_INSTANCE,
    TAG_LOCK,
    TAG_SOURCE_GROUP,
    TAG_SOURCE_REGION,
    TAG_SOURCE_SNAPSHOT,
    tag_list,
)
from backuppolicy.aws._ec2_lock import SnapshotLocks
from backuppolicy.aws._ec2_restore import Ec2Restores
from backuppolicy.aws._ec2_snapshots import Ec2Snapshots
from backuppolicy.aws._iam_statements import (
    ACCOUNT,
    PARTITION,
    REGION,
    REGIONS,
    SOURCE_ACCOUNT,
    Grant,
    by_workflow,
    created,
    held,
    hold_tags,
    owned,
    swept,
)
from backuppolicy.aws._offsite import OffsiteCopies, offsite_accounts, own_copy_regions
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_TOKEN,
    RecoveryPoint,
)
from backuppolicy.core.naming import name_stamp
from backuppolicy.core.targets import (
    AwsBackupMapping,
    IsolationProfile,
    SweptResource,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from types_boto3_ec2.type_defs import SnapshotTypeDef

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


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "target"


def _check_id(field: str, value: object, prefix: str, example: str) -> str:
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
        # A legal hold: the hold tag (and the lock tag recording the snapshot lock) on any
        # snapshot of the target, and a governance lock on held snapshots only (the tag is put
        # before the lock and removed after the unlock). DescribeLockedSnapshots (the audit)
        # supports no resource-level permissions.
        Grant(("holds",), ("ec2:CreateTags", "ec2:DeleteTags"), snaps, hold_tags(TAG_LOCK)),
        Grant(("holds",), ("ec2:LockSnapshot", "ec2:UnlockSnapshot"), snaps, held()),
        Grant(("holds",), ("ec2:DescribeLockedSnapshots",), ("*",)),
        # integrity checks read snapshots and their copies block by block (EBS direct APIs)
        Grant(("verify",), ("ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"), snaps),
    ]
    return grants


def _iam_share_grants() -> list[Grant]:
    """Production's part of a copy to another account: share its snapshots, read their keys."""
    return [
        Grant(
            ("backup",),
            ("ec2:ModifySnapshotAttribute",),
            (f"arn:{PARTITION}:ec2:{REGION}::snapshot/*",),
            owned(),
        ),
        Grant(
            ("backup",), ("kms:DescribeKey",), (f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/*",)
        ),
    ]


def _iam_backup_account_grants(spec: TargetSpec, *, instance: bool) -> list[Grant]:
    """The backup account's part: copy in (with its key), tag, list, prune, restore-test."""
    kept = [
        g
        for g in _iam_grants(spec, instance=instance)
        if g.workflows != ("backup",) and not g.copies
    ]
    # EC2 snapshot ARNs carry no account, and CopySnapshot is checked on the source (in
    # production, any region) and on the new snapshot.
    snapshots = (f"arn:{PARTITION}:ec2:*::snapshot/*",)
    theirs = (f"arn:{PARTITION}:kms:*:{SOURCE_ACCOUNT}:key/*",)
    return [
        *kept,
        Grant(("backup",), ("ec2:CopySnapshot",), snapshots),
        Grant(("backup",), ("ec2:CreateTags",), snapshots, created("CopySnapshot")),
        Grant(
            ("backup",),
            ("kms:CreateGrant",),
            theirs,
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Grant(("backup",), ("kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"), theirs),
    ]


def _volume_restore_overrides(profile: IsolationProfile) -> dict[str, str]:
    """AWS Backup's restore metadata for a restore-tested volume: *profile*'s availability zone."""
    return {"availabilityZone": profile.availability_zone} if profile.availability_zone else {}


def _instance_restore_overrides(profile: IsolationProfile) -> dict[str, str]:
    """AWS Backup's restore metadata for a restore-tested instance: *profile*'s network."""
    out: dict[str, str] = {}
    if profile.subnet_id:
        out["subnetId"] = profile.subnet_id
    if profile.security_group_ids:
        out["securityGroupIds"] = json.dumps(list(profile.security_group_ids))
    return out


class _SnapshotTarget(OffsiteCopies, SnapshotLocks, Ec2Snapshots, Ec2Restores, EbsDirect):
    """Shared listing, copy, delete, restore and hold logic of the EBS snapshot targets."""

    def _point_name(self, token: str) -> str:
        """``bp-<target>-<stamp>-<token digest>`` (the rule of `backuppolicy.core.naming`)."""
        stamp = name_stamp(token, datetime.now(UTC))
        digest = hashlib.sha256(token.encode()).hexdigest()[:8]
        return f"bp-{_slug(self.name)}-{stamp}-{digest}"

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
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> Self:
        """The target of *spec*: its instance or volume, its region (default *region*), its copy regions.

        The copy regions are those of the policy's copy tiers (every tier after the first).
        ``no_reboot`` is accepted and ignored: ``CreateSnapshots`` never reboots the instance.
        """
        settings = spec.settings
        make: Callable[..., Self] = cls  # each kind's own constructor (the base's has no defaults)
        target = make(
            settings[cls._setting],
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=settings.get("region") or region,
            copy_regions=own_copy_regions(policy, spec),
        )
        return target.with_offsite(offsite_accounts(policy, spec))

    def _sibling(self, session: boto3.Session, region: str) -> Self:
        """This target in another account (*session*) and *region*: lists, deletes, restores there."""
        make: Callable[..., Self] = type(self)
        return make(
            getattr(self, self._setting),
            name=self.name,
            policy=self.policy,
            session=session,
            endpoint_url=self.endpoint_url,
            region=region,
            max_workers=self.max_workers,
            poll_interval=self.poll_interval,
            wait_timeout=self.wait_timeout,
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, object]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in)."""
        return by_workflow(_iam_grants(spec, instance=cls._setting == "instance_id"))

    @classmethod
    def iam_offsite_actions(cls, spec: TargetSpec) -> dict[str, dict[str, list[dict[str, object]]]]:
        """The statements for copy tiers in another account, per side (``production``, ``backup``)."""
        instance = cls._setting == "instance_id"
        return {
            "production": by_workflow(_iam_share_grants()),
            "backup": by_workflow(_iam_backup_account_grants(spec, instance=instance)),
        }

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

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:  # noqa: ARG003 - the same for every spec
        """AWS Backup protects volumes as ``EBS``; restore tests use the isolated availability zone."""
        return AwsBackupMapping(
            "arn:{partition}:ec2:{region}:{account}:volume/{volume_id}",
            "EBS",
            _volume_restore_overrides,
        )

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
        clients: Mapping[str, BaseClient] | None = None,
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

        The same *token* returns the existing snapshot instead of taking another one. EC2 gives
        the snapshot its id; its ``Name`` tag (what the console shows) is
        ``bp-<target>-<stamp>-<token digest>``: the stamp is the slot of a scheduled backup,
        the time a manual one was taken (`backuppolicy.core.naming`). A ``Name`` in *tags* wins.
        """
        token = self._token(token)
        all_tags = self._creation_tags(reason=reason, tags=tags, token=token)
        all_tags.setdefault("Name", self._point_name(token))
        existing = self._find_by_tag(TAG_TOKEN, token, self.region)
        if existing:
            return existing[0]
        result = self.call(
            "ec2",
            "create_snapshot",
            resource=self.volume_id,
            VolumeId=self.volume_id,
            Description=f"backuppolicy {self.policy}/{self.name}: {reason}",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(all_tags)}],
        )
        snapshot = dict(result)
        snapshot.setdefault("Tags", tag_list(all_tags))
        snapshot.setdefault("OwnerId", self.account_id)
        return self._point(cast("SnapshotTypeDef", snapshot), self.region, {})


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

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:  # noqa: ARG003 - the same for every spec
        """AWS Backup protects instances as ``EC2``; restore tests use the isolated network."""
        return AwsBackupMapping(
            "arn:{partition}:ec2:{region}:{account}:instance/{instance_id}",
            "EC2",
            _instance_restore_overrides,
        )

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
        clients: Mapping[str, BaseClient] | None = None,
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
        return self._point_name(token)

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Snapshot the instance's volumes at one moment and return the group's point.

        The same *token* returns the existing group instead of taking another one. The group
        (the point's id) is ``bp-<target>-<stamp>-<token digest>``: the stamp is the slot of a
        scheduled backup, the time a manual one was taken (`backuppolicy.core.naming`).

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
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(all_tags)}],
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
            snapshot["Tags"] = tag_list(all_tags)
            snapshot.setdefault("OwnerId", self.account_id)
        point = self._group_point(
            group, cast("list[SnapshotTypeDef]", snapshots), self.region, devices
        )
        if all("State" in s for s in snapshots):
            return point
        # The response lacks the snapshots' state (moto leaves it out): read the group back.
        return self.refresh(point) or point
