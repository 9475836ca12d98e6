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
    >>> from backuppolicy.core.results import CheckResult, CheckStatus, CheckKind
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

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from backuppolicy.checks.verify import default_ran_by
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.workflows._logformat import (
    TIME_KEY,
    CorruptLogLineWarning,
    LogDamage,
    LogDamageKind,
    LogEntry,
)
from backuppolicy.workflows._review import (
    OverdueFinding,
    OverdueKind,
    cadence_span,
    entry_order,
    newest,
    requirements,
)
from backuppolicy.workflows.logstores import (
    MAX_LOG_LINE_BYTES,
    JsonlLogStore,
    LogStore,
    MemoryLogStore,
    S3LogStore,
)

if TYPE_CHECKING:
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
        stamp = recorded_at.astimezone(UTC).strftime(TIME_KEY)
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
        found.sort(key=entry_order)
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
        return newest(self.entries(target=target, check=check, status=CheckStatus.PASS))

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
            r.finding() for r in requirements(policy, entries, now=now, since=since) if not r.met
        ]
