"""`backuppolicy.run` / ``backuppolicy run``: whatever is due, once, under a lease, one digest."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import backuppolicy as bp
from backuppolicy.aws import S3Lease
from backuppolicy.cli.main import main
from backuppolicy.core.exceptions import LeaseHeldError
from backuppolicy.local import FileLease
from backuppolicy.testing import MemoryTarget

START = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)


def _policy(**run: object) -> bp.Policy:
    return bp.Policy.from_dict(
        {
            "name": "shop",
            "schedule": {"every": "day", "at": "04:00"},
            "rolling_period": "week",
            "retention": {"max_age": "35d"},
            "tiers": [{"name": "local", "every": "day"}, {"name": "offsite", "every": "week"}],
            "targets": [
                {"name": "shop-db", "kind": "testing:memory", "application": "shop"},
                {"name": "blog-db", "kind": "testing:memory", "application": "blog"},
            ],
            "verification": {"require_encryption": False, "require_private": False},
            **({"run": run} if run else {}),
        }
    )


class _Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(name="clock")
def _clock() -> _Clock:
    return _Clock()


@pytest.fixture(name="targets")
def _targets(clock: _Clock) -> dict[str, MemoryTarget]:
    return {n: MemoryTarget(n, policy="shop", clock=clock) for n in ("shop-db", "blog-db")}


def _log(tmp_path: Path, clock: _Clock) -> bp.TestLog:
    return bp.TestLog(bp.JsonlLogStore(tmp_path / "log.jsonl"), clock=clock)


class TestSimulatedYear:
    """Hourly calls over 400 simulated days do exactly what the policy requires."""

    def test_hourly_runs_do_each_duty_once(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """Daily steps plus every hour on some days: no duplicate backup, copy or restore test."""
        policy = _policy()
        log = _log(tmp_path, clock)
        digests: list[bp.RunDigest] = []
        for day in range(400):
            hours = range(24) if day % 50 == 0 else (0, 5)
            for hour in hours:
                clock.now = START.replace(minute=5) + timedelta(days=day, hours=hour)
                digests.append(
                    bp.run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
                )
        assert all(d.ok for d in digests), [d.failures for d in digests if not d.ok][:3]
        end = clock.now
        for name, target in targets.items():
            points = list(target.list_points())
            created = [d for dg in digests for d in dg.backups if d.target == name]
            # one backup per day (the 04:00 run is due at the 05:05 call), never two
            days = Counter(p.created_at.date() for p in created)
            assert max(days.values()) == 1
            assert len(created) == 400
            copies = [c for dg in digests for c in dg.copies if c.target == name]
            weeks = Counter(c.created_at.isocalendar()[:2] for c in copies if c.tier == "offsite")
            assert max(weeks.values()) == 1
            deleted = [p.id for dg in digests for p in dg.deleted if p.target == name]
            assert len(deleted) == len(set(deleted)) == len(target.deleted)
            assert all(end - p.created_at < timedelta(days=36) for p in points)
        tests = list(log.entries(kind="restore-test"))
        per_quarter = Counter(
            (e.application, e.checked_at.year, (e.checked_at.month - 1) // 3) for e in tests
        )
        assert max(per_quarter.values()) == 1  # no application tested twice in a quarter
        assert sum(d.restore_tests.__len__() for d in digests) == len(tests)
        assert log.overdue(policy, now=end) == []
        checks = list(log.entries(kind="integrity"))
        per_year = Counter((e.target, e.tier, e.checked_at.year) for e in checks)
        assert max(per_year.values()) == 1
        # later calls of a day that was done do nothing at all
        quiet = [d for d in digests if d.now.hour == 12]
        assert quiet and all(d.steps == ("backup",) and not d.totals()["backups"] for d in quiet)

    def test_a_second_call_at_the_same_time_does_nothing(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """Idempotent: the same `now` twice makes one backup and one of each check."""
        policy = _policy()
        log = _log(tmp_path, clock)
        clock.now = START + timedelta(hours=5)
        first = bp.run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
        second = bp.run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
        assert first.totals()["backups"] == 2
        assert second.totals() == dict.fromkeys(second.totals(), 0)
        assert second.steps == ("backup",)


class TestLease:
    """Two runs never both act; a stale lease is taken over."""

    def test_file_lease_race(self, tmp_path: Path) -> None:
        """Of eight threads racing for one lease file, exactly one wins."""
        now = START
        barrier = threading.Barrier(8)
        won: list[str] = []

        def take(i: int) -> None:
            lease = FileLease(tmp_path / "run.lease")
            barrier.wait()
            try:
                lease.acquire(owner=f"run-{i}", now=now, ttl=timedelta(hours=1))
            except LeaseHeldError:
                return
            won.append(f"run-{i}")

        threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1

    def test_stale_file_lease_is_taken_over_and_not_released_by_the_old_owner(
        self, tmp_path: Path
    ) -> None:
        """Past its expiry a lease is taken; the old holder's release leaves the new one."""
        old, new = FileLease(tmp_path / "l"), FileLease(tmp_path / "l")
        old.acquire(owner="old", now=START, ttl=timedelta(hours=1))
        with pytest.raises(LeaseHeldError):
            new.acquire(owner="new", now=START + timedelta(minutes=59), ttl=timedelta(hours=1))
        new.acquire(owner="new", now=START + timedelta(hours=1), ttl=timedelta(hours=1))
        assert old.release() is False
        assert json.loads((tmp_path / "l").read_text())["owner"] == "new"
        assert new.release() is True
        assert not (tmp_path / "l").exists()

    def test_run_while_another_holds_the_lease_does_nothing(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """`run` under a held lease creates nothing and says who holds it; the CLI exits 75."""
        policy = _policy()
        log = _log(tmp_path, clock)
        clock.now = START + timedelta(hours=5)
        lease = bp.workflows.unattended.lease_for(log, policy)
        lease.acquire(owner="other@host", now=clock.now, ttl=timedelta(hours=6))
        digest = bp.run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
        assert digest.held_by == "other@host"
        assert not digest.ok
        assert [list(t.list_points()) for t in targets.values()] == [[], []]
        assert "held by other@host" in str(digest)

    @pytest.mark.usefixtures("aws")
    def test_s3_lease_conditional_writes(self, region: str) -> None:
        """On S3 (moto): If-None-Match refuses a second holder; of two takeovers of one stale lease only one wins."""
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket="bp-run-logs")
        key = "log/_lease/shop.lease"
        first = S3Lease("bp-run-logs", key, region=region)
        first.acquire(owner="first", now=START, ttl=timedelta(hours=1))
        with pytest.raises(LeaseHeldError) as info:
            S3Lease("bp-run-logs", key, region=region).acquire(
                owner="second", now=START + timedelta(minutes=30), ttl=timedelta(hours=1)
            )
        assert info.value.holder.owner == "first"  # type: ignore[attr-defined]
        # Two runs read the same stale lease; the If-Match of the slower one fails.
        later = START + timedelta(hours=2)
        a, b = (
            S3Lease("bp-run-logs", key, region=region),
            S3Lease("bp-run-logs", key, region=region),
        )
        stale_etag = s3.head_object(Bucket="bp-run-logs", Key=key)["ETag"]
        a.acquire(owner="a", now=later, ttl=timedelta(hours=1))
        assert b._put(b"{}", IfMatch=stale_etag) is None
        with pytest.raises(LeaseHeldError):
            b.acquire(owner="b", now=later, ttl=timedelta(hours=1))
        assert first.release() is False  # taken over: the old holder removes nothing
        body = s3.get_object(Bucket="bp-run-logs", Key=key)["Body"].read()
        assert json.loads(body)["owner"] == "a"
        assert a.release() is True

    @pytest.mark.usefixtures("aws")
    def test_s3_lease_thread_race(self, region: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Eight threads race for a free S3 lease, then eight for a stale one: one wins each race."""
        # S3 evaluates the condition of a conditional write atomically with the write: "If-None-Match
        # ... check[s] for the existence of an object during the WRITE operation", and of concurrent
        # conditional writes to one key only the first to finish succeeds, the others get 412 (or 409
        # ConditionalRequestConflict): https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
        # moto reads the object, compares, then writes, without a lock, so two threads can both pass
        # the check. Serialising moto's PutObject handler gives it S3's atomicity; the race between
        # our threads (read, decide, conditional write) is left as it is.
        from moto.s3.responses import S3Response

        guard = threading.Lock()
        put_object = S3Response.put_object

        def atomic_put_object(self: S3Response) -> Any:
            with guard:
                return put_object(self)

        monkeypatch.setattr(S3Response, "put_object", atomic_put_object)
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket="bp-run-logs")
        key = "log/_lease/shop.lease"

        def race(now: datetime) -> list[str]:
            barrier = threading.Barrier(8)
            won: list[str] = []

            def take(i: int) -> None:
                lease = S3Lease("bp-run-logs", key, region=region)
                barrier.wait()
                try:
                    lease.acquire(owner=f"run-{i}", now=now, ttl=timedelta(hours=1))
                except LeaseHeldError:
                    return
                won.append(f"run-{i}")

            threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return won

        def holder() -> str:
            body = s3.get_object(Bucket="bp-run-logs", Key=key)["Body"].read()
            return str(json.loads(body)["owner"])

        first = race(START)
        assert len(first) == 1
        assert holder() == first[0]
        takeover = race(START + timedelta(hours=2))  # the first lease is stale by then
        assert len(takeover) == 1
        assert holder() == takeover[0]


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[tuple[str, str, bytes]]

    def _note(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.hits.append((self.command, self.path, self.rfile.read(size)))
        self.send_response(200)
        self.end_headers()

    do_GET = _note  # noqa: N815
    do_POST = _note  # noqa: N815

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture(name="server")
def _server() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    hits: list[tuple[str, str, bytes]] = []
    handler = type("H", (_Recorder,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


class TestHeartbeatAndDigest:
    """Pings and the one digest, against a local HTTP server."""

    def test_start_and_success_pings_and_no_digest_when_all_is_well(
        self,
        *,
        tmp_path: Path,
        clock: _Clock,
        targets: dict[str, MemoryTarget],
        server: tuple[str, list[tuple[str, str, bytes]]],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The heartbeat URL comes from the environment and never prints."""
        url, hits = server
        monkeypatch.setenv("HB_URL", f"{url}/ping/s3cr3t-uuid")
        policy = _policy(heartbeat={"env": "HB_URL"})
        clock.now = START + timedelta(days=3, hours=5)
        digest = bp.run(policy, now=clock.now, log=_log(tmp_path, clock), targets=targets)
        assert [(m, p) for m, p, _ in hits] == [
            ("GET", "/ping/s3cr3t-uuid/start"),
            ("GET", "/ping/s3cr3t-uuid"),
        ]
        assert "s3cr3t" not in str(digest) + repr(digest) + json.dumps(digest.to_dict())
        assert "s3cr3t" not in repr(policy) + policy.to_yaml() + str(capsys.readouterr())

    def test_failures_send_one_digest_and_a_fail_ping(
        self,
        tmp_path: Path,
        clock: _Clock,
        targets: dict[str, MemoryTarget],
        server: tuple[str, list[tuple[str, str, bytes]]],
    ) -> None:
        """Two failing backups and an audit: one POST listing both, then /fail."""
        url, hits = server
        for target in targets.values():
            target.fail_next("create_backup", RuntimeError("disk full"))
        policy = _policy()
        clock.now = START + timedelta(hours=5)
        digest = bp.run(
            policy,
            now=clock.now,
            log=_log(tmp_path, clock),
            targets=targets,
            notifiers=[bp.WebhookNotifier(f"{url}/hook")],
            heartbeat=bp.Heartbeat(bp.Secret(f"{url}/hb")),
        )
        posts = [json.loads(body) for method, _, body in hits if method == "POST"]
        assert len(posts) == 1
        assert posts[0]["kind"] == "backup_failed"
        assert "shop-db" in posts[0]["error"]
        assert "blog-db" in posts[0]["error"]
        assert [p for m, p, _ in hits if m == "GET"] == ["/hb/start", "/hb/fail"]
        backups_failed = [f for f in digest.failures if f.startswith("backup of")]
        assert len(backups_failed) == 2
        assert digest.notified

    def test_a_dead_heartbeat_server_never_fails_the_run(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """Connection refused on every ping: logged, and the run is still ok."""
        clock.now = START + timedelta(hours=5)
        beat = bp.Heartbeat(bp.Secret("http://127.0.0.1:9/token-abcdef"), timeout=1)
        digest = bp.run(
            _policy(), now=clock.now, log=_log(tmp_path, clock), targets=targets, heartbeat=beat
        )
        assert digest.ok


class TestDigestAndCli:
    """The digest's forms and the command line."""

    def test_digest_forms_agree(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """Text, HTML and dict name the same totals."""
        clock.now = START + timedelta(hours=5)
        digest = bp.run(
            _policy(), now=clock.now, log=_log(tmp_path, clock), targets=targets, heartbeat=False
        )
        assert digest.to_dict()["totals"]["backups"] == 2
        assert "backups" in digest.summary()
        assert "<table" in digest._repr_html_()
        assert digest.summary() in digest._repr_html_() or "backups" in digest._repr_html_()

    def test_policy_refuses_an_inline_heartbeat_url(self) -> None:
        """The ping URL is a credential: only a reference is accepted, and it is not quoted."""
        with pytest.raises(bp.PolicyError, match=r"run\.heartbeat") as info:
            _policy(heartbeat="https://hc-ping.com/0b5a8e2c-secret")
        assert "0b5a8e2c" not in str(info.value)

    def test_cli_run_exit_codes(self, tmp_path: Path) -> None:
        """0 for a good run, 75 when the lease is held, 2 without a testing log."""
        data = _policy().to_dict()
        data["targets"] = [
            {
                "name": "files",
                "kind": "directory",
                "application": "shop",
                "settings": {"path": str(tmp_path / "src")},
            }
        ]
        data["tiers"] = [
            {"name": "local", "every": "day", "location": {"store": str(tmp_path / "store")}}
        ]
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "a.txt").write_text("hello")
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(bp.Policy.from_dict(data).to_yaml())
        log = str(tmp_path / "log.jsonl")
        now = "2026-01-01T05:00:00+00:00"
        out, err = io.StringIO(), io.StringIO()
        args = ["run", "--policy", str(policy_file), "--now", now]
        assert main([*args], out=out, err=err) == 2
        assert main([*args, "--log", log, "--json"], out=out, err=err) == 0, err.getvalue()
        FileLease(f"{log}.shop.lease").acquire(
            owner="x", now=datetime.now(UTC), ttl=timedelta(days=3650)
        )
        assert main([*args, "--log", log], out=io.StringIO(), err=err) == 75
