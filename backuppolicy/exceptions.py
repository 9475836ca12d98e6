"""The exception tree of backuppolicy.

Every error the library raises on purpose derives from `BackupPolicyError`, and
where a builtin exception fits, from that builtin too, so ``except ValueError``
keeps working for callers that do not know us::

    BackupPolicyError
    ├─ PolicyError(BackupPolicyError, ValueError)          bad configuration, raised at construction
    ├─ BackendNotFoundError(BackupPolicyError, LookupError) no backend registered under a name
    ├─ BackendError                                         a backend call failed (.backend .operation .resource .code)
    │   ├─ PermissionDeniedError                            AWS said AccessDenied / UnauthorizedOperation / ...
    │   ├─ ThrottledError                                   still throttled after every retry
    │   └─ ResourceNotFoundError(BackendError, LookupError) the snapshot, bucket, key ... does not exist
    ├─ ProtectedPointError(BackupPolicyError, PermissionError) refused: the point is held, unmanaged or pending (.point)
    └─ VerificationError                                    a verification failed (.result)

Messages state the field or resource, what was expected and what was given, e.g.
``"targets[2].retention.max_age: expected a duration like '35d' (got 'soon')."``
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendError",
    "BackendNotFoundError",
    "BackupPolicyError",
    "PermissionDeniedError",
    "PolicyError",
    "ProtectedPointError",
    "ResourceNotFoundError",
    "ThrottledError",
    "VerificationError",
]


class BackupPolicyError(Exception):
    """Root of every exception that backuppolicy raises on purpose."""


class PolicyError(BackupPolicyError, ValueError):
    """A policy, rule, schedule or other configuration value is invalid.

    Attributes:
        path: Dotted path of the offending field (``"targets[2].retention.max_age"``),
            or ``""`` when the error is about the whole value.
        expected: What the field accepts, in words.
        got: The value that was given (its ``repr`` is shown in the message).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        expected: str | None = None,
        got: Any = None,
    ) -> None:
        self.path = path
        self.expected = expected
        self.got = got
        super().__init__(message)

    @classmethod
    def for_field(cls, path: str, expected: str, got: Any, *, hint: str = "") -> PolicyError:
        """Build the standard message: ``"<path>: expected <expected> (got <got!r>)."``.

        Example:
            >>> str(PolicyError.for_field("retention.keep_daily", "an integer >= -1", "seven"))
            "retention.keep_daily: expected an integer >= -1 (got 'seven')."
        """
        where = f"{path}: " if path else ""
        message = f"{where}expected {expected} (got {got!r})."
        if hint:
            message = f"{message} {hint}"
        return cls(message, path=path, expected=expected, got=got)


class BackendNotFoundError(BackupPolicyError, LookupError):
    """No backend (target kind, store, notifier) is registered under the requested name.

    Attributes:
        name: The name that was looked up.
        known: The names that are registered.
    """

    def __init__(self, message: str, *, name: str = "", known: tuple[str, ...] = ()) -> None:
        self.name = name
        self.known = known
        super().__init__(message)


class BackendError(BackupPolicyError):
    """A call to a backend (AWS, a directory, a store) failed.

    Attributes:
        backend: Name of the backend or target that made the call (``"orders-db"``).
        operation: The API operation (``"DeleteDBSnapshot"``).
        resource: The resource the call was about (``"bp-orders-db-20261126t040000z"``).
        code: The backend's own error code (``"DBSnapshotNotFound"``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        operation: str = "",
        resource: str = "",
        code: str = "",
    ) -> None:
        self.backend = backend
        self.operation = operation
        self.resource = resource
        self.code = code
        super().__init__(message)


class PermissionDeniedError(BackendError, PermissionError):
    """The backend refused the call for lack of permission (AccessDenied and friends)."""


class ThrottledError(BackendError):
    """The backend kept throttling the call after every retry."""


class ResourceNotFoundError(BackendError, LookupError):
    """The resource a call was about does not exist (any more)."""


class ProtectedPointError(BackupPolicyError, PermissionError):
    """The library refused to delete a point that it must not delete.

    Raised for points under legal hold, points this library does not manage, and
    points that are still pending. Nothing was deleted.

    Attributes:
        point: The protected recovery point.
    """

    def __init__(self, message: str, *, point: Any = None) -> None:
        self.point = point
        super().__init__(message)


class VerificationError(BackupPolicyError):
    """A verification of a backup failed.

    Attributes:
        result: The failed check result, as returned by the verifier.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        self.result = result
        super().__init__(message)
