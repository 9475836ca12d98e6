"""BoundedCache: least recently used values go first, past a count or a byte budget."""

from __future__ import annotations

import pytest

from backuppolicy.core._bounded import BoundedCache


def test_least_recently_used_goes_first():
    """Past *entries*, the value read least recently is dropped."""
    cache: BoundedCache[str] = BoundedCache(entries=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert "1" == cache.get("a")  # "b" is now the least recently used
    cache.put("c", "3")
    assert ("1", None, "3", 2) == (cache.get("a"), cache.get("b"), cache.get("c"), len(cache))


def test_byte_budget():
    """Values are dropped until their sizes fit; a value over the budget is never kept."""
    cache: BoundedCache[bytes] = BoundedCache(entries=10, max_bytes=10, size=len)
    cache.put("a", b"12345")
    cache.put("b", b"1234")
    cache.put("c", b"123")  # 12 bytes: "a" goes
    assert (None, b"1234", b"123") == (cache.get("a"), cache.get("b"), cache.get("c"))
    cache.put("huge", b"x" * 11)
    assert (None, 2) == (cache.get("huge"), len(cache))
    cache.put("b", b"12345678")  # replacing a value counts its new size only: "c" goes
    assert (b"12345678", None) == (cache.get("b"), cache.get("c"))
    cache.clear()
    assert 0 == len(cache)


def test_entries_must_be_positive():
    """A cache of no entries is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        BoundedCache(entries=0)
