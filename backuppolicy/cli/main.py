"""The ``backuppolicy`` command line: a thin layer over the library.

Exit codes scripts can rely on: 0 everything fine; 1 the command ran and found failures
(a failed backup, a failed deletion, a failed check); 2 bad usage or a bad policy file (one
clear error line, never a traceback). ``--json`` prints machine-readable output on stdout.
Progress bars go to stderr and only when it is a terminal.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from backuppolicy.core.exceptions import BackendError, BackupPolicyError, PolicyError
from backuppolicy.core.model import ensure_aware

__all__ = [
    "EXIT_FAILURES",
    "EXIT_OK",
    "EXIT_USAGE",
    "ProgressBar",
    "UsageError",
    "build_cli_targets",
    "emit",
    "load_policy",
    "main",
    "parse_now",
]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
_DEFAULT_POLICY_ENV = "BACKUPPOLICY_FILE"
_DEBUG_ENV = "BACKUPPOLICY_DEBUG"


class _UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise _UsageError(message)


class _Bar:
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


def _err(args: argparse.Namespace) -> TextIO:
    """The error stream of this run (``main(err=...)``), where progress bars go."""
    stream: TextIO = getattr(args, "err_stream", sys.stderr)
    return stream


def _now(text: str | None) -> datetime:
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


def _policy(args: argparse.Namespace) -> Any:
    from backuppolicy.core.policy import Policy  # noqa: PLC0415 - keep --help fast

    path = args.policy or os.environ.get(_DEFAULT_POLICY_ENV)
    if not path:
        raise _UsageError(f"--policy FILE is required (or set {_DEFAULT_POLICY_ENV})")
    return Policy.from_file(Path(path))


def _targets(args: argparse.Namespace, policy: Any) -> Any:
    from backuppolicy.workflows.backups import build_targets  # noqa: PLC0415

    return build_targets(
        policy,
        endpoint_url=args.endpoint_url,
        region=args.region,
        only=args.target or None,
    )


def _emit(args: argparse.Namespace, data: Any, text: str, out: TextIO) -> None:
    if args.json:
        out.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        out.write(text.rstrip("\n") + "\n")


# --------------------------------------------------------------------------------------------
# Commands


def _cmd_doc(args: argparse.Namespace, out: TextIO) -> int:
    policy = _policy(args)
    if args.json:
        _emit(args, policy.to_dict(), "", out)
    else:
        out.write(policy.to_markdown())
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    policy = _policy(args)
    data = {
        "policy": policy.name,
        "targets": len(policy.targets),
        "tiers": len(policy.tiers),
        "ok": True,
    }
    _emit(args, data, f"{args.policy or os.environ.get(_DEFAULT_POLICY_ENV)}: ok ({policy!r})", out)
    return EXIT_OK


def _cmd_backup(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415

    policy = _policy(args)
    now = _now(args.now)
    targets = _targets(args, policy)
    if args.reason is not None:  # --reason "" is refused by backup_now, not a scheduled run
        if not args.target:
            raise _UsageError("a manual backup (--reason) needs --target NAME")
        points = [
            workflows.backup_now(
                policy,
                name,
                reason=args.reason,
                requested_by=args.requested_by or os.environ.get("USER"),
                now=now,
                targets=targets,
            )
            for name in args.target
        ]
        data = {
            "manual": [{"target": p.target, "id": p.id, "status": p.status.value} for p in points]
        }
        text = "\n".join(f"manual backup of {p.target}: {p.id} ({p.status.value})" for p in points)
        _emit(args, data, text, out)
        return EXIT_OK
    report = workflows.backup(
        policy,
        now=now,
        targets=targets,
        only=args.target or None,
        force=args.force,
        progress=_Bar(_err(args), enabled=not args.json),
    )
    _emit(args, report.to_dict(), report.summary(), out)
    return EXIT_OK if report.ok else EXIT_FAILURES


def _cmd_prune(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415

    policy = _policy(args)
    now = _now(args.now)
    targets = _targets(args, policy)
    bar = _Bar(_err(args), enabled=not args.json)
    plan = workflows.plan_retention(
        policy, now=now, targets=targets, only=args.target or None, progress=bar
    )
    report = workflows.apply(plan, dry_run=not args.apply, progress=bar)
    errors = dict(plan.errors)
    data = {"plan": plan.to_dict(), "apply": report.to_dict(), "listing_errors": errors}
    lines = [plan.summary(), "", report.summary()]
    if not args.apply:
        lines.append("\n(dry run: nothing was deleted; add --apply to delete)")
    lines += [
        f"error: listing {name} failed, nothing of it was deleted: {e}"
        for name, e in errors.items()
    ]
    _emit(args, data, "\n".join(lines), out)
    return EXIT_OK if report.ok and not errors else EXIT_FAILURES


def _cmd_holds(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415

    policy = _policy(args)
    targets = _targets(args, policy)
    if args.place or args.release:
        point_id = args.place or args.release
        if not args.target or len(args.target) != 1:
            raise _UsageError("--place/--release need exactly one --target NAME")
        target = targets[args.target[0]]
        point = next((p for p in target.list_points() if p.id == point_id), None)
        if point is None:
            raise PolicyError.for_field(
                "--place" if args.place else "--release",
                f"a point id of target {args.target[0]!r}",
                point_id,
            )
        if args.place:
            if not args.reason:
                raise _UsageError("--place needs --reason TEXT (and usually --reference CASE)")
            point = workflows.place_hold(
                policy,
                point,
                reason=args.reason,
                reference=args.reference or "",
                now=_now(args.now),
                targets=targets,
            )
            verb = "placed"
        else:
            point = workflows.release_hold(policy, point, targets=targets)
            verb = "released"
        _emit(
            args,
            {"id": point.id, "held": point.held},
            f"hold {verb} on {point.target}:{point.id}",
            out,
        )
        return EXIT_OK
    held = workflows.holds(policy, targets=targets)
    data = [
        {
            "target": p.target,
            "tier": p.tier,
            "id": p.id,
            "created_at": p.created_at.isoformat(),
            "reason": p.legal_hold.reason if p.legal_hold else "",
            "reference": p.legal_hold.reference if p.legal_hold else "",
        }
        for p in held
    ]
    text = "\n".join(
        f"{d['target']}  {d['tier']}  {d['id']}  {d['created_at']}  {d['reference']}  {d['reason']}"
        for d in data
    )
    _emit(args, data, text or "no points under legal hold", out)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import demo  # noqa: PLC0415

    report = Path(args.report) if args.report else None
    result = demo.run(days=args.days, out=None if args.json else out, report_path=report)
    if args.json:
        _emit(args, result, "", out)
    return EXIT_OK if result.get("ok") else EXIT_FAILURES


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "backup": _cmd_backup,
    "demo": _cmd_demo,
    "doc": _cmd_doc,
    "holds": _cmd_holds,
    "prune": _cmd_prune,
    "validate": _cmd_validate,
}


# Feature modules that add subcommands: each has ``register(sub, common) -> dict[name, handler]``
# where a handler is ``handler(args, out) -> exit code``. Shared helpers for them: `load_policy`,
# `build_cli_targets`, `emit`, `parse_now`, `ProgressBar`.
_COMMAND_MODULES: tuple[str, ...] = (
    "backuppolicy.cli.verify",
    "backuppolicy.cli.report",
    "backuppolicy.cli.recover",
    "backuppolicy.cli.export",
)

load_policy = _policy
build_cli_targets = _targets
emit = _emit
parse_now = _now
ProgressBar = _Bar
UsageError = _UsageError


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--policy",
        metavar="FILE",
        help=f"policy file, YAML or TOML (default: ${_DEFAULT_POLICY_ENV})",
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

    parser = _Parser(prog="backuppolicy", description="Run, prove and audit a backup policy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = sub.add_parser(
        "demo", parents=[common], help="run the embedded demo (no AWS account needed)"
    )
    demo.add_argument("--days", type=int, default=40, help="days to simulate (default 40)")
    demo.add_argument(
        "--report",
        metavar="PATH",
        help="write the HTML compliance report here (default: report.html in the run's own"
        " new directory)",
    )
    backup = sub.add_parser(
        "backup", parents=[common], help="run due backups and tier copies, or a manual backup"
    )
    backup.add_argument("--force", action="store_true", help="back up even when nothing is due")
    backup.add_argument("--reason", help="take a manual backup of --target for this reason")
    backup.add_argument("--requested-by", help="who asked for the manual backup (default: $USER)")
    prune = sub.add_parser(
        "prune", parents=[common], help="plan retention; delete only with --apply"
    )
    prune.add_argument("--apply", action="store_true", help="really delete (default: dry run)")
    holds = sub.add_parser("holds", parents=[common], help="list, place or release legal holds")
    holds.add_argument("--place", metavar="POINT", help="place a hold on this point id")
    holds.add_argument("--release", metavar="POINT", help="release the hold on this point id")
    holds.add_argument("--reason", help="why the point is held")
    holds.add_argument("--reference", help="case, ticket or regulation reference")
    sub.add_parser("doc", parents=[common], help="print the human policy document (Markdown)")
    sub.add_parser("validate", parents=[common], help="check a policy file")
    for module_name in dict.fromkeys(_COMMAND_MODULES):  # a module listed twice registers once
        module = importlib.import_module(module_name)
        _COMMANDS.update(module.register(sub, common))
    return parser


def main(  # noqa: PLR0911 - one exit code per kind of error, side by side
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (``backuppolicy`` calls `sys.exit` with it)."""
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(stdout)
            return EXIT_USAGE
        args.err_stream = stderr
        return _COMMANDS[args.command](args, stdout)
    except _UsageError as exc:
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
        return 130
    except Exception as exc:
        if os.environ.get(_DEBUG_ENV):
            raise
        stderr.write(
            f"backuppolicy: unexpected error: {type(exc).__name__}: {exc} "
            f"(set {_DEBUG_ENV}=1 for a traceback)\n"
        )
        return EXIT_FAILURES


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
