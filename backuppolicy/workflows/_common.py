"""Helpers the backup, pruning and hold workflows share: progress, report tables, newest points.

Private: the workflows import these names; users import from ``backuppolicy``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence

from backuppolicy.core.model import RecoveryPoint, Status
from backuppolicy.core.tables import render_table

__all__ = ["Progress", "describe_error", "html_table", "newest_point", "text_table"]


Progress = Callable[[str, int, int], None]
"""Progress callback: ``progress(label, done, total)``; the CLI draws a bar with it."""


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table that fits the terminal: the headers, a rule, then the rows."""
    return render_table(headers, rows)


def html_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], text: str) -> str:
    """An HTML table under *title*, with *text* (its text twin) in a ``<details>`` fallback."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f"<div><strong>{html.escape(title)}</strong>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<details><summary>text</summary><pre>{html.escape(text)}</pre></details></div>"
    )


def newest_point(
    points: Iterable[RecoveryPoint], tier: str, *, pending: bool = False
) -> RecoveryPoint | None:
    """The newest completed (or, with *pending*, in-flight) backup of ours in *tier*.

    Object versions are data, not backups.
    """
    good = [
        p
        for p in points
        if p.tier == tier
        and (p.is_good or (pending and p.status is Status.PENDING))
        and p.managed
        and p.kind != "s3-version"
    ]
    return max(good, key=lambda p: p.order_key, default=None)


_MAX_REASON = 500


def describe_error(exc: BaseException) -> str:
    """``"OSError: ..."``, truncated: the reason of a failed outcome."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."
