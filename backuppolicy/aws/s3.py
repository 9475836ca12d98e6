"""S3 buckets as a backup target: versions as recovery points, retention, point-in-time restore.

S3 *versioning* is the backup mechanism: every overwrite or delete of an object under the
target's prefix leaves the previous version behind as a *noncurrent* version. `S3Bucket`:

* checks and enables versioning, and reads MFA delete, Object Lock, default encryption and
  the public access block (`S3Bucket.settings`) for verification;
* streams the versions under the prefix as `RecoveryPoint` objects (kind ``"s3-version"``,
  id ``"<key>@<version id>"``), with one ``ListObjectVersions`` request per 1000 entries;
* plans noncurrent-version retention **per key** with any retention rule
  (`S3Bucket.noncurrent_retention_plan`) and applies it with ``DeleteObjects`` in batches of at
  most 1000 (`S3Bucket.apply_noncurrent_retention`), or compiles it to a lifecycle rule that
  lets AWS do the same (`S3Bucket.noncurrent_lifecycle_rule`);
* places and reads legal holds through S3 Object Lock;
* records a *manifest* on `S3Bucket.create_backup`: a small JSON-lines object listing the
  current version of every key, a restorable point in time;
* restores the prefix to any time T (`S3Bucket.restore_to_time`) into another bucket or
  prefix, or in place, with server-side copies and bounded concurrency;
* copies manifests (and the versions they list) into *copy stores* (other buckets, other
  regions) and lists those copies as points of their tier (``copy_stores=``), so off-site
  copies are refreshed, pruned, restored and verified like the source's manifests.

Time granularity: S3 listings report ``LastModified`` in whole seconds. A version whose
``LastModified`` second is *S* counts as written at *S*: it is part of the state at *when*
exactly when ``S <= floor(when)``. Every write made during the same second as *when* is
therefore included, even one made a fraction of a second after *when*.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import json
import math
import queue
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import attrs
import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._iam_statements import PARTITION, Grant, by_workflow
from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    UnsafeArchiveError,
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
from backuppolicy.core.targets import Destination, IsolationProfile, RestoredResource

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "DELETE_BATCH_LIMIT",
    "MAX_COPY_OBJECT_SIZE",
    "KeyRetentionPlan",
    "RestoreReport",
    "RetentionRunReport",
    "S3Bucket",
    "S3Settings",
]

DELETE_BATCH_LIMIT = 1000
"""Most keys one ``DeleteObjects`` request may carry (an AWS limit)."""
MAX_COPY_OBJECT_SIZE = 5 * 1024**3
"""Largest object ``CopyObject`` copies in one request (5 GiB); larger ones use multipart copy."""
_MIN_PART_SIZE = 512 * 1024**2
_MAX_PARTS = 10_000
_KIND_VERSION = "s3-version"
_KIND_MARKER = "s3-delete-marker"
_KIND_MANIFEST = "s3-manifest"
_MANIFEST_FORMAT = "backuppolicy-s3-manifest/1"
_MAX_MANIFEST_LINE = 64 * 1024  # one entry: a key of at most 1,024 bytes, a version id, an ETag
_LINE_CHUNK = 64 * 1024


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


_MAX_TAG_VALUE = 256
_CURRENT_REASON = "current version of the key: never deleted"
_NO_CONFIG_CODES = frozenset(
    {
        "ObjectLockConfigurationNotFoundError",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchLifecycleConfiguration",
    }
)


class _RetentionPlan(Protocol):
    @property
    def keep(self) -> Sequence[RecoveryPoint]: ...
    @property
    def delete(self) -> Sequence[RecoveryPoint]: ...
    @property
    def reasons(self) -> Mapping[str, Sequence[str]]: ...


class _Rule(Protocol):
    def plan(
        self, points: Iterable[RecoveryPoint], *, now: datetime, tz: str | tzinfo = ...
    ) -> _RetentionPlan: ...


# Values ----------------------------------------------------------------


@attrs.frozen
class S3Settings:
    """Protection settings of a bucket, as read by `S3Bucket.settings`.

    Attributes:
        bucket: Bucket name.
        versioning: ``"Enabled"``, ``"Suspended"`` or ``"Disabled"`` (never enabled).
        mfa_delete: Whether MFA delete is enabled (it can only be changed by the root user).
        object_lock: Whether Object Lock is enabled on the bucket.
        object_lock_default: Default retention (``{"Mode": ..., "Days": ...}``), if any.
        encryption: Default encryption algorithm (``"AES256"``, ``"aws:kms"``), or ``None`` when
            the bucket has none. AWS gives every bucket SSE-S3 (``"AES256"``) since January 2023,
            so ``None`` means an emulator or a non-AWS S3, and counts as unencrypted.
        kms_key_id: KMS key of the default encryption, if any.
        public_access_block: The four public-access-block flags (empty if none is set).
    """

    bucket: str
    versioning: str
    mfa_delete: bool = False
    object_lock: bool = False
    object_lock_default: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    encryption: str | None = None
    kms_key_id: str | None = None
    public_access_block: Mapping[str, bool] = attrs.field(factory=dict, hash=False)

    @property
    def versioned(self) -> bool:
        """Whether versioning is enabled."""
        return self.versioning == "Enabled"

    @property
    def blocks_public_access(self) -> bool:
        """Whether all four public-access-block flags are set."""
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        return all(self.public_access_block.get(flag, False) for flag in flags)


@attrs.frozen
class RestoreReport:
    """What `S3Bucket.restore_to_time` did (or, with ``dry_run``, would do).

    Attributes:
        when: The point in time restored to (UTC).
        source: ``s3://bucket/prefix`` restored from.
        destination: ``s3://bucket/prefix`` restored into.
        in_place: Whether the source was restored onto itself.
        dry_run: Whether nothing was written.
        keys: Keys seen in the listing.
        restored: Keys copied from their version at *when* (or that would be).
        deleted: Keys removed because they did not exist at *when* (in place only; a delete marker
            is added, so nothing is lost).
        skipped: Keys left alone, by reason (``"unchanged"``, ``"deleted at T"``,
            ``"created after T"``).
        ambiguous: Keys where a delete marker and a version share the deciding second; the version
            was taken as the newer one (restoring rather than losing data).
        bytes_copied: Bytes copied (sizes from the listing).
        requests: S3 requests made, by API operation.
    """

    when: datetime
    source: str
    destination: str
    in_place: bool
    dry_run: bool
    keys: int
    restored: int
    deleted: int
    skipped: Mapping[str, int] = attrs.field(hash=False)
    ambiguous: int
    bytes_copied: int
    requests: Mapping[str, int] = attrs.field(hash=False)

    @property
    def skipped_total(self) -> int:
        """All skipped keys."""
        return sum(self.skipped.values())

    @property
    def total_requests(self) -> int:
        """All S3 requests made."""
        return sum(self.requests.values())


@attrs.frozen
class KeyRetentionPlan:
    """The retention plan of the versions of one key (see `S3Bucket.noncurrent_retention_plan`).

    Attributes:
        key: The object key.
        keep: Versions (and delete markers) kept, newest first.
        delete: Noncurrent versions to delete, newest first.
        reasons: Reasons by point id, for every kept and deleted point.
    """

    key: str
    keep: tuple[RecoveryPoint, ...]
    delete: tuple[RecoveryPoint, ...]
    reasons: Mapping[str, tuple[str, ...]] = attrs.field(hash=False)


@attrs.frozen
class RetentionRunReport:
    """What `S3Bucket.apply_noncurrent_retention` did (or would do, with ``dry_run``).

    Attributes:
        keys: Keys planned.
        kept: Points kept (current versions and delete markers included).
        deleted: Noncurrent versions deleted (planned, with ``dry_run``).
        held: Versions the plan would delete but Object Lock protects (skipped).
        batches: ``DeleteObjects`` requests made.
        dry_run: Whether nothing was deleted.
        requests: S3 requests made, by API operation.
    """

    keys: int
    kept: int
    deleted: int
    held: int
    batches: int
    dry_run: bool
    requests: Mapping[str, int] = attrs.field(hash=False)


@attrs.frozen
class _Entry:
    """One row of ListObjectVersions: a version or a delete marker."""

    key: str
    version_id: str
    last_modified: datetime
    is_latest: bool
    is_marker: bool
    size: int = 0
    etag: str = ""
    storage_class: str = ""

    @property
    def second(self) -> int:
        return math.floor(self.last_modified.timestamp())


# Helpers ----------------------------------------------------------------


def null_version_refused(exc: BackendError, version_id: str | None) -> bool:
    """Whether *exc* is a bare 400 to ``HeadObject`` with ``versionId=null``.

    S3 accepts ``versionId=null`` in every bucket. moto answers HeadObject with a bare 400
    (no error code) when the bucket's versioning was never enabled, where the null version is
    the key's only version; callers then repeat the request without the version id.
    """
    return version_id == "null" and exc.code in {"400", "BadRequest"}


def _split_id(point_id: str) -> tuple[str, str]:
    key, sep, version = point_id.rpartition("@")
    if not sep or not key or not version:
        raise PolicyError.for_field("point.id", "'<key>@<version id>'", point_id)
    return key, version


def _entries_of_page(page: Mapping[str, Any]) -> Iterator[_Entry]:
    """Merge a page's Versions and DeleteMarkers into listing order: key, then newest first.

    Both lists come sorted that way. At equal key and second the ``IsLatest`` entry comes
    first, then versions before delete markers (S3 does not say which came first).
    """
    versions = [
        _Entry(
            key=v["Key"],
            version_id=str(v.get("VersionId") or "null"),
            last_modified=v["LastModified"],
            is_latest=bool(v.get("IsLatest")),
            is_marker=False,
            size=int(v.get("Size") or 0),
            etag=str(v.get("ETag", "")).strip('"'),
            storage_class=str(v.get("StorageClass", "")),
        )
        for v in page.get("Versions", ())
    ]
    markers = [
        _Entry(
            key=d["Key"],
            version_id=str(d.get("VersionId") or "null"),
            last_modified=d["LastModified"],
            is_latest=bool(d.get("IsLatest")),
            is_marker=True,
        )
        for d in page.get("DeleteMarkers", ())
    ]

    def order(entry: _Entry) -> tuple[str, int, int]:
        return (entry.key, -entry.second, 0 if entry.is_latest else 1)

    yield from heapq.merge(versions, markers, key=order)


def _group_by_key(entries: Iterable[_Entry]) -> Iterator[list[_Entry]]:
    """Group consecutive entries of the same key, across page boundaries."""
    group: list[_Entry] = []
    for entry in entries:
        if group and entry.key != group[0].key:
            yield group
            group = []
        group.append(entry)
    if group:
        yield group


_PREFETCH_PAGES = 4


class _Prefetcher:
    """Fetch up to *depth* pages ahead on a background thread, so listing overlaps the copies.

    Memory stays bounded by *depth* pages. An error of the listing is raised to the consumer;
    a consumer that stops early stops the fetcher after its current request.
    """

    def __init__(self, pages: Iterator[dict[str, Any]], depth: int) -> None:
        self._pages = pages
        self._slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _fetch(self) -> None:
        try:
            for page in self._pages:
                if not self._put(("page", page)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(("error", exc))
        else:
            self._put(("end", None))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        thread = threading.Thread(target=self._fetch, name="backuppolicy-s3-list", daemon=True)
        thread.start()
        try:
            while True:
                kind, item = self._slots.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            self._stop.set()


class _Requests:
    """Thread-safe count of requests by API operation."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self._counts[operation] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class _Pool:
    """A thread pool with a bounded queue that fails fast: the first worker error is raised."""

    def __init__(self, max_workers: int) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise PolicyError.for_field("max_workers", "an integer >= 1", max_workers)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="backuppolicy-s3")
        self._slots = threading.BoundedSemaphore(max_workers * 2)
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=exc is not None or bool(self._errors))
        if exc is None:
            self.raise_first()

    def raise_first(self) -> None:
        with self._lock:
            if self._errors:
                raise self._errors[0]

    def submit(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        self.raise_first()
        self._slots.acquire()
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done)

    def _done(self, future: Future[object]) -> None:
        self._slots.release()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            with self._lock:
                self._errors.append(error)


def _s3_url(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def _parse_s3_url(value: object, *, field: str) -> tuple[str, str]:
    if isinstance(value, S3Bucket):
        return value.bucket, value.prefix
    if not isinstance(value, str) or not value.startswith("s3://") or len(value) <= len("s3://"):
        raise PolicyError.for_field(field, "an 's3://bucket/prefix' URL or an S3Bucket", value)
    bucket, _, prefix = value[len("s3://") :].partition("/")
    if not bucket:
        raise PolicyError.for_field(field, "an 's3://bucket/prefix' URL or an S3Bucket", value)
    return bucket, prefix


def _parse_store(value: object, *, field: str) -> tuple[str, str]:
    """Bucket and prefix of a copy store; a prefix is a folder (``"web-apps"`` -> ``"web-apps/"``)."""
    bucket, prefix = _parse_s3_url(value, field=field)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


@attrs.frozen
class _CopyStore:
    """A bucket prefix that holds copies of the target's manifests, and the tier of those copies."""

    bucket: str
    prefix: str
    tier: str

    @property
    def url(self) -> str:
        return _s3_url(self.bucket, self.prefix)


def _copy_stores(value: object) -> tuple[_CopyStore, ...]:
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = value
    else:
        raise PolicyError.for_field(
            "copy_stores", "a mapping of 's3://bucket/prefix' URLs to tier names", value
        )
    stores: dict[tuple[str, str], _CopyStore] = {}
    for index, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:  # noqa: PLR2004 - (url, tier) pairs
            raise PolicyError.for_field(f"copy_stores[{index}]", "a (url, tier) pair", item)
        url, tier = item
        bucket, prefix = _parse_store(url, field=f"copy_stores[{index}]")
        if not isinstance(tier, str) or not tier:
            raise PolicyError.for_field(f"copy_stores[{url!r}]", "a non-empty tier name", tier)
        stores[bucket, prefix] = _CopyStore(bucket=bucket, prefix=prefix, tier=tier)
    return tuple(stores.values())


@attrs.frozen
class _Loc:
    """Where a point's object lives: in the target's bucket, or in a copy store."""

    bucket: str
    key: str
    version: str
    region: str | None = None
    store: _CopyStore | None = None


# The target ----------------------------------------------------------------


class S3Bucket(AwsBackend):
    """The objects under a prefix of a versioned S3 bucket, as a backup target.

    Points:

    * ``kind="s3-version"``: one object version, ``id = f"{key}@{version_id}"`` (split on the
      last ``@``; version ids never contain one), ``target`` the target's `name`. A noncurrent
      version's ``created_at`` is the moment it stopped being the live object (the
      ``LastModified`` of the version or delete marker that replaced it): that is when it became
      a backup, the clock AWS's ``NoncurrentDays`` uses. The current version's ``created_at``
      is its ``LastModified``. The real ``LastModified`` is in ``details["last_modified"]``.
      Current versions are ``managed=False`` (never deleted: they are the live data);
      noncurrent versions are managed when *manage_noncurrent* is true.
    * ``kind="s3-manifest"``: written by `create_backup`, a JSON-lines object under
      ``<internal_prefix>manifests/<name>/`` listing the current version of every key; managed
      when it carries our ownership tags. Keys under *internal_prefix* are never treated as data.

    Copy stores (``copy_stores={"s3://offsite-bucket/web-apps": "offsite"}``): `copy` puts a
    manifest's copy at ``<store prefix>manifests/<name>/`` and the versions it lists at
    ``<store prefix><key relative to the prefix>``. `list_points` also lists the manifest copies
    found in every configured store, as ``kind="s3-manifest"`` points of the store's tier with
    ``id = "s3://<bucket>/<key>@<version id>"`` and ``details`` naming the store's bucket, key,
    version and region (asked once with ``GetBucketLocation``). Only manifest copies are points
    there: the copied data versions are not listed one by one (a manifest copy stands for them).
    A copy's manifest is rewritten to list the copied versions (their keys and version ids in the
    store), so `read_manifest`, `restore` and integrity checks read the copy itself, not the
    source. A copy keeps the source manifest's ``created_at`` and tags (legal hold aside) and gets
    ``backuppolicy:tier``.

    Example:
        >>> from backuppolicy import aws
        >>> assets = aws.S3Bucket("assets", prefix="img/", region="us-east-1")  # doctest: +SKIP
        >>> assets.ensure_versioning()                                          # doctest: +SKIP
        >>> report = assets.restore_to_time(when, dest_bucket="assets-restored") # doctest: +SKIP
        >>> report.restored, report.requests                                    # doctest: +SKIP
        (1998, {'ListObjectVersions': 10, 'CopyObject': 1998})

    Args:
        bucket: Bucket name.
        prefix: Key prefix of the protected objects (``""``: the whole bucket).
        name: Target name (default: ``bucket`` or ``bucket/prefix``).
        policy: Name of the policy (ownership tag of manifests).
        session: A `boto3.Session`.
        region: AWS region of the bucket.
        endpoint_url: Endpoint (moto server, LocalStack).
        clients: Ready clients by service name (``{"s3": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        account_id: AWS account id for ``location`` (default: asked from STS once).
        manage_noncurrent: Whether noncurrent versions may be deleted by retention.
        internal_prefix: Where manifests and restore-test copies live.
        max_pool_connections: HTTP connections per client (at least the concurrency you use).
        copy_stores: Stores that hold this target's copies, ``s3://bucket/prefix`` URL -> tier
            name (a mapping or ``(url, tier)`` pairs); their manifest copies are listed. A
            non-empty prefix is a folder: ``s3://b/web-apps`` means ``web-apps/``.

    Attributes:
        bucket: Bucket name.
        prefix: Key prefix of the protected objects.
        policy: Name of the policy.
        manage_noncurrent: Whether noncurrent versions are managed.
        internal_prefix: Prefix of manifests and restore-test copies.
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
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        account_id: str | None = None,
        manage_noncurrent: bool = True,
        internal_prefix: str = "_backuppolicy/",
        max_pool_connections: int = 32,
        copy_stores: Mapping[str, str] | Iterable[tuple[str, str]] = (),
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
        self._copy_stores = _copy_stores(copy_stores)
        self._store_regions: dict[str, str] = {}
        for store in self._copy_stores:
            if store.bucket == bucket and (
                store.prefix.startswith(prefix) or prefix.startswith(store.prefix)
            ):
                raise PolicyError.for_field(
                    "copy_stores",
                    f"stores outside the protected objects {self.url!r}",
                    store.url,
                )

    # -- the kind -------------------------------------------------------------------------

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

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
        """The target of *spec*: its bucket and prefix, its region (default *region*).

        The ``store`` of each copy tier (every tier after the first) that names one becomes a
        copy store of that tier.
        """
        settings = spec.settings
        return cls(
            settings["bucket"],
            prefix=settings.get("prefix", ""),
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=settings.get("region") or region,
            copy_stores={
                t.location["store"]: t.name
                for t in policy.tiers_for(spec)[1:]
                if t.location.get("store")
            },
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, Any]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in).

        S3 objects have no resource tags usable in conditions, so deletes are scoped by prefix.
        """
        bucket = f"arn:{PARTITION}:s3:::{spec.settings['bucket']}"
        data = f"{bucket}/{spec.settings.get('prefix', '')}*"
        internal = f"{bucket}/_backuppolicy/*"
        objects = (data, internal) if spec.settings.get("prefix") else (data,)
        return by_workflow(
            [
                Grant((), ("s3:ListBucketVersions",), (bucket,)),
                Grant((), ("s3:GetObjectVersion", "s3:GetObjectVersionTagging"), (internal,)),
                Grant(("backup", "prune"), ("s3:GetObject",), (internal,)),
                Grant(("backup", "verify"), ("s3:GetBucketVersioning",), (bucket,)),
                Grant(("backup",), ("s3:PutObject", "s3:PutObjectTagging"), (internal,)),
                Grant(("prune",), ("s3:DeleteObjectVersion",), objects),
                # HeadObject of each version and of its key's current version before deleting it.
                Grant(("prune",), ("s3:GetObject", "s3:GetObjectVersion"), objects),
                Grant(
                    ("verify",),
                    (
                        "s3:GetEncryptionConfiguration",
                        "s3:GetBucketPublicAccessBlock",
                        "s3:GetBucketObjectLockConfiguration",
                    ),
                    (bucket,),
                ),
                Grant(
                    ("restore-test",),
                    ("s3:GetObjectVersion", "s3:GetObjectVersionTagging"),
                    objects,
                ),
                Grant(
                    ("restore-test",),
                    ("s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObjectVersion"),
                    (internal,),
                ),
            ]
        )

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.S3Bucket(bucket={self.bucket!r}, prefix={self.prefix!r})>"

    @property
    def kind(self) -> str:
        """Registered target kind: ``"s3-bucket"``."""
        return "s3-bucket"

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return _s3_url(self.bucket, self.prefix)

    @property
    def copy_stores(self) -> dict[str, str]:
        """The configured copy stores: ``s3://bucket/prefix/`` URL -> tier name."""
        return {store.url: store.tier for store in self._copy_stores}

    # Settings ----------------------------------------------------------------

    def versioning(self) -> str:
        """Versioning status: ``"Enabled"``, ``"Suspended"`` or ``"Disabled"`` (never enabled)."""
        return self.versioning_of(self.bucket)

    # ----------------------------------------------------------------- restores: RestorableBucket

    def versioning_of(self, bucket: str) -> str:
        """Versioning status of *bucket* (this target's or a restore's destination)."""
        result = self.call("s3", "get_bucket_versioning", resource=bucket, Bucket=bucket)
        return str(result.get("Status") or "Disabled")

    def object_head(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> dict[str, Any]:
        """HeadObject of *key* in *bucket* (of its version *version_id*).

        Raises:
            ResourceNotFoundError: There is no such object (or version).
        """
        params: dict[str, Any] = {"VersionId": version_id} if version_id is not None else {}
        return self.call("s3", "head_object", resource=key, Bucket=bucket, Key=key, **params)

    def point_object(self, point: RecoveryPoint) -> tuple[str, str, str | None] | None:
        """``(bucket, key, version_id)`` of the object version or manifest *point* (`ObjectVersionPoints`)."""
        if point.kind not in (_KIND_VERSION, _KIND_MANIFEST):
            return None
        bucket = str(point.details.get("bucket") or self.bucket)
        key = point.details.get("key")
        version = point.details.get("version_id")
        if not key:
            key, _, version = point.id.rpartition("@")
        return bucket, str(key), None if version is None else str(version)

    def is_manifest(self, point: RecoveryPoint) -> bool:
        """Whether *point* is a manifest (`read_manifest` lists its object versions)."""
        return point.kind == _KIND_MANIFEST

    def object_version_head(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> dict[str, Any]:
        """HeadObject of version *version_id* of *key*, with its stored checksum (``ChecksumMode``).

        Raises:
            ResourceNotFoundError: There is no such object (or version).
        """
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:  # "null" too: the version written before versioning was enabled
            params["VersionId"] = version_id
        resource = f"s3://{bucket}/{key}"
        try:
            return self.call("s3", "head_object", resource=resource, region=region, **params)
        except BackendError as exc:
            if not null_version_refused(exc, version_id):
                raise
        # An emulator refused versionId=null in a never-versioned bucket: the only version there.
        del params["VersionId"]
        return self.call("s3", "head_object", resource=resource, region=region, **params)

    def open_object_version(
        self, bucket: str, key: str, version_id: str | None, *, region: str | None
    ) -> Any:
        """The streaming body of version *version_id* of *key* (checksum validated as it is read)."""
        label = f"s3://{bucket}/{key}" + ("" if version_id is None else f"?versionId={version_id}")
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:  # "null" too: S3 addresses that version as versionId=null
            params["VersionId"] = version_id
        return self.call("s3", "get_object", resource=label, region=region, **params)["Body"]

    def public_access_block(
        self, bucket: str, *, region: str | None
    ) -> tuple[bool, dict[str, bool]]:
        """Whether *bucket*'s public access block sets all four flags, and the flags it sets."""
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        try:
            result = self.call(
                "s3", "get_public_access_block", resource=bucket, region=region, Bucket=bucket
            )
        except BackendError as exc:
            if exc.code == "NoSuchPublicAccessBlockConfiguration":
                return False, {}
            raise
        config = {k: bool(v) for k, v in result.get("PublicAccessBlockConfiguration", {}).items()}
        return all(config.get(flag, False) for flag in flags), config

    def point_sharing(
        self, point: RecoveryPoint | None, *, region: str | None
    ) -> tuple[dict[str, Any], list[str]] | None:
        """The bucket's public access block, for *point* (its bucket) or the target (`PointSharing`)."""
        if point is None:
            bucket = self.bucket
        else:
            found = self.point_object(point)
            if found is None:
                return None
            bucket = found[0]
        blocked, config = self.public_access_block(bucket, region=region)
        issues = [] if blocked else [f"bucket {bucket}: public access block not fully set"]
        return {"bucket": bucket, "public_access_block": config}, issues

    def has_objects(self, bucket: str, prefix: str, *, exact: bool = False) -> bool:
        """Whether *bucket* holds an object under *prefix* (with *exact*: the key *prefix* itself)."""
        if exact:
            try:
                self.object_head(bucket, prefix)
            except ResourceNotFoundError:
                return False
            return True
        found = self.call(
            "s3", "list_objects_v2", resource=bucket, Bucket=bucket, Prefix=prefix, MaxKeys=1
        )
        return bool(found.get("KeyCount") or found.get("Contents"))

    def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        """Every current object under *prefix* in *bucket* (``Contents`` entries, all pages)."""
        pages = self.paginate(
            "s3", "list_objects_v2", resource=bucket, Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            yield from page.get("Contents", ())

    def count_keys(self, bucket: str, prefix: str) -> int:
        """How many current objects *bucket* holds under *prefix* (all pages)."""
        return sum(
            page.get("KeyCount", 0)
            for page in self.paginate(
                "s3", "list_objects_v2", resource=bucket, Bucket=bucket, Prefix=prefix
            )
        )

    def copy_object_version(
        self, key: str, version_id: str, dest_bucket: str, dest_key: str
    ) -> None:
        """Copy version *version_id* of *key* of this bucket to *dest_key* in *dest_bucket*."""
        self.call(
            "s3",
            "copy_object",
            resource=dest_key,
            Bucket=dest_bucket,
            Key=dest_key,
            CopySource={"Bucket": self.bucket, "Key": key, "VersionId": version_id},
            MetadataDirective="COPY",
        )

    def ensure_versioning(self) -> str:
        """Enable versioning unless it is on already; return the status it had before.

        MFA delete is never changed (only the root user can, with an MFA device).
        """
        before = self.versioning()
        if before != "Enabled":
            self.call(
                "s3",
                "put_bucket_versioning",
                resource=self.bucket,
                Bucket=self.bucket,
                VersioningConfiguration={"Status": "Enabled"},
            )
        return before

    def _optional(self, operation: str) -> dict[str, Any]:
        try:
            return self.call("s3", operation, resource=self.bucket, Bucket=self.bucket)
        except BackendError as exc:
            if exc.code in _NO_CONFIG_CODES:
                return {}
            raise

    def settings(self) -> S3Settings:
        """Read versioning, MFA delete, Object Lock, default encryption and the public access block.

        Read-only: four requests (``GetBucketVersioning``, ``GetObjectLockConfiguration``,
        ``GetBucketEncryption``, ``GetPublicAccessBlock``).
        """
        versioning = self.call(
            "s3", "get_bucket_versioning", resource=self.bucket, Bucket=self.bucket
        )
        lock = self._optional("get_object_lock_configuration").get("ObjectLockConfiguration", {})
        rules = (
            self._optional("get_bucket_encryption")
            .get("ServerSideEncryptionConfiguration", {})
            .get("Rules", [])
        )
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        block = self._optional("get_public_access_block").get("PublicAccessBlockConfiguration", {})
        self._object_lock = lock.get("ObjectLockEnabled") == "Enabled"
        return S3Settings(
            bucket=self.bucket,
            versioning=str(versioning.get("Status") or "Disabled"),
            mfa_delete=versioning.get("MFADelete") == "Enabled",
            object_lock=self._object_lock,
            object_lock_default=dict(lock.get("Rule", {}).get("DefaultRetention", {})),
            encryption=default.get("SSEAlgorithm"),
            kms_key_id=default.get("KMSMasterKeyID"),
            public_access_block={k: bool(v) for k, v in block.items()},
        )

    def _lock_enabled(self) -> bool:
        if self._object_lock is None:
            lock = self._optional("get_object_lock_configuration").get(
                "ObjectLockConfiguration", {}
            )
            self._object_lock = lock.get("ObjectLockEnabled") == "Enabled"
        return self._object_lock

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
                "s3", "get_bucket_location", resource=_s3_url(bucket, ""), Bucket=bucket
            )
            constraint = str(result.get("LocationConstraint") or "us-east-1")
            region = self._store_regions[bucket] = {"EU": "eu-west-1"}.get(constraint, constraint)
        return region

    def _store_for(self, bucket: str, prefix: str, tier: str) -> _CopyStore:
        """The configured store at *bucket*/*prefix*, else an ad-hoc one of *tier*."""
        for store in self._copy_stores:
            if (store.bucket, store.prefix) == (bucket, prefix):
                return store
        return _CopyStore(bucket=bucket, prefix=prefix, tier=tier)

    # Listing ----------------------------------------------------------------

    def _entries(
        self,
        prefix: str | None = None,
        *,
        requests: _Requests | None = None,
        page_size: int | None = None,
        prefetch: int = 0,
        bucket: str | None = None,
        region: str | None = None,
    ) -> Iterator[_Entry]:
        params: dict[str, Any] = {
            "Bucket": bucket or self.bucket,
            "Prefix": self.prefix if prefix is None else prefix,
        }
        if page_size is not None:
            params["MaxKeys"] = page_size
        pages = self.paginate(
            "s3",
            "list_object_versions",
            resource=_s3_url(params["Bucket"], params["Prefix"]),
            region=region,
            **params,
        )
        for page in _Prefetcher(pages, prefetch) if prefetch else pages:
            if requests is not None:
                requests.add("ListObjectVersions")
            yield from _entries_of_page(page)

    def _data_groups(
        self,
        *,
        requests: _Requests | None = None,
        page_size: int | None = None,
        prefetch: int = 0,
    ) -> Iterator[list[_Entry]]:
        internal = self.internal_prefix
        entries = (
            e
            for e in self._entries(requests=requests, page_size=page_size, prefetch=prefetch)
            if not e.key.startswith(internal)
        )
        yield from _group_by_key(entries)

    def _version_point(
        self, entry: _Entry, *, replaced_at: datetime | None, current: bool, ordinal: int
    ) -> RecoveryPoint:
        created = entry.last_modified if replaced_at is None else replaced_at
        return RecoveryPoint(
            id=f"{entry.key}@{entry.version_id}",
            target=self.name,
            created_at=created.astimezone(UTC),
            ordinal=ordinal,
            kind=_KIND_MARKER if entry.is_marker else _KIND_VERSION,
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

    def _group_points(self, group: list[_Entry], *, markers: bool) -> Iterator[RecoveryPoint]:
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

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the manifests of this target, their copies, then every object version.

        Manifest copies are listed from every store of *copy_stores*, in the store's tier (only
        manifests: the data versions copied with them are not points). Delete markers are not
        points (nothing to restore). One ``ListObjectVersions`` request per 1000 entries, plus
        one ``HeadObject`` and one ``GetObjectTagging`` per manifest or manifest copy.
        """
        yield from self._manifest_points()
        for store in self._copy_stores:
            yield from self._copy_points(store)
        for group in self._data_groups():
            yield from self._group_points(group, markers=False)

    # Manifests (create_backup) ----------------------------------------------------------------

    @property
    def _manifest_prefix(self) -> str:
        return f"{self.internal_prefix}manifests/{self.name}/"

    def _ownership_tags(
        self, reason: str, token: str | None, tags: Mapping[str, str] | None
    ) -> dict[str, str]:
        result = dict(tags or {})
        result.update({TAG_POLICY: self.policy, TAG_TARGET: self.name, TAG_REASON: reason})
        if token is not None:
            result[TAG_TOKEN] = token
        return result

    def _tags_of(
        self, key: str, version_id: str, *, bucket: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        bucket = bucket or self.bucket
        result = self.call(
            "s3",
            "get_object_tagging",
            resource=_s3_url(bucket, key),
            region=region,
            Bucket=bucket,
            Key=key,
            VersionId=version_id,
        )
        return {t["Key"]: t["Value"] for t in result.get("TagSet", [])}

    def _manifest_point(
        self, key: str, version_id: str, head: Mapping[str, Any], tags: Mapping[str, str]
    ) -> RecoveryPoint:
        meta = head.get("Metadata", {})
        created = (
            datetime.fromisoformat(meta["created-at"])
            if "created-at" in meta
            else head["LastModified"]
        )
        return RecoveryPoint(
            id=f"{key}@{version_id}",
            target=self.name,
            created_at=created.astimezone(UTC),
            kind=_KIND_MANIFEST,
            location=self.location,
            size_bytes=int(meta["bytes"]) if "bytes" in meta else None,
            tags=tags,
            legal_hold=_hold_from_tag(tags[TAG_HOLD]) if TAG_HOLD in tags else None,
            managed=is_owned(tags, policy=self.policy, target=self.name),
            details={
                "bucket": self.bucket,
                "key": key,
                "version_id": version_id,
                "objects": int(meta.get("objects", "0")),
                "manifest_bytes": int(head.get("ContentLength") or head.get("Size") or 0),
            },
        )

    def _manifest_points(self) -> Iterator[RecoveryPoint]:
        for entry in self._entries(self._manifest_prefix):
            if entry.is_marker or not entry.is_latest:
                continue
            try:
                head = self.call(
                    "s3",
                    "head_object",
                    resource=_s3_url(self.bucket, entry.key),
                    Bucket=self.bucket,
                    Key=entry.key,
                    VersionId=entry.version_id,
                )
                tags = self._tags_of(entry.key, entry.version_id)
            except ResourceNotFoundError:
                continue  # deleted since the listing page: not listed
            yield self._manifest_point(entry.key, entry.version_id, head, tags)

    # Copies in copy stores ----------------------------------------------------------------

    def _copy_manifest_prefix(self, store: _CopyStore) -> str:
        """Where manifest copies go in *store* (`_relocate` of the manifest prefix)."""
        return self._relocate(self._manifest_prefix, store.prefix)

    def _copy_point(
        self,
        store: _CopyStore,
        region: str,
        *,
        key: str,
        version_id: str,
        head: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> RecoveryPoint:
        meta = head.get("Metadata", {})
        created = (
            datetime.fromisoformat(meta["created-at"])
            if "created-at" in meta
            else head["LastModified"]
        )
        source = (
            f"{meta['source-key']}@{meta['source-version']}"
            if "source-key" in meta and "source-version" in meta
            else None
        )
        return RecoveryPoint(
            id=f"{_s3_url(store.bucket, key)}@{version_id}",
            target=self.name,
            created_at=created.astimezone(UTC),
            kind=_KIND_MANIFEST,
            location=f"aws:{self._account()}:{region}",
            tier=store.tier,
            size_bytes=int(meta["bytes"]) if "bytes" in meta else None,
            tags=tags,
            legal_hold=_hold_from_tag(tags[TAG_HOLD]) if TAG_HOLD in tags else None,
            managed=is_owned(tags, policy=self.policy, target=self.name),
            details={
                "bucket": store.bucket,
                "key": key,
                "version_id": version_id,
                "region": region,
                "store": store.url,
                "source": source,
                "source_bucket": meta.get("source-bucket"),
                "copied_at": meta.get("copied-at"),
                "objects": int(meta.get("objects", "0")),
                "manifest_bytes": int(head.get("ContentLength") or head.get("Size") or 0),
            },
        )

    def _copy_points(self, store: _CopyStore) -> Iterator[RecoveryPoint]:
        """The manifest copies of this target in *store*.

        Objects without a manifest's metadata are skipped: a data key that happens to sit under
        the manifest folder is not a point.
        """
        region = self._store_region(store.bucket)
        prefix = self._copy_manifest_prefix(store)
        for entry in self._entries(prefix, bucket=store.bucket, region=region):
            if entry.is_marker or not entry.is_latest:
                continue
            head = self._head_or_none(
                entry.key, entry.version_id, bucket=store.bucket, region=region
            )
            if head is None or "created-at" not in head.get("Metadata", {}):
                continue
            try:
                tags = self._tags_of(
                    entry.key, entry.version_id, bucket=store.bucket, region=region
                )
            except ResourceNotFoundError:
                continue  # deleted since the listing page: not listed
            yield self._copy_point(
                store, region, key=entry.key, version_id=entry.version_id, head=head, tags=tags
            )

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
        now: datetime | None = None,
    ) -> RecoveryPoint:
        """Ensure versioning is on and record a manifest of the current versions under the prefix.

        S3 versioning is what keeps the data; the manifest makes a named, restorable point in
        time: one JSON line per live key with its current version id, ETag, size and
        ``LastModified`` (built in a spooled temporary file, so memory stays flat). The listing
        is not atomic: writes made while it runs may or may not be in the manifest.

        The same *token* returns the existing manifest instead of writing a second one.
        """
        stamp = (datetime.now(UTC) if now is None else ensure_aware(now, field="now")).astimezone(
            UTC
        )
        if token is not None:
            digest = hashlib.sha256(token.encode()).hexdigest()[:24]
            key = f"{self._manifest_prefix}token-{digest}.jsonl"
            existing = self._head_or_none(key, None)
            if existing is not None:
                version = str(existing.get("VersionId") or "null")
                return self._manifest_point(key, version, existing, self._tags_of(key, version))
        else:
            key = f"{self._manifest_prefix}{stamp:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.jsonl"
        self.ensure_versioning()
        objects = total = 0
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024**2) as body:
            header = {
                "format": _MANIFEST_FORMAT,
                "bucket": self.bucket,
                "prefix": self.prefix,
                "target": self.name,
                "created_at": stamp.isoformat(),
                "reason": reason,
                "token": token,
            }
            body.write(json.dumps(header).encode() + b"\n")
            for group in self._data_groups():
                current = group[0]
                if current.is_marker:
                    continue
                line = {
                    "key": current.key,
                    "version_id": current.version_id,
                    "etag": current.etag,
                    "size": current.size,
                    "last_modified": current.last_modified.astimezone(UTC).isoformat(),
                }
                body.write(json.dumps(line).encode() + b"\n")
                objects += 1
                total += current.size
            body.seek(0)
            all_tags = self._ownership_tags(reason, token, tags)
            metadata = {
                "created-at": stamp.isoformat(),
                "objects": str(objects),
                "bytes": str(total),
            }
            result = self.call(
                "s3",
                "put_object",
                resource=_s3_url(self.bucket, key),
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata=metadata,
                Tagging=_encode_tags(all_tags),
            )
        version = str(result.get("VersionId") or "null")
        head = {"Metadata": metadata, "ContentLength": 0, "LastModified": stamp}
        return self._manifest_point(key, version, head, all_tags)

    def _head_or_none(
        self,
        key: str,
        version_id: str | None,
        *,
        bucket: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any] | None:
        bucket = bucket or self.bucket
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        # "null" is a version id like any other: S3 addresses the version written before
        # versioning was enabled (and every object of an unversioned bucket) as versionId=null.
        # Dropping it would read the current version instead.
        if version_id is not None:
            params["VersionId"] = version_id
        resource = _s3_url(bucket, key)
        try:
            return self.call("s3", "head_object", resource=resource, region=region, **params)
        except ResourceNotFoundError:
            return None
        except BackendError as exc:
            if not null_version_refused(exc, version_id):
                raise
        # An emulator (moto) refused versionId=null in a never-versioned bucket, where the null
        # version is the key's only version: the request without it reads the same object.
        del params["VersionId"]
        try:
            return self.call("s3", "head_object", resource=resource, region=region, **params)
        except ResourceNotFoundError:
            return None

    def read_manifest(self, point: RecoveryPoint) -> Iterator[dict[str, Any]]:
        """Stream the entries (``key``, ``version_id``, ``etag``, ``size``) of a manifest point.

        The entries of a manifest copy name the copied versions in its store (``details["bucket"]``).
        """
        return self._manifest_lines(self._locate(point, _KIND_MANIFEST))

    # Point operations ----------------------------------------------------------------

    def _locate(self, point: RecoveryPoint, *kinds: str) -> _Loc:
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
            key, version = _split_id(point.id)
            return _Loc(bucket=self.bucket, key=key, version=version)
        bucket, prefix = _parse_store(store_url, field="point.details.store")
        parts = {name: point.details.get(name) for name in ("bucket", "key", "version_id")}
        for name, value in parts.items():
            if not isinstance(value, str) or not value:
                raise PolicyError.for_field(f"point.details.{name}", "a non-empty string", value)
        if parts["bucket"] != bucket:
            raise PolicyError.for_field("point.details.bucket", repr(bucket), parts["bucket"])
        region = point.details.get("region")
        return _Loc(
            bucket=str(parts["bucket"]),
            key=str(parts["key"]),
            version=str(parts["version_id"]),
            region=region if isinstance(region, str) and region else None,
            store=self._store_for(bucket, prefix, point.tier),
        )

    def _lock_hold(
        self,
        head: Mapping[str, Any],
        key: str,
        version_id: str,
        now: datetime,
        *,
        bucket: str | None = None,
        region: str | None = None,
    ) -> LegalHold | None:
        """The Object Lock legal hold or unexpired retention of a version, as a `LegalHold`."""
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            tags = self._tags_of(key, version_id, bucket=bucket, region=region)
            if TAG_HOLD in tags:
                return _hold_from_tag(tags[TAG_HOLD])
            return LegalHold(reason="S3 Object Lock legal hold")
        until = head.get("ObjectLockRetainUntilDate")
        if until is not None and until > now:
            mode = head.get("ObjectLockMode", "")
            return LegalHold(reason=f"S3 Object Lock {mode} retention until {until.isoformat()}")
        return None

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read a point: current-ness, Object Lock hold and retention; ``None`` if it is gone.

        A manifest copy is re-read from its copy store.
        """
        loc = self._locate(point, _KIND_VERSION, _KIND_MANIFEST)
        key, version = loc.key, loc.version
        where = {"bucket": loc.bucket, "region": loc.region}
        head = self._head_or_none(key, version, **where)
        if head is None:
            return None
        if point.kind == _KIND_MANIFEST:
            tags = self._tags_of(key, version, **where)
            if loc.store is None:
                fresh = self._manifest_point(key, version, head, tags)
            else:
                region = loc.region or self._store_region(loc.bucket)
                fresh = self._copy_point(
                    loc.store, region, key=key, version_id=version, head=head, tags=tags
                )
            if fresh.legal_hold is None:
                fresh = fresh.evolve(
                    legal_hold=self._lock_hold(head, key, version, _utcnow(), **where)
                )
            return fresh
        current = self._head_or_none(key, None, **where)
        is_current = current is not None and str(current.get("VersionId") or "null") == version
        hold = self._lock_hold(head, key, version, _utcnow(), **where)
        details = dict(point.details)
        details["is_latest"] = is_current
        details["object_lock_mode"] = head.get("ObjectLockMode")
        details["object_lock_retain_until"] = head.get("ObjectLockRetainUntilDate")
        return point.evolve(
            # a version copied on its own into a store is not ours to prune (see `copy`)
            managed=self.manage_noncurrent and not is_current and loc.store is None,
            legal_hold=hold,
            encrypted=head.get("ServerSideEncryption") is not None or None,
            details=details,
        )

    def delete(self, point: RecoveryPoint) -> None:
        """Permanently delete one noncurrent version, one of our manifests or a manifest copy.

        Re-reads the point first (``HeadObject`` and ``GetObjectTagging``).

        * A manifest in the target's bucket: only the manifest goes; the versions it lists are
          the bucket's data, pruned by version retention.
        * A manifest copy in a copy store: the copy's manifest is deleted, then every copied
          version it lists that no other manifest copy under the store's ``manifests/`` folder
          (of any target) lists, with ``DeleteObjects``. The manifest goes first, so a point is
          never listed without its data; if the data delete then fails (Object Lock on the
          store, permissions), those versions stay behind unlisted: expire them with a lifecycle
          rule on the store. If another manifest copy in the store cannot be read, no data is
          deleted (only the manifest). Memory holds the (key, version) pairs of the deleted copy.

        Raises:
            ProtectedPointError: The point is unmanaged (a current version, a version copied on
                its own, or not ours), under legal hold or Object Lock retention, or pending.
                Nothing was deleted.
            ResourceNotFoundError: The version no longer exists.
        """
        loc = self._locate(point, _KIND_VERSION, _KIND_MANIFEST)
        _refuse_protected(point)
        fresh = self.refresh(point)
        if fresh is None:
            raise ResourceNotFoundError(
                f"{self.name}: version {point.id!r} does not exist",
                backend=self.name,
                operation="HeadObject",
                resource=_s3_url(loc.bucket, loc.key),
                code="NoSuchVersion",
            )
        _refuse_protected(fresh)
        orphans = (
            self._unreferenced_copies(loc)
            if loc.store is not None and point.kind == _KIND_MANIFEST
            else []
        )
        self.call(
            "s3",
            "delete_object",
            resource=_s3_url(loc.bucket, loc.key),
            region=loc.region,
            Bucket=loc.bucket,
            Key=loc.key,
            VersionId=loc.version,
        )
        for start in range(0, len(orphans), DELETE_BATCH_LIMIT):
            batch = orphans[start : start + DELETE_BATCH_LIMIT]
            self._delete_batch(loc.bucket, loc.region, batch, None)

    def _manifest_lines(self, loc: _Loc) -> Iterator[dict[str, Any]]:
        result = self.call(
            "s3",
            "get_object",
            resource=_s3_url(loc.bucket, loc.key),
            region=loc.region,
            Bucket=loc.bucket,
            Key=loc.key,
            VersionId=loc.version,
        )
        body = result["Body"]
        try:
            for raw in _bounded_lines(body, _s3_url(loc.bucket, loc.key)):
                line = json.loads(raw)
                if "format" not in line:
                    yield line
        finally:
            body.close()

    def _unreferenced_copies(self, loc: _Loc) -> list[tuple[str, str | None]]:
        """The copied versions that the manifest copy at *loc* alone lists in its store.

        Every version of every manifest copy (of any target) under the store's ``manifests/``
        folder is read; none are returned if one of them cannot be read.
        """
        assert loc.store is not None  # noqa: S101 - only called for copies
        listed = {(str(line["key"]), str(line["version_id"])) for line in self._manifest_lines(loc)}
        folder = f"{loc.store.prefix}manifests/"
        for entry in self._entries(folder, bucket=loc.bucket, region=loc.region):
            if not listed:
                break
            if entry.is_marker or (entry.key, entry.version_id) == (loc.key, loc.version):
                continue
            other = _Loc(
                bucket=loc.bucket, key=entry.key, version=entry.version_id, region=loc.region
            )
            try:
                for line in self._manifest_lines(other):
                    listed.discard((str(line["key"]), str(line["version_id"])))
            except (
                ValueError,
                KeyError,
                TypeError,
                UnsafeArchiveError,
            ):  # unreadable: keep the data
                return []
        return [(key, version) for key, version in sorted(listed)]

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Put *point* under legal *hold* and return it re-read.

        The hold's reason and reference go into the version's ``backuppolicy:legal-hold`` tag
        (its other tags are kept). With Object Lock enabled on the bucket an Object Lock legal
        hold is placed too, so nobody (not only this library) can delete the version. Versions
        of data need Object Lock; a manifest without Object Lock is held by the tag alone, and so
        is a manifest copy in a copy store (whatever the store's Object Lock).

        Raises:
            PolicyError: *point* is a data version and the bucket has no Object Lock.
        """
        return self._set_hold(point, hold)

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold from *point* (tag and Object Lock legal hold); return it re-read."""
        return self._set_hold(point, None)

    def _set_hold(self, point: RecoveryPoint, hold: LegalHold | None) -> RecoveryPoint:
        loc = self._locate(point, _KIND_VERSION, _KIND_MANIFEST)
        key, version = loc.key, loc.version
        resource = _s3_url(loc.bucket, key)
        locked = loc.store is None and self._lock_enabled()
        if not locked and point.kind == _KIND_VERSION and hold is not None:
            raise PolicyError.for_field(
                f"{loc.bucket}.object_lock",
                "Object Lock enabled on the bucket to hold object versions",
                "disabled",
            )
        where: dict[str, Any] = {"Bucket": loc.bucket, "Key": key, "VersionId": version}
        if locked:
            self.call(
                "s3",
                "put_object_legal_hold",
                resource=resource,
                LegalHold={"Status": "OFF" if hold is None else "ON"},
                **where,
            )
        tags = self._tags_of(key, version, bucket=loc.bucket, region=loc.region)
        tags.pop(TAG_HOLD, None)
        if hold is not None:
            tags[TAG_HOLD] = _hold_tag(hold)
        if tags:
            tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
            self.call(
                "s3",
                "put_object_tagging",
                resource=resource,
                region=loc.region,
                Tagging={"TagSet": tag_set},
                **where,
            )
        else:
            self.call("s3", "delete_object_tagging", resource=resource, region=loc.region, **where)
        fresh = self.refresh(point)
        if fresh is None:  # pragma: no cover - deleted between the two calls
            raise ResourceNotFoundError(
                f"{self.name}: version {point.id!r} disappeared while setting its hold",
                backend=self.name,
                operation="HeadObject",
                resource=resource,
            )
        return fresh

    def copy(
        self, point: RecoveryPoint, destination: Destination, *, max_workers: int = 8
    ) -> RecoveryPoint:
        """Copy a manifest and every version it lists (or one version) to ``destination.store``.

        ``destination.store`` is an ``s3://bucket/prefix`` URL or an `S3Bucket` (a non-empty
        prefix is a folder); data keys keep their path relative to this target's prefix, the
        manifest goes to ``<store prefix>manifests/<name>/``. Server-side copies, *max_workers*
        at once (multipart above 5 GiB); copied objects keep their tags (``CopyObject``'s
        default ``TaggingDirective=COPY``). The store's region is ``destination.region``, else
        asked with ``GetBucketLocation``.

        The copy of a manifest is a new manifest in the store listing the copied versions (key
        and version id in the store, ETag, size, source key and version), written last. It keeps
        the source's ``created_at`` and tags (a legal hold aside: holds are placed per point) and
        gets ``backuppolicy:tier``. Copying the same manifest into the same store again returns
        the existing copy and copies nothing. With the store in *copy_stores* the copy is listed
        by `list_points`.

        A version copied on its own comes back as an unmanaged point: only manifest copies are
        points in copy stores (listed, pruned).

        Raises:
            PolicyError: *point* is itself a copy, or the store is not an ``s3://`` URL.
        """
        loc = self._locate(point, _KIND_VERSION, _KIND_MANIFEST)
        if loc.store is not None:
            raise PolicyError.for_field(
                "point",
                "a point of the target's own bucket (copies are not copied again)",
                point.id,
            )
        bucket, prefix = _parse_store(destination.store, field="destination.store")
        store = _CopyStore(bucket=bucket, prefix=prefix, tier=destination.tier)
        region = destination.region or self._store_region(bucket)
        self._store_regions.setdefault(bucket, region)
        requests = _Requests()
        dest_key = self._relocate(loc.key, prefix)
        if point.kind == _KIND_MANIFEST:
            return self._copy_manifest(
                point,
                loc,
                store=store,
                region=region,
                dest_key=dest_key,
                requests=requests,
                max_workers=max_workers,
            )
        new_version, _ = self._copy_version(
            loc.key,
            loc.version,
            size=point.size_bytes or 0,
            dest_bucket=bucket,
            dest_key=dest_key,
            requests=requests,
            region=region,
        )
        details = dict(point.details)
        details.update(
            {
                "bucket": bucket,
                "key": dest_key,
                "version_id": new_version,
                "region": region,
                "store": store.url,
                "source": point.id,
            }
        )
        return point.evolve(
            id=f"{_s3_url(bucket, dest_key)}@{new_version}",
            location=f"aws:{self._account()}:{region}",
            tier=destination.tier,
            managed=False,
            details=details,
        )

    def _copy_manifest(
        self,
        point: RecoveryPoint,
        loc: _Loc,
        *,
        store: _CopyStore,
        region: str,
        dest_key: str,
        requests: _Requests,
        max_workers: int,
    ) -> RecoveryPoint:
        where = {"bucket": store.bucket, "region": region}
        existing = self._head_or_none(dest_key, None, **where)
        if existing is not None:
            meta = existing.get("Metadata", {})
            source = (meta.get("source-bucket"), meta.get("source-key"), meta.get("source-version"))
            if source == (self.bucket, loc.key, loc.version):
                version = str(existing.get("VersionId") or "null")
                tags = self._tags_of(dest_key, version, **where)
                return self._copy_point(
                    store, region, key=dest_key, version_id=version, head=existing, tags=tags
                )
        tags = {k: v for k, v in self._tags_of(loc.key, loc.version).items() if k != TAG_HOLD}
        tags[TAG_TIER] = store.tier
        created = point.created_at.astimezone(UTC).isoformat()
        copied_at = _utcnow().isoformat()
        lock = threading.Lock()
        counts: Counter[str] = Counter()
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024**2) as body:
            header = {
                "format": _MANIFEST_FORMAT,
                "bucket": store.bucket,
                "prefix": store.prefix,
                "target": self.name,
                "tier": store.tier,
                "created_at": created,
                "copied_at": copied_at,
                "source": f"{_s3_url(self.bucket, loc.key)}@{loc.version}",
            }
            body.write(json.dumps(header).encode() + b"\n")

            def one(key: str, version: str, size: int) -> None:
                new_key = self._relocate(key, store.prefix)
                new_version, etag = self._copy_version(
                    key,
                    version,
                    size=size,
                    dest_bucket=store.bucket,
                    dest_key=new_key,
                    requests=requests,
                    region=region,
                )
                line = {
                    "key": new_key,
                    "version_id": new_version,
                    "etag": etag,
                    "size": size,
                    "source_key": key,
                    "source_version_id": version,
                }
                with lock:
                    body.write(json.dumps(line).encode() + b"\n")
                    counts["objects"] += 1
                    counts["bytes"] += size

            with _Pool(max_workers) as pool:
                for key, version, size in self._manifest_sources(point):
                    pool.submit(one, key, version, size)
            length = body.tell()
            body.seek(0)
            metadata = {
                "created-at": created,
                "copied-at": copied_at,
                "objects": str(counts["objects"]),
                "bytes": str(counts["bytes"]),
                "source-bucket": self.bucket,
                "source-key": loc.key,
                "source-version": loc.version,
            }
            result = self.call(
                "s3",
                "put_object",
                resource=_s3_url(store.bucket, dest_key),
                region=region,
                Bucket=store.bucket,
                Key=dest_key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata=metadata,
                Tagging=_encode_tags(tags),
            )
        version = str(result.get("VersionId") or "null")
        head = {"Metadata": metadata, "ContentLength": length}
        return self._copy_point(
            store, region, key=dest_key, version_id=version, head=head, tags=tags
        )

    @contextmanager
    def _restore(
        self, point: RecoveryPoint, into: IsolationProfile | None
    ) -> Iterator[RestoredResource]:
        loc = self._locate(point, _KIND_VERSION, _KIND_MANIFEST)
        prefix = (into.name_prefix if into else "bp-restore-") + uuid.uuid4().hex[:12] + "/"
        restore_prefix = f"{self.internal_prefix}restore-tests/{self.name}/{prefix}"
        requests = _Requests()
        try:
            if point.kind == _KIND_VERSION:
                sources: Iterable[tuple[str, str, int]] = [
                    (loc.key, loc.version, point.size_bytes or 0)
                ]
            else:
                sources = self._manifest_sources(point)
            objects = self._copy_many(sources, self.bucket, restore_prefix, requests, source=loc)
            yield RestoredResource(
                id=_s3_url(self.bucket, restore_prefix),
                kind="s3-prefix",
                point=point,
                endpoint=_s3_url(self.bucket, restore_prefix),
                details={"objects": objects, "bucket": self.bucket, "prefix": restore_prefix},
            )
        finally:
            self._purge_prefix(restore_prefix)

    def restore(self, point: RecoveryPoint, into: IsolationProfile | None = None) -> Any:
        """Copy a version, or every version a manifest lists, under a scratch prefix; purge on exit.

        The scratch prefix is ``<internal_prefix>restore-tests/<name>/<name_prefix><random>/``
        in the target's bucket. On exit every version and delete marker under it is deleted,
        even when the block raised. A manifest copy is restored from its copy store into that
        same scratch prefix (across regions when the store is elsewhere): the copy itself is
        read, proving the off-site copy can be brought back.

        Returns:
            A context manager yielding a `RestoredResource` (``kind="s3-prefix"``).
        """
        return self._restore(point, into)

    def _purge_prefix(self, prefix: str) -> None:
        """Permanently delete every version and delete marker under *prefix*."""
        if not prefix.startswith(self.internal_prefix):  # pragma: no cover - defence in depth
            raise PolicyError.for_field(
                "prefix", f"a prefix under {self.internal_prefix!r}", prefix
            )
        requests = _Requests()
        with _Pool(4) as pool:
            self._delete_stream(
                ((e.key, e.version_id) for e in self._entries(prefix)), pool, requests
            )

    # Copies and deletes ----------------------------------------------------------------

    def _relocate(self, key: str, dest_prefix: str) -> str:
        """Where *key* goes under *dest_prefix*: its path relative to the prefix (or internal root)."""
        if key.startswith(self.internal_prefix):
            return dest_prefix + key.removeprefix(self.internal_prefix)
        return dest_prefix + key.removeprefix(self.prefix)

    def _manifest_sources(self, point: RecoveryPoint) -> Iterator[tuple[str, str, int]]:
        for line in self.read_manifest(point):
            yield str(line["key"]), str(line["version_id"]), int(line["size"])

    def _copy_many(
        self,
        sources: Iterable[tuple[str, str, int]],
        dest_bucket: str,
        dest_prefix: str,
        requests: _Requests,
        *,
        region: str | None = None,
        max_workers: int = 8,
        source: _Loc | None = None,
    ) -> int:
        """Copy ``(key, version id, size)`` sources under *dest_prefix*, concurrently.

        Sources are in the target's bucket, or in *source*'s copy store (keys relative to it).
        """
        store = source.store if source is not None else None

        def relocate(key: str) -> str:
            if store is not None:
                return dest_prefix + key.removeprefix(store.prefix)
            return self._relocate(key, dest_prefix)

        count = 0
        with _Pool(max_workers) as pool:
            for key, version, size in sources:
                count += 1
                pool.submit(
                    self._copy_version,
                    key,
                    version,
                    size=size,
                    dest_bucket=dest_bucket,
                    dest_key=relocate(key),
                    requests=requests,
                    region=region,
                    source_bucket=source.bucket if source is not None else None,
                    source_region=source.region if source is not None else None,
                )
        return count

    def _copy_version(
        self,
        key: str,
        version_id: str,
        *,
        size: int,
        dest_bucket: str,
        dest_key: str,
        requests: _Requests,
        region: str | None = None,
        source_bucket: str | None = None,
        source_region: str | None = None,
    ) -> tuple[str, str]:
        """Server-side copy of one version; multipart above 5 GiB.

        Returns the new version id and ETag.
        """
        source = {"Bucket": source_bucket or self.bucket, "Key": key, "VersionId": version_id}
        resource = _s3_url(dest_bucket, dest_key)
        if size <= MAX_COPY_OBJECT_SIZE:
            requests.add("CopyObject")
            result = self.call(
                "s3",
                "copy_object",
                resource=resource,
                region=region,
                Bucket=dest_bucket,
                Key=dest_key,
                CopySource=source,
            )
            etag = str(result.get("CopyObjectResult", {}).get("ETag", "")).strip('"')
            return str(result.get("VersionId") or "null"), etag
        return self._multipart_copy(
            source, dest_bucket, dest_key, requests, region, source_region=source_region
        )

    def _multipart_copy(
        self,
        source: dict[str, str],
        dest_bucket: str,
        dest_key: str,
        requests: _Requests,
        region: str | None,
        *,
        source_region: str | None = None,
    ) -> tuple[str, str]:
        resource = _s3_url(dest_bucket, dest_key)
        requests.add("HeadObject")
        head = self.call(
            "s3",
            "head_object",
            resource=_s3_url(source["Bucket"], source["Key"]),
            region=source_region,
            Bucket=source["Bucket"],
            Key=source["Key"],
            VersionId=source["VersionId"],
        )
        size = int(head["ContentLength"])
        part_size = max(_MIN_PART_SIZE, math.ceil(size / _MAX_PARTS))
        extra: dict[str, Any] = {"Metadata": head.get("Metadata", {})}
        for field in (
            "ContentType",
            "ContentEncoding",
            "ContentDisposition",
            "CacheControl",
            "ContentLanguage",
        ):
            if head.get(field):
                extra[field] = head[field]
        requests.add("CreateMultipartUpload")
        upload = self.call(
            "s3",
            "create_multipart_upload",
            resource=resource,
            region=region,
            Bucket=dest_bucket,
            Key=dest_key,
            **extra,
        )
        upload_id = upload["UploadId"]
        parts = []
        try:
            for number, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                requests.add("UploadPartCopy")
                result = self.call(
                    "s3",
                    "upload_part_copy",
                    resource=resource,
                    region=region,
                    Bucket=dest_bucket,
                    Key=dest_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            requests.add("CompleteMultipartUpload")
            done = self.call(
                "s3",
                "complete_multipart_upload",
                resource=resource,
                region=region,
                Bucket=dest_bucket,
                Key=dest_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            requests.add("AbortMultipartUpload")
            self.call(
                "s3",
                "abort_multipart_upload",
                resource=resource,
                region=region,
                Bucket=dest_bucket,
                Key=dest_key,
                UploadId=upload_id,
            )
            raise
        return str(done.get("VersionId") or "null"), str(done.get("ETag", "")).strip('"')

    def delete_objects(
        self, objects: Sequence[tuple[str, str | None]], *, requests: _Requests | None = None
    ) -> int:
        """One ``DeleteObjects`` request for at most 1000 ``(key, version_id)`` pairs.

        A ``None`` version id adds a delete marker (a reversible delete); a version id deletes
        that version permanently. Returns how many were deleted.

        Raises:
            PolicyError: More than 1000 objects (AWS's limit; we refuse before sending).
            BackendError: S3 reported per-key errors (the first few are in the message).
        """
        if len(objects) > DELETE_BATCH_LIMIT:
            raise PolicyError.for_field(
                "objects",
                f"at most {DELETE_BATCH_LIMIT} keys per DeleteObjects request",
                f"{len(objects)} keys",
            )
        return self._delete_batch(self.bucket, None, objects, requests)

    def _delete_batch(
        self,
        bucket: str,
        region: str | None,
        objects: Sequence[tuple[str, str | None]],
        requests: _Requests | None,
    ) -> int:
        if not objects:
            return 0
        items = [{"Key": k} if v is None else {"Key": k, "VersionId": v} for k, v in objects]
        if requests is not None:
            requests.add("DeleteObjects")
        resource = self.url if bucket == self.bucket else _s3_url(bucket, "")
        result = self.call(
            "s3",
            "delete_objects",
            resource=resource,
            region=region,
            Bucket=bucket,
            Delete={"Objects": items, "Quiet": True},
        )
        errors = result.get("Errors", [])
        if errors:
            sample = ", ".join(
                f"{e.get('Key')}@{e.get('VersionId', '')}: {e.get('Code')}" for e in errors[:3]
            )
            raise BackendError(
                f"{self.name}: DeleteObjects failed for {len(errors)} of {len(items)} keys ({sample})",
                backend=self.name,
                operation="DeleteObjects",
                resource=resource,
                code=str(errors[0].get("Code", "")),
            )
        return len(items)

    def _delete_stream(
        self,
        objects: Iterable[tuple[str, str | None]],
        pool: _Pool,
        requests: _Requests,
        batch_size: int = DELETE_BATCH_LIMIT,
    ) -> int:
        """Submit batched deletes of a stream of objects to *pool*; returns how many were queued."""
        batch: list[tuple[str, str | None]] = []
        queued = 0
        for item in objects:
            batch.append(item)
            if len(batch) >= batch_size:
                pool.submit(self.delete_objects, batch, requests=requests)
                queued += len(batch)
                batch = []
        if batch:
            pool.submit(self.delete_objects, batch, requests=requests)
            queued += len(batch)
        return queued

    # Retention ----------------------------------------------------------------

    def noncurrent_retention_plan(
        self,
        rule: _Rule,
        *,
        now: datetime,
        tz: str | tzinfo = "UTC",
        page_size: int | None = None,
    ) -> Iterator[KeyRetentionPlan]:
        """Plan noncurrent-version retention **per key**, streaming one key at a time.

        Each key is planned on its own with ``rule.plan(points, now=now)``: its versions, plus
        its delete marker when the key is deleted. For planning, the key's current entry (current
        version or current delete marker) is the key's state now: it is passed as managed and
        dated *now*, so the planner's per-target floor ("newest completed point") lands on it and count rules count it: ``KeepLast(3)``
        keeps the current version and the two newest noncurrent ones. Whatever the rule says,
        the current entry is never in ``delete``, and noncurrent delete markers are neither
        planned nor deleted.

        Noncurrent versions are dated from the moment they were replaced, so
        ``MaxAge(days=35)`` keeps every version needed to restore any time in the last 35
        days: AWS's ``NoncurrentDays`` semantics (see `noncurrent_lifecycle_rule`).

        Memory holds one key's versions at a time.
        """
        ensure_aware(now, field="now")
        return self._plan_keys(rule, now, tz, None, page_size)

    def _plan_keys(
        self,
        rule: _Rule,
        now: datetime,
        tz: str | tzinfo,
        requests: _Requests | None,
        page_size: int | None,
    ) -> Iterator[KeyRetentionPlan]:
        prefetch = _PREFETCH_PAGES if requests is not None else 0
        for group in self._data_groups(requests=requests, page_size=page_size, prefetch=prefetch):
            # Versions, plus the current delete marker of a deleted key; noncurrent delete
            # markers are never planned (nor deleted).
            points = [
                p
                for p in self._group_points(group, markers=True)
                if p.kind == _KIND_VERSION or p.details["is_latest"]
            ]
            # The current entry is the key's state now: for planning it is dated `now` (at the
            # latest) and managed, so the planner's floor lands on it and count rules count it
            # (KeepLast(k) keeps the current version and k - 1 noncurrent ones).
            planning = [
                p.evolve(managed=True, created_at=max(now, p.created_at))
                if p.details["is_latest"] and self.manage_noncurrent
                else p
                for p in points
            ]
            plan = rule.plan(planning, now=now, tz=tz)
            reasons = {pid: tuple(r) for pid, r in plan.reasons.items()}
            deleted: set[str] = set()
            for point in plan.delete:
                if point.details["is_latest"]:
                    reasons[point.id] = (*reasons.get(point.id, ()), _CURRENT_REASON)
                else:
                    deleted.add(point.id)
            keep = tuple(p for p in points if p.id not in deleted)
            delete = tuple(p for p in points if p.id in deleted)
            yield KeyRetentionPlan(key=group[0].key, keep=keep, delete=delete, reasons=reasons)

    def _current_again(
        self, key: str, version: str | None, seen: dict[str, str | None], requests: _Requests
    ) -> bool:
        """Whether *version* of *key* is the key's current version now (made so since planning).

        *seen* caches the current version of the last key asked about (one ``HeadObject`` per key).
        """
        if key not in seen:
            seen.clear()
            requests.add("HeadObject")
            head = self._head_or_none(key, None)
            seen[key] = None if head is None else str(head.get("VersionId") or "null")
        return seen[key] == version

    def apply_noncurrent_retention(
        self,
        rule: _Rule,
        *,
        now: datetime,
        tz: str | tzinfo = "UTC",
        dry_run: bool = False,
        max_workers: int = 8,
        batch_size: int = DELETE_BATCH_LIMIT,
        page_size: int | None = None,
    ) -> RetentionRunReport:
        """Plan per key, then delete the planned noncurrent versions in batches.

        The whole listing is read and planned before the first delete: a listing that fails
        part-way (on any page) deletes nothing, and a re-run starts afresh. Memory holds one
        key's versions while planning, then the ``(key, version id)`` pairs to delete. With
        Object Lock enabled on the bucket, each version to delete is checked with
        ``HeadObject`` first and skipped when held or retained. A planned version can become
        current again before the deletes run (its newer versions or the key's delete marker
        removed, the usual undelete): each key's current version is read (one ``HeadObject``
        per key with planned deletions) right before its deletes, and is never deleted.

        Raises:
            PolicyError: *batch_size* is not between 1 and 1000.
        """
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= DELETE_BATCH_LIMIT
        ):
            raise PolicyError.for_field(
                "batch_size", f"an integer from 1 to {DELETE_BATCH_LIMIT}", batch_size
            )
        requests = _Requests()
        counts: Counter[str] = Counter()
        locked = self._lock_enabled()
        # List (and plan) everything first: nothing is deleted unless the listing completed.
        planned: list[tuple[str, str]] = []
        for plan in self._plan_keys(rule, now, tz, requests, page_size):
            counts["keys"] += 1
            counts["kept"] += len(plan.keep)
            planned.extend(_split_id(point.id) for point in plan.delete)
        checked_now = datetime.now(UTC)
        current: dict[str, str | None] = {}  # the key's current version now (one key at a time)

        def candidates() -> Iterator[tuple[str, str | None]]:
            for key, version in planned:  # grouped by key
                if self._current_again(key, version, current, requests):
                    counts["kept"] += 1
                    continue
                if locked:
                    requests.add("HeadObject")
                    head = self._head_or_none(key, version) or {}
                    if self._lock_hold(head, key, version, checked_now) is not None:
                        counts["held"] += 1
                        counts["kept"] += 1
                        continue
                counts["deleted"] += 1
                yield key, version

        if dry_run:
            for _ in candidates():
                pass
        else:
            with _Pool(max_workers) as pool:
                self._delete_stream(candidates(), pool, requests, batch_size)
        done = requests.snapshot()
        return RetentionRunReport(
            keys=counts["keys"],
            kept=counts["kept"],
            deleted=counts["deleted"],
            held=counts["held"],
            batches=done.get("DeleteObjects", 0),
            dry_run=dry_run,
            requests=done,
        )

    def noncurrent_lifecycle_rule(
        self,
        *,
        noncurrent_days: int,
        newer_noncurrent_versions: int | None = None,
        rule_id: str | None = None,
    ) -> dict[str, Any]:
        """The lifecycle rule that makes AWS expire noncurrent versions under the prefix.

        ``noncurrent_days=35`` is ``MaxAge(days=35)`` planned per key by
        `noncurrent_retention_plan`; adding ``newer_noncurrent_versions=k`` is
        ``MaxAge(days=35) | KeepLast(k + 1)`` (our count includes the current version). AWS
        rounds each expiry up to the next midnight UTC, so it deletes up to a day later than
        `apply_noncurrent_retention`; `lifecycle_rule_for` compiles a rule for you.

        Example:
            >>> S3Bucket("logs", prefix="app/", region="us-east-1").noncurrent_lifecycle_rule(
            ...     noncurrent_days=35)["NoncurrentVersionExpiration"]
            {'NoncurrentDays': 35}
        """
        if (
            isinstance(noncurrent_days, bool)
            or not isinstance(noncurrent_days, int)
            or noncurrent_days < 1
        ):
            raise PolicyError.for_field("noncurrent_days", "an integer >= 1", noncurrent_days)
        expiration: dict[str, int] = {"NoncurrentDays": noncurrent_days}
        if newer_noncurrent_versions is not None:
            n = newer_noncurrent_versions
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:  # noqa: PLR2004
                raise PolicyError.for_field(
                    "newer_noncurrent_versions", "an integer from 1 to 100", n
                )
            expiration["NewerNoncurrentVersions"] = n
        return {
            "ID": rule_id or f"backuppolicy-noncurrent-{self.name}"[:255],
            "Filter": {"Prefix": self.prefix},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": expiration,
        }

    def lifecycle_rule_for(self, rule: object, *, rule_id: str | None = None) -> dict[str, Any]:
        """Compile a retention rule to the equivalent noncurrent-version lifecycle rule.

        Only ``MaxAge`` in whole days or weeks, optionally ``| KeepLast(k)``, can be expressed:
        ``MaxAge(days=35) | KeepLast(3)`` becomes ``NoncurrentDays=35,
        NewerNoncurrentVersions=2`` (the current version is one of the three).

        Raises:
            PolicyError: The rule has no lifecycle equivalent.
        """
        days, newer = _lifecycle_terms(rule)
        return self.noncurrent_lifecycle_rule(
            noncurrent_days=days, newer_noncurrent_versions=newer, rule_id=rule_id
        )

    def put_lifecycle_rule(self, rule: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Add *rule* to the bucket's lifecycle configuration, replacing a rule with the same ID.

        Other rules are kept. Returns the rules written.
        """
        current = self._optional("get_bucket_lifecycle_configuration").get("Rules", [])
        rules = [r for r in current if r.get("ID") != rule["ID"]] + [dict(rule)]
        self.call(
            "s3",
            "put_bucket_lifecycle_configuration",
            resource=self.bucket,
            Bucket=self.bucket,
            LifecycleConfiguration={"Rules": rules},
        )
        return rules

    # Point-in-time restore ----------------------------------------------------------------

    def _refuse_unversioned(self, requests: _Requests) -> None:
        """Refuse an in-place restore unless versioning is on, checked right before writing.

        Without versioning, its copies and delete markers would replace the current (null)
        versions for good.
        """
        requests.add("GetBucketVersioning")
        status = self.versioning()
        if status != "Enabled":
            raise PolicyError.for_field(
                "dest_bucket",
                "another bucket or prefix: an in-place restore needs versioning on "
                f"s3://{self.bucket} so the current versions are kept",
                f"in place, versioning {status}",
                hint="Nothing was changed.",
            )

    def restore_to_time(
        self,
        when: datetime,
        dest_bucket: str | None = None,
        dest_prefix: str | None = None,
        *,
        max_workers: int = 32,
        dry_run: bool = False,
        page_size: int | None = None,
    ) -> RestoreReport:
        """Restore the objects under the prefix to their state at *when*.

        One ``ListObjectVersions`` pass; each key is decided as soon as the listing moves past
        it (its versions and delete markers may span pages), and its server-side copy starts at
        once on a pool of *max_workers* threads. The default of 32 concurrent copies matches the
        clients' default connection pool (``max_pool_connections=32``) and stays far below S3's
        request rates (3,500 copies per second per prefix); copies are latency-bound, so more
        in flight means a faster restore.

        * Into another bucket and/or prefix (``dest_bucket`` or ``dest_prefix`` given): every
          key alive at *when* is copied from its version at *when* to
          ``dest_prefix + key[len(prefix):]`` (``dest_prefix`` defaults to the prefix). Nothing
          is deleted at the destination.
        * In place (neither given): only keys whose current version differs from the version at
          *when* are copied (a current version with the same ETag and size, such as the copy an
          earlier restore made, counts as the same); keys that did not exist at *when* (created later, or deleted at
          *when* and written again later) get a delete marker via batched ``DeleteObjects``.
          Nothing is lost: every version stays in the history.
        * Keys whose delete marker was current at *when* are not restored.

        A version counts as written at its ``LastModified`` second *S* and is included when
        ``S <= floor(when)``. Objects above 5 GiB are copied with multipart ``UploadPartCopy``.

        Raises:
            PolicyError: *when* is naive, the destination overlaps the source without being it,
                or an in-place restore finds versioning off or suspended (nothing is changed).
        """
        ensure_aware(when, field="when")
        when_utc = when.astimezone(UTC)
        cutoff = math.floor(when_utc.timestamp())
        target_bucket = dest_bucket or self.bucket
        target_prefix = self.prefix if dest_prefix is None else dest_prefix
        in_place = target_bucket == self.bucket and target_prefix == self.prefix
        if (
            target_bucket == self.bucket
            and not in_place
            and (target_prefix.startswith(self.prefix) or self.prefix.startswith(target_prefix))
        ):
            raise PolicyError.for_field(
                "dest_prefix",
                f"a prefix that does not overlap the source prefix {self.prefix!r}",
                target_prefix,
            )
        requests = _Requests()
        if in_place and not dry_run:
            self._refuse_unversioned(requests)
        counts: Counter[str] = Counter()
        skipped: Counter[str] = Counter()

        def removals(pool: _Pool | None) -> Iterator[tuple[str, str | None]]:
            groups = self._data_groups(
                requests=requests, page_size=page_size, prefetch=_PREFETCH_PAGES
            )
            for group in groups:
                counts["keys"] += 1
                action, entry, ambiguous = _decide(group, cutoff, in_place=in_place)
                counts["ambiguous"] += ambiguous
                if action == "delete":
                    counts["deleted"] += 1
                    yield group[0].key, None
                elif action == "copy" and entry is not None:
                    counts["restored"] += 1
                    counts["bytes"] += entry.size
                    if pool is not None:
                        pool.submit(
                            self._copy_version,
                            entry.key,
                            entry.version_id,
                            size=entry.size,
                            dest_bucket=target_bucket,
                            dest_key=self._relocate(entry.key, target_prefix),
                            requests=requests,
                        )
                else:
                    skipped[action] += 1

        if dry_run:
            for _ in removals(None):
                pass
        else:
            with _Pool(max_workers) as pool:
                self._delete_stream(removals(pool), pool, requests)
        return RestoreReport(
            when=when_utc,
            source=self.url,
            destination=_s3_url(target_bucket, target_prefix),
            in_place=in_place,
            dry_run=dry_run,
            keys=counts["keys"],
            restored=counts["restored"],
            deleted=counts["deleted"],
            skipped=dict(skipped),
            ambiguous=counts["ambiguous"],
            bytes_copied=counts["bytes"],
            requests=requests.snapshot(),
        )


def _same_content(current: _Entry, at_t: _Entry) -> bool:
    """The same version, or a version with the same ETag and size (an earlier restore's copy)."""
    if current.version_id == at_t.version_id:
        return True
    return (
        not current.is_marker
        and bool(at_t.etag)
        and (current.etag, current.size) == (at_t.etag, at_t.size)
    )


def _decide(
    group: Sequence[_Entry], cutoff: int, *, in_place: bool
) -> tuple[str, _Entry | None, bool]:
    """Decide one key of a point-in-time restore from its entries (newest first).

    Returns the action (``"copy"``, ``"delete"``, ``"unchanged"``, ``"deleted at T"``,
    ``"created after T"``), the entry to copy, and whether the decision was ambiguous (a delete
    marker and a version share the deciding second).
    """
    current = group[0]
    at_t = next((e for e in group if e.second <= cutoff), None)
    if at_t is None:
        return ("delete" if in_place and not current.is_marker else "created after T"), None, False
    ambiguous = any(e.second == at_t.second and e.is_marker != at_t.is_marker for e in group)
    if at_t.is_marker:
        return ("delete" if in_place and not current.is_marker else "deleted at T"), None, ambiguous
    if in_place and _same_content(current, at_t):
        return "unchanged", at_t, ambiguous
    return "copy", at_t, ambiguous


def _hold_tag(hold: LegalHold) -> str:
    """S3 tag values allow letters, digits, spaces and ``_.:/=+-@``: the hold tag is base64url."""
    value = "b64:" + base64.urlsafe_b64encode(hold.to_tag().encode()).decode()
    if len(value) > _MAX_TAG_VALUE:
        raise PolicyError.for_field(
            "hold", f"a hold whose encoded tag fits {_MAX_TAG_VALUE} characters", hold
        )
    return value


def _hold_from_tag(value: str) -> LegalHold:
    if value.startswith("b64:"):
        with contextlib.suppress(ValueError):
            value = base64.urlsafe_b64decode(value[4:].encode()).decode()
    return LegalHold.from_tag(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _lifecycle_terms(rule: object) -> tuple[int, int | None]:
    """``(NoncurrentDays, NewerNoncurrentVersions)`` of ``MaxAge(days=N) [| KeepLast(k)]``."""
    from backuppolicy.core.retention import AnyOf, KeepLast, MaxAge  # noqa: PLC0415 - pure core, loaded on use

    expected = "MaxAge in whole days or weeks, optionally | KeepLast(k) with k >= 1"
    parts = rule.rules if isinstance(rule, AnyOf) else (rule,)
    days: int | None = None
    newer: int | None = None
    for part in parts:
        if isinstance(part, MaxAge) and days is None:
            d = part.duration
            if d.years or d.months or d.hours or d.minutes or not (d.weeks or d.days):
                raise PolicyError.for_field("rule", expected, str(d))
            days = d.weeks * 7 + d.days
        elif isinstance(part, KeepLast) and newer is None and part.n >= 1:
            newer = part.n - 1
        else:
            raise PolicyError.for_field("rule", expected, part)
    if days is None:
        raise PolicyError.for_field("rule", expected, rule)
    return days, newer or None


def _refuse_protected(point: RecoveryPoint) -> None:
    if point.held:
        assert point.legal_hold is not None  # noqa: S101 - narrowed by `held`
        raise ProtectedPointError(
            f"refusing to delete {point.id!r}: it is under {point.legal_hold.describe()}",
            point=point,
        )
    if not point.managed:
        what = (
            "the current version of its key"
            if point.details.get("is_latest")
            else "not managed by this policy"
        )
        raise ProtectedPointError(f"refusing to delete {point.id!r}: it is {what}", point=point)
    if point.status is Status.PENDING:
        raise ProtectedPointError(
            f"refusing to delete {point.id!r}: it is still pending", point=point
        )


def _encode_tags(tags: Mapping[str, str]) -> str:
    from urllib.parse import urlencode  # noqa: PLC0415 - only needed here

    return urlencode(tags)
