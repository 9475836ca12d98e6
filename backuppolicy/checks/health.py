"""Health checks: the probes that a recovery plan's steps run, usable by restore tests too.

One probe family serves both: `backuppolicy.checks.probes.run_probe` runs any probe against a
`~backuppolicy.checks.probes.ProbeContext`, and these checks are probes like `SqlProbe` or
`FileProbe`. Each check's ``run`` takes the endpoint to check (a string, ``{endpoint}`` in its
URL, address or DSN is replaced by it) or a ``ProbeContext`` (its ``endpoint``), and returns a
`CheckResult` with its evidence; `run_probe` turns that into a ``ProbeResult``
(`CheckResult.to_probe_result`). A recovery plan runs them with bounded retries
(`backuppolicy.workflows.recovery.HealthCheck`), `backuppolicy.restore` with
`backuppolicy.checks.running.run_check`, and a restore test (`RestoreTest`) with `run_probe`.

* `HttpCheck`: an HTTP GET answers a status (and contains a text);
* `TcpCheck`: a TCP port accepts connections;
* `SqlCheck`: a query succeeds (and returns a value), through `SqlProbe`;
* `CallableCheck`: a function of the endpoint.

Example:
    >>> from backuppolicy.checks.probes import ProbeContext, run_probe
    >>> check = CallableCheck(lambda endpoint: endpoint == "db:5432", ref="is-db")
    >>> check.run("db:5432").ok, run_probe(check, ProbeContext(None, "db:5432")).ok
    (True, True)
"""

from __future__ import annotations

import http.client
import shlex
import socket
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from backuppolicy.checks.probes import ProbeContext, SqlProbe
from backuppolicy.checks.running import run_check
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.core.secrets import Secret, looks_secret, redact_url, reveal, scrub

if TYPE_CHECKING:
    from backuppolicy.core.secrets import SecretKind

__all__ = ["CallableCheck", "Check", "HttpCheck", "SqlCheck", "TcpCheck"]


def _now() -> datetime:
    return datetime.now(UTC)


def _issues(*items: str) -> tuple[str, ...]:
    """*items* for `CheckResult.issues`."""
    return items


def _endpoint(endpoint: str | ProbeContext | None, *, reveal_secret: bool = False) -> str | None:
    """The endpoint to check: *endpoint*, or the endpoint of a probe context.

    A `Secret` endpoint (`StaticEndpoint` with a DSN) is revealed only for the checks that
    connect with it and scrub it from what they report (`SqlCheck`); the others get it redacted.
    """
    if not isinstance(endpoint, ProbeContext):
        return endpoint
    value = endpoint.endpoint
    if value is None:
        return None
    return str(reveal(value)) if reveal_secret else str(value)


def _result(
    name: str, *, ok: bool, details: str, target: str = "recovery", **evidence: object
) -> CheckResult:
    return CheckResult(
        check=name,
        status=CheckStatus.PASS if ok else CheckStatus.FAIL,
        target=target,
        checked_at=_now(),
        kind=CheckKind.RESTORE_TEST,
        details=details,
        issues=_issues() if ok else _issues(details),
        evidence=evidence,
    )


def _fill(text: str, endpoint: str | None) -> str:
    return text.replace("{endpoint}", endpoint or "")


def _url_as_secret(value: object) -> object:
    """A URL with a token or a password as a `Secret`; anything else as it is."""
    return Secret(value) if isinstance(value, str) and looks_secret(value, "url") else value


def _dsn_as_secret(value: object) -> object:
    """A DSN with a password as a `Secret`; anything else as it is."""
    return Secret(value) if isinstance(value, str) and looks_secret(value, "dsn") else value


def _shown(value: str | Secret, kind: SecretKind = "url") -> str:
    """*value* for display: a `Secret` redacted, a string with its credentials redacted."""
    if isinstance(value, Secret):
        return str(value)
    return redact_url(value) if looks_secret(value, kind) else value


def _shell_value(value: str | Secret) -> str:
    """*value* quoted for a shell command: a reference as ``"$NAME"`` / ``"$(cat PATH)"``."""
    if isinstance(value, Secret):
        ref = value.to_dict()
        if isinstance(ref, dict) and "env" in ref:
            return f'"${ref["env"]}"'
        if isinstance(ref, dict):
            return f'"$(cat {shlex.quote(ref["file"])})"'
    return f"'{_shown(value)}'"


@attrs.frozen
class HttpCheck:
    """An HTTP GET that must answer with *status* (and contain *contains*).

    Example:
        >>> HttpCheck("http://{endpoint}/health").describe()
        'HTTP GET http://{endpoint}/health answers 200'

    Attributes:
        url: The URL; ``{endpoint}`` is replaced by the endpoint checked.
        status: The HTTP status expected.
        contains: Text the body must contain, if any.
        timeout: Seconds to wait for the answer.
        name: Name of the check in results.
    """

    kind: ClassVar[str] = "http"
    url: str | Secret = attrs.field(converter=_url_as_secret)
    status: int = 200
    contains: str | None = None
    timeout: float = 5.0
    name: str = "http"

    def describe(self) -> str:
        """One line: what is checked."""
        also = f" containing {self.contains!r}" if self.contains else ""
        return f"HTTP GET {_shown(self.url)} answers {self.status}{also}"

    def command(self) -> str:
        """A shell command that does the same check."""
        return f"curl -fsS --max-time {self.timeout:g} {_shell_value(self.url)}"

    def run(self, endpoint: str | ProbeContext | None = None) -> CheckResult:
        """GET the URL and compare the status and body (a secret URL is redacted in the result)."""
        endpoint = _endpoint(endpoint)
        try:
            url = _fill(reveal(self.url), endpoint)
        except PolicyError as exc:
            return _result(self.name, ok=False, details=str(exc))
        shown = _shown(url) if not isinstance(self.url, Secret) else redact_url(url)
        if not url.startswith(("http://", "https://")):
            return _result(self.name, ok=False, details=f"not an http(s) URL: {shown!r}")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 - http(s) checked above
                status, body = int(response.status), response.read(65536).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, body = int(exc.code), ""
            exc.close()
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return _result(
                self.name, ok=False, details=f"GET {shown}: {scrub(str(exc), [url])}", url=shown
            )
        ok = status == self.status and (self.contains is None or self.contains in body)
        why = f"GET {shown}: {status}" + (
            "" if ok or status != self.status else f", body lacks {self.contains!r}"
        )
        return _result(self.name, ok=ok, details=why, url=shown, status=status)

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the plan file has it (a secret as its reference, or redacted)."""
        return {
            "kind": "http",
            "url": self.url.to_dict() if isinstance(self.url, Secret) else self.url,
            "status": self.status,
            "contains": self.contains,
            "timeout": self.timeout,
        }


@attrs.frozen
class TcpCheck:
    """A TCP connection to *address* (``host:port``) must succeed.

    Attributes:
        address: ``host:port``; ``{endpoint}`` is replaced by the endpoint checked.
        timeout: Seconds to wait for the connection.
        name: Name of the check in results.
    """

    kind: ClassVar[str] = "tcp"
    address: str
    timeout: float = 5.0
    name: str = "tcp"

    def describe(self) -> str:
        """One line: what is checked."""
        return f"TCP port {self.address} accepts connections"

    def command(self) -> str:
        """A shell command that does the same check."""
        if "{endpoint}" in self.address:
            return f'ENDPOINT="{self.address}"; nc -z -w {self.timeout:g} "${{ENDPOINT%:*}}" "${{ENDPOINT##*:}}"'
        host, _, port = self.address.rpartition(":")
        return f"nc -z -w {self.timeout:g} {host} {port}"

    def run(self, endpoint: str | ProbeContext | None = None) -> CheckResult:
        """Open and close one connection."""
        endpoint = _endpoint(endpoint)
        address = _fill(self.address, endpoint)
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            return _result(self.name, ok=False, details=f"expected host:port (got {address!r})")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=self.timeout):
                pass
        except OSError as exc:
            return _result(
                self.name, ok=False, details=f"connect {address}: {exc}", address=address
            )
        return _result(self.name, ok=True, details=f"connect {address}: ok", address=address)

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the plan file has it."""
        return {"kind": "tcp", "address": self.address, "timeout": self.timeout}


def _sqlite_connect(database: str) -> sqlite3.Connection:
    path = database.removeprefix("sqlite:///")
    if "://" in path:
        raise PolicyError.for_field(
            "check.connect",
            "a connection factory ('module:function') for databases other than SQLite",
            redact_url(database),
        )
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


@attrs.frozen
class SqlCheck:
    """A SQL query that must succeed (and return *expect* in its first column of its first row).

    Example:
        >>> import sqlite3, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "shop.db")
        >>> with sqlite3.connect(path) as db:
        ...     _ = db.execute("create table orders (id integer)")
        >>> SqlCheck("{endpoint}", "select count(*) from orders", expect=0).run(path).ok
        True

    Attributes:
        database: What *connect* is given (a DSN, a path); ``{endpoint}`` is replaced.
        query: The query.
        expect: The value expected in the first column of the first row (``None``: any).
        connect: ``connect(database)`` returning a DB-API connection; default SQLite (read-only).
        name: Name of the check in results.
    """

    kind: ClassVar[str] = "sql"
    database: str | Secret = attrs.field(converter=_dsn_as_secret)
    query: str
    expect: object = None
    connect: Callable[[str], Any] | None = attrs.field(default=None, eq=False)
    name: str = "sql"

    def describe(self) -> str:
        """One line: what is checked."""
        also = f" and returns {self.expect!r}" if self.expect is not None else ""
        return f"SQL `{self.query}` on {_shown(self.database, 'dsn')} succeeds{also}"

    def command(self) -> str:
        """A shell command that does the same check (for PostgreSQL; adapt to your engine)."""
        return f"psql \"$DATABASE_URL\" -tAc '{self.query}'"

    def run(self, endpoint: str | ProbeContext | None = None) -> CheckResult:
        """Connect, run the query, compare the first value (the DSN's password never shows)."""
        endpoint = _endpoint(endpoint, reveal_secret=True)
        try:
            database = _fill(reveal(self.database), endpoint)
        except PolicyError as exc:
            return _result(self.name, ok=False, details=str(exc))
        shown = redact_url(database)
        rows: list[tuple[object, ...]] = []

        def keep(found: list[tuple[object, ...]]) -> bool:
            rows.extend(found)
            return True  # any rows: the first value is compared below

        try:
            probe = SqlProbe(
                self.query, expect=keep, connect=self.connect or _sqlite_connect, name=self.name
            )
        except PolicyError as exc:
            return _result(self.name, ok=False, details=str(exc))
        # SqlProbe reports a driver error with the DSN scrubbed out of the text.
        probed = probe.run(ProbeContext(resource=None, endpoint=database))
        if not probed.ok:
            return _result(
                self.name, ok=False, details=f"{self.query!r} on {shown}: {probed.details}"
            )
        value = rows[0][0] if rows and rows[0] else None
        ok = self.expect is None or value == self.expect
        return _result(
            self.name,
            ok=ok,
            details=f"{self.query!r} on {shown} returned {value!r}",
            value=repr(value),
        )

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the plan file has it (a secret as its reference, or redacted)."""
        database = self.database
        return {
            "kind": "sql",
            "database": database.to_dict() if isinstance(database, Secret) else database,
            "query": self.query,
            "expect": self.expect,
        }


@attrs.frozen
class CallableCheck:
    """A custom check: ``function(endpoint)`` returning a `CheckResult`, a bool or ``None``.

    Attributes:
        function: The callable.
        ref: Where it came from (a hook name or ``"module:function"``), for the runbook.
        name: Name of the check in results.
    """

    kind: ClassVar[str] = "callable"
    function: Callable[[str | None], object] = attrs.field(eq=False)
    ref: str = ""
    name: str = ""

    def describe(self) -> str:
        """One line: what is checked."""
        return f"custom check {self.ref or self.name or getattr(self.function, '__name__', 'callable')}"

    def command(self) -> str:
        """The Python call that does the same check."""
        return f"{self.ref or getattr(self.function, '__name__', 'check')}(endpoint)"

    def run(self, endpoint: str | ProbeContext | None = None) -> CheckResult:
        """Call the function with the endpoint."""
        endpoint = _endpoint(endpoint)
        name = self.name or self.ref or getattr(self.function, "__name__", "callable")
        return run_check(_Named(name, self.function), endpoint, target="recovery")

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the plan file has it."""
        return {"kind": "callable", "function": self.ref}


@attrs.frozen
class _Named:
    name: str
    function: Callable[[str | None], object]

    def __call__(self, endpoint: str | None) -> object:
        return self.function(endpoint)


Check = HttpCheck | TcpCheck | SqlCheck | CallableCheck
