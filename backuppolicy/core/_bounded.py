"""`BoundedCache`: a thread-safe least-recently-used map, bounded in entries and in bytes.

For what never changes under its key (the content of an object version, named by its version
id or its ETag): a listing that finds the same key again skips the read. It never holds
mutable state (tags, holds, Object Lock): those are read every time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

_V = TypeVar("_V")


class BoundedCache(Generic[_V]):
    """At most *entries* values and *max_bytes* of their *size*; the least recently used go first.

    A value larger than *max_bytes* is never kept. Safe to share between threads.

    Example:
        >>> cache: BoundedCache[bytes] = BoundedCache(entries=2, max_bytes=1024, size=len)
        >>> cache.put(("k", "etag-1"), b"{}")
        >>> cache.get(("k", "etag-1")), cache.get(("k", "etag-2"))
        (b'{}', None)

    Args:
        entries: Largest number of values kept (at least 1).
        max_bytes: Largest sum of ``size(value)`` kept.
        size: The bytes a value counts for (default: each counts 0).
    """

    def __init__(
        self,
        *,
        entries: int,
        max_bytes: int = 0,
        size: Callable[[_V], int] | None = None,
    ) -> None:
        if entries < 1:
            msg = f"entries: expected at least 1 (got {entries})"
            raise ValueError(msg)
        self.entries = entries
        self.max_bytes = max_bytes
        self._size = size
        self._items: OrderedDict[Hashable, tuple[_V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: Hashable) -> _V | None:
        """The value kept under *key* (now the most recently used), ``None`` if there is none."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: _V) -> None:
        """Keep *value* under *key*, dropping the least recently used values past the bounds."""
        cost = self._size(value) if self._size is not None else 0
        if self._size is not None and cost > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, cost)
            self._bytes += cost
            while len(self._items) > self.entries or (
                self._size is not None and self._bytes > self.max_bytes
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
