"""Let AWS run the schedule: compile a `~backuppolicy.Policy` to AWS Backup, S3 lifecycle and Scheduler.

* `export_aws_backup` (pure) compiles the policy to the documents AWS Backup takes: a backup vault
  (KMS key), a backup plan with one rule per schedule (``ScheduleExpression`` +
  ``ScheduleExpressionTimezone``, start and completion windows, ``Lifecycle.DeleteAfterDays``
  from the retention, ``CopyActions`` to the off-site tier's vault in another region, continuous
  backup when asked), a backup selection (the policy's resources, and any resource tagged
  ``backuppolicy:policy=<name>``), an optional Vault Lock, and a restore testing plan with one
  selection per resource type, on the policy's restore-test cadence.
* `apply_aws_backup` creates or updates those resources idempotently: a second run with the same
  policy changes nothing.
* `list_aws_backup_points` reads AWS Backup's recovery points back as `RecoveryPoint` objects
  (``kind="aws-backup"``, never managed: AWS Backup deletes them), so verification and audit cover
  them; `AwsBackupTarget` is the read-only ``aws-backup`` target kind built on it.
* `export_lifecycle` compiles the retention of S3 targets to bucket lifecycle rules, and
  `export_scheduler` to EventBridge Scheduler schedules that invoke
  `backuppolicy.lambda_handler.handler`.

Everything AWS would reject but moto accepts is checked here and raised as a `PolicyError` naming
the field: cron forms (6 fields, ``?`` in day-of-month or day-of-week, at most hourly), start
windows under 60 minutes, completion windows not longer than the start window, more than 5 copy
actions in a rule, ``DeleteAfterDays`` less than 90 days after ``MoveToColdStorageAfterDays``,
continuous backups kept longer than 35 days, and retention outside the vault lock's bounds.
Retention rules AWS cannot express (``keep_weekly`` and the other count rules, ``keep_within``,
``keep_tags``) are refused with a hint: make the period a tier with its own ``max_age``.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import attrs
import boto3
from botocore.config import Config

from backuppolicy.aws._client import AwsBackend, RetryPolicy
from backuppolicy.aws._iam_statements import ACCOUNT, PARTITION, REGION, Grant, by_workflow
from backuppolicy.core.exceptions import PolicyError, ResourceNotFoundError
from backuppolicy.core.model import TAG_POLICY, TAG_TIER, RecoveryPoint, Status
from backuppolicy.core.policy import Policy, TargetSpec, TierSpec
from backuppolicy.core.retention import AnyOf, MaxAge, RetentionRule
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.targets import Destination, IsolationProfile, RestoredResource

__all__ = [
    "ACCOUNT_PLACEHOLDER",
    "APPLY_PARTS",
    "MAX_COPY_ACTIONS",
    "AwsBackupTarget",
    "ComplianceModeWarning",
    "VaultLock",
    "apply_aws_backup",
    "aws_cron",
    "export_aws_backup",
    "export_lifecycle",
    "export_scheduler",
    "list_aws_backup_points",
    "resource_arn",
    "validate_aws_cron",
]

ACCOUNT_PLACEHOLDER: Final = "${AWS::AccountId}"
"""Stands for the account id in exported ARNs when none is given (CloudFormation's pseudo parameter)."""

APPLY_PARTS: Final = ("vault", "vault-lock", "plan", "selection", "restore-testing")
"""The parts `apply_aws_backup` creates or updates, in order."""

MAX_COPY_ACTIONS: Final = 5
"""AWS Backup's limit of copy actions per rule."""

_MIN_START_WINDOW: Final = 60
_DEFAULT_COMPLETION_WINDOW: Final = 10080  # AWS Backup's default: 7 days
_COLD_STORAGE_MINIMUM: Final = 90
_CONTINUOUS_MAX_DAYS: Final = 35
_MIN_CHANGEABLE_DAYS: Final = 3
_MAX_DAYS: Final = 36500
_MAX_SELECTION_WINDOW: Final = 365
_DOW_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_DOW_TOKEN: Final = re.compile(r"(\d+|[A-Za-z]{3})((?:#\d)|L)?")
_AWS_CRON: Final = re.compile(r"cron\((.*)\)")
_BACKUP_KINDS: Final = {
    "rds-instance": "RDS",
    "aurora-cluster": "Aurora",
    "ec2-instance": "EC2",
    "ebs-volume": "EBS",
    "s3-bucket": "S3",
}
_ARN_TEMPLATES: Final = {
    "rds-instance": "arn:{p}:rds:{r}:{a}:db:{db_instance_id}",
    "aurora-cluster": "arn:{p}:rds:{r}:{a}:cluster:{db_cluster_id}",
    "ec2-instance": "arn:{p}:ec2:{r}:{a}:instance/{instance_id}",
    "ebs-volume": "arn:{p}:ec2:{r}:{a}:volume/{volume_id}",
    "s3-bucket": "arn:{p}:s3:::{bucket}",
}
_PERIOD_DAYS: Final = {
    "keep_hourly": ("hour", 0),
    "keep_daily": ("day", 1),
    "keep_weekly": ("week", 7),
    "keep_monthly": ("month", 31),
    "keep_yearly": ("year", 366),
}
_POINT_STATUS: Final = {
    "COMPLETED": Status.COMPLETED,
    "AVAILABLE": Status.COMPLETED,
    "PARTIAL": Status.PARTIAL,
    "CREATING": Status.PENDING,
    "DELETING": Status.PENDING,
    "EXPIRED": Status.FAILED,
    "STOPPED": Status.FAILED,
}


class ComplianceModeWarning(UserWarning):
    """A Vault Lock will turn into compliance mode: after the grace days nobody can undo it."""


# --------------------------------------------------------------------------------------------
# Values


def _days(
    low: int, high: int = _MAX_DAYS
) -> Any:  # an attrs validator for optional whole-day counts
    def check(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PolicyError.for_field(
                attribute.name, f"None or a whole number of days from {low} to {high}", value
            )

    return check


@attrs.frozen
class VaultLock:
    """An AWS Backup Vault Lock: bounds on how long recovery points in the vault are kept.

    Without *changeable_for_days* the lock is in governance mode (users with the right IAM
    permission can still remove it). With it, the lock enters **compliance mode** once that many
    days have passed: from then on nobody, not even the account root, can shorten retention,
    delete recovery points early or remove the lock. Exporting such a lock issues a
    `ComplianceModeWarning`.

    Example:
        >>> VaultLock(min_retention_days=7, max_retention_days=400).to_params()
        {'MinRetentionDays': 7, 'MaxRetentionDays': 400}

    Attributes:
        min_retention_days: Shortest retention a rule may give recovery points in the vault.
        max_retention_days: Longest retention a rule may give recovery points in the vault.
        changeable_for_days: Grace days before compliance mode (at least 3); ``None`` keeps the
            lock in governance mode.
    """

    min_retention_days: int | None = attrs.field(default=None, validator=_days(1))
    max_retention_days: int | None = attrs.field(default=None, validator=_days(1))
    changeable_for_days: int | None = attrs.field(
        default=None, validator=_days(_MIN_CHANGEABLE_DAYS), kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        low, high = self.min_retention_days, self.max_retention_days
        if low is not None and high is not None and high < low:
            raise PolicyError.for_field(
                "max_retention_days", f"a number of days >= min_retention_days ({low})", high
            )

    @property
    def compliance(self) -> bool:
        """Whether the lock becomes a compliance-mode lock (immutable after the grace days)."""
        return self.changeable_for_days is not None

    def to_params(self) -> dict[str, int]:
        """The parameters of ``PutBackupVaultLockConfiguration`` (without the vault name)."""
        params: dict[str, int] = {}
        if self.min_retention_days is not None:
            params["MinRetentionDays"] = self.min_retention_days
        if self.max_retention_days is not None:
            params["MaxRetentionDays"] = self.max_retention_days
        if self.changeable_for_days is not None:
            params["ChangeableForDays"] = self.changeable_for_days
        return params

    def check(self, days: int, *, path: str) -> None:
        """Raise `PolicyError` (naming *path*) unless *days* of retention is within the bounds."""
        low = self.min_retention_days or 1
        high = self.max_retention_days or _MAX_DAYS
        if not low <= days <= high:
            raise PolicyError.for_field(
                path,
                f"a retention within the vault lock's bounds, {low} to {high} days",
                f"{days}d",
                hint="AWS Backup rejects rules whose DeleteAfterDays falls outside the lock.",
            )


# --------------------------------------------------------------------------------------------
# Cron


def _dow_name(token: str, *, path: str, cron: str) -> str:
    match = _DOW_TOKEN.fullmatch(token)
    if match is None:
        raise PolicyError.for_field(path, "a day of the week 0-7 or SUN-SAT", cron)
    day, suffix = match.group(1), match.group(2) or ""
    if day.isdigit():
        if int(day) > len(_DOW_NAMES) - 1:
            raise PolicyError.for_field(path, "a day of the week 0-7 or SUN-SAT", cron)
        day = _DOW_NAMES[int(day)]
    return day.upper() + suffix


def _aws_dow(field: str, *, path: str, cron: str) -> str:
    items = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        names = (
            base
            if base == "*"
            else "-".join(_dow_name(t, path=path, cron=cron) for t in base.split("-"))
        )
        items.append(f"{names}{slash}{step}")
    return ",".join(items)


def aws_cron(schedule: Schedule, *, path: str = "schedule") -> str:
    """Translate a `~backuppolicy.core.schedule.Schedule`'s 5-field cron to AWS's 6-field ``cron(...)``.

    AWS needs ``?`` in day-of-month or day-of-week, a year field, and (for AWS Backup) at most one
    run per hour. Days of the week become names (cron's ``0`` and AWS's ``1`` are both Sunday).

    Raises:
        PolicyError: The schedule restricts both day-of-month and day-of-week (AWS cannot say
            "either"), or runs more often than hourly; the message names ``<path>.cron``.

    Example:
        >>> aws_cron(Schedule("0 4 * * 1-5"))
        'cron(0 4 ? * MON-FRI *)'
        >>> aws_cron(Schedule.daily(at="04:00"))
        'cron(0 4 * * ? *)'
    """
    field = f"{path}.cron"
    minute, hour, dom, month, dow = schedule.cron.split()
    if not minute.isdigit():
        raise PolicyError.for_field(
            field,
            "a cron expression with one fixed minute (AWS Backup runs at most once an hour)",
            schedule.cron,
        )
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
        dow = _aws_dow(dow, path=field, cron=schedule.cron)
    else:
        raise PolicyError.for_field(
            field,
            "a cron expression that restricts day-of-month or day-of-week, not both "
            "(AWS needs '?' in one of them)",
            schedule.cron,
        )
    return validate_aws_cron(f"cron({minute} {hour} {dom} {month} {dow} *)", path=field)


def validate_aws_cron(expression: str, *, path: str = "ScheduleExpression") -> str:
    """Check an AWS ``cron(...)`` expression the way AWS Backup does, and return it.

    Six fields (minute hour day-of-month month day-of-week year), exactly one of day-of-month and
    day-of-week ``?``, and one fixed minute (AWS Backup's minimum frequency is one hour).

    Raises:
        PolicyError: Any of those does not hold; the message names *path*.

    Example:
        >>> validate_aws_cron("cron(0 5 ? * SUN *)")
        'cron(0 5 ? * SUN *)'
    """
    expected = (
        "an AWS cron expression 'cron(minute hour day-of-month month day-of-week year)' "
        "with '?' in exactly one of day-of-month and day-of-week"
    )
    match = _AWS_CRON.fullmatch(expression.strip()) if isinstance(expression, str) else None
    if match is None:
        raise PolicyError.for_field(path, expected, expression)
    fields = match.group(1).split()
    if len(fields) != 6 or (fields[2] == "?") == (fields[4] == "?"):  # noqa: PLR2004
        raise PolicyError.for_field(path, expected, expression)
    if not fields[0].isdigit() or int(fields[0]) > 59:  # noqa: PLR2004
        raise PolicyError.for_field(
            path, "a cron expression with one fixed minute 0-59 (at most hourly)", expression
        )
    return expression.strip()


def _at_of(schedule: Schedule) -> str:
    minute, hour = schedule.cron.split()[:2]
    if minute.isdigit() and hour.isdigit():
        return f"{int(hour):02d}:{int(minute):02d}"
    return "04:00"


def _schedule_of(every: Cadence | Schedule, base: Schedule) -> Schedule:
    """A tier's or a cadence's own `Schedule`, at the time of day of *base*."""
    if isinstance(every, Schedule):
        return every
    at = f":{base.cron.split()[0].zfill(2)}" if every is Cadence.HOUR else _at_of(base)
    window = base.window if every is not Cadence.HOUR else "1h"
    return Schedule.every(every, at=at, tz=base.tz, window=window)


def _minutes(schedule: Schedule) -> int:
    return int(schedule.window.approx_timedelta().total_seconds() // 60)


# --------------------------------------------------------------------------------------------
# Retention


def _hint_for(key: str, value: Any) -> str:
    if key in _PERIOD_DAYS:
        period, days = _PERIOD_DAYS[key]
        if days and isinstance(value, int) and value > 0:
            return (
                f"AWS Backup keeps each recovery point a fixed number of days: make the {period}ly "
                f"copies a tier (`every: {period}`, `retention: {{max_age: {value * days}d}}`), "
                f"which becomes a rule of its own."
            )
        return f"AWS Backup keeps each recovery point a fixed number of days: make the {period}ly copies a tier with its own max_age."
    return "Use max_age (AWS Backup deletes each recovery point DeleteAfterDays after it was made), or keep letting backuppolicy prune."


def _delete_after_days(rule: RetentionRule, *, path: str) -> int:
    """``DeleteAfterDays`` of a retention that is ``max_age`` in whole days or weeks, else raise."""
    parts = rule.rules if isinstance(rule, AnyOf) else (rule,)
    days: int | None = None
    for part in parts:
        if isinstance(part, MaxAge) and days is None:
            d = part.duration
            if d.years or d.months or d.hours or d.minutes or not (d.weeks or d.days):
                raise PolicyError.for_field(
                    f"{path}.max_age",
                    "a maximum age in whole days or weeks (AWS Backup's DeleteAfterDays)",
                    str(d),
                    hint="Write years and months as days, e.g. '365d'.",
                )
            days = d.weeks * 7 + d.days
            continue
        spec = part.to_spec() if isinstance(part, RetentionRule) else {}
        key = next(iter(spec), "rule")
        raise PolicyError.for_field(
            f"{path}.{key}",
            "only max_age (AWS Backup cannot express this rule)",
            spec.get(key, part),
            hint=_hint_for(key, spec.get(key)),
        )
    if days is None:
        raise PolicyError.for_field(
            path, "a retention with max_age (AWS Backup's DeleteAfterDays)", rule.to_spec()
        )
    return days


def _lifecycle(days: int, cold: int | None, *, path: str) -> dict[str, int]:
    lifecycle = {"DeleteAfterDays": days}
    if cold is not None:
        if days < cold + _COLD_STORAGE_MINIMUM:
            raise PolicyError.for_field(
                path,
                f"a retention at least {_COLD_STORAGE_MINIMUM} days longer than "
                f"cold_storage_after_days ({cold}): at least {cold + _COLD_STORAGE_MINIMUM}d",
                f"{days}d",
                hint="Cold storage has a 90-day minimum; AWS Backup rejects shorter lifecycles.",
            )
        lifecycle["MoveToColdStorageAfterDays"] = cold
    return lifecycle


# --------------------------------------------------------------------------------------------
# ARNs


def _region_of(spec: TargetSpec, default: str | None) -> str | None:
    region = spec.settings.get("region")
    return str(region) if region else default


def resource_arn(
    spec: TargetSpec, *, region: str, account_id: str = ACCOUNT_PLACEHOLDER, partition: str = "aws"
) -> str | None:
    """The ARN AWS Backup knows the target's resource by, or ``None`` for kinds it cannot protect.

    Example:
        >>> spec = TargetSpec("shop-db", "rds-instance", settings={"db_instance_id": "shop"})
        >>> resource_arn(spec, region="eu-west-2", account_id="123456789012")
        'arn:aws:rds:eu-west-2:123456789012:db:shop'
    """
    if spec.kind == "aws-backup":
        return str(spec.settings["resource_arn"])
    template = _ARN_TEMPLATES.get(spec.kind)
    if template is None:
        return None
    return template.format(p=partition, r=region, a=account_id, **spec.settings)


def _vault_arn(region: str, account: str, name: str, partition: str) -> str:
    return f"arn:{partition}:backup:{region}:{account}:backup-vault:{name}"


def _kms_arn(key: str | None, region: str, account: str, partition: str) -> str | None:
    if not key or key.startswith("arn:"):
        return key or None
    if key.startswith("alias/"):
        return f"arn:{partition}:kms:{region}:{account}:{key}"
    return f"arn:{partition}:kms:{region}:{account}:key/{key}"


def _safe_name(text: str, pattern: str, limit: int) -> str:
    return re.sub(pattern, "_", text)[:limit]


# --------------------------------------------------------------------------------------------
# Export


@attrs.frozen
class _Ctx:
    policy: Policy
    region: str
    account: str
    partition: str
    vault_name: str
    role: str
    cold: int | None
    continuous: bool
    completion: int | None
    lock: VaultLock | None


def _aws_targets(
    policy: Policy, region: str | None
) -> tuple[str, list[tuple[int, TargetSpec]], list[str]]:
    """The enabled targets AWS Backup can protect in the plan's region, and warnings."""
    warnings_: list[str] = []
    found: list[tuple[int, TargetSpec]] = []
    regions = {
        str(_region_of(spec, None))
        for spec in policy.targets
        if spec.enabled and spec.kind in _BACKUP_KINDS and _region_of(spec, None)
    }
    if region is None:
        if len(regions) > 1:
            raise PolicyError.for_field(
                "region",
                "the one region of the policy's AWS targets (an AWS Backup plan is regional)",
                sorted(regions),
                hint="Pass region= and export once per region.",
            )
        region = next(iter(regions), None)
    if region is None:
        raise PolicyError.for_field(
            "region",
            "a region for the backup plan (no target names one)",
            None,
            hint="Pass region=.",
        )
    for i, spec in enumerate(policy.targets):
        if not spec.enabled:
            continue
        if spec.kind not in _BACKUP_KINDS and spec.kind != "aws-backup":
            warnings_.append(
                f"targets[{i}] {spec.name!r} ({spec.kind}) is not an AWS resource: AWS Backup does "
                f"not back it up; keep running `backuppolicy backup` for it."
            )
            continue
        if _region_of(spec, region) != region:
            warnings_.append(
                f"targets[{i}] {spec.name!r} is in region {_region_of(spec, region)}, not {region}: "
                f"export again with region={_region_of(spec, region)!r} for it."
            )
            continue
        if spec.kind == "s3-bucket" and spec.settings.get("prefix"):
            warnings_.append(
                f"targets[{i}] {spec.name!r}: AWS Backup backs up the whole bucket "
                f"{spec.settings['bucket']!r}, not only the prefix {spec.settings['prefix']!r}."
            )
        found.append((i, spec))
    return region, found, warnings_


def _refuse_own(policy: Policy, targets: Sequence[tuple[int, TargetSpec]]) -> None:
    """A plan applies one set of rules to every selected resource: refuse per-target overrides."""
    for i, spec in targets:
        for field in ("schedule", "retention", "tiers"):
            value = getattr(spec, field)
            if (
                field == "tiers"
                and value is not None
                and tuple(value) == tuple(t.name for t in policy.tiers)
            ):
                continue
            if value is not None:
                shown = value.to_spec() if hasattr(value, "to_spec") else list(value)
                raise PolicyError.for_field(
                    f"targets[{i}].{field}",
                    f"no {field} of its own (one AWS Backup plan applies the same rules to every "
                    f"resource it selects)",
                    shown,
                    hint="Move the target to a policy of its own and export that one too.",
                )


def _copy_action(ctx: _Ctx, tier: TierSpec, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The CopyAction to *tier*'s vault, and the vault to create for it."""
    loc = tier.location
    path = f"tiers[{index}]"
    region = loc.get("region") or ctx.region
    account = loc.get("account") or ctx.account
    name = loc.get("vault") or ctx.vault_name
    if region == ctx.region and account == ctx.account and name == ctx.vault_name:
        raise PolicyError.for_field(
            f"{path}.location",
            "another region, account or vault than the plan's own (an off-site copy)",
            dict(loc),
        )
    rule = tier.retention or ctx.policy.retention
    days = _delete_after_days(rule, path=f"{path}.retention" if tier.retention else "retention")
    action = {
        "DestinationBackupVaultArn": _vault_arn(region, account, name, ctx.partition),
        "Lifecycle": {"DeleteAfterDays": days},
    }
    vault: dict[str, Any] = {"Region": region, "Account": account, "BackupVaultName": name}
    key = _kms_arn(loc.get("kms_key_id"), region, account, ctx.partition)
    if key:
        vault["EncryptionKeyArn"] = key
    return action, vault


def _rule(
    ctx: _Ctx,
    *,
    name: str,
    schedule: Schedule,
    path: str,
    retention: RetentionRule,
    retention_path: str,
    tier: str,
    continuous: bool,
) -> dict[str, Any]:
    start = _minutes(schedule)
    if start < _MIN_START_WINDOW:
        raise PolicyError.for_field(
            f"{path}.window",
            f"a start window of at least {_MIN_START_WINDOW} minutes (AWS Backup's minimum)",
            str(schedule.window),
            hint="Write window: 1h.",
        )
    completion = (
        ctx.completion
        if ctx.completion is not None
        else max(_DEFAULT_COMPLETION_WINDOW, start + 60)
    )
    if completion <= start:
        raise PolicyError.for_field(
            "completion_window_minutes",
            f"more minutes than the start window ({start})",
            completion,
        )
    days = _delete_after_days(retention, path=retention_path)
    if continuous and days > _CONTINUOUS_MAX_DAYS:
        raise PolicyError.for_field(
            f"{retention_path}.max_age",
            f"at most {_CONTINUOUS_MAX_DAYS}d for continuous backups (point-in-time recovery)",
            f"{days}d",
        )
    if continuous and ctx.cold is not None:
        raise PolicyError.for_field(
            "cold_storage_after_days", "None with continuous backups", ctx.cold
        )
    if ctx.lock is not None:
        ctx.lock.check(days, path=f"{retention_path}.max_age")
    rule: dict[str, Any] = {
        "RuleName": name,
        "TargetBackupVaultName": ctx.vault_name,
        "ScheduleExpression": aws_cron(schedule, path=path),
        "ScheduleExpressionTimezone": schedule.tz,
        "StartWindowMinutes": start,
        "CompletionWindowMinutes": completion,
        "Lifecycle": _lifecycle(days, ctx.cold, path=f"{retention_path}.max_age"),
        "RecoveryPointTags": {TAG_POLICY: ctx.policy.name, TAG_TIER: tier},
    }
    if continuous:
        rule["EnableContinuousBackup"] = True
    return rule


def _same_every(every: Cadence | Schedule, schedule: Schedule) -> bool:
    if isinstance(every, Schedule):
        return every == schedule
    return schedule.cadence is every


def _rules(ctx: _Ctx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    policy = ctx.policy
    tiers = policy.tiers
    source = tiers[0].name if tiers else "local"
    local_rule = tiers[0].retention if tiers and tiers[0].retention else policy.retention
    local_path = "tiers[0].retention" if tiers and tiers[0].retention else "retention"
    cadence = policy.schedule.cadence
    main = _rule(
        ctx,
        name=cadence.adverb if cadence else "scheduled",
        schedule=policy.schedule,
        path="schedule",
        retention=local_rule,
        retention_path=local_path,
        tier=source,
        continuous=ctx.continuous,
    )
    rules = [main]
    vaults: list[dict[str, Any]] = []
    for index, tier in enumerate(tiers[1:], start=1):
        action, vault = _copy_action(ctx, tier, index)
        if vault not in vaults:
            vaults.append(vault)
        if _same_every(tier.every, policy.schedule):
            main.setdefault("CopyActions", []).append(action)
            continue
        schedule = _schedule_of(tier.every, policy.schedule)
        adverb = schedule.cadence.adverb if schedule.cadence else "scheduled"
        rule = _rule(
            ctx,
            name=_safe_name(f"{tier.name}-{adverb}", r"[^A-Za-z0-9_.-]", 50),
            schedule=schedule,
            path=f"tiers[{index}].every",
            retention=local_rule,
            retention_path=local_path,
            tier=source,
            continuous=False,
        )
        rule["CopyActions"] = [action]
        rules.append(rule)
    for rule in rules:
        if len(rule.get("CopyActions", ())) > MAX_COPY_ACTIONS:
            raise PolicyError.for_field(
                "tiers",
                f"at most {MAX_COPY_ACTIONS} copy tiers per schedule (AWS Backup's limit per rule)",
                len(rule["CopyActions"]),
                hint=f"Rule {rule['RuleName']!r} has too many.",
            )
    return rules, vaults


def _overrides(kind: str, isolation: Mapping[str, Any]) -> dict[str, str]:
    profile = IsolationProfile(**isolation)
    out: dict[str, str] = {}
    if kind in {"rds-instance", "aurora-cluster"}:
        if profile.subnet_group:
            out["dbSubnetGroupName"] = profile.subnet_group
        if profile.security_group_ids:
            out["vpcSecurityGroupIds"] = json.dumps(list(profile.security_group_ids))
        if kind == "rds-instance":
            out["dbInstanceClass"] = profile.instance_class
    elif kind == "ec2-instance":
        if profile.subnet_id:
            out["subnetId"] = profile.subnet_id
        if profile.security_group_ids:
            out["securityGroupIds"] = json.dumps(list(profile.security_group_ids))
    elif kind == "ebs-volume" and profile.availability_zone:
        out["availabilityZone"] = profile.availability_zone
    return out


def _restore_testing(
    ctx: _Ctx, targets: Sequence[tuple[int, TargetSpec]], main: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    policy = ctx.policy
    verification = policy.verification
    schedule = _schedule_of(verification.restore_test_every, policy.schedule)
    plan_name = _safe_name(f"backuppolicy_{policy.name}", r"[^A-Za-z0-9_]", 50)
    point_types = ["SNAPSHOT", "CONTINUOUS"] if ctx.continuous else ["SNAPSHOT"]
    plan = {
        "RestoreTestingPlanName": plan_name,
        "ScheduleExpression": aws_cron(schedule, path="verification.restore_test_every"),
        "ScheduleExpressionTimezone": schedule.tz,
        "StartWindowHours": max(1, _minutes(schedule) // 60),
        "RecoveryPointSelection": {
            "Algorithm": "LATEST_WITHIN_WINDOW",
            "IncludeVaults": [_vault_arn(ctx.region, ctx.account, ctx.vault_name, ctx.partition)],
            "RecoveryPointTypes": point_types,
            "SelectionWindowDays": min(_MAX_SELECTION_WINDOW, main["Lifecycle"]["DeleteAfterDays"]),
        },
    }
    by_kind: dict[str, list[str]] = {}
    for _, spec in targets:
        if spec.kind in _BACKUP_KINDS:
            arn = resource_arn(
                spec, region=ctx.region, account_id=ctx.account, partition=ctx.partition
            )
            by_kind.setdefault(spec.kind, []).append(str(arn))
    selections = []
    for kind, arns in by_kind.items():
        selection: dict[str, Any] = {
            "RestoreTestingSelectionName": _safe_name(
                f"{_BACKUP_KINDS[kind].lower()}_{policy.name}", r"[^A-Za-z0-9_]", 50
            ),
            "ProtectedResourceType": _BACKUP_KINDS[kind],
            "IamRoleArn": ctx.role,
            "ProtectedResourceArns": sorted(arns),
        }
        overrides = _overrides(kind, verification.isolation)
        if overrides:
            selection["RestoreMetadataOverrides"] = overrides
        selections.append(selection)
    return plan, selections


def export_aws_backup(
    policy: Policy,
    *,
    region: str | None = None,
    account_id: str | None = None,
    partition: str = "aws",
    vault_name: str | None = None,
    kms_key_arn: str | None = None,
    iam_role_arn: str | None = None,
    vault_lock: VaultLock | None = None,
    continuous: bool = False,
    cold_storage_after_days: int | None = None,
    completion_window_minutes: int | None = None,
    restore_testing: bool = True,
) -> dict[str, Any]:
    """Compile *policy* to AWS Backup's vault, plan, selection, Vault Lock and restore testing.

    Pure: no AWS call. The keys of the result are the request shapes of the AWS Backup API:
    ``BackupVault`` (``CreateBackupVault``), ``CopyVaults`` (one per off-site region or account),
    ``VaultLock`` (``PutBackupVaultLockConfiguration`` or ``None``), ``BackupPlan``
    (``CreateBackupPlan``), ``BackupSelection`` (``CreateBackupSelection``),
    ``RestoreTestingPlan`` and ``RestoreTestingSelections``, plus ``Region`` and ``Warnings``
    (targets AWS Backup does not cover, a compliance-mode lock).

    Rules: the policy's schedule is one rule, kept for the source tier's ``max_age``. Each copy
    tier is a ``CopyAction`` to its vault (``location.vault``, default the plan's vault name, in
    ``location.region`` / ``location.account``): on the main rule when the tier runs on the same
    schedule, otherwise on a rule of its own on the tier's cadence (a weekly off-site rule). When
    rules overlap, AWS Backup runs one job and keeps the longest retention.

    Args:
        policy: The policy.
        region: Region of the plan (default: the one region of the AWS targets).
        account_id: Account id for ARNs (default: `ACCOUNT_PLACEHOLDER`).
        partition: ARN partition (``aws``, ``aws-cn``, ``aws-us-gov``).
        vault_name: Name of the plan's vault (default ``backuppolicy-<policy name>``).
        kms_key_arn: KMS key of the vault (default: the first tier's ``location.kms_key_id``,
            else AWS Backup's default key).
        iam_role_arn: Role AWS Backup assumes (default: ``AWSBackupDefaultServiceRole``).
        vault_lock: A `VaultLock` for the plan's vault; a compliance-mode lock warns.
        continuous: Enable continuous backup (point-in-time recovery) on the main rule; AWS keeps
            those at most 35 days.
        cold_storage_after_days: Move recovery points to cold storage after this many days.
        completion_window_minutes: Completion window (default 7 days, AWS's default).
        restore_testing: Whether to export the restore testing plan.

    Raises:
        PolicyError: The policy uses something AWS Backup cannot express or would reject; the
            message names the field and, for retention rules, suggests a tier instead.

    Example:
        >>> policy = Policy.from_dict({
        ...     "name": "shop", "schedule": {"every": "day", "at": "04:00", "tz": "GMT"},
        ...     "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "db", "kind": "rds-instance",
        ...                  "settings": {"db_instance_id": "shop", "region": "eu-west-2"}}]})
        >>> rule = export_aws_backup(policy, account_id="123456789012")["BackupPlan"]["Rules"][0]
        >>> rule["ScheduleExpression"], rule["ScheduleExpressionTimezone"], rule["Lifecycle"]
        ('cron(0 4 * * ? *)', 'GMT', {'DeleteAfterDays': 35})
    """
    plan_region, targets, notes = _aws_targets(policy, region)
    _refuse_own(policy, targets)
    account = account_id or ACCOUNT_PLACEHOLDER
    name = vault_name or _safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 50)
    role = iam_role_arn or (
        f"arn:{partition}:iam::{account}:role/service-role/AWSBackupDefaultServiceRole"
    )
    cold = cold_storage_after_days
    if cold is not None and (isinstance(cold, bool) or not isinstance(cold, int) or cold < 1):
        raise PolicyError.for_field(
            "cold_storage_after_days", "None or a whole number of days >= 1", cold
        )
    ctx = _Ctx(
        policy=policy,
        region=plan_region,
        account=account,
        partition=partition,
        vault_name=name,
        role=role,
        cold=cold_storage_after_days,
        continuous=continuous,
        completion=completion_window_minutes,
        lock=vault_lock,
    )
    rules, copy_vaults = _rules(ctx)
    tier_key = policy.tiers[0].location.get("kms_key_id") if policy.tiers else None
    vault: dict[str, Any] = {"BackupVaultName": name, "BackupVaultTags": {TAG_POLICY: policy.name}}
    key = _kms_arn(kms_key_arn or tier_key, plan_region, account, partition)
    if key:
        vault["EncryptionKeyArn"] = key
    resources = sorted(
        str(resource_arn(spec, region=plan_region, account_id=account, partition=partition))
        for _, spec in targets
    )
    selection: dict[str, Any] = {
        "SelectionName": _safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 50),
        "IamRoleArn": role,
        "ListOfTags": [
            {
                "ConditionType": "STRINGEQUALS",
                "ConditionKey": TAG_POLICY,
                "ConditionValue": policy.name,
            }
        ],
    }
    if resources:
        selection["Resources"] = resources
    lock = None
    if vault_lock is not None:
        lock = {"BackupVaultName": name, **vault_lock.to_params()}
        if vault_lock.compliance:
            message = (
                f"COMPLIANCE MODE: the vault lock on {name!r} becomes immutable "
                f"{vault_lock.changeable_for_days} days after it is applied. From then on nobody, "
                f"not even the account root, can delete its recovery points early, shorten their "
                f"retention or remove the lock. Use changeable_for_days=None for governance mode."
            )
            notes.append(message)
            warnings.warn(message, ComplianceModeWarning, stacklevel=2)
    testing_plan: dict[str, Any] | None = None
    testing_selections: list[dict[str, Any]] = []
    if restore_testing:
        testing_plan, testing_selections = _restore_testing(ctx, targets, rules[0])
    return {
        "Region": plan_region,
        "BackupVault": vault,
        "CopyVaults": copy_vaults,
        "VaultLock": lock,
        "BackupPlan": {
            "BackupPlanName": _safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 50),
            "Rules": rules,
        },
        "BackupSelection": selection,
        "RestoreTestingPlan": testing_plan,
        "RestoreTestingSelections": testing_selections,
        "Warnings": notes,
    }


# --------------------------------------------------------------------------------------------
# Apply


def _token(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _covers(actual: Any, wanted: Any) -> bool:
    """Whether *actual* (as AWS returns it) has every value of *wanted* (AWS adds defaults)."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            _covers(actual.get(key), value) for key, value in wanted.items()
        )
    if isinstance(wanted, list) and isinstance(actual, list):
        return len(actual) == len(wanted) and all(
            _covers(a, w) for a, w in zip(actual, wanted, strict=True)
        )
    return bool(actual == wanted)


def _same_rules(actual: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]) -> bool:
    by_name = {rule.get("RuleName"): rule for rule in actual}
    return len(by_name) == len(wanted) and all(
        _covers(by_name.get(rule["RuleName"]), rule) for rule in wanted
    )


class _Client(AwsBackend):
    def account(self) -> str:
        return str(self.call("sts", "get_caller_identity")["Account"])

    def find(self, operation: str, key: str, field: str, name: str, **params: Any) -> Any:
        for page in self.paginate("backup", operation, **params):
            for item in page.get(key, []):
                if item.get(field) == name:
                    return item
        return None


def _apply_vault(backend: _Client, vault: Mapping[str, Any], region: str | None = None) -> str:
    params = {k: v for k, v in vault.items() if k not in {"Region", "Account"}}
    try:
        backend.call(
            "backup",
            "describe_backup_vault",
            resource=params["BackupVaultName"],
            region=region,
            BackupVaultName=params["BackupVaultName"],
        )
    except ResourceNotFoundError:
        backend.call(
            "backup",
            "create_backup_vault",
            resource=params["BackupVaultName"],
            region=region,
            CreatorRequestId=_token(params, region),
            **params,
        )
        return "created"
    return "exists"


def _apply_lock(backend: _Client, lock: Mapping[str, Any]) -> str:
    name = lock["BackupVaultName"]
    current = backend.call("backup", "describe_backup_vault", resource=name, BackupVaultName=name)
    same = current.get("Locked") and all(
        current.get(key) == lock.get(key) for key in ("MinRetentionDays", "MaxRetentionDays")
    )
    if same:
        return "unchanged"
    backend.call("backup", "put_backup_vault_lock_configuration", resource=name, **lock)
    return "set"


def _apply_plan(backend: _Client, plan: Mapping[str, Any], policy: str) -> tuple[str, str]:
    name = plan["BackupPlanName"]
    found = backend.find("list_backup_plans", "BackupPlansList", "BackupPlanName", name)
    if found is None:
        created = backend.call(
            "backup",
            "create_backup_plan",
            resource=name,
            BackupPlan=plan,
            BackupPlanTags={TAG_POLICY: policy},
            CreatorRequestId=_token(plan),
        )
        return "created", str(created["BackupPlanId"])
    plan_id = str(found["BackupPlanId"])
    current = backend.call("backup", "get_backup_plan", resource=name, BackupPlanId=plan_id)
    if _same_rules(current.get("BackupPlan", {}).get("Rules", []), plan["Rules"]):
        return "unchanged", plan_id
    backend.call(
        "backup", "update_backup_plan", resource=name, BackupPlanId=plan_id, BackupPlan=plan
    )
    return "updated", plan_id


def _apply_selection(backend: _Client, plan_id: str, selection: Mapping[str, Any]) -> str:
    name = selection["SelectionName"]
    found = backend.find(
        "list_backup_selections",
        "BackupSelectionsList",
        "SelectionName",
        name,
        BackupPlanId=plan_id,
    )
    verb = "created"
    if found is not None:
        current = backend.call(
            "backup",
            "get_backup_selection",
            resource=name,
            BackupPlanId=plan_id,
            SelectionId=found["SelectionId"],
        )
        if _covers(current.get("BackupSelection"), selection):
            return "unchanged"
        # Selections cannot be updated: replace it.
        backend.call(
            "backup",
            "delete_backup_selection",
            resource=name,
            BackupPlanId=plan_id,
            SelectionId=found["SelectionId"],
        )
        verb = "replaced"
    backend.call(
        "backup",
        "create_backup_selection",
        resource=name,
        BackupPlanId=plan_id,
        BackupSelection=selection,
        CreatorRequestId=_token(plan_id, selection),
    )
    return verb


_PLAN_UPDATABLE: Final = (
    "RecoveryPointSelection",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartWindowHours",
)


def _apply_testing(
    backend: _Client, plan: Mapping[str, Any], selections: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    name = plan["RestoreTestingPlanName"]
    done: dict[str, str] = {}
    found = backend.find(
        "list_restore_testing_plans", "RestoreTestingPlans", "RestoreTestingPlanName", name
    )
    if found is None:
        backend.call(
            "backup",
            "create_restore_testing_plan",
            resource=name,
            RestoreTestingPlan=plan,
            CreatorRequestId=_token(plan),
        )
        done[name] = "created"
    else:
        current = backend.call(
            "backup", "get_restore_testing_plan", resource=name, RestoreTestingPlanName=name
        )
        if _covers(current.get("RestoreTestingPlan"), plan):
            done[name] = "unchanged"
        else:
            update = {key: plan[key] for key in _PLAN_UPDATABLE if key in plan}
            backend.call(
                "backup",
                "update_restore_testing_plan",
                resource=name,
                RestoreTestingPlanName=name,
                RestoreTestingPlan=update,
            )
            done[name] = "updated"
    existing: set[str] = set()
    if found is not None:
        for page in backend.paginate(
            "backup", "list_restore_testing_selections", RestoreTestingPlanName=name
        ):
            existing.update(
                item["RestoreTestingSelectionName"]
                for item in page.get("RestoreTestingSelections", [])
            )
    for selection in selections:
        sel_name = selection["RestoreTestingSelectionName"]
        if sel_name not in existing:
            backend.call(
                "backup",
                "create_restore_testing_selection",
                resource=sel_name,
                RestoreTestingPlanName=name,
                RestoreTestingSelection=selection,
                CreatorRequestId=_token(name, selection),
            )
            done[sel_name] = "created"
            continue
        current = backend.call(
            "backup",
            "get_restore_testing_selection",
            resource=sel_name,
            RestoreTestingPlanName=name,
            RestoreTestingSelectionName=sel_name,
        )
        if _covers(current.get("RestoreTestingSelection"), selection):
            done[sel_name] = "unchanged"
            continue
        update = {
            k: v
            for k, v in selection.items()
            if k not in {"RestoreTestingSelectionName", "ProtectedResourceType"}
        }
        backend.call(
            "backup",
            "update_restore_testing_selection",
            resource=sel_name,
            RestoreTestingPlanName=name,
            RestoreTestingSelectionName=sel_name,
            RestoreTestingSelection=update,
        )
        done[sel_name] = "updated"
    return done


def apply_aws_backup(
    policy: Policy,
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    clients: Mapping[str, Any] | None = None,
    config: Config | None = None,
    retry: RetryPolicy | None = None,
    parts: Sequence[str] = APPLY_PARTS,
    **options: Any,
) -> dict[str, Any]:
    """Create or update what `export_aws_backup` describes; running it twice changes nothing.

    Vaults are created when missing (the off-site vaults too, when in the same account); the
    Vault Lock is set when its bounds differ; the plan is found by name and updated only when a
    rule differs; the selection is replaced when it differs (AWS cannot update one); the restore
    testing plan and its selections are created or updated. Creates carry a ``CreatorRequestId``
    derived from their content, so a retried call makes no duplicate.

    Args:
        policy: The policy.
        session: A `boto3.Session`.
        endpoint_url: Endpoint for every client (moto server, LocalStack).
        clients: Ready clients by service name (``{"backup": client}``), e.g. with a Stubber.
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        parts: Which of `APPLY_PARTS` to apply.
        **options: Passed to `export_aws_backup` (``region``, ``account_id``, ``vault_lock`` ...);
            ``account_id`` defaults to the caller's account (STS).

    Returns:
        What happened to each part: ``{"vault": "created", "plan": "unchanged", ...}``, with
        ``plan_id`` and the exported ``document``.

    Raises:
        PolicyError: As `export_aws_backup`, or *parts* names an unknown part.
        BackendError: An AWS call failed (after retries).
    """
    unknown = [part for part in parts if part not in APPLY_PARTS]
    if unknown:
        raise PolicyError.for_field("parts", "parts among " + ", ".join(APPLY_PARTS), unknown[0])
    region = options.get("region")
    if region is None:
        region, _, _ = _aws_targets(policy, None)
    backend = _Client(
        f"aws-backup:{policy.name}",
        session=session,
        region=region,
        endpoint_url=endpoint_url,
        clients=clients,
        config=config,
        retry=retry,
    )
    if not options.get("account_id"):
        options["account_id"] = backend.account()
    options["region"] = region
    document = export_aws_backup(policy, **options)
    return _apply_document(
        backend, document, parts, policy=policy.name, account=options["account_id"]
    )


def _apply_document(
    backend: _Client,
    document: Mapping[str, Any],
    parts: Sequence[str],
    *,
    policy: str,
    account: str,
) -> dict[str, Any]:
    result: dict[str, Any] = {"document": document}
    if "vault" in parts:
        result["vault"] = _apply_vault(backend, document["BackupVault"])
        result["copy_vaults"] = {
            f"{vault['Region']}:{vault['BackupVaultName']}": (
                _apply_vault(backend, vault, region=vault["Region"])
                if vault["Account"] == account
                else "other account: create it there"
            )
            for vault in document["CopyVaults"]
        }
    if "vault-lock" in parts and document["VaultLock"] is not None:
        result["vault_lock"] = _apply_lock(backend, document["VaultLock"])
    plan_id: str | None = None
    if "plan" in parts:
        result["plan"], plan_id = _apply_plan(backend, document["BackupPlan"], policy)
        result["plan_id"] = plan_id
    if "selection" in parts:
        if plan_id is None:
            name = document["BackupPlan"]["BackupPlanName"]
            found = backend.find("list_backup_plans", "BackupPlansList", "BackupPlanName", name)
            if found is None:
                raise PolicyError.for_field(
                    "parts", "'plan' too: the backup plan does not exist yet", list(parts)
                )
            plan_id = str(found["BackupPlanId"])
        result["selection"] = _apply_selection(backend, plan_id, document["BackupSelection"])
    if "restore-testing" in parts and document["RestoreTestingPlan"] is not None:
        result["restore_testing"] = _apply_testing(
            backend, document["RestoreTestingPlan"], document["RestoreTestingSelections"]
        )
    return result


# --------------------------------------------------------------------------------------------
# Import: AWS Backup recovery points as RecoveryPoint


def _to_point(
    item: Mapping[str, Any], *, target: str | None, names: Mapping[str, str], tier: str
) -> RecoveryPoint:
    resource = str(item.get("ResourceArn", ""))
    status = _POINT_STATUS.get(str(item.get("Status", "")), Status.FAILED)
    created = item["CreationDate"]
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    name = (
        target
        or names.get(_arn_key(resource))
        or str(item.get("ResourceName") or "")
        or re.split(r"[:/]", resource)[-1]
        or "unknown"
    )
    return RecoveryPoint(
        id=str(item["RecoveryPointArn"]),
        target=name,
        created_at=created,
        kind="aws-backup",
        location=str(item.get("BackupVaultArn") or item.get("BackupVaultName", "")),
        tier=tier,
        status=status,
        size_bytes=item.get("BackupSizeInBytes", item.get("BackupSizeBytes")),
        encrypted=item.get("IsEncrypted", True if item.get("EncryptionKeyArn") else None),
        managed=False,
        details={
            "arn": item["RecoveryPointArn"],
            "resource_arn": resource,
            "resource_type": item.get("ResourceType"),
            "vault": item.get("BackupVaultName"),
            "kms_key_id": item.get("EncryptionKeyArn"),
            "lifecycle": item.get("Lifecycle"),
            "calculated_lifecycle": item.get("CalculatedLifecycle"),
            "created_by": item.get("CreatedBy"),
            "status": item.get("Status"),
        },
    )


def list_aws_backup_points(
    vault: str,
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    clients: Mapping[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    by_resource: str | None = None,
    policy: Policy | None = None,
    target: str | None = None,
    tier: str = "local",
) -> Iterator[RecoveryPoint]:
    """Stream the recovery points of an AWS Backup *vault* as `RecoveryPoint` objects.

    Every page is retried on its own and a page that finally fails raises, so a listing is
    never silently short. Points have ``kind="aws-backup"``, the recovery point ARN as ``id``,
    the vault ARN as ``location`` and ``managed=False``: AWS Backup deletes them by its lifecycle.
    Their ``target`` is *target*, else the name of the policy target whose ARN matches, else
    the resource's name or ARN.

    Args:
        vault: Backup vault name.
        session: A `boto3.Session`.
        region: Region of the vault.
        endpoint_url: Endpoint for the client.
        clients: Ready clients (``{"backup": client}``).
        retry: The `RetryPolicy`.
        by_resource: Only the points of the resource with this ARN.
        policy: Map resource ARNs to the names of its targets.
        target: Name every point after this target.
        tier: Tier of the points (``"local"``; ``"offsite"`` for a copy vault).
    """
    backend = _Client(
        f"aws-backup:{vault}",
        session=session,
        region=region,
        endpoint_url=endpoint_url,
        clients=clients,
        retry=retry,
    )
    names: dict[str, str] = {}
    if policy is not None:
        for spec in policy.targets:
            arn = resource_arn(spec, region=_region_of(spec, backend.region) or "", account_id="")
            if arn:
                names[_arn_key(arn)] = spec.name
    params: dict[str, Any] = {"BackupVaultName": vault}
    if by_resource:
        params["ByResourceArn"] = by_resource
    for page in backend.paginate(
        "backup", "list_recovery_points_by_backup_vault", resource=vault, **params
    ):
        for item in page.get("RecoveryPoints", []):
            yield _to_point(item, target=target, names=names, tier=tier)


def _arn_key(arn: str) -> str:
    """*arn* without its account field, to match ARNs exported without the account id."""
    parts = arn.split(":", 5)
    if len(parts) == 6:  # noqa: PLR2004
        parts[4] = ""
    return ":".join(parts)


# --------------------------------------------------------------------------------------------
# The read-only "aws-backup" target


class AwsBackupTarget(AwsBackend):
    """A resource protected by AWS Backup, read-only: list, refresh and audit its recovery points.

    AWS Backup owns these points: it creates them on its plan's schedule and deletes them by
    its lifecycle. `create_backup`, `delete`, `copy` and `restore` therefore raise `PolicyError`
    saying so; run `apply_aws_backup` to change the schedule or the retention.

    Example:
        >>> target = AwsBackupTarget("arn:aws:rds:eu-west-2:123456789012:db:shop",
        ...                          vault="backuppolicy-web", name="shop-db", region="eu-west-2")
        >>> target.create_backup()
        Traceback (most recent call last):
        ...
        backuppolicy.core.exceptions.PolicyError: shop-db: expected a target that backuppolicy backs up (got 'aws-backup'). AWS Backup owns these recovery points: it creates them on its backup plan's schedule. Change the plan with `backuppolicy export aws-backup --apply`.

    Args:
        resource_arn: ARN of the protected resource.
        vault: Backup vault that holds its points (default: every vault, by resource).
        iam_role_arn: Role AWS Backup uses for it (recorded; not used to list).
        name: Target name (default: the ARN).
        policy: Policy name.
        session: A `boto3.Session`.
        region: Region of the vault.
        endpoint_url: Endpoint.
        clients: Ready clients (``{"backup": client}``).
        config: Extra botocore `Config`.
        retry: The `RetryPolicy`.
        tier: Tier of the points.

    Attributes:
        resource_arn: ARN of the protected resource.
        vault: Backup vault name, or ``None``.
        iam_role_arn: Role AWS Backup uses, or ``None``.
        policy: Policy name.
        tier: Tier of the points.
    """

    def __init__(
        self,
        resource_arn: str,
        *,
        vault: str | None = None,
        iam_role_arn: str | None = None,
        name: str | None = None,
        policy: str = "default",
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        clients: Mapping[str, Any] | None = None,
        config: Config | None = None,
        retry: RetryPolicy | None = None,
        tier: str = "local",
    ) -> None:
        if not isinstance(resource_arn, str) or not resource_arn.startswith("arn:"):
            raise PolicyError.for_field("resource_arn", "an ARN", resource_arn)
        super().__init__(
            name or resource_arn,
            session=session,
            region=region,
            endpoint_url=endpoint_url,
            clients=clients,
            config=config,
            retry=retry,
        )
        self.resource_arn = resource_arn
        self.vault = vault
        self.iam_role_arn = iam_role_arn
        self.policy = policy
        self.tier = tier

    # -- the kind (from_spec, iam_actions) ----------------------------------------------

    needs_aws_session: ClassVar[bool] = True
    """Targets of this kind call AWS: `backuppolicy.build_targets` makes them a session."""

    @classmethod
    def from_spec(
        cls,
        spec: TargetSpec,
        policy: Policy,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> AwsBackupTarget:
        """The target of *spec*: its ``resource_arn`` and other settings, its region (default *region*)."""
        settings = {
            k: v
            for k, v in spec.settings.items()
            if k not in {"resource_arn", "region", "kms_key_id"}
        }
        return cls(
            spec.settings["resource_arn"],
            **settings,
            name=spec.name,
            policy=policy.name,
            session=session,
            endpoint_url=endpoint_url,
            region=spec.settings.get("region") or region,
        )

    @classmethod
    def iam_actions(cls, spec: TargetSpec) -> dict[str, list[dict[str, Any]]]:
        """The IAM statements of each workflow (`backuppolicy.aws.iam_policy` fills them in)."""
        vault = spec.settings.get("vault")
        where = f"arn:{PARTITION}:backup:{REGION}:{ACCOUNT}"
        vault_arn = f"{where}:backup-vault:{vault or '*'}"
        reads = (
            ("backup:ListRecoveryPointsByBackupVault",)
            if vault
            else ("backup:ListRecoveryPointsByResource",)
        )
        # ListRecoveryPointsByResource supports no resource-level permissions: "*" is the only
        # resource that grants it (the resource's ARN grants nothing).
        return by_workflow(
            [
                Grant((), reads, (vault_arn,) if vault else ("*",)),
                Grant(
                    ("prune", "verify"),
                    ("backup:DescribeRecoveryPoint",),
                    (vault_arn, f"{where}:recovery-point:*"),
                ),
            ]
        )

    def __repr__(self) -> str:
        return f"<backuppolicy.aws.AwsBackupTarget(resource_arn={self.resource_arn!r}, vault={self.vault!r})>"

    @property
    def kind(self) -> str:
        """Registered target kind: ``"aws-backup"``."""
        return "aws-backup"

    def _refuse(self, what: str) -> PolicyError:
        return PolicyError.for_field(
            self.name,
            "a target that backuppolicy backs up",
            "aws-backup",
            hint=f"AWS Backup owns these recovery points: {what} "
            "Change the plan with `backuppolicy export aws-backup --apply`.",
        )

    def create_backup(
        self,
        *,
        reason: str = "scheduled",  # noqa: ARG002 - the protocol's signature
        tags: Mapping[str, str] | None = None,  # noqa: ARG002
        token: str | None = None,  # noqa: ARG002
    ) -> RecoveryPoint:
        """Refused: AWS Backup creates these points on its plan's schedule."""
        raise self._refuse("it creates them on its backup plan's schedule.")

    def list_points(self) -> Iterator[RecoveryPoint]:
        """Stream the resource's recovery points (by vault, or in every vault by resource)."""
        if self.vault:
            params: dict[str, Any] = {
                "BackupVaultName": self.vault,
                "ByResourceArn": self.resource_arn,
            }
            operation = "list_recovery_points_by_backup_vault"
        else:
            params = {"ResourceArn": self.resource_arn}
            operation = "list_recovery_points_by_resource"
        for page in self.paginate("backup", operation, resource=self.resource_arn, **params):
            for item in page.get("RecoveryPoints", []):
                full = {"ResourceArn": self.resource_arn, **item}
                yield _to_point(full, target=self.name, names={}, tier=self.tier)

    def refresh(self, point: RecoveryPoint) -> RecoveryPoint | None:
        """Re-read *point* with ``DescribeRecoveryPoint``; ``None`` if it is gone."""
        vault = point.details.get("vault") or self.vault
        try:
            item = self.call(
                "backup",
                "describe_recovery_point",
                resource=point.id,
                BackupVaultName=vault,
                RecoveryPointArn=point.id,
            )
        except ResourceNotFoundError:
            return None
        return _to_point(item, target=self.name, names={}, tier=point.tier)

    def delete(self, point: RecoveryPoint) -> None:
        """Refused: AWS Backup deletes these points by its lifecycle."""
        raise self._refuse(f"it deletes {point.id!r} by its lifecycle (DeleteAfterDays).")

    def copy(self, point: RecoveryPoint, destination: Destination) -> RecoveryPoint:
        """Refused: copies are the plan's ``CopyActions``."""
        raise self._refuse(
            f"copies of {point.id!r} to {destination.tier} are the plan's CopyActions."
        )

    def restore(
        self, point: RecoveryPoint, into: IsolationProfile | None = None
    ) -> AbstractContextManager[RestoredResource]:
        """Refused: restore tests of these points are AWS Backup's restore testing plan."""
        del into
        raise self._refuse(f"restore tests of {point.id!r} are its restore testing plan.")


# --------------------------------------------------------------------------------------------
# S3 lifecycle and EventBridge Scheduler


def export_lifecycle(policy: Policy) -> dict[str, dict[str, Any]]:
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

    buckets: dict[str, dict[str, Any]] = {}
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
) -> dict[str, Any]:
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
    group = group_name or _safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 64)
    schedule = policy.schedule
    window = max(1, min(1440, _minutes(schedule)))
    prune_at = Schedule(_shift_hour(schedule.cron), tz=schedule.tz, window=schedule.window)

    def entry(name: str, when: Schedule, path: str, event: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "Name": _safe_name(f"{policy.name}-{name}", r"[^A-Za-z0-9_.-]", 64),
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
