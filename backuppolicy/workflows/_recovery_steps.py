"""The steps of a recovery plan: their actions, results and report (one idea: what a step is).

Private: `backuppolicy.workflows.recovery` re-exports the public names.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import attrs

from backuppolicy.checks.health import Check
from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.durations import Duration

STEP_REF = "step:"


def _issues(*items: str) -> tuple[str, ...]:
    """*items* for `CheckResult.issues`."""
    return items


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _checks(values: Iterable[Check]) -> tuple[Check, ...]:
    return tuple(values)


def _results(values: Iterable[CheckResult]) -> tuple[CheckResult, ...]:
    return tuple(values)


# --------------------------------------------------------------------------------------------
# Steps


class StepKind(enum.Enum):
    """The kinds of recovery steps."""

    RESTORE_DATABASE = "restore-database"
    """Restore an RDS instance or Aurora cluster (`RestoreDatabase`)."""
    RESTORE_DIRECTORY = "restore-directory"
    """Restore configuration files or application code (`RestoreDirectory`)."""
    RESTORE_S3 = "restore-s3"
    """Restore S3 assets to a point in time (`RestoreS3`)."""
    RESTORE_VOLUMES = "restore-volumes"
    """Restore EBS volumes, optionally attached to an instance (`RestoreVolumes`)."""
    RESTART_INSTANCE = "restart-instance"
    """Restart (or start) an EC2 instance (`RestartInstance`)."""
    REPLACE_INSTANCE = "replace-instance"
    """Launch a replacement EC2 instance (`ReplaceInstance`)."""
    HEALTH_CHECK = "health-check"
    """Check that something answers (`HealthCheck`)."""
    SWITCH_TRAFFIC = "switch-traffic"
    """Point users at the recovered system (`SwitchTraffic`)."""


@attrs.frozen
class RestoreDatabase:
    """Restore a database target (RDS instance or Aurora cluster); see `backuppolicy.workflows._restore.plan_restore`.

    Attributes:
        target: Name of the target in the policy.
        point: Id of the recovery point (default: the newest completed one).
        at: Restore to this point in time instead.
        into: New DB identifier (default ``<id>-restored-<stamp>``).
        swap: Rename the original aside and the restored database into its place.
        subnet_group: DB subnet group (default: the original's).
        security_group_ids: VPC security groups (default: the original's).
        parameter_group: DB parameter group (default: the original's).
        instance_class: DB instance class (default: the original's).
    """

    kind: ClassVar[StepKind] = StepKind.RESTORE_DATABASE
    target_kinds: ClassVar[tuple[str, ...]] = ("rds-instance", "aurora-cluster")
    target: str
    point: str | None = None
    at: datetime | None = None
    into: str | None = None
    swap: bool = False
    subnet_group: str | None = None
    security_group_ids: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    parameter_group: str | None = None
    instance_class: str | None = None

    def describe(self) -> str:
        """One line: what the step does."""
        source = (
            f"its state at {self.at.isoformat()}"
            if self.at
            else (f"point {self.point}" if self.point else "the newest completed snapshot")
        )
        where = (
            f"a new database {self.into}" if self.into else "a new database next to the original"
        )
        swap = (
            "; the original is renamed `<id>-before-restore-<stamp>` (kept) and the new one takes its name"
            if self.swap
            else ""
        )
        return f"restore database target `{self.target}` from {source} into {where}{swap}"

    def restore_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `backuppolicy.workflows._restore.plan_restore`."""
        return {
            "point": self.point,
            "at": self.at,
            "into": self.into,
            "swap": self.swap,
            "subnet_group": self.subnet_group,
            "security_group_ids": self.security_group_ids,
            "parameter_group": self.parameter_group,
            "instance_class": self.instance_class,
        }

    def cli(self) -> str:
        """The ``backuppolicy restore`` flags of the step."""
        return _cli(self.target, self.point, self.at, self.into, swap=self.swap)


@attrs.frozen
class RestoreDirectory:
    """Restore a directory target (configuration files, application code) in place or elsewhere.

    Attributes:
        target: Name of the target in the policy.
        point: Id of the archive (default: the newest completed one).
        into: Directory to restore into (default: the target's own path; what is there is
            moved aside to ``<path>.before-restore-<stamp>``).
    """

    kind: ClassVar[StepKind] = StepKind.RESTORE_DIRECTORY
    target_kinds: ClassVar[tuple[str, ...]] = ("directory",)
    target: str
    point: str | None = None
    into: str | None = None

    def describe(self) -> str:
        """One line: what the step does."""
        where = self.into or "its own path (the current directory is moved aside and kept)"
        return f"restore directory target `{self.target}` from {('archive ' + self.point) if self.point else 'the newest archive'} into {where}; archive and file checksums are checked"

    def restore_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `backuppolicy.workflows._restore.plan_restore`."""
        return {"point": self.point, "into": self.into}

    def cli(self) -> str:
        """The ``backuppolicy restore`` flags of the step."""
        return _cli(self.target, self.point, None, self.into)


@attrs.frozen
class RestoreS3:
    """Restore an S3 target to a point in time (in place, or into another bucket/prefix).

    Attributes:
        target: Name of the target in the policy.
        point: Id of a manifest or ``key@version`` (default: the newest manifest).
        at: Restore to this time instead.
        into: ``s3://bucket/prefix`` (default: in place; versioning must be on).
    """

    kind: ClassVar[StepKind] = StepKind.RESTORE_S3
    target_kinds: ClassVar[tuple[str, ...]] = ("s3-bucket",)
    target: str
    point: str | None = None
    at: datetime | None = None
    into: str | None = None

    def describe(self) -> str:
        """One line: what the step does."""
        when = (
            f"{self.at.isoformat()}"
            if self.at
            else (f"point {self.point}" if self.point else "the time of the newest manifest")
        )
        where = self.into or "in place (versioning keeps every current version)"
        return f"restore the objects of S3 target `{self.target}` to {when}, {where}"

    def restore_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `backuppolicy.workflows._restore.plan_restore`."""
        return {"point": self.point, "at": self.at, "into": self.into}

    def cli(self) -> str:
        """The ``backuppolicy restore`` flags of the step."""
        return _cli(self.target, self.point, self.at, self.into)


@attrs.frozen
class RestoreVolumes:
    """Restore the EBS volumes of an instance or volume target, optionally attached to an instance.

    Attributes:
        target: Name of the target in the policy.
        point: Id of the backup (default: the newest completed one).
        attach_to: Instance id, or ``step:<id>`` for the instance a replace-instance step launched.
        devices: Device names for volumes whose original device is unknown.
        availability_zone: Where to create the volumes (default: the instance's zone).
    """

    kind: ClassVar[StepKind] = StepKind.RESTORE_VOLUMES
    target_kinds: ClassVar[tuple[str, ...]] = ("ec2-instance", "ebs-volume")
    target: str
    point: str | None = None
    attach_to: str | None = None
    devices: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    availability_zone: str | None = None

    def describe(self) -> str:
        """One line: what the step does."""
        attach = (
            f", attached to {_ref_words(self.attach_to)} at their original devices (a volume already there is detached and kept)"
            if self.attach_to
            else ""
        )
        return f"create volumes of target `{self.target}` from {('backup ' + self.point) if self.point else 'its newest backup'}{attach}"

    def restore_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `backuppolicy.workflows._restore.plan_restore` (``attach_to`` resolved later)."""
        return {
            "point": self.point,
            "devices": self.devices,
            "availability_zone": self.availability_zone,
        }

    def cli(self) -> str:
        """The ``backuppolicy restore`` flags of the step."""
        attach = (
            f" --attach-to {'<instance of ' + self.attach_to + '>' if self.attach_to and self.attach_to.startswith(STEP_REF) else self.attach_to}"
            if self.attach_to
            else ""
        )
        return _cli(self.target, self.point, None, None) + attach


@attrs.frozen
class RestartInstance:
    """Restart an EC2 instance (reboot if running, start if stopped) and wait until it runs.

    Attributes:
        target: Name of an ``ec2-instance`` target (its instance, and the AWS access).
        instance: Instance id or ``step:<id>`` instead of the target's own instance.
    """

    kind: ClassVar[StepKind] = StepKind.RESTART_INSTANCE
    target_kinds: ClassVar[tuple[str, ...]] = ("ec2-instance",)
    target: str
    instance: str | None = None

    def describe(self) -> str:
        """One line: what the step does."""
        which = (
            _ref_words(self.instance)
            if self.instance
            else f"the instance of target `{self.target}`"
        )
        return f"restart {which} and wait until it is running"


@attrs.frozen
class ReplaceInstance:
    """Launch a replacement for the instance of an ``ec2-instance`` target.

    The replacement copies the original's image, type, subnet, security groups and key pair
    (where it still exists) unless given here. The original is not touched.

    Attributes:
        target: Name of an ``ec2-instance`` target.
        image_id: AMI to launch (default: the original's).
        instance_type: Instance type (default: the original's).
        subnet_id: Subnet (default: the original's).
        security_group_ids: Security groups (default: the original's).
    """

    kind: ClassVar[StepKind] = StepKind.REPLACE_INSTANCE
    target_kinds: ClassVar[tuple[str, ...]] = ("ec2-instance",)
    target: str
    image_id: str | None = None
    instance_type: str | None = None
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    def describe(self) -> str:
        """One line: what the step does."""
        image = self.image_id or "the original's image"
        return f"launch a replacement for the instance of target `{self.target}` from {image} and wait until it is running"


@attrs.frozen
class HealthCheck:
    """Check that something answers, with bounded retries.

    Attributes:
        check: The `HttpCheck`, `TcpCheck`, `SqlCheck` or `CallableCheck`.
        endpoint: ``step:<id>`` whose endpoint fills ``{endpoint}``, or a literal endpoint.
        attempts: Tries before the step fails.
        interval: Seconds between tries.
    """

    kind: ClassVar[StepKind] = StepKind.HEALTH_CHECK
    target_kinds: ClassVar[tuple[str, ...]] = ()
    check: Check
    endpoint: str | None = None
    attempts: int = 5
    interval: float = 10.0

    def describe(self) -> str:
        """One line: what the step does."""
        where = f" (endpoint: {_ref_words(self.endpoint)})" if self.endpoint else ""
        return f"{self.check.describe()}{where}; up to {self.attempts} tries, {self.interval:g} s apart"


@attrs.frozen
class SwitchTraffic:
    """Switch users to the recovered system: a Python hook or a command.

    A hook is called as ``hook(context)`` with a `StepContext` (``context.rehearsal`` is true in a
    drill: it must not move production traffic then). A command gets ``{endpoint}`` filled in and
    the environment variables ``BACKUPPOLICY_REHEARSAL`` (``1`` in a drill), ``BACKUPPOLICY_STEP``
    and ``BACKUPPOLICY_ENDPOINT``; it fails the step with a non-zero exit.

    Attributes:
        hook: A hook name (``hooks=`` of the plan) or ``"module:function"``.
        command: A command line (argument list) instead of a hook.
        endpoint: ``step:<id>`` whose endpoint is handed over.
        function: The resolved hook (when given as a hook).
    """

    kind: ClassVar[StepKind] = StepKind.SWITCH_TRAFFIC
    target_kinds: ClassVar[tuple[str, ...]] = ()
    hook: str | None = None
    command: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    endpoint: str | None = None
    function: Callable[[StepContext], object] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    def describe(self) -> str:
        """One line: what the step does."""
        how = f"run `{shlex.join(self.command)}`" if self.command else f"call hook `{self.hook}`"
        where = f" with the endpoint of {_ref_words(self.endpoint)}" if self.endpoint else ""
        return f"switch traffic: {how}{where}"


Action = (
    RestoreDatabase
    | RestoreDirectory
    | RestoreS3
    | RestoreVolumes
    | RestartInstance
    | ReplaceInstance
    | HealthCheck
    | SwitchTraffic
)
RESTORES = (RestoreDatabase, RestoreDirectory, RestoreS3, RestoreVolumes)


def _ref_words(ref: str | None) -> str:
    if ref and ref.startswith(STEP_REF):
        return f"the result of step `{ref[len(STEP_REF) :]}`"
    return f"`{ref}`"


def _cli(
    target: str, point: str | None, at: datetime | None, into: str | None, *, swap: bool = False
) -> str:
    parts = [f"--target {target}"]
    if point:
        parts.append(f"--point {point}")
    if at:
        parts.append(f"--at {at.isoformat()}")
    if into:
        parts.append(f"--to {into}")
    if swap:
        parts.append("--swap")
    return " ".join(parts)


@attrs.frozen
class RecoveryStep:
    """One step of a `RecoveryPlan`.

    Attributes:
        id: Unique id of the step (``"restore-db"``).
        action: What the step does (`RestoreDatabase`, `HealthCheck` ...).
        title: Human title (default: from the action).
        needs: Ids of the steps that must succeed first.
        timeout: Seconds the step may take (``None``: no limit).
        retries: Extra tries after a failure.
        retry_delay: Seconds between tries.
        verify: Checks run against the step's result (its endpoint) after it succeeded.
    """

    id: str
    action: Action
    title: str = ""
    needs: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 10.0
    verify: tuple[Check, ...] = attrs.field(default=(), converter=_checks)

    @property
    def kind(self) -> StepKind:
        """The `StepKind` of the action."""
        return self.action.kind

    @property
    def heading(self) -> str:
        """The title, or one made from the kind and id."""
        return self.title or f"{self.kind.value.replace('-', ' ').capitalize()} ({self.id})"


# --------------------------------------------------------------------------------------------
# Results


class StepStatus(enum.Enum):
    """Outcome of one step."""

    DONE = "done"
    """The step ran and its verification passed."""
    RESUMED = "resumed"
    """The step had finished in an earlier, interrupted run (from the state file)."""
    FAILED = "failed"
    """The step failed (after its retries), timed out or its verification failed."""
    BLOCKED = "blocked"
    """The step did not run: a step it needs failed or was blocked."""

    @property
    def ok(self) -> bool:
        """Whether the step's result is there."""
        return self in {StepStatus.DONE, StepStatus.RESUMED}


@attrs.frozen
class StepResult:
    """What one step did.

    Attributes:
        id: Id of the step.
        kind: Its `StepKind`.
        status: The `StepStatus`.
        duration: Seconds the step took (all tries).
        rto: Seconds from the start of the recovery until the step finished (the achieved
            RTO of what the step brings back).
        rpo: Age of the data the step restored, at the recovery's ``now`` (restore steps).
        data_time: Time of the data restored.
        target: Target of a restore step.
        point_id: The recovery point restored.
        resource: What the step made (DB identifier, volume ids, instance id, path ...).
        endpoint: How to reach it.
        error: Why the step failed or was blocked.
        attempts: Tries made.
        checks: Verification results.
    """

    id: str
    kind: StepKind
    status: StepStatus
    duration: float = 0.0
    rto: float | None = None
    rpo: timedelta | None = None
    data_time: datetime | None = None
    target: str | None = None
    point_id: str | None = None
    resource: str | None = None
    endpoint: str | None = None
    error: str | None = None
    attempts: int = 0
    checks: tuple[CheckResult, ...] = attrs.field(default=(), converter=_results)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "duration": round(self.duration, 3),
            "rto": None if self.rto is None else round(self.rto, 3),
            "rpo": None if self.rpo is None else self.rpo.total_seconds(),
            "data_time": self.data_time.isoformat() if self.data_time else None,
            "target": self.target,
            "point_id": self.point_id,
            "resource": self.resource,
            "endpoint": self.endpoint,
            "error": self.error,
            "attempts": self.attempts,
            "checks": [c.to_dict() for c in self.checks],
        }


def format_hms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:  # noqa: PLR2004
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_age(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"  # noqa: PLR2004


@attrs.frozen
class RecoveryReport:
    """The result of `RecoveryPlan.rehearse` or `RecoveryPlan.execute`.

    Attributes:
        plan: Name of the plan.
        application: The application recovered.
        rehearsal: Whether this was a drill.
        now: The moment of the recovery (RPO is measured from it).
        steps: One `StepResult` per step, in plan order.
        rto: Seconds from the start until the last step finished.
        objective_rpo: The policy's RPO for the application, if known.
        objective_rto: The policy's RTO for the application, if set.
        teardown_errors: Errors while tearing a drill down (resources left carry the sweep tag).
        state_file: The state file of a resumable execution.
    """

    plan: str
    application: str
    rehearsal: bool
    now: datetime
    steps: tuple[StepResult, ...]
    rto: float
    objective_rpo: Duration | None = None
    objective_rto: Duration | None = None
    teardown_errors: tuple[str, ...] = ()
    state_file: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every step succeeded and the drill was torn down cleanly."""
        return all(step.status.ok for step in self.steps) and not self.teardown_errors

    @property
    def rpo(self) -> timedelta | None:
        """The largest data age of any restore step (the achieved RPO)."""
        ages = [s.rpo for s in self.steps if s.rpo is not None]
        return max(ages) if ages else None

    def step(self, step_id: str) -> StepResult:
        """The result of step *step_id*."""
        for result in self.steps:
            if result.id == step_id:
                return result
        raise KeyError(step_id)

    def rpo_met(self, result: StepResult | None = None) -> bool | None:
        """Whether the data of *result* (default: of every restore) is within the RPO objective."""
        age = self.rpo if result is None else result.rpo
        if self.objective_rpo is None or age is None:
            return None
        oldest = self.objective_rpo.before(self.now)
        return oldest is None or self.now - age >= oldest

    def rto_met(self, result: StepResult | None = None) -> bool | None:
        """Whether *result* (default: the whole recovery) finished within the RTO objective."""
        seconds = self.rto if result is None else result.rto
        if self.objective_rto is None or seconds is None:
            return None
        if result is None and not self.ok:
            return False
        return self.now + timedelta(seconds=seconds) <= self.objective_rto.after(self.now)

    def __repr__(self) -> str:
        done = sum(1 for s in self.steps if s.status.ok)
        return (
            f"<backuppolicy.RecoveryReport(plan={self.plan!r}, rehearsal={self.rehearsal}, "
            f"steps={len(self.steps)}, done={done}, ok={self.ok})>"
        )

    def rows(self) -> list[list[str]]:
        """One row per step: id, status, took, RTO (and vs objective), RPO (and vs objective), note."""

        def verdict(*, met: bool | None) -> str:
            return "" if met is None else (" ok" if met else " MISSED")

        return [
            [
                s.id,
                s.status.value,
                format_hms(s.duration),
                format_hms(s.rto) + verdict(met=self.rto_met(s)),
                format_age(s.rpo) + verdict(met=self.rpo_met(s)),
                s.error or (s.point_id or s.resource or ""),
            ]
            for s in self.steps
        ]

    def summary(self) -> str:
        """A text table: each step's achieved RTO and RPO against the policy's objectives."""
        headers = ["step", "status", "took", "RTO", "RPO", "point / result"]
        rows = self.rows()
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        title = (
            f"{'rehearsal' if self.rehearsal else 'recovery'} of {self.plan!r} ({self.application}) "
            f"at {self.now.isoformat()}: {'ok' if self.ok else 'FAILED'}"
        )
        lines = [
            title,
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
            "  ".join("-" * w for w in widths),
        ]
        lines += [
            "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
        rto_goal = self.objective_rto.describe() if self.objective_rto else "not set"
        rpo_goal = self.objective_rpo.describe() if self.objective_rpo else "not set"
        met_rto, met_rpo = self.rto_met(), self.rpo_met()
        lines.append(
            f"overall RTO {format_hms(self.rto)} (objective {rto_goal}{'' if met_rto is None else ': met' if met_rto else ': MISSED'})"
        )
        lines.append(
            f"overall RPO {format_age(self.rpo)} (objective {rpo_goal}{'' if met_rpo is None else ': met' if met_rpo else ': MISSED'})"
        )
        lines += [f"teardown error: {e}" for e in self.teardown_errors]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "plan": self.plan,
            "application": self.application,
            "rehearsal": self.rehearsal,
            "now": self.now.isoformat(),
            "ok": self.ok,
            "rto": round(self.rto, 3),
            "rpo": None if self.rpo is None else self.rpo.total_seconds(),
            "objective_rto": str(self.objective_rto) if self.objective_rto else None,
            "objective_rpo": str(self.objective_rpo) if self.objective_rpo else None,
            "rto_met": self.rto_met(),
            "rpo_met": self.rpo_met(),
            "steps": [s.to_dict() for s in self.steps],
            "teardown_errors": list(self.teardown_errors),
            "state_file": self.state_file,
        }

    def to_check(self, *, ran_by: str = "") -> CheckResult:
        """The whole recovery as one `CheckResult` for the testing log."""
        failed = [s for s in self.steps if not s.status.ok]
        return CheckResult(
            check="recovery-drill" if self.rehearsal else "recovery",
            status=CheckStatus.PASS if self.ok else CheckStatus.FAIL,
            target=f"recovery-plan:{self.plan}",
            checked_at=self.now,
            kind=CheckKind.RESTORE_TEST,
            application=self.application,
            details=f"{len(self.steps) - len(failed)}/{len(self.steps)} steps done; RTO {format_hms(self.rto)}, RPO {format_age(self.rpo)}",
            issues=_issues(
                *[f"{s.id}: {s.status.value}: {s.error}" for s in failed], *self.teardown_errors
            ),
            evidence=self.to_dict(),
            duration=self.rto,
            ran_by=ran_by,
        )


@attrs.frozen
class StepContext:
    """What a hook (`SwitchTraffic`, custom checks) is given.

    Attributes:
        step: The step being run.
        rehearsal: Whether this is a drill (do not touch production then).
        now: The moment of the recovery.
        endpoint: The endpoint the step refers to (``endpoint: step:<id>``), if any.
        outputs: Results of the steps finished so far, by id.
    """

    step: RecoveryStep
    rehearsal: bool
    now: datetime
    endpoint: str | None
    outputs: Mapping[str, StepResult]


def action_refs(action: Action) -> dict[str, str]:
    """The ``step:<id>`` references of *action*, by field."""
    fields = {
        "attach_to": getattr(action, "attach_to", None),
        "instance": getattr(action, "instance", None),
        "endpoint": getattr(action, "endpoint", None),
    }
    return {
        k: v[len(STEP_REF) :]
        for k, v in fields.items()
        if isinstance(v, str) and v.startswith(STEP_REF)
    }
