"""The backup testing log (seed §3.5, §3.6): every check and restore test, appended, reviewable.

A `TestLog` appends each `~backuppolicy.checks.verify.CheckResult` as a `LogEntry` (an entry id, the
time it was recorded and who ran it are added) to a store, and answers the review questions
of §3.6: what failed (`TestLog.failures`), when a check last passed (`TestLog.last_success`),
and what is overdue under the policy (`TestLog.overdue`): applications without a passing
restore test in the last 12 months, quarters without any restore test, and copies without a
passing integrity check in the last year.

Stores:

* `JsonlLogStore`: a local JSON-lines file, one entry per line, append-only. Each append holds
  an exclusive ``fcntl`` lock on the file and is flushed and ``fsync``'d before it returns, so
  concurrent writers (threads or processes) never interleave. Each line is a hash chain link:
  it carries the SHA-256 of the line before it and the SHA-256 of its own content, so a changed
  byte, a removed, inserted or reordered line is found on read (`TestLog.damage`). A torn last
  line (a writer that crashed mid-line) is skipped with a `CorruptLogLineWarning` on read and
  reported as a note, not as damage, and the next append starts on a fresh line.
* `S3LogStore`: one S3 object per entry, keyed by the check's time and the entry id, written
  with ``If-None-Match: *``, so concurrent writers never overwrite each other. Each object
  carries the SHA-256 of its content.
* `MemoryLogStore`: a list in memory, for tests and notebooks.

`TestLog.open` picks the store from a URL: a path (or ``file://``), ``s3://bucket/prefix`` or
``memory://``.

Example:
    >>> from datetime import datetime, UTC
    >>> from backuppolicy.checks.verify import CheckResult, CheckStatus, CheckKind
    >>> log = TestLog.open("memory://", ran_by="support@ops-1")
    >>> entry = log.record(CheckResult(
    ...     check="restore-test", status=CheckStatus.PASS, target="shop-db",
    ...     application="shop", kind=CheckKind.RESTORE_TEST,
    ...     checked_at=datetime(2026, 11, 26, 5, 0, tzinfo=UTC)))
    >>> entry.ran_by, entry.ok
    ('support@ops-1', True)
    >>> log.last_success("shop-db", "restore-test") == entry
    True
    >>> list(log.failures())
    []
"""

from __future__ import annotations

import enum
import getpass
import hashlib
import json
import logging
import os
import socket
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import ensure_aware
from backuppolicy.core.schedule import Cadence
from backuppolicy.core.targets import get_plugin

if sys.platform != "win32":  # pragma: no branch - POSIX file locks
    import fcntl

if TYPE_CHECKING:  # types only: workflows reach aws/ through the registry (import-linter)
    from backuppolicy.aws import AwsBackend, RetryPolicy, S3Objects
    from backuppolicy.core.policy import Policy

__all__ = [
    "MAX_LOG_LINE_BYTES",
    "CorruptLogLineWarning",
    "JsonlLogStore",
    "LogDamage",
    "LogDamageKind",
    "LogEntry",
    "LogStore",
    "MemoryLogStore",
    "OverdueFinding",
    "OverdueKind",
    "S3LogStore",
    "TestLog",
    "cadence_span",
    "default_ran_by",
]

_log = logging.getLogger("backuppolicy.testlog")
_FORMAT = 1
_CHAIN = "chain"

MAX_LOG_LINE_BYTES = 1024 * 1024
"""Longest testing-log line or S3 object read, in bytes; a longer one is reported as damaged."""
_TIME_KEY = "%Y%m%dT%H%M%S.%fZ"

_SPANS = {
    Cadence.HOUR: Duration(hours=1),
    Cadence.DAY: Duration(days=1),
    Cadence.WEEK: Duration(weeks=1),
    Cadence.MONTH: Duration(months=1),
    Cadence.QUARTER: Duration(months=3),
    Cadence.YEAR: Duration(years=1),
}


def cadence_span(cadence: Cadence) -> Duration:
    """The length of one period of *cadence*, as a calendar-aware `Duration`.

    Example:
        >>> str(cadence_span(Cadence.QUARTER)), str(cadence_span(Cadence.YEAR))
        ('3m', '1y')
    """
    return _SPANS[cadence]


def default_ran_by() -> str:
    """``user@host`` of this process: who ran a check, unless told otherwise."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class CorruptLogLineWarning(UserWarning):
    """A line or object of the testing log could not be read and was skipped."""


def _aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise PolicyError.for_field(attribute.name, "a non-empty string", value)


@attrs.frozen
class LogEntry:
    """One recorded check or restore test.

    Attributes:
        id: Unique id of the entry: the time it was recorded and a random suffix
            (``20261126T050001.123456Z-3f2a...``), so ids sort by recording time.
        recorded_at: When the entry was appended (timezone-aware).
        result: The `~backuppolicy.checks.verify.CheckResult`; its ``ran_by`` is always filled in.
    """

    id: str = attrs.field(validator=_non_empty)
    recorded_at: datetime = attrs.field(validator=_aware)
    result: CheckResult = attrs.field(validator=attrs.validators.instance_of(CheckResult))

    @property
    def check(self) -> str:
        """Name of the check."""
        return self.result.check

    @property
    def status(self) -> CheckStatus:
        """Outcome of the check."""
        return self.result.status

    @property
    def kind(self) -> CheckKind:
        """Kind of evidence (verification, integrity, restore test)."""
        return self.result.kind

    @property
    def target(self) -> str:
        """Name of the target checked."""
        return self.result.target

    @property
    def application(self) -> str | None:
        """Application of the target, if the check recorded it."""
        return self.result.application

    @property
    def tier(self) -> str | None:
        """Tier of the point checked, if any."""
        return self.result.tier

    @property
    def point_id(self) -> str | None:
        """The point checked, if any."""
        return self.result.point_id

    @property
    def checked_at(self) -> datetime:
        """When the check ran."""
        return self.result.checked_at

    @property
    def ran_by(self) -> str:
        """Who or what ran the check."""
        return self.result.ran_by

    @property
    def ok(self) -> bool:
        """Whether the check did not fail."""
        return self.result.ok

    @property
    def passed(self) -> bool:
        """Whether the check passed (warnings and skips do not)."""
        return self.result.status is CheckStatus.PASS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the result's fields plus ``id``, ``recorded_at`` and ``v``."""
        return {
            "v": _FORMAT,
            "id": self.id,
            "recorded_at": self.recorded_at.isoformat(),
            **self.result.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        """Inverse of `to_dict`.

        Raises:
            PolicyError: *data* is not an entry (missing or malformed fields).
        """
        if not isinstance(data, Mapping):
            raise PolicyError.for_field("entry", "a JSON object", data)
        try:
            return cls(
                id=str(data["id"]),
                recorded_at=datetime.fromisoformat(str(data["recorded_at"])),
                result=CheckResult.from_dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError.for_field(
                "entry", "a log entry with id, recorded_at, check, status, target, checked_at", data
            ) from exc


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


class LogDamageKind(enum.Enum):
    """What is wrong with a part of the testing log."""

    DAMAGED = "damaged"
    """A line or object that cannot be read, or whose content does not match its digest."""
    CHAIN_BROKEN = "chain-broken"
    """A line that does not follow the line before it: a line was removed, inserted or moved."""
    UNCHAINED = "unchained"
    """Entries written before the log had digests (legacy): read, but they cannot be checked."""
    TORN_LINE = "torn-line"
    """A line a writer left half-written when it crashed: skipped, a note rather than damage."""


@attrs.frozen
class LogDamage:
    """One problem found while reading the testing log (`TestLog.damage`).

    Attributes:
        kind: The `LogDamageKind`.
        where: The file and line (``"log.jsonl:7"``) or the object's URL.
        detail: One human line.
    """

    kind: LogDamageKind
    where: str
    detail: str

    @property
    def tampering(self) -> bool:
        """Whether this is damage (changed, removed or reordered entries), not just a note."""
        return self.kind in (LogDamageKind.DAMAGED, LogDamageKind.CHAIN_BROKEN)

    def __str__(self) -> str:
        return f"{self.where}: {self.kind.value}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind.value,
            "where": self.where,
            "detail": self.detail,
            "tampering": self.tampering,
        }


def _canonical(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(entry: LogEntry) -> dict[str, Any]:
    """The entry as the JSON data it reads back as (so its canonical form is a fixed point)."""
    data: dict[str, Any] = json.loads(json.dumps(entry.to_dict(), default=str))
    return data


def _encode(entry: LogEntry, *, prev: str | None = None, after_torn: bool = False) -> bytes:
    """One stored entry: its data and a ``chain`` with its digest (and the previous line's)."""
    data = _plain(entry)
    chain: dict[str, Any] = {} if prev is None else {"prev": prev}
    if after_torn:
        chain["after_torn"] = True
    chain["sha256"] = _sha256(_canonical({**data, _CHAIN: chain}))
    return _canonical({**data, _CHAIN: chain})


@attrs.frozen
class _Parsed:
    entry: LogEntry | None = None
    chain: dict[str, Any] | None = None
    problem: str = ""


def _parse(raw: bytes) -> _Parsed:
    """Parse one stored entry and check it against its digest; never raises."""
    try:
        return _check(raw, json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError, RecursionError) as exc:  # JSON, UTF-8, lone surrogates
        return _Parsed(problem=f"not readable ({type(exc).__name__}: {str(exc)[:80]})")


def _check(raw: bytes, data: Any) -> _Parsed:
    if not isinstance(data, dict):
        return _Parsed(problem=f"not a JSON object (a {type(data).__name__})")
    chain = data.pop(_CHAIN, None)
    problem = _chain_problem(raw, data, chain) if chain is not None else ""
    if problem:
        return _Parsed(problem=problem)
    try:
        entry = LogEntry.from_dict(data)
    except PolicyError as exc:
        return _Parsed(problem=f"not an entry ({str(exc)[:120]})")
    plain = _plain(entry)
    unknown = sorted(set(data) - set(plain))
    if unknown:  # a changed field name: the entry would not read back as it was written
        return _Parsed(problem=f"unknown field(s) {', '.join(unknown)[:120]}")
    # A field of the wrong type (a list of issues given as text, evidence as a list, a target
    # as a mapping ...) is converted on reading, so the entry would not read back as written.
    changed = sorted(k for k in data if k not in _LENIENT and data[k] != plain[k])
    if changed:
        return _Parsed(problem=f"field(s) of the wrong type: {', '.join(changed)[:120]}")
    return _Parsed(entry=entry, chain=chain)


_LENIENT: Final = frozenset({"v", "recorded_at", "checked_at"})
"""Fields whose written form may differ from the one read back (times with ``Z``, the format)."""


def _chain_problem(raw: bytes, data: dict[str, Any], chain: Any) -> str:
    """What is wrong with an entry's digest, ``""`` if it matches and the bytes are as written."""
    if not isinstance(chain, dict) or not isinstance(chain.get("sha256"), str):
        return "its digest is malformed"
    unsigned = {k: v for k, v in chain.items() if k != "sha256"}
    if _canonical({**data, _CHAIN: {**unsigned, "sha256": chain["sha256"]}}) != raw:
        return "it is not stored as it was written (bytes changed)"
    if _sha256(_canonical({**data, _CHAIN: unsigned})) != chain["sha256"]:
        return "its content does not match its SHA-256 (changed)"
    return ""


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
                line = _encode(entry, prev=_sha256(last) if last else "", after_torn=torn) + b"\n"
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

    def _lines(self) -> Iterator[tuple[int, bytes, bool]]:
        """``(line number, bytes without the newline, complete)``; over-long lines come cut."""
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return
        with file:
            _flock(file.fileno(), exclusive=False)
            try:
                end = os.fstat(file.fileno()).st_size
            finally:
                _funlock(file.fileno())
            offset = 0
            number = 0
            while offset < end:
                raw = file.readline(min(end - offset, MAX_LOG_LINE_BYTES + 1))
                offset += len(raw)
                number += 1
                if len(raw) > MAX_LOG_LINE_BYTES and not raw.endswith(b"\n"):
                    while offset < end and not raw.endswith(b"\n"):  # skip the rest of it
                        raw = file.readline(min(end - offset, _CHUNK))
                        offset += len(raw)
                    yield number, b"", False
                    continue
                yield number, raw.removesuffix(b"\n"), raw.endswith(b"\n")

    def _scan(self, problems: list[LogDamage]) -> Iterator[LogEntry]:
        """Yield the intact entries; append what is wrong to *problems*."""
        chain = _Chain(problems)
        lines = list(self._lines())
        for index, (number, raw, complete) in enumerate(lines):
            where = f"{self.path}:{number}"
            if not complete and raw and index == len(lines) - 1:
                detail = "a torn last line (a writer died mid-write); skipped"
                problems.append(LogDamage(LogDamageKind.TORN_LINE, where, detail))
                break
            entry = chain.follow(where, raw, complete=complete)
            if entry is not None:
                yield entry
        chain.finish()


class _Chain:
    """Follows the hash chain of a JSON-lines log, line by line, and notes what is wrong."""

    def __init__(self, problems: list[LogDamage]) -> None:
        self.problems = problems
        self.prev = ""  # SHA-256 of the line before (the first line follows "")
        self.chained = False
        self.legacy: list[str] = []
        self.unreadable: dict[str, LogDamage] = {}  # digest of a damaged line -> its damage

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
        expected, self.prev = self.prev, _sha256(raw)
        parsed = _parse(raw)
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


def _last_line(file: Any, end: int) -> tuple[bytes, bool]:
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
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Any = None,
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
        when = entry.checked_at.astimezone(UTC).strftime(_TIME_KEY)
        return f"{self.prefix}{when}_{entry.id}.json"

    def append(self, entry: LogEntry) -> None:
        """Write *entry* as a new object (``If-None-Match: *``: never over another one)."""
        key = self.key_for(entry)
        body = _encode(entry)
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
        start = self.prefix + since.astimezone(UTC).strftime(_TIME_KEY) if since else None
        stop = self.prefix + until.astimezone(UTC).strftime(_TIME_KEY) if until else None
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
                        _Parsed(problem=f"longer than {MAX_LOG_LINE_BYTES} bytes")
                        if len(raw) > MAX_LOG_LINE_BYTES
                        else _parse(raw)
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


# --------------------------------------------------------------------------------------------
# Review findings


class OverdueKind(enum.Enum):
    """What a testing-log review found missing."""

    APPLICATION_NOT_TESTED = "application-not-tested"
    """An application has no passing restore test within its cadence (seed §3.3: a year)."""
    PERIOD_WITHOUT_TEST = "period-without-test"
    """A finished period (seed §3.2: a quarter) had no restore test at all."""
    COPY_NOT_CHECKED = "copy-not-checked"
    """A target's copies in a tier have no passing integrity check within the cadence (§4.1, §4.2)."""


_CLAUSES = {
    OverdueKind.APPLICATION_NOT_TESTED: "§3.3",
    OverdueKind.PERIOD_WITHOUT_TEST: "§3.2",
    OverdueKind.COPY_NOT_CHECKED: "§4.1, §4.2",
}


@attrs.frozen
class OverdueFinding:
    """A test or check the policy requires that the testing log does not show.

    Attributes:
        kind: The `OverdueKind`.
        subject: What is overdue: the application, the period (``"2026-Q3"``), or
            ``"<target>/<tier>"``.
        clause: The section of the written policy (``"§3.3"``).
        window_start: Start of the window looked at (inclusive).
        window_end: End of the window looked at (exclusive).
        detail: One human line.
        application: The application concerned, if any.
        target: The target concerned, if any.
        tier: The tier concerned, if any.
        last: The most recent relevant entry before the window (the last passing test), if any.
    """

    kind: OverdueKind
    subject: str
    clause: str
    window_start: datetime = attrs.field(validator=_aware)
    window_end: datetime = attrs.field(validator=_aware)
    detail: str
    application: str | None = None
    target: str | None = None
    tier: str | None = None
    last: LogEntry | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "clause": self.clause,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "detail": self.detail,
            "application": self.application,
            "target": self.target,
            "tier": self.tier,
            "last": self.last.id if self.last else None,
        }


@attrs.frozen
class _Requirement:
    """One thing the policy requires of the log, with the entries that meet it."""

    kind: OverdueKind
    subject: str
    window_start: datetime
    window_end: datetime
    evidence: tuple[LogEntry, ...]
    last: LogEntry | None
    application: str | None = None
    target: str | None = None
    tier: str | None = None
    what: str = ""

    @property
    def met(self) -> bool:
        return bool(self.evidence)

    def detail(self) -> str:
        window = f"{self.window_start:%Y-%m-%d} to {self.window_end:%Y-%m-%d}"
        if self.met:
            newest = max(self.evidence, key=_entry_order)
            return f"{self.what}: {len(self.evidence)} in {window}, last {newest.checked_at:%Y-%m-%d} ({newest.id})"
        last = f"; last {self.last.checked_at:%Y-%m-%d} ({self.last.id})" if self.last else ""
        return f"no {self.what} in {window}{last}"

    def finding(self) -> OverdueFinding:
        return OverdueFinding(
            kind=self.kind,
            subject=self.subject,
            clause=_CLAUSES[self.kind],
            window_start=self.window_start,
            window_end=self.window_end,
            detail=self.detail(),
            application=self.application,
            target=self.target,
            tier=self.tier,
            last=self.last,
        )


def _entry_order(entry: LogEntry) -> tuple[datetime, str]:
    return (entry.checked_at, entry.id)


def _newest(entries: Iterable[LogEntry]) -> LogEntry | None:
    return max(entries, key=_entry_order, default=None)


def _window_start(span: Duration, now: datetime) -> datetime:
    start = span.before(now)
    return start if start is not None else datetime.min.replace(tzinfo=UTC)


def _requirements(
    policy: Policy,
    entries: Sequence[LogEntry],
    *,
    now: datetime,
    since: datetime | None = None,
) -> list[_Requirement]:
    """What the policy requires of the testing log at *now*, each with the entries that meet it.

    * Each application: a passing restore test within one ``restore_test_per_application_every``
      before *now* (a rolling window: "in the last 12 months").
    * Each finished ``restore_test_every`` period (calendar quarters in the policy's time zone)
      that ends after *since* (default: one year before *now*) and no later than *now*: at
      least one restore test that ran (pass, fail or warn; skipped does not count).
    * Each enabled target and each tier of it that integrity checks cover: a passing integrity
      check of that tier within one ``integrity_check_every`` before *now*.
    """
    now = ensure_aware(now, field="now")
    v = policy.verification
    application_of = {spec.name: spec.application for spec in policy.targets}
    current = [e for e in entries if e.checked_at <= now]
    restore_tests = [e for e in current if e.kind is CheckKind.RESTORE_TEST]
    integrity = [e for e in current if e.kind is CheckKind.INTEGRITY and e.passed]
    result: list[_Requirement] = []

    def app_of(entry: LogEntry) -> str | None:
        return entry.application or application_of.get(entry.target)

    start = _window_start(cadence_span(v.restore_test_per_application_every), now)
    for app in policy.applications:
        passing = [e for e in restore_tests if e.passed and app_of(e) == app]
        result.append(
            _Requirement(
                kind=OverdueKind.APPLICATION_NOT_TESTED,
                subject=app,
                window_start=start,
                window_end=now,
                evidence=tuple(e for e in passing if e.checked_at >= start),
                last=_newest(e for e in passing if e.checked_at < start),
                application=app,
                what=f"passing restore test of application {app}",
            )
        )

    cadence = v.restore_test_every
    lookback = ensure_aware(since, field="since") if since is not None else None
    if lookback is None:
        lookback = _window_start(Duration(years=1), now)
    ran = [e for e in restore_tests if e.status is not CheckStatus.SKIPPED]
    periods: list[_Requirement] = []
    end = cadence.period_start(now, policy.timezone)
    while end > lookback:
        begin = cadence.period_start(end - timedelta(microseconds=1), policy.timezone)
        key = cadence.period_key(begin, policy.timezone)
        periods.append(
            _Requirement(
                kind=OverdueKind.PERIOD_WITHOUT_TEST,
                subject=key,
                window_start=begin,
                window_end=end,
                evidence=tuple(e for e in ran if begin <= e.checked_at < end),
                last=_newest(e for e in ran if e.checked_at < begin),
                what="restore test",
            )
        )
        end = begin
    result.extend(reversed(periods))

    start = _window_start(cadence_span(v.integrity_check_every), now)
    all_tiers = tuple(t.name for t in policy.tiers)
    covered = set(v.integrity_covers_tiers or all_tiers)
    for spec in policy.targets:
        if not spec.enabled:
            continue
        tiers = [t.name for t in policy.tiers_for(spec)]
        source = tiers[0] if tiers else None
        wanted: list[str | None] = [t for t in tiers if t in covered]
        if not all_tiers:  # a policy without tiers: one check of the target, any copy
            wanted = [None]
        for tier in wanted:
            mine = [
                e
                for e in integrity
                if e.target == spec.name and (tier is None or (e.tier or source) == tier)
            ]
            subject = f"{spec.name}/{tier}" if tier else spec.name
            result.append(
                _Requirement(
                    kind=OverdueKind.COPY_NOT_CHECKED,
                    subject=subject,
                    window_start=start,
                    window_end=now,
                    evidence=tuple(e for e in mine if e.checked_at >= start),
                    last=_newest(e for e in mine if e.checked_at < start),
                    application=spec.application,
                    target=spec.name,
                    tier=tier,
                    what=f"passing integrity check of {subject}",
                )
            )
    return result


# --------------------------------------------------------------------------------------------
# The log


def _kind(value: CheckKind | str | None) -> CheckKind | None:
    if value is None or isinstance(value, CheckKind):
        return value
    try:
        return CheckKind(value)
    except ValueError:
        expected = "one of " + ", ".join(k.value for k in CheckKind)
        raise PolicyError.for_field("kind", expected, value) from None


def _status(value: CheckStatus | str | None) -> CheckStatus | None:
    if value is None or isinstance(value, CheckStatus):
        return value
    try:
        return CheckStatus(value)
    except ValueError:
        expected = "one of " + ", ".join(s.value for s in CheckStatus)
        raise PolicyError.for_field("status", expected, value) from None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TestLog:
    """The backup testing log: record checks, then review them (seed §3.5, §3.6).

    Args:
        store: Where the entries live: a `JsonlLogStore`, `S3LogStore`, `MemoryLogStore` or any
            `LogStore`.
        ran_by: Who runs the checks recorded through this log when a result does not say
            (default: ``user@host``).
        clock: Returns the current time for ``recorded_at`` (default: the wall clock, UTC).

    Attributes:
        store: The store.
        ran_by: Default ``ran_by`` of recorded results.
        clock: The clock.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        store: LogStore,
        *,
        ran_by: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(store, LogStore):
            raise PolicyError.for_field("store", "a LogStore (append and read)", store)
        self.store = store
        self.ran_by = ran_by or default_ran_by()
        self.clock: Callable[[], datetime] = clock or _utcnow

    def __repr__(self) -> str:
        return f"<backuppolicy.TestLog(store={self.store!r})>"

    @classmethod
    def open(cls, url: str | os.PathLike[str], **options: Any) -> TestLog:
        """Open the log at *url*: a file path (or ``file://path``), ``s3://bucket/prefix`` or ``memory://``.

        Keyword *options* go to the store (``session=``, ``endpoint_url=`` ... for S3), except
        ``ran_by`` and ``clock``, which go to the log.

        Raises:
            PolicyError: *url* is empty or an ``s3://`` URL without a bucket.
        """
        log_options = {key: options.pop(key) for key in ("ran_by", "clock") if key in options}
        text = os.fspath(url)
        if not text:
            raise PolicyError.for_field(
                "url", "a path, file://, s3://bucket/prefix or memory://", text
            )
        store: LogStore
        if text.startswith("s3://"):
            bucket, _, prefix = text[len("s3://") :].partition("/")
            if not bucket:
                raise PolicyError.for_field("url", "s3://bucket/prefix with a bucket", text)
            store = S3LogStore(bucket, prefix, **options)
        elif text.startswith("memory://"):
            store = MemoryLogStore()
        else:
            store = JsonlLogStore(text.removeprefix("file://"))
        return cls(store, **log_options)

    def record(self, result: CheckResult) -> LogEntry:
        """Append *result* to the log and return the entry (with its id, time and ``ran_by``).

        Raises:
            PolicyError: *result* is not a `~backuppolicy.checks.verify.CheckResult`.
        """
        if not isinstance(result, CheckResult):
            raise PolicyError.for_field("result", "a CheckResult", result)
        recorded_at = ensure_aware(self.clock(), field="clock()")
        if not result.ran_by:
            result = attrs.evolve(result, ran_by=self.ran_by)
        stamp = recorded_at.astimezone(UTC).strftime(_TIME_KEY)
        entry = LogEntry(
            id=f"{stamp}-{uuid.uuid4().hex[:16]}", recorded_at=recorded_at, result=result
        )
        self.store.append(entry)
        return entry

    def record_all(self, results: Iterable[CheckResult]) -> list[LogEntry]:
        """`record` every result, in order; returns the entries."""
        return [self.record(result) for result in results]

    def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        target: str | None = None,
        application: str | None = None,
        check: str | None = None,
        kind: CheckKind | str | None = None,
        status: CheckStatus | str | None = None,
    ) -> Iterator[LogEntry]:
        """The entries that match every filter given, oldest check first (ties by entry id).

        Args:
            since: Only checks that ran at or after this time.
            until: Only checks that ran before this time (so ``since=Q3 start, until=Q4 start``
                is exactly the third quarter).
            target: Only this target.
            application: Only this application.
            check: Only this check name.
            kind: Only this `~backuppolicy.checks.verify.CheckKind` (or its value).
            status: Only this `~backuppolicy.checks.verify.CheckStatus` (or its value).

        Raises:
            PolicyError: A time is naive, or *kind* or *status* is unknown.
        """
        if since is not None:
            ensure_aware(since, field="since")
        if until is not None:
            ensure_aware(until, field="until")
        wanted_kind = _kind(kind)
        wanted_status = _status(status)
        found = [
            entry
            for entry in self.store.read(since=since, until=until)
            if (since is None or entry.checked_at >= since)
            and (until is None or entry.checked_at < until)
            and (target is None or entry.target == target)
            and (application is None or entry.application == application)
            and (check is None or entry.check == check)
            and (wanted_kind is None or entry.kind is wanted_kind)
            and (wanted_status is None or entry.status is wanted_status)
        ]
        found.sort(key=_entry_order)
        return iter(found)

    def damage(self) -> list[LogDamage]:
        """What is wrong with the stored log: damaged, removed, inserted or reordered entries.

        Reads the whole store. `LogDamage.tampering` tells damage from notes (legacy entries
        without digests, a line torn by a crashed writer). A store without a ``damage()``
        method (a `MemoryLogStore`, a plug-in) reports nothing.
        """
        check = getattr(self.store, "damage", None)
        return list(check()) if callable(check) else []

    def failures(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[LogEntry]:
        """Failed checks (status fail), oldest first, optionally within [*since*, *until*)."""
        return list(self.entries(since=since, until=until, status=CheckStatus.FAIL))

    def last_success(self, target: str, check: str) -> LogEntry | None:
        """The most recent passing run of *check* on *target* (``None`` if it never passed)."""
        return _newest(self.entries(target=target, check=check, status=CheckStatus.PASS))

    def overdue(
        self, policy: Policy, *, now: datetime, since: datetime | None = None
    ) -> list[OverdueFinding]:
        """What the policy requires that the log does not show at *now*.

        * `OverdueKind.APPLICATION_NOT_TESTED`: an application with no passing restore test
          within ``verification.restore_test_per_application_every`` (a year) before *now*.
        * `OverdueKind.PERIOD_WITHOUT_TEST`: a finished ``restore_test_every`` period (a
          calendar quarter, in the policy's time zone) with no restore test at all; periods
          ending after *since* (default: one year before *now*) are looked at. The period in
          progress is not overdue yet.
        * `OverdueKind.COPY_NOT_CHECKED`: a target's tier, among
          ``verification.integrity_covers_tiers`` (every tier if empty), without a passing
          integrity check within ``integrity_check_every`` (a year) before *now*. A result that
          names no tier counts for the target's first (source) tier.

        A restore test counts for the application of its target (from the result, or from
        the policy). Entries checked after *now* are ignored.
        """
        ensure_aware(now, field="now")
        entries = list(self.entries(until=now + timedelta(microseconds=1)))
        return [
            r.finding() for r in _requirements(policy, entries, now=now, since=since) if not r.met
        ]
