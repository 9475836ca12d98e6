"""Run a policy unattended: one idempotent call does whatever is due now (`run`).

`run` is meant to be called every hour (cron, a systemd timer, a Kubernetes CronJob, a Lambda
on a schedule). Each call, under a lease that keeps two runs apart:

1. takes the backups that are due and the copies each tier wants (`backuppolicy.backup`: the
   schedules and the points that exist say what is due, and deterministic tokens make a
   repeated call create nothing);
2. prunes (plan, then apply with the floors) after a backup or a copy, and at the first run
   of each day;
3. sweeps restore-test leftovers older than a day, at the first run of each day;
4. runs the integrity checks and restore tests that are due (see below), recording them in the
   testing log;
5. audits the policy at the first run of each day;
6. records what it did in the testing log (a ``run`` entry; a call that found nothing due
   writes none) and sends **one** digest
   notification when something failed or is overdue, instead of one per finding;
7. pings the heartbeat URL of the policy (start, then success or failure).

What is due is computed from the testing log and the points, never from the call itself:

* **Restore tests** (seed §3.2, §3.3): each application has its own day of the
  ``restore_test_per_application_every`` period (a year), spread like the rolling full
  backups (`backuppolicy.rolling_slots`); it is tested on that day unless it already was in
  the period, and earlier when its last passing test would otherwise fall out of the rolling
  window. A ``restore_test_every`` period (a quarter) that has had no test by its middle gets
  one, of the application tested least recently. A failed test is retried the next day, not
  every hour.
* **Integrity checks** (§4.1, §4.2): the rolling integrity schedule
  (`backuppolicy.workflows.verify.integrity_plan`, `backuppolicy.core.integrity_schedule`):
  every copy in a covered tier gets its own day of its integrity window (a year, or its
  retention when shorter) and is checked that day, or later when a day was missed (at most
  the steady daily load of late ones per day). A copy whose check failed is retried the next
  day; one whose check was skipped (a kind without an integrity check) once per window.
"""

from __future__ import annotations

import getpass
import html
import logging
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import LeaseHeldError, PolicyError
from backuppolicy.core.integrity_schedule import IntegritySlot
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.registry import get_plugin
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.schedule import Cadence, rolling_slots
from backuppolicy.core.targets import BackupTarget, Lease, LeaseRecord
from backuppolicy.notify import Event, EventKind, Heartbeat, Notifier, notify_all
from backuppolicy.workflows import pruning
from backuppolicy.workflows._assemble import build_notifiers, build_targets
from backuppolicy.workflows._audit import audit
from backuppolicy.workflows._common import describe_error, html_table, text_table
from backuppolicy.workflows._logformat import CorruptLogLineWarning
from backuppolicy.workflows.backups import backup
from backuppolicy.workflows.logstores import JsonlLogStore, MemoryLogStore, S3LogStore
from backuppolicy.workflows.testlog import LogEntry, TestLog
from backuppolicy.workflows.verify import (
    integrity_due,
    integrity_plan,
    restore_test,
    sweep_restore_tests,
)

if TYPE_CHECKING:
    import boto3

    from backuppolicy.checks.probes import ProbeLike
    from backuppolicy.core.policy import Policy

__all__ = ["RUN_CHECK", "RunDigest", "default_owner", "lease_for", "run"]

_log = logging.getLogger("backuppolicy.run")

RUN_CHECK: Final = "run"
"""Name of the testing-log entry that records one run (its ``evidence`` says what it did)."""

_RETRY_AFTER: Final = timedelta(days=1)  # a failed restore test or check is retried the next day
_MARGIN: Final = timedelta(hours=1)  # the interval of the calls `run` is designed for
_SWEEP_AGE: Final = "1d"
_SETTLED: Final = frozenset({CheckStatus.PASS, CheckStatus.WARN, CheckStatus.SKIPPED})
# Results that did not meet the check: retried the next day (not every hour), and reported.
_NOT_MET: Final = frozenset({CheckStatus.FAIL, CheckStatus.UNPROVEN})
_SEVERITY: Final = (
    EventKind.BACKUP_FAILED,
    EventKind.COPY_FAILED,
    EventKind.VERIFICATION_FAILED,
    EventKind.PRUNE_FAILED,
    EventKind.OVERDUE,
)


# --------------------------------------------------------------------------------------------
# The digest


def _points(value: Iterable[RecoveryPoint]) -> tuple[RecoveryPoint, ...]:
    return tuple(value)


@attrs.frozen
class RunDigest:
    """What one `run` did, what failed and what is overdue.

    Attributes:
        policy: Name of the policy.
        now: The time the run was made for.
        owner: Who ran it (``user@host pid=... run=...``), as written in the lease.
        held_by: The holder of the lease when another run held it (then nothing was done).
        backups: Points created.
        copies: Tier copies made.
        deleted: Points deleted by pruning.
        swept: Restore-test leftovers removed.
        integrity: Integrity check results of this run.
        restore_tests: Restore test results of this run.
        steps: The steps that ran (``backup``, ``prune``, ``sweep``, ``integrity``,
            ``restore-test``, ``audit``).
        failures: One line per failure.
        overdue: One line per non-compliant audit finding (when the audit ran).
        notified: Whether the digest notification was sent (to at least one notifier).
    """

    policy: str
    now: datetime
    owner: str = ""
    held_by: str | None = None
    backups: tuple[RecoveryPoint, ...] = attrs.field(default=(), converter=_points)
    copies: tuple[RecoveryPoint, ...] = attrs.field(default=(), converter=_points)
    deleted: tuple[RecoveryPoint, ...] = attrs.field(default=(), converter=_points)
    swept: tuple[str, ...] = ()
    integrity: tuple[CheckResult, ...] = ()
    restore_tests: tuple[CheckResult, ...] = ()
    steps: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    overdue: tuple[str, ...] = ()
    notified: bool = False

    @property
    def ok(self) -> bool:
        """Whether the run ran (no other run held the lease) and nothing failed."""
        return self.held_by is None and not self.failures

    def totals(self) -> dict[str, int]:
        """How many of each: backups, copies, deleted, swept, integrity checks, restore tests, failures, overdue."""
        return {
            "backups": len(self.backups),
            "copies": len(self.copies),
            "deleted": len(self.deleted),
            "swept": len(self.swept),
            "integrity_checks": len(self.integrity),
            "restore_tests": len(self.restore_tests),
            "failures": len(self.failures),
            "overdue": len(self.overdue),
        }

    def __repr__(self) -> str:
        totals = ", ".join(f"{k}={v}" for k, v in self.totals().items())
        held = f", held_by={self.held_by!r}" if self.held_by else ""
        return f"<backuppolicy.RunDigest(policy={self.policy!r}{held}, {totals})>"

    def _rows(self) -> list[list[str]]:
        rows = [["did", k.replace("_", " "), str(v)] for k, v in self.totals().items() if v]
        rows += [["failed", "-", line] for line in self.failures]
        rows += [["overdue", "-", line] for line in self.overdue]
        return rows

    _HEADERS = ("", "what", "count / detail")

    def summary(self) -> str:
        """The digest as text: one line, then what failed and what is overdue."""
        when = self.now.isoformat()
        if self.held_by is not None:
            return f"run of policy {self.policy!r} at {when}: skipped, the lease is held by {self.held_by}"
        state = "ok" if self.ok else f"{len(self.failures)} failure(s)"
        steps = ", ".join(self.steps) or "nothing was due"
        title = f"run of policy {self.policy!r} at {when}: {state} (ran: {steps})"
        rows = self._rows()
        return f"{title}\n{text_table(self._HEADERS, rows)}" if rows else title

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return html_table(html.unescape(repr(self)), self._HEADERS, self._rows(), self.summary())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "policy": self.policy,
            "now": self.now.isoformat(),
            "ok": self.ok,
            "owner": self.owner,
            "held_by": self.held_by,
            "steps": list(self.steps),
            "totals": self.totals(),
            "backups": [p.id for p in self.backups],
            "copies": [f"{p.tier}:{p.id}" for p in self.copies],
            "deleted": [p.id for p in self.deleted],
            "swept": list(self.swept),
            "integrity": [r.to_dict() for r in self.integrity],
            "restore_tests": [r.to_dict() for r in self.restore_tests],
            "failures": list(self.failures),
            "overdue": list(self.overdue),
            "notified": self.notified,
        }


# --------------------------------------------------------------------------------------------
# What is due


def _day_index(period: Cadence, now: datetime, tz: str) -> int:
    start = period.period_start(now, tz)
    zone = ZoneInfo(tz)
    return (now.astimezone(zone).date() - start.astimezone(zone).date()).days


def _slot_due(
    *,
    slot: int,
    period: Cadence,
    attempts: Sequence[LogEntry],
    now: datetime,
    tz: str,
) -> bool:
    """Whether one slotted duty (a restore test of an application, an integrity check) is due.

    Due on its slot day of *period* unless an attempt settled it (pass, warn, skipped) in the
    period, and on any day when its last settled attempt would fall out of the rolling window
    of one period within the next hour. A failure is retried a day later, not at every call.
    """
    if any(e.status in _NOT_MET and e.checked_at > now - _RETRY_AFTER for e in attempts):
        return False
    start = period.period_start(now, tz)
    settled = [e for e in attempts if e.status in _SETTLED]
    if not any(e.checked_at >= start for e in settled) and _day_index(period, now, tz) >= slot:
        return True
    window = _span(period).before(now + _MARGIN)
    return window is not None and not any(e.checked_at >= window for e in settled)


def _span(period: Cadence) -> Duration:
    return {
        Cadence.HOUR: Duration(hours=1),
        Cadence.DAY: Duration(days=1),
        Cadence.WEEK: Duration(weeks=1),
        Cadence.MONTH: Duration(months=1),
        Cadence.QUARTER: Duration(months=3),
        Cadence.YEAR: Duration(years=1),
    }[period]


def _application_of(policy: Policy, entry: LogEntry) -> str | None:
    if entry.application:
        return entry.application
    try:
        return policy.target(entry.target).application
    except LookupError:
        return None


def _restore_tests_due(policy: Policy, entries: Sequence[LogEntry], now: datetime) -> list[str]:
    """The applications whose restore test is due at *now* (see the module docstring)."""
    v = policy.verification
    tz = policy.timezone
    applications = list(policy.applications)
    if not applications:
        return []
    tests = [e for e in entries if e.kind is CheckKind.RESTORE_TEST]
    by_app = {app: [e for e in tests if _application_of(policy, e) == app] for app in applications}
    period = v.restore_test_per_application_every
    slots = rolling_slots(applications, period=period) if period is not Cadence.HOUR else {}
    due = [
        app
        for app in applications
        if _slot_due(slot=slots.get(app, 0), period=period, attempts=by_app[app], now=now, tz=tz)
    ]
    quarter = v.restore_test_every
    begin = quarter.period_start(now, tz)
    ran = [e for e in tests if e.status is not CheckStatus.SKIPPED and e.checked_at >= begin]
    recent_failure = any(e.status in _NOT_MET and e.checked_at > now - _RETRY_AFTER for e in tests)
    if (
        not due
        and not ran
        and not recent_failure
        and quarter is not Cadence.HOUR
        and _day_index(quarter, now, tz) >= quarter.min_days // 2
    ):

        def last_pass(app: str) -> tuple[datetime, str]:
            passed = [e.checked_at for e in by_app[app] if e.status is CheckStatus.PASS]
            return (max(passed, default=datetime.min.replace(tzinfo=now.tzinfo)), app)

        due.append(min(applications, key=last_pass))
    return due


def _integrity_due(
    policy: Policy,
    entries: Sequence[LogEntry],
    now: datetime,
    targets: Mapping[str, BackupTarget],
) -> list[str]:
    """The targets with copies due for their integrity check at *now*, in policy order.

    The rolling integrity schedule (`backuppolicy.workflows.verify.integrity_plan`): every copy
    in a covered tier is checked once per integrity window, each on its own day. A copy whose
    check failed less than a day ago is not due again yet (it is retried the next day, not every
    hour); one whose check was skipped (its kind has no integrity check) is not tried again
    within its window. A target with other copies due checks them, and those copies with them.
    """
    plan = integrity_plan(policy, now=now, targets=targets, history=entries)
    tried: dict[tuple[str, str | None], list[LogEntry]] = {}
    for e in entries:
        if e.kind is CheckKind.INTEGRITY and e.status in (*_NOT_MET, CheckStatus.SKIPPED):
            tried.setdefault((e.target, e.point_id), []).append(e)

    def waits(slot: IntegritySlot) -> bool:
        for e in tried.get((slot.target, slot.point_id), ()):
            pause = _RETRY_AFTER if e.status in _NOT_MET else timedelta(slot.window_days)
            if e.checked_at > now - pause and (
                slot.last_checked is None or e.checked_at > slot.last_checked
            ):
                return True
        return False

    wanted = {slot.target for slot in plan if not waits(slot)}
    return [spec.name for spec in policy.targets if spec.name in wanted]


def _per_target(
    policy: Policy, probes: Mapping[str, Sequence[ProbeLike]] | Sequence[ProbeLike] | None
) -> Mapping[str, Sequence[ProbeLike]] | None:
    """Probes by target name (a sequence is for every target)."""
    if probes is None or isinstance(probes, Mapping):
        return probes
    return {spec.name: probes for spec in policy.targets}


def _done_today(entries: Sequence[LogEntry], policy: Policy, now: datetime, step: str) -> bool:
    """Whether a run recorded today (the policy's calendar day) did *step*."""
    start = Cadence.DAY.period_start(now, policy.timezone)
    for e in reversed(entries):  # oldest check first: today's runs are at the end
        if e.checked_at < start:
            return False
        if (
            e.check == RUN_CHECK
            and e.target == policy.name
            and step in (e.result.evidence.get("steps") or ())
        ):
            return True
    return False


# --------------------------------------------------------------------------------------------
# The lease


class _MemoryLease:
    """The lease of a `MemoryLogStore`: one per store, within this process."""

    _held: Final[dict[int, LeaseRecord]] = {}
    _guard: Final = threading.Lock()

    def __init__(self, store: object) -> None:
        self._key = id(store)
        self.record: LeaseRecord | None = None

    @property
    def where(self) -> str:
        return f"memory://{self._key:x}"

    def acquire(self, *, owner: str, now: datetime, ttl: timedelta) -> LeaseRecord:
        with self._guard:
            held = self._held.get(self._key)
            if held is not None and not held.stale(now):
                message = f"{self.where}: the run lease is held by {held.owner!r}"
                raise LeaseHeldError(message, holder=held, where=self.where)
            self.record = self._held[self._key] = LeaseRecord(owner, now, now + ttl)
            return self.record

    def release(self) -> bool:
        with self._guard:
            mine, self.record = self.record, None
            if mine is None or self._held.get(self._key) != mine:
                return False
            del self._held[self._key]
            return True


def lease_for(log: TestLog, policy: Policy) -> Lease:
    """The lease of *policy*'s runs, where its testing log lives.

    A JSON-lines log at ``PATH``: the file ``PATH.<policy>.lease`` (`backuppolicy.local.FileLease`);
    an S3 log at ``s3://bucket/prefix/``: the object ``prefix/_lease/<policy>.lease``
    (`backuppolicy.aws.S3Lease`); a memory log: a lease in this process. Another store may
    offer ``lease(name)``.

    Raises:
        PolicyError: The store offers no lease.
    """
    store = log.store
    if isinstance(store, JsonlLogStore):
        path = store.path.with_name(f"{store.path.name}.{policy.name}.lease")
        lease: Lease = get_plugin("lease", "file")(path)
        return lease
    if isinstance(store, S3LogStore):
        key = f"{store.prefix}_lease/{policy.name}.lease"
        s3_lease: Lease = get_plugin("lease", "s3")(store.bucket, key, backend=store.backend)
        return s3_lease
    if isinstance(store, MemoryLogStore):
        return _MemoryLease(store)
    factory = getattr(store, "lease", None)
    if callable(factory):
        made: Lease = factory(policy.name)
        return made
    raise PolicyError.for_field(
        "log", "a testing log whose store can hold the run lease (a file, S3 or memory)", store
    )


def default_owner() -> str:
    """``user@host pid=<pid> run=<random>``: who holds a lease."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in a container
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()} pid={os.getpid()} run={uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------------------
# The run


@attrs.define
class _Run:
    """The mutable state of one run while it goes through its steps."""

    policy: Policy
    now: datetime
    log: TestLog
    targets: Mapping[str, BackupTarget]
    steps: list[str] = attrs.Factory(list)
    failures: list[tuple[EventKind, str]] = attrs.Factory(list)
    backups: list[RecoveryPoint] = attrs.Factory(list)
    copies: list[RecoveryPoint] = attrs.Factory(list)
    deleted: list[RecoveryPoint] = attrs.Factory(list)
    swept: list[str] = attrs.Factory(list)
    integrity: list[CheckResult] = attrs.Factory(list)
    restore_tests: list[CheckResult] = attrs.Factory(list)
    overdue: list[str] = attrs.Factory(list)

    def step(self, name: str, kind: EventKind, action: Callable[[], None]) -> None:
        """Run one step; an error fails the step, never the steps after it."""
        self.steps.append(name)
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - one failing step must not stop the others
            _log.error("run of %s: %s failed: %s", self.policy.name, name, describe_error(exc))
            self.failures.append((kind, f"{name}: {describe_error(exc)}"))

    def checks_failed(self, results: Iterable[CheckResult]) -> None:
        for r in results:
            if r.status in _NOT_MET:
                where = f" {r.tier}" if r.tier else ""
                line = f"{r.check} of {r.target}{where}: {r.details}"
                self.failures.append((EventKind.VERIFICATION_FAILED, line))


def _open_log(log: TestLog | str | None, policy: Policy, **options: Any) -> TestLog:
    if isinstance(log, TestLog):
        return log
    url = log if log is not None else policy.run.log
    if not url:
        raise PolicyError.for_field(
            "run.log", "a testing log (the policy's run.log, or log=) to compute what is due", url
        )
    s3_options = {k: v for k, v in options.items() if v is not None}
    return TestLog.open(url, **(s3_options if str(url).startswith("s3://") else {}))


def _heartbeat(policy: Policy, *, heartbeat: Heartbeat | bool | None) -> Heartbeat | None:
    if isinstance(heartbeat, Heartbeat):
        return heartbeat
    if heartbeat is False or policy.run.heartbeat is None:
        return None
    return Heartbeat(policy.run.heartbeat)


def run(
    policy: Policy,
    *,
    now: datetime,
    log: TestLog | str | None = None,
    targets: Mapping[str, BackupTarget] | None = None,
    notifiers: Sequence[Notifier] | None = None,
    heartbeat: Heartbeat | bool | None = None,
    lease: Lease | None = None,
    owner: str | None = None,
    probes: Mapping[str, Sequence[ProbeLike]] | Sequence[ProbeLike] | None = None,
    endpoint_resolver: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]] | None = None,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    restore_tests: bool = True,
) -> RunDigest:
    """Do everything that is due at *now* under *policy*, once; safe to call every hour.

    See the module docstring for the steps and what makes each due. Another run holding the
    lease makes this one do nothing (`RunDigest.held_by`); a step that fails is in
    `RunDigest.failures` and the steps after it still run. Failures and overdue findings go
    out in one digest notification (`EventKind` of the worst of them) to the notifiers
    subscribed to any of their kinds; nothing is sent when all is well.

    Args:
        policy: The policy.
        now: The time of the run (timezone-aware).
        log: The testing log: a `TestLog` or its URL (default: the policy's ``run.log``).
        targets: The targets by name (default: built from the policy).
        notifiers: Who gets the digest (default: the policy's notifications).
        heartbeat: A `Heartbeat`, ``False`` for none (default: the policy's ``run.heartbeat``).
        lease: The lease (default: `lease_for` the log).
        owner: Who runs (default: ``user@host pid=... run=...``).
        probes: Probes of the restore tests, per target name or for every target.
        endpoint_resolver: Endpoint resolvers of the restore tests (see `backuppolicy.RestoreTest`).
        session: `boto3.Session` for the targets, the S3 log and the sweep.
        endpoint_url: AWS endpoint (moto server, LocalStack).
        restore_tests: ``False`` leaves the restore tests to another engine: the Step Functions
            state machine of ``backuppolicy export cloudformation`` runs them there, because an
            RDS restore outlasts Lambda's 15 minutes. They are still audited (a quarter without
            one is overdue in the digest).

    Raises:
        PolicyError: No testing log is given, or its store cannot hold a lease.
    """
    now = ensure_aware(now, field="now")
    if not isinstance(restore_tests, bool):
        raise PolicyError.for_field("restore_tests", "true or false", restore_tests)
    the_log = _open_log(log, policy, session=session, endpoint_url=endpoint_url)
    the_lease = lease if lease is not None else lease_for(the_log, policy)
    who = owner or default_owner()
    ttl = now - (policy.run.lease_timeout.before(now) or now - timedelta(hours=6))
    try:
        the_lease.acquire(owner=who, now=now, ttl=ttl)
    except LeaseHeldError as exc:
        holder = exc.holder.owner if isinstance(exc.holder, LeaseRecord) else str(exc)
        _log.warning("run of %s skipped: %s", policy.name, exc)
        return RunDigest(policy=policy.name, now=now, owner=who, held_by=holder)
    pings = _heartbeat(policy, heartbeat=heartbeat)
    if pings is not None:
        pings.start()
    try:
        digest = _run_steps(
            policy,
            now=now,
            log=the_log,
            targets=targets,
            notifiers=notifiers,
            probes=probes,
            endpoint_resolver=endpoint_resolver,
            session=session,
            endpoint_url=endpoint_url,
            owner=who,
            restore_tests=restore_tests,
        )
    except BaseException:
        if pings is not None:
            pings.failure()
        raise
    finally:
        if not the_lease.release():
            _log.warning("run of %s: the lease was taken over before the run ended", policy.name)
    if pings is not None:
        (pings.success if digest.ok else pings.failure)()
    return digest


def _run_steps(  # noqa: C901, PLR0915 - the steps of one run, side by side
    policy: Policy,
    *,
    now: datetime,
    log: TestLog,
    targets: Mapping[str, BackupTarget] | None,
    notifiers: Sequence[Notifier] | None,
    probes: Mapping[str, Sequence[ProbeLike]] | Sequence[ProbeLike] | None,
    endpoint_resolver: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]] | None,
    session: boto3.Session | None,
    endpoint_url: str | None,
    owner: str,
    restore_tests: bool = True,
) -> RunDigest:
    built = (
        targets
        if targets is not None
        else build_targets(policy, session=session, endpoint_url=endpoint_url)
    )
    state = _Run(policy, now, log, built)
    since = Duration(years=1).before(now - timedelta(days=8))
    with warnings.catch_warnings():  # a damaged log line is the audit's finding, not ours
        warnings.simplefilter("ignore", CorruptLogLineWarning)
        entries = list(log.entries(since=since, until=now + timedelta(microseconds=1)))

    # Each target's points after the backups (the run listed them): the prune plans from these.
    handed: dict[str, list[RecoveryPoint]] = {}

    def do_backup() -> None:
        report = backup(policy, now=now, targets=built, notifiers=[])
        handed.update(report.listed())
        state.backups.extend(report.created)
        state.copies.extend(report.copies)
        state.swept.extend(report.swept)
        for failed in report.failed:
            kind = EventKind.BACKUP_FAILED if failed.point is None else EventKind.COPY_FAILED
            state.failures.append((kind, f"backup of {failed.target}: {failed.error}"))

    state.step("backup", EventKind.BACKUP_FAILED, do_backup)

    def do_prune() -> None:
        plan = pruning.plan_retention(policy, now=now, targets=built, listed=handed)
        applied = pruning.apply(plan)
        state.deleted.extend(applied.deleted)
        for name, error in dict(plan.errors).items():
            state.failures.append((EventKind.PRUNE_FAILED, f"prune of {name}: {error}"))
        for outcome in applied.failed:
            line = f"prune of {outcome.point.target}: {outcome.point.id}: {outcome.reason}"
            state.failures.append((EventKind.PRUNE_FAILED, line))

    if state.backups or state.copies or not _done_today(entries, policy, now, "prune"):
        state.step("prune", EventKind.PRUNE_FAILED, do_prune)

    def do_sweep() -> None:
        found = sweep_restore_tests(
            built, older_than=_SWEEP_AGE, now=now, session=session, endpoint_url=endpoint_url
        )
        state.swept.extend(f"{s.kind} {s.id}" for s in found if s.action == "deleted")
        for item in found:
            if item.action == "failed":
                line = f"sweep of {item.kind} {item.id}: {item.reason}"
                state.failures.append((EventKind.VERIFICATION_FAILED, line))

    if not _done_today(entries, policy, now, "sweep"):
        state.step("sweep", EventKind.VERIFICATION_FAILED, do_sweep)

    due_targets = _integrity_due(policy, entries, now, built)

    def do_integrity() -> None:
        results = integrity_due(
            policy,
            now=now,
            targets=built,
            log=log,
            probes=_per_target(policy, probes),
            endpoint_resolver=endpoint_resolver,
            only=due_targets,
            notifiers=[],
            ran_by=owner,
        )
        state.integrity.extend(results)
        state.checks_failed(results)

    if due_targets:
        state.step("integrity", EventKind.VERIFICATION_FAILED, do_integrity)

    applications = _restore_tests_due(policy, entries, now) if restore_tests else []

    def do_restore_tests() -> None:
        for application in applications:
            results = restore_test(
                policy,
                now=now,
                application=application,
                targets=built,
                probes=probes,
                endpoint_resolver=endpoint_resolver,
                log=log,
                notifiers=[],
                only=[s.name for s in policy.targets_for(application) if s.name in built],
            )
            state.restore_tests.extend(results)
            state.checks_failed(results)

    if applications:
        state.step("restore-test", EventKind.VERIFICATION_FAILED, do_restore_tests)

    def do_audit() -> None:
        report = audit(policy, now=now, targets=built, log=log, notifiers=[], coverage=False)
        state.overdue.extend(
            f"{f.clause.key} {f.subject}: {f.detail}" for f in report.findings if not f.compliant
        )

    if not _done_today(entries, policy, now, "audit"):
        state.step("audit", EventKind.OVERDUE, do_audit)

    notified = _send_digest(policy, state, notifiers)
    digest = RunDigest(
        policy=policy.name,
        now=now,
        owner=owner,
        backups=state.backups,
        copies=state.copies,
        deleted=state.deleted,
        swept=tuple(state.swept),
        integrity=tuple(state.integrity),
        restore_tests=tuple(state.restore_tests),
        steps=tuple(state.steps),
        failures=tuple(line for _, line in state.failures),
        overdue=tuple(state.overdue),
        notified=notified,
    )
    if _did_something(digest):
        _record(log, policy, digest)
    return digest


def _did_something(digest: RunDigest) -> bool:
    """Whether *digest* is worth a log entry: a step besides the backup pass ran, or anything happened.

    An hourly call that finds nothing due (the backup pass creates nothing) writes nothing, so
    the testing log grows with what was done, not with the number of calls.
    """
    return set(digest.steps) != {"backup"} or any(digest.totals().values())


def _record(log: TestLog, policy: Policy, digest: RunDigest) -> None:
    """Append the run's own entry to the testing log (what it did, for the next run's "due")."""
    result = CheckResult(
        check=RUN_CHECK,
        status=CheckStatus.PASS if digest.ok else CheckStatus.FAIL,
        target=policy.name,
        checked_at=digest.now,
        kind=CheckKind.VERIFICATION,
        details=digest.summary().splitlines()[0],
        issues=digest.failures,
        evidence={"steps": list(digest.steps), **digest.totals()},
        ran_by=digest.owner,
    )
    try:
        log.record(result)
    except Exception as exc:  # noqa: BLE001 - the run itself is done; say so loudly
        _log.error("run of %s: recording the run failed: %s", policy.name, describe_error(exc))


def _send_digest(policy: Policy, state: _Run, notifiers: Sequence[Notifier] | None) -> bool:
    """One event for the whole run, if anything failed or is overdue; whether it was sent."""
    kinds = {kind for kind, _ in state.failures} | ({EventKind.OVERDUE} if state.overdue else set())
    if not kinds:
        return False
    worst = next(kind for kind in _SEVERITY if kind in kinds)
    if notifiers is None:
        wanted = {kind.value for kind in kinds}
        subscribed = attrs.evolve(
            policy, notifications=[n for n in policy.notifications if wanted & set(n.on)]
        )
        chosen: Sequence[Notifier] = build_notifiers(subscribed)
    else:
        chosen = notifiers
    failures = [line for _, line in state.failures]
    lines = [*(f"failed: {line}" for line in failures), *(f"overdue: {o}" for o in state.overdue)]
    totals = (
        f"{len(state.backups)} backup(s), {len(state.copies)} copy(ies), "
        f"{len(state.deleted)} deleted, {len(state.integrity)} integrity check(s), "
        f"{len(state.restore_tests)} restore test(s); {len(failures)} failed, "
        f"{len(state.overdue)} overdue"
    )
    event = Event(
        kind=worst,
        policy=policy.name,
        target=f"{len(failures)} failure(s), {len(state.overdue)} overdue",
        message=f"run digest: {totals}",
        error="\n".join(lines) or None,
        at=state.now,
        details={
            "failed": len(failures),
            "overdue": len(state.overdue),
            "steps": ", ".join(state.steps),
        },
    )
    sent = notify_all(chosen, event)
    return len(sent) < len(chosen)
