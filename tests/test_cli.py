"""The command line, in-process: ``backuppolicy.cli.main.main([...], out=, err=)``.

Targets of kind ``testing:memory`` resolve to `MemoryTarget` objects the test keeps, so one
test can run several commands against the same points and inspect them afterwards.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import backuppolicy.cli.main as cli
from backuppolicy import demo
from backuppolicy.cli import _common
from backuppolicy.core import registry
from backuppolicy.core.exceptions import BackendError
from backuppolicy.core.model import TAG_REASON, LegalHold
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows.backups import TAG_REQUESTED_BY

NOW = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)
NOW_TEXT = "2026-11-23T04:10:00Z"

POLICY = """\
name: shop
schedule: {every: day, at: "04:00"}
retention: {max_age: 7d}
targets:
  - {name: db, kind: "testing:memory", application: shop}
  - {name: web, kind: "testing:memory", application: shop}
"""


class Run:
    """The result of one command: exit code, stdout, stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        """Stdout parsed as JSON."""
        return json.loads(self.out)


@pytest.fixture(name="memory")
def _memory(monkeypatch: pytest.MonkeyPatch) -> dict[str, MemoryTarget]:
    """Register ``testing:memory`` so that each target name maps to one kept MemoryTarget."""
    kept: dict[str, MemoryTarget] = {}

    def factory(*, name: str, policy: str, **_settings: Any) -> MemoryTarget:
        return kept.setdefault(name, MemoryTarget(name, policy=policy, clock=lambda: NOW))

    monkeypatch.setitem(registry._REGISTERED, "testing:memory", factory)
    return kept


@pytest.fixture(name="policy_file")
def _policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(name="run")
def _run(memory: dict[str, MemoryTarget], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run the CLI in-process and capture its streams."""
    monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)

    def run(*argv: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out=out, err=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run


class _Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _single_error_line(result: Run) -> str:
    lines = result.err.splitlines()
    assert 1 == len(lines), result.err
    assert "Traceback" not in result.err
    return lines[0]


class TestUsageErrors:
    def test_no_command_prints_help_and_exits_2(self, run):
        """Without a command the help goes to stdout and the exit code is 2."""
        result = run()
        assert 2 == result.code
        assert "usage: backuppolicy" in result.out

    def test_unknown_command_is_a_usage_error(self, run):
        """argparse errors become one error line and exit 2."""
        result = run("explode")
        assert 2 == result.code
        assert _single_error_line(result).startswith("backuppolicy: error: argument COMMAND")

    def test_missing_policy_option(self, run):
        """No --policy and no $BACKUPPOLICY_FILE: exit 2 naming both."""
        result = run("validate")
        assert 2 == result.code
        assert (
            "backuppolicy: error: --policy FILE is required (or set BACKUPPOLICY_FILE)"
            == _single_error_line(result)
        )

    def test_policy_from_the_environment(self, run, policy_file, monkeypatch):
        """$BACKUPPOLICY_FILE stands in for --policy."""
        monkeypatch.setenv("BACKUPPOLICY_FILE", str(policy_file))
        assert 0 == run("validate").code

    def test_missing_policy_file(self, run, tmp_path):
        """A file that does not exist: one clear line naming it, exit 2."""
        missing = tmp_path / "nope.yaml"
        result = run("backup", "--policy", str(missing))
        assert 2 == result.code
        line = _single_error_line(result)
        assert "an existing policy file" in line
        assert str(missing) in line

    def test_invalid_policy_file(self, run, tmp_path):
        """A policy with a bad field: the error names the file, line and field, exit 2."""
        bad = tmp_path / "bad.yaml"
        bad.write_text(POLICY.replace("max_age: 7d", "max_age: seven days"))
        result = run("prune", "--policy", str(bad))
        assert 2 == result.code
        line = _single_error_line(result)
        assert str(bad) in line
        assert "retention.max_age" in line

    def test_broken_yaml(self, run, tmp_path):
        """YAML that does not parse is a bad policy: exit 2, no traceback."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: [unclosed\n")
        result = run("doc", "--policy", str(bad))
        assert 2 == result.code
        assert str(bad) in _single_error_line(result)

    def test_unknown_target(self, run, policy_file):
        """--target that the policy does not have: exit 2, the name in the message."""
        result = run("backup", "--policy", str(policy_file), "--target", "dbb")
        assert 2 == result.code
        assert "'dbb'" in _single_error_line(result)

    def test_unknown_target_kind(self, run, tmp_path):
        """A plugin kind that is not installed: exit 2 with the registry's message."""
        path = tmp_path / "p.yaml"
        path.write_text(POLICY.replace('"testing:memory"', '"testing:nothing"', 1))
        result = run("backup", "--policy", str(path))
        assert 2 == result.code
        assert "'testing:nothing'" in _single_error_line(result)

    @pytest.mark.parametrize(
        ("now", "expected"),
        [("yesterday", "an ISO 8601 time"), ("2026-11-23T04:00:00", "a time with a zone")],
    )
    def test_bad_now(self, run, policy_file, now, expected):
        """--now must be an ISO 8601 time with a zone."""
        result = run("backup", "--policy", str(policy_file), "--now", now)
        assert 2 == result.code
        line = _single_error_line(result)
        assert "--now" in line
        assert expected in line

    def test_manual_backup_needs_a_target(self, run, policy_file, memory):
        """--reason without --target is a usage error; nothing is backed up."""
        result = run("backup", "--policy", str(policy_file), "--reason", "hotfix")
        assert 2 == result.code
        assert "needs --target" in _single_error_line(result)
        assert [] == [p for t in memory.values() for p in t.list_points()]

    @pytest.mark.parametrize("reason", ["", " "])
    def test_manual_backup_with_an_empty_reason_is_refused(self, run, policy_file, memory, reason):
        """--reason "" is refused (not silently turned into a scheduled run)."""
        result = run("backup", "--policy", str(policy_file), "--target", "db", "--reason", reason)
        assert 2 == result.code
        assert "reason" in _single_error_line(result)
        assert [] == list(memory["db"].list_points())

    def test_backend_errors_that_escape_exit_1(self, run, policy_file, memory):
        """A backend error outside the per-target handling is one line and exit 1."""
        memory["db"] = MemoryTarget("db", policy="shop")
        memory["db"].fail_next("list_points", BackendError("AccessDenied", backend="db"))
        result = run("holds", "--policy", str(policy_file))
        assert 1 == result.code
        assert "backuppolicy: error: BackendError: AccessDenied" == _single_error_line(result)


class TestDocAndValidate:
    def test_doc_prints_the_policy_document(self, run, policy_file):
        """doc prints the Markdown policy document."""
        result = run("doc", "--policy", str(policy_file))
        assert 0 == result.code
        assert result.out.startswith("# Infrastructure Backups and Restoration Policy: shop\n")
        assert "| db | testing:memory (plugin) | shop |" in result.out

    def test_doc_json_is_the_policy_as_data(self, run, policy_file):
        """doc --json prints the policy's to_dict()."""
        result = run("doc", "--policy", str(policy_file), "--json")
        data = result.json()
        assert 0 == result.code
        assert "shop" == data["name"]
        assert ["db", "web"] == [t["name"] for t in data["targets"]]

    def test_validate_text_and_json(self, run, policy_file):
        """validate says ok; with --json it gives counts."""
        text = run("validate", "--policy", str(policy_file))
        data = run("validate", "--policy", str(policy_file), "--json").json()
        assert 0 == text.code
        assert text.out.startswith(f"{policy_file}: ok")
        assert {"policy": "shop", "targets": 2, "tiers": 0, "ok": True} == data


class TestBackup:
    def test_runs_due_backups_and_prints_a_table(self, run, policy_file, memory):
        """backup creates one point per due target, exit 0, a table on stdout."""
        result = run("backup", "--policy", str(policy_file), "--now", NOW_TEXT)
        assert 0 == result.code
        assert "" == result.err
        assert 1 == len(list(memory["db"].list_points()))
        assert 1 == len(list(memory["web"].list_points()))
        assert "target" in result.out.splitlines()[1]

    def test_json_output(self, run, policy_file, memory):
        """backup --json prints the RunReport's to_dict()."""
        data = run("backup", "--policy", str(policy_file), "--now", NOW_TEXT, "--json").json()
        assert {"policy", "now", "ok", "runs", "notify_failures"} == set(data)
        assert "2026-11-23T04:10:00+00:00" == data["now"]
        assert data["ok"] is True
        expected = {t: next(iter(memory[t].list_points())).id for t in ("db", "web")}
        assert expected == {r["target"]: r["point"] for r in data["runs"]}

    def test_a_failed_target_exits_1(self, run, policy_file, memory):
        """One failing target: the other is backed up, exit 1."""
        memory["db"] = MemoryTarget("db", policy="shop", clock=lambda: NOW)
        memory["db"].fail_next("create_backup", BackendError("boom", backend="db"))
        result = run("backup", "--policy", str(policy_file), "--now", NOW_TEXT, "--json")
        data = result.json()
        assert 1 == result.code
        assert data["ok"] is False
        assert ["db"] == [r["target"] for r in data["runs"] if r["error"]]
        assert 1 == len(list(memory["web"].list_points()))

    def test_target_limits_the_run(self, run, policy_file, memory):
        """--target runs only that target."""
        run("backup", "--policy", str(policy_file), "--now", NOW_TEXT, "--target", "web")
        assert ["web"] == list(memory)

    def test_force_backs_up_again(self, run, policy_file, memory):
        """A second run is a no-op; --force takes another backup."""
        args = ("backup", "--policy", str(policy_file), "--target", "db")
        run(*args, "--now", NOW_TEXT)
        run(*args, "--now", "2026-11-23T05:00:00+00:00")
        assert 1 == len(list(memory["db"].list_points()))
        run(*args, "--now", "2026-11-23T05:00:00+00:00", "--force")
        assert 2 == len(list(memory["db"].list_points()))

    def test_manual_backup(self, run, policy_file, memory, monkeypatch):
        """--reason takes a manual backup of each --target, tagged with the reason and $USER."""
        monkeypatch.setenv("USER", "alice")
        result = run(
            "backup",
            "--policy",
            str(policy_file),
            "--target",
            "db",
            "--reason",
            "before migration",
            "--json",
        )
        point = next(iter(memory["db"].list_points()))
        assert 0 == result.code
        assert {"manual": [{"target": "db", "id": point.id, "status": "completed"}]} == (
            result.json()
        )
        assert "manual: before migration" == point.tags[TAG_REASON]
        assert "alice" == point.tags[TAG_REQUESTED_BY]

    def test_manual_backup_requested_by(self, run, policy_file, memory):
        """--requested-by overrides $USER; the text output names the point."""
        result = run(
            "backup",
            "--policy",
            str(policy_file),
            "--target",
            "web",
            "--reason",
            "r",
            "--requested-by",
            "bob",
        )
        point = next(iter(memory["web"].list_points()))
        assert f"manual backup of web: {point.id} (completed)\n" == result.out
        assert "bob" == point.tags[TAG_REQUESTED_BY]


class TestPrune:
    @pytest.fixture(name="aged")
    def _aged(self, run, policy_file, memory):
        """db has points 1, 10 and 20 days old; web has one fresh point."""
        db = memory["db"] = MemoryTarget("db", policy="shop")
        web = memory["web"] = MemoryTarget("web", policy="shop")
        points = [db.add_point(created_at=NOW - timedelta(days=d)) for d in (1, 10, 20)]
        web.add_point(created_at=NOW)
        return points

    def test_prune_is_a_dry_run_by_default(self, run, policy_file, memory, aged):
        """Without --apply nothing is deleted and the output says so."""
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT)
        assert 0 == result.code
        assert [] == memory["db"].deleted
        assert "dry run: nothing was deleted" in result.out
        # restic-style groups, each point once (the plan and apply tables repeated them)
        assert ["keep 2 points", "remove 2 points"] == [
            line for line in result.out.splitlines() if line.startswith(("keep", "remove"))
        ]
        for point in aged:
            assert 1 == result.out.count(point.id)
        assert "older than 7d" in result.out  # the reason
        assert "tier" in result.out.splitlines()[1]

    def test_prune_prints_no_empty_group(self, run, policy_file, memory):
        """Nothing to remove: no "remove" group, no dry-run note, only what is kept."""
        memory["db"] = MemoryTarget("db", policy="shop")
        memory["web"] = MemoryTarget("web", policy="shop")
        memory["db"].add_point(created_at=NOW)
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT)
        assert 0 == result.code
        assert "keep 1 point\n" in result.out
        assert "remove" not in result.out
        assert "dry run" not in result.out

    def test_prune_apply_removed_group_once(self, run, policy_file, memory, aged):
        """--apply prints "removed" once per point, not a plan table and then an apply table."""
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply", "--yes")
        assert "removed 2 points" in result.out
        for point in aged:
            assert 1 == result.out.count(point.id)

    def test_prune_apply_without_yes_and_no_terminal_is_refused(
        self, run, policy_file, memory, aged, monkeypatch
    ):
        """--apply asks first; with no terminal to ask on it needs --yes (exit 2, nothing deleted)."""
        monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply")
        assert 2 == result.code
        assert "--yes" in _single_error_line(result)
        assert [] == memory["db"].deleted

    @pytest.mark.parametrize(("answer", "deleted"), [("y\n", 2), ("n\n", 0), ("\n", 0)])
    def test_prune_apply_asks_on_a_terminal(  # noqa: PLR0917 - pytest fixtures
        self, run, policy_file, memory, aged, monkeypatch, answer, deleted
    ):
        """On a terminal --apply asks; only "y" deletes."""
        monkeypatch.setattr(sys, "stdin", _Tty(answer))
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply")
        assert deleted == len(memory["db"].deleted)
        assert "Delete 2 recovery point(s)? [y/N]" in result.err
        assert (0 if deleted else 2) == result.code

    def test_prune_apply_deletes(self, run, policy_file, memory, aged):
        """--apply deletes what is older than the rule, never the newest."""
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply", "--yes")
        assert 0 == result.code
        assert sorted(p.id for p in aged[1:]) == sorted(memory["db"].deleted)
        assert "dry run" not in result.out

    def test_prune_json(self, run, policy_file, memory, aged):
        """--json gives the plan, the apply report and the listing errors."""
        data = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--json").json()
        assert {"plan", "apply", "listing_errors"} == set(data)
        assert {"keep": 2, "delete": 2} == data["plan"]["counts"]
        assert data["apply"]["dry_run"] is True
        assert ["would delete"] * 2 == [o["action"] for o in data["apply"]["outcomes"]]
        assert {} == data["listing_errors"]

    def test_target_limits_pruning(self, run, policy_file, memory, aged):
        """prune --target web plans and deletes only web's points."""
        result = run(
            "prune",
            "--policy",
            str(policy_file),
            "--now",
            NOW_TEXT,
            "--target",
            "web",
            "--apply",
            "--yes",
        )
        assert ("", 0) == (result.err, result.code)
        assert [] == memory["db"].deleted
        assert {"web"} == {
            p["target"]
            for p in json.loads(
                run("prune", "--policy", str(policy_file), "--target", "web", "--json").out
            )["plan"]["keep"]
        }

    def test_a_failed_listing_exits_1_and_deletes_nothing_of_it(
        self, run, policy_file, memory, aged
    ):
        """A target that cannot be listed is reported; the run exits 1."""
        memory["db"].fail_next("list_points", BackendError("throttled", backend="db"))
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply", "--yes")
        assert 1 == result.code
        assert "error: listing db failed, nothing of it was deleted" in result.out
        assert [] == memory["db"].deleted

    def test_a_failed_deletion_exits_1(self, run, policy_file, memory, aged):
        """A deletion that fails makes the exit code 1."""
        memory["db"].fail_next("delete", BackendError("denied", backend="db"))
        result = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply", "--yes")
        assert 1 == result.code
        assert 1 == len(memory["db"].deleted)


class TestHolds:
    @pytest.fixture(name="point")
    def _point(self, run, policy_file, memory):
        memory["db"] = MemoryTarget("db", policy="shop")
        return memory["db"].add_point(created_at=NOW - timedelta(days=30))

    def test_no_holds(self, run, policy_file, point):
        """Without holds the listing says so; --json gives an empty list."""
        assert "no points under legal hold\n" == run("holds", "--policy", str(policy_file)).out
        assert [] == run("holds", "--policy", str(policy_file), "--json").json()

    def test_place_list_release(self, run, policy_file, memory, point):
        """--place records the hold, the listing shows it, --release removes it."""
        base = ("holds", "--policy", str(policy_file))
        placed = run(
            *base,
            "--target",
            "db",
            "--place",
            point.id,
            "--reason",
            "litigation",
            "--reference",
            "case-17",
            "--now",
            NOW_TEXT,
            "--json",
        )
        listed = run(*base, "--json").json()
        pruned = run("prune", "--policy", str(policy_file), "--now", NOW_TEXT, "--apply", "--yes")
        dry = run(*base, "--target", "db", "--release", point.id)
        still_held = memory["db"].refresh(point).legal_hold is not None
        released = run(*base, "--target", "db", "--release", point.id, "--apply", "--yes")

        assert (0, {"id": point.id, "held": True}) == (placed.code, placed.json())
        assert [
            {
                "target": "db",
                "tier": "local",
                "id": point.id,
                "created_at": point.created_at.isoformat(),
                "reason": "litigation",
                "reference": "case-17",
            }
        ] == listed
        assert 0 == pruned.code
        assert [] == memory["db"].deleted
        assert (0, True) == (dry.code, still_held)
        assert dry.out.startswith(f"dry run: would release the hold on db:{point.id}")
        assert f"hold released on db:{point.id}\n" == released.out
        assert memory["db"].refresh(point).legal_hold is None

    def test_release_apply_without_yes_and_no_terminal_is_refused(
        self, run, policy_file, memory, point, monkeypatch
    ):
        """--release --apply asks first; with no terminal it needs --yes: exit 2, still held."""
        memory["db"].place_hold(point, LegalHold(reason="audit", reference="SOX-1", since=NOW))
        monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY
        args = ("holds", "--policy", str(policy_file), "--target", "db", "--release", point.id)
        result = run(*args, "--apply")
        assert (2, True) == (result.code, memory["db"].refresh(point).legal_hold is not None)
        assert "--yes" in _single_error_line(result)

    @pytest.mark.parametrize(("answer", "held"), [("y\n", False), ("n\n", True)])
    def test_release_apply_asks_on_a_terminal(  # noqa: PLR0917 - pytest fixtures
        self, run, policy_file, memory, point, monkeypatch, answer, held
    ):
        """On a terminal --release --apply asks, naming the point and its hold; only "y" releases."""
        memory["db"].place_hold(point, LegalHold(reason="audit", reference="SOX-1", since=NOW))
        monkeypatch.setattr(sys, "stdin", _Tty(answer))
        args = ("holds", "--policy", str(policy_file), "--target", "db", "--release", point.id)
        result = run(*args, "--apply")
        assert held == (memory["db"].refresh(point).legal_hold is not None)
        assert f"Release the hold on db:{point.id} (held for 'audit', SOX-1)? [y/N]" in result.err
        assert (2 if held else 0) == result.code

    def test_place_needs_a_reason(self, run, policy_file, memory, point):
        """--place without --reason is a usage error."""
        result = run("holds", "--policy", str(policy_file), "--target", "db", "--place", point.id)
        assert 2 == result.code
        assert "--reason" in _single_error_line(result)
        assert memory["db"].refresh(point).legal_hold is None

    def test_place_needs_exactly_one_target(self, run, policy_file, point):
        """--place without --target is a usage error."""
        result = run("holds", "--policy", str(policy_file), "--place", point.id, "--reason", "r")
        assert 2 == result.code
        assert "exactly one --target" in _single_error_line(result)

    def test_unknown_point(self, run, policy_file, point):
        """An id the target does not have: exit 2 naming it."""
        result = run("holds", "--policy", str(policy_file), "--target", "db", "--release", "nope")
        assert 2 == result.code
        assert "'nope'" in _single_error_line(result)

    def test_listing_text(self, run, policy_file, memory, point):
        """The text listing is a table: a header, a rule, one line per held point."""
        hold = LegalHold(reason="audit", reference="SOX-1", since=NOW)
        memory["db"].place_hold(point, hold)
        out = run("holds", "--policy", str(policy_file)).out
        created = point.created_at.strftime("%Y-%m-%d %H:%M").split()
        assert [["db", "local", point.id, *created, "SOX-1", "audit"]] == [
            line.split() for line in out.splitlines()[2:]
        ]


class TestDemoCommand:
    @pytest.mark.parametrize(("ok", "code"), [(True, 0), (False, 1)])
    def test_exit_code_follows_the_demo_result(self, run, monkeypatch, ok, code):
        """demo exits 0 when the demo's summary is ok, 1 otherwise; --json prints the summary."""
        calls: list[int] = []

        def fake_run(
            *, days: int, out: Any, report_path: Path | None, policy: Path | None
        ) -> dict[str, Any]:
            calls.append(days)
            return {"ok": ok, "days": days}

        monkeypatch.setattr(demo, "run", fake_run)
        result = run("demo", "--days", "3", "--json")
        assert (code, {"ok": ok, "days": 3}, [3]) == (result.code, result.json(), calls)

    def test_report_path_goes_to_the_demo(self, run, monkeypatch, tmp_path):
        """demo --report PATH asks the demo to write its HTML report there; the default is None."""
        paths: list[Path | None] = []

        def fake_run(
            *, days: int, out: Any, report_path: Path | None, policy: Path | None
        ) -> dict[str, Any]:
            paths.append(report_path)
            return {"ok": True}

        monkeypatch.setattr(demo, "run", fake_run)
        run("demo", "--days", "1", "--report", str(tmp_path / "r.html"))
        run("demo", "--days", "1")
        assert [tmp_path / "r.html", None] == paths


class TestProgressBar:
    class Tty(io.StringIO):
        """A stream that says it is a terminal."""

        def isatty(self) -> bool:
            """Always a terminal."""
            return True

    def test_draws_on_a_terminal(self):
        """With stdout and stderr on a terminal rich draws the bar (label, done/total)."""
        stream = self.Tty()
        with _common.ProgressBar(stream, enabled=True, out=self.Tty()) as bar:
            bar("backup", 1, 2)
            bar("backup", 2, 2)
        frames = stream.getvalue()
        assert "backup" in frames
        assert "2/2" in frames

    def test_silent_when_not_a_terminal_or_disabled(self):
        """Not a terminal, or disabled (--json): nothing is written."""
        plain, tty = io.StringIO(), self.Tty()
        _common.ProgressBar(plain, enabled=True, out=self.Tty())("backup", 1, 1)
        _common.ProgressBar(tty, enabled=False, out=self.Tty())("backup", 1, 1)
        assert ("", "") == (plain.getvalue(), tty.getvalue())

    def test_silent_when_stdout_is_a_pipe(self):
        """stderr on a terminal but stdout piped or logged: quiet too."""
        tty = self.Tty()
        with _common.ProgressBar(tty, enabled=True, out=io.StringIO()) as bar:
            bar("backup", 1, 1)
        assert "" == tty.getvalue()

    def test_backup_draws_a_bar_on_a_terminal_only(self, memory, policy_file):
        """backup through main(): a bar on a terminal, nothing on stderr when stdout is piped."""
        err, out = self.Tty(), self.Tty()
        code = cli.main(
            ["backup", "--policy", str(policy_file), "--now", NOW_TEXT], out=out, err=err
        )
        assert 0 == code
        assert "2/2" in err.getvalue()
        assert "\x1b" not in out.getvalue()  # the result itself is plain text
        piped_err = self.Tty()
        cli.main(
            ["backup", "--policy", str(policy_file), "--now", NOW_TEXT, "--force"],
            out=io.StringIO(),
            err=piped_err,
        )
        assert "" == piped_err.getvalue()


class TestParseNow:
    def test_z_and_offsets_are_utc_instants(self):
        """Z and +01:00 both parse to aware datetimes of the same instant."""
        assert NOW == _common.parse_now(NOW_TEXT)
        assert NOW == _common.parse_now("2026-11-23T05:10:00+01:00")

    def test_default_is_now(self):
        """Without --now the current time is used (timezone-aware)."""
        assert _common.parse_now(None).tzinfo is not None


def _group(name: str, commands: dict[str, Callable[..., int]]) -> types.ModuleType:
    """A throwaway command group module: ``register`` adds *commands* with the common options."""
    module = types.ModuleType(name)

    def register(sub: Any, common: Any) -> dict[str, Callable[..., int]]:
        for command in commands:
            sub.add_parser(command, parents=[common], help=f"{command} of {name}")
        return dict(commands)

    module.register = register
    return module


@pytest.fixture(name="add_group")
def _add_group(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Register a throwaway command group after the real ones, as `main.COMMAND_MODULES` lists."""

    def add(name: str, **commands: Callable[..., int]) -> None:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, _group(name, commands)))

    return add


class TestUnexpectedErrors:
    def test_unexpected_exception_is_one_line_exit_1(self, monkeypatch, add_group):
        """An exception from outside the library prints one line, not a traceback, and exits 1."""

        def boom(args, out):
            raise ConnectionResetError("peer went away")

        add_group("boom_group", boom=boom)
        monkeypatch.delenv("BACKUPPOLICY_DEBUG", raising=False)
        out, err = io.StringIO(), io.StringIO()
        assert 1 == cli.main(["boom"], out=out, err=err)
        assert "unexpected error: ConnectionResetError: peer went away" in err.getvalue()
        assert "Traceback" not in err.getvalue()
        assert 1 == len(err.getvalue().strip().splitlines())

    def test_backend_not_found_error_exits_1_not_2(self, add_group):
        """A backend's ResourceNotFoundError is a failure (1), although it is also a LookupError."""
        import backuppolicy as bp

        def missing(args, out):
            raise bp.ResourceNotFoundError("snapshot gone", backend="db", operation="Describe")

        add_group("missing_group", missing=missing)
        err = io.StringIO()
        assert 1 == cli.main(["missing"], out=io.StringIO(), err=err)
        assert "ResourceNotFoundError: snapshot gone" in err.getvalue()

    def test_debug_env_reraises(self, monkeypatch, add_group):
        """BACKUPPOLICY_DEBUG=1 lets the traceback through for bug reports."""

        def boom(args, out):
            raise ConnectionResetError("peer went away")

        add_group("boom_group", boom=boom)
        monkeypatch.setenv("BACKUPPOLICY_DEBUG", "1")
        with pytest.raises(ConnectionResetError):
            cli.main(["boom"], out=io.StringIO(), err=io.StringIO())

    def test_keyboard_interrupt_exits_130(self, add_group):
        """Ctrl-C is one line and exit code 130, whatever the command."""

        def interrupted(args, out):
            raise KeyboardInterrupt

        add_group("interrupted_group", wait=interrupted)
        err = io.StringIO()
        assert (130, "backuppolicy: interrupted\n") == (
            cli.main(["wait"], out=io.StringIO(), err=err),
            err.getvalue(),
        )


CLI_DIR = Path(cli.__file__).parent
NOT_GROUPS = {"__init__", "_common", "main"}


def _command_module_names() -> list[str]:
    return sorted(p.stem for p in CLI_DIR.glob("*.py") if p.stem not in NOT_GROUPS)


def _imported_modules(tree: ast.Module, package: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` of *tree* names, relative ones resolved."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


class TestCommandGroups:
    """One way to add a command: a module in cli/ with ``register``, listed in COMMAND_MODULES."""

    def test_every_command_module_is_listed_once(self):
        """Each cli/*.py command group is in main.COMMAND_MODULES exactly once, and nothing else is."""
        listed = [m.__name__ for m in cli.COMMAND_MODULES]
        assert sorted(listed) == [f"backuppolicy.cli.{n}" for n in _command_module_names()]
        assert len(set(listed)) == len(listed)

    @pytest.mark.parametrize("name", _command_module_names())
    def test_command_modules_do_not_import_main(self, name):
        """A command module takes its helpers from cli._common, never from cli.main."""
        path = CLI_DIR / f"{name}.py"
        imported = _imported_modules(ast.parse(path.read_text()), "backuppolicy.cli")
        assert "backuppolicy.cli._common" in imported
        assert not {"backuppolicy.cli.main", "backuppolicy.cli.main.main"} & imported, name

    def test_the_import_check_sees_every_spelling(self):
        """The AST check above catches absolute, from-package and relative imports of main."""
        for source in (
            "import backuppolicy.cli.main as cli",
            "from backuppolicy.cli.main import emit",
            "from backuppolicy.cli import main",
            "from . import main",
            "from .main import emit",
        ):
            imported = _imported_modules(ast.parse(source), "backuppolicy.cli")
            assert "backuppolicy.cli.main" in imported, source

    @pytest.mark.parametrize("name", _command_module_names())
    def test_command_modules_import_nothing_heavy_at_module_level(self, name):
        """boto3, the AWS layer and the workflows are imported by handlers, to keep --help fast."""
        tree = ast.parse((CLI_DIR / f"{name}.py").read_text())
        top = ast.Module(
            body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)],
            type_ignores=[],
        )
        heavy = [
            m
            for m in _imported_modules(top, "backuppolicy.cli")
            if m.split(".")[0] in {"boto3", "botocore", "moto"}
            or m.startswith(("backuppolicy.workflows", "backuppolicy.aws", "backuppolicy.demo"))
        ]
        assert [] == heavy

    def test_a_new_group_registers_through_the_same_mechanism(self, add_group, tmp_path):
        """A throwaway group gets the common options, shows in --help, and its handler runs."""
        seen: list[Any] = []

        def hello(args, out):
            seen.append((args.command, args.json, args.target, _common.err_stream(args)))
            _common.emit(args, {"hello": args.target}, f"hello {args.target}", out)
            return _common.EXIT_FAILURES

        add_group("hello_group", hello=hello)
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["hello", "--json", "--target", "a", "--target", "b"], out=out, err=err)
        assert (1, {"hello": ["a", "b"]}, "") == (code, json.loads(out.getvalue()), err.getvalue())
        assert [("hello", True, ["a", "b"], err)] == seen
        help_out = io.StringIO()
        assert 2 == cli.main([], out=help_out, err=io.StringIO())
        assert "hello of hello_group" in help_out.getvalue()
        assert "doc " in help_out.getvalue()  # the real groups are still there

    def test_a_group_listed_twice_registers_once(self, monkeypatch):
        """Listing a module again does not register its commands twice (argparse would refuse)."""
        from backuppolicy.cli import policy

        monkeypatch.delenv("BACKUPPOLICY_FILE", raising=False)
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, policy))
        assert 2 == cli.main(["validate"], out=io.StringIO(), err=io.StringIO())  # no --policy

    def test_help_imports_no_boto3(self):
        """``--help`` of the root and of every command imports neither boto3 nor botocore."""
        code = (
            "import sys\n"
            "from backuppolicy.cli import main as cli\n"
            "parser, handlers = cli._parser()\n"
            "for argv in [[], *([name] for name in handlers)]:\n"
            "    try:\n"
            "        cli.main([*argv, '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(handlers), [m for m in ('boto3', 'botocore') if m in sys.modules])\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        last = result.stdout.strip().splitlines()[-1]
        assert last.endswith(" []"), last
        assert "'restore-test'" in last
