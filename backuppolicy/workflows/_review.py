"""What the policy requires of the testing log, and what is overdue (seed §3.2, §3.3, §4.1, §4.2).

`requirements` lists, for a policy at a given time, each restore test and integrity check the
testing log must show, with the entries that meet it; `TestLog.overdue` turns the unmet ones
into `OverdueFinding` objects and the audit reads them all. Public through
`backuppolicy.workflows.testlog`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.model import ensure_aware
from backuppolicy.core.results import CheckKind, CheckStatus
from backuppolicy.core.schedule import Cadence
from backuppolicy.workflows._logformat import LogEntry, aware

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "OverdueFinding",
    "OverdueKind",
    "Requirement",
    "cadence_span",
    "entry_order",
    "newest",
    "requirements",
]

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


class OverdueKind(enum.Enum):
    """What a testing-log review found missing."""

    APPLICATION_NOT_TESTED = "application-not-tested"
    """An application is not covered within its cadence (seed §3.3: a year): one of its
    targets (or of its critical targets) has no restore test that passed with data proof."""
    PERIOD_WITHOUT_TEST = "period-without-test"
    """A finished period (seed §3.2: a quarter) had no restore test that passed with data proof."""
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
    window_start: datetime = attrs.field(validator=aware)
    window_end: datetime = attrs.field(validator=aware)
    detail: str
    application: str | None = None
    target: str | None = None
    tier: str | None = None
    last: LogEntry | None = None

    def to_dict(self) -> dict[str, object]:
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
class Requirement:
    """One thing the policy requires of the log, with the entries that meet it.

    *missing* names what is still needed (targets of an application without a proven restore
    test); *rejected* holds the entries in the window that did not count (failed, unproven).
    """

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
    missing: tuple[str, ...] = ()
    rejected: tuple[LogEntry, ...] = ()

    @property
    def met(self) -> bool:
        return bool(self.evidence) and not self.missing

    @property
    def simulated(self) -> bool:
        """Whether it is met only by evidence obtained against stand-ins."""
        return self.met and all(e.result.simulated for e in self.evidence)

    def detail(self) -> str:
        window = f"{self.window_start:%Y-%m-%d} to {self.window_end:%Y-%m-%d}"
        if self.met:
            newest = max(self.evidence, key=entry_order)
            label = " (simulated)" if self.simulated else ""
            return (
                f"{self.what}{label}: {len(self.evidence)} in {window}, last "
                f"{newest.checked_at:%Y-%m-%d} ({newest.id})"
            )
        last = f"; last {self.last.checked_at:%Y-%m-%d} ({self.last.id})" if self.last else ""
        why = ""
        if self.rejected:
            counts: dict[str, list[str]] = {}
            for entry in sorted(self.rejected, key=entry_order):
                counts.setdefault(_rejected_word(entry), []).append(entry.id)
            why = (
                "; "
                + ", ".join(
                    f"{len(ids)} {word} ({', '.join(ids[:3])})" for word, ids in counts.items()
                )
                + " did not count"
            )
        if self.missing:
            done = sorted({e.target for e in self.evidence})
            passed = f" ({', '.join(done)} passed)" if done else ""
            return (
                f"application {self.subject} not covered in {window}: no restore test with "
                f"data proof of {', '.join(self.missing)}{passed}{why}{last}"
            )
        return f"no {self.what} in {window}{why}{last}"

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


def _rejected_word(entry: LogEntry) -> str:
    """Why an entry did not count: its status, or ``unproven`` for a pass without data proof."""
    if entry.status is CheckStatus.PASS:
        return "unproven (passed without a probe)"
    return str(entry.status.value)


def entry_order(entry: LogEntry) -> tuple[datetime, str]:
    return (entry.checked_at, entry.id)


def newest(entries: Iterable[LogEntry]) -> LogEntry | None:
    return max(entries, key=entry_order, default=None)


def _window_start(span: Duration, now: datetime) -> datetime:
    start = span.before(now)
    return start if start is not None else datetime.min.replace(tzinfo=UTC)


def _needed(policy: Policy, application: str) -> list[TargetSpec]:
    """The targets whose restore tests cover *application*: its critical ones, else all enabled."""
    enabled = [s for s in policy.targets if s.application == application and s.enabled]
    return [s for s in enabled if s.critical] or enabled


def _tests(spec: TargetSpec, target: str) -> bool:
    """Whether a result about *target* is about *spec* (a selector's found targets are its own)."""
    return target == spec.name or (spec.selector is not None and target.startswith(f"{spec.name}-"))


def _application_requirements(
    policy: Policy, restore_tests: Sequence[LogEntry], *, now: datetime
) -> list[Requirement]:
    """§3.3: per application, a restore test with data proof of each needed target."""
    application_of = {spec.name: spec.application for spec in policy.targets}
    proven = [e for e in restore_tests if e.result.proven]
    result: list[Requirement] = []

    def app_of(entry: LogEntry) -> str | None:
        return entry.application or application_of.get(entry.target)

    start = _window_start(cadence_span(policy.verification.restore_test_per_application_every), now)
    for app in policy.applications:
        mine = [e for e in proven if app_of(e) == app]
        in_window = [e for e in mine if e.checked_at >= start]
        evidence: list[LogEntry] = []
        missing: list[str] = []
        for spec in _needed(policy, app):
            found = newest(e for e in in_window if _tests(spec, e.target))
            if found is None:
                missing.append(spec.name)
            else:
                evidence.append(found)
        if not evidence and not missing:  # no enabled target: any proven test of it counts
            evidence = in_window
        result.append(
            Requirement(
                kind=OverdueKind.APPLICATION_NOT_TESTED,
                subject=app,
                window_start=start,
                window_end=now,
                evidence=tuple(evidence),
                last=newest(e for e in mine if e.checked_at < start),
                application=app,
                what=f"restore test with data proof of application {app}",
                missing=tuple(missing),
                rejected=tuple(
                    e
                    for e in restore_tests
                    if app_of(e) == app
                    and e.checked_at >= start
                    and not e.result.proven
                    and e.status is not CheckStatus.SKIPPED
                ),
            )
        )

    return result


def requirements(
    policy: Policy,
    entries: Sequence[LogEntry],
    *,
    now: datetime,
    since: datetime | None = None,
) -> list[Requirement]:
    """What the policy requires of the testing log at *now*, each with the entries that meet it.

    * Each application: within one ``restore_test_per_application_every`` before *now* (a
      rolling window: "in the last 12 months"), a restore test that passed with data proof
      (`CheckResult.proven`) of each of its enabled targets, or of each target marked
      ``critical`` when some are. One target never covers its application for the others.
    * Each finished ``restore_test_every`` period (calendar quarters in the policy's time zone)
      that ends after *since* (default: one year before *now*) and no later than *now*: at
      least one restore test that passed with data proof. A failed or unproven test never
      meets it.
    * Each enabled target and each tier of it that integrity checks cover: a passing integrity
      check of that tier within one ``integrity_check_every`` before *now*.
    """
    now = ensure_aware(now, field="now")
    v = policy.verification
    current = [e for e in entries if e.checked_at <= now]
    restore_tests = [e for e in current if e.kind is CheckKind.RESTORE_TEST]
    proven = [e for e in restore_tests if e.result.proven]
    integrity = [e for e in current if e.kind is CheckKind.INTEGRITY and e.passed]
    result = _application_requirements(policy, restore_tests, now=now)

    cadence = v.restore_test_every
    lookback = ensure_aware(since, field="since") if since is not None else None
    if lookback is None:
        lookback = _window_start(Duration(years=1), now)
    ran = [e for e in restore_tests if e.status is not CheckStatus.SKIPPED]
    periods: list[Requirement] = []
    end = cadence.period_start(now, policy.timezone)
    while end > lookback:
        begin = cadence.period_start(end - timedelta(microseconds=1), policy.timezone)
        key = cadence.period_key(begin, policy.timezone)
        periods.append(
            Requirement(
                kind=OverdueKind.PERIOD_WITHOUT_TEST,
                subject=key,
                window_start=begin,
                window_end=end,
                evidence=tuple(e for e in proven if begin <= e.checked_at < end),
                last=newest(e for e in proven if e.checked_at < begin),
                what="restore test that passed with data proof",
                rejected=tuple(
                    e for e in ran if begin <= e.checked_at < end and not e.result.proven
                ),
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
                Requirement(
                    kind=OverdueKind.COPY_NOT_CHECKED,
                    subject=subject,
                    window_start=start,
                    window_end=now,
                    evidence=tuple(e for e in mine if e.checked_at >= start),
                    last=newest(e for e in mine if e.checked_at < start),
                    application=spec.application,
                    target=spec.name,
                    tier=tier,
                    what=f"passing integrity check of {subject}",
                )
            )
    return result
