"""The capability protocols: what the workflows and checks ask of a target, one family at a time.

A `~backuppolicy.core.targets.BackupTarget` may implement any of these small protocols as
well; `backuppolicy.restore`, `backuppolicy.verify` and the sweep find a target's family with
``isinstance`` (never by its kind string), and every call to the backend's service lives in
the backend's own module. `SweptResource` is what a sweep reports.

Every name here is re-exported by `backuppolicy.core.targets`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, MutableSet, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from backuppolicy.core.exceptions import BackupPolicyError, ResourceNotFoundError
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.restoring import RestoreOutcome, RestorePlan

if TYPE_CHECKING:
    from backuppolicy.core.concurrency import AdaptiveLimit
    from backuppolicy.core.targets import IsolationProfile, RestoredResource

__all__ = [
    "TAG_RESTORE_ID",
    "AdaptiveDeletes",
    "BlockDigest",
    "BucketSettings",
    "BucketSettingsDrift",
    "DatabaseSnapshotPoints",
    "KmsKeyComparison",
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
    "SettingsDrift",
    "SnapshotBlocks",
    "SnapshotPoints",
    "StagedRestore",
    "Sweepable",
    "SweptResource",
    "encryption_mismatch",
    "kms_key_name",
]


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


@runtime_checkable
class BucketSettingsDrift(Protocol):
    """**Protocol:** a bucket whose ``encryption`` and ``block_public_access`` are checked and enforced.

    Implementation: `backuppolicy.aws.S3Bucket` (`~backuppolicy.aws.S3Bucket.bucket_drift`,
    `~backuppolicy.aws.S3Bucket.enforce_bucket_settings`).
    """

    def bucket_drift(self, expected: Mapping[str, Any]) -> list[Any]:
        """The differences (each with ``describe()``) between the bucket and *expected*."""
        ...

    def enforce_bucket_settings(
        self, expected: Mapping[str, Any], *, apply: bool = False
    ) -> list[Any]:
        """The changes that reach *expected*; made only when *apply* is true (idempotent)."""
        ...


@runtime_checkable
class KmsKeyComparison(Protocol):
    """**Protocol:** a target that tells whether two KMS key names are the same key.

    A key id, a key ARN, an alias name and an alias ARN can all name one key; comparing them
    needs KMS (``DescribeKey``). Implementation: every `backuppolicy.aws.AwsBackend` target.
    """

    def same_kms_key(self, expected: str, actual: str) -> bool:
        """Whether *expected* and *actual* name the same KMS key."""
        ...


def kms_key_name(key: str) -> str:
    """*key* without what varies between its names: a key ARN gives its key id, an alias ARN its alias.

    Example:
        >>> kms_key_name("arn:aws:kms:eu-west-2:123456789012:key/1234abcd-12ab")
        '1234abcd-12ab'
        >>> kms_key_name("arn:aws:kms:eu-west-2:123456789012:alias/backups")
        'alias/backups'
    """
    if key.startswith("arn:") and key.count(":") >= 5:  # noqa: PLR2004
        resource = key.split(":", 5)[5]
        return resource.removeprefix("key/")
    return key


def encryption_mismatch(
    expected: str | None,
    expected_key: str | None,
    actual: str | None,
    actual_key: str | None,
    same_key: Callable[[str, str], bool] | None = None,
) -> str | None:
    """Why encryption *actual* (with *actual_key*) does not meet *expected*, or ``None`` if it does.

    *expected* is a policy's ``encryption``: ``"AES256"`` accepts any server-side encryption
    (SSE-S3 or SSE-KMS); ``"aws:kms"`` needs SSE-KMS (``aws:kms`` or ``aws:kms:dsse``) and, with
    *expected_key*, that key (compared with *same_key*, else by `kms_key_name`);
    ``"aws:kms:dsse"`` needs dual-layer SSE-KMS. ``None`` accepts any encryption.

    Example:
        >>> encryption_mismatch("aws:kms", None, "AES256", None)
        'encryption: expected aws:kms, actual AES256'
        >>> encryption_mismatch("AES256", None, "aws:kms", "k") is None
        True
    """
    if not actual:
        return f"encryption: expected {expected or 'any'}, actual none"
    kms = {"aws:kms", "aws:kms:dsse"}
    if (expected == "aws:kms" and actual not in kms) or (
        expected == "aws:kms:dsse" and actual != "aws:kms:dsse"
    ):
        return f"encryption: expected {expected}, actual {actual}"
    if expected in kms and expected_key:
        if not actual_key:
            return f"kms_key_id: expected {expected_key}, actual none (the service's default key)"
        same = (
            same_key(expected_key, actual_key)
            if same_key is not None
            else kms_key_name(expected_key) == kms_key_name(actual_key)
        )
        if not same:
            return f"kms_key_id: expected {expected_key}, actual {actual_key}"
    return None


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


# -- manifests with checksums (restore-test fingerprints) ----------------------------------


@attrs.frozen
class ManifestEntry:
    """One file or object that a point's own manifest lists.

    Attributes:
        path: Where it is in a restored copy, relative to the restore's endpoint (the restored
            directory, the ``s3://`` scratch prefix).
        sha256: Its checksum as the manifest records it (``"sha256:<hex>"``); ``None`` when
            the manifest records none: the backed-up content at *source* is then read.
        size: Its size in bytes, if the manifest records it.
        source: ``(bucket, key, version_id)`` of the backed-up object, for manifests without a
            SHA-256 (read through `ManifestedPoints.open_backed_up`).
    """

    path: str
    sha256: str | None = None
    size: int | None = None
    source: tuple[str, str, str | None] | None = None


@runtime_checkable
class ManifestedPoints(Protocol):
    """**Protocol:** a target whose points carry a manifest of their content, with checksums.

    A restore test compares the restored copy with it (every entry, or a sample:
    `backuppolicy.checks._declared.ManifestProbe`). Implementations:
    `backuppolicy.local.Directory` (per-file SHA-256 in the archive's ``manifest.json``),
    `backuppolicy.aws.S3Bucket` (manifest points; versions read from the backup itself).
    """

    def manifest_entries(self, point: RecoveryPoint) -> list[ManifestEntry]:
        """Every file or object of *point*'s manifest (files only: no directories or links)."""
        ...

    def open_backed_up(self, entry: ManifestEntry) -> Any:
        """A streaming body (``iter_chunks``, ``close``) of the backed-up content of *entry*."""
        ...

    def open_restored(self, endpoint: object, path: str) -> Any:
        """A streaming body (``iter_chunks``, ``close``) of *path* in a restored copy at *endpoint*.

        Raises:
            LookupError: It is not there (or `FileNotFoundError`, for a file).
        """
        ...


# -- the data of snapshots, block by block (integrity checks) -------------------------------


@attrs.frozen
class BlockDigest:
    """One block of a snapshot as read: the SHA-256 of its data and the checksum the service keeps.

    Attributes:
        index: The block's index in the snapshot.
        sha256: Hex SHA-256 of the data read.
        length: Bytes read.
        stored_checksum: The checksum the service returned with the block (base64), if any.
        stored_algorithm: Its algorithm (``"SHA256"``), if any.
    """

    index: int
    sha256: str
    length: int
    stored_checksum: str | None = None
    stored_algorithm: str | None = None

    @property
    def matches_stored(self) -> bool | None:
        """Whether the data matches the stored SHA-256 checksum; ``None`` without one."""
        if not self.stored_checksum or (self.stored_algorithm or "").upper() != "SHA256":
            return None
        import base64  # noqa: PLC0415 - only here

        try:
            stored = base64.b64decode(self.stored_checksum, validate=True).hex()
        except ValueError:
            return False
        return stored == self.sha256


@runtime_checkable
class SnapshotBlocks(Protocol):
    """**Protocol:** a target whose snapshots can be read block by block (the EBS direct APIs).

    `backuppolicy.checks.integrity.IntegrityCheck` compares a snapshot with its copy in another
    region through it: the block lists, and the SHA-256 of a sample of blocks. Block tokens
    differ between a snapshot and its copy; only indexes and data are compared.

    Implementations: `backuppolicy.aws.EbsVolume`, `~backuppolicy.aws.Ec2Instance`.
    """

    def snapshot_blocks(self, snapshot_id: str, *, region: str | None) -> Iterator[tuple[int, str]]:
        """``(block index, block token)`` of every block the snapshot holds, by index, streaming."""
        ...

    def read_snapshot_block(
        self, snapshot_id: str, index: int, token: str, *, region: str | None
    ) -> BlockDigest:
        """Read one block and hash it (SHA-256), with the checksum the service returned."""
        ...


# -- the run lease: one `backuppolicy.run` at a time -----------------------------------------
# Where the testing log lives, the lease lives: a file next to a JSON-lines log
# (`backuppolicy.local.FileLease`), an object next to an S3 log (`backuppolicy.aws.S3Lease`).

_MAX_LEASE_BYTES: Final = 4096


@attrs.frozen
class LeaseRecord:
    """Who holds a run lease, since when and until when (what a lease object or file holds).

    Attributes:
        owner: The holder: ``user@host pid=... run=<uuid>``.
        acquired_at: When it was taken (timezone-aware).
        expires_at: When it becomes stale and may be taken over (timezone-aware).
    """

    owner: str
    acquired_at: datetime
    expires_at: datetime

    def stale(self, now: datetime) -> bool:
        """Whether the lease has expired at *now* (its holder is presumed dead)."""
        return self.expires_at <= now

    def to_bytes(self) -> bytes:
        """The JSON stored in the lease file or object."""
        data = {
            "owner": self.owner,
            "acquired_at": self.acquired_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> LeaseRecord | None:
        """Parse a stored lease; ``None`` when it is not one (damaged, torn or too large)."""
        if len(raw) > _MAX_LEASE_BYTES:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
            record = cls(
                owner=str(data["owner"]),
                acquired_at=datetime.fromisoformat(data["acquired_at"]),
                expires_at=datetime.fromisoformat(data["expires_at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if record.acquired_at.tzinfo is None or record.expires_at.tzinfo is None:
            return None
        return record


@runtime_checkable
class Lease(Protocol):
    """**Protocol:** the lock that keeps two runs of a policy apart (`backuppolicy.run`).

    ``acquire`` takes the lease with an atomic create (``O_EXCL`` under a file lock;
    ``If-None-Match: *`` on S3). A lease whose ``expires_at`` has passed is stale: its holder is
    presumed dead and the lease is taken over with an atomic replace of exactly the record
    that was read (the file lock; ``If-Match`` on its ETag), so of two runs that find the same
    stale lease only one takes it. ``release`` removes the lease only while it is still ours.

    Implementations: `backuppolicy.local.FileLease`, `backuppolicy.aws.S3Lease`.
    """

    @property
    def where(self) -> str:
        """Where the lease lives (a path, ``s3://bucket/key``), for messages."""
        ...

    def acquire(self, *, owner: str, now: datetime, ttl: timedelta) -> LeaseRecord:
        """Take the lease for *owner* until ``now + ttl``; returns the record written.

        Raises:
            LeaseHeldError: Another owner holds a lease that is not stale at *now*.
        """
        ...

    def release(self) -> bool:
        """Give the lease back; ``False`` when it is no longer ours (taken over as stale)."""
        ...


# -- restores in stages ----------------------------------------------------------------------
# A restore that takes longer than one call may run (Lambda's 15 minutes): the Step Functions
# state machine of `backuppolicy.aws.cloudformation` starts it, polls it and tears it down in
# separate invocations (`backuppolicy.workflows.restore_steps`).


@runtime_checkable
class StagedRestore(Protocol):
    """**Protocol:** a target whose restore tests can start, be polled and be torn down apart.

    The three calls may run in different processes: everything they share is the restore id
    that `start_restore` returns (and the point and profile, which the caller passes again).
    `teardown_restore` deletes only what carries that restore id (`TAG_RESTORE_ID`), so a
    forged id deletes nothing that this restore did not make.

    Implementations: `backuppolicy.aws.RdsInstance`, `~backuppolicy.aws.AuroraCluster`.
    """

    def start_restore(self, point: RecoveryPoint, into: IsolationProfile | None = None) -> str:
        """Start restoring *point* into the isolation profile *into*; return the restore id."""
        ...

    def restore_ready(
        self, restore_id: str, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> RestoredResource | None:
        """The restored resource once it is usable; ``None`` while it is still being made.

        Raises:
            BackendError: The restore failed (the resource ended in a failed state).
        """
        ...

    def teardown_restore(
        self, restore_id: str, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> None:
        """Delete what the restore *restore_id* made (nothing else); a no-op when it is gone."""
        ...


@runtime_checkable
class AdaptiveDeletes(Protocol):
    """**Protocol:** a target whose deletes share an adaptive concurrency limit (AIMD).

    `backuppolicy.apply` runs each planned deletion of such a target inside a slot of
    ``delete_limit(point)``: the fan-out grows while the service answers and halves when it
    throttles. Implementations: `backuppolicy.aws.rds.RdsInstance`,
    `backuppolicy.aws.rds.AuroraCluster` (one limit per region, shared by every target there).
    """

    def delete_limit(self, point: RecoveryPoint) -> AdaptiveLimit:
        """The limit the deletion of *point* runs under."""
        ...
