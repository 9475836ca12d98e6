"""The rolling spread of full backups: `rolling_slots` and `full_backups_due` (seed 1.5).

One idea: give each target one day of the period for its full backup, balanced, stable
and deterministic. Re-exported by `backuppolicy.core.schedule`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime, tzinfo

from backuppolicy.core._cadence import Cadence
from backuppolicy.core._wallclock import zone_info
from backuppolicy.core.exceptions import PolicyError
from backuppolicy.core.model import ensure_aware

__all__ = ["full_backups_due", "rolling_slots"]


def _slot_count(period: Cadence | str, slots: int | None) -> tuple[Cadence, int]:
    cadence = Cadence.coerce(period, path="period")
    if cadence is Cadence.HOUR:
        raise PolicyError.for_field("period", "a period of a day or longer", cadence.value)
    if slots is None:
        return cadence, cadence.min_days
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= cadence.min_days:
        expected = f"an integer from 1 to {cadence.min_days} (days in every {cadence.value})"
        raise PolicyError.for_field("slots", expected, slots)
    return cadence, slots


def _hash_key(name: str) -> tuple[bytes, str]:
    return hashlib.sha256(name.encode("utf-8")).digest(), name


def rolling_slots(
    targets: Iterable[str],
    *,
    period: Cadence | str = Cadence.WEEK,
    slots: int | None = None,
) -> dict[str, int]:
    """Give each target the day of the period on which its full backup runs (seed 1.5).

    Slot ``k`` is the ``k``-th day of the period (0 is its first day: Monday for
    a week, the 1st for a month, 1 January/April/July/October for a quarter,
    1 January for a year). By default there are as many slots as the shortest
    period has days (7, 28, 90, 365), so every slot exists in every period.

    Algorithm: sort the targets by the SHA-256 of their name (a fixed shuffle
    that depends on nothing else) and give the target of rank ``i`` among ``N``
    the slot ``i * slots // N``: consecutive ranks fill the slots in contiguous runs.

    * **Balanced:** the numbers of targets on any two slots differ by at most 1,
      and with ``N <= slots`` no two targets share a day.
    * **Stable:** adding (or removing) one target moves at most
      ``min(N, slots - 1)`` of the ``N`` existing targets: at most one per slot
      boundary, because each boundary ``k * N / slots`` shifts by less than one
      rank. When ``N >= slots`` a moved target moves by exactly one day.
    * **Deterministic:** the result depends only on the set of names.

    Example:
        >>> spread = rolling_slots(["orders-db", "web-config", "app-code", "assets"])
        >>> sorted(spread.values())
        [0, 1, 3, 5]

    Raises:
        PolicyError: A target is not a string or appears twice, the period is
            shorter than a day, or *slots* is out of range.
    """
    _, count = _slot_count(period, slots)
    names = list(targets)
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise PolicyError.for_field(f"targets[{index}]", "a target name (str)", name)
        if name in seen:
            raise PolicyError.for_field(f"targets[{index}]", "a name not listed before", name)
        seen.add(name)
    ordered = sorted(names, key=_hash_key)
    return {name: rank * count // len(ordered) for rank, name in enumerate(ordered)}


def full_backups_due(
    targets: Iterable[str],
    day: date | datetime,
    *,
    period: Cadence | str = Cadence.WEEK,
    slots: int | None = None,
    tz: str | tzinfo = "UTC",
) -> list[str]:
    """The targets whose rolling full backup falls on *day* (see `rolling_slots`), in input order.

    *day* is a date, or an aware datetime whose date is taken in *tz*. Days past
    the last slot (the 29th-31st of a month with 28 slots) have none.

    Example:
        >>> from datetime import date, timedelta
        >>> names = ["orders-db", "web-config", "app-code", "assets"]
        >>> monday = date(2026, 11, 23)
        >>> [full_backups_due(names, monday + timedelta(days=n)) for n in range(7)]
        [['orders-db'], ['web-config'], [], ['assets'], [], ['app-code'], []]

    Raises:
        PolicyError: As `rolling_slots`; or *day* is a naive datetime, or *tz* is unknown.
    """
    names = list(targets)
    cadence, _ = _slot_count(period, slots)
    if isinstance(day, datetime):
        day = ensure_aware(day, field="day").astimezone(zone_info(tz, "tz")).date()
    elif not isinstance(day, date):
        raise PolicyError.for_field("day", "a date or an aware datetime", day)
    index = (day - cadence.first_day(day)).days
    spread = rolling_slots(names, period=cadence, slots=slots)
    return [name for name in names if spread[name] == index]
