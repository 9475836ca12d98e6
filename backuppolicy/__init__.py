"""backuppolicy: a written backup policy as code that runs, proves itself and can be audited.

Import the core from here (it never imports boto3); AWS targets from `backuppolicy.aws`,
local directories from `backuppolicy.local`, test support from `backuppolicy.testing`.
"""

from backuppolicy.checks.integrity import IntegrityCheck
from backuppolicy.checks.metadata import (
    Completed,
    Encrypted,
    Fresh,
    HasOffsiteCopy,
    NotPublic,
    ObjectLock,
    SettingsMatchPolicy,
    VersioningEnabled,
)
from backuppolicy.checks.probes import FileProbe, S3ObjectProbe, SqlProbe, StaticEndpoint
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.size import SizeAnomaly
from backuppolicy.checks.verify import (
    Verifier,
    VerifyContext,
)
from backuppolicy.core.durations import Duration
from backuppolicy.core.exceptions import (
    BackendError,
    BackendNotFoundError,
    BackupPolicyError,
    PermissionDeniedError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    ThrottledError,
    UnsafeArchiveError,
    VerificationError,
)
from backuppolicy.core.locks import PointLock, TierLock
from backuppolicy.core.model import LegalHold, RecoveryPoint, Status
from backuppolicy.core.policy import (
    AccountSpec,
    NotificationSpec,
    Objective,
    Policy,
    PolicyLookupError,
    RunSpec,
    TargetSpec,
    TierSpec,
    VerificationSpec,
)
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.retention import (
    AnyOf,
    KeepDaily,
    KeepHourly,
    KeepLast,
    KeepMonthly,
    KeepTags,
    KeepWeekly,
    KeepWithin,
    KeepYearly,
    MaxAge,
    RetentionPlan,
    RetentionRule,
    RetentionRuleT,
    as_rule,
    rule_from_spec,
)
from backuppolicy.core.schedule import Cadence, Schedule, full_backups_due, rolling_slots
from backuppolicy.core.secrets import Secret, redact_url
from backuppolicy.core.selector import Selector
from backuppolicy.core.targets import BackupTarget, Destination, IsolationProfile, RestoredResource
from backuppolicy.notify import (
    Event,
    EventKind,
    Heartbeat,
    LogNotifier,
    Notifier,
    SnsNotifier,
    WebhookNotifier,
)
from backuppolicy.report import Clause, ComplianceReport, Finding
from backuppolicy.workflows._audit import audit
from backuppolicy.workflows._restore import (
    RestorePlan,
    RestoreResult,
    RestoreStep,
    plan_restore,
    restore,
)
from backuppolicy.workflows.backups import RunReport, TargetRun, backup, backup_now, build_targets
from backuppolicy.workflows.holds import holds, place_hold, release_hold
from backuppolicy.workflows.pruning import ApplyReport, DeleteOutcome, apply, plan_retention
from backuppolicy.workflows.recovery import (
    CallableCheck,
    HttpCheck,
    RecoveryPlan,
    RecoveryReport,
    SqlCheck,
    TcpCheck,
)
from backuppolicy.workflows.testlog import (
    JsonlLogStore,
    LogDamage,
    LogEntry,
    MemoryLogStore,
    OverdueFinding,
    OverdueKind,
    TestLog,
)
from backuppolicy.workflows.unattended import RunDigest, run
from backuppolicy.workflows.verify import restore_test, run_checks, sweep_restore_tests

__version__ = "0.1.0"

__all__ = [
    "AccountSpec",
    "AnyOf",
    "ApplyReport",
    "BackendError",
    "BackendNotFoundError",
    "BackupPolicyError",
    "BackupTarget",
    "Cadence",
    "CallableCheck",
    "CheckKind",
    "CheckResult",
    "CheckStatus",
    "Clause",
    "Completed",
    "ComplianceReport",
    "DeleteOutcome",
    "Destination",
    "Duration",
    "Encrypted",
    "Event",
    "EventKind",
    "FileProbe",
    "Finding",
    "Fresh",
    "HasOffsiteCopy",
    "Heartbeat",
    "HttpCheck",
    "IntegrityCheck",
    "IsolationProfile",
    "JsonlLogStore",
    "KeepDaily",
    "KeepHourly",
    "KeepLast",
    "KeepMonthly",
    "KeepTags",
    "KeepWeekly",
    "KeepWithin",
    "KeepYearly",
    "LegalHold",
    "LogDamage",
    "LogEntry",
    "LogNotifier",
    "MaxAge",
    "MemoryLogStore",
    "NotPublic",
    "NotificationSpec",
    "Notifier",
    "ObjectLock",
    "Objective",
    "OverdueFinding",
    "OverdueKind",
    "PermissionDeniedError",
    "PointLock",
    "Policy",
    "PolicyError",
    "PolicyLookupError",
    "ProtectedPointError",
    "RecoveryPlan",
    "RecoveryPoint",
    "RecoveryReport",
    "ResourceNotFoundError",
    "RestorePlan",
    "RestoreResult",
    "RestoreStep",
    "RestoreTest",
    "RestoredResource",
    "RetentionPlan",
    "RetentionRule",
    "RetentionRuleT",
    "RunDigest",
    "RunReport",
    "RunSpec",
    "S3ObjectProbe",
    "Schedule",
    "Secret",
    "Selector",
    "SettingsMatchPolicy",
    "SizeAnomaly",
    "SnsNotifier",
    "SqlCheck",
    "SqlProbe",
    "StaticEndpoint",
    "Status",
    "TargetRun",
    "TargetSpec",
    "TcpCheck",
    "TestLog",
    "ThrottledError",
    "TierLock",
    "TierSpec",
    "UnsafeArchiveError",
    "VerificationError",
    "VerificationSpec",
    "Verifier",
    "VerifyContext",
    "VersioningEnabled",
    "WebhookNotifier",
    "__version__",
    "apply",
    "as_rule",
    "audit",
    "backup",
    "backup_now",
    "build_targets",
    "full_backups_due",
    "holds",
    "place_hold",
    "plan_restore",
    "plan_retention",
    "redact_url",
    "release_hold",
    "restore",
    "restore_test",
    "rolling_slots",
    "rule_from_spec",
    "run",
    "run_checks",
    "sweep_restore_tests",
]
