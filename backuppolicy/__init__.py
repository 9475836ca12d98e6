"""backuppolicy: a written backup policy as code that runs, proves itself and can be audited.

Import the core from here (it never imports boto3); AWS targets from `backuppolicy.aws`,
local directories from `backuppolicy.local`, test support from `backuppolicy.testing`.
"""

from backuppolicy.durations import Duration
from backuppolicy.exceptions import (
    BackendError,
    BackendNotFoundError,
    BackupPolicyError,
    PermissionDeniedError,
    PolicyError,
    ProtectedPointError,
    ResourceNotFoundError,
    ThrottledError,
    VerificationError,
)
from backuppolicy.model import LegalHold, RecoveryPoint, Status
from backuppolicy.notify import (
    Event,
    EventKind,
    LogNotifier,
    Notifier,
    SnsNotifier,
    WebhookNotifier,
)
from backuppolicy.policy import (
    NotificationSpec,
    Objective,
    Policy,
    PolicyLookupError,
    TargetSpec,
    TierSpec,
    VerificationSpec,
)
from backuppolicy.retention import (
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
)
from backuppolicy.schedule import Cadence, Schedule, rolling_slots
from backuppolicy.targets import BackupTarget, Destination, IsolationProfile, RestoredResource

__version__ = "0.1.0"

__all__ = [
    "AnyOf",
    "BackendError",
    "BackendNotFoundError",
    "BackupPolicyError",
    "BackupTarget",
    "Cadence",
    "Destination",
    "Duration",
    "Event",
    "EventKind",
    "IsolationProfile",
    "KeepDaily",
    "KeepHourly",
    "KeepLast",
    "KeepMonthly",
    "KeepTags",
    "KeepWeekly",
    "KeepWithin",
    "KeepYearly",
    "LegalHold",
    "LogNotifier",
    "MaxAge",
    "NotificationSpec",
    "Notifier",
    "Objective",
    "PermissionDeniedError",
    "Policy",
    "PolicyError",
    "PolicyLookupError",
    "ProtectedPointError",
    "RecoveryPoint",
    "ResourceNotFoundError",
    "RestoredResource",
    "RetentionPlan",
    "RetentionRule",
    "RetentionRuleT",
    "Schedule",
    "SnsNotifier",
    "Status",
    "TargetSpec",
    "ThrottledError",
    "TierSpec",
    "VerificationError",
    "VerificationSpec",
    "WebhookNotifier",
    "__version__",
    "as_rule",
    "rolling_slots",
]
