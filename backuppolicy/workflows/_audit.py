"""Audit a policy: is every clause of it met, for every target, with evidence? (`audit`).

The audit reads what exists (each target's recovery points, listed once), what was proven
(verifier results passed in, and the backup testing log), and returns a
`~backuppolicy.report.ComplianceReport` with one `~backuppolicy.report.Finding` per clause and
target (or application, or period). A clause without evidence is **not** compliant.

Clauses (section numbers of the written policy):

============================  ==========  =============================================================
clause key                    section     compliant when
============================  ==========  =============================================================
``daily-backup``              §1.1, §1.2  the newest completed backup in the target's source tier is
                                          younger than the application's RPO + ``freshness_grace``
``retention``                 §2.1, §2.2  the retention plan deletes nothing: no point older than the
                                          rule lingers (held, unmanaged and newest points are kept by
                                          the planner, so they never count against it)
``offsite-copy``              §1.4        each copy tier has a completed copy within its cadence
                                          (+ grace), e.g. a weekly off-site copy
``quarterly-restore-test``    §3.2        each finished quarter of the last year had a restore test
                                          that passed with data proof (failed and unproven tests
                                          never count)
``application-restore-test``  §3.3        each application was covered in the last year: each of
                                          its targets (or each target marked ``critical``) passed
                                          a restore test with data proof
``integrity-check``           §4.1, §4.2  each covered tier of each target passed an integrity check
                                          in the last year
``copy-integrity``            §4.1, §4.2  every copy of each covered tier passed an integrity check
                                          within its integrity window; the evidence lists when each
                                          copy was last checked (`copy_integrity_status`)
``testing-log``               §3.5        with a log: no entry of the log is damaged, and none was
                                          removed, inserted or reordered (`TestLog.damage`)
``s3-versioning``             §7.1        S3 targets: the latest ``versioning`` check passed
``encryption``                §7.5, §8.3  no check or point says a copy is unencrypted, and something
                                          says they are (``encrypted`` checks, the points' metadata)
``not-public``                §7.5, §8.3  the latest ``not-public`` checks of the target and its
                                          existing points passed
``rds-settings``              §1.2, §2.1  RDS targets: the latest ``rds-settings`` check passed
``backup-size``               §1.1        with ``verification.size_anomaly``: the latest
                                          ``size-anomaly`` checks found no backup far off its
                                          target's rolling median size
============================  ==========  =============================================================

A finding met only by evidence obtained against stand-ins (results marked ``simulated``) is
``ok (simulated)``: compliant, and labelled so in every format of the report.

Verification results count when they were checked within *evidence_within* (35 days) before
*now*; results about points that no longer exist are ignored. Each non-compliant finding is sent
to the policy's notifiers (seed §1.7).

Example:
    >>> from datetime import datetime, UTC
    >>> import backuppolicy as bp
    >>> from backuppolicy.testing import MemoryTarget
    >>> now = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    >>> policy = bp.Policy.from_dict({
    ...     "name": "demo", "schedule": {"every": "day", "at": "04:00"},
    ...     "retention": {"max_age": "35d"},
    ...     "targets": [{"name": "db", "kind": "testing:memory", "application": "shop"}],
    ... })
    >>> db = MemoryTarget("db", policy="demo", clock=lambda: now)
    >>> _ = db.create_backup(token="today")
    >>> report = audit(policy, now=now, targets={"db": db}, notifiers=[])
    >>> [(f.clause.key, f.compliant) for f in report.of("daily-backup") + report.of("retention")]
    [('daily-backup', True), ('retention', True)]
    >>> report.of("application-restore-test")[0].detail
    'application shop not covered in 2025-11-26 to 2026-11-26: no restore test with data proof of db'
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.resolution import get_resolver
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.retention import MaxAge, RetentionRule
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.selector import RESOURCE_TYPES
from backuppolicy.notify import Event, EventKind, Notifier, NotifierFailure, notify_all
from backuppolicy.report import Clause, ComplianceReport, Finding, LoggedCheck
from backuppolicy.workflows import _assemble, pruning
from backuppolicy.workflows._audit_locks import hold_enforcement_findings, tier_lock_findings
from backuppolicy.workflows._copy_integrity import copy_integrity_findings
from backuppolicy.workflows._review import requirements
from backuppolicy.workflows.testlog import (
    CorruptLogLineWarning,
    LogEntry,
    OverdueKind,
    TestLog,
    cadence_span,
)

if TYPE_CHECKING:
    import boto3

    from backuppolicy.core._planner import RetentionPlan
    from backuppolicy.core.policy import Policy, TargetSpec, TierSpec
    from backuppolicy.core.targets import BackupTarget

__all__ = ["CHECK_NAMES", "CLAUSE_ORDER", "audit"]

_log = logging.getLogger("backuppolicy.audit")

CLAUSE_ORDER: Final = (
    "daily-backup",
    "retention",
    "offsite-copy",
    "quarterly-restore-test",
    "application-restore-test",
    "integrity-check",
    "copy-integrity",
    "testing-log",
    "s3-versioning",
    "encryption",
    "not-public",
    "rds-settings",
    "backup-size",
    "tier-locks",
    "hold-enforcement",
    "coverage",
)
"""Keys of the clauses the audit checks, in report order."""

CHECK_NAMES: Final[Mapping[str, tuple[str, ...]]] = {
    "s3-versioning": ("versioning",),
    "encryption": ("encrypted", "bucket-encryption"),
    "not-public": ("not-public", "bucket-public-access"),
    "rds-settings": ("rds-settings",),
    "backup-size": ("size-anomaly",),
}
"""Names of the verifier checks whose results are evidence for each verification clause."""

_EVENTS: Final = {
    "daily-backup": EventKind.OVERDUE,
    "offsite-copy": EventKind.OVERDUE,
    "quarterly-restore-test": EventKind.OVERDUE,
    "application-restore-test": EventKind.OVERDUE,
    "integrity-check": EventKind.OVERDUE,
    "copy-integrity": EventKind.OVERDUE,
    "retention": EventKind.PRUNE_FAILED,
}
_RDS_KINDS: Final = frozenset({"rds-instance", "aurora-cluster"})
_MAX_IDS_IN_DETAIL = 5


class _Listed:
    """A target whose listing is already known: retention planning must not list it again."""

    def __init__(self, target: BackupTarget, points: Sequence[RecoveryPoint]) -> None:
        self._target = target
        self._points = points

    def list_points(self) -> Iterator[RecoveryPoint]:
        return iter(self._points)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _ids(points: Iterable[RecoveryPoint | LogEntry | str]) -> str:
    ids = [p if isinstance(p, str) else p.id for p in points]
    more = len(ids) - _MAX_IDS_IN_DETAIL
    return ", ".join(ids[:_MAX_IDS_IN_DETAIL]) + (f" (+{more} more)" if more > 0 else "")


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _backups(points: Iterable[RecoveryPoint], tier: str) -> list[RecoveryPoint]:
    """Completed backups of *tier* (object versions are data, not backups)."""
    return [p for p in points if p.tier == tier and p.is_good and p.kind != "s3-version"]


def _newest(points: Iterable[RecoveryPoint]) -> RecoveryPoint | None:
    return max(points, key=lambda p: p.order_key, default=None)


def _age(now: datetime, moment: datetime) -> str:
    hours = (now - moment) / timedelta(hours=1)
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"  # noqa: PLR2004 - 2 days


# --------------------------------------------------------------------------------------------
# Per target


class _TargetAudit:
    """The clauses about one target, from its listing and the verification results."""

    def __init__(
        self,
        policy: Policy,
        spec: TargetSpec,
        points: Sequence[RecoveryPoint],
        results: Sequence[LogEntry],
        *,
        now: datetime,
        evidence_since: datetime,
        check_names: Mapping[str, Sequence[str]],
    ) -> None:
        self.policy = policy
        self.spec = spec
        self.points = points
        self.results = [
            r for r in results if r.target == spec.name and evidence_since <= r.checked_at <= now
        ]
        self.now = now
        self.check_names = check_names
        tiers = policy.tiers_for(spec)
        self.source_tier = tiers[0].name if tiers else "local"
        self.copy_tiers: tuple[TierSpec, ...] = tiers[1:]
        self.grace = policy.verification.freshness_grace

    def finding(self, clause: Clause, *, compliant: bool, **fields: Any) -> Finding:
        return Finding(
            clause, compliant, target=self.spec.name, application=self.spec.application, **fields
        )

    def daily_backup(self) -> Finding:
        objective = self.policy.objective_for(self.spec.application)
        schedule = self.policy.schedule_for(self.spec)
        cadence = schedule.cadence
        adverb = cadence.adverb if cadence is not None else "scheduled"
        clause = Clause(
            "daily-backup",
            "§1.1, §1.2",
            f"{adverb} backup within {objective.rpo.describe()} + {self.grace.describe()} grace",
        )
        start = _before(self.grace, _before(objective.rpo, self.now))
        newest = _newest(
            p for p in _backups(self.points, self.source_tier) if p.created_at <= self.now
        )
        if newest is None:
            return self.finding(
                clause,
                compliant=False,
                tier=self.source_tier,
                detail=f"no completed backup in tier {self.source_tier}",
            )
        ours = "" if newest.managed else " (not made by backuppolicy)"
        return self.finding(
            clause,
            compliant=newest.created_at >= start,
            tier=self.source_tier,
            evidence=(newest.id,),
            detail=(
                f"newest backup {_when(newest.created_at)}, {_age(self.now, newest.created_at)} "
                f"old{ours}; needed one after {_when(start)}"
            ),
        )

    def retention(self, plan: RetentionPlan | None) -> Finding:
        rule = self.policy.retention_for(self.spec, self.source_tier if self.policy.tiers else None)
        clause = Clause("retention", "§2.1, §2.2", _retention_title(rule))
        if plan is None:
            return self.finding(clause, compliant=False, detail="no retention plan: listing failed")
        error = plan.errors.get(self.spec.name)
        if error:
            return self.finding(
                clause, compliant=False, detail=f"could not plan retention: {error}"
            )
        lingering = sorted(plan.delete, key=lambda p: p.order_key)
        held = [p for p in plan.keep if p.held]
        held_note = f"; {len(held)} kept under legal hold ({_ids(held)})" if held else ""
        if lingering:
            oldest = lingering[0]
            return self.finding(
                clause,
                compliant=False,
                evidence=tuple(p.id for p in lingering),
                detail=(
                    f"{len(lingering)} point(s) past the rule still exist, oldest "
                    f"{_when(oldest.created_at)} ({'; '.join(plan.reasons.get(oldest.id, []))})"
                    f"{held_note}"
                ),
            )
        kept = [p for p in plan.keep if p.kind != "s3-version"]
        oldest_kept = min(kept, key=lambda p: p.order_key, default=None)
        since = f", oldest {_when(oldest_kept.created_at)}" if oldest_kept else ""
        return self.finding(
            clause,
            compliant=True,
            evidence=(oldest_kept.id,) if oldest_kept else (),
            detail=f"nothing past the rule; {len(kept)} backup(s) kept{since}{held_note}",
        )

    def offsite_copies(self) -> list[Finding]:
        return [self._copy(tier) for tier in self.copy_tiers]

    def _copy(self, tier: TierSpec) -> Finding:
        every = tier.every
        if isinstance(every, Schedule):
            words = every.describe()
            due = every.last_due(_before(self.grace, self.now))
        else:
            words = every.adverb
            due = _before(self.grace, _before(cadence_span(every), self.now))
        clause = Clause("offsite-copy", "§1.4", f"{words} copy to tier {tier.name}")
        newest = _newest(p for p in _backups(self.points, tier.name) if p.created_at <= self.now)
        if due is None:
            return self.finding(
                clause, compliant=True, tier=tier.name, detail="no copy was due yet"
            )
        if newest is None:
            return self.finding(
                clause,
                compliant=False,
                tier=tier.name,
                detail=f"no completed copy in tier {tier.name}; needed one after {_when(due)}",
            )
        return self.finding(
            clause,
            compliant=newest.created_at >= due,
            tier=tier.name,
            evidence=(newest.id,),
            detail=(
                f"newest copy {_when(newest.created_at)}, {_age(self.now, newest.created_at)} old; "
                f"needed one after {_when(due)}"
            ),
        )

    def _latest(self, key: str, *, skipped: bool = False) -> list[LogEntry]:
        """The latest result per subject (point or target) of the checks of clause *key*.

        Skipped results (the check does not apply) are left out, or, with *skipped*, are the
        only ones returned.
        """
        names = set(self.check_names.get(key, ()))
        existing = {p.id for p in self.points}
        latest: dict[str | None, LogEntry] = {}
        for entry in self.results:
            if entry.check not in names or (entry.status is CheckStatus.SKIPPED) is not skipped:
                continue
            if entry.point_id is not None and entry.point_id not in existing:
                continue  # about a point that is gone
            known = latest.get(entry.point_id)
            if known is None or (entry.checked_at, entry.id) > (known.checked_at, known.id):
                latest[entry.point_id] = entry
        return sorted(latest.values(), key=lambda e: (e.checked_at, e.id))

    def verified(self, key: str, clause: Clause) -> Finding:
        latest = self._latest(key)
        if not latest:
            not_applicable = self._latest(key, skipped=True)
            if not_applicable:  # the check ran and found the clause does not apply here
                newest = not_applicable[-1]
                return self.finding(
                    clause,
                    compliant=True,
                    not_applicable=True,
                    evidence=(newest.id,),
                    detail=f"not applicable: {newest.result.details}",
                )
            names = ", ".join(self.check_names.get(key, ())) or "(none configured)"
            return self.finding(
                clause, compliant=False, detail=f"no evidence: no {names} check in the window"
            )
        failed = [e for e in latest if not e.ok]  # failed or unproven: never met
        if failed:
            issues = (
                "; ".join(i for e in failed for i in e.result.issues) or failed[-1].result.details
            )
            return self.finding(
                clause,
                compliant=False,
                evidence=tuple(e.id for e in failed),
                detail=f"{len(failed)} failed check(s): {issues}",
            )
        newest = latest[-1]
        warned = [e for e in latest if e.status is CheckStatus.WARN]
        if warned:  # compliant, but the warnings are the detail
            return self.finding(
                clause,
                compliant=True,
                simulated=all(e.result.simulated for e in latest),
                evidence=tuple(e.id for e in latest),
                detail=f"{len(latest)} check(s), {len(warned)} warning(s): "
                + "; ".join(e.result.details for e in warned[-_MAX_IDS_IN_DETAIL:]),
            )
        return self.finding(
            clause,
            compliant=True,
            simulated=all(e.result.simulated for e in latest),
            evidence=tuple(e.id for e in latest),
            detail=f"{len(latest)} check(s) passed, last {_when(newest.checked_at)}: {newest.result.details}".rstrip(
                ": "
            ),
        )

    def encryption(self) -> Finding:
        clause = Clause("encryption", "§7.5, §8.3", "copies encrypted at rest")
        latest = self._latest("encryption")
        checked = {e.point_id for e in latest}
        backups = [p for p in self.points if p.kind != "s3-version" and p.is_good]
        plain = [p for p in backups if p.id not in checked and p.encrypted is False]
        sealed = [p for p in backups if p.id not in checked and p.encrypted is True]
        unknown = [p for p in backups if p.id not in checked and p.encrypted is None]
        failed = [e for e in latest if not e.ok]
        if failed or plain:
            return self.finding(
                clause,
                compliant=False,
                evidence=(*(e.id for e in failed), *(p.id for p in plain)),
                detail=(
                    f"not encrypted: {len(plain)} point(s) by their metadata"
                    f"{' (' + _ids(plain) + ')' if plain else ''}, {len(failed)} failed check(s)"
                ),
            )
        if not latest and not sealed:
            return self.finding(
                clause,
                compliant=False,
                detail="no evidence: no encrypted check and no point reports its encryption",
            )
        note = f"; {len(unknown)} point(s) without evidence" if unknown else ""
        declared = [e for e in latest if e.result.evidence.get("verified") is False]
        note += f"; {len(declared)} declared, not verified" if declared else ""
        return self.finding(
            clause,
            compliant=True,
            simulated=bool(latest) and all(e.result.simulated for e in latest),
            evidence=(*(e.id for e in latest), *(p.id for p in sealed)),
            detail=f"{len(sealed)} point(s) encrypted by their metadata, {len(latest)} check(s) passed{note}",
        )


def _verification_findings(
    one: _TargetAudit, spec: TargetSpec, policy: Policy
) -> list[tuple[str, Finding]]:
    """The target's findings from verification results: (clause key, finding) pairs."""
    v = policy.verification
    found: list[tuple[str, Finding]] = []
    if spec.kind == "s3-bucket":
        clause = Clause("s3-versioning", "§7.1", "S3 versioning enabled")
        found.append(("s3-versioning", one.verified("s3-versioning", clause)))
    if v.require_encryption:
        found.append(("encryption", one.encryption()))
    if v.require_private:
        clause = Clause("not-public", "§7.5, §8.3", "no public access or sharing")
        found.append(("not-public", one.verified("not-public", clause)))
    if v.size_anomaly is not None:
        clause = Clause("backup-size", "§1.1", "backup sizes near their rolling median")
        found.append(("backup-size", one.verified("backup-size", clause)))
    if spec.kind in _RDS_KINDS:
        clause = Clause("rds-settings", "§1.2, §2.1", "RDS backup settings match the policy")
        found.append(("rds-settings", one.verified("rds-settings", clause)))
    return found


def _before(duration: Duration, moment: datetime) -> datetime:
    earlier = duration.before(moment)
    return earlier if earlier is not None else datetime.min.replace(tzinfo=moment.tzinfo)


def _retention_title(rule: RetentionRule) -> str:
    if isinstance(rule, MaxAge):
        return f"retention {rule.duration.describe()}"
    return f"retention: {rule.describe()}"


# --------------------------------------------------------------------------------------------
# Policy-wide clauses from the testing log


def _log_findings(
    policy: Policy, entries: Sequence[LogEntry], *, now: datetime, since: datetime | None
) -> dict[str, list[Finding]]:
    v = policy.verification
    found: dict[str, list[Finding]] = {
        "quarterly-restore-test": [],
        "application-restore-test": [],
        "integrity-check": [],
    }
    period = v.restore_test_every
    every_period = Clause(
        "quarterly-restore-test",
        "§3.2",
        f"a restore test every {period.value}"
        if period is not Cadence.QUARTER
        else "a restore test every quarter",
    )
    per_app = Clause(
        "application-restore-test",
        "§3.3",
        f"each application restore-tested {v.restore_test_per_application_every.adverb}",
    )
    integrity = Clause(
        "integrity-check",
        "§4.1, §4.2",
        f"{v.integrity_check_every.adverb} integrity check of every copy",
    )
    for req in requirements(policy, entries, now=now, since=since):
        evidence = tuple(e.id for e in sorted(req.evidence, key=lambda e: (e.checked_at, e.id)))
        if req.kind is OverdueKind.PERIOD_WITHOUT_TEST:
            found["quarterly-restore-test"].append(
                Finding(
                    every_period,
                    req.met,
                    simulated=req.simulated,
                    period=req.subject,
                    evidence=evidence,
                    detail=req.detail(),
                )
            )
        elif req.kind is OverdueKind.APPLICATION_NOT_TESTED:
            found["application-restore-test"].append(
                Finding(
                    per_app,
                    req.met,
                    simulated=req.simulated,
                    application=req.subject,
                    evidence=evidence,
                    detail=req.detail(),
                )
            )
        else:
            found["integrity-check"].append(
                Finding(
                    integrity,
                    req.met,
                    simulated=req.simulated,
                    target=req.target or "",
                    application=req.application or "",
                    tier=req.tier or "",
                    evidence=evidence,
                    detail=req.detail(),
                )
            )
    return found


_TESTING_LOG = Clause("testing-log", "§3.5", "the backup testing log is intact")


def _log_integrity(log: TestLog) -> Finding:
    """The testing-log finding: non-compliant when an entry is damaged, removed or moved."""
    problems = log.damage()
    damaged = [p for p in problems if p.tampering]
    notes = [p for p in problems if not p.tampering]
    where = repr(log.store)
    if damaged:
        shown = "; ".join(str(p) for p in damaged[:_MAX_IDS_IN_DETAIL])
        more = len(damaged) - _MAX_IDS_IN_DETAIL
        detail = f"{len(damaged)} damaged part(s) of {where}: {shown}" + (
            f" (+{more} more)" if more > 0 else ""
        )
    else:
        detail = f"no damaged, removed or reordered entry in {where}"
    if notes:
        detail += "; notes: " + "; ".join(str(p) for p in notes[:_MAX_IDS_IN_DETAIL])
    return Finding(
        _TESTING_LOG,
        compliant=not damaged,
        evidence=tuple(p.where for p in problems),
        detail=detail,
    )


def _unrecorded(results: Iterable[CheckResult]) -> list[LogEntry]:
    """Results passed to the audit that are not in the log, as entries with descriptive ids."""
    entries = []
    for result in results:
        point = f":{result.point_id}" if result.point_id else ""
        stamp = result.checked_at.isoformat()
        entry_id = f"{result.check}@{result.target}{point}@{stamp}"
        entries.append(LogEntry(id=entry_id, recorded_at=result.checked_at, result=result))
    return entries


# --------------------------------------------------------------------------------------------
# The audit


def _integrity_by_target(entries: Sequence[LogEntry]) -> dict[str, list[LogEntry]]:
    """The integrity checks of *entries*, by target (a year of log, read once for every target)."""
    by_target: dict[str, list[LogEntry]] = {}
    for entry in entries:
        if entry.kind is CheckKind.INTEGRITY:
            by_target.setdefault(entry.target, []).append(entry)
    return by_target


def audit(
    policy: Policy,
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    log: TestLog | None = None,
    checks: Iterable[CheckResult] | None = None,
    notifiers: Sequence[Notifier] | None = None,
    since: datetime | None = None,
    evidence_within: Duration | str = "35d",
    check_names: Mapping[str, Sequence[str]] | None = None,
    coverage: bool | None = None,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    simulated: bool = False,
) -> ComplianceReport:
    """Audit *policy* at *now*: every clause, every target, with the evidence.

    Args:
        policy: The policy.
        now: The time of the audit (timezone-aware).
        targets: Targets by name (default: `backuppolicy.workflows.backups.build_targets` of *policy*).
            Only these targets are audited (disabled targets are not built by default).
        log: The backup testing log: restore tests, integrity checks and verification results.
        checks: Verifier results that are not (yet) in the log.
        notifiers: Who hears about non-compliant findings (default: the policy's notifications;
            ``[]`` for nobody).
        since: Look at restore-test periods ending after this time (default: a year before *now*).
        evidence_within: How recent verification results must be to count.
        check_names: Names of the checks that are evidence per verification clause (default:
            `CHECK_NAMES`).
        coverage: Look for AWS resources that no target or selector protects (§1.1; one
            finding each). Default: when the audit builds its own targets or *session* is given;
            with targets passed in, the caller's world is its own, so ask with ``coverage=True``.
        session: `boto3.Session` for the coverage search.
        endpoint_url: Endpoint for the coverage search (moto server, LocalStack).
        simulated: The targets are stand-ins (a simulated world, such as the demo's moto AWS):
            every compliant finding is marked ``simulated``, also those that rest on the
            points listed rather than on results in the log.

    Returns:
        The `~backuppolicy.report.ComplianceReport`.
    """
    now = ensure_aware(now, field="now")
    window = Duration.coerce(evidence_within, field="evidence_within")
    names = {**CHECK_NAMES, **(check_names or {})}
    built = targets if targets is not None else _assemble.build_targets(policy)
    entries: list[LogEntry] = []
    log_findings: list[Finding] = []
    if log is not None:
        with warnings.catch_warnings():  # damage is a finding of its own
            warnings.simplefilter("ignore", CorruptLogLineWarning)
            entries.extend(log.entries(until=now + timedelta(microseconds=1)))
        log_findings.append(_log_integrity(log))
    entries.extend(_unrecorded(checks or ()))
    evidence_since = _before(window, now)

    found: dict[str, list[Finding]] = {key: [] for key in CLAUSE_ORDER}
    all_points: list[RecoveryPoint] = []
    integrity_history = _integrity_by_target(entries)  # each target reads only its own checks
    # A selector target stands for the targets it found (named <target>-<resource>).
    specs = _assemble.run_specs(policy.targets, built)
    for spec in specs:
        target = built.get(spec.name)
        if target is None:
            continue
        try:
            points = list(target.list_points())
        except Exception as exc:  # noqa: BLE001 - one unreachable target must not stop the audit
            _log.error("audit: listing %s failed: %s", spec.name, exc)
            found["daily-backup"].append(
                Finding(
                    Clause("daily-backup", "§1.1, §1.2", "backups can be listed"),
                    compliant=False,
                    target=spec.name,
                    application=spec.application,
                    detail=f"could not list the backups: {type(exc).__name__}: {exc}",
                )
            )
            continue
        all_points.extend(points)
        one = _TargetAudit(
            policy,
            spec,
            points,
            entries,
            now=now,
            evidence_since=evidence_since,
            check_names=names,
        )
        found["daily-backup"].append(one.daily_backup())
        plan = pruning.plan_retention(
            policy, now=now, targets={spec.name: _Listed(target, points)}, only=[spec.name]
        )
        found["retention"].append(one.retention(plan))
        found["offsite-copy"].extend(one.offsite_copies())
        found["copy-integrity"].extend(  # §4: when each copy was last checked
            copy_integrity_findings(
                policy,
                spec.name,
                spec.application,
                points,
                integrity_history.get(spec.name, ()),
                now=now,
            )
        )
        for key, finding in _verification_findings(one, spec, policy):
            found[key].append(finding)
        # Locks and holds below the library (workflows/_audit_locks.py).
        found["tier-locks"].extend(tier_lock_findings(policy, spec, target, points, now=now))
        found["hold-enforcement"].extend(hold_enforcement_findings(spec, target, points))
    for key, findings in _log_findings(policy, entries, now=now, since=since).items():
        audited = {spec.name for spec in specs if spec.name in built}
        found[key].extend(f for f in findings if not f.target or f.target in audited)

    found["testing-log"].extend(log_findings)
    found["coverage"].extend(
        _coverage(policy, session=session, endpoint_url=endpoint_url)
        if _wants_coverage(coverage=coverage, targets_given=targets is not None, session=session)
        else ()
    )
    ordered = tuple(
        attrs.evolve(finding, simulated=True) if simulated and finding.compliant else finding
        for key in CLAUSE_ORDER
        for finding in found[key]
    )
    failures = _notify(policy, ordered, now=now, notifiers=notifiers)
    return ComplianceReport(
        policy=policy.name,
        now=now,
        findings=ordered,
        points=tuple(all_points),
        timezone=policy.timezone,
        notify_failures=tuple(failures),
        log_entries=_cited(ordered, entries),
    )


def _cited(findings: Iterable[Finding], entries: Iterable[LogEntry]) -> tuple[LoggedCheck, ...]:
    """The log entries the findings cite as evidence, as the report shows them."""
    wanted = {item for finding in findings for item in finding.evidence}
    cited: dict[str, LoggedCheck] = {}
    for entry in entries:
        if entry.id in wanted and entry.id not in cited:
            result = entry.result
            cited[entry.id] = LoggedCheck(
                id=entry.id,
                checked_at=result.checked_at,
                target=result.target,
                check=result.check,
                status=result.status.value,
                details=result.details,
                tier=result.tier or "",
                point_id=result.point_id or "",
            )
    return tuple(cited.values())


_COVERAGE = Clause("coverage", "§1.1", "every tagged AWS resource is protected by the policy")


def _wants_coverage(
    *, coverage: bool | None, targets_given: bool, session: boto3.Session | None
) -> bool:
    """The default of ``audit(coverage=None)``: search when talking to AWS ourselves."""
    if coverage is not None:
        return coverage
    return not targets_given or session is not None


def _coverage(
    policy: Policy, *, session: boto3.Session | None, endpoint_url: str | None
) -> list[Finding]:
    """One finding per AWS resource that no target or selector of *policy* protects.

    Only for policies with AWS targets; searches their regions through the Resource Groups
    Tagging API (resources that never carried a tag are not seen: see
    `backuppolicy.aws.discovery.unprotected_resources`, reached through the registry's ``"aws"``
    resolver). A failed search is a finding too.
    """
    specs = [  # the targets whose kinds the tagging search finds, and the selectors
        spec
        for spec in policy.targets
        if spec.enabled and (spec.selector is not None or spec.kind in RESOURCE_TYPES)
    ]
    if not specs:
        return []
    regions = sorted(
        {str(spec.settings["region"]) for spec in specs if spec.settings.get("region")}
        | {region for spec in specs for region in spec.regions}
        | {r for spec in specs if spec.selector is not None for r in spec.selector.regions}
    )
    try:
        found = get_resolver("aws").unprotected_resources(
            policy, regions=regions, session=session, endpoint_url=endpoint_url
        )
    except Exception as exc:  # noqa: BLE001 - an unreachable API is a finding, not a crash
        detail = f"could not look for unprotected resources: {type(exc).__name__}: {exc}"
        return [Finding(_COVERAGE, compliant=False, detail=detail)]
    if not found:
        where = ", ".join(regions) or "the default region"
        return [
            Finding(_COVERAGE, compliant=True, detail=f"no unprotected tagged resource in {where}")
        ]
    return [
        Finding(
            _COVERAGE,
            compliant=False,
            target=str(item["id"]),
            evidence=(str(item["arn"]),),
            detail=f"{item['kind']} {item['id']} in {item['region']} is in no target or selector",
        )
        for item in found
    ]


def _notify(
    policy: Policy,
    findings: Sequence[Finding],
    *,
    now: datetime,
    notifiers: Sequence[Notifier] | None,
) -> list[NotifierFailure]:
    failures: list[NotifierFailure] = []
    for finding in findings:
        if finding.compliant:
            continue
        kind = _EVENTS.get(finding.clause.key, EventKind.VERIFICATION_FAILED)
        event = Event(
            kind=kind,
            policy=policy.name,
            target=finding.subject,
            message=f"not compliant with {finding.clause}: {finding.detail}",
            at=now,
            details={
                "clause": str(finding.clause),
                "tier": finding.tier,
                "evidence": " ".join(finding.evidence),
            },
        )
        chosen = notifiers if notifiers is not None else _assemble.build_notifiers(policy, kind)
        failures.extend(notify_all(chosen, event))
    return failures
