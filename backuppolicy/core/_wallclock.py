"""Time zones by name and the wall clock: the zone helpers `Cadence` and `Schedule` share.

One idea: map between instants and the naive wall-clock times of a zone, including the
gaps and repeats of daylight saving time. Private to `backuppolicy.core.schedule`.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from backuppolicy.core.exceptions import PolicyError

__all__ = [
    "TZ_EXPECTED",
    "did_you_mean",
    "gap_end",
    "resolve_wall",
    "tz_name",
    "wall_clock",
    "zone_by_name",
    "zone_info",
    "zone_names",
]

TZ_EXPECTED: Final = "an IANA time zone name like 'UTC' or 'Europe/London'"


@functools.cache
def zone_by_name(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.cache
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_info(value: str | tzinfo, field: str) -> ZoneInfo:
    """A `ZoneInfo` for a zone name (or a ZoneInfo, or `datetime.UTC`)."""
    if isinstance(value, ZoneInfo):
        return value
    if value is UTC:
        return zone_by_name("UTC")
    if isinstance(value, str) and value.strip():
        try:
            return zone_by_name(value.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    hint = did_you_mean(value, zone_names()) if isinstance(value, str) else ""
    raise PolicyError.for_field(field, TZ_EXPECTED, value, hint=hint)


def tz_name(value: str | tzinfo) -> str:
    return str(zone_info(value, "tz").key)


def wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time of *moment* in *zone*."""
    return moment.astimezone(zone).replace(tzinfo=None)


def gap_end(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the offset change between *before* and *after* (UTC), to the second."""
    offset = before.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return after.replace(microsecond=0)


def resolve_wall(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant at which the wall clock of *zone* reads *wall* (or after its gap).

    ``fold=0`` picks the first of two occurrences and, for a time skipped by DST,
    the instant the gap ends (for gaps that start at *wall*).
    """
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(str(value), list(choices), n=1)
    return f"Did you mean {matches[0]!r}?" if matches else ""
