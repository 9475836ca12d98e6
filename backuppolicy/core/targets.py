"""The `BackupTarget` protocol, restore isolation and copy destinations.

A target is one protected resource (a database, an instance, a bucket prefix, a
directory) together with the backend that backs it up. Targets need not subclass
anything: any object with the methods of `BackupTarget` is one.

A kind's class can answer two questions itself, so that nothing else in the library needs to
know about it (`TargetKind`): ``from_spec(spec, policy, session=..., endpoint_url=...,
region=...)`` builds the target of a policy entry (`backuppolicy.build_targets` asks it), and
``iam_actions(spec)`` names the IAM statements each workflow needs (`backuppolicy.aws.iam_policy`
asks it; an empty mapping means none).

This module also re-exports, for the modules that import them from here, the capability
protocols of `backuppolicy.core.capabilities` (what workflows and checks ask of a target) and
the registry of `backuppolicy.core.registry` (kinds and plug-ins reached by name: built-in kinds
are imported lazily, so ``import backuppolicy`` never imports boto3; third-party packages add
kinds through the entry-point group ``backuppolicy.targets``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from backuppolicy.core.capabilities import (
    TAG_RESTORE_ID,
    BlockDigest,
    BucketSettings,
    DatabaseSnapshotPoints,
    Lease,
    LeaseRecord,
    ManifestedPoints,
    ManifestEntry,
    ObjectReader,
    ObjectVersionPoints,
    PointSharing,
    RecoverableInstance,
    Restorable,
    RestorableBucket,
    RestorableDatabase,
    RestorableVolumes,
    SettingsDrift,
    SnapshotBlocks,
    SnapshotPoints,
    StagedRestore,
    Sweepable,
    SweptResource,
)
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.registry import (
    ENTRY_POINT_GROUP,
    PLUGIN_GROUPS,
    get_plugin,
    get_target_class,
    known_plugins,
    known_target_kinds,
    leftover_sweepers,
    register_plugin,
    register_target,
)

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "NAME_PREFIX_RE",
    "PLUGIN_GROUPS",
    "TAG_RESTORE_ID",
    "AwsBackupMapping",
    "BackupTarget",
    "BlockDigest",
    "BucketSettings",
    "DatabaseSnapshotPoints",
    "Destination",
    "IsolationProfile",
    "Lease",
    "LeaseRecord",
    "ManifestEntry",
    "ManifestedPoints",
    "ObjectReader",
    "ObjectVersionPoints",
    "PointSharing",
    "RecoverableInstance",
    "Restorable",
    "RestorableBucket",
    "RestorableDatabase",
    "RestorableVolumes",
    "RestoredResource",
    "SettingsDrift",
    "SnapshotBlocks",
    "SnapshotPoints",
    "StagedRestore",
    "Sweepable",
    "SweptResource",
    "TargetKind",
    "get_plugin",
    "get_target_class",
    "known_plugins",
    "known_target_kinds",
    "leftover_sweepers",
    "register_plugin",
    "register_target",
]


@attrs.frozen
class Destination:
    """Where `BackupTarget.copy` puts a copy (the off-site tier).

    Attributes:
        tier: Tier name of the copy (``"offsite"``).
        region: Destination AWS region, for AWS targets.
        kms_key_id: KMS key in the destination region; required to copy encrypted snapshots.
        store: A store object or URL (``"s3://bucket/prefix"``, a directory) for archive targets.
        account: Destination AWS account id, if different from the source.
    """

    tier: str = "offsite"
    region: str | None = None
    kms_key_id: str | None = None
    store: Any = None
    account: str | None = None


NAME_PREFIX_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,31}")
"""What `IsolationProfile.name_prefix` may be: a letter, then letters, digits and hyphens.

The prefix starts RDS identifiers, EC2 names, S3 scratch prefixes and temporary directory
names, so it holds nothing that any of them reads as structure (``/``, ``..``, ``.``).
"""


def _check_name_prefix(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not NAME_PREFIX_RE.fullmatch(value):
        raise PolicyError.for_field(
            "name_prefix",
            "a letter, then up to 31 letters, digits or hyphens",
            value,
        )


@attrs.frozen
class IsolationProfile:
    """Where restore tests put restored resources, away from production.

    Restored resources get no public access, the dedicated network below and the
    sweep tag, so a sweeper can find and remove anything left behind.

    Attributes:
        subnet_group: RDS DB subnet group for restored databases.
        security_group_ids: Security groups for restored databases and volumes' instances.
        subnet_id: EC2 subnet for restored instances.
        availability_zone: Availability zone for restored EBS volumes (default: the region's first).
        instance_class: Small DB instance class used for restore tests.
        name_prefix: Prefix of restored resource names (`NAME_PREFIX_RE`).
        tags: Extra tags put on every restored resource.
        sweep_tag: Tag key that marks a resource as a restore-test leftover.
    """

    subnet_group: str | None = None
    security_group_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    subnet_id: str | None = None
    availability_zone: str | None = None
    instance_class: str = "db.t3.micro"
    name_prefix: str = attrs.field(default="bp-restore-", validator=_check_name_prefix)
    tags: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    sweep_tag: str = "backuppolicy:restore-test"


def _no_overrides(_profile: IsolationProfile) -> Mapping[str, str]:
    return {}


@attrs.frozen
class AwsBackupMapping:
    """How a target kind maps to AWS Backup: what a kind's ``aws_backup(spec)`` returns.

    `backuppolicy.aws.export_aws_backup` puts the resource into the plan's backup selection and,
    when it has a *resource_type*, into the restore testing selection of that type; a kind whose
    ``aws_backup(spec)`` returns ``None`` (or that has no such class method) is not an AWS
    resource, and the export warns that ``backuppolicy backup`` must keep running for it.

    Attributes:
        arn_template: The resource's ARN as a `str.format` template: ``{partition}``,
            ``{region}`` and ``{account}`` are the plan's, any other field is the target's
            setting of that name (``"arn:{partition}:s3:::{bucket}"``).
        resource_type: AWS Backup's ``ProtectedResourceType`` (``"RDS"``, ``"EC2"``), or
            ``None`` when it is not known (an ``aws-backup`` target names any ARN): the
            resource is then selected, but neither sets the plan's region nor is restore-tested.
        restore_overrides: The ``RestoreMetadataOverrides`` of restore tests, from the
            policy's isolation profile (kinds sharing a resource type share the first one's).
        caveats: What AWS Backup does differently for this target; the export adds each to its
            warnings (S3: the whole bucket is backed up, not only the prefix).

    Example:
        >>> mapping = AwsBackupMapping("arn:{partition}:s3:::{bucket}", "S3")
        >>> mapping.arn({"bucket": "logs"}, partition="aws", region="eu-west-2", account="1")
        'arn:aws:s3:::logs'
    """

    arn_template: str
    resource_type: str | None = None
    restore_overrides: Callable[[IsolationProfile], Mapping[str, str]] = _no_overrides
    caveats: tuple[str, ...] = ()

    def arn(self, settings: Mapping[str, Any], *, partition: str, region: str, account: str) -> str:
        """The ARN of the resource of a target with *settings*, in *partition*, *region*, *account*."""
        return self.arn_template.format_map(
            {**settings, "partition": partition, "region": region, "account": account}
        )


@attrs.frozen
class RestoredResource:
    """A resource created by `BackupTarget.restore`; torn down when its context exits.

    Attributes:
        id: Identifier of the restored resource (DB instance id, volume id, bucket/prefix, directory).
        kind: What it is (``"rds-instance"``, ``"ebs-volume"``, ``"s3-prefix"``, ``"directory"``).
        point: The recovery point it was restored from.
        endpoint: How to reach it (``host:port``, a path), if anything.
        details: Backend-specific facts.
    """

    id: str
    kind: str
    point: RecoveryPoint
    endpoint: str | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@runtime_checkable
class BackupTarget(Protocol):
    """**Protocol:** a protected resource that can be backed up, listed, copied, pruned and restored.

    Implementations: `backuppolicy.aws.RdsInstance`, `~backuppolicy.aws.AuroraCluster`,
    `~backuppolicy.aws.Ec2Instance`, `~backuppolicy.aws.EbsVolume`, `~backuppolicy.aws.S3Bucket`,
    `backuppolicy.local.Directory`. `backuppolicy.testing` has a contract test suite that any
    implementation can run.
    """

    @property
    def name(self) -> str:
        """Name of the target in the policy (``"orders-db"``)."""
        ...

    @property
    def kind(self) -> str:
        """Registered kind of the target (``"rds-instance"``)."""
        ...

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Take a backup now and return its point (possibly still `Status.PENDING`).

        The same *token* returns the same point instead of making a duplicate, so a
        retried or re-run job is safe. The point carries the ownership tags.
        """
        ...

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream every point of the target (all pages), ours marked ``managed=True``.

        A failure on any page raises: callers never see a silently truncated listing.
        """
        ...

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* from the backend; ``None`` if it no longer exists.

        `backuppolicy.apply` calls this right before each delete.
        """
        ...

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point*.

        Raises:
            PolicyError: *point* is not managed by this library, or is under legal hold.
            ResourceNotFoundError: *point* does not exist.
        """
        ...

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* to *destination* (another region, account or store) and return the copy."""
        ...

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Restore *point* into *into*; the context manager tears the restored resource down on exit."""
        ...


@runtime_checkable
class TargetKind(Protocol):
    """**Protocol:** what a target kind's class says about itself, before any target exists.

    Every member is optional, each checked on its own (``getattr``): a kind without
    ``from_spec`` is called with its settings as keywords plus ``name`` and ``policy``; a
    kind without ``iam_actions`` cannot be exported to IAM (`backuppolicy.aws.iam_policy`
    refuses it rather than leave its permissions out); a kind without ``aws_backup`` does not
    map to AWS Backup.
    """

    def from_spec(
        self,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> BackupTarget:
        """Build the target of *spec* (its settings, and its tiers in *policy*).

        *session*, *endpoint_url* and *region* are those `backuppolicy.build_targets` was
        given (``session`` is the assumed role's for a target with an ``account``); a kind that
        does not use AWS ignores them. Raise `PolicyError` naming the setting that is wrong.
        """
        ...

    def iam_actions(self, spec: TargetSpec) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        """The IAM statements *spec* needs, per workflow (``backup``, ``prune``, ``verify``, ``restore-test``).

        Each statement is a mapping with ``Action`` and ``Resource`` (lists of strings) and
        optionally ``Condition``; a workflow missing from the mapping needs nothing, and an
        empty mapping says that the kind needs no AWS permission at all.
        """
        ...

    def aws_backup(self, spec: TargetSpec) -> AwsBackupMapping | None:
        """How *spec*'s resource maps to AWS Backup, or ``None`` if AWS Backup cannot protect it.

        `backuppolicy.aws.export_aws_backup` asks it (an `AwsBackupMapping`).
        """
        ...
