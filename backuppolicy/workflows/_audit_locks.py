"""The audit's lock clauses: tiers locked as the policy says, holds enforced below the library.

Two clauses, one function each, called by `backuppolicy.workflows._audit.audit` per target:

* ``tier-locks`` (§1.4): every completed point we made in a tier with a ``lock`` carries an
  active lock that lasts at least until the tier's lock would expire;
* ``hold-enforcement`` (§2.3): every held point is protected by the service itself, as strongly
  as its kind allows (an Object Lock legal hold, an EBS snapshot lock, an AWS Backup legal
  hold, the IAM deny statement for RDS). A hold that only our own code honours is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from backuppolicy.core.locks import HoldEnforcing, LockablePoints
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.report import Clause, Finding
from backuppolicy.workflows.pruning import tier_retention

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy, TargetSpec
    from backuppolicy.core.targets import BackupTarget

__all__ = ["HOLD_CLAUSE", "LOCK_CLAUSE", "hold_enforcement_findings", "tier_lock_findings"]

LOCK_CLAUSE = Clause("tier-locks", "§1.4", "copies of locked tiers are locked below the library")
"""The clause of `tier_lock_findings`."""

HOLD_CLAUSE = Clause(
    "hold-enforcement", "§2.3", "legal holds are enforced below the library, not by a tag alone"
)
"""The clause of `hold_enforcement_findings`."""

_SLACK = timedelta(days=1)  # clock skew and rounding of expiry dates (S3 rounds to the second)


def tier_lock_findings(
    policy: Policy,
    spec: TargetSpec,
    target: BackupTarget,
    points: Sequence[RecoveryPoint],
    *,
    now: datetime,
) -> list[Finding]:
    """One finding per locked tier of *spec*: are its points locked long enough?"""
    findings: list[Finding] = []
    for tier in policy.tiers_for(spec):
        if tier.lock is None or not tier.lock.enabled:
            continue
        common: dict[str, Any] = {
            "target": spec.name,
            "application": spec.application,
            "tier": tier.name,
        }
        if not isinstance(target, LockablePoints):
            findings.append(
                Finding(
                    LOCK_CLAUSE,
                    compliant=False,
                    detail=f"tier {tier.name} asks for a {tier.lock.mode} lock, but this kind "
                    "cannot lock its points (use the aws-backup kind with a vault lock)",
                    **common,
                )
            )
            continue
        rule = tier_retention(policy, spec, tier.name)
        weak: list[str] = []
        ours = [p for p in points if p.tier == tier.name and p.managed and p.is_good]
        for point in ours:
            wanted = tier.lock.point_lock(rule, point.created_at)
            if wanted is None or wanted.until is None or wanted.until <= now:
                continue  # the tier's lock has run out anyway
            lock = point.lock
            if lock is None or not lock.active(now):
                weak.append(f"{point.id}: not locked")
            elif lock.until is not None and lock.until + _SLACK < wanted.until:
                weak.append(f"{point.id}: {lock.describe()}, the tier wants {wanted.describe()}")
            elif tier.lock.mode == "compliance" and lock.mode == "governance":
                weak.append(f"{point.id}: governance, the tier wants compliance")
        findings.append(
            Finding(
                LOCK_CLAUSE,
                compliant=not weak,
                evidence=tuple(p.id for p in ours),
                detail="; ".join(weak)
                or f"{len(ours)} point(s) of tier {tier.name} locked ({tier.lock.describe()})",
                **common,
            )
        )
    return findings


def hold_enforcement_findings(
    spec: TargetSpec, target: BackupTarget, points: Sequence[RecoveryPoint]
) -> list[Finding]:
    """One finding per held point whose hold is weaker than its kind allows (none if all hold)."""
    held = [p for p in points if p.held]
    findings: list[Finding] = []
    for point in held:
        if isinstance(target, HoldEnforcing):
            try:
                gaps = target.hold_gaps(point)
            except Exception as exc:  # noqa: BLE001 - unknown is not enforced
                gaps = [f"could not check: {type(exc).__name__}: {exc}"]
        else:
            gaps = ["the hold is a tag only: this kind enforces nothing below the library"]
        if gaps:
            findings.append(
                Finding(
                    HOLD_CLAUSE,
                    compliant=False,
                    target=spec.name,
                    application=spec.application,
                    tier=point.tier,
                    evidence=(point.id,),
                    detail=f"{point.id} under {point.legal_hold.describe() if point.legal_hold else 'hold'}: "
                    + "; ".join(gaps),
                )
            )
    if held and not findings:
        findings.append(
            Finding(
                HOLD_CLAUSE,
                compliant=True,
                target=spec.name,
                application=spec.application,
                evidence=tuple(p.id for p in held),
                detail=f"{len(held)} held point(s), each enforced by the service",
            )
        )
    return findings
