"""``backuppolicy demo``: run the embedded demo, no AWS account needed.

The demo simulates ``--days`` days of a policy against moto in-process, prints what happens
and writes an HTML compliance report; it exits 1 when the demo's own checks fail.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from backuppolicy.cli._common import EXIT_FAILURES, EXIT_OK, Handler, Parser, Subcommands, emit

__all__ = ["register"]


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``demo`` to the ``backuppolicy`` parser; return its handler."""
    del common  # the demo has its own world and clock: no --now, --target, AWS options
    what = "Run the embedded demo: a simulated policy against moto, no AWS account needed."
    demo = sub.add_parser(
        "demo", help="run the embedded demo (no AWS account needed)", description=what
    )
    demo.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    demo.add_argument("--days", type=int, default=40, help="days to simulate (default 40)")
    demo.add_argument(
        "--policy",
        metavar="FILE",
        help="run this policy file on the demo world instead of the seed policy (see "
        "'Try your policy on the demo world')",
    )
    demo.add_argument(
        "--report",
        metavar="PATH",
        help="write the HTML compliance report here (default: report.html in the run's own"
        " new directory)",
    )
    return {"demo": _cmd_demo}


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from backuppolicy import demo  # noqa: PLC0415 - keep --help fast

    report = Path(args.report) if args.report else None
    result = demo.run(
        days=args.days,
        out=None if args.json else out,
        report_path=report,
        policy=Path(args.policy) if args.policy else None,
    )
    if args.json:
        emit(args, result, "", out)
    return EXIT_OK if result.get("ok") else EXIT_FAILURES
