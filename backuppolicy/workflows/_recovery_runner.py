"""Running a recovery plan: scheduling, retries, timeouts, resumable state and teardown.

Private: `RecoveryPlan.rehearse` and `RecoveryPlan.execute` in
`backuppolicy.workflows.recovery` run their plan through `Runner`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import attrs

from backuppolicy.checks.health import Check
from backuppolicy.checks.running import run_check
from backuppolicy.checks.verify import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError, short_repr
from backuppolicy.core.loading import read_policy_text as _read_policy_text
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.restoring import choose_point
from backuppolicy.core.targets import TAG_RESTORE_ID, IsolationProfile
from backuppolicy.workflows._assemble import build_targets
from backuppolicy.workflows._recovery_steps import (
    RESTORES,
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
    StepResult,
    StepStatus,
    SwitchTraffic,
    format_age,
    format_hms,
)
from backuppolicy.workflows._restore import RestoreLog, plan_restore, restore

if TYPE_CHECKING:
    from backuppolicy.workflows.recovery import RecoveryPlan

_STATE_VERSION = 1
_T = TypeVar("_T")

_RestoreAction = RestoreDatabase | RestoreDirectory | RestoreS3 | RestoreVolumes


def _now() -> datetime:
    return datetime.now(UTC)


def _fill(text: str, endpoint: str | None) -> str:
    return text.replace("{endpoint}", endpoint or "")


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


class Runner:
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
                        and result.kind in {a.kind for a in RESTORES}
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
            details=f"restored in drill {self.plan.name!r}, step {result.id!r}: RTO {format_hms(result.rto)}, RPO {format_age(result.rpo)}",
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
            extra = f", RPO {format_age(result.rpo)}" if result.rpo is not None else ""
            self.say(
                f"  + {result.id}: done in {format_hms(result.duration)} (RTO {format_hms(result.rto)}{extra})"
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
        if value is None or not value.startswith(STEP_REF):
            return value
        result = self.results[value[len(STEP_REF) :]]
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

    def _real_restore(self, action: _RestoreAction, deadline: float | None) -> _Outcome:
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

    def _keep(self, manager: contextlib.AbstractContextManager[_T]) -> _T:
        """Enter *manager* now; it exits when the drill is torn down."""
        value = manager.__enter__()
        with self._lock:
            self._stack.push(manager)
        return value

    def _drill_restore(self, action: _RestoreAction) -> _Outcome:
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
            bool(action.instance and action.instance.startswith(STEP_REF))
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
