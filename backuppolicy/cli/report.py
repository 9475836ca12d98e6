"""The ``report`` and ``testlog`` subcommands of the ``backuppolicy`` command line.

``backuppolicy report [--log URL] [--html FILE] [--csv FILE] [--json] [--failures] [--notify]``
runs the audit and prints the compliance table (exit 1 when a finding is not compliant).

``backuppolicy testlog [--log URL] [--since DATE] [--failures] [--overdue] [--last N]`` reviews
the backup testing log: recent entries, failures, or what the policy says is overdue (with
``--failures`` or ``--overdue``, exit 1 when there is any). Damage to the log (a changed,
removed, inserted or reordered entry) is reported after the review (on stderr with ``--json``)
and always exits 1.

The log is ``--log`` or ``$BACKUPPOLICY_TESTLOG``: a file path or ``s3://bucket/prefix``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Literal, TextIO, overload

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
)
from backuppolicy.core.exceptions import PolicyError

if TYPE_CHECKING:
    from backuppolicy.workflows._logformat import LogEntry
    from backuppolicy.workflows.testlog import TestLog

__all__ = ["LOG_ENV", "register"]

LOG_ENV = "BACKUPPOLICY_TESTLOG"
"""Environment variable with the testing log's location, when ``--log`` is not given."""


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``report`` and ``testlog`` to the subcommands *sub*; return their handlers."""
    report = sub.add_parser(
        "report", parents=[common], help="audit the policy: compliance of every clause"
    )
    _log_option(report)
    report.add_argument("--html", metavar="FILE", help="write a standalone HTML report")
    report.add_argument("--csv", metavar="FILE", help="write the findings as CSV")
    report.add_argument(
        "--failures", action="store_true", help="show only the findings that are not compliant"
    )
    report.add_argument(
        "--notify",
        action="store_true",
        help="send each non-compliant finding to the policy's notifications",
    )
    testlog = sub.add_parser("testlog", parents=[common], help="review the backup testing log")
    _log_option(testlog)
    testlog.add_argument(
        "--since", metavar="DATE", help="only checks from this date or ISO 8601 time on"
    )
    testlog.add_argument("--failures", action="store_true", help="only failed checks")
    testlog.add_argument(
        "--overdue",
        action="store_true",
        help="what the policy requires that the log does not show (needs --policy)",
    )
    testlog.add_argument(
        "--last", type=int, default=50, metavar="N", help="show the last N entries (default 50)"
    )
    return {"report": _cmd_report, "testlog": _cmd_testlog}


def _log_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log",
        metavar="URL",
        help=f"the testing log: a JSON-lines file or s3://bucket/prefix (default: ${LOG_ENV})",
    )


@overload
def _open_log(args: argparse.Namespace, *, required: Literal[True]) -> TestLog: ...
@overload
def _open_log(args: argparse.Namespace, *, required: bool) -> TestLog | None: ...
def _open_log(args: argparse.Namespace, *, required: bool) -> TestLog | None:
    from backuppolicy.workflows.testlog import TestLog  # noqa: PLC0415 - keep --help fast

    url = args.log or os.environ.get(LOG_ENV)
    if not url:
        if required:
            raise UsageError(f"--log FILE|s3://bucket/prefix is required (or set {LOG_ENV})")
        return None
    options: dict[str, str | None] = {}
    if str(url).startswith("s3://"):
        options = {"endpoint_url": args.endpoint_url, "region": args.region}
    return TestLog.open(url, **options)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
    except ValueError:
        pass
    try:
        return parse_now(text)
    except PolicyError:
        raise PolicyError.for_field(
            "--since", "a date like 2026-10-01 or a time like 2026-10-01T00:00:00Z", text
        ) from None


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows._audit import audit  # noqa: PLC0415

    policy = load_policy(args)
    now = parse_now(args.now)
    targets = build_cli_targets(args, policy)
    report = audit(
        policy,
        now=now,
        targets=targets,
        log=_open_log(args, required=False),
        notifiers=None if args.notify else [],
    )
    notes: list[str] = []
    if args.html:
        report.to_html(args.html)
        notes.append(f"HTML report written to {args.html}")
    if args.csv:
        report.to_csv(args.csv)
        notes.append(f"CSV written to {args.csv}")
    text = "\n".join([report.summary(failures_only=args.failures), *notes])
    emit(args, report.to_dict(), text, out)
    return EXIT_OK if report.ok else EXIT_FAILURES


_ENTRY_HEADERS = ("checked at", "target", "tier", "check", "status", "point", "ran by", "details")


def _entry_row(entry: LogEntry) -> tuple[str, ...]:
    return (
        entry.checked_at.isoformat(timespec="seconds"),
        entry.target,
        entry.tier or "-",
        entry.check,
        entry.status.value + (" (simulated)" if entry.result.simulated else ""),
        entry.point_id or "-",
        entry.ran_by,
        "; ".join(entry.result.issues) or entry.result.details,
    )


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return "\n".join(lines)


def _cmd_testlog(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows.testlog import CorruptLogLineWarning  # noqa: PLC0415 - keep --help fast

    log = _open_log(args, required=True)
    if args.last < 1:
        raise UsageError(f"--last: expected a number >= 1 (got {args.last})")
    with warnings.catch_warnings():  # damage is reported below, as damage
        warnings.simplefilter("ignore", CorruptLogLineWarning)
        code = _review(args, log, out)
        problems = log.damage()
    damaged = [p for p in problems if p.tampering]
    lines = [f"testing log damaged: {p}" for p in damaged]
    lines += [f"testing log note: {p}" for p in problems if not p.tampering]
    if lines:
        stream = args.err_stream if args.json else out
        stream.write("".join(f"{line}\n" for line in lines))
    return EXIT_FAILURES if damaged else code


def _review(args: argparse.Namespace, log: TestLog, out: TextIO) -> int:
    since = _since(args.since)
    if args.overdue:
        policy = load_policy(args)
        now = parse_now(args.now)
        findings = log.overdue(policy, now=now, since=since)
        text = "\n".join(
            f"{f.clause:<10} {f.kind.value:<22} {f.subject:<24} {f.detail}" for f in findings
        )
        emit(
            args,
            [f.to_dict() for f in findings],
            text or "nothing overdue: every required test and check is in the log",
            out,
        )
        return EXIT_FAILURES if findings else EXIT_OK
    entries = log.failures(since=since) if args.failures else list(log.entries(since=since))
    if args.target:
        entries = [e for e in entries if e.target in args.target]
    shown = entries[-args.last :]
    what = "failures" if args.failures else "entries"
    if shown:
        title = f"{len(shown)} of {len(entries)} {what} of {log.store!r}"
        text = f"{title}\n{_table(_ENTRY_HEADERS, [_entry_row(e) for e in shown])}"
    else:
        text = f"no {what} in {log.store!r}"
    emit(args, [e.to_dict() for e in shown], text, out)
    return EXIT_FAILURES if args.failures and entries else EXIT_OK
