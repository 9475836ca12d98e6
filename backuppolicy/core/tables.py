"""Plain-text tables that fit the terminal: one helper for every table the library prints.

`render_table` draws with `rich <https://rich.readthedocs.io>`_ (imported when a table is
drawn, so importing this module stays cheap) into plain text: no colour, no control codes, so the
result is the same in a terminal, a pipe, a log file or a test. Cells wrap to fit *width*; long
words (ids, ARNs) are folded rather than cut, so nothing is lost.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence

__all__ = ["render_table", "terminal_width"]

_FALLBACK_WIDTH = 100


def terminal_width() -> int:
    """The width to fit tables to: ``$COLUMNS``, else the terminal's, else 100 columns."""
    return shutil.get_terminal_size((_FALLBACK_WIDTH, 24)).columns


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    width: int | None = None,
    title: str | None = None,
) -> str:
    """*rows* under *headers* as a text table at most *width* columns wide (default: the terminal's).

    A rule separates the headers from the rows; no trailing spaces; cells are ``str()``-ed.

    >>> print(render_table(("target", "result"), [("db", "ok"), ("files", "FAILED")], width=40))
    target  result
    ──────────────
    db      ok
    files   FAILED
    """
    from rich import box  # noqa: PLC0415 - only when a table is drawn
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        collapse_padding=True,
        title=title,
        title_justify="left",
        title_style=None,
        header_style=None,
    )
    for header in headers:
        table.add_column(str(header), overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width or terminal_width(), 20),
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        force_interactive=False,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").split("\n"))
