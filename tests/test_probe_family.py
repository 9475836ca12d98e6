"""One probe family: health checks run as restore-test probes, data probes as restore probes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.checks.health import CallableCheck, SqlCheck, TcpCheck
from backuppolicy.checks.probes import FileProbe, ProbeContext, S3ObjectProbe, run_probe
from backuppolicy.checks.running import run_check
from backuppolicy.core.secrets import Secret

QUERY = "select count(*) from orders"


@pytest.fixture(name="shop_db")
def _shop_db(tmp_path: Path) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("create table orders (id integer)")
        db.execute("insert into orders values (1), (2)")
    db.close()
    return str(path)


class _Cursor:
    """A DB-API cursor whose execute returns None (pg8000, many drivers)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def execute(self, _query: str) -> None:
        return None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def close(self) -> None:
        pass


class _Connection:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def cursor(self) -> _Cursor:
        return _Cursor(self.rows)

    def close(self) -> None:
        pass


class TestHealthChecksAsProbes:
    def test_sql_check_in_run_probe_keeps_its_evidence(self, shop_db: str) -> None:
        """run_probe runs a SqlCheck on the context's endpoint; its CheckResult is kept."""
        check = SqlCheck("{endpoint}", QUERY, expect=2, name="orders")
        result = run_probe(check, ProbeContext(resource=None, endpoint=shop_db))
        assert (
            "orders",
            True,
            f"{QUERY!r} on {shop_db} returned 2",
            {"value": "2"},
        ) == (result.name, result.ok, result.details, dict(result.evidence))
        assert check.run(shop_db).details == result.check_result.details

    def test_failed_health_check_fails_the_probe(self) -> None:
        """A health check that fails is a failed probe, with the check's own details."""
        result = run_probe(TcpCheck("{endpoint}", timeout=1), ProbeContext(None, "nowhere"))
        assert (False, "expected host:port (got 'nowhere')") == (result.ok, result.details)

    def test_callable_check_gets_the_endpoint_not_the_context(self) -> None:
        """A CallableCheck's function is called with the context's endpoint."""
        seen: list[Any] = []
        check = CallableCheck(seen.append, ref="seen")
        assert run_probe(check, ProbeContext(None, "db:5432")).ok
        assert ["db:5432"] == seen

    def test_secret_endpoint_is_revealed_only_to_connect(self) -> None:
        """A Secret endpoint reaches SqlCheck's connect revealed, and its result redacted."""
        dsn = "postgresql://app:hunter2@db:5432/shop"
        connected: list[str] = []

        def connect(database: str) -> _Connection:
            connected.append(database)
            return _Connection([(7,)])

        check = SqlCheck("{endpoint}", "select 7", expect=7, connect=connect)
        result = run_probe(check, ProbeContext(None, Secret(dsn)))
        assert ([dsn], True) == (connected, result.ok)
        assert "hunter2" not in repr(result.check_result)

    def test_sql_check_works_with_drivers_whose_execute_returns_none(self) -> None:
        """SqlCheck runs through SqlProbe: execute() need not return the cursor."""
        check = SqlCheck("db", "select 1", expect=1, connect=lambda _db: _Connection([(1,)]))
        result = check.run()
        assert (True, "'select 1' on db returned 1") == (result.ok, result.details)


class TestRunCheckWrapsRunProbe:
    def test_data_probe_result_becomes_a_check_result(self, tmp_path: Path) -> None:
        """run_check turns a data probe's ProbeResult into a CheckResult named after it."""
        (tmp_path / "app.conf").write_text("x")
        result = run_check(FileProbe({"app.conf": None, "gone": None}), str(tmp_path))
        assert ("files", False, "files: 1 of 2 file(s) wrong: gone: missing") == (
            result.check,
            result.ok,
            result.details,
        )

    def test_a_health_check_result_is_returned_as_it_is(self, shop_db: str) -> None:
        """A health check's CheckResult comes back unchanged (its target and evidence)."""
        result = run_check(SqlCheck("{endpoint}", "select 1"), shop_db, target="shop-db")
        assert ("recovery", {"value": "1"}) == (result.target, dict(result.evidence))

    def test_an_endpoint_probe_that_raises_fails_with_the_endpoint(self) -> None:
        """A probe of the endpoint that raises fails its check, naming the endpoint."""

        def broken(_endpoint: str | None) -> None:
            raise RuntimeError("down")

        result = run_check(broken, "db:5432")
        assert (False, "broken against db:5432: RuntimeError: down") == (
            result.ok,
            result.details,
        )


class TestS3ObjectProbe:
    def test_a_target_that_cannot_read_objects_fails_the_probe(self) -> None:
        """Without an ObjectReader target the probe fails and says why."""
        result = S3ObjectProbe({"a.txt": None}).run(
            ProbeContext(None, "s3://b/p/", target=object())
        )
        assert (False, "the target cannot read S3 objects (no open_object_version)") == (
            result.ok,
            result.details,
        )
