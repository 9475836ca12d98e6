"""Let AWS run the rest: compile a `~backuppolicy.Policy` to S3 lifecycle rules and Scheduler schedules.

* `export_lifecycle` compiles the retention of S3 targets to bucket lifecycle rules (AWS deletes
  the old versions itself).
* `export_scheduler` compiles the schedule to EventBridge Scheduler schedules that invoke
  `backuppolicy.lambda_handler.handler` (the library runs ``backup`` and ``prune`` as a Lambda).

Both are pure: no AWS call. Both are re-exported by `backuppolicy.aws.backup_plan`, which compiles
the policy to AWS Backup instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from backuppolicy.aws._backup import safe_name
from backuppolicy.aws._cron import aws_cron, window_minutes
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import TAG_POLICY
from backuppolicy.core.policy import Policy
from backuppolicy.core.schedule import Schedule

if TYPE_CHECKING:
    from types_boto3_s3.type_defs import LifecycleRuleTypeDef

__all__ = ["export_lifecycle", "export_scheduler"]


def export_lifecycle(policy: Policy) -> dict[str, dict[str, list[LifecycleRuleTypeDef]]]:
    """Compile the retention of the policy's S3 targets to bucket lifecycle configurations.

    Each ``s3-bucket`` target becomes a ``NoncurrentVersionExpiration`` rule for its prefix
    (`backuppolicy.aws.S3Bucket.lifecycle_rule_for`), grouped by bucket, ready for
    ``PutBucketLifecycleConfiguration``.

    Raises:
        PolicyError: A retention has no lifecycle equivalent; the message names the target.

    Example:
        >>> policy = Policy.from_dict({
        ...     "name": "web", "schedule": {"every": "day"}, "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "assets", "kind": "s3-bucket",
        ...                  "settings": {"bucket": "acme-assets", "prefix": "img/"}}]})
        >>> export_lifecycle(policy)["acme-assets"]["Rules"][0]["NoncurrentVersionExpiration"]
        {'NoncurrentDays': 35}
    """
    from backuppolicy.aws.s3 import S3Bucket  # noqa: PLC0415 - avoid a cycle through aws/__init__

    buckets: dict[str, dict[str, list[LifecycleRuleTypeDef]]] = {}
    for i, spec in enumerate(policy.targets):
        if spec.kind != "s3-bucket" or not spec.enabled:
            continue
        tiers = policy.tiers_for(spec)
        rule = policy.retention_for(spec, tiers[0] if tiers else None)
        bucket = S3Bucket(
            spec.settings["bucket"],
            prefix=spec.settings.get("prefix", ""),
            name=spec.name,
            region=spec.settings.get("region") or "us-east-1",
        )
        try:
            lifecycle = bucket.lifecycle_rule_for(rule, rule_id=f"backuppolicy-{spec.name}")
        except PolicyError as exc:
            raise PolicyError.for_field(
                f"targets[{i}].retention",
                "a retention with an S3 lifecycle equivalent: max_age in days or weeks, "
                "optionally | keep_last",
                rule.to_spec(),
                hint=str(exc),
            ) from exc
        buckets.setdefault(bucket.bucket, {"Rules": []})["Rules"].append(lifecycle)
    return buckets


def export_scheduler(
    policy: Policy,
    *,
    lambda_arn: str,
    role_arn: str,
    policy_url: str,
    group_name: str | None = None,
    prune: bool = True,
    apply_prune: bool = False,
) -> dict[str, object]:
    """EventBridge Scheduler schedules that run the library itself (`backuppolicy.lambda_handler`).

    One schedule runs ``backup`` on the policy's schedule (cron, time zone, start window as the
    flexible window); another runs ``prune`` (a dry run unless *apply_prune*) one hour later.
    The Lambda reads the policy from *policy_url* (``s3://bucket/key`` or a path bundled with the
    function).

    Args:
        policy: The policy.
        lambda_arn: ARN of the function running ``backuppolicy.lambda_handler.handler``.
        role_arn: Role EventBridge Scheduler assumes to invoke it.
        policy_url: Where the function reads the policy from.
        group_name: Schedule group (default ``backuppolicy-<policy name>``).
        prune: Whether to schedule the prune run.
        apply_prune: Whether the prune run deletes (default: a dry run that only reports).

    Example:
        >>> policy = Policy.from_dict({"name": "web", "retention": {"max_age": "35d"},
        ...     "schedule": {"every": "day", "at": "04:00", "tz": "GMT"}})
        >>> out = export_scheduler(policy, lambda_arn="arn:aws:lambda:eu-west-2:1:function:bp",
        ...                        role_arn="arn:aws:iam::1:role/s", policy_url="s3://b/p.yaml")
        >>> [(s["Name"], s["ScheduleExpression"]) for s in out["Schedules"]]
        [('web-backup', 'cron(0 4 * * ? *)'), ('web-prune', 'cron(0 5 * * ? *)')]
    """
    group = group_name or safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 64)
    schedule = policy.schedule
    window = max(1, min(1440, window_minutes(schedule)))
    prune_at = Schedule(_shift_hour(schedule.cron), tz=schedule.tz, window=schedule.window)

    def entry(
        name: str, when: Schedule, path: str, event: Mapping[str, object]
    ) -> dict[str, object]:
        return {
            "Name": safe_name(f"{policy.name}-{name}", r"[^A-Za-z0-9_.-]", 64),
            "GroupName": group,
            "ScheduleExpression": aws_cron(when, path=path),
            "ScheduleExpressionTimezone": when.tz,
            "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": window},
            "Target": {"Arn": lambda_arn, "RoleArn": role_arn, "Input": json.dumps(dict(event))},
            "State": "ENABLED",
        }

    schedules = [entry("backup", schedule, "schedule", {"action": "backup", "policy": policy_url})]
    if prune:
        event = {"action": "prune", "policy": policy_url, "apply": apply_prune}
        schedules.append(entry("prune", prune_at, "schedule", event))
    return {
        "ScheduleGroup": {"Name": group, "Tags": [{"Key": TAG_POLICY, "Value": policy.name}]},
        "Schedules": schedules,
        "Lambda": {
            "Handler": "backuppolicy.lambda_handler.handler",
            "Runtime": "python3.12",
            "Timeout": 900,
            "Environment": {"Variables": {"BACKUPPOLICY_FILE": policy_url}},
        },
    }


def _shift_hour(cron: str) -> str:
    """*cron* one hour later when the hour is a single number (else unchanged)."""
    fields = cron.split()
    if fields[1].isdigit() and int(fields[1]) < 23:  # noqa: PLR2004
        fields[1] = str(int(fields[1]) + 1)
    return " ".join(fields)
