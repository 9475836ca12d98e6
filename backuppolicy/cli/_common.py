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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol, TextIO

from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware

if TYPE_CHECKING:
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.targets import BackupTarget

__all__ = [
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "POLICY_ENV",
    "CommandGroup",
    "Handler",
    "Parser",
    "ProgressBar",
    "Subcommands",
    "UsageError",
    "build_cli_targets",
    "common_parser",
    "emit",
    "err_stream",
    "load_policy",
    "parse_now",
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


if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[Parser]  # noqa: SLF001 - argparse's own type for it
else:
    Subcommands = argparse._SubParsersAction  # noqa: SLF001


class CommandGroup(Protocol):
    """A command module of `backuppolicy.cli` (listed in ``main.COMMAND_MODULES``)."""

    def register(self, sub: Subcommands, common: Parser) -> dict[str, Handler]:
        """Add this group's subcommands to *sub* (``parents=[common]``); return their handlers."""
        ...


def common_parser() -> Parser:
    """The parent parser of every subcommand: the options all of them take."""
    common = Parser(add_help=False)
    common.add_argument(
        "--policy",
        metavar="FILE",
        help=f"policy file, YAML or TOML (default: ${POLICY_ENV})",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument(
        "--endpoint-url", help="AWS endpoint for every client (moto server, LocalStack)"
    )
    common.add_argument("--region", help="AWS region for targets whose settings name none")
    common.add_argument("--now", metavar="TIME", help="run as of this ISO 8601 time (default: now)")
    common.add_argument(
        "--target", action="append", metavar="NAME", help="only this target (repeatable)"
    )
    return common


class ProgressBar:
    """A minimal progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = width * done // total
        self.stream.write(f"\r{label:<8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


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
    """The policy's targets, as ``--endpoint-url``, ``--region`` and ``--target`` ask."""
    from backuppolicy.workflows.backups import build_targets  # noqa: PLC0415 - keep --help fast

    return build_targets(
        policy,
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
