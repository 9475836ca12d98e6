"""Secrets that never print: webhook tokens, DSN passwords and header values.

One type carries them: `Secret`. Its ``repr``, ``str``, ``format``, `Secret.to_dict` and JSON
form are redacted; only `Secret.reveal` gives the value, and the library calls it only where
the request is made (the HTTP request of a webhook, the connect of a SQL check or probe).

A secret is either a literal (built in Python code) or a reference that is read when revealed:

* ``Secret.from_env("SHOP_WEBHOOK_URL")``: the environment variable, written
  ``{env: SHOP_WEBHOOK_URL}`` in a policy or recovery plan file;
* ``Secret.from_file("/run/secrets/db")``: the content of a file (one trailing newline
  dropped), written ``{file: /run/secrets/db}``.

Policy and recovery plan files never hold a secret inline: `secret_field` refuses a webhook URL
with a token, a DSN with a password or a credential header value, and says how to refer to it.

`redact_url` keeps the harmless parts of a URL or DSN, so messages still help.

Example:
    >>> hook = Secret("https://hooks.slack.com/services/T000/B000/XXXX")
    >>> hook
    Secret('https://hooks.slack.com/services/***')
    >>> f"posting to {hook}"
    'posting to https://hooks.slack.com/services/***'
    >>> hook.reveal()
    'https://hooks.slack.com/services/T000/B000/XXXX'
    >>> redact_url("postgresql://app:hunter2@db.internal:5432/shop")
    'postgresql://app:***@db.internal:5432/shop'
    >>> Secret.from_env("SHOP_WEBHOOK_URL")
    Secret(env='SHOP_WEBHOOK_URL')
"""

from __future__ import annotations

import hmac
import os
import re
import stat
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final, Literal, NoReturn, TypeVar, final

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.redaction import (
    HTTP_SCHEMES,
    KV_SECRET_RE,
    REDACTED,
    SECRET_PATH_HOSTS,
    looks_token,
    redact_text,
    redact_url,
)

__all__ = [
    "Secret",
    "json_default",
    "looks_secret",
    "redact_text",
    "redact_url",
    "reveal",
    "scrub",
    "secret_cause",
    "secret_field",
]

_MAX_FILE_BYTES: Final = 64 * 1024
_ENV_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SENSITIVE_HEADER_RE: Final = re.compile(
    r"(?i)auth|token|key|secret|passw|cookie|signature|session|credential"
)
_SENSITIVE_QUERY_RE: Final = re.compile(
    r"(?i)auth|token|key|secret|passw|pwd|sig|session|credential|code"
)
_CREDENTIAL_VALUE_RE: Final = re.compile(r"(?i)^\s*(bearer|basic|token|digest|apikey)\s+\S")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")

SecretKind = Literal["webhook", "url", "dsn", "header"]
"""What a secret field holds: a webhook URL, another URL, a database DSN, or an HTTP header value."""

_T = TypeVar("_T")


def looks_secret(value: str, kind: SecretKind, header: str = "") -> bool:  # noqa: PLR0911 - one answer per kind
    """Whether *value*, written inline in a file, holds a credential of *kind*.

    ``"webhook"``: user info, a query, a fragment or any path segment but a short lowercase
    word (webhook services put their tokens in the path); on the hosts of known webhook services
    (Slack, Discord, Teams, Google Chat ...), any path at all. ``"url"``: user info, or a query
    item named like a credential (``token``, ``key``, ``sig`` ...). ``"dsn"``: a password (in
    ``user:password@`` or ``password=``). ``"header"``: a credential header name (``Authorization``,
    ``X-Api-Key`` ...) or a value that looks like one (``Bearer ...``, a long token).

    Example:
        >>> looks_secret("https://hooks.slack.com/services/T000/B000/XXXX", "webhook")
        True
        >>> looks_secret("http://{endpoint}/api/v1/health", "url")
        False
        >>> looks_secret("postgresql://app@db/shop", "dsn")
        False
    """
    if REDACTED in value:
        return True
    if kind == "header":
        return bool(
            _SENSITIVE_HEADER_RE.search(header)
            or _CREDENTIAL_VALUE_RE.match(value)
            or _TOKEN_RE.search(value)
        )
    if KV_SECRET_RE.search(value):
        return True
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return True
    if not parts.scheme or not parts.netloc:
        return False
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        return kind != "dsn" or ":" in userinfo
    if kind == "dsn":
        return False
    if kind == "url":
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        return any(_SENSITIVE_QUERY_RE.search(key) for key, _ in query)
    segments = [s for s in parts.path.split("/") if s and "{endpoint}" not in s]
    if segments and SECRET_PATH_HOSTS.search(parts.hostname or ""):
        return True
    return bool(parts.query or parts.fragment or any(looks_token(s) for s in segments))


@final
class Secret:
    """A secret value that is redacted everywhere but where it is used.

    ``repr``, ``str`` and ``format`` show a redacted form (`redact_url` of a URL or DSN, ``***``
    otherwise) or the reference; `to_dict` and the JSON form (`json_default`) do too. Copies
    are the same object; pickling works for references and is refused for literals.

    Example:
        >>> token = Secret("Bearer abc123")
        >>> token, str(token), f"{token:>5}"
        (Secret('***'), '***', '  ***')
        >>> Secret.from_file("/run/secrets/db").to_dict()
        {'file': '/run/secrets/db'}

    Args:
        value: The secret itself (a literal).
    """

    __slots__ = ("_display", "_ref", "_value")

    _value: str | None
    _ref: tuple[str, str] | None
    _display: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise PolicyError(
                f"a Secret holds text (got a {type(value).__name__})",
                expected="text",
                got=type(value).__name__,
            )
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_ref", None)
        # A URL or DSN shows its harmless parts; anything else (a token, a header) shows ***.
        display = redact_url(value)
        if display == value and not _is_plain_url(value):
            display = REDACTED
        object.__setattr__(self, "_display", display)

    @classmethod
    def _reference(cls, source: str, name: str) -> Secret:
        secret = object.__new__(cls)
        object.__setattr__(secret, "_value", None)
        object.__setattr__(secret, "_ref", (source, name))
        object.__setattr__(secret, "_display", f"{{{source}: {name}}}")
        return secret

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """A secret read from the environment variable *name* each time it is revealed."""
        if not isinstance(name, str) or not _ENV_RE.fullmatch(name):
            # Not quoted: a secret pasted where its variable's name belongs must not print.
            raise PolicyError(
                "env: expected an environment variable name (letters, digits and _; "
                "the value given is not shown).",
                path="env",
                expected="an environment variable name",
                got=REDACTED,
            )
        return cls._reference("env", name)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Secret:
        """A secret read from the file at *path* (absolute) each time it is revealed."""
        text = os.fspath(path) if isinstance(path, str | os.PathLike) else path
        if not isinstance(text, str) or not text.startswith("/") or "\x00" in text:
            raise PolicyError(
                "file: expected an absolute file path (the value given is not shown).",
                path="file",
                expected="an absolute file path",
                got=REDACTED,
            )
        return cls._reference("file", text)

    @property
    def reference(self) -> str | None:
        """``"{env: NAME}"`` or ``"{file: PATH}"`` for a reference, ``None`` for a literal."""
        return self._display if self._ref else None

    def reveal(self) -> str:
        """The secret itself. Call it only where the request is made, and never log it.

        Raises:
            PolicyError: The environment variable is not set or empty, or the file cannot be
                read, is not a regular file, is empty or is larger than 64 KiB. The message
                names the reference, never the value.
        """
        if self._value is not None:
            return self._value
        assert self._ref is not None  # noqa: S101 - a Secret is a literal or a reference
        source, name = self._ref
        if source == "env":
            value = os.environ.get(name)
            if not value:
                self._fail(
                    "the environment variable is not set" if value is None else "it is empty"
                )
            return value
        return self._read_file(Path(name))

    def _read_file(self, path: Path) -> str:
        try:
            # Non-blocking, so that a FIFO named as the secret cannot hang us.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    self._fail("not a regular file")
                data = handle.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            self._fail(f"cannot be read ({exc.strerror or type(exc).__name__})")
        if len(data) > _MAX_FILE_BYTES:
            self._fail(f"larger than {_MAX_FILE_BYTES // 1024} KiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self._fail("not UTF-8 text")
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            self._fail("it is empty")
        return text

    def _fail(self, why: str) -> NoReturn:
        raise PolicyError(
            f"secret {self._display}: {why}.",
            path=self._display,
            expected="a readable secret",
            got=None,
        ) from None

    def to_dict(self) -> dict[str, str] | str:
        """JSON-ready form: ``{"env": NAME}`` or ``{"file": PATH}``, else the redacted text."""
        if self._ref:
            return {self._ref[0]: self._ref[1]}
        return self._display

    def __repr__(self) -> str:
        if self._ref:
            return f"Secret({self._ref[0]}={self._ref[1]!r})"
        return f"Secret({self._display!r})"

    def __str__(self) -> str:
        return self._display

    def __format__(self, spec: str) -> str:
        return format(self._display, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        if self._ref or other._ref:
            return self._ref == other._ref
        assert self._value is not None  # noqa: S101
        assert other._value is not None  # noqa: S101
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._ref or self._display))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Secret is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Secret is immutable (cannot delete {name!r})")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce__(self) -> tuple[Callable[[str], Secret], tuple[str]]:
        if self._ref:
            factory = Secret.from_env if self._ref[0] == "env" else Secret.from_file
            return factory, (self._ref[1],)
        raise TypeError(
            f"cannot pickle a literal Secret ({self._display}); "
            "use Secret.from_env or Secret.from_file, which pickle as references"
        )


def _is_plain_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc) and not looks_secret(value, "webhook")


def reveal(value: Secret | _T) -> str | _T:
    """*value* revealed if it is a `Secret`, else *value* itself (for fields that take both)."""
    return value.reveal() if isinstance(value, Secret) else value


def scrub(text: str, secrets: Iterable[object]) -> str:
    """*text* with every revealed secret of *secrets* (and its parts) replaced by ``***``.

    For wrapping errors of HTTP clients and database drivers, which may quote the URL or DSN
    they were given. Also redacts URLs and ``password=`` items in *text*.

    Example:
        >>> scrub("could not connect to postgresql://app:pw123@db/shop: pw123 rejected",
        ...       ["postgresql://app:pw123@db/shop"])
        'could not connect to postgresql://app:***@db/shop: *** rejected'
    """
    values = [v.reveal() if isinstance(v, Secret) else v for v in secrets]
    for value in (v for v in values if isinstance(v, str) and v):
        text = text.replace(value, redact_url(value) if redact_url(value) != value else REDACTED)
        for part in _parts(value):
            text = text.replace(part, REDACTED)
    return redact_text(text)


def _parts(value: str) -> list[str]:
    """The secret parts of a URL or DSN: password, user info, query values, path tokens."""
    found: list[str] = [m[3].strip("'\"") for m in KV_SECRET_RE.finditer(value)]
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return found
    if parts.password:
        found += [parts.password, urllib.parse.unquote(parts.password)]
    if parts.username and parts.scheme.lower() in HTTP_SCHEMES:
        found.append(parts.username)
    found += [v for _, v in urllib.parse.parse_qsl(parts.query) if v]
    if parts.scheme.lower() in HTTP_SCHEMES:
        found += [s for s in parts.path.split("/")[2:] if s]
        found += [s for s in parts.path.split("/")[1:2] if s and looks_token(s)]
    # Longest first, and never a fragment so short that it would blank out ordinary words.
    return sorted({p for p in found if len(p) >= 4}, key=len, reverse=True)  # noqa: PLR2004


def secret_cause(exc: BaseException, secrets: Iterable[object]) -> BaseException | None:
    """*exc* if no exception of its chain quotes a secret of *secrets*, else ``None``.

    For ``raise Wrapped(scrubbed message) from secret_cause(exc, secrets)``: tracebacks print
    the text of every chained exception, so an original that quotes the URL or DSN is dropped
    (its type and scrubbed text are in the new message).
    """
    values = [v.reveal() if isinstance(v, Secret) else v for v in secrets]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{current} {current.args!r}"
        if scrub(text, values) != text:
            return None
        current = current.__cause__ or current.__context__
    return exc


def json_default(value: object) -> dict[str, str] | str:
    """A ``json.dumps(default=...)`` that writes a `Secret` redacted (`Secret.to_dict`)."""
    if isinstance(value, Secret):
        return value.to_dict()
    return str(value)


_HOW: Final = {
    "webhook": "a webhook URL that holds a token or a password (in its path, query or user:password@)",
    "url": "a URL that holds a token or a password (in its query or user:password@)",
    "dsn": "a DSN that holds a password",
    "header": "a header value that holds a credential",
}


def secret_field(value: object, path: str, *, kind: SecretKind, header: str = "") -> Secret | str:
    """Parse a field of a policy or recovery plan file that may hold a secret.

    Accepts a `Secret`, a reference mapping ``{env: NAME}`` or ``{file: /abs/path}``, or a
    plain string that holds no credential (returned as it is). An inline credential is a
    `PolicyError` that names *path* and says how to refer to it, without quoting it.

    Example:
        >>> secret_field({"env": "SHOP_WEBHOOK_URL"}, "settings.url", kind="webhook")
        Secret(env='SHOP_WEBHOOK_URL')
        >>> secret_field("https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXX",
        ...              "settings.url", kind="webhook")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        backuppolicy.core.exceptions.PolicyError: settings.url: ...{env: SOME_VARIABLE}...
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in {"env", "file"}:
            raise PolicyError.for_field(
                path,
                "text, or a reference to a secret: {env: NAME} or {file: /path}",
                {str(k): "..." for k in value},
            )
        ((source, name),) = value.items()
        try:
            return Secret.from_env(name) if source == "env" else Secret.from_file(name)
        except PolicyError as exc:
            raise PolicyError(
                f"{path}.{exc}", path=f"{path}.{exc.path}", expected=exc.expected, got=exc.got
            ) from None
    if not isinstance(value, str):
        raise PolicyError.for_field(
            path,
            "text, or a reference to a secret: {env: NAME} or {file: /path}",
            type(value).__name__,
        )
    if looks_secret(value, kind, header):
        message = (
            f"{path}: {_HOW[kind]} must not be written inline (the value is not shown). "
            "Name it by reference instead, e.g. "
            f"'{path.rpartition('.')[2] or 'value'}: {{env: SOME_VARIABLE}}' or "
            "'{file: /run/secrets/name}', and put the secret there."
        )
        raise PolicyError(
            message,
            path=path,
            expected="a reference to a secret: {env: NAME} or {file: /path}",
            got=REDACTED,
        )
    return value
