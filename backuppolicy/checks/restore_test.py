"""Restore tests: restore a point into the isolation profile, probe its data, tear it down.

The probes are those of `backuppolicy.checks.probes`; the evidence records the restore duration
(RTO) and the point's age (RPO).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

import attrs

from backuppolicy.checks._common import make_result
from backuppolicy.checks.probes import ProbeContext, ProbeLike, ProbeResult, run_probe
from backuppolicy.core.model import RecoveryPoint
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.secrets import redact_url
from backuppolicy.core.targets import BackupTarget

if TYPE_CHECKING:  # verify.py re-exports this check
    from backuppolicy.checks.verify import VerifyContext

__all__ = ["RestoreTest"]


def _to_probes(value: Iterable[ProbeLike]) -> tuple[ProbeLike, ...]:
    return tuple(value)


def _redirected(resolver: object, endpoint: object, own: object) -> bool:
    """Whether the probes' endpoint is a stand-in for the restored resource.

    A resolver says so itself with a ``simulated`` attribute (`StaticEndpoint` does: a stand-in
    by default; a tunnel says ``simulated=False``); otherwise any endpoint other than the
    resource's own is taken for a stand-in.
    """
    declared = getattr(resolver, "simulated", None)
    if isinstance(declared, bool):
        return declared
    return endpoint != own


def _verdict(
    point: RecoveryPoint, results: Sequence[ProbeResult], issues: Sequence[str], stand_in: str
) -> tuple[CheckStatus, str]:
    """Fail on any issue; without a probe, unproven; else a pass (saying when it is simulated)."""
    if issues:
        return CheckStatus.FAIL, "; ".join(issues[:3])
    if not results:
        return CheckStatus.UNPROVEN, (
            f"restored {point.id} and torn down, but no probe looked at the data: unproven "
            "(give the target probes)"
        )
    passed = sum(r.ok for r in results)
    details = f"restored {point.id} and torn down; {passed}/{len(results)} probe(s) passed"
    return CheckStatus.PASS, details + (f"; simulated: {stand_in}" if stand_in else "")


def _describe_resolver(resolver: object) -> str:
    description = getattr(resolver, "description", None)
    if isinstance(description, str) and description:
        return description
    return str(getattr(resolver, "__qualname__", None) or repr(resolver))


@attrs.frozen
class RestoreTest:
    """Restore the point into the isolation profile, run the probes, always tear down.

    The restore goes through the target's own `~backuppolicy.core.targets.BackupTarget.restore` into
    ``context.isolation``; the restored resource is torn down when the block exits, even when a
    probe fails or raises. The probes connect to ``context.endpoint_resolver(resource)`` (by
    default the resource's own ``endpoint``); the evidence says which endpoint was used and who
    resolved it. The evidence also records the restore duration (RTO evidence, compared with
    the application's RTO when the policy sets one) and the point's age at the test (RPO
    evidence).

    Example:
        >>> from datetime import datetime, UTC
        >>> from backuppolicy.testing import MemoryTarget
        >>> db = MemoryTarget("db", clock=lambda: datetime(2026, 11, 26, 4, tzinfo=UTC))
        >>> point = db.create_backup()
        >>> test = RestoreTest(probes=[lambda ctx: ctx.endpoint.startswith("memory://")])
        >>> from backuppolicy.checks.verify import VerifyContext
        >>> result = test.verify(db, point, VerifyContext(now=datetime(2026, 11, 26, 6, tzinfo=UTC)))
        >>> result.status.value, result.evidence["point_age_seconds"], len(db.teardowns)
        ('pass', 7200.0, 1)

    Without probes nothing proves the data is there:

        >>> RestoreTest().verify(db, point, VerifyContext(now=datetime(2026, 11, 26, 6, tzinfo=UTC))).status.value
        'unproven'

    Attributes:
        probes: The probes to run on the restored resource (`backuppolicy.checks.probes`).
        name: Name of the check.
    """

    probes: Sequence[ProbeLike] = attrs.field(default=(), converter=_to_probes)
    name: str = "restore-test"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Restore, probe, tear down; every failure is a `CheckStatus.FAIL` result.

        No failure and no probe is `CheckStatus.UNPROVEN`; every probe passed is a pass.
        """
        started = time.monotonic()
        kind = CheckKind.RESTORE_TEST
        if point is None:
            issue = "no completed point to restore"
            return make_result(
                self.name,
                CheckStatus.FAIL,
                target,
                None,
                context,
                started=started,
                details=issue,
                issues=[issue],
                kind=kind,
            )
        resolver = context.endpoint_resolver
        evidence: dict[str, object] = {
            "point_created_at": point.created_at.isoformat(),
            "point_age_seconds": (context.now - point.created_at).total_seconds(),
            "isolation": {
                "name_prefix": context.isolation.name_prefix,
                "sweep_tag": context.isolation.sweep_tag,
            },
            "probe_endpoint_resolved_by": (
                _describe_resolver(resolver)
                if resolver is not None
                else "the restored resource's own endpoint"
            ),
        }
        self._objectives(context, evidence)
        results: list[ProbeResult] = []
        issues: list[str] = []
        restore_started = time.monotonic()
        stage = "restore"
        probed_at = restore_started
        stand_in = ""
        try:
            with target.restore(point, into=context.isolation) as resource:
                evidence["restore_seconds"] = time.monotonic() - restore_started
                stage = "endpoint resolution"
                endpoint = resolver(resource) if resolver is not None else resource.endpoint
                evidence["restored"] = {
                    "id": resource.id,
                    "kind": resource.kind,
                    "endpoint": resource.endpoint,
                }
                evidence["probe_endpoint"] = (
                    redact_url(str(endpoint)) if endpoint is not None else None
                )
                if resolver is not None and _redirected(resolver, endpoint, resource.endpoint):
                    stand_in = (
                        f"the probes ran against a stand-in ({_describe_resolver(resolver)}), "
                        "not the restored resource"
                    )
                stage = "probes"
                ctx = ProbeContext(resource=resource, endpoint=endpoint, target=target, point=point)
                results = [run_probe(probe, ctx) for probe in self.probes]
                stage = "teardown"
                probed_at = time.monotonic()
            evidence["torn_down"] = True
            evidence["teardown_seconds"] = time.monotonic() - probed_at
        except Exception as exc:  # noqa: BLE001 - a failed restore or teardown is a failed test
            error = f"{stage} failed: {type(exc).__name__}: {exc}"
            issues.append(error)
            evidence["torn_down"] = False if stage == "teardown" else None
            evidence["error"] = error
        evidence["probes"] = [r.to_dict() for r in results]
        issues.extend(f"probe {r.name}: {r.details}" for r in results if not r.ok)
        rto_limit = evidence.get("rto_seconds")
        restored_in = evidence.get("restore_seconds", 0.0)  # a float, when there
        if (
            isinstance(rto_limit, float)
            and isinstance(restored_in, float)
            and restored_in > rto_limit
        ):
            issues.append(
                f"restore took {restored_in:.0f} s, more than the RTO ({rto_limit:.0f} s)"
            )
        if context.simulated and not stand_in:
            stand_in = "the restore ran in a simulated world"
        if stand_in:
            evidence["simulated"] = stand_in
        status, details = _verdict(point, results, issues, stand_in)
        return make_result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
            kind=kind,
            simulated=bool(stand_in),
        )

    @staticmethod
    def _objectives(context: VerifyContext, evidence: dict[str, object]) -> None:
        policy = context.policy
        if policy is None or context.application is None:
            return
        try:
            objective = policy.objective_for(context.application)
        except LookupError:
            return
        evidence["rpo"] = str(objective.rpo)
        if objective.rto is not None:
            evidence["rto"] = str(objective.rto)
            moment = context.now
            evidence["rto_seconds"] = (objective.rto.after(moment) - moment).total_seconds()
