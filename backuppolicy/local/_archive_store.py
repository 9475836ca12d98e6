"""`ArchiveStore`: the places that hold archives, and every point-level operation on them.

One idea: the store's object primitives are abstract; listing, holds, deletes, copies and
verification are built on them here, so every store behaves the same.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backuppolicy.core.exceptions import (
    BackendError,
    ProtectedPointError,
    ResourceNotFoundError,
    UnsafeArchiveError,
    VerificationError,
)
from backuppolicy.core.locks import PointLock
from backuppolicy.core.model import (
    TAG_HOLD,
    TAG_POLICY,
    TAG_TARGET,
    TAG_TIER,
    LegalHold,
    RecoveryPoint,
    Status,
    ensure_aware,
)
from backuppolicy.local._format import (
    CHUNK,
    MAX_SIDECAR_BYTES,
    POINT_RE,
    STAMP,
    ArchiveWriter,
    Readable,
    archive_key,
    of_target,
    read_upto,
    sha256_of,
    sidecar_key,
    split_key,
    too_big,
)

_CONFLICT_ATTEMPTS = 5

LOCK_SOURCE = "s3-object-lock"
"""`PointLock.source` of an archive whose versions carry S3 Object Lock retention."""


def _lock_of(raw: object) -> PointLock | None:
    """The lock a sidecar records (``{"mode", "until", "source"}``), ``None`` if none."""
    if not isinstance(raw, Mapping):
        return None
    until = datetime.fromisoformat(str(raw["until"])) if raw.get("until") else None
    return PointLock(str(raw["mode"]), until, source=str(raw.get("source", LOCK_SOURCE)))


class ChangedError(Exception):
    """A conditional write or delete found the object changed (or gone) since it was read."""


def refuse_protected(point: RecoveryPoint, where: str) -> None:
    """Raise `ProtectedPointError` if *point* is held, pending or not managed."""
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


class ArchiveStore(abc.ABC):
    """Base of the places that hold archives; each stored archive is a `RecoveryPoint`.

    Subclasses implement the object primitives (`open_writer`, `open_reader`, `keys`,
    `exists`, `remove`); the point-level operations (listing, holds, deletes, copies,
    verification) are built on them here, so every store behaves the same.

    Attributes:
        tier: Tier of the points in this store (``"local"``, ``"offsite"``).
    """

    tier: str
    declared_encryption: str | None = None
    """What the policy declares about encryption at rest underneath (``"volume"``), unverified."""

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
    def open_reader(self, key: str) -> contextlib.AbstractContextManager[Readable]:
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
                while chunk := reader.read(CHUNK):
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
            raw = read_upto(reader, limit + 1)
        if len(raw) > limit:
            raise too_big(self.url, key, limit)
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
        return self._json_object(key, raw)

    @staticmethod
    def _sidecar_bytes() -> int:
        """The largest sidecar read, `MAX_SIDECAR_BYTES` (`read_json`'s bound)."""
        return MAX_SIDECAR_BYTES

    def _json_object(self, key: str, raw: bytes) -> dict[str, Any]:
        """*raw* parsed as a JSON object (`read_json`'s errors)."""
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            msg = f"{self.url}: {key}: expected a JSON object (got {type(data).__name__})"
            raise ValueError(msg)  # noqa: TRY004 - a malformed document, like json's own errors
        return data

    def write_json(self, key: str, data: Mapping[str, object]) -> str | None:
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
        batch: list[tuple[str, str | None]] = []
        for key, modified, etag in self._scan(prefix):
            split = split_key(key)
            if split is None:
                continue
            name, kind = split
            if kind == "archive":
                archives[name] = modified
                continue
            sidecars.add(name)
            batch.append((name, etag))
            if len(batch) >= 100:  # noqa: PLR2004
                yield from self._load_points(batch)
                batch = []
        yield from self._load_points(batch)
        for name in sorted(set(archives) - sidecars):
            if self.exists(archive_key(name)):  # else deleted since the scan: not listed
                yield self._incomplete_point(name, archives[name])

    def _scan(self, prefix: str) -> Iterator[tuple[str, datetime, str | None]]:
        """`keys` with a token of each object's content (``None``: none known, the default).

        A store whose listing names each object's content (S3's ETag) returns it, and
        `_listed_json` may then skip reading a content it has read before.
        """
        for key, modified in self.keys(prefix):
            yield key, modified, None

    def _listed_json(self, key: str, etag: str | None) -> dict[str, Any] | None:
        """`read_json` of *key*, listed with content token *etag* (default: read it)."""
        del etag
        return self.read_json(key)

    def _load_points(self, names: Sequence[tuple[str, str | None]]) -> Iterator[RecoveryPoint]:
        for name, etag in names:
            point = self._sidecar_point(name, etag)
            if point is not None:
                yield point

    def _sidecar_point(self, name: str, etag: str | None = None) -> RecoveryPoint | None:
        """The point of sidecar *name*; ``None`` if the sidecar is gone (deleted since a scan).

        A listing that saw the sidecar and then finds it gone met a delete in progress (the
        sidecar goes first): the point is not listed, neither as an error nor as FAILED.
        *etag* is the sidecar's content token from the listing (`_scan`), if any.
        """
        try:
            data = self._listed_json(sidecar_key(name), etag)
        except (ValueError, UnsafeArchiveError) as exc:  # bad JSON or UTF-8, not an object, huge
            return self._broken_point(name, f"unreadable sidecar: {exc}")
        return None if data is None else self.point_from_sidecar(data)

    def get_point(self, name: str) -> RecoveryPoint | None:
        """The point called *name* (``None`` if there is neither sidecar nor archive)."""
        point = self._sidecar_point(name)
        if point is None and self.exists(archive_key(name)):
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
                encrypted=True
                if data.get("client_encryption")
                else (bool(encryption) if encryption is not None else self.encrypted),
                tags=tags,
                legal_hold=LegalHold.from_tag(hold) if hold is not None else None,
                checksum=f"sha256:{archive['sha256']}",
                managed=TAG_POLICY in tags and TAG_TARGET in tags,
                details={
                    "store": self.url,
                    "archive_key": archive_key(name),
                    "sidecar_key": sidecar_key(name),
                    "compression": archive.get("compression", "gzip"),
                    "format": data.get("format"),
                    "manifest": data.get("manifest", {}),
                    "source": data.get("source", {}),
                    "encryption": encryption,
                    "client_encryption": data.get("client_encryption"),
                    "declared_encryption": self.declared_encryption,
                    "copied_from": data.get("copied_from"),
                },
                lock=_lock_of(data.get("lock")),
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
        match = POINT_RE.match(name)
        target = match["target"] if match else "unknown"
        created = (
            datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
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
            details={"store": self.url, "archive_key": archive_key(name), "incomplete": why},
        )

    def read_sidecar(self, point: RecoveryPoint, operation: str = "read") -> dict[str, Any]:
        """The sidecar of *point* as a dict.

        Raises:
            ResourceNotFoundError: The point has no sidecar in this store.
            UnsafeArchiveError: The sidecar is larger than `MAX_SIDECAR_BYTES`.
            VerificationError: The sidecar is not JSON or names no archive SHA-256.
        """
        key = sidecar_key(point.id)
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
                refuse_protected(current, self.url)
                try:
                    self._remove_if(sidecar_key(point.id), tag)
                except ChangedError:
                    continue  # a hold (or anything) changed the sidecar since the check
                self.remove(archive_key(point.id))
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
                    self._write_json_if(sidecar_key(point.id), data, tag)
                except ChangedError:
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

    def _write_json_if(self, key: str, data: Mapping[str, object], tag: str | None) -> None:
        """Write *key* only if it still has content *tag* (else `ChangedError`)."""
        del tag
        self.write_json(key, data)

    def _remove_if(self, key: str, tag: str | None) -> None:
        """Remove *key* only if it still has content *tag* (else `ChangedError`)."""
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
        with self.open_reader(archive_key(point.id)) as reader:
            actual, size = sha256_of(reader)
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
        key = archive_key(copy_id)
        digest = hashlib.sha256()
        try:
            with (
                self.open_reader(archive_key(point.id)) as reader,
                destination.open_writer(key) as writer,
            ):
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
            encryption = writer.encryption
            if digest.hexdigest() != expected:
                self._mismatch(point, self.url, expected, digest.hexdigest())
            with destination.open_reader(key) as reader:
                actual, _ = sha256_of(reader)
            if actual != expected:
                self._mismatch(point, destination.url, expected, actual)
        except BaseException:
            destination.remove(key)
            raise
        copied = dict(data)
        copied.pop("lock", None)  # the source's lock is not the copy's
        tags = dict(data.get("tags", {}))
        tags.pop(TAG_HOLD, None)
        tags[TAG_TIER] = destination.tier
        copied.update(
            id=copy_id,
            tags=tags,
            copied_from={"store": self.url, "at": datetime.now(UTC).isoformat()},
            encryption=encryption,
        )
        destination.write_json(sidecar_key(copy_id), copied)
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
            split = split_key(key)
            if split is None or not of_target(split[0], target):
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
