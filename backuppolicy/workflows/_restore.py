r"""Restores for every target: a dry-run plan first, then the restore, verified and logged.

`plan_restore` looks at the target, the recovery point (or point in time) and the destination
and returns a `RestorePlan`: every step it will take, typed (`StepAction`), and which of them
replace or overwrite something. `restore` carries the plan out. Steps that touch existing data
(an in-place S3 restore, renaming a database into place, moving a directory aside, detaching a
volume) are *destructive* and run only with ``confirm=True`` (CLI: ``--apply``). Nothing is ever
overwritten silently: the previous state is always kept.

============================  ===================================================================
target kind                   what a restore does, and where the previous state goes
============================  ===================================================================
``rds-instance``              a new DB instance from a snapshot or a point in time (the
                              original's class, subnet group, security groups and parameter
                              group unless given); with ``swap=True`` the original is renamed
                              ``<id>-before-restore-<stamp>`` (kept, never deleted) and the new
                              one renamed into its place
``aurora-cluster``            the same for a cluster and one instance in it
``ec2-instance``,             a new volume from each snapshot of the backup; with
``ebs-volume``                ``attach_to=`` attached to an instance at the original devices (a
                              volume already there is detached and kept)
``s3-bucket``                 the prefix restored to a time (or a manifest's time, or one
                              object's earlier version) into another bucket/prefix or in place;
                              in place needs versioning on (checked first): the old versions stay
``directory``                 the archive restored (checksums checked) next to the destination
                              and renamed into place; an existing directory is moved aside to
                              ``<path>.before-restore-<stamp>`` (`backuppolicy.local.Directory`
                              plans and carries this out itself)
any `Restorable` target       what the target plans (``plan_restore``) and carries out
                              (``execute_restore``) itself, e.g. a plug-in kind
============================  ===================================================================

Immediately before it acts, `restore` looks at the destination again and compares it with what
`plan_restore` saw (`RestorePlan.observed`): if anything changed since the plan (an object written
into the destination bucket, a file changed in the directory, a volume attached at the device, a
database renamed), it refuses and names what changed, unless ``confirm=True``; with ``confirm``
the previous state is kept as above. A resource under a name the plan gives, that this restore did
not make, is never adopted, confirmed or not.

After the restore the result is verified (the database is available, archive and file
checksums, a second dry run of an in-place S3 restore finds nothing left to do, probes) and
recorded in the testing log with ``log.record(check_result)``.

This module holds the entry points (`plan_restore`, `restore`, `RestoreResult`) and the dispatch
by what a target can do; the per-family code lives in ``_restore_db`` (databases),
``_restore_volumes`` (volumes) and ``_restore_bucket`` (S3), what they share in ``_restore_common``.

Example:
    >>> import pathlib, tempfile
    >>> from backuppolicy.local import Directory, DirectoryStore
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "etc"
    >>> src.mkdir()
    >>> _ = (src / "app.conf").write_text("port = 8080\n")
    >>> etc = Directory(src, name="etc", store=DirectoryStore(tempfile.mkdtemp()))
    >>> point = etc.create_backup(reason="before upgrade")
    >>> _ = (src / "app.conf").write_text("port = broken\n")
    >>> plan = plan_restore(etc, point=point)
    >>> [step.action.value for step in plan.steps]
    ['create', 'move-aside', 'replace', 'verify']
    >>> plan.destructive
    True
    >>> result = restore(plan, confirm=True)
    >>> result.ok, (src / "app.conf").read_text()
    (True, 'port = 8080\n')
    >>> pathlib.Path(result.kept[0]).joinpath("app.conf").read_text()
    'port = broken\n'
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from backuppolicy.checks.running import run_check
from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.policy import Policy
from backuppolicy.core.restoring import (
    ABSENT,
    MADE_BY_THIS_RESTORE,
    RestoreOutcome,
    RestorePlan,
    RestoreStep,
    StepAction,
    restore_stamp,
)
from backuppolicy.core.targets import (
    TAG_RESTORE_ID,  # noqa: F401 - re-exported (callers and tests import it from here)
    BackupTarget,
    Restorable,
    RestorableBucket,
    RestorableDatabase,
    RestorableVolumes,
)
from backuppolicy.workflows._assemble import build_targets
from backuppolicy.workflows._restore_bucket import observe_bucket, plan_bucket, run_bucket
from backuppolicy.workflows._restore_common import (
    TAG_RESTORED_FROM,  # noqa: F401 - re-exported (callers and tests import it from here)
    Context,
    Outcome,
    Waiter,
    check_issues,
    make_check,
    short,
    utc_now,
)
from backuppolicy.workflows._restore_db import (
    TAG_MOVED_ASIDE,  # noqa: F401 - re-exported (callers and tests import it from here)
    observe_database,
    plan_database,
    run_database,
)
from backuppolicy.workflows._restore_volumes import observe_volumes, plan_volumes, run_volumes

__all__ = [
    "Probe",
    "RestoreLog",
    "RestorePlan",
    "RestoreResult",
    "RestoreStep",
    "StepAction",
    "plan_restore",
    "restore",
]


_LISTED = 5
_SUPPORTED = (
    "rds-instance",
    "aurora-cluster",
    "ec2-instance",
    "ebs-volume",
    "s3-bucket",
    "directory",
)


class Probe(Protocol):
    """**Protocol:** a check of a restored resource (`backuppolicy.workflows.recovery.HttpCheck` ...).

    Plain callables ``probe(endpoint)`` returning a `CheckResult`, a bool or ``None`` are
    accepted too.
    """

    def run(self, endpoint: str | None) -> CheckResult:
        """Check the resource reachable at *endpoint*."""
        ...


class RestoreLog(Protocol):
    """**Protocol:** where results go: the backup testing log (`backuppolicy.workflows.testlog`)."""

    def record(self, result: CheckResult) -> object:
        """Store *result*."""
        ...


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | tuple)


@attrs.frozen
class RestoreResult:
    """What `restore` did.

    Attributes:
        plan: The plan carried out.
        resource: The restored resource (DB identifier, volume ids, ``s3://...``, a path).
        endpoint: How to reach it (``host:port``, a path, ``s3://...``), if anything.
        kept: Where the previous state was kept (renamed instance, detached volumes, a path).
        checks: Verification results (the restore's own checks, then the probes).
        started_at: When the restore started.
        duration: Seconds it took.
        details: Backend-specific facts (S3 counts, volume ids by device ...).
    """

    plan: RestorePlan
    resource: str
    endpoint: str | None
    kept: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    started_at: datetime
    duration: float
    details: Mapping[str, object] = attrs.field(factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        """Whether every check passed (or warned, or was skipped)."""
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed."""
        return [check for check in self.checks if not check.ok]

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.RestoreResult(target={self.plan.target!r}, resource={self.resource!r}, "
            f"ok={self.ok}, kept={len(self.kept)})>"
        )

    def summary(self) -> str:
        """The result in words."""
        head = (
            f"restored {self.plan.target} from {self.plan.source} into {self.resource} "
            f"in {self.duration:.1f}s: {'ok' if self.ok else 'FAILED'}"
        )
        lines = [head]
        if self.endpoint:
            lines.append(f"  endpoint: {self.endpoint}")
        lines += [f"  previous state kept: {kept}" for kept in self.kept]
        lines += [
            f"  check {c.check}: {c.status.value}{': ' + c.details if c.details else ''}"
            for c in self.checks
        ]
        return "\n".join(lines)

    def to_check(self, *, ran_by: str = "") -> CheckResult:
        """The result as one `CheckResult` (what `restore` records in the testing log)."""
        issues = [issue for check in self.failed for issue in (check.issues or (check.details,))]
        return CheckResult(
            check="restore",
            status=CheckStatus.PASS if self.ok else CheckStatus.FAIL,
            target=self.plan.target,
            checked_at=self.started_at,
            point_id=self.plan.point.id if self.plan.point else None,
            kind=CheckKind.RESTORE_TEST,
            tier=self.plan.point.tier if self.plan.point else None,
            application=self.plan.application,
            details=f"restored from {self.plan.source} into {self.resource}",
            issues=check_issues(*issues),
            evidence={
                "destination": self.plan.destination,
                "in_place": self.plan.in_place,
                "resource": self.resource,
                "kept": list(self.kept),
                "data_time": self.plan.data_time.isoformat(),
                "token": self.plan.token,
                "checks": [c.to_dict() for c in self.checks],
            },
            duration=self.duration,
            ran_by=ran_by,
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "plan": self.plan.to_dict(),
            "resource": self.resource,
            "endpoint": self.endpoint,
            "kept": list(self.kept),
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "started_at": self.started_at.isoformat(),
            "duration": round(self.duration, 3),
            "details": {k: v for k, v in self.details.items() if _plain(v) or isinstance(v, dict)},
        }


def _resolve(
    policy_or_target: object, target: str | BackupTarget | None, targets: Mapping[str, Any] | None
) -> tuple[Any, str | None]:
    """The target object (and its application) from a policy and a name, or a target."""
    if isinstance(policy_or_target, Policy):
        if target is None:
            raise PolicyError.for_field("target", "the name of a target of the policy", None)
        if not isinstance(target, str):
            return target, None
        spec = policy_or_target.target(target)
        if targets is not None and spec.name in targets:
            return targets[spec.name], spec.application
        return build_targets(policy_or_target, only=[spec.name])[spec.name], spec.application
    if isinstance(policy_or_target, BackupTarget):
        return policy_or_target, None
    raise PolicyError.for_field(
        "policy_or_target",
        "a backuppolicy.Policy or a BackupTarget",
        type(policy_or_target).__name__,
    )


def plan_restore(
    policy_or_target: Policy | BackupTarget,
    target: str | BackupTarget | None = None,
    *,
    point: RecoveryPoint | str | None = None,
    at: datetime | None = None,
    into: str | os.PathLike[str] | None = None,
    swap: bool = False,
    attach_to: str | None = None,
    devices: Sequence[str] = (),
    availability_zone: str | None = None,
    subnet_group: str | None = None,
    security_group_ids: Sequence[str] = (),
    parameter_group: str | None = None,
    instance_class: str | None = None,
    probes: Iterable[Any] = (),
    targets: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    token: str | None = None,
    **target_options: Any,
) -> RestorePlan:
    """Plan a restore of one target; nothing is changed.

    A target that plans its own restores (`backuppolicy.core.targets.Restorable`, e.g.
    `backuppolicy.local.Directory` or a plug-in kind) is asked first: it gets *point*, *at*,
    *into*, *now*, *token*, the database and volume options that were set, and
    *target_options*; the probes are added to its plan here.

    Args:
        policy_or_target: A `backuppolicy.Policy` (then *target* names the target) or a target.
        target: The target's name in the policy (or a target object).
        point: The recovery point (or its id); default: the newest completed point (for S3: the
            newest manifest), or the time *at*.
        at: Restore to this point in time instead (RDS point-in-time recovery, S3 versions).
        into: Where to: a new DB identifier (default ``<id>-restored-<stamp>``), ``s3://bucket/prefix``
            (default: in place), a directory (default: the target's own path, in place).
        swap: Databases: rename the original aside and the restored database into its place.
        attach_to: Volumes: the instance to attach the restored volumes to.
        devices: Volumes: device names for volumes whose original device is unknown.
        availability_zone: Volumes: where to create them (default: the instance's or the region's first).
        subnet_group: Databases: DB subnet group (default: the original's).
        security_group_ids: Databases: VPC security groups (default: the original's).
        parameter_group: Databases: DB parameter group (default: the original's).
        instance_class: Databases: DB instance class (default: the original's).
        probes: Checks run against the restored resource (objects with ``run(endpoint)`` or callables).
        targets: Built targets by name (default: built from the policy).
        now: The time of the plan (default: now); names carry its stamp.
        token: Identity of the restore (default: from *now*); pass the token of an interrupted
            restore to adopt what it created.
        **target_options: Options of a `~backuppolicy.core.targets.Restorable` target's own
            restore (refused for the others).

    Raises:
        PolicyError: The point or destination cannot be used (the message says why and what
            to change), or the target's kind has no restore here.
    """
    backend, application = _resolve(policy_or_target, target, targets)
    moment = ensure_aware(now, field="now") if now is not None else utc_now()
    if at is not None:
        ensure_aware(at, field="at")
        if at > moment:
            raise PolicyError.for_field("at", f"a time at or before now ({moment.isoformat()})", at)
        if point is not None:
            raise PolicyError.for_field(
                "point", "no point when at= is given (one or the other)", point
            )
    kind = str(getattr(backend, "kind", ""))
    context = Context(
        backend=backend,
        kind=kind,
        now=moment,
        token=token or restore_stamp(moment),
        application=application,
        probes=tuple(probes),
    )
    options: dict[str, Any] = {
        "swap": swap,
        "attach_to": attach_to,
        "devices": list(devices),
        "availability_zone": availability_zone,
        "subnet_group": subnet_group,
        "security_group_ids": list(security_group_ids),
        "parameter_group": parameter_group,
        "instance_class": instance_class,
    }
    if isinstance(backend, Restorable):
        return _plan_restorable(
            context,
            backend,
            point=point,
            at=at,
            into=into,
            options=options,
            target_options=target_options,
        )
    if target_options:
        raise PolicyError.for_field(
            "plan_restore",
            f"only the options plan_restore names for a {kind or 'target'} target",
            ", ".join(sorted(target_options)),
        )
    if isinstance(backend, RestorableDatabase):
        plan = plan_database(context, point, at, into, options)
    elif isinstance(backend, RestorableVolumes):
        plan = plan_volumes(context, point, into, options)
    elif isinstance(backend, RestorableBucket):
        plan = plan_bucket(context, point, at, into)
    else:
        raise PolicyError.for_field(
            "target.kind",
            f"a kind with a restore: {', '.join(_SUPPORTED)} or a Restorable target",
            kind,
        )
    return attrs.evolve(plan, observed=_observe(plan))


def _plan_restorable(
    ctx: Context,
    backend: Restorable,
    *,
    point: RecoveryPoint | str | None,
    at: datetime | None,
    into: str | os.PathLike[str] | None,
    options: Mapping[str, object],
    target_options: Mapping[str, object],
) -> RestorePlan:
    """The plan of a target that plans its own restores, with the probes and what it observed."""
    given = {key: value for key, value in options.items() if value not in (None, False, [])}
    plan = backend.plan_restore(
        point=point, at=at, into=into, now=ctx.now, token=ctx.token, **given, **target_options
    )
    steps = list(plan.steps)
    if ctx.probes:
        steps.append(
            RestoreStep(StepAction.VERIFY, plan.destination, f"run {len(ctx.probes)} probe(s)")
        )
    plan = attrs.evolve(
        plan,
        steps=tuple(steps),
        application=ctx.application,
        probes=ctx.probes,
        backend=backend,
    )
    return attrs.evolve(plan, observed=dict(backend.observe_restore(plan)))


def _observe(plan: RestorePlan) -> dict[str, str]:
    """What is at *plan*'s destination now: resource -> its state in words.

    `plan_restore` records it in `RestorePlan.observed`; `restore` looks again right before it
    acts and compares (`_changes`). States of what this restore made itself end in ``MADE_BY_THIS_RESTORE``.
    """
    if isinstance(plan.backend, Restorable):
        return dict(plan.backend.observe_restore(plan))
    if isinstance(plan.backend, RestorableDatabase):
        return observe_database(plan, plan.backend)
    if isinstance(plan.backend, RestorableVolumes):
        return observe_volumes(plan, plan.backend)
    if isinstance(plan.backend, RestorableBucket):
        return observe_bucket(plan, plan.backend)
    return {}


def _changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What changed from *before* to *after*, one line per resource (this restore's own work aside).

    Example:
        >>> _changes({"s3://b/p/": "1 object(s)"}, {"s3://b/p/": "2 object(s)", "x": "absent"})
        ["s3://b/p/: '1 object(s)' at planning, '2 object(s)' now"]
    """
    lines = []
    for name in sorted(set(before) | set(after)):
        then, now = before.get(name, ABSENT), after.get(name, ABSENT)
        if then != now and not now.endswith(MADE_BY_THIS_RESTORE):
            lines.append(f"{name}: {short(then)!r} at planning, {short(now)!r} now")
    return lines


def restore(
    plan: RestorePlan,
    *,
    confirm: bool = False,
    log: RestoreLog | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_interval: float = 15.0,
    timeout: float = 3600.0,
    ran_by: str = "",
) -> RestoreResult:
    """Carry out *plan*, verify the restored resource and record the result in *log*.

    Args:
        plan: A plan from `plan_restore`.
        confirm: Allow the plan's destructive steps; without it a destructive plan is refused
            before anything changes.
        log: Where the result goes (``log.record(check_result)``), e.g. the testing log.
        sleep: Waits between polls (inject a no-op in tests).
        poll_interval: Seconds between polls of a database or volumes.
        timeout: Seconds to wait for each of them.
        ran_by: Who runs the restore (recorded in the log).

    Returns:
        The `RestoreResult`; ``result.ok`` is false when a verification failed.

    Raises:
        PolicyError: The plan is destructive, or its destination changed since the plan, and
            *confirm* is not true; or a resource under a name of the plan was not made by this
            restore, or what is at the destination could not be kept (nothing was changed).
        BackendError: A call failed; what was created so far is tagged with the plan's token,
            so re-running the same plan (``token=plan.token``) adopts it.
    """
    # Immediately before acting: is the destination still what the plan saw?
    changed = _changes(plan.observed, _observe(plan))
    if (plan.destructive or changed) and confirm is not True:
        names = "; ".join(s.description for s in plan.steps if s.destructive)
        more = f" (and {len(changed) - _LISTED} more)" if len(changed) > _LISTED else ""
        raise PolicyError.for_field(
            "confirm",
            "True to restore into a destination that changed since the plan"
            if changed
            else "True to run the destructive steps of this restore",
            confirm,
            hint=(
                f"Changed since the plan: {'; '.join(changed[:_LISTED])}{more}. " if changed else ""
            )
            + (f"Destructive: {names}. " if names else "")
            + "The previous state is always kept: review plan.summary() (or plan again), then "
            "call restore(plan, confirm=True) (CLI: --apply). Nothing was changed.",
        )
    started_at = utc_now()
    started = time.monotonic()
    waiter = Waiter(sleep=sleep, interval=poll_interval, timeout=timeout)
    if isinstance(plan.backend, Restorable):
        outcome = _outcome_of(plan, plan.backend.execute_restore(plan, confirm=confirm))
    else:
        outcome = _runner(plan)(plan, waiter)
    checks = list(outcome.checks)
    checks += [
        run_check(
            probe, outcome.endpoint, target=plan.target, backend=plan.backend, point=plan.point
        )
        for probe in plan.probes
    ]
    result = RestoreResult(
        plan=plan,
        resource=outcome.resource,
        endpoint=outcome.endpoint,
        kept=tuple(outcome.kept),
        checks=tuple(checks),
        started_at=started_at,
        duration=time.monotonic() - started,
        details=outcome.details,
    )
    if log is not None:
        log.record(result.to_check(ran_by=ran_by))
    return result


def _runner(plan: RestorePlan) -> Callable[[RestorePlan, Waiter], Outcome]:
    """The function that carries out *plan*, chosen by what its target can do."""
    if isinstance(plan.backend, RestorableDatabase):
        return run_database
    if isinstance(plan.backend, RestorableVolumes):
        return run_volumes
    if isinstance(plan.backend, RestorableBucket):
        return run_bucket
    raise PolicyError.for_field(
        "plan.backend", "a target that can restore (a Restorable target)", plan.kind
    )


def _outcome_of(plan: RestorePlan, done: RestoreOutcome) -> Outcome:
    """What a `Restorable` target's restore did, its checks as the plan's check results."""
    checks = [
        make_check(plan, check.name, ok=check.ok, details=check.details, **check.evidence)
        for check in done.checks
    ]
    return Outcome(done.resource, done.endpoint, list(done.kept), checks, dict(done.details))
