"""``backuppolicy verify`` and ``backuppolicy restore-test``: prove the backups from the shell.

Both print one line per check (``--json``: the results as `CheckResult.to_dict`), append every
result to the testing log given with ``--log FILE`` (JSON lines), and exit 1 when a check failed
or is unproven (a restore test whose data no probe looked at). Results obtained against a
stand-in show ``(simulated)`` after their status.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from backuppolicy.cli._common import (
    EXIT_FAILURES,
    EXIT_OK,
    Handler,
    Parser,
    Subcommands,
    UsageError,
    build_cli_targets,
    emit,
    load_policy,
    parse_now,
    table,
)

if TYPE_CHECKING:
    import argparse

    from backuppolicy.checks.verify import Verifier
    from backuppolicy.core.policy import Policy
    from backuppolicy.core.results import CheckResult
    from backuppolicy.workflows.verify import ResultRecorder

__all__ = ["register"]


def _open_log(url: str | None, endpoint_url: str | None = None) -> ResultRecorder | None:
    """The testing log at *url* (a file path, ``s3://bucket/prefix`` or ``memory://``)."""
    if not url:
        return None
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415 - keep --help fast

    options = {"endpoint_url": endpoint_url} if url.startswith("s3://") and endpoint_url else {}
    return TestLog.open(url, **options)


def _checks(names: Sequence[str] | None, policy: Policy) -> list[Verifier]:
    from backuppolicy.workflows.verify import default_checks  # noqa: PLC0415 - keep --help fast

    checks = default_checks(policy)
    if not names:
        return checks
    known = {c.name: c for c in checks}
    unknown = [n for n in names if n not in known]
    if unknown:
        message = f"--check: expected one of {', '.join(sorted(known))} (got {unknown[0]!r})"
        raise UsageError(message)
    return [known[n] for n in dict.fromkeys(names)]


def _text(results: Sequence[CheckResult]) -> str:
    headers = ("status", "target", "check", "point", "tier", "details")
    ordered = sorted(results, key=lambda r: r.ok)  # stable: failures first
    rows = [
        (
            r.status.value + (" (simulated)" if r.simulated else ""),
            r.target,
            r.check,
            r.point_id or "-",
            r.tier or "-",
            r.details,
        )
        for r in ordered
    ]
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status.value] = counts.get(result.status.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no checks"
    title = f"{len(results)} check(s): {summary}"
    return f"{title}\n{table(headers, rows)}" if rows else title


def _finish(args: argparse.Namespace, results: Sequence[CheckResult], out: TextIO) -> int:
    emit(args, [r.to_dict() for r in results], _text(results), out)
    return EXIT_FAILURES if any(not r.ok for r in results) else EXIT_OK


def _cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows.verify import run_checks  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    checks = _checks(args.check, policy)
    targets = build_cli_targets(args, policy)
    if args.enforce or args.enforce_dry_run:
        from backuppolicy.workflows.verify import enforce_settings  # noqa: PLC0415

        changes = enforce_settings(
            policy, targets=targets, only=args.target or None, apply=args.enforce
        )
        lines = [c.describe() for c in changes] or ["settings already match the policy"]
        print("\n".join(lines), file=sys.stderr if args.json else out)
    results = run_checks(
        policy,
        now=parse_now(args.now),
        targets=targets,
        checks=checks,
        only=args.target or None,
        tiers=args.tier or None,
        all_points=args.all_points,
        log=_open_log(args.log, args.endpoint_url),
    )
    return _finish(args, results, out)


def _cmd_restore_test(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows.verify import restore_test  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    if args.application is not None:
        policy.targets_for(args.application)  # a clear error for an unknown application
    targets = build_cli_targets(args, policy)
    results = restore_test(
        policy,
        now=parse_now(args.now),
        application=args.application,
        targets=targets,
        only=args.target or None,
        log=_open_log(args.log, args.endpoint_url),
    )
    return _finish(args, results, out)


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``verify`` and ``restore-test`` to the ``backuppolicy`` parser."""
    verify = sub.add_parser(
        "verify",
        parents=[common],
        help="run verifications and integrity checks of the backups",
        description="Check the backups: verifications and integrity checks, one line per check.",
    )
    verify.add_argument(
        "--check", action="append", metavar="NAME", help="only this check (repeatable)"
    )
    verify.add_argument(
        "--tier", action="append", metavar="NAME", help="only points of this tier (repeatable)"
    )
    verify.add_argument(
        "--all-points",
        action="store_true",
        help="check every point, not only the newest of each tier",
    )
    verify.add_argument("--log", metavar="FILE", help="append the results to this testing log")
    enforce = verify.add_mutually_exclusive_group()
    enforce.add_argument(
        "--enforce",
        action="store_true",
        help="first set each bucket's encryption and public access block to the policy's",
    )
    enforce.add_argument(
        "--enforce-dry-run",
        action="store_true",
        help="print what --enforce would change, change nothing",
    )
    restore = sub.add_parser(
        "restore-test",
        parents=[common],
        help="restore the newest backups into the isolation profile, check them, tear down",
        description="Restore-test: restore the newest backups in isolation, check them, tear "
        "them down.",
    )
    restore.add_argument("--application", help="only the targets of this application")
    restore.add_argument("--log", metavar="FILE", help="append the results to this testing log")
    return {"verify": _cmd_verify, "restore-test": _cmd_restore_test}
