"""``backuppolicy backup``, ``prune`` and ``holds``: take, expire and hold recovery points.

* ``backup``: run the due backups and tier copies (exit 1 when one failed); with
  ``--reason`` a manual backup of each ``--target``.
* ``prune``: plan the retention and print it; delete only with ``--apply`` (exit 1 when a
  deletion or a listing failed).
* ``holds``: list the points under legal hold, or ``--place``/``--release`` one.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from backuppolicy.cli._common import (
    EXIT_FAILURES,
    EXIT_OK,
    Handler,
    Parser,
    ProgressBar,
    Subcommands,
    UsageError,
    build_cli_targets,
    emit,
    err_stream,
    load_policy,
    parse_now,
)
from backuppolicy.core.exceptions import PolicyError

__all__ = ["register"]


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``backup``, ``prune`` and ``holds`` to the ``backuppolicy`` parser; return handlers."""
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
    return {"backup": _cmd_backup, "prune": _cmd_prune, "holds": _cmd_holds}


def _cmd_backup(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    now = parse_now(args.now)
    targets = build_cli_targets(args, policy)
    if args.reason is not None:  # --reason "" is refused by backup_now, not a scheduled run
        if not args.target:
            raise UsageError("a manual backup (--reason) needs --target NAME")
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
        emit(args, data, text, out)
        return EXIT_OK
    report = workflows.backup(
        policy,
        now=now,
        targets=targets,
        only=args.target or None,
        force=args.force,
        progress=ProgressBar(err_stream(args), enabled=not args.json),
    )
    emit(args, report.to_dict(), report.summary(), out)
    return EXIT_OK if report.ok else EXIT_FAILURES


def _cmd_prune(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    now = parse_now(args.now)
    targets = build_cli_targets(args, policy)
    bar = ProgressBar(err_stream(args), enabled=not args.json)
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
    emit(args, data, "\n".join(lines), out)
    return EXIT_OK if report.ok and not errors else EXIT_FAILURES


def _cmd_holds(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    targets = build_cli_targets(args, policy)
    if args.place or args.release:
        point_id = args.place or args.release
        if not args.target or len(args.target) != 1:
            raise UsageError("--place/--release need exactly one --target NAME")
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
                raise UsageError("--place needs --reason TEXT (and usually --reference CASE)")
            point = workflows.place_hold(
                policy,
                point,
                reason=args.reason,
                reference=args.reference or "",
                now=parse_now(args.now),
                targets=targets,
            )
            verb = "placed"
        else:
            point = workflows.release_hold(policy, point, targets=targets)
            verb = "released"
        emit(
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
    emit(args, data, text or "no points under legal hold", out)
    return EXIT_OK
