"""The human policy document: `render_markdown` writes a `Policy` as Markdown.

The document follows the sections of the written policy (schedule, retention, testing,
integrity, automation, manual backups, S3, EC2, restores, recovery), and every number in it
comes from the `Policy` object, so the document cannot drift from the code.
`Policy.to_markdown` calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from backuppolicy.core.model import TAG_HOLD, TAG_POLICY, TAG_TARGET
from backuppolicy.core.schedule import Cadence, rolling_slots
from backuppolicy.core.selector import RESOURCE_TYPES

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.specs import TargetSpec

__all__ = ["render_markdown"]


# --------------------------------------------------------------------------------------------
# The human policy document.

_KIND_WORDS: Final = {
    "rds-instance": "RDS database instance",
    "aurora-cluster": "Aurora database cluster",
    "ec2-instance": "EC2 instance (all its EBS volumes)",
    "ebs-volume": "EBS volume",
    "s3-bucket": "S3 assets (versioned bucket)",
    "directory": "directory (configuration files, application code)",
    "aws-backup": "resource protected by AWS Backup",
}
_RESTORE_ORDER: Final = {
    "rds-instance": 0,
    "aurora-cluster": 0,
    "aws-backup": 1,
    "ebs-volume": 1,
    "ec2-instance": 2,
    "s3-bucket": 3,
    "directory": 4,
}
_RESTORE_WORDS: Final = {
    "rds-instance": "restore the DB instance from its snapshot (a new instance), then point the "
    "application at it or rename it into place",
    "aurora-cluster": "restore the cluster from its cluster snapshot and add an instance to it",
    "ec2-instance": "create volumes from the instance's snapshots (or launch from its image) and "
    "attach them in place of the damaged ones",
    "ebs-volume": "create a volume from the snapshot in the same availability zone and attach it",
    "s3-bucket": "restore the prefix to a point in time from the object versions",
    "directory": "extract the archive, checking every file against its SHA-256 manifest",
    "aws-backup": "start an AWS Backup restore job from the recovery point",
}


_WEEKDAY_NAMES: Final = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
_KIND_SHORT: Final = {
    "rds-instance": "RDS instance",
    "aurora-cluster": "Aurora cluster",
    "ec2-instance": "EC2 instance",
    "ebs-volume": "EBS volume",
    "s3-bucket": "S3 bucket",
    "directory": "directory",
    "aws-backup": "AWS Backup resource",
}


def _value_words(value: object) -> str:
    """Settings values in words: lists joined by commas, mappings as ``key=value``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _settings_words(settings: Mapping[str, object]) -> str:
    return "; ".join(f"{key} {_value_words(value)}" for key, value in settings.items())


def _md(text: object) -> str:
    """Escape a value for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _kind_words(kind: str) -> str:
    return _KIND_WORDS.get(kind, f"{kind} (plugin)")


def _kinds_of(target: TargetSpec) -> tuple[str, ...]:
    """The kinds of resource a target protects: its own, or its selector's (all it can find)."""
    if target.selector is None:
        return (target.kind,)
    return target.selector.resource_types or tuple(RESOURCE_TYPES)


def _short_kind(target: TargetSpec) -> str:
    if target.selector is None:
        return _KIND_SHORT.get(target.kind, target.kind) + " "
    return ""


def _what(target: TargetSpec) -> str:
    if target.selector is None:
        return _kind_words(target.kind)
    kinds = " or ".join(_KIND_SHORT.get(kind, kind) for kind in _kinds_of(target))
    return f"every {kinds} found at run time"


def _where(target: TargetSpec) -> str:
    """The resource column: the resource (or what the selector finds), and its account."""
    if target.account is None:
        return target.resource
    return f"{target.resource}, in {target.account.describe()}"


def _md_discovery(policy: Policy, policy_file: str) -> list[str]:
    """Selector targets and targets in other accounts, in words (nothing when there are none)."""
    found = [t for t in policy.targets if t.selector is not None]
    remote = [t for t in policy.targets if t.account is not None]
    lines: list[str] = []
    if found:
        lines.append(
            "- 1.1.1 Some targets are found at run time, so new resources are protected from the "
            "next run on and removed ones stop being expected. Each resource found becomes a "
            "target named `<target>-<resource>` with the target's schedule, tiers and retention "
            f"(`backuppolicy targets --policy {policy_file}` lists what they find now):"
        )
        lines += [
            f"  - {t.name}: {_md_line(_where(t))}" + ("" if t.enabled else " (disabled)")
            for t in found
        ]
    if remote:
        lines.append(
            "- 1.1.2 Targets in other AWS accounts are reached by assuming a role there "
            "(STS AssumeRole, once per account and region per run); a refused account fails "
            "only its own targets:"
        )
        lines += [f"  - {t.name}: {_md_line(t.account.describe())}" for t in remote if t.account]
    return [*lines, ""] if lines else []


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return [*lines, ""]


def _md_header(policy: Policy, policy_file: str) -> list[str]:
    lines = [f"# Infrastructure Backups and Restoration Policy: {policy.name}", ""]
    if policy.description:
        lines += [policy.description.strip(), ""]
    lines += [
        (
            f"> This document is generated from `{policy_file}` by backuppolicy "
            f"(`backuppolicy doc --policy {policy_file}`). Change the policy file, not this "
            "document: every number below is the one the code runs with."
        ),
        "",
    ]
    return lines


def _md_schedule(policy: Policy, policy_file: str) -> list[str]:
    enabled = [t for t in policy.targets if t.enabled]
    kinds = (
        ", ".join(dict.fromkeys(_kind_words(kind) for t in enabled for kind in _kinds_of(t)))
        or "none"
    )
    lines = [
        "## 1. Backup Schedule",
        "",
        (
            f"- 1.1 Backups of {len(enabled)} critical infrastructure "
            f"component{'' if len(enabled) == 1 else 's'} run "
            f"{policy.schedule.describe()}: {kinds}. The targets:"
        ),
        "",
    ]
    lines += _table(
        ("Target", "What", "Application", "Resource", "Schedule", "Tiers", "Retention"),
        (
            (
                t.name + ("" if t.enabled else " (disabled)"),
                _what(t),
                t.application,
                _where(t),
                policy.schedule_for(t).describe(),
                ", ".join(tier.name for tier in policy.tiers_for(t)) or "in place",
                policy.retention_for(t).describe() if t.retention else "policy default (section 2)",
            )
            for t in policy.targets
        ),
    )
    lines += _md_discovery(policy, policy_file)
    window = policy.schedule.window
    grace = policy.verification.freshness_grace
    lines += [
        (
            "- 1.2 Backups are automated (section 5) and run off-peak, "
            f"{policy.schedule.describe()}. A target with no successful backup "
            f"{window.describe()} (the start window) plus {grace.describe()} (the grace) after a "
            "scheduled run is overdue, and notified (1.7)."
        ),
        (
            "- 1.3 Manual backups are taken as needed, with the same tags and retention as "
            "scheduled ones (section 6)."
        ),
    ]
    if policy.tiers:
        lines.append(f"- 1.4 Backups are kept in {len(policy.tiers)} tiers, for redundancy:")
        lines += [f"  - {_md_line(tier.describe())}" for tier in policy.tiers]
    else:
        lines.append(
            "- 1.4 Backups are kept in one tier: where each backend creates them "
            "(no copy tiers are configured)."
        )
    lines += _md_rolling(policy)
    lines.append(
        f"- 1.6 The schedule is reviewed as a change to `{policy_file}`; this document is "
        "regenerated from it, so it always states the schedule that runs."
    )
    if policy.notifications:
        lines.append("- 1.7 Key personnel are notified of failed backups and other issues:")
        lines += [f"  - {_md_line(spec.describe())}" for spec in policy.notifications]
    else:
        lines.append(
            "- 1.7 No notifications are configured: failures show only in the run report "
            "and the exit status of `backuppolicy backup`."
        )
    lines += ["", "Recovery objectives per application:", ""]
    explicit = {o.application for o in policy.objectives}
    lines += _table(
        ("Application", "Targets", "RPO", "RTO"),
        (
            (
                app,
                ", ".join(t.name for t in policy.targets_for(app)),
                policy.objective_for(app).rpo.describe()
                + ("" if app in explicit else " (from the schedule)"),
                rto.describe() if (rto := policy.objective_for(app).rto) else "not set",
            )
            for app in policy.applications
        ),
    )
    return lines


def _md_rolling(policy: Policy) -> list[str]:
    period = policy.rolling_period
    names = [t.name for t in policy.targets if t.enabled]
    if period is None or not names:
        return ["- 1.5 Every run takes a full backup of every enabled target."]
    slots = rolling_slots(names, period=period)
    lines = [
        (
            "- 1.5 Backups are performed on a rolling basis: a full backup of every component "
            f"is completed once every {period.value}, each target on its own day of the "
            f"{period.value} (the other runs are incremental):"
        ),
    ]
    ordered = sorted(names, key=lambda n: (slots[n], names.index(n)))
    lines += [f"  - {name}: {_slot_words(period, slots[name])}" for name in ordered]
    return lines


def _slot_words(period: Cadence, slot: int) -> str:
    if period is Cadence.DAY:
        return "every day"
    if period is Cadence.WEEK:
        return _WEEKDAY_NAMES[slot]
    return f"day {slot + 1} of the {period.value}"


def _md_line(text: str) -> str:
    return text.replace("\n", " ")


def _md_retention(policy: Policy, policy_file: str) -> list[str]:
    lines = [
        "## 2. Backup Retention",
        "",
        f"- 2.1 Backups are retained by this rule: {_md_line(policy.retention.describe())}.",
    ]
    lines += [
        f"  - Copies in tier {tier.name} are retained by: {_md_line(tier.retention.describe())}."
        for tier in policy.tiers
        if tier.retention is not None
    ]
    lines += [
        f"  - Backups of {t.name} are retained by: {_md_line(t.retention.describe())}."
        for t in policy.targets
        if t.retention is not None
    ]
    lines += [
        (
            "- 2.2 Backups outside the retention are deleted automatically by "
            f"`backuppolicy prune --policy {policy_file} --apply` (without `--apply` it only shows "
            "the plan, with the reason for every decision), unless they are required for "
            "regulatory or legal purposes (2.3). Whatever the rules say, the newest completed "
            "backup of each target is kept, and only backups this policy created (tagged "
            f"`{TAG_POLICY}={policy.name}` and `{TAG_TARGET}`) are ever deleted."
        ),
        (
            "- 2.3 A backup required for regulatory or legal purposes is put under legal hold: "
            f"the tag `{TAG_HOLD}` with the value `<reference>|<since>|<reason>` "
            "(`backuppolicy.LegalHold(...).to_tag()`). A held backup is never deleted, stays "
            "where it is stored (encrypted, access-controlled, see 7.5 and 8.3) and is listed "
            "with its hold in every retention plan and audit report."
        ),
        f"- 2.4 The retention is reviewed as a change to `{policy_file}`.",
        "",
    ]
    return lines


def _md_testing(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    lines = [
        "## 3. Backup Testing Process",
        "",
        (
            "- 3.1 Restore tests prove that backups can be restored: a recovery point is "
            "restored into an isolated environment, checked, and torn down."
        ),
        f"- 3.2 At least one restore test runs every {v.restore_test_every.value}.",
        (
            "- 3.3 Every application is restore-tested at least once per "
            f"{v.restore_test_per_application_every.value}:"
        ),
    ]
    lines += [
        f"  - {app}: {', '.join(t.name for t in policy.targets_for(app))}"
        for app in policy.applications
    ]
    isolation = _settings_words(v.isolation)
    lines += [
        "- 3.4 Restore tests run with "
        f"`backuppolicy restore-test --policy {policy_file}` (by a Support team engineer or "
        "on a schedule). Restored resources go into an isolated environment"
        + (f" ({_md_line(isolation)})" if isolation else "")
        + ": no public access, a dedicated network, tags that let a sweeper remove "
        "leftovers; they are torn down after the test, even when it fails.",
        (
            "- 3.5 Every restore test is recorded in the backup testing log: date and time, "
            "target, recovery point, result, and any issues or errors."
        ),
        (
            f"- 3.6 `backuppolicy report --policy {policy_file}` lists the testing log and flags "
            "applications whose restore test is overdue."
        ),
        f"- 3.7 The testing policy is reviewed as a change to `{policy_file}`.",
        "",
    ]
    return lines


def _md_integrity(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    tiers = v.integrity_covers_tiers or tuple(tier.name for tier in policy.tiers)
    where = f"in tiers {', '.join(tiers)}" if tiers else "where they are stored"
    return [
        "## 4. Backup Integrity Verification",
        "",
        (
            f"- 4.1 Integrity checks run every {v.integrity_check_every.value} "
            f"(`backuppolicy verify --policy {policy_file}`), so backups are free from corruption "
            "and can be relied upon."
        ),
        f"- 4.2 They cover every copy of every target {where}.",
        "- 4.3 What is checked: the backup completed; archives match their SHA-256 manifest; "
        "snapshots and object versions are complete and readable"
        + (", and encrypted at rest" if v.require_encryption else "")
        + (", and not publicly accessible" if v.require_private else "")
        + ". Backups are also checked for freshness: the newest backup of each target must be "
        f"no older than its schedule allows, plus a grace of {v.freshness_grace.describe()}.",
        "",
    ]


def _md_automating(policy: Policy, policy_file: str) -> list[str]:
    schedule = policy.schedule
    return [
        "## 5. Automating Backups",
        "",
        (
            f"- 5.1 The scheduler runs `backuppolicy backup --policy {policy_file}` "
            f"{schedule.describe()}; as a crontab entry:"
        ),
        "",
        "  ```",
        f"  CRON_TZ={schedule.tz}",
        (
            f"  {schedule.cron} backuppolicy backup --policy {policy_file} "
            f"&& backuppolicy prune --policy {policy_file} --apply"
        ),
        "  ```",
        "",
        "- 5.2 From Python (a Lambda function, an Airflow task):",
        "",
        "  ```python",
        "  from datetime import UTC, datetime",
        "  import backuppolicy as bp",
        "",
        f'  policy = bp.Policy.from_file("{policy_file}")',
        "  report = bp.backup(policy, now=datetime.now(UTC))",
        "  bp.apply(bp.plan_retention(policy, now=datetime.now(UTC)))",
        "  ```",
        "",
        (
            "- 5.3 Runs are idempotent: a retried or re-run job reuses the backup it already "
            "made instead of making a duplicate."
        ),
        (
            f"- 5.4 `backuppolicy export aws-backup --policy {policy_file}` writes the equivalent "
            "AWS Backup plan, for accounts that prefer AWS Backup to run the schedule."
        ),
        "",
    ]


def _md_manual(policy: Policy, policy_file: str) -> list[str]:
    example = policy.targets[0].name if policy.targets else "TARGET"
    return [
        "## 6. Manually Performing Backups",
        "",
        "- 6.1 Take a backup of one target now (before a risky change, or after a failed run):",
        "",
        "  ```",
        f'  backuppolicy backup --policy {policy_file} --target {example} --reason "before upgrade"',
        "  ```",
        "",
        (
            f"- 6.2 Without `--target`, every enabled target of the policy is backed up "
            f"({len([t for t in policy.targets if t.enabled])} targets)."
        ),
        (
            "- 6.3 Manual backups carry the same ownership tags as scheduled ones, and the reason "
            "in the tag `backuppolicy:reason`; the same retention applies to them."
        ),
        "",
    ]


def _md_s3(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    buckets = [t for t in policy.targets if t.kind == "s3-bucket"]
    lines = ["## 7. S3 Asset Versioning and Verification", ""]
    if not buckets:
        return [*lines, "This policy has no S3 targets.", ""]
    lines += _table(
        ("Target", "Bucket", "Prefix", "Versioning", "Encryption", "Public access"),
        (
            (
                t.name,
                t.settings.get("bucket", ""),
                t.settings.get("prefix", "") or "(whole bucket)",
                "required" if t.settings.get("versioning", True) else "not required",
                t.settings.get("encryption", "required" if v.require_encryption else "any"),
                "blocked"
                if t.settings.get("block_public_access", v.require_private)
                else "not checked",
            )
            for t in buckets
        ),
    )
    lines += [
        (
            "- 7.1 S3 assets are versioned, so every version of the data is retained and can be "
            "restored; `backuppolicy verify` fails if versioning is suspended on a bucket that "
            "requires it."
        ),
        (
            "- 7.2 The versions are checked for integrity every "
            f"{v.integrity_check_every.value} (section 4): every version listed is "
            "complete and readable."
        ),
        f"- 7.3 These settings are reviewed as a change to `{policy_file}`.",
        (
            f"- 7.4 Restore a prefix to a point in time with `backuppolicy restore --policy "
            f"{policy_file} --target {buckets[0].name} --at <time>` or "
            "`backuppolicy.aws.S3Bucket(bucket, prefix=...).restore_to_time(when, dest_bucket=..., "
            "dest_prefix=...)`; the restored objects are then verified."
        ),
        "- 7.5 "
        + (
            "Encryption at rest is required"
            if v.require_encryption
            else "Encryption is not checked"
        )
        + " and "
        + ("public access must be blocked" if v.require_private else "public access is not checked")
        + "; `backuppolicy verify` checks both.",
        "",
    ]
    return lines


def _md_ec2(policy: Policy, policy_file: str) -> list[str]:
    v = policy.verification
    machines = [t for t in policy.targets if t.kind in ("ec2-instance", "ebs-volume")]
    lines = ["## 8. EC2 Snapshots", ""]
    if not machines:
        return [*lines, "This policy has no EC2 instances or EBS volumes.", ""]
    lines += [
        (
            "- 8.1 EC2 snapshots back up these virtual machines and volumes, so they can be "
            "restored quickly after a failure:"
        ),
    ]
    lines += [f"  - {t.name}: {_kind_words(t.kind)} {t.resource}" for t in machines]
    lines += [
        (
            "- 8.2 The snapshots are checked for integrity every "
            f"{v.integrity_check_every.value} (`backuppolicy verify --policy "
            f"{policy_file}`): every snapshot of a backup completed, none is missing."
        ),
        "- 8.3 "
        + ("Snapshots must be encrypted" if v.require_encryption else "Encryption is not checked")
        + " and "
        + ("must not be shared publicly" if v.require_private else "sharing is not checked")
        + "; copies to other tiers are encrypted with the tier's KMS key.",
        "",
    ]
    return lines


def _md_restores(policy: Policy, policy_file: str) -> list[str]:
    example = policy.targets[0].name if policy.targets else "TARGET"
    lines = [
        "## 9. Performing Restores",
        "",
        (
            "- 9.1 Pick the recovery point: `backuppolicy report --policy "
            f"{policy_file}` lists the points of every target, newest first, with their tier."
        ),
        (
            f"- 9.2 Restore it: `backuppolicy restore --policy {policy_file} --target {example} "
            "--point <id>` (or `--at <time>` for the newest point before a time). Per kind:"
        ),
    ]
    kinds = dict.fromkeys(kind for t in policy.targets for kind in _kinds_of(t))
    lines += [
        f"  - {_kind_words(kind)}: {_RESTORE_WORDS.get(kind, 'see the plugin documentation')}"
        for kind in kinds
    ]
    lines += [
        (
            "- 9.3 A restore never overwrites the damaged resource: it creates a new one next to "
            "it, which is switched in once verified."
        ),
        "- 9.4 The restore must meet the application's RTO (section 1, recovery objectives).",
        "",
    ]
    return lines


def _md_recovery(policy: Policy, policy_file: str) -> list[str]:
    lines = [
        "## 10. System Restart and Recovery Procedures",
        "",
        (
            "To recover an application, restore its targets in this order (data first, then "
            "machines, then assets, then configuration and code), restart it, and verify it:"
        ),
        "",
    ]
    for number, app in enumerate(policy.applications, start=1):
        objective = policy.objective_for(app)
        rto = f", RTO {objective.rto.describe()}" if objective.rto else ""
        lines.append(f"- 10.{number} {app} (RPO {objective.rpo.describe()}{rto}):")
        ordered = sorted(
            policy.targets_for(app),
            key=lambda t: _RESTORE_ORDER.get(_kinds_of(t)[0], len(_RESTORE_ORDER)),
        )
        step = 0
        for step, target in enumerate(ordered, start=1):
            name = target.name if target.selector is None else f"{target.name}-<resource>"
            lines.append(
                f"  {step}. Restore {name} "
                f"({_short_kind(target)}{target.resource}): "
                f"`backuppolicy restore --policy {policy_file} --target {name}`."
            )
        lines += [
            f"  {step + 1}. Restart {app} against the restored resources.",
            (
                f"  {step + 2}. Verify it: `backuppolicy restore-test --policy {policy_file} "
                f"--application {app}` checks, and the result goes into the testing log."
            ),
        ]
    if not policy.applications:
        lines.append("This policy has no targets.")
    return [*lines, ""]


def render_markdown(policy: Policy, policy_file: str) -> str:
    """The policy document of *policy* in Markdown; *policy_file* is the file its commands name."""
    lines = _md_header(policy, policy_file)
    for section in (
        _md_schedule,
        _md_retention,
        _md_testing,
        _md_integrity,
        _md_automating,
        _md_manual,
        _md_s3,
        _md_ec2,
        _md_restores,
        _md_recovery,
    ):
        lines += section(policy, policy_file)
    return "\n".join(lines).rstrip("\n") + "\n"
