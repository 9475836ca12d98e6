from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.workflows import _logformat, logstores
from backuppolicy.workflows.testlog import (
    CorruptLogLineWarning,
    JsonlLogStore,
    LogDamage,
    LogDamageKind,
    LogEntry,
    MemoryLogStore,
    OverdueKind,
    S3LogStore,
    TestLog,
    default_ran_by,
)

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
Q4 = datetime(2026, 10, 1, tzinfo=UTC)


def result(  # noqa: D103 - builds a CheckResult with test defaults
    *,
    at: datetime = NOW,
    check: str = "encrypted",
    status: CheckStatus = CheckStatus.PASS,
    target: str = "shop-db",
    kind: CheckKind = CheckKind.VERIFICATION,
    application: str | None = None,
    tier: str | None = None,
    ran_by: str = "",
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        target=target,
        checked_at=at,
        kind=kind,
        application=application,
        tier=tier,
        ran_by=ran_by,
        point_id="snap-1",
        details="checked",
        issues=("one issue",) if status is CheckStatus.FAIL else (),
        evidence={"kms_key_id": "alias/backups"},
        duration=1.5,
    )


def restore_test(at: datetime, target: str = "shop-db", **kw: Any) -> CheckResult:
    """A restore-test result."""
    return result(at=at, check="restore-test", target=target, kind=CheckKind.RESTORE_TEST, **kw)


def integrity(at: datetime, target: str, tier: str | None, **kw: Any) -> CheckResult:
    """An integrity-check result."""
    return result(
        at=at, check="integrity", target=target, kind=CheckKind.INTEGRITY, tier=tier, **kw
    )


@pytest.fixture(name="log")
def _log() -> TestLog:
    return TestLog(MemoryLogStore(), ran_by="tester@box", clock=lambda: NOW)


@pytest.fixture(name="policy")
def _policy() -> Policy:
    return Policy.from_dict(
        {
            "name": "web-apps",
            "timezone": "UTC",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "tiers": [{"name": "local", "every": "day"}, {"name": "offsite", "every": "week"}],
            "targets": [
                {"name": "shop-db", "kind": "testing:memory", "application": "shop"},
                {"name": "blog-db", "kind": "testing:memory", "application": "blog"},
                {
                    "name": "old-db",
                    "kind": "testing:memory",
                    "application": "blog",
                    "enabled": False,
                },
            ],
            "verification": {"integrity_covers_tiers": ["local", "offsite"]},
        }
    )


class TestLogEntry:
    def test_round_trip(self, log: TestLog) -> None:
        """An entry survives to_dict/from_dict unchanged."""
        entry = log.record(result())
        assert entry == LogEntry.from_dict(json.loads(json.dumps(entry.to_dict())))

    def test_malformed_rejected(self) -> None:
        """from_dict names what an entry needs when fields are missing."""
        with pytest.raises(PolicyError, match="entry: expected a log entry with id"):
            LogEntry.from_dict({"id": "x"})

    def test_properties_delegate_to_result(self, log: TestLog) -> None:
        """The entry exposes the result's facts."""
        entry = log.record(result(status=CheckStatus.FAIL, tier="offsite"))
        assert ("encrypted", "shop-db", "offsite", "snap-1", False, False) == (
            entry.check,
            entry.target,
            entry.tier,
            entry.point_id,
            entry.ok,
            entry.passed,
        )


class TestRecord:
    def test_adds_id_time_and_ran_by(self, log: TestLog) -> None:
        """record fills in an id, the recording time and the default ran_by."""
        entry = log.record(result())
        assert (NOW, "tester@box") == (entry.recorded_at, entry.ran_by)
        assert entry.id.startswith("20261126T050000.000000Z-")

    def test_keeps_given_ran_by(self, log: TestLog) -> None:
        """A result that says who ran it keeps that."""
        assert "ci-job-17" == log.record(result(ran_by="ci-job-17")).ran_by

    def test_default_ran_by_is_user_at_host(self) -> None:
        """Without ran_by= the log uses user@host."""
        assert default_ran_by() == TestLog(MemoryLogStore()).ran_by
        assert "@" in default_ran_by()

    def test_ids_unique(self, log: TestLog) -> None:
        """Entries recorded at the same instant get different ids."""
        ids = {log.record(result()).id for _ in range(50)}
        assert 50 == len(ids)

    def test_rejects_other_values(self, log: TestLog) -> None:
        """Only CheckResults can be recorded."""
        with pytest.raises(PolicyError, match="result: expected a CheckResult"):
            log.record({"check": "x"})  # type: ignore[arg-type]

    def test_rejects_bad_store(self) -> None:
        """A store must be able to append and read."""
        with pytest.raises(PolicyError, match="store: expected a LogStore"):
            TestLog(object())  # type: ignore[arg-type]

    def test_repr(self, log: TestLog) -> None:
        """The log's repr names its store."""
        log.record(result())
        assert "<backuppolicy.TestLog(store=MemoryLogStore(entries=1))>" == repr(log)


class TestOpen:
    def test_path(self, tmp_path: Path) -> None:
        """A path opens a JSON-lines file."""
        log = TestLog.open(tmp_path / "log.jsonl")
        assert isinstance(log.store, JsonlLogStore)
        assert tmp_path / "log.jsonl" == log.store.path

    def test_file_url(self, tmp_path: Path) -> None:
        """file:// URLs open a JSON-lines file."""
        log = TestLog.open(f"file://{tmp_path}/log.jsonl", ran_by="me@here")
        assert (tmp_path / "log.jsonl", "me@here") == (log.store.path, log.ran_by)  # type: ignore[attr-defined]

    def test_memory(self) -> None:
        """memory:// opens an in-memory log."""
        assert isinstance(TestLog.open("memory://").store, MemoryLogStore)

    def test_s3(self) -> None:
        """s3://bucket/prefix opens an S3 store (nothing is called yet)."""
        store = TestLog.open("s3://logs-bucket/web-apps/log", region="us-east-1").store
        assert isinstance(store, S3LogStore)
        assert ("logs-bucket", "web-apps/log/") == (store.bucket, store.prefix)

    @pytest.mark.parametrize("url", ["", "s3://", "s3:///prefix"])
    def test_bad_url(self, url: str) -> None:
        """Empty URLs and s3:// without a bucket are refused."""
        with pytest.raises(PolicyError, match="url: expected"):
            TestLog.open(url)


class TestJsonlStore:
    def test_one_line_per_entry(self, tmp_path: Path) -> None:
        """Each entry is one JSON object on its own line, readable back in order."""
        path = tmp_path / "sub" / "log.jsonl"
        log = TestLog(JsonlLogStore(path), clock=lambda: NOW)
        written = [log.record(result(at=NOW - timedelta(days=i))) for i in range(3)]
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [e.id for e in written] == [json.loads(line)["id"] for line in lines]
        assert written == list(log.store.read())

    def test_missing_file_is_empty(self, tmp_path: Path) -> None:
        """Reading a log that was never written gives nothing."""
        assert [] == list(JsonlLogStore(tmp_path / "none.jsonl").read())

    def test_torn_last_line_skipped_and_next_append_intact(self, tmp_path: Path) -> None:
        """A torn last line is skipped with a warning and the next entry is still readable."""
        path = tmp_path / "log.jsonl"
        log = TestLog(JsonlLogStore(path), clock=lambda: NOW)
        first = log.record(result())
        whole = path.read_bytes()
        with path.open("ab") as file:  # a writer died half-way through its line
            file.write(whole[: len(whole) // 2])
        with pytest.warns(CorruptLogLineWarning, match="torn last line"):
            assert [first] == list(log.store.read())
        second = log.record(result(check="fresh"))
        with pytest.warns(CorruptLogLineWarning, match="skipped an unreadable"):
            assert [first, second] == list(log.store.read())
        assert 3 == len(path.read_bytes().splitlines())

    def test_garbage_line_skipped(self, tmp_path: Path) -> None:
        """A line that is not an entry is skipped with a warning naming the file and line."""
        path = tmp_path / "log.jsonl"
        log = TestLog(JsonlLogStore(path), clock=lambda: NOW)
        first = log.record(result())
        with path.open("ab") as file:
            file.write(b'{"not": "an entry"}\n\n')
        second = log.record(result())
        with pytest.warns(CorruptLogLineWarning, match=r"log\.jsonl:2"):
            assert [first, second] == list(log.store.read())

    def test_concurrent_threads(self, tmp_path: Path) -> None:
        """Threads appending at once lose and mangle nothing."""
        path = tmp_path / "log.jsonl"
        barrier = threading.Barrier(8)

        def writer(n: int) -> None:
            log = TestLog(JsonlLogStore(path))
            barrier.wait()
            for i in range(25):
                log.record(result(check=f"w{n}-{i}"))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        entries = list(JsonlLogStore(path).read())
        assert {f"w{n}-{i}" for n in range(8) for i in range(25)} == {e.check for e in entries}
        assert 200 == len({e.id for e in entries})
        assert [] == JsonlLogStore(path).damage()  # the chain holds under concurrent appends

    def test_concurrent_processes(self, tmp_path: Path) -> None:
        """Two processes appending to the same file at once lose and mangle nothing."""
        path = tmp_path / "log.jsonl"
        go = tmp_path / "go"
        script = textwrap.dedent(
            """
            import sys, time
            from datetime import UTC, datetime
            from pathlib import Path
            from backuppolicy.workflows.testlog import JsonlLogStore, TestLog
            from backuppolicy.core.results import CheckResult
            path, go, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
            while not go.exists():
                time.sleep(0.001)
            log = TestLog(JsonlLogStore(path))
            for i in range(100):
                log.record(CheckResult(check=f"{name}-{i}", status="pass", target="t",
                                       checked_at=datetime.now(UTC), details="x" * 500))
            """
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", script, str(path), str(go), name])
            for name in ("a", "b")
        ]
        go.touch()
        assert [0, 0] == [proc.wait(timeout=60) for proc in procs]
        checks = [e.check for e in JsonlLogStore(path).read()]
        assert {f"{n}-{i}" for n in "ab" for i in range(100)} == set(checks)
        assert 200 == len(checks)
        assert [] == JsonlLogStore(path).damage()  # the chain holds across processes


class TestQueries:
    def test_filters(self, log: TestLog) -> None:
        """entries() keeps what matches every filter given."""
        log.record(result(target="a", application="shop"))
        wanted = log.record(
            restore_test(NOW, target="b", application="blog", status=CheckStatus.FAIL)
        )
        log.record(result(target="b", application="blog", check="encrypted"))
        assert [wanted] == list(
            log.entries(
                target="b",
                application="blog",
                check="restore-test",
                kind="restore-test",
                status="fail",
            )
        )

    def test_sorted_by_check_time(self, log: TestLog) -> None:
        """Entries come oldest check first, whatever order they were recorded in."""
        late = log.record(result(at=NOW))
        early = log.record(result(at=NOW - timedelta(days=1)))
        assert [early, late] == list(log.entries())

    def test_quarter_edges(self, log: TestLog) -> None:
        """since is inclusive and until exclusive, so quarters split exactly at midnight."""
        last_of_q3 = log.record(result(at=Q4 - timedelta(microseconds=1)))
        first_of_q4 = log.record(result(at=Q4))
        assert [first_of_q4] == list(log.entries(since=Q4))
        assert [last_of_q3] == list(log.entries(since=datetime(2026, 7, 1, tzinfo=UTC), until=Q4))

    def test_naive_times_refused(self, log: TestLog) -> None:
        """Filters take timezone-aware times only."""
        with pytest.raises(PolicyError, match="since: expected a timezone-aware datetime"):
            list(log.entries(since=datetime(2026, 1, 1)))

    def test_unknown_kind_refused(self, log: TestLog) -> None:
        """An unknown kind names the known ones."""
        with pytest.raises(PolicyError, match="kind: expected one of verification"):
            list(log.entries(kind="restore"))

    def test_failures_since(self, log: TestLog) -> None:
        """failures() lists failed checks from a date on."""
        log.record(result(at=NOW - timedelta(days=10), status=CheckStatus.FAIL))
        recent = log.record(result(at=NOW - timedelta(days=1), status=CheckStatus.FAIL))
        log.record(result(at=NOW, status=CheckStatus.WARN))
        assert [recent] == log.failures(since=NOW - timedelta(days=2))

    def test_last_success(self, log: TestLog) -> None:
        """last_success is the newest pass of that check on that target, not a later failure."""
        log.record(result(at=NOW - timedelta(days=3)))
        passed = log.record(result(at=NOW - timedelta(days=2)))
        log.record(result(at=NOW - timedelta(days=1), status=CheckStatus.FAIL))
        log.record(result(at=NOW, target="other"))
        assert passed == log.last_success("shop-db", "encrypted")
        assert log.last_success("shop-db", "integrity") is None


def overdue_subjects(log: TestLog, policy: Policy, now: datetime = NOW) -> dict[str, list[str]]:
    """The subjects of the overdue findings, by kind."""
    found: dict[str, list[str]] = {}
    for finding in log.overdue(policy, now=now):
        found.setdefault(finding.kind.value, []).append(finding.subject)
    return found


def record_everything(log: TestLog) -> None:
    """Record every test and check the policy needs at NOW, for both applications."""
    for quarter_mid in (
        datetime(2025, 11, 15, tzinfo=UTC),
        datetime(2026, 2, 15, tzinfo=UTC),
        datetime(2026, 5, 15, tzinfo=UTC),
        datetime(2026, 8, 15, tzinfo=UTC),
    ):
        log.record(restore_test(quarter_mid, target="blog-db"))
    log.record(restore_test(NOW - timedelta(days=1), target="shop-db"))
    for target in ("shop-db", "blog-db"):
        for tier in ("local", "offsite"):
            log.record(integrity(NOW - timedelta(days=1), target, tier))


class TestOverdue:
    def test_nothing_recorded(self, log: TestLog, policy: Policy) -> None:
        """An empty log is overdue for every application, the last four quarters and every copy."""
        assert {
            "application-not-tested": ["shop", "blog"],
            "period-without-test": ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"],
            "copy-not-checked": [
                "shop-db/local",
                "shop-db/offsite",
                "blog-db/local",
                "blog-db/offsite",
            ],
        } == overdue_subjects(log, policy)

    def test_everything_done(self, log: TestLog, policy: Policy) -> None:
        """A log with every required test shows nothing overdue."""
        record_everything(log)
        assert [] == log.overdue(policy, now=NOW)

    def test_application_window_is_twelve_months(self, log: TestLog, policy: Policy) -> None:
        """A restore test exactly a year ago still counts; one a microsecond older does not."""
        year_ago = datetime(2025, 11, 26, 5, 0, tzinfo=UTC)
        log.record(restore_test(year_ago, target="shop-db"))
        older = log.record(
            restore_test(year_ago - timedelta(microseconds=1), target="blog-db", application="blog")
        )
        assert ["blog"] == overdue_subjects(log, policy)["application-not-tested"]
        finding = next(f for f in log.overdue(policy, now=NOW) if f.subject == "blog")
        assert (OverdueKind.APPLICATION_NOT_TESTED, "§3.3", year_ago, NOW, older) == (
            finding.kind,
            finding.clause,
            finding.window_start,
            finding.window_end,
            finding.last,
        )

    def test_failed_restore_test_does_not_count_for_the_application(
        self, log: TestLog, policy: Policy
    ) -> None:
        """An application whose only recent restore test failed is still overdue."""
        record_everything(log)
        log = TestLog(MemoryLogStore([e for e in log.entries() if e.target != "shop-db"]))
        log.record(restore_test(NOW, target="shop-db", status=CheckStatus.FAIL))
        assert ["shop"] == overdue_subjects(log, policy).get("application-not-tested")

    def test_quarter_without_any_test(self, log: TestLog, policy: Policy) -> None:
        """A finished quarter with no passing restore test is overdue: a failed one does not count."""
        log.record(restore_test(datetime(2025, 12, 31, 23, 59, tzinfo=UTC), target="blog-db"))
        log.record(restore_test(datetime(2026, 4, 1, tzinfo=UTC), status=CheckStatus.FAIL))
        log.record(restore_test(datetime(2026, 9, 30, tzinfo=UTC), status=CheckStatus.SKIPPED))
        assert ["2026-Q1", "2026-Q2", "2026-Q3"] == overdue_subjects(log, policy)[
            "period-without-test"
        ]

    def test_quarter_in_progress_is_not_overdue(self, log: TestLog, policy: Policy) -> None:
        """On the first instant of a quarter, the quarter just ended is judged, not the new one."""
        for month in (2, 5, 8):
            log.record(restore_test(datetime(2026, month, 15, tzinfo=UTC)))
        jan = datetime(2027, 1, 1, tzinfo=UTC)
        assert ["2026-Q4"] == overdue_subjects(log, policy, now=jan)["period-without-test"]
        log.record(restore_test(jan - timedelta(microseconds=1)))
        assert "period-without-test" not in overdue_subjects(log, policy, now=jan)

    def test_quarters_follow_the_policy_time_zone(self, log: TestLog, policy: Policy) -> None:
        """A test at 23:30 UTC on 30 June is in Q3 in London (BST), so Q2 has none there."""
        london = Policy.from_dict({**policy.to_dict(), "timezone": "Europe/London"})
        log.record(restore_test(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)))
        assert "2026-Q2" in overdue_subjects(log, london)["period-without-test"]
        assert "2026-Q2" not in overdue_subjects(log, policy)["period-without-test"]

    def test_since_limits_the_quarters(self, log: TestLog, policy: Policy) -> None:
        """Quarters that ended before since= are not looked at."""
        found = log.overdue(policy, now=NOW, since=datetime(2026, 8, 1, tzinfo=UTC))
        assert ["2026-Q3"] == [
            f.subject for f in found if f.kind is OverdueKind.PERIOD_WITHOUT_TEST
        ]

    def test_integrity_per_tier(self, log: TestLog, policy: Policy) -> None:
        """Each covered tier needs its own passing check; a result without tier counts for the source tier."""
        log.record(integrity(NOW - timedelta(days=30), "shop-db", None))
        log.record(
            integrity(NOW - timedelta(days=30), "shop-db", "offsite", status=CheckStatus.FAIL)
        )
        log.record(integrity(NOW - timedelta(days=400), "blog-db", "local"))
        log.record(integrity(NOW, "blog-db", "offsite"))
        assert ["shop-db/offsite", "blog-db/local"] == overdue_subjects(log, policy)[
            "copy-not-checked"
        ]

    def test_integrity_only_covered_tiers(self, log: TestLog, policy: Policy) -> None:
        """Tiers outside integrity_covers_tiers need no check."""
        local_only = Policy.from_dict(
            {**policy.to_dict(), "verification": {"integrity_covers_tiers": ["local"]}}
        )
        assert ["shop-db/local", "blog-db/local"] == overdue_subjects(log, local_only)[
            "copy-not-checked"
        ]

    def test_future_entries_ignored(self, log: TestLog, policy: Policy) -> None:
        """Checks after now do not satisfy the review made for now."""
        log.record(restore_test(NOW + timedelta(hours=1)))
        assert "shop" in overdue_subjects(log, policy)["application-not-tested"]

    def test_finding_to_dict(self, log: TestLog, policy: Policy) -> None:
        """Findings are JSON-ready."""
        data = [f.to_dict() for f in log.overdue(policy, now=NOW)]
        assert data == json.loads(json.dumps(data))
        assert (
            "application shop not covered in 2025-11-26 to 2026-11-26: no restore test with "
            "data proof of shop-db" == data[0]["detail"]
        )


class TestCli:
    @pytest.fixture(name="log_file")
    def _log_file(self, tmp_path: Path) -> Path:
        """A JSON-lines log with a pass, a failure and an older pass."""
        path = tmp_path / "log.jsonl"
        log = TestLog.open(path, ran_by="support@ops", clock=lambda: NOW)
        log.record(result(at=datetime(2026, 9, 1, tzinfo=UTC)))
        log.record(restore_test(NOW - timedelta(days=2), target="shop-db"))
        log.record(result(at=NOW - timedelta(days=1), target="blog-db", status=CheckStatus.FAIL))
        return path

    @pytest.fixture(name="run")
    def _run(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy: Policy) -> Any:
        """Run ``backuppolicy testlog ...`` in-process."""
        import io

        import backuppolicy.cli.main as cli

        monkeypatch.delenv("BACKUPPOLICY_TESTLOG", raising=False)
        (tmp_path / "policy.yaml").write_text(policy.to_yaml())

        def run(*argv: str) -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            base = ["--policy", str(tmp_path / "policy.yaml"), "--now", NOW.isoformat()]
            code = cli.main(["testlog", *base, *argv], out=out, err=err)
            return code, out.getvalue(), err.getvalue()

        return run

    def test_lists_entries(self, run: Any, log_file: Path) -> None:
        """Without flags the recent entries are listed, oldest first, exit 0."""
        code, out, _ = run("--log", str(log_file))
        lines = out.splitlines()
        assert (0, 6) == (code, len(lines))
        assert lines[0].startswith("3 of 3 entries of JsonlLogStore(")
        assert lines[3].split()[:5] == [
            "2026-09-01T00:00:00+00:00",
            "shop-db",
            "-",
            "encrypted",
            "pass",
        ]
        assert "one issue" in lines[5]

    def test_failures_since_exit_1(self, run: Any, log_file: Path) -> None:
        """--failures lists failed checks and exits 1 when there are any."""
        code, out, _ = run("--log", str(log_file), "--failures", "--since", "2026-11-01", "--json")
        assert (1, ["blog-db"]) == (code, [e["target"] for e in json.loads(out)])

    def test_log_from_the_environment(
        self, run: Any, log_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$BACKUPPOLICY_TESTLOG names the log when --log is not given; --last and --target narrow."""
        monkeypatch.setenv("BACKUPPOLICY_TESTLOG", str(log_file))
        code, out, _ = run("--json", "--last", "1", "--target", "shop-db")
        assert (0, ["restore-test"]) == (code, [e["check"] for e in json.loads(out)])

    def test_overdue(self, run: Any, log_file: Path) -> None:
        """--overdue lists what the policy needs and the log lacks, exit 1."""
        code, out, _ = run("--log", str(log_file), "--overdue", "--json")
        kinds = {f["kind"] for f in json.loads(out)}
        assert (1, {"application-not-tested", "period-without-test", "copy-not-checked"}) == (
            code,
            kinds,
        )
        shop = [f for f in json.loads(out) if f["subject"] == "shop"]
        assert [] == shop

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            ((), "--log FILE|s3://bucket/prefix is required"),
            (
                ("--log", "x.jsonl", "--since", "last week"),
                "--since: expected a date like 2026-10-01",
            ),
            (("--log", "x.jsonl", "--last", "0"), "--last: expected a number >= 1"),
        ],
    )
    def test_usage_errors(self, run: Any, argv: tuple[str, ...], message: str) -> None:
        """Bad options give one error line and exit 2."""
        code, _, err = run(*argv)
        assert 2 == code
        assert message in err

    def test_damaged_only_failure_exits_1(self, run: Any, log_file: Path) -> None:
        """--failures --json exits 1 and names the damage when the only failure's line is damaged."""
        lines = log_file.read_bytes().splitlines(keepends=True)
        lines[2] = lines[2].replace(b'"status":"fail"', b'"status":"pass"')
        log_file.write_bytes(b"".join(lines))
        code, out, err = run("--log", str(log_file), "--failures", "--json")
        assert (1, []) == (code, json.loads(out))
        assert f"testing log damaged: {log_file}:3: damaged: skipped: its content" in err

    def test_damage_reported_in_text(self, run: Any, log_file: Path) -> None:
        """A removed middle line makes the plain listing exit 1 with a damage line."""
        lines = log_file.read_bytes().splitlines(keepends=True)
        log_file.write_bytes(lines[0] + lines[2])
        code, out, _ = run("--log", str(log_file))
        assert 1 == code
        assert f"testing log damaged: {log_file}:2: chain-broken:" in out


def _three(tmp_path: Path) -> tuple[Path, list[LogEntry]]:
    """A chained three-entry log (one failure in the middle) and its entries."""
    path = tmp_path / "log.jsonl"
    log = TestLog(JsonlLogStore(path), clock=lambda: NOW)
    entries = [
        log.record(result(at=NOW - timedelta(days=2))),
        log.record(result(at=NOW - timedelta(days=1), status=CheckStatus.FAIL, check="é ü")),
        log.record(result(at=NOW)),
    ]
    return path, entries


def _legacy_line(entry: LogEntry) -> bytes:
    """An entry as logs before the hash chain stored it."""
    data = json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return data.encode() + b"\n"


class TestTamperEvidence:
    """The JSON-lines log is a hash chain: every change, removal and move is found."""

    def test_intact_log_has_no_damage(self, tmp_path: Path) -> None:
        """A log written by TestLog reads back whole, with nothing to report."""
        path, entries = _three(tmp_path)
        store = JsonlLogStore(path)
        assert (entries, []) == (list(store.read()), store.damage())

    def test_every_bit_flip_of_a_middle_line_is_detected(self, tmp_path: Path) -> None:
        """Each of the middle line's bit flips is damage, and no changed entry is ever read."""
        path, entries = _three(tmp_path)
        original = path.read_bytes()
        first, middle, _ = original.splitlines(keepends=True)
        start = len(first)
        store = JsonlLogStore(path)
        missed = []
        changed = []
        for offset in range(start, start + len(middle)):
            for bit in range(8):
                data = bytearray(original)
                data[offset] ^= 1 << bit
                path.write_bytes(bytes(data))
                damage: list[LogDamage] = []
                read = list(store._scan(damage))  # entries and damage in one read
                if not any(d.tampering for d in damage):
                    missed.append((offset - start, bit))
                if not set(read) <= set(entries):
                    changed.append((offset - start, bit))
        assert ([], [], 8 * len(middle)) == (missed, changed, 8 * (len(middle)))

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("tier", {"a": 1}),
            ("point_id", [1]),
            ("application", {"x": 1}),
            ("issues", [{"a": 1}]),
            ("issues", "abc"),
            ("evidence", [["a", 1]]),
            ("target", {"a": 1}),
            ("duration", "1e400"),
        ],
    )
    def test_a_chained_line_with_a_field_of_the_wrong_type_is_damage(
        self, tmp_path: Path, field: str, value: Any
    ) -> None:
        """A line whose digest matches but whose fields have the wrong types never reaches readers.

        Such a line is written by a buggy or hostile writer that computes the digest (the chain
        cannot tell who wrote a line); it is an unreadable entry, not a crash of `testlog`.
        """
        import backuppolicy.cli.main as cli

        path, entries = _three(tmp_path)
        lines = path.read_bytes().splitlines(keepends=True)
        data = {**entries[2].to_dict(), field: value}
        chain: dict[str, Any] = {"prev": _logformat.sha256(lines[1].removesuffix(b"\n"))}
        chain["sha256"] = _logformat.sha256(_logformat.canonical({**data, "chain": chain}))
        lines[2] = _logformat.canonical({**data, "chain": chain}) + b"\n"
        path.write_bytes(b"".join(lines))
        store = JsonlLogStore(path)
        damage: list[LogDamage] = []
        read = list(store._scan(damage))
        assert (entries[:2], [(LogDamageKind.DAMAGED, f"{path}:3")]) == (
            read,
            [(d.kind, d.where) for d in damage],
        )
        for argv in (["testlog", "--log", str(path)], ["testlog", "--log", str(path), "--json"]):
            out, err = io.StringIO(), io.StringIO()
            code = cli.main(argv, out=out, err=err)
            text = out.getvalue() + err.getvalue()
            assert (1, True, False) == (code, f"{path}:3" in text, "unexpected error" in text)

    def test_removed_middle_line(self, tmp_path: Path) -> None:
        """Deleting the middle line breaks the chain at the line after it."""
        path, _ = _three(tmp_path)
        first, _, last = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(first + last)
        assert [(LogDamageKind.CHAIN_BROKEN, f"{path}:2")] == [
            (d.kind, d.where) for d in JsonlLogStore(path).damage()
        ]

    def test_removed_first_line(self, tmp_path: Path) -> None:
        """Deleting the first line is found: the new first line follows a line that is gone."""
        path, _ = _three(tmp_path)
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
        assert [LogDamageKind.CHAIN_BROKEN] == [d.kind for d in JsonlLogStore(path).damage()]

    def test_reordered_lines(self, tmp_path: Path) -> None:
        """Swapping two lines breaks the chain."""
        path, _ = _three(tmp_path)
        first, middle, last = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(first + last + middle)
        kinds = {d.kind for d in JsonlLogStore(path).damage()}
        assert {LogDamageKind.CHAIN_BROKEN} == kinds

    def test_inserted_unchained_line(self, tmp_path: Path) -> None:
        """An entry without a digest slipped in after chained ones is damage."""
        path, entries = _three(tmp_path)
        first, middle, last = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(first + _legacy_line(entries[1]) + middle + last)
        kinds = [d.kind for d in JsonlLogStore(path).damage()]
        assert [LogDamageKind.DAMAGED, LogDamageKind.CHAIN_BROKEN] == kinds

    def test_legacy_log_is_read_with_a_note(self, tmp_path: Path) -> None:
        """A log written before the chain is read; a note says its entries cannot be checked."""
        path, entries = _three(tmp_path)
        path.write_bytes(b"".join(_legacy_line(e) for e in entries))
        log = TestLog(JsonlLogStore(path), clock=lambda: NOW)
        assert entries == list(log.store.read())
        newer = log.record(result(check="after-upgrade"))
        damage = log.damage()
        assert ([*entries, newer], [LogDamageKind.UNCHAINED]) == (
            list(log.store.read()),
            [d.kind for d in damage],
        )
        assert "3 legacy entries" in damage[0].detail
        assert not damage[0].tampering

    def test_torn_lines_are_notes(self, tmp_path: Path) -> None:
        """A torn last line, then the same line ended by the next append, are notes, not damage."""
        path, entries = _three(tmp_path)
        with path.open("ab") as file:
            file.write(path.read_bytes()[:100])
        store = JsonlLogStore(path)
        assert [(LogDamageKind.TORN_LINE, False)] == [(d.kind, d.tampering) for d in store.damage()]
        newer = TestLog(store, clock=lambda: NOW).record(result(check="after-crash"))
        with pytest.warns(CorruptLogLineWarning, match="skipped an unreadable"):
            assert [*entries, newer] == list(store.read())
        assert [(LogDamageKind.TORN_LINE, f"{path}:4")] == [
            (d.kind, d.where) for d in store.damage()
        ]

    def test_overlong_line(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A line longer than MAX_LOG_LINE_BYTES is skipped unread and reported as damaged."""
        path, _ = _three(tmp_path)
        monkeypatch.setattr(logstores, "MAX_LOG_LINE_BYTES", 2000)
        path.write_bytes(path.read_bytes().splitlines(keepends=True)[0] + b"x" * 5000 + b"\n")
        store = JsonlLogStore(path)
        assert [(LogDamageKind.DAMAGED, f"{path}:2")] == [(d.kind, d.where) for d in store.damage()]


class TestIncrementalReads:
    """A store parses each line once; a change before what it parsed is still found."""

    def test_a_second_read_parses_only_the_appended_lines(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After a read of 3 lines, another writer's 2 appends are seen and only they are parsed."""
        path, entries = _three(tmp_path)
        store = JsonlLogStore(path)
        assert entries == list(store.read())
        parsed: list[bytes] = []
        real = logstores.parse

        def counting(raw: bytes) -> Any:
            parsed.append(raw)
            return real(raw)

        monkeypatch.setattr(logstores, "parse", counting)
        other = TestLog(JsonlLogStore(path), clock=lambda: NOW)
        more = [other.record(result(check="a")), other.record(result(check="b"))]
        assert ([*entries, *more], []) == (list(store.read()), store.damage())
        assert [json.loads(raw)["check"] for raw in parsed] == ["a", "b"]

    def test_an_earlier_line_changed_in_place_after_a_read_is_damage(self, tmp_path: Path) -> None:
        """Same size, same file: the change before the parsed end is found, the entry not read."""
        path, entries = _three(tmp_path)
        store = JsonlLogStore(path)
        assert entries == list(store.read())
        data = path.read_bytes()
        assert data.count(b'"status":"fail"') == 1
        with path.open("r+b") as file:  # in place: same inode, same size
            file.write(data.replace(b'"status":"fail"', b'"status":"pass"'))
        damage: list[LogDamage] = []
        read = list(store._scan(damage))
        assert [entries[0], entries[2]] == read
        assert [(LogDamageKind.DAMAGED, f"{path}:2")] == [(d.kind, d.where) for d in damage][:1]

    def test_a_replaced_file_without_a_line_is_read_from_the_start(self, tmp_path: Path) -> None:
        """A new file (other inode) with the middle line removed: the broken chain is found."""
        path, _ = _three(tmp_path)
        store = JsonlLogStore(path)
        list(store.read())
        first, _, last = path.read_bytes().splitlines(keepends=True)
        replacement = tmp_path / "new.jsonl"
        replacement.write_bytes(first + last)
        replacement.replace(path)
        assert [(LogDamageKind.CHAIN_BROKEN, f"{path}:2")] == [
            (d.kind, d.where) for d in store.damage()
        ]
