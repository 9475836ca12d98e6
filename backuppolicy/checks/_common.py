"""Helpers shared by the built-in checks.

Used by `backuppolicy.checks.metadata`, `backuppolicy.checks.integrity` and
`backuppolicy.checks.restore_test`: building results, a point's region, the target's spec.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from backuppolicy.core.durations import Duration
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import BackupTarget

if TYPE_CHECKING:  # verify.py re-exports the checks, which import this module
    from backuppolicy.checks.verify import VerifyContext
    from backuppolicy.core.policy import Policy, TargetSpec

__all__ = [
    "Reporter",
    "error_result",
    "make_result",
    "newest_good",
    "points_of",
    "region_of",
    "spec_of",
    "to_duration",
]


def make_result(
    check: str,
    status: CheckStatus,
    target: BackupTarget,
    point: RecoveryPoint | None,
    context: VerifyContext,
    *,
    started: float,
    details: str,
    issues: Sequence[str] = (),
    evidence: Mapping[str, object] | None = None,
    kind: CheckKind = CheckKind.VERIFICATION,
    simulated: bool = False,
) -> CheckResult:
    """A `CheckResult` of *check* at ``context.now``, timed from *started* (`time.monotonic`).

    It is ``simulated`` when *simulated* is true or the context is (a stand-in world).
    """
    return CheckResult(
        check=check,
        status=status,
        target=target.name,
        checked_at=context.now,
        point_id=point.id if point is not None else None,
        kind=kind,
        tier=point.tier if point is not None else None,
        application=context.application,
        details=details,
        issues=tuple(issues),
        evidence=dict(evidence or {}),
        duration=time.monotonic() - started,
        ran_by=context.ran_by,
        simulated=simulated or context.simulated,
    )


def error_result(
    check: str,
    target: BackupTarget,
    point: RecoveryPoint | None,
    context: VerifyContext,
    exc: BaseException,
    *,
    started: float,
    kind: CheckKind = CheckKind.VERIFICATION,
) -> CheckResult:
    """A failed result for a check that could not complete: *exc* is the issue."""
    error = f"{type(exc).__name__}: {exc}"
    return make_result(
        check,
        CheckStatus.FAIL,
        target,
        point,
        context,
        started=started,
        details=f"the check could not complete: {error}",
        issues=[error],
        evidence={"error": error},
        kind=kind,
    )


@attrs.frozen
class Reporter:
    """The results of one run of a check: `make_result` and `error_result` with the fixed parts.

    A check makes one at its start (the clock starts then) and calls it for each outcome, so
    each ``return`` says only what differs: the status, the details, the issues, the evidence.

    Attributes:
        check: Name of the check.
        target: The target checked.
        point: The point checked (``None`` for a target-level check).
        context: The context the check runs in.
        started: `time.monotonic` when the check started (default: now).
    """

    check: str
    target: BackupTarget
    point: RecoveryPoint | None
    context: VerifyContext
    started: float = attrs.field(factory=time.monotonic)

    def __call__(
        self,
        status: CheckStatus,
        details: str,
        *,
        issues: Sequence[str] = (),
        evidence: Mapping[str, object] | None = None,
    ) -> CheckResult:
        """A result with *status* and *details* (`make_result`)."""
        return make_result(
            self.check,
            status,
            self.target,
            self.point,
            self.context,
            started=self.started,
            details=details,
            issues=issues,
            evidence=evidence,
        )

    def error(self, exc: BaseException) -> CheckResult:
        """The failed result of a check that could not complete (`error_result`)."""
        return error_result(
            self.check, self.target, self.point, self.context, exc, started=self.started
        )


def region_of(point: RecoveryPoint | None, target: object) -> str | None:
    """The AWS region of *point* (its details or ``aws:<account>:<region>``), else *target*'s."""
    if point is not None:
        region = point.details.get("region")
        if isinstance(region, str) and region:
            return region
        parts = point.location.split(":")
        if len(parts) == 3 and parts[0] == "aws" and parts[2]:  # noqa: PLR2004 - aws:<account>:<region>
            return parts[2]
    region = getattr(target, "region", None)
    return region if isinstance(region, str) else None


def points_of(target: BackupTarget, context: VerifyContext) -> Sequence[RecoveryPoint]:
    """The points listed in *context*, or the target's own listing."""
    return context.points or list(target.list_points())


def _order_key(point: RecoveryPoint) -> tuple[datetime, bool, int, str]:
    """Newest last: `RecoveryPoint.order_key` (ties follow the backend's order, then the id)."""
    return point.order_key


def newest_good(points: Iterable[RecoveryPoint], tier: str | None = None) -> RecoveryPoint | None:
    """The newest completed backup (object versions are data, not backups) in *tier* (any)."""
    good = [
        p
        for p in points
        if p.is_good and p.kind != "s3-version" and (tier is None or p.tier == tier)
    ]
    return max(good, key=_order_key, default=None)


def spec_of(policy: Policy | None, target: BackupTarget) -> TargetSpec | None:
    """The `TargetSpec` of *target* in *policy*, or ``None`` (no policy, or not in it)."""
    if policy is None:
        return None
    try:
        return policy.target(target.name)
    except LookupError:
        return None


def to_duration(value: object) -> Duration | None:
    """Converter: ``None`` or a `Duration` (from ``"26h"`` ...)."""
    return None if value is None else Duration.coerce(value, field="duration")
