"""Run checks: every check of a policy against its targets, restore tests, and the sweep.

The checks themselves live in `backuppolicy.checks` (the `~backuppolicy.checks.verify.Verifier`
protocol in ``verify``; the metadata, integrity and restore-test checks in ``metadata``,
``integrity`` and ``restore_test``; `CheckResult` in `backuppolicy.core.results`); this module
builds the targets of a policy (through the registry), picks the points, runs the checks in a
thread pool, records the results in the testing log and notifies failures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

import attrs

from backuppolicy.checks._declared import declared_probes
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.metadata import (
    BucketSettingMatchesPolicy,
    Completed,
    Encrypted,
    Fresh,
    HasOffsiteCopy,
    NotPublic,
    ObjectLock,
    SettingsMatchPolicy,
    VersioningEnabled,
    expected_bucket_settings,
)
from backuppolicy.checks.probes import ProbeLike
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.size import SizeAnomaly
from backuppolicy.checks.verify import (
    Verifier,
    VerifyContext,
    default_ran_by,
    newest_good,
)
from backuppolicy.core._fields import did_you_mean
from backuppolicy.core.capabilities import BucketSettingsDrift
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.integrity_schedule import IntegritySlot, integrity_slots_due
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import (
    BackupTarget,
    IsolationProfile,
    Sweepable,
    SweptResource,
    leftover_sweepers,
)
from backuppolicy.notify import Event, EventKind, Notifier, notify_all
from backuppolicy.workflows._assemble import build_notifiers, build_targets

if TYPE_CHECKING:
    import boto3

    from backuppolicy.core.policy import Policy
    from backuppolicy.core.specs import TargetSpec

__all__ = [
    "NOTIFIED_WARNINGS",
    "ResultRecorder",
    "SettingChange",
    "default_checks",
    "enforce_settings",
    "integrity_due",
    "integrity_plan",
    "isolation_for",
    "last_integrity_checks",
    "restore_point",
    "restore_test",
    "run_checks",
    "sweep_restore_tests",
]


def _order_key(point: RecoveryPoint) -> tuple[datetime, bool, int, str]:
    """Newest last: `RecoveryPoint.order_key` (ties follow the backend's order, then the id)."""
    return point.order_key


def sweep_restore_tests(
    targets: Mapping[str, BackupTarget] | Iterable[BackupTarget] | None = None,
    *,
    older_than: Duration | str | timedelta,
    now: datetime,
    session: boto3.Session | None = None,
    regions: Iterable[str] = (),
    endpoint_url: str | None = None,
    isolation: IsolationProfile | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> list[SweptResource]:
    """Remove restore-test leftovers: resources carrying the sweep tag, older than *older_than*.

    Restore tests tear down what they restore, even on failure; a crash or a failed teardown can
    still leave something behind, tagged with ``isolation.sweep_tag``. Each target that sweeps
    its own leftovers (`Sweepable`) is asked in turn: RDS DB instances and clusters and EBS
    volumes in the regions of the AWS *targets*, through their clients, and any plug-in kind's.
    Then RDS and EBS leftovers in *regions* (through *session*) and restored temporary
    directories (``<temp_dir>/<name_prefix>*``) are swept. Those created before
    ``now - older_than`` are deleted, each region's service and each directory once.
    Only resources that carry the sweep tag are ever touched; a directory only if it carries
    our marker file and no running restore test holds its lock (never a symlink).

    Args:
        targets: Targets asked to sweep their own leftovers (those that are not `Sweepable`
            are ignored).
        older_than: Minimum age of a leftover (``"1d"``).
        now: The current time (timezone-aware).
        session: A `boto3.Session` for *regions*.
        regions: More regions to sweep with *session*.
        endpoint_url: Endpoint for the *session* clients (moto server, LocalStack).
        isolation: The isolation profile (its ``sweep_tag`` and ``name_prefix``).
        temp_dir: Where restored directories are made (default: the system's temporary directory).
        dry_run: Find and report, delete nothing.

    Returns:
        One `SweptResource` per leftover found.
    """
    ensure_aware(now, field="now")
    profile = isolation or IsolationProfile()
    age = Duration.coerce(older_than, field="older_than")
    cutoff = age.before(now) or datetime.min.replace(tzinfo=UTC)
    items: Iterable[BackupTarget] = (
        targets.values() if isinstance(targets, Mapping) else (targets or ())
    )
    sweepers: list[Sweepable] = [t for t in items if isinstance(t, Sweepable)]
    sweepers.extend(leftover_sweepers(regions, session=session, endpoint_url=endpoint_url))
    seen: set[str] = set()  # scopes swept: each region's service, each directory, once
    swept: list[SweptResource] = []
    for sweeper in sweepers:
        swept.extend(
            sweeper.sweep_restore_tests(
                profile, before=cutoff, dry_run=dry_run, seen=seen, temp_dir=temp_dir
            )
        )
    return swept


# --------------------------------------------------------------------------------------------
# Runners


class ResultRecorder(Protocol):
    """**Protocol:** where check results are recorded (the backup testing log)."""

    def record(self, result: CheckResult) -> object:
        """Append *result* to the log."""
        ...


def isolation_for(policy: Policy | None) -> IsolationProfile:
    """The `IsolationProfile` of *policy*'s ``verification.isolation`` (defaults where unset)."""
    settings = dict(policy.verification.isolation) if policy is not None else {}
    if "tags" in settings:
        settings["tags"] = dict(settings["tags"])
    return IsolationProfile(**settings)


def default_checks(policy: Policy | None = None) -> list[Verifier]:
    """The checks `run_checks` runs by default, following *policy*'s ``verification``.

    `Completed`, `Encrypted` (if ``require_encryption``), `NotPublic` (if ``require_private``),
    `Fresh`, `HasOffsiteCopy`, `VersioningEnabled`, `ObjectLock` (warns only),
    `SettingsMatchPolicy`, `BucketSettingMatchesPolicy` (``encryption`` and
    ``block_public_access`` of buckets whose settings state them), `IntegrityCheck`, and
    `SizeAnomaly` when the policy sets ``verification.size_anomaly``.
    """
    spec = policy.verification if policy is not None else None
    checks: list[Verifier] = [Completed()]
    if spec is None or spec.require_encryption:
        checks.append(Encrypted())
    if spec is None or spec.require_private:
        checks.append(NotPublic())
    checks += [
        Fresh(),
        HasOffsiteCopy(),
        VersioningEnabled(),
        ObjectLock(required=False),
        SettingsMatchPolicy(),
        BucketSettingMatchesPolicy("encryption"),
        BucketSettingMatchesPolicy("block_public_access"),
        IntegrityCheck(),
    ]
    if spec is not None and spec.size_anomaly is not None:
        checks.append(SizeAnomaly(spec.size_anomaly))
    return checks


@attrs.frozen
class SettingChange:
    """One setting of a target changed (or, in a dry run, that would change) by `enforce_settings`.

    Attributes:
        target: The target.
        setting: The setting (``"encryption"``, ``"kms_key_id"``, ``"block_public_access"``).
        expected: What the policy says.
        actual: What it was before.
        applied: Whether it was changed (``False`` in a dry run).
    """

    target: str
    setting: str
    expected: object
    actual: object
    applied: bool

    def describe(self) -> str:
        """One line: ``"web: encryption: AES256 -> aws:kms"`` (``would set`` in a dry run)."""
        verb = "set" if self.applied else "would set"
        return f"{self.target}: {verb} {self.setting}: {self.actual} -> {self.expected}"


def enforce_settings(
    policy: Policy,
    *,
    targets: Mapping[str, BackupTarget] | None = None,
    only: Iterable[str] | None = None,
    apply: bool = False,
) -> list[SettingChange]:
    """Bring each bucket's ``encryption`` and ``block_public_access`` to what *policy* states.

    Only targets with `BucketSettingsDrift` (S3 buckets) whose settings state them; each
    change is one request, and a bucket that matches gets none (idempotent). Without *apply*,
    a dry run: the changes are returned, nothing is changed. Nothing is ever loosened.
    """
    names = list(only) if only is not None else [t.name for t in policy.targets]
    built = _targets_for(policy, targets, names)
    changes: list[SettingChange] = []
    for name in names:
        target: object = built.get(name)
        wanted = expected_bucket_settings(policy, name)
        if wanted and isinstance(target, BucketSettingsDrift):
            changes.extend(
                SettingChange(name, d.field, d.expected, d.actual, apply)
                for d in target.enforce_bucket_settings(wanted, apply=apply)
            )
    return changes


def _scope(check: Verifier) -> str:
    scope = getattr(check, "scope", "point")
    return scope if scope in ("point", "target") else "point"


def _chosen_points(
    points: Sequence[RecoveryPoint], tiers: Sequence[str] | None, *, all_points: bool
) -> list[RecoveryPoint]:
    """Every point (*all_points*), or the newest point of each tier (versions only if nothing else)."""
    wanted = [p for p in points if tiers is None or p.tier in tiers]
    if all_points:
        return wanted
    chosen: list[RecoveryPoint] = []
    for tier in dict.fromkeys(p.tier for p in wanted):
        in_tier = [p for p in wanted if p.tier == tier]
        backups = [p for p in in_tier if p.kind != "s3-version"] or in_tier
        chosen.append(max(backups, key=_order_key))
    return chosen


def _notify_failures(
    policy: Policy,
    results: Iterable[CheckResult],
    notifiers: Sequence[Notifier] | None,
    now: datetime,
) -> None:
    failed = [r for r in results if _notified(r)]
    if not failed:
        return
    if notifiers is None:
        chosen: Sequence[Notifier] = build_notifiers(policy, EventKind.VERIFICATION_FAILED)
    else:
        chosen = notifiers
    for result in failed:
        where = f" of {result.point_id}" if result.point_id else ""
        outcome = {CheckStatus.FAIL: "failed", CheckStatus.UNPROVEN: "is unproven"}.get(
            result.status, "warns"
        )
        event = Event(
            kind=EventKind.VERIFICATION_FAILED,
            policy=policy.name,
            target=result.target,
            message=f"{result.check}{where} {outcome}: {result.details}",
            error="; ".join(result.issues) or None,
            at=now,
            details={"check": result.check, "point": result.point_id, "tier": result.tier},
        )
        notify_all(chosen, event)


NOTIFIED_WARNINGS: Final = frozenset({"size-anomaly"})
"""Checks whose warnings are notified like failures (a backup far smaller than usual)."""


def _notified(result: CheckResult) -> bool:
    """Failed and unproven results are notified, and the warnings of `NOTIFIED_WARNINGS`."""
    if result.status is CheckStatus.WARN:
        return result.check in NOTIFIED_WARNINGS
    return not result.ok


def _check_names(
    field: str, keys: Iterable[str], policy: Policy, targets: Mapping[str, BackupTarget] | None
) -> None:
    """Raise `PolicyError` for a key of *field* that names no target (with "did you mean")."""
    known = [s.name for s in policy.targets] + list(targets or ())
    for key in keys:
        if key not in known:
            raise PolicyError.for_field(
                f"{field}[{key!r}]",
                "the name of a target of the policy",
                key,
                hint=did_you_mean(key, known),
            )


def _record(log: ResultRecorder | None, results: Iterable[CheckResult]) -> None:
    if log is not None:
        for result in results:
            log.record(result)


def _targets_for(
    policy: Policy, targets: Mapping[str, BackupTarget] | None, names: list[str]
) -> Mapping[str, BackupTarget]:
    if targets is not None:
        return targets
    return build_targets(policy, only=names)


def _listing_failed(
    name: str, exc: BaseException, context: VerifyContext, kind: CheckKind
) -> CheckResult:
    error = f"{type(exc).__name__}: {exc}"
    return CheckResult(
        check="listing",
        status=CheckStatus.FAIL,
        target=name,
        checked_at=context.now,
        kind=kind,
        application=context.application,
        details=f"could not list the points: {error}",
        issues=(error,),
        ran_by=context.ran_by,
    )


_Resolvers: TypeAlias = Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]] | None
"""One endpoint resolver for every target, resolvers per target name, or none."""


def _names(policy: Policy, only: Iterable[str] | None) -> list[str]:
    """The names in *only*, else those of every enabled target of *policy*."""
    return [s.name for s in policy.targets if s.enabled] if only is None else list(only)


@attrs.frozen
class _Contexts:
    """The `VerifyContext` of each target of one run (`run_checks`, `restore_test`, ...)."""

    policy: Policy
    now: datetime
    ran_by: str
    simulated: bool
    endpoint_resolver: _Resolvers
    isolation: IsolationProfile = attrs.field()

    @isolation.default
    def _isolation(self) -> IsolationProfile:
        return isolation_for(self.policy)

    def of(self, spec: TargetSpec, points: Sequence[RecoveryPoint] = ()) -> VerifyContext:
        """The context of *spec*'s checks: its application and its own endpoint resolver."""
        resolver = self.endpoint_resolver
        return VerifyContext(
            now=self.now,
            points=points,
            policy=self.policy,
            application=spec.application,
            isolation=self.isolation,
            ran_by=self.ran_by,
            endpoint_resolver=(
                resolver.get(spec.name) if isinstance(resolver, Mapping) else resolver
            ),
            simulated=self.simulated,
        )


def _each_target(
    run: Callable[[TargetSpec], list[CheckResult]], specs: Sequence[TargetSpec], max_workers: int
) -> list[CheckResult]:
    """*run* for every spec, *max_workers* at a time; the results in the order of *specs*."""
    results: list[CheckResult] = []
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        for batch in pool.map(run, specs):
            results.extend(batch)
    return results


def _finish(
    policy: Policy,
    results: list[CheckResult],
    log: ResultRecorder | None,
    notifiers: Sequence[Notifier] | None,
    now: datetime,
) -> list[CheckResult]:
    """Record *results* in *log*, notify the failures, and return them."""
    _record(log, results)
    _notify_failures(policy, results, notifiers, now)
    return results


def run_checks(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    checks: Sequence[Verifier] | None = None,
    log: ResultRecorder | None = None,
    tiers: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    all_points: bool = False,
    notifiers: Sequence[Notifier] | None = None,
    ran_by: str | None = None,
    max_workers: int = 4,
    simulated: bool = False,
    endpoint_resolver: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]] | None = None,
) -> list[CheckResult]:
    """Run verifications and integrity checks on every target of *policy*.

    Each target is listed once. Target-level checks (`Fresh`, `HasOffsiteCopy`, S3 and RDS
    settings) run once per target; point-level checks run on the newest point of each tier
    (every point with *all_points*), in the tiers *tiers* (default: the policy's
    ``verification.integrity_covers_tiers``, or every tier). Every result is passed to
    ``log.record``; failed checks are notified (`EventKind.VERIFICATION_FAILED`).

    Example:
        >>> from datetime import datetime, UTC
        >>> import backuppolicy as bp
        >>> from backuppolicy.testing import MemoryTarget
        >>> policy = bp.Policy.from_dict({"name": "demo", "schedule": {"every": "day", "at": "04:00"},
        ...     "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "db", "kind": "testing:memory"}]})
        >>> db = MemoryTarget("db", policy="demo", clock=lambda: datetime(2026, 11, 26, 4, tzinfo=UTC))
        >>> _ = db.create_backup()
        >>> results = run_checks(policy, now=datetime(2026, 11, 26, 5, tzinfo=UTC), targets={"db": db},
        ...                      checks=[Completed(), Fresh()])
        >>> [(r.check, r.status.value) for r in results]
        [('completed', 'pass'), ('fresh', 'pass')]

    Args:
        policy: The policy.
        now: Time of the checks (timezone-aware).
        targets: Targets by name (default: built from the policy).
        checks: The checks (default: `default_checks`).
        log: The testing log (anything with ``record(result)``).
        tiers: Tiers whose points are checked.
        only: Names of the targets to check (default: every enabled target).
        all_points: Check every point, not only the newest of each tier.
        notifiers: Who hears about failures (default: the policy's notifications).
        ran_by: Who runs the checks (default: ``user@host``).
        max_workers: Targets checked at the same time.
        simulated: The targets are stand-ins (a simulated world): every result is marked so.
        endpoint_resolver: One resolver, or resolvers per target name, for checks that restore
            and probe (`IntegrityCheck` with ``restore_databases``; see `RestoreTest`).

    Returns:
        Every result, target by target in policy order.

    .. versionchanged:: 0.2
       *endpoint_resolver*.
    """
    ensure_aware(now, field="now")
    names = _names(policy, only)
    if isinstance(endpoint_resolver, Mapping):
        _check_names("endpoint_resolver", endpoint_resolver, policy, targets)
    specs = [policy.target(n) for n in names]
    built = _targets_for(policy, targets, names)
    chosen_checks = list(checks) if checks is not None else default_checks(policy)
    wanted_tiers = (
        list(tiers)
        if tiers is not None
        else list(policy.verification.integrity_covers_tiers) or None
    )
    contexts = _Contexts(policy, now, ran_by or default_ran_by(), simulated, endpoint_resolver)

    def run(spec: TargetSpec) -> list[CheckResult]:
        target = built[spec.name]
        context = contexts.of(spec)
        try:
            points = list(target.list_points())
        except Exception as exc:  # noqa: BLE001 - one failing target does not stop the others
            return [_listing_failed(spec.name, exc, context, CheckKind.VERIFICATION)]
        context = attrs.evolve(context, points=points)
        results: list[CheckResult] = []
        selected = _chosen_points(points, wanted_tiers, all_points=all_points)
        for check in chosen_checks:
            if _scope(check) == "target":
                results.append(check.verify(target, None, context))
            else:
                results.extend(check.verify(target, point, context) for point in selected)
        return results

    return _finish(policy, _each_target(run, specs, max_workers), log, notifiers, now)


def restore_point(
    policy: Policy, spec: TargetSpec, listed: Sequence[RecoveryPoint]
) -> RecoveryPoint | None:
    """The point a restore test of *spec* restores: the newest completed one of its source tier.

    The source tier first (the first tier, where the isolation profile lives), then any tier.
    """
    tiers = policy.tiers_for(spec) if hasattr(policy, "tiers_for") else ()
    source_tier = tiers[0].name if tiers else "local"
    return (
        newest_good(listed, source_tier)
        or newest_good(listed)
        or max((p for p in listed if p.is_good), key=_order_key, default=None)
    )


def restore_test(
    policy: Policy,
    *,
    now: datetime,
    application: str | None = None,
    targets: Mapping[str, BackupTarget] | None = None,
    probes: Mapping[str, Sequence[ProbeLike]] | Sequence[ProbeLike] | None = None,
    log: ResultRecorder | None = None,
    endpoint_resolver: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]] | None = None,
    only: Iterable[str] | None = None,
    notifiers: Sequence[Notifier] | None = None,
    ran_by: str | None = None,
    points: Mapping[str, RecoveryPoint] | None = None,
    simulated: bool = False,
) -> list[CheckResult]:
    """Restore-test the newest completed point of each target of an application (or of all).

    For every target of *application* (every enabled target when ``None``; *only* narrows it
    to named targets), the newest completed backup of its source tier (the first tier, where
    the isolation profile lives; any tier if it has none) is restored into the policy's
    isolation profile with `RestoreTest`, probed and torn down. The probes are those the
    policy file declares for the target (``probes:``, ``fingerprint:``; built by
    `backuppolicy.checks._declared.declared_probes`), then those passed in *probes*: the CLI,
    the Lambda handler and Python run the same proof. A target without any probe is
    restored and torn down but its result is `CheckStatus.UNPROVEN`: nothing looked at its
    data. Every result is recorded in *log*; failed and unproven tests are notified.

    Args:
        policy: The policy.
        now: Time of the test (timezone-aware).
        application: The application to test (default: all).
        targets: Targets by name (default: built from the policy).
        probes: More probes per target name, or one list for every target (added to the
            policy file's). A name that is no target of the policy is an error (a misspelt key
            would silently prove nothing).
        log: The testing log (anything with ``record(result)``).
        endpoint_resolver: One resolver, or resolvers per target name (see `RestoreTest`).
        only: Names of the targets to test.
        notifiers: Who hears about failures (default: the policy's notifications).
        ran_by: Who runs the test (default: ``user@host``).
        points: The point to restore, per target name (an off-site copy too), instead of the
            newest completed point of the source tier.
        simulated: The targets are stand-ins (a simulated world): every result is marked so.

    Returns:
        One result per target.

    Raises:
        PolicyError: A key of *probes* or *endpoint_resolver* names no target (the message
            suggests the closest name).
    """
    ensure_aware(now, field="now")
    if isinstance(probes, Mapping):
        _check_names("probes", probes, policy, targets)
    if isinstance(endpoint_resolver, Mapping):
        _check_names("endpoint_resolver", endpoint_resolver, policy, targets)
    specs = (
        list(policy.targets_for(application))
        if application is not None
        else [s for s in policy.targets if s.enabled]
    )
    if only is not None:
        wanted = set(only)
        specs = [s for s in specs if s.name in wanted]
    built = _targets_for(policy, targets, [s.name for s in specs])
    contexts = _Contexts(policy, now, ran_by or default_ran_by(), simulated, endpoint_resolver)
    results: list[CheckResult] = []
    for spec in specs:
        target = built[spec.name]
        context = contexts.of(spec)
        given = probes.get(spec.name, ()) if isinstance(probes, Mapping) else (probes or ())
        # The policy file's probes and fingerprints first, then those passed in Python.
        target_probes = [*declared_probes(spec, target), *given]
        chosen = (points or {}).get(spec.name)
        if chosen is not None:
            results.append(RestoreTest(probes=target_probes).verify(target, chosen, context))
            continue
        try:
            listed = list(target.list_points())
        except Exception as exc:  # noqa: BLE001 - reported as a failed test of that target
            results.append(_listing_failed(spec.name, exc, context, CheckKind.RESTORE_TEST))
            continue
        newest = restore_point(policy, spec, listed)
        results.append(RestoreTest(probes=target_probes).verify(target, newest, context))
    return _finish(policy, results, log, notifiers, now)


# --------------------------------------------------------------------------------------------
# The rolling integrity schedule (seed §4.1, §4.2)


def last_integrity_checks(
    entries: Iterable[CheckResult | Any],
) -> dict[tuple[str, str], datetime]:
    """When each copy was last integrity-checked, by ``(target, point id)``, from the testing log.

    *entries* are `CheckResult` or log entries (anything with ``.result``). Integrity results
    count unless skipped or failed: a failed copy stays due, so it is checked again.
    """
    last: dict[tuple[str, str], datetime] = {}
    for entry in entries:
        result: CheckResult = getattr(entry, "result", entry)
        if result.kind is not CheckKind.INTEGRITY or result.point_id is None:
            continue
        if result.status in (CheckStatus.SKIPPED, CheckStatus.FAIL):
            continue
        key = (result.target, result.point_id)
        if key not in last or result.checked_at > last[key]:
            last[key] = result.checked_at
    return last


def _log_entries(log: object, now: datetime) -> list[Any]:
    read = getattr(log, "entries", None)
    if not callable(read):
        return []
    return list(read(until=now + timedelta(microseconds=1)))


def _listed(
    policy: Policy,
    built: Mapping[str, BackupTarget],
    specs: Sequence[TargetSpec],
    now: datetime,
    runner: str,
) -> tuple[dict[str, list[RecoveryPoint]], list[CheckResult]]:
    points: dict[str, list[RecoveryPoint]] = {}
    failed: list[CheckResult] = []
    for spec in specs:
        try:
            points[spec.name] = list(built[spec.name].list_points())
        except Exception as exc:  # noqa: BLE001 - one failing target does not stop the others
            context = VerifyContext(
                now=now, policy=policy, application=spec.application, ran_by=runner
            )
            failed.append(_listing_failed(spec.name, exc, context, CheckKind.INTEGRITY))
    return points, failed


def integrity_plan(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    log: object | None = None,
    history: Iterable[CheckResult | Any] = (),
    only: Iterable[str] | None = None,
    catch_up: int | None = None,
) -> list[IntegritySlot]:
    """The copies whose integrity check is due on *now*'s day: the rolling schedule, read-only.

    Lists every enabled target once, reads when each copy was last checked from *log* (its
    ``entries``) and *history*, and returns
    `backuppolicy.core.integrity_schedule.integrity_slots_due` (overdue copies first, bounded
    by *catch_up*). `integrity_due` runs them.
    """
    ensure_aware(now, field="now")
    names = _names(policy, only)
    built = _targets_for(policy, targets, names)
    listed, _ = _listed(policy, built, [policy.target(n) for n in names], now, "")
    last = last_integrity_checks([*_log_entries(log, now), *history])
    every = [p for name in names for p in listed.get(name, ())]
    return integrity_slots_due(policy, every, now=now, last_checked=last, catch_up=catch_up)


def integrity_due(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    log: ResultRecorder | None = None,
    history: Iterable[CheckResult | Any] = (),
    probes: Mapping[str, Sequence[ProbeLike]] | None = None,
    endpoint_resolver: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]] | None = None,
    only: Iterable[str] | None = None,
    catch_up: int | None = None,
    sample_blocks: int = 64,
    notifiers: Sequence[Notifier] | None = None,
    ran_by: str | None = None,
    max_workers: int = 4,
    ebs_direct: bool = True,
    simulated: bool = False,
    listed: Mapping[str, Iterable[RecoveryPoint]] | None = None,
) -> list[CheckResult]:
    """Integrity-check the copies due today on the rolling schedule, and record the results.

    Every copy in every covered tier is checked at least once per integrity window (see
    `backuppolicy.core.integrity_schedule`): each day, the copies whose slot falls on *now*'s
    day, plus the overdue and missed ones (at most *catch_up*). Each is checked with
    `~backuppolicy.checks.integrity.IntegrityCheck`: EBS snapshots block by block against their
    copy (EBS direct APIs, *sample_blocks* blocks each); RDS snapshots (off-site copies too)
    restored into the isolation profile and probed with *probes* of their target, as
    `restore_test` does. The result's evidence says why the copy was due (``schedule``). Every
    result goes to ``log.record``; failures are notified.

    Args:
        policy: The policy.
        now: Time of the run (timezone-aware).
        targets: Targets by name (default: built from the policy).
        log: The testing log: read for the last checks (its ``entries``), and written.
        history: More past results (or log entries) to read the last checks from.
        probes: Probes per target name, for restored databases.
        endpoint_resolver: One resolver, or resolvers per target name (see `RestoreTest`).
        only: Names of the targets to check (default: every enabled target).
        catch_up: Most overdue and missed copies per day (default: the steady daily load).
        sample_blocks: EBS blocks read and compared per snapshot.
        notifiers: Who hears about failures (default: the policy's notifications).
        ran_by: Who runs the checks (default: ``user@host``).
        max_workers: Targets checked at the same time.
        ebs_direct: Compare EBS snapshots through the EBS direct APIs; ``False`` restores them
            to volumes and compares sizes only (evidence of the volumes, not of their data),
            for worlds without the EBS direct APIs (the demo's moto).
        simulated: The targets are stand-ins (a simulated world): every result is marked so.
        listed: Points already listed, by target name (e.g. once after the day's backups,
            shared with `plan_retention`); the other targets are listed here.

    Returns:
        One result per target whose listing failed, then one per copy checked, target by
        target in policy order.

    .. versionchanged:: 0.2
       *ebs_direct*, *simulated* and *listed*.
    """
    ensure_aware(now, field="now")
    names = _names(policy, only)
    specs = [policy.target(n) for n in names]
    built = _targets_for(policy, targets, names)
    runner = ran_by or default_ran_by()
    contexts = _Contexts(policy, now, runner, simulated, endpoint_resolver)
    given = dict(listed or {})
    fresh, results = _listed(policy, built, [s for s in specs if s.name not in given], now, runner)
    known = {**{name: list(given[name]) for name in names if name in given}, **fresh}
    last = last_integrity_checks([*_log_entries(log, now), *history])
    every = [p for name in names for p in known.get(name, ())]
    due = integrity_slots_due(policy, every, now=now, last_checked=last, catch_up=catch_up)
    by_target: dict[str, list[IntegritySlot]] = {}
    for slot in due:
        by_target.setdefault(slot.target, []).append(slot)

    def run(spec: TargetSpec) -> list[CheckResult]:
        slots = by_target.get(spec.name, [])
        if not slots:
            return []
        target = built[spec.name]
        points = known[spec.name]
        context = contexts.of(spec, points)
        check = IntegrityCheck(
            restore_databases=True,
            probes=(probes or {}).get(spec.name, ()),
            sample_blocks=sample_blocks,
            ebs_direct=ebs_direct,
        )
        by_id = {p.id: p for p in points}
        out: list[CheckResult] = []
        for slot in slots:
            result = check.verify(target, by_id[slot.point_id], context)
            schedule = {
                "reason": slot.reason,
                "since": slot.since.isoformat(),
                "window_days": slot.window_days,
                "last_checked": slot.last_checked.isoformat() if slot.last_checked else None,
            }
            out.append(attrs.evolve(result, evidence={**result.evidence, "schedule": schedule}))
        return out

    results.extend(_each_target(run, specs, max_workers))
    return _finish(policy, results, log, notifiers, now)
