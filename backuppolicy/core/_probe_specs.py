"""Probes and fingerprints declared in the policy file, per target (``probes:``, ``fingerprint:``).

Values only: `ProbesSpec` (what a restore test checks on the restored copy), `FingerprintSpec`
(what is recorded at backup time and compared after the restore) and `DatabaseRef` (how to
reach a database: a DSN template and a password by reference). `backuppolicy.checks._declared`
builds the probe objects from them; `backuppolicy.core.specs.TargetSpec` holds them.

A database password is never written in the file: ``password: {env: NAME}`` or
``{file: /path}``, put into the DSN where it says ``{password}``. A DSN with an inline
password, a URL with a token, or an unknown key is a `PolicyError` naming the field.

Example:
    >>> spec = ProbesSpec.from_dict({"files": ["etc/app.conf"],
    ...                             "sql": [{"query": "select 1", "expect": 1}]})
    >>> spec.files, spec.sql[0].name
    (('etc/app.conf',), 'sql-0')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

import attrs

from backuppolicy.core._fields import (
    did_you_mean,
    join_path,
    read_flag,
    read_list,
    read_mapping,
    read_name,
    read_text,
)
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.redaction import REDACTED
from backuppolicy.core.secrets import Secret, looks_secret, redact_url, secret_field

__all__ = [
    "DatabaseRef",
    "FingerprintQuery",
    "FingerprintSpec",
    "HttpProbeSpec",
    "ProbesSpec",
    "SqlProbeSpec",
]

_DRIVER_RE: Final = re.compile(r"sqlite|[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_TOLERANCE_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_PASSWORD: Final = "{password}"
_MAX_SAMPLE: Final = 1_000_000


def _read_relpath(value: object, path: str) -> str:
    text = read_text(value, path)
    parts = text.split("/")
    if text.startswith("/") or ".." in parts or "\x00" in text:
        raise PolicyError.for_field(path, "a relative path inside the restored copy", text)
    return text


def _read_relpaths(value: object, path: str) -> tuple[str, ...]:
    items = read_list(value, path, "relative paths")
    found = tuple(_read_relpath(item, join_path(path, i)) for i, item in enumerate(items))
    for i, item in enumerate(found):
        if item in found[:i]:
            raise PolicyError.for_field(join_path(path, i), "each path at most once", item)
    return found


def _read_json_value(value: object, path: str) -> object:
    """A plain JSON value (what YAML/TOML give): scalars and lists of them, nested."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_read_json_value(item, join_path(path, i)) for i, item in enumerate(value)]
    raise PolicyError.for_field(path, "a value or a list of rows", type(value).__name__)


def read_tolerance(value: object, path: str) -> float | str:
    """An absolute tolerance (a number >= 0) or a relative one (``"2%"``)."""
    if isinstance(value, bool):
        raise PolicyError.for_field(path, "a number >= 0 or a percentage such as '2%'", value)
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return value
    if isinstance(value, str) and _TOLERANCE_RE.fullmatch(value.strip()):
        return value.strip().replace(" ", "")
    raise PolicyError.for_field(path, "a number >= 0 or a percentage such as '2%'", value)


@attrs.frozen
class DatabaseRef:
    """How to connect to a database: a DSN template, its password by reference, a driver.

    ``{endpoint}`` in the DSN is replaced by the endpoint of the restored copy (for a source
    database, leave it out), ``{password}`` by the revealed password.

    Example:
        >>> ref = DatabaseRef.from_dict({"dsn": "postgresql://app:{password}@{endpoint}/shop",
        ...                              "password": {"env": "SHOP_DB_PASSWORD"},
        ...                              "driver": "psycopg:connect"})
        >>> ref.password
        Secret(env='SHOP_DB_PASSWORD')
        >>> DatabaseRef.from_dict("{endpoint}").driver
        'sqlite'

    Attributes:
        dsn: What the driver's connect function is given, after substitution (a DSN, a path).
            A DSN that holds a password is a `Secret` (a reference).
        password: The password, by reference (`Secret`); ``None`` when there is none.
        driver: ``"sqlite"`` (read-only SQLite; the DSN is a path or ``sqlite:///path``) or
            ``"module:function"``, a DB-API ``connect(dsn)`` imported when the probe runs.
    """

    dsn: str | Secret
    password: Secret | None = None
    driver: str = "sqlite"

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the policy file has it (secrets as their references)."""
        data: dict[str, object] = {
            "dsn": self.dsn.to_dict() if isinstance(self.dsn, Secret) else self.dsn
        }
        if self.password is not None:
            data["password"] = self.password.to_dict()
        data["driver"] = self.driver
        return data

    def describe(self) -> str:
        """The DSN for display: never a password."""
        return str(self.dsn) if isinstance(self.dsn, Secret) else redact_url(self.dsn)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "database") -> DatabaseRef:
        """Build from a DSN string, a reference, or ``{dsn, password, driver}``."""
        if isinstance(data, str) or (
            isinstance(data, Mapping) and set(data) <= {"env", "file"} and data
        ):
            data = {"dsn": data}
        raw = read_mapping(data, path, ("dsn", "password", "driver"), ("dsn",))
        dsn_path = join_path(path, "dsn")
        dsn_value = raw["dsn"]
        if isinstance(dsn_value, str):
            # "{password}" is where the referenced password goes: not a literal one.
            checked = dsn_value.replace(f":{_PASSWORD}@", "@").replace(_PASSWORD, "")
            if REDACTED in dsn_value or looks_secret(checked, "dsn"):
                secret_field(dsn_value, dsn_path, kind="dsn")  # raises, naming the field
            dsn: str | Secret = read_text(dsn_value, dsn_path)
        else:
            found = secret_field(dsn_value, dsn_path, kind="dsn")
            dsn = found if isinstance(found, Secret) else read_text(found, dsn_path)
        password: Secret | None = None
        if raw.get("password") is not None:
            pw_path = join_path(path, "password")
            if not isinstance(raw["password"], Mapping):
                raise PolicyError(
                    f"{pw_path}: a password must not be written inline (the value is not "
                    "shown). Name it by reference instead: 'password: {env: SOME_VARIABLE}' "
                    "or '{file: /run/secrets/name}'.",
                    path=pw_path,
                    expected="a reference to a secret: {env: NAME} or {file: /path}",
                    got=REDACTED,
                )
            found = secret_field(raw["password"], pw_path, kind="header", header="password")
            assert isinstance(found, Secret)  # noqa: S101 - a mapping is always a reference
            password = found
        if isinstance(dsn, str) and _PASSWORD in dsn and password is None:
            raise PolicyError.for_field(
                join_path(path, "password"),
                "a password reference ({env: NAME} or {file: /path}) for {password} in the dsn",
                None,
            )
        driver = raw.get("driver", "sqlite")
        if not isinstance(driver, str) or not _DRIVER_RE.fullmatch(driver):
            raise PolicyError.for_field(
                join_path(path, "driver"),
                "'sqlite' or a DB-API connect function as 'module:function'",
                driver,
                hint=did_you_mean(driver, ("sqlite",)),
            )
        return cls(dsn, password, driver)


def _read_database(value: object, path: str) -> DatabaseRef:
    return DatabaseRef.from_dict(value, path=path)


@attrs.frozen
class SqlProbeSpec:
    """A query run on the restored database, with the result it must give.

    Attributes:
        name: Name of the probe in the evidence.
        query: The SQL query.
        expect: A scalar (the first column of the first row) or a list of rows.
    """

    name: str
    query: str
    expect: object

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the policy file has it."""
        return {"name": self.name, "query": self.query, "expect": self.expect}

    @classmethod
    def from_dict(cls, data: object, *, path: str, index: int = 0) -> SqlProbeSpec:
        """Build from ``{name, query, expect}`` (*name* defaults to ``sql-<index>``)."""
        raw = read_mapping(data, path, ("name", "query", "expect"), ("query", "expect"))
        name = read_name(raw.get("name", f"sql-{index}"), join_path(path, "name"))
        query = read_text(raw["query"], join_path(path, "query"))
        return cls(name, query, _read_json_value(raw["expect"], join_path(path, "expect")))


@attrs.frozen
class HttpProbeSpec:
    """An HTTP health URL of the restored or recovered service.

    Attributes:
        url: The URL (``{endpoint}`` is replaced); one with a token is a `Secret` reference.
        status: The status expected.
        contains: Text the body must contain, if any.
        timeout: Seconds to wait.
    """

    url: str | Secret
    status: int = 200
    contains: str | None = None
    timeout: float = 5.0

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the policy file has it (a secret URL as its reference)."""
        return {
            "url": self.url.to_dict() if isinstance(self.url, Secret) else self.url,
            "status": self.status,
            "contains": self.contains,
            "timeout": self.timeout,
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "http") -> HttpProbeSpec:
        """Build from a URL, a reference, or ``{url, status, contains, timeout}``."""
        if isinstance(data, str) or (isinstance(data, Mapping) and set(data) <= {"env", "file"}):
            data = {"url": data}
        raw = read_mapping(data, path, ("url", "status", "contains", "timeout"), ("url",))
        url_path = join_path(path, "url")
        found = secret_field(raw["url"], url_path, kind="url")
        url = found if isinstance(found, Secret) else read_text(found, url_path)
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            raise PolicyError.for_field(url_path, "an http(s) URL", url)
        status = raw.get("status", 200)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:  # noqa: PLR2004 - HTTP status range
            raise PolicyError.for_field(join_path(path, "status"), "an HTTP status 100-599", status)
        contains = raw.get("contains")
        if contains is not None:
            contains = read_text(contains, join_path(path, "contains"))
        timeout = raw.get("timeout", 5.0)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise PolicyError.for_field(
                join_path(path, "timeout"), "a number of seconds > 0", timeout
            )
        return cls(url, status, contains, float(timeout))


_PROBES_KEYS: Final = ("database", "sql", "files", "s3_keys", "http")


@attrs.frozen
class ProbesSpec:
    """What a restore test checks on the restored copy of a target, declared in the policy file.

    Attributes:
        database: How the SQL probes (and the fingerprint queries) reach the restored database;
            ``None``: ``{endpoint}`` as a SQLite path.
        sql: Queries with their expected results.
        files: Paths (relative to the restored directory) that must exist and match the
            SHA-256 of the backup's own manifest.
        s3_keys: Keys (relative to the target's prefix) that must be restored and match
            their backed-up versions.
        http: A health URL of the service.
    """

    database: DatabaseRef | None = None
    sql: tuple[SqlProbeSpec, ...] = ()
    files: tuple[str, ...] = ()
    s3_keys: tuple[str, ...] = ()
    http: HttpProbeSpec | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the policy file has it."""
        data: dict[str, object] = {}
        if self.database is not None:
            data["database"] = self.database.to_dict()
        if self.sql:
            data["sql"] = [item.to_dict() for item in self.sql]
        if self.files:
            data["files"] = list(self.files)
        if self.s3_keys:
            data["s3_keys"] = list(self.s3_keys)
        if self.http is not None:
            data["http"] = self.http.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "probes") -> ProbesSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = read_mapping(data, path, _PROBES_KEYS)
        database = (
            _read_database(raw["database"], join_path(path, "database"))
            if raw.get("database") is not None
            else None
        )
        sql_path = join_path(path, "sql")
        items = read_list(raw.get("sql", []), sql_path, "queries")
        sql = tuple(
            SqlProbeSpec.from_dict(item, path=join_path(sql_path, i), index=i)
            for i, item in enumerate(items)
        )
        names = [item.name for item in sql]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise PolicyError.for_field(
                    join_path(join_path(sql_path, i), "name"), "a name used once", name
                )
        files = _read_relpaths(raw.get("files", []), join_path(path, "files"))
        keys = _read_relpaths(raw.get("s3_keys", []), join_path(path, "s3_keys"))
        http = (
            HttpProbeSpec.from_dict(raw["http"], path=join_path(path, "http"))
            if raw.get("http") is not None
            else None
        )
        return cls(database, sql, files, keys, http)


@attrs.frozen
class FingerprintQuery:
    """A query whose result is recorded at backup time and compared after the restore.

    Attributes:
        name: Name of the fingerprint (the point's tag is ``fingerprint:<name>``).
        query: The SQL query (a row count, a checksum ...).
        tolerance: How far the restored value may be from the recorded one: an absolute
            number, or a percentage of it (``"2%"``); ``None``: exactly equal.
    """

    name: str
    query: str
    tolerance: float | str | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the policy file has it."""
        data: dict[str, object] = {"name": self.name, "query": self.query}
        if self.tolerance is not None:
            data["tolerance"] = self.tolerance
        return data


@attrs.frozen
class FingerprintSpec:
    """Fingerprints of a target's data, proven after each restore test.

    Files of a directory backup and objects of an S3 manifest carry their checksums in the
    backup's own manifest: every one is checked (or a *sample*, chosen deterministically from
    *seed*, by default the point's id). A database target may declare *queries*: they run on
    the *source* when the backup is taken (if *source* is set) and are stored with the point.

    Example:
        >>> FingerprintSpec.from_dict({"sample": 100}).sample
        100

    Attributes:
        sample: How many files or objects to check against the manifest; ``None``: all.
        seed: Seed of the sample (default: the point's id); recorded in the evidence.
        source: How to reach the source database at backup time.
        queries: The fingerprint queries.
        enabled: ``false`` turns the manifest check off.
    """

    sample: int | None = None
    seed: str | None = None
    source: DatabaseRef | None = None
    queries: tuple[FingerprintQuery, ...] = ()
    enabled: bool = True

    def to_dict(self) -> dict[str, object]:
        """Plain data, as the policy file has it."""
        data: dict[str, object] = {}
        if self.sample is not None:
            data["sample"] = self.sample
        if self.seed is not None:
            data["seed"] = self.seed
        if self.source is not None:
            data["source"] = self.source.to_dict()
        if self.queries:
            data["queries"] = [q.to_dict() for q in self.queries]
        if not self.enabled:
            data["enabled"] = False
        return data

    @classmethod
    def from_dict(cls, data: object, *, path: str = "fingerprint") -> FingerprintSpec:
        """Build from plain data; errors name fields under *path*."""
        raw = read_mapping(data, path, ("sample", "seed", "source", "queries", "enabled"))
        sample = raw.get("sample")
        if sample is not None and (
            isinstance(sample, bool)
            or not isinstance(sample, int)
            or not 1 <= sample <= _MAX_SAMPLE
        ):
            raise PolicyError.for_field(
                join_path(path, "sample"), f"a whole number from 1 to {_MAX_SAMPLE}", sample
            )
        seed = raw.get("seed")
        if seed is not None:
            seed = read_text(str(seed) if isinstance(seed, int) else seed, join_path(path, "seed"))
        source = (
            _read_database(raw["source"], join_path(path, "source"))
            if raw.get("source") is not None
            else None
        )
        q_path = join_path(path, "queries")
        queries: list[FingerprintQuery] = []
        for i, item in enumerate(read_list(raw.get("queries", []), q_path, "queries")):
            where = join_path(q_path, i)
            entry = read_mapping(item, where, ("name", "query", "tolerance"), ("name", "query"))
            name = read_name(entry["name"], join_path(where, "name"))
            if any(q.name == name for q in queries):
                raise PolicyError.for_field(join_path(where, "name"), "a name used once", name)
            tolerance = (
                read_tolerance(entry["tolerance"], join_path(where, "tolerance"))
                if entry.get("tolerance") is not None
                else None
            )
            queries.append(
                FingerprintQuery(
                    name, read_text(entry["query"], join_path(where, "query")), tolerance
                )
            )
        if queries and source is None:
            raise PolicyError.for_field(
                join_path(path, "source"),
                "the source database the queries run on at backup time ({dsn, password, driver})",
                None,
            )
        enabled = read_flag(raw.get("enabled", True), join_path(path, "enabled"))
        return cls(sample, seed, source, tuple(queries), enabled)
