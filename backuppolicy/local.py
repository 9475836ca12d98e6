"""Local backend: directories of configuration files and application code, archived into stores.

A `Directory` target turns a directory into a gzip-compressed tar archive with a
SHA-256 manifest of every entry, and keeps it in an `ArchiveStore`: a
`DirectoryStore` (a directory on a local server, the ``"local"`` tier) or an
`S3Store` (a bucket prefix, the ``"offsite"`` tier). Each stored backup is one
`~backuppolicy.RecoveryPoint` of kind ``"archive"``.

Layout of one point named ``bp-<target>-<UTC stamp>`` in a store:

* ``<name>.tar.gz``: the archive. Its members are ``data/`` (the directory) and,
  last, ``manifest.json`` (every entry's path, type, size, mode and SHA-256).
* ``<name>.json``: the sidecar (ownership tags, reason, token, legal hold, the
  archive's SHA-256 and size). It is written last and is the "complete" marker: an
  archive without a sidecar is an interrupted backup and lists as `Status.FAILED`.

Every file is written atomically (temporary file, fsync, rename; on S3 an object
appears only once its upload completes). Restores extract into a fresh directory,
refuse hostile archives (absolute paths, ``..``, device files, links that escape)
and check every file against the manifest.

``import backuppolicy.local`` does not import boto3 and imports nothing from
`backuppolicy.aws`: `S3Store` keeps the archive format and gets the S3 calls from the
registry's ``"s3"`` object store (`backuppolicy.aws.S3Objects`), imported when a store is
created.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import errno
import fcntl
import fnmatch
import glob
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from backuppolicy.core.exceptions import (
    BackendError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    UnsafeArchiveError,
    VerificationError,
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
from backuppolicy.core.restoring import (
    ABSENT,
    MADE_BY_THIS_RESTORE,
    RestoreCheck,
    RestoreOutcome,
    RestorePlan,
    RestoreStep,
    StepAction,
    choose_point,
    stamp_of,
)
from backuppolicy.core.targets import (
    Destination,
    IsolationProfile,
    RestoredResource,
    SweptResource,
    get_plugin,
)

if TYPE_CHECKING:  # types only: the layers below aws/ never import it (import-linter)
    import boto3
    from botocore.config import Config

    from backuppolicy.aws import AwsBackend, RetryPolicy, S3Objects
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "ARCHIVE_FORMAT",
    "MAX_ARCHIVE_MEMBERS",
    "MAX_EXPANDED_BYTES",
    "MAX_EXPANSION_RATIO",
    "MAX_MANIFEST_BYTES",
    "MAX_SIDECAR_BYTES",
    "MIN_FREE_BYTES",
    "ArchiveStore",
    "ArchiveWriter",
    "Directory",
    "DirectoryStore",
    "S3Store",
    "UnsafeArchiveError",
    "open_store",
    "sweep_restore_staging",
]

ARCHIVE_FORMAT = 1
"""Version of the archive, manifest and sidecar format written by this module."""

MAX_SIDECAR_BYTES = 1024 * 1024
"""Largest sidecar (``<name>.json``) read, in bytes; a larger one is refused, unread."""

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""Largest ``manifest.json`` read from an archive, in bytes (about 300,000 entries)."""

MAX_ARCHIVE_MEMBERS = 500_000
"""Most members a restore extracts from one archive."""

MAX_EXPANDED_BYTES = 1024**4
"""Most bytes a restore writes from one archive (1 TiB), whatever the compression ratio."""

MAX_EXPANSION_RATIO = 200
"""Most expanded bytes per archive byte a restore accepts, once past 64 MiB.

Text and code compress about 3 to 10 times; a gzip of zeros about 1,000 times. Small archives
are never refused for their ratio: below 64 MiB of expanded data a bomb cannot hurt.
"""

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Bytes a restore leaves free on the destination's file system."""

_RATIO_FLOOR = 64 * 1024 * 1024

_ARCHIVE_SUFFIX = ".tar.gz"
_SIDECAR_SUFFIX = ".json"
_DATA = "data"
_MANIFEST = "manifest.json"
_TMP_PREFIX = ".tmp-"
_CHUNK = 256 * 1024
_GZIP_LEVEL = 6
_MiB = 1024 * 1024
_S3_MIN_PART = 5 * _MiB
_MAX_LINK_HOPS = 40
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# bp-<target>-<stamp>[-<n>][-<tier>]: copies carry their tier so ids stay unique per target.
_POINT_RE = re.compile(
    r"^bp-(?P<target>.+)-(?P<stamp>\d{8}t\d{6}z)(?:-\d+)?(?:-(?P<tier>[a-z][a-z0-9_]*))?$"
)
_STAMP = "%Y%m%dt%H%M%Sz"
_log = logging.getLogger("backuppolicy.local")
_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
_FILTER_ERRORS: tuple[type[Exception], ...] = (tarfile.FilterError,) if _HAS_DATA_FILTER else ()


class ArchiveWriter(Protocol):
    """**Protocol:** a sink that `ArchiveStore.open_writer` yields; the object is committed on exit.

    Attributes:
        encryption: Server-side encryption applied to the committed object (``"aws:kms"``,
            ``"AES256"``) or ``None``; known after the writer's context exits.
    """

    encryption: str | None

    def write(self, data: bytes, /) -> int:
        """Append *data*; return the number of bytes written."""
        ...


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


# --------------------------------------------------------------------------- stores


def _archive_key(name: str) -> str:
    return name + _ARCHIVE_SUFFIX


def _sidecar_key(name: str) -> str:
    return name + _SIDECAR_SUFFIX


def _split_key(key: str) -> tuple[str, str] | None:
    """``("bp-x-...", "archive"|"sidecar")`` for one of our keys, ``None`` for anything else."""
    if key.startswith(_TMP_PREFIX) or "/" in key:
        return None
    for suffix, kind in ((_ARCHIVE_SUFFIX, "archive"), (_SIDECAR_SUFFIX, "sidecar")):
        if key.endswith(suffix):
            name = key[: -len(suffix)]
            if _POINT_RE.match(name):
                return name, kind
    return None


def _read_upto(stream: _Readable, size: int) -> bytes:
    """At most *size* bytes of *stream* (fewer only at its end)."""
    parts: list[bytes] = []
    left = size
    while left > 0 and (chunk := stream.read(min(left, _CHUNK))):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _too_big(where: str, key: str, limit: int) -> UnsafeArchiveError:
    reason = f"is larger than {limit} bytes; it was not read"
    msg = f"{where}: {key} {reason}"
    return UnsafeArchiveError(msg, result={"member": key, "reason": reason})


def _sha256_of(stream: _Readable) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class ArchiveStore(abc.ABC):
    """Base of the places that hold archives; each stored archive is a `RecoveryPoint`.

    Subclasses implement the object primitives (`open_writer`, `open_reader`, `keys`,
    `exists`, `remove`); the point-level operations (listing, holds, deletes, copies,
    verification) are built on them here, so every store behaves the same.

    Attributes:
        tier: Tier of the points in this store (``"local"``, ``"offsite"``).
    """

    tier: str

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """URL of the store: the ``location`` of its points (``file:///...``, ``s3://...``)."""

    @property
    def encrypted(self) -> bool | None:
        """Whether objects are encrypted at rest by the store (``None`` if unknown)."""
        return None

    # -- object primitives -------------------------------------------------------------

    @abc.abstractmethod
    def open_writer(self, key: str) -> contextlib.AbstractContextManager[ArchiveWriter]:
        """Write object *key*: it appears, complete, only when the context exits cleanly.

        On an exception nothing is left behind (best effort; a crash may leave a
        temporary object that `keys` never lists).
        """

    @abc.abstractmethod
    def open_reader(self, key: str) -> contextlib.AbstractContextManager[_Readable]:
        """Read object *key* as a stream.

        Raises:
            ResourceNotFoundError: *key* does not exist.
        """

    @abc.abstractmethod
    def keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        """Stream ``(key, last modified)`` of complete objects whose key starts with *prefix*."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether object *key* exists."""

    @abc.abstractmethod
    def remove(self, key: str) -> None:
        """Remove object *key*; a missing object is not an error."""

    def local_file(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local file with the content of *key* (downloaded to a temporary file by default)."""
        return self._download(key)

    @contextlib.contextmanager
    def _download(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="bp-download-") as tmp:
            path = Path(tmp) / key
            with self.open_reader(key) as reader, path.open("wb") as handle:
                while chunk := reader.read(_CHUNK):
                    handle.write(chunk)
            yield path

    def read_limited(self, key: str, limit: int) -> bytes:
        """The content of *key*, read only if it holds at most *limit* bytes.

        At most ``limit + 1`` bytes are ever read, so a huge (or sparse) object costs nothing.

        Raises:
            ResourceNotFoundError: *key* does not exist.
            UnsafeArchiveError: *key* holds more than *limit* bytes.
        """
        with self.open_reader(key) as reader:
            raw = _read_upto(reader, limit + 1)
        if len(raw) > limit:
            raise _too_big(self.url, key, limit)
        return raw

    def read_json(self, key: str) -> dict[str, Any] | None:
        """Read a JSON object of at most `MAX_SIDECAR_BYTES`; ``None`` if *key* does not exist.

        Raises:
            UnsafeArchiveError: The object is larger than `MAX_SIDECAR_BYTES`.
            ValueError: The object is not a JSON object.
        """
        try:
            raw = self.read_limited(key, MAX_SIDECAR_BYTES)
        except ResourceNotFoundError:
            return None
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            msg = f"{self.url}: {key}: expected a JSON object (got {type(data).__name__})"
            raise ValueError(msg)  # noqa: TRY004 - a malformed document, like json's own errors
        return data

    def write_json(self, key: str, data: Mapping[str, Any]) -> str | None:
        """Write *data* as a JSON object, atomically; return the encryption applied."""
        body = json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        with self.open_writer(key) as writer:
            writer.write(body)
        return writer.encryption

    # -- points ------------------------------------------------------------------------

    def list_points(self, prefix: str = "bp-") -> Iterator[RecoveryPoint]:
        """Stream the points of the store (archive names starting with *prefix*).

        Complete points come first, as their sidecars are found; archives without a
        sidecar (interrupted backups) follow as `Status.FAILED`, unmanaged points.
        """
        archives: dict[str, datetime] = {}
        sidecars: set[str] = set()
        batch: list[str] = []
        for key, modified in self.keys(prefix):
            split = _split_key(key)
            if split is None:
                continue
            name, kind = split
            if kind == "archive":
                archives[name] = modified
                continue
            sidecars.add(name)
            batch.append(name)
            if len(batch) >= 100:  # noqa: PLR2004
                yield from self._load_points(batch)
                batch = []
        yield from self._load_points(batch)
        for name in sorted(set(archives) - sidecars):
            if self.exists(_archive_key(name)):  # else deleted since the scan: not listed
                yield self._incomplete_point(name, archives[name])

    def _load_points(self, names: Sequence[str]) -> Iterator[RecoveryPoint]:
        for name in names:
            point = self._sidecar_point(name)
            if point is not None:
                yield point

    def _sidecar_point(self, name: str) -> RecoveryPoint | None:
        """The point of sidecar *name*; ``None`` if the sidecar is gone (deleted since a scan).

        A listing that saw the sidecar and then finds it gone met a delete in progress (the
        sidecar goes first): the point is not listed, neither as an error nor as FAILED.
        """
        try:
            data = self.read_json(_sidecar_key(name))
        except (ValueError, UnsafeArchiveError) as exc:  # bad JSON or UTF-8, not an object, huge
            return self._broken_point(name, f"unreadable sidecar: {exc}")
        return None if data is None else self.point_from_sidecar(data)

    def get_point(self, name: str) -> RecoveryPoint | None:
        """The point called *name* (``None`` if there is neither sidecar nor archive)."""
        point = self._sidecar_point(name)
        if point is None and self.exists(_archive_key(name)):
            return self._incomplete_point(name, None)
        return point

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* from the store; ``None`` if it is gone."""
        return self.get_point(point.id)

    def point_from_sidecar(self, data: Mapping[str, Any]) -> RecoveryPoint:
        """Build the `RecoveryPoint` described by a sidecar of this store."""
        name = str(data.get("id", ""))
        try:
            tags = {str(k): str(v) for k, v in dict(data.get("tags", {})).items()}
            archive = dict(data["archive"])
            hold = tags.get(TAG_HOLD)
            encryption = data.get("encryption")
            return RecoveryPoint(
                id=name,
                target=str(data["target"]),
                created_at=datetime.fromisoformat(str(data["created_at"])),
                kind="archive",
                location=self.url,
                tier=self.tier,
                status=Status(str(data.get("status", "completed"))),
                size_bytes=int(archive["size"]),
                encrypted=bool(encryption) if encryption is not None else self.encrypted,
                tags=tags,
                legal_hold=LegalHold.from_tag(hold) if hold is not None else None,
                checksum=f"sha256:{archive['sha256']}",
                managed=TAG_POLICY in tags and TAG_TARGET in tags,
                details={
                    "store": self.url,
                    "archive_key": _archive_key(name),
                    "sidecar_key": _sidecar_key(name),
                    "compression": archive.get("compression", "gzip"),
                    "format": data.get("format"),
                    "manifest": data.get("manifest", {}),
                    "source": data.get("source", {}),
                    "encryption": encryption,
                    "copied_from": data.get("copied_from"),
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            if not name:
                name = "bp-unknown-00010101t000000z"
            return self._broken_point(name, f"malformed sidecar: {exc!r}")

    def _broken_point(self, name: str, why: str) -> RecoveryPoint:
        return self._incomplete_point(name, None, why=why)

    def _incomplete_point(
        self,
        name: str,
        modified: datetime | None,
        *,
        why: str = "archive without sidecar: the backup did not finish",
    ) -> RecoveryPoint:
        match = _POINT_RE.match(name)
        target = match["target"] if match else "unknown"
        created = (
            datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
            if match
            else (modified or datetime(1, 1, 1, tzinfo=UTC))
        )
        return RecoveryPoint(
            id=name,
            target=target,
            created_at=created,
            kind="archive",
            location=self.url,
            tier=self.tier,
            status=Status.FAILED,
            managed=False,
            details={"store": self.url, "archive_key": _archive_key(name), "incomplete": why},
        )

    def read_sidecar(self, point: RecoveryPoint, operation: str = "read") -> dict[str, Any]:
        """The sidecar of *point* as a dict.

        Raises:
            ResourceNotFoundError: The point has no sidecar in this store.
            UnsafeArchiveError: The sidecar is larger than `MAX_SIDECAR_BYTES`.
            VerificationError: The sidecar is not JSON or names no archive SHA-256.
        """
        key = _sidecar_key(point.id)
        try:
            data = self.read_json(key)
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError, not an object
            msg = f"{self.url}: {operation}: sidecar {key} of {point.id!r} is unreadable: {exc}"
            raise VerificationError(msg, result={"point": point.id, "sidecar": key}) from exc
        if data is None:
            msg = f"{self.url}: {operation}: point {point.id!r} does not exist in this store (no sidecar)"
            raise ResourceNotFoundError(
                msg, backend=self.url, operation=operation, resource=point.id
            )
        archive = data.get("archive")
        if not isinstance(archive, dict) or not isinstance(archive.get("sha256"), str):
            msg = f"{self.url}: {operation}: sidecar {key} of {point.id!r} names no archive SHA-256"
            raise VerificationError(msg, result={"point": point.id, "sidecar": key})
        return data

    def delete_point(self, point: RecoveryPoint) -> None:
        """Delete *point*'s sidecar, then its archive.

        The sidecar goes first, so an interrupted delete never leaves a complete-looking
        point without its archive. The check and the delete are one step against holds: a
        `DirectoryStore` holds the point's lock, an `S3Store` deletes the sidecar only if it
        is still the one it checked (``If-Match``), else checks again.

        Raises:
            ProtectedPointError: The stored point is held, pending or has no ownership tags.
            ResourceNotFoundError: The point does not exist.
        """
        for _attempt in range(_CONFLICT_ATTEMPTS):
            with self._point_lock(point.id):
                tag = self._sidecar_tag(point.id)
                current = self.get_point(point.id)
                if current is None:
                    msg = f"{self.url}: delete: point {point.id!r} does not exist"
                    raise ResourceNotFoundError(
                        msg, backend=self.url, operation="delete", resource=point.id
                    )
                _refuse_protected(current, self.url)
                try:
                    self._remove_if(_sidecar_key(point.id), tag)
                except _ChangedError:
                    continue  # a hold (or anything) changed the sidecar since the check
                self.remove(_archive_key(point.id))
                return
        raise self._contended(point, "delete")

    def _update_sidecar(
        self, point: RecoveryPoint, change: Callable[[dict[str, Any]], None], operation: str
    ) -> RecoveryPoint:
        """Read-modify-write of the sidecar, atomic against a concurrent delete of the point.

        A point deleted meanwhile raises `ResourceNotFoundError`: the change never brings a
        deleted sidecar back, and never reports a hold on a point that is gone.
        """
        for _attempt in range(_CONFLICT_ATTEMPTS):
            with self._point_lock(point.id):
                tag = self._sidecar_tag(point.id)
                data = self.read_sidecar(point, operation)
                change(data)
                try:
                    self._write_json_if(_sidecar_key(point.id), data, tag)
                except _ChangedError:
                    continue
                return self.point_from_sidecar(data)
        raise self._contended(point, operation)

    # -- serialising changes of one point (holds against deletes) -------------------------

    def _point_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Held while one point's sidecar is checked and changed (default: no lock)."""
        del name
        return contextlib.nullcontext()

    def _sidecar_tag(self, name: str) -> str | None:
        """A token of the sidecar's current content for conditional writes (``None``: none)."""
        del name
        return None

    def _write_json_if(self, key: str, data: Mapping[str, Any], tag: str | None) -> None:
        """Write *key* only if it still has content *tag* (else `_ChangedError`)."""
        del tag
        self.write_json(key, data)

    def _remove_if(self, key: str, tag: str | None) -> None:
        """Remove *key* only if it still has content *tag* (else `_ChangedError`)."""
        del tag
        self.remove(key)

    def _contended(self, point: RecoveryPoint, operation: str) -> BackendError:
        msg = (
            f"{self.url}: {operation}: the sidecar of {point.id!r} kept changing during "
            f"{_CONFLICT_ATTEMPTS} attempts; nothing was changed"
        )
        return BackendError(msg, backend=self.url, operation=operation, resource=point.id)

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Record *hold* on *point* (tag ``backuppolicy:legal-hold`` in the sidecar)."""

        def change(data: dict[str, Any]) -> None:
            data.setdefault("tags", {})[TAG_HOLD] = hold.to_tag()

        return self._update_sidecar(point, change, "place_hold")

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Remove the legal hold of *point*, if any."""

        def change(data: dict[str, Any]) -> None:
            data.setdefault("tags", {}).pop(TAG_HOLD, None)

        return self._update_sidecar(point, change, "release_hold")

    def verify_point(self, point: RecoveryPoint) -> str:
        """Re-read the archive of *point* and check its SHA-256 against the sidecar.

        Returns:
            The checksum, ``"sha256:<hex>"``.

        Raises:
            VerificationError: The archive does not match (or the sidecar is missing).
        """
        data = self.read_sidecar(point, "verify")
        expected = str(data["archive"]["sha256"])
        with self.open_reader(_archive_key(point.id)) as reader:
            actual, size = _sha256_of(reader)
        if actual != expected:
            msg = (
                f"{self.url}: archive {point.id!r}: expected sha256:{expected} "
                f"(got sha256:{actual}, {size} bytes)"
            )
            raise VerificationError(
                msg, result={"point": point.id, "expected": expected, "actual": actual}
            )
        return f"sha256:{actual}"

    def copy_point(
        self, point: RecoveryPoint, destination: ArchiveStore, *, name: str | None = None
    ) -> RecoveryPoint:
        """Stream *point*'s archive into *destination*, verify it there, then write the sidecar.

        The copy is named *name* (default: the point's own id). `Directory.copy` names copies
        ``<id>-<tier>`` so that a point id stays unique across a target's tiers.

        The archive is copied in 256 KiB chunks, hashed on the way, then read back from
        *destination* and hashed again. On any mismatch the copy is removed and
        `VerificationError` is raised. Copying a point that is already complete at the
        destination returns the existing copy.

        Raises:
            VerificationError: The source or the destination bytes do not match the checksum.
            BackendError: A different archive with the same name exists at the destination.
        """
        data = self.read_sidecar(point, "copy")
        expected = str(data["archive"]["sha256"])
        copy_id = name or point.id
        existing = destination.get_point(copy_id)
        if existing is not None and existing.status is not Status.FAILED:
            if existing.checksum == f"sha256:{expected}":
                return existing
            msg = (
                f"{destination.url}: copy: a different archive named {copy_id!r} already exists "
                f"(expected sha256:{expected}, got {existing.checksum})"
            )
            raise BackendError(msg, backend=destination.url, operation="copy", resource=copy_id)
        key = _archive_key(copy_id)
        digest = hashlib.sha256()
        try:
            with (
                self.open_reader(_archive_key(point.id)) as reader,
                destination.open_writer(key) as writer,
            ):
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
            encryption = writer.encryption
            if digest.hexdigest() != expected:
                self._mismatch(point, self.url, expected, digest.hexdigest())
            with destination.open_reader(key) as reader:
                actual, _ = _sha256_of(reader)
            if actual != expected:
                self._mismatch(point, destination.url, expected, actual)
        except BaseException:
            destination.remove(key)
            raise
        copied = dict(data)
        tags = dict(data.get("tags", {}))
        tags.pop(TAG_HOLD, None)
        tags[TAG_TIER] = destination.tier
        copied.update(
            id=copy_id,
            tags=tags,
            copied_from={"store": self.url, "at": datetime.now(UTC).isoformat()},
            encryption=encryption,
        )
        destination.write_json(_sidecar_key(copy_id), copied)
        return destination.point_from_sidecar(copied)

    @staticmethod
    def _mismatch(point: RecoveryPoint, where: str, expected: str, actual: str) -> None:
        msg = (
            f"{where}: copy of {point.id!r}: expected sha256:{expected} (got sha256:{actual}); "
            "the bad copy was removed"
        )
        raise VerificationError(
            msg, result={"point": point.id, "expected": expected, "actual": actual}
        )

    def sweep_incomplete(
        self,
        *,
        older_than: timedelta = timedelta(hours=1),
        now: datetime | None = None,
        target: str | None = None,
    ) -> list[str]:
        """Remove archives without a sidecar (interrupted backups) older than *older_than*.

        With *target*, only the leftovers of that target's points.

        Returns:
            The removed keys.
        """
        now = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
        archives: dict[str, tuple[str, datetime]] = {}
        sidecars: set[str] = set()
        for key, modified in self.keys("bp-"):
            split = _split_key(key)
            if split is None or not _of_target(split[0], target):
                continue
            if split[1] == "archive":
                archives[split[0]] = (key, modified)
            else:
                sidecars.add(split[0])
        removed = []
        for name, (key, modified) in sorted(archives.items()):
            if name not in sidecars and now - modified > older_than:
                self.remove(key)
                removed.append(key)
        return removed


def _of_target(name: str, target: str | None) -> bool:
    """Whether point *name* (``bp-<target>-<stamp>...``) belongs to *target* (any if ``None``)."""
    if target is None:
        return True
    match = _POINT_RE.match(name)
    return match is not None and match["target"] == target


def _leftover_name(entry: str) -> str | None:
    """The point name of a temporary or lock file (``.tmp-<key>.<random>``, ``.bp-lock-<name>``)."""
    if entry.startswith(_LOCK_PREFIX):
        return entry[len(_LOCK_PREFIX) :]
    if entry.startswith(_TMP_PREFIX):
        split = _split_key(entry[len(_TMP_PREFIX) :].rsplit(".", 1)[0])
        return split[0] if split else None
    return None


def _remove_abandoned(path: Path, *, older_than: timedelta, now: datetime) -> bool:
    """Remove the crash leftover *path* (a file or a directory) if it is abandoned.

    Abandoned means last modified more than *older_than* before *now* and not locked: a
    live writer (``.tmp-*``), point lock or restore (``.bp-restore-*``) holds an ``flock``
    on it while it runs. Our own lock is held while removing, so nobody takes it meanwhile.

    Returns:
        Whether *path* was removed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone meanwhile, or a symlink: not a leftover of ours
        return False
    try:
        st = os.fstat(fd)
        if now - datetime.fromtimestamp(st.st_mtime, UTC) <= older_than:
            return False
        if stat.S_ISDIR(st.st_mode) and not _marked(fd):
            return False  # named like ours, but not made by us: the user's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use by a running job
        if stat.S_ISDIR(st.st_mode):
            _rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


_OURS_MARKER = ".bp-ours"


def _owned_tempdir(prefix: str, parent: Path | None = None) -> tuple[Path, int]:
    """A new temporary directory, locked and marked as ours, and the descriptor of its lock.

    Sweeps remove a directory named like ours only if it holds the marker (a user's
    directory with our prefix is left alone) and nobody holds its lock (a running job's is
    left alone). Close the descriptor when done with the directory.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        os.close(os.open(_OURS_MARKER, flags, 0o600, dir_fd=fd))
    except BaseException:
        os.close(fd)
        raise
    return path, fd


def _marked(fd: int) -> bool:
    """Whether the directory open as *fd* carries our marker (a regular file, not a link)."""
    try:
        st = os.stat(_OURS_MARKER, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def is_abandoned_leftover(path: str | os.PathLike[str], *, before: datetime) -> bool:
    """Whether *path* is a directory we made (marked), last modified before *before*, unlocked.

    A symlink, a directory without our marker and one a running job holds locked are not.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if datetime.fromtimestamp(st.st_mtime, UTC) >= before or not _marked(fd):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(fd)


def remove_abandoned_leftover(path: str | os.PathLike[str], *, before: datetime) -> bool:
    """Remove the directory *path* if `is_abandoned_leftover` (checked again under our lock).

    Returns:
        Whether it was removed.
    """
    ensure_aware(before, field="before")
    return _remove_abandoned(Path(path), older_than=timedelta(0), now=before)


def sweep_restore_staging(
    parent: str | os.PathLike[str],
    *,
    older_than: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> list[str]:
    """Remove the ``.bp-restore-*`` staging directories that crashed restores left in *parent*.

    A running restore holds a lock on its staging directory; only unlocked ones that carry
    our marker (a user's directory named like ours does not) and were last modified more
    than *older_than* ago are removed. Symlinks are never followed nor removed. `Directory.restore_to` calls this for
    the parent of its destination.

    Returns:
        The removed directories.
    """
    now = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
    root = Path(parent)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if entry.name.startswith(_STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            path = root / entry.name
            if _remove_abandoned(path, older_than=older_than, now=now):
                removed.append(str(path))
    if removed:
        _log.warning(
            "removed %d staging directories of crashed restores: %s", len(removed), removed
        )
    return removed


def _refuse_protected(point: RecoveryPoint, where: str) -> None:
    why = None
    if point.held:
        assert point.legal_hold is not None  # noqa: S101 - narrowed by point.held
        why = f"it is under {point.legal_hold.describe()}"
    elif point.status is Status.PENDING:
        why = "it is still pending"
    elif not point.managed:
        why = "it is not managed by backuppolicy (ownership tags missing or from another policy)"
    if why is not None:
        msg = f"{where}: refusing to delete {point.id!r}: {why}; nothing was deleted"
        raise ProtectedPointError(msg, point=point)


_CONFLICT_ATTEMPTS = 5
_STAGING_PREFIX = ".bp-restore-"
_LEFTOVER_GRACE = timedelta(hours=24)
# PreconditionFailed (412): If-Match did not match; ConditionalRequestConflict (409): a
# concurrent conditional write of the same key won.
_LOCK_PREFIX = ".bp-lock-"


class _ChangedError(Exception):
    """A conditional write or delete found the object changed (or gone) since it was read."""


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
    """

    def __init__(self, path: str | os.PathLike[str], *, tier: str = "local") -> None:
        self.path = Path(path).expanduser().absolute()
        self.tier = _check_tier(tier)

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
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{key}.", dir=self.path)
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
    def open_reader(self, key: str) -> Iterator[_Readable]:
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
                and not entry.name.startswith((_TMP_PREFIX, _LOCK_PREFIX))
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
        path = self.path / f"{_LOCK_PREFIX}{name}"
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
            name = _leftover_name(entry.name)
            if name is None or not _of_target(name, target):
                continue
            if _remove_abandoned(Path(entry.path), older_than=older_than, now=now):
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

    def open_reader(self, key: str) -> contextlib.AbstractContextManager[_Readable]:
        """Stream *key* with GetObject."""
        _check_key(key)
        reader: contextlib.AbstractContextManager[_Readable] = self.objects.open_reader(
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
            raise _too_big(self.url, key, limit)
        return raw

    def keys(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        """Stream keys under ``self.prefix + prefix`` (ListObjectsV2, every page)."""
        start = len(self.prefix)
        for page in self.objects.list_pages(self.prefix + prefix):
            for key, modified in page:
                yield key[start:], modified

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
        return self.objects.etag(self.prefix + _sidecar_key(name))

    def _write_json_if(self, key: str, data: Mapping[str, Any], tag: str | None) -> None:
        """PutObject with ``If-Match: <tag>``: a sidecar changed or deleted meanwhile is not written."""
        body = json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        if tag is None or not self.objects.put(self.prefix + key, body, if_match=tag):
            raise _ChangedError(key)

    def _remove_if(self, key: str, tag: str | None) -> None:
        """DeleteObject with ``If-Match: <tag>``: a sidecar changed meanwhile is not deleted."""
        if tag is None or not self.objects.delete(self.prefix + key, if_match=tag):
            raise _ChangedError(key)

    def _load_points(self, names: Sequence[str]) -> Iterator[RecoveryPoint]:
        if not names:
            return
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            for point in pool.map(self._sidecar_point, names):
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
    if options:
        raise PolicyError.for_field("options", "no options for a directory store", options)
    return DirectoryStore(text, tier=tier)


# --------------------------------------------------------------------------- archives


class _HashingSink:
    def __init__(self, sink: ArchiveWriter) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self._digest.update(data)
        self._sink.write(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to flush; `gzip.GzipFile` calls it."""

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _HashingReader:
    def __init__(self, handle: io.BufferedReader) -> None:
        self._handle = handle
        self._digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self._handle.read(size)
        self._digest.update(data)
        return data

    def write(self, _data: bytes, /) -> int:  # pragma: no cover - read-only, for tarfile's type
        raise io.UnsupportedOperation("write")

    def tell(self) -> int:  # pragma: no cover - unused by tarfile.addfile
        return self._handle.tell()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _mode(value: int) -> str:
    return f"{stat.S_IMODE(value) & 0o777:04o}"


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether *rel* or one of its parent directories matches one of *patterns*."""
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        base = parts[depth - 1]
        for pattern in patterns:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if "/" not in pattern and fnmatch.fnmatchcase(base, pattern):
                return True
    return False


def _resolve(parts: Sequence[str], links: Mapping[str, str], hops: list[int]) -> list[str] | None:
    """Resolve *parts* from the root, following archive symlinks; ``None`` if it leaves the root."""
    stack: list[str] = []
    for part in parts:
        if part in {"", "."}:
            continue
        if part == "..":
            if not stack:
                return None
            stack.pop()
            continue
        stack.append(part)
        target = links.get("/".join(stack))
        if target is None:
            continue
        hops[0] += 1
        if hops[0] > _MAX_LINK_HOPS or not target or target.startswith("/"):
            return None
        resolved = _resolve([*stack[:-1], *target.split("/")], links, hops)
        if resolved is None:
            return None
        stack = resolved
    return stack


def _link_escapes(rel: str, target: str, links: Mapping[str, str]) -> bool:
    """Whether the symlink at *rel* pointing to *target* resolves outside the root."""
    if not target or target.startswith("/") or "\0" in target:
        return True
    return _resolve([*rel.split("/")[:-1], *target.split("/")], links, [0]) is None


class _Entry:
    __slots__ = ("kind", "link", "path", "rel", "st")

    def __init__(self, rel: str, path: str, st: os.stat_result) -> None:
        self.rel = rel
        self.path = path
        self.st = st
        self.link = str(Path(path).readlink()) if stat.S_ISLNK(st.st_mode) else ""
        if stat.S_ISDIR(st.st_mode):
            self.kind = "dir"
        elif stat.S_ISREG(st.st_mode):
            self.kind = "file"
        elif stat.S_ISLNK(st.st_mode):
            self.kind = "symlink"
        else:
            self.kind = "special"


def _tarinfo(name: str, st: os.stat_result, kind: str, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(st.st_mode) & 0o777
    if kind == "dir":
        info.type = tarfile.DIRTYPE
    elif kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = link
        info.mode = 0o777
    else:
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    return info


# --------------------------------------------------------------------------- the target


def _default_clock() -> datetime:
    return datetime.now(UTC)


class Directory:
    r"""A directory of configuration files or application code, backed up as archives.

    A backup is a gzip tar archive of the directory (``data/``) and a manifest
    (``manifest.json``) of every entry's path, type, size, mode and SHA-256, written
    atomically into *store*. Symbolic links are stored as links, never followed; links
    that point outside the directory are listed in the manifest (``external_links``)
    but not archived, so every archive can be restored safely. Sockets, pipes and
    device files are skipped and listed under ``skipped``.

    *include* and *exclude* are glob patterns on paths relative to the directory
    (``fnmatch``: ``*`` also matches ``/``); a pattern without ``/`` also matches a
    base name at any depth. An entry is selected when it or a parent matches an
    include pattern (or *include* is empty) and neither it nor a parent matches an
    exclude pattern. A `DirectoryStore` inside the directory is always excluded.

    Example:
        >>> import pathlib, tempfile
        >>> src = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (src / "app.conf").write_text("port = 8080\n")
        >>> etc = Directory(src, name="app-config", store=DirectoryStore(tempfile.mkdtemp()))
        >>> point = etc.create_backup(reason="before upgrade", token="change-42")
        >>> point.kind, point.tier, point.checksum.startswith("sha256:")
        ('archive', 'local', True)
        >>> etc.create_backup(token="change-42") == point
        True
        >>> with etc.restore(point) as restored:
        ...     print(pathlib.Path(restored.endpoint, "app.conf").read_text(), end="")
        port = 8080

    Attributes:
        path: The directory backed up.
        name: Name of the target in the policy (default: the directory's base name).
        include: Glob patterns of entries to back up (empty: everything).
        exclude: Glob patterns of entries to leave out.
        store: Where new backups go (its tier is the target's source tier).
        policy: Name of the policy that owns the points (the ownership tag).
        store_options: Keyword arguments for `S3Store` when a store is given as an ``s3://``
            URL (``session=``, ``endpoint_url=``, ``retry=`` ...). A copy's
            `~backuppolicy.core.targets.Destination` adds its ``kms_key_id`` and ``region``.

    Other arguments: *stores* are more stores to look in (copies made earlier); *clock*
    returns the current time (timezone-aware) and stamps the archive names.
    """

    kind: ClassVar[str] = "directory"
    """Registered kind of the target."""

    @classmethod
    def from_spec(
        cls,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> Directory:
        """The target of *spec*: its ``path``, ``include`` and ``exclude``, its stores opened.

        Archives go to the ``store`` of the first tier of *spec* (a directory or an ``s3://``
        URL, opened with *session*, *endpoint_url* and *region*); the stores of the copy tiers
        are opened too, so their copies are listed (due checks, pruning).

        Raises:
            PolicyError: The first tier names no ``store``.
        """
        tiers = policy.tiers_for(spec)
        url = tiers[0].location.get("store") if tiers else None
        if not url:
            raise PolicyError.for_field(
                f"tiers[{tiers[0].name if tiers else 'local'}].location.store",
                f"a directory or s3:// URL where archives of directory target {spec.name!r} are kept",
                url,
            )

        def store(url: str, tier: str) -> ArchiveStore:
            if url.startswith("s3://"):
                return open_store(
                    url, tier=tier, session=session, endpoint_url=endpoint_url, region=region
                )
            return open_store(url, tier=tier)

        settings = spec.settings
        return cls(
            settings["path"],
            store=store(url, tiers[0].name),
            stores=[
                store(t.location["store"], t.name) for t in tiers[1:] if t.location.get("store")
            ],
            store_options={"session": session, "endpoint_url": endpoint_url},
            exclude=tuple(settings.get("exclude", ())),
            include=tuple(settings.get("include", ())),
            name=spec.name,
            policy=policy.name,
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, Any]]]:  # noqa: ARG003
        """None: a directory needs no AWS permission (a store's S3 calls are not covered yet)."""
        return {}

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        store: ArchiveStore | str | os.PathLike[str],
        policy: str = "default",
        stores: Iterable[ArchiveStore] = (),
        store_options: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        name = self.path.name if name is None else name
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PolicyError.for_field(
                "name",
                "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
                name,
                hint="Pass name= explicitly.",
            )
        self._name = name
        self.include = _patterns("include", include)
        self.exclude = _patterns("exclude", exclude)
        if not isinstance(policy, str) or not policy:
            raise PolicyError.for_field("policy", "a non-empty policy name", policy)
        self.policy = policy
        self.store_options = dict(store_options or {})
        self.store = self._open(store, tier="local")
        self._stores: dict[str, ArchiveStore] = {self.store.url: self.store}
        for extra in stores:
            self._stores.setdefault(extra.url, extra)
        self._clock = clock or _default_clock

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.local.Directory(name={self._name!r}, path={str(self.path)!r}, "
            f"stores={len(self._stores)})>"
        )

    @property
    def name(self) -> str:
        """Name of the target (the ``target`` of its points)."""
        return self._name

    @property
    def stores(self) -> tuple[ArchiveStore, ...]:
        """Every store this target looks in: its own, the *stores* given, copy destinations."""
        return tuple(self._stores.values())

    # -- helpers -----------------------------------------------------------------------

    def _open(self, store: Any, *, tier: str, **options: Any) -> ArchiveStore:
        """A store object as is; an ``s3://`` URL with *store_options* and *options*; a path."""
        if isinstance(store, (str, os.PathLike)) and os.fspath(store).startswith("s3://"):
            return open_store(store, tier=tier, **{**self.store_options, **options})
        return open_store(store, tier=tier)

    def _owns(self, point: RecoveryPoint) -> bool:
        return is_owned(point.tags, policy=self.policy, target=self.name)

    def _adopt(self, point: RecoveryPoint) -> RecoveryPoint:
        return point.evolve(managed=self._owns(point))

    def _store_for(self, point: RecoveryPoint) -> ArchiveStore:
        store = self._stores.get(point.location)
        if store is None:
            known = ", ".join(sorted(self._stores))
            raise PolicyError.for_field(
                "point.location",
                f"the URL of one of the stores of {self.name!r} ({known})",
                point.location,
            )
        return store

    def _free_name(self, now: datetime) -> str:
        base = f"bp-{self.name}-{now.strftime(_STAMP)}"
        name, counter = base, 1
        while self.store.exists(_sidecar_key(name)) or self.store.exists(_archive_key(name)):
            counter += 1
            name = f"{base}-{counter}"
        return name

    def _collect(self) -> list[_Entry]:
        skip = {
            store.path.resolve()
            for store in self._stores.values()
            if isinstance(store, DirectoryStore)
        }
        found: list[_Entry] = []

        def walk(directory: str, rel: str) -> None:
            for item in sorted(os.scandir(directory), key=lambda e: e.name):
                child = f"{rel}/{item.name}" if rel else item.name
                if self.exclude and _matches(child, self.exclude):
                    continue
                entry = _Entry(child, item.path, item.stat(follow_symlinks=False))
                if entry.kind == "dir" and Path(item.path).resolve() in skip:
                    continue
                found.append(entry)
                if entry.kind == "dir":
                    walk(item.path, child)

        walk(os.fspath(self.path), "")
        if not self.include:
            return found
        chosen = {e.rel for e in found if e.kind != "dir" and _matches(e.rel, self.include)}
        chosen |= {e.rel for e in found if e.kind == "dir" and _matches(e.rel, self.include)}
        parents = {
            "/".join(rel.split("/")[:i]) for rel in chosen for i in range(1, rel.count("/") + 1)
        }
        return [e for e in found if e.rel in chosen or e.rel in parents]

    def _write_archive(
        self, writer: ArchiveWriter, entries: list[_Entry], head: Mapping[str, Any]
    ) -> tuple[str, int, dict[str, Any]]:
        root_stat = self.path.stat()
        links = {e.rel: e.link for e in entries if e.kind == "symlink"}
        external: set[str] = set()
        changed = True
        while changed:  # dropping an escaping link can make another one escape
            changed = False
            for rel, target in sorted(links.items()):
                if _link_escapes(rel, target, links):
                    external.add(rel)
                    del links[rel]
                    changed = True
        manifest_entries: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        external_links: list[dict[str, str]] = []
        total = 0
        sink = _HashingSink(writer)
        with (
            gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.addfile(_tarinfo(_DATA, root_stat, "dir"))
            for entry in entries:
                member = f"{_DATA}/{entry.rel}"
                if entry.kind == "special":
                    skipped.append({"path": entry.rel, "reason": "not a file, directory or link"})
                elif entry.kind == "symlink" and entry.rel in external:
                    external_links.append({"path": entry.rel, "target": entry.link})
                elif entry.kind == "symlink":
                    tar.addfile(_tarinfo(member, entry.st, "symlink", entry.link))
                    manifest_entries.append(
                        {"path": entry.rel, "type": "symlink", "target": entry.link}
                    )
                elif entry.kind == "dir":
                    tar.addfile(_tarinfo(member, entry.st, "dir"))
                    manifest_entries.append(
                        {"path": entry.rel, "type": "dir", "mode": _mode(entry.st.st_mode)}
                    )
                else:
                    digest = self._add_file(tar, member, entry)
                    total += entry.st.st_size
                    manifest_entries.append(
                        {
                            "path": entry.rel,
                            "type": "file",
                            "size": entry.st.st_size,
                            "mode": _mode(entry.st.st_mode),
                            "sha256": digest,
                        }
                    )
            manifest = {
                **head,
                "format": ARCHIVE_FORMAT,
                "root": {"mode": _mode(root_stat.st_mode)},
                "entries": manifest_entries,
                "external_links": external_links,
                "skipped": skipped,
                "totals": {"entries": len(manifest_entries), "file_bytes": total},
            }
            body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
            info = tarfile.TarInfo(_MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o644, int(root_stat.st_mtime)
            tar.addfile(info, io.BytesIO(body))
        summary = {
            "entries": len(manifest_entries),
            "file_bytes": total,
            "sha256": hashlib.sha256(body).hexdigest(),
            "external_links": len(external_links),
            "skipped": len(skipped),
        }
        return sink.hexdigest(), sink.size, summary

    def _add_file(self, tar: tarfile.TarFile, member: str, entry: _Entry) -> str:
        try:
            with Path(entry.path).open("rb") as handle:
                reader = _HashingReader(handle)
                tar.addfile(_tarinfo(member, entry.st, "file"), reader)
        except OSError as exc:
            msg = f"{self.name}: cannot archive {entry.path!r}: {exc} (changed or unreadable during the backup)"
            raise BackendError(
                msg, backend=self.name, operation="create_backup", resource=entry.path
            ) from exc
        return reader.hexdigest()

    # -- BackupTarget ------------------------------------------------------------------

    def create_backup(
        self,
        *,
        reason: str = "scheduled",
        tags: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> RecoveryPoint:
        """Archive the directory into the store and return the completed point.

        The same *token* returns the existing point instead of making a new one.

        Raises:
            ResourceNotFoundError: The directory does not exist.
            BackendError: A file could not be read, or the store failed; nothing complete
                was written.
        """
        if not isinstance(reason, str) or not reason:
            raise PolicyError.for_field("reason", "a non-empty string", reason)
        if token is not None:
            for point in self.store.list_points(prefix=f"bp-{self.name}-"):
                if point.tags.get(TAG_TOKEN) == token and self._owns(point):
                    return self._adopt(point)
        now = ensure_aware(self._clock(), field="clock()").astimezone(UTC)
        if not self.path.is_dir():
            msg = f"{self.name}: directory {str(self.path)!r} does not exist"
            raise ResourceNotFoundError(
                msg, backend=self.name, operation="create_backup", resource=str(self.path)
            )
        name = self._free_name(now)
        point_tags = dict(tags or {})
        point_tags.update(
            {
                TAG_POLICY: self.policy,
                TAG_TARGET: self.name,
                TAG_REASON: reason,
                TAG_TIER: self.store.tier,
            }
        )
        if token is not None:
            point_tags[TAG_TOKEN] = token
        source = {"path": str(self.path), "host": socket.gethostname()}
        head = {"target": self.name, "created_at": now.isoformat(), "source": source}
        entries = self._collect()
        with self.store.open_writer(_archive_key(name)) as writer:
            digest, size, summary = self._write_archive(writer, entries, head)
        sidecar = {
            "format": ARCHIVE_FORMAT,
            "id": name,
            "target": self.name,
            "created_at": now.isoformat(),
            "status": Status.COMPLETED.value,
            "tags": point_tags,
            "archive": {
                "key": _archive_key(name),
                "sha256": digest,
                "size": size,
                "compression": "gzip",
            },
            "manifest": summary,
            "source": source,
            "encryption": writer.encryption,
        }
        # The sidecar is the "complete" marker: written last, atomically.
        self.store.write_json(_sidecar_key(name), sidecar)
        return self._adopt(self.store.point_from_sidecar(sidecar))

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the points of this target in every known store (incomplete ones as FAILED)."""
        for store in self._stores.values():
            for point in store.list_points(prefix=f"bp-{self.name}-"):
                if point.target == self.name:
                    yield self._adopt(point)

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* from its store (``None`` if it is gone)."""
        current = self._store_for(point).refresh(point)
        return None if current is None else self._adopt(current)

    def delete(self, point: RecoveryPoint) -> None:
        """Delete *point* (sidecar first, then archive) after re-reading it.

        Raises:
            ProtectedPointError: The point is held, pending, or not owned by this target and policy.
            ResourceNotFoundError: The point does not exist.
        """
        current = self.refresh(point)
        if current is None:
            msg = f"{self.name}: delete: point {point.id!r} does not exist in {point.location}"
            raise ResourceNotFoundError(
                msg, backend=self.name, operation="delete", resource=point.id
            )
        for candidate in (point, current):
            _refuse_protected(candidate, self.name)
        self._store_for(point).delete_point(current)

    def place_hold(self, point: RecoveryPoint, hold: LegalHold) -> RecoveryPoint:
        """Place a legal *hold* on *point* (recorded in its sidecar); return the updated point."""
        return self._adopt(self._store_for(point).place_hold(point, hold))

    def release_hold(self, point: RecoveryPoint) -> RecoveryPoint:
        """Release the legal hold on *point*; return the updated point."""
        return self._adopt(self._store_for(point).release_hold(point))

    def sweep_incomplete(
        self, *, older_than: timedelta = _LEFTOVER_GRACE, now: datetime | None = None
    ) -> list[str]:
        """Remove this target's crash leftovers from every store it knows; `backup` calls it.

        Leftovers are archives without a sidecar (listed as FAILED until then), ``.tmp-*``
        files and point locks, last modified more than *older_than* (default a day) before
        *now* (default the wall clock, which stamps the files) and not locked by a running
        job. Other targets' leftovers in a shared store are left to their own runs.

        Returns:
            The removed objects, as ``<store URL>/<key>``.
        """
        removed: list[str] = []
        for store in self._stores.values():
            found = store.sweep_incomplete(older_than=older_than, now=now, target=self.name)
            removed.extend(f"{store.url.rstrip('/')}/{key}" for key in found)
        return removed

    @classmethod
    def sweep_restore_tests(
        cls,
        isolation: IsolationProfile,
        *,
        before: datetime,
        dry_run: bool,
        seen: MutableSet[str],
        temp_dir: str | os.PathLike[str] | None = None,
    ) -> list[SweptResource]:
        """Remove restore-test directories (``<temp_dir>/<name_prefix>*``) left before *before*.

        Only directories a restore test made (our marker) and left (unlocked) go; never a link.
        A class method (`Sweepable`): the temporary directory is shared by every `Directory`.
        """
        base = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
        scope = f"directory:{base.absolute()}"
        swept: list[SweptResource] = []
        if scope in seen or not base.is_dir():
            return swept
        seen.add(scope)
        for path in sorted(base.glob(f"{glob.escape(isolation.name_prefix)}*")):
            if not is_abandoned_leftover(path, before=before):
                continue

            def remove(path: Path = path) -> None:
                if remove_abandoned_leftover(path, before=before):  # re-checked under its lock
                    return
                where = {"backend": "restore-test-sweeper", "operation": "rmtree"}
                if not os.path.lexists(path):
                    raise ResourceNotFoundError(
                        f"{path}: already gone", resource=str(path), **where
                    )
                msg = f"{path}: in use again or no longer ours; left in place"
                raise BackendError(msg, resource=str(path), **where)

            created = datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC)
            swept.append(
                SweptResource.sweep(
                    "directory", str(path), created, None, dry_run=dry_run, delete=remove
                )
            )
        return swept

    def verify(self, point: RecoveryPoint) -> str:
        """Re-read *point*'s archive and check its SHA-256 (see `ArchiveStore.verify_point`)."""
        return self._store_for(point).verify_point(point)

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Copy *point* into ``destination.store`` (a store or a URL), streaming, then verify it.

        The destination store is remembered: `list_points`, `refresh`, `delete` and
        `restore` look there from now on.

        Raises:
            PolicyError: No destination store, a tier that differs from the store's, or
                the point's own store.
            VerificationError: The copy's SHA-256 differs; the bad copy was removed.
        """
        if destination.store is None:
            raise PolicyError.for_field("destination.store", "an ArchiveStore or a store URL", None)
        options: dict[str, Any] = {}
        if destination.kms_key_id is not None:
            options["kms_key_id"] = destination.kms_key_id
        if destination.region is not None:
            options["region"] = destination.region
        target = self._open(destination.store, tier=destination.tier, **options)
        target = self._stores.get(target.url, target)
        if target.tier != destination.tier:
            raise PolicyError.for_field(
                "destination.tier", f"the store's tier {target.tier!r}", destination.tier
            )
        source = self._store_for(point)
        if target.url == source.url:
            raise PolicyError.for_field(
                "destination.store",
                f"a store other than the point's own ({source.url})",
                target.url,
            )
        copied = source.copy_point(point, target, name=f"{point.id}-{destination.tier}")
        self._stores.setdefault(target.url, target)
        return self._adopt(copied)

    @contextlib.contextmanager
    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> Iterator[RestoredResource]:
        """Restore *point* into a fresh temporary directory, removed on exit (even on error).

        ``into.name_prefix`` names the temporary directory.
        """
        prefix = into.name_prefix if into is not None else "bp-restore-"
        # Locked while live, marked as ours: verify.sweep_restore_tests leaves it alone till then.
        base, lock = _owned_tempdir(prefix)
        try:
            swept: list[str] = []
            restored = self.restore_to(point, base / point.id, swept=swept)
            details = _restore_details(restored)
            if swept:
                details["swept"] = swept
            yield RestoredResource(
                id=str(restored),
                kind="directory",
                point=point,
                endpoint=str(restored),
                details=details,
            )
        finally:
            _rmtree(base)
            os.close(lock)

    def restore_to(
        self,
        point: RecoveryPoint,
        directory: str | os.PathLike[str],
        *,
        external_links: bool = False,
        swept: list[str] | None = None,
    ) -> Path:
        """Restore *point* into *directory*, which must not exist or be empty.

        The archive's SHA-256 is checked first; every member is checked (no absolute
        paths, ``..``, devices, pipes, hard links, links escaping the destination, paths
        through links), then it is extracted next to *directory*, every file is checked
        against the manifest, and only then renamed into place: a failed restore leaves
        nothing behind. Modes are restored (not owners, not setuid/setgid/sticky bits).
        With *external_links*, links that pointed outside the directory are recreated too.
        Staging directories of crashed restores next to *directory* (``.bp-restore-*``, not
        locked by a running restore, over an hour old) are removed first and added to *swept*.

        Returns:
            The restored directory.

        Raises:
            PolicyError: *directory* exists and is not empty.
            UnsafeArchiveError: A member is unsafe; nothing was restored.
            VerificationError: The archive or a file does not match its checksum.
        """
        dest = Path(directory).expanduser().absolute()
        if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
            raise PolicyError.for_field(
                "directory", "a path that does not exist or an empty directory", str(dest)
            )
        store = self._store_for(point)
        data = store.read_sidecar(point, "restore")
        expected = str(data["archive"]["sha256"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        found = sweep_restore_staging(dest.parent)
        if swept is not None:
            swept.extend(found)
        # Locked while live, marked as ours: sweep_restore_staging leaves it alone till then.
        staging, lock = _owned_tempdir(_STAGING_PREFIX, dest.parent)
        try:
            with store.local_file(_archive_key(point.id)) as archive:
                with archive.open("rb") as handle:
                    actual, _ = _sha256_of(handle)
                if actual != expected:
                    msg = f"{store.url}: archive {point.id!r}: expected sha256:{expected} (got sha256:{actual}); nothing was restored"
                    raise VerificationError(
                        msg, result={"point": point.id, "expected": expected, "actual": actual}
                    )
                manifest = _extract(archive, staging, point.id)
            root = staging / _DATA
            _verify_tree(root, manifest, point.id)
            if external_links:
                for link in manifest.get("external_links", []):
                    (root / link["path"]).symlink_to(link["target"])
            _apply_dir_modes(root, manifest)
            root.replace(dest)
        finally:
            _rmtree(staging)
            os.close(lock)
        dest.chmod(_plain_mode(manifest.get("root", {}).get("mode", "0700")))
        return dest

    # -- restores through backuppolicy.restore (the Restorable protocol) ---------------

    _RESTORE_NEWEST: ClassVar[int] = 3
    """How many of the newest entries an observed directory's state names."""

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
        """Plan restoring an archive into *into* (default: this directory, in place).

        The archive is restored next to the destination (``.<name>.restoring-<stamp>``), then
        renamed into place; whatever is at the destination is first moved aside to
        ``<name>.before-restore-<stamp>`` and kept. *point* defaults to the newest completed
        archive (taken at or before *at*, if given). A plan whose move-aside and rename an
        earlier run of the same *token* did adopts the restored directory.

        Raises:
            PolicyError: The point or destination cannot be used, or an option was given
                (directories take none).
        """
        if options:
            raise PolicyError.for_field(
                "plan_restore", "no database or volume option for a directory", sorted(options)
            )
        chosen = choose_point(self, point, before=at, kinds=("archive",))
        if into is not None and not isinstance(into, str | os.PathLike):
            raise PolicyError.for_field("into", "a directory path", into)
        dest = Path(into if into is not None else self.path).expanduser().absolute()
        stamp = stamp_of(token)
        staging = dest.with_name(f".{dest.name}.restoring-{stamp}")
        aside = dest.with_name(f"{dest.name}.before-restore-{stamp}")
        occupied = self._restore_occupied(dest)
        # The aside name carries this restore's stamp: if it exists, this restore moved the
        # directory aside in an earlier, interrupted run (a resume, or a retry of the same token).
        moved = aside.exists() or aside.is_symlink()
        if moved and occupied:
            adopt = RestoreStep(
                StepAction.VERIFY,
                str(dest),
                f"adopt {dest}, restored earlier by this restore ({dest} was moved to {aside}); "
                "re-check the archive checksum; count files",
                keeps=str(aside),
            )
            return self._restore_plan(
                chosen, dest=dest, steps=[adopt], in_place=True, now=now, token=token, adopt=True
            )
        steps = [
            RestoreStep(
                StepAction.CREATE,
                str(staging),
                f"restore archive {chosen.id} into {staging} (archive and file checksums checked)",
            )
        ]
        if occupied:
            steps.append(
                RestoreStep(
                    StepAction.MOVE_ASIDE,
                    str(dest),
                    f"move {dest} to {aside} (kept)",
                    destructive=True,
                    keeps=str(aside),
                )
            )
        steps.append(
            RestoreStep(
                StepAction.REPLACE if occupied else StepAction.CREATE,
                str(dest),
                f"rename {staging.name} to {dest}"
                + (f" ({dest} was moved to {aside} earlier by this restore)" if moved else ""),
                destructive=occupied,
                keeps=str(aside) if occupied or moved else None,
            )
        )
        steps.append(
            RestoreStep(StepAction.VERIFY, str(dest), "re-check the archive checksum; count files")
        )
        return self._restore_plan(
            chosen, dest=dest, steps=steps, in_place=occupied or moved, now=now, token=token
        )

    def _restore_plan(
        self,
        chosen: RecoveryPoint,
        *,
        dest: Path,
        steps: Sequence[RestoreStep],
        in_place: bool,
        now: datetime,
        token: str,
        adopt: bool = False,
    ) -> RestorePlan:
        stamp = stamp_of(token)
        staging = dest.with_name(f".{dest.name}.restoring-{stamp}")
        aside = dest.with_name(f"{dest.name}.before-restore-{stamp}")
        return RestorePlan(
            target=self.name,
            kind=self.kind,
            source=f"archive {chosen.id}",
            destination=str(dest),
            in_place=in_place,
            steps=steps,
            token=token,
            planned_at=now,
            data_time=chosen.created_at,
            point=chosen,
            options={"staging": str(staging), "aside": str(aside), "adopt": adopt},
        )

    def observe_restore(self, plan: RestorePlan) -> Mapping[str, str]:
        """The destination of *plan* in words (and its aside name, if this restore used it)."""
        dest = Path(plan.destination)
        aside = self._restore_aside(plan)
        seen = {str(dest): self._restore_path_state(dest)}
        if aside.exists() or aside.is_symlink():  # named with this restore's stamp: its own
            seen[str(aside)] = self._restore_path_state(aside) + MADE_BY_THIS_RESTORE
        return seen

    def execute_restore(self, plan: RestorePlan, *, confirm: bool) -> RestoreOutcome:  # noqa: ARG002 - the previous state is kept either way
        """Restore *plan*'s archive next to the destination, move what is there aside, rename.

        What is at the destination is decided now, not at planning: it is moved aside and kept.
        The archive's checksum is checked again afterwards and the files counted.

        Raises:
            PolicyError: The staging or aside name is taken by something this restore did not
                make, or a plan that adopts an earlier run finds its aside gone.
        """
        point = plan.point
        if point is None:
            raise PolicyError.for_field("plan.point", "the archive to restore", None)
        dest = Path(plan.destination)
        staging = self._restore_staging(plan)
        aside = self._restore_aside(plan)
        swept: list[str] = []  # staging directories of crashed restores next to the destination
        kept: list[str] = []
        if plan.options.get("adopt"):
            if not aside.exists() and not aside.is_symlink():
                raise PolicyError.for_field(
                    "plan",
                    f"a plan of the destination as it is (it adopts {dest}, restored earlier, "
                    f"but {aside} is gone)",
                    str(dest),
                    hint="Plan the restore again. Nothing was changed.",
                )
            kept.append(str(aside))
        else:
            if staging.exists() or staging.is_symlink():  # left by an interrupted attempt
                self._restore_remove_staging(staging)
            self.restore_to(point, staging, swept=swept)
            # Decided now, not at planning: whatever is at the destination is moved aside and kept.
            if self._restore_occupied(dest):
                if aside.exists() or aside.is_symlink():
                    shutil.rmtree(staging)
                    raise PolicyError.for_field(
                        "into",
                        f"a directory whose aside name {aside} is free (it holds what an earlier "
                        "run of this restore moved aside)",
                        str(dest),
                        hint="Plan the restore again with the same token to adopt it, or with a "
                        "new one. Nothing was changed.",
                    )
                dest.rename(aside)
                kept.append(str(aside))
            elif aside.exists() or aside.is_symlink():  # moved aside by an interrupted run
                kept.append(str(aside))
            staging.rename(dest)
        checksum = self.verify(point)
        files = sum(len(names) for _, _, names in os.walk(dest))
        check = RestoreCheck(
            "archive-checksum",
            ok=checksum == point.checksum or point.checksum is None,
            details=f"archive {point.id}: {checksum}; every file matched the manifest; {files} file(s)",
            evidence={"checksum": checksum, "files": files},
        )
        return RestoreOutcome(
            str(dest), str(dest), kept, [check], details={"files": files, "swept": swept}
        )

    @staticmethod
    def _restore_aside(plan: RestorePlan) -> Path:
        """Where *plan* moves its destination aside: next to it, named with the restore's stamp.

        Derived from the destination and the token, never read from ``plan.options`` (a plan
        made by hand must not choose what is moved or removed).
        """
        dest = Path(plan.destination)
        return dest.with_name(f"{dest.name}.before-restore-{plan.stamp}")

    @staticmethod
    def _restore_staging(plan: RestorePlan) -> Path:
        """Where *plan* restores before the rename: next to the destination, with the stamp."""
        dest = Path(plan.destination)
        return dest.with_name(f".{dest.name}.restoring-{plan.stamp}")

    @staticmethod
    def _restore_remove_staging(staging: Path) -> None:
        """Remove this restore's own staging directory; a symlink in its place is refused."""
        if staging.is_symlink() or not staging.is_dir():
            raise PolicyError.for_field(
                "into",
                f"a destination whose staging name {staging} is free or this restore's directory",
                str(staging),
                hint="Remove or rename it, then run the restore again. Nothing was changed.",
            )
        shutil.rmtree(staging)

    @staticmethod
    def _restore_occupied(path: Path) -> bool:
        """Whether *path* holds anything a restore would have to move aside."""
        return path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir())))

    @staticmethod
    def _restore_path_state(path: Path) -> str:
        """*path* in words: absent, a link, a file (size, time) or a directory (its listing's digest)."""
        if path.is_symlink():
            return f"a link to {path.readlink()}"
        if not path.exists():
            return ABSENT
        if not path.is_dir():
            st = path.stat()
            return f"a file of {st.st_size} bytes modified at {st.st_mtime_ns} ns"
        digest = hashlib.sha256()
        newest: list[tuple[int, str]] = []
        count = 0
        for parent, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted([*dirs, *names]):
                child = Path(parent, name)
                try:
                    st = child.lstat()
                except FileNotFoundError:  # removed while we look: that is a change too
                    continue
                rel = child.relative_to(path).as_posix()
                digest.update(
                    f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(
                        errors="replace"
                    )
                )
                count += 1
                newest = sorted([*newest, (st.st_mtime_ns, rel)])[-Directory._RESTORE_NEWEST :]
        if not count:
            return "an empty directory"
        shown = ", ".join(rel for _, rel in sorted(newest, reverse=True))
        return f"a directory of {count} entries (digest {digest.hexdigest()[:12]}; newest: {shown})"


def _patterns(field: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise PolicyError.for_field(field, "a list of glob patterns", values)
    result = []
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip("/"):
            raise PolicyError.for_field(f"{field}[{index}]", "a non-empty glob pattern", value)
        result.append(value.strip("/"))
    return tuple(result)


def _restore_details(root: Path) -> dict[str, Any]:
    files = 0
    size = 0
    for parent, _, names in os.walk(root):
        for name in names:
            st = (Path(parent) / name).lstat()
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    return {"path": str(root), "files": files, "bytes": size}


def _rmtree(path: Path) -> None:
    """Remove the directory *path* and everything in it, never following a symlink.

    A *path* that is not a directory (a symlink put in its place, say) is left alone.
    Directories made read-only by a restore get owner write access first, through
    descriptors, so a link never has its target's mode changed.
    """
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # gone, a symlink, or not a directory: nothing of ours to remove
        return
    try:
        with contextlib.suppress(OSError):
            os.fchmod(top, 0o700)
        for _, dirs, _, fd in os.fwalk(dir_fd=top, follow_symlinks=False):
            for name in dirs:
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                        os.chmod(name, 0o700, dir_fd=fd)
    finally:
        os.close(top)
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- restore checks


def _unsafe(point_id: str, member: str, reason: str) -> UnsafeArchiveError:
    msg = f"archive {point_id!r}: member {member!r} {reason}; nothing was restored"
    return UnsafeArchiveError(msg, result={"member": member, "reason": reason})


def _member_path(member: tarfile.TarInfo, point_id: str) -> list[str]:
    """The checked path components of *member*: refuse absolute paths, ``..``, odd types."""
    name = member.name
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise _unsafe(point_id, name, "has an absolute path")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise _unsafe(point_id, name, "contains '..'")
    if any(part in {"", "."} for part in parts) or "\0" in name:
        raise _unsafe(point_id, name, "has an empty or '.' path component")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _unsafe(point_id, name, "is a device file or pipe")
    if member.islnk():
        reason = f"is a hard link (to {member.linkname!r}); this format never stores hard links"
        raise _unsafe(point_id, name, reason)
    if not (member.isreg() or member.isdir() or member.issym()):
        raise _unsafe(point_id, name, f"has an unsupported type {member.type!r}")
    clean = "/".join(parts)
    if clean == _MANIFEST and not member.isreg():
        raise _unsafe(point_id, name, "is not a regular file")
    if clean != _MANIFEST and parts[0] != _DATA:
        raise _unsafe(point_id, name, f"is outside {_DATA}/")
    if clean == _DATA and not member.isdir():
        raise _unsafe(point_id, name, "is not a directory")
    return parts


def _check_members(members: Sequence[tarfile.TarInfo], point_id: str) -> tarfile.TarInfo:
    """Refuse unsafe or unexpected members; return the manifest member."""
    seen: set[str] = set()
    links: dict[str, str] = {}
    manifest: tarfile.TarInfo | None = None
    for member in members:
        parts = _member_path(member, point_id)
        clean = "/".join(parts)
        if clean in seen:
            raise _unsafe(point_id, member.name, "appears twice")
        seen.add(clean)
        if clean == _MANIFEST:
            manifest = member
        elif member.issym():
            links["/".join(parts[1:])] = member.linkname
    if _DATA not in seen:
        raise _unsafe(point_id, _DATA, "is missing")
    if manifest is None:
        raise _unsafe(point_id, _MANIFEST, "is missing")
    _check_links(seen, links, point_id)
    return manifest


def _check_links(paths: Iterable[str], links: Mapping[str, str], point_id: str) -> None:
    """Refuse links that resolve outside the root and members stored under a link."""
    for rel, target in links.items():
        if _link_escapes(rel, target, links):
            reason = f"is a link to {target!r}, outside the destination"
            raise _unsafe(point_id, f"{_DATA}/{rel}", reason)
    for clean in paths:
        parts = clean.split("/")[1:]
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in links:
                raise _unsafe(point_id, clean, "goes through a symbolic link")


def _safe_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """The tarfile ``data`` filter, keeping the file's permission bits (minus setuid/setgid/sticky)."""
    filtered = tarfile.data_filter(member, dest)
    if filtered is not None and filtered.isreg():
        filtered = filtered.replace(mode=member.mode & 0o777, deep=False)
    return filtered


def _sanitised(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """The explicit equivalent of the data filter's rewriting, for tarfile without filters."""
    clone = copy.copy(member)
    clone.uid, clone.gid = os.getuid(), os.getgid()
    clone.uname = clone.gname = ""
    clone.mode = 0o700 if member.isdir() else member.mode & 0o777
    return clone


def _limit(point_id: str, reason: str, member: str = "") -> UnsafeArchiveError:
    msg = f"archive {point_id!r} {reason}; nothing was restored"
    return UnsafeArchiveError(msg, result={"member": member, "reason": reason})


def _check_expansion(point_id: str, expanded: int, compressed: int) -> None:
    """Refuse more than `MAX_EXPANDED_BYTES`, or more than `MAX_EXPANSION_RATIO` past the floor."""
    if expanded > MAX_EXPANDED_BYTES:
        raise _limit(point_id, f"expands to more than {MAX_EXPANDED_BYTES} bytes")
    if expanded > _RATIO_FLOOR and expanded > MAX_EXPANSION_RATIO * compressed:
        reason = (
            f"expands to more than {MAX_EXPANSION_RATIO} times its {compressed} bytes "
            f"({expanded} bytes or more)"
        )
        raise _limit(point_id, reason)


def _check_free(point_id: str, where: Path, needed: int) -> None:
    """Refuse to write *needed* bytes unless `MIN_FREE_BYTES` stay free at *where*."""
    free = shutil.disk_usage(where).free
    if free < needed + MIN_FREE_BYTES:
        reason = (
            f"needs {needed} bytes but only {free} are free at {str(where.parent)!r} "
            f"(keeping {MIN_FREE_BYTES} free)"
        )
        raise _limit(point_id, reason)


def _scan(
    tar: tarfile.TarFile, point_id: str, compressed: int
) -> tuple[list[tarfile.TarInfo], int]:
    """Read the member headers, stopping at the first limit passed; return them and their size."""
    members: list[tarfile.TarInfo] = []
    expanded = 0
    for member in tar:
        members.append(member)
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise _limit(point_id, f"has more than {MAX_ARCHIVE_MEMBERS} members")
        if member.isreg():
            expanded += member.size
            _check_expansion(point_id, expanded, compressed)
    return members, expanded


def _written(staging: Path, member: tarfile.TarInfo | None) -> int:
    if member is None or not member.isreg():
        return 0
    try:
        return (staging / member.name).lstat().st_size
    except OSError:  # pragma: no cover - refused by the filter, nothing written
        return 0


def _guarded(
    members: Sequence[tarfile.TarInfo], staging: Path, point_id: str, compressed: int
) -> Iterator[tarfile.TarInfo]:
    """Yield *members* to extract, counting the bytes really written and the free space."""
    written = 0
    previous: tarfile.TarInfo | None = None
    for member in members:
        written += _written(staging, previous)
        _check_expansion(point_id, written, compressed)
        if member.isreg() and member.size:
            _check_free(point_id, staging, member.size)
        previous = member
        yield member
    written += _written(staging, previous)
    _check_expansion(point_id, written, compressed)


def _extract(archive: Path, staging: Path, point_id: str) -> dict[str, Any]:
    try:
        compressed = archive.stat().st_size
        tar = tarfile.open(archive, mode="r:gz")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        msg = f"archive {point_id!r}: not a readable gzip tar archive: {exc}"
        raise VerificationError(msg, result={"point": point_id}) from exc
    with tar:
        try:
            members, expanded = _scan(tar, point_id, compressed)
            manifest_member = _check_members(members, point_id)
            if manifest_member.size > MAX_MANIFEST_BYTES:
                raise _too_big(f"archive {point_id!r}", _MANIFEST, MAX_MANIFEST_BYTES)
            _check_free(point_id, staging, expanded)
            raw = tar.extractfile(manifest_member)
            assert raw is not None  # noqa: S101 - a regular member always has a file
            body = _read_upto(raw, MAX_MANIFEST_BYTES + 1)
            manifest = _compare_members(members, json.loads(body.decode("utf-8")), point_id)
            wanted = [m for m in members if m is not manifest_member]
            # Every member was checked above; the data filter checks again where available.
            if _HAS_DATA_FILTER:
                guarded = _guarded(wanted, staging, point_id, compressed)
                tar.extractall(staging, members=guarded, filter=_safe_filter)  # noqa: S202
            else:
                options: dict[str, Any] = {}
                if hasattr(tarfile, "fully_trusted_filter"):  # checked above instead
                    options["filter"] = "fully_trusted"
                sanitised = [_sanitised(m) for m in wanted]
                guarded = _guarded(sanitised, staging, point_id, compressed)
                tar.extractall(staging, members=guarded, **options)  # noqa: S202
        except _FILTER_ERRORS as exc:
            raise _unsafe(
                point_id, getattr(exc, "tarinfo", tarfile.TarInfo()).name, str(exc)
            ) from exc
        except (tarfile.TarError, EOFError, ValueError, KeyError, TypeError, zlib.error) as exc:
            msg = f"archive {point_id!r}: damaged archive or manifest: {exc}"
            raise VerificationError(msg, result={"point": point_id}) from exc
        except OSError as exc:
            if exc.errno not in {errno.ENOSPC, errno.EDQUOT}:
                raise
            raise _limit(point_id, f"does not fit on the destination ({exc})") from exc
    return manifest


def _compare_members(
    members: Sequence[tarfile.TarInfo], manifest: Any, point_id: str
) -> dict[str, Any]:
    """Check that the members are exactly the manifest's entries; return the manifest."""
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        msg = f"archive {point_id!r}: manifest: expected format {ARCHIVE_FORMAT} (got {manifest.get('format') if isinstance(manifest, dict) else manifest!r})"
        raise VerificationError(msg, result={"point": point_id})
    expected = {str(e["path"]): e for e in manifest.get("entries", [])}
    actual = {
        m.name.rstrip("/")[len(_DATA) + 1 :]: m
        for m in members
        if m.name.rstrip("/").startswith(f"{_DATA}/")
    }
    _differences(set(expected), set(actual), point_id, "archive")
    kinds = {
        "file": tarfile.TarInfo.isreg,
        "dir": tarfile.TarInfo.isdir,
        "symlink": tarfile.TarInfo.issym,
    }
    for rel, entry in expected.items():
        member = actual[rel]
        check = kinds.get(str(entry.get("type")))
        if check is None or not check(member):
            _mismatch_entry(
                point_id, rel, f"type {entry.get('type')!r}", f"tar type {member.type!r}"
            )
        if entry["type"] == "file" and member.size != entry["size"]:
            _mismatch_entry(point_id, rel, f"size {entry['size']}", member.size)
        if entry["type"] == "symlink" and member.linkname != entry["target"]:
            _mismatch_entry(point_id, rel, f"link to {entry['target']!r}", member.linkname)
    _check_external_links(manifest, expected, point_id)
    return manifest


def _check_external_links(
    manifest: Mapping[str, Any], entries: Mapping[str, Any], point_id: str
) -> None:
    """External links are only recreated as new names inside directories of the archive."""
    for link in manifest.get("external_links", []):
        path = str(link["path"])
        parts = path.split("/")
        parent = "/".join(parts[:-1])
        if (
            path.startswith("/")
            or any(part in {"", ".", ".."} for part in parts)
            or path in entries
            or (parent and entries.get(parent, {}).get("type") != "dir")
            or not isinstance(link["target"], str)
        ):
            raise _unsafe(point_id, path, "is an external link entry with an unsafe path")


def _differences(expected: set[str], actual: set[str], point_id: str, where: str) -> None:
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing or extra:
        msg = (
            f"archive {point_id!r}: {where} does not match the manifest: "
            f"missing {missing[:5]}, not in the manifest {extra[:5]}"
        )
        raise VerificationError(msg, result={"point": point_id, "missing": missing, "extra": extra})


def _mismatch_entry(point_id: str, rel: str, expected: str, got: Any) -> None:
    msg = f"archive {point_id!r}: {rel}: expected {expected} (got {got!r})"
    raise VerificationError(msg, result={"point": point_id, "path": rel})


def _verify_tree(root: Path, manifest: Mapping[str, Any], point_id: str) -> None:
    """Check every restored entry against the manifest (type, size, mode, SHA-256, link target)."""
    expected = {str(e["path"]): e for e in manifest.get("entries", [])}
    found: set[str] = set()
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            found.add((Path(parent) / name).relative_to(root).as_posix())
    _differences(set(expected), found, point_id, "restored directory")
    for rel, entry in expected.items():
        _verify_entry(root / rel, rel, entry, point_id)


def _verify_entry(path: Path, rel: str, entry: Mapping[str, Any], point_id: str) -> None:
    st = path.lstat()
    kind = entry["type"]
    if kind == "symlink":
        if not stat.S_ISLNK(st.st_mode) or str(path.readlink()) != entry["target"]:
            _mismatch_entry(point_id, rel, f"link to {entry['target']!r}", str(path))
        return
    if kind == "dir":
        if not stat.S_ISDIR(st.st_mode):
            _mismatch_entry(point_id, rel, "a directory", stat.filemode(st.st_mode))
        return
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry["size"]:
        _mismatch_entry(point_id, rel, f"a file of {entry['size']} bytes", st.st_size)
    if _mode(st.st_mode) != entry["mode"]:
        _mismatch_entry(point_id, rel, f"mode {entry['mode']}", _mode(st.st_mode))
    with path.open("rb") as handle:
        digest, _ = _sha256_of(handle)
    if digest != entry["sha256"]:
        _mismatch_entry(point_id, rel, f"sha256:{entry['sha256']}", f"sha256:{digest}")


def _apply_dir_modes(root: Path, manifest: Mapping[str, Any]) -> None:
    dirs = [e for e in manifest.get("entries", []) if e.get("type") == "dir"]
    for entry in sorted(dirs, key=lambda e: str(e["path"]).count("/"), reverse=True):
        (root / entry["path"]).chmod(_plain_mode(entry["mode"]))


def _plain_mode(mode: str) -> int:
    """A manifest's octal *mode* without setuid, setgid and sticky bits (never restored)."""
    return int(mode, 8) & 0o777
