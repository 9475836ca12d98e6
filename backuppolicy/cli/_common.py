"""What every command group of the ``backuppolicy`` command line shares.

A command group is a module in `backuppolicy.cli` with one function,
``register(sub, common) -> {name: handler}`` (the `CommandGroup` protocol): it adds its
subcommands to *sub* with ``parents=[common]`` (the options every command takes, see
`common_parser`) and returns a `Handler` for each. `backuppolicy.cli.main` lists the groups and
dispatches; the groups import their helpers from here, never from ``main``.

To keep ``backuppolicy --help`` fast a command module imports nothing heavy at module level
(no boto3, no workflows): its handlers import what they need when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, Self, TextIO

from backuppolicy.core.durations import format_duration
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.targets import BackupTarget

__all__ = [
    "AWS_OPTIONS",
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "POLICY_ENV",
    "RUN_OPTIONS",
    "CommandGroup",
    "Handler",
    "Parser",
    "ProgressBar",
    "Subcommands",
    "UsageError",
    "add_apply_options",
    "build_cli_targets",
    "common_parser",
    "confirm",
    "deprecated",
    "emit",
    "err_stream",
    "format_duration",
    "is_terminal",
    "load_policy",
    "option_parser",
    "parse_now",
    "progress",
    "table",
]

EXIT_OK = 0
"""Everything fine."""
EXIT_FAILURES = 1
"""The command ran and found failures (a failed backup, deletion or check)."""
EXIT_USAGE = 2
"""Bad usage or a bad policy file (one clear error line, never a traceback)."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C)."""

POLICY_ENV = "BACKUPPOLICY_FILE"
"""Environment variable with the policy file, when ``--policy`` is not given."""

Handler = Callable[[argparse.Namespace, TextIO], int]
"""A subcommand: ``handler(args, out) -> exit code``; it writes its output to *out*."""


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class Parser(argparse.ArgumentParser):
    """An argument parser that raises `UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise `UsageError`: `backuppolicy.cli.main.main` prints it and returns exit code 2."""
        raise UsageError(message)

    def format_help(self) -> str:
        """The help, starting with the command's one-line description, then the usage."""
        description = self.description
        if not description:
            return super().format_help()
        self.description = None
        try:
            rest = super().format_help()
        finally:
            self.description = description
        return f"{description}\n\n{rest}"


if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[Parser]  # noqa: SLF001 - argparse's own type for it
else:
    Subcommands = argparse._SubParsersAction  # noqa: SLF001


class CommandGroup(Protocol):
    """A command module of `backuppolicy.cli` (listed in ``main.COMMAND_MODULES``)."""

    def register(self, sub: Subcommands, common: Parser) -> dict[str, Handler]:
        """Add this group's subcommands to *sub* (``parents=[common]``); return their handlers."""
        ...


POLICY_OPTIONS = "policy"
"""`option_parser` group: ``--policy FILE`` and ``--json``."""
AWS_OPTIONS = "aws"
"""`option_parser` group: ``--profile``, ``--region`` and ``--endpoint-url`` (AWS CLI's names)."""
RUN_OPTIONS = "run"
"""`option_parser` group: ``--now TIME`` and ``--target NAME``."""


def option_parser(*groups: str) -> Parser:
    """A parent parser with the shared options of *groups* (`POLICY_OPTIONS`, `AWS_OPTIONS`, ...).

    A command takes only the options that mean something to it: ``validate`` reads a file and
    takes ``option_parser(POLICY_OPTIONS)``, so ``validate --now ...`` is a usage error (exit 2)
    rather than silently ignored. `common_parser` is every group.
    """
    unknown = sorted(set(groups) - {POLICY_OPTIONS, AWS_OPTIONS, RUN_OPTIONS})
    if unknown:
        raise ValueError(f"option_parser: unknown option group {unknown[0]!r}")
    common = Parser(add_help=False)
    if POLICY_OPTIONS in groups:
        common.add_argument(
            "--policy",
            metavar="FILE",
            help=f"policy file, YAML or TOML (default: ${POLICY_ENV})",
        )
        common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    if AWS_OPTIONS in groups:
        common.add_argument(
            "--profile",
            metavar="NAME",
            help="AWS profile of ~/.aws/config or ~/.aws/credentials (default: $AWS_PROFILE)",
        )
        common.add_argument(
            "--region", help="AWS region for targets whose settings name none (AWS CLI's --region)"
        )
        common.add_argument(
            "--endpoint-url", help="AWS endpoint for every client (moto server, LocalStack)"
        )
    if RUN_OPTIONS in groups:
        common.add_argument(
            "--now", metavar="TIME", help="run as of this ISO 8601 time (default: now)"
        )
        common.add_argument(
            "--target", action="append", metavar="NAME", help="only this target (repeatable)"
        )
    return common


def common_parser() -> Parser:
    """The parent parser of the commands that run against a policy's targets: every option."""
    return option_parser(POLICY_OPTIONS, AWS_OPTIONS, RUN_OPTIONS)


def add_apply_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--apply`` and ``--yes`` for a destructive command: a dry run unless ``--apply``.

    *what* says what ``--apply`` does (``"delete the points"``). With ``--apply`` the command
    asks for confirmation on a terminal (`confirm`); ``--yes`` answers it, for scripts.
    """
    parser.add_argument(
        "--apply", action="store_true", help=f"{what} (default: a dry run that changes nothing)"
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --apply: do not ask for confirmation"
    )


def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask *question* on the terminal unless ``--yes``; `UsageError` when not confirmed.

    Without a terminal on stdin (cron, CI) nobody can answer: that is a `UsageError` asking
    for ``--yes``, so an unattended ``--apply`` never waits and never guesses.
    """
    if getattr(args, "yes", False):
        return
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise UsageError("--apply asks for confirmation on a terminal; add --yes to run unattended")
    stream = err_stream(args)
    stream.write(f"{question} [y/N] ")
    stream.flush()
    answer = stdin.readline().strip().lower()
    if answer not in {"y", "yes"}:
        raise UsageError("not confirmed: nothing was changed")


def deprecated(args: argparse.Namespace, old: str, new: str) -> None:
    """Warn on stderr that option *old* is deprecated in favour of *new*."""
    err_stream(args).write(f"backuppolicy: warning: {old} is deprecated; use {new}\n")


def is_terminal(stream: TextIO | None) -> bool:
    """Whether *stream* is an interactive terminal (a closed or missing stream is not)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):  # closed, or no file behind it
        return False


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
) -> str:
    """A text table that fits the terminal (``$COLUMNS``), drawn by rich; see `render_table`."""
    from backuppolicy.core.tables import render_table  # noqa: PLC0415 - keep --help fast

    return render_table(headers, rows, title=title)


class ProgressBar:
    """A progress callback (``bar(label, done, total)``) drawing rich progress bars on stderr.

    It draws only when both stdout and stderr are terminals and *enabled* (not ``--json``): in a
    pipe, a log or under cron it prints nothing. Use it as a context manager (or call `close`)
    so the bar is finished before the command prints its result.
    """

    def __init__(self, stream: TextIO, *, enabled: bool, out: TextIO | None = None) -> None:
        self.stream = stream
        self.enabled = enabled and is_terminal(stream) and is_terminal(out or sys.stdout)
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        """Show *done* of *total* for the bar *label* (a new label starts a new bar)."""
        if not self.enabled or total <= 0:
            return
        if self._progress is None:
            from rich.console import Console  # noqa: PLC0415 - only on a terminal
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            console = Console(file=self.stream, force_terminal=True)
            self._progress = Progress(
                TextColumn("{task.description:<8}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._progress.add_task(label, total=total)
        self._progress.update(task, completed=done, total=total)

    def close(self) -> None:
        """Finish the bars (they disappear: the command's output says what was done)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def progress(args: argparse.Namespace, out: TextIO) -> ProgressBar:
    """The `ProgressBar` of this run: on stderr, drawn only on a terminal, never with ``--json``."""
    return ProgressBar(err_stream(args), enabled=not getattr(args, "json", False), out=out)


def err_stream(args: argparse.Namespace) -> TextIO:
    """The error stream of this run (``main(err=...)``), where progress bars go."""
    stream: TextIO = getattr(args, "err_stream", sys.stderr)
    return stream


def parse_now(text: str | None) -> datetime:
    """``--now``: an ISO 8601 time with a zone, or the current time when not given."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyError.for_field(
            "--now", "an ISO 8601 time like 2026-11-26T04:00:00Z", text
        ) from None
    if value.tzinfo is None:
        raise PolicyError.for_field("--now", "a time with a zone, e.g. ending in Z or +00:00", text)
    return ensure_aware(value, field="--now")


def load_policy(args: argparse.Namespace) -> Policy:
    """The policy of ``--policy`` or ``$BACKUPPOLICY_FILE``; `UsageError` when neither is set."""
    from backuppolicy.core.policy import Policy  # noqa: PLC0415 - keep --help fast

    path = args.policy or os.environ.get(POLICY_ENV)
    if not path:
        raise UsageError(f"--policy FILE is required (or set {POLICY_ENV})")
    return Policy.from_file(Path(path))


def build_cli_targets(args: argparse.Namespace, policy: Policy) -> dict[str, BackupTarget]:
    """The policy's targets, as ``--profile``, ``--region``, ``--endpoint-url`` and ``--target`` ask.

    ``--profile`` makes one session of that profile for every AWS target (an unknown profile
    is a `PolicyError` naming it, exit 2); without it the default session (``$AWS_PROFILE``).
    """
    from backuppolicy.workflows.backups import build_targets  # noqa: PLC0415 - keep --help fast

    session = None
    if getattr(args, "profile", None):
        from backuppolicy.aws.discovery import default_session  # noqa: PLC0415 - boto3 on demand

        session = default_session(profile=args.profile, region=args.region)
    return build_targets(
        policy,
        session=session,
        endpoint_url=args.endpoint_url,
        region=args.region,
        only=args.target or None,
    )


def emit(args: argparse.Namespace, data: object, text: str, out: TextIO) -> None:
    """Write *data* as JSON (``--json``) or *text* to *out*, ending in one newline."""
    if args.json:
        out.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        out.write(text.rstrip("\n") + "\n")
