"""Time the retention planner on 10^4, 10^5 and 10^6 recovery points across 100 targets.

Run: ``python benchmarks/retention.py [--n 10000 100000 1000000] [--targets 100]``.

Each target gets one point an hour going back from NOW (minute jitter, a few failed and
pending points, one in a thousand under legal hold), shuffled (``--in-order`` keeps the
order a backend would list them in, which is kinder to the CPU caches). The rule is the seed
policy plus GFS tiers: ``MaxAge(days=35) | KeepDaily(35) | KeepWeekly(8) |
KeepMonthly(12) | KeepYearly(5)``. For every size we print the wall time of ``plan``
(and its CPU time: on a shared machine that is the fairer number), its best CPU time of
``--repeat`` runs as a ratio to the floor's (plain Python grouping the same points by
target and sorting each group by ``created_at``, measured in the same run), the peak memory
it allocated (tracemalloc, measured in a second, separate run because tracing slows
Python down), plus the process's peak RSS (which includes the points themselves).

Also offers ``select(items, policy)`` for ``/work/shared/bench/bench_rotate.py --impl``
(``items`` = list of ``(name, datetime)``, ``policy`` = ``{"daily": 35, ...}``).
"""

from __future__ import annotations

import argparse
import gc
import operator
import random
import resource
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import backuppolicy as bp
from backuppolicy.core.retention import (
    AnyOf,
    KeepDaily,
    KeepHourly,
    KeepMonthly,
    KeepWeekly,
    KeepYearly,
    MaxAge,
    RetentionRule,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
RULE = MaxAge(days=35) | KeepDaily(35) | KeepWeekly(8) | KeepMonthly(12) | KeepYearly(5)
HOLD = bp.LegalHold(reason="litigation", reference="case-17")


def synthetic(
    n: int, targets: int, seed: int = 42, *, shuffle: bool = True
) -> list[bp.RecoveryPoint]:
    """*n* points spread over *targets* targets, one an hour per target, shuffled."""
    rnd = random.Random(seed)
    per_target = n // targets
    points = []
    for t in range(targets):
        target = f"db-{t:03d}"
        for i in range(per_target):
            created = NOW - timedelta(hours=i, minutes=rnd.randrange(0, 50))
            roll = rnd.random()
            status = (
                bp.Status.FAILED
                if roll < 0.01
                else bp.Status.PENDING
                if i == 0 and roll < 0.5
                else bp.Status.COMPLETED
            )
            points.append(
                bp.RecoveryPoint(
                    id=f"{target}-{i:07d}",
                    target=target,
                    created_at=created,
                    status=status,
                    legal_hold=HOLD if roll > 0.999 else None,
                )
            )
    if shuffle:
        rnd.shuffle(points)
    return points


def floor(points: list[bp.RecoveryPoint]) -> None:
    """The floor: plain Python grouping the points by target, each group sorted by time."""
    groups: dict[str, list[bp.RecoveryPoint]] = {}
    for point in points:
        groups.setdefault(point.target, []).append(point)
    for members in groups.values():
        members.sort(key=operator.attrgetter("created_at"))


def _best_cpu(action: Callable[[], object], repeat: int) -> float:
    """The smallest CPU time of *repeat* runs of *action* (fairest on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        action()
        best = min(best, time.process_time() - start)
    return best


def run(n: int, targets: int, *, shuffle: bool = True, repeat: int = 3) -> None:
    """Plan *n* points: timed against the floor, then under tracemalloc; print one line."""
    points = synthetic(n, targets, shuffle=shuffle)
    floor_cpu = _best_cpu(lambda: floor(list(points)), repeat)
    plan_cpu = _best_cpu(lambda: RULE.plan(points, now=NOW), repeat)
    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    plan = RULE.plan(points, now=NOW)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    keep, delete = len(plan.keep), len(plan.delete)
    del plan
    gc.collect()
    tracemalloc.start()
    RULE.plan(points, now=NOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"n={n:>9,}  targets={targets}  plan {wall:6.3f} s (cpu {cpu:6.3f} s; best of "
        f"{repeat} {plan_cpu:6.3f} s = {plan_cpu / floor_cpu:4.2f}x the floor's {floor_cpu:6.3f} s)  "
        f"plan peak alloc {peak / 2**20:7.1f} MiB  process peak RSS {rss_mib:7.1f} MiB  "
        f"keep={keep:,} delete={delete:,}"
    )


_BENCH_RULES: dict[str, Callable[[int], RetentionRule]] = {
    "hourly": KeepHourly,
    "daily": KeepDaily,
    "weekly": KeepWeekly,
    "monthly": KeepMonthly,
    "yearly": KeepYearly,
}


def select(items: Iterable[tuple[str, datetime]], policy: dict[str, int]) -> list[str]:
    """Adapter for ``bench_rotate.py --impl``: names kept by the restic-style count rules.

    Naive datetimes are read as UTC. The floors of ``plan`` do not apply (pure rule).
    """
    rule = AnyOf(*(_BENCH_RULES[name](count) for name, count in policy.items()))
    points = [
        bp.RecoveryPoint(
            id=name,
            target="bench",
            created_at=when if when.tzinfo else when.replace(tzinfo=UTC),
        )
        for name, when in items
    ]
    newest = max(point.created_at for point in points)
    return list(rule.keep(points, now=newest))


def main() -> None:
    """Parse arguments and run every size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs for the best CPU times")
    parser.add_argument(
        "--in-order",
        action="store_true",
        help="pass points in listing order (by target, newest first) instead of shuffled",
    )
    args = parser.parse_args()
    print(f"rule: {RULE!r}  input: {'in listing order' if args.in_order else 'shuffled'}")
    for n in args.n:
        run(n, args.targets, shuffle=not args.in_order, repeat=args.repeat)


if __name__ == "__main__":
    main()
