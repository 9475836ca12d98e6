"""Prove the backups: the `Verifier` protocol, check results, and the built-in checks.

A verifier looks at one target (and usually one of its points) and returns a `CheckResult`:
pass, fail, warn or skipped, with human details and machine-readable evidence. Every result
can be recorded in the backup testing log (`backuppolicy.workflows.testlog`), and the audit
(`backuppolicy.workflows.backups.audit`) reads them back.

Example:
    >>> from datetime import datetime, UTC
    >>> result = CheckResult(check="encrypted", status=CheckStatus.PASS, target="orders-db",
    ...                      point_id="snap-1", details="encrypted with alias/backups",
    ...                      checked_at=datetime(2026, 11, 26, 5, 0, tzinfo=UTC))
    >>> result.ok, result.status.value
    (True, 'pass')
"""

from __future__ import annotations

import base64
import enum
import getpass
import hashlib
import itertools
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

import attrs

from backuppolicy.checks.probes import ProbeContext, ProbeLike, ProbeResult, run_probe
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import (
    BackupPolicyError,
    PolicyError,
    ResourceNotFoundError,
    VerificationError,
)
from backuppolicy.core.model import RecoveryPoint, Status, ensure_aware
from backuppolicy.core.retention import AnyOf, MaxAge
from backuppolicy.core.schedule import Cadence, Schedule
from backuppolicy.core.secrets import redact_url
from backuppolicy.core.targets import (
    BackupTarget,
    BucketSettings,
    DatabaseSnapshotPoints,
    IsolationProfile,
    ObjectVersionPoints,
    PointSharing,
    SettingsDrift,
    SnapshotPoints,
    SweptResource,
)

__all__ = [
    "CheckKind",
    "CheckResult",
    "CheckStatus",
    "Completed",
    "Encrypted",
    "Fresh",
    "HasOffsiteCopy",
    "IntegrityCheck",
    "NotPublic",
    "ObjectLock",
    "RestoreTest",
    "SettingsMatchPolicy",
    "SweptResource",
    "Verifier",
    "VerifyContext",
    "VersioningEnabled",
    "default_ran_by",
    "expected_rds_settings",
    "newest_good",
]


class CheckStatus(enum.Enum):
    """Outcome of a check."""

    PASS = "pass"
    """The check passed."""
    FAIL = "fail"
    """The check failed: the backup cannot be relied on, or the policy is not met."""
    WARN = "warn"
    """Not a failure, but worth a look (e.g. a copy close to its deadline)."""
    SKIPPED = "skipped"
    """The check does not apply to this target or point (the details say why)."""


class CheckKind(enum.Enum):
    """What sort of evidence a check produces (the testing log and the audit group by it)."""

    VERIFICATION = "verification"
    """A metadata check: completed, encrypted, not public, fresh, settings ..."""
    INTEGRITY = "integrity"
    """An integrity check of the data of a copy (seed §4)."""
    RESTORE_TEST = "restore-test"
    """A restore into the isolated environment, with data probes (seed §3)."""


def _aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


def _to_issues(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class CheckResult:
    """The result of one check of one target or point.

    Attributes:
        check: Name of the check (``"encrypted"``, ``"integrity"``, ``"restore-test"`` ...).
        status: The `CheckStatus`.
        target: Name of the target checked.
        checked_at: When the check ran (timezone-aware).
        point_id: The point checked, or ``None`` for target-level checks (freshness, versioning).
        kind: The `CheckKind` of evidence.
        tier: Tier of the point checked (``"local"``, ``"offsite"``), if any.
        application: Application the target belongs to, if known.
        details: One human line: what was found.
        issues: Problems found, one per entry (empty when the check passed).
        evidence: Machine-readable facts (KMS key id, checksums compared, restore duration ...).
        duration: Seconds the check took.
        ran_by: Who or what ran the check (user, host, job).
    """

    check: str
    status: CheckStatus = attrs.field(converter=CheckStatus)
    target: str
    checked_at: datetime = attrs.field(validator=_aware)
    point_id: str | None = None
    kind: CheckKind = attrs.field(default=CheckKind.VERIFICATION, converter=CheckKind)
    tier: str | None = None
    application: str | None = None
    details: str = ""
    issues: tuple[str, ...] = attrs.field(default=(), converter=_to_issues)
    evidence: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    duration: float = 0.0
    ran_by: str = ""

    @property
    def ok(self) -> bool:
        """Whether the check did not fail (pass, warn and skipped are all "ok")."""
        return self.status is not CheckStatus.FAIL

    def to_probe_result(self) -> ProbeResult:
        """This result as a probe's (`run_probe`), which keeps it as ``check_result``."""
        return ProbeResult(
            self.check,
            ok=self.ok,
            details=self.details,
            evidence=dict(self.evidence),
            check_result=self,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the testing log stores this)."""
        return {
            "check": self.check,
            "status": self.status.value,
            "target": self.target,
            "checked_at": self.checked_at.isoformat(),
            "point_id": self.point_id,
            "kind": self.kind.value,
            "tier": self.tier,
            "application": self.application,
            "details": self.details,
            "issues": list(self.issues),
            "evidence": dict(self.evidence),
            "duration": self.duration,
            "ran_by": self.ran_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Inverse of `to_dict`.

        Raises:
            TypeError: ``point_id``, ``tier`` or ``application`` is neither text nor null, or
                ``issues`` is not a list of text.
        """
        for key in ("point_id", "tier", "application"):
            if not isinstance(data.get(key), str | None):
                raise TypeError(f"{key}: expected text or null (got a {type(data[key]).__name__})")
        issues = data.get("issues", ())
        if not isinstance(issues, list | tuple) or not all(isinstance(i, str) for i in issues):
            raise TypeError("issues: expected a list of text")
        return cls(
            check=str(data["check"]),
            status=data["status"],
            target=str(data["target"]),
            checked_at=datetime.fromisoformat(str(data["checked_at"])),
            point_id=data.get("point_id"),
            kind=data.get("kind", CheckKind.VERIFICATION.value),
            tier=data.get("tier"),
            application=data.get("application"),
            details=str(data.get("details", "")),
            issues=tuple(data.get("issues", ())),
            evidence=dict(data.get("evidence", {})),
            duration=float(data.get("duration", 0.0)),
            ran_by=str(data.get("ran_by", "")),
        )


@attrs.frozen
class VerifyContext:
    """What a verifier may need besides the target and the point.

    Attributes:
        now: The time of the check (timezone-aware).
        points: Every point of the target, already listed (so checks do not list again).
        policy: The `backuppolicy.Policy`, if the check runs under one.
        application: Application of the target.
        isolation: Where restore tests restore to.
        ran_by: Who or what runs the checks (recorded in the testing log).
        endpoint_resolver: For restore tests: maps a restored resource to the endpoint the
            probes connect to. The default is the resource's own endpoint; tests on moto point
            it at a local database that stands in for the restored one.
        options: Free-form settings for custom verifiers.
    """

    now: datetime = attrs.field(validator=_aware)
    points: Sequence[RecoveryPoint] = ()
    policy: Any = None
    application: str | None = None
    isolation: IsolationProfile = attrs.field(factory=IsolationProfile)
    ran_by: str = ""
    endpoint_resolver: Callable[[Any], Any] | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@runtime_checkable
class Verifier(Protocol):
    """**Protocol:** a check of a target or of one of its points.

    Implementations return a `CheckResult` and never raise for a failed check (a failure is a
    result with `CheckStatus.FAIL`); they raise only when they cannot run at all.
    """

    @property
    def name(self) -> str:
        """Name of the check, as recorded in the testing log."""
        ...

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Check *target* (and *point*, for point-level checks) and return the result."""
        ...


# --------------------------------------------------------------------------------------------
# Shared helpers


def default_ran_by() -> str:
    """``user@host`` of this process: who ran a check, unless told otherwise."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _result(
    check: str,
    status: CheckStatus,
    target: BackupTarget,
    point: RecoveryPoint | None,
    context: VerifyContext,
    *,
    started: float,
    details: str,
    issues: Sequence[str] = (),
    evidence: Mapping[str, Any] | None = None,
    kind: CheckKind = CheckKind.VERIFICATION,
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        target=target.name,
        checked_at=context.now,
        point_id=point.id if point is not None else None,
        kind=kind,
        tier=point.tier if point is not None else None,
        application=context.application,
        details=details,
        issues=tuple(issues),
        evidence=dict(evidence or {}),
        duration=time.monotonic() - started,
        ran_by=context.ran_by,
    )


def _error_result(
    check: str,
    target: BackupTarget,
    point: RecoveryPoint | None,
    context: VerifyContext,
    exc: BaseException,
    *,
    started: float,
    kind: CheckKind = CheckKind.VERIFICATION,
) -> CheckResult:
    error = f"{type(exc).__name__}: {exc}"
    return _result(
        check,
        CheckStatus.FAIL,
        target,
        point,
        context,
        started=started,
        details=f"the check could not complete: {error}",
        issues=[error],
        evidence={"error": error},
        kind=kind,
    )


def _region_of(point: RecoveryPoint | None, target: object) -> str | None:
    if point is not None:
        region = point.details.get("region")
        if isinstance(region, str) and region:
            return region
        parts = point.location.split(":")
        if len(parts) == 3 and parts[0] == "aws" and parts[2]:  # noqa: PLR2004 - aws:<account>:<region>
            return parts[2]
    region = getattr(target, "region", None)
    return region if isinstance(region, str) else None


def _points(target: BackupTarget, context: VerifyContext) -> Sequence[RecoveryPoint]:
    return context.points or list(target.list_points())


def _order_key(point: RecoveryPoint) -> tuple[datetime, bool, int, str]:
    """Newest last: `RecoveryPoint.order_key` (ties follow the backend's order, then the id)."""
    return point.order_key


def newest_good(points: Iterable[RecoveryPoint], tier: str | None = None) -> RecoveryPoint | None:
    """The newest completed backup (object versions are data, not backups) in *tier* (any)."""
    good = [
        p
        for p in points
        if p.is_good and p.kind != "s3-version" and (tier is None or p.tier == tier)
    ]
    return max(good, key=_order_key, default=None)


def _spec_of(policy: Any, target: BackupTarget) -> Any:
    if policy is None:
        return None
    try:
        return policy.target(target.name)
    except LookupError:
        return None


def _to_duration(value: Any) -> Duration | None:
    return None if value is None else Duration.coerce(value, field="duration")


_RDS_MAX_RETENTION = 35


# --------------------------------------------------------------------------------------------
# Metadata checks


@attrs.frozen
class Completed:
    """The point is completed: state available/completed and, where reported, progress 100%.

    Pending points give `CheckStatus.WARN`; failed and partial points `CheckStatus.FAIL`.

    Example:
        >>> from datetime import datetime, UTC
        >>> from backuppolicy.testing import MemoryTarget
        >>> db = MemoryTarget("db", clock=lambda: datetime(2026, 11, 26, 4, tzinfo=UTC))
        >>> point = db.create_backup()
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
        started = time.monotonic()
        if point is None:
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                None,
                context,
                started=started,
                details="no point to check",
            )
        issues: list[str] = []
        evidence: dict[str, Any] = {"status": point.status.value}
        for member in point.details.get("snapshots", ()) or ():
            if not isinstance(member, Mapping):
                continue
            progress = member.get("progress")
            state = member.get("state")
            evidence.setdefault("snapshots", []).append(
                {"snapshot_id": member.get("snapshot_id"), "state": state, "progress": progress}
            )
            if progress not in (None, "100%") and point.status is Status.COMPLETED:
                issues.append(f"snapshot {member.get('snapshot_id')}: progress {progress}")
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
        return _result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
        )


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
        started = time.monotonic()
        if point is None:
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                None,
                context,
                started=started,
                details="no point to check",
            )
        try:
            encrypted, key, how = self._lookup(target, point)
        except BackupPolicyError as exc:
            return _error_result(self.name, target, point, context, exc, started=started)
        evidence = {"encrypted": encrypted, "kms_key_id": key, "source": how}
        if encrypted:
            details = (
                f"encrypted with KMS key {key}" if key else "encrypted (no customer key named)"
            )
            status = CheckStatus.PASS
            issues: list[str] = []
        elif encrypted is None:
            status, details, issues = CheckStatus.WARN, "encryption unknown", ["encryption unknown"]
        else:
            status = CheckStatus.FAIL if self.required else CheckStatus.WARN
            details, issues = "not encrypted at rest", ["not encrypted at rest"]
        return _result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
        )

    @staticmethod
    def _lookup(target: BackupTarget, point: RecoveryPoint) -> tuple[bool | None, Any, str]:
        key = point.details.get("kms_key_id") or point.details.get("kms_key_ids") or None
        if point.encrypted is not None:
            return point.encrypted, key, "point"
        if isinstance(target, ObjectVersionPoints) and (found := target.point_object(point)):
            bucket, object_key, version = found
            head = target.object_version_head(
                bucket, object_key, version, region=_region_of(point, target)
            )
            sse = head.get("ServerSideEncryption") or head.get("SSECustomerAlgorithm")
            return bool(sse), head.get("SSEKMSKeyId") or sse, "HeadObject"
        for store in getattr(target, "stores", ()) or ():
            if getattr(store, "url", None) == point.location:
                encrypted = store.encrypted
                return encrypted, getattr(store, "kms_key_id", None), f"store {store.url}"
        return None, key, "unknown"


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
        started = time.monotonic()
        if not isinstance(target, PointSharing):
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                point,
                context,
                started=started,
                details="not an AWS target",
            )
        try:
            found = target.point_sharing(point, region=_region_of(point, target))
        except BackupPolicyError as exc:
            return _error_result(self.name, target, point, context, exc, started=started)
        if found is None:
            why = (
                "no point to check"
                if point is None
                else f"no sharing check for kind {point.kind!r}"
            )
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                point,
                context,
                started=started,
                details=why,
            )
        evidence, issues = found
        status = CheckStatus.FAIL if issues else CheckStatus.PASS
        details = "; ".join(issues) if issues else "not shared publicly"
        return _result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
        )


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
        >>> ctx = VerifyContext(now=datetime(2026, 11, 26, 7, tzinfo=UTC))
        >>> Fresh("26h").verify(db, None, ctx).details
        'newest completed backup db-0001 is 1 day, 3:00:00 old (more than 26h)'

    Attributes:
        max_age: The largest acceptable age (a `~backuppolicy.Duration` or ``"26h"``), or
            ``None`` for the policy's RPO plus grace.
        tier: Only points of this tier count (default: any tier).
        name: Name of the check.
    """

    max_age: Duration | None = attrs.field(default=None, converter=_to_duration)
    tier: str | None = None
    name: str = "fresh"
    scope: ClassVar[str] = "target"

    def _cutoff(self, target: BackupTarget, context: VerifyContext) -> tuple[datetime, str]:
        if self.max_age is not None:
            cutoff = self.max_age.before(context.now)
            return cutoff or datetime.min.replace(tzinfo=UTC), str(self.max_age)
        policy = context.policy
        spec = _spec_of(policy, target)
        if spec is None:
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
        started = time.monotonic()
        cutoff, limit = self._cutoff(target, context)
        try:
            newest = newest_good(_points(target, context), self.tier)
        except BackupPolicyError as exc:
            return _error_result(self.name, target, None, context, exc, started=started)
        evidence: dict[str, Any] = {"limit": limit, "cutoff": cutoff.isoformat(), "tier": self.tier}
        if newest is None:
            return _result(
                self.name,
                CheckStatus.FAIL,
                target,
                None,
                context,
                started=started,
                details="no completed backup",
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
            details = f"newest completed backup {newest.id} is {age} old (within {limit})"
        else:
            status = CheckStatus.FAIL
            details = f"newest completed backup {newest.id} is {age} old (more than {limit})"
            issues = [details]
        return _result(
            self.name,
            status,
            target,
            None,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
        )


def _copy_cutoff(tier_spec: Any, policy: Any, now: datetime) -> datetime | None:
    """Start of the previous cadence period (a copy of this period or the last one counts)."""
    every = tier_spec.every
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

    within: Duration | None = attrs.field(default=None, converter=_to_duration)
    tier: str | None = None
    name: str = "offsite-copy"
    scope: ClassVar[str] = "target"

    def _tiers(self, target: BackupTarget, context: VerifyContext) -> list[tuple[str, Any]]:
        policy = context.policy
        spec = _spec_of(policy, target)
        copy_tiers = list(policy.tiers_for(spec)[1:]) if spec is not None else []
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
        started = time.monotonic()
        tiers = self._tiers(target, context)
        if not tiers:
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                None,
                context,
                started=started,
                details="the policy gives this target no copy tier",
            )
        try:
            points = _points(target, context)
        except BackupPolicyError as exc:
            return _error_result(self.name, target, None, context, exc, started=started)
        issues: list[str] = []
        found: dict[str, Any] = {}
        for name, tier_spec in tiers:
            if self.within is not None:
                cutoff = self.within.before(context.now)
            elif tier_spec is not None:
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
        return _result(
            self.name,
            status,
            target,
            None,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence={"tiers": found},
        )


def _s3_settings(target: BackupTarget) -> Any:
    return target.settings() if isinstance(target, BucketSettings) else None


def _bucket_settings(
    name: str, target: BackupTarget, context: VerifyContext, started: float
) -> Any:
    """The bucket's settings, or the finished result: skipped (not a bucket) or an error."""
    try:
        settings = _s3_settings(target)
    except BackupPolicyError as exc:
        return _error_result(name, target, None, context, exc, started=started)
    if settings is None:
        return _result(
            name,
            CheckStatus.SKIPPED,
            target,
            None,
            context,
            started=started,
            details="not an S3 bucket",
        )
    return settings


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
        started = time.monotonic()
        settings = _bucket_settings(self.name, target, context, started)
        if isinstance(settings, CheckResult):
            return settings
        evidence = {
            "bucket": settings.bucket,
            "versioning": settings.versioning,
            "mfa_delete": settings.mfa_delete,
        }
        if settings.versioned:
            return _result(
                self.name,
                CheckStatus.PASS,
                target,
                None,
                context,
                started=started,
                details=f"versioning enabled on {settings.bucket}",
                evidence=evidence,
            )
        issue = f"versioning is {settings.versioning} on {settings.bucket}"
        return _result(
            self.name,
            CheckStatus.FAIL,
            target,
            None,
            context,
            started=started,
            details=issue,
            issues=[issue],
            evidence=evidence,
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
        started = time.monotonic()
        settings = _bucket_settings(self.name, target, context, started)
        if isinstance(settings, CheckResult):
            return settings
        evidence = {
            "bucket": settings.bucket,
            "object_lock": settings.object_lock,
            "default_retention": dict(settings.object_lock_default),
        }
        if settings.object_lock:
            return _result(
                self.name,
                CheckStatus.PASS,
                target,
                None,
                context,
                started=started,
                details=f"Object Lock enabled on {settings.bucket}",
                evidence=evidence,
            )
        issue = f"Object Lock is not enabled on {settings.bucket}"
        return _result(
            self.name,
            CheckStatus.FAIL if self.required else CheckStatus.WARN,
            target,
            None,
            context,
            started=started,
            details=issue,
            issues=[issue],
            evidence=evidence,
        )


def _max_age_days(rule: Any) -> int | None:
    if isinstance(rule, MaxAge):
        return rule.duration.approx_timedelta().days
    if isinstance(rule, AnyOf):
        days = [d for d in (_max_age_days(r) for r in rule.rules) if d is not None]
        return max(days, default=None)
    return None


def expected_rds_settings(policy: Any, target: str, *, now: datetime) -> dict[str, Any]:
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
    expected: dict[str, Any] = {}
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
        started = time.monotonic()
        if not isinstance(target, SettingsDrift):
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                None,
                context,
                started=started,
                details="not an RDS instance or Aurora cluster",
            )
        expected = self.expected
        if expected is None:
            if _spec_of(context.policy, target) is None:
                raise PolicyError.for_field(
                    "expected", "settings, or a policy with this target in the context", None
                )
            expected = expected_rds_settings(context.policy, target.name, now=context.now)
        try:
            drifts = target.drift(expected)
        except BackupPolicyError as exc:
            return _error_result(self.name, target, None, context, exc, started=started)
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
            return _result(
                self.name,
                CheckStatus.FAIL,
                target,
                None,
                context,
                started=started,
                details="; ".join(issues),
                issues=issues,
                evidence=evidence,
            )
        return _result(
            self.name,
            CheckStatus.PASS,
            target,
            None,
            context,
            started=started,
            details="backup settings match the policy",
            evidence=evidence,
        )


# --------------------------------------------------------------------------------------------
# Integrity


_CHUNK = 1024 * 1024
_MAX_ISSUES = 20
_KMS = frozenset({"aws:kms", "aws:kms:dsse"})


def _b64_of_hex(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


@attrs.frozen
class _ObjectCheck:
    """What the integrity check of one S3 object version found."""

    key: str
    version_id: str | None
    method: str
    issues: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    downloaded: int = 0
    sha256: str | None = None


def _check_s3_object(  # noqa: C901, PLR0912, PLR0915 - one decision table, kept in one place
    store: ObjectVersionPoints,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    region: str | None,
    content: str,
    expected_size: int | None = None,
    expected_etag: str | None = None,
    expected_sha256: str | None = None,
) -> _ObjectCheck:
    """Check one object version against what was recorded, downloading only when needed."""
    label = f"s3://{bucket}/{key}" + ("" if version_id is None else f"?versionId={version_id}")
    try:
        head = store.object_version_head(bucket, key, version_id, region=region)
    except ResourceNotFoundError:
        return _ObjectCheck(key, version_id, "head", issues=(f"{label}: missing",))
    issues: list[str] = []
    warnings: list[str] = []
    size = int(head.get("ContentLength") or 0)
    etag = str(head.get("ETag", "")).strip('"')
    stored = head.get("ChecksumSHA256")
    stored_full = stored if isinstance(stored, str) and "-" not in stored else None
    multipart = "-" in etag
    kms = head.get("ServerSideEncryption") in _KMS or bool(head.get("SSECustomerAlgorithm"))
    etag_is_md5 = not multipart and not kms
    if expected_size is not None and size != expected_size:
        issues.append(f"{label}: expected {expected_size} bytes (got {size})")
    if expected_etag and etag != expected_etag.strip('"'):
        issues.append(f"{label}: expected ETag {expected_etag} (got {etag})")
    if expected_sha256 and stored_full and _b64_of_hex(expected_sha256) != stored_full:
        issues.append(f"{label}: expected sha256:{expected_sha256} (stored {stored_full})")
    download = content == "always" or (
        content == "auto" and stored_full is None and not etag_is_md5
    )
    if not download:
        if stored_full is not None:
            method = "stored-sha256"
        elif etag_is_md5:
            method = "etag-md5"
        else:
            method = "metadata-only"
            warnings.append(f"{label}: no stored checksum and content not read")
        return _ObjectCheck(key, version_id, method, tuple(issues), tuple(warnings))
    sha = hashlib.sha256()
    md5 = hashlib.md5()  # noqa: S324 - S3's ETag is an MD5; not used for security
    read = 0
    body = store.open_object_version(bucket, key, version_id, region=region)
    try:
        for chunk in body.iter_chunks(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            read += len(chunk)
    except Exception as exc:  # noqa: BLE001 - botocore's checksum validation fails the read
        issues.append(f"{label}: reading the content failed: {type(exc).__name__}: {exc}")
        return _ObjectCheck(key, version_id, "download", tuple(issues), (), read)
    finally:
        body.close()
    compared = False
    if read != size:
        issues.append(f"{label}: read {read} bytes, expected {size}")
    if stored_full is not None:
        compared = True
        if _b64_of_hex(sha.hexdigest()) != stored_full:
            issues.append(f"{label}: content sha256 does not match the stored checksum")
    if etag_is_md5:
        compared = True
        if md5.hexdigest() != etag:
            issues.append(f"{label}: content MD5 {md5.hexdigest()} does not match ETag {etag}")
    if expected_sha256:
        compared = True
        if sha.hexdigest() != expected_sha256:
            issues.append(
                f"{label}: expected sha256:{expected_sha256} (got sha256:{sha.hexdigest()})"
            )
    if not compared:
        warnings.append(
            f"{label}: no stored checksum to compare with; its sha256 is recorded in the evidence"
        )
    return _ObjectCheck(
        key, version_id, "download-sha256", tuple(issues), tuple(warnings), read, sha.hexdigest()
    )


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _hex_of(checksum: str | None) -> str | None:
    if checksum and checksum.startswith("sha256:"):
        return checksum[len("sha256:") :]
    return None


@attrs.frozen
class IntegrityCheck:
    """Check that a copy is free from corruption (seed §4), for every kind of copy.

    * **Archives** (`backuppolicy.local.Directory`, in a `DirectoryStore` or an `S3Store`): the
      archive is re-read, streaming, and its SHA-256 compared with the sidecar
      (`backuppolicy.local.Directory.verify`). With *deep*, it is also restored into a temporary
      directory, where every file is checked against the manifest.
    * **S3 versions**: ``HeadObject`` (``ChecksumMode=ENABLED``) must show the recorded size and
      ETag, and the stored SHA-256 checksum (``ChecksumAlgorithm=SHA256``) or, for single-part
      objects not encrypted with KMS, the ETag (an MD5 of the content) is the proof, without
      downloading. Objects with neither (multipart without additional checksum, SSE-KMS) are
      downloaded and hashed, streaming. A copy is compared with its source version too.
    * **S3 manifests**: every version the manifest lists is checked as above (in parallel).
    * **EBS snapshots** (and every snapshot of an EC2 backup): restored to volumes through the
      target's `restore` (isolation profile, sweep tag); each volume must appear with the
      snapshot's size and be torn down afterwards.
    * **RDS snapshots**: RDS exposes no checksum; the snapshot must be available and complete
      (``method: rds-snapshot-status``); restore tests prove the data.
    * Other targets with a ``verify(point)`` method: that method (it raises on a mismatch).

    Attributes:
        content: For S3 objects: ``"auto"`` (download only without a stored checksum),
            ``"always"`` (re-read and hash every object) or ``"never"``.
        deep: For archives: also restore and check every file against the manifest.
        restore_volumes: For EBS snapshots: restore them to volumes (else metadata only).
        max_workers: Objects checked at once for S3 manifests.
        name: Name of the check.
    """

    content: str = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "always", "never"))
    )
    deep: bool = False
    restore_volumes: bool = True
    max_workers: int = 8
    name: str = "integrity"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Check the point's data; a mismatch is a `CheckStatus.FAIL` result, never an exception."""
        started = time.monotonic()
        kind = CheckKind.INTEGRITY
        if point is None:
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                None,
                context,
                started=started,
                details="no point to check",
                kind=kind,
            )
        if point.status is Status.PENDING:
            return _result(
                self.name,
                CheckStatus.SKIPPED,
                target,
                point,
                context,
                started=started,
                details="pending: checked once completed",
                kind=kind,
            )
        if not point.is_good:
            issue = f"not restorable: {point.status.value}"
            return _result(
                self.name,
                CheckStatus.FAIL,
                target,
                point,
                context,
                started=started,
                details=issue,
                issues=[issue],
                kind=kind,
            )
        try:
            status, details, issues, evidence = self._dispatch(target, point, context)
        except BackupPolicyError as exc:
            return _error_result(self.name, target, point, context, exc, started=started, kind=kind)
        return _result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
            kind=kind,
        )

    def _dispatch(
        self, target: BackupTarget, point: RecoveryPoint, context: VerifyContext
    ) -> tuple[CheckStatus, str, list[str], dict[str, Any]]:
        if isinstance(target, ObjectVersionPoints) and (found := target.point_object(point)):
            if target.is_manifest(point):
                return self._s3_manifest(target, point, found[0])
            return self._s3_version(target, point, found)
        if isinstance(target, SnapshotPoints) and target.point_snapshot_ids(point) is not None:
            return self._ebs(target, point, context)
        if isinstance(target, DatabaseSnapshotPoints) and target.is_database_snapshot(point):
            return self._rds(point)
        verify = getattr(target, "verify", None)
        if callable(verify):
            return self._archive(verify, target, point, context)
        return (
            CheckStatus.SKIPPED,
            f"no integrity check for kind {point.kind!r} on {type(target).__name__}",
            [],
            {},
        )

    def _archive(
        self,
        verify: Callable[[RecoveryPoint], Any],
        target: BackupTarget,
        point: RecoveryPoint,
        context: VerifyContext,
    ) -> tuple[CheckStatus, str, list[str], dict[str, Any]]:
        evidence: dict[str, Any] = {
            "method": "archive-sha256-vs-sidecar",
            "location": point.location,
        }
        try:
            checksum = verify(point)
            evidence["checksum"] = str(checksum)
            if self.deep:
                with target.restore(point, into=context.isolation) as restored:
                    evidence["restored_files"] = restored.details.get("files")
                evidence["method"] = "archive-sha256-vs-sidecar+files-vs-manifest"
        except VerificationError as exc:
            evidence["mismatch"] = (
                exc.result if isinstance(exc.result, Mapping) else str(exc.result)
            )
            return CheckStatus.FAIL, str(exc), [str(exc)], evidence
        details = f"archive matches its recorded {evidence['checksum']}"
        if self.deep:
            details += f"; {evidence.get('restored_files')} file(s) match the manifest"
        return CheckStatus.PASS, details, [], evidence

    def _s3_version(
        self,
        target: ObjectVersionPoints,
        point: RecoveryPoint,
        location: tuple[str, str, str | None],
    ) -> tuple[CheckStatus, str, list[str], dict[str, Any]]:
        bucket, key, version = location
        region = _region_of(point, target)
        etag = point.details.get("etag")
        sha = _hex_of(point.checksum)
        source_evidence: dict[str, Any] = {}
        source = point.details.get("source")
        if isinstance(source, str) and "@" in source and target.bucket:
            src_key, _, src_version = source.rpartition("@")
            src_head = target.object_version_head(target.bucket, src_key, src_version, region=None)
            src_etag = str(src_head.get("ETag", "")).strip('"')
            etag = etag or src_etag
            source_evidence = {
                "source": source,
                "source_etag": src_etag,
                "source_sha256": src_head.get("ChecksumSHA256"),
            }
        found = _check_s3_object(
            target,
            bucket=bucket,
            key=key,
            version_id=version,
            region=region,
            content=self.content,
            expected_size=point.size_bytes,
            expected_etag=str(etag) if etag else None,
            expected_sha256=sha,
        )
        evidence = {
            "method": found.method,
            "bucket": bucket,
            "key": key,
            "version_id": version,
            "downloaded_bytes": found.downloaded,
            "sha256": found.sha256,
            **source_evidence,
        }
        if found.issues:
            return CheckStatus.FAIL, "; ".join(found.issues), list(found.issues), evidence
        if found.warnings:
            return CheckStatus.WARN, "; ".join(found.warnings), list(found.warnings), evidence
        return CheckStatus.PASS, f"object version intact ({found.method})", [], evidence

    def _s3_manifest(
        self, target: ObjectVersionPoints, point: RecoveryPoint, bucket: str
    ) -> tuple[CheckStatus, str, list[str], dict[str, Any]]:
        # *bucket*: where the manifest's versions live (copies live elsewhere)
        region = _region_of(point, target)
        methods: Counter[str] = Counter()
        issues: list[str] = []
        warnings: list[str] = []
        checked = downloaded = 0

        def one(line: Mapping[str, Any]) -> _ObjectCheck:
            return _check_s3_object(
                target,
                bucket=bucket,
                key=str(line["key"]),
                version_id=str(line["version_id"]),
                region=region,
                content=self.content,
                expected_size=int(line["size"]) if line.get("size") is not None else None,
                expected_etag=str(line.get("etag") or "") or None,
            )

        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            for batch in _batched(target.read_manifest(point), 1000):  # bounded memory
                for found in pool.map(one, batch):
                    checked += 1
                    methods[found.method] += 1
                    downloaded += found.downloaded
                    issues.extend(found.issues)
                    warnings.extend(found.warnings)
        evidence = {
            "method": "manifest: every listed version",
            "objects": checked,
            "methods": dict(methods),
            "downloaded_bytes": downloaded,
            "problems": issues[:_MAX_ISSUES],
        }
        if issues:
            details = f"{len(issues)} problem(s) in {checked} object(s): " + "; ".join(issues[:3])
            return CheckStatus.FAIL, details, issues[:_MAX_ISSUES], evidence
        if warnings:
            return CheckStatus.WARN, "; ".join(warnings[:3]), warnings[:_MAX_ISSUES], evidence
        return CheckStatus.PASS, f"all {checked} object version(s) intact", [], evidence

    def _ebs(
        self,
        target: SnapshotPoints,
        point: RecoveryPoint,
        context: VerifyContext,
    ) -> tuple[CheckStatus, str, list[str], dict[str, Any]]:
        members = [m for m in point.details.get("snapshots", ()) or () if isinstance(m, Mapping)]
        issues = [
            f"snapshot {m.get('snapshot_id')}: state {m.get('state')}, progress {m.get('progress')}"
            for m in members
            if m.get("state") not in (None, "completed") or m.get("progress") not in (None, "100%")
        ]
        evidence: dict[str, Any] = {"method": "snapshot-state", "snapshots": len(members) or 1}
        if issues or not self.restore_volumes:
            status = CheckStatus.FAIL if issues else CheckStatus.PASS
            return status, "; ".join(issues) or "every snapshot completed", issues, evidence
        sizes = {str(m.get("snapshot_id")): m.get("size_gib") for m in members}
        region = _region_of(point, target)
        volumes: list[dict[str, Any]] = []
        restore = cast("BackupTarget", target).restore
        with restore(point, into=context.isolation) as restored:
            created = [v for v in restored.details.get("volumes", ()) if isinstance(v, Mapping)]
            ids = [str(v["volume_id"]) for v in created]
            described = target.describe_volumes(ids, region=region, resource=point.id)
            for volume in described:
                snapshot_id = str(volume.get("SnapshotId"))
                expected = sizes.get(snapshot_id)
                volumes.append(
                    {
                        "volume_id": volume.get("VolumeId"),
                        "snapshot_id": snapshot_id,
                        "size_gib": volume.get("Size"),
                        "state": volume.get("State"),
                    }
                )
                if expected is not None and volume.get("Size") != expected:
                    issues.append(
                        f"volume {volume.get('VolumeId')} from {snapshot_id}: expected "
                        f"{expected} GiB (got {volume.get('Size')})"
                    )
            if len(volumes) != len(ids):
                issues.append(f"expected {len(ids)} restored volume(s) (got {len(volumes)})")
        left = self._left_behind(target, ids, region)
        if left:
            issues.append(f"volume(s) not torn down: {', '.join(left)}")
        evidence.update(
            {
                "method": "restore-to-volume",
                "volumes": volumes,
                "torn_down": not left,
                "availability_zone": restored.details.get("availability_zone"),
            }
        )
        if issues:
            return CheckStatus.FAIL, "; ".join(issues), issues, evidence
        return (
            CheckStatus.PASS,
            f"{len(volumes)} volume(s) restored with the snapshot's size and torn down",
            [],
            evidence,
        )

    @staticmethod
    def _left_behind(target: SnapshotPoints, ids: list[str], region: str | None) -> list[str]:
        if not ids:
            return []
        try:
            described = target.describe_volumes(ids, region=region)
        except ResourceNotFoundError:
            return []
        return [
            str(v.get("VolumeId"))
            for v in described
            if v.get("State") not in ("deleting", "deleted")
        ]

    @staticmethod
    def _rds(point: RecoveryPoint) -> tuple[CheckStatus, str, list[str], dict[str, Any]]:
        rds_status = point.details.get("rds_status")
        evidence = {
            "method": "rds-snapshot-status",
            "rds_status": rds_status,
            "note": "RDS exposes no snapshot checksum; restore tests prove the data",
        }
        if rds_status not in (None, "available"):
            issue = f"snapshot status {rds_status}"
            return CheckStatus.FAIL, issue, [issue], evidence
        return (
            CheckStatus.PASS,
            "snapshot available and complete (RDS keeps no checksum)",
            [],
            evidence,
        )


# --------------------------------------------------------------------------------------------
# Restore tests


def _to_probes(value: Iterable[ProbeLike]) -> tuple[ProbeLike, ...]:
    return tuple(value)


def _describe_resolver(resolver: Any) -> str:
    description = getattr(resolver, "description", None)
    if isinstance(description, str) and description:
        return description
    return str(getattr(resolver, "__qualname__", None) or repr(resolver))


@attrs.frozen
class RestoreTest:
    """Restore the point into the isolation profile, run the probes, always tear down.

    The restore goes through the target's own `~backuppolicy.core.targets.BackupTarget.restore` into
    ``context.isolation``; the restored resource is torn down when the block exits, even when a
    probe fails or raises. The probes connect to ``context.endpoint_resolver(resource)`` (by
    default the resource's own ``endpoint``); the evidence says which endpoint was used and who
    resolved it. The evidence also records the restore duration (RTO evidence, compared with
    the application's RTO when the policy sets one) and the point's age at the test (RPO
    evidence).

    Example:
        >>> from datetime import datetime, UTC
        >>> from backuppolicy.testing import MemoryTarget
        >>> db = MemoryTarget("db", clock=lambda: datetime(2026, 11, 26, 4, tzinfo=UTC))
        >>> point = db.create_backup()
        >>> test = RestoreTest(probes=[lambda ctx: ctx.endpoint.startswith("memory://")])
        >>> result = test.verify(db, point, VerifyContext(now=datetime(2026, 11, 26, 6, tzinfo=UTC)))
        >>> result.status.value, result.evidence["point_age_seconds"], len(db.teardowns)
        ('pass', 7200.0, 1)

    Attributes:
        probes: The probes to run on the restored resource (`backuppolicy.checks.probes`).
        name: Name of the check.
    """

    probes: Sequence[ProbeLike] = attrs.field(default=(), converter=_to_probes)
    name: str = "restore-test"
    scope: ClassVar[str] = "point"

    def verify(
        self, target: BackupTarget, point: RecoveryPoint | None, context: VerifyContext
    ) -> CheckResult:
        """Restore, probe, tear down; every failure is a `CheckStatus.FAIL` result."""
        started = time.monotonic()
        kind = CheckKind.RESTORE_TEST
        if point is None:
            issue = "no completed point to restore"
            return _result(
                self.name,
                CheckStatus.FAIL,
                target,
                None,
                context,
                started=started,
                details=issue,
                issues=[issue],
                kind=kind,
            )
        resolver = context.endpoint_resolver
        evidence: dict[str, Any] = {
            "point_created_at": point.created_at.isoformat(),
            "point_age_seconds": (context.now - point.created_at).total_seconds(),
            "isolation": {
                "name_prefix": context.isolation.name_prefix,
                "sweep_tag": context.isolation.sweep_tag,
            },
            "probe_endpoint_resolved_by": (
                _describe_resolver(resolver)
                if resolver is not None
                else "the restored resource's own endpoint"
            ),
        }
        self._objectives(context, evidence)
        results: list[ProbeResult] = []
        issues: list[str] = []
        restore_started = time.monotonic()
        stage = "restore"
        probed_at = restore_started
        try:
            with target.restore(point, into=context.isolation) as resource:
                evidence["restore_seconds"] = time.monotonic() - restore_started
                stage = "endpoint resolution"
                endpoint = resolver(resource) if resolver is not None else resource.endpoint
                evidence["restored"] = {
                    "id": resource.id,
                    "kind": resource.kind,
                    "endpoint": resource.endpoint,
                }
                evidence["probe_endpoint"] = (
                    redact_url(str(endpoint)) if endpoint is not None else None
                )
                stage = "probes"
                ctx = ProbeContext(resource=resource, endpoint=endpoint, target=target, point=point)
                results = [run_probe(probe, ctx) for probe in self.probes]
                stage = "teardown"
                probed_at = time.monotonic()
            evidence["torn_down"] = True
            evidence["teardown_seconds"] = time.monotonic() - probed_at
        except Exception as exc:  # noqa: BLE001 - a failed restore or teardown is a failed test
            error = f"{stage} failed: {type(exc).__name__}: {exc}"
            issues.append(error)
            evidence["torn_down"] = False if stage == "teardown" else None
            evidence["error"] = error
        evidence["probes"] = [r.to_dict() for r in results]
        issues.extend(f"probe {r.name}: {r.details}" for r in results if not r.ok)
        rto_limit = evidence.get("rto_seconds")
        if isinstance(rto_limit, float) and evidence.get("restore_seconds", 0.0) > rto_limit:
            issues.append(
                f"restore took {evidence['restore_seconds']:.0f} s, more than the RTO "
                f"({rto_limit:.0f} s)"
            )
        passed = sum(r.ok for r in results)
        if issues:
            status, details = CheckStatus.FAIL, "; ".join(issues[:3])
        else:
            status = CheckStatus.PASS
            details = f"restored {point.id} and torn down; {passed}/{len(results)} probe(s) passed"
        return _result(
            self.name,
            status,
            target,
            point,
            context,
            started=started,
            details=details,
            issues=issues,
            evidence=evidence,
            kind=kind,
        )

    @staticmethod
    def _objectives(context: VerifyContext, evidence: dict[str, Any]) -> None:
        policy = context.policy
        if policy is None or context.application is None:
            return
        try:
            objective = policy.objective_for(context.application)
        except LookupError:
            return
        evidence["rpo"] = str(objective.rpo)
        if objective.rto is not None:
            evidence["rto"] = str(objective.rto)
            moment = context.now
            evidence["rto_seconds"] = (objective.rto.after(moment) - moment).total_seconds()


# --------------------------------------------------------------------------------------------
# Sweeper
