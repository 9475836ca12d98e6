"""The ``backuppolicy`` command line: a thin layer over the library.

Exit codes scripts can rely on: 0 everything fine; 1 the command ran and found failures
(a failed backup, a failed deletion, a failed check); 2 bad usage or a bad policy file (one
clear error line, never a traceback). ``--json`` prints machine-readable output on stdout.
Progress bars go to stderr and only when it is a terminal.

This module builds the root parser, lets each command group of `COMMAND_MODULES` register its
subcommands, dispatches, and maps errors to exit codes. A new command group is a module in
`backuppolicy.cli` with ``register(sub, common) -> {name: handler}`` (see
`backuppolicy.cli._common`), added to `COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from backuppolicy.cli import backups, demo, export, policy, recover, report, run, verify
from backuppolicy.cli._common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandGroup,
    Handler,
    Parser,
    UsageError,
    common_parser,
)
from backuppolicy.core.exceptions import BackendError, BackupPolicyError, PolicyError

__all__ = ["COMMAND_MODULES", "main"]

_DEBUG_ENV = "BACKUPPOLICY_DEBUG"

COMMAND_MODULES: tuple[CommandGroup, ...] = (
    demo,
    run,
    backups,
    policy,
    verify,
    report,
    recover,
    export,
)
"""The command groups, in the order ``backuppolicy --help`` lists their subcommands."""


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The root parser with every command group registered, and the handlers by command."""
    common = common_parser()
    parser = Parser(prog="backuppolicy", description="Run, prove and audit a backup policy.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    handlers: dict[str, Handler] = {}
    for group in dict.fromkeys(COMMAND_MODULES):  # a module listed twice registers once
        handlers.update(group.register(sub, common))
    return parser, handlers


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("backuppolicy")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


@contextlib.contextmanager
def _aws_profile(profile: str | None) -> Iterator[None]:
    """``--profile`` for every AWS session the command makes, as ``$AWS_PROFILE`` (AWS CLI's way)."""
    if not profile:
        yield
        return
    before = os.environ.get("AWS_PROFILE")
    os.environ["AWS_PROFILE"] = profile
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("AWS_PROFILE", None)
        else:
            os.environ["AWS_PROFILE"] = before


def _quiet_stdout() -> None:
    """After a closed pipe (``backuppolicy demo | head -1``): send the rest of stdout nowhere.

    Python's own recipe (docs of `signal`, "Note on SIGPIPE"): without it the interpreter's
    final flush of stdout fails again and prints an error on the way out.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(  # noqa: PLR0911, C901 - one exit code per kind of error, side by side
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (``backuppolicy`` calls `sys.exit` with it)."""
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    parser, handlers = _parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            stdout.write(f"backuppolicy {_version()}\n")
            return EXIT_OK
        if args.command is None:
            parser.print_help(stdout)
            return EXIT_USAGE
        args.err_stream = stderr
        with _aws_profile(getattr(args, "profile", None)):
            code = handlers[args.command](args, stdout)
        stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        _quiet_stdout()
        return EXIT_FAILURES
    except UsageError as exc:
        stderr.write(f"backuppolicy: error: {exc}\n")
        return EXIT_USAGE
    except (
        BackendError
    ) as exc:  # before LookupError: a missing snapshot is a failure, not bad usage
        stderr.write(f"backuppolicy: error: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILURES
    except (PolicyError, LookupError) as exc:
        stderr.write(f"backuppolicy: error: {exc}\n")
        return EXIT_USAGE
    except BackupPolicyError as exc:
        stderr.write(f"backuppolicy: error: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILURES
    except KeyboardInterrupt:
        stderr.write("backuppolicy: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(_DEBUG_ENV):
            raise
        stderr.write(
            f"backuppolicy: unexpected error: {type(exc).__name__}: {exc} "
            f"(set {_DEBUG_ENV}=1 for a traceback)\n"
        )
        return EXIT_FAILURES
    return code


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
