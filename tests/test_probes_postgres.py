"""SqlProbe against a real PostgreSQL server: a throwaway cluster started for this module.

The cluster is made with the distribution's ``initdb``/``pg_ctl`` (``apt-get install
postgresql``) in a temporary directory, listening on 127.0.0.1 and a free port with trust
authentication, and stopped at the end of the session. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` user (``runuser``). Without the binaries or the
``pg8000`` driver the tests are skipped, saying which is missing.

"Restoring" the database is a real ``pg_dump | psql`` round trip into a new database; the
restore test then composes, exactly as it does for RDS on moto: the target's restore yields a
resource, and the endpoint resolver maps it to the restored PostgreSQL database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import boto3
import moto
import pytest

from backuppolicy.aws import RdsInstance, RetryPolicy
from backuppolicy.checks.probes import SqlProbe, StaticEndpoint
from backuppolicy.checks.restore_test import RestoreTest
from backuppolicy.checks.verify import VerifyContext
from backuppolicy.core.results import CheckStatus
from backuppolicy.testing import MemoryTarget

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/bin", "/usr/bin")


def _binary(name: str) -> str | None:
    for pattern in _SEARCH:
        for folder in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):  # newest first
            candidate = folder / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.frozen
class Postgres:
    """A running throwaway PostgreSQL server."""

    port: int
    bin_dir: str

    def connect(self, database: str = "postgres") -> Any:
        """A pg8000 DB-API connection as the ``postgres`` superuser (trust auth)."""
        import pg8000.dbapi

        return pg8000.dbapi.connect(
            user="postgres", host="127.0.0.1", port=self.port, database=database
        )

    def endpoint(self, database: str) -> str:
        """``host:port/database``, the endpoint string the probes get."""
        return f"127.0.0.1:{self.port}/{database}"

    def execute(self, database: str, *statements: str) -> None:
        """Run statements with autocommit (CREATE DATABASE needs it)."""
        conn = self.connect(database)
        try:
            conn.autocommit = True
            cursor = conn.cursor()
            for statement in statements:
                cursor.execute(statement)
        finally:
            conn.close()

    def dump_and_restore(self, source: str, restored: str) -> None:
        """A real backup and restore: ``pg_dump source | psql restored`` (a new database)."""
        self.execute("postgres", f'create database "{restored}"')
        common = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        dump = subprocess.run(
            [str(Path(self.bin_dir, "pg_dump")), *common, "--no-owner", source],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [str(Path(self.bin_dir, "psql")), *common, "-q", "-v", "ON_ERROR_STOP=1", restored],
            input=dump.stdout,
            check=True,
            capture_output=True,
        )


def _as_postgres(argv: list[str]) -> list[str]:
    """Run as the ``postgres`` user when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and runuser(1) is missing: cannot start PostgreSQL")
    return [runuser, "-u", "postgres", "--", *argv]


@pytest.fixture(name="postgres", scope="session")
def _postgres() -> Iterator[Postgres]:
    """Start a throwaway cluster on 127.0.0.1 for the session; stop and remove it afterwards."""
    pytest.importorskip("pg8000", reason="the pg8000 driver is not installed (dev extra)")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    bin_dir = str(Path(pg_ctl).resolve().parent)
    if not Path(bin_dir, "pg_dump").exists():
        bin_dir = str(Path(shutil.which("pg_dump") or pg_ctl).parent)
    root = Path(tempfile.mkdtemp(prefix="backuppolicy-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port=port, bin_dir=bin_dir)
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


_counter = iter(range(1, 1_000_000))


@pytest.fixture(name="restored_db")
def _restored_db(postgres: Postgres) -> str:
    """A database with real rows, backed up and restored into a new database by pg_dump/psql."""
    number = next(_counter)
    source, restored = f"shop_{number}", f"shop_{number}_restored"
    postgres.execute("postgres", f'create database "{source}"')
    postgres.execute(
        source,
        "create table orders (id serial primary key, customer text not null, total numeric(10,2))",
        "insert into orders (customer, total) values ('ada', 12.50), ('bob', 7.25), ('cy', 30.00)",
    )
    postgres.dump_and_restore(source, restored)
    # Written after the backup: must not be in the restored copy.
    postgres.execute(source, "insert into orders (customer, total) values ('late', 1.00)")
    return restored


def _connector(postgres: Postgres) -> Callable[[Any], Any]:
    def connect(endpoint: Any) -> Any:
        database = str(endpoint).rsplit("/", 1)[1]
        return postgres.connect(database)

    return connect


def _context(postgres: Postgres, database: str, how: str) -> VerifyContext:
    resolver = StaticEndpoint(postgres.endpoint(database), description=how)
    return VerifyContext(now=NOW, endpoint_resolver=resolver)


class TestSqlProbeOnPostgres:
    def test_restored_rows_pass(self, postgres, restored_db):
        """The restored database has the three orders that were backed up, and their sum."""
        target = MemoryTarget("shop-db", clock=lambda: NOW - timedelta(hours=2))
        point = target.create_backup()
        probe = SqlProbe(
            "select count(*), sum(total)::text from orders",
            expect=[(3, "49.75")],
            connect=_connector(postgres),
        )
        ctx = _context(postgres, restored_db, "PostgreSQL database restored by pg_dump/psql")
        result = RestoreTest(probes=[probe]).verify(target, point, ctx)
        assert CheckStatus.PASS == result.status, result.details
        assert postgres.endpoint(restored_db) == result.evidence["probe_endpoint"]

    def test_failing_expectation_fails(self, postgres, restored_db):
        """Expecting the row written after the backup fails: the restore is the backed-up state."""
        target = MemoryTarget("shop-db", clock=lambda: NOW - timedelta(hours=2))
        point = target.create_backup()
        probe = SqlProbe(
            "select count(*) from orders where customer = %s",
            params=("late",),
            expect=1,
            connect=_connector(postgres),
            name="late order",
        )
        ctx = _context(postgres, restored_db, "PostgreSQL database restored by pg_dump/psql")
        result = RestoreTest(probes=[probe]).verify(target, point, ctx)
        assert (CheckStatus.FAIL, ("probe late order: expected 1 (got 0)",)) == (
            result.status,
            result.issues,
        )

    def test_rds_restore_on_moto_probes_real_postgres(self, postgres, restored_db, monkeypatch):
        """moto restores the RDS snapshot (and deletes it); the probe runs on real PostgreSQL."""
        monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with moto.mock_aws():
            session = boto3.Session(region_name="us-east-1")
            rds = session.client("rds")
            rds.create_db_instance(
                DBInstanceIdentifier="shop-prod",
                Engine="postgres",
                DBInstanceClass="db.t3.micro",
                MasterUsername="admin",
                MasterUserPassword="password1",
                AllocatedStorage=20,
            )
            db = RdsInstance(
                "shop-prod",
                session=session,
                retry=RetryPolicy(sleep=lambda _s: None),
                sleep=lambda _s: None,
                poll_interval=0,
            )
            point = db.create_backup()
            how = (
                "local PostgreSQL standing in for the restored RDS instance (moto runs no database)"
            )
            probe = SqlProbe("select count(*) from orders", expect=3, connect=_connector(postgres))
            ctx = attrs.evolve(_context(postgres, restored_db, how), now=datetime.now(UTC))
            result = RestoreTest(probes=[probe]).verify(db, point, ctx)
            remaining = [
                i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]
            ]
        assert (CheckStatus.PASS, how, ["shop-prod"]) == (
            result.status,
            result.evidence["probe_endpoint_resolved_by"],
            remaining,
        )
