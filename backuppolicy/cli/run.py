"""``backuppolicy run``: do whatever the policy says is due now; meant to be called every hour.

Exit codes (see `backuppolicy.workflows.unattended.run`):

* 0: the run went through and nothing failed (overdue findings alone do not fail it: they are
  in the digest and the audit);
* 1: a step failed (a backup, a copy, a deletion, an integrity check or a restore test);
* 2: bad usage or a bad policy file (no testing log given, an unknown field ...);
* 75 (``EX_TEMPFAIL``): another run holds the lease; nothing was done. Schedulers treat it as
  "try again later", and it is not a failure of the backups;
* 130: interrupted.

Unlike ``prune --apply``, ``run`` deletes expired points without asking and has no ``--apply``:
it is the unattended job that nobody is there to confirm, and the policy file it runs is the
confirmation. Each deletion still passes the safety rules of `backuppolicy.apply`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from backuppolicy.cli._common import (
    EXIT_FAILURES,
    EXIT_OK,
    Handler,
    Parser,
    Subcommands,
    build_cli_targets,
    emit,
    load_policy,
    parse_now,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["EXIT_LEASE_HELD", "register"]

EXIT_LEASE_HELD = 75
"""Another run holds the lease: this one did nothing (``EX_TEMPFAIL`` of sysexits.h)."""


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows.unattended import run  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    targets = build_cli_targets(args, policy)
    digest = run(
        policy,
        now=parse_now(args.now),
        log=args.log,
        targets=targets,
        heartbeat=False if args.no_heartbeat else None,
        endpoint_url=args.endpoint_url,
    )
    emit(args, digest.to_dict(), digest.summary(), out)
    if digest.held_by is not None:
        return EXIT_LEASE_HELD
    return EXIT_OK if digest.ok else EXIT_FAILURES


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``run`` to the ``backuppolicy`` parser."""
    parser = sub.add_parser(
        "run",
        parents=[common],
        help="do whatever is due now: backups, copies, pruning (without asking), checks, "
        "restore tests, audit",
        description=(
            "Do whatever the policy says is due now, once, under a lease; safe to call every "
            f"hour. Exit codes: 0 ok, 1 a step failed, 2 bad usage, {EXIT_LEASE_HELD} another "
            "run holds the lease (nothing done). It deletes expired points WITHOUT ASKING, by "
            "design: it is the unattended job (cron, systemd, Lambda) that nobody is there to "
            "answer, and the policy file is the confirmation. Every deletion still passes the "
            "safety rules (floors, holds, locks, newest good point); try `prune` (a dry run) to "
            "see what it would delete."
        ),
    )
    parser.add_argument(
        "--log",
        metavar="URL",
        help="the testing log: a file, s3://bucket/prefix (default: the policy's run.log)",
    )
    parser.add_argument(
        "--no-heartbeat", action="store_true", help="send no heartbeat ping for this run"
    )
    return {"run": _cmd_run}
