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
_MIN_TEXT_WIDTH = 16


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
    Columns of single words (ids, times) keep them whole while the width allows; the columns
    of text wrap.

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
    cells = [[str(cell) for cell in row] for row in rows]
    total = max(width or terminal_width(), 20)
    words: dict[int, int] = {}  # columns of single words (ids, times, ARNs): their widths
    needed = 0
    for index, header in enumerate(headers):
        column = [row[index] for row in cells if index < len(row)]
        if column and not any(" " in cell for cell in column):
            words[index] = max(len(str(header)), *(len(cell) for cell in column))
            needed += words[index] + 2
        else:
            needed += _MIN_TEXT_WIDTH + 2
    for index in sorted(words, key=words.__getitem__, reverse=True):
        if needed <= total:
            break
        needed -= words.pop(index) - _MIN_TEXT_WIDTH  # the widest word column folds after all
    for index, header in enumerate(headers):
        table.add_column(str(header), overflow="fold", no_wrap=index in words)
    for row in cells:
        table.add_row(*row)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=total,
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
