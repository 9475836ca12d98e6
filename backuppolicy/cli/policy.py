"""``backuppolicy doc`` and ``backuppolicy validate``: read a policy file, touch no backend.

* ``doc``: the human policy document (Markdown); ``--json``: the policy as a dict.
* ``validate``: load the policy and say it is fine (exit 0), or print the one error (exit 2).
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from backuppolicy.cli._common import (
    EXIT_OK,
    POLICY_ENV,
    POLICY_OPTIONS,
    Handler,
    Parser,
    Subcommands,
    emit,
    load_policy,
    option_parser,
)

__all__ = ["register"]


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``doc`` and ``validate`` to the ``backuppolicy`` parser; return their handlers."""
    del common  # these read a file: no AWS options, no --now, no --target
    policy_only = option_parser(POLICY_OPTIONS)
    sub.add_parser(
        "doc",
        parents=[policy_only],
        help="print the human policy document (Markdown)",
        description="Print the policy as a document for people (Markdown); --json: as data.",
    )
    sub.add_parser(
        "validate",
        parents=[policy_only],
        help="check a policy file",
        description="Check a policy file: exit 0 when it is valid, else one error line (exit 2).",
    )
    return {"doc": _cmd_doc, "validate": _cmd_validate}


def _cmd_doc(args: argparse.Namespace, out: TextIO) -> int:
    policy = load_policy(args)
    if args.json:
        emit(args, policy.to_dict(), "", out)
    else:
        out.write(policy.to_markdown())
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    policy = load_policy(args)
    data = {
        "policy": policy.name,
        "targets": len(policy.targets),
        "tiers": len(policy.tiers),
        "ok": True,
    }
    targets, tiers = len(policy.targets), len(policy.tiers)
    text = (
        f"{args.policy or os.environ.get(POLICY_ENV)}: ok: policy {policy.name!r}, "
        f"{targets} target{'s' if targets != 1 else ''}, {tiers} tier{'s' if tiers != 1 else ''}"
    )
    emit(args, data, text, out)
    return EXIT_OK
