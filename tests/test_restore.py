"""Restores of directory targets, the plan/confirm contract, probes and the testing log."""

# "token" is an idempotency token, not a password.

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from backuppolicy.core.exceptions import PolicyError, VerificationError
from backuppolicy.core.policy import Policy
from backuppolicy.core.results import CheckKind, CheckResult, CheckStatus
from backuppolicy.local import Directory, DirectoryStore
from backuppolicy.testing import MemoryTarget
from backuppolicy.workflows._restore import RestorePlan, StepAction, plan_restore, restore

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class _Log:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def record(self, result: CheckResult) -> None:
        self.results.append(result)


@pytest.fixture(name="etc")
def _etc(tmp_path: Path) -> Directory:
    source = tmp_path / "etc"
    source.mkdir()
    (source / "app.conf").write_text("port = 8080\n")
    return Directory(source, name="etc", store=DirectoryStore(tmp_path / "store"))


def _read(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


class TestDirectoryPlan:
    def test_in_place_moves_aside_and_is_destructive(self, etc: Directory) -> None:
        """Restoring over an existing directory moves it aside first, and needs confirm."""
        point = etc.create_backup(token="one")
        plan = plan_restore(etc, point=point, now=NOW)
        assert [
            (StepAction.CREATE, False),
            (StepAction.MOVE_ASIDE, True),
            (StepAction.REPLACE, True),
            (StepAction.VERIFY, False),
        ] == [(s.action, s.destructive) for s in plan.steps]
        assert str(etc.path) + ".before-restore-20261126t090000z" == plan.steps[1].keeps

    def test_into_an_empty_place_is_not_destructive(self, etc: Directory, tmp_path: Path) -> None:
        """A restore into a path that does not exist only creates."""
        point = etc.create_backup(token="one")
        plan = plan_restore(etc, point=point, into=tmp_path / "new", now=NOW)
        assert (False, False) == (plan.destructive, plan.in_place)

    def test_newest_point_by_default(self, tmp_path: Path) -> None:
        """Without point= the newest completed archive is restored."""
        stamps = iter([NOW - timedelta(days=2), NOW - timedelta(days=1)])
        source = tmp_path / "etc"
        source.mkdir()
        etc = Directory(
            source, name="etc", store=DirectoryStore(tmp_path / "store"), clock=lambda: next(stamps)
        )
        etc.create_backup(token="old")
        newest = etc.create_backup(token="new")
        plan = plan_restore(etc, into=tmp_path / "x", now=NOW)
        assert (newest.id, newest.created_at) == (plan.point.id, plan.data_time)  # type: ignore[union-attr]

    def test_no_point_at_all(self, etc: Directory) -> None:
        """A target without any completed point cannot be restored (the field is named)."""
        with pytest.raises(
            PolicyError, match=r"^point: expected a completed recovery point of target 'etc'"
        ):
            plan_restore(etc, now=NOW)

    def test_at_and_point_are_exclusive(self, etc: Directory) -> None:
        """point= and at= name the same thing twice: refused."""
        point = etc.create_backup(token="one")
        with pytest.raises(PolicyError, match=r"^point: expected no point when at= is given"):
            plan_restore(etc, point=point, at=NOW - timedelta(hours=1), now=NOW)

    def test_at_in_the_future(self, etc: Directory) -> None:
        """A point in time after now is refused."""
        with pytest.raises(PolicyError, match=r"^at: expected a time at or before now"):
            plan_restore(etc, at=NOW + timedelta(hours=1), now=NOW)

    def test_kind_without_restore(self) -> None:
        """A target kind this module cannot restore is named, with the kinds it can."""
        with pytest.raises(
            PolicyError, match=r"^target\.kind: expected a kind with a restore: rds-instance"
        ):
            plan_restore(MemoryTarget("db"), now=NOW)

    def test_from_a_policy_by_name(self, etc: Directory, tmp_path: Path) -> None:
        """plan_restore(policy, name, targets=) finds the target and its application."""
        policy = Policy.from_dict(
            {
                "name": "p",
                "schedule": {"every": "day", "at": "04:00"},
                "retention": {"max_age": "35d"},
                "tiers": [
                    {
                        "name": "local",
                        "every": "day",
                        "location": {"store": str(tmp_path / "store")},
                    }
                ],
                "targets": [
                    {
                        "name": "etc",
                        "kind": "directory",
                        "application": "shop",
                        "settings": {"path": str(etc.path)},
                    }
                ],
            }
        )
        etc.create_backup(token="one")
        plan = plan_restore(policy, "etc", into=tmp_path / "x", targets={"etc": etc}, now=NOW)
        assert ("etc", "shop") == (plan.target, plan.application)
        assert "<backuppolicy.RestorePlan(target='etc', destination=" in repr(plan)


class TestDirectoryRestore:
    def test_refuses_to_overwrite_without_confirm(self, etc: Directory) -> None:
        """Without confirm=True a destructive plan changes nothing and says how to confirm."""
        point = etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        plan = plan_restore(etc, point=point, now=NOW)
        with pytest.raises(
            PolicyError,
            match=r"restore\(plan, confirm=True\) \(CLI: --apply\)\. Nothing was changed\.",
        ):
            restore(plan)
        assert {"app.conf": "mine\n"} == _read(etc.path)
        assert not Path(str(plan.steps[1].keeps)).exists()

    def test_confirmed_restore_keeps_the_previous_state(self, etc: Directory) -> None:
        """With confirm=True the archive is restored and the old directory kept aside."""
        point = etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        (etc.path / "extra").write_text("new file\n")
        log = _Log()
        result = restore(plan_restore(etc, point=point, now=NOW), confirm=True, log=log)
        assert {"app.conf": "port = 8080\n"} == _read(etc.path)
        assert {"app.conf": "mine\n", "extra": "new file\n"} == _read(Path(result.kept[0]))
        assert [("restore", CheckStatus.PASS, CheckKind.RESTORE_TEST, point.id)] == [
            (r.check, r.status, r.kind, r.point_id) for r in log.results
        ]
        assert [str(etc.path) + ".before-restore-20261126t090000z"] == log.results[0].evidence[
            "kept"
        ]

    def test_a_hand_made_plan_cannot_name_what_is_removed_or_moved(
        self, etc: Directory, tmp_path: Path
    ) -> None:
        """Staging and aside paths follow from the destination and the token, not the plan's options.

        A plan whose options name another directory as its "staging" (removed when it exists)
        and another place as its "aside" leaves both alone.
        """
        point = etc.create_backup(token="one")
        victim = tmp_path / "important"
        victim.mkdir()
        (victim / "keep.txt").write_text("precious\n")
        elsewhere = tmp_path / "elsewhere"
        plan = plan_restore(etc, point=point, now=NOW)
        forged = attrs.evolve(
            plan, options={**plan.options, "staging": str(victim), "aside": str(elsewhere)}
        )

        result = restore(forged, confirm=True)

        assert "precious\n" == (victim / "keep.txt").read_text()
        assert not elsewhere.exists()
        assert [str(etc.path.with_name(f"etc.before-restore-{plan.stamp}"))] == list(result.kept)

    def test_crashed_restore_staging_is_swept_and_reported(self, etc: Directory) -> None:
        """Old, unlocked .bp-restore-* leftovers next to the destination go, listed in details."""
        point = etc.create_backup(token="one")
        from backuppolicy.local import _leftovers

        crashed, lock = _leftovers.owned_tempdir(".bp-restore-", etc.path.parent)
        os.close(lock)  # the restore that made it crashed: its lock is gone
        (crashed / "data").mkdir()
        when = time.time() - 2 * 86400
        os.utime(crashed, (when, when))

        result = restore(plan_restore(etc, point=point, now=NOW), confirm=True)

        assert [str(crashed)] == result.details["swept"]
        assert not crashed.exists()

    def test_destination_made_since_the_plan_is_refused_then_kept(
        self, etc: Directory, tmp_path: Path
    ) -> None:
        """A path that was free at planning and holds files now: refused and named; confirmed, kept."""
        point = etc.create_backup(token="one")
        dest = tmp_path / "new"
        plan = plan_restore(etc, point=point, into=dest, now=NOW)
        assert not plan.destructive
        dest.mkdir()
        (dest / "theirs.txt").write_text("theirs\n")
        with pytest.raises(
            PolicyError,
            match=rf"Changed since the plan: {re.escape(str(dest))}: 'absent' at planning, "
            r"'a directory of 1 entries .*newest: theirs\.txt\)' now",
        ):
            restore(plan)
        assert {"theirs.txt": "theirs\n"} == _read(dest)
        result = restore(plan, confirm=True)
        assert {"app.conf": "port = 8080\n"} == _read(dest)
        assert {"theirs.txt": "theirs\n"} == _read(Path(result.kept[0]))

    def test_file_changed_since_an_in_place_plan_is_named(self, etc: Directory) -> None:
        """An in-place plan's directory changed since: the refusal names it; confirmed, the change is kept."""
        point = etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        plan = plan_restore(etc, point=point, now=NOW)
        (etc.path / "late.txt").write_text("written after the plan\n")
        with pytest.raises(
            PolicyError,
            match=rf"Changed since the plan: {re.escape(str(etc.path))}: 'a directory of 1 entries",
        ):
            restore(plan)
        result = restore(plan, confirm=True)
        assert {"app.conf": "mine\n", "late.txt": "written after the plan\n"} == _read(
            Path(result.kept[0])
        )

    def test_hand_made_plan_cannot_skip_the_move_aside(
        self, etc: Directory, tmp_path: Path
    ) -> None:
        """A plan edited to look harmless still keeps what is at the destination: decided when acting."""
        point = etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        real = plan_restore(etc, point=point, now=NOW)
        forged = attrs.evolve(
            real,
            steps=tuple(s for s in real.steps if not s.destructive),
            options={**real.options, "aside": None},
        )
        assert not forged.destructive
        result = restore(forged)
        assert {"app.conf": "port = 8080\n"} == _read(etc.path)
        assert {"app.conf": "mine\n"} == _read(Path(result.kept[0]))

    def test_corrupt_archive_changes_nothing(self, etc: Directory) -> None:
        """A corrupt archive fails the checksum before the current directory is touched."""
        point = etc.create_backup(token="one")
        archive = next(p for p in etc.store.path.iterdir() if p.name.endswith(".tar.gz"))  # type: ignore[attr-defined]
        archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
        (etc.path / "app.conf").write_text("mine\n")
        plan = plan_restore(etc, point=point, now=NOW)
        with pytest.raises(VerificationError):
            restore(plan, confirm=True)
        assert {"app.conf": "mine\n"} == _read(etc.path)

    def test_probes_run_against_the_restored_directory(
        self, etc: Directory, tmp_path: Path
    ) -> None:
        """Probes (run(endpoint) objects and callables) check the restored resource."""
        point = etc.create_backup(token="one")

        class HasConf:
            name = "has-conf"

            def run(self, endpoint: str | None) -> bool:
                return Path(str(endpoint), "app.conf").exists()

        def missing(endpoint: str | None) -> bool:
            return Path(str(endpoint), "nope").exists()

        def broken(_endpoint: str | None) -> Any:
            raise RuntimeError("probe crashed")

        plan = plan_restore(
            etc, point=point, into=tmp_path / "x", probes=[HasConf(), missing, broken], now=NOW
        )
        result = restore(plan)
        assert [
            ("archive-checksum", True),
            ("has-conf", True),
            ("missing", False),
            ("broken", False),
        ] == [(c.check, c.ok) for c in result.checks]
        assert not result.ok
        assert "RuntimeError: probe crashed" in result.checks[-1].details
        assert "FAILED" in result.summary()

    def test_plan_and_result_are_json_ready(self, etc: Directory, tmp_path: Path) -> None:
        """to_dict() of plans and results holds only plain data."""
        import json

        point = etc.create_backup(token="one")
        plan = plan_restore(etc, point=point, into=tmp_path / "x", now=NOW)
        result = restore(plan)
        data = json.loads(json.dumps(result.to_dict()))
        assert (point.id, True, "create") == (
            data["plan"]["point"],
            data["ok"],
            data["plan"]["steps"][0]["action"],
        )
        assert isinstance(plan, RestorePlan)


def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    import io

    import backuppolicy.cli.main as cli

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(name="policy_file")
def _policy_file(tmp_path: Path, etc: Directory) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""\
name: p
schedule: {{every: day, at: "04:00"}}
retention: {{max_age: 35d}}
tiers: [{{name: local, every: day, location: {{store: {tmp_path / "store"}}}}}]
targets: [{{name: etc, kind: directory, application: shop, settings: {{path: {etc.path}}}}}]
"""
    )
    return path


class TestCli:
    def test_restore_is_a_dry_run_without_apply(
        self, monkeypatch: pytest.MonkeyPatch, etc: Directory, policy_file: Path
    ) -> None:
        """Without --apply a restore prints the plan, changes nothing and exits 0."""
        etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        code, out, _ = _cli(monkeypatch, "restore", "--policy", str(policy_file), "--target", "etc")
        assert (0, {"app.conf": "mine\n"}) == (code, _read(etc.path))
        assert "dry run: nothing was changed; add --apply" in out

    def test_destructive_apply_needs_yes_without_a_terminal(
        self, monkeypatch: pytest.MonkeyPatch, etc: Directory, policy_file: Path
    ) -> None:
        """--apply of an in-place restore asks first; no terminal and no --yes: exit 2, no change."""
        import io

        etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
        code, _, err = _cli(
            monkeypatch, "restore", "--policy", str(policy_file), "--target", "etc", "--apply"
        )
        assert (2, {"app.conf": "mine\n"}) == (code, _read(etc.path))
        assert "add --yes" in err

    @pytest.mark.parametrize("flags", [("--apply", "--yes"), ("--yes",)])
    def test_apply_yes_and_the_old_yes_restore(
        self,
        monkeypatch: pytest.MonkeyPatch,
        etc: Directory,
        policy_file: Path,
        flags: tuple[str, ...],
    ) -> None:
        """--apply --yes restores; the old --yes alone still does, with a deprecation warning."""
        etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        code, _, err = _cli(
            monkeypatch, "restore", "--policy", str(policy_file), "--target", "etc", *flags
        )
        assert (0, {"app.conf": "port = 8080\n"}) == (code, _read(etc.path))
        assert ("deprecated" in err) == (flags == ("--yes",))

    def test_old_dry_run_flag_warns(
        self, monkeypatch: pytest.MonkeyPatch, etc: Directory, policy_file: Path
    ) -> None:
        """--dry-run (now the default) still works and says it is deprecated."""
        etc.create_backup(token="one")
        code, _, err = _cli(
            monkeypatch, "restore", "--policy", str(policy_file), "--target", "etc", "--dry-run"
        )
        assert 0 == code
        assert "--dry-run is deprecated" in err

    def test_restore_with_yes(
        self, monkeypatch: pytest.MonkeyPatch, etc: Directory, policy_file: Path
    ) -> None:
        """With --yes the restore runs and the result is printed as JSON with --json."""
        import json

        point = etc.create_backup(token="one")
        (etc.path / "app.conf").write_text("mine\n")
        code, out, _ = _cli(
            monkeypatch,
            "restore",
            "--policy",
            str(policy_file),
            "--target",
            "etc",
            "--point",
            point.id,
            "--yes",
            "--json",
        )
        assert (0, True, {"app.conf": "port = 8080\n"}) == (
            code,
            json.loads(out)["ok"],
            _read(etc.path),
        )

    def test_point_and_at_exclude_each_other(
        self, monkeypatch: pytest.MonkeyPatch, policy_file: Path
    ) -> None:
        """--point and --at together are a usage error (exit 2)."""
        code, _, err = _cli(
            monkeypatch,
            "restore",
            "--policy",
            str(policy_file),
            "--target",
            "etc",
            "--point",
            "x",
            "--at",
            "2026-11-26T00:00:00Z",
        )
        assert 2 == code
        assert "not allowed with argument" in err

    def test_bad_point_is_exit_2(
        self, monkeypatch: pytest.MonkeyPatch, etc: Directory, policy_file: Path
    ) -> None:
        """An unknown point id is a clear error line (exit 2)."""
        etc.create_backup(token="one")
        code, _, err = _cli(
            monkeypatch,
            "restore",
            "--policy",
            str(policy_file),
            "--target",
            "etc",
            "--point",
            "nope",
            "--dry-run",
        )
        assert 2 == code
        assert "point: expected the id of a recovery point of target 'etc'" in err
