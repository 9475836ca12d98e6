"""Adaptive concurrency for fan-outs of API calls: grow while the service keeps up, halve on throttling.

`AdaptiveLimit` is an AIMD controller (the congestion control of TCP Reno, counted in
requests instead of packets) that also gates the work: `AdaptiveLimit.slot` blocks while
as many slots as the limit are in use. It starts at ``initial`` and

* **slow start**: below the threshold (at first: ``cap``), every clean completion adds one
  (the limit doubles per round of requests);
* **additive increase**: at or above the threshold, every ``limit`` clean completions add one;
* **multiplicative decrease**: a throttling answer inside a slot halves the limit (never
  below ``floor``) and sets the threshold to the halved value. The answers of requests that
  were already in flight when the limit was cut count as one event, so one burst of
  throttling halves the limit once, not once per request.

The controller is deterministic: it counts completions and throttling events, never time,
so tests drive it without clocks or sleeps. Backing off in *time* is the retry policy's
job (exponential backoff with jitter); this module only decides how many requests are in
flight. Throttling is reported from the thread that saw it with `note_throttled` (the AWS
client layer calls it), which marks the slot that thread holds, if any.

Limits are shared per key (`shared_limit`): the AWS targets key them by service and
region, because AWS throttles per account and region (see ``docs/explanation/aws-request-rates.md``).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from backuppolicy.core.exceptions import PolicyError

__all__ = [
    "DEFAULT_CAP",
    "DEFAULT_INITIAL",
    "AdaptiveLimit",
    "Slot",
    "note_throttled",
    "shared_limit",
]

DEFAULT_INITIAL = 8
"""Concurrency a new limit starts at (the library's former fixed ``max_workers``)."""
DEFAULT_CAP = 32
"""Most requests in flight a limit grows to by default."""

_local = threading.local()


class Slot:
    """One unit of work admitted by an `AdaptiveLimit` (see `AdaptiveLimit.slot`).

    Attributes:
        ticket: Admission number (1, 2, ...), in the order slots were granted.
        throttled: Whether throttling was reported while the slot was held.
    """

    __slots__ = ("_limit", "throttled", "ticket")

    def __init__(self, limit: AdaptiveLimit, ticket: int) -> None:
        self._limit = limit
        self.ticket = ticket
        self.throttled = False

    def note_throttled(self) -> None:
        """Report a throttling answer (``Throttling``, ``RequestLimitExceeded``, ``SlowDown``)."""
        self.throttled = True
        self._limit._throttled(self.ticket)  # noqa: SLF001 - the slot's own controller


class AdaptiveLimit:
    """How many requests may be in flight at once, adapted to throttling (AIMD).

    Example:
        >>> limit = AdaptiveLimit(initial=4, cap=8)
        >>> for _ in range(4):
        ...     with limit.slot():
        ...         pass                      # four clean completions: slow start, +1 each
        >>> limit.limit
        8
        >>> with limit.slot() as slot:
        ...     slot.note_throttled()         # the service said "slow down"
        >>> limit.limit
        4

    Args:
        initial: Limit to start at.
        floor: Lowest limit a cut goes to (at least 1).
        cap: Highest limit growth reaches.

    Raises:
        PolicyError: A bound is not an integer, or not ``1 <= floor <= initial <= cap``.
    """

    def __init__(
        self, initial: int = DEFAULT_INITIAL, *, floor: int = 1, cap: int = DEFAULT_CAP
    ) -> None:
        for field, value in (("initial", initial), ("floor", floor), ("cap", cap)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyError.for_field(field, "an integer >= 1", value)
        if not floor <= initial <= cap:
            raise PolicyError.for_field("initial", f"between floor {floor} and cap {cap}", initial)
        self.floor = floor
        self.cap = cap
        self._limit = initial
        self._threshold = cap
        self._clean = 0  # clean completions since the limit last grew (additive phase)
        self._issued = 0  # tickets granted so far
        self._cut_after = 0  # slots with a ticket up to this were in flight at the last cut
        self._in_flight = 0
        self._throttles = 0
        self._cuts = 0
        self._peak = initial
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return (
            f"<backuppolicy.AdaptiveLimit(limit={self.limit}, floor={self.floor}, cap={self.cap}, "
            f"in_flight={self.in_flight}, cuts={self.cuts})>"
        )

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        with self._cond:
            return self._limit

    @property
    def in_flight(self) -> int:
        """Slots held now."""
        with self._cond:
            return self._in_flight

    @property
    def throttles(self) -> int:
        """Throttling answers reported so far."""
        with self._cond:
            return self._throttles

    @property
    def cuts(self) -> int:
        """Times the limit was halved."""
        with self._cond:
            return self._cuts

    @property
    def peak(self) -> int:
        """Highest limit reached."""
        with self._cond:
            return self._peak

    def acquire(self) -> Slot:
        """Wait until a slot is free and take it; give it back with `release`."""
        with self._cond:
            while self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1
            self._issued += 1
            return Slot(self, self._issued)

    def release(self, slot: Slot, *, ok: bool = True) -> None:
        """Give *slot* back; a slot that was not throttled and is *ok* counts as clean.

        A slot that ended in another error (*ok* false) neither grows nor cuts the limit.
        """
        with self._cond:
            self._in_flight -= 1
            if ok and not slot.throttled:
                self._grow()
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """Hold a slot for the duration of the block; `note_throttled` in it marks the slot.

        The block's exception (if any) is re-raised and the slot counts as not clean.
        """
        slot = self.acquire()
        outer = getattr(_local, "slot", None)
        _local.slot = slot
        ok = False
        try:
            yield slot
            ok = True
        finally:
            _local.slot = outer
            self.release(slot, ok=ok)

    def _grow(self) -> None:
        if self._limit >= self.cap:
            return
        if self._limit < self._threshold:
            self._limit += 1  # slow start: +1 per clean completion
        else:
            self._clean += 1  # additive increase: +1 per window of `limit` clean completions
            if self._clean < self._limit:
                return
            self._clean = 0
            self._limit += 1
        self._peak = max(self._peak, self._limit)

    def _throttled(self, ticket: int) -> None:
        with self._cond:
            self._throttles += 1
            if ticket <= self._cut_after:
                return  # in flight when the limit was last cut: the same congestion event
            self._limit = max(self.floor, self._limit // 2)
            self._threshold = self._limit
            self._clean = 0
            self._cut_after = self._issued
            self._cuts += 1


def note_throttled() -> None:
    """Report a throttling answer for the slot the calling thread holds (no slot: nothing)."""
    slot: Slot | None = getattr(_local, "slot", None)
    if slot is not None:
        slot.note_throttled()


_SHARED: dict[Hashable, AdaptiveLimit] = {}
_SHARED_LOCK = threading.Lock()


def shared_limit(key: Hashable) -> AdaptiveLimit:
    """The process-wide `AdaptiveLimit` for *key* (e.g. ``("rds", "eu-west-1")``), made on first use.

    Every fan-out against the same service and region shares one limit, so two prunes running
    at once back off together, as the account's one token bucket requires.
    """
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = AdaptiveLimit()
        return found
