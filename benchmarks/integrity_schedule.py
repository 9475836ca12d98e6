"""Time (and memory) to compute the daily integrity schedule: 100 targets x 35 points x 2 tiers.

Data: the seed's shape. Each target has 35 daily copies in tier ``local`` and 35 in tier
``offsite`` (7,000 copies), retention ``max_age: 35d``, yearly integrity checks (a window of
34 days); about half the copies have a recorded last check. The run computes
`integrity_slots_due` for ``--days`` consecutive days (checking what it returns, as a daily
job would) and prints the time per day, the copies due per day and the peak memory the
computation allocates (tracemalloc, measured on a separate pass so it does not slow the timing).

    python benchmarks/integrity_schedule.py
    python benchmarks/integrity_schedule.py --targets 1000 --days 10
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from backuppolicy import Policy, RecoveryPoint
from backuppolicy.core.integrity_schedule import integrity_slots_due

START = datetime(2026, 11, 26, 5, tzinfo=UTC)


def _policy(targets: int) -> Policy:
    return Policy.from_dict(
        {
            "name": "bench",
            "schedule": {"every": "day", "at": "04:00"},
            "retention": {"max_age": "35d"},
            "tiers": [
                {"name": "local", "every": "day"},
                {"name": "offsite", "every": "day", "location": {"region": "eu-west-1"}},
            ],
            "targets": [{"name": f"t{n:04d}", "kind": "testing:memory"} for n in range(targets)],
            "verification": {
                "integrity_check_every": "year",
                "integrity_covers_tiers": ["local", "offsite"],
            },
        }
    )


def _points(targets: int, per_tier: int, now: datetime) -> list[RecoveryPoint]:
    return [
        RecoveryPoint(
            id=f"t{t:04d}-{tier}-{d}",
            target=f"t{t:04d}",
            created_at=now - timedelta(days=d, hours=1),
            kind="memory-snapshot",
            tier=tier,
        )
        for t in range(targets)
        for tier in ("local", "offsite")
        for d in range(per_tier)
    ]


def main() -> None:
    """Parse the arguments, run the days, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--points", type=int, default=35, help="copies per target and tier")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    policy = _policy(args.targets)
    points = _points(args.targets, args.points, START)
    last = {(p.target, p.id): START - timedelta(days=3) for p in points[::2]}
    times: list[float] = []
    due_counts: list[int] = []
    for day in range(args.days):
        now = START + timedelta(days=day)
        started = time.perf_counter()
        due = integrity_slots_due(policy, points, now=now, last_checked=last)
        times.append(time.perf_counter() - started)
        due_counts.append(len(due))
        for slot in due:
            last[(slot.target, slot.point_id)] = now
    tracemalloc.start()
    integrity_slots_due(policy, points, now=START, last_checked=last)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"copies: {len(points)} ({args.targets} targets x {args.points} points x 2 tiers)")
    print(
        f"time per day: median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms over {args.days} days"
    )
    print(
        f"copies due per day: median {statistics.median(due_counts):.0f}, "
        f"min {min(due_counts)}, max {max(due_counts)} (first day {due_counts[0]})"
    )
    print(f"peak memory of one day's computation: {peak / 1024 / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
