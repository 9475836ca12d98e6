"""AdaptiveLimit: the AIMD controller that sizes delete fan-outs (pure, no clock, no sleeps)."""

from __future__ import annotations

import threading

import pytest

from backuppolicy.core import concurrency
from backuppolicy.core.concurrency import AdaptiveLimit, note_throttled, shared_limit
from backuppolicy.core.exceptions import PolicyError


def _clean(limit: AdaptiveLimit, n: int) -> None:
    for _ in range(n):
        with limit.slot():
            pass


def _throttled_once(limit: AdaptiveLimit) -> None:
    with limit.slot():
        note_throttled()


def test_slow_start_adds_one_per_clean_completion_up_to_the_cap() -> None:
    """From 8, every clean completion adds one until the cap; it never passes the cap."""
    limit = AdaptiveLimit(8, cap=32)
    _clean(limit, 10)
    assert limit.limit == 18
    _clean(limit, 100)
    assert (limit.limit, limit.peak, limit.cuts) == (32, 32, 0)


def test_throttling_halves_the_limit() -> None:
    """A throttled slot halves the limit, and the slot does not count as clean."""
    limit = AdaptiveLimit(8, cap=32)
    _clean(limit, 8)
    assert limit.limit == 16
    _throttled_once(limit)
    assert (limit.limit, limit.cuts, limit.throttles) == (8, 1, 1)


def test_after_a_cut_growth_is_additive() -> None:
    """After a cut the limit grows by one per window of `limit` clean completions (not per completion)."""
    limit = AdaptiveLimit(16, cap=32)
    _throttled_once(limit)
    assert limit.limit == 8
    _clean(limit, 7)
    assert limit.limit == 8
    _clean(limit, 1)
    assert limit.limit == 9
    _clean(limit, 9)
    assert limit.limit == 10


def test_a_burst_of_throttling_cuts_once() -> None:
    """Slots in flight when the limit was cut count as the same congestion event."""
    limit = AdaptiveLimit(8, cap=32)
    slots = [limit.acquire() for _ in range(8)]
    for slot in slots:  # all eight were in flight when the first throttling came back
        slot.note_throttled()
    for slot in slots:
        limit.release(slot)
    assert (limit.limit, limit.cuts, limit.throttles) == (4, 1, 8)
    _throttled_once(limit)  # admitted after the cut: a new event
    assert (limit.limit, limit.cuts) == (2, 2)


def test_the_limit_never_goes_below_the_floor() -> None:
    """Halving stops at the floor (1 by default)."""
    limit = AdaptiveLimit(4, cap=8)
    for _ in range(5):
        _throttled_once(limit)
    assert limit.limit == 1
    floored = AdaptiveLimit(4, floor=3, cap=8)
    _throttled_once(floored)
    _throttled_once(floored)
    assert floored.limit == 3


def test_a_failed_slot_neither_grows_nor_cuts() -> None:
    """A block that raises another error leaves the limit as it was and re-raises."""
    limit = AdaptiveLimit(4, cap=8)
    with pytest.raises(KeyError), limit.slot():
        raise KeyError("boom")
    assert (limit.limit, limit.in_flight, limit.cuts) == (4, 0, 0)


def test_note_throttled_outside_a_slot_does_nothing() -> None:
    """A throttled call outside any fan-out touches no limit; a nested slot is restored after."""
    limit = AdaptiveLimit(4, cap=8)
    note_throttled()
    assert limit.throttles == 0
    other = AdaptiveLimit(4, cap=8)
    with limit.slot():
        with other.slot():
            pass
        note_throttled()  # back in the outer slot
    assert (limit.throttles, other.throttles) == (1, 0)


def test_slots_in_use_never_exceed_the_limit() -> None:
    """32 threads compete for a limit of 3: at most 3 are inside at any moment."""
    limit = AdaptiveLimit(3, floor=3, cap=3)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with limit.slot():
            with lock:
                inside += 1
                most = max(most, inside)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= most <= 3
    assert limit.in_flight == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": True}, "initial"),
        ({"floor": 0}, "floor"),
        ({"cap": "32"}, "cap"),
        ({"initial": 40, "cap": 32}, "initial"),
        ({"initial": 2, "floor": 4}, "initial"),
    ],
)
def test_bad_bounds_name_the_field(kwargs: dict[str, object], field: str) -> None:
    """Bounds that are not integers with floor <= initial <= cap raise a PolicyError naming the field."""
    with pytest.raises(PolicyError, match=rf"^{field}: expected"):
        AdaptiveLimit(**kwargs)  # type: ignore[arg-type]


def test_shared_limit_is_one_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every caller asking for the same key gets the same limit; other keys get their own."""
    monkeypatch.setattr(concurrency, "_SHARED", {})
    rds_east = shared_limit(("aws", "rds", "us-east-1"))
    assert shared_limit(("aws", "rds", "us-east-1")) is rds_east
    assert shared_limit(("aws", "rds", "eu-west-1")) is not rds_east
    assert (rds_east.limit, rds_east.cap) == (8, 32)
