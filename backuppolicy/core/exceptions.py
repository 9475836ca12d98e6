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
    ├─ LeaseHeldError                                       another run holds the run lease (.holder)
    └─ VerificationError                                    a verification failed (.result)
        └─ UnsafeArchiveError                               an archive, sidecar or manifest refused as hostile or too big

Messages state the field or resource, what was expected and what was given, e.g.
``"targets[2].retention.max_age: expected a duration like '35d' (got 'soon')."``
"""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING

from backuppolicy.core.redaction import redact_text

if TYPE_CHECKING:
    from backuppolicy.core.model import RecoveryPoint

__all__ = [
    "BackendError",
    "BackendNotFoundError",
    "BackupPolicyError",
    "DecryptionError",
    "LeaseHeldError",
    "PermissionDeniedError",
    "PolicyError",
    "ProtectedPointError",
    "ResourceNotFoundError",
    "ThrottledError",
    "UnsafeArchiveError",
    "VerificationError",
    "short_repr",
]

_QUOTE_LIMIT = 120
_PATH_LIMIT = 200  # a field path longer than this is cut in messages and in PolicyError.path
_SCAN_LIMIT = 4096  # a quoted string is cut to this before its credentials are redacted


class _RedactingRepr(reprlib.Repr):
    """`reprlib.Repr` that redacts the URLs and ``password=`` items of the strings it quotes.

    An error message quotes the value it refuses, and that value may hold a credential that was
    never named as a secret (a webhook URL pasted into the wrong field, a section of the wrong
    shape around an inline token); the quote hides it, as `backuppolicy.Secret` would.
    """

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(redact_text(x[:_SCAN_LIMIT]), level)


_REPR = _RedactingRepr()
_REPR.maxlevel = 3
_REPR.maxstring = _QUOTE_LIMIT
_REPR.maxother = _QUOTE_LIMIT
_REPR.maxlong = 40
_INT_BITS = 4000  # about 1,200 digits, far below int's 4,300-digit str() limit


def short_repr(value: object, limit: int = _QUOTE_LIMIT) -> str:
    """The ``repr`` of *value* for an error message, bounded in time and length.

    Nested containers are shown to three levels and a few items each, and the text is cut
    to *limit* characters, so quoting a hostile value (a billion-laughs structure, an integer
    of a million digits, a 50 MB string) stays cheap and the message stays readable. URLs and
    ``password=`` items in the strings quoted are redacted (`backuppolicy.core.secrets.redact_text`):
    a credential in a value of the wrong shape is not printed either.

    Example:
        >>> short_repr("x" * 500, limit=12)
        "'xxxxx...xx'"
        >>> short_repr([[[[1]]]])
        '[[[[...]]]]'
    """
    if isinstance(value, int) and value.bit_length() > _INT_BITS:  # repr() itself would refuse
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    text = _REPR.repr(value)
    if len(text) > limit:
        keep = max(limit - 3, 2)
        text = text[: keep - keep // 3] + "..." + text[len(text) - keep // 3 :]
    return text


def cut_path(path: str) -> str:
    """*path* cut to `_PATH_LIMIT` characters: it holds keys of the file, and one may be huge."""
    return path if len(path) <= _PATH_LIMIT else path[: _PATH_LIMIT - 3] + "..."


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
        got: object = None,
    ) -> None:
        self.path = path
        self.expected = expected
        self.got = got
        super().__init__(message)

    @classmethod
    def for_field(cls, path: str, expected: str, got: object, *, hint: str = "") -> PolicyError:
        """Build the standard message: ``"<path>: expected <expected> (got <got!r>)."``.

        Example:
            >>> str(PolicyError.for_field("retention.keep_daily", "an integer >= -1", "seven"))
            "retention.keep_daily: expected an integer >= -1 (got 'seven')."
        """
        path = cut_path(path)
        where = f"{path}: " if path else ""
        message = f"{where}expected {expected} (got {short_repr(got)})."
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

    def __init__(self, message: str, *, point: RecoveryPoint | None = None) -> None:
        self.point = point
        super().__init__(message)


class VerificationError(BackupPolicyError):
    """A verification of a backup failed.

    Attributes:
        result: The failed check result, as returned by the verifier.
    """

    def __init__(self, message: str, *, result: object = None) -> None:
        self.result = result
        super().__init__(message)


class UnsafeArchiveError(VerificationError):
    """An archive, its sidecar or its manifest was refused as hostile; nothing was restored.

    Raised for members that could write outside the destination (absolute paths, ``..``
    components, device files and pipes, hard links, symbolic links whose target escapes the
    destination, paths through symbolic links), and for archives, sidecars and manifests over
    the size limits: more members, more expanded bytes or a higher compression ratio than
    allowed, more bytes than the destination has free, or a sidecar or manifest larger than
    its maximum (see `backuppolicy.local`). The message names the archive.

    Attributes:
        result: ``{"member": <member or file name>, "reason": <why it was refused>}``.
    """


class LeaseHeldError(BackupPolicyError):
    """Another run holds the lease of the policy (`backuppolicy.run`): this run did nothing.

    Attributes:
        holder: The `~backuppolicy.core.capabilities.LeaseRecord` of the run that holds it, or
            ``None`` when it could not be read.
        where: Where the lease lives (a file path or ``s3://bucket/key``).
    """

    def __init__(self, message: str, *, holder: object = None, where: str = "") -> None:
        self.holder = holder
        self.where = where
        super().__init__(message)


class DecryptionError(VerificationError):
    """An encrypted archive could not be decrypted: wrong key, tampered, reordered or truncated.

    The message names the archive and the key by reference, never a key. A restore that
    raises it has written nothing to its destination.
    """
