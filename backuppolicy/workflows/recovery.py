"""Recovery plans: the system restart and recovery runbook (seed §10) as code.

A `RecoveryPlan` is the ordered procedure that brings one application back: restore its
database, configuration, code, assets and volumes, restart or replace its instances, check
that it is healthy, and switch traffic to it. Steps depend on each other (``needs``, a DAG):
they run in topological order, independent steps in parallel (at most ``max_parallel`` at a
time); a failed step stops the steps that need it, never the independent ones. Each step has
a timeout, bounded retries and a verification (health checks run against what it produced).

* `RecoveryPlan.to_markdown` renders the human runbook, with the command and the library call
  each step runs.
* `RecoveryPlan.rehearse` drills the plan into the policy's isolation profile: every step is
  executed against throw-away copies (nothing in production changes), the achieved RTO (wall
  time) and RPO (age of the data restored) are measured per step and overall and compared with
  the policy's objectives, everything is torn down, and the drill goes into the testing log.
* `RecoveryPlan.execute` runs a real recovery (``confirm=True``): restores through
  `backuppolicy.workflows._restore.restore`, progress on a stream, a final `RecoveryReport`; with a
  ``state_file`` it is resumable after a crash (finished steps are recorded atomically and not
  run again; restores re-made with the same token adopt what an interrupted step created).

Plans load from YAML or plain data, with errors naming the field
(``steps[2].needs[0]: expected the id of another step ...``).

Example:
    >>> plan = RecoveryPlan.from_dict({
    ...     "name": "shop", "application": "shop",
    ...     "steps": [
    ...         {"id": "db", "kind": "health-check", "check": {"kind": "callable", "function": "ok"}},
    ...         {"id": "web", "kind": "health-check", "needs": ["db"],
    ...          "check": {"kind": "callable", "function": "ok"}},
    ...     ],
    ... }, hooks={"ok": lambda endpoint: True})
    >>> plan.stages()
    [('db',), ('web',)]
    >>> report = plan.rehearse()
    >>> [(step.id, step.status.value) for step in report.steps]
    [('db', 'done'), ('web', 'done')]
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TextIO

import attrs

from backuppolicy.checks.health import CallableCheck, Check, HttpCheck, SqlCheck, TcpCheck
from backuppolicy.checks.running import run_check
from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError, short_repr
from backuppolicy.core.loading import BoundedLoader as _BoundedLoader
from backuppolicy.core.loading import load_yaml as _load_yaml
from backuppolicy.core.loading import read_policy_text as _read_policy_text
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.restoring import choose_point
from backuppolicy.core.secrets import Secret, secret_field
from backuppolicy.core.targets import TAG_RESTORE_ID, IsolationProfile
from backuppolicy.workflows._restore import RestoreLog, plan_restore, restore

__all__ = [
    "CallableCheck",
    "HealthCheck",
    "HttpCheck",
    "RecoveryPlan",
    "RecoveryReport",
    "RecoveryStep",
    "ReplaceInstance",
    "RestartInstance",
    "RestoreDatabase",
    "RestoreDirectory",
    "RestoreS3",
    "RestoreVolumes",
    "SqlCheck",
    "StepContext",
    "StepKind",
    "StepResult",
    "StepStatus",
    "SwitchTraffic",
    "TcpCheck",
]

_ID_RE = r"[a-z0-9][a-z0-9_.-]{0,63}"
_STEP_REF = "step:"
_STATE_VERSION = 1


def _now() -> datetime:
    return datetime.now(UTC)


def _issues(*items: str) -> Any:
    """*items* for `CheckResult.issues` (its ``tuple`` converter has no usable type for mypy)."""
    return items


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _fill(text: str, endpoint: str | None) -> str:
    return text.replace("{endpoint}", endpoint or "")


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
            f" --attach-to {'<instance of ' + self.attach_to + '>' if self.attach_to and self.attach_to.startswith(_STEP_REF) else self.attach_to}"
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
    function: Callable[[StepContext], Any] | None = attrs.field(default=None, eq=False, repr=False)

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
_RESTORES = (RestoreDatabase, RestoreDirectory, RestoreS3, RestoreVolumes)


def _ref_words(ref: str | None) -> str:
    if ref and ref.startswith(_STEP_REF):
        return f"the result of step `{ref[len(_STEP_REF) :]}`"
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

    def to_dict(self) -> dict[str, Any]:
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


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:  # noqa: PLR2004
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _age(delta: timedelta | None) -> str:
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
                _hms(s.duration),
                _hms(s.rto) + verdict(met=self.rto_met(s)),
                _age(s.rpo) + verdict(met=self.rpo_met(s)),
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
            f"overall RTO {_hms(self.rto)} (objective {rto_goal}{'' if met_rto is None else ': met' if met_rto else ': MISSED'})"
        )
        lines.append(
            f"overall RPO {_age(self.rpo)} (objective {rpo_goal}{'' if met_rpo is None else ': met' if met_rpo else ': MISSED'})"
        )
        lines += [f"teardown error: {e}" for e in self.teardown_errors]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
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
            details=f"{len(self.steps) - len(failed)}/{len(self.steps)} steps done; RTO {_hms(self.rto)}, RPO {_age(self.rpo)}",
            issues=_issues(
                *[f"{s.id}: {s.status.value}: {s.error}" for s in failed], *self.teardown_errors
            ),
            evidence=self.to_dict(),
            duration=self.rto,
            ran_by=ran_by,
        )


# --------------------------------------------------------------------------------------------
# Loading


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def _mapping(
    value: Any, path: str, keys: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, f"a mapping with keys {', '.join(keys)}", value)
    for key in value:
        if key not in keys:
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(str(key), keys, n=1)
            raise PolicyError.for_field(
                _join(path, str(key)),
                f"a known key: {', '.join(keys)}",
                key,
                hint=f"Did you mean {close[0]!r}?" if close else "",
            )
    for key in required:
        if key not in value:
            raise PolicyError.for_field(_join(path, key), "a value (the key is required)", None)
    return dict(value)


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError.for_field(path, "a non-empty string", value)
    return value


def _opt_text(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    return None if raw.get(key) is None else _text(raw[key], _join(path, key))


def _ident(value: Any, path: str) -> str:
    import re  # noqa: PLC0415

    if not isinstance(value, str) or not re.fullmatch(_ID_RE, value):
        raise PolicyError.for_field(
            path, "an id of lowercase letters, digits, '.', '_' or '-' (at most 64)", value
        )
    return value


def _number(value: Any, path: str, *, minimum: float = 0.0, integer: bool = False) -> Any:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or value < minimum:
        raise PolicyError.for_field(
            path, f"{'an integer' if integer else 'a number'} >= {minimum:g}", value
        )
    return value


def _seconds(value: Any, path: str) -> float:
    """Seconds from a number, ``"90s"`` or a duration (``"30min"``, ``"2h"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(_number(value, path))
    if isinstance(value, str) and value.endswith("s") and value[:-1].isdigit():
        return float(value[:-1])
    duration = Duration.coerce(value, field=path)
    if not duration.is_exact:
        raise PolicyError.for_field(
            path, "seconds, or a duration in weeks, days, hours or minutes", value
        )
    return duration.approx_timedelta().total_seconds()


def _time(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise PolicyError.for_field(path, "an ISO 8601 time with a zone", value) from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise PolicyError.for_field(path, "an ISO 8601 time with a zone (e.g. ending in Z)", value)
    return value


def _strings(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise PolicyError.for_field(path, "a list of strings", value)
    return tuple(_text(item, _join(path, i)) for i, item in enumerate(value))


def _hook(ref: Any, path: str, hooks: Mapping[str, Callable[..., Any]]) -> Callable[..., Any]:
    """A hook by name from *hooks*, else ``"module:function"`` imported now."""
    name = _text(ref, path)
    if name in hooks:
        return hooks[name]
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr:
        known = ", ".join(sorted(hooks)) or "none given"
        raise PolicyError.for_field(
            path, f"a hook passed in hooks= ({known}) or 'module:function'", name
        )
    try:
        found = importlib.import_module(module)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise PolicyError.for_field(
            path, f"an importable 'module:function' ({exc})", name
        ) from None
    if not callable(found):
        raise PolicyError.for_field(path, "a callable", name)
    function: Callable[..., Any] = found
    return function


def _secret_text(value: Any, path: str, kind: Any) -> str | Secret:
    """Text, or a secret by reference (``{env: NAME}``, ``{file: PATH}``); never one inline."""
    found = secret_field(value, path, kind=kind)
    return found if isinstance(found, Secret) else _text(found, path)


_CHECK_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("kind", "url", "status", "contains", "timeout", "name"),
    "tcp": ("kind", "address", "timeout", "name"),
    "sql": ("kind", "database", "query", "expect", "connect", "name"),
    "callable": ("kind", "function", "name"),
}


def _check(value: Any, path: str, hooks: Mapping[str, Callable[..., Any]]) -> Check:
    if isinstance(value, HttpCheck | TcpCheck | SqlCheck | CallableCheck):
        return value
    if not isinstance(value, Mapping) or value.get("kind") not in _CHECK_KEYS:
        got = value.get("kind") if isinstance(value, Mapping) else value
        raise PolicyError.for_field(
            _join(path, "kind") if isinstance(value, Mapping) else path,
            f"one of {', '.join(_CHECK_KEYS)}",
            got,
        )
    kind = str(value["kind"])
    required = {
        "http": ("url",),
        "tcp": ("address",),
        "sql": ("database", "query"),
        "callable": ("function",),
    }[kind]
    raw = _mapping(value, path, _CHECK_KEYS[kind], required)
    extra: dict[str, Any] = {}
    if raw.get("name") is not None:
        extra["name"] = _text(raw["name"], _join(path, "name"))
    if "timeout" in raw:
        extra["timeout"] = float(_number(raw["timeout"], _join(path, "timeout")))
    if kind == "http":
        status = _number(raw.get("status", 200), _join(path, "status"), minimum=100, integer=True)
        return HttpCheck(
            _secret_text(raw["url"], _join(path, "url"), "url"),
            status=status,
            contains=_opt_text(raw, "contains", path),
            **extra,
        )
    if kind == "tcp":
        return TcpCheck(_text(raw["address"], _join(path, "address")), **extra)
    if kind == "sql":
        connect = (
            _hook(raw["connect"], _join(path, "connect"), hooks)
            if raw.get("connect") is not None
            else None
        )
        return SqlCheck(
            _secret_text(raw["database"], _join(path, "database"), "dsn"),
            _text(raw["query"], _join(path, "query")),
            expect=raw.get("expect"),
            connect=connect,
            **extra,
        )
    function = _hook(raw["function"], _join(path, "function"), hooks)
    return CallableCheck(function, ref=str(raw["function"]), name=extra.get("name", ""))


_COMMON_KEYS = ("id", "kind", "title", "needs", "timeout", "retries", "retry_delay", "verify")
_ACTION_KEYS: dict[StepKind, tuple[str, ...]] = {
    StepKind.RESTORE_DATABASE: (
        "target",
        "point",
        "at",
        "into",
        "swap",
        "subnet_group",
        "security_group_ids",
        "parameter_group",
        "instance_class",
    ),
    StepKind.RESTORE_DIRECTORY: ("target", "point", "into"),
    StepKind.RESTORE_S3: ("target", "point", "at", "into"),
    StepKind.RESTORE_VOLUMES: ("target", "point", "attach_to", "devices", "availability_zone"),
    StepKind.RESTART_INSTANCE: ("target", "instance"),
    StepKind.REPLACE_INSTANCE: (
        "target",
        "image_id",
        "instance_type",
        "subnet_id",
        "security_group_ids",
    ),
    StepKind.HEALTH_CHECK: ("check", "endpoint", "attempts", "interval"),
    StepKind.SWITCH_TRAFFIC: ("hook", "command", "endpoint"),
}


def _action(  # noqa: C901, PLR0911 - one branch per kind
    kind: StepKind, raw: Mapping[str, Any], path: str, hooks: Mapping[str, Callable[..., Any]]
) -> Action:
    def text(key: str) -> str | None:
        return _opt_text(raw, key, path)

    def when() -> datetime | None:
        return None if raw.get("at") is None else _time(raw["at"], _join(path, "at"))

    def strings(key: str) -> tuple[str, ...]:
        return () if raw.get(key) is None else _strings(raw[key], _join(path, key))

    if kind in _ACTION_KEYS and "target" in _ACTION_KEYS[kind] and raw.get("target") is None:
        raise PolicyError.for_field(
            _join(path, "target"), "the name of a target of the policy (the key is required)", None
        )
    target = str(raw.get("target", ""))
    if kind is StepKind.RESTORE_DATABASE:
        swap = raw.get("swap", False)
        if not isinstance(swap, bool):
            raise PolicyError.for_field(_join(path, "swap"), "true or false", swap)
        return RestoreDatabase(
            target,
            point=text("point"),
            at=when(),
            into=text("into"),
            swap=swap,
            subnet_group=text("subnet_group"),
            security_group_ids=strings("security_group_ids"),
            parameter_group=text("parameter_group"),
            instance_class=text("instance_class"),
        )
    if kind is StepKind.RESTORE_DIRECTORY:
        return RestoreDirectory(target, point=text("point"), into=text("into"))
    if kind is StepKind.RESTORE_S3:
        return RestoreS3(target, point=text("point"), at=when(), into=text("into"))
    if kind is StepKind.RESTORE_VOLUMES:
        return RestoreVolumes(
            target,
            point=text("point"),
            attach_to=text("attach_to"),
            devices=strings("devices"),
            availability_zone=text("availability_zone"),
        )
    if kind is StepKind.RESTART_INSTANCE:
        return RestartInstance(target, instance=text("instance"))
    if kind is StepKind.REPLACE_INSTANCE:
        return ReplaceInstance(
            target,
            image_id=text("image_id"),
            instance_type=text("instance_type"),
            subnet_id=text("subnet_id"),
            security_group_ids=strings("security_group_ids"),
        )
    if kind is StepKind.HEALTH_CHECK:
        if "check" not in raw:
            raise PolicyError.for_field(
                _join(path, "check"),
                "a check: {kind: http|tcp|sql|callable, ...} (the key is required)",
                None,
            )
        return HealthCheck(
            _check(raw["check"], _join(path, "check"), hooks),
            endpoint=text("endpoint"),
            attempts=_number(
                raw.get("attempts", 5), _join(path, "attempts"), minimum=1, integer=True
            ),
            interval=float(_number(raw.get("interval", 10.0), _join(path, "interval"))),
        )
    hook, command = raw.get("hook"), raw.get("command")
    if (hook is None) == (command is None):
        raise PolicyError.for_field(
            _join(path, "hook"),
            "either hook: or command: (exactly one)",
            {"hook": hook, "command": command},
        )
    if command is not None:
        return SwitchTraffic(
            command=_strings(command, _join(path, "command")), endpoint=text("endpoint")
        )
    return SwitchTraffic(
        hook=str(hook), endpoint=text("endpoint"), function=_hook(hook, _join(path, "hook"), hooks)
    )


def _step(value: Any, path: str, hooks: Mapping[str, Callable[..., Any]]) -> RecoveryStep:
    if isinstance(value, RecoveryStep):
        return value
    if not isinstance(value, Mapping):
        raise PolicyError.for_field(path, "a step: a mapping with id and kind", value)
    kinds = [k.value for k in StepKind]
    if value.get("kind") not in kinds:
        raise PolicyError.for_field(
            _join(path, "kind"), f"one of {', '.join(kinds)}", value.get("kind")
        )
    kind = StepKind(value["kind"])
    raw = _mapping(value, path, _COMMON_KEYS + _ACTION_KEYS[kind], ("id",))
    verify = raw.get("verify") or []
    if isinstance(verify, Mapping) or not isinstance(verify, Sequence):
        raise PolicyError.for_field(_join(path, "verify"), "a list of checks", verify)
    needs = raw.get("needs") or []
    if isinstance(needs, str) or not isinstance(needs, Sequence):
        raise PolicyError.for_field(_join(path, "needs"), "a list of step ids", needs)
    return RecoveryStep(
        id=_ident(raw["id"], _join(path, "id")),
        action=_action(kind, raw, path, hooks),
        title=_opt_text(raw, "title", path) or "",
        needs=tuple(_ident(n, _join(_join(path, "needs"), i)) for i, n in enumerate(needs)),
        timeout=None
        if raw.get("timeout") is None
        else _seconds(raw["timeout"], _join(path, "timeout")),
        retries=_number(raw.get("retries", 0), _join(path, "retries"), integer=True),
        retry_delay=float(_number(raw.get("retry_delay", 10.0), _join(path, "retry_delay"))),
        verify=tuple(
            _check(c, _join(_join(path, "verify"), i), hooks) for i, c in enumerate(verify)
        ),
    )


def _refs(action: Action) -> dict[str, str]:
    """The ``step:<id>`` references of *action*, by field."""
    fields = {
        "attach_to": getattr(action, "attach_to", None),
        "instance": getattr(action, "instance", None),
        "endpoint": getattr(action, "endpoint", None),
    }
    return {
        k: v[len(_STEP_REF) :]
        for k, v in fields.items()
        if isinstance(v, str) and v.startswith(_STEP_REF)
    }


_PLAN_KEYS = ("name", "application", "description", "policy", "max_parallel", "steps")


def _to_steps(value: Any) -> tuple[RecoveryStep, ...]:
    return tuple(value)


@attrs.frozen
class RecoveryPlan:
    """An ordered, rehearsable recovery runbook for one application.

    Attributes:
        name: Name of the plan.
        application: The application it recovers (its objectives come from the policy).
        steps: The steps, in the order the runbook lists them.
        description: What the plan is for.
        max_parallel: Steps that may run at the same time.
        policy: The `backuppolicy.Policy` whose targets and objectives the plan uses.
        policy_file: The ``policy:`` of the plan file (relative to it).
        plan_file: Where the plan was loaded from (shown in the runbook's commands).
        hooks: Named callables that steps refer to (``hook:``, ``function:``).
    """

    name: str
    application: str
    steps: tuple[RecoveryStep, ...] = attrs.field(converter=_to_steps)
    description: str = ""
    max_parallel: int = 4
    policy: Any = attrs.field(default=None, eq=False, repr=False)
    policy_file: str | None = None
    plan_file: str | None = None
    hooks: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._check_graph()
        if self.policy is not None:
            self._check_targets()

    def _check_graph(self) -> None:  # noqa: C901 - ids, needs, cycles, references
        if not self.steps:
            raise PolicyError.for_field("steps", "at least one step", [])
        index: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            if step.id in index:
                raise PolicyError.for_field(
                    f"steps[{i}].id",
                    f"a unique step id (steps[{index[step.id]}] has it too)",
                    step.id,
                )
            index[step.id] = i
        for i, step in enumerate(self.steps):
            for j, need in enumerate(step.needs):
                if need not in index:
                    raise PolicyError.for_field(
                        f"steps[{i}].needs[{j}]",
                        f"the id of another step ({', '.join(index)})",
                        need,
                    )
                if need == step.id:
                    raise PolicyError.for_field(
                        f"steps[{i}].needs[{j}]", f"another step than {step.id!r} itself", need
                    )
        self._check_cycles(index)
        for i, step in enumerate(self.steps):
            ancestors = self.ancestors(step.id)
            for field, ref in _refs(step.action).items():
                if ref not in ancestors:
                    raise PolicyError.for_field(
                        f"steps[{i}].{field}",
                        f"step:<id> of a step that {step.id!r} needs (directly or through others)",
                        f"{_STEP_REF}{ref}",
                    )

    def _check_cycles(self, index: Mapping[str, int]) -> None:
        state: dict[str, int] = {}
        by_id = {s.id: s for s in self.steps}

        def visit(sid: str, trail: list[str]) -> None:
            if state.get(sid) == 2:  # noqa: PLR2004 - done
                return
            if state.get(sid) == 1:
                cycle = [*trail[trail.index(sid) :], sid]
                raise PolicyError.for_field(
                    f"steps[{index[sid]}].needs",
                    "needs without a cycle",
                    " -> ".join(cycle),
                    hint=f"Step {sid!r} needs itself through {' -> '.join(cycle)}.",
                )
            state[sid] = 1
            for need in by_id[sid].needs:
                visit(need, [*trail, sid])
            state[sid] = 2

        for step in self.steps:
            visit(step.id, [])

    def _check_targets(self) -> None:
        names = {t.name: t for t in self.policy.targets}
        for i, step in enumerate(self.steps):
            wanted = step.action.target_kinds
            target = getattr(step.action, "target", None)
            if not wanted or target is None:
                continue
            if target not in names:
                raise PolicyError.for_field(
                    f"steps[{i}].target",
                    f"a target of policy {self.policy.name!r} ({', '.join(names)})",
                    target,
                )
            kind = names[target].kind
            if kind not in wanted:
                raise PolicyError.for_field(
                    f"steps[{i}].target",
                    f"a target of kind {' or '.join(wanted)} for a {step.kind.value} step",
                    f"{target} ({kind})",
                )
        apps = set(self.policy.applications)
        if self.application not in apps:
            raise PolicyError.for_field(
                "application",
                f"an application of policy {self.policy.name!r} ({', '.join(sorted(apps))})",
                self.application,
            )

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        policy: Any = None,
        hooks: Mapping[str, Callable[..., Any]] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        plan_file: str | None = None,
    ) -> RecoveryPlan:
        """Build a plan from plain data (as in the YAML file); errors name the field.

        Args:
            data: The plan: ``name``, ``application``, ``steps`` and optionally ``description``,
                ``max_parallel`` and ``policy`` (a policy file, relative to *base_dir*).
            policy: The `backuppolicy.Policy` (default: loaded from ``policy:``, if given).
            hooks: Named callables for ``hook:`` and ``function:`` references.
            base_dir: Directory that a relative ``policy:`` path is relative to.
            plan_file: The file the data came from (for the runbook's commands).

        Raises:
            PolicyError: A field is invalid, a ``needs`` id is unknown or makes a cycle, a target
                is not in the policy or has the wrong kind.
        """
        hooks = dict(hooks or {})
        raw = _mapping(data, "", _PLAN_KEYS, ("name", "application", "steps"))
        policy_file = None if raw.get("policy") is None else _text(raw["policy"], "policy")
        if policy is None and policy_file is not None:
            from backuppolicy.core.policy import Policy  # noqa: PLC0415 - only when the plan names it

            policy = Policy.from_file(Path(base_dir or ".") / policy_file)
        steps = raw["steps"]
        if isinstance(steps, str | Mapping) or not isinstance(steps, Sequence):
            raise PolicyError.for_field("steps", "a list of steps", steps)
        return cls(
            name=_ident(raw["name"], "name"),
            application=_text(raw["application"], "application"),
            steps=tuple(_step(s, f"steps[{i}]", hooks) for i, s in enumerate(steps)),
            description=str(raw.get("description") or "").strip(),
            max_parallel=_number(
                raw.get("max_parallel", 4), "max_parallel", minimum=1, integer=True
            ),
            policy=policy,
            policy_file=policy_file,
            plan_file=plan_file,
            hooks=hooks,
        )

    @classmethod
    def from_yaml(cls, text: str, **kwargs: Any) -> RecoveryPlan:
        """Build a plan from YAML text (keyword arguments as for `from_dict`)."""
        data, _ = _load_yaml(text, "recovery plan", _BoundedLoader)
        return cls.from_dict(data, **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> RecoveryPlan:
        """Load a plan file; a relative ``policy:`` is read next to it."""
        file = Path(path)
        text = _read_policy_text(file)
        kwargs.setdefault("base_dir", file.parent)
        kwargs.setdefault("plan_file", str(file))
        try:
            return cls.from_yaml(text, **kwargs)
        except PolicyError as exc:
            raise PolicyError(
                f"{file}: {exc}", path=exc.path, expected=exc.expected, got=exc.got
            ) from None

    # -- order ----------------------------------------------------------------------------

    def step(self, step_id: str) -> RecoveryStep:
        """The step *step_id*."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise PolicyError.for_field(
            "step", f"a step id ({', '.join(s.id for s in self.steps)})", step_id
        )

    def ancestors(self, step_id: str) -> set[str]:
        """Every step that *step_id* needs, directly or through others."""
        by_id = {s.id: s for s in self.steps}
        seen: set[str] = set()
        todo = list(by_id[step_id].needs)
        while todo:
            sid = todo.pop()
            if sid not in seen:
                seen.add(sid)
                todo.extend(by_id[sid].needs)
        return seen

    def stages(self) -> list[tuple[str, ...]]:
        """Steps grouped by depth: each stage needs only earlier stages (plan order within)."""
        depth: dict[str, int] = {}
        by_id = {s.id: s for s in self.steps}

        def level(sid: str) -> int:
            if sid not in depth:
                depth[sid] = 1 + max((level(n) for n in by_id[sid].needs), default=-1)
            return depth[sid]

        for step in self.steps:
            level(step.id)
        return [
            tuple(s.id for s in self.steps if depth[s.id] == d)
            for d in range(max(depth.values()) + 1)
        ]

    def __repr__(self) -> str:
        return f"<backuppolicy.RecoveryPlan(name={self.name!r}, application={self.application!r}, steps={len(self.steps)})>"

    # -- rendering ------------------------------------------------------------------------

    def objectives(self) -> tuple[Duration | None, Duration | None]:
        """The (RPO, RTO) objectives of the application from the policy (``None`` if unknown)."""
        if self.policy is None:
            return None, None
        try:
            objective = self.policy.objective_for(self.application)
        except PolicyError:
            return None, None
        return objective.rpo, objective.rto

    def to_markdown(self) -> str:
        """The human runbook: section 10 of the written policy, filled in for this plan."""
        return _markdown(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the shape `from_dict` reads; hooks appear by name)."""
        return _plan_dict(self)

    # -- running --------------------------------------------------------------------------

    def rehearse(
        self,
        *,
        now: datetime | None = None,
        targets: Mapping[str, Any] | None = None,
        log: RestoreLog | None = None,
        isolation: IsolationProfile | None = None,
        out: TextIO | None = None,
        resolve_endpoint: Callable[[str, str | None], str | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        ran_by: str = "",
    ) -> RecoveryReport:
        """Drill the plan into the isolation profile; production is never changed.

        Restores go into *isolation* (default: the policy's ``verification.isolation``) through
        each target's own ``restore()`` and stay up until every step has run, so health checks
        reach them; replacement and restarted instances are stand-ins launched in the isolation
        subnet; switch-traffic hooks are called with ``context.rehearsal`` true (commands get
        ``BACKUPPOLICY_REHEARSAL=1``). Then everything is torn down, even on failure.

        Args:
            now: The moment of the simulated disaster: points taken up to it are used and RPO is
                measured from it (default: now).
            targets: Built targets by name (default: built from the policy).
            log: Where the drill is recorded (one result per restore step and one for the drill).
            isolation: Where restores go (default: from the policy).
            out: Progress lines go here.
            resolve_endpoint: ``resolve_endpoint(step_id, endpoint)`` maps the endpoint a check
                step gets (e.g. a restored database that moto cannot serve, to a local one).
            sleep: Waits between retries and polls.
            clock: Monotonic clock measuring the RTO (seconds).
            ran_by: Who runs the drill (recorded in the log).

        Returns:
            The `RecoveryReport`, with each step's RTO and RPO and the objectives.
        """
        runner = _Runner(
            self,
            rehearsal=True,
            now=now,
            targets=targets,
            log=log,
            isolation=isolation,
            out=out,
            resolve_endpoint=resolve_endpoint,
            sleep=sleep,
            clock=clock,
            ran_by=ran_by,
        )
        return runner.run()

    def execute(
        self,
        *,
        confirm: bool = False,
        state_file: str | os.PathLike[str] | None = None,
        now: datetime | None = None,
        targets: Mapping[str, Any] | None = None,
        log: RestoreLog | None = None,
        out: TextIO | None = None,
        resolve_endpoint: Callable[[str, str | None], str | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = 15.0,
        ran_by: str = "",
    ) -> RecoveryReport:
        """Run the recovery for real: restores replace production as each step says.

        Args:
            confirm: Must be true: the plan's restores may rename, move aside and overwrite (the
                previous state is always kept).
            state_file: JSON file recording finished steps (written atomically after each); run
                again with the same file after a crash to resume: finished steps are not run
                again, and restores adopt what an interrupted step created.
            now: The moment of the recovery (RPO is measured from it; default: now).
            targets: Built targets by name (default: built from the policy).
            log: Where each restore and the recovery are recorded.
            out: Progress lines go here.
            resolve_endpoint: ``resolve_endpoint(step_id, endpoint)`` for check steps.
            sleep: Waits between retries and polls.
            clock: Monotonic clock measuring the RTO (seconds).
            poll_interval: Seconds between polls of databases, volumes and instances.
            ran_by: Who runs the recovery (recorded in the log).

        Raises:
            PolicyError: *confirm* is not true, or the state file belongs to another plan.
        """
        if confirm is not True:
            raise PolicyError.for_field(
                "confirm",
                "True to run a real recovery",
                confirm,
                hint="Review plan.to_markdown() or rehearse() first, then execute(confirm=True) (CLI: --yes). Nothing was changed.",
            )
        runner = _Runner(
            self,
            rehearsal=False,
            now=now,
            targets=targets,
            log=log,
            isolation=None,
            out=out,
            resolve_endpoint=resolve_endpoint,
            sleep=sleep,
            clock=clock,
            ran_by=ran_by,
            state_file=Path(state_file) if state_file is not None else None,
            poll_interval=poll_interval,
        )
        return runner.run()


# --------------------------------------------------------------------------------------------
# Running


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


class _StepFailedError(Exception):
    """A step's action or verification failed (the message says why)."""


@attrs.define
class _Outcome:
    resource: str | None = None
    endpoint: str | None = None
    data_time: datetime | None = None
    point_id: str | None = None
    target: str | None = None
    checks: list[CheckResult] = attrs.Factory(list)


class _Runner:
    """Runs the steps of a plan: scheduling, retries, timeouts, state, teardown."""

    def __init__(
        self,
        plan: RecoveryPlan,
        *,
        rehearsal: bool,
        now: datetime | None,
        targets: Mapping[str, Any] | None,
        log: RestoreLog | None,
        isolation: IsolationProfile | None,
        out: TextIO | None,
        resolve_endpoint: Callable[[str, str | None], str | None] | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        ran_by: str,
        state_file: Path | None = None,
        poll_interval: float = 15.0,
    ) -> None:
        self.plan = plan
        self.rehearsal = rehearsal
        self.now = ensure_aware(now, field="now").astimezone(UTC) if now is not None else _now()
        self._targets = dict(targets) if targets is not None else None
        self.log = log
        self.isolation = isolation or self._policy_isolation()
        self.out = out
        self.resolve_endpoint = resolve_endpoint
        self.sleep = sleep
        self.clock = clock
        self.ran_by = ran_by
        self.state_file = state_file
        self.poll_interval = poll_interval
        self.results: dict[str, StepResult] = {}
        self.token = f"{self.now:%Y%m%dt%H%M%Sz}"
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._state: dict[str, Any] = {}

    def _policy_isolation(self) -> IsolationProfile:
        policy = self.plan.policy
        if policy is None:
            return IsolationProfile()
        settings = dict(policy.verification.isolation)
        fields = {a.name for a in attrs.fields(IsolationProfile)}
        return IsolationProfile(**{k: v for k, v in settings.items() if k in fields})

    def target(self, name: str) -> Any:
        with self._lock:
            if self._targets is None or name not in self._targets:
                if self.plan.policy is None:
                    raise PolicyError.for_field(
                        "targets",
                        f"a target named {name!r} (or a plan with a policy)",
                        sorted(self._targets or {}),
                    )
                from backuppolicy.workflows.backups import build_targets  # noqa: PLC0415 - avoid a cycle

                built = build_targets(self.plan.policy, only=[name])
                self._targets = {**(self._targets or {}), **built}
            return self._targets[name]

    def say(self, text: str) -> None:
        if self.out is not None:
            with self._lock:
                self.out.write(text + "\n")
                self.out.flush()

    # -- state ----------------------------------------------------------------------------

    def _load_state(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            self._state = {
                "version": _STATE_VERSION,
                "plan": self.plan.name,
                "token": self.token,
                "now": self.now.isoformat(),
                "steps": {},
            }
            return
        expected = "a JSON state file written by execute()"
        try:
            # Bounded and never blocking, as policy and plan files: a FIFO, a device or a huge
            # file named as the state file is refused before anything is read.
            state = json.loads(_read_policy_text(self.state_file))
        except PolicyError as exc:
            raise PolicyError.for_field(
                "state_file", expected, str(self.state_file), hint=f"({exc})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise PolicyError.for_field(
                "state_file", expected, str(self.state_file), hint=short_repr(str(exc))
            ) from None
        if not isinstance(state, dict) or state.get("plan") != self.plan.name:
            raise PolicyError.for_field(
                "state_file",
                f"the state of plan {self.plan.name!r}",
                state.get("plan") if isinstance(state, dict) else state,
            )
        try:
            self._resume(state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # PolicyError too
            raise PolicyError.for_field(
                "state_file",
                expected,
                str(self.state_file),
                hint=f"Its token, now or steps are not as execute() writes them "
                f"({type(exc).__name__}: {short_repr(str(exc))}).",
            ) from None

    def _resume(self, state: dict[str, Any]) -> None:
        """Take the token, the time and the finished steps of an interrupted run from *state*."""
        token, now, steps = state["token"], state["now"], state.get("steps", {})
        if not isinstance(token, str) or not isinstance(now, str) or not isinstance(steps, dict):
            raise TypeError("token and now must be text, steps a mapping")
        resumed_now = ensure_aware(datetime.fromisoformat(now), field="state_file.now")
        results: dict[str, StepResult] = {}
        for sid, data in steps.items():
            if sid not in {s.id for s in self.plan.steps}:
                continue
            step = self.plan.step(sid)
            data_time = datetime.fromisoformat(data["data_time"]) if data.get("data_time") else None
            if data_time is not None:
                ensure_aware(data_time, field=f"state_file.steps.{sid}.data_time")
            results[sid] = StepResult(
                id=sid,
                kind=step.kind,
                status=StepStatus.RESUMED,
                duration=float(data.get("duration", 0.0)),
                rto=None,
                rpo=resumed_now - data_time if data_time else None,
                data_time=data_time,
                target=data.get("target"),
                point_id=data.get("point_id"),
                resource=data.get("resource"),
                endpoint=data.get("endpoint"),
                attempts=int(data.get("attempts", 1)),
            )
        self._state, self.token, self.now = state, token, resumed_now
        self.results.update(results)

    def _save(self, result: StepResult) -> None:
        if self.state_file is None:
            return
        with self._lock:
            self._state.setdefault("steps", {})[result.id] = {
                "status": "done",
                "finished_at": _now().isoformat(),
                "duration": result.duration,
                "data_time": result.data_time.isoformat() if result.data_time else None,
                "target": result.target,
                "point_id": result.point_id,
                "resource": result.resource,
                "endpoint": result.endpoint,
                "attempts": result.attempts,
            }
            _write_atomically(self.state_file, json.dumps(self._state, indent=2, sort_keys=True))

    # -- scheduling -----------------------------------------------------------------------

    def run(self) -> RecoveryReport:
        if not self.rehearsal:
            self._load_state()
            if self.state_file is not None and not self.state_file.exists():
                _write_atomically(
                    self.state_file, json.dumps(self._state, indent=2, sort_keys=True)
                )
        mode = "rehearsal" if self.rehearsal else "recovery"
        self.say(
            f"{mode} of {self.plan.name!r} ({self.plan.application}), {len(self.plan.steps)} steps, at {self.now.isoformat()}"
        )
        for sid in self.results:
            self.say(f"  = {sid}: finished in an earlier run")
        start = self.clock()
        teardown_errors: list[str] = []
        try:
            self._schedule(start)
        finally:
            if self.rehearsal:
                self.say("  tearing the drill down")
                try:
                    self._stack.close()
                except Exception as exc:  # noqa: BLE001 - reported, the sweeper removes leftovers
                    teardown_errors.append(f"{type(exc).__name__}: {exc}")
        rpo, rto = self.plan.objectives()
        finished = [r.rto for r in self.results.values() if r.rto is not None]
        report = RecoveryReport(
            plan=self.plan.name,
            application=self.plan.application,
            rehearsal=self.rehearsal,
            now=self.now,
            steps=tuple(self.results[s.id] for s in self.plan.steps),
            rto=max(finished, default=0.0),
            objective_rpo=rpo,
            objective_rto=rto,
            teardown_errors=tuple(teardown_errors),
            state_file=str(self.state_file) if self.state_file else None,
        )
        self.say(report.summary())
        if self.log is not None:
            if self.rehearsal:
                for result in report.steps:
                    if (
                        result.target
                        and result.status.ok
                        and result.kind in {a.kind for a in _RESTORES}
                    ):
                        self.log.record(self._drill_check(report, result))
            self.log.record(report.to_check(ran_by=self.ran_by))
        return report

    def _drill_check(self, report: RecoveryReport, result: StepResult) -> CheckResult:
        return CheckResult(
            check="recovery-drill",
            status=CheckStatus.PASS,
            target=str(result.target),
            checked_at=self.now,
            point_id=result.point_id,
            kind=CheckKind.RESTORE_TEST,
            application=self.plan.application,
            details=f"restored in drill {self.plan.name!r}, step {result.id!r}: RTO {_hms(result.rto)}, RPO {_age(result.rpo)}",
            evidence={
                "plan": self.plan.name,
                **result.to_dict(),
                "rpo_met": report.rpo_met(result),
                "rto_met": report.rto_met(result),
            },
            duration=result.duration,
            ran_by=self.ran_by,
        )

    def _schedule(self, start: float) -> None:
        pending = [s for s in self.plan.steps if s.id not in self.results]
        running: dict[Future[StepResult], tuple[RecoveryStep, float | None]] = {}
        abandoned: list[Future[StepResult]] = []  # timed out: their threads cannot be stopped
        pool = ThreadPoolExecutor(max_workers=self.plan.max_parallel, thread_name_prefix="recovery")
        try:
            while pending or running:
                for step in list(pending):
                    failed = [
                        n for n in step.needs if n in self.results and not self.results[n].status.ok
                    ]
                    if failed:
                        pending.remove(step)
                        self.results[step.id] = StepResult(
                            step.id,
                            step.kind,
                            StepStatus.BLOCKED,
                            error=f"needs {', '.join(failed)}, which did not succeed",
                        )
                        self.say(f"  - {step.id}: blocked (needs {', '.join(failed)})")
                    elif (
                        all(n in self.results for n in step.needs)
                        and len(running) < self.plan.max_parallel
                    ):
                        pending.remove(step)
                        deadline = None if step.timeout is None else self.clock() + step.timeout
                        self.say(f"  > {step.id}: {step.heading}")
                        running[pool.submit(self._run_step, step, start, deadline)] = (
                            step,
                            deadline,
                        )
                if not running:
                    continue
                deadlines = [d for _, d in running.values() if d is not None]
                wait_for = max(0.0, min(deadlines) - self.clock()) if deadlines else None
                done, _ = wait(list(running), timeout=wait_for, return_when=FIRST_COMPLETED)
                for future in done:
                    step, _ = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        raise error  # a crash (KeyboardInterrupt, SystemExit ...): state keeps what finished
                    self._finish(future.result())
                for future, (step, deadline) in list(running.items()):
                    if deadline is not None and self.clock() >= deadline and not future.done():
                        running.pop(future)
                        abandoned.append(future)
                        self._finish(
                            StepResult(
                                step.id,
                                step.kind,
                                StepStatus.FAILED,
                                duration=step.timeout or 0.0,
                                error=f"timed out after {step.timeout:g} s",
                            )
                        )
        finally:
            pool.shutdown(wait=not running and not abandoned, cancel_futures=True)

    def _finish(self, result: StepResult) -> None:
        self.results[result.id] = result
        if result.status.ok:
            self._save(result)
            extra = f", RPO {_age(result.rpo)}" if result.rpo is not None else ""
            self.say(
                f"  + {result.id}: done in {_hms(result.duration)} (RTO {_hms(result.rto)}{extra})"
            )
        else:
            self.say(f"  ! {result.id}: FAILED: {result.error}")

    def _verify(self, step: RecoveryStep, outcome: _Outcome, deadline: float | None) -> None:
        for check in step.verify:
            result = self._check_with_retries(
                check, outcome.endpoint, step, attempts=1, interval=0.0, deadline=deadline
            )
            outcome.checks.append(result)
            if not result.ok:
                raise _StepFailedError(f"verification {result.check} failed: {result.details}")

    def _run_step(self, step: RecoveryStep, start: float, deadline: float | None) -> StepResult:
        began = self.clock()
        error = ""
        attempts = 0
        for attempt in range(step.retries + 1):
            attempts = attempt + 1
            try:
                outcome = self._act(step, deadline)
                self._verify(step, outcome, deadline)
            except Exception as exc:  # noqa: BLE001 - a failed try; retried or reported
                error = (
                    f"{type(exc).__name__}: {exc}"
                    if not isinstance(exc, _StepFailedError)
                    else str(exc)
                )
                if attempt < step.retries and (deadline is None or self.clock() < deadline):
                    self.say(f"  ~ {step.id}: try {attempts} failed ({error}); retrying")
                    self.sleep(step.retry_delay)
                    continue
                return StepResult(
                    step.id,
                    step.kind,
                    StepStatus.FAILED,
                    duration=self.clock() - began,
                    error=error,
                    attempts=attempts,
                )
            finished = self.clock()
            return StepResult(
                id=step.id,
                kind=step.kind,
                status=StepStatus.DONE,
                duration=finished - began,
                rto=finished - start,
                rpo=self.now - outcome.data_time if outcome.data_time else None,
                data_time=outcome.data_time,
                target=outcome.target,
                point_id=outcome.point_id,
                resource=outcome.resource,
                endpoint=outcome.endpoint,
                attempts=attempts,
                checks=tuple(outcome.checks),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # -- actions --------------------------------------------------------------------------

    def _ref(self, value: str | None, field: str) -> str | None:
        """A literal, or the output of the referenced step (``step:<id>``)."""
        if value is None or not value.startswith(_STEP_REF):
            return value
        result = self.results[value[len(_STEP_REF) :]]
        return result.resource if field in {"attach_to", "instance"} else result.endpoint

    def _act(self, step: RecoveryStep, deadline: float | None) -> _Outcome:
        action = step.action
        if isinstance(action, HealthCheck):
            endpoint = self._ref(action.endpoint, "endpoint")
            result = self._check_with_retries(
                action.check,
                endpoint,
                step,
                attempts=action.attempts,
                interval=action.interval,
                deadline=deadline,
            )
            if not result.ok:
                raise _StepFailedError(
                    f"{result.check}: {result.details} (after {action.attempts} tries)"
                )
            return _Outcome(endpoint=endpoint, checks=[result])
        if isinstance(action, SwitchTraffic):
            return self._switch(step, action, deadline)
        if isinstance(action, RestartInstance | ReplaceInstance):
            return self._instance(step, action, deadline)
        if self.rehearsal:
            return self._drill_restore(action)
        return self._real_restore(action, deadline)

    def _check_with_retries(
        self,
        check: Check,
        endpoint: str | None,
        step: RecoveryStep,
        *,
        attempts: int,
        interval: float,
        deadline: float | None,
    ) -> CheckResult:
        if self.resolve_endpoint is not None:
            endpoint = self.resolve_endpoint(step.id, endpoint)
        result = run_check(check, endpoint, target="recovery")
        for _ in range(attempts - 1):
            if result.ok or (deadline is not None and self.clock() + interval >= deadline):
                break
            self.sleep(interval)
            result = run_check(check, endpoint, target="recovery")
        return result

    def _switch(
        self, step: RecoveryStep, action: SwitchTraffic, deadline: float | None
    ) -> _Outcome:
        endpoint = self._ref(action.endpoint, "endpoint")
        if action.function is not None:
            context = StepContext(
                step=step,
                rehearsal=self.rehearsal,
                now=self.now,
                endpoint=endpoint,
                outputs=dict(self.results),
            )
            if action.function(context) is False:
                raise _StepFailedError(f"hook {action.hook} returned False")
            return _Outcome(endpoint=endpoint)
        argv = [_fill(part, endpoint) for part in action.command]
        env = {
            **os.environ,
            "BACKUPPOLICY_REHEARSAL": "1" if self.rehearsal else "0",
            "BACKUPPOLICY_STEP": step.id,
            "BACKUPPOLICY_ENDPOINT": endpoint or "",
        }
        remaining = None if deadline is None else max(0.1, deadline - self.clock())
        try:
            done = subprocess.run(  # noqa: S603 - the plan's own command, no shell
                argv, capture_output=True, text=True, env=env, timeout=remaining, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _StepFailedError(f"command {argv[0]!r}: {exc}") from exc
        if done.stdout.strip():
            self.say("    " + done.stdout.strip().replace("\n", "\n    "))
        if done.returncode != 0:
            raise _StepFailedError(
                f"command {' '.join(argv)!r} exited {done.returncode}: {done.stderr.strip()[-300:]}"
            )
        return _Outcome(endpoint=endpoint)

    def _real_restore(self, action: Any, deadline: float | None) -> _Outcome:
        target = self.target(action.target)
        kwargs = action.restore_kwargs()
        if isinstance(action, RestoreVolumes) and action.attach_to:
            kwargs["attach_to"] = self._ref(action.attach_to, "attach_to")
        plan = plan_restore(
            target, now=self.now if kwargs.get("at") is None else None, token=self.token, **kwargs
        )
        timeout = 3600.0 if deadline is None else max(1.0, deadline - self.clock())
        result = restore(
            plan,
            confirm=True,
            log=self.log,
            sleep=self.sleep,
            poll_interval=self.poll_interval,
            timeout=timeout,
            ran_by=self.ran_by,
        )
        if not result.ok:
            raise _StepFailedError("; ".join(c.details for c in result.failed))
        for kept in result.kept:
            self.say(f"    previous state of {action.target} kept: {kept}")
        return _Outcome(
            resource=result.resource,
            endpoint=result.endpoint,
            data_time=plan.data_time,
            point_id=plan.point.id if plan.point else None,
            target=action.target,
            checks=list(result.checks),
        )

    def _keep(self, manager: Any) -> Any:
        """Enter *manager* now; it exits when the drill is torn down."""
        value = manager.__enter__()
        with self._lock:
            self._stack.push(manager)
        return value

    def _drill_restore(self, action: Any) -> _Outcome:
        target = self.target(action.target)
        at = getattr(action, "at", None)
        isolation = self.isolation
        if (
            isinstance(action, RestoreDatabase)
            and at is not None
            and hasattr(target, "restore_to_point_in_time")
        ):
            restored = self._keep(target.restore_to_point_in_time(at, into=isolation))
            return _Outcome(
                resource=restored.id,
                endpoint=restored.endpoint,
                data_time=at,
                target=action.target,
                point_id=restored.point.id,
            )
        kinds = ("s3-manifest",) if isinstance(action, RestoreS3) else ()
        point: RecoveryPoint = choose_point(
            target, action.point, before=at or self.now, kinds=kinds
        )
        if isinstance(action, RestoreVolumes) and action.attach_to:
            instance = self._ref(action.attach_to, "attach_to")
            described = target.describe_instance(str(instance), None) or {}
            zone = described.get("Placement", {}).get("AvailabilityZone")
            isolation = attrs.evolve(isolation, availability_zone=zone) if zone else isolation
        restored = self._keep(target.restore(point, into=isolation))
        if isinstance(action, RestoreVolumes) and action.attach_to:
            self._attach_in_drill(target, str(self._ref(action.attach_to, "attach_to")), restored)
        return _Outcome(
            resource=restored.id,
            endpoint=restored.endpoint or restored.id,
            data_time=point.created_at,
            point_id=point.id,
            target=action.target,
        )

    def _attach_in_drill(self, target: Any, instance: str, restored: Any) -> None:
        """Attach drill volumes to a stand-in instance at free devices; detach them at teardown."""
        region = restored.details.get("region")
        described = target.describe_instance(instance, region) or {}
        used = {str(m["DeviceName"]) for m in described.get("BlockDeviceMappings") or []}
        free = iter(d for d in (f"/dev/sd{c}" for c in "fghijklmnop") if d not in used)
        for volume in restored.details.get("volumes", ()):
            volume_id, device = str(volume["volume_id"]), next(free)
            target.attach_volume(volume_id, instance, device, region=region)

            def detach(volume_id: str = volume_id, device: str = device) -> None:
                with contextlib.suppress(ResourceNotFoundError):
                    target.detach_volume(volume_id, instance, device, region=region, force=True)
                for _ in range(60):
                    states = target.volume_states([volume_id], region=region)
                    if all(state == "available" for state in states.values()):
                        return
                    self.sleep(self.poll_interval)

            with self._lock:
                self._stack.callback(detach)

    def _instance(
        self, step: RecoveryStep, action: RestartInstance | ReplaceInstance, deadline: float | None
    ) -> _Outcome:
        target = self.target(action.target)
        ours = (
            bool(action.instance and action.instance.startswith(_STEP_REF))
            if isinstance(action, RestartInstance)
            else False
        )
        if isinstance(action, RestartInstance) and (not self.rehearsal or ours):
            iid = self._ref(action.instance, "instance") or str(target.instance_id)
            state = str(
                (target.describe_instance(iid, None) or {}).get("State", {}).get("Name", "missing")
            )
            if state == "running":
                target.reboot_instance(iid)
            elif state == "stopped":
                target.start_instance(iid)
            else:
                raise _StepFailedError(f"instance {iid} is {state}: expected running or stopped")
            return _Outcome(resource=iid, endpoint=self._wait_running(target, iid, deadline))
        return self._launch(step, action, target, deadline)

    def _launch(
        self,
        step: RecoveryStep,
        action: RestartInstance | ReplaceInstance,
        target: Any,
        deadline: float | None,
    ) -> _Outcome:
        """Launch a replacement (or, in a drill, a stand-in in the isolation subnet)."""
        original = target.describe_instance(str(target.instance_id), None) or {}
        if isinstance(action, RestartInstance):  # drill: a stand-in of the instance it names
            ref = self._ref(action.instance, "instance")
            original = (target.describe_instance(ref, None) if ref else None) or original
            action = ReplaceInstance(action.target)
        image = action.image_id or original.get("ImageId")
        if not image:
            raise _StepFailedError(
                f"no image to launch: instance {target.instance_id} is gone; set image_id"
            )
        groups = list(action.security_group_ids) or [
            g["GroupId"] for g in original.get("SecurityGroups") or []
        ]
        subnet = action.subnet_id or original.get("SubnetId")
        tags = {
            "Name": f"{action.target}-{'drill' if self.rehearsal else 'replacement'}-{self.token}",
            TAG_RESTORE_ID: self.token,
            "backuppolicy:step": step.id,
        }
        if self.rehearsal:
            subnet = self.isolation.subnet_id
            groups = list(self.isolation.security_group_ids)
            tags = {**tags, **self.isolation.tags, self.isolation.sweep_tag: self.now.isoformat()}
        found = target.instances_matching(
            [
                {"Name": f"tag:{TAG_RESTORE_ID}", "Values": [self.token]},
                {"Name": "tag:backuppolicy:step", "Values": [step.id]},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
        )
        if found:
            iid = str(found[0]["InstanceId"])
        else:
            iid = target.launch_instance(
                image_id=str(image),
                instance_type=action.instance_type or original.get("InstanceType") or "t3.micro",
                client_token=f"{self.token}-{step.id}"[:64],
                tags=tags,
                subnet_id=subnet,
                security_group_ids=groups,
                key_name=None if self.rehearsal else original.get("KeyName"),
            )
        if self.rehearsal:

            def terminate() -> None:
                target.terminate_instance(iid)

            with self._lock:
                self._stack.callback(terminate)
        return _Outcome(resource=iid, endpoint=self._wait_running(target, iid, deadline))

    def _wait_running(self, target: Any, iid: str, deadline: float | None) -> str | None:
        while True:
            item = target.describe_instance(iid, None) or {}
            state = str(item.get("State", {}).get("Name", "missing"))
            if state == "running":
                return item.get("PrivateIpAddress") or item.get("PublicDnsName") or iid
            if state in {"terminated", "shutting-down", "missing"} or (
                deadline is not None and self.clock() >= deadline
            ):
                raise _StepFailedError(f"instance {iid} is {state}, not running")
            self.sleep(self.poll_interval)


def _write_atomically(path: Path, text: str) -> None:
    """Write *text* to *path*: a temporary file, flushed and fsync'd, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# --------------------------------------------------------------------------------------------
# Rendering


def _plan_dict(plan: RecoveryPlan) -> dict[str, Any]:  # noqa: C901, PLR0912 - one branch per field
    steps = []
    for step in plan.steps:
        data: dict[str, Any] = {"id": step.id, "kind": step.kind.value}
        if step.title:
            data["title"] = step.title
        if step.needs:
            data["needs"] = list(step.needs)
        if step.timeout is not None:
            data["timeout"] = step.timeout
        if step.retries:
            data["retries"] = step.retries
        action = step.action
        for field in attrs.fields(type(action)):
            value = getattr(action, field.name)
            if field.name == "function" or value in (None, (), False):
                continue
            if field.name == "check":
                value = value.to_dict()
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            data[field.name] = value
        if step.verify:
            data["verify"] = [c.to_dict() for c in step.verify]
        steps.append(data)
    result: dict[str, Any] = {"name": plan.name, "application": plan.application}
    if plan.description:
        result["description"] = plan.description
    if plan.policy_file:
        result["policy"] = plan.policy_file
    return {**result, "max_parallel": plan.max_parallel, "steps": steps}


def _library_call(step: RecoveryStep) -> tuple[str, str | None]:
    """The step as a Python call, and why it cannot run as written (``None``: it can)."""
    action = step.action
    if isinstance(action, _RESTORES):
        kwargs = ", ".join(
            f"{k}={v!r}" for k, v in action.restore_kwargs().items() if v not in (None, (), False)
        )
        unknown = None
        if isinstance(action, RestoreVolumes) and action.attach_to:
            attach = action.attach_to
            if attach.startswith(_STEP_REF):
                attach = f"<instance launched by {attach[len(_STEP_REF) :]}>"
                unknown = f"the instance id comes from step {action.attach_to[len(_STEP_REF) :]}"
            kwargs = ", ".join(filter(None, [kwargs, f"attach_to={attach!r}"]))
        call = f'bp.restore(bp.plan_restore(policy, "{action.target}"{", " + kwargs if kwargs else ""}), confirm=True, log=log)'
        return call, unknown
    if isinstance(action, HealthCheck):
        return (
            f"{type(action.check).__name__}(...).run(endpoint)  # {action.check.describe()}",
            "an outline: the check's settings and endpoint are in the step above",
        )
    if isinstance(action, SwitchTraffic):
        return (
            f"{action.hook}(context)"
            if action.hook
            else "subprocess.run(" + repr(list(action.command)) + ")"
        ), "an outline: switching traffic is the plan's own hook or command"
    if isinstance(action, RestartInstance):
        return (
            'ec2.reboot_instances(InstanceIds=[instance_id])  # or start_instances if stopped; then wait "running"',
            "an outline: the instance id is known only during the recovery",
        )
    return (
        "ec2.run_instances(ImageId=..., InstanceType=..., SubnetId=..., SecurityGroupIds=[...], MinCount=1, MaxCount=1)",
        "an outline: the image, type and network come from the original instance",
    )


def _python_block(step: RecoveryStep) -> list[str]:
    """The step's ```python block; one that cannot run as written is marked for the docs test."""
    call, unknown = _library_call(step)
    marker = [f"% snippet: skip - {unknown}"] if unknown else []
    return [*marker, "```python", call, "```"]


def _shell(step: RecoveryStep, policy_file: str) -> list[str]:
    action = step.action
    if isinstance(action, _RESTORES):
        return [f"backuppolicy restore --policy {policy_file} {action.cli()} --yes"]
    if isinstance(action, HealthCheck):
        return [action.check.command()]
    if isinstance(action, SwitchTraffic):
        return (
            [" ".join(action.command)]
            if action.command
            else [f"# Python hook {action.hook}(context)"]
        )
    if isinstance(action, RestartInstance):
        iid = (
            action.instance
            if action.instance and not action.instance.startswith(_STEP_REF)
            else f"<instance of {action.instance or action.target}>"
        )
        return [
            f"aws ec2 reboot-instances --instance-ids {iid}",
            f"aws ec2 wait instance-running --instance-ids {iid}",
        ]
    return [
        f"aws ec2 run-instances --image-id {action.image_id or '<image of ' + action.target + '>'} --instance-type {action.instance_type or '<type of the original>'} --subnet-id {action.subnet_id or '<subnet of the original>'}",
        "aws ec2 wait instance-running --instance-ids <new instance id>",
    ]


_DRILL = {
    StepKind.RESTORE_DATABASE: "restored into the isolation profile (its subnet group, security groups and small class), deleted afterwards",
    StepKind.RESTORE_DIRECTORY: "restored into a temporary directory, removed afterwards",
    StepKind.RESTORE_S3: "the newest manifest is restored under a scratch prefix, purged afterwards",
    StepKind.RESTORE_VOLUMES: "volumes created in the isolation zone (attached to the stand-in instance, if any), deleted afterwards",
    StepKind.RESTART_INSTANCE: "an instance the drill launched is restarted; a production instance is never touched: a stand-in is launched in the isolation subnet instead, terminated afterwards",
    StepKind.REPLACE_INSTANCE: "the replacement is launched in the isolation subnet, terminated afterwards",
    StepKind.HEALTH_CHECK: "run against the drill's resources",
    StepKind.SWITCH_TRAFFIC: "the hook is called with context.rehearsal true (commands get BACKUPPOLICY_REHEARSAL=1): it must not move production traffic",
}
_KEPT = {
    StepKind.RESTORE_DATABASE: "with `swap: true` the original database is renamed `<id>-before-restore-<stamp>` and kept; nothing is deleted",
    StepKind.RESTORE_DIRECTORY: "the current directory is moved to `<path>.before-restore-<stamp>`",
    StepKind.RESTORE_S3: "in place, every current version stays in the bucket's history (versioning is checked first)",
    StepKind.RESTORE_VOLUMES: "a volume already at a device is detached and kept",
    StepKind.REPLACE_INSTANCE: "the original instance is not touched",
}


def _markdown(plan: RecoveryPlan) -> str:
    plan_file = plan.plan_file or "recovery_plan.yaml"
    if plan.policy_file and plan.plan_file:
        policy_file = str(Path(plan.plan_file).parent / plan.policy_file)
    else:
        policy_file = plan.policy_file or "policy.yaml"
    policy_arg = "" if plan.policy_file else f" --policy {policy_file}"
    rpo, rto = plan.objectives()
    lines = [f"# 10. System Restart and Recovery Procedures: {plan.application}", ""]
    if plan.description:
        lines += [plan.description, ""]
    lines += [
        f"Recovery plan `{plan.name}` for the application **{plan.application}**"
        + (f" of policy `{plan.policy.name}`" if plan.policy is not None else "")
        + ".",
        "",
        f"- Recovery point objective (RPO): {rpo.describe() if rpo else 'not set'}.",
        f"- Recovery time objective (RTO): {rto.describe() if rto else 'not set'}.",
        "",
        "## 10.1 How to run it",
        "",
        "Rehearse it first (a drill into the isolation environment; production is not touched),",
        "then run it for real. The real run is resumable: run the same command again after a",
        "crash and the steps already finished are not repeated.",
        "",
        "```sh",
        f"backuppolicy recover{policy_arg} --plan {plan_file} --rehearse",
        f"backuppolicy recover{policy_arg} --plan {plan_file} --yes --state recovery-state.json",
        "```",
        "",
        "```python",
        "import backuppolicy as bp",
        "from backuppolicy.workflows.recovery import RecoveryPlan",
        "from backuppolicy.workflows.testlog import TestLog",
        "",
        f'plan = RecoveryPlan.from_file("{plan_file}")  # its policy: {policy_file}',
        "policy = plan.policy",
        'log = TestLog.open("backup-tests.jsonl")',
        "report = plan.rehearse(log=log)",
        'report = plan.execute(confirm=True, state_file="recovery-state.json", log=log)',
        "```",
        "",
        "A step that fails stops the steps that need it; independent steps carry on. Steps of the",
        f"same stage run in parallel (at most {plan.max_parallel} at a time).",
        "",
        "## 10.2 Order",
        "",
        "| stage | steps (in parallel) |",
        "|---|---|",
    ]
    numbers = {s.id: f"10.{n}" for n, s in enumerate(plan.steps, start=3)}
    for depth, stage in enumerate(plan.stages(), start=1):
        lines.append(f"| {depth} | " + ", ".join(f"{numbers[sid]} `{sid}`" for sid in stage) + " |")
    lines.append("")
    for step in plan.steps:
        lines += [f"## {numbers[step.id]} {step.heading}", ""]
        needs = ", ".join(f"`{n}` ({numbers[n]})" for n in step.needs) or "nothing"
        timeout = _hms(step.timeout) if step.timeout is not None else "none"
        lines += [
            f"- **Step:** `{step.id}` ({step.kind.value}); needs {needs}; timeout {timeout}; retries {step.retries}.",
            f"- **Does:** {step.action.describe()}.",
        ]
        if step.kind in _KEPT:
            lines.append(f"- **Previous state:** {_KEPT[step.kind]}.")
        for check in step.verify:
            lines.append(f"- **Verify:** {check.describe()}.")
        lines.append(f"- **In a rehearsal:** {_DRILL[step.kind]}.")
        lines += [
            "",
            "```sh",
            *_shell(step, policy_file),
            "```",
            "",
            *_python_block(step),
            "",
        ]
    lines += [
        "## After the recovery",
        "",
        "- Check the final report: every step `done`, RTO and RPO against the objectives above.",
        "- Record the recovery in the backup testing log (done automatically with `log=`).",
        "- Remove what was kept aside (`*-before-restore-*`) only once the recovered system is trusted.",
        "",
    ]
    return "\n".join(lines)
