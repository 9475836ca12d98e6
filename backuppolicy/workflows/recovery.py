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

This module holds `RecoveryPlan` and re-exports every public name; the parts live in private
modules: ``_recovery_steps`` (the step kinds, results, report and hook context),
``_recovery_loader`` (plain data and YAML to a plan), ``_recovery_runner`` (rehearse and execute)
and ``_recovery_runbook`` (``to_dict`` and the Markdown runbook).

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

import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from backuppolicy.checks.health import CallableCheck, HttpCheck, SqlCheck, TcpCheck
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.targets import IsolationProfile
from backuppolicy.workflows._recovery_loader import plan_fields, read_text, yaml_data
from backuppolicy.workflows._recovery_runbook import markdown, plan_dict
from backuppolicy.workflows._recovery_runner import Runner
from backuppolicy.workflows._recovery_steps import (
    STEP_REF,
    HealthCheck,
    RecoveryReport,
    RecoveryStep,
    ReplaceInstance,
    RestartInstance,
    RestoreDatabase,
    RestoreDirectory,
    RestoreS3,
    RestoreVolumes,
    StepContext,
    StepKind,
    StepResult,
    StepStatus,
    SwitchTraffic,
    action_refs,
)
from backuppolicy.workflows._restore import RestoreLog

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy

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


def _to_steps(value: Iterable[RecoveryStep]) -> tuple[RecoveryStep, ...]:
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
    policy: Policy | None = attrs.field(default=None, eq=False, repr=False)
    policy_file: str | None = None
    plan_file: str | None = None
    hooks: Mapping[str, Callable[..., Any]] = attrs.field(factory=dict, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._check_graph()
        if self.policy is not None:
            self._check_targets(self.policy)

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
            for field, ref in action_refs(step.action).items():
                if ref not in ancestors:
                    raise PolicyError.for_field(
                        f"steps[{i}].{field}",
                        f"step:<id> of a step that {step.id!r} needs (directly or through others)",
                        f"{STEP_REF}{ref}",
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

    def _check_targets(self, policy: Policy) -> None:
        names = {t.name: t for t in policy.targets}
        for i, step in enumerate(self.steps):
            wanted = step.action.target_kinds
            target = getattr(step.action, "target", None)
            if not wanted or target is None:
                continue
            if target not in names:
                raise PolicyError.for_field(
                    f"steps[{i}].target",
                    f"a target of policy {policy.name!r} ({', '.join(names)})",
                    target,
                )
            kind = names[target].kind
            if kind not in wanted:
                raise PolicyError.for_field(
                    f"steps[{i}].target",
                    f"a target of kind {' or '.join(wanted)} for a {step.kind.value} step",
                    f"{target} ({kind})",
                )
        apps = set(policy.applications)
        if self.application not in apps:
            raise PolicyError.for_field(
                "application",
                f"an application of policy {policy.name!r} ({', '.join(sorted(apps))})",
                self.application,
            )

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls,
        data: object,
        *,
        policy: Policy | None = None,
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
        return cls(
            **plan_fields(data, policy=policy, hooks=hooks, base_dir=base_dir, plan_file=plan_file)
        )

    @classmethod
    def from_yaml(cls, text: str, **kwargs: Any) -> RecoveryPlan:
        """Build a plan from YAML text (keyword arguments as for `from_dict`)."""
        return cls.from_dict(yaml_data(text), **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> RecoveryPlan:
        """Load a plan file; a relative ``policy:`` is read next to it."""
        file = Path(path)
        text = read_text(file)
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
        return markdown(self)

    def to_dict(self) -> dict[str, object]:
        """Plain data (the shape `from_dict` reads; hooks appear by name)."""
        return plan_dict(self)

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
        runner = Runner(
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
                hint="Review plan.to_markdown() or rehearse() first, then execute(confirm=True) (CLI: --apply). Nothing was changed.",
            )
        runner = Runner(
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
