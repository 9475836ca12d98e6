"""Metadata checks: what the backends report about a point or a target, without reading data.

Completed, encrypted, not public, fresh, a recent off-site copy, S3 versioning and Object Lock,
and RDS's own backup settings against the policy (`expected_rds_settings`). Each is a
`~backuppolicy.checks.verify.Verifier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from backuppolicy.checks._common import (
    Reporter,
    newest_good,
    points_of,
    region_of,
    spec_of,
    to_duration,
)
from backuppolicy.core.capabilities import (
    BucketSettingsDrift,
    KmsKeyComparison,
    encryption_mismatch,
)
from backuppolicy.core.durations import Duration, format_duration
from backuppolicy.core.exceptions import BackupPolicyError, PolicyError
from backuppolicy.core.model import RecoveryPoint, Status
from backuppolicy.core.results import CheckResult, CheckStatus
from backuppolicy.core.retention import AnyOf, MaxAge
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.targets import (
    BackupTarget,
    BucketSettings,
    ObjectVersionPoints,
    PointSharing,
    SettingsDrift,
)

if TYPE_CHECKING:  # verify.py re-exports these checks
    from backuppolicy.checks.verify import VerifyContext
    from backuppolicy.core.policy import Policy, TierSpec
    from backuppolicy.core.retention import RetentionRule

__all__ = [
    "BucketSettingMatchesPolicy",
    "Completed",
    "Encrypted",
    "Fresh",
    "HasOffsiteCopy",
    "NotPublic",
    "ObjectLock",
    "SettingsMatchPolicy",
    "VersioningEnabled",
    "expected_bucket_settings",
    "expected_rds_settings",
]

_RDS_MAX_RETENTION = 35


@attrs.frozen
class Completed:
    """The point is completed: state available/completed and, where reported, progress 100%.

    Pending points give `CheckStatus.WARN`; failed and partial points `CheckStatus.FAIL`.

    Example:
        >>> from datetime import datetime, UTC
        >>> from backuppolicy.testing import MemoryTarget
        >>> db = MemoryTarget("db", clock=lambda: datetime(2026, 11, 26, 4, tzinfo=UTC))
        >>> point = db.create_backup()
        >>> from backuppolicy.checks.verify import VerifyContext
        >>> ctx = VerifyContext(now=datetime(2026, 11, 26, 5, tzinfo=UTC))
        >>> Completed().verify(db, point, ctx).status
        <CheckStatus.PASS: 'pass'>

    Attributes:
        name: Name of the check.
    """

    name: str = "completed"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Check the point's status (and the progress of each snapshot of an EC2 backup)."""
        result = Reporter(self.name, target, point, context)
        if point is None:
            return result(CheckStatus.SKIPPED, "no point to check")
        issues: list[str] = []
        evidence: dict[str, object] = {"status": point.status.value}
        snapshots: list[dict[str, object]] = []
        for member in point.details.get("snapshots", ()) or ():
            if not isinstance(member, Mapping):
                continue
            progress = member.get("progress")
            state = member.get("state")
            snapshots.append(
                {"snapshot_id": member.get("snapshot_id"), "state": state, "progress": progress}
            )
            if progress not in (None, "100%") and point.status is Status.COMPLETED:
                issues.append(f"snapshot {member.get('snapshot_id')}: progress {progress}")
        if snapshots:
            evidence["snapshots"] = snapshots
        if "rds_status" in point.details:
            evidence["rds_status"] = point.details.get("rds_status")
        if point.status is Status.PENDING:
            status, details = CheckStatus.WARN, "still pending"
        elif point.status is not Status.COMPLETED:
            status, details = CheckStatus.FAIL, f"not restorable: {point.status.value}"
            issues.insert(0, f"status {point.status.value}")
        elif issues:
            status, details = CheckStatus.FAIL, "completed, but not every snapshot is at 100%"
        else:
            status, details = CheckStatus.PASS, "completed"
        return result(status, details, issues=issues, evidence=evidence)


@attrs.frozen
class Encrypted:
    """The point is encrypted at rest; the evidence names the KMS key.

    S3 versions whose listing does not say are looked up (``HeadObject``); archives ask their
    store. Unknown encryption gives `CheckStatus.WARN`.

    Attributes:
        required: Whether an unencrypted point fails (else it warns).
        name: Name of the check.
    """

    required: bool = True
    name: str = "encrypted"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Read the point's encryption and its key."""
        result = Reporter(self.name, target, point, context)
        if point is None:
            return result(CheckStatus.SKIPPED, "no point to check")
        try:
            encrypted, key, how = self._lookup(target, point)
            algorithm = _algorithm_of(point, how)
            expected, expected_key = _expected_encryption(context, target)
            problem = (
                encryption_mismatch(
                    expected,
                    expected_key,
                    algorithm,
                    str(key) if isinstance(key, str) else None,
                    target.same_kms_key if isinstance(target, KmsKeyComparison) else None,
                )
                if encrypted and expected is not None and algorithm is not None
                else None
            )
        except BackupPolicyError as exc:
            return result.error(exc)
        evidence: dict[str, object] = {
            "encrypted": encrypted,
            "kms_key_id": key,
            "source": how,
            "algorithm": algorithm,
            "verified": bool(encrypted),
        }
        if expected is not None:
            evidence["expected"] = {"encryption": expected, "kms_key_id": expected_key}
        client = point.details.get("client_encryption")
        declared = point.details.get("declared_encryption")
        issues: list[str] = []
        if problem is not None and "actual none" in problem and not key:
            status = CheckStatus.WARN
            details = (
                f"encrypted, but the KMS key is not reported (the policy names {expected_key})"
            )
            issues = [details]
        elif problem is not None:
            status, details, issues = CheckStatus.FAIL, problem, [problem]
        elif encrypted and isinstance(client, Mapping):
            evidence["client_encryption"] = dict(client)
            status = CheckStatus.PASS
            details = f"encrypted client-side ({client.get('scheme')}, key {client.get('key')})"
        elif encrypted:
            details = (
                f"encrypted with KMS key {key}" if key else "encrypted (no customer key named)"
            )
            status = CheckStatus.PASS
        elif declared:
            # The policy states it and nothing here can read a disk's encryption: a PASS that
            # says so (evidence verified=False), so a declaration is never read as a proof.
            evidence.update(declared=f"encrypted {declared} (policy declaration)", verified=False)
            status = CheckStatus.PASS
            details = (
                f"declared, not verified: the store {point.location} is declared on an "
                f"encrypted {declared} by the policy; the archive itself is not encrypted"
            )
        elif encrypted is None:
            status, details, issues = CheckStatus.WARN, "encryption unknown", ["encryption unknown"]
        else:
            status = CheckStatus.FAIL if self.required else CheckStatus.WARN
            details, issues = "not encrypted at rest", ["not encrypted at rest"]
        return result(status, details, issues=issues, evidence=evidence)

    @staticmethod
    def _lookup(target: BackupTarget, point: RecoveryPoint) -> tuple[bool | None, object, str]:
        key = point.details.get("kms_key_id") or point.details.get("kms_key_ids") or None
        if point.encrypted is not None:
            return point.encrypted, key, "point"
        if isinstance(target, ObjectVersionPoints) and (found := target.point_object(point)):
            bucket, object_key, version = found
            head = target.object_version_head(
                bucket, object_key, version, region=region_of(point, target)
            )
            sse = head.get("ServerSideEncryption") or head.get("SSECustomerAlgorithm")
            how = f"HeadObject ({sse})" if sse else "HeadObject"
            return bool(sse), head.get("SSEKMSKeyId") or sse, how
        for store in getattr(target, "stores", ()) or ():
            if getattr(store, "url", None) == point.location:
                encrypted = store.encrypted
                return encrypted, getattr(store, "kms_key_id", None), f"store {store.url}"
        return None, key, "unknown"


def _algorithm_of(point: RecoveryPoint, how: str) -> str | None:
    """The server-side encryption algorithm of *point*, where its metadata tells it."""
    if point.details.get("client_encryption"):
        return None  # client-side: no server-side algorithm to compare with the policy's
    if how.startswith("HeadObject ("):
        return how[len("HeadObject (") : -1]  # the ServerSideEncryption that S3 reported
    sse = point.details.get("encryption") or point.details.get("sse")
    if isinstance(sse, str) and sse:
        return sse
    if point.kind == "archive" or how.startswith("HeadObject"):
        return None  # an archive store that reports no algorithm: nothing to compare
    return "aws:kms"  # EBS and RDS encrypt with KMS keys only


def _expected_encryption(
    context: VerifyContext, target: BackupTarget
) -> tuple[str | None, str | None]:
    """The policy's ``encryption`` of *target* and, for SSE-KMS, its ``kms_key_id``."""
    spec = spec_of(context.policy, target)
    if spec is None:
        return None, None
    wanted = spec.settings.get("encryption")
    if not isinstance(wanted, str):
        return None, None  # a directory's is a key reference: checked by the archive itself
    key = spec.settings.get("kms_key_id")
    return wanted, str(key) if key and wanted != "AES256" else None


@attrs.frozen
class NotPublic:
    """The point is not shared with everyone.

    EBS snapshots: ``createVolumePermission`` has no ``group=all``
    (``DescribeSnapshotAttribute``, each snapshot of an EC2 backup); RDS snapshots: the
    ``restore`` attribute does not contain ``all`` (``DescribeDBSnapshotAttributes`` or the
    cluster variant); S3 (a version, a manifest, or the bucket when no point is given): the
    bucket's public access block sets all four flags. Non-AWS targets are skipped.

    Attributes:
        name: Name of the check.
    """

    name: str = "not-public"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Read the sharing attributes of the point (or the S3 bucket)."""
        result = Reporter(self.name, target, point, context)
        if not isinstance(target, PointSharing):
            return result(CheckStatus.SKIPPED, "not an AWS target")
        try:
            found = target.point_sharing(point, region=region_of(point, target))
        except BackupPolicyError as exc:
            return result.error(exc)
        if found is None:
            why = (
                "no point to check"
                if point is None
                else f"no sharing check for kind {point.kind!r}"
            )
            return result(CheckStatus.SKIPPED, why)
        evidence, issues = found
        status = CheckStatus.FAIL if issues else CheckStatus.PASS
        details = "; ".join(issues) if issues else "not shared publicly"
        return result(status, details, issues=issues, evidence=evidence)


@attrs.frozen
class Fresh:
    """The newest completed backup of the target is younger than *max_age*.

    The default *max_age* is the application's RPO (`backuppolicy.Policy.objective_for`, 24
    hours for daily backups) plus ``verification.freshness_grace`` of the policy in the context.

    Example:
        >>> from datetime import datetime, UTC
        >>> from backuppolicy.testing import MemoryTarget
        >>> db = MemoryTarget("db", clock=lambda: datetime(2026, 11, 25, 4, tzinfo=UTC))
        >>> _ = db.create_backup()
        >>> from backuppolicy.checks.verify import VerifyContext
        >>> ctx = VerifyContext(now=datetime(2026, 11, 26, 7, tzinfo=UTC))
        >>> Fresh("26h").verify(db, None, ctx).details
        'newest completed backup bp-db-20261125t040000z is 1 d 3 h old (more than 26h)'

    Attributes:
        max_age: The largest acceptable age (a `~backuppolicy.Duration` or ``"26h"``), or
            ``None`` for the policy's RPO plus grace.
        tier: Only points of this tier count (default: any tier).
        name: Name of the check.
    """

    max_age: Duration | None = attrs.field(default=None, converter=to_duration)
    tier: str | None = None
    name: str = "fresh"
    scope: ClassVar[str] = "target"

    def _cutoff(self, target: BackupTarget, context: VerifyContext) -> tuple[datetime, str]:
        if self.max_age is not None:
            cutoff = self.max_age.before(context.now)
            return cutoff or datetime.min.replace(tzinfo=UTC), str(self.max_age)
        policy = context.policy
        spec = spec_of(policy, target)
        if spec is None or policy is None:  # no spec without a policy
            raise PolicyError.for_field(
                "max_age", "a duration, or a policy with this target in the context", None
            )
        rpo = policy.objective_for(spec.application).rpo
        grace = policy.verification.freshness_grace
        cutoff = rpo.before(context.now)
        cutoff = grace.before(cutoff) if cutoff is not None else None
        return cutoff or datetime.min.replace(tzinfo=UTC), f"RPO {rpo} + grace {grace}"

    def verify(
        self,
        target: BackupTarget,
        point: RecoveryPoint | None,  # noqa: ARG002 - a target-level check
        context: VerifyContext,
    ) -> CheckResult:
        """Find the newest completed backup and compare its age with the limit."""
        result = Reporter(self.name, target, None, context)
        cutoff, limit = self._cutoff(target, context)
        try:
            newest = newest_good(points_of(target, context), self.tier)
        except BackupPolicyError as exc:
            return result.error(exc)
        evidence: dict[str, object] = {
            "limit": limit,
            "cutoff": cutoff.isoformat(),
            "tier": self.tier,
        }
        if newest is None:
            return result(
                CheckStatus.FAIL,
                "no completed backup",
                issues=["no completed backup"],
                evidence=evidence,
            )
        age = context.now - newest.created_at
        evidence.update(
            {
                "newest": newest.id,
                "newest_created_at": newest.created_at.isoformat(),
                "age_seconds": age.total_seconds(),
            }
        )
        if newest.created_at >= cutoff:
            status, issues = CheckStatus.PASS, []
            details = f"newest completed backup {newest.id} is {format_duration(age)} old (within {limit})"
        else:
            status = CheckStatus.FAIL
            details = f"newest completed backup {newest.id} is {format_duration(age)} old (more than {limit})"
            issues = [details]
        return result(status, details, issues=issues, evidence=evidence)


def _copy_cutoff(tier_spec: TierSpec, policy: Policy, now: datetime) -> datetime | None:
    """Start of the previous cadence period (a copy of this period or the last one counts)."""
    every: object = tier_spec.every
    if isinstance(every, Cadence):
        tz = policy.timezone
        start = every.period_start(now, tz)
        return every.period_start(start - timedelta(microseconds=1), tz)
    if isinstance(every, Schedule):
        last = every.last_due(now)
        return every.last_due(last - timedelta(microseconds=1)) if last is not None else None
    return None  # pragma: no cover - TierSpec validates every


@attrs.frozen
class HasOffsiteCopy:
    """A recent completed copy exists in each copy tier of the target (e.g. weekly off-site).

    Without *within*, a copy made in the tier's current or previous cadence period counts (a
    weekly tier: this week or last week), less the policy's freshness grace.

    Attributes:
        within: How recent the copy must be, or ``None`` for the tier's cadence.
        tier: The tier to look in; ``None`` means every copy tier of the target in the policy
            (``"offsite"`` when there is no policy).
        name: Name of the check.
    """

    within: Duration | None = attrs.field(default=None, converter=to_duration)
    tier: str | None = None
    name: str = "offsite-copy"
    scope: ClassVar[str] = "target"

    def _tiers(
        self, target: BackupTarget, context: VerifyContext
    ) -> list[tuple[str, TierSpec | None]]:
        policy = context.policy
        spec = spec_of(policy, target)
        copy_tiers = (
            list(policy.copy_tiers_for(spec)) if spec is not None and policy is not None else []
        )
        if self.tier is not None:
            found = [t for t in copy_tiers if t.name == self.tier]
            return [(self.tier, found[0] if found else None)]
        if spec is None:
            return [("offsite", None)]
        return [(t.name, t) for t in copy_tiers]

    def verify(
        self,
        target: BackupTarget,
        point: RecoveryPoint | None,  # noqa: ARG002 - a target-level check
        context: VerifyContext,
    ) -> CheckResult:
        """Look for the newest completed point in each copy tier."""
        result = Reporter(self.name, target, None, context)
        tiers = self._tiers(target, context)
        if not tiers:
            return result(CheckStatus.SKIPPED, "the policy gives this target no copy tier")
        try:
            points = points_of(target, context)
        except BackupPolicyError as exc:
            return result.error(exc)
        issues: list[str] = []
        found: dict[str, dict[str, str | None]] = {}
        for name, tier_spec in tiers:
            if self.within is not None:
                cutoff = self.within.before(context.now)
            elif tier_spec is not None and context.policy is not None:  # a tier comes from it
                cutoff = _copy_cutoff(tier_spec, context.policy, context.now)
                if cutoff is not None:
                    cutoff = context.policy.verification.freshness_grace.before(cutoff)
            else:
                cutoff = None
            newest = newest_good(points, name)
            found[name] = {
                "newest": newest.id if newest else None,
                "created_at": newest.created_at.isoformat() if newest else None,
                "cutoff": cutoff.isoformat() if cutoff else None,
            }
            if newest is None:
                issues.append(f"no completed copy in tier {name!r}")
            elif cutoff is not None and newest.created_at < cutoff:
                issues.append(
                    f"newest copy in tier {name!r} ({newest.id}) is from "
                    f"{newest.created_at.isoformat()}, before {cutoff.isoformat()}"
                )
        status = CheckStatus.FAIL if issues else CheckStatus.PASS
        details = (
            "; ".join(issues)
            if issues
            else ("recent copy in " + ", ".join(f"{n} ({v['newest']})" for n, v in found.items()))
        )
        return result(status, details, issues=issues, evidence={"tiers": found})


def _s3_settings(target: BackupTarget) -> Any:
    return target.settings() if isinstance(target, BucketSettings) else None


def _bucket_settings(target: BackupTarget, result: Reporter) -> Any:
    """The bucket's settings, or the finished result: skipped (not a bucket) or an error."""
    try:
        settings = _s3_settings(target)
    except BackupPolicyError as exc:
        return result.error(exc)
    if settings is None:
        return result(CheckStatus.SKIPPED, "not an S3 bucket")
    return settings


def _bucket_flag(
    result: Reporter,
    evidence: dict[str, object],
    *,
    enabled: bool,
    passed: str,
    issue: str,
    failing: CheckStatus = CheckStatus.FAIL,
) -> CheckResult:
    """The result of a bucket setting that is on (*passed*) or off (*issue*, with *failing*)."""
    if enabled:
        return result(CheckStatus.PASS, passed, evidence=evidence)
    return result(failing, issue, issues=[issue], evidence=evidence)


@attrs.frozen
class VersioningEnabled:
    """S3 versioning is enabled on the target's bucket (seed §7.1). Other targets: skipped.

    Attributes:
        name: Name of the check.
    """

    name: str = "versioning"
    scope: ClassVar[str] = "target"

    def verify(
        self,
        target: BackupTarget,
        point: RecoveryPoint | None,  # noqa: ARG002 - a target-level check
        context: VerifyContext,
    ) -> CheckResult:
        """Read the bucket's versioning status."""
        result = Reporter(self.name, target, None, context)
        settings = _bucket_settings(target, result)
        if isinstance(settings, CheckResult):
            return settings
        evidence = {
            "bucket": settings.bucket,
            "versioning": settings.versioning,
            "mfa_delete": settings.mfa_delete,
        }
        return _bucket_flag(
            result,
            evidence,
            enabled=settings.versioned,
            passed=f"versioning enabled on {settings.bucket}",
            issue=f"versioning is {settings.versioning} on {settings.bucket}",
        )


@attrs.frozen
class ObjectLock:
    """S3 Object Lock is enabled on the target's bucket. Other targets: skipped.

    Attributes:
        required: Whether a bucket without Object Lock fails (else it warns).
        name: Name of the check.
    """

    required: bool = True
    name: str = "object-lock"
    scope: ClassVar[str] = "target"

    def verify(
        self,
        target: BackupTarget,
        point: RecoveryPoint | None,  # noqa: ARG002 - a target-level check
        context: VerifyContext,
    ) -> CheckResult:
        """Read the bucket's Object Lock configuration."""
        result = Reporter(self.name, target, None, context)
        settings = _bucket_settings(target, result)
        if isinstance(settings, CheckResult):
            return settings
        evidence = {
            "bucket": settings.bucket,
            "object_lock": settings.object_lock,
            "default_retention": dict(settings.object_lock_default),
        }
        return _bucket_flag(
            result,
            evidence,
            enabled=settings.object_lock,
            passed=f"Object Lock enabled on {settings.bucket}",
            issue=f"Object Lock is not enabled on {settings.bucket}",
            failing=CheckStatus.FAIL if self.required else CheckStatus.WARN,
        )


def expected_bucket_settings(policy: Policy, target: str) -> dict[str, object]:
    """The bucket settings that *policy* states for *target*, each only when its settings name it.

    ``encryption`` (and, for SSE-KMS, its ``kms_key_id``) and ``block_public_access``.

    Example:
        >>> from backuppolicy.core.policy import Policy
        >>> policy = Policy.from_dict({"name": "p", "schedule": {"every": "day", "at": "04:00"},
        ...     "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "web", "kind": "s3-bucket", "settings": {"bucket": "web",
        ...         "encryption": "aws:kms", "block_public_access": True}}]})
        >>> expected_bucket_settings(policy, "web")
        {'encryption': 'aws:kms', 'block_public_access': True}
    """
    settings = policy.target(target).settings
    expected: dict[str, object] = {}
    if isinstance(settings.get("encryption"), str):
        expected["encryption"] = settings["encryption"]
        if settings.get("kms_key_id") and settings["encryption"] != "AES256":
            expected["kms_key_id"] = settings["kms_key_id"]
    if "block_public_access" in settings:
        expected["block_public_access"] = settings["block_public_access"]
    return expected


_BUCKET_CHECKS: dict[str, tuple[str, ...]] = {
    "encryption": ("encryption", "kms_key_id"),
    "block_public_access": ("block_public_access",),
}


@attrs.frozen
class BucketSettingMatchesPolicy:
    """A bucket's ``encryption`` or ``block_public_access`` is what the policy's settings say.

    ``setting="encryption"`` (check ``bucket-encryption``): the default encryption meets the
    target's ``encryption`` (``aws:kms`` needs SSE-KMS, and the ``kms_key_id`` if named;
    ``AES256`` accepts SSE-S3 or SSE-KMS). ``setting="block_public_access"`` (check
    ``bucket-public-access``): with ``block_public_access: true``, all four flags are on. A
    difference fails, naming the setting, the expected and the actual value; `backuppolicy
    verify --enforce` (`enforce_bucket_settings`) applies it. Targets that are not buckets, and
    buckets whose policy does not state the setting, are skipped.

    Attributes:
        setting: ``"encryption"`` or ``"block_public_access"``.
        name: Name of the check.
    """

    setting: str = attrs.field(default="encryption")
    name: str = attrs.field()
    scope: ClassVar[str] = "target"

    @setting.validator
    def _check_setting(self, _attribute: object, value: object) -> None:
        if value not in _BUCKET_CHECKS:
            raise PolicyError.for_field("setting", "'encryption' or 'block_public_access'", value)

    @name.default
    def _name(self) -> str:
        return "bucket-encryption" if self.setting == "encryption" else "bucket-public-access"

    def verify(
        self,
        target: BackupTarget,
        point: RecoveryPoint | None,  # noqa: ARG002 - a target-level check
        context: VerifyContext,
    ) -> CheckResult:
        """Compare the bucket's setting with the policy's."""
        result = Reporter(self.name, target, None, context)
        policy = context.policy
        spec = spec_of(policy, target)
        wanted = (
            expected_bucket_settings(policy, target.name)
            if policy is not None and spec is not None
            else {}
        )
        wanted = {k: v for k, v in wanted.items() if k in _BUCKET_CHECKS[self.setting]}
        if not isinstance(target, BucketSettingsDrift) or not wanted:
            why = (
                "not an S3 bucket"
                if not isinstance(target, BucketSettingsDrift)
                else f"the policy states no {self.setting} for this bucket"
            )
            return result(CheckStatus.SKIPPED, why)
        try:
            drifts = target.bucket_drift(wanted)
        except BackupPolicyError as exc:
            return result.error(exc)
        issues = [d.describe() for d in drifts]
        evidence = {
            "expected": wanted,
            "drift": [
                {"setting": d.field, "expected": d.expected, "actual": d.actual} for d in drifts
            ],
            "verified": True,
        }
        status = CheckStatus.FAIL if issues else CheckStatus.PASS
        details = "; ".join(issues) if issues else f"{self.setting} matches the policy ({wanted})"
        return result(status, details, issues=issues, evidence=evidence)


def _max_age_days(rule: RetentionRule) -> int | None:
    if isinstance(rule, MaxAge):
        return rule.duration.approx_timedelta().days
    if isinstance(rule, AnyOf):
        days = [d for d in (_max_age_days(r) for r in rule.rules) if d is not None]
        return max(days, default=None)
    return None


def expected_rds_settings(policy: Policy, target: str, *, now: datetime) -> dict[str, int | str]:
    """The RDS backup settings that *policy* implies for *target*, as `RdsInstance.drift` takes them.

    ``retention_days``: the ``max_age`` of the target's retention, capped at RDS's 35 days
    (omitted when the retention has no ``max_age``). ``backup_window``: for a daily schedule,
    its run time in UTC and its start window (at least 30 minutes, RDS's minimum).

    Example:
        >>> from datetime import datetime, UTC
        >>> from backuppolicy.core.policy import Policy
        >>> policy = Policy.from_dict({"name": "p", "schedule": {"every": "day", "at": "04:00"},
        ...     "retention": {"max_age": "35d"},
        ...     "targets": [{"name": "db", "kind": "rds-instance",
        ...                  "settings": {"db_instance_id": "db"}}]})
        >>> expected_rds_settings(policy, "db", now=datetime(2026, 11, 26, tzinfo=UTC))
        {'retention_days': 35, 'backup_window': '04:00-05:00'}
    """
    spec = policy.target(target)
    tiers = policy.tiers_for(spec)
    rule = policy.retention_for(spec, tiers[0] if tiers else None)
    expected: dict[str, int | str] = {}
    days = _max_age_days(rule)
    if days is not None:
        expected["retention_days"] = min(days, _RDS_MAX_RETENTION)
    schedule = policy.schedule_for(spec)
    run = schedule.last_due(now)
    if run is not None and schedule.next_run(run) - run == timedelta(days=1):
        length = max(schedule.window.after(run) - run, timedelta(minutes=30))
        start = run.astimezone(UTC)
        end = start + length
        expected["backup_window"] = f"{start:%H:%M}-{end:%H:%M}"
    return expected


@attrs.frozen
class SettingsMatchPolicy:
    """RDS's own backup settings (retention days, backup window) match the policy.

    Uses `backuppolicy.aws.RdsInstance.drift`; without *expected*, the settings come from
    the policy in the context (`expected_rds_settings`). Other targets: skipped.

    Attributes:
        expected: The expected settings (a mapping of `~backuppolicy.aws.BackupSettings`
            fields, or `BackupSettings`), or ``None`` for the policy's.
        name: Name of the check.
    """

    expected: Any = None
    name: str = "rds-settings"
    scope: ClassVar[str] = "target"

    def verify(
        self,
        target: BackupTarget,
        point: RecoveryPoint | None,  # noqa: ARG002 - a target-level check
        context: VerifyContext,
    ) -> CheckResult:
        """Compare the instance's settings with the expected ones."""
        result = Reporter(self.name, target, None, context)
        if not isinstance(target, SettingsDrift):
            return result(CheckStatus.SKIPPED, "not an RDS instance or Aurora cluster")
        expected = self.expected
        if expected is None:
            policy = context.policy
            if policy is None or spec_of(policy, target) is None:
                raise PolicyError.for_field(
                    "expected", "settings, or a policy with this target in the context", None
                )
            expected = expected_rds_settings(policy, target.name, now=context.now)
        try:
            drifts = target.drift(expected)
        except BackupPolicyError as exc:
            return result.error(exc)
        shown = {
            k: str(v) if v is not None and not isinstance(v, int | bool) else v
            for k, v in (
                attrs.asdict(expected, recurse=False).items()
                if attrs.has(type(expected))
                else dict(expected).items()
            )
        }
        issues = [d.describe() for d in drifts]
        evidence = {"expected": shown, "drift": issues}
        if issues:
            return result(CheckStatus.FAIL, "; ".join(issues), issues=issues, evidence=evidence)
        return result(CheckStatus.PASS, "backup settings match the policy", evidence=evidence)
