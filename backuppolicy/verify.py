"""Prove the backups: the `Verifier` protocol, check results, and the built-in checks.

A verifier looks at one target (and usually one of its points) and returns a `CheckResult`:
pass, fail, warn or skipped, with human details and machine-readable evidence. Every result
can be recorded in the backup testing log (`backuppolicy.testlog`), and the audit
(`backuppolicy.workflows.audit`) reads them back.

Example:
    >>> from datetime import datetime, UTC
    >>> result = CheckResult(check="encrypted", status=CheckStatus.PASS, target="orders-db",
    ...                      point_id="snap-1", details="encrypted with alias/backups",
    ...                      checked_at=datetime(2026, 11, 26, 5, 0, tzinfo=UTC))
    >>> result.ok, result.status.value
    (True, 'pass')
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from backuppolicy.model import RecoveryPoint, ensure_aware
from backuppolicy.targets import BackupTarget, IsolationProfile

__all__ = [
    "CheckKind",
    "CheckResult",
    "CheckStatus",
    "Verifier",
    "VerifyContext",
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
    issues: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    evidence: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    duration: float = 0.0
    ran_by: str = ""

    @property
    def ok(self) -> bool:
        """Whether the check did not fail (pass, warn and skipped are all "ok")."""
        return self.status is not CheckStatus.FAIL

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
        """Inverse of `to_dict`."""
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
