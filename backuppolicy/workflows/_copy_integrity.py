"""When each copy was last integrity-checked, and which copies are past their window (§4.1, §4.2).

`copy_integrity_status` reads the copies that exist and the testing log; the audit adds one
``copy-integrity`` finding per target and tier from it (`copy_integrity_findings`): not
compliant when a copy was not checked (with a passing result) within its integrity window
(`backuppolicy.core.integrity_schedule`), or when its latest check failed, naming the copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from backuppolicy.core._wallclock import zone_info
from backuppolicy.core.integrity_schedule import integrity_copies, integrity_window_days
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.report import Clause, Finding

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy

__all__ = ["CopyIntegrity", "copy_integrity_findings", "copy_integrity_status"]

_SHOWN: Final = 5
CLAUSE: Final = Clause(
    "copy-integrity", "§4.1, §4.2", "every copy integrity-checked within its window"
)


@attrs.frozen
class CopyIntegrity:
    """One copy and its integrity checks.

    Attributes:
        target: Name of the target.
        point_id: Id of the copy.
        tier: Its tier.
        created_at: When it was made.
        window_days: Its integrity window (`integrity_window_days`).
        last_passed: Its last passing integrity check, or ``None``.
        last_status: The status of its latest integrity check of any outcome, or ``None``.
        last_checked: When that latest check ran, or ``None``.
        due_by: The last day of its window: a passing check is needed by then.
        overdue: Whether *now* is past *due_by* (never checked with a pass in its window).
    """

    target: str
    point_id: str
    tier: str | None
    created_at: datetime
    window_days: int
    last_passed: datetime | None
    last_status: CheckStatus | None
    last_checked: datetime | None
    due_by: date
    overdue: bool

    def describe(self) -> str:
        """One line: ``<id>: last checked <day> (<status>)`` or ``never checked, due by <day>``."""
        if self.last_checked is None:
            seen = "never checked"
        else:
            status = self.last_status.value if self.last_status else "?"
            seen = f"last checked {self.last_checked.date().isoformat()} ({status})"
            if self.last_status is not CheckStatus.PASS:
                passed = self.last_passed.date().isoformat() if self.last_passed else "never"
                seen += f", last passed {passed}"
        state = "OVERDUE since" if self.overdue else "due by"
        return f"{self.point_id}: {seen}; {state} {self.due_by.isoformat()}"


def copy_integrity_status(
    policy: Policy,
    points: Iterable[RecoveryPoint],
    history: Iterable[CheckResult | Any],
    *,
    now: datetime,
) -> list[CopyIntegrity]:
    """Every copy the integrity schedule covers, with when it was last checked (and passed).

    *history* holds `CheckResult` or testing-log entries (anything with ``.result``).
    A copy is overdue when *now*'s day is past its last passing check (or its creation) plus
    its window.
    """
    ensure_aware(now, field="now")
    tz = zone_info(policy.timezone, "timezone")
    today = now.astimezone(tz).date()
    passed: dict[tuple[str, str], datetime] = {}
    latest: dict[tuple[str, str], CheckResult] = {}
    for entry in history:
        result: CheckResult = getattr(entry, "result", entry)
        if result.kind is not CheckKind.INTEGRITY or result.point_id is None:
            continue
        if result.status is CheckStatus.SKIPPED or result.checked_at > now:
            continue
        key = (result.target, result.point_id)
        if key not in latest or result.checked_at >= latest[key].checked_at:
            latest[key] = result
        if result.status is CheckStatus.PASS and result.checked_at > passed.get(
            key, datetime.min.replace(tzinfo=now.tzinfo)
        ):
            passed[key] = result.checked_at
    copies: list[CopyIntegrity] = []
    windows: dict[tuple[str, str | None], int] = {}
    for point in integrity_copies(policy, points):
        if point.created_at > now:
            continue
        key = (point.target, point.id)
        wkey = (point.target, point.tier)
        if wkey not in windows:
            windows[wkey] = integrity_window_days(policy, point.target, point.tier)
        window = windows[wkey]
        good = passed.get(key)
        since = (good or point.created_at).astimezone(tz).date()
        due_by = since + timedelta(days=window)
        last = latest.get(key)
        copies.append(
            CopyIntegrity(
                target=point.target,
                point_id=point.id,
                tier=point.tier,
                created_at=point.created_at,
                window_days=window,
                last_passed=good,
                last_status=last.status if last else None,
                last_checked=last.checked_at if last else None,
                due_by=due_by,
                overdue=today > due_by,
            )
        )
    copies.sort(key=lambda c: (c.target, c.tier or "", c.created_at, c.point_id))
    return copies


def copy_integrity_findings(
    policy: Policy,
    target: str,
    application: str | None,
    points: Sequence[RecoveryPoint],
    history: Iterable[CheckResult | Any],
    *,
    now: datetime,
) -> list[Finding]:
    """One ``copy-integrity`` finding per tier of *target*: every copy checked in its window.

    The evidence lists every copy with when it was last checked (`CopyIntegrity.describe`);
    the finding is not compliant when a copy is overdue, and names them.
    """
    copies = copy_integrity_status(policy, points, history, now=now)
    tiers: dict[str | None, list[CopyIntegrity]] = {}
    for copy in copies:
        if copy.target == target:
            tiers.setdefault(copy.tier, []).append(copy)
    findings: list[Finding] = []
    for tier, in_tier in tiers.items():
        overdue = [c for c in in_tier if c.overdue]
        # A copy whose latest check failed is corrupt until a later check passes, in its window
        # or not: a failure is never outweighed by time left.
        failed = [c for c in in_tier if c.last_status is CheckStatus.FAIL]
        checked = [c for c in in_tier if c.last_passed is not None]
        oldest = min((c.last_passed for c in checked if c.last_passed), default=None)
        noun = "copy" if len(in_tier) == 1 else "copies"
        detail = f"{len(in_tier)} {noun} in tier {tier}: {len(checked)} passed a check" + (
            f" (oldest pass {oldest.date().isoformat()})" if oldest else ""
        )
        if overdue:
            names = ", ".join(c.point_id for c in overdue[:_SHOWN])
            more = len(overdue) - _SHOWN
            detail += f"; {len(overdue)} not checked within their window: {names}" + (
                f" (+{more} more)" if more > 0 else ""
            )
        if failed:
            names = ", ".join(c.point_id for c in failed[:_SHOWN])
            more = len(failed) - _SHOWN
            detail += f"; {len(failed)} failed their latest check: {names}" + (
                f" (+{more} more)" if more > 0 else ""
            )
        findings.append(
            Finding(
                CLAUSE,
                not overdue and not failed,
                target=target,
                application=application or "",
                tier=tier or "",
                evidence=tuple(c.describe() for c in in_tier),
                detail=detail,
            )
        )
    return findings
