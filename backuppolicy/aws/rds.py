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
API calls (``describe_db_snapshots`` or ``describe_db_cluster_snapshots`` ...).

RDS tag values accept only letters, digits, white space and ``_ . : / = + - @``:
the values this module writes (reasons, tokens, legal holds) are encoded so that
any text round-trips (``|`` becomes ``=7C``, ``=`` becomes ``=3D``), and are
decoded again when points are listed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs
import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._iam_statements import (
    ACCOUNT,
    PARTITION,
    REGION,
    REGIONS,
    RESTORE_PREFIX,
    Grant,
    by_workflow,
    owned,
    swept,
)
from backuppolicy.core.durations import Duration
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
    ensure_aware,
    is_owned,
)
from backuppolicy.core.targets import (
    TAG_RESTORE_ID,
    Destination,
    IsolationProfile,
    RestoredResource,
    SweptResource,
)

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = ["AuroraCluster", "BackupSettings", "BackupWindow", "Drift", "RdsInstance"]

_GIB = 1024**3
_DB_ID_MAX = 63
_TAG_VALUE_MAX = 256
_MAX_RETENTION = 35
_MIN_WINDOW = timedelta(minutes=30)
_DAY = timedelta(days=1)
_OUR_PREFIX = "backuppolicy:"
_DEFAULT_INSTANCE_CLASS = IsolationProfile().instance_class
_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINTENANCE_RE = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# RDS tag values: Unicode letters, digits, white space and _ . : / + - @ ("=" is our escape).
_TAG_UNSAFE_RE = re.compile(r"[^\w .:/+\-@]")
_TAG_ALLOWED_RE = re.compile(r"^[\w\s.:/=+\-@]*$")
_ESCAPE_RE = re.compile(r"=([0-9A-F]{2})((?:=[0-9A-F]{2})*)")


# --------------------------------------------------------------------------- settings values


def _to_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    duration = Duration.coerce(value, field="backup_window.duration")
    if not duration.is_exact:
        raise PolicyError.for_field(
            "backup_window.duration", "a duration in days, hours or minutes", value
        )
    return duration.approx_timedelta()


def _check_start(_inst: object, _attr: attrs.Attribute[dt_time], value: dt_time) -> None:
    if not isinstance(value, dt_time) or value.second or value.microsecond:
        raise PolicyError.for_field(
            "backup_window.start", "a datetime.time in UTC on a whole minute", value
        )
    if value.tzinfo is not None and value.utcoffset() != timedelta(0):
        raise PolicyError.for_field("backup_window.start", "a time in UTC", value)


def _check_length(_inst: object, _attr: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value < _MIN_WINDOW or value >= _DAY or value % timedelta(minutes=1):
        raise PolicyError.for_field(
            "backup_window.duration",
            "a whole number of minutes, at least 30 minutes and less than 24 hours (RDS's limits)",
            value,
        )


@attrs.frozen
class BackupWindow:
    """The daily window, in UTC, in which RDS takes its automated backups.

    RDS wants ``hh24:mi-hh24:mi`` in UTC, at least 30 minutes long; a window may
    run past midnight (``"23:30-00:30"``).

    Example:
        >>> window = BackupWindow(dt_time(4, 0), "1h")
        >>> str(window)
        '04:00-05:00'
        >>> BackupWindow.parse("04:00-05:00") == window
        True
        >>> BackupWindow.parse("04:00-04:10")
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: backup_window: expected 'hh24:mi-hh24:mi' in UTC, at least 30 minutes long (got '04:00-04:10').

    Attributes:
        start: Start of the window (UTC, whole minutes).
        duration: Length of the window: a `datetime.timedelta`, or ``"30min"``/``"1h"``.
    """

    start: dt_time = attrs.field(validator=_check_start)
    duration: timedelta = attrs.field(
        default=timedelta(minutes=30), converter=_to_timedelta, validator=_check_length
    )

    @classmethod
    def parse(cls, text: str, *, field: str = "backup_window") -> BackupWindow:
        """Read RDS's ``"04:00-05:00"`` form.

        Raises:
            PolicyError: *text* is not ``hh24:mi-hh24:mi`` or the window is shorter than 30 minutes.
        """
        expected = "'hh24:mi-hh24:mi' in UTC, at least 30 minutes long"
        match = _WINDOW_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise PolicyError.for_field(field, expected, text)
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        length = timedelta(hours=h2 - h1, minutes=m2 - m1) % _DAY
        if length < _MIN_WINDOW:
            raise PolicyError.for_field(field, expected, text)
        return cls(dt_time(h1, m1), length)

    @classmethod
    def coerce(cls, value: Any, *, field: str = "backup_window") -> BackupWindow:
        """Accept a `BackupWindow` or its ``"04:00-05:00"`` text."""
        if isinstance(value, BackupWindow):
            return value
        return cls.parse(value, field=field)

    @property
    def end(self) -> dt_time:
        """End of the window (UTC)."""
        moment = datetime.combine(datetime(2000, 1, 1, tzinfo=UTC).date(), self.start)
        return (moment + self.duration).time()

    def minutes(self) -> tuple[int, int]:
        """Start and end as minutes after midnight (the end may exceed 1440 past midnight)."""
        begin = self.start.hour * 60 + self.start.minute
        return begin, begin + self.duration // timedelta(minutes=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _window_or_none(value: Any) -> BackupWindow | None:
    return None if value is None else BackupWindow.coerce(value)


def _check_retention(_inst: object, _attr: attrs.Attribute[Any], value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_RETENTION:
        raise PolicyError.for_field(
            "retention_days", "an integer from 0 to 35 (RDS's limit)", value
        )


def _check_bool(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise PolicyError.for_field(attribute.name, "True, False or None", value)


@attrs.frozen
class BackupSettings:
    """RDS's own automated-backup settings of an instance or cluster.

    As the result of `RdsInstance.settings` every field is filled in; as the
    *expected* settings of `RdsInstance.drift` and `RdsInstance.enforce`, a field left
    ``None`` is not checked.

    Example:
        >>> policy = BackupSettings(retention_days=35, backup_window="04:00-05:00",
        ...                         copy_tags_to_snapshot=True)
        >>> str(policy.backup_window)
        '04:00-05:00'
        >>> BackupSettings(retention_days=36)
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: retention_days: expected an integer from 0 to 35 (RDS's limit) (got 36).

    Attributes:
        retention_days: ``BackupRetentionPeriod``: days RDS keeps automated backups (0-35;
            0 turns automated backups off; Aurora needs at least 1).
        backup_window: ``PreferredBackupWindow`` as a `BackupWindow` (text is accepted).
        copy_tags_to_snapshot: ``CopyTagsToSnapshot``: whether snapshots get the instance's tags.
    """

    retention_days: int | None = attrs.field(default=None, validator=_check_retention)
    backup_window: BackupWindow | None = attrs.field(default=None, converter=_window_or_none)
    copy_tags_to_snapshot: bool | None = attrs.field(default=None, validator=_check_bool)

    @classmethod
    def coerce(cls, value: Any, *, field: str = "expected") -> BackupSettings:
        """Accept `BackupSettings` or a mapping of its field names.

        Raises:
            PolicyError: *value* is neither, or names an unknown field.
        """
        if isinstance(value, BackupSettings):
            return value
        if not isinstance(value, Mapping):
            raise PolicyError.for_field(field, "BackupSettings or a mapping", value)
        names = [a.name for a in attrs.fields(cls)]
        for key in value:
            if key not in names:
                raise PolicyError.for_field(f"{field}.{key}", "one of " + ", ".join(names), key)
        return cls(**value)


@attrs.frozen
class Drift:
    """One setting whose actual value differs from the expected one.

    Example:
        >>> Drift("retention_days", 35, 7).describe()
        'retention_days: expected 35, actual 7'

    Attributes:
        field: Name of the `BackupSettings` field.
        expected: The value the policy wants.
        actual: The value the instance has.
    """

    field: str
    expected: Any
    actual: Any

    def describe(self) -> str:
        """One line for reports: ``"retention_days: expected 35, actual 7"``."""
        expected = str(self.expected) if isinstance(self.expected, BackupWindow) else self.expected
        actual = str(self.actual) if isinstance(self.actual, BackupWindow) else self.actual
        return f"{self.field}: expected {expected}, actual {actual}"


# --------------------------------------------------------------------------- helpers


def _sha8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _identifier(text: str, *, max_length: int) -> str:
    """Make *text* a valid RDS identifier: [a-z0-9-], starts with a letter, no ``--``."""
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not clean or not clean[0].isalpha():
        clean = f"bp-{clean}".rstrip("-")
    if len(clean) > max_length:
        clean = clean[: max_length - 9].rstrip("-") + "-" + _sha8(text)
    return clean


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


def _encode_tag(value: str, *, field: str) -> str:
    """Escape characters RDS refuses in tag values (``=XX`` per UTF-8 byte)."""

    def escape(match: re.Match[str]) -> str:
        return "".join(f"={byte:02X}" for byte in match.group().encode())

    encoded = _TAG_UNSAFE_RE.sub(escape, value)
    if len(encoded) > _TAG_VALUE_MAX:
        raise PolicyError.for_field(
            field, f"at most {_TAG_VALUE_MAX} characters once encoded for RDS", value
        )
    return encoded


def _decode_tag(value: str) -> str:
    def unescape(match: re.Match[str]) -> str:
        data = bytes(int(part, 16) for part in match.group()[1:].split("="))
        return data.decode(errors="replace")

    return _ESCAPE_RE.sub(unescape, value)


def _aware_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _rds_status(raw: str) -> Status:
    text = raw.lower()
    if text == "available":
        return Status.COMPLETED
    if text == "failed" or text.startswith("incompatible"):
        return Status.FAILED
    return Status.PENDING  # creating, copying, pending ... and anything new: never deleted


def _maintenance_overlap(window: BackupWindow, maintenance: str) -> bool:
    """Whether the daily *window* overlaps the weekly ``ddd:hh:mm-ddd:hh:mm`` *maintenance*."""
    match = _MAINTENANCE_RE.match(maintenance.lower()) if maintenance else None
    if match is None:
        return False
    day1, h1, m1, day2, h2, m2 = match.groups()
    week = 7 * 24 * 60
    begin = _WEEKDAYS.index(day1) * 1440 + int(h1) * 60 + int(m1)
    end = _WEEKDAYS.index(day2) * 1440 + int(h2) * 60 + int(m2)
    if end <= begin:
        end += week
    start, stop = window.minutes()
    for day in range(-1, 8):
        a, b = day * 1440 + start, day * 1440 + stop
        for shift in (-week, 0, week):
            if a < end + shift and begin + shift < b:
                return True
    return False


def _region_of(point: RecoveryPoint, default: str) -> str:
    region = point.details.get("region")
    if isinstance(region, str) and region:
        return region
    parts = point.location.split(":")
    if len(parts) == 3 and parts[0] == "aws" and parts[2]:  # noqa: PLR2004
        return parts[2]
    return default


@attrs.frozen
class _Api:
    """The RDS API names that differ between DB instances and Aurora clusters."""

    kind: str
    target_kind: str
    resource_param: str
    describe_resource: str
    resources_key: str
    resource_arn_key: str
    resource_created_key: str
    modify_resource: str
    new_resource_param: str
    resource_status_key: str
    snapshot_param: str
    describe_snapshots: str
    snapshots_key: str
    snapshot_key: str
    snapshot_arn_key: str
    encrypted_key: str
    create_snapshot: str
    copy_snapshot: str
    copy_source_param: str
    copy_target_param: str
    delete_snapshot: str
    min_retention: int
    snapshot_max_length: int


_INSTANCE_API = _Api(
    kind="rds-snapshot",
    target_kind="rds-instance",
    resource_param="DBInstanceIdentifier",
    describe_resource="describe_db_instances",
    resources_key="DBInstances",
    resource_arn_key="DBInstanceArn",
    resource_created_key="InstanceCreateTime",
    modify_resource="modify_db_instance",
    new_resource_param="NewDBInstanceIdentifier",
    resource_status_key="DBInstanceStatus",
    snapshot_param="DBSnapshotIdentifier",
    describe_snapshots="describe_db_snapshots",
    snapshots_key="DBSnapshots",
    snapshot_key="DBSnapshot",
    snapshot_arn_key="DBSnapshotArn",
    encrypted_key="Encrypted",
    create_snapshot="create_db_snapshot",
    copy_snapshot="copy_db_snapshot",
    copy_source_param="SourceDBSnapshotIdentifier",
    copy_target_param="TargetDBSnapshotIdentifier",
    delete_snapshot="delete_db_snapshot",
    min_retention=0,
    snapshot_max_length=255,
)
_CLUSTER_API = _Api(
    kind="rds-cluster-snapshot",
    target_kind="aurora-cluster",
    resource_param="DBClusterIdentifier",
    describe_resource="describe_db_clusters",
    resources_key="DBClusters",
    resource_arn_key="DBClusterArn",
    resource_created_key="ClusterCreateTime",
    modify_resource="modify_db_cluster",
    new_resource_param="NewDBClusterIdentifier",
    resource_status_key="Status",
    snapshot_param="DBClusterSnapshotIdentifier",
    describe_snapshots="describe_db_cluster_snapshots",
    snapshots_key="DBClusterSnapshots",
    snapshot_key="DBClusterSnapshot",
    snapshot_arn_key="DBClusterSnapshotArn",
    encrypted_key="StorageEncrypted",
    create_snapshot="create_db_cluster_snapshot",
    copy_snapshot="copy_db_cluster_snapshot",
    copy_source_param="SourceDBClusterSnapshotIdentifier",
    copy_target_param="TargetDBClusterSnapshotIdentifier",
    delete_snapshot="delete_db_cluster_snapshot",
    min_retention=1,
    snapshot_max_length=63,  # cluster snapshot identifiers are shorter than DB snapshot ones
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _newest_by_tier(points: Iterable[RecoveryPoint]) -> dict[str, RecoveryPoint]:
    """The newest completed managed point of each tier (ties: `RecoveryPoint.order_key`)."""
    newest: dict[str, RecoveryPoint] = {}
    for point in points:
        if point.is_good and point.managed:
            best = newest.get(point.tier)
            if best is None or point.order_key > best.order_key:
                newest[point.tier] = point
    return newest


def _succeeded(future: Future[None]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


# --------------------------------------------------------------------------- shared base


_SNAPSHOT_KINDS = frozenset({"rds-snapshot", "rds-cluster-snapshot"})


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


class _RdsTarget(AwsBackend):
    """Everything `RdsInstance` and `AuroraCluster` share; subclasses set ``_api`` and restores."""

    _api: _Api
    _restored_kind: str

    def __init__(
        self,
        resource_id: str,
        *,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        copy_regions: Iterable[str] = (),
        max_workers: int = 8,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_interval: float = 30.0,
        restore_timeout: float = 3600.0,
    ) -> None:
        if not isinstance(resource_id, str) or not resource_id:
            raise PolicyError.for_field(self._api.resource_param, "a non-empty string", resource_id)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise PolicyError.for_field("max_workers", "an integer >= 1", max_workers)
        if not isinstance(policy, str) or not policy:
            raise PolicyError.for_field("policy", "a non-empty policy name", policy)
        super().__init__(
            name or resource_id,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )
        self.resource_id = resource_id
        self.policy = policy
        self.copy_regions = tuple(dict.fromkeys(copy_regions))
        self.max_workers = max_workers
        self._clock = clock or _utcnow
        self._sleep = sleep or time.sleep
        self.poll_interval = poll_interval
        self.restore_timeout = restore_timeout

    # ----------------------------------------------------------------- the kind

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

    iam_copy_keys: ClassVar[bool] = True
    """Copies are encrypted with the copy tiers' ``kms_key_id``: `iam_policy` grants its use."""

    _setting: ClassVar[str]  # the setting that names the database

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
        """The target of *spec*: its database, its region (default *region*), its copy regions.

        The copy regions are those of the policy's copy tiers (every tier after the first).
        """
        settings = spec.settings
        return cls(
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
        return by_workflow(_iam_grants(spec, cluster=cls._api is _CLUSTER_API))

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}({self.resource_id!r}, name={self.name!r}, region={self.region!r})>"

    @property
    def kind(self) -> str:
        """Registered kind of the target (``"rds-instance"`` or ``"aurora-cluster"``)."""
        return self._api.target_kind

    # ----------------------------------------------------------------- points

    def _now(self) -> datetime:
        return ensure_aware(self._clock(), field="clock()").astimezone(UTC)

    def _to_point(self, raw: Mapping[str, Any], region: str) -> RecoveryPoint:
        api = self._api
        tags: dict[str, str] = {}
        for item in raw.get("TagList") or []:
            key, value = str(item.get("Key", "")), str(item.get("Value", ""))
            tags[key] = _decode_tag(value) if key.startswith(_OUR_PREFIX) else value
        snapshot_type = str(raw.get("SnapshotType", "manual"))
        arn = str(raw.get(api.snapshot_arn_key, ""))
        arn_parts = arn.split(":")
        account = arn_parts[4] if len(arn_parts) > 4 else ""  # noqa: PLR2004
        region = arn_parts[3] if len(arn_parts) > 4 and arn_parts[3] else region  # noqa: PLR2004
        # A copy is as old as its data: OriginalSnapshotCreateTime is the source's time (equal to
        # SnapshotCreateTime for a snapshot that is no copy). RPO evidence and retention use it.
        created = (
            _aware_utc(raw.get("OriginalSnapshotCreateTime"))
            or _aware_utc(raw.get("SnapshotCreateTime"))
            or _aware_utc(raw.get(api.resource_created_key))
            or self._now()
        )
        managed = snapshot_type == "manual" and is_owned(tags, policy=self.policy, target=self.name)
        hold = LegalHold.from_tag(tags[TAG_HOLD]) if TAG_HOLD in tags else None
        storage = raw.get("AllocatedStorage")
        size = int(storage) * _GIB if isinstance(storage, int) and storage > 0 else None
        encrypted = raw.get(api.encrypted_key)
        tier = tags.get(TAG_TIER) or ("local" if region == self.region else "offsite")
        details: dict[str, Any] = {
            "arn": arn,
            "region": region,
            "account": account,
            "kms_key_id": raw.get("KmsKeyId"),
            "snapshot_type": snapshot_type,
            "rds_status": raw.get("Status"),
            "engine": raw.get("Engine"),
            "engine_version": raw.get("EngineVersion"),
            "source": raw.get(api.resource_param),
            "allocated_storage_gib": storage,
            "snapshot_create_time": raw.get("SnapshotCreateTime"),
            "original_snapshot_create_time": raw.get("OriginalSnapshotCreateTime"),
        }
        return RecoveryPoint(
            id=str(raw[api.snapshot_param]),
            target=self.name,
            created_at=created,
            kind=api.kind,
            location=f"aws:{account}:{region}",
            tier=tier,
            status=_rds_status(str(raw.get("Status", ""))),
            size_bytes=size,
            encrypted=encrypted if isinstance(encrypted, bool) else None,
            tags=tags,
            legal_hold=hold,
            managed=managed,
            details=details,
        )

    def _snapshots(self, region: str, **params: Any) -> Iterator[dict[str, Any]]:
        api = self._api
        for page in self.paginate(
            "rds",
            api.describe_snapshots,
            resource=self.resource_id,
            region=region,
            MaxRecords=100,
            **params,
        ):
            yield from page.get(api.snapshots_key, [])

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the manual and automated snapshots, in the target's region then the copy regions.

        Automated snapshots are listed with ``managed=False`` (RDS expires them after the
        retention period); manual ones are ``managed=True`` when they carry this policy's and
        this target's ownership tags. Every page is read with retries; a page that finally
        fails raises `backuppolicy.BackendError`, never a shorter listing.
        """
        for region in (self.region, *(r for r in self.copy_regions if r != self.region)):
            for raw in self._snapshots(region, **{self._api.resource_param: self.resource_id}):
                yield self._to_point(raw, region)

    def _describe_snapshot(self, snapshot_id: str, region: str) -> RecoveryPoint | None:
        api = self._api
        try:
            result = self.call(
                "rds",
                api.describe_snapshots,
                resource=snapshot_id,
                region=region,
                **{api.snapshot_param: snapshot_id},
            )
        except ResourceNotFoundError:
            return None
        found = result.get(api.snapshots_key, [])
        return self._to_point(found[0], region) if found else None

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* (in its own region); ``None`` once it is gone."""
        return self._describe_snapshot(point.id, _region_of(point, self.region))

    # ----------------------------------------------------------------- create

    def _snapshot_name(self, token: str | None) -> str:
        if token is None:
            suffix = f"{self._now():%Y%m%dt%H%M%Sz}"
        else:
            suffix = re.sub(r"[^a-z0-9]+", "-", token.lower()).strip("-")
            if suffix != token:  # "run 1" and "run-1" must not share a name
                suffix = f"{suffix}-{_sha8(token)}"
        return _identifier(f"bp-{self.name}-{suffix}", max_length=self._api.snapshot_max_length)

    def _our_tags(self, reason: str, token: str) -> dict[str, str]:
        return {
            TAG_POLICY: _encode_tag(self.policy, field="policy"),
            TAG_TARGET: _encode_tag(self.name, field="name"),
            TAG_REASON: _encode_tag(reason, field="reason"),
            TAG_TOKEN: _encode_tag(token, field="token"),
            TAG_TIER: "local",
        }

    def _find_token(self, token: str) -> RecoveryPoint | None:
        for raw in self._snapshots(
            self.region, SnapshotType="manual", **{self._api.resource_param: self.resource_id}
        ):
            point = self._to_point(raw, self.region)
            if point.tags.get(TAG_TOKEN) == token and point.tags.get(TAG_TARGET) == self.name:
                return point
        return None

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Take a manual snapshot now and return its point (usually `Status.PENDING`).

        The snapshot is named ``bp-<target>-<UTC stamp>``, or ``bp-<target>-<token>`` when a
        *token* is given, and carries the ownership tags. The same *token* returns the
        existing snapshot (found by its ``backuppolicy:token`` tag) instead of a duplicate.

        Raises:
            PolicyError: A tag in *tags* is not valid for RDS.
            BackendError: The snapshot name is taken by a snapshot this call did not make.
        """
        user_tags = dict(tags or {})
        for key, value in user_tags.items():
            if not isinstance(value, str) or not _TAG_ALLOWED_RE.match(value):
                raise PolicyError.for_field(
                    f"tags[{key!r}]",
                    "letters, digits, white space or _ . : / = + - @ (RDS tag values)",
                    value,
                )
            if key.startswith(("aws:", "rds:", _OUR_PREFIX)):
                raise PolicyError.for_field(
                    "tags", "keys not starting with 'aws:', 'rds:' or 'backuppolicy:'", key
                )
        if token is not None:
            if not isinstance(token, str) or not token:
                raise PolicyError.for_field("token", "a non-empty string or None", token)
            existing = self._find_token(token)
            if existing is not None:
                return existing
        name = self._snapshot_name(token)
        effective = token if token is not None else uuid.uuid4().hex
        all_tags = {**user_tags, **self._our_tags(reason, effective)}
        api = self._api
        try:
            result = self.call(
                "rds",
                api.create_snapshot,
                resource=name,
                **{api.snapshot_param: name, api.resource_param: self.resource_id},
                Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()],
            )
        except BackendError as exc:
            if "AlreadyExists" not in exc.code:
                raise
            # A retried create whose first response was lost: the snapshot is ours if it
            # carries our token; otherwise the name is taken and we must not pretend.
            point = self._describe_snapshot(name, self.region)
            if point is not None and point.tags.get(TAG_TOKEN) == effective:
                return point
            raise BackendError(
                f"{self.name}: snapshot name {name!r} is taken by a snapshot this call did not "
                f"create (token {point.tags.get(TAG_TOKEN) if point else None!r}, expected "
                f"{effective!r}); use another token",
                backend=self.name,
                operation=exc.operation,
                resource=name,
                code=exc.code,
            ) from exc
        return self._to_point(result[api.snapshot_key], self.region)

    # ----------------------------------------------------------------- copy

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* to ``destination.region`` and return the copy (usually pending).

        The copy is made by the destination region's client (``SourceRegion`` and the
        source ARN), keeps the source's tags and gets ``backuppolicy:tier`` =
        ``destination.tier`` and this target's ownership tags. An encrypted snapshot needs
        ``destination.kms_key_id``, a key in the destination region. Copying the same point
        to the same destination again returns the existing copy.

        Raises:
            PolicyError: No destination region, an encrypted source without
                ``destination.kms_key_id``, a cross-account destination, or a point that is
                not completed. Raised before any AWS call.
        """
        region = destination.region
        if not region:
            raise PolicyError.for_field("destination.region", "an AWS region name", region)
        if destination.account is not None:
            raise PolicyError.for_field(
                "destination.account",
                "None (share the snapshot and copy it from the other account instead)",
                destination.account,
            )
        if point.encrypted and not destination.kms_key_id:
            raise PolicyError.for_field(
                "destination.kms_key_id",
                f"a KMS key id or ARN in {region} because snapshot {point.id!r} is encrypted",
                destination.kms_key_id,
            )
        if point.status is not Status.COMPLETED:
            raise PolicyError.for_field(
                "point.status",
                f"completed (RDS copies only available snapshots; {point.id!r} is not)",
                point.status.value,
            )
        source_region = _region_of(point, self.region)
        arn = point.details.get("arn") or self._arn_of(point)
        same_region = region == source_region
        # Always suffixed with the tier, also across regions: RDS identifiers are unique per
        # region only, and a plan across tiers needs one id per point.
        target_id = _identifier(
            f"{point.id}-{destination.tier}", max_length=self._api.snapshot_max_length
        )
        existing = self._describe_snapshot(target_id, region)
        if existing is not None:
            if existing.tags.get(TAG_TARGET) == self.name:
                return existing
            raise BackendError(
                f"{self.name}: copy name {target_id!r} in {region} is taken by a snapshot of "
                f"another target ({existing.tags.get(TAG_TARGET)!r})",
                backend=self.name,
                operation=self._api.copy_snapshot,
                resource=target_id,
            )
        tags = {
            key: _encode_tag(value, field=f"tags[{key!r}]")
            if key.startswith(_OUR_PREFIX)
            else value
            for key, value in point.tags.items()
            if key != TAG_HOLD  # a hold protects the held copy, not every copy of it
        }
        tags.setdefault(TAG_REASON, "copy")
        tags.update(
            {
                TAG_POLICY: _encode_tag(self.policy, field="policy"),
                TAG_TARGET: _encode_tag(self.name, field="name"),
                TAG_TIER: _encode_tag(destination.tier, field="destination.tier"),
            }
        )
        api = self._api
        params: dict[str, Any] = {
            api.copy_source_param: arn,
            api.copy_target_param: target_id,
            "CopyTags": True,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if not same_region:
            params["SourceRegion"] = source_region
        if destination.kms_key_id:
            params["KmsKeyId"] = destination.kms_key_id
        result = self.call("rds", api.copy_snapshot, resource=target_id, region=region, **params)
        return self._to_point(result[api.snapshot_key], region)

    def _arn_of(self, point: RecoveryPoint) -> str:
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: snapshot {point.id!r} does not exist",
                backend=self.name,
                operation=self._api.describe_snapshots,
                resource=point.id,
            )
        return str(fresh.details["arn"])

    # ----------------------------------------------------------------- delete

    def _check_deletable(self, point: RecoveryPoint) -> None:
        why = ""
        if point.target != self.name or point.kind != self._api.kind:
            why = f"it belongs to {point.kind} target {point.target!r}, not to {self.name!r}"
        elif not point.managed:
            why = "it is not managed by this policy (automated, or not tagged as ours)"
        elif point.legal_hold is not None:
            why = f"it is under {point.legal_hold.describe()}"
        elif point.status is Status.PENDING:
            why = "it is still pending"
        if why:
            raise ProtectedPointError(
                f"{self.name}: refusing to delete snapshot {point.id!r}: {why}; nothing was deleted",
                point=point,
            )

    def _delete_snapshot(self, point: RecoveryPoint) -> None:
        api = self._api
        try:
            self.call(
                "rds",
                api.delete_snapshot,
                resource=point.id,
                region=_region_of(point, self.region),
                **{api.snapshot_param: point.id},
            )
        except ResourceNotFoundError:
            # It existed a moment ago: a retry after a lost response finds it gone. Gone is
            # what was asked for, and the delete call was not repeated on a live snapshot.
            return

    def _missing(self, point: RecoveryPoint) -> ResourceNotFoundError:
        return ResourceNotFoundError(
            f"{self.name}: snapshot {point.id!r} does not exist (any more)",
            backend=self.name,
            operation=self._api.describe_snapshots,
            resource=point.id,
        )

    def delete(self, point: RecoveryPoint) -> None:
        """Delete the snapshot of *point*, after re-reading it from RDS.

        Both the given point and the snapshot as RDS reports it now must be managed by this
        target, without legal hold and not pending.

        Raises:
            ProtectedPointError: *point* is not managed by this target, under legal hold or
                pending; nothing is deleted.
            ResourceNotFoundError: The snapshot does not exist.
        """
        self._check_deletable(point)
        current = self.refresh(point)
        if current is None:
            raise self._missing(point)
        self._check_deletable(current)
        self._delete_snapshot(current)

    def delete_many(
        self, points: Iterable[RecoveryPoint], *, max_workers: int | None = None
    ) -> list[str]:
        """Delete *points* with at most *max_workers* concurrent calls; return the deleted ids.

        Every point is checked, as given and as one fresh listing per region reports it,
        before the first delete: if any is protected (held, pending, not ours, or the newest
        completed snapshot of its tier, which retention always keeps), nothing is deleted. Points that are
        already gone are skipped (not in the result). The first error of a worker stops the
        deletes not started yet and is raised.

        Example:
            >>> plan = rule.plan(db.list_points(), now=now)  # doctest: +SKIP
            >>> db.delete_many(plan.delete, max_workers=8)  # doctest: +SKIP
            ['bp-orders-db-20261001t040000z', ...]

        Raises:
            ProtectedPointError: One of *points* may not be deleted, or is the newest completed
                snapshot of its tier (nothing was deleted).
            PolicyError: *max_workers* is not a positive integer.
        """
        workers = self.max_workers if max_workers is None else max_workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise PolicyError.for_field("max_workers", "an integer >= 1", workers)
        todo = list(points)
        for point in todo:
            self._check_deletable(point)
        fresh: dict[tuple[str, str], RecoveryPoint] = {}
        for region in dict.fromkeys(_region_of(p, self.region) for p in todo):
            for raw in self._snapshots(
                region, SnapshotType="manual", **{self._api.resource_param: self.resource_id}
            ):
                listed = self._to_point(raw, region)
                fresh[(listed.id, region)] = listed
        newest = _newest_by_tier(fresh.values())
        live = []
        for point in todo:
            current = fresh.get((point.id, _region_of(point, self.region)))
            if current is not None:
                self._check_deletable(current)
                if newest.get(current.tier) is current:
                    raise ProtectedPointError(
                        f"{self.name}: refusing to delete snapshot {current.id!r}: it is the "
                        f"newest completed snapshot of tier {current.tier!r}; nothing was deleted",
                        point=current,
                    )
                live.append(current)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bp-rds-delete") as pool:
            futures = [pool.submit(self._delete_snapshot, point) for point in live]
            _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()  # stop at the first error; running deletes finish
        deleted = [p.id for p, f in zip(live, futures, strict=True) if _succeeded(f)]
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception()]
        if errors:
            error = errors[0]
            assert error is not None  # noqa: S101 - narrowed for mypy
            error.add_note(f"{len(deleted)} of {len(live)} snapshots were deleted before it")
            raise error
        return deleted

    # ----------------------------------------------------------------- holds

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under legal *hold* (a tag on the snapshot); return the held point.

        Raises:
            PolicyError: *point* is an automated snapshot (RDS deletes those whatever their
                tags: copy it first and hold the copy).
        """
        if point.details.get("snapshot_type") == "automated":
            raise PolicyError.for_field(
                "point",
                "a manual snapshot (RDS expires automated snapshots whatever their tags; copy it first)",
                point.id,
            )
        value = _encode_tag(hold.to_tag(), field="hold")
        arn = point.details.get("arn") or self._arn_of(point)
        self.call(
            "rds",
            "add_tags_to_resource",
            resource=point.id,
            region=_region_of(point, self.region),
            ResourceName=arn,
            Tags=[{"Key": TAG_HOLD, "Value": value}],
        )
        return point.evolve(legal_hold=hold, tags={**point.tags, TAG_HOLD: hold.to_tag()})

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold tag from *point*; return the released point."""
        arn = point.details.get("arn") or self._arn_of(point)
        self.call(
            "rds",
            "remove_tags_from_resource",
            resource=point.id,
            region=_region_of(point, self.region),
            ResourceName=arn,
            TagKeys=[TAG_HOLD],
        )
        tags = {k: v for k, v in point.tags.items() if k != TAG_HOLD}
        return point.evolve(legal_hold=None, tags=tags)

    # ----------------------------------------------------------------- settings

    def _describe_resource(self) -> dict[str, Any]:
        api = self._api
        result = self.call(
            "rds",
            api.describe_resource,
            resource=self.resource_id,
            **{api.resource_param: self.resource_id},
        )
        found: list[dict[str, Any]] = result.get(api.resources_key, [])
        if not found:
            raise ResourceNotFoundError(
                f"{self.name}: {self.resource_id!r} does not exist",
                backend=self.name,
                operation=api.describe_resource,
                resource=self.resource_id,
            )
        return found[0]

    # Verify capabilities (`DatabaseSnapshotPoints`, `PointSharing`, `Sweepable`) -------------

    def is_database_snapshot(self, point: RecoveryPoint) -> bool:
        """Whether *point* is a DB (cluster) snapshot; RDS keeps no checksum of it."""
        return point.kind in _SNAPSHOT_KINDS

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Whether the snapshot *point* can be restored by everyone (``restore`` holds ``all``)."""
        if point is None or point.kind not in _SNAPSHOT_KINDS:
            return None
        if point.kind == "rds-cluster-snapshot":
            result = self.call(
                "rds",
                "describe_db_cluster_snapshot_attributes",
                resource=point.id,
                region=region,
                DBClusterSnapshotIdentifier=point.id,
            )
            attributes = result.get("DBClusterSnapshotAttributesResult", {}).get(
                "DBClusterSnapshotAttributes", []
            )
        else:
            result = self.call(
                "rds",
                "describe_db_snapshot_attributes",
                resource=point.id,
                region=region,
                DBSnapshotIdentifier=point.id,
            )
            attributes = result.get("DBSnapshotAttributesResult", {}).get(
                "DBSnapshotAttributes", []
            )
        restore = [
            str(v)
            for a in attributes
            if a.get("AttributeName") == "restore"
            for v in a.get("AttributeValues", [])
        ]
        issues = (
            [f"snapshot {point.id}: restore attribute shared with 'all'"]
            if "all" in restore
            else []
        )
        return {"restore_shared_with": restore}, issues

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

    def settings(self) -> BackupSettings:
        """Read the automated-backup settings (retention, window, copy tags to snapshots)."""
        raw = self._describe_resource()
        window_text = raw.get("PreferredBackupWindow")
        try:
            window = BackupWindow.parse(window_text) if window_text else None
        except PolicyError:
            window = None  # RDS never returns a window it would refuse; be lenient anyway
        return BackupSettings(
            retention_days=min(int(raw.get("BackupRetentionPeriod", 0)), _MAX_RETENTION),
            backup_window=window,
            copy_tags_to_snapshot=bool(raw.get("CopyTagsToSnapshot", False)),
        )

    def drift(self, expected: BackupSettings | Mapping[str, Any]) -> list[Drift]:
        """Compare the actual settings with *expected*; one `Drift` per differing field.

        Fields of *expected* that are ``None`` are not compared.
        """
        wanted = BackupSettings.coerce(expected)
        raw = self._describe_resource()
        return self._drift(wanted, raw)

    def _drift(self, wanted: BackupSettings, raw: Mapping[str, Any]) -> list[Drift]:
        window_text = raw.get("PreferredBackupWindow")
        try:
            actual_window: BackupWindow | str | None = (
                BackupWindow.parse(window_text) if window_text else None
            )
        except PolicyError:
            actual_window = str(window_text)
        actual = {
            "retention_days": int(raw.get("BackupRetentionPeriod", 0)),
            "backup_window": actual_window,
            "copy_tags_to_snapshot": bool(raw.get("CopyTagsToSnapshot", False)),
        }
        drifts = []
        for field in attrs.fields(BackupSettings):
            value = getattr(wanted, field.name)
            if value is not None and value != actual[field.name]:
                drifts.append(Drift(field.name, value, actual[field.name]))
        return drifts

    def enforce(
        self, expected: BackupSettings | Mapping[str, Any], *, apply: bool = False
    ) -> list[Drift]:
        """Return the changes needed to reach *expected*; make them only when *apply* is true.

        Changes are applied at once (``ApplyImmediately=True``) in one modify call. Turning
        automated backups on or off (retention 0 <-> 1+) reboots an RDS instance.

        Raises:
            PolicyError: *expected* breaks an RDS limit that moto does not check: retention
                above 35 days (or 0 for Aurora), a window shorter than 30 minutes, a window
                that overlaps the maintenance window.
        """
        wanted = BackupSettings.coerce(expected)
        if wanted.retention_days is not None and wanted.retention_days < self._api.min_retention:
            raise PolicyError.for_field(
                "retention_days",
                f"an integer from {self._api.min_retention} to 35 for {self.kind}",
                wanted.retention_days,
            )
        raw = self._describe_resource()
        maintenance = str(raw.get("PreferredMaintenanceWindow") or "")
        if wanted.backup_window is not None and _maintenance_overlap(
            wanted.backup_window, maintenance
        ):
            raise PolicyError.for_field(
                "backup_window",
                f"a window that does not overlap the maintenance window {maintenance!r}",
                str(wanted.backup_window),
            )
        drifts = self._drift(wanted, raw)
        if apply and drifts:
            names = {
                "retention_days": "BackupRetentionPeriod",
                "backup_window": "PreferredBackupWindow",
                "copy_tags_to_snapshot": "CopyTagsToSnapshot",
            }
            params = {
                names[d.field]: str(d.expected) if d.field == "backup_window" else d.expected
                for d in drifts
            }
            api = self._api
            self.call(
                "rds",
                api.modify_resource,
                resource=self.resource_id,
                ApplyImmediately=True,
                **{api.resource_param: self.resource_id},
                **params,
            )
        return drifts

    # ----------------------------------------------------------------- restores: RestorableDatabase

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
        base = _identifier(f"{profile.name_prefix}{self.name}", max_length=max_length)
        base = base[: max_length - len(suffix) - 1].rstrip("-")
        return f"{base}-{suffix}"

    def _restore_tags(self, profile: IsolationProfile, restore_id: str) -> list[dict[str, str]]:
        tags = {
            **dict(profile.tags),
            profile.sweep_tag: self._now().isoformat(),
            TAG_RESTORE_ID: restore_id,
            TAG_TARGET: _encode_tag(self.name, field="name"),
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
        self, describe: str, key: str, param: str, rid: str, region: str
    ) -> dict[str, Any]:
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
            endpoint = item.get("Endpoint")
            if isinstance(endpoint, Mapping):
                address = f"{endpoint.get('Address')}:{endpoint.get('Port')}"
            elif endpoint:
                address = f"{endpoint}:{item.get('Port')}"
            else:
                address = None
            resource = RestoredResource(
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
            yield resource
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
        region = _region_of(point, self.region)
        return self._restoring(
            point, profile, region, lambda rid: self._start(point, rid, profile, region)
        )

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


# --------------------------------------------------------------------------- public targets


class RdsInstance(_RdsTarget):
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
        max_workers: Concurrent deletes in `delete_many`.
        clock: Returns "now" (timezone-aware); snapshot names and restore deadlines use it.
        sleep: Waits between polls of a restore (inject a no-op in tests).
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored database to become available.

    Attributes:
        resource_id: The ``DBInstanceIdentifier``.
        policy: Policy name of the ownership tag.
        copy_regions: Regions listed besides the target's own.
        max_workers: Default concurrency of `delete_many`.
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored database.
    """

    _api = _INSTANCE_API
    _restored_kind = "rds-instance"
    _setting = "db_instance_id"
    database_noun = "instance"

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

    def __init__(
        self,
        db_instance_id: str,
        *,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        copy_regions: Iterable[str] = (),
        max_workers: int = 8,
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

    def _teardown(self, rid: str, region: str) -> None:
        self._delete_if_ours("instance", rid, region, marker=rid)


class AuroraCluster(_RdsTarget):
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
        max_workers: Concurrent deletes in `delete_many`.
        clock: Returns "now" (timezone-aware).
        sleep: Waits between polls of a restore.
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored cluster and its instance.

    Attributes:
        resource_id: The ``DBClusterIdentifier``.
        policy: Policy name of the ownership tag.
        copy_regions: Regions listed besides the target's own.
        max_workers: Default concurrency of `delete_many`.
        poll_interval: Seconds between polls of a restore.
        restore_timeout: Seconds to wait for a restored cluster.
    """

    _api = _CLUSTER_API
    _restored_kind = "aurora-cluster"
    _setting = "db_cluster_id"
    database_noun = "cluster"

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

    def __init__(
        self,
        cluster_id: str,
        *,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        copy_regions: Iterable[str] = (),
        max_workers: int = 8,
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

    def _teardown(self, rid: str, region: str) -> None:
        self._delete_if_ours("instance", f"{rid}-1", region, marker=rid)
        self._delete_if_ours("cluster", rid, region, marker=rid)
