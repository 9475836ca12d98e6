"""Recovery plans: loading, order, health checks, rehearsals, resumable execution, the runbook."""

# "token" is an idempotency token, not a password.

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckResult
from backuppolicy.local import Directory, DirectoryStore
from backuppolicy.workflows._recovery_runner import Runner
from backuppolicy.workflows.recovery import (
    CallableCheck,
    HttpCheck,
    RecoveryPlan,
    SqlCheck,
    StepStatus,
    TcpCheck,
)

ROOT = Path(__file__).parents[1]
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class _Log:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def record(self, result: CheckResult) -> None:
        self.results.append(result)


def _no_sleep(_seconds: float) -> None:
    """Retries never wait in tests."""


def _check(name: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "callable", "function": name, **extra}


def _plan(steps: list[dict[str, Any]], **kwargs: Any) -> RecoveryPlan:
    return RecoveryPlan.from_dict({"name": "shop", "application": "shop", "steps": steps}, **kwargs)


def _ok(_endpoint: str | None) -> bool:
    return True


def _fail(_endpoint: str | None) -> bool:
    return False


HOOKS: dict[str, Callable[..., Any]] = {"ok": _ok, "fail": _fail}


class TestLoading:
    def test_unknown_need_names_the_step(self) -> None:
        """A need that is no step id is an error naming the field."""
        steps = [
            {"id": "a", "kind": "health-check", "check": _check("ok")},
            {"id": "b", "kind": "health-check", "needs": ["c"], "check": _check("ok")},
        ]
        with pytest.raises(
            PolicyError,
            match=r"^steps\[1\]\.needs\[0\]: expected the id of another step \(a, b\) \(got 'c'\)",
        ):
            _plan(steps, hooks=HOOKS)

    def test_cycle_names_the_steps(self) -> None:
        """A cycle is refused, with the path it takes."""
        steps = [
            {"id": "a", "kind": "health-check", "needs": ["b"], "check": _check("ok")},
            {"id": "b", "kind": "health-check", "needs": ["a"], "check": _check("ok")},
        ]
        with pytest.raises(
            PolicyError,
            match=r"^steps\[0\]\.needs: expected needs without a cycle \(got 'a -> b -> a'\)",
        ):
            _plan(steps, hooks=HOOKS)

    def test_duplicate_id(self) -> None:
        """Step ids are unique."""
        steps = [{"id": "a", "kind": "health-check", "check": _check("ok")}] * 2
        with pytest.raises(PolicyError, match=r"^steps\[1\]\.id: expected a unique step id"):
            _plan(steps, hooks=HOOKS)

    def test_unknown_key_suggests_the_right_one(self) -> None:
        """A misspelt key names the field and suggests the known key."""
        steps = [{"id": "a", "kind": "restore-directory", "target": "cfg", "intoo": "/x"}]
        with pytest.raises(
            PolicyError, match=r"^steps\[0\]\.intoo: expected a known key.*Did you mean 'into'\?"
        ):
            _plan(steps)

    def test_unknown_kind(self) -> None:
        """The kind must be one of the step kinds."""
        with pytest.raises(
            PolicyError, match=r"^steps\[0\]\.kind: expected one of restore-database"
        ):
            _plan([{"id": "a", "kind": "reboot"}])

    def test_step_reference_must_be_needed(self) -> None:
        """step:<id> may only name a step the step needs, so its result exists when it runs."""
        steps = [
            {"id": "web", "kind": "replace-instance", "target": "web-server"},
            {
                "id": "vols",
                "kind": "restore-volumes",
                "target": "web-server",
                "attach_to": "step:web",
            },
        ]
        with pytest.raises(
            PolicyError,
            match=r"^steps\[1\]\.attach_to: expected step:<id> of a step that 'vols' needs",
        ):
            _plan(steps)

    def test_unknown_hook(self) -> None:
        """A hook is a name from hooks= or module:function."""
        with pytest.raises(
            PolicyError,
            match=r"^steps\[0\]\.hook: expected a hook passed in hooks= \(none given\) or 'module:function'",
        ):
            _plan([{"id": "a", "kind": "switch-traffic", "hook": "switch"}])

    def test_targets_are_checked_against_the_policy(self) -> None:
        """With a policy, a step's target must exist and have a kind the step restores."""
        policy = Policy.from_file(ROOT / "examples" / "policy.yaml")
        with pytest.raises(
            PolicyError,
            match=r"^steps\[0\]\.target: expected a target of kind rds-instance or aurora-cluster for a restore-database step \(got 'assets \(s3-bucket\)'\)",
        ):
            _plan([{"id": "db", "kind": "restore-database", "target": "assets"}], policy=policy)
        with pytest.raises(
            PolicyError, match=r"^steps\[0\]\.target: expected a target of policy 'web-apps'"
        ):
            _plan([{"id": "db", "kind": "restore-database", "target": "shopdb"}], policy=policy)

    def test_file_errors_name_the_file(self, tmp_path: Path) -> None:
        """Errors from a plan file start with the file's path."""
        path = tmp_path / "plan.yaml"
        path.write_text("name: x\napplication: shop\nsteps: []\n")
        with pytest.raises(PolicyError, match=rf"^{path}: steps: expected at least one step"):
            RecoveryPlan.from_file(path)

    def test_example_plan_loads_with_its_policy(self) -> None:
        """examples/recovery_plan.yaml loads, with examples/policy.yaml, in five stages."""
        plan = RecoveryPlan.from_file(ROOT / "examples" / "recovery_plan.yaml")
        assert ("web-apps", 10) == (plan.policy.name, len(plan.steps))
        assert [
            ("restore-db", "restore-assets", "restore-config", "restore-code", "replace-web"),
            ("check-db", "restore-web-volumes"),
            ("restart-web",),
            ("check-web",),
            ("switch-traffic",),
        ] == plan.stages()

    def test_to_dict_round_trips(self) -> None:
        """to_dict() gives data that from_dict() reads back into an equal plan."""
        plan = RecoveryPlan.from_file(ROOT / "examples" / "recovery_plan.yaml")
        again = RecoveryPlan.from_dict(plan.to_dict(), policy=plan.policy)
        assert plan.steps == again.steps


class TestMarkdown:
    def test_runbook_of_the_example(self) -> None:
        """The runbook has the seed's §10 title, the order, and each step's command and call."""
        text = RecoveryPlan.from_file(ROOT / "examples" / "recovery_plan.yaml").to_markdown()
        assert text.startswith("# 10. System Restart and Recovery Procedures: shop\n")
        assert (
            "| 1 | 10.3 `restore-db`, 10.4 `restore-assets`, 10.5 `restore-config`, 10.6 `restore-code`, 10.7 `replace-web` |"
            in text
        )
        policy = ROOT / "examples" / "policy.yaml"
        assert (
            f"backuppolicy restore --policy {policy} --target shop-db --swap --apply --yes" in text
        )
        assert (
            'bp.restore(bp.plan_restore(policy, "shop-db", swap=True), confirm=True, log=log)'
            in text
        )
        assert "- Recovery point objective (RPO): 24 hours." in text
        headings = [line for line in text.splitlines() if line.startswith("## 10.")]
        assert 2 + 10 == len(headings)


@pytest.fixture(name="server")
def _server() -> Iterator[str]:
    """A local HTTP server: /health answers 200 "ok", anything else 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/health"
            self.send_response(200 if ok else 500)
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"broken")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestHealthChecks:
    def test_http(self, server: str) -> None:
        """HTTP checks compare the status and the body, with {endpoint} filled in."""
        assert (True, False, False) == (
            HttpCheck("http://{endpoint}/health", contains="ok").run(server).ok,
            HttpCheck("http://{endpoint}/other").run(server).ok,
            HttpCheck("http://{endpoint}/health", contains="fine").run(server).ok,
        )

    def test_tcp(self, server: str) -> None:
        """TCP checks pass on a listening port and fail on a closed one."""
        assert (True, False) == (
            TcpCheck("{endpoint}").run(server).ok,
            TcpCheck(f"127.0.0.1:{_closed_port()}", timeout=1).run().ok,
        )

    def test_sql(self, tmp_path: Path) -> None:
        """SQL checks run the query on SQLite (read-only) and compare the first value."""
        path = tmp_path / "shop.db"
        with sqlite3.connect(path) as db:
            db.execute("create table orders (id integer)")
            db.execute("insert into orders values (1), (2)")
        db.close()
        query = "select count(*) from orders"
        assert (True, False, False) == (
            SqlCheck("{endpoint}", query, expect=2).run(str(path)).ok,
            SqlCheck("{endpoint}", query, expect=3).run(str(path)).ok,
            SqlCheck("{endpoint}", "select * from missing").run(str(path)).ok,
        )

    def test_sql_other_engines_need_a_connector(self) -> None:
        """A DSN that is not SQLite fails the check with what to configure."""
        result = SqlCheck("postgresql://db:5432/shop", "select 1").run()
        assert not result.ok
        assert "connection factory" in result.details

    def test_health_check_step_retries_with_injected_sleep(self) -> None:
        """A health check is tried up to `attempts` times, sleeping `interval` between tries."""
        answers = iter([False, False, True])
        waits: list[float] = []
        plan = _plan(
            [
                {
                    "id": "up",
                    "kind": "health-check",
                    "check": _check("flaky"),
                    "attempts": 5,
                    "interval": 7,
                }
            ],
            hooks={"flaky": lambda _endpoint: next(answers)},
        )
        report = plan.rehearse(now=NOW, sleep=waits.append)
        assert (StepStatus.DONE, [7.0, 7.0]) == (report.step("up").status, waits)

    def test_health_check_gives_up(self) -> None:
        """After its attempts a failing check fails the step."""
        plan = _plan(
            [
                {
                    "id": "up",
                    "kind": "health-check",
                    "check": _check("fail"),
                    "attempts": 3,
                    "interval": 1,
                }
            ],
            hooks=HOOKS,
        )
        report = plan.rehearse(now=NOW, sleep=_no_sleep)
        assert StepStatus.FAILED == report.step("up").status
        assert "after 3 tries" in str(report.step("up").error)

    def test_callable_check_is_a_probe(self) -> None:
        """A CallableCheck returns a CheckResult named after the function."""
        result = CallableCheck(_ok, ref="ok").run("db:5432")
        assert ("ok", True) == (result.check, result.ok)


class TestScheduling:
    def test_failure_stops_dependents_not_independent_steps(self) -> None:
        """A failed step blocks what needs it (transitively); independent steps still run."""
        steps = [
            {"id": "a", "kind": "health-check", "check": _check("fail"), "attempts": 1},
            {"id": "b", "kind": "health-check", "needs": ["a"], "check": _check("ok")},
            {"id": "c", "kind": "health-check", "needs": ["b"], "check": _check("ok")},
            {"id": "d", "kind": "health-check", "check": _check("ok")},
            {"id": "e", "kind": "health-check", "needs": ["d"], "check": _check("ok")},
        ]
        report = _plan(steps, hooks=HOOKS).rehearse(now=NOW, sleep=_no_sleep)
        assert {"a": "failed", "b": "blocked", "c": "blocked", "d": "done", "e": "done"} == {
            s.id: s.status.value for s in report.steps
        }
        assert not report.ok

    def test_step_retries(self) -> None:
        """A step is retried `retries` times with `retry_delay` between tries."""
        calls: list[bool] = []

        def flaky(_context: Any) -> bool:
            calls.append(True)
            return len(calls) > 1

        waits: list[float] = []
        plan = _plan(
            [
                {
                    "id": "switch",
                    "kind": "switch-traffic",
                    "hook": "flaky",
                    "retries": 2,
                    "retry_delay": 3,
                }
            ],
            hooks={"flaky": flaky},
        )
        report = plan.rehearse(now=NOW, sleep=waits.append)
        assert (StepStatus.DONE, 2, [3.0]) == (
            report.step("switch").status,
            report.step("switch").attempts,
            waits,
        )

    def test_timeout_fails_the_step_and_blocks_dependents(self) -> None:
        """A step still running at its timeout fails; its dependents do not run."""
        release = threading.Event()

        def hang(_context: Any) -> None:
            release.wait(10)

        plan = _plan(
            [
                {"id": "slow", "kind": "switch-traffic", "hook": "hang", "timeout": 0.05},
                {"id": "after", "kind": "health-check", "needs": ["slow"], "check": _check("ok")},
            ],
            hooks={"hang": hang, **HOOKS},
        )
        try:
            report = plan.rehearse(now=NOW)
        finally:
            release.set()
        assert ("failed", "timed out after 0.05 s", "blocked") == (
            report.step("slow").status.value,
            report.step("slow").error,
            report.step("after").status.value,
        )

    def test_independent_steps_run_in_parallel(self) -> None:
        """Two independent steps are both running at once (each waits for the other)."""
        barrier = threading.Barrier(2, timeout=5)

        def meet(_context: Any) -> None:
            barrier.wait()

        plan = _plan(
            [
                {"id": "a", "kind": "switch-traffic", "hook": "meet"},
                {"id": "b", "kind": "switch-traffic", "hook": "meet"},
            ],
            hooks={"meet": meet},
        )
        assert plan.rehearse(now=NOW).ok

    def test_commands_get_the_rehearsal_flag(self, tmp_path: Path) -> None:
        """A switch-traffic command sees BACKUPPOLICY_REHEARSAL=1 in a drill."""
        marker = tmp_path / "flag"
        plan = _plan(
            [
                {
                    "id": "switch",
                    "kind": "switch-traffic",
                    "command": ["sh", "-c", f'printf %s "$BACKUPPOLICY_REHEARSAL" > {marker}'],
                }
            ]
        )
        assert plan.rehearse(now=NOW).ok
        assert "1" == marker.read_text()

    def test_failing_command(self) -> None:
        """A command that exits non-zero fails the step with its exit code."""
        plan = _plan(
            [
                {
                    "id": "switch",
                    "kind": "switch-traffic",
                    "command": ["sh", "-c", "echo nope >&2; exit 3"],
                }
            ]
        )
        report = plan.rehearse(now=NOW)
        assert "exited 3: nope" in str(report.step("switch").error)


def _directory(tmp_path: Path, name: str, created: datetime, policy: str = "default") -> Directory:
    source = tmp_path / name
    source.mkdir()
    (source / "app.conf").write_text("port = 8080\n")
    target = Directory(
        source,
        name=name,
        store=DirectoryStore(tmp_path / f"store-{name}"),
        policy=policy,
        clock=lambda: created,
    )
    target.create_backup(token="first")
    return target


def _policy(tmp_path: Path, rto: str = "1h") -> Policy:
    return Policy.from_dict(
        {
            "name": "web-apps",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "tiers": [
                {"name": "local", "every": "day", "location": {"store": str(tmp_path / "store")}}
            ],
            "targets": [
                {
                    "name": "cfg",
                    "kind": "directory",
                    "application": "shop",
                    "settings": {"path": str(tmp_path / "cfg")},
                }
            ],
            "objectives": [{"application": "shop", "rpo": "24h", "rto": rto}],
        }
    )


class _Clock:
    """A monotonic clock that advances 60 s on every read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        value = self.now
        self.now += 60.0
        return value


class TestRehearsal:
    def test_measures_rto_and_rpo_against_the_objectives(self, tmp_path: Path) -> None:
        """RTO is the time from the start until the step finished; RPO the age of the data restored."""
        target = _directory(tmp_path, "cfg", NOW - timedelta(hours=30), policy="web-apps")
        plan = _plan(
            [{"id": "cfg", "kind": "restore-directory", "target": "cfg"}],
            policy=_policy(tmp_path, rto="1h"),
        )
        log = _Log()
        report = plan.rehearse(now=NOW, targets={"cfg": target}, clock=_Clock(), log=log)
        step = report.step("cfg")
        assert (60.0, 120.0, timedelta(hours=30)) == (step.duration, step.rto, step.rpo)
        assert (True, False) == (report.rto_met(step), report.rpo_met(step))
        assert (120.0, False, True) == (report.rto, report.rpo_met(), report.rto_met())
        assert [("recovery-drill", "cfg"), ("recovery-drill", "recovery-plan:shop")] == [
            (r.check, r.target) for r in log.results
        ]
        assert "MISSED" in report.summary()

    def test_drill_tears_down_and_never_touches_the_source(self, tmp_path: Path) -> None:
        """A drill restores into a temporary directory that is gone afterwards; the source is unchanged."""
        target = _directory(tmp_path, "cfg", NOW - timedelta(hours=2))
        (target.path / "app.conf").write_text("changed\n")
        seen: list[str] = []

        def look(endpoint: str | None) -> bool:
            seen.append(str(endpoint))
            return Path(str(endpoint), "app.conf").read_text() == "port = 8080\n"

        plan = _plan(
            [
                {"id": "cfg", "kind": "restore-directory", "target": "cfg"},
                {
                    "id": "check",
                    "kind": "health-check",
                    "needs": ["cfg"],
                    "endpoint": "step:cfg",
                    "check": _check("look"),
                },
            ],
            hooks={"look": look},
        )
        report = plan.rehearse(now=NOW, targets={"cfg": target})
        assert report.ok
        assert not Path(seen[0]).exists()
        assert "changed\n" == (target.path / "app.conf").read_text()

    def test_points_after_now_are_not_used(self, tmp_path: Path) -> None:
        """A drill as of `now` restores the newest point taken up to then."""
        target = _directory(tmp_path, "cfg", NOW + timedelta(days=1))
        plan = _plan([{"id": "cfg", "kind": "restore-directory", "target": "cfg"}])
        report = plan.rehearse(now=NOW, targets={"cfg": target})
        assert "completed recovery point of target 'cfg' taken at or before" in str(
            report.step("cfg").error
        )


class _Crash(BaseException):
    """Stands in for the process dying (it is no Exception: nothing catches it as a failure)."""


class TestExecute:
    def test_needs_confirm(self, tmp_path: Path) -> None:
        """A real recovery refuses to start without confirm=True."""
        plan = _plan([{"id": "a", "kind": "health-check", "check": _check("ok")}], hooks=HOOKS)
        with pytest.raises(PolicyError, match=r"^confirm: expected True to run a real recovery"):
            plan.execute()

    def test_crash_and_resume(self, tmp_path: Path) -> None:
        """After a crash the state file has the finished steps; the resumed run does not repeat them."""
        target = _directory(tmp_path, "cfg", NOW - timedelta(hours=2))
        (target.path / "app.conf").write_text("broken\n")
        crashes = [True]

        def switch(_context: Any) -> None:
            if crashes:
                crashes.pop()
                raise _Crash

        plan = _plan(
            [
                {"id": "cfg", "kind": "restore-directory", "target": "cfg"},
                {"id": "switch", "kind": "switch-traffic", "hook": "switch", "needs": ["cfg"]},
            ],
            hooks={"switch": switch},
        )
        state = tmp_path / "state.json"
        with pytest.raises(_Crash):
            plan.execute(confirm=True, state_file=state, now=NOW, targets={"cfg": target})
        saved = json.loads(state.read_text())
        assert ["cfg"] == sorted(saved["steps"])
        asides = sorted(p.name for p in tmp_path.iterdir() if ".before-restore-" in p.name)
        assert ["cfg.before-restore-20261126t090000z"] == asides

        out = io.StringIO()
        report = plan.execute(
            confirm=True,
            state_file=state,
            now=NOW + timedelta(hours=1),
            targets={"cfg": target},
            out=out,
        )
        assert {"cfg": "resumed", "switch": "done"} == {s.id: s.status.value for s in report.steps}
        assert asides == sorted(p.name for p in tmp_path.iterdir() if ".before-restore-" in p.name)
        assert "port = 8080\n" == (target.path / "app.conf").read_text()
        assert NOW == report.now  # the resumed run keeps the first run's moment (and token)
        assert "cfg: finished in an earlier run" in out.getvalue()
        assert ["cfg", "switch"] == sorted(json.loads(state.read_text())["steps"])

    @pytest.mark.parametrize("crash_at", ["after-move-aside", "before-state-save"])
    def test_resume_after_a_crash_inside_a_restore(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
    ) -> None:
        """A crash between the move-aside and the state save: the resumed run recognises its own step."""
        target = _directory(tmp_path, "cfg", NOW - timedelta(hours=2))
        (target.path / "app.conf").write_text("broken\n")
        plan = _plan([{"id": "cfg", "kind": "restore-directory", "target": "cfg"}])
        state = tmp_path / "state.json"
        aside = tmp_path / "cfg.before-restore-20261126t090000z"
        rename = Path.rename
        save = Runner._save

        def crash_after_move_aside(self: Path, to: Any) -> Path:
            moved = rename(self, to)
            if Path(to) == aside:
                raise _Crash
            return moved

        def crash_before_save(_runner: Any, _result: Any) -> None:
            raise _Crash

        with monkeypatch.context() as patch:
            if crash_at == "after-move-aside":
                patch.setattr(Path, "rename", crash_after_move_aside)
            else:
                patch.setattr(Runner, "_save", crash_before_save)
            with pytest.raises(_Crash):
                plan.execute(confirm=True, state_file=state, now=NOW, targets={"cfg": target})
        assert Runner._save is save
        assert {} == json.loads(state.read_text())["steps"]
        assert {"app.conf": "broken\n"} == {p.name: p.read_text() for p in aside.iterdir()}

        out = io.StringIO()
        report = plan.execute(
            confirm=True, state_file=state, now=NOW, targets={"cfg": target}, out=out
        )
        assert ({"cfg": "done"}, True) == ({s.id: s.status.value for s in report.steps}, report.ok)
        assert "port = 8080\n" == (target.path / "app.conf").read_text()
        assert "broken\n" == (aside / "app.conf").read_text()
        assert [aside.name] == sorted(
            p.name for p in tmp_path.iterdir() if ".before-restore-" in p.name
        )
        assert f"previous state of cfg kept: {aside}" in out.getvalue()

    def test_state_file_of_another_plan_is_refused(self, tmp_path: Path) -> None:
        """A state file is only resumed by the plan that wrote it."""
        state = tmp_path / "state.json"
        state.write_text(
            json.dumps({"plan": "other", "token": "x", "now": NOW.isoformat(), "steps": {}})
        )
        plan = _plan([{"id": "a", "kind": "health-check", "check": _check("ok")}], hooks=HOOKS)
        with pytest.raises(
            PolicyError, match=r"^state_file: expected the state of plan 'shop' \(got 'other'\)"
        ):
            plan.execute(confirm=True, state_file=state)

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            ({"plan": "shop"}, "token"),
            ({"plan": "shop", "token": "x", "now": "soon", "steps": {}}, "now"),
            ({"plan": "shop", "token": "x", "now": NOW.isoformat(), "steps": []}, "steps"),
            ({"plan": "shop", "token": "x", "now": NOW.isoformat(), "steps": {"a": 1}}, "steps"),
            (
                {
                    "plan": "shop",
                    "token": "x",
                    "now": NOW.isoformat(),
                    "steps": {"a": {"data_time": 5}},
                },
                "steps",
            ),
            (
                {"plan": "shop", "token": "x", "now": "2026-11-26T09:00:00", "steps": {}},
                "now",
            ),
        ],
    )
    def test_a_damaged_state_file_is_a_policy_error(
        self, tmp_path: Path, content: dict[str, Any], problem: str
    ) -> None:
        """A state file that is not as execute() writes it is refused naming it, not a raw error."""
        state = tmp_path / "state.json"
        state.write_text(json.dumps(content))
        plan = _plan([{"id": "a", "kind": "health-check", "check": _check("ok")}], hooks=HOOKS)
        with pytest.raises(PolicyError, match=rf"^state_file: .*{problem}"):
            plan.execute(confirm=True, state_file=state)

    def test_an_oversized_state_file_is_refused_unread(self, tmp_path: Path) -> None:
        """A state file larger than a policy file may be is refused before it is read."""
        state = tmp_path / "state.json"
        with state.open("wb") as handle:  # sparse: no disk used
            handle.truncate(50_000_000)
        plan = _plan([{"id": "a", "kind": "health-check", "check": _check("ok")}], hooks=HOOKS)
        with pytest.raises(PolicyError, match=r"^state_file: .*at most \d+ bytes"):
            plan.execute(confirm=True, state_file=state)

    def test_a_fifo_as_state_file_never_hangs(self, tmp_path: Path) -> None:
        """A FIFO named as the state file is refused at once (the read never blocks)."""
        state = tmp_path / "state.json"
        os.mkfifo(state)
        plan = _plan([{"id": "a", "kind": "health-check", "check": _check("ok")}], hooks=HOOKS)
        errors: list[BaseException] = []

        def execute() -> None:
            try:
                plan.execute(confirm=True, state_file=state)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        worker = threading.Thread(target=execute, daemon=True)
        worker.start()
        worker.join(timeout=10)
        hung = worker.is_alive()
        if hung:  # release the blocked reader: a writer that closes at once gives it EOF
            os.close(os.open(state, os.O_WRONLY | os.O_NONBLOCK))
            worker.join()
        assert not hung, "execute() blocked reading a FIFO"
        assert [PolicyError] == [type(e) for e in errors]
        assert "regular file" in str(errors[0])

    def test_real_restore_refuses_nothing_and_keeps_the_previous_state(
        self, tmp_path: Path
    ) -> None:
        """execute() restores in place: the current directory is moved aside, never overwritten."""
        target = _directory(tmp_path, "cfg", NOW - timedelta(hours=2))
        (target.path / "app.conf").write_text("broken\n")
        log = _Log()
        plan = _plan([{"id": "cfg", "kind": "restore-directory", "target": "cfg"}])
        report = plan.execute(confirm=True, now=NOW, targets={"cfg": target}, log=log)
        assert report.ok
        assert (
            "broken\n"
            == (tmp_path / "cfg.before-restore-20261126t090000z" / "app.conf").read_text()
        )
        assert [("restore", "cfg"), ("recovery", "recovery-plan:shop")] == [
            (r.check, r.target) for r in log.results
        ]


@pytest.mark.slow
class TestExampleRehearsal:
    def test_example_plan_in_the_demo_world(self, aws: None, tmp_path: Path, server: str) -> None:
        """The example plan rehearses in the demo's moto world: every step done, everything torn down."""
        import boto3

        from backuppolicy import demo, workflows
        from backuppolicy.core.targets import IsolationProfile

        world = demo._build_world(tmp_path)
        policy = demo._demo_policy(world)
        targets = workflows.build_targets(policy)
        # moto stamps snapshots with the clock it sees: keep that clock at the test's times.
        with time_machine.travel(NOW - timedelta(hours=5), tick=True):
            workflows.backup(
                policy, now=NOW - timedelta(hours=5), targets=targets, notifiers=[], max_workers=1
            )
        plan = RecoveryPlan.from_file(ROOT / "examples" / "recovery_plan.yaml", policy=policy)
        log = _Log()
        with time_machine.travel(NOW, tick=True):
            report = plan.rehearse(
                now=NOW,
                targets=targets,
                isolation=IsolationProfile(tags={"purpose": "restore-test"}),
                resolve_endpoint=lambda step, endpoint: (
                    server if step in {"check-db", "check-web"} else endpoint
                ),
                sleep=_no_sleep,
                log=log,
            )
        assert {s.id: "done" for s in plan.steps} == {s.id: s.status.value for s in report.steps}, (
            report.summary()
        )
        assert ((), True) == (report.teardown_errors, report.ok)
        assert timedelta(hours=5) >= report.rpo  # type: ignore[operator]
        rds = boto3.client("rds", region_name=demo.REGION)
        assert ["blog-prod", "shop-prod"] == sorted(
            i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]
        )
        ec2 = boto3.client("ec2", region_name=demo.REGION)
        states = [
            i["State"]["Name"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
        ]
        assert 1 == states.count("running")
        assert {"restore-test"} == {r.kind.value for r in log.results}


def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    import backuppolicy.cli.main as cli

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


class TestCli:
    @pytest.fixture(name="files")
    def _files(self, tmp_path: Path) -> tuple[Path, Directory]:
        target = _directory(tmp_path, "cfg", NOW - timedelta(hours=2), policy="web-apps")
        policy = _policy(tmp_path).to_dict()
        policy["tiers"][0]["location"]["store"] = str(tmp_path / "store-cfg")
        (tmp_path / "policy.yaml").write_text(json.dumps(policy))
        (tmp_path / "plan.yaml").write_text(
            json.dumps(
                {
                    "name": "shop",
                    "application": "shop",
                    "policy": "policy.yaml",
                    "steps": [{"id": "cfg", "kind": "restore-directory", "target": "cfg"}],
                }
            )
        )
        return tmp_path / "plan.yaml", target

    def test_markdown(self, monkeypatch: pytest.MonkeyPatch, files: tuple[Path, Directory]) -> None:
        """--markdown prints the runbook."""
        code, out, _ = _cli(monkeypatch, "recover", "--plan", str(files[0]), "--markdown")
        assert (0, True) == (
            code,
            out.startswith("# 10. System Restart and Recovery Procedures: shop"),
        )

    def test_rehearse(self, monkeypatch: pytest.MonkeyPatch, files: tuple[Path, Directory]) -> None:
        """--rehearse runs the drill and prints each step's RTO and RPO."""
        code, out, _ = _cli(
            monkeypatch,
            "recover",
            "--plan",
            str(files[0]),
            "--rehearse",
            "--now",
            "2026-11-26T09:00:00Z",
        )
        assert 0 == code, out
        assert "overall RPO 2.0h (objective 24 hours: met)" in out

    def test_without_yes_nothing_runs(
        self, monkeypatch: pytest.MonkeyPatch, files: tuple[Path, Directory]
    ) -> None:
        """A real recovery needs --yes; without it nothing changes (exit 1)."""
        (files[1].path / "app.conf").write_text("mine\n")
        code, out, _ = _cli(monkeypatch, "recover", "--plan", str(files[0]))
        assert (1, "mine\n") == (code, (files[1].path / "app.conf").read_text())
        assert "nothing was run" in out

    def test_execute_with_state(
        self, monkeypatch: pytest.MonkeyPatch, files: tuple[Path, Directory], tmp_path: Path
    ) -> None:
        """--yes --state runs the recovery and records the finished steps."""
        (files[1].path / "app.conf").write_text("mine\n")
        state = tmp_path / "state.json"
        code, out, _ = _cli(
            monkeypatch,
            "recover",
            "--plan",
            str(files[0]),
            "--yes",
            "--state",
            str(state),
            "--json",
        )
        assert (0, "port = 8080\n", ["cfg"]) == (
            code,
            (files[1].path / "app.conf").read_text(),
            sorted(json.loads(state.read_text())["steps"]),
        )
        assert json.loads(out)["ok"]


class TestDocs:
    def test_rendered_runbook_is_current(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """docs/how-to/shop-recovery-runbook.md is the example plan's to_markdown()."""
        monkeypatch.chdir(ROOT)
        rendered = RecoveryPlan.from_file("examples/recovery_plan.yaml").to_markdown()
        assert rendered == (ROOT / "docs" / "how-to" / "shop-recovery-runbook.md").read_text()
