"""Deploy a policy onto AWS's own engines: one CloudFormation template (`export_cloudformation`).

The template holds, for one `~backuppolicy.Policy`:

* the **Lambda function** running `backuppolicy.lambda_handler.handler`, its code from an S3
  object (parameters ``CodeBucket``, ``CodeKey``: a zip of the ``backuppolicy`` package and its
  dependencies), reading the policy file from S3 (``PolicyBucket``, ``PolicyKey``) and writing
  the testing log under ``s3://<LogBucket>/<LogPrefix>``;
* **EventBridge Scheduler schedules**, one per cadence of the policy: ``run`` every hour (the
  main one: `backuppolicy.run` decides what is due from the testing log and the points, so an
  hourly call catches up after any missed or failed one and does nothing otherwise), ``run``
  on the backup schedule itself (so the backup starts on time, in the policy's time zone,
  rather than up to an hour late), ``run`` on each copy tier's own cadence, and the restore
  tests on ``verification.restore_test_every``, which start the state machine;
* a **Step Functions state machine** that restore-tests each AWS target (a ``Map`` over the
  execution input's ``targets``): start the restore, wait and poll (a ``Wait`` + ``Choice``
  loop bounded by *max_polls*), probe, tear down, record. Every ``Task`` retries transient
  errors (``Retry``), and every step before the teardown catches any error (``Catch``) and
  goes to the teardown, so a started restore is always torn down, and the failure recorded
  (`backuppolicy.workflows.restore_steps`);
* **least-privilege IAM roles**: the function's from `backuppolicy.aws.iam.iam_policy` (every
  workflow, for the policy's targets) plus its policy file, testing log, log group and SNS
  topics; the state machine's may only invoke the function; the scheduler's may only invoke the
  function and start the state machine;
* the **SNS topics** of the policy's ``sns`` notifications (``CreateTopics=false`` when they
  exist already);
* when a target has the ``aws-backup`` kind, the **AWS Backup** vault (with its Vault Lock),
  plan and selection of `backuppolicy.aws.backup_plan.export_aws_backup`, and the role AWS
  Backup assumes.

Secrets stay references: each ``{"env": NAME}`` secret of the policy file (the heartbeat URL,
webhook URLs) becomes a parameter naming a Secrets Manager secret, resolved by CloudFormation
into the function's environment variable *NAME* (``{{resolve:secretsmanager:...}}``); the
template never holds a secret's value.

Pure: no AWS call. `to_yaml` writes the template as YAML (the CLI's default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import yaml

from backuppolicy.aws._backup import safe_name
from backuppolicy.aws._cron import aws_cron, schedule_of
from backuppolicy.aws.backup_plan import VaultLock, export_aws_backup
from backuppolicy.aws.iam import iam_policy
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy, TargetSpec
from backuppolicy.core.targets import get_target_class

__all__ = [
    "HANDLER",
    "TRANSIENT_ERRORS",
    "export_cloudformation",
    "state_machine_definition",
    "to_yaml",
]

HANDLER: Final = "backuppolicy.lambda_handler.handler"
"""The Lambda function's handler."""

TRANSIENT_ERRORS: Final = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "ThrottledError",
)
"""Errors every ``Task`` of the state machine retries (Lambda's own, and AWS throttling)."""

_LAMBDA_INVOKE: Final = "arn:aws:states:::lambda:invoke"
_BACKUP_ROLE_ARN: Final = "${BackupRole.Arn}"  # filled by Fn::Sub
_SERVICE_ROLE_POLICIES: Final = "arn:${AWS::Partition}:iam::aws:policy/service-role/"


def _task(action: str, next_state: str, *, catch: str | None, error_path: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": _LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": "${FunctionArn}",
            "Payload": {"action": action, "state.$": "$", "log": "${LogUrl}"},
        },
        "OutputPath": "$.Payload",
        "Retry": [
            {
                "ErrorEquals": list(TRANSIENT_ERRORS),
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2.0,
            }
        ],
        "Next": next_state,
    }
    if catch is not None:
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": error_path, "Next": catch}]
    return state


def state_machine_definition(*, poll_seconds: int = 60, max_polls: int = 240) -> dict[str, Any]:
    """The Amazon States Language definition of the restore-test state machine.

    The input is ``{"targets": ["shop-db", ...]}``; each target goes through ``Start`` →
    ``Wait`` → ``Poll`` → ``Ready?`` (back to ``Wait`` until ready, at most *max_polls*
    times) → ``Probe`` → ``Teardown`` → ``Record``. Any error of ``Start``, ``Poll`` or
    ``Probe`` (after the retries of `TRANSIENT_ERRORS`) goes to ``Teardown`` with the error
    in ``$.error``; one of ``Teardown`` goes to ``Record`` with ``$.teardown_error``. The
    function's ARN and the testing log's URL are the substitutions ``${FunctionArn}`` and
    ``${LogUrl}``.

    Example:
        >>> definition = state_machine_definition(max_polls=3)
        >>> states = definition["States"]["EachTarget"]["ItemProcessor"]["States"]
        >>> [name for name, s in states.items() if "Catch" in s]
        ['Start', 'Poll', 'Probe', 'Teardown']
        >>> {c["Next"] for name in ("Start", "Poll", "Probe") for c in states[name]["Catch"]}
        {'Teardown'}
    """
    if poll_seconds < 1 or max_polls < 1:
        raise PolicyError.for_field(
            "poll_seconds/max_polls", "whole numbers >= 1", (poll_seconds, max_polls)
        )
    states: dict[str, Any] = {
        "Start": _task("restore-test-start", "Wait", catch="Teardown", error_path="$.error"),
        "Wait": {"Type": "Wait", "Seconds": poll_seconds, "Next": "Poll"},
        "Poll": _task("restore-test-poll", "Ready?", catch="Teardown", error_path="$.error"),
        "Ready?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.ready", "BooleanEquals": True, "Next": "Probe"},
                {
                    "Variable": "$.attempts",
                    "NumericGreaterThanEquals": max_polls,
                    "Next": "TimedOut",
                },
            ],
            "Default": "Wait",
        },
        "TimedOut": {
            "Type": "Pass",
            "Result": {
                "Error": "RestoreTimeout",
                "Cause": f"the restore was not ready after {max_polls} polls, "
                f"{poll_seconds} s apart",
            },
            "ResultPath": "$.error",
            "Next": "Teardown",
        },
        "Probe": _task("restore-test-probe", "Teardown", catch="Teardown", error_path="$.error"),
        "Teardown": _task(
            "restore-test-teardown", "Record", catch="Record", error_path="$.teardown_error"
        ),
        "Record": _task("restore-test-record", "Passed?", catch=None, error_path="$.error"),
        "Passed?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Passed"}],
            "Default": "Failed",
        },
        "Passed": {"Type": "Succeed"},
        # A Fail state would stop the other targets' iterations (before their teardown): the
        # failure is in the testing log and the notification the record step sent.
        "Failed": {"Type": "Pass", "Comment": "recorded and notified by Record", "End": True},
    }
    return {
        "Comment": "backuppolicy restore tests: start, wait and poll, probe, tear down, record",
        "StartAt": "EachTarget",
        "States": {
            "EachTarget": {
                "Type": "Map",
                "ItemsPath": "$.targets",
                "ItemSelector": {"target.$": "$$.Map.Item.Value"},
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Start",
                    "States": states,
                },
                "ResultPath": "$.results",
                "End": True,
            }
        },
    }


# --------------------------------------------------------------------------------------------
# Pieces


def _sub(value: Any) -> Any:
    """*value* with every string holding ``${...}`` wrapped in ``Fn::Sub``."""
    if isinstance(value, str):
        return {"Fn::Sub": value} if "${" in value else value
    if isinstance(value, list):
        return [_sub(item) for item in value]
    if isinstance(value, dict):
        return {key: _sub(item) for key, item in value.items()}
    return value


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _assume(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }
        ],
    }


def _env_secrets(value: object) -> Iterator[str]:
    """The names of the ``{"env": NAME}`` secrets in a policy's plain data."""
    if isinstance(value, Mapping):
        if set(value) == {"env"} and isinstance(value["env"], str):
            yield value["env"]
            return
        for item in value.values():
            yield from _env_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _env_secrets(item)


def _topics(policy: Policy) -> list[str]:
    return sorted(
        {
            str(n.settings["topic_arn"])
            for n in policy.notifications
            if n.kind == "sns" and n.settings.get("topic_arn")
        }
    )


def _restore_tested(policy: Policy) -> list[str]:
    """Targets the state machine restore-tests: those needing AWS permissions to restore."""
    names = []
    for spec in policy.targets:
        if not spec.enabled or spec.selector is not None:
            continue
        kind = get_target_class(spec.kind)
        actions = getattr(kind, "iam_actions", None)
        needs = actions(spec) if callable(actions) else {}
        if needs.get("restore-test"):
            names.append(spec.name)
    return names


def _uses_aws_backup(targets: Sequence[TargetSpec]) -> bool:
    return any(spec.kind == "aws-backup" and spec.enabled for spec in targets)


def _log_statements() -> list[dict[str, Any]]:
    prefix = "${LogBucket}/${LogPrefix}"
    return [
        {
            "Sid": "TestingLogAndLease",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:${{AWS::Partition}}:s3:::{prefix}*"],
        },
        {
            "Sid": "TestingLogList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": ["arn:${AWS::Partition}:s3:::${LogBucket}"],
            "Condition": {"StringLike": {"s3:prefix": ["${LogPrefix}*"]}},
        },
        {
            "Sid": "PolicyFile",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": ["arn:${AWS::Partition}:s3:::${PolicyBucket}/${PolicyKey}"],
        },
        {
            "Sid": "FunctionLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": ["${FunctionLogGroup.Arn}"],
        },
    ]


_MANAGED_POLICY_CHARS: Final = 6000  # IAM's limit is 6,144 characters without whitespace


def _function_policies(policy: Policy, topics: Sequence[str]) -> list[dict[str, Any]]:
    """The function's permissions as managed policy documents, each under IAM's size limit.

    Measured before the placeholders are resolved (``${AWS::AccountId}`` is longer than any
    account id), so a document that fits here fits once deployed.
    """
    document = iam_policy(policy, account_id="${AWS::AccountId}", partition="${AWS::Partition}")
    statements = list(document["Statement"]) + _log_statements()
    if topics:
        statements.append(
            {
                "Sid": "Notify",
                "Effect": "Allow",
                "Action": ["sns:Publish"],
                "Resource": list(topics),
            }
        )
    chunks: list[list[dict[str, Any]]] = [[]]
    for statement in statements:
        candidate = {"Version": "2012-10-17", "Statement": [*chunks[-1], statement]}
        if chunks[-1] and len(json.dumps(candidate, separators=(",", ":"))) > _MANAGED_POLICY_CHARS:
            chunks.append([])
        chunks[-1].append(statement)
    return [_sub({"Version": "2012-10-17", "Statement": chunk}) for chunk in chunks]


def _schedule(
    name: str, description: str, when: str, tz: str, target: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Name": name,
            "Description": description,
            "GroupName": {"Ref": "ScheduleGroup"},
            "ScheduleExpression": when,
            "ScheduleExpressionTimezone": tz,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": dict(target),
        },
    }


def _run_target() -> dict[str, Any]:
    return {
        "Arn": {"Fn::GetAtt": ["Function", "Arn"]},
        "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
        "Input": {
            # The state machine runs the restore tests: an RDS restore outlasts the Lambda.
            "Fn::Sub": json.dumps(
                {
                    "action": "run",
                    "log": "s3://${LogBucket}/${LogPrefix}",
                    "restore_tests": False,
                }
            )
        },
        "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
    }


def _schedules(policy: Policy, base: str, restore_targets: Sequence[str]) -> dict[str, Any]:
    schedule = policy.schedule
    minute = int(schedule.cron.split()[0]) if schedule.cron.split()[0].isdigit() else 0
    half_past = (minute + 30) % 60  # half an hour off the backup: the two never contend
    resources: dict[str, Any] = {
        "RunHourly": _schedule(
            safe_name(f"{base}-run-hourly", r"[^A-Za-z0-9_.-]", 64),
            "backuppolicy run: whatever is due (the main schedule; catches up after a miss)",
            f"cron({half_past} * * * ? *)",
            schedule.tz,
            _run_target(),
        ),
        "RunOnBackupSchedule": _schedule(
            safe_name(f"{base}-run-backup", r"[^A-Za-z0-9_.-]", 64),
            "backuppolicy run at the policy's backup time",
            aws_cron(schedule, path="schedule"),
            schedule.tz,
            _run_target(),
        ),
    }
    seen = {aws_cron(schedule, path="schedule")}
    for index, tier in enumerate(policy.tiers[1:], start=1):
        when = schedule_of(tier.every, schedule)
        expression = aws_cron(when, path=f"tiers[{index}].every")
        if expression in seen:
            continue
        seen.add(expression)
        resources[f"RunTier{_logical(tier.name)}"] = _schedule(
            safe_name(f"{base}-run-{tier.name}", r"[^A-Za-z0-9_.-]", 64),
            f"backuppolicy run on the {tier.name} tier's cadence",
            expression,
            when.tz,
            _run_target(),
        )
    if restore_targets:
        verification = policy.verification
        when = schedule_of(verification.restore_test_every, schedule)
        resources["RestoreTests"] = _schedule(
            safe_name(f"{base}-restore-tests", r"[^A-Za-z0-9_.-]", 64),
            "backuppolicy restore tests (Step Functions) on verification.restore_test_every",
            aws_cron(when, path="verification.restore_test_every"),
            when.tz,
            {
                "Arn": {"Ref": "RestoreTestStateMachine"},
                "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                "Input": json.dumps({"targets": list(restore_targets)}),
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
            },
        )
    return resources


def _aws_backup_resources(
    policy: Policy, base: str, vault_lock: VaultLock | None
) -> tuple[dict[str, Any], list[str]]:
    document = export_aws_backup(
        policy,
        account_id="${AWS::AccountId}",
        partition="${AWS::Partition}",
        iam_role_arn=_BACKUP_ROLE_ARN,
        vault_lock=vault_lock,
        restore_testing=False,  # the state machine restore-tests
    )
    notes = list(document["Warnings"])
    vault_doc = document["BackupVault"]
    vault: dict[str, Any] = {
        "BackupVaultName": vault_doc["BackupVaultName"],
        "BackupVaultTags": dict(vault_doc["BackupVaultTags"]),
    }
    if "EncryptionKeyArn" in vault_doc:
        vault["EncryptionKeyArn"] = vault_doc["EncryptionKeyArn"]
    if document["VaultLock"]:
        lock = dict(document["VaultLock"])
        lock.pop("BackupVaultName")
        vault["LockConfiguration"] = lock
    rules = []
    for rule in document["BackupPlan"]["Rules"]:
        out = {k: v for k, v in rule.items() if k != "TargetBackupVaultName"}
        out["TargetBackupVault"] = "${BackupVault.BackupVaultName}"
        rules.append(out)
    notes += [
        f"copy vault {v['BackupVaultName']!r} in {v['Region']} ("
        f"{'this account' if '${' in v['Account'] else 'account ' + v['Account']}) is not in "
        f"this stack: create it there (`backuppolicy export aws-backup --apply --region "
        f"{v['Region']}`)"
        for v in document["CopyVaults"]
    ]
    selection = dict(document["BackupSelection"])
    resources = {
        "BackupRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": safe_name(f"{base}-aws-backup", r"[^A-Za-z0-9+=,.@_-]", 64),
                "AssumeRolePolicyDocument": _assume("backup.amazonaws.com"),
                "ManagedPolicyArns": [
                    f"{_SERVICE_ROLE_POLICIES}AWSBackupServiceRolePolicyForBackup",
                    f"{_SERVICE_ROLE_POLICIES}AWSBackupServiceRolePolicyForRestores",
                ],
            },
        },
        "BackupVault": {
            "Type": "AWS::Backup::BackupVault",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": vault,
        },
        "BackupPlan": {
            "Type": "AWS::Backup::BackupPlan",
            "Properties": {
                "BackupPlan": {
                    "BackupPlanName": document["BackupPlan"]["BackupPlanName"],
                    "BackupPlanRule": rules,
                },
            },
        },
        "BackupSelection": {
            "Type": "AWS::Backup::BackupSelection",
            "Properties": {"BackupPlanId": {"Ref": "BackupPlan"}, "BackupSelection": selection},
        },
    }
    return _sub(resources), notes


# --------------------------------------------------------------------------------------------
# The template


def _parameters(policy: Policy, secrets: Sequence[str]) -> dict[str, Any]:
    log = policy.run.log or ""
    log_bucket, _, log_prefix = (
        log[len("s3://") :].partition("/") if log.startswith("s3://") else ("", "", "")
    )
    parameters: dict[str, Any] = {
        "CodeBucket": {"Type": "String", "Description": "S3 bucket of the function's zip"},
        "CodeKey": {
            "Type": "String",
            "Description": "S3 key of the zip: the backuppolicy package and its dependencies",
        },
        "PolicyBucket": {"Type": "String", "Description": "S3 bucket of the policy file"},
        "PolicyKey": {"Type": "String", "Description": "S3 key of the policy file (.yaml, .toml)"},
        "LogBucket": {"Type": "String", "Description": "S3 bucket of the testing log and lease"},
        "LogPrefix": {
            "Type": "String",
            "Description": "Prefix of the testing log in LogBucket",
            "Default": (log_prefix.rstrip("/") + "/") if log_prefix else "testing-log/",
        },
        "CreateTopics": {
            "Type": "String",
            "AllowedValues": ["true", "false"],
            "Default": "true",
            "Description": "Create the SNS topics of the policy's notifications (false: they exist)",
        },
    }
    if log_bucket:
        parameters["LogBucket"]["Default"] = log_bucket
    for name in secrets:
        parameters[f"Secret{_logical(name)}"] = {
            "Type": "String",
            "Description": f"Secrets Manager secret (name or ARN) holding ${name}",
        }
    return parameters


def export_cloudformation(
    policy: Policy,
    *,
    poll_seconds: int = 60,
    max_polls: int = 240,
    memory_mb: int = 1024,
    runtime: str = "python3.12",
    vault_lock: VaultLock | None = None,
) -> dict[str, Any]:
    """One CloudFormation template that runs *policy* on AWS's own engines (module docstring).

    Args:
        policy: The policy.
        poll_seconds: Seconds between two polls of a restore in the state machine.
        max_polls: Polls before a restore that is not ready counts as failed (and is torn down).
        memory_mb: Memory of the Lambda function.
        runtime: Python runtime of the Lambda function.
        vault_lock: The AWS Backup vault's lock, when the policy uses the ``aws-backup`` kind.

    Raises:
        PolicyError: The policy's schedules cannot be written in AWS's cron, or (with the
            ``aws-backup`` kind) AWS Backup cannot express it.

    Example:
        >>> policy = Policy.from_dict({"name": "shop", "timezone": "GMT",
        ...     "schedule": {"every": "day", "at": "04:00", "tz": "GMT"},
        ...     "retention": {"max_age": "35d"}, "targets": [{"name": "db",
        ...     "kind": "rds-instance", "settings": {"db_instance_id": "shop",
        ...     "region": "eu-west-2"}}]})
        >>> template = export_cloudformation(policy)
        >>> schedule = template["Resources"]["RunOnBackupSchedule"]["Properties"]
        >>> schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]
        ('cron(0 4 * * ? *)', 'GMT')
        >>> template["Resources"]["Function"]["Properties"]["Handler"]
        'backuppolicy.lambda_handler.handler'
    """
    base = safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_-]", 40)
    topics = _topics(policy)
    secrets = sorted(set(_env_secrets(policy.to_dict())))
    restore_targets = _restore_tested(policy)
    environment: dict[str, Any] = {
        "BACKUPPOLICY_FILE": {"Fn::Sub": "s3://${PolicyBucket}/${PolicyKey}"},
    }
    for name in secrets:
        environment[name] = {
            "Fn::Sub": f"{{{{resolve:secretsmanager:${{Secret{_logical(name)}}}}}}}"
        }
    resources: dict[str, Any] = {
        "FunctionLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"LogGroupName": f"/aws/lambda/{base}", "RetentionInDays": 400},
        },
        "FunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume("lambda.amazonaws.com"),
            },
        },
        "Function": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["FunctionLogGroup"],
            "Properties": {
                "FunctionName": base,
                "Description": f"backuppolicy: runs the policy {policy.name!r} unattended",
                "Runtime": runtime,
                "Handler": HANDLER,
                "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
                "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                "Timeout": 900,
                "MemorySize": memory_mb,
                "Environment": {"Variables": environment},
            },
        },
        "StateMachineRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume("states.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "invoke-function",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "lambda:InvokeFunction",
                                    "Resource": [
                                        {"Fn::GetAtt": ["Function", "Arn"]},
                                        {"Fn::Sub": "${Function.Arn}:*"},
                                    ],
                                }
                            ],
                        },
                    }
                ],
            },
        },
        "RestoreTestStateMachine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": safe_name(f"{base}-restore-tests", r"[^A-Za-z0-9_-]", 80),
                "RoleArn": {"Fn::GetAtt": ["StateMachineRole", "Arn"]},
                "Definition": state_machine_definition(
                    poll_seconds=poll_seconds, max_polls=max_polls
                ),
                "DefinitionSubstitutions": {
                    "FunctionArn": {"Fn::GetAtt": ["Function", "Arn"]},
                    "LogUrl": {"Fn::Sub": "s3://${LogBucket}/${LogPrefix}"},
                },
            },
        },
        "SchedulerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume("scheduler.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "run-policy",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "lambda:InvokeFunction",
                                    "Resource": [
                                        {"Fn::GetAtt": ["Function", "Arn"]},
                                        {"Fn::Sub": "${Function.Arn}:*"},
                                    ],
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": "states:StartExecution",
                                    "Resource": {"Ref": "RestoreTestStateMachine"},
                                },
                            ],
                        },
                    }
                ],
            },
        },
        "ScheduleGroup": {
            "Type": "AWS::Scheduler::ScheduleGroup",
            "Properties": {
                "Name": base,
                "Tags": [{"Key": "backuppolicy:policy", "Value": policy.name}],
            },
        },
    }
    for index, document in enumerate(_function_policies(policy, topics), start=1):
        resources[f"FunctionPolicy{index}"] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": f"backuppolicy {policy.name}: what the function needs ({index})",
                "Roles": [{"Ref": "FunctionRole"}],
                "PolicyDocument": document,
            },
        }
    resources["Function"]["DependsOn"] = [
        "FunctionLogGroup",
        *(name for name in resources if name.startswith("FunctionPolicy")),
    ]
    resources.update(_schedules(policy, base, restore_targets))
    for arn in topics:
        resources[f"Topic{_logical(arn.rsplit(':', 1)[-1])}"] = {
            "Type": "AWS::SNS::Topic",
            "Condition": "CreateTopics",
            "Properties": {"TopicName": arn.rsplit(":", 1)[-1]},
        }
    notes: list[str] = []
    if _uses_aws_backup(policy.targets):
        backup, notes = _aws_backup_resources(policy, base, vault_lock)
        resources.update(backup)
    outputs: dict[str, Any] = {
        "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}},
        "StateMachineArn": {"Value": {"Ref": "RestoreTestStateMachine"}},
        "ScheduleGroupName": {"Value": {"Ref": "ScheduleGroup"}},
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"backuppolicy: the policy {policy.name!r} on AWS's own engines "
        "(Lambda, EventBridge Scheduler, Step Functions)",
        "Metadata": {
            "backuppolicy": {
                "policy": policy.name,
                "restore_tested": restore_targets,
                "warnings": notes,
            }
        },
        "Parameters": _parameters(policy, secrets),
        "Conditions": {"CreateTopics": {"Fn::Equals": [{"Ref": "CreateTopics"}, "true"]}},
        "Resources": resources,
        "Outputs": outputs,
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases (CloudFormation's YAML parser rejects anchors across resources)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - PyYAML's signature
        return True


def to_yaml(template: Mapping[str, Any]) -> str:
    """*template* as CloudFormation YAML (intrinsic functions in their long form).

    Example:
        >>> print(to_yaml({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}), end="")
        Resources:
          T:
            Type: AWS::SNS::Topic
    """
    return yaml.dump(dict(template), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
