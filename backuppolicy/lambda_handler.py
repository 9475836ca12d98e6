"""AWS Lambda entry point: run ``run``, ``backup``, ``prune`` or ``restore-test`` of a policy on a schedule.

Set the function's handler to ``backuppolicy.lambda_handler.handler``;
`backuppolicy.aws.lifecycle_scheduler.export_scheduler` writes the schedules that invoke it. The event::

    {"action": "backup" | "prune" | "restore-test",
     "policy": "s3://bucket/policy.yaml" | "/var/task/policy.yaml",   # default: $BACKUPPOLICY_FILE
     "apply": false,            # prune only: really delete (default: a dry run)
     "now": "2026-11-26T04:00:00Z",   # optional, default: the invocation time
     "targets": ["shop-db"],    # optional: only these targets
     "application": "shop",     # restore-test only: only this application's targets
     "log": "s3://bucket/testing-log"}   # restore-test only: the testing log

``{"action": "run"}`` does whatever is due (`backuppolicy.workflows.unattended.run`; ``log``
defaults to the policy's ``run.log``; ``"restore_tests": false`` leaves the restore tests to the
state machine, as the CloudFormation export's schedules do). The steps of a restore test in the Step Functions state
machine of `backuppolicy.aws.cloudformation` (``restore-test-start``, ``-poll``, ``-probe``,
``-teardown``, ``-record``, see `backuppolicy.workflows.restore_steps`) take ``{"action": ...,
"state": {...}}`` and return the new state; an error in a step raises, for the state machine's
``Retry`` and ``Catch``.

A ``restore-test`` runs the probes and fingerprints the policy file declares for each target
(the same as ``backuppolicy restore-test`` and `backuppolicy.workflows.verify.restore_test`).

The result is the run's report as JSON-ready data. A run with failures raises
`~backuppolicy.core.exceptions.BackupPolicyError` after computing the report, so the invocation counts
as failed (Lambda's ``Errors`` metric, the schedule's dead-letter queue) and someone hears of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backuppolicy.aws._client import AwsBackend
from backuppolicy.core.exceptions import BackupPolicyError, PolicyError
from backuppolicy.core.policy import MAX_POLICY_BYTES, Policy

if TYPE_CHECKING:
    import boto3

__all__ = ["ACTIONS", "RESTORE_TEST_STEPS", "handler", "load_policy"]

RESTORE_TEST_STEPS = (
    "restore-test-start",
    "restore-test-poll",
    "restore-test-probe",
    "restore-test-teardown",
    "restore-test-record",
)
"""The steps of a restore test in the Step Functions state machine (`backuppolicy.workflows.restore_steps`)."""

ACTIONS = ("backup", "prune", "restore-test", "run", *RESTORE_TEST_STEPS)
"""The actions an event may ask for."""

_ENV = "BACKUPPOLICY_FILE"


def load_policy(url: str, *, session: boto3.Session | None = None) -> Policy:
    """Load a policy from ``s3://bucket/key`` (``.yaml``/``.yml``/``.toml``) or a local path.

    Raises:
        PolicyError: The URL is not a policy file, or the policy is invalid.
        BackendError: Reading the S3 object failed.
    """
    if not url.startswith("s3://"):
        return Policy.from_file(Path(url))
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket or not key:
        raise PolicyError.for_field("policy", "an s3://bucket/key URL of a policy file", url)
    backend = AwsBackend("lambda-handler", session=session)
    body, over = backend.get_bounded(bucket, key, MAX_POLICY_BYTES, resource=url)
    if over:
        raise PolicyError.for_field(
            "policy", f"a policy file of at most {MAX_POLICY_BYTES} bytes", url
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError.for_field("policy", "a UTF-8 policy file", url, hint=f"({exc})") from exc
    if key.lower().endswith(".toml"):
        return Policy.from_toml(text, source=url)
    if key.lower().endswith((".yaml", ".yml")):
        return Policy.from_yaml(text, source=url)
    raise PolicyError.for_field("policy", "a policy file ending in .yaml, .yml or .toml", url)


def _now(event: Mapping[str, object]) -> datetime:
    text = event.get("now")
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:  # its message quotes the whole value
        value = None
    if value is None or value.tzinfo is None:
        raise PolicyError.for_field("now", "an ISO 8601 time with a zone", text)
    return value


def _only(event: Mapping[str, object]) -> list[str] | None:
    names = event.get("targets") or None
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise PolicyError.for_field("targets", "a list of target names", names)
    return names


def _apply(event: Mapping[str, object]) -> bool:
    # Strict: a string such as "false" must not be taken as true and delete backups.
    apply = event.get("apply", False)
    if not isinstance(apply, bool):
        raise PolicyError.for_field("apply", "true or false (a JSON boolean)", apply)
    return apply


def _restore_test(
    policy: Policy, event: Mapping[str, object], now: datetime, only: list[str] | None
) -> tuple[dict[str, object], list[str]]:
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415
    from backuppolicy.workflows.verify import restore_test  # noqa: PLC0415

    application = event.get("application")
    if application is not None and not isinstance(application, str):
        raise PolicyError.for_field("application", "an application name", application)
    if application is not None:
        policy.targets_for(application)  # a clear error for an unknown application
    log_url = event.get("log")
    if log_url is not None and not isinstance(log_url, str):
        raise PolicyError.for_field("log", "a testing log URL", log_url)
    results = restore_test(
        policy,
        now=now,
        application=application,
        only=only,
        log=TestLog.open(log_url) if log_url else None,
    )
    failed = [f"{r.target}: {r.details}" for r in results if not r.ok]
    data: dict[str, object] = {
        "action": "restore-test",
        "ok": not failed,
        "results": [r.to_dict() for r in results],
    }
    return data, failed


def _log_url(policy: Policy, event: Mapping[str, object]) -> str | None:
    log_url = event.get("log") or policy.run.log
    if log_url is not None and not isinstance(log_url, str):
        raise PolicyError.for_field("log", "a testing log URL", log_url)
    return log_url


def _run(
    policy: Policy, event: Mapping[str, object], now: datetime
) -> tuple[dict[str, object], list[str]]:
    from backuppolicy.workflows.unattended import run  # noqa: PLC0415

    restore_tests = event.get("restore_tests", True)
    if not isinstance(restore_tests, bool):
        raise PolicyError.for_field("restore_tests", "true or false", restore_tests)
    digest = run(policy, now=now, log=_log_url(policy, event), restore_tests=restore_tests)
    data: dict[str, object] = {"action": "run", "ok": digest.ok, "digest": digest.to_dict()}
    return data, list(digest.failures)


def _restore_test_step(
    policy: Policy, action: str, event: Mapping[str, object], now: datetime
) -> dict[str, object]:
    """One step of the state machine: the new state (``record`` says ``ok``), never a failure."""
    from backuppolicy.workflows import restore_steps  # noqa: PLC0415
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415

    state = event.get("state")
    if not isinstance(state, Mapping):
        raise PolicyError.for_field("state", "the restore test's state (a JSON object)", state)
    if action == "restore-test-start":
        return restore_steps.start(policy, state, now=now)
    if action == "restore-test-poll":
        return restore_steps.poll(policy, state, now=now)
    if action == "restore-test-probe":
        return restore_steps.probe(policy, state, now=now)
    if action == "restore-test-teardown":
        return restore_steps.teardown(policy, state)
    log_url = _log_url(policy, event)
    log = TestLog.open(log_url) if log_url else None
    return restore_steps.record(policy, state, now=now, log=log)


def handler(event: Mapping[str, object], context: object = None) -> dict[str, object]:  # noqa: ARG001 - Lambda's signature
    """Run the event's action and return its report (a restore test step: the new state).

    Raises:
        PolicyError: The event or the policy is invalid.
        BackupPolicyError: The run had failures (the report is logged in the message).

    Example:
        >>> handler({"action": "restore"})
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: action: expected one of backup, prune, restore-test, run, restore-test-start, restore-test-poll, restore-test-probe, restore-test-teardown, restore-test-record (got 'restore').
    """
    from backuppolicy import workflows  # noqa: PLC0415

    action = event.get("action", "backup")
    if action not in ACTIONS:
        raise PolicyError.for_field("action", "one of " + ", ".join(ACTIONS), action)
    url = event.get("policy") or os.environ.get(_ENV)
    if not url:
        raise PolicyError.for_field("policy", f"a policy URL in the event or ${_ENV}", url)
    policy = load_policy(str(url))
    now, only, apply = _now(event), _only(event), _apply(event)
    if action in RESTORE_TEST_STEPS:
        return _restore_test_step(policy, str(action), event, now)
    if action == "run":
        data, failed = _run(policy, event, now)
    elif action == "backup":
        report = workflows.backup(policy, now=now, only=only)
        data = {"action": action, "ok": report.ok, "report": report.to_dict()}
        failed = [run.target for run in report.failed]
    elif action == "restore-test":
        data, failed = _restore_test(policy, event, now, only)
    else:
        targets = workflows.build_targets(policy, only=only)
        plan = workflows.plan_retention(policy, now=now, targets=targets)
        applied = workflows.apply(plan, dry_run=not apply)
        failed = [outcome.point.id for outcome in applied.failed] + list(dict(plan.errors))
        data = {
            "action": action,
            "ok": not failed,
            "plan": plan.to_dict(),
            "apply": applied.to_dict(),
        }
    if failed:
        message = f"{policy.name}: {action} had failures: {', '.join(failed)}"
        raise BackupPolicyError(message)
    return data
