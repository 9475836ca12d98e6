"""Let AWS run the schedule: compile a `~backuppolicy.Policy` to AWS Backup, S3 lifecycle and Scheduler.

One idea: a policy's schedule and retention, compiled to what AWS runs by itself (and applied).

* `export_aws_backup` (pure) compiles the policy to the documents AWS Backup takes: a backup vault
  (KMS key), a backup plan with one rule per schedule (``ScheduleExpression`` +
  ``ScheduleExpressionTimezone``, start and completion windows, ``Lifecycle.DeleteAfterDays``
  from the retention, ``CopyActions`` to the off-site tier's vault in another region, continuous
  backup when asked), a backup selection (the policy's resources, and any resource tagged
  ``backuppolicy:policy=<name>``), an optional Vault Lock, and a restore testing plan with one
  selection per resource type, on the policy's restore-test cadence.
* `apply_aws_backup` creates or updates those resources idempotently: a second run with the same
  policy changes nothing.
* `export_lifecycle` compiles the retention of S3 targets to bucket lifecycle rules, and
  `export_scheduler` to EventBridge Scheduler schedules that invoke
  `backuppolicy.lambda_handler.handler` (both in `backuppolicy.aws.lifecycle_scheduler`,
  re-exported here).

Everything AWS would reject but moto accepts is checked here and raised as a `PolicyError` naming
the field: cron forms (6 fields, ``?`` in day-of-month or day-of-week, at most hourly), start
windows under 60 minutes, completion windows not longer than the start window, more than 5 copy
actions in a rule, ``DeleteAfterDays`` less than 90 days after ``MoveToColdStorageAfterDays``,
continuous backups kept longer than 35 days, and retention outside the vault lock's bounds.
Retention rules AWS cannot express (``keep_weekly`` and the other count rules, ``keep_within``,
``keep_tags``) are refused with a hint: make the period a tier with its own ``max_age``.

The points AWS Backup makes are read back by `backuppolicy.aws.awsbackup` (the read-only
``aws-backup`` target); the steps of `apply_aws_backup` are in ``aws/_backup_apply.py``, the
translation to AWS's cron in ``aws/_cron.py``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict

import attrs
import boto3
from botocore.config import Config

from backuppolicy.aws._backup import BackupClient, aws_backup_of, region_of, safe_name
from backuppolicy.aws._backup_apply import apply_document
from backuppolicy.aws._client import RetryPolicy
from backuppolicy.aws._cron import aws_cron, schedule_of, validate_aws_cron, window_minutes
from backuppolicy.aws.awsbackup import ACCOUNT_PLACEHOLDER, resource_arn
from backuppolicy.aws.lifecycle_scheduler import export_lifecycle, export_scheduler
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.locks import TierLock, retention_span
from backuppolicy.core.model import TAG_POLICY, TAG_TIER
from backuppolicy.core.policy import Policy, TargetSpec, TierSpec
from backuppolicy.core.retention import AnyOf, MaxAge, RetentionRule
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.targets import AwsBackupMapping, IsolationProfile

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = [
    "APPLY_PARTS",
    "MAX_COPY_ACTIONS",
    "ComplianceModeWarning",
    "VaultLock",
    "apply_aws_backup",
    "aws_cron",
    "export_aws_backup",
    "export_lifecycle",
    "export_scheduler",
    "validate_aws_cron",
]

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
_PERIOD_DAYS: Final = {
    "keep_hourly": ("hour", 0),
    "keep_daily": ("day", 1),
    "keep_weekly": ("week", 7),
    "keep_monthly": ("month", 31),
    "keep_yearly": ("year", 366),
}


class ComplianceModeWarning(UserWarning):
    """A Vault Lock will turn into compliance mode: after the grace days nobody can undo it."""


# --------------------------------------------------------------------------------------------
# Values


def _days(
    low: int, high: int = _MAX_DAYS
) -> Callable[[object, attrs.Attribute[int | None], int | None], None]:
    """An attrs validator for optional whole-day counts from *low* to *high*."""

    def check(_inst: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
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


def vault_lock_for(lock: TierLock, rule: RetentionRule) -> VaultLock | None:
    """The Vault Lock that enforces a tier's `TierLock` on the tier's AWS Backup vault.

    ``MinRetentionDays`` is the lock's length (no rule may keep a recovery point in the vault
    for less); ``MaxRetentionDays`` is the retention's span (`retention_span`), when bounded.
    A compliance lock becomes a compliance-mode Vault Lock after AWS's shortest grace period
    (``ChangeableForDays=3``); a governance lock stays in governance mode.

    Example:
        >>> from backuppolicy.core.locks import TierLock
        >>> vault_lock_for(TierLock("compliance"), MaxAge(days=35)).to_params()
        {'MinRetentionDays': 35, 'MaxRetentionDays': 35, 'ChangeableForDays': 3}
    """
    length = lock.lock_for(rule)
    if length is None:
        return None
    span = retention_span(rule)
    low = max(1, math.ceil(length.approx_timedelta() / timedelta(days=1)))
    high = math.ceil(span.approx_timedelta() / timedelta(days=1)) if span is not None else None
    changeable = _MIN_CHANGEABLE_DAYS if lock.mode == "compliance" else None
    return VaultLock(low, high, changeable_for_days=changeable)


def _copy_vault_locks(ctx: _Ctx, notes: list[str]) -> list[dict[str, object]]:
    """``PutBackupVaultLockConfiguration`` (with ``Region`` and ``Account``) per locked copy tier."""
    locks: list[dict[str, object]] = []
    for index, tier in enumerate(ctx.policy.tiers[1:], start=1):
        if tier.lock is None or not tier.lock.enabled:
            continue
        lock = vault_lock_for(tier.lock, tier.retention or ctx.policy.retention)
        if lock is None:  # pragma: no cover - an enabled lock has a length (policy check)
            continue
        _, vault = _copy_action(ctx, tier, index)
        entry = {k: vault[k] for k in ("Region", "Account", "BackupVaultName")}
        locks.append({**entry, **lock.to_params()})
        if lock.compliance:
            where = f"{entry['Region']}:{entry['BackupVaultName']}"
            message = (
                f"COMPLIANCE MODE: the vault lock on {where} (tier {tier.name!r}) becomes "
                f"immutable {lock.changeable_for_days} days after it is applied. From then on "
                "nobody, not even the account root, can delete its recovery points early, "
                "shorten their retention or remove the lock."
            )
            notes.append(message)
            warnings.warn(message, ComplianceModeWarning, stacklevel=3)
    return locks


# --------------------------------------------------------------------------------------------
# Retention


def _hint_for(key: str, value: object) -> str:
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


class _BackupRule(TypedDict):
    """A rule of ``CreateBackupPlan`` (``BackupPlan.Rules``) as `export_aws_backup` writes it."""

    RuleName: str
    TargetBackupVaultName: str
    ScheduleExpression: str
    ScheduleExpressionTimezone: str
    StartWindowMinutes: int
    CompletionWindowMinutes: int
    Lifecycle: dict[str, int]
    RecoveryPointTags: dict[str, str]
    EnableContinuousBackup: NotRequired[bool]
    CopyActions: NotRequired[list[dict[str, object]]]


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
# ARNs and names


def _vault_arn(region: str, account: str, name: str, partition: str) -> str:
    return f"arn:{partition}:backup:{region}:{account}:backup-vault:{name}"


def _kms_arn(key: str | None, region: str, account: str, partition: str) -> str | None:
    if not key or key.startswith("arn:"):
        return key or None
    if key.startswith("alias/"):
        return f"arn:{partition}:kms:{region}:{account}:{key}"
    return f"arn:{partition}:kms:{region}:{account}:key/{key}"


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
    mappings = [aws_backup_of(spec) if spec.enabled else None for spec in policy.targets]
    regions = {
        str(region_of(spec, None))
        for spec, mapping in zip(policy.targets, mappings, strict=True)
        if mapping is not None and mapping.resource_type is not None and region_of(spec, None)
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
        mapping = mappings[i]
        if mapping is None:
            warnings_.append(
                f"targets[{i}] {spec.name!r} ({spec.kind}) is not an AWS resource: AWS Backup does "
                f"not back it up; keep running `backuppolicy backup` for it."
            )
            continue
        if region_of(spec, region) != region:
            warnings_.append(
                f"targets[{i}] {spec.name!r} is in region {region_of(spec, region)}, not {region}: "
                f"export again with region={region_of(spec, region)!r} for it."
            )
            continue
        warnings_.extend(f"targets[{i}] {spec.name!r}: {caveat}" for caveat in mapping.caveats)
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


def _copy_action(ctx: _Ctx, tier: TierSpec, index: int) -> tuple[dict[str, object], dict[str, str]]:
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
    action: dict[str, object] = {
        "DestinationBackupVaultArn": _vault_arn(region, account, name, ctx.partition),
        "Lifecycle": {"DeleteAfterDays": days},
    }
    vault: dict[str, str] = {"Region": region, "Account": account, "BackupVaultName": name}
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
) -> _BackupRule:
    start = window_minutes(schedule)
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
    rule: _BackupRule = {
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


def _rules(ctx: _Ctx) -> tuple[list[_BackupRule], list[dict[str, str]]]:
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
    vaults: list[dict[str, str]] = []
    for index, tier in enumerate(tiers[1:], start=1):
        action, vault = _copy_action(ctx, tier, index)
        if vault not in vaults:
            vaults.append(vault)
        if _same_every(tier.every, policy.schedule):
            main.setdefault("CopyActions", []).append(action)
            continue
        schedule = schedule_of(tier.every, policy.schedule)
        adverb = schedule.cadence.adverb if schedule.cadence else "scheduled"
        rule = _rule(
            ctx,
            name=safe_name(f"{tier.name}-{adverb}", r"[^A-Za-z0-9_.-]", 50),
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


def _restore_testing(
    ctx: _Ctx, targets: Sequence[tuple[int, TargetSpec]], main: _BackupRule
) -> tuple[dict[str, object], list[dict[str, object]]]:
    policy = ctx.policy
    verification = policy.verification
    schedule = schedule_of(verification.restore_test_every, policy.schedule)
    plan_name = safe_name(f"backuppolicy_{policy.name}", r"[^A-Za-z0-9_]", 50)
    point_types = ["SNAPSHOT", "CONTINUOUS"] if ctx.continuous else ["SNAPSHOT"]
    plan: dict[str, object] = {
        "RestoreTestingPlanName": plan_name,
        "ScheduleExpression": aws_cron(schedule, path="verification.restore_test_every"),
        "ScheduleExpressionTimezone": schedule.tz,
        "StartWindowHours": max(1, window_minutes(schedule) // 60),
        "RecoveryPointSelection": {
            "Algorithm": "LATEST_WITHIN_WINDOW",
            "IncludeVaults": [_vault_arn(ctx.region, ctx.account, ctx.vault_name, ctx.partition)],
            "RecoveryPointTypes": point_types,
            "SelectionWindowDays": min(_MAX_SELECTION_WINDOW, main["Lifecycle"]["DeleteAfterDays"]),
        },
    }
    by_type: dict[str, tuple[AwsBackupMapping, list[str]]] = {}
    for _, spec in targets:
        mapping = aws_backup_of(spec)
        if mapping is not None and mapping.resource_type is not None:
            arn = mapping.arn(
                spec.settings, partition=ctx.partition, region=ctx.region, account=ctx.account
            )
            by_type.setdefault(mapping.resource_type, (mapping, []))[1].append(arn)
    selections: list[dict[str, object]] = []
    for resource_type, (mapping, arns) in by_type.items():
        selection: dict[str, object] = {
            "RestoreTestingSelectionName": safe_name(
                f"{resource_type.lower()}_{policy.name}", r"[^A-Za-z0-9_]", 50
            ),
            "ProtectedResourceType": resource_type,
            "IamRoleArn": ctx.role,
            "ProtectedResourceArns": sorted(arns),
        }
        overrides = dict(mapping.restore_overrides(IsolationProfile(**verification.isolation)))
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
    ``VaultLock`` (``PutBackupVaultLockConfiguration`` or ``None``; by default the first tier's
    ``lock``, see `vault_lock_for`), ``CopyVaultLocks`` (the same for every copy tier with a
    ``lock``, with its ``Region`` and ``Account``), ``BackupPlan``
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
    name = vault_name or safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 50)
    role = iam_role_arn or (
        f"arn:{partition}:iam::{account}:role/service-role/AWSBackupDefaultServiceRole"
    )
    first = policy.tiers[0] if policy.tiers else None
    if vault_lock is None and first is not None and first.lock is not None and first.lock.enabled:
        vault_lock = vault_lock_for(first.lock, first.retention or policy.retention)
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
    vault: dict[str, object] = {
        "BackupVaultName": name,
        "BackupVaultTags": {TAG_POLICY: policy.name},
    }
    key = _kms_arn(kms_key_arn or tier_key, plan_region, account, partition)
    if key:
        vault["EncryptionKeyArn"] = key
    resources = sorted(
        str(resource_arn(spec, region=plan_region, account_id=account, partition=partition))
        for _, spec in targets
    )
    selection: dict[str, object] = {
        "SelectionName": safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 50),
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
    copy_locks = _copy_vault_locks(ctx, notes)
    testing_plan: dict[str, object] | None = None
    testing_selections: list[dict[str, object]] = []
    if restore_testing:
        testing_plan, testing_selections = _restore_testing(ctx, targets, rules[0])
    return {
        "Region": plan_region,
        "BackupVault": vault,
        "CopyVaults": copy_vaults,
        "VaultLock": lock,
        "CopyVaultLocks": copy_locks,
        "BackupPlan": {
            "BackupPlanName": safe_name(f"backuppolicy-{policy.name}", r"[^A-Za-z0-9_.-]", 50),
            "Rules": rules,
        },
        "BackupSelection": selection,
        "RestoreTestingPlan": testing_plan,
        "RestoreTestingSelections": testing_selections,
        "Warnings": notes,
    }


# --------------------------------------------------------------------------------------------
# Apply


def apply_aws_backup(
    policy: Policy,
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    clients: Mapping[str, BaseClient] | None = None,
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
    backend = BackupClient(
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
    return apply_document(
        backend, document, parts, policy=policy.name, account=options["account_id"]
    )
