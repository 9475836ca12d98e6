"""Prove the backups: the `Verifier` protocol, its `VerifyContext`, and the built-in checks.

A verifier looks at one target (and usually one of its points) and returns a `CheckResult`:
pass, fail, warn or skipped, with human details and machine-readable evidence. Every result
can be recorded in the backup testing log (`backuppolicy.workflows.testlog`), and the audit
(`backuppolicy.workflows.backups.audit`) reads them back.

The results are values of `backuppolicy.core.results`; the built-in checks live in
`backuppolicy.checks.metadata` (completed, encrypted, not public, fresh, off-site copy, S3 and
RDS settings), `backuppolicy.checks.integrity` and `backuppolicy.checks.restore_test`. This
module re-exports them all.

Example:
    >>> from datetime import datetime, UTC
    >>> result = CheckResult(check="encrypted", status=CheckStatus.PASS, target="orders-db",
    ...                      point_id="snap-1", details="encrypted with alias/backups",
    ...                      checked_at=datetime(2026, 11, 26, 5, 0, tzinfo=UTC))
    >>> result.ok, result.status.value
    (True, 'pass')
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from backuppolicy.checks._common import newest_good
from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.metadata import (
    BucketSettingMatchesPolicy,
    Completed,
    Encrypted,
    Fresh,
    HasOffsiteCopy,
    NotPublic,
    ObjectLock,
    SettingsMatchPolicy,
    VersioningEnabled,
    expected_rds_settings,
)
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.core.model import RecoveryPoint, ensure_aware
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.targets import BackupTarget, IsolationProfile, SweptResource

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.targets import RestoredResource

__all__ = [
    "BucketSettingMatchesPolicy",
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


def _aware(_inst: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    ensure_aware(value, field=attribute.name)


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
        simulated: The checks run against a stand-in world (the demo's moto AWS, a test
            double): every result is marked ``simulated``.
    """

    now: datetime = attrs.field(validator=_aware)
    points: Sequence[RecoveryPoint] = ()
    policy: Policy | None = None
    application: str | None = None
    isolation: IsolationProfile = attrs.field(factory=IsolationProfile)
    ran_by: str = ""
    endpoint_resolver: Callable[[RestoredResource], object] | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    simulated: bool = False


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


def default_ran_by() -> str:
    """``user@host`` of this process: who ran a check, unless told otherwise."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
