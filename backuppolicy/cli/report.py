"""The ``report`` and ``testlog`` subcommands of the ``backuppolicy`` command line.

``backuppolicy report [--log URL] [--since DATE] [--html FILE] [--csv FILE] [--json] [--failures]
[--notify] [-v]`` runs the audit and prints the compliance table, failures first (exit 1 when a
finding is not compliant). ``--since`` is the adoption date: periods that ended before it are
not audited. A ``--log`` file that does not exist is an error (exit 2), not an empty log.

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
from pathlib import Path
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
    table,
)
from backuppolicy.core.exceptions import PolicyError

if TYPE_CHECKING:
    from backuppolicy.report import ComplianceReport
    from backuppolicy.workflows._logformat import LogEntry
    from backuppolicy.workflows.testlog import TestLog

__all__ = ["LOG_ENV", "register"]

LOG_ENV = "BACKUPPOLICY_TESTLOG"
"""Environment variable with the testing log's location, when ``--log`` is not given."""


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``report`` and ``testlog`` to the subcommands *sub*; return their handlers."""
    report = sub.add_parser(
        "report",
        parents=[common],
        help="audit the policy: compliance of every clause",
        description="Audit the policy: is every clause complied with, and what is the evidence?",
    )
    _log_option(report)
    report.add_argument(
        "--since",
        metavar="DATE",
        help="adoption date: periods that ended before it are not audited (default: a year ago)",
    )
    report.add_argument(
        "-v", "--verbose", action="store_true", help="every evidence id, not only the first"
    )
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
    testlog = sub.add_parser(
        "testlog",
        parents=[common],
        help="review the backup testing log",
        description="Review the backup testing log: recent entries, failures, what is overdue.",
    )
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
    if "://" not in str(url) and not Path(url).is_file():  # read, never created here
        where = "--log" if args.log else f"${LOG_ENV}"
        raise UsageError(f"{where}: no testing log at {url} (the file does not exist)")
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
        since=_since(args.since),
    )
    notes: list[str] = []
    if args.html:
        report.to_html(args.html)
        notes.append(f"HTML report written to {args.html}")
    if args.csv:
        report.to_csv(args.csv)
        notes.append(f"CSV written to {args.csv}")
    text = "\n".join([_report_text(report, args), *notes])
    emit(args, report.to_dict(), text, out)
    return EXIT_OK if report.ok else EXIT_FAILURES


def _report_text(report: ComplianceReport, args: argparse.Namespace) -> str:
    """The findings as a table that fits the terminal: failures first, evidence shortened."""
    findings = sorted(report.findings, key=lambda f: f.compliant)  # stable: NOT OK first
    if args.failures:
        findings = [f for f in findings if not f.compliant]
    rows = [
        (
            "ok" if f.compliant else "NOT OK",
            str(f.clause),
            f.subject,
            f.tier or "-",
            _evidence(f.evidence, verbose=args.verbose),
            f.detail,
        )
        for f in findings
    ]
    if not rows:
        return f"{report.title()}\n(no findings to show)"
    headers = ("result", "clause", "subject", "tier", "evidence", "detail")
    return f"{report.title()}\n{table(headers, rows)}"


def _evidence(ids: tuple[str, ...], *, verbose: bool) -> str:
    """The first evidence id and how many more (all of them with ``-v``; all in ``--json``)."""
    if not ids:
        return "-"
    if verbose or len(ids) == 1:
        return ", ".join(ids)
    return f"{ids[0]} +{len(ids) - 1}"


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


def _cmd_testlog(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy.workflows.testlog import CorruptLogLineWarning  # noqa: PLC0415 - keep --help fast

    if args.last < 1:
        raise UsageError(f"--last: expected a number >= 1 (got {args.last})")
    _since(args.since)  # a bad --since before a missing log: the options first
    log = _open_log(args, required=True)
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
        text = f"{title}\n{table(_ENTRY_HEADERS, [_entry_row(e) for e in shown])}"
    else:
        text = f"no {what} in {log.store!r}"
    emit(args, [e.to_dict() for e in shown], text, out)
    return EXIT_FAILURES if args.failures and entries else EXIT_OK
