"""The archive format: its names and keys, bounded reads, hashing, and how links resolve.

One point named ``bp-<target>-<UTC stamp>`` is ``<name>.tar.gz`` (members ``data/`` and, last,
``manifest.json``) and its sidecar ``<name>.json``; see `backuppolicy.local`.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
from collections.abc import Mapping, Sequence
from typing import Protocol

from backuppolicy.core.exceptions import UnsafeArchiveError

ARCHIVE_FORMAT = 1
"""Version of the archive, manifest and sidecar format written by `backuppolicy.local`."""

MAX_SIDECAR_BYTES = 1024 * 1024
"""Largest sidecar (``<name>.json``) read, in bytes; a larger one is refused, unread."""

DATA = "data"
"""The archive member that holds the directory."""
MANIFEST = "manifest.json"
"""The archive member that lists every entry (written last)."""
TMP_PREFIX = ".tmp-"
"""Prefix of a store's temporary files while an object is written."""
CHUNK = 256 * 1024
"""Bytes read or written at a time."""
_ARCHIVE_SUFFIX = ".tar.gz"
_SIDECAR_SUFFIX = ".json"
_MAX_LINK_HOPS = 40
# bp-<target>-<stamp>[-<n>][-<tier>]: copies carry their tier so ids stay unique per target.
POINT_RE = re.compile(
    r"^bp-(?P<target>.+)-(?P<stamp>\d{8}t\d{6}z)(?:-\d+)?(?:-(?P<tier>[a-z][a-z0-9_]*))?$"
)
STAMP = "%Y%m%dt%H%M%Sz"


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


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def archive_key(name: str) -> str:
    return name + _ARCHIVE_SUFFIX


def sidecar_key(name: str) -> str:
    return name + _SIDECAR_SUFFIX


def split_key(key: str) -> tuple[str, str] | None:
    """``("bp-x-...", "archive"|"sidecar")`` for one of our keys, ``None`` for anything else."""
    if key.startswith(TMP_PREFIX) or "/" in key:
        return None
    for suffix, kind in ((_ARCHIVE_SUFFIX, "archive"), (_SIDECAR_SUFFIX, "sidecar")):
        if key.endswith(suffix):
            name = key[: -len(suffix)]
            if POINT_RE.match(name):
                return name, kind
    return None


def read_upto(stream: Readable, size: int) -> bytes:
    """At most *size* bytes of *stream* (fewer only at its end)."""
    parts: list[bytes] = []
    left = size
    while left > 0 and (chunk := stream.read(min(left, CHUNK))):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def too_big(where: str, key: str, limit: int) -> UnsafeArchiveError:
    reason = f"is larger than {limit} bytes; it was not read"
    msg = f"{where}: {key} {reason}"
    return UnsafeArchiveError(msg, result={"member": key, "reason": reason})


def sha256_of(stream: Readable) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def of_target(name: str, target: str | None) -> bool:
    """Whether point *name* (``bp-<target>-<stamp>...``) belongs to *target* (any if ``None``)."""
    if target is None:
        return True
    match = POINT_RE.match(name)
    return match is not None and match["target"] == target


class HashingSink:
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


class HashingReader:
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


def manifest_mode(value: int) -> str:
    return f"{stat.S_IMODE(value) & 0o777:04o}"


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


def link_escapes(rel: str, target: str, links: Mapping[str, str]) -> bool:
    """Whether the symlink at *rel* pointing to *target* resolves outside the root."""
    if not target or target.startswith("/") or "\0" in target:
        return True
    return _resolve([*rel.split("/")[:-1], *target.split("/")], links, [0]) is None


def plain_mode(mode: str) -> int:
    """A manifest's octal *mode* without setuid, setgid and sticky bits (never restored)."""
    return int(mode, 8) & 0o777
