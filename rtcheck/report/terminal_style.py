"""Look of the terminal report: colour, symbols and table rules for a TTY or for plain text.

On a terminal (or with ``color=True``) the report uses colour, ``✔ ✖`` symbols and a thin
Unicode rule under table headers. Anywhere else (pipes, files, ``.txt`` reports, logs) it is
plain 7-bit ASCII apart from names read from the DICOM files: words instead of symbols,
``-`` rules, no escape codes. Every status is always spelled out as a word, so the report
reads the same without colour.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from rtcheck.result import ConstraintResult, Status

__all__ = [
    "Look",
    "fits",
    "look_for",
    "make_console",
    "new_table",
    "print_table",
    "rule",
    "status_mark",
    "status_text",
    "table_width",
    "trimmed",
]

#: Width used when the output is not a terminal (pipes, files, CI logs): wide enough that
#: no table of the report wraps a number.
PLAIN_WIDTH = 120

_ASCII_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)

#: Narrowest a text column gets (folding words) before a table is allowed to overflow.
_FOLD_FLOOR = 6

_STATUS_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.NOT_EVALUATED: "yellow",
}
_LESSER_STYLE = "yellow"


@dataclass(frozen=True)
class Look:
    """How to draw: ``fancy`` = Unicode symbols and rules; ``color`` = ANSI styles."""

    fancy: bool
    color: bool

    def dash(self) -> str:
        """The placeholder for a missing value."""
        return "—" if self.fancy else "-"

    def sep(self) -> str:
        """Separator between items on one line."""
        return " · " if self.fancy else ", "

    def plain(self, text: str) -> str:
        """``text`` with the report's own Unicode punctuation replaced in plain mode."""
        if self.fancy:
            return text
        for uni, ascii_ in (("—", "-"), ("·", ","), ("α/β", "alpha/beta"), ("→", "->")):
            text = text.replace(uni, ascii_)
        return text

    def style(self, style: str) -> str:
        """``style`` when colour is on, else no style."""
        return style if self.color else ""


def make_console(out: TextIO | None, *, color: bool | None, width: int | None) -> Console:
    """A Console on ``out`` (stdout when None) honouring ``color`` and ``NO_COLOR``.

    ``color=None``: colour on a terminal unless ``NO_COLOR`` is set; ``True`` forces colour
    (and symbols) even into a pipe; ``False`` turns colour off (a terminal keeps its symbols).
    Not a terminal: a width of at least :data:`PLAIN_WIDTH` (``COLUMNS`` when larger), so
    tables never wrap in a pipe or a log.
    """
    stream = sys.stdout if out is None else out
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if color is None:
        no_color = not is_tty or "NO_COLOR" in os.environ
    else:
        no_color = not color
    if width is None and not is_tty:
        try:
            columns = int(os.environ.get("COLUMNS", "0"))
        except ValueError:
            columns = 0
        width = max(PLAIN_WIDTH, columns)
    return Console(
        file=stream,
        force_terminal=True if color else (is_tty or None),
        no_color=no_color,
        color_system=None if no_color else "auto",
        width=width,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def _unicode_ok(console: Console) -> bool:
    return (console.encoding or "").lower().replace("-", "") in ("utf8", "utf16", "utf32")


def look_for(console: Console) -> Look:
    """The :class:`Look` of ``console``: symbols on a (forced) terminal, colour if it has any."""
    fancy = console.is_terminal and _unicode_ok(console)
    color = console.color_system is not None and not console.no_color
    return Look(fancy=fancy, color=color)


def new_table(look: Look, **kw: object) -> Table:
    """A borderless table with a rule under the header, in the console's character set."""
    return Table(
        box=box.SIMPLE_HEAD if look.fancy else _ASCII_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        **kw,  # type: ignore[arg-type]
    )


#: Spaces rich pads table cells with at the end of a line (before any closing style codes).
_TRAILING = re.compile(r"[ \t]+(?=(?:\x1b\[[0-9;]*m)*$)", re.MULTILINE)


@contextmanager
def trimmed(console: Console) -> Iterator[None]:
    """Print through ``console`` without the trailing spaces rich pads table lines with."""
    with console.capture() as capture:
        yield
    console.file.write(_TRAILING.sub("", capture.get()))
    console.file.flush()


def rule(console: Console, title: str) -> None:
    """A titled horizontal rule (``-`` when the console is plain)."""
    look = look_for(console)
    console.rule(Text(title), characters="─" if look.fancy else "-")


def table_width(console: Console, table: Table, *, narrowest: bool = False) -> int:
    """Width ``table`` takes unconstrained (``narrowest``: its narrowest layout's width)."""
    _set_min_widths(table)
    options = console.options.update_width(1_000_000)
    measured = Measurement.get(console, options, table)
    return measured.minimum if narrowest else measured.maximum


def _plain(renderable: object) -> str:
    """The text of a cell: a Text, a string, or a Group/Padding of them."""
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, Group):
        return "\n".join(_plain(r) for r in renderable.renderables)
    if isinstance(renderable, Padding):
        return " " * renderable.left + _plain(renderable.renderable)
    return str(renderable)


def _words(renderable: object) -> list[str]:
    return _plain(renderable).split()


def _set_min_widths(table: Table, cap: int = 20) -> None:
    """Minimum column widths that rich respects when it squeezes a table.

    A ``no_wrap`` column needs its widest cell; a wrapping column its longest word (up to
    ``cap``), so names break between words, not inside them.
    """
    for column in table.columns:
        cells = [*column.cells, column.header]
        if column.no_wrap:
            widest = max(cell_len(line) for c in cells for line in _lines(c))
        else:
            words = [w for c in cells for w in _words(c)] or [""]
            widest = min(cap, max(cell_len(w) for w in words))
        column.min_width = max(column.min_width or 0, widest)


def _lines(renderable: object) -> list[str]:
    return _plain(renderable).split("\n") or [""]


def _fit(console: Console, table: Table, *, fold: bool) -> int:
    """Fix column widths so ``table`` fits the console if it can; return its width.

    Columns that do not wrap keep their widest cell; wrapping columns are narrowed, widest
    first, one character at a time, never below their longest word (rich's own squeezing
    can cut ``no_wrap`` cells). The result may exceed the console when nothing can wrap.
    """
    _set_min_widths(table)
    for column in table.columns:
        column.width = None
    widest = [
        max(cell_len(x) for c in [*col.cells, col.header] for x in _lines(c))
        for col in table.columns
    ]
    widest = [max(w, col.min_width or 0) for w, col in zip(widest, table.columns, strict=True)]
    overhead = table_width(console, table) - sum(widest)
    widths = list(widest)
    excess = sum(widths) + overhead - console.width
    # first down to each column's longest word, then (folding words) down to a few characters
    floors = [[col.min_width or 1 for col in table.columns]]
    if fold:
        floors.append([_FOLD_FLOOR] * len(widths))
    for floor in floors:
        while excess > 0:
            shrinkable = [
                i
                for i, col in enumerate(table.columns)
                if not col.no_wrap and col.overflow == "fold" and widths[i] > floor[i]
            ]
            if not shrinkable:
                break
            i = max(shrinkable, key=lambda k: widths[k])
            widths[i] -= 1
            excess -= 1
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    return sum(widths) + overhead


def fits(console: Console, table: Table) -> bool:
    """True when ``table`` fits the console without breaking words (single spaces allowed)."""
    padding = table.padding
    table.padding = (0, 0, 0, 0)
    try:
        return _fit(console, table, fold=False) <= console.width
    finally:
        table.padding = padding


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` without ever cropping a cell.

    Rich crops what does not fit; for a safety report nothing may be cut off. A table too
    wide for the console wraps its text columns between words, then loses the double space
    between columns, then breaks words; if it is still too wide it is printed at its own
    width (the terminal wraps the long lines).
    """
    need = _fit(console, table, fold=False)
    if need > console.width and table.padding == (0, 1, 0, 1):
        table.padding = (0, 0, 0, 0)
        need = _fit(console, table, fold=False)
    if need > console.width:
        need = _fit(console, table, fold=True)
    if need <= console.width:
        console.print(table)
        return
    width = console.width
    console.width = need  # rich never renders wider than the console
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def lesser_level(c: ConstraintResult) -> bool:
    """True for a pass that met only a lesser acceptance level (not the strictest)."""
    return (
        c.status is Status.PASS
        and len(c.limits) > 1
        and c.level is not None
        and c.level != c.limits[0].level
    )


def status_text(c: ConstraintResult, look: Look) -> Text:
    """``✔ PASS``, ``~ PASS (minor)``, ``✖ FAIL``, ``? NOT EVALUATED`` (words only in plain)."""
    word = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_EVALUATED: "NOT EVALUATED"}[
        c.status
    ]
    style = _STATUS_STYLE[c.status]
    if lesser_level(c):
        word += f" ({c.level})"
        style = _LESSER_STYLE
    if look.fancy:
        word = f"{status_mark(c, look).plain} {word}"
    return Text(word, style=look.style(style))


def status_mark(c: ConstraintResult, look: Look) -> Text:
    """A short mark for a value judged by a rule: ``✔ ~ ✖ ?`` (``ok ~ FAIL ?`` in plain)."""
    if lesser_level(c):
        return Text("~", style=look.style(_LESSER_STYLE))
    symbols = {
        Status.PASS: ("✔", "ok"),
        Status.FAIL: ("✖", "FAIL"),
        Status.NOT_EVALUATED: ("?", "?"),
    }
    fancy, plain = symbols[c.status]
    return Text(fancy if look.fancy else plain, style=look.style(_STATUS_STYLE[c.status]))
