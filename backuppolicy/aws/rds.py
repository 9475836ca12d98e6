"""RDS DB instances and Aurora clusters as backup targets.

`RdsInstance` and `AuroraCluster` back up with manual snapshots named
``bp-<target>-<UTC stamp>`` (or ``bp-<target>-<token>``) and tagged with the
ownership tags of `backuppolicy.core.model`; they list manual *and* automated snapshots
(automated ones are ``managed=False``: RDS expires them itself), copy snapshots to
another region (re-encrypting with the destination's KMS key), delete only what
they own, restore into an isolation profile and tear the restored database down,
and read, check and enforce the instance's own backup settings
(`BackupSettings`: retention days, backup window, copying tags to snapshots).

The two targets share one implementation, parametrised by the names of the RDS
API calls (``describe_db_snapshots`` or ``describe_db_cluster_snapshots`` ...): the
parts live in private modules, one idea each (`backuppolicy.aws._rds_base`: API names,
tags and points; ``_rds_snapshots``; ``_rds_settings``; ``_rds_restore``). This module
holds the kind: the two targets, building them from a spec, their IAM actions and the
sweep of restored databases.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping, MutableSet
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._iam_statements import (
    ACCOUNT,
    PARTITION,
    REGION,
    REGIONS,
    RESTORE_PREFIX,
    SOURCE_ACCOUNT,
    Grant,
    by_workflow,
    hold_tags,
    owned,
    swept,
)
from backuppolicy.aws._offsite import OffsiteCopies, offsite_accounts, own_copy_regions
from backuppolicy.aws._rds_base import CLUSTER_API, INSTANCE_API
from backuppolicy.aws._rds_restore import AuroraRestores, InstanceRestores, RdsRestores
from backuppolicy.aws._rds_settings import BackupSettings, BackupWindow, Drift, RdsSettings
from backuppolicy.aws._rds_snapshots import RdsSnapshots
from backuppolicy.core.exceptions import (
    ResourceNotFoundError,
)
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.targets import (
    AwsBackupMapping,
    IsolationProfile,
    SweptResource,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = ["AuroraCluster", "BackupSettings", "BackupWindow", "Drift", "RdsInstance"]


def _tags_and_created(item: Mapping[str, Any], key: str) -> tuple[dict[str, str], datetime | None]:
    tags = {str(t.get("Key")): str(t.get("Value")) for t in item.get("TagList") or ()}
    created = item.get(key)
    if not isinstance(created, datetime):
        return tags, None
    return tags, created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def sweep_databases(
    backend: AwsBackend,
    region: str,
    isolation: IsolationProfile,
    before: datetime,
    *,
    dry_run: bool,
) -> list[SweptResource]:
    """Restore-test DB instances and clusters in *region*: the sweep tag, made before *before*."""
    swept: list[SweptResource] = []
    for page in backend.paginate("rds", "describe_db_instances", region=region):
        for item in page.get("DBInstances", ()):
            tags, created = _tags_and_created(item, "InstanceCreateTime")
            rid = str(item["DBInstanceIdentifier"])
            if isolation.sweep_tag not in tags or created is None or created >= before:
                continue
            if item.get("DBClusterIdentifier"):
                continue  # an Aurora member: removed with its cluster below
            swept.append(
                SweptResource.sweep(
                    "rds-instance",
                    rid,
                    created,
                    region,
                    dry_run=dry_run,
                    delete=functools.partial(
                        backend.call,
                        "rds",
                        "delete_db_instance",
                        resource=rid,
                        region=region,
                        DBInstanceIdentifier=rid,
                        SkipFinalSnapshot=True,
                        DeleteAutomatedBackups=True,
                    ),
                )
            )
    for page in backend.paginate("rds", "describe_db_clusters", region=region):
        for item in page.get("DBClusters", ()):
            tags, created = _tags_and_created(item, "ClusterCreateTime")
            cid = str(item["DBClusterIdentifier"])
            if isolation.sweep_tag not in tags or created is None or created >= before:
                continue
            members = [str(m["DBInstanceIdentifier"]) for m in item.get("DBClusterMembers", ())]

            def delete_cluster(cid: str = cid, members: list[str] = members) -> None:
                for member in members:
                    with contextlib.suppress(ResourceNotFoundError):
                        backend.call(
                            "rds",
                            "delete_db_instance",
                            resource=member,
                            region=region,
                            DBInstanceIdentifier=member,
                            SkipFinalSnapshot=True,
                        )
                backend.call(
                    "rds",
                    "delete_db_cluster",
                    resource=cid,
                    region=region,
                    DBClusterIdentifier=cid,
                    SkipFinalSnapshot=True,
                )

            swept.append(
                SweptResource.sweep(
                    "rds-cluster", cid, created, region, dry_run=dry_run, delete=delete_cluster
                )
            )
    return swept


def _iam_share_grants(*, cluster: bool) -> list[Grant]:
    """Production's part of a copy to another account: share its snapshots, read their keys."""
    snap = "cluster-snapshot" if cluster else "snapshot"
    word = "DBCluster" if cluster else "DB"
    return [
        Grant(
            ("backup",),
            (f"rds:Modify{word}SnapshotAttribute",),
            (f"arn:{PARTITION}:rds:{REGION}:{ACCOUNT}:{snap}:*",),
            owned(),
        ),
        Grant(
            ("backup",), ("kms:DescribeKey",), (f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/*",)
        ),
    ]


def _iam_backup_account_grants(spec: TargetSpec, *, cluster: bool) -> list[Grant]:
    """The backup account's part: copy in (with its key), tag, list, prune, restore-test."""
    snap = "cluster-snapshot" if cluster else "snapshot"
    word = "DBCluster" if cluster else "DB"
    mine = f"arn:{PARTITION}:rds:{REGION}:{ACCOUNT}:{snap}:*"
    theirs = f"arn:{PARTITION}:rds:*:{SOURCE_ACCOUNT}:{snap}:*"
    kept = [
        g for g in _iam_grants(spec, cluster=cluster) if g.workflows != ("backup",) and not g.copies
    ]
    return [
        *kept,
        Grant(("backup",), (f"rds:Copy{word}Snapshot",), (mine, theirs)),
        Grant(("backup",), ("rds:AddTagsToResource",), (mine,)),
        # The shared snapshot is encrypted with production's key: the copying account needs
        # its use (production's key policy must allow the backup account too).
        Grant(
            ("backup",),
            ("kms:CreateGrant",),
            (f"arn:{PARTITION}:kms:*:{SOURCE_ACCOUNT}:key/*",),
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        Grant(
            ("backup",),
            ("kms:Decrypt", "kms:DescribeKey"),
            (f"arn:{PARTITION}:kms:*:{SOURCE_ACCOUNT}:key/*",),
        ),
    ]


def _iam_grants(spec: TargetSpec, *, cluster: bool) -> list[Grant]:
    """What a DB instance's or cluster's workflows need (placeholders: `backuppolicy.aws.iam`)."""
    base = f"arn:{PARTITION}:rds"
    src = f"{base}:{REGION}:{ACCOUNT}"
    snap = "cluster-snapshot" if cluster else "snapshot"
    snaps = (f"{base}:{REGIONS}:{ACCOUNT}:{snap}:*",)
    word = "DBCluster" if cluster else "DB"
    resource = (
        f"{src}:cluster:{spec.settings['db_cluster_id']}"
        if cluster
        else f"{src}:db:{spec.settings['db_instance_id']}"
    )
    restored_db = f"{src}:db:{RESTORE_PREFIX}*"
    grants = [
        Grant((), (f"rds:Describe{word}Snapshots",), (resource, *snaps)),
        Grant(("backup",), (f"rds:Create{word}Snapshot",), (resource, f"{src}:{snap}:*")),
        Grant(("backup",), ("rds:AddTagsToResource",), snaps),
        Grant(("backup",), (f"rds:Copy{word}Snapshot",), snaps, copies=True),
        Grant(("prune",), (f"rds:Delete{word}Snapshot",), snaps, owned()),
        # A legal hold is the hold tag alone (RDS cannot lock a snapshot): only that tag may be
        # put or removed, on any snapshot of the target (a hold may fall on one made by hand).
        Grant(
            ("holds",),
            ("rds:AddTagsToResource", "rds:RemoveTagsFromResource"),
            snaps,
            hold_tags(),
        ),
        Grant(
            ("verify",),
            ("rds:DescribeDBClusters" if cluster else "rds:DescribeDBInstances",),
            (resource,),
        ),
    ]
    if cluster:
        restored = f"{src}:cluster:{RESTORE_PREFIX}*"
        grants += [
            Grant(
                ("restore-test",),
                ("rds:RestoreDBClusterFromSnapshot",),
                (
                    restored,
                    f"{src}:{snap}:*",
                    f"{src}:subgrp:*",
                    f"{src}:cluster-pg:*",
                    f"{src}:og:*",
                ),
            ),
            Grant(
                ("restore-test",),
                ("rds:CreateDBInstance",),
                (restored_db, restored, f"{src}:subgrp:*", f"{src}:pg:*", f"{src}:og:*"),
            ),
            Grant(("restore-test",), ("rds:AddTagsToResource",), (restored, restored_db)),
            Grant(
                ("restore-test",),
                ("rds:DescribeDBClusters", "rds:DescribeDBInstances"),
                (restored, restored_db),
            ),
            # DeleteDBCluster requires a cluster-snapshot resource (its final snapshot); ours
            # skip it (SkipFinalSnapshot), so the name can only be one of a restore.
            Grant(
                ("restore-test",),
                ("rds:DeleteDBCluster", "rds:DeleteDBInstance"),
                (restored, restored_db, f"{src}:cluster-snapshot:{RESTORE_PREFIX}*"),
                swept(),
            ),
        ]
    else:
        grants += [
            Grant(
                ("restore-test",),
                ("rds:RestoreDBInstanceFromDBSnapshot",),
                (restored_db, f"{src}:{snap}:*", f"{src}:subgrp:*", f"{src}:pg:*", f"{src}:og:*"),
            ),
            Grant(("restore-test",), ("rds:AddTagsToResource",), (restored_db,)),
            Grant(("restore-test",), ("rds:DescribeDBInstances",), (restored_db,)),
            Grant(("restore-test",), ("rds:DeleteDBInstance",), (restored_db,), swept()),
        ]
    return grants


def _cluster_restore_overrides(profile: IsolationProfile) -> dict[str, str]:
    """AWS Backup's restore metadata for a restore-tested database: *profile*'s network."""
    out: dict[str, str] = {}
    if profile.subnet_group:
        out["dbSubnetGroupName"] = profile.subnet_group
    if profile.security_group_ids:
        out["vpcSecurityGroupIds"] = json.dumps(list(profile.security_group_ids))
    return out


def _instance_restore_overrides(profile: IsolationProfile) -> dict[str, str]:
    """`_cluster_restore_overrides`, and *profile*'s small instance class."""
    return {**_cluster_restore_overrides(profile), "dbInstanceClass": profile.instance_class}


class _RdsTarget(OffsiteCopies, RdsSnapshots, RdsSettings, RdsRestores):
    """Everything `RdsInstance` and `AuroraCluster` share; subclasses set ``_api`` and restores."""

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

    iam_copy_keys: ClassVar[bool] = True
    """Copies are encrypted with the copy tiers' ``kms_key_id``: `iam_policy` grants its use."""

    _setting: ClassVar[str]  # the setting that names the database

    hold_deny_installed: bool = False
    """Whether the deny statement of `backuppolicy.aws.iam.hold_deny_policy` is installed where
    it binds every principal of the account (setting ``hold_deny_installed``); the audit reports
    each held snapshot as tag-only until it is."""

    # -- holds enforced below the library (`backuppolicy.core.locks.HoldEnforcing`) ---------

    def enforce_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Nothing to lock: RDS has no snapshot lock. The IAM deny statement enforces the tag."""
        return point

    def release_enforcement(
        self,
        point: RecoveryPoint,
        tier_lock: PointLock | None,
    ) -> None:
        """Nothing to lift (see `enforce_hold`)."""

    def hold_gaps(self, point: RecoveryPoint) -> list[str]:
        """A held snapshot is tag-only unless the hold deny statement is declared installed."""
        if point.legal_hold is None or self.hold_deny_installed:
            return []
        gap = (
            "RDS cannot lock snapshots: only the hold tag protects it; install the deny "
            "statement of `backuppolicy export iam --holds` (SCP or permissions boundary) and "
            "set hold_deny_installed: true"
        )
        return [gap]

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
        """The target of *spec*: its database, its region (default *region*), its copy regions.

        The copy regions are those of the policy's copy tiers (every tier after the first) in
        this account; the copy tiers in other accounts (``account``) are listed, pruned and
        copied into through their roles (`backuppolicy.aws._offsite`).
        """
        settings = spec.settings
        target = cls(
            settings[cls._setting],
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=settings.get("region") or region,
            copy_regions=own_copy_regions(policy, spec),
        )
        target.hold_deny_installed = bool(settings.get("hold_deny_installed", False))
        return target.with_offsite(offsite_accounts(policy, spec))

    def _sibling(self, session: boto3.Session, region: str) -> Self:
        """This target in another account (*session*) and *region*: lists, deletes, restores there."""
        sibling = type(self)(
            self.resource_id,
            name=self.name,
            policy=self.policy,
            session=session,
            endpoint_url=self.endpoint_url,
            region=region,
            max_workers=self.max_workers,
            clock=self._clock,
            sleep=self._sleep,
            poll_interval=self.poll_interval,
            restore_timeout=self.restore_timeout,
        )
        sibling.hold_deny_installed = self.hold_deny_installed
        return sibling

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, object]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in)."""
        return by_workflow(_iam_grants(spec, cluster=cls._api is CLUSTER_API))

    @classmethod
    def iam_offsite_actions(cls, spec: TargetSpec) -> dict[str, dict[str, list[dict[str, object]]]]:
        """The statements for copy tiers in another account, per side (``production``, ``backup``).

        Production shares its own snapshots and reads its keys; the backup account copies in,
        tags, lists, prunes and restore-tests its copies (``ACCOUNT`` and ``REGION`` are the
        backup account's, ``SOURCE_ACCOUNT`` production's).
        """
        cluster = cls._api is CLUSTER_API
        return {
            "production": by_workflow(_iam_share_grants(cluster=cluster)),
            "backup": by_workflow(_iam_backup_account_grants(spec, cluster=cluster)),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}({self.resource_id!r}, name={self.name!r}, region={self.region!r})>"

    def sweep_restore_tests(
        self,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: MutableSet[str],
        temp_dir: str | os.PathLike[str] | None = None,  # noqa: ARG002 - no directories here
    ) -> list[SweptResource]:
        """Remove restored DB instances and clusters left behind (sweep tag, made before *before*)."""
        swept: list[SweptResource] = []
        for region in dict.fromkeys((self.region, *self.copy_regions)):
            if f"rds:{region}" in seen:
                continue
            seen.add(f"rds:{region}")
            swept.extend(sweep_databases(self, region, isolation, before, dry_run=dry_run))
        return swept


class RdsInstance(InstanceRestores, _RdsTarget):
    """An RDS DB instance, backed up with manual DB snapshots.

    Example:
        >>> from backuppolicy.aws.rds import RdsInstance
        >>> db = RdsInstance("orders-db", region="eu-west-1")
        >>> db.name, db.kind, db.policy
        ('orders-db', 'rds-instance', 'default')

    Args:
        db_instance_id: The ``DBInstanceIdentifier``.
        name: Target name in the policy (default: *db_instance_id*); the points' ``target``.
        policy: Policy name written to and checked in the ownership tag.
        session: A `boto3.Session`; default: a new default session.
        region: AWS region of the instance; default: the session's.
        endpoint_url: Endpoint for every client (moto server, LocalStack).
        clients: Ready clients by service (``{"rds": client}``), for the target's region.
        config: Extra botocore `Config` for every client.
        retry: The `RetryPolicy` for every call.
        copy_regions: Regions whose copies `list_points` lists too (the off-site tier).
        max_workers: Most concurrent deletes in `delete_many`; ``None`` (default): adaptive,
            8 at first, up to 32 while RDS does not throttle (`backuppolicy.core.concurrency`).
        clock: Returns "now" (timezone-aware); snapshot names and restore deadlines use it.
        sleep: Waits between polls of a restore (inject a no-op in tests).
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored database to become available.

    Attributes:
        resource_id: The ``DBInstanceIdentifier``.
        policy: Policy name of the ownership tag.
        copy_regions: Regions listed besides the target's own.
        max_workers: Most concurrent deletes of `delete_many` (``None``: adaptive).
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored database.
    """

    _api = INSTANCE_API
    _restored_kind = "rds-instance"
    _setting = "db_instance_id"
    database_noun = "instance"

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:  # noqa: ARG003 - the same for every spec
        """AWS Backup protects DB instances as ``RDS``; restore tests use the isolated network and class."""
        return AwsBackupMapping(
            "arn:{partition}:rds:{region}:{account}:db:{db_instance_id}",
            "RDS",
            _instance_restore_overrides,
        )

    def __init__(
        self,
        db_instance_id: str,
        *,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        copy_regions: Iterable[str] = (),
        max_workers: int | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_interval: float = 30.0,
        restore_timeout: float = 3600.0,
    ) -> None:
        super().__init__(
            db_instance_id,
            name=name,
            policy=policy,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
            copy_regions=copy_regions,
            max_workers=max_workers,
            clock=clock,
            sleep=sleep,
            poll_interval=poll_interval,
            restore_timeout=restore_timeout,
        )


class AuroraCluster(AuroraRestores, _RdsTarget):
    """An Aurora DB cluster, backed up with manual DB cluster snapshots.

    Restores create a cluster and one DB instance in it (Aurora needs an instance to
    serve); the profile's ``instance_class`` is used, except that the profile default
    ``db.t3.micro``, which Aurora does not offer, becomes ``db.t3.medium``. Aurora keeps
    automated backups for 1 to 35 days (0 is refused).

    Example:
        >>> from backuppolicy.aws.rds import AuroraCluster
        >>> cluster = AuroraCluster("orders", region="eu-west-1")
        >>> cluster.kind
        'aurora-cluster'

    Args:
        cluster_id: The ``DBClusterIdentifier``.
        name: Target name in the policy (default: *cluster_id*).
        policy: Policy name of the ownership tag.
        session: A `boto3.Session`.
        region: AWS region of the cluster.
        endpoint_url: Endpoint for every client.
        clients: Ready clients by service.
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        copy_regions: Regions whose copies `list_points` lists too.
        max_workers: Most concurrent deletes in `delete_many`; ``None`` (default): adaptive,
            8 at first, up to 32 while RDS does not throttle (`backuppolicy.core.concurrency`).
        clock: Returns "now" (timezone-aware).
        sleep: Waits between polls of a restore.
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored cluster and its instance.

    Attributes:
        resource_id: The ``DBClusterIdentifier``.
        policy: Policy name of the ownership tag.
        copy_regions: Regions listed besides the target's own.
        max_workers: Most concurrent deletes of `delete_many` (``None``: adaptive).
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored cluster.
    """

    _api = CLUSTER_API
    _restored_kind = "aurora-cluster"
    _setting = "db_cluster_id"
    database_noun = "cluster"

    @classmethod
    def aws_backup(cls, spec: TargetSpec) -> AwsBackupMapping:  # noqa: ARG003 - the same for every spec
        """AWS Backup protects Aurora clusters as ``Aurora``; restore tests use the isolated network."""
        return AwsBackupMapping(
            "arn:{partition}:rds:{region}:{account}:cluster:{db_cluster_id}",
            "Aurora",
            _cluster_restore_overrides,
        )

    def __init__(
        self,
        cluster_id: str,
        *,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        copy_regions: Iterable[str] = (),
        max_workers: int | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_interval: float = 30.0,
        restore_timeout: float = 3600.0,
    ) -> None:
        super().__init__(
            cluster_id,
            name=name,
            policy=policy,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
            copy_regions=copy_regions,
            max_workers=max_workers,
            clock=clock,
            sleep=sleep,
            poll_interval=poll_interval,
            restore_timeout=restore_timeout,
        )
