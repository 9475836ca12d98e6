"""backuppolicy: a written backup policy as code that runs, proves itself and can be audited."""

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

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BackendNotFoundError",
    "BackupPolicyError",
    "Duration",
    "LegalHold",
    "PermissionDeniedError",
    "PolicyError",
    "ProtectedPointError",
    "RecoveryPoint",
    "ResourceNotFoundError",
    "Status",
    "ThrottledError",
    "VerificationError",
    "__version__",
]
