"""Rendering a recovery plan: its plain data and the human runbook (Markdown).

Private: `RecoveryPlan.to_dict` and `RecoveryPlan.to_markdown` in
`backuppolicy.workflows.recovery` call `plan_dict` and `markdown`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from backuppolicy.workflows._recovery_steps import (
    RESTORES,
    STEP_REF,
    HealthCheck,
    RecoveryStep,
    RestartInstance,
    RestoreVolumes,
    StepKind,
    SwitchTraffic,
    format_hms,
)

if TYPE_CHECKING:
    from backuppolicy.workflows.recovery import RecoveryPlan

# --------------------------------------------------------------------------------------------
# Rendering


def plan_dict(plan: RecoveryPlan) -> dict[str, object]:  # noqa: C901, PLR0912 - one branch per field
    steps = []
    for step in plan.steps:
        data: dict[str, object] = {"id": step.id, "kind": step.kind.value}
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
    result: dict[str, object] = {"name": plan.name, "application": plan.application}
    if plan.description:
        result["description"] = plan.description
    if plan.policy_file:
        result["policy"] = plan.policy_file
    return {**result, "max_parallel": plan.max_parallel, "steps": steps}


def _library_call(step: RecoveryStep) -> tuple[str, str | None]:
    """The step as a Python call, and why it cannot run as written (``None``: it can)."""
    action = step.action
    if isinstance(action, RESTORES):
        kwargs = ", ".join(
            f"{k}={v!r}" for k, v in action.restore_kwargs().items() if v not in (None, (), False)
        )
        unknown = None
        if isinstance(action, RestoreVolumes) and action.attach_to:
            attach = action.attach_to
            if attach.startswith(STEP_REF):
                attach = f"<instance launched by {attach[len(STEP_REF) :]}>"
                unknown = f"the instance id comes from step {action.attach_to[len(STEP_REF) :]}"
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
    if isinstance(action, RESTORES):
        return [f"backuppolicy restore --policy {policy_file} {action.cli()} --apply --yes"]
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
            if action.instance and not action.instance.startswith(STEP_REF)
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


def markdown(plan: RecoveryPlan) -> str:
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
        f"backuppolicy recover{policy_arg} --plan {plan_file} --apply --yes --state recovery-state.json",
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
        timeout = format_hms(step.timeout) if step.timeout is not None else "none"
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
