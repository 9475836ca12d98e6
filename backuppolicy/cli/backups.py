"""``backuppolicy backup``, ``prune`` and ``holds``: take, expire and hold recovery points.

* ``backup``: run the due backups and tier copies (exit 1 when one failed); with
  ``--reason`` a manual backup of each ``--target``.
* ``prune``: plan the retention and print it restic-style ("keep N points", "remove M
  points", with reasons); delete only with ``--apply``, after a confirmation (``--yes``
  answers it) (exit 1 when a deletion or a listing failed).
* ``holds``: list the points under legal hold, or ``--place``/``--release`` one. Releasing lets
  retention delete the point: it is a dry run unless ``--apply``, after a confirmation
  (``--yes`` answers it). Placing a hold deletes nothing and needs no confirmation.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from backuppolicy.cli._common import (
    EXIT_FAILURES,
    EXIT_OK,
    Handler,
    Parser,
    Subcommands,
    UsageError,
    add_apply_options,
    build_cli_targets,
    confirm,
    emit,
    format_duration,
    load_policy,
    parse_now,
    progress,
    table,
)
from backuppolicy.core.exceptions import PolicyError

if TYPE_CHECKING:
    from backuppolicy.core._planner import RetentionPlan
    from backuppolicy.core.model import RecoveryPoint
    from backuppolicy.workflows.backups import RunReport
    from backuppolicy.workflows.pruning import ApplyReport

__all__ = ["register"]


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``backup``, ``prune`` and ``holds`` to the ``backuppolicy`` parser; return handlers."""
    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="run due backups and tier copies, or a manual backup",
        description="Run the backups and tier copies that are due, or a manual backup (--reason).",
    )
    backup.add_argument("--force", action="store_true", help="back up even when nothing is due")
    backup.add_argument("--reason", help="take a manual backup of --target for this reason")
    backup.add_argument("--requested-by", help="who asked for the manual backup (default: $USER)")
    prune = sub.add_parser(
        "prune",
        parents=[common],
        help="plan retention; delete only with --apply",
        description="Apply the retention rules: list what is kept and what goes; a dry run "
        "unless --apply.",
    )
    add_apply_options(prune, "really delete the points listed under 'remove'")
    holds = sub.add_parser(
        "holds",
        parents=[common],
        help="list, place or release legal holds",
        description="List the points under legal hold, or place or release one.",
    )
    holds.add_argument("--place", metavar="POINT", help="place a hold on this point id")
    holds.add_argument("--release", metavar="POINT", help="release the hold on this point id")
    holds.add_argument("--reason", help="why the point is held")
    holds.add_argument("--reference", help="case, ticket or regulation reference")
    add_apply_options(holds, "with --release: really release the hold, after a confirmation")
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
    with progress(args, out) as bar:
        report = workflows.backup(
            policy,
            now=now,
            targets=targets,
            only=args.target or None,
            force=args.force,
            progress=bar,
        )
    emit(args, report.to_dict(), _backup_text(report), out)
    return EXIT_OK if report.ok else EXIT_FAILURES


def _backup_text(report: RunReport) -> str:
    """The run as a table, failures first; with a one-line title of counts."""
    runs = sorted(report.runs, key=lambda run: run.error is None)  # stable: failures first
    rows = [
        (
            run.target,
            run.point.id if run.point else "-",
            ", ".join(f"{c.tier}:{c.id}" for c in run.copies) or "-",
            format_duration(run.duration),
            f"FAILED: {run.error}" if run.error else (run.skipped or "ok"),
        )
        for run in runs
    ]
    title = f"backup of policy {report.policy!r} at {report.now.isoformat()}: {report.counts()}"
    if not rows:
        return title
    return f"{title}\n{table(('target', 'backup', 'copies', 'took', 'result'), rows)}"


def _cmd_prune(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import workflows  # noqa: PLC0415 - keep --help fast

    policy = load_policy(args)
    now = parse_now(args.now)
    targets = build_cli_targets(args, policy)
    with progress(args, out) as bar:
        plan = workflows.plan_retention(
            policy, now=now, targets=targets, only=args.target or None, progress=bar
        )
    if args.apply and plan.delete:
        confirm(args, f"Delete {len(plan.delete)} recovery point(s)?")
    with progress(args, out) as bar:
        report = workflows.apply(plan, dry_run=not args.apply, progress=bar)
    errors = dict(plan.errors)
    data = {"plan": plan.to_dict(), "apply": report.to_dict(), "listing_errors": errors}
    emit(args, data, _prune_text(plan, report, errors, applied=args.apply), out)
    return EXIT_OK if report.ok and not errors else EXIT_FAILURES


def _group(title: str, rows: Sequence[Sequence[str]], last: str) -> str:
    """One restic-style group: ``keep 3 points`` and its table (*last*: the reason column)."""
    return f"{title}\n{table(('target', 'tier', 'point', 'created', last), rows)}"


def _point_cells(point: RecoveryPoint) -> tuple[str, str, str, str]:
    created = point.created_at.strftime("%Y-%m-%d %H:%M")
    return (point.target, point.tier, point.id, created)


def _points(count: int) -> str:
    return f"{count} point{'s' if count != 1 else ''}"


def _prune_text(
    plan: RetentionPlan, report: ApplyReport, errors: dict[str, str], *, applied: bool
) -> str:
    """restic-style: "keep N points" and "remove M points", each with its reasons; no empty groups."""
    reasons = plan.reasons
    groups: list[str] = []
    if plan.keep:
        rows = [(*_point_cells(p), ", ".join(reasons.get(p.id, [])) or "-") for p in plan.keep]
        groups.append(_group(f"keep {_points(len(plan.keep))}", rows, "reasons"))
    by_action: dict[str, list[tuple[str, str, str, str, str]]] = {}
    for outcome in report.outcomes:
        why = outcome.reason or ", ".join(reasons.get(outcome.point.id, [])) or "-"
        by_action.setdefault(outcome.action, []).append((*_point_cells(outcome.point), why))
    titles = {
        "would delete": "remove",
        "deleted": "removed",
        "skipped": "kept after all (re-checked before deleting)",
        "failed": "FAILED to remove",
    }
    failed = by_action.pop("failed", [])
    if failed:  # failures first
        groups.insert(0, _group(f"FAILED to remove {_points(len(failed))}", failed, "error"))
    for action, rows in by_action.items():
        name = titles.get(action, action)
        column = "reason" if action != "skipped" else "why kept"
        groups.append(_group(f"{name} {_points(len(rows))}", rows, column))
    lines = [
        f"error: listing {name} failed, nothing of it was deleted: {error}"
        for name, error in errors.items()
    ]
    if not groups and not lines:
        lines.append("nothing to keep or remove")
    if not applied and plan.delete:
        lines.append("dry run: nothing was deleted; add --apply to delete")
    return "\n\n".join([*lines[: len(errors)], *groups, *lines[len(errors) :]])


def _hold_text(point: RecoveryPoint) -> str:
    hold = point.legal_hold
    if hold is None:
        return "no hold"
    return f"held for {hold.reason!r}" + (f", {hold.reference}" if hold.reference else "")


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
        elif not args.apply:  # releasing lets retention delete the point: a dry run first
            emit(
                args,
                {"id": point.id, "held": point.held, "dry_run": True},
                f"dry run: would release the hold on {point.target}:{point.id} "
                f"({_hold_text(point)}); add --apply to release it",
                out,
            )
            return EXIT_OK
        else:
            confirm(args, f"Release the hold on {point.target}:{point.id} ({_hold_text(point)})?")
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
    rows = [
        (p.target, p.tier, p.id, _point_cells(p)[3], d["reference"] or "-", d["reason"])
        for p, d in zip(held, data, strict=True)
    ]
    text = table(("target", "tier", "point", "created", "reference", "reason"), rows)
    emit(args, data, text if rows else "no points under legal hold", out)
    return EXIT_OK
