"""Data probes for restore tests: prove that a restored copy holds the data it should.

A restore test (`backuppolicy.checks.restore_test.RestoreTest`) restores a point into the isolation
profile and hands every probe a `ProbeContext`: the restored resource, the endpoint the probes
connect to, the target and the point. A probe returns a `ProbeResult`. Built in:

* `SqlProbe`: runs a query through a DB-API connection factory and compares the rows;
* `FileProbe`: expected files (and their SHA-256) in a restored directory;
* `S3ObjectProbe`: expected objects (and their SHA-256) under a restored S3 prefix.

The health checks of recovery plans are probes of the same family
(`backuppolicy.checks.health`: `HttpCheck`, `TcpCheck`, `SqlCheck` on top of `SqlProbe`,
`CallableCheck`): they take the context's endpoint and return a `backuppolicy.CheckResult`,
which `run_probe` turns into a `ProbeResult`. `run_probe` is the one runner: restore tests,
`backuppolicy.restore` (`backuppolicy.checks.running.run_check`) and recovery plans use it.

Plain callables work too: ``probe(ctx)`` returning ``True``/``None`` (pass), ``False`` (fail)
or a `ProbeResult`; an exception fails the probe with its message.

Where the probes connect is the endpoint resolver's choice (`VerifyContext.endpoint_resolver`):
by default the restored resource's own endpoint. On moto, which cannot run a database, an RDS
restore test resolves the restored instance to a real local database with `StaticEndpoint`,
and the evidence says so (``"probe_endpoint_resolved_by"``).

Example:
    >>> import sqlite3
    >>> probe = SqlProbe("select count(*) from orders", expect=0,
    ...                  connect=lambda endpoint: sqlite3.connect(endpoint))
    >>> ctx = ProbeContext(resource=None, endpoint=":memory:")
    >>> result = run_probe(probe, ctx)   # never raises: an error is a failed probe
    >>> result.ok, result.details
    (False, 'OperationalError: no such table: orders')
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from backuppolicy.core.capabilities import ObjectReader
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.results import ProbeResult
from backuppolicy.core.secrets import Secret, looks_secret, reveal, scrub

if TYPE_CHECKING:
    from backuppolicy.core.model import RecoveryPoint
    from backuppolicy.core.results import CheckResult
    from backuppolicy.core.targets import RestoredResource

__all__ = [
    "FileProbe",
    "Probe",
    "ProbeContext",
    "ProbeLike",
    "ProbeResult",
    "S3ObjectProbe",
    "SqlProbe",
    "StaticEndpoint",
    "run_probe",
]

_CHUNK = 256 * 1024
_MAX_ROWS_IN_EVIDENCE = 20


@attrs.frozen
class ProbeContext:
    """What a probe gets: the restored resource and where to reach it.

    Attributes:
        resource: The `backuppolicy.RestoredResource` (``None`` when a probe runs on its own).
        endpoint: Where the probe connects: the resolved endpoint (a ``host:port``, a DSN, a
            path, an ``s3://`` URL ...).
        target: The target the point belongs to (AWS targets reach their clients through it).
        point: The recovery point that was restored.
    """

    resource: RestoredResource | None
    endpoint: Any
    target: object = None
    point: RecoveryPoint | None = None


@runtime_checkable
class Probe(Protocol):
    """**Protocol:** a check of the data of a restored resource."""

    @property
    def name(self) -> str:
        """Name of the probe, as recorded in the evidence."""
        ...

    def run(self, ctx: ProbeContext) -> ProbeResult | CheckResult:
        """Look at the restored data and return the result; raise only if it cannot run.

        The health checks (`backuppolicy.checks.health`) return a `backuppolicy.CheckResult`.
        """
        ...


ProbeLike = Probe | Callable[[ProbeContext], "ProbeResult | CheckResult | bool | None"]
"""A `Probe`, or a plain callable ``probe(ctx)`` returning a result, a bool or ``None``."""


def _name_of(probe: object) -> str:
    name = getattr(probe, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(getattr(probe, "__name__", type(probe).__name__))


def run_probe(probe: ProbeLike, ctx: ProbeContext) -> ProbeResult:
    """Run one probe and always return a `ProbeResult` (an exception becomes a failure).

    Example:
        >>> run_probe(lambda ctx: ctx.endpoint == "db:5432", ProbeContext(None, "db:5432")).ok
        True
    """
    name = _name_of(probe)
    outcome: object
    try:
        outcome = probe.run(ctx) if isinstance(probe, Probe) else probe(ctx)
    except Exception as exc:  # noqa: BLE001 - a probe that raises is a failed probe
        return ProbeResult(name, ok=False, details=f"{type(exc).__name__}: {exc}")
    if isinstance(outcome, ProbeResult):
        return outcome
    to_probe_result = getattr(outcome, "to_probe_result", None)
    if callable(to_probe_result):  # a CheckResult: the health checks
        result: ProbeResult = to_probe_result()
        return result
    if outcome is None or outcome is True:
        return ProbeResult(name, ok=True, details="passed")
    if outcome is False:
        return ProbeResult(name, ok=False, details="returned False")
    return ProbeResult(
        name, ok=False, details=f"expected a ProbeResult, a bool or None (got {outcome!r})"
    )


def _jsonable(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _dsn_as_secret(value: object) -> object:
    """A DSN with a password as a `Secret`; anything else as it is."""
    return Secret(value) if isinstance(value, str) and looks_secret(value, "dsn") else value


@attrs.frozen
class StaticEndpoint:
    """An endpoint resolver that always answers the same endpoint, and says why.

    Use it where the restored resource cannot be reached for real, e.g. on moto, which
    restores RDS instances without running a database: the probes then connect to a local
    database that stands in for the restored one, and the restore test's evidence records
    *description* as ``"probe_endpoint_resolved_by"``.

    Example:
        >>> resolve = StaticEndpoint("127.0.0.1:5432", description="local PostgreSQL stand-in")
        >>> resolve(object())
        '127.0.0.1:5432'

    A DSN with a password is held as a `backuppolicy.Secret` (or pass one, e.g.
    ``Secret.from_env("STAND_IN_DSN")``): the probes get the `Secret`, and `SqlProbe` reveals it
    only to connect; the evidence shows it redacted.

    The proof it gives is about the stand-in, not the restored resource: restore tests through
    it are marked ``simulated`` (their result, the testing log, the report and the audit say
    so). A static endpoint that *is* the restored resource (a fixed tunnel into the isolated
    subnet) says ``simulated=False``.

    Attributes:
        endpoint: The endpoint to answer.
        description: Why and where to: recorded in the evidence.
        simulated: Whether *endpoint* stands in for the restored resource (default: it does).
    """

    endpoint: object = attrs.field(converter=_dsn_as_secret)
    description: str = "a static endpoint"
    simulated: bool = attrs.field(default=True, kw_only=True)

    def __call__(self, resource: object) -> object:  # noqa: ARG002 - same answer for every resource
        """Return `endpoint`, whatever the restored resource."""
        return self.endpoint


def _rows_equal(rows: Sequence[tuple[object, ...]], expect: Iterable[object]) -> bool:
    wanted = [tuple(row) if isinstance(row, list | tuple) else (row,) for row in expect]
    return list(rows) == wanted


@attrs.frozen
class SqlProbe:
    """Run a query against the restored database and compare the result.

    *expect* is a scalar (compared with the first column of the first row), a list of rows
    (compared with every row, in order; a row is a tuple or a list), or a callable taking the
    rows and returning a bool. *connect* takes the resolved endpoint and returns a DB-API 2.0
    connection (``sqlite3.connect``, ``pg8000.dbapi.connect`` in a lambda, a SQLAlchemy
    engine's ``raw_connection`` ...); the connection is always closed. An endpoint that is a
    `backuppolicy.Secret` (a DSN with a password) is revealed only for *connect*, and an error
    is reported with the DSN scrubbed out.

    Example:
        >>> import sqlite3
        >>> probe = SqlProbe("select 40 + 2", expect=42, connect=sqlite3.connect)
        >>> result = probe.run(ProbeContext(resource=None, endpoint=":memory:"))
        >>> result.ok, result.evidence["rows"]
        (True, [[42]])

    Attributes:
        query: The SQL query.
        expect: The expected result (see above).
        connect: ``connect(endpoint) -> connection``.
        params: Query parameters, in the driver's paramstyle.
        name: Name of the probe (default: ``"sql: <query>"``).
    """

    query: str = attrs.field()
    expect: object = attrs.field(kw_only=True)
    connect: Callable[[Any], Any] = attrs.field(kw_only=True)
    params: Sequence[object] = attrs.field(default=(), kw_only=True, converter=tuple)
    name: str = attrs.field(kw_only=True)

    @query.validator
    def _check_query(self, _attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise PolicyError.for_field("query", "a non-empty SQL query", value)

    @name.default
    def _default_name(self) -> str:
        return f"sql: {' '.join(self.query.split())[:60]}"

    def _rows(self, connection: Any) -> list[tuple[object, ...]]:
        try:
            cursor = connection.cursor()
            try:
                if self.params:
                    cursor.execute(self.query, self.params)
                else:
                    cursor.execute(self.query)
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        finally:
            connection.close()

    def run(self, ctx: ProbeContext) -> ProbeResult:
        """Connect to ``ctx.endpoint``, run the query and compare the rows with `expect`."""
        endpoint: Any = reveal(ctx.endpoint)
        try:
            rows = self._rows(self.connect(endpoint))
        except Exception as exc:  # noqa: BLE001 - a driver error is a failed probe, scrubbed
            # Drivers quote the DSN they were given: keep its password out of the evidence.
            text = f"{type(exc).__name__}: {exc}"
            secrets = [endpoint] if isinstance(endpoint, str) else []
            return ProbeResult(self.name, ok=False, details=scrub(text, secrets))
        if callable(self.expect):
            ok = bool(self.expect(rows))
            wanted: object = getattr(self.expect, "__name__", "a callable")
        elif isinstance(self.expect, list | tuple):
            ok = _rows_equal(rows, self.expect)
            wanted = _jsonable(list(self.expect))
        else:
            ok = bool(rows) and bool(rows[0]) and rows[0][0] == self.expect
            wanted = _jsonable(self.expect)
        got = rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else rows
        details = (
            f"{len(rows)} row(s), as expected"
            if ok
            else f"expected {wanted!r} (got {_jsonable(got)!r})"
        )
        return ProbeResult(
            self.name,
            ok=ok,
            details=details,
            evidence={
                "query": self.query,
                "rows": _jsonable(rows[:_MAX_ROWS_IN_EVIDENCE]),
                "row_count": len(rows),
                "expected": wanted,
            },
        )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _check_expected(value: object, field: str) -> dict[str, str | None]:
    if not isinstance(value, Mapping) or not value:
        raise PolicyError.for_field(
            field, "a non-empty mapping of relative path to 'sha256:<hex>' or None", value
        )
    result: dict[str, str | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or key.startswith("/") or ".." in key.split("/"):
            raise PolicyError.for_field(f"{field}[{key!r}]", "a relative path inside", key)
        if item is not None and (not isinstance(item, str) or not item.startswith("sha256:")):
            raise PolicyError.for_field(f"{field}[{key!r}]", "'sha256:<hex>' or None", item)
        result[key] = item
    return result


def _to_files(value: object) -> dict[str, str | None]:
    return _check_expected(value, "files")


def _to_keys(value: object) -> dict[str, str | None]:
    return _check_expected(value, "objects")


@attrs.frozen
class FileProbe:
    """Expected files, and optionally their SHA-256, in a restored directory.

    The endpoint is the restored directory (`backuppolicy.local.Directory.restore` yields
    its path). Files are hashed streaming, in 256 KiB chunks.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "app.conf").write_text("port = 8080")
        >>> FileProbe({"app.conf": None, "missing.txt": None}).run(ProbeContext(None, root)).details
        '1 of 2 file(s) wrong: missing.txt: missing'

    Attributes:
        files: Relative path -> ``"sha256:<hex>"``, or ``None`` to require only that it exists.
        name: Name of the probe.
    """

    files: Mapping[str, str | None] = attrs.field(converter=_to_files, hash=False)
    name: str = attrs.field(default="files", kw_only=True)

    def run(self, ctx: ProbeContext) -> ProbeResult:
        """Check every expected file under ``ctx.endpoint``."""
        root = Path(os.fspath(ctx.endpoint))
        problems: list[str] = []
        found: dict[str, str] = {}
        for rel, expected in sorted(self.files.items()):
            path = root / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
                continue
            if expected is None:
                found[rel] = "present"
                continue
            actual = _sha256_file(path)
            found[rel] = actual
            if actual != expected:
                problems.append(f"{rel}: expected {expected} (got {actual})")
        ok = not problems
        details = (
            f"{len(self.files)} file(s) as expected"
            if ok
            else f"{len(problems)} of {len(self.files)} file(s) wrong: " + "; ".join(problems[:5])
        )
        return ProbeResult(
            self.name, ok=ok, details=details, evidence={"files": found, "problems": problems}
        )


@attrs.frozen
class S3ObjectProbe:
    """Expected objects, and optionally their SHA-256, under a restored S3 prefix.

    The endpoint is ``s3://bucket/prefix/`` (`backuppolicy.aws.S3Bucket.restore` yields it);
    objects are read through the target (`backuppolicy.core.targets.ObjectReader`), streaming.

    Attributes:
        objects: Key relative to the restored prefix -> ``"sha256:<hex>"``, or ``None`` to
            require only that it exists.
        name: Name of the probe.
    """

    objects: Mapping[str, str | None] = attrs.field(converter=_to_keys, hash=False)
    name: str = attrs.field(default="s3-objects", kw_only=True)

    def run(self, ctx: ProbeContext) -> ProbeResult:
        """Check every expected object under the ``s3://`` endpoint."""
        text = str(ctx.endpoint)
        if not text.startswith("s3://"):
            return ProbeResult(
                self.name, ok=False, details=f"expected an s3:// endpoint (got {text!r})"
            )
        reader = ctx.target
        if not isinstance(reader, ObjectReader):
            return ProbeResult(
                self.name,
                ok=False,
                details="the target cannot read S3 objects (no open_object_version)",
            )
        bucket, _, prefix = text[len("s3://") :].partition("/")
        problems: list[str] = []
        found: dict[str, str] = {}
        for rel, expected in sorted(self.objects.items()):
            key = f"{prefix}{rel}"
            try:
                body = reader.open_object_version(bucket, key, None, region=None)
            except LookupError:
                problems.append(f"{rel}: missing")
                continue
            digest = hashlib.sha256()
            try:
                for chunk in body.iter_chunks(_CHUNK):
                    digest.update(chunk)
            finally:
                body.close()
            actual = f"sha256:{digest.hexdigest()}"
            found[rel] = actual
            if expected is not None and actual != expected:
                problems.append(f"{rel}: expected {expected} (got {actual})")
        ok = not problems
        details = (
            f"{len(self.objects)} object(s) as expected"
            if ok
            else f"{len(problems)} of {len(self.objects)} object(s) wrong: "
            + "; ".join(problems[:5])
        )
        return ProbeResult(
            self.name, ok=ok, details=details, evidence={"objects": found, "problems": problems}
        )
