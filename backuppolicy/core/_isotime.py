"""ISO 8601 text with an offset, read fast: what AWS's XML and query answers carry."""

from __future__ import annotations

from datetime import datetime

__all__ = ["aware_from_iso"]


def aware_from_iso(value: object) -> datetime | None:
    """*value* read by `datetime.fromisoformat` if it is text with an offset; else ``None``.

    About fifty times faster than ``dateutil``'s parser (what botocore uses). ``None`` leaves
    anything else (epoch numbers, RFC 1123 dates, a time without an offset) to the caller's
    slower parser.

    >>> aware_from_iso("2026-12-06T04:00:00.123Z").isoformat()
    '2026-12-06T04:00:00.123000+00:00'
    >>> aware_from_iso("2026-12-06T04:00:00") is None, aware_from_iso(1796529600) is None
    (True, True)
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
