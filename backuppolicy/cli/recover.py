"""The ``restore`` and ``recover`` subcommands of the ``backuppolicy`` command line.

* ``backuppolicy restore --target NAME [--point ID | --at TIME] [--to DEST] [--swap] [--apply
  [--yes]]`` prints the restore plan (a dry run); ``--apply`` restores. A plan with
  destructive steps (in place, swap, detaching volumes) asks for confirmation first; ``--yes``
  answers it. The old ``--dry-run`` (now the default) and ``--yes`` alone (now ``--apply
  --yes``) still work, with a deprecation warning.
* ``backuppolicy recover --plan FILE [--rehearse] [--apply [--yes]] [--state FILE]
  [--markdown]`` rehearses a recovery plan (a drill into the isolation profile), prints its
  runbook, or runs it for real (``--apply``, after a confirmation), resumably with ``--state``.

Exit codes: 0 done (or a dry run); 1 a step or a verification failed, or a recovery plan was
neither rehearsed nor applied; 2 bad usage, a bad policy or plan file, or a destructive run
that was not confirmed (nothing was changed).
"""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from backuppolicy.cli._common import (
    AWS_OPTIONS,
    EXIT_FAILURES,
    EXIT_OK,
    POLICY_ENV,
    POLICY_OPTIONS,
    RUN_OPTIONS,
    Handler,
    Parser,
    Subcommands,
    UsageError,
    add_apply_options,
    build_cli_targets,
    confirm,
    deprecated,
    emit,
    load_policy,
    option_parser,
    parse_now,
)
from backuppolicy.core.exceptions import PolicyError

if TYPE_CHECKING:
    from backuppolicy.workflows.testlog import TestLog

__all__ = ["register"]


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add the ``restore`` and ``recover`` parsers to *sub*; return their handlers by name."""
    restore = sub.add_parser(
        "restore",
        parents=[common],
        help="restore one target from a point or to a time (a dry run unless --apply)",
        description="Restore one target from a recovery point or to a time; a dry run unless "
        "--apply.",
    )
    which = restore.add_mutually_exclusive_group()
    which.add_argument("--point", metavar="ID", help="recovery point id (default: the newest)")
    which.add_argument("--at", metavar="TIME", help="restore to this ISO 8601 time instead")
    restore.add_argument(
        "--to",
        metavar="DEST",
        help="new DB identifier, s3://bucket/prefix or directory (default: next to the "
        "original for databases, in place for S3 and directories)",
    )
    restore.add_argument(
        "--swap", action="store_true", help="databases: rename the original aside, the restore in"
    )
    restore.add_argument("--attach-to", metavar="INSTANCE", help="volumes: attach to this instance")
    restore.add_argument(
        "--device", action="append", default=[], help="volumes: device name (repeatable)"
    )
    restore.add_argument(
        "--availability-zone", metavar="ZONE", help="volumes: where to create them"
    )
    restore.add_argument("--subnet-group", help="databases: DB subnet group")
    restore.add_argument(
        "--security-group", action="append", default=[], help="databases: security group"
    )
    restore.add_argument("--parameter-group", help="databases: DB parameter group")
    restore.add_argument("--instance-class", help="databases: DB instance class")
    add_apply_options(restore, "run the restore; destructive steps (!) ask first")
    restore.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)  # deprecated
    restore.add_argument("--log", metavar="URL", help="record the result in this testing log")

    recover = sub.add_parser(
        "recover",
        parents=[option_parser(POLICY_OPTIONS, AWS_OPTIONS, RUN_OPTIONS)],
        help="rehearse, print or run a recovery plan",
        description="Rehearse a recovery plan (a drill), print its runbook, or run it (--apply).",
    )
    recover.add_argument("--plan", metavar="FILE", help="the recovery plan (YAML)")
    recover.add_argument("--rehearse", action="store_true", help="drill into the isolation profile")
    add_apply_options(recover, "run the recovery for real")
    recover.add_argument("--state", metavar="FILE", help="state file: resume after a crash")
    recover.add_argument("--markdown", action="store_true", help="print the runbook (Markdown)")
    recover.add_argument("--log", metavar="URL", help="record the results in this testing log")
    return {"restore": _cmd_restore, "recover": _cmd_recover}


def _time(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyError.for_field(
            field, "an ISO 8601 time like 2026-11-26T04:00:00Z", text
        ) from None
    if value.tzinfo is None:
        raise PolicyError.for_field(field, "a time with a zone, e.g. ending in Z or +00:00", text)
    return value


def _log(url: str | None) -> TestLog | None:
    if url is None:
        return None
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415 - only when asked for

    return TestLog.open(url, ran_by=os.environ.get("USER", ""))


def _cmd_restore(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows._restore import plan_restore, restore  # noqa: PLC0415 - keep --help fast

    if not args.target or len(args.target) != 1:
        raise UsageError("restore needs exactly one --target NAME")
    apply = _apply(args)
    policy = load_policy(args)
    targets = build_cli_targets(args, policy)
    plan = plan_restore(
        policy,
        args.target[0],
        targets=targets,
        point=args.point,
        at=_time(args.at, "--at"),
        into=args.to,
        swap=args.swap,
        attach_to=args.attach_to,
        devices=args.device,
        availability_zone=args.availability_zone,
        subnet_group=args.subnet_group,
        security_group_ids=args.security_group,
        parameter_group=args.parameter_group,
        instance_class=args.instance_class,
        now=parse_now(args.now) if args.now else None,
    )
    if not apply:
        note = "dry run: nothing was changed; add --apply to restore"
        if plan.destructive:
            note += " (the steps marked ! are destructive: you will be asked, or add --yes)"
        emit(args, {"plan": plan.to_dict(), "done": False}, f"{plan.summary()}\n\n{note}", out)
        return EXIT_OK
    if plan.destructive:
        if not args.json:
            out.write(f"{plan.summary()}\n\n")
            out.flush()
        confirm(args, "Run the destructive steps (!) of this restore?")
    result = restore(plan, confirm=True, log=_log(args.log))
    emit(args, result.to_dict(), f"{plan.summary()}\n\n{result.summary()}", out)
    return EXIT_OK if result.ok else EXIT_FAILURES


def _apply(args: argparse.Namespace) -> bool:
    """``--apply``, with the old spellings still working: ``--dry-run``, and ``--yes`` alone."""
    if args.dry_run:
        if args.apply:
            raise UsageError("--dry-run and --apply exclude each other")
        deprecated(args, "--dry-run", "no flag: a dry run is the default")
        return False
    if args.yes and not args.apply:
        deprecated(args, "--yes without --apply", "--apply --yes")
        return True
    return bool(args.apply)


def _cmd_recover(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows.backups import build_targets  # noqa: PLC0415
    from backuppolicy.workflows.recovery import RecoveryPlan  # noqa: PLC0415 - keep --help fast

    if not args.plan:
        raise UsageError("recover needs --plan FILE")
    if args.yes and not args.apply and not args.rehearse:
        deprecated(args, "--yes without --apply", "--apply --yes")
        args.apply = True
    if args.rehearse and args.apply:
        raise UsageError("--rehearse and --apply exclude each other: a drill changes nothing")
    policy = load_policy(args) if args.policy or os.environ.get(POLICY_ENV) else None
    plan = RecoveryPlan.from_file(Path(args.plan), policy=policy)
    if args.markdown:
        out.write(plan.to_markdown())
        return EXIT_OK
    if plan.policy is None:
        raise UsageError("the plan names no policy: pass --policy FILE")
    if not args.rehearse and not args.apply:
        order = " -> ".join("[" + ", ".join(stage) + "]" for stage in plan.stages())
        steps = len(plan.steps)
        text = (
            f"recovery plan {plan.name!r} of application {plan.application!r}: "
            f"{steps} step{'s' if steps != 1 else ''}\norder: {order}\n\nnothing was run: add "
            "--rehearse for a drill, or --apply to recover for real (review it with --markdown "
            "first)"
        )
        emit(args, {"plan": plan.to_dict(), "done": False}, text, out)
        return EXIT_FAILURES
    names = sorted({str(t) for s in plan.steps if (t := getattr(s.action, "target", None))})
    targets = build_targets(
        plan.policy, endpoint_url=args.endpoint_url, region=args.region, only=names
    )
    common: dict[str, Any] = {
        "now": parse_now(args.now) if args.now else None,
        "targets": targets,
        "log": _log(args.log),
        "out": None if args.json else out,
    }
    if args.rehearse:
        report = plan.rehearse(**common)
    else:
        confirm(args, f"Run recovery plan {plan.name!r} for real?")
        report = plan.execute(confirm=True, state_file=args.state, **common)
    if args.json:
        emit(args, report.to_dict(), "", out)
    return EXIT_OK if report.ok else EXIT_FAILURES
