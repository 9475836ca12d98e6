"""`backuppolicy.run` / ``backuppolicy run``: whatever is due, once, under a lease, one digest."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine

import backuppolicy as bp
from backuppolicy.aws import S3Lease
from backuppolicy.checks.health import CallableCheck
from backuppolicy.cli.main import main
from backuppolicy.core.exceptions import LeaseHeldError
from backuppolicy.core.integrity_schedule import integrity_window_days
from backuppolicy.core.results import CheckKind, CheckStatus
from backuppolicy.core.schedule import Cadence
from backuppolicy.demo import load_seed_policy
from backuppolicy.local import FileLease
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows.testlog import LogEntry

START = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)


# MemoryTargets hold no data to query: this probe stands in for a target's real probes and
# checks what a memory restore gives, its endpoint. Without any probe a restore test is
# (rightly) unproven, and a run reports it as not met.
_RESTORED = CallableCheck(bool, name="restored-endpoint")


def _run(policy: bp.Policy, **options: Any) -> bp.RunDigest:
    """`bp.run` with a probe for every restore test (unless the test gives its own)."""
    options.setdefault("probes", [_RESTORED])
    return bp.run(policy, **options)


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


class _Checked(MemoryTarget):
    """A memory target whose copies pass an integrity check (`IntegrityCheck` calls ``verify``).

    Attributes:
        verified: ``(point id, when)`` of every check, from the world's side.
    """

    def __init__(self, name: str, *, policy: str, clock: _Clock) -> None:
        super().__init__(name, policy=policy, clock=clock)
        self.verified: list[tuple[str, datetime]] = []

    def verify(self, point: bp.RecoveryPoint) -> str:
        """The copy's checksum (it always matches)."""
        self.verified.append((point.id, self.clock()))
        return hashlib.sha256(point.id.encode()).hexdigest()


def _seed_like_policy() -> bp.Policy:
    """The demo's seed policy, with in-memory targets instead of AWS and directories.

    6 targets of 2 applications, daily local backups, weekly off-site copies, 35 days, restore
    tests each quarter and each application each year, integrity of every copy.
    """
    data: dict[str, Any] = load_seed_policy().to_dict()
    for target in data["targets"]:
        target["kind"] = "testing:memory"
        target["settings"] = {}
    data["notifications"] = []
    data["verification"].update(require_encryption=False, require_private=False)
    return bp.Policy.from_dict(data)


YEAR_START = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
DAYS = 400
HOURLY_EVERY = 25  # every 25th day is called at every hour


def _call_times() -> list[datetime]:
    """When `run` is called: 00:05 and 04:05 daily, 12:05 every 4th day, hourly every 25th."""
    return [
        YEAR_START + timedelta(days=day, hours=hour)
        for day in range(DAYS)
        for hour in range(24)
        if day % HOURLY_EVERY == 0 or hour in (0, 4) or (hour == 12 and day % 4 == 2)
    ]


def _check_targets(
    targets: dict[str, _Checked],
    digests: list[bp.RunDigest],
    entries: list[LogEntry],
    end: datetime,
) -> tuple[dict[str, bp.RecoveryPoint], dict[str, datetime]]:
    """Backups, copies, prunes and restores of each target, from the world and the digests."""
    by_time = {d.now: d for d in digests}
    created = {p.id: p for d in digests for p in (*d.backups, *d.copies)}
    deleted_at = {p.id: d.now for d in digests for p in d.deleted}
    copied_at = {p.id: d.now for d in digests for p in d.copies}
    for name, target in targets.items():
        alive = {p.id for p in target.list_points()}
        mine = {i for i, p in created.items() if p.target == name}
        # The world holds what the runs say they made, less what they say they deleted.
        assert (alive, sorted(target.deleted)) == (
            mine - set(deleted_at),
            sorted(i for i in deleted_at if i in mine),
        )
        assert len(target.deleted) == len(set(target.deleted))

        # Backups: exactly one per target per daily 04:00 slot that a call has seen.
        local = [created[i] for i in mine if created[i].tier == "local"]
        slots = Counter((p.created_at - timedelta(hours=4)).date() for p in local)
        seen = {(t - timedelta(hours=4)).date() for t in by_time}
        assert (set(slots), set(slots.values())) == (seen, {1}), name

        # Off-site copies: one per target per week (when it was made: a copy is dated by its
        # source), every full week.
        offsite = [i for i in mine if created[i].tier == "offsite"]
        weeks = Counter(Cadence.WEEK.period_start(copied_at[i], "GMT") for i in offsite)
        first_week = Cadence.WEEK.period_start(YEAR_START, "GMT")
        full = {first_week + timedelta(weeks=n) for n in range(1, (end - first_week).days // 7)}
        assert set(weeks.values()) == {1}, name
        assert full <= set(weeks), sorted(full - set(weeks))[:3]

        # Pruning: past 35 days and never before, within a day of becoming deletable.
        for point_id, when in deleted_at.items():
            if point_id in mine:
                age = when - created[point_id].created_at
                assert timedelta(days=35) <= age <= timedelta(days=36), (point_id, age)
        assert all(end - created[i].created_at < timedelta(days=36) for i in alive)

        # Restore tests: each restore was torn down; the world's restores are the log's.
        tests = [e for e in entries if e.kind is CheckKind.RESTORE_TEST and e.target == name]
        assert len(target.restores) == len(target.teardowns) == len(tests)

    return created, deleted_at


def _check_integrity(
    policy: bp.Policy,
    targets: dict[str, _Checked],
    entries: list[LogEntry],
    *,
    created: dict[str, bp.RecoveryPoint],
    deleted_at: dict[str, datetime],
    end: datetime,
) -> None:
    """Every copy checked within its window, once a cycle; the world's reads are the log's."""
    # The world's reads are the log's entries, one per copy and day at most ...
    world = Counter(
        (name, point_id, when.date())
        for name, target in targets.items()
        for point_id, when in target.verified
    )
    checks = [e for e in entries if e.kind is CheckKind.INTEGRITY]
    logged = Counter((e.target, e.point_id, e.checked_at.date()) for e in checks)
    assert world == logged
    assert set(world.values()) == {1}
    assert {e.status for e in checks} == {CheckStatus.PASS}
    # ... and each copy that lived through its window was checked within it, once a cycle.
    for point_id, point in created.items():
        window = timedelta(days=integrity_window_days(policy, point.target, point.tier))
        life = deleted_at.get(point_id, end) - point.created_at
        mine_checks = sorted(e.checked_at for e in checks if e.point_id == point_id)
        if life >= window:
            assert mine_checks, point_id
            assert mine_checks[0] - point.created_at < window, point_id
        assert len(mine_checks) <= life // window + 1, point_id


def _check_restore_tests(
    policy: bp.Policy, digests: list[bp.RunDigest], entries: list[LogEntry], end: datetime
) -> None:
    """Each quarter has a restore test, each application one a year, none twice a quarter."""
    tests = [e for e in entries if e.kind is CheckKind.RESTORE_TEST]
    assert {e.status for e in tests} == {CheckStatus.PASS}
    runs = {(e.application, e.checked_at) for e in tests}
    quarters = Counter(Cadence.QUARTER.period_start(when, "GMT") for _, when in runs)
    per_app_quarter = Counter(
        (app, Cadence.QUARTER.period_start(when, "GMT")) for app, when in runs
    )
    assert set(per_app_quarter.values()) == {1}
    first_quarter = Cadence.QUARTER.period_start(YEAR_START, "GMT")
    finished = [
        q
        for q in (
            Cadence.QUARTER.period_start(YEAR_START + timedelta(days=92 * n), "GMT")
            for n in range(5)
        )
        if q >= first_quarter and q + timedelta(days=92) <= end
    ]
    assert all(quarters[q] >= 1 for q in finished), quarters
    for application in policy.applications:
        when = sorted(w for app, w in runs if app == application)
        assert when, application
        assert when[0] - YEAR_START < timedelta(days=366)
        gaps = [b - a for a, b in pairwise(when)]
        assert all(gap <= timedelta(days=366) for gap in gaps), (application, gaps)
    assert sum(len(d.restore_tests) for d in digests) == len(tests)


@pytest.mark.slow
class TestSimulatedYear:
    """`run` called over 400 simulated days does exactly what the policy requires, once."""

    def test_400_days_of_runs_do_each_duty_once(self, tmp_path: Path) -> None:
        """Backups, copies, prunes, integrity checks and restore tests: as required, never twice.

        The world is the demo's seed policy on in-memory targets; the testing log is a
        JSON-lines file with its lease. The calls come at 00:05 and 04:05 every day, at 12:05
        every 4th day and at every hour every 25th day; on day 200 another run holds the lease
        at 04:05. What
        happened is counted from the world (points created and deleted, restores, integrity
        reads) and from the log, and compared with what the policy requires.
        """
        policy = _seed_like_policy()
        clock = _Clock()
        targets = {
            s.name: _Checked(s.name, policy=policy.name, clock=clock) for s in policy.targets
        }
        log = _log(tmp_path, clock)
        held_at = YEAR_START + timedelta(days=200, hours=4)
        digests: list[bp.RunDigest] = []
        with time_machine.travel(YEAR_START, tick=False) as traveller:
            for now in _call_times():
                clock.now = now
                traveller.move_to(now)
                if now == held_at:
                    other = bp.workflows.unattended.lease_for(log, policy)
                    other.acquire(owner="other@host", now=now, ttl=timedelta(minutes=30))
                digests.append(_run(policy, now=now, log=log, targets=targets, heartbeat=False))
        end = clock.now
        assert [d.failures for d in digests if d.failures] == []
        by_time = {d.now: d for d in digests}
        entries = list(log.entries())

        # Two overlapping runs never both act: the held call did nothing, the next one did it.
        assert by_time[held_at].held_by == "other@host"
        assert by_time[held_at].steps == ()
        assert len(by_time[held_at + timedelta(hours=1)].backups) == len(targets)
        assert [d.now for d in digests if d.held_by] == [held_at]

        created, deleted_at = _check_targets(targets, digests, entries, end)
        _check_integrity(policy, targets, entries, created=created, deleted_at=deleted_at, end=end)
        _check_restore_tests(policy, digests, entries, end)
        assert log.overdue(policy, now=end) == []

        # A call that finds nothing due does nothing, and writes nothing to the log.
        quiet = [d for d in digests if d.now.hour == 12]
        assert quiet
        assert all(d.steps == ("backup",) and not any(d.totals().values()) for d in quiet)
        assert not {d.now for d in quiet} & {e.checked_at for e in entries}


class TestRestoreTestsElsewhere:
    """``restore_tests=False``: the state machine runs them (an RDS restore outlasts a Lambda)."""

    def test_due_restore_tests_are_left_to_another_engine(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """A first run tests every application; with restore_tests=False it tests none."""
        policy = _policy()
        clock.now = START + timedelta(hours=5)
        fresh = {n: MemoryTarget(n, policy="shop", clock=clock) for n in ("shop-db", "blog-db")}
        both = _run(
            policy, now=clock.now, log=_log(tmp_path, clock), targets=fresh, heartbeat=False
        )
        assert "restore-test" in both.steps
        assert both.totals()["restore_tests"] == 2
        none = _run(
            policy,
            now=clock.now,
            log=bp.TestLog(bp.JsonlLogStore(tmp_path / "other.jsonl"), clock=clock),
            targets=targets,
            heartbeat=False,
            restore_tests=False,
        )
        assert "restore-test" not in none.steps
        assert none.totals()["restore_tests"] == 0
        assert none.totals()["backups"] == 2  # the rest of the run still happens

    def test_the_lambda_event_passes_it_and_refuses_a_non_bool(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``{"action": "run", "restore_tests": false}`` reaches `run`; ``"no"`` is a PolicyError."""
        from backuppolicy import lambda_handler

        seen: list[object] = []

        def fake_run(policy: bp.Policy, **options: Any) -> bp.RunDigest:
            seen.append(options["restore_tests"])
            return bp.RunDigest(policy=policy.name, now=options["now"], owner="test")

        monkeypatch.setattr("backuppolicy.workflows.unattended.run", fake_run)
        path = tmp_path / "policy.yaml"
        path.write_text(_policy().to_yaml())
        monkeypatch.setenv("BACKUPPOLICY_FILE", str(path))
        lambda_handler.handler({"action": "run", "log": "memory://", "restore_tests": False})
        assert [False] == seen
        with pytest.raises(bp.PolicyError, match="restore_tests"):
            lambda_handler.handler({"action": "run", "log": "memory://", "restore_tests": "no"})


class TestIdempotence:
    """The same call twice does once what is due."""

    def test_a_second_call_at_the_same_time_does_nothing(
        self, tmp_path: Path, clock: _Clock, targets: dict[str, MemoryTarget]
    ) -> None:
        """Idempotent: the same `now` twice makes one backup and one of each check."""
        policy = _policy()
        log = _log(tmp_path, clock)
        clock.now = START + timedelta(hours=5)
        first = _run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
        second = _run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
        assert first.totals()["backups"] == 2
        assert second.totals() == dict.fromkeys(second.totals(), 0)
        assert second.steps == ("backup",)


def _race(make_lease: Callable[[], FileLease | S3Lease], now: datetime) -> list[str]:
    """Eight threads, each with its own lease object, acquire at once; the owners that won."""
    barrier = threading.Barrier(8)
    won: list[str] = []

    def take(i: int) -> None:
        lease = make_lease()
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


class TestLease:
    """Two runs never both act; a stale lease is taken over."""

    def test_file_lease_race(self, tmp_path: Path) -> None:
        """Of eight threads racing for one lease file, exactly one wins."""
        won = _race(lambda: FileLease(tmp_path / "run.lease"), START)
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
        digest = _run(policy, now=clock.now, log=log, targets=targets, heartbeat=False)
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
            return _race(lambda: S3Lease("bp-run-logs", key, region=region), now)

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
        digest = _run(policy, now=clock.now, log=_log(tmp_path, clock), targets=targets)
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
        digest = _run(
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
        digest = _run(
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
        digest = _run(
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
