"""Run a policy: backups and tier copies, manual backups, retention (plan, then apply), holds.

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

import html
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from backuppolicy.core.exceptions import (
    BackupPolicyError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    short_repr,
)
from backuppolicy.core.model import LegalHold, RecoveryPoint, Status, ensure_aware
from backuppolicy.core.policy import Policy, TargetSpec, TierSpec
from backuppolicy.core.resolution import get_resolver, needs_resolver, stands_for_itself
from backuppolicy.core.retention import RetentionPlan, RetentionRule
from backuppolicy.core.schedule import Cadence, Schedule, rolling_slots
from backuppolicy.core.targets import BackupTarget, Destination, get_target_class
from backuppolicy.notify import (
    Event,
    EventKind,
    LogNotifier,
    Notifier,
    NotifierFailure,
    SnsNotifier,
    WebhookNotifier,
    notify_all,
)

__all__ = [
    "ApplyReport",
    "DeleteOutcome",
    "Progress",
    "RunReport",
    "TargetRun",
    "apply",
    "backup",
    "backup_now",
    "build_notifiers",
    "build_targets",
    "holds",
    "place_hold",
    "plan_retention",
    "release_hold",
]

_log = logging.getLogger("backuppolicy")

Progress = Callable[[str, int, int], None]
"""Progress callback: ``progress(label, done, total)``; the CLI draws a bar with it."""

TAG_REQUESTED_BY = "requested-by"
"""Tag of manual backups: who asked. Outside ``backuppolicy:``, which targets reserve for their own keys."""


# --------------------------------------------------------------------------------------------
# Building targets and notifiers from a policy


def _store(
    url: str, *, tier: str, session: Any, endpoint_url: str | None, region: str | None
) -> Any:
    from backuppolicy import local  # noqa: PLC0415 - debt (issue 11): Directory.from_spec

    if url.startswith("s3://"):
        return local.open_store(
            url, tier=tier, session=session, endpoint_url=endpoint_url, region=region
        )
    return local.open_store(url, tier=tier)


def _copy_tiers(policy: Policy, spec: TargetSpec) -> tuple[TierSpec, ...]:
    """Tiers that hold copies of *spec* (every tier after the first, the source tier)."""
    return policy.tiers_for(spec)[1:]


def _source_tier(policy: Policy, spec: TargetSpec) -> str:
    tiers = policy.tiers_for(spec)
    return tiers[0].name if tiers else "local"


def build_targets(
    policy: Policy,
    *,
    session: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, BackupTarget]:
    """Build the enabled targets of *policy* from their kinds and settings.

    AWS targets get ``copy_regions`` from the policy's copy tiers, so their off-site copies are
    listed (and pruned) too. Directory targets store archives in the source tier's ``store``.

    A selector target is resolved now (by the registry's ``"aws"`` resolver,
    `backuppolicy.aws.discovery.resolve_targets`): it becomes
    one target per resource found, named ``<target>-<resource>``; a target with an ``account``
    gets the session of its role, assumed once per account and region for this call. A
    resolution that fails (a refused role, a denied ``GetResources``) does not raise: the
    target's name maps to a stand-in whose calls raise that error, so `backup` and
    `plan_retention` report it as that target's failure and go on with the others.

    Args:
        policy: The policy.
        session: A `boto3.Session` for every AWS target (default: the default session).
        endpoint_url: Endpoint for every AWS client (moto server, LocalStack).
        region: Region for AWS targets whose settings name none.
        only: Names of the targets to build (default: all enabled targets).

    Raises:
        PolicyError: *only* names a target the policy does not have, or a target's settings
            cannot be used (e.g. a directory target without a store).
        BackendNotFoundError: A target's kind is not installed.
    """
    wanted = _select(policy, only)
    if needs_resolver(wanted) or any(spec.kind in _AWS_KINDS for spec in wanted):
        resolver = get_resolver("aws")  # boto3 only when the policy has AWS targets
        if session is None:
            session = resolver.default_session()  # one session: each re-reads botocore's models
        resolved = resolver.resolve_targets(
            wanted, session=session, endpoint_url=endpoint_url, region=region
        )
    else:
        resolved = [stands_for_itself(spec, session=session, region=region) for spec in wanted]
    built: dict[str, BackupTarget] = {}
    owner: dict[str, str] = {}
    for found in resolved:
        if not found.ok:  # reported as this target's failure by backup and plan_retention
            built[found.spec.name] = found.unavailable()
        for spec in found.targets:
            if spec.name in owner:
                raise PolicyError.for_field(
                    "targets",
                    "distinct target names",
                    spec.name,
                    hint=f"Targets {owner[spec.name]!r} and {found.spec.name!r} both make it.",
                )
            owner[spec.name] = found.spec.name
            built[spec.name] = _build_target(
                policy,
                spec,
                session=found.sessions.get(spec.name, session),
                endpoint_url=endpoint_url,
                region=region,
            )
    return built


_AWS_KINDS = frozenset(
    {"rds-instance", "aurora-cluster", "ec2-instance", "ebs-volume", "s3-bucket", "aws-backup"}
)


def _select(policy: Policy, only: Iterable[str] | None) -> list[TargetSpec]:
    if only is None:
        return [spec for spec in policy.targets if spec.enabled]
    return [policy.target(name) for name in only]


def _run_specs(specs: Iterable[TargetSpec], built: Mapping[str, BackupTarget]) -> list[TargetSpec]:
    """The targets a run goes through: a selector target stands for its built targets.

    Those are named ``<target>-...`` (policy validation reserves that prefix); the selector
    target itself is kept when its resolution failed (its name maps to a stand-in).
    """
    out: list[TargetSpec] = []
    for spec in specs:
        if spec.selector is None or spec.name in built:
            out.append(spec)
        if spec.selector is not None:
            prefix = f"{spec.name}-"
            out.extend(attrs.evolve(spec, name=n) for n in built if n.startswith(prefix))
    return out


def _build_target(
    policy: Policy,
    spec: TargetSpec,
    *,
    session: Any,
    endpoint_url: str | None,
    region: str | None,
) -> BackupTarget:
    settings = dict(spec.settings)
    factory = get_target_class(spec.kind)
    common: dict[str, Any] = {"name": spec.name, "policy": policy.name}
    aws_common = {
        "session": session,
        "endpoint_url": endpoint_url,
        "region": settings.pop("region", None) or region,
    }
    settings.pop("kms_key_id", None)
    copy_regions = [
        t.location["region"] for t in _copy_tiers(policy, spec) if "region" in t.location
    ]
    if spec.kind in {"rds-instance", "aurora-cluster", "ebs-volume"}:
        resource = settings.pop(
            {"rds-instance": "db_instance_id", "aurora-cluster": "db_cluster_id"}.get(
                spec.kind, "volume_id"
            )
        )
        return factory(resource, **common, **aws_common, copy_regions=copy_regions)
    if spec.kind == "ec2-instance":
        settings.pop("no_reboot", None)  # CreateSnapshots never reboots the instance
        return factory(
            settings.pop("instance_id"), **common, **aws_common, copy_regions=copy_regions
        )
    if spec.kind == "s3-bucket":
        return factory(
            settings.pop("bucket"),
            prefix=settings.pop("prefix", ""),
            **common,
            **aws_common,
            copy_stores={
                t.location["store"]: t.name
                for t in _copy_tiers(policy, spec)
                if t.location.get("store")
            },
        )
    if spec.kind == "directory":
        tiers = policy.tiers_for(spec)
        url = tiers[0].location.get("store") if tiers else None
        if not url:
            raise PolicyError.for_field(
                f"tiers[{tiers[0].name if tiers else 'local'}].location.store",
                f"a directory or s3:// URL where archives of directory target {spec.name!r} are kept",
                url,
            )
        store_kw = {"session": session, "endpoint_url": endpoint_url, "region": region}
        store = _store(url, tier=tiers[0].name, **store_kw)
        # Stores of the copy tiers too, so their copies are listed (due checks, pruning).
        copy_stores = [
            _store(t.location["store"], tier=t.name, **store_kw)
            for t in _copy_tiers(policy, spec)
            if t.location.get("store")
        ]
        return factory(
            settings.pop("path"),
            store=store,
            stores=copy_stores,
            store_options={"session": session, "endpoint_url": endpoint_url},
            exclude=tuple(settings.pop("exclude", ())),
            include=tuple(settings.pop("include", ())),
            **common,
        )
    if spec.kind == "aws-backup":  # read-only: AWS Backup makes and expires these points
        return factory(settings.pop("resource_arn"), **settings, **common, **aws_common)
    return factory(**settings, **common)


def build_notifiers(
    policy: Policy,
    event: EventKind | None = None,
    *,
    session: Any = None,
    endpoint_url: str | None = None,
) -> list[Notifier]:
    """The notifiers of *policy*'s ``notifications`` (those subscribed to *event*, if given)."""
    result: list[Notifier] = []
    for spec in policy.notifications:
        if event is not None and event.value not in spec.on:
            continue
        settings = dict(spec.settings)
        if spec.kind == "log":
            level = logging.getLevelName(str(settings.get("level", "ERROR")))
            result.append(
                LogNotifier(logger=settings.get("logger", "backuppolicy.events"), level=level)
            )
        elif spec.kind == "sns":
            result.append(
                SnsNotifier(
                    settings["topic_arn"],
                    session=session,
                    endpoint_url=endpoint_url,
                    region=settings.get("region"),
                )
            )
        elif spec.kind == "webhook":
            result.append(
                WebhookNotifier(
                    settings["url"],
                    timeout=float(settings.get("timeout", 10.0)),
                    headers=settings.get("headers", {}),
                )
            )
    return result


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
    """

    target: str
    point: RecoveryPoint | None = None
    copies: tuple[RecoveryPoint, ...] = ()
    skipped: str | None = None
    error: str | None = None
    duration: float = 0.0
    swept: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the run had no error."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def _html_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], text: str
) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f"<div><strong>{html.escape(title)}</strong>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<details><summary>text</summary><pre>{html.escape(text)}</pre></details></div>"
    )


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

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.RunReport(targets={len(self.runs)}, created={len(self.created)}, "
            f"copies={len(self.copies)}, failed={len(self.failed)})>"
        )

    def _rows(self) -> list[list[str]]:
        return [
            [
                run.target,
                run.point.id if run.point else "-",
                ", ".join(f"{c.tier}:{c.id}" for c in run.copies) or "-",
                f"{run.duration:.1f}s",
                run.error or run.skipped or "ok",
            ]
            for run in self.runs
        ]

    _HEADERS = ("target", "backup", "copies", "took", "result")

    def summary(self) -> str:
        """A text table of the run."""
        title = f"backup run of policy {self.policy!r} at {self.now.isoformat()}: {self!r}"
        return f"{title}\n{_table(self._HEADERS, self._rows())}"

    def _repr_html_(self) -> str:
        return _html_table(repr(self), self._HEADERS, self._rows(), self.summary())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "policy": self.policy,
            "now": self.now.isoformat(),
            "ok": self.ok,
            "runs": [run.to_dict() for run in self.runs],
            "notify_failures": [str(f.error) for f in self.notify_failures],
        }


def _newest(
    points: Iterable[RecoveryPoint], tier: str, *, pending: bool = False
) -> RecoveryPoint | None:
    """The newest completed (or, with *pending*, in-flight) backup of ours in *tier*.

    Object versions are data, not backups.
    """
    good = [
        p
        for p in points
        if p.tier == tier
        and (p.is_good or (pending and p.status is Status.PENDING))
        and p.managed
        and p.kind != "s3-version"
    ]
    return max(good, key=lambda p: p.order_key, default=None)


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
    source_tier = _source_tier(policy, spec)
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
    newest = _newest(points, source_tier)
    run_at = schedule.last_due(now)
    point: RecoveryPoint | None = None
    source: RecoveryPoint | None
    skipped: str | None = None
    if force or (run_at is not None and (newest is None or newest.created_at < run_at)):
        token_time = run_at if run_at is not None and not force else now
        token = f"{policy.name}-{spec.name}-{token_time.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        try:
            point = target.create_backup(reason=reason, token=token)
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
    else:
        skipped = f"not due: newest backup {newest.created_at.isoformat()}" if newest else "not due"
        source = newest
    copies: list[RecoveryPoint] = []
    errors: list[str] = []
    for tier in _copy_tiers(policy, spec):
        last_copy = _newest(points, tier.name, pending=True)  # a copy in flight counts
        if source is None or not _copy_due(policy, tier, spec.name, last_copy, now):
            continue
        if source.status is not Status.COMPLETED:
            refreshed = target.refresh(source)
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
            account=tier.location.get("account"),
            store=_copy_store(tier, spec),
        )
        try:
            copies.append(target.copy(source, destination))
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
    )


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
        _log.warning("target %s: sweeping crash leftovers failed: %s", spec.name, _describe(exc))
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
    duplicate. Copy tiers get a copy once per cadence period (spread over the period by the
    rolling spread when the policy has one). Targets run concurrently (*max_workers*); one
    failing target does not stop the others, and each failure is notified.

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
    specs = _select(policy, only)
    built = targets if targets is not None else build_targets(policy, only=[s.name for s in specs])
    specs = _run_specs(specs, built)
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
    return built[spec.name].create_backup(
        reason=f"manual: {reason.strip()}",
        tags=tags,
        token=token or f"manual-{spec.name}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}",
    )


# --------------------------------------------------------------------------------------------
# Retention: plan, then apply


def _rule_for(policy: Policy, spec: TargetSpec, tier: str) -> RetentionRule:
    if spec.retention is not None:
        return spec.retention
    for tier_spec in policy.tiers:
        if tier_spec.name == tier and tier_spec.retention is not None:
            return tier_spec.retention
    return policy.retention


def plan_retention(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    only: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> RetentionPlan:
    """Plan retention across every target and tier; nothing is deleted here.

    Each tier of each target is planned with its own rule (the target's override, else the
    tier's, else the policy's). A target whose listing fails (even on a late page) contributes
    nothing to the plan, so nothing of it can be deleted; the error is in ``plan.errors``.
    Versions of S3 buckets are planned per key (the current version is always kept).

    Returns:
        One `RetentionPlan` for all targets; pass it to `apply`.
    """
    ensure_aware(now, field="now")
    specs = _select(policy, only)
    built = targets if targets is not None else build_targets(policy, only=[s.name for s in specs])
    specs = _run_specs(specs, built)
    plans: list[RetentionPlan] = []
    errors: dict[str, str] = {}
    for done, spec in enumerate(specs, start=1):
        target = built[spec.name]
        try:
            # Combined per target first: a target whose listing repeats an id fails alone.
            plans.append(
                RetentionPlan.combine(_plan_target(policy, spec, target, now) or [_empty(now)])
            )
        except Exception as exc:  # noqa: BLE001 - a failed listing deletes nothing of that target
            errors[spec.name] = f"{type(exc).__name__}: {exc}"
            _log.error(
                "retention plan of %s failed, nothing of it will be deleted: %s", spec.name, exc
            )
        if progress is not None:
            progress("plan", done, len(specs))
    combined = RetentionPlan.combine([_empty(now), *plans])
    return attrs.evolve(combined, targets=dict(built), errors=errors)


def _empty(now: datetime) -> RetentionPlan:
    return RetentionPlan(keep=[], delete=[], reasons={}, now=now)


def _plan_target(
    policy: Policy, spec: TargetSpec, target: BackupTarget, now: datetime
) -> list[RetentionPlan]:
    by_tier: dict[str, list[RecoveryPoint]] = defaultdict(list)
    versions: list[RecoveryPoint] = []
    for point in target.list_points():
        if point.kind == "s3-version":
            versions.append(point)
        else:
            by_tier[point.tier].append(point)
    plans = [
        _rule_for(policy, spec, tier).plan(points, now=now, tz=policy.timezone)
        for tier, points in sorted(by_tier.items())
    ]
    if versions:
        planner = getattr(target, "noncurrent_retention_plan", None)
        if planner is None:  # pragma: no cover - only S3 buckets list versions
            raise PolicyError(f"target {spec.name!r} lists object versions but cannot plan them")
        rule = _rule_for(policy, spec, _source_tier(policy, spec))
        plans.extend(
            RetentionPlan(
                keep=list(key_plan.keep),
                delete=list(key_plan.delete),
                reasons={k: list(v) for k, v in key_plan.reasons.items()},
                now=now,
            )
            for key_plan in planner(rule, now=now)
        )
    return plans


@attrs.frozen
class DeleteOutcome:
    """What `apply` did with one point of the plan's ``delete`` list.

    Attributes:
        point: The planned point.
        action: ``"deleted"``, ``"skipped"``, ``"failed"`` or ``"would delete"`` (dry run).
        reason: Why (for skips and failures), e.g. ``"now under legal hold: case-17"``.
    """

    point: RecoveryPoint
    action: str
    reason: str = ""


@attrs.frozen
class ApplyReport:
    """The result of `apply`.

    Attributes:
        outcomes: One `DeleteOutcome` per planned deletion.
        dry_run: Whether nothing was deleted on purpose.
    """

    outcomes: tuple[DeleteOutcome, ...]
    dry_run: bool = False

    def _of(self, action: str) -> list[RecoveryPoint]:
        return [o.point for o in self.outcomes if o.action == action]

    @property
    def deleted(self) -> list[RecoveryPoint]:
        """Points deleted."""
        return self._of("deleted")

    @property
    def skipped(self) -> list[DeleteOutcome]:
        """Planned deletions skipped by the re-check, with the reason."""
        return [o for o in self.outcomes if o.action == "skipped"]

    @property
    def failed(self) -> list[DeleteOutcome]:
        """Deletions that failed, with the error."""
        return [o for o in self.outcomes if o.action == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no deletion failed."""
        return not self.failed

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.ApplyReport(deleted={len(self.deleted)}, skipped={len(self.skipped)}, "
            f"failed={len(self.failed)}, dry_run={self.dry_run})>"
        )

    _HEADERS = ("target", "tier", "point", "created", "action", "reason")

    def _rows(self) -> list[list[str]]:
        return [
            [
                o.point.target,
                o.point.tier,
                o.point.id,
                o.point.created_at.isoformat(),
                o.action,
                o.reason,
            ]
            for o in self.outcomes
        ]

    def summary(self) -> str:
        """A text table of every outcome."""
        return f"{self!r}\n{_table(self._HEADERS, self._rows())}"

    def _repr_html_(self) -> str:
        return _html_table(repr(self), self._HEADERS, self._rows(), self.summary())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "outcomes": [
                {
                    "target": o.point.target,
                    "tier": o.point.tier,
                    "id": o.point.id,
                    "created_at": o.point.created_at.isoformat(),
                    "action": o.action,
                    "reason": o.reason,
                }
                for o in self.outcomes
            ],
        }


def _recheck(fresh: RecoveryPoint | None, planned: RecoveryPoint) -> str | None:
    """Why *planned* must not be deleted after all (``None``: go ahead)."""
    if fresh is None:
        return "no longer exists"
    if fresh.legal_hold is not None:
        return f"now under {fresh.legal_hold.describe()}"
    if not fresh.managed:
        return "not managed by backuppolicy"
    if fresh.status is Status.PENDING:
        return "pending"
    if fresh.created_at != planned.created_at:
        return "changed since the plan was made"
    return _not_as_planned(fresh, planned)


def _not_as_planned(fresh: RecoveryPoint, planned: RecoveryPoint) -> str | None:
    """Why the backend's *fresh* point is not the one the plan names (``None``: it is).

    The floors are keyed by the plan's target, tier and kind: they hold only if the backend
    agrees (a hand-made plan may label the newest local point as another tier's).
    """
    for field in ("target", "tier", "kind"):
        if getattr(fresh, field) != getattr(planned, field):
            seen, claimed = short_repr(getattr(fresh, field)), short_repr(getattr(planned, field))
            return f"its {field} is {seen}, not the planned {claimed}"
    return None


def apply(
    plan: RetentionPlan,
    *,
    targets: Mapping[str, BackupTarget] | None = None,
    dry_run: bool = False,
    max_workers: int = 8,
    progress: Progress | None = None,
) -> ApplyReport:
    """Delete the points of *plan*, re-checking each one right before its deletion.

    For every planned deletion the point is re-read from its target; it is skipped (with the
    reason) if it no longer exists, is now under legal hold, is not managed, is pending or has
    changed. The floors hold whatever the plan says: before the first deletion, every target
    with planned deletions is listed again, and the newest completed point of each of its tiers
    is skipped (a target that cannot be listed deletes nothing and its points fail). The newest
    point the plan keeps in a tier is re-read too: if it has vanished, nothing of that tier is
    deleted. Any error while deleting one point (an ``OSError`` too) becomes that point's
    ``"failed"`` outcome; the others go on. Deletions run concurrently (*max_workers*).

    Args:
        plan: A plan from `plan_retention` (or ``rule.plan`` with *targets* given).
        targets: Targets by name (default: those that made the plan).
        dry_run: Re-check nothing and delete nothing; report what would be deleted.
        max_workers: Deletions in flight at once.
        progress: Called as ``progress("delete", done, total)``.

    Raises:
        PolicyError: The plan has points of a target that *targets* does not have.
    """
    known = targets if targets is not None else plan.targets
    if dry_run:
        return ApplyReport(
            outcomes=tuple(
                DeleteOutcome(p, "would delete", "; ".join(plan.reasons.get(p.id, [])))
                for p in plan.delete
            ),
            dry_run=True,
        )
    missing = sorted({p.target for p in plan.delete} - set(known))
    if missing:
        raise PolicyError.for_field(
            "targets",
            "the targets of every point in plan.delete",
            sorted(known),
            hint=f"Missing: {missing}.",
        )
    floor_ok = _check_floors(plan, known)
    newest = _fresh_newest(plan, known)

    def delete_one(point: RecoveryPoint) -> DeleteOutcome:
        try:
            return _delete_one(
                point,
                plan,
                known,
                floor_ok=floor_ok.get((point.target, point.tier), True),
                newest=newest.get(point.target, {}),
            )
        except Exception as exc:  # noqa: BLE001 - OSError, a plugin's bug: one failed outcome
            _log.exception("deleting %s of %s failed", point.id, point.target)
            return DeleteOutcome(point, "failed", _describe(exc))

    outcomes: list[DeleteOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        for done, outcome in enumerate(pool.map(delete_one, plan.delete), start=1):
            outcomes.append(outcome)
            if progress is not None:
                progress("delete", done, len(plan.delete))
    return ApplyReport(outcomes=tuple(outcomes))


def _delete_one(
    point: RecoveryPoint,
    plan: RetentionPlan,
    targets: Mapping[str, BackupTarget],
    *,
    floor_ok: bool,
    newest: Mapping[str, str | None] | str,
) -> DeleteOutcome:
    """Re-check one planned deletion and carry it out.

    *newest* is the target's fresh newest completed point id per tier, or why the target
    could not be re-read.
    """
    refused = _floor(point, floor_ok=floor_ok, newest=newest)
    if refused is not None:
        return refused
    target = targets[point.target]
    try:
        reason = _recheck(target.refresh(point), point)
        if reason is not None:
            return DeleteOutcome(point, "skipped", reason)
        target.delete(point)
    except ResourceNotFoundError:
        return DeleteOutcome(point, "skipped", "no longer exists")
    except ProtectedPointError as exc:
        return DeleteOutcome(point, "skipped", str(exc))
    except BackupPolicyError as exc:
        return DeleteOutcome(point, "failed", _describe(exc))
    return DeleteOutcome(point, "deleted", "; ".join(plan.reasons.get(point.id, [])))


def _floor(
    point: RecoveryPoint, *, floor_ok: bool, newest: Mapping[str, str | None] | str
) -> DeleteOutcome | None:
    """The outcome of *point* if a floor forbids deleting it (``None``: no floor applies)."""
    if not floor_ok:
        return DeleteOutcome(point, "skipped", "the newest kept point of its tier vanished")
    if point.kind == _VERSION:
        return None
    if isinstance(newest, str):
        return DeleteOutcome(point, "failed", newest)
    if newest.get(point.tier) == point.id:
        why = f"newest completed point of {point.target} in tier {point.tier!r}"
        return DeleteOutcome(point, "skipped", why)
    return None


_VERSION = "s3-version"
_MAX_REASON = 500


def _describe(exc: BaseException) -> str:
    """``"OSError: ..."``, truncated: the reason of a failed outcome."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _fresh_newest(
    plan: RetentionPlan, targets: Mapping[str, BackupTarget]
) -> dict[str, dict[str, str | None] | str]:
    """Re-read every target that has planned deletions: its newest completed point per tier.

    The floor holds whatever plan `apply` is handed: a point that is the newest completed
    point of its (target, tier) right before the deletions start is never deleted. Object
    versions have their own floor (the current version, which is never managed); a target
    whose only planned deletions are versions is not re-read. A target that cannot be
    re-read maps to the reason, and none of its points is deleted.
    """
    names = sorted({p.target for p in plan.delete if p.kind != _VERSION})
    result: dict[str, dict[str, str | None] | str] = {}
    for name in names:
        try:
            points = [p for p in targets[name].list_points() if p.kind != _VERSION]
        except Exception as exc:  # noqa: BLE001 - no floor known: nothing of the target goes
            _log.error("re-reading %s before deleting failed, nothing of it is deleted", name)
            result[name] = (
                f"could not re-read the target to find its newest point: {_describe(exc)}"
            )
            continue
        newest: dict[str, str | None] = {}
        for tier in {p.tier for p in points}:
            found = _newest(points, tier)
            newest[tier] = None if found is None else found.id
        result[name] = newest
    return result


def _check_floors(
    plan: RetentionPlan, targets: Mapping[str, BackupTarget]
) -> dict[tuple[str, str], bool]:
    """Re-read the newest kept completed point of every (target, tier) that has deletions."""
    groups = {(p.target, p.tier) for p in plan.delete}
    newest: dict[tuple[str, str], RecoveryPoint] = {}
    for point in plan.keep:
        key = (point.target, point.tier)
        if key in groups and point.is_good and point.kind != "s3-version":
            best = newest.get(key)
            if best is None or point.order_key > best.order_key:
                newest[key] = point
    result: dict[tuple[str, str], bool] = {}
    for key, point in newest.items():
        try:
            fresh = targets[key[0]].refresh(point)
        except Exception:  # noqa: BLE001 - unknown state of the floor: delete nothing there
            fresh = None
        result[key] = fresh is not None and fresh.is_good
    return result


# --------------------------------------------------------------------------------------------
# Legal holds


def _target_of(
    policy: Policy, point: RecoveryPoint, targets: Mapping[str, BackupTarget] | None
) -> Any:
    built = targets if targets is not None else build_targets(policy, only=[point.target])
    return built[point.target]


def place_hold(
    policy: Policy,
    point: RecoveryPoint,
    *,
    reason: str,
    reference: str = "",
    now: datetime | None = None,
    targets: Mapping[str, BackupTarget] | None = None,
) -> RecoveryPoint:
    """Put *point* under legal hold (seed §2.2, §2.3): it is never deleted until released.

    The hold is recorded on the point itself (a tag, or an S3 Object Lock legal hold), so every
    tool that reads the point sees it. On archive stores a hold and a delete of the same point
    never interleave (a file lock on a directory, conditional writes on S3).

    Raises:
        ResourceNotFoundError: The point does not exist (any more): nothing is held.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise PolicyError.for_field("reason", "a non-empty reason for the hold", reason)
    since = ensure_aware(now, field="now") if now is not None else datetime.now(UTC)
    hold = LegalHold(reason=reason, reference=reference, since=since)
    result: RecoveryPoint = _target_of(policy, point, targets).place_hold(point, hold)
    return result


def release_hold(
    policy: Policy,
    point: RecoveryPoint,
    *,
    targets: Mapping[str, BackupTarget] | None = None,
) -> RecoveryPoint:
    """Release the legal hold on *point*; retention may delete it again afterwards."""
    result: RecoveryPoint = _target_of(policy, point, targets).release_hold(point)
    return result


def holds(
    policy: Policy, *, targets: Mapping[str, BackupTarget] | None = None
) -> list[RecoveryPoint]:
    """Every point of *policy*'s targets that is under legal hold."""
    built = targets if targets is not None else build_targets(policy)
    return [p for target in built.values() for p in target.list_points() if p.held]
