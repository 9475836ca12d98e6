"""Run a policy's backups: scheduled backups and tier copies, and manual backups.

These functions are backend-agnostic: they drive any `~backuppolicy.core.targets.BackupTarget`.
By default they build the targets from the policy (`build_targets`); pass ``targets=`` to use
your own (for tests, `backuppolicy.testing.MemoryTarget`).

Example:
    >>> from datetime import datetime, UTC
    >>> import backuppolicy as bp
    >>> from backuppolicy.testing import MemoryTarget
    >>> policy = bp.Policy.from_dict({
    ...     "name": "demo", "schedule": {"every": "day", "at": "04:00"},
    ...     "retention": {"max_age": "35d"},
    ...     "targets": [{"name": "db", "kind": "testing:memory", "application": "shop"}],
    ... })
    >>> targets = {"db": MemoryTarget("db", policy="demo")}
    >>> report = bp.backup(policy, now=datetime(2026, 11, 26, 4, 10, tzinfo=UTC), targets=targets)
    >>> report
    <backuppolicy.RunReport(targets=1, created=1, copies=0, failed=0)>
    >>> plan = bp.plan_retention(policy, now=datetime(2026, 11, 26, 5, 0, tzinfo=UTC), targets=targets)
    >>> bp.apply(plan).deleted
    []
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import attrs

from backuppolicy.checks._declared import FINGERPRINT_ERROR_TAG, record_fingerprints
from backuppolicy.core.durations import format_duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.locks import LockablePoints
from backuppolicy.core.model import RecoveryPoint, Status, ensure_aware
from backuppolicy.core.naming import manual_token, scheduled_token
from backuppolicy.core.policy import Policy, TargetSpec, TierSpec
from backuppolicy.core.schedule import Cadence, Schedule, rolling_slots
from backuppolicy.core.targets import BackupTarget, Destination
from backuppolicy.notify import Event, EventKind, Notifier, NotifierFailure, notify_all
from backuppolicy.workflows._assemble import (
    build_notifiers,
    build_targets,
    run_specs,
    select_specs,
    source_tier_of,
)
from backuppolicy.workflows._common import (
    Progress,
    describe_error,
    html_table,
    newest_point,
    text_table,
)
from backuppolicy.workflows.pruning import tier_retention

__all__ = [
    "Progress",
    "RunReport",
    "TargetRun",
    "backup",
    "backup_now",
    "build_notifiers",
    "build_targets",
]

_log = logging.getLogger("backuppolicy")

TAG_REQUESTED_BY = "requested-by"
"""Tag of manual backups: who asked. Outside ``backuppolicy:``, which targets reserve for their own keys."""


# --------------------------------------------------------------------------------------------
# Backups


@attrs.frozen
class TargetRun:
    """What one backup run did for one target.

    Attributes:
        target: Name of the target.
        point: The point created (or ``None`` when nothing was due or the backup failed).
        copies: Copies made to other tiers.
        skipped: Why no backup was taken (``"not due: ..."``), if none was.
        error: The error, if the backup or a copy failed.
        duration: Seconds the target took.
        swept: Crash leftovers of earlier runs removed before the backup (temporary files,
            archives without a sidecar), for targets that have ``sweep_incomplete``.
        points: The target's points after the run, as a listing made then would show them:
            the listing the run made before the backup, with the point and the copies it
            made (each as last read: after its lock, or re-read when it was pending) in
            place of or after the listed ones. The order is the listing's, a new point
            placed after its tier's and kind's; as with any listing, use
            `RecoveryPoint.order_key` to order points, not their position. ``None`` when the run
            cannot vouch for a complete listing: the listing failed, or the backup, a copy
            or a lock failed (a failed step may leave something the run never saw).
            `RunReport.listed` hands these on to `plan_retention` and `integrity_due`.
    """

    target: str
    point: RecoveryPoint | None = None
    copies: tuple[RecoveryPoint, ...] = ()
    skipped: str | None = None
    error: str | None = None
    duration: float = 0.0
    swept: tuple[str, ...] = ()
    points: tuple[RecoveryPoint, ...] | None = attrs.field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the run had no error."""
        return self.error is None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "target": self.target,
            "point": self.point.id if self.point else None,
            "copies": [f"{c.tier}:{c.id}" for c in self.copies],
            "skipped": self.skipped,
            "error": self.error,
            "duration": round(self.duration, 3),
            "swept": list(self.swept),
        }


@attrs.frozen
class RunReport:
    """The result of `backup`: one `TargetRun` per target.

    Attributes:
        policy: Name of the policy.
        now: The time the run was made for.
        runs: One entry per target, in policy order.
        notify_failures: Notifiers that failed to deliver (the failures themselves are in `runs`).
    """

    policy: str
    now: datetime
    runs: tuple[TargetRun, ...]
    notify_failures: tuple[NotifierFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every target ran without error."""
        return all(run.ok for run in self.runs)

    @property
    def failed(self) -> list[TargetRun]:
        """The runs that had an error."""
        return [run for run in self.runs if not run.ok]

    @property
    def created(self) -> list[RecoveryPoint]:
        """Every point created by the run."""
        return [run.point for run in self.runs if run.point is not None]

    @property
    def copies(self) -> list[RecoveryPoint]:
        """Every tier copy made by the run."""
        return [copy for run in self.runs for copy in run.copies]

    @property
    def swept(self) -> list[str]:
        """Every crash leftover of earlier runs that the run removed."""
        return [item for run in self.runs for item in run.swept]

    def listed(self) -> dict[str, list[RecoveryPoint]]:
        """The points of each target after the run (`TargetRun.points`), by target name.

        Only the targets the run can vouch for are in it: a target whose listing, backup,
        copy or lock failed is left out, so `plan_retention` and `integrity_due` list it
        themselves (and a failed listing there deletes nothing). Pass it as their
        ``listed=`` to save listing every target again right after the backups; a listing
        that went stale since is safe, because `apply` re-reads every point and the newest
        of each tier before deleting anything.

        Example:
            >>> from datetime import datetime, UTC
            >>> import backuppolicy as bp
            >>> from backuppolicy.testing import MemoryTarget
            >>> policy = bp.Policy.from_dict({
            ...     "name": "demo", "schedule": {"every": "day", "at": "04:00"},
            ...     "retention": {"max_age": "35d"},
            ...     "targets": [{"name": "db", "kind": "testing:memory", "application": "shop"}],
            ... })
            >>> targets = {"db": MemoryTarget("db", policy="demo")}
            >>> now = datetime(2026, 11, 26, 4, 10, tzinfo=UTC)
            >>> report = bp.backup(policy, now=now, targets=targets)
            >>> listed = report.listed()
            >>> [p.id for p in listed["db"]] == [p.id for p in targets["db"].list_points()]
            True
            >>> plan = bp.plan_retention(policy, now=now, targets=targets, listed=listed)
            >>> len(plan.keep), len(plan.delete)
            (1, 0)
        """
        return {run.target: list(run.points) for run in self.runs if run.points is not None}

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.RunReport(targets={len(self.runs)}, created={len(self.created)}, "
            f"copies={len(self.copies)}, failed={len(self.failed)})>"
        )

    def counts(self) -> str:
        """One line of counts: ``"3 targets: 2 backed up, 1 copy, 0 failed"``."""
        targets = len(self.runs)
        copies = len(self.copies)
        return (
            f"{targets} target{'s' if targets != 1 else ''}: {len(self.created)} backed up, "
            f"{copies} cop{'ies' if copies != 1 else 'y'}, {len(self.failed)} failed"
        )

    def _rows(self) -> list[list[str]]:
        return [
            [
                run.target,
                run.point.id if run.point else "-",
                ", ".join(f"{c.tier}:{c.id}" for c in run.copies) or "-",
                format_duration(run.duration),
                run.error or run.skipped or "ok",
            ]
            for run in self.runs
        ]

    _HEADERS = ("target", "backup", "copies", "took", "result")

    def summary(self) -> str:
        """A text table of the run."""
        title = f"backup run of policy {self.policy!r} at {self.now.isoformat()}: {self.counts()}"
        return f"{title}\n{text_table(self._HEADERS, self._rows())}"

    def _repr_html_(self) -> str:
        return html_table(repr(self), self._HEADERS, self._rows(), self.summary())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "policy": self.policy,
            "now": self.now.isoformat(),
            "ok": self.ok,
            "runs": [run.to_dict() for run in self.runs],
            "notify_failures": [str(f.error) for f in self.notify_failures],
        }


def _copy_due(
    policy: Policy, tier: TierSpec, target: str, last_copy: RecoveryPoint | None, now: datetime
) -> bool:
    """Whether *target* needs a copy in *tier* at *now*.

    A cadence tier (``every: week``) wants one copy per period; with the policy's rolling period
    equal to that cadence, the copy of each target waits for its own slot day in the period, so the
    weekly off-site copies are spread over the week (seed §1.5) instead of all landing on one day.
    """
    tz = policy.timezone
    if isinstance(tier.every, Schedule):
        run = tier.every.last_due(now)
        return run is not None and (last_copy is None or last_copy.created_at < run)
    start = tier.every.period_start(now, tz)
    if last_copy is not None and last_copy.created_at >= start:
        return False
    if policy.rolling_period is tier.every and tier.every in (Cadence.WEEK, Cadence.MONTH):
        names = [t.name for t in policy.targets]
        names += [] if target in names else [target]  # a target a selector found
        slots = rolling_slots(names, period=tier.every)
        zone = ZoneInfo(tz)  # count days in the policy's calendar (start is in UTC)
        day_index = (now.astimezone(zone).date() - start.astimezone(zone).date()).days
        return day_index >= slots.get(target, 0)
    return True


def _copy_wanted(
    policy: Policy,
    tier: TierSpec,
    target: str,
    *,
    last_copy: RecoveryPoint | None,
    source: RecoveryPoint,
    now: datetime,
) -> bool:
    """Whether to copy *source* to *tier* at *now*: a copy is due and *source* is of its period.

    A copy is due by `_copy_due`; for a cadence tier (``every: week``) *source* must also have
    been made in the current period. A copy keeps its source's time, so a copy of the last period's point would not count for
    this period: a call before the period's first backup (an hourly run at 00:05 on Monday)
    would copy Sunday's point, and the call after the backup Monday's as well.
    """
    if not _copy_due(policy, tier, target, last_copy, now):
        return False
    if not isinstance(tier.every, Schedule) and source.created_at < tier.every.period_start(
        now, policy.timezone
    ):
        _log.info(
            "target %s: copy to %s waits for a backup of this period (newest: %s)",
            target,
            tier.name,
            source.id,
        )
        return False
    return True


def _run_target(
    policy: Policy,
    spec: TargetSpec,
    target: BackupTarget,
    now: datetime,
    *,
    force: bool,
    reason: str,
    notify: Callable[[Event], None],
) -> TargetRun:
    started = time.monotonic()
    source_tier = source_tier_of(policy, spec)
    schedule = policy.schedule_for(spec)
    swept = _sweep(spec, target)
    try:
        points = list(target.list_points())
    except Exception as exc:  # noqa: BLE001 - one failing target must not stop the others
        return _failed(
            policy=policy,
            spec=spec,
            exc=exc,
            started=started,
            notify=notify,
            now=now,
            kind=EventKind.BACKUP_FAILED,
            stage="listing",
        )
    newest = newest_point(points, source_tier)
    run_at = schedule.last_due(now)
    made = _Reads()
    point: RecoveryPoint | None = None
    source: RecoveryPoint | None
    lock_errors: list[str] = []
    skipped: str | None = None
    if force or (run_at is not None and (newest is None or newest.created_at < run_at)):
        # Named after its slot when scheduled, after the time it was taken when forced
        # (core/naming.py states the rule).
        token_time = run_at if run_at is not None and not force else now
        token = scheduled_token(policy.name, spec.name, token_time)
        fingerprints = _fingerprints(spec)
        try:
            point = target.create_backup(
                reason=reason, token=token, **({"tags": fingerprints} if fingerprints else {})
            )
        except Exception as exc:  # noqa: BLE001
            return _failed(
                policy=policy,
                spec=spec,
                exc=exc,
                started=started,
                notify=notify,
                now=now,
                kind=EventKind.BACKUP_FAILED,
                stage="backup",
            )
        source = point
        lock_errors.extend(_lock(policy, spec, target, source_tier, point, made=made))
    else:
        skipped = f"not due: newest backup {newest.created_at.isoformat()}" if newest else "not due"
        source = newest
    copies: list[RecoveryPoint] = []
    errors: list[str] = lock_errors
    for tier in policy.copy_tiers_for(spec):
        last_copy = newest_point(points, tier.name, pending=True)  # a copy in flight counts
        if source is None or not _copy_wanted(
            policy, tier, spec.name, last_copy=last_copy, source=source, now=now
        ):
            continue
        if source.status is not Status.COMPLETED:
            refreshed = target.refresh(source)
            made.add(refreshed)
            if refreshed is not None and refreshed.is_good:
                source = refreshed
            elif newest is not None and not _copy_due(policy, tier, spec.name, newest, now):
                source = newest  # snapshots start pending: copy the newest completed one
            else:  # none completed in this period yet: the copy stays due for the next run
                _log.info(
                    "target %s: copy to %s deferred: %s is pending", spec.name, tier.name, source.id
                )
                continue
        destination = Destination(
            tier=tier.name,
            region=tier.location.get("region"),
            kms_key_id=tier.location.get("kms_key_id"),
            account=tier.account_id,
            store=_copy_store(tier, spec),
        )
        try:
            copied = target.copy(source, destination)
            copies.append(copied)
            errors.extend(_lock(policy, spec, target, tier.name, copied, made=made))
        except Exception as exc:  # noqa: BLE001
            message = f"copy to {tier.name}: {type(exc).__name__}: {exc}"
            errors.append(message)
            notify(
                Event(
                    kind=EventKind.COPY_FAILED,
                    policy=policy.name,
                    target=spec.name,
                    message=f"copy of {source.id} to tier {tier.name} failed",
                    error=f"{type(exc).__name__}: {exc}",
                    at=now,
                    details={"tier": tier.name, "point": source.id},
                )
            )
    return TargetRun(
        target=spec.name,
        point=point,
        copies=tuple(copies),
        skipped=skipped,
        error="; ".join(errors) or None,
        duration=time.monotonic() - started,
        swept=swept,
        points=made.listing(points, failed=bool(errors)),
    )


@attrs.define
class _Reads:
    """What a run made or re-read (points, copies, locked points): the last read of each."""

    last: dict[tuple[str, str], RecoveryPoint] = attrs.Factory(dict)

    def add(self, read: RecoveryPoint | None) -> None:
        """Record *read* (``None``: a point re-read after it was gone, nothing to record)."""
        if read is not None:
            self.last[(read.tier, read.id)] = read

    def listing(
        self, listed: Sequence[RecoveryPoint], *, failed: bool
    ) -> tuple[RecoveryPoint, ...] | None:
        """*listed* with what was read since, as a listing would show it; ``None`` if *failed*.

        A point already listed (an idempotent backup or copy that found its earlier self, a
        pending point re-read) takes its listed place; a new one goes after the last listed
        point of its tier, kind and location (a listing streams region by region, kind by
        kind), else after the last of its tier and kind, else at the end.
        """
        if failed:
            return None
        out = [self.last.get((p.tier, p.id), p) for p in listed]
        known = {(p.tier, p.id) for p in listed}
        for key, point in self.last.items():
            if key in known:
                continue
            same = [i for i, p in enumerate(out) if (p.tier, p.kind) == (point.tier, point.kind)]
            here = [i for i in same if out[i].location == point.location]
            out.insert(max(here or same or [len(out) - 1]) + 1, point)
        return tuple(out)


def _fingerprints(spec: TargetSpec) -> dict[str, str]:
    """The fingerprint tags of the backup about to be taken (queries run on the source).

    Their values go with the point, for the restore tests to compare; a failure is recorded
    on the point (and logged), never fatal to the backup.
    """
    fingerprints = record_fingerprints(spec)
    if FINGERPRINT_ERROR_TAG in fingerprints:
        _log.warning(
            "target %s: fingerprints not taken: %s", spec.name, fingerprints[FINGERPRINT_ERROR_TAG]
        )
    return fingerprints


def _lock(
    policy: Policy,
    spec: TargetSpec,
    target: BackupTarget,
    tier: str,
    point: RecoveryPoint,
    *,
    made: _Reads,
) -> list[str]:
    """Lock *point* as its tier's `TierLock` says; the errors (a lock that failed), if any.

    *point*, the run's new backup or copy, goes to *made*, and after it the point
    `lock_point` re-read after locking.

    The lock runs from the point's ``created_at`` for the tier's lock duration, so it expires
    when the tier's retention would delete the point.
    """
    made.add(point)
    tier_spec = next((t for t in policy.tiers if t.name == tier), None)
    if tier_spec is None or tier_spec.lock is None or not tier_spec.lock.enabled:
        return []
    lock = tier_spec.lock.point_lock(tier_retention(policy, spec, tier), point.created_at)
    if lock is None:  # pragma: no cover - an enabled lock always has a length (policy check)
        return []
    if not isinstance(target, LockablePoints):
        why = "this kind cannot lock its points; use the aws-backup kind with a vault lock"
        return [f"lock of {point.id} (tier {tier}): {why}, or set the tier's lock to none"]
    try:
        locked = target.lock_point(point, lock, cool_off=tier_spec.lock.cool_off)
    except Exception as exc:  # noqa: BLE001 - reported on the run, the backup itself is kept
        _log.error("target %s: locking %s failed: %s", spec.name, point.id, exc)
        return [f"lock of {point.id} (tier {tier}): {describe_error(exc)}"]
    made.add(locked if isinstance(locked, RecoveryPoint) else None)
    return []


def _sweep(spec: TargetSpec, target: BackupTarget) -> tuple[str, ...]:
    """Remove the target's crash leftovers of earlier runs, if it can (``sweep_incomplete``).

    Only leftovers that no running job can own are removed (old and unlocked; the target
    decides). A failing sweep is logged and never fails the backup.
    """
    sweeper = getattr(target, "sweep_incomplete", None)
    if not callable(sweeper):
        return ()
    try:
        removed = tuple(str(item) for item in sweeper())
    except Exception as exc:  # noqa: BLE001 - leftovers stay for the next run
        _log.warning(
            "target %s: sweeping crash leftovers failed: %s", spec.name, describe_error(exc)
        )
        return ()
    if removed:
        _log.warning(
            "target %s: removed %d crash leftovers of earlier runs: %s",
            spec.name,
            len(removed),
            ", ".join(removed),
        )
    return removed


def _copy_store(tier: TierSpec, spec: TargetSpec) -> str | None:
    """The store URL of a copy tier, for targets that copy into stores (directories, S3 buckets).

    Snapshot targets copy by region and get no store.
    """
    if spec.kind in {"rds-instance", "aurora-cluster", "ec2-instance", "ebs-volume"}:
        return None
    store = tier.location.get("store")
    return str(store) if store else None


def _failed(
    *,
    policy: Policy,
    spec: TargetSpec,
    exc: BaseException,
    started: float,
    notify: Callable[[Event], None],
    now: datetime,
    kind: EventKind,
    stage: str,
) -> TargetRun:
    error = f"{stage}: {type(exc).__name__}: {exc}"
    _log.error("target %s: %s", spec.name, error)
    notify(
        Event(
            kind=kind,
            policy=policy.name,
            target=spec.name,
            message=f"{stage} of {spec.name} failed",
            error=f"{type(exc).__name__}: {exc}",
            at=now,
        )
    )
    return TargetRun(target=spec.name, error=error, duration=time.monotonic() - started)


def backup(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    only: Iterable[str] | None = None,
    notifiers: Sequence[Notifier] | None = None,
    max_workers: int = 4,
    force: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Run the due backups of every target, then the tier copies that are due.

    A target is due when its schedule has a run at or before *now* and its newest completed
    point in the source tier is older than that run. Its backup uses a token derived from the
    scheduled run, so re-running the job (after a crash, or twice by mistake) makes no
    duplicate, and the backup is named after that run, its slot: a job at 03:17 under a
    daily 04:00 schedule fills the previous day's 04:00 slot (`backuppolicy.core.naming`;
    with *force*, the backup is named after *now*). Copy tiers get a copy once per cadence period (spread over the period by the
    rolling spread when the policy has one). Targets run concurrently (*max_workers*); one
    failing target does not stop the others, and each failure is notified. Each target is
    listed once, before its backup; `RunReport.listed` hands that listing on (with what the
    run made) to `plan_retention` and `integrity_due`.

    Args:
        policy: The policy to run.
        now: The time of the run (timezone-aware).
        targets: The targets by name (default: `build_targets` of *policy*).
        only: Names of the targets to run (default: all enabled).
        notifiers: Who hears about failures (default: the policy's ``notifications``).
        max_workers: Targets backed up at the same time.
        force: Take a backup even when none is due.
        progress: Called as ``progress("backup", done, total)`` after each target.
    """
    ensure_aware(now, field="now")
    specs = select_specs(policy, only)
    built = targets if targets is not None else build_targets(policy, only=[s.name for s in specs])
    specs = run_specs(specs, built)
    notify_failures: list[NotifierFailure] = []

    def notify(event: Event) -> None:
        chosen = notifiers if notifiers is not None else build_notifiers(policy, event.kind)
        notify_failures.extend(notify_all(chosen, event))

    def run(spec: TargetSpec) -> TargetRun:
        target = built.get(spec.name)
        if target is None:
            return TargetRun(target=spec.name, error=f"no target object for {spec.name!r}")
        return _run_target(
            policy, spec, target, now, force=force, reason="scheduled", notify=notify
        )

    results: list[TargetRun] = []
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        for done, result in enumerate(pool.map(run, specs), start=1):
            results.append(result)
            if progress is not None:
                progress("backup", done, len(specs))
    return RunReport(
        policy=policy.name, now=now, runs=tuple(results), notify_failures=tuple(notify_failures)
    )


def backup_now(
    policy: Policy,
    target: str,
    *,
    reason: str,
    requested_by: str | None = None,
    now: datetime | None = None,
    targets: Mapping[str, BackupTarget] | None = None,
    token: str | None = None,
) -> RecoveryPoint:
    """Take a manual backup of one target now (seed §1.3, §6).

    The point's ``backuppolicy:reason`` tag is ``manual: <reason>`` (scheduled points say
    ``scheduled``), and *requested_by* is recorded in the ``requested-by`` tag, so manual
    points are never confused with scheduled ones. Retention treats them like any other point.
    The point is named after the time it was taken (*now*), `backuppolicy.core.naming`.

    Raises:
        PolicyError: *target* is not in the policy, or *reason* is empty.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise PolicyError.for_field("reason", "a non-empty reason for the manual backup", reason)
    spec = policy.target(target)
    if spec.selector is not None:
        raise PolicyError.for_field(
            "target",
            "a target of one resource (a selector target stands for what it finds: back them "
            "all up with backup(..., only=[target], force=True))",
            target,
        )
    built = targets if targets is not None else build_targets(policy, only=[spec.name])
    when = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
    tags = {TAG_REQUESTED_BY: requested_by} if requested_by else {}
    tags.update(_fingerprints(spec))  # a manual backup records its fingerprints too
    return built[spec.name].create_backup(
        reason=f"manual: {reason.strip()}",
        tags=tags,
        token=token or manual_token(spec.name, when),
    )
