"""Check results: `CheckStatus`, `CheckKind`, `CheckResult` and a probe's `ProbeResult`.

Pure values. The checks that produce them live in `backuppolicy.checks` (`Verifier`s, probes);
the backup testing log (`backuppolicy.workflows.testlog`) stores them and the audit reads them.

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
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

import attrs

from backuppolicy.core.model import ensure_aware

__all__ = ["CheckKind", "CheckResult", "CheckStatus", "ProbeResult"]


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
    UNPROVEN = "unproven"
    """The check ran without failing but has no evidence of what it claims: a restore test whose
    resource came back but whose data no probe looked at. Never counted as compliant.
    """


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


def _text_or_none(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if not isinstance(value, str | None):
        raise TypeError(f"{key}: expected text or null (got a {type(data[key]).__name__})")
    return value


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
        simulated: Whether the evidence was obtained against a stand-in (an endpoint resolver
            that sent the probes elsewhere than the restored resource, a simulated world)
            rather than the real thing. It shows in `text`, the testing log, the report and
            the audit ("met (simulated)").
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
    simulated: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    @property
    def ok(self) -> bool:
        """Whether the check neither failed nor went unproven (pass, warn and skipped are "ok")."""
        return self.status not in (CheckStatus.FAIL, CheckStatus.UNPROVEN)

    @property
    def proven(self) -> bool:
        """Whether the check passed with evidence of what it claims.

        A restore test recorded as passed by an older version without any probe
        (``"0/0 probe(s) passed"``) is not proven: it only shows that the resource came back.
        """
        if self.status is not CheckStatus.PASS:
            return False
        if self.kind is CheckKind.RESTORE_TEST:
            probes = self.evidence.get("probes")
            return not (isinstance(probes, list | tuple) and not probes)
        return True

    @property
    def text(self) -> str:
        """One human line: status, check, subject and details; ``(simulated)`` when it was."""
        where = f" of {self.point_id}" if self.point_id else ""
        label = f"{self.status.value} (simulated)" if self.simulated else self.status.value
        return f"{label}: {self.check} {self.target}{where}: {self.details}".rstrip(": ")

    def to_probe_result(self) -> ProbeResult:
        """This result as a probe's (`backuppolicy.checks.probes.run_probe`), which keeps it as ``check_result``."""
        return ProbeResult(
            self.check,
            ok=self.ok,
            details=self.details,
            evidence=dict(self.evidence),
            check_result=self,
        )

    def to_dict(self) -> dict[str, object]:
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
            "simulated": self.simulated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CheckResult:
        """Inverse of `to_dict`.

        Raises:
            TypeError: ``point_id``, ``tier`` or ``application`` is neither text nor null,
                ``issues`` is not a list of text, or ``simulated`` is not a boolean.
        """
        point_id, tier, application = (
            _text_or_none(data, key) for key in ("point_id", "tier", "application")
        )
        issues = data.get("issues", ())
        if not isinstance(issues, list | tuple) or not all(isinstance(i, str) for i in issues):
            raise TypeError("issues: expected a list of text")
        simulated = data.get("simulated", False)  # absent from older logs
        if not isinstance(simulated, bool):
            raise TypeError(f"simulated: expected true or false (got {simulated!r})")
        return cls(
            check=str(data["check"]),
            status=data["status"],
            target=str(data["target"]),
            checked_at=datetime.fromisoformat(str(data["checked_at"])),
            point_id=point_id,
            kind=data.get("kind", CheckKind.VERIFICATION.value),
            tier=tier,
            application=application,
            details=str(data.get("details", "")),
            issues=tuple(i for i in issues if isinstance(i, str)),  # all are (checked above)
            evidence=dict(cast("Mapping[str, object]", data.get("evidence", {}))),
            duration=float(cast("float | str", data.get("duration", 0.0))),
            ran_by=str(data.get("ran_by", "")),
            simulated=simulated,
        )


@attrs.frozen
class ProbeResult:
    """The result of one probe.

    Attributes:
        name: Name of the probe.
        ok: Whether the data was as expected.
        details: One human line: what was found.
        evidence: Machine-readable facts (query, rows, checksums ...).
        check_result: The `backuppolicy.CheckResult` the probe returned, if it returned one
            (the health checks of `backuppolicy.checks.health`); not part of `to_dict`.
    """

    name: str
    ok: bool
    details: str = ""
    evidence: Mapping[str, object] = attrs.field(factory=dict, hash=False)
    check_result: CheckResult | None = attrs.field(default=None, eq=False, repr=False, kw_only=True)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (kept in the restore test's evidence)."""
        return {
            "name": self.name,
            "ok": self.ok,
            "details": self.details,
            "evidence": dict(self.evidence),
        }
