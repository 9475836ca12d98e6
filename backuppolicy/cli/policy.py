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
    Handler,
    Parser,
    Subcommands,
    emit,
    load_policy,
)

__all__ = ["register"]


def register(sub: Subcommands, common: Parser) -> dict[str, Handler]:
    """Add ``doc`` and ``validate`` to the ``backuppolicy`` parser; return their handlers."""
    sub.add_parser("doc", parents=[common], help="print the human policy document (Markdown)")
    sub.add_parser("validate", parents=[common], help="check a policy file")
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
    emit(args, data, f"{args.policy or os.environ.get(POLICY_ENV)}: ok ({policy!r})", out)
    return EXIT_OK
