"""The two archive stores, `DirectoryStore` (a directory) and `S3Store` (a bucket prefix), and `open_store`."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backuppolicy.core._bounded import BoundedCache
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.registry import get_plugin
from backuppolicy.local._archive_store import LOCK_SOURCE, ArchiveStore, ChangedError
from backuppolicy.local._format import (
    TMP_PREFIX,
    ArchiveWriter,
    Readable,
    archive_key,
    of_target,
    sidecar_key,
    too_big,
)
from backuppolicy.local._leftovers import LOCK_PREFIX, leftover_name, remove_abandoned

if TYPE_CHECKING:  # types only: the layers below aws/ never import it (import-linter)
    import boto3
    from botocore.config import Config

    from backuppolicy.aws import AwsBackend, RetryPolicy, S3Objects
    from backuppolicy.core.specs import AccountSpec

_MiB = 1024 * 1024
_S3_MIN_PART = 5 * _MiB
SIDECAR_CACHE_ENTRIES = 4096
"""Sidecar contents an `S3Store` keeps, by key and ETag (`S3Store._listed_json`)."""
SIDECAR_CACHE_BYTES = 32 * _MiB
"""The most bytes of sidecar contents an `S3Store` keeps."""


class _FileSink:
    def __init__(self, handle: io.BufferedWriter) -> None:
        self._handle = handle
        self.encryption: str | None = None

    def write(self, data: bytes, /) -> int:
        return self._handle.write(data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStore(ArchiveStore):
    """Archives in a directory on this machine or a mounted server: the ``"local"`` tier.

    The directory is created with mode ``0700`` on first write; archives and sidecars
    are written as ``0600`` temporary files (``.tmp-*``), fsynced and renamed into
    place, then the directory is fsynced.

    Example:
        >>> import tempfile
        >>> store = DirectoryStore(tempfile.mkdtemp())
        >>> store.tier, list(store.list_points())
        ('local', [])

    Attributes:
        path: The directory.
        tier: Tier of the points (default ``"local"``).
        declared_encryption: ``"volume"`` when the policy declares the directory is on an
            encrypted volume (``location.encryption: declared-volume``): reported as declared,
            not verified. ``None`` otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tier: str = "local",
        declared_encryption: str | None = None,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.tier = _check_tier(tier)
        if declared_encryption not in (None, "volume"):
            raise PolicyError.for_field(
                "declared_encryption", "'volume' or None", declared_encryption
            )
        self.declared_encryption = declared_encryption

    def __repr__(self) -> str:
        return f"<backuppolicy.local.DirectoryStore(path={str(self.path)!r}, tier={self.tier!r})>"

    @property
    def url(self) -> str:
        """``file://`` URL of the directory."""
        return self.path.as_uri()

    @property
    def encrypted(self) -> bool | None:
        """``False``: files are stored as they are (use disk encryption underneath)."""
        return False

    def _ensure(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def open_writer(self, key: str) -> Iterator[ArchiveWriter]:
        """Write *key* to a ``.tmp-`` file, fsync it and rename it into place on exit."""
        _check_key(key)
        self._ensure()
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{key}.", dir=self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # live: sweep_incomplete leaves it alone
            with os.fdopen(fd, "wb") as handle:
                yield _FileSink(handle)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(self.path / key)
            _fsync_dir(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def open_reader(self, key: str) -> Iterator[Readable]:
        """Open *key* for reading."""
        _check_key(key)
        try:
            handle = (self.path / key).open("rb")
        except FileNotFoundError as exc:
            msg = f"{self.url}: {key} does not exist"
            raise ResourceNotFoundError(
                msg, backend=self.url, operation="read", resource=key
            ) from exc
        with handle:
            yield handle

    def keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        """Complete files in the directory (never ``.tmp-*``), sorted by name."""
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for entry in entries:
            if (
                entry.name.startswith(prefix)
                and not entry.name.startswith((TMP_PREFIX, LOCK_PREFIX))
                and entry.is_file(follow_symlinks=False)
            ):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted since the scan: not listed
                yield entry.name, datetime.fromtimestamp(st.st_mtime, UTC)

    def exists(self, key: str) -> bool:
        """Whether the file *key* exists."""
        _check_key(key)
        return (self.path / key).is_file()

    def remove(self, key: str) -> None:
        """Unlink *key* and fsync the directory."""
        _check_key(key)
        try:
            (self.path / key).unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.path)

    @contextlib.contextmanager
    def _point_lock(self, name: str) -> Iterator[None]:
        """An exclusive ``flock`` on ``.bp-lock-<name>``, between threads and processes.

        The lock file is removed on release. A waiter that wakes up on a removed file
        opens the new one and waits again, so two holders never overlap.
        """
        _check_key(name)
        if not self.path.is_dir():  # no store, no sidecar: nothing to serialise
            yield
            return
        path = self.path / f"{LOCK_PREFIX}{name}"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                opened = os.fstat(fd)
                try:
                    named = path.lstat()
                except FileNotFoundError:
                    named = None
            except BaseException:
                os.close(fd)
                raise
            if named is not None and (named.st_dev, named.st_ino) == (
                opened.st_dev,
                opened.st_ino,
            ):
                break
            os.close(fd)  # released and removed while we waited: take the new one
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            os.close(fd)

    @contextlib.contextmanager
    def _local(self, key: str) -> Iterator[Path]:
        if not self.exists(key):
            msg = f"{self.url}: {key} does not exist"
            raise ResourceNotFoundError(msg, backend=self.url, operation="read", resource=key)
        yield self.path / key

    def local_file(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """The file itself (no copy)."""
        return self._local(key)

    def sweep_incomplete(
        self,
        *,
        older_than: timedelta = timedelta(hours=1),
        now: datetime | None = None,
        target: str | None = None,
    ) -> list[str]:
        """Also remove ``.tmp-*`` files and point locks left by a crash.

        Only those last modified more than *older_than* ago and not locked: a running
        writer holds a lock on its temporary file, so a concurrent backup's file stays.
        """
        now = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
        removed = super().sweep_incomplete(older_than=older_than, now=now, target=target)
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)
        except FileNotFoundError:
            return removed
        for entry in entries:
            name = leftover_name(entry.name)
            if name is None or not of_target(name, target):
                continue
            if remove_abandoned(Path(entry.path), older_than=older_than, now=now):
                removed.append(entry.name)
        return removed


def _check_key(key: str) -> None:
    if not key or "/" in key or "\\" in key or key in {".", ".."} or "\0" in key:
        raise PolicyError.for_field("key", "a plain file name", key)


def _check_tier(tier: str) -> str:
    if not isinstance(tier, str) or not tier:
        raise PolicyError.for_field("tier", "a non-empty string", tier)
    return tier


def _s3_objects(bucket: str, **options: Any) -> Any:
    """The ``"s3"`` object store of the registry (`backuppolicy.aws.S3Objects`, imports boto3)."""
    return get_plugin("object-store", "s3")(bucket, **options)


class S3Store(ArchiveStore):
    """Archives under a bucket prefix: the ``"offsite"`` tier.

    Objects are ``<prefix><name>.tar.gz`` and ``<prefix><name>.json``. Archives are
    uploaded in parts of *part_size* bytes (only one part is in memory at a time);
    an object appears only once its upload completes, so a crash leaves nothing that
    looks complete (add a lifecycle rule ``AbortIncompleteMultipartUpload`` to clean
    up abandoned parts). With *kms_key_id* every object is written with SSE-KMS.

    The archive format lives here; every S3 call is made by the registry's ``"s3"`` object
    store, `backuppolicy.aws.S3Objects` (through `backuppolicy.aws.AwsBackend`: retries, error
    mapping). Creating an `S3Store` imports boto3; importing `backuppolicy.local` does not.

    Attributes:
        bucket: The bucket.
        prefix: Key prefix (``"backups/"``); keys are ``prefix + name``.
        tier: Tier of the points (default ``"offsite"``).
        kms_key_id: KMS key for SSE-KMS, or ``None`` for the bucket's default encryption.
        part_size: Multipart part size in bytes (at least 5 MiB).
        max_workers: Sidecars read concurrently while listing.
        account: The account that owns the bucket, when it is not the caller's (a copy tier in a
            backup account, `~backuppolicy.core.specs.AccountSpec`): every call of this store
            is then made with that account's role (assumed from *session* on first use), so
            listing, pruning, verifying and restoring its copies use the backup account's
            credentials only.
        objects: The `backuppolicy.aws.S3Objects` that makes every call.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        tier: str = "offsite",
        kms_key_id: str | None = None,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        part_size: int = 8 * _MiB,
        max_workers: int = 8,
        account: AccountSpec | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise PolicyError.for_field("bucket", "a non-empty bucket name", bucket)
        if not isinstance(prefix, str):
            raise PolicyError.for_field("prefix", "a string", prefix)
        if (
            isinstance(part_size, bool)
            or not isinstance(part_size, int)
            or part_size < _S3_MIN_PART
        ):
            raise PolicyError.for_field("part_size", f"an integer >= {_S3_MIN_PART}", part_size)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise PolicyError.for_field("max_workers", "an integer >= 1", max_workers)
        self.bucket = bucket
        self.prefix = prefix
        self.tier = _check_tier(tier)
        self.kms_key_id = kms_key_id
        self.part_size = part_size
        self.max_workers = max_workers
        self.account = account
        self.objects: S3Objects = _s3_objects(
            bucket,
            name=f"s3://{bucket}/{prefix}",
            kms_key_id=kms_key_id,
            part_size=part_size,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
            **({"account": account} if account is not None else {}),
        )
        self._sidecars: BoundedCache[bytes] = BoundedCache(
            entries=SIDECAR_CACHE_ENTRIES, max_bytes=SIDECAR_CACHE_BYTES, size=len
        )

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.local.S3Store(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"tier={self.tier!r})>"
        )

    @property
    def aws(self) -> AwsBackend:
        """The `~backuppolicy.aws.AwsBackend` that makes every call (``objects.backend``)."""
        return self.objects.backend

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def encrypted(self) -> bool | None:
        """``True`` with SSE-KMS; otherwise as reported by S3 for each upload."""
        return True if self.kms_key_id else None

    def open_writer(self, key: str) -> contextlib.AbstractContextManager[ArchiveWriter]:
        """Upload *key* (PutObject, or a multipart upload past one part); abort on error."""
        _check_key(key)
        return self.objects.open_writer(self.prefix + key)

    def open_reader(self, key: str) -> contextlib.AbstractContextManager[Readable]:
        """Stream *key* with GetObject."""
        _check_key(key)
        reader: contextlib.AbstractContextManager[Readable] = self.objects.open_reader(
            self.prefix + key
        )
        return reader

    def read_limited(self, key: str, limit: int) -> bytes:
        """GetObject of the first ``limit + 1`` bytes only (a Range request).

        Raises:
            ResourceNotFoundError: *key* does not exist.
            UnsafeArchiveError: *key* holds more than *limit* bytes.
        """
        _check_key(key)
        raw, over = self.objects.get_bounded(self.prefix + key, limit)
        if over:
            raise too_big(self.url, key, limit)
        return raw

    def keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        """Stream keys under ``self.prefix + prefix`` (ListObjectsV2, every page)."""
        start = len(self.prefix)
        for page in self.objects.list_pages(self.prefix + prefix):
            for key, modified in page:
                yield key[start:], modified

    def _scan(self, prefix: str) -> Iterator[tuple[str, datetime, str | None]]:
        """`keys` with each object's ETag (ListObjectsV2 returns it: no extra request).

        An object store without ``list_etags`` (a plug-in) gives no ETag: every sidecar is read.
        """
        list_etags = getattr(self.objects, "list_etags", None)
        if list_etags is None:
            yield from super()._scan(prefix)
            return
        start = len(self.prefix)
        for page in list_etags(self.prefix + prefix):
            for key, modified, etag in page:
                yield key[start:], modified, etag or None

    def _listed_json(self, key: str, etag: str | None) -> dict[str, Any] | None:
        """The sidecar *key* listed with *etag*: its content read once per ETag.

        An ETag names one content of a key: a sidecar rewritten (a hold placed or released, a
        lock recorded) is listed with a new ETag and read again. A content is kept only when
        S3 confirms it is the listed ETag's (GetObject with ``If-Match``,
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-reads.html); a
        sidecar changed since the listing is read as it is now and not kept. Nothing mutable
        is kept beyond the content itself, and a deleted sidecar is not listed, so it is
        never read from here.
        """
        get_if = getattr(self.objects, "get_bounded_if", None)
        if etag is None or get_if is None:
            return self.read_json(key)
        where = (key, etag)
        raw = self._sidecars.get(where)
        if raw is None:
            _check_key(key)
            limit = self._sidecar_bytes()  # read_json's bound
            try:
                answer = get_if(self.prefix + key, limit, etag)
            except ResourceNotFoundError:
                return None  # deleted since the listing: not listed
            if answer is None:  # changed since the listing: read it as it is now
                return self.read_json(key)
            raw, over = answer
            if over:
                raise too_big(self.url, key, limit)
            self._sidecars.put(where, raw)
        return self._json_object(key, raw)

    def exists(self, key: str) -> bool:
        """HeadObject."""
        _check_key(key)
        return self.objects.exists(self.prefix + key)

    def remove(self, key: str) -> None:
        """DeleteObject (in a versioned bucket this adds a delete marker)."""
        _check_key(key)
        self.objects.delete(self.prefix + key)

    # Holds against deletes: S3 conditional writes (If-Match on PutObject and DeleteObject).

    def _sidecar_tag(self, name: str) -> str | None:
        """The sidecar's ETag (HeadObject), ``None`` if there is none."""
        return self.objects.etag(self.prefix + sidecar_key(name))

    def _write_json_if(self, key: str, data: Mapping[str, object], tag: str | None) -> None:
        """PutObject with ``If-Match: <tag>``: a sidecar changed or deleted meanwhile is not written."""
        body = json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        if tag is None or not self.objects.put(self.prefix + key, body, if_match=tag):
            raise ChangedError(key)

    def _remove_if(self, key: str, tag: str | None) -> None:
        """DeleteObject with ``If-Match: <tag>``: a sidecar changed meanwhile is not deleted."""
        if tag is None or not self.objects.delete(self.prefix + key, if_match=tag):
            raise ChangedError(key)

    def lock_point(self, point: RecoveryPoint, lock: PointLock) -> RecoveryPoint:
        """Object Lock retention *lock* on *point*'s archive and sidecar; return the point re-read.

        The archive's current version is locked first, then the lock is recorded in the
        sidecar (``lock``: what pruning and the audit read), and that sidecar version is
        locked too. The bucket must have Object Lock enabled.

        Raises:
            PolicyError: *lock* has no expiry or is not governance or compliance, or the
                bucket keeps no versions.
            ResourceNotFoundError: The point does not exist.
        """
        if lock.mode not in {"governance", "compliance"} or lock.until is None:
            raise PolicyError.for_field(
                "lock", "a governance or compliance lock with an expiry date", lock
            )
        until = lock.until
        self.objects.retain(self.prefix + archive_key(point.id), lock.mode, until)

        def change(data: dict[str, Any]) -> None:
            data["lock"] = {"mode": lock.mode, "until": until.isoformat(), "source": LOCK_SOURCE}

        locked = self._update_sidecar(point, change, "lock")
        self.objects.retain(self.prefix + sidecar_key(point.id), lock.mode, until)
        return locked

    def _load_points(self, names: Sequence[tuple[str, str | None]]) -> Iterator[RecoveryPoint]:
        if not names:
            return
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            for point in pool.map(lambda pair: self._sidecar_point(*pair), names):
                if point is not None:
                    yield point


def open_store(
    url: str | os.PathLike[str] | ArchiveStore, *, tier: str, **options: Any
) -> ArchiveStore:
    """Open a store from a URL: ``s3://bucket/prefix`` → `S3Store`, a path or ``file://`` → `DirectoryStore`.

    *options* go to the `S3Store` constructor (``session=``, ``kms_key_id=`` ...).

    Example:
        >>> open_store("/var/backups/config", tier="local")
        <backuppolicy.local.DirectoryStore(path='/var/backups/config', tier='local')>
    """
    if isinstance(url, ArchiveStore):
        return url
    text = os.fspath(url)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        return S3Store(bucket, prefix, tier=tier, **options)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise PolicyError.for_field("store", "a directory, a file:// URL or an s3:// URL", text)
    declared = options.pop("declared_encryption", None)
    if options:
        raise PolicyError.for_field("options", "no options for a directory store", options)
    return DirectoryStore(text, tier=tier, declared_encryption=declared)
