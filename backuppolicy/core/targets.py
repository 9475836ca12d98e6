"""The `BackupTarget` protocol, restore isolation, copy destinations and the target registry.

A target is one protected resource (a database, an instance, a bucket prefix, a
directory) together with the backend that backs it up. Targets need not subclass
anything: any object with the methods of `BackupTarget` is one.

Built-in kinds are registered by name and imported lazily, so ``import backuppolicy``
never imports boto3. Third-party packages register more kinds through the
entry-point group ``backuppolicy.targets``::

    [project.entry-points."backuppolicy.targets"]
    my-nas = "my_package.nas:NasShare"

A kind's class can answer two questions itself, so that nothing else in the library needs to
know about it (`TargetKind`): ``from_spec(spec, policy, session=..., endpoint_url=...,
region=...)`` builds the target of a policy entry (`backuppolicy.build_targets` asks it), and
``iam_actions(spec)`` names the IAM statements each workflow needs (`backuppolicy.aws.iam_policy`
asks it; an empty mapping means none).
The same registry, by *group* (`PLUGIN_GROUPS`), holds the other backends that the layers
above reach by name, never by import: the objects behind an ``s3://`` store, and the resolver
of selectors and accounts (``"aws"``).
Like fsspec's ``known_implementations``, each entry is a ``"module:attr"`` string imported on
first use, so ``import backuppolicy`` never imports boto3; `register_plugin` and the group's
entry points add more.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from backuppolicy.core.exceptions import (
    BackendNotFoundError,
    BackupPolicyError,
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.restoring import RestoreOutcome, RestorePlan

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "NAME_PREFIX_RE",
    "PLUGIN_GROUPS",
    "TAG_RESTORE_ID",
    "BackupTarget",
    "BucketSettings",
    "DatabaseSnapshotPoints",
    "Destination",
    "IsolationProfile",
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
    "SnapshotPoints",
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

ENTRY_POINT_GROUP = "backuppolicy.targets"


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

    Both members are optional, each checked on its own (``getattr``): a kind without
    ``from_spec`` is called with its settings as keywords plus ``name`` and ``policy``; a
    kind without ``iam_actions`` cannot be exported to IAM (`backuppolicy.aws.iam_policy`
    refuses it rather than leave its permissions out).
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


# -- restores a target plans and carries out itself ----------------------------------------
# The one generic restore protocol: `backuppolicy.plan_restore` and `backuppolicy.restore` ask a
# target that implements it before anything else, so a kind (a plug-in too) restores itself.


@runtime_checkable
class Restorable(Protocol):
    """**Protocol:** a target that plans and carries out its own restores.

    `backuppolicy.plan_restore` asks the target for its plan, then for what is at the
    destination (``observe_restore``), which the plan keeps in `RestorePlan.observed`.
    `backuppolicy.restore` asks ``observe_restore`` again immediately before acting and refuses
    a destructive plan, or a destination that changed since the plan, unless ``confirm=True``;
    only then does it call ``execute_restore``. It adds the probes and records the result, as
    for every other target. The values are pure (`backuppolicy.core.restoring`).

    Implementations: `backuppolicy.local.Directory`; the SQLite file target of
    ``examples/sqlite_target.py``.
    """

    @property
    def name(self) -> str:
        """Name of the target in the policy."""
        ...

    def plan_restore(
        self,
        *,
        point: RecoveryPoint | str | None,
        at: datetime | None,
        into: Any,
        now: datetime,
        token: str,
        **options: Any,
    ) -> RestorePlan:
        """Plan a restore of *point* (or of the state *at*) into *into*; change nothing.

        *now* is the time of the plan and *token* the restore's identity (names derive from
        `RestorePlan.stamp`; a plan with the token of an interrupted restore adopts what it
        made). *options* are the keyword arguments given to `backuppolicy.plan_restore` that are
        not its own (and its database and volume options that were set). Mark every step that
        changes existing data ``destructive`` and say where the previous state is kept.

        Raises:
            PolicyError: The point, the time, the destination or an option cannot be used.
        """
        ...

    def observe_restore(self, plan: RestorePlan) -> Mapping[str, str]:
        """What is at *plan*'s destination now: resource -> its state in words.

        A resource that does not exist is `~backuppolicy.core.restoring.ABSENT`; the state of
        something this restore made itself ends with
        `~backuppolicy.core.restoring.MADE_BY_THIS_RESTORE` (never counted as a change).
        """
        ...

    def execute_restore(self, plan: RestorePlan, *, confirm: bool) -> RestoreOutcome:
        """Carry out *plan* (its destination was just re-checked) and verify what it restored.

        *confirm* says whether destructive steps were allowed; whatever is replaced is kept,
        confirmed or not. Raise `PolicyError` (nothing changed) or a `BackendError`.
        """
        ...


# -- restore capabilities ------------------------------------------------------------------
# What `backuppolicy.restore` needs from a target, one small protocol per family of targets.
# The workflow finds a target's family with ``isinstance`` (never by its kind string), and every
# call to the backend's service lives in the backend's own module.

TAG_RESTORE_ID: Final = "backuppolicy:restore-id"
"""Tag on every resource a restore creates: the restore's token (a resumed restore adopts them)."""


@runtime_checkable
class RestorableDatabase(Protocol):
    """**Protocol:** a database target that `backuppolicy.restore` restores (RDS, Aurora).

    Implementations: `backuppolicy.aws.RdsInstance`, `~backuppolicy.aws.AuroraCluster`.
    Described databases are the service's own records (``DBInstances[0]``, ``DBClusters[0]``).
    """

    @property
    def name(self) -> str:
        """Name of the target in the policy."""
        ...

    @property
    def region(self) -> str:
        """Region of the protected database."""
        ...

    @property
    def resource_id(self) -> str:
        """Identifier of the protected database."""
        ...

    @property
    def database_noun(self) -> str:
        """What the database is called in plans (``"instance"``, ``"cluster"``)."""
        ...

    @property
    def database_id_param(self) -> str:
        """Name of the identifier in the service's API (``"DBInstanceIdentifier"``)."""
        ...

    def restore_identifier(self, suffix: str) -> str:
        """A valid identifier ``<resource_id>-<suffix>`` for a restored or renamed database."""
        ...

    def describe_database(
        self, identifier: str, region: str | None = None
    ) -> Mapping[str, Any] | None:
        """The database *identifier* as the service describes it; ``None`` if there is none."""
        ...

    def database_status(self, item: Mapping[str, Any]) -> str | None:
        """The status of a described database (``"available"``), as the service spells it."""
        ...

    def tag_database(
        self, identifier: str, arn: str, tags: Mapping[str, str], *, region: str
    ) -> None:
        """Add *tags* to the database *identifier* (of ARN *arn*)."""
        ...

    def rename_database(self, identifier: str, new_identifier: str, *, region: str) -> None:
        """Rename the database *identifier* to *new_identifier*, immediately."""
        ...

    def restore_database(
        self,
        identifier: str,
        *,
        region: str,
        point: RecoveryPoint | None,
        at: datetime | None,
        settings: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> None:
        """Start creating database *identifier* from *point* (or the protected one's state *at*).

        *settings* holds ``instance_class``, ``subnet_group``, ``security_group_ids`` and
        ``parameter_group`` (each falsy: the service's default); *tags* go on what is created.
        """
        ...


@runtime_checkable
class RestorableVolumes(Protocol):
    """**Protocol:** a target restored as block volumes that `backuppolicy.restore` creates and attaches.

    Implementations: `backuppolicy.aws.Ec2Instance`, `~backuppolicy.aws.EbsVolume`. Described
    instances and volumes are the service's own records (``Reservations[].Instances[]``).
    """

    @property
    def name(self) -> str:
        """Name of the target in the policy."""
        ...

    @property
    def region(self) -> str:
        """Region of the protected resource."""
        ...

    def describe_instance(
        self, instance_id: str, region: str | None = None
    ) -> Mapping[str, Any] | None:
        """The instance *instance_id* as the service describes it; ``None`` if there is none."""
        ...

    def volumes_tagged(self, key: str, value: str, *, region: str) -> list[Mapping[str, Any]]:
        """The volumes that carry the tag *key* = *value*, as the service describes them."""
        ...

    def volume_states(self, volume_ids: list[str], *, region: str) -> dict[str, str]:
        """Volume id -> its state (``"available"``, ``"in-use"``) of the volumes *volume_ids*."""
        ...

    def first_zone(self, region: str) -> str:
        """The first available zone of *region* (sorted by name)."""
        ...

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
        ...

    def stop_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to stop."""
        ...

    def start_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to start."""
        ...

    def attach_volume(self, volume_id: str, instance_id: str, device: str, *, region: str) -> None:
        """Attach *volume_id* to *instance_id* at *device*."""
        ...

    def detach_volume(self, volume_id: str, instance_id: str, device: str, *, region: str) -> None:
        """Detach *volume_id* from *instance_id* at *device* (the volume is kept)."""
        ...


@runtime_checkable
class RestorableBucket(Protocol):
    """**Protocol:** an object-store prefix that `backuppolicy.restore` restores to a time or version.

    Implementation: `backuppolicy.aws.S3Bucket`. Objects are the service's own records
    (``Contents`` entries, HeadObject responses).
    """

    @property
    def name(self) -> str:
        """Name of the target in the policy."""
        ...

    @property
    def bucket(self) -> str:
        """The protected bucket."""
        ...

    @property
    def prefix(self) -> str:
        """The protected prefix."""
        ...

    @property
    def internal_prefix(self) -> str:
        """Where the target's own manifests and copies live (never data)."""
        ...

    @property
    def url(self) -> str:
        """``s3://bucket/prefix`` of the protected data."""
        ...

    def versioning(self) -> str:
        """Versioning status of the protected bucket (``"Enabled"``, ``"Suspended"``, ``"Disabled"``)."""
        ...

    def versioning_of(self, bucket: str) -> str:
        """Versioning status of *bucket*."""
        ...

    def restore_to_time(
        self,
        when: datetime,
        dest_bucket: str | None = None,
        dest_prefix: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Any:
        """Restore the prefix to its state at *when* (or count what that would do, *dry_run*)."""
        ...

    def object_head(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> Mapping[str, Any]:
        """The head of *key* in *bucket* (its version *version_id*); raises if there is none."""
        ...

    def has_objects(self, bucket: str, prefix: str, *, exact: bool = False) -> bool:
        """Whether *bucket* holds an object under *prefix* (with *exact*: the key itself)."""
        ...

    def list_objects(self, bucket: str, prefix: str) -> Iterator[Mapping[str, Any]]:
        """Every current object under *prefix* in *bucket*."""
        ...

    def count_keys(self, bucket: str, prefix: str) -> int:
        """How many current objects *bucket* holds under *prefix*."""
        ...

    def copy_object_version(
        self, key: str, version_id: str, dest_bucket: str, dest_key: str
    ) -> None:
        """Copy version *version_id* of *key* of the protected bucket to *dest_bucket*/*dest_key*."""
        ...


@runtime_checkable
class RecoverableInstance(Protocol):
    """**Protocol:** a server that a recovery plan restarts or replaces (`backuppolicy.workflows.recovery`).

    Implementation: `backuppolicy.aws.Ec2Instance`.
    """

    def describe_instance(
        self, instance_id: str, region: str | None = None
    ) -> Mapping[str, Any] | None:
        """The instance *instance_id* as the service describes it; ``None`` if there is none."""
        ...

    def start_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to start."""
        ...

    def reboot_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Ask the instance *instance_id* to reboot."""
        ...

    def terminate_instance(self, instance_id: str, *, region: str | None = None) -> None:
        """Terminate the instance *instance_id*."""
        ...

    def instances_matching(
        self, filters: Sequence[Mapping[str, Any]], *, region: str | None = None
    ) -> list[dict[str, Any]]:
        """The instances that match the service's *filters*."""
        ...

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
        """Launch one instance (the same *client_token*: the same instance); return its id."""
        ...


# -- verify capabilities -------------------------------------------------------------------
# What the checks of `backuppolicy.checks` need from a target: the facts they read and the
# restore-test leftovers swept, one small protocol per family of targets. The checks find a
# target's family with ``isinstance`` (never by a kind string); the backend decides which of its
# points a fact applies to, and every call to its service lives in the backend's own module.


@runtime_checkable
class PointSharing(Protocol):
    """**Protocol:** an AWS target that says whether a point (or its bucket) is shared with everyone.

    Implementations: every `backuppolicy.aws.AwsBackend` target (those without a sharing check
    answer ``None``).
    """

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """The evidence and the issues (empty: not public) of *point*; ``None`` if there is no check.

        *point* ``None`` asks about the target itself (a bucket's public access block).
        """
        ...


@runtime_checkable
class ObjectVersionPoints(Protocol):
    """**Protocol:** a target whose points are object versions or manifests of object versions.

    Implementation: `backuppolicy.aws.S3Bucket`. Heads are the service's own records
    (HeadObject responses, with checksums).
    """

    @property
    def bucket(self) -> str:
        """The protected bucket."""
        ...

    def point_object(self, point: RecoveryPoint) -> tuple[str, str, str | None] | None:
        """``(bucket, key, version_id)`` of the object holding *point*; ``None`` if it has none."""
        ...

    def is_manifest(self, point: RecoveryPoint) -> bool:
        """Whether *point* is a manifest listing object versions (`read_manifest`)."""
        ...

    def read_manifest(self, point: RecoveryPoint) -> Iterator[dict[str, Any]]:
        """The entries (``key``, ``version_id``, ``etag``, ``size``) of the manifest *point*."""
        ...

    def object_version_head(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> Mapping[str, Any]:
        """The head of version *version_id* of *key* (with its stored checksum); raises if none."""
        ...

    def open_object_version(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> Any:
        """A streaming body (``iter_chunks``, ``close``) of version *version_id* of *key*."""
        ...


@runtime_checkable
class ObjectReader(Protocol):
    """**Protocol:** a target that reads objects of its object store, streaming.

    `backuppolicy.checks.probes.S3ObjectProbe` reads the restored objects through it.
    Implementation: `backuppolicy.aws.S3Bucket`.
    """

    def open_object_version(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> Any:
        """A streaming body (``iter_chunks``, ``close``) of *key* (its current version for ``None``).

        Raises:
            LookupError: There is no such object (`backuppolicy.ResourceNotFoundError`).
        """
        ...


@runtime_checkable
class SnapshotPoints(Protocol):
    """**Protocol:** a target whose points are block-storage snapshots restored to volumes.

    Implementations: `backuppolicy.aws.EbsVolume`, `~backuppolicy.aws.Ec2Instance`. Volumes
    are the service's own records (``Volumes[]``).
    """

    def point_snapshot_ids(self, point: RecoveryPoint) -> list[str] | None:
        """The snapshots of *point*; ``None`` if *point* is not made of snapshots."""
        ...

    def describe_volumes(
        self, volume_ids: list[str], *, region: str | None, resource: str = ""
    ) -> list[Mapping[str, Any]]:
        """The volumes *volume_ids* as the service describes them; raises if none exists."""
        ...


@runtime_checkable
class DatabaseSnapshotPoints(Protocol):
    """**Protocol:** a target whose points are database snapshots, proven by their status only.

    Implementations: `backuppolicy.aws.RdsInstance`, `~backuppolicy.aws.AuroraCluster`.
    """

    def is_database_snapshot(self, point: RecoveryPoint) -> bool:
        """Whether *point* is a database snapshot (the service keeps no checksum of it)."""
        ...


@runtime_checkable
class SettingsDrift(Protocol):
    """**Protocol:** a target whose service keeps its own backup settings, compared with the policy.

    Implementations: `backuppolicy.aws.RdsInstance`, `~backuppolicy.aws.AuroraCluster`.
    """

    def drift(self, expected: Any) -> list[Any]:
        """The differences (each with ``describe()``) between the settings and *expected*."""
        ...


@runtime_checkable
class BucketSettings(Protocol):
    """**Protocol:** a bucket target whose protection settings (versioning, Object Lock) are read.

    Implementation: `backuppolicy.aws.S3Bucket` (`~backuppolicy.aws.S3Settings`).
    """

    @property
    def bucket(self) -> str:
        """The protected bucket."""
        ...

    def settings(self) -> Any:
        """The bucket's settings (``bucket``, ``versioning``, ``versioned``, ``object_lock``, ...)."""
        ...


@attrs.frozen
class SweptResource:
    """A restore-test leftover found by `backuppolicy.workflows.verify.sweep_restore_tests`.

    Attributes:
        kind: ``"rds-instance"``, ``"rds-cluster"``, ``"ebs-volume"`` or ``"directory"``.
        id: Identifier (DB instance id, volume id, path).
        created_at: When it was created (timezone-aware).
        action: ``"deleted"``, ``"would delete"`` (dry run) or ``"failed"``.
        region: AWS region, for AWS resources.
        reason: The error, for failures.
    """

    kind: str
    id: str
    created_at: datetime
    action: str
    region: str | None = None
    reason: str = ""

    @classmethod
    def sweep(
        cls,
        kind: str,
        rid: str,
        created: datetime,
        region: str | None,
        *,
        dry_run: bool,
        delete: Callable[[], object],
    ) -> SweptResource:
        """Delete one leftover with *delete* (not on a *dry_run*) and say what happened."""
        if dry_run:
            return cls(kind, rid, created, "would delete", region)
        try:
            delete()
        except ResourceNotFoundError:
            return cls(kind, rid, created, "deleted", region, "already gone")
        except (BackupPolicyError, OSError) as exc:
            return cls(kind, rid, created, "failed", region, f"{type(exc).__name__}: {exc}")
        return cls(kind, rid, created, "deleted", region)


@runtime_checkable
class Sweepable(Protocol):
    """**Protocol:** a target that finds and removes the leftovers of its restore tests.

    Implementations: `backuppolicy.aws.RdsInstance`, `~backuppolicy.aws.AuroraCluster`,
    `~backuppolicy.aws.Ec2Instance`, `~backuppolicy.aws.EbsVolume`, `backuppolicy.local.Directory`.
    """

    def sweep_restore_tests(
        self,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: MutableSet[str],
        temp_dir: str | os.PathLike[str] | None = None,
    ) -> list[SweptResource]:
        """Remove what carries ``isolation.sweep_tag`` and was made before *before* (not on a *dry_run*).

        *seen* holds the scopes already swept in this run (``"rds:eu-west-1"``, a directory):
        skip those and add the ones swept. *temp_dir* is where restored directories are made
        (default: the system's temporary directory); targets that make none ignore it.
        """
        ...


_REGION_SWEEPER: Final = "backuppolicy.aws._sweep:RegionSweeper"
_DIRECTORY_SWEEPER: Final = "backuppolicy.local:Directory"


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def leftover_sweepers(
    regions: Iterable[str] = (), *, session: Any = None, endpoint_url: str | None = None
) -> list[Sweepable]:
    """The sweepers that need no target: each AWS region of *regions*, then restored directories.

    Backends are imported lazily (AWS only when *regions* are given), like the built-in kinds.
    """
    sweepers: list[Sweepable] = []
    regions = list(dict.fromkeys(regions))
    if regions:
        region_sweeper = _resolve(_REGION_SWEEPER)
        sweepers.extend(
            region_sweeper(region, session=session, endpoint_url=endpoint_url) for region in regions
        )
    sweepers.append(_resolve(_DIRECTORY_SWEEPER))  # a class: its sweep is a class method
    return sweepers


_BUILTIN: dict[str, str] = {
    "rds-instance": "backuppolicy.aws.rds:RdsInstance",
    "aurora-cluster": "backuppolicy.aws.rds:AuroraCluster",
    "ec2-instance": "backuppolicy.aws.ec2:Ec2Instance",
    "ebs-volume": "backuppolicy.aws.ec2:EbsVolume",
    "s3-bucket": "backuppolicy.aws.s3:S3Bucket",
    "directory": "backuppolicy.local:Directory",
    "aws-backup": "backuppolicy.aws.awsbackup:AwsBackupTarget",
}
_REGISTERED: dict[str, Callable[..., BackupTarget] | str] = {}
_EXTRAS: dict[str, str] = {"backuppolicy.aws": "boto3 (pip install backuppolicy)"}


def register_target(kind: str, factory: Callable[..., BackupTarget] | str) -> None:
    """Register a target *factory* (a class, a callable, or ``"module:attr"``) under *kind*.

    Example:
        >>> register_target("memory-demo", "backuppolicy.testing:MemoryTarget")
        >>> "memory-demo" in known_target_kinds()
        True
    """
    _REGISTERED[kind] = factory


def known_target_kinds() -> tuple[str, ...]:
    """All kinds that `get_target_class` can resolve, sorted."""
    names = set(_BUILTIN) | set(_REGISTERED)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return tuple(sorted(names))


def get_target_class(kind: str) -> Callable[..., BackupTarget]:
    """Resolve a target *kind* to its factory, importing the backend lazily.

    Raises:
        BackendNotFoundError: No target is registered under *kind* (the message suggests close
            names), or its module cannot be imported (the message names the package to install).
    """
    spec: Callable[..., BackupTarget] | str | None = _REGISTERED.get(kind) or _BUILTIN.get(kind)
    if spec is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                spec = f"{ep.module}:{ep.attr}"
                break
    if spec is None:
        known = known_target_kinds()
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        message = (
            f"target kind: expected one of {', '.join(known)} or a kind registered in the "
            f"entry-point group {ENTRY_POINT_GROUP!r} (got {kind!r}).{hint}"
        )
        raise BackendNotFoundError(message, name=kind, known=known)
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = next((v for k, v in _EXTRAS.items() if module_name.startswith(k)), module_name)
        message = f"target kind {kind!r} needs {module_name!r}, which failed to import: {exc}. Install {package}."
        raise BackendNotFoundError(message, name=kind) from exc
    factory: Callable[..., BackupTarget] = getattr(module, attr)
    return factory


# --------------------------------------------------------------------------------------------
# Other backends reached by name: URL schemes of stores, resolvers of selectors and accounts.

PLUGIN_GROUPS: Final[Mapping[str, str]] = {
    "object-store": "backuppolicy.object_stores",
    "resolver": "backuppolicy.resolvers",
}
"""Plug-in groups and their entry-point groups.

* ``object-store``: URL scheme → a class of plain objects under a bucket prefix (bounded
  reads, listings, uploads and conditional writes). The archive store
  `backuppolicy.local.S3Store` and the testing-log store `backuppolicy.S3LogStore` keep their
  formats and build on ``"s3"`` (`backuppolicy.aws.S3Objects`), which makes every S3 call.
* ``resolver``: name → a resolver of selectors and accounts
  (`backuppolicy.core.resolution.TargetResolver`): ``"aws"`` is the module
  `backuppolicy.aws.discovery`.
"""

_BUILTIN_PLUGINS: dict[str, dict[str, str]] = {
    "object-store": {"s3": "backuppolicy.aws.objects:S3Objects"},
    "resolver": {"aws": "backuppolicy.aws.discovery"},
}
_REGISTERED_PLUGINS: dict[str, dict[str, object]] = {group: {} for group in PLUGIN_GROUPS}


def _check_group(group: str) -> str:
    if group not in PLUGIN_GROUPS:
        raise PolicyError.for_field("group", "one of " + ", ".join(PLUGIN_GROUPS), group)
    return PLUGIN_GROUPS[group]


def register_plugin(group: str, name: str, plugin: object) -> None:
    """Register *plugin* (an object, or ``"module"`` / ``"module:attr"``) as *name* in *group*.

    Example:
        >>> register_plugin("resolver", "doc-example", "backuppolicy.aws.discovery")
        >>> "doc-example" in known_plugins("resolver")
        True

    Raises:
        PolicyError: *group* is not one of `PLUGIN_GROUPS`.
    """
    _check_group(group)
    _REGISTERED_PLUGINS[group][name] = plugin


def known_plugins(group: str) -> tuple[str, ...]:
    """The names that `get_plugin` resolves in *group*, sorted."""
    entry_group = _check_group(group)
    names = set(_BUILTIN_PLUGINS[group]) | set(_REGISTERED_PLUGINS[group])
    names.update(ep.name for ep in entry_points(group=entry_group))
    return tuple(sorted(names))


def get_plugin(group: str, name: str) -> Any:
    """The plug-in *name* of *group*, its module imported on first use.

    Registered plug-ins come first, then the built-in table, then the group's entry points.
    A ``"module"`` entry resolves to the module itself; ``"module:attr"`` (``attr`` may be dotted,
    ``"Class.from_url"``) to that attribute.

    Raises:
        PolicyError: *group* is not one of `PLUGIN_GROUPS`.
        BackendNotFoundError: Nothing is registered as *name* (the message lists what is), or
            its module cannot be imported (the message names the package to install).
    """
    entry_group = _check_group(group)
    spec = _REGISTERED_PLUGINS[group].get(name) or _BUILTIN_PLUGINS[group].get(name)
    if spec is None:
        for ep in entry_points(group=entry_group):
            if ep.name == name:
                spec = ep.value
                break
    if spec is None:
        known = known_plugins(group)
        message = (
            f"{group}: expected one of {', '.join(known) or 'none'} or a name registered in "
            f"the entry-point group {entry_group!r} (got {name!r})."
        )
        raise BackendNotFoundError(message, name=name, known=known)
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name.strip())
    except ImportError as exc:
        package = next((v for k, v in _EXTRAS.items() if module_name.startswith(k)), module_name)
        message = f"{group} {name!r} needs {module_name!r}, which failed to import: {exc}. Install {package}."
        raise BackendNotFoundError(message, name=name) from exc
    for part in attr.strip().split(".") if attr.strip() else ():
        found = getattr(found, part)
    return found
