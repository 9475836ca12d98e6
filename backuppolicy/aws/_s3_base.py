"""The core of `backuppolicy.aws.s3.S3Bucket`: its configuration and its shared primitives.

`S3Base` holds the target's bucket, prefix, copy stores and settings cache, and how it reads
the bucket: versions listed as points (`S3Base._entries`, `S3Base._group_points`), heads and
tags of a version, Object Lock holds, where a point lives (the bucket or a copy store,
`S3Base._locate`) and the lines of a manifest. The operations are mixins on it, one module
each: ``_s3_access`` (object capabilities for checks and probes), ``_s3_transfer``
(server-side copies, batched deletes), ``_s3_retention``, ``_s3_restore`` and ``_s3_copy``;
`backuppolicy.aws.s3.S3Bucket` composes them.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs
import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._s3_inventory import InventoryConfig
from backuppolicy.aws._s3_listing import Entry, Prefetcher, entries_of_page, group_by_key
from backuppolicy.aws._s3_pool import Requests
from backuppolicy.core._bounded import BoundedCache
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ResourceNotFoundError,
    UnsafeArchiveError,
)
from backuppolicy.core.model import TAG_HOLD, LegalHold, RecoveryPoint

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from types_boto3_s3.type_defs import HeadObjectOutputTypeDef, ListObjectVersionsOutputTypeDef

__all__ = [
    "KIND_MANIFEST",
    "KIND_MARKER",
    "KIND_VERSION",
    "MANIFEST_FORMAT",
    "PREFETCH_PAGES",
    "CopyStore",
    "Loc",
    "S3Base",
    "encode_tags",
    "hold_from_tag",
    "hold_tag",
    "null_version_refused",
    "parse_store",
    "s3_url",
    "split_id",
    "utcnow",
]

KIND_VERSION = "s3-version"
KIND_MARKER = "s3-delete-marker"
KIND_MANIFEST = "s3-manifest"
MANIFEST_FORMAT = "backuppolicy-s3-manifest/1"
_MAX_MANIFEST_LINE = 64 * 1024  # one entry: a key of at most 1,024 bytes, a version id, an ETag
_LINE_CHUNK = 64 * 1024
_MAX_TAG_VALUE = 256
_NO_CONFIG_CODES = frozenset(
    {
        "ObjectLockConfigurationNotFoundError",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchLifecycleConfiguration",
    }
)
HEAD_CACHE_ENTRIES = 4096
"""Versions whose immutable ``HeadObject`` fields a target keeps (`S3Base._listed_head`)."""
_IMMUTABLE_HEAD = ("Metadata", "ContentLength", "LastModified", "VersionId", "ETag")
"""What ``HeadObject`` returns that never changes for one version id (no Object Lock field)."""
PREFETCH_PAGES = 4
"""Pages of ``ListObjectVersions`` read ahead by `S3Base._entries` with ``read_ahead``."""


class _Stream(Protocol):
    def read(self, amt: int, /) -> bytes: ...


def _bounded_lines(body: _Stream, where: str) -> Iterator[bytes]:
    """The non-empty lines of a manifest stream; a line over `_MAX_MANIFEST_LINE` is refused."""
    pending = b""
    while chunk := body.read(_LINE_CHUNK):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if len(pending) > _MAX_MANIFEST_LINE or any(len(x) > _MAX_MANIFEST_LINE for x in lines):
            reason = f"has a line longer than {_MAX_MANIFEST_LINE} bytes; it was not read"
            msg = f"manifest {where} {reason}"
            raise UnsafeArchiveError(msg, result={"member": where, "reason": reason})
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending


def null_version_refused(exc: BackendError, version_id: str | None) -> bool:
    """Whether *exc* is a bare 400 to ``HeadObject`` with ``versionId=null``.

    S3 accepts ``versionId=null`` in every bucket. moto answers HeadObject with a bare 400
    (no error code) when the bucket's versioning was never enabled, where the null version is
    the key's only version; callers then repeat the request without the version id.
    """
    return version_id == "null" and exc.code in {"400", "BadRequest"}


def split_id(point_id: str) -> tuple[str, str]:
    key, sep, version = point_id.rpartition("@")
    if not sep or not key or not version:
        raise PolicyError.for_field("point.id", "'<key>@<version id>'", point_id)
    return key, version


def s3_url(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def _parse_s3_url(value: object, *, field: str) -> tuple[str, str]:
    if isinstance(value, S3Base):
        return value.bucket, value.prefix
    if not isinstance(value, str) or not value.startswith("s3://") or len(value) <= len("s3://"):
        raise PolicyError.for_field(field, "an 's3://bucket/prefix' URL or an S3Bucket", value)
    bucket, _, prefix = value[len("s3://") :].partition("/")
    if not bucket:
        raise PolicyError.for_field(field, "an 's3://bucket/prefix' URL or an S3Bucket", value)
    return bucket, prefix


def parse_store(value: object, *, field: str) -> tuple[str, str]:
    """Bucket and prefix of a copy store; a prefix is a folder (``"web-apps"`` -> ``"web-apps/"``)."""
    bucket, prefix = _parse_s3_url(value, field=field)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


@attrs.frozen
class CopyStore:
    """A bucket prefix that holds copies of the target's manifests, and the tier of those copies."""

    bucket: str
    prefix: str
    tier: str

    @property
    def url(self) -> str:
        return s3_url(self.bucket, self.prefix)


def _copy_stores(value: object) -> tuple[CopyStore, ...]:
    items: Iterable[object]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = value
    else:
        raise PolicyError.for_field(
            "copy_stores", "a mapping of 's3://bucket/prefix' URLs to tier names", value
        )
    stores: dict[tuple[str, str], CopyStore] = {}
    for index, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:  # noqa: PLR2004 - (url, tier) pairs
            raise PolicyError.for_field(f"copy_stores[{index}]", "a (url, tier) pair", item)
        url, tier = item
        bucket, prefix = parse_store(url, field=f"copy_stores[{index}]")
        if not isinstance(tier, str) or not tier:
            raise PolicyError.for_field(f"copy_stores[{url!r}]", "a non-empty tier name", tier)
        stores[bucket, prefix] = CopyStore(bucket=bucket, prefix=prefix, tier=tier)
    return tuple(stores.values())


@attrs.frozen
class Loc:
    """Where a point's object lives: in the target's bucket, or in a copy store."""

    bucket: str
    key: str
    version: str
    region: str | None = None
    store: CopyStore | None = None


def hold_tag(hold: LegalHold) -> str:
    """S3 tag values allow letters, digits, spaces and ``_.:/=+-@``: the hold tag is base64url."""
    value = "b64:" + base64.urlsafe_b64encode(hold.to_tag().encode()).decode()
    if len(value) > _MAX_TAG_VALUE:
        raise PolicyError.for_field(
            "hold", f"a hold whose encoded tag fits {_MAX_TAG_VALUE} characters", hold
        )
    return value


def hold_from_tag(value: str) -> LegalHold:
    if value.startswith("b64:"):
        with contextlib.suppress(ValueError):
            value = base64.urlsafe_b64decode(value[4:].encode()).decode()
    return LegalHold.from_tag(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def encode_tags(tags: Mapping[str, str]) -> str:
    from urllib.parse import urlencode  # noqa: PLC0415 - only needed here

    return urlencode(tags)


class S3Base(AwsBackend):
    """The configuration of an S3 target and the primitives its operations share.

    See `backuppolicy.aws.s3.S3Bucket`, which documents the arguments.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, BaseClient] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        account_id: str | None = None,
        manage_noncurrent: bool = True,
        internal_prefix: str = "_backuppolicy/",
        max_pool_connections: int = 32,
        copy_stores: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        inventory: Mapping[str, object] | InventoryConfig | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise PolicyError.for_field("bucket", "a non-empty bucket name", bucket)
        if not isinstance(prefix, str):
            raise PolicyError.for_field("prefix", "a string", prefix)
        if not isinstance(internal_prefix, str) or not internal_prefix.endswith("/"):
            raise PolicyError.for_field(
                "internal_prefix", "a prefix ending in '/'", internal_prefix
            )
        pool = Config(max_pool_connections=max_pool_connections)
        super().__init__(
            name or (f"{bucket}/{prefix}" if prefix else bucket),
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=pool.merge(config) if config else pool,
            retry=retry,
        )
        self.bucket = bucket
        self.prefix = prefix
        self.policy = policy
        self.manage_noncurrent = manage_noncurrent
        self.internal_prefix = internal_prefix
        self._account_id = account_id
        self._object_lock: bool | None = None
        self._heads: BoundedCache[dict[str, Any]] = BoundedCache(entries=HEAD_CACHE_ENTRIES)
        self._locked_buckets: set[str] = set()
        self._copy_stores = _copy_stores(copy_stores)
        self.inventory = InventoryConfig.of(inventory)
        self._store_regions: dict[str, str] = {}
        self.scratch_store: CopyStore | None = None
        """Where restore tests copy to instead of the target's bucket (an off-site sibling's store)."""
        self.stores_only = False
        """Whether `list_points` lists the copy stores only (an off-site sibling, `_s3_offsite`)."""
        for store in self._copy_stores:
            if store.bucket == bucket and (
                store.prefix.startswith(prefix) or prefix.startswith(store.prefix)
            ):
                raise PolicyError.for_field(
                    "copy_stores",
                    f"stores outside the protected objects {self.url!r}",
                    store.url,
                )

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return s3_url(self.bucket, self.prefix)

    def versioning(self) -> str:
        """Versioning status: ``"Enabled"``, ``"Suspended"`` or ``"Disabled"`` (never enabled)."""
        return self.versioning_of(self.bucket)

    def versioning_of(self, bucket: str) -> str:
        """Versioning status of *bucket* (this target's or a restore's destination)."""
        result = self.call("s3", "get_bucket_versioning", resource=bucket, Bucket=bucket)
        return str(result.get("Status") or "Disabled")

    def _optional(self, operation: str) -> dict[str, Any]:
        try:
            return self.call("s3", operation, resource=self.bucket, Bucket=self.bucket)
        except BackendError as exc:
            if exc.code in _NO_CONFIG_CODES:
                return {}
            raise

    def _lock_enabled(self) -> bool:
        if self._object_lock is None:
            lock = self._optional("get_object_lock_configuration").get(
                "ObjectLockConfiguration", {}
            )
            self._object_lock = lock.get("ObjectLockEnabled") == "Enabled"
        return self._object_lock

    def _lock_free(self, bucket: str, region: str | None = None) -> bool:
        """Whether *bucket* provably has no Object Lock (one ``GetObjectLockConfiguration``).

        Only S3's ``ObjectLockConfigurationNotFoundError`` proves it: Object Lock can be enabled
        on an existing versioned bucket and never disabled again ("After you enable Object Lock
        on a bucket, you can't disable Object Lock",
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-configure.html), and
        without it no version carries a retention or a legal hold. Any other answer (a
        configuration, access denied) is ``False``: the caller then reads the lock fields as
        before. A bucket found with Object Lock is not asked again.
        """
        if bucket in self._locked_buckets:
            return False  # Object Lock, once enabled, stays enabled: no need to ask again
        try:
            result = self.call(
                "s3",
                "get_object_lock_configuration",
                resource=s3_url(bucket, ""),
                region=region,
                Bucket=bucket,
            )
        except BackendError as exc:
            free = exc.code == "ObjectLockConfigurationNotFoundError"
        else:
            free = False
            if result.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled":
                self._locked_buckets.add(bucket)
        if bucket == self.bucket and (free or bucket in self._locked_buckets):
            self._object_lock = not free
        return free

    def _lock_check(self, bucket: str, region: str | None = None) -> Callable[[], bool]:
        """`_lock_free` of *bucket*, asked at most once, on the first call (one per listing)."""
        answer: list[bool] = []

        def check() -> bool:
            if not answer:
                answer.append(self._lock_free(bucket, region))
            return answer[0]

        return check

    def _listed_head(
        self,
        key: str,
        version_id: str,
        lock_free: Callable[[], bool],
        *,
        bucket: str | None = None,
        region: str | None = None,
    ) -> Mapping[str, Any] | None:
        """``HeadObject`` of a listed version, or its kept immutable fields when that is exact.

        A version's user metadata, size, ``LastModified`` and ETag never change. S3 changes
        metadata only by copying the object to a new version ("After you upload the object,
        you cannot modify object metadata. The only way to modify object metadata is to make a
        copy of the object and set the metadata",
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html), and gives
        every object stored in a versioning-enabled bucket a unique version id
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/AddingObjectstoVersioningEnabledBuckets.html).
        Its Object Lock retention and legal hold can change, so the kept fields stand for the
        whole answer only when *lock_free* (asked once per listing, on its first version)
        proves the bucket has no Object Lock. The ``null`` version is never kept: a write
        while versioning is suspended replaces it under the same id
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/AddingObjectstoVersionSuspendedBuckets.html).
        Tags are mutable and never kept. ``None``: the version is gone.
        """
        where = (bucket or self.bucket, key, version_id)
        keep = version_id != "null"
        if keep and lock_free():
            kept = self._heads.get(where)
            if kept is not None:
                return kept
        head = self._head_or_none(key, version_id, bucket=bucket, region=region)
        if head is not None and keep:
            fields: Mapping[str, Any] = head
            self._heads.put(where, {f: fields[f] for f in _IMMUTABLE_HEAD if f in fields})
        return head

    @property
    def location(self) -> str:
        """``aws:<account>:<region>`` of the bucket (the account asked from STS once)."""
        return f"aws:{self._account()}:{self.region}"

    def _account(self) -> str:
        if self._account_id is None:
            identity = self.call("sts", "get_caller_identity")
            self._account_id = str(identity["Account"])
        return self._account_id

    def _store_region(self, bucket: str) -> str:
        """The region of a copy store's bucket (``GetBucketLocation`` once per bucket)."""
        region = self._store_regions.get(bucket)
        if region is None:
            result = self.call(
                "s3", "get_bucket_location", resource=s3_url(bucket, ""), Bucket=bucket
            )
            constraint = str(result.get("LocationConstraint") or "us-east-1")
            region = self._store_regions[bucket] = {"EU": "eu-west-1"}.get(constraint, constraint)
        return region

    def _store_for(self, bucket: str, prefix: str, tier: str) -> CopyStore:
        """The configured store at *bucket*/*prefix*, else an ad-hoc one of *tier*."""
        for store in self._copy_stores:
            if (store.bucket, store.prefix) == (bucket, prefix):
                return store
        return CopyStore(bucket=bucket, prefix=prefix, tier=tier)

    # Listing ----------------------------------------------------------------

    def _entries(
        self,
        prefix: str | None = None,
        *,
        requests: Requests | None = None,
        page_size: int | None = None,
        read_ahead: bool = False,
        bucket: str | None = None,
        region: str | None = None,
    ) -> Iterator[Entry]:
        params: dict[str, str | int] = {
            "Bucket": bucket or self.bucket,
            "Prefix": self.prefix if prefix is None else prefix,
        }
        if page_size is not None:
            params["MaxKeys"] = page_size
        pages = cast(
            "Iterator[ListObjectVersionsOutputTypeDef]",
            self.paginate(
                "s3",
                "list_object_versions",
                resource=s3_url(str(params["Bucket"]), str(params["Prefix"])),
                region=region,
                **params,
            ),
        )
        depth = PREFETCH_PAGES if read_ahead else 0
        for page in Prefetcher(pages, depth) if depth else pages:
            if requests is not None:
                requests.add("ListObjectVersions")
            yield from entries_of_page(page)

    def _data_groups(
        self,
        *,
        requests: Requests | None = None,
        page_size: int | None = None,
        read_ahead: bool = False,
    ) -> Iterator[list[Entry]]:
        internal = self.internal_prefix
        entries = (
            e
            for e in self._entries(requests=requests, page_size=page_size, read_ahead=read_ahead)
            if not e.key.startswith(internal)
        )
        yield from group_by_key(entries)

    def _version_point(
        self, entry: Entry, *, replaced_at: datetime | None, current: bool, ordinal: int
    ) -> RecoveryPoint:
        created = entry.last_modified if replaced_at is None else replaced_at
        return RecoveryPoint(
            id=f"{entry.key}@{entry.version_id}",
            target=self.name,
            created_at=created.astimezone(UTC),
            ordinal=ordinal,
            kind=KIND_MARKER if entry.is_marker else KIND_VERSION,
            location=self.location,
            size_bytes=None if entry.is_marker else entry.size,
            managed=self.manage_noncurrent and not current and not entry.is_marker,
            details={
                "bucket": self.bucket,
                "key": entry.key,
                "version_id": entry.version_id,
                "last_modified": entry.last_modified.astimezone(UTC),
                "noncurrent_since": None if replaced_at is None else replaced_at.astimezone(UTC),
                "is_latest": current,
                "etag": entry.etag,
                "storage_class": entry.storage_class,
            },
        )

    def _group_points(self, group: list[Entry], *, markers: bool) -> Iterator[RecoveryPoint]:
        """The points of one key's entries (listing order: newest first).

        Each point's ``ordinal`` is its place in S3's listing, counted from the oldest entry
        (the larger is newer). ``LastModified`` has one-second resolution and version ids
        carry no time order on AWS, so the listing's order is what breaks ties of equal times.
        """
        replaced_at: datetime | None = None
        last = len(group) - 1
        for index, entry in enumerate(group):
            if markers or not entry.is_marker:
                yield self._version_point(
                    entry, replaced_at=replaced_at, current=index == 0, ordinal=last - index
                )
            replaced_at = entry.last_modified

    # Reading versions and manifests ----------------------------------------------------------

    @property
    def _manifest_prefix(self) -> str:
        return f"{self.internal_prefix}manifests/{self.name}/"

    def _tags_of(
        self, key: str, version_id: str, *, bucket: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        bucket = bucket or self.bucket
        result = self.call(
            "s3",
            "get_object_tagging",
            resource=s3_url(bucket, key),
            region=region,
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
        )
        return {t["Key"]: t["Value"] for t in result.get("TagSet", [])}

    def _head_or_none(
        self,
        key: str,
        version_id: str | None,
        *,
        bucket: str | None = None,
        region: str | None = None,
    ) -> HeadObjectOutputTypeDef | None:
        bucket = bucket or self.bucket
        params: dict[str, str] = {"Bucket": bucket, "Key": key}
        # "null" is a version id like any other: S3 addresses the version written before
        # versioning was enabled (and every object of an unversioned bucket) as versionId=null.
        # Dropping it would read the current version instead.
        if version_id is not None:
            params["VersionId"] = version_id
        resource = s3_url(bucket, key)
        try:
            head = self.call("s3", "head_object", resource=resource, region=region, **params)
        except ResourceNotFoundError:
            return None
        except BackendError as exc:
            if not null_version_refused(exc, version_id):
                raise
        else:
            return cast("HeadObjectOutputTypeDef", head)
        # An emulator (moto) refused versionId=null in a never-versioned bucket, where the null
        # version is the key's only version: the request without it reads the same object.
        del params["VersionId"]
        try:
            head = self.call("s3", "head_object", resource=resource, region=region, **params)
        except ResourceNotFoundError:
            return None
        return cast("HeadObjectOutputTypeDef", head)

    def _lock_hold(
        self,
        head: Mapping[str, object],
        key: str,
        version_id: str,
        now: datetime,
        *,
        bucket: str | None = None,
        region: str | None = None,
    ) -> LegalHold | None:
        """The Object Lock legal hold of a version, as a `LegalHold`.

        Object Lock *retention* is not a hold: it is the point's `PointLock` (see
        ``_s3_lock.point_lock_of``), which expires on its own.
        """
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            tags = self._tags_of(key, version_id, bucket=bucket, region=region)
            if TAG_HOLD in tags:
                return hold_from_tag(tags[TAG_HOLD])
            return LegalHold(reason="S3 Object Lock legal hold")
        del now  # retention is the point's lock, not a hold
        return None

    def read_manifest(self, point: RecoveryPoint) -> Iterator[dict[str, Any]]:
        """Stream the entries (``key``, ``version_id``, ``etag``, ``size``) of a manifest point.

        The entries of a manifest copy name the copied versions in its store (``details["bucket"]``).
        """
        return self._manifest_lines(self._locate(point, KIND_MANIFEST))

    def _manifest_lines(self, loc: Loc) -> Iterator[dict[str, Any]]:
        result = self.call(
            "s3",
            "get_object",
            resource=s3_url(loc.bucket, loc.key),
            region=loc.region,
            Bucket=loc.bucket,
            Key=loc.key,
            VersionId=loc.version,
        )
        body = result["Body"]
        try:
            for raw in _bounded_lines(body, s3_url(loc.bucket, loc.key)):
                line = json.loads(raw)
                if "format" not in line:
                    yield line
        finally:
            body.close()

    def _manifest_sources(self, point: RecoveryPoint) -> Iterator[tuple[str, str, int]]:
        for line in self.read_manifest(point):
            yield str(line["key"]), str(line["version_id"]), int(line["size"])

    def _locate(self, point: RecoveryPoint, *kinds: str) -> Loc:
        """Where *point* lives, in the target's bucket or in a copy store.

        ``details["store"]`` marks a copy (bucket, key, version and region in ``details``); any
        other point is ``<key>@<version>`` in the target's bucket.
        """
        if point.kind not in kinds:
            raise PolicyError.for_field(
                "point.kind", " or ".join(repr(k) for k in kinds), point.kind
            )
        if point.target != self.name:
            raise PolicyError.for_field("point.target", repr(self.name), point.target)
        store_url = point.details.get("store")
        if store_url is None:
            key, version = split_id(point.id)
            return Loc(bucket=self.bucket, key=key, version=version)
        bucket, prefix = parse_store(store_url, field="point.details.store")
        parts = {name: point.details.get(name) for name in ("bucket", "key", "version_id")}
        for name, value in parts.items():
            if not isinstance(value, str) or not value:
                raise PolicyError.for_field(f"point.details.{name}", "a non-empty string", value)
        if parts["bucket"] != bucket:
            raise PolicyError.for_field("point.details.bucket", repr(bucket), parts["bucket"])
        region = point.details.get("region")
        return Loc(
            bucket=str(parts["bucket"]),
            key=str(parts["key"]),
            version=str(parts["version_id"]),
            region=region if isinstance(region, str) and region else None,
            store=self._store_for(bucket, prefix, point.tier),
        )

    def _relocate(self, key: str, dest_prefix: str) -> str:
        """Where *key* goes under *dest_prefix*: its path relative to the prefix (or internal root)."""
        if key.startswith(self.internal_prefix):
            return dest_prefix + key.removeprefix(self.internal_prefix)
        return dest_prefix + key.removeprefix(self.prefix)
