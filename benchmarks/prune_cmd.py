"""backuppolicy's RDS snapshot pruning as a command for the peer harness (``../shared/bench``).

The harness's own ``bp_prune.py`` imports ``backuppolicy.retention``, which is now
``backuppolicy.core.retention``; this adapter does the same job with today's names::

    python benchmarks/prune_cmd.py --db {db} --maxage {maxage} [--workers N] [--policy bench]

It is what a user's prune job does: ``RdsInstance(db).list_points()`` -> ``MaxAge(days)``
plan -> ``delete_many(plan.delete)``. Without ``--workers`` the library's defaults apply
(adaptive: 8 deletes in flight at first, up to 32 while RDS does not throttle); with
``--workers N`` at most N at once and ``max_pool_connections=max(10, N)``, as the harness.
The endpoint comes from ``AWS_ENDPOINT_URL``; only snapshots tagged for ``--policy`` and
``--db`` are managed. Prints one JSON line with the counts and phase times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config

from backuppolicy.aws.rds import RdsInstance
from backuppolicy.core.retention import MaxAge


def main() -> int:
    """Parse the arguments, prune, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--maxage", type=int, required=True, help="days")
    parser.add_argument("--workers", type=int, help="fixed most concurrent deletes")
    parser.add_argument("--policy", default="bench")
    args = parser.parse_args()
    start = time.perf_counter()
    fixed: dict[str, Any] = {}
    if args.workers:
        fixed = {
            "max_workers": args.workers,
            "config": Config(max_pool_connections=max(10, args.workers)),
        }
    db = RdsInstance(
        args.db,
        policy=args.policy,
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        **fixed,
    )
    plan = MaxAge(days=args.maxage).plan(db.list_points(), now=datetime.now(UTC))
    planned = time.perf_counter()
    deleted = db.delete_many(plan.delete)
    done = time.perf_counter()
    limit = getattr(db, "delete_limit", None)  # absent before the adaptive limit
    peak = limit(plan.delete[0]).peak if limit is not None and plan.delete else None
    report = {
        "deleted": len(deleted),
        "kept": len(plan.keep),
        "list_and_plan_s": round(planned - start, 3),
        "delete_s": round(done - planned, 3),
        "peak_limit": peak,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
