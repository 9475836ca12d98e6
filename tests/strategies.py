"""Hypothesis strategies for the pure core: recovery points, lists of them, retention rules.

Other helpers may append strategies at the end of this file; keep what is here stable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from backuppolicy import LegalHold, RecoveryPoint, Status
from backuppolicy.core.retention import (
    AnyOf,
    KeepDaily,
    KeepHourly,
    KeepLast,
    KeepMonthly,
    KeepTags,
    KeepWeekly,
    KeepWithin,
    KeepYearly,
    MaxAge,
    RetentionRule,
)

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
"""The `now` every property plans for."""

TARGETS = ("orders-db", "assets", "web-1")
HOLD = LegalHold(reason="litigation", reference="case-17")

# Offsets from NOW, in minutes: mostly the past two years, some in the future (clock
# skew), and a small set of fixed values so that equal timestamps are common.
_offsets = st.one_of(
    st.integers(min_value=-2 * 366 * 24 * 60, max_value=2 * 60),
    st.sampled_from([-60, -24 * 60, -35 * 24 * 60, -7 * 24 * 60, 0]),
)


_statuses = st.sampled_from([Status.COMPLETED] * 4 + list(Status))
_tags = st.sampled_from([{}, {}, {"keep": ""}, {"env": "prod"}, {"legal": "", "env": "dev"}])


@st.composite
def recovery_points(draw: st.DrawFn, *, point_id: str | None = None) -> RecoveryPoint:
    """One recovery point of one of a few targets, with varied status, tags, hold, ownership.

    About one point in ten is under legal hold, one in ten unmanaged, a third not completed.
    """
    flags = draw(st.integers(min_value=0, max_value=99))
    return RecoveryPoint(
        id=point_id or draw(st.text("abcdef0123456789", min_size=1, max_size=8)),
        target=draw(st.sampled_from(TARGETS)),
        created_at=NOW + timedelta(minutes=draw(_offsets), microseconds=flags % 2),
        status=draw(_statuses),
        tags=draw(_tags),
        legal_hold=HOLD if flags % 10 == 1 else None,
        managed=flags // 10 != 1,
    )


@st.composite
def point_lists(draw: st.DrawFn, *, max_size: int = 24) -> list[RecoveryPoint]:
    """A list of points with unique ids ("p000", "p001", ...), in arbitrary order."""
    size = draw(st.integers(min_value=0, max_value=max_size))
    return [draw(recovery_points(point_id=f"p{index:03d}")) for index in range(size)]


_counts = st.one_of(st.integers(min_value=1, max_value=8), st.just(-1))
_durations = st.sampled_from(["1h", "1d", "7d", "35d", "1m", "2m14d", "1y"])

simple_rules: st.SearchStrategy[RetentionRule] = st.one_of(
    st.builds(KeepLast, _counts),
    st.builds(KeepHourly, _counts),
    st.builds(KeepDaily, _counts),
    st.builds(KeepWeekly, _counts),
    st.builds(KeepMonthly, _counts),
    st.builds(KeepYearly, _counts),
    st.builds(MaxAge, _durations),
    st.builds(KeepWithin, _durations),
    st.builds(
        KeepWithin, _durations, per=st.sampled_from(["hour", "day", "week", "month", "year"])
    ),
    st.builds(KeepTags, st.sampled_from([["keep"], {"env": "prod"}, ["legal", "env"]])),
)
"""Any single built-in rule with small parameters."""

retention_rules: st.SearchStrategy[RetentionRule] = st.one_of(
    simple_rules,
    st.lists(simple_rules, min_size=1, max_size=4).map(lambda rules: AnyOf(*rules)),
)
"""A single rule or a union of up to four."""

time_zones = st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Kolkata"])
"""Policy time zones, with and without DST, one with a half-hour offset."""


@st.composite
def listed_point_lists(draw: st.DrawFn, *, max_size: int = 24) -> list[RecoveryPoint]:
    """Points of `point_lists`, some with the backend's `ordinal` (as S3 versions have).

    Times come from a handful of values, so ties are common; ordinals are unique per target
    and drawn independently of the ids, so the backend's order often contradicts the ids'.
    """
    points = draw(point_lists(max_size=max_size))
    ordinals = draw(st.permutations(range(len(points))))
    listed = draw(st.lists(st.booleans(), min_size=len(points), max_size=len(points)))
    times = draw(
        st.lists(st.sampled_from([0, 0, -1, -60]), min_size=len(points), max_size=len(points))
    )
    return [
        p.evolve(
            created_at=NOW + timedelta(minutes=minutes) if has else p.created_at,
            ordinal=ordinal if has else None,
        )
        for p, ordinal, has, minutes in zip(points, ordinals, listed, times, strict=True)
    ]
