"""Restores of the RDS targets: into an isolation profile, to a point in time, for recovery.

`RdsRestores` is the mixin of both targets: the restore workflow (start, wait until
available, yield, tear down even on error) and the ``RestorableDatabase`` operations of
the recovery workflows. `InstanceRestores` and `AuroraRestores` start and tear down a
DB instance, or an Aurora cluster with one instance in it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from backuppolicy.aws._rds_base import RdsBase, encode_tag, identifier, region_of
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_TARGET,
    RecoveryPoint,
    ensure_aware,
)
from backuppolicy.core.targets import (
    TAG_RESTORE_ID,
    IsolationProfile,
    RestoredResource,
)

__all__ = ["AuroraRestores", "InstanceRestores", "RdsRestores"]

_DB_ID_MAX = 63
_DEFAULT_INSTANCE_CLASS = IsolationProfile().instance_class


def _db_id(base: str, suffix: str) -> str:
    """A valid RDS identifier ``<base>-<suffix>`` of at most 63 characters."""
    suffix = re.sub(r"-+", "-", suffix).strip("-")
    room = _DB_ID_MAX - len(suffix) - 1
    head = re.sub(r"-+", "-", base[:room]).rstrip("-")
    return f"{head}-{suffix}"


def _restore_network(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The subnet group and security groups of a restored database, as RDS parameters."""
    network: dict[str, Any] = {}
    if settings["subnet_group"]:
        network["DBSubnetGroupName"] = settings["subnet_group"]
    if settings["security_group_ids"]:
        network["VpcSecurityGroupIds"] = list(settings["security_group_ids"])
    return network


class RdsRestores(RdsBase):
    """Restores the instance or cluster; the kinds start and tear down their own databases."""

    _restored_kind: str

    database_noun: str
    """What the database is called in restore plans (``"instance"``, ``"cluster"``)."""

    @property
    def database_id_param(self) -> str:
        """Name of the identifier in the RDS API (``"DBInstanceIdentifier"``)."""
        return self._api.resource_param

    def restore_identifier(self, suffix: str) -> str:
        """A valid RDS identifier ``<resource_id>-<suffix>`` of at most 63 characters."""
        return _db_id(self.resource_id, suffix)

    def describe_database(
        self, identifier: str, region: str | None = None
    ) -> dict[str, Any] | None:
        """The database *identifier* as RDS describes it; ``None`` if it does not exist."""
        api = self._api
        try:
            found = self.call(
                "rds",
                api.describe_resource,
                resource=identifier,
                region=region,
                **{api.resource_param: identifier},
            )
        except ResourceNotFoundError:
            return None
        items: list[dict[str, Any]] = found.get(api.resources_key, [])
        return items[0] if items else None

    def database_status(self, item: Mapping[str, Any]) -> str | None:
        """The status of a described database (``"available"``), as RDS spells it."""
        status = item.get(self._api.resource_status_key)
        return None if status is None else str(status)

    def tag_database(
        self, identifier: str, arn: str, tags: Mapping[str, str], *, region: str
    ) -> None:
        """Add *tags* to the database *identifier* (of ARN *arn*)."""
        self.call(
            "rds",
            "add_tags_to_resource",
            resource=identifier,
            region=region,
            ResourceName=arn,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    def rename_database(self, identifier: str, new_identifier: str, *, region: str) -> None:
        """Rename the database *identifier* to *new_identifier*, immediately."""
        api = self._api
        self.call(
            "rds",
            api.modify_resource,
            resource=identifier,
            region=region,
            ApplyImmediately=True,
            **{api.resource_param: identifier, api.new_resource_param: new_identifier},
        )

    def check_restorable(self, point: RecoveryPoint | None) -> None:
        """Refuse *point* before a restore into this account starts (off-site copies refuse)."""

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
        """Start creating database *identifier* from *point* (or the protected one's state *at*)."""
        raise NotImplementedError  # pragma: no cover - each kind restores its own way

    # ----------------------------------------------------------------- restore

    def _restore_id(self, profile: IsolationProfile, max_length: int = _DB_ID_MAX) -> str:
        suffix = uuid.uuid4().hex[:8]
        base = identifier(f"{profile.name_prefix}{self.name}", max_length=max_length)
        base = base[: max_length - len(suffix) - 1].rstrip("-")
        return f"{base}-{suffix}"

    def _restore_tags(self, profile: IsolationProfile, restore_id: str) -> list[dict[str, str]]:
        tags = {
            **dict(profile.tags),
            profile.sweep_tag: self._now().isoformat(),
            TAG_RESTORE_ID: restore_id,
            TAG_TARGET: encode_tag(self.name, field="name"),
        }
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    @staticmethod
    def _network(profile: IsolationProfile) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if profile.subnet_group:
            params["DBSubnetGroupName"] = profile.subnet_group
        if profile.security_group_ids:
            params["VpcSecurityGroupIds"] = list(profile.security_group_ids)
        return params

    def _wait_available(
        self, describe: str, key: str, param: str, rid: str, region: str, *, once: bool = False
    ) -> dict[str, Any]:
        """Wait until *rid* is available; with *once*, look once (``{}``: not available yet)."""
        deadline = self._now() + timedelta(seconds=self.restore_timeout)
        while True:
            result = self.call("rds", describe, resource=rid, region=region, **{param: rid})
            found: list[dict[str, Any]] = result.get(key, [])
            item = found[0] if found else {}
            status = str(item.get("DBInstanceStatus") or item.get("Status") or "").lower()
            if status == "available":
                return item
            if status == "failed" or status.startswith(("incompatible", "inaccessible")):
                raise BackendError(
                    f"{self.name}: restored {rid!r} ended in status {status!r}",
                    backend=self.name,
                    operation=describe,
                    resource=rid,
                    code=status,
                )
            if once:
                return {}
            if self._now() >= deadline:
                raise BackendError(
                    f"{self.name}: restored {rid!r} not available after {self.restore_timeout:g} s "
                    f"(status {status!r})",
                    backend=self.name,
                    operation=describe,
                    resource=rid,
                    code="Timeout",
                )
            self._sleep(self.poll_interval)

    def _delete_if_ours(self, what: str, rid: str, region: str, *, marker: str) -> None:
        """Delete restored instance or cluster *rid* if it exists and carries restore id *marker*."""
        if what == "instance":
            describe, key, param = "describe_db_instances", "DBInstances", "DBInstanceIdentifier"
        else:
            describe, key, param = "describe_db_clusters", "DBClusters", "DBClusterIdentifier"
        try:
            found = self.call("rds", describe, resource=rid, region=region, **{param: rid})
        except ResourceNotFoundError:
            return
        items: list[dict[str, Any]] = found.get(key, [])
        tags = {t.get("Key"): t.get("Value") for item in items for t in item.get("TagList") or []}
        if tags.get(TAG_RESTORE_ID) != marker:
            return  # never delete anything this restore did not create
        try:
            if what == "instance":
                self.call(
                    "rds",
                    "delete_db_instance",
                    resource=rid,
                    region=region,
                    DBInstanceIdentifier=rid,
                    SkipFinalSnapshot=True,
                    DeleteAutomatedBackups=True,
                )
            else:
                self.call(
                    "rds",
                    "delete_db_cluster",
                    resource=rid,
                    region=region,
                    DBClusterIdentifier=rid,
                    SkipFinalSnapshot=True,
                    DeleteAutomatedBackups=True,
                )
        except ResourceNotFoundError:
            return

    def _teardown(self, rid: str, region: str) -> None:
        raise NotImplementedError

    def _start(
        self, point: RecoveryPoint, rid: str, profile: IsolationProfile, region: str
    ) -> None:
        raise NotImplementedError

    def _start_pitr(
        self, point: RecoveryPoint, when: datetime | None, rid: str, profile: IsolationProfile
    ) -> None:
        raise NotImplementedError

    def _wait(self, rid: str, region: str) -> dict[str, Any]:
        raise NotImplementedError

    def _ready(self, rid: str, region: str) -> dict[str, Any]:
        """What `_wait` returns once *rid* is available, from one look; ``{}`` until then."""
        raise NotImplementedError

    def _restored(
        self,
        rid: str,
        item: Mapping[str, Any],
        point: RecoveryPoint,
        profile: IsolationProfile,
        region: str,
    ) -> RestoredResource:
        endpoint = item.get("Endpoint")
        if isinstance(endpoint, Mapping):
            address = f"{endpoint.get('Address')}:{endpoint.get('Port')}"
        elif endpoint:
            address = f"{endpoint}:{item.get('Port')}"
        else:
            address = None
        return RestoredResource(
            id=rid,
            kind=self._restored_kind,
            point=point,
            endpoint=address,
            details={
                "region": region,
                "arn": item.get("DBInstanceArn") or item.get("DBClusterArn"),
                "instance_class": profile.instance_class,
                "sweep_tag": profile.sweep_tag,
            },
        )

    @contextmanager
    def _restoring(
        self,
        point: RecoveryPoint,
        profile: IsolationProfile,
        region: str,
        start: Callable[[str], None],
    ) -> Iterator[RestoredResource]:
        rid = self._restore_id(profile)
        try:
            start(rid)
            item = self._wait(rid, region)
            yield self._restored(rid, item, point, profile, region)
        except BaseException as exc:
            try:
                self._teardown(rid, region)
            except Exception as teardown_error:  # noqa: BLE001 - the first error matters more
                exc.add_note(
                    f"tearing down {rid!r} failed too ({teardown_error}); it carries the "
                    f"{profile.sweep_tag!r} tag for the sweeper"
                )
            raise
        self._teardown(rid, region)

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Restore *point* into the isolation profile *into*; deleted again when the block exits.

        The restored database gets no public access, no Multi-AZ, the profile's subnet group,
        security groups and small instance class, deletion protection off and the sweep tag.
        The context manager waits (bounded by ``restore_timeout``) until it is available and
        deletes it on exit, even on error, skipping the final snapshot.

        Example:
            >>> with db.restore(point, IsolationProfile(subnet_group="restore-tests")) as restored:  # doctest: +SKIP
            ...     check(restored.endpoint)
        """
        profile = into or IsolationProfile()
        region = region_of(point, self.region)
        return self._restoring(
            point, profile, region, lambda rid: self._start(point, rid, profile, region)
        )

    # ------------------------------------------------------- restores in stages, for Step Functions

    def start_restore(self, point: RecoveryPoint, into: IsolationProfile | None = None) -> str:
        """Start restoring *point* into *into* and return the restore id (the new identifier).

        The restore is tagged like `restore`'s (sweep tag, restore id); `restore_ready` polls it
        and `teardown_restore` deletes it, possibly from other processes (Step Functions).
        A start that fails is torn down before the error is raised.
        """
        profile = into or IsolationProfile()
        region = region_of(point, self.region)
        rid = self._restore_id(profile)
        try:
            self._start(point, rid, profile, region)
        except BaseException as exc:
            try:
                self._teardown(rid, region)
            except Exception as teardown_error:  # noqa: BLE001 - the first error matters more
                exc.add_note(f"tearing down {rid!r} failed too ({teardown_error})")
            raise
        return rid

    def restore_ready(
        self, restore_id: str, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> RestoredResource | None:
        """The restored database once available (one look), else ``None``.

        Raises:
            BackendError: The restored database ended in a failed state.
        """
        profile = into or IsolationProfile()
        region = region_of(point, self.region)
        item = self._ready(restore_id, region)
        return self._restored(restore_id, item, point, profile, region) if item else None

    def teardown_restore(
        self,
        restore_id: str,
        point: RecoveryPoint,
        into: IsolationProfile | None = None,  # noqa: ARG002 - the StagedRestore signature
    ) -> None:
        """Delete the database of restore *restore_id*, only if it carries that restore id."""
        self._teardown(restore_id, region_of(point, self.region))

    def restore_to_point_in_time(
        self, when: datetime | None, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Restore the database as it was at *when* (``None``: the latest restorable time).

        Same isolation and teardown as `restore`; the yielded resource's ``point`` is an
        unmanaged point describing the restored moment.

        Raises:
            PolicyError: *when* is naive or in the future.
        """
        profile = into or IsolationProfile()
        now = self._now()
        if when is not None:
            ensure_aware(when, field="when")
            if when > now:
                raise PolicyError.for_field("when", f"a time before now ({now.isoformat()})", when)
        raw = self._describe_resource()
        arn = str(raw.get(self._api.resource_arn_key, ""))
        account = arn.split(":")[4] if arn.count(":") >= 5 else ""  # noqa: PLR2004
        moment = when.astimezone(UTC) if when is not None else now
        point = RecoveryPoint(
            id=f"{self.resource_id}@{'latest' if when is None else moment.isoformat()}",
            target=self.name,
            created_at=moment,
            kind=f"{self._api.target_kind}-point-in-time",
            location=f"aws:{account}:{self.region}",
            managed=False,
            details={"arn": arn, "region": self.region, "engine": raw.get("Engine")},
        )
        return self._restoring(
            point, profile, self.region, lambda rid: self._start_pitr(point, when, rid, profile)
        )


class InstanceRestores(RdsRestores):
    """Restores a DB instance from a snapshot or to a point in time."""

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
        """Start restoring DB instance *identifier* from snapshot *point* (or this instance at *at*)."""
        self.check_restorable(point)
        common: dict[str, Any] = {
            **_restore_network(settings),
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            "CopyTagsToSnapshot": True,
        }
        if settings["instance_class"]:
            common["DBInstanceClass"] = settings["instance_class"]
        if settings["parameter_group"]:
            common["DBParameterGroupName"] = settings["parameter_group"]
        if point is not None:
            self.call(
                "rds",
                "restore_db_instance_from_db_snapshot",
                resource=identifier,
                region=region,
                DBInstanceIdentifier=identifier,
                DBSnapshotIdentifier=point.id,
                **common,
            )
        else:
            self.call(
                "rds",
                "restore_db_instance_to_point_in_time",
                resource=identifier,
                region=region,
                SourceDBInstanceIdentifier=self.resource_id,
                TargetDBInstanceIdentifier=identifier,
                RestoreTime=at,
                **common,
            )

    def _start(
        self, point: RecoveryPoint, rid: str, profile: IsolationProfile, region: str
    ) -> None:
        self.call(
            "rds",
            "restore_db_instance_from_db_snapshot",
            resource=rid,
            region=region,
            DBInstanceIdentifier=rid,
            DBSnapshotIdentifier=point.id,
            **self._instance_params(profile, rid),
        )

    def _instance_params(self, profile: IsolationProfile, rid: str) -> dict[str, Any]:
        return {
            "DBInstanceClass": profile.instance_class,
            "PubliclyAccessible": False,
            "MultiAZ": False,
            "DeletionProtection": False,
            "CopyTagsToSnapshot": False,
            "AutoMinorVersionUpgrade": False,
            "Tags": self._restore_tags(profile, rid),
            **self._network(profile),
        }

    def _start_pitr(
        self,
        point: RecoveryPoint,  # noqa: ARG002 - Aurora needs it (the engine)
        when: datetime | None,
        rid: str,
        profile: IsolationProfile,
    ) -> None:
        moment: dict[str, Any] = (
            {"UseLatestRestorableTime": True} if when is None else {"RestoreTime": when}
        )
        self.call(
            "rds",
            "restore_db_instance_to_point_in_time",
            resource=rid,
            SourceDBInstanceIdentifier=self.resource_id,
            TargetDBInstanceIdentifier=rid,
            **moment,
            **self._instance_params(profile, rid),
        )

    def _wait(self, rid: str, region: str) -> dict[str, Any]:
        return self._wait_available(
            "describe_db_instances", "DBInstances", "DBInstanceIdentifier", rid, region
        )

    def _ready(self, rid: str, region: str) -> dict[str, Any]:
        return self._wait_available(
            "describe_db_instances", "DBInstances", "DBInstanceIdentifier", rid, region, once=True
        )

    def _teardown(self, rid: str, region: str) -> None:
        self._delete_if_ours("instance", rid, region, marker=rid)


class AuroraRestores(RdsRestores):
    """Restores an Aurora cluster and one DB instance in it."""

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
        """Start restoring cluster *identifier* (and its instance ``<identifier>-1``) from *point* or *at*."""
        self.check_restorable(point)
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        cluster: dict[str, Any] = {
            **_restore_network(settings),
            "Tags": tag_list,
            "CopyTagsToSnapshot": True,
        }
        if settings["parameter_group"]:
            cluster["DBClusterParameterGroupName"] = settings["parameter_group"]
        source = self.describe_database(self.resource_id, region) or {}
        engine = (point.details.get("engine") if point else None) or source.get("Engine")
        if point is not None:
            self.call(
                "rds",
                "restore_db_cluster_from_snapshot",
                resource=identifier,
                region=region,
                DBClusterIdentifier=identifier,
                SnapshotIdentifier=point.id,
                Engine=engine,
                **cluster,
            )
        else:
            self.call(
                "rds",
                "restore_db_cluster_to_point_in_time",
                resource=identifier,
                region=region,
                DBClusterIdentifier=identifier,
                SourceDBClusterIdentifier=self.resource_id,
                RestoreToTime=at,
                **cluster,
            )
        self.call(
            "rds",
            "create_db_instance",
            resource=f"{identifier}-1",
            region=region,
            DBInstanceIdentifier=f"{identifier}-1",
            DBClusterIdentifier=identifier,
            Engine=engine,
            DBInstanceClass=settings["instance_class"] or "db.t3.medium",
            Tags=tag_list,
        )

    def _restore_id(self, profile: IsolationProfile, max_length: int = _DB_ID_MAX - 2) -> str:
        return super()._restore_id(profile, max_length)  # room for the instance's "-1"

    @staticmethod
    def _instance_class(profile: IsolationProfile) -> str:
        if profile.instance_class == _DEFAULT_INSTANCE_CLASS:
            return "db.t3.medium"
        return profile.instance_class

    def _engine(self, point: RecoveryPoint) -> str:
        engine = point.details.get("engine")
        if not engine:
            fresh = self.refresh(point)
            engine = fresh.details.get("engine") if fresh else None
        if not engine:
            raise PolicyError.for_field("point.details['engine']", "the Aurora engine", engine)
        return str(engine)

    def _cluster_params(self, profile: IsolationProfile, rid: str) -> dict[str, Any]:
        return {
            "DeletionProtection": False,
            "CopyTagsToSnapshot": False,
            "Tags": self._restore_tags(profile, rid),
            **self._network(profile),
        }

    def _start(
        self, point: RecoveryPoint, rid: str, profile: IsolationProfile, region: str
    ) -> None:
        engine = self._engine(point)
        self.call(
            "rds",
            "restore_db_cluster_from_snapshot",
            resource=rid,
            region=region,
            DBClusterIdentifier=rid,
            SnapshotIdentifier=point.id,
            Engine=engine,
            **self._cluster_params(profile, rid),
        )
        self._add_instance(rid, engine, profile, region)

    def _start_pitr(
        self, point: RecoveryPoint, when: datetime | None, rid: str, profile: IsolationProfile
    ) -> None:
        moment: dict[str, Any] = (
            {"UseLatestRestorableTime": True} if when is None else {"RestoreToTime": when}
        )
        self.call(
            "rds",
            "restore_db_cluster_to_point_in_time",
            resource=rid,
            DBClusterIdentifier=rid,
            SourceDBClusterIdentifier=self.resource_id,
            **moment,
            **self._cluster_params(profile, rid),
        )
        self._add_instance(rid, self._engine(point), profile, self.region)

    def _add_instance(self, rid: str, engine: str, profile: IsolationProfile, region: str) -> None:
        self._wait_available(
            "describe_db_clusters", "DBClusters", "DBClusterIdentifier", rid, region
        )
        instance = f"{rid}-1"
        self.call(
            "rds",
            "create_db_instance",
            resource=instance,
            region=region,
            DBInstanceIdentifier=instance,
            DBClusterIdentifier=rid,
            Engine=engine,
            DBInstanceClass=self._instance_class(profile),
            PubliclyAccessible=False,
            Tags=self._restore_tags(profile, rid),
        )

    def _wait(self, rid: str, region: str) -> dict[str, Any]:
        self._wait_available(
            "describe_db_instances", "DBInstances", "DBInstanceIdentifier", f"{rid}-1", region
        )
        return self._wait_available(
            "describe_db_clusters", "DBClusters", "DBClusterIdentifier", rid, region
        )

    def _ready(self, rid: str, region: str) -> dict[str, Any]:
        instance = self._wait_available(
            "describe_db_instances",
            "DBInstances",
            "DBInstanceIdentifier",
            f"{rid}-1",
            region,
            once=True,
        )
        if not instance:
            return {}
        return self._wait_available(
            "describe_db_clusters", "DBClusters", "DBClusterIdentifier", rid, region, once=True
        )

    def _teardown(self, rid: str, region: str) -> None:
        self._delete_if_ours("instance", f"{rid}-1", region, marker=rid)
        self._delete_if_ours("cluster", rid, region, marker=rid)
