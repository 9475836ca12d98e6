"""The shared base of the RDS targets: API names, tag encoding, identifiers, reading points.

`RdsBase` holds what every part of `RdsInstance` and `AuroraCluster` needs: the
constructor, the `Api` names that differ between DB instances and Aurora clusters, and
turning RDS snapshots into `RecoveryPoint` objects. The snapshot, settings and restore
mixins (`backuppolicy.aws._rds_snapshots`, ``_rds_settings``, ``_rds_restore``) build on it.

RDS tag values accept only letters, digits, white space and ``_ . : / = + - @``:
the values the targets write (reasons, tokens, legal holds) are encoded so that
any text round-trips (``|`` becomes ``=7C``, ``=`` becomes ``=3D``), and are
decoded again when points are listed.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.core.exceptions import (
    PolicyError,
    ResourceNotFoundError,
)
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_TIER,
    LegalHold,
    RecoveryPoint,
    Status,
    ensure_aware,
    is_owned,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = [
    "CLUSTER_API",
    "INSTANCE_API",
    "OUR_PREFIX",
    "Api",
    "RdsBase",
    "decode_tag",
    "encode_tag",
    "identifier",
    "region_of",
    "sha8",
]

_GIB = 1024**3
_TAG_VALUE_MAX = 256
OUR_PREFIX = "backuppolicy:"
# RDS tag values: Unicode letters, digits, white space and _ . : / + - @ ("=" is our escape).
_TAG_UNSAFE_RE = re.compile(r"[^\w .:/+\-@]")
_ESCAPE_RE = re.compile(r"=([0-9A-F]{2})((?:=[0-9A-F]{2})*)")


def sha8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def identifier(text: str, *, max_length: int) -> str:
    """Make *text* a valid RDS identifier: [a-z0-9-], starts with a letter, no ``--``."""
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not clean or not clean[0].isalpha():
        clean = f"bp-{clean}".rstrip("-")
    if len(clean) > max_length:
        clean = clean[: max_length - 9].rstrip("-") + "-" + sha8(text)
    return clean


def encode_tag(value: str, *, field: str) -> str:
    """Escape characters RDS refuses in tag values (``=XX`` per UTF-8 byte)."""

    def escape(match: re.Match[str]) -> str:
        return "".join(f"={byte:02X}" for byte in match.group().encode())

    encoded = _TAG_UNSAFE_RE.sub(escape, value)
    if len(encoded) > _TAG_VALUE_MAX:
        raise PolicyError.for_field(
            field, f"at most {_TAG_VALUE_MAX} characters once encoded for RDS", value
        )
    return encoded


def decode_tag(value: str) -> str:
    def unescape(match: re.Match[str]) -> str:
        data = bytes(int(part, 16) for part in match.group()[1:].split("="))
        return data.decode(errors="replace")

    return _ESCAPE_RE.sub(unescape, value)


def _aware_utc(value: object) -> datetime | None:
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


def region_of(point: RecoveryPoint, default: str) -> str:
    region = point.details.get("region")
    if isinstance(region, str) and region:
        return region
    parts = point.location.split(":")
    if len(parts) == 3 and parts[0] == "aws" and parts[2]:  # noqa: PLR2004
        return parts[2]
    return default


@attrs.frozen
class Api:
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


INSTANCE_API = Api(
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
CLUSTER_API = Api(
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


class RdsBase(AwsBackend):
    """The constructor, the API names (``_api``) and the points of the RDS targets."""

    _api: Api

    def __init__(
        self,
        resource_id: str,
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
        if not isinstance(resource_id, str) or not resource_id:
            raise PolicyError.for_field(self._api.resource_param, "a non-empty string", resource_id)
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise PolicyError.for_field("max_workers", "None or an integer >= 1", max_workers)
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
            tags[key] = decode_tag(value) if key.startswith(OUR_PREFIX) else value
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
        return self._describe_snapshot(point.id, region_of(point, self.region))

    # ----------------------------------------------------------------- create

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
