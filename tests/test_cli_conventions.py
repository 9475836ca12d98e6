"""Issue 15, CLI: what a person reads, flags and conventions, errors at the edges.

Each test failed before the change it is named after. In-process through
`backuppolicy.cli.main.main` where streams are enough; a subprocess where a real pipe matters.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import backuppolicy.cli.main as cli
from backuppolicy.cli import _common
from backuppolicy.core.durations import Duration, format_duration
from backuppolicy.core.exceptions import PolicyError

ROOT = Path(__file__).resolve().parent.parent

LOCAL_POLICY = """\
name: shop
schedule: {{every: day, at: "04:00"}}
retention: {{max_age: 35d}}
tiers: [{{name: local, every: day, location: {{store: {store}}}}}]
targets: [{{name: etc, kind: directory, application: shop, settings: {{path: {src}}}}}]
"""


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(name="local_policy")
def _local_policy(tmp_path: Path) -> Path:
    src = tmp_path / "etc"
    src.mkdir()
    (src / "app.conf").write_text("port = 8080\n")
    path = tmp_path / "policy.yaml"
    path.write_text(LOCAL_POLICY.format(store=tmp_path / "store", src=src))
    return path


def _subcommands() -> list[tuple[str, ...]]:
    """Every subcommand, nested ones (``export iam``) too, as argv prefixes."""
    parser, _ = cli._parser()
    found: list[tuple[str, ...]] = []

    def walk(p: object, prefix: tuple[str, ...]) -> None:
        for action in getattr(p, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict) and action.dest in {"command", "export_what"}:
                for name, child in choices.items():
                    found.append((*prefix, name))
                    walk(child, (*prefix, name))

    walk(parser, ())
    return found


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (timedelta(seconds=8.635864), "8.6 s"),
            (8.635864, "8.6 s"),
            (0, "0 s"),
            (0.01, "< 0.1 s"),
            (42.9, "42 s"),
            (185, "3 min 5 s"),
            (timedelta(hours=2, minutes=3, seconds=4), "2 h 3 min"),
            (timedelta(days=3, hours=4, minutes=59), "3 d 4 h"),
            (timedelta(days=1, hours=3), "1 d 3 h"),
            (timedelta(days=2), "2 d"),
            (-5, "-5 s"),
        ],
    )
    def test_human_durations(self, value: timedelta | float, text: str) -> None:
        """One helper for every duration a person reads (no ``0:00:08.635864``)."""
        assert text == format_duration(value)

    def test_duration_error_speaks_the_policy_files_language(self) -> None:
        """A wrong duration names the file's spelling, not Python's timedelta."""
        with pytest.raises(PolicyError) as info:
            Duration.coerce(35, field="retention.max_age")
        assert "retention.max_age: expected a duration like '35d' (got 35)." == str(info.value)


class TestNoPythonInternals:
    def test_validate_prints_a_summary_not_a_repr(self, local_policy: Path) -> None:
        """validate: 'ok: policy 'shop', 1 target, 1 tier', not ``ok (<backuppolicy.Policy(...)>)``."""
        code, out, _ = _main("validate", "--policy", str(local_policy))
        assert (0, f"{local_policy}: ok: policy 'shop', 1 target, 1 tier\n") == (code, out)

    def test_backup_prints_counts_and_human_durations(self, local_policy: Path) -> None:
        """backup: a count line, not ``<backuppolicy.RunReport(...)>``; 'took' in '0.1 s' style."""
        code, out, _ = _main("backup", "--policy", str(local_policy), "--now", "2026-11-23T04:10Z")
        assert 0 == code
        title, *rest = out.splitlines()
        assert "<backuppolicy." not in out
        assert title.endswith(": 1 target: 1 backed up, 0 copies, 0 failed")
        assert re.search(r"  (< )?\d+(\.\d)? s  ok$", rest[2]), rest[2]  # not "0.1s"


class TestFlags:
    def test_version(self) -> None:
        """--version prints the package version and exits 0."""
        from importlib.metadata import version

        assert (0, f"backuppolicy {version('backuppolicy')}\n", "") == _main("--version")

    @pytest.mark.parametrize("command", ["doc", "validate", "demo"])
    @pytest.mark.parametrize(
        "option",
        [("--endpoint-url", "http://x"), ("--now", "2026-01-01T00:00Z"), ("--target", "a")],
    )
    def test_options_only_where_they_mean_something(
        self, command: str, option: tuple[str, str], local_policy: Path
    ) -> None:
        """doc, validate and demo refuse AWS and run options: exit 2 naming the option."""
        extra = ("--policy", str(local_policy)) if command != "demo" else ()
        code, out, err = _main(command, *extra, *option)
        assert (2, "") == (code, out)
        assert f"unrecognized arguments: {option[0]}" in err

    @pytest.mark.parametrize(
        ("command", "option"),
        [
            (("export", "iam"), ("--now", "2026-01-01T00:00Z")),
            (("export", "iam"), ("--endpoint-url", "http://x")),
            (("export", "lifecycle"), ("--target", "a")),
            (("export", "lifecycle"), ("--profile", "p")),
            (("export", "cloudformation"), ("--region", "eu-west-1")),
            (
                (
                    "export",
                    "scheduler",
                    "--lambda-arn",
                    "l",
                    "--role-arn",
                    "r",
                    "--policy-url",
                    "u",
                ),
                ("--now", "2026-01-01T00:00Z"),
            ),
            (("export", "aws-backup"), ("--now", "2026-01-01T00:00Z")),
            (("export", "aws-backup"), ("--target", "a")),
            (("targets",), ("--now", "2026-01-01T00:00Z")),
        ],
    )
    def test_exports_take_only_their_options(
        self, command: tuple[str, ...], option: tuple[str, str], local_policy: Path
    ) -> None:
        """No export takes --now or --target; only those that call AWS take the AWS options."""
        code, out, err = _main(*command, "--policy", str(local_policy), *option)
        assert (2, "") == (code, out)
        assert f"unrecognized arguments: {option[0]}" in err

    def test_run_help_says_it_prunes_without_asking(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``run`` never prompts (it is the unattended job); its --help says so, and why."""
        with pytest.raises(SystemExit) as info:
            cli.main(["run", "--help"])
        code, text = info.value.code, " ".join(capsys.readouterr().out.split())
        assert (0, True, True) == (
            code,
            "WITHOUT ASKING, by design" in text,
            "the policy file is the confirmation" in text,
        )

    def test_demo_with_a_policy_and_garbage_now_is_exit_2(self) -> None:
        """``demo --policy /nope.yaml --now garbage`` ran the demo with exit 0."""
        code, _, err = _main("demo", "--policy", "/nope.yaml", "--now", "garbage")
        assert 2 == code
        assert err.startswith("backuppolicy: error:")

    @pytest.mark.parametrize("argv", _subcommands(), ids=" ".join)
    def test_every_help_starts_with_a_one_line_description(
        self, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``backuppolicy CMD --help``: the first line says what CMD does, then the usage."""
        with pytest.raises(SystemExit) as info:
            cli.main([*argv, "--help"])
        assert 0 == info.value.code
        first, blank, usage, *_ = capsys.readouterr().out.splitlines()
        assert first[-1] in ".?", first
        assert not first.startswith("usage:"), first
        assert first[0].isupper()
        assert ("", True) == (blank, usage.startswith("usage: backuppolicy"))

    def test_profile_and_region_are_aws_cli_options(self) -> None:
        """--profile and --region are on the commands that call AWS, with AWS CLI's names."""
        parser, _ = cli._parser()
        for argv in (("backup",), ("prune",), ("report",), ("restore",), ("verify",)):
            help_text = parser.parse_known_args([*argv])[0]
            assert hasattr(help_text, "profile"), argv
            assert hasattr(help_text, "region"), argv

    def test_unknown_profile_is_one_line_naming_it(
        self, aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AWS_PROFILE=nonexistent was 'unexpected error: ProfileNotFound'."""
        policy = tmp_path / "p.yaml"
        policy.write_text(
            "name: shop\nschedule: {every: day, at: '04:00'}\nretention: {max_age: 35d}\n"
            "targets: [{name: db, kind: rds-instance, settings: {db_instance_id: db1}}]\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
        monkeypatch.setenv("AWS_PROFILE", "nonexistent")
        code, out, err = _main("backup", "--policy", str(policy))
        assert (2, "") == (code, out)
        expected = (
            "backuppolicy: error: AWS profile: expected a profile of ~/.aws/config or "
            "~/.aws/credentials (got 'nonexistent')."
        )
        assert [expected] == err.splitlines()
        monkeypatch.delenv("AWS_PROFILE")
        code, _, err = _main("backup", "--policy", str(policy), "--profile", "other")
        assert 2 == code
        assert "(got 'other')" in err
        assert "AWS_PROFILE" not in os.environ  # --profile is undone after the command


class TestPolicyErrors:
    def test_yaml_error_names_where_the_quote_started(self, tmp_path: Path) -> None:
        """An unclosed quote is reported at its start (line 3), not at the end of the file."""
        path = tmp_path / "p.yaml"
        path.write_text('name: shop\nschedule: {every: day}\nowner:   "ops\nretention: {}\n')
        code, _, err = _main("validate", "--policy", str(path))
        assert 2 == code
        assert f"{path}:3:10: " in err
        assert "unterminated string starting at line 3, column 10;" in err

    def test_kind_typo_gets_did_you_mean(self, tmp_path: Path) -> None:
        """kind: rds-database got no suggestion."""
        path = tmp_path / "p.yaml"
        path.write_text(
            "name: shop\nschedule: {every: day, at: '04:00'}\nretention: {max_age: 35d}\n"
            "targets: [{name: db, kind: rds-database, settings: {db_instance: db1}}]\n"
        )
        code, _, err = _main("validate", "--policy", str(path))
        assert 2 == code
        assert "Did you mean 'rds-instance'?" in err


class TestClosedPipe:
    def test_closed_pipe_ends_quietly(self, tmp_path: Path) -> None:
        """``backuppolicy doc | head -c 1``: no BrokenPipeError, nothing on stderr."""
        targets = "\n".join(
            f"  - {{name: t{i:04d}, kind: directory, application: a, settings: {{path: {tmp_path}}}}}"
            for i in range(600)
        )
        path = tmp_path / "p.yaml"
        path.write_text(
            "name: shop\nschedule: {every: day, at: '04:00'}\nretention: {max_age: 35d}\n"
            f"tiers: [{{name: local, every: day, location: {{store: {tmp_path / 's'}}}}}]\n"
            f"targets:\n{targets}\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "backuppolicy", "doc", "--policy", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.read(1)  # the reader takes one byte and goes away, like head
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        proc.wait(timeout=120)
        assert "" == err
        assert proc.returncode in {0, 1}

    def test_pipe_output_has_no_progress_bar(self, local_policy: Path) -> None:
        """backup in a pipe: the result on stdout, nothing at all on stderr."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "backuppolicy", "backup", "--policy", str(local_policy)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert (0, "") == (done.returncode, done.stderr)
        assert "1 backed up" in done.stdout


def test_table_fits_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared table helper wraps to $COLUMNS (the demo's table was 425 characters wide)."""
    rows = [("db", "word " * 40)]
    for width in (80, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        text = _common.table(("target", "detail"), rows)
        assert max(map(len, text.splitlines())) <= width
        assert 40 == text.split().count("word")
