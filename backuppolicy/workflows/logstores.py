"""Where the testing log lives: the `LogStore` protocol and its JSON-lines, S3 and memory stores.

* `JsonlLogStore`: a local JSON-lines file, one entry per line, append-only, locked and
  ``fsync``'d; each line is a link of a hash chain, so changed, removed, inserted or reordered
  lines are found on read (`JsonlLogStore.damage`).
* `S3LogStore`: one S3 object per entry, written with ``If-None-Match: *``; it reaches S3
  through the registry's ``"s3"`` object store, so this module never imports boto3.
* `MemoryLogStore`: a list in memory, for tests and notebooks.

The format of an entry is `backuppolicy.workflows._logformat`; the review is
`backuppolicy.workflows.testlog`, which re-exports these names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.registry import get_plugin
from backuppolicy.workflows._logformat import (
    TIME_KEY,
    CorruptLogLineWarning,
    LogDamage,
    LogDamageKind,
    LogEntry,
    Parsed,
    encode,
    parse,
    sha256,
)

if sys.platform != "win32":  # pragma: no branch - POSIX file locks
    import fcntl

if TYPE_CHECKING:  # types only: workflows reach aws/ through the registry (import-linter)
    import boto3
    from botocore.config import Config

    from backuppolicy.aws import AwsBackend, RetryPolicy, S3Objects

__all__ = [
    "MAX_LOG_LINE_BYTES",
    "JsonlLogStore",
    "LogStore",
    "MemoryLogStore",
    "S3LogStore",
]

_log = logging.getLogger("backuppolicy.testlog")

MAX_LOG_LINE_BYTES = 1024 * 1024
"""Longest testing-log line or S3 object read, in bytes; a longer one is reported as damaged."""


@runtime_checkable
class LogStore(Protocol):
    """**Protocol:** where a `TestLog` keeps its entries (append-only)."""

    def append(self, entry: LogEntry) -> None:
        """Store *entry* durably; never overwrite another entry."""
        ...

    def read(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[LogEntry]:
        """Yield the stored entries; a store may skip entries checked outside [*since*, *until*)."""
        ...


# --------------------------------------------------------------------------------------------
# Stores


class MemoryLogStore:
    """Entries in a list in memory (tests, notebooks, the demo).

    Attributes:
        entries: The entries, in append order.
    """

    def __init__(self, entries: Iterable[LogEntry] = ()) -> None:
        self.entries: list[LogEntry] = list(entries)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryLogStore(entries={len(self.entries)})"

    def append(self, entry: LogEntry) -> None:
        """Append *entry*."""
        with self._lock:
            self.entries.append(entry)

    def read(
        self,
        *,
        since: datetime | None = None,  # noqa: ARG002 - the log filters; a list has no index
        until: datetime | None = None,  # noqa: ARG002
    ) -> Iterator[LogEntry]:
        """Yield a snapshot of the entries."""
        with self._lock:
            snapshot = list(self.entries)
        yield from snapshot


def _warn(damage: LogDamage) -> None:
    if damage.kind is LogDamageKind.UNCHAINED:
        return
    if damage.kind is LogDamageKind.TORN_LINE and "last line" in damage.detail:
        text = f"{damage.where}: skipped a torn last line (a writer died mid-write)"
    else:
        text = f"{damage.where}: skipped an unreadable testing-log entry: {damage.detail}"
    warnings.warn(text, CorruptLogLineWarning, stacklevel=4)


class JsonlLogStore:
    """A local JSON-lines file: one entry per line, append-only, fsynced, locked.

    Every append takes an exclusive ``fcntl.flock`` on the file, writes one complete line,
    flushes and fsyncs it, then unlocks: concurrent writers, threads or processes, never
    interleave and a returned append survives a crash. If the file ends in a torn line (a
    writer died mid-write), the next append first ends that line, so the new entry is intact;
    readers skip the torn line with a `CorruptLogLineWarning`. Reads take a shared lock only
    to find the current end of the file, then read without holding it (lines before the end
    never change).

    A store parses each line once: a later read checks that the bytes it already parsed are
    unchanged (their SHA-256) and parses only the lines appended since, so reading a year of
    log several times per run costs one parse. Any change before that point makes the read
    start again from the first line: damage is found as by a full read.

    On Windows there is no ``fcntl``: appends are then serialised within the process only.

    Example:
        >>> import tempfile, pathlib
        >>> store = JsonlLogStore(pathlib.Path(tempfile.mkdtemp()) / "testing-log.jsonl")
        >>> list(store.read())
        []

    Attributes:
        path: The file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: _Snapshot | None = None

    def __repr__(self) -> str:
        return f"JsonlLogStore({str(self.path)!r})"

    def append(self, entry: LogEntry) -> None:
        """Append *entry* as one line chained to the line before it, under an exclusive lock, and ``fsync`` it."""
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a+b") as file:
            _flock(file.fileno(), exclusive=True)
            try:
                end = file.seek(0, os.SEEK_END)
                last, torn = _last_line(file, end)
                line = encode(entry, prev=sha256(last) if last else "", after_torn=torn) + b"\n"
                if torn:
                    _log.warning(
                        "%s ends in a torn line (a writer died mid-write); "
                        "ending it before appending",
                        self.path,
                    )
                    line = b"\n" + line
                file.write(line)  # "a" mode: always at the end, whatever the position
                file.flush()
                os.fsync(file.fileno())
            finally:
                _funlock(file.fileno())
        if created:
            _fsync_dir(self.path.parent)

    def read(
        self,
        *,
        since: datetime | None = None,  # noqa: ARG002 - the file has no index; the log filters
        until: datetime | None = None,  # noqa: ARG002
    ) -> Iterator[LogEntry]:
        """Yield every intact entry in append order; damaged lines are skipped with a warning.

        Use `damage` (or `TestLog.damage`) for what was skipped and why.
        """
        problems: list[LogDamage] = []
        yield from self._scan(problems)
        for damage in problems:
            _warn(damage)

    def damage(self) -> list[LogDamage]:
        """Read the whole file and return what is damaged, broken in the chain, torn or unchained."""
        problems: list[LogDamage] = []
        for _ in self._scan(problems):
            pass
        return problems

    def _scanned(self) -> _Snapshot:
        """Every line of the file, parsed and chained; only the lines appended since the last read are parsed.

        The file is append-only: a read that finds the bytes it parsed before unchanged (same
        file, same SHA-256 of those bytes) parses only the lines after them, continuing the hash
        chain where it stopped. Any change before that point (an edited, removed or inserted
        line, a file replaced) makes the read start again from the first line, so damage is
        found exactly as by a full read. An hourly run reads the log several times (what is
        due, the integrity schedule, the audit, its damage): it parses each line once.
        """
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return _Snapshot.empty()
        with file:
            _flock(file.fileno(), exclusive=False)
            try:
                stat = os.fstat(file.fileno())
            finally:
                _funlock(file.fileno())
            end = stat.st_size
            ident = (stat.st_dev, stat.st_ino)
            with self._cache_lock:
                cached = self._cache
            base = _Snapshot.empty(ident)
            if cached is not None and cached.ident == ident and cached.end <= end:
                prefix = hashlib.sha256()
                remaining = cached.end
                while remaining:
                    chunk = file.read(min(remaining, _CHUNK))
                    if not chunk:
                        break
                    prefix.update(chunk)
                    remaining -= len(chunk)
                if not remaining and prefix.digest() == cached.prefix.digest():
                    base = cached
                else:
                    file.seek(0)
            snapshot = base.extended(file, end, str(self.path), ident)
        with self._cache_lock:
            self._cache = snapshot
        return snapshot

    def _scan(self, problems: list[LogDamage]) -> Iterator[LogEntry]:
        """Yield the intact entries; append what is wrong to *problems*."""
        snapshot = self._scanned()
        problems.extend(snapshot.problems())
        yield from snapshot.entries


@attrs.define
class _Snapshot:
    """What a read of a JSON-lines log found up to the end of its last complete line.

    Attributes:
        ident: ``(st_dev, st_ino)`` of the file read.
        end: Offset after the last line that ends in a newline: what was parsed and chained.
        prefix: SHA-256 of the bytes before *end*.
        number: Lines before *end*.
        entries: The intact entries before *end*, in file order.
        chain: The hash chain's state at *end* (with the damage found before it).
        tail: The damage of a last line without its newline (torn, or over-long): read
            again next time, never continued from.
    """

    ident: tuple[int, int]
    end: int
    prefix: Any  # hashlib._Hash
    number: int
    entries: list[LogEntry]
    chain: _Chain
    tail: list[LogDamage] = attrs.Factory(list)

    @classmethod
    def empty(cls, ident: tuple[int, int] = (0, 0)) -> _Snapshot:
        """The state before the first line."""
        return cls(ident, 0, hashlib.sha256(), 0, [], _Chain([]))

    def problems(self) -> list[LogDamage]:
        """The damage found, as a full read reports it (the legacy note first)."""
        chain = self.chain.copy()
        chain.problems.extend(self.tail)
        chain.finish()
        return chain.problems

    def extended(self, file: IO[bytes], end: int, path: str, ident: tuple[int, int]) -> _Snapshot:
        """This snapshot continued over the lines of *file* (positioned at this one's end) up to *end*."""
        chain = self.chain.copy()
        entries = list(self.entries)
        prefix = self.prefix.copy()
        offset, number = self.end, self.number
        safe_end, safe_number = offset, number
        tail: list[LogDamage] = []
        while offset < end:
            raw = file.readline(min(end - offset, MAX_LOG_LINE_BYTES + 1))
            offset += len(raw)
            number += 1
            where = f"{path}:{number}"
            pieces = [raw]
            over_long = len(raw) > MAX_LOG_LINE_BYTES and not raw.endswith(b"\n")
            while over_long and offset < end and not pieces[-1].endswith(b"\n"):
                pieces.append(file.readline(min(end - offset, _CHUNK)))  # skip the rest of it
                offset += len(pieces[-1])
            if not pieces[-1].endswith(b"\n"):  # the last line, not ended (yet): never cached
                if over_long:
                    ahead = chain.copy()
                    ahead.problems.clear()
                    ahead.follow(where, b"", complete=False)
                    tail.extend(ahead.problems)
                else:
                    detail = "a torn last line (a writer died mid-write); skipped"
                    tail.append(LogDamage(LogDamageKind.TORN_LINE, where, detail))
                break
            for piece in pieces:
                prefix.update(piece)
            if over_long:
                entry = chain.follow(where, b"", complete=False)
            else:
                entry = chain.follow(where, raw.removesuffix(b"\n"), complete=True)
            if entry is not None:
                entries.append(entry)
            safe_end, safe_number = offset, number
        return _Snapshot(ident, safe_end, prefix, safe_number, entries, chain, tail)


class _Chain:
    """Follows the hash chain of a JSON-lines log, line by line, and notes what is wrong."""

    def __init__(self, problems: list[LogDamage]) -> None:
        self.problems = problems
        self.prev = ""  # SHA-256 of the line before (the first line follows "")
        self.chained = False
        self.legacy: list[str] = []
        self.unreadable: dict[str, LogDamage] = {}  # digest of a damaged line -> its damage

    def copy(self) -> _Chain:
        """An independent copy of the state (a read continues from it)."""
        twin = _Chain(list(self.problems))
        twin.prev, twin.chained = self.prev, self.chained
        twin.legacy = list(self.legacy)
        twin.unreadable = dict(self.unreadable)
        return twin

    def _damage(self, kind: LogDamageKind, where: str, detail: str) -> LogDamage:
        damage = LogDamage(kind, where, detail)
        self.problems.append(damage)
        return damage

    def follow(self, where: str, raw: bytes, *, complete: bool) -> LogEntry | None:
        """The entry of one line if it is intact (``None`` for blank and damaged lines)."""
        if not complete:  # only over-long lines come cut
            self._damage(LogDamageKind.DAMAGED, where, f"longer than {MAX_LOG_LINE_BYTES} bytes")
            self.prev = ""
            return None
        if not raw.strip():
            return None
        expected, self.prev = self.prev, sha256(raw)
        parsed = parse(raw)
        if parsed.entry is None:
            damage = self._damage(LogDamageKind.DAMAGED, where, f"skipped: {parsed.problem}")
            self.unreadable[self.prev] = damage
            return None
        if parsed.chain is None:
            if self.chained:
                detail = "an entry without a digest after entries with one (inserted)"
                self._damage(LogDamageKind.DAMAGED, where, detail)
                return None
            self.legacy.append(where)
            return parsed.entry
        self.chained = True
        link = parsed.chain.get("prev")
        if link != expected:
            detail = (
                "does not follow the line before it: an entry before it was removed, "
                "inserted, changed or moved"
            )
            self._damage(LogDamageKind.CHAIN_BROKEN, where, detail)
        elif parsed.chain.get("after_torn") and link in self.unreadable:
            torn = self.unreadable.pop(link)
            self.problems[self.problems.index(torn)] = LogDamage(
                LogDamageKind.TORN_LINE,
                torn.where,
                "a torn line (a writer died mid-write), ended by the next append; skipped",
            )
        return parsed.entry

    def finish(self) -> None:
        """Add the note about legacy entries, first."""
        if self.legacy:
            detail = (
                f"{len(self.legacy)} legacy entries written without digests "
                f"({self.legacy[0]} to {self.legacy[-1].rpartition(':')[2]}): read, but they "
                "cannot be checked for changes"
            )
            self.problems.insert(0, LogDamage(LogDamageKind.UNCHAINED, self.legacy[0], detail))


def _last_line(file: IO[bytes], end: int) -> tuple[bytes, bool]:
    """The last non-empty line of *file* (without its newline) and whether it is torn."""
    if end == 0:
        return b"", False
    buffer = b""
    position = end
    while position > 0:
        start = max(0, position - _CHUNK)
        file.seek(start)
        buffer = file.read(position - start) + buffer
        position = start
        body = buffer.rstrip(b"\n")
        if b"\n" in body or (position == 0):
            break
        if len(buffer) > MAX_LOG_LINE_BYTES:
            break
    torn = not buffer.endswith(b"\n")
    body = buffer.rstrip(b"\n")
    return body.rsplit(b"\n", 1)[-1], torn


_CHUNK = 64 * 1024


def _flock(fd: int, *, exclusive: bool) -> None:
    if sys.platform != "win32":  # pragma: no branch
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _funlock(fd: int) -> None:
    if sys.platform != "win32":  # pragma: no branch
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable (POSIX); best effort elsewhere."""
    if sys.platform == "win32":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3LogStore:
    """One S3 object per entry under ``s3://bucket/prefix``: writers never overwrite each other.

    Keys are ``<prefix><checked_at, UTC, 20261126T050000.000000Z>_<entry id>.json``: they sort
    by the time of the check, so a query from a date lists from that key on (``StartAfter``)
    and stops at its end. Objects are written with ``If-None-Match: *``; a retried write whose
    first attempt had landed is recognised and not duplicated. Listings are paginated, each page
    retried, and objects are fetched concurrently (*max_workers*). The log format lives here;
    every S3 call is made by the registry's ``"s3"`` object store (`backuppolicy.aws.S3Objects`),
    imported (with boto3) only when a store is made.

    Example:
        >>> store = S3LogStore("acme-backup-logs", "web-apps/testing-log")  # doctest: +SKIP

    Args:
        bucket: The bucket.
        prefix: Key prefix (a ``/`` is added if missing; ``""``: the bucket's root).
        session: A `boto3.Session`.
        region: Region of the bucket.
        endpoint_url: Endpoint (moto server, LocalStack).
        clients: Ready clients (``{"s3": client}``).
        config: Extra botocore `Config`.
        retry: The `~backuppolicy.aws.RetryPolicy`.
        max_workers: Objects fetched at once when reading.
        page_size: Keys per listing page (at most 1000).

    Attributes:
        bucket: The bucket.
        prefix: The key prefix, ending in ``/`` unless empty.
        objects: The `~backuppolicy.aws.S3Objects` that makes the calls.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        max_workers: int = 8,
        page_size: int = 1000,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise PolicyError.for_field("bucket", "a bucket name", bucket)
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.max_workers = max(1, max_workers)
        self.page_size = min(1000, max(1, page_size))
        self.objects: S3Objects = get_plugin("object-store", "s3")(
            bucket,
            name=f"s3://{bucket}/{self.prefix}",
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )

    def __repr__(self) -> str:
        return f"S3LogStore({self.bucket!r}, {self.prefix!r})"

    @property
    def backend(self) -> AwsBackend:
        """The `~backuppolicy.aws.AwsBackend` that makes the calls (``objects.backend``)."""
        return self.objects.backend

    def key_for(self, entry: LogEntry) -> str:
        """The object key of *entry*."""
        when = entry.checked_at.astimezone(UTC).strftime(TIME_KEY)
        return f"{self.prefix}{when}_{entry.id}.json"

    def append(self, entry: LogEntry) -> None:
        """Write *entry* as a new object (``If-None-Match: *``: never over another one)."""
        key = self.key_for(entry)
        body = encode(entry)
        if self.objects.put(key, body, content_type="application/json", if_none_match=True):
            return
        # A retried PUT whose first attempt had landed: fine if it holds our entry.
        stored = self._get(key)
        if stored != body:
            raise BackendError(
                f"{self.backend.name}: {key!r} already holds another entry; "
                f"expected a new key for entry {entry.id!r}",
                backend=self.backend.name,
                operation="PutObject",
                resource=key,
                code="PreconditionFailed",
            )

    def _get(self, key: str) -> bytes:
        """At most ``MAX_LOG_LINE_BYTES + 1`` bytes of *key* (a Range request)."""
        body, _ = self.objects.get_bounded(key, MAX_LOG_LINE_BYTES)
        return body

    def _keys(self, since: datetime | None, until: datetime | None) -> Iterator[list[str]]:
        # Every key of a check at or after *since* sorts after this one.
        start = self.prefix + since.astimezone(UTC).strftime(TIME_KEY) if since else None
        stop = self.prefix + until.astimezone(UTC).strftime(TIME_KEY) if until else None
        pages = self.objects.list_pages(
            self.prefix, start_after=start, page_size=self.page_size, resource=self.prefix
        )
        for page in pages:
            keys = [key for key, _ in page if key.endswith(".json")]
            if stop is not None and keys and keys[-1] >= stop:
                yield [key for key in keys if key < stop]
                return
            yield keys

    def read(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[LogEntry]:
        """Yield the entries checked in [*since*, *until*) (all by default), in order of check time.

        Objects that cannot be read or do not match their SHA-256 are skipped with a warning.
        """
        problems: list[LogDamage] = []
        yield from self._scan(problems, since, until)
        for damage in problems:
            _warn(damage)

    def damage(self) -> list[LogDamage]:
        """Read every object and return those that are damaged or have no digest (legacy)."""
        problems: list[LogDamage] = []
        for _ in self._scan(problems, None, None):
            pass
        return problems

    def _scan(
        self, problems: list[LogDamage], since: datetime | None, until: datetime | None
    ) -> Iterator[LogEntry]:
        legacy: list[str] = []
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            for keys in self._keys(since, until):
                for key, raw in zip(keys, pool.map(self._get, keys), strict=True):
                    where = f"s3://{self.bucket}/{key}"
                    parsed = (
                        Parsed(problem=f"longer than {MAX_LOG_LINE_BYTES} bytes")
                        if len(raw) > MAX_LOG_LINE_BYTES
                        else parse(raw)
                    )
                    if parsed.entry is None:
                        detail = f"skipped: {parsed.problem}"
                        problems.append(LogDamage(LogDamageKind.DAMAGED, where, detail))
                    elif parsed.chain is None:
                        legacy.append(where)
                        yield parsed.entry
                    else:
                        yield parsed.entry
        if legacy:
            problems.insert(
                0,
                LogDamage(
                    LogDamageKind.UNCHAINED,
                    legacy[0],
                    f"{len(legacy)} legacy entries written without a digest: read, but they "
                    "cannot be checked for changes",
                ),
            )
