"""A walk through the retention engine: the seed policy's 35 days, GFS tiers, holds and floors.

Run it: ``python examples/retention_walkthrough.py``. No cloud account needed: the
recovery points are made up, 60 days of daily 04:00 UTC backups of one database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import backuppolicy as bp

NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)


def daily_points(target: str, days: int) -> list[bp.RecoveryPoint]:
    """One completed snapshot a day at 04:00 UTC, the newest this morning."""
    first = NOW.replace(minute=0) - timedelta(days=days - 1)
    return [
        bp.RecoveryPoint(
            id=f"bp-{target}-{(first + timedelta(days=i)):%Y%m%d}",
            target=target,
            created_at=first + timedelta(days=i),
            kind="rds-snapshot",
        )
        for i in range(days)
    ]


def show(title: str, plan: bp.RetentionPlan) -> None:
    """Print what a plan keeps and deletes, with the first reason of each decision."""
    print(f"\n== {title}: keep {len(plan.keep)}, delete {len(plan.delete)}")
    for point in sorted(plan.keep, key=lambda p: p.created_at, reverse=True)[:3]:
        print(f"  keep   {point.id}  {', '.join(plan.reasons[point.id])}")
    print("  ...")
    for point in sorted(plan.delete, key=lambda p: p.created_at, reverse=True)[:3]:
        print(f"  delete {point.id}  {', '.join(plan.reasons[point.id])}")


def main() -> None:
    """Plan the seed policy, a GFS policy, and the seed policy with a legal hold."""
    points = daily_points("orders-db", 60)

    # Seed §2.1/2.2: keep backups for 35 days; older ones are deleted automatically.
    seed = bp.MaxAge(days=35)
    show("seed policy (35 days)", seed.plan(points, now=NOW))

    # Grandfather-father-son on top: 7 dailies, 4 weeklies, 6 monthlies.
    gfs = bp.MaxAge(days=35) | bp.KeepWeekly(8) | bp.KeepMonthly(6)
    show("35 days + 8 weekly + 6 monthly", gfs.plan(points, now=NOW))

    # Seed §2.2/2.3: a backup required for legal purposes is never deleted.
    hold = bp.LegalHold(reason="litigation", reference="case-17", since=NOW)
    held = [p.evolve(legal_hold=hold) if p.id.endswith("0930") else p for p in points]
    plan = seed.plan(held, now=NOW)
    show("seed policy with a legal hold", plan)
    kept_held = [p.id for p in plan.keep if p.held]
    print(f"  held and kept: {kept_held}")

    # The safety floor: even if every backup is old, the newest completed one stays.
    stale = daily_points("legacy-db", 3)
    later = NOW + timedelta(days=90)
    plan = seed.plan(stale, now=later)
    show("all backups older than 35 days", plan)


if __name__ == "__main__":
    main()
