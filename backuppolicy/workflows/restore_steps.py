"""A restore test in steps: start, poll, probe, tear down, record; one call per step.

The Step Functions state machine of `backuppolicy.aws.cloudformation` runs a restore test
that can take longer than one Lambda invocation (an RDS restore takes 10 to 60 minutes) as
separate calls of the Lambda handler (`backuppolicy.lambda_handler`, actions
``restore-test-start`` ... ``restore-test-record``), one per function here. All they share is a
small JSON dict, the **state**:

``target``
    Name of the target (required in the first call).
``point_id``, ``restore_id``
    The point restored, and the restore id `~backuppolicy.core.targets.StagedRestore`
    returned (``None`` for a target restored within one call, see below).
``started_at``, ``ready_at``
    When the restore started and was first seen ready (ISO 8601).
``attempts``, ``ready``
    How many polls were made; whether the last one found the restore ready.
``result``
    The restore test's `~backuppolicy.core.results.CheckResult` (``to_dict``), once probed.
``torn_down``
    Whether the teardown step finished.
``error``
    What failed (Step Functions' ``{"Error", "Cause"}``, put there by the ``Catch`` of the
    failed step); the record step turns it into a failed result.

A target that implements `~backuppolicy.core.targets.StagedRestore` (RDS) restores in the
start step, is polled by the poll step and torn down by the teardown step. Any other target
(EBS volumes, S3, directories: minutes at most) restores, probes and tears down inside the
probe step, with `~backuppolicy.checks.restore_test.RestoreTest` as ``backuppolicy
restore-test`` does; its poll is ready at once and its teardown has nothing left to do.
The probes are those the policy file declares for the target, as everywhere else.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from backuppolicy.checks._declared import declared_probes
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.verify import VerifyContext, default_ran_by
from backuppolicy.core.exceptions import BackendError, PolicyError
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import BackupTarget, RestoredResource, StagedRestore
from backuppolicy.notify import Notifier
from backuppolicy.workflows._assemble import build_targets
from backuppolicy.workflows.verify import (
    ResultRecorder,
    _notify_failures,
    isolation_for,
    restore_point,
)

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.targets import IsolationProfile

__all__ = ["STEPS", "poll", "probe", "record", "start", "teardown"]

STEPS: Final = (
    "restore-test-start",
    "restore-test-poll",
    "restore-test-probe",
    "restore-test-teardown",
    "restore-test-record",
)
"""The Lambda handler's actions of the steps, in order."""

_MAX_STATE_TEXT: Final = 2048


def _text(state: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = state.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_STATE_TEXT:
        raise PolicyError.for_field(f"state.{key}", "a non-empty string", value)
    return value


def _time(state: Mapping[str, Any], key: str) -> datetime | None:
    text = _text(state, key)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise PolicyError.for_field(f"state.{key}", "an ISO 8601 time with a zone", text)
    return value


def _target(
    policy: Policy, state: Mapping[str, Any], targets: Mapping[str, BackupTarget] | None
) -> BackupTarget:
    name = _text(state, "target", required=True)
    if not any(spec.name == name for spec in policy.targets):
        raise PolicyError.for_field(
            "state.target",
            "a target of the policy: " + ", ".join(s.name for s in policy.targets),
            name,
        )
    built = targets if targets is not None else build_targets(policy, only=[str(name)])
    return built[str(name)]


def _point(policy: Policy, target: BackupTarget, state: Mapping[str, Any]) -> RecoveryPoint:
    wanted = _text(state, "point_id", required=True)
    for point in target.list_points():
        if point.id == wanted:
            return point
    raise PolicyError.for_field(
        "state.point_id", f"a point of {target.name} in {policy.name}", wanted
    )


def _staged(target: BackupTarget, state: Mapping[str, Any]) -> StagedRestore | None:
    if state.get("restore_id") is None or not isinstance(target, StagedRestore):
        return None
    return target


def start(
    policy: Policy,
    state: Mapping[str, Any],
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
) -> dict[str, Any]:
    """Pick the point to restore (`restore_point`) and start restoring it.

    Raises:
        PolicyError: The state names no target of the policy, or the target has no good point.
    """
    ensure_aware(now, field="now")
    target = _target(policy, state, targets)
    spec = next(s for s in policy.targets if s.name == target.name)
    point = restore_point(policy, spec, list(target.list_points()))
    if point is None:
        raise PolicyError.for_field(
            "state.target", "a target with a completed point to restore", target.name
        )
    out: dict[str, Any] = {
        "target": target.name,
        "point_id": point.id,
        "restore_id": None,
        "started_at": now.isoformat(),
        "attempts": 0,
        "ready": False,
    }
    if isinstance(target, StagedRestore):
        out["restore_id"] = target.start_restore(point, into=isolation_for(policy))
    return out


def poll(
    policy: Policy,
    state: Mapping[str, Any],
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
) -> dict[str, Any]:
    """Look once whether the restore is ready; count the attempt.

    Raises:
        BackendError: The restore failed (the state machine tears down and records it).
    """
    ensure_aware(now, field="now")
    attempts = state.get("attempts", 0)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        raise PolicyError.for_field("state.attempts", "a count of polls (>= 0)", attempts)
    out = {**state, "attempts": attempts + 1}
    target = _target(policy, state, targets)
    staged = _staged(target, state)
    if staged is None:
        out["ready"] = True
        return out
    point = _point(policy, target, state)
    ready = staged.restore_ready(str(state["restore_id"]), point, isolation_for(policy))
    out["ready"] = ready is not None
    if ready is not None and state.get("ready_at") is None:
        out["ready_at"] = now.isoformat()
    return out


class _AlreadyRestored:
    """The target, whose ``restore`` hands out the resource already restored (no teardown)."""

    def __init__(self, target: BackupTarget, resource: RestoredResource) -> None:
        self._target = target
        self._resource = resource

    def restore(
        self,
        point: RecoveryPoint,  # noqa: ARG002 - BackupTarget.restore's signature
        into: IsolationProfile | None = None,  # noqa: ARG002
    ) -> contextlib.AbstractContextManager[RestoredResource]:
        return contextlib.nullcontext(self._resource)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def probe(
    policy: Policy,
    state: Mapping[str, Any],
    *,
    now: datetime,
    targets: Mapping[str, BackupTarget] | None = None,
    probes: Sequence[Any] = (),
    endpoint_resolver: Callable[[Any], Any] | None = None,
    ran_by: str | None = None,
) -> dict[str, Any]:
    """Run the target's probes on the restored resource (`RestoreTest`); keep the result.

    A failed probe is a failed result, not an error: the next step tears down either way.

    Raises:
        BackendError: A staged restore is not ready (or failed).
    """
    ensure_aware(now, field="now")
    target = _target(policy, state, targets)
    spec = next(s for s in policy.targets if s.name == target.name)
    point = _point(policy, target, state)
    context = VerifyContext(
        now=now,
        policy=policy,
        application=spec.application,
        isolation=isolation_for(policy),
        ran_by=ran_by or default_ran_by(),
        endpoint_resolver=endpoint_resolver,
    )
    test = RestoreTest(probes=[*declared_probes(spec, target), *probes])
    staged = _staged(target, state)
    out = dict(state)
    if staged is None:  # restored, probed and torn down in this call
        result = test.verify(target, point, context)
        out["torn_down"] = result.evidence.get("torn_down") is True
    else:
        rid = str(state["restore_id"])
        resource = staged.restore_ready(rid, point, context.isolation)
        if resource is None:
            raise BackendError(
                f"{target.name}: restore {rid!r} is not ready to probe",
                backend=target.name,
                operation="restore-test-probe",
                resource=rid,
                code="NotReady",
            )
        already = _AlreadyRestored(target, resource)
        result = test.verify(already, point, context)  # a proxy of the target
    out["result"] = result.to_dict()
    return out


def teardown(
    policy: Policy,
    state: Mapping[str, Any],
    *,
    targets: Mapping[str, BackupTarget] | None = None,
) -> dict[str, Any]:
    """Delete what the restore made (only what carries its restore id); idempotent."""
    out = dict(state)
    target = _target(policy, state, targets)
    staged = _staged(target, state)
    if staged is not None:
        point = _point(policy, target, state)
        staged.teardown_restore(str(state["restore_id"]), point, isolation_for(policy))
        out["torn_down"] = True
    elif "result" in state:  # restored within the probe step, which tore it down
        out["torn_down"] = bool(state.get("torn_down"))
    else:  # nothing was restored
        out["torn_down"] = True
    return out


def _error_text(error: object) -> str:
    """Step Functions' ``{"Error", "Cause"}`` (Cause: Lambda's JSON error) as one line."""
    if not isinstance(error, Mapping):
        return str(error)[:_MAX_STATE_TEXT]
    name, cause = str(error.get("Error") or "Error"), error.get("Cause")
    with contextlib.suppress(TypeError, ValueError):
        parsed = json.loads(str(cause))
        if isinstance(parsed, Mapping) and parsed.get("errorMessage"):
            cause = parsed["errorMessage"]
    return f"{name}: {cause}"[:_MAX_STATE_TEXT] if cause else name


def _final(policy: Policy, state: Mapping[str, Any], now: datetime, ran_by: str) -> CheckResult:
    issues: list[str] = []
    if state.get("error") is not None:
        issues.append(f"step failed: {_error_text(state['error'])}")
    if state.get("teardown_error") is not None:
        issues.append(f"teardown failed: {_error_text(state['teardown_error'])}")
    started, ready = _time(state, "started_at"), _time(state, "ready_at")
    data = state.get("result")
    if isinstance(data, Mapping):
        result = CheckResult.from_dict(data)
        evidence = dict(result.evidence)
        evidence["torn_down"] = state.get("torn_down") is True
        if started is not None and ready is not None:
            evidence["restore_seconds"] = (ready - started).total_seconds()
        limit, took = evidence.get("rto_seconds"), evidence.get("restore_seconds")
        if isinstance(limit, float) and isinstance(took, float) and took > limit:
            issues.append(f"restore took {took:.0f} s, more than the RTO ({limit:.0f} s)")
        if not evidence["torn_down"] and not any("teardown" in i for i in issues):
            issues.append("teardown did not finish")
        if not issues:
            return CheckResult(**{**_fields(result), "evidence": evidence})
        all_issues = (*result.issues, *issues)
        return CheckResult(
            **{
                **_fields(result),
                "status": CheckStatus.FAIL,
                "issues": all_issues,
                "details": "; ".join(all_issues[:3]),
                "evidence": evidence,
            }
        )
    name = str(state.get("target") or "?")
    spec = next((s for s in policy.targets if s.name == name), None)
    issues = issues or ["the restore test ended before its probes ran"]
    return CheckResult(
        check="restore-test",
        status=CheckStatus.FAIL,
        target=name,
        checked_at=now,
        point_id=state.get("point_id") if isinstance(state.get("point_id"), str) else None,
        kind=CheckKind.RESTORE_TEST,
        application=spec.application if spec is not None else None,
        details="; ".join(issues[:3]),
        issues=tuple(issues),
        evidence={
            "restore_id": state.get("restore_id"),
            "attempts": state.get("attempts"),
            "torn_down": state.get("torn_down") is True,
            "started_at": state.get("started_at"),
        },
        ran_by=ran_by,
    )


def _fields(result: CheckResult) -> dict[str, Any]:
    return {
        "check": result.check,
        "status": result.status,
        "target": result.target,
        "checked_at": result.checked_at,
        "point_id": result.point_id,
        "kind": result.kind,
        "tier": result.tier,
        "application": result.application,
        "details": result.details,
        "issues": result.issues,
        "evidence": result.evidence,
        "duration": result.duration,
        "ran_by": result.ran_by,
    }


def record(
    policy: Policy,
    state: Mapping[str, Any],
    *,
    now: datetime,
    log: ResultRecorder | None = None,
    notifiers: Sequence[Notifier] | None = None,
    ran_by: str | None = None,
) -> dict[str, Any]:
    """Record the test's result in the testing log and notify a failure; ``ok`` says which.

    The result is the probe step's, failed when a step failed (``error``), the teardown did
    not finish or the restore took longer than the application's RTO; a test whose probes
    never ran is a failed result naming the step that failed.
    """
    ensure_aware(now, field="now")
    result = _final(policy, state, now, ran_by or default_ran_by())
    if log is not None:
        log.record(result)
    _notify_failures(policy, [result], notifiers, now)
    return {**state, "result": result.to_dict(), "ok": result.ok}
