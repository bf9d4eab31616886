"""CSV report: one row per constraint, organ-at-risk rules first, then each lesion's.

Columns: ``id, lesion, structure, matched_roi, match, metric, value, unit``, then two columns
per acceptance level (``<level>_comparator``, ``<level>_limit``, numbers kept numeric for
pipelines), then ``status, level, margin, reason, source, dose_basis, note, priority,
endpoint``. Empty cells mean None. Floats are written with full precision (``repr``). A text
cell starting with ``= + - @``, a tab or a line break is prefixed with ``'`` so that a
spreadsheet shows it instead of running it as a formula.
"""

from __future__ import annotations

import csv
import io
from typing import BinaryIO

from rtcheck.report.common import levels_used, limit_for
from rtcheck.result import ConstraintResult, Result

__all__ = ["HEAD_COLUMNS", "TAIL_COLUMNS", "columns", "render_csv", "write_csv"]

HEAD_COLUMNS = ("id", "lesion", "structure", "matched_roi", "match", "metric", "value", "unit")
TAIL_COLUMNS = (
    "status", "level", "margin", "reason", "source", "dose_basis", "note", "priority", "endpoint",
)  # fmt: skip


#: First characters that make Excel, LibreOffice or Google Sheets read a cell as a formula
#: (``=HYPERLINK(...)`` in an ROI name would become a live link or a command).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return repr(value)  # numbers stay numbers, a negative margin keeps its minus
    text = str(value)
    # A text cell (names, reasons) that a spreadsheet would run as a formula gets a leading
    # apostrophe (OWASP "CSV injection"); the JSON report has the name unchanged.
    return "'" + text if text.startswith(_FORMULA_START) else text


def columns(result: Result) -> list[str]:
    """Header row for ``result`` (level columns depend on the protocol's levels)."""
    levels = levels_used(result, result.all_constraints)
    level_cols = [col for lv in levels for col in (f"{lv}_comparator", f"{lv}_limit")]
    return [*HEAD_COLUMNS, *level_cols, *TAIL_COLUMNS]


def _row(c: ConstraintResult, levels: list[str]) -> list[str]:
    head = [c.id, c.lesion, c.structure, c.matched_roi, c.match, c.metric, c.value, c.unit]
    limits: list[object] = []
    for level in levels:
        lim = limit_for(c, level)
        limits += [None, None] if lim is None else [lim.comparator, float(lim.value)]
    tail = [
        c.status.value, c.level, c.margin, c.reason, c.source, c.dose_basis, c.note,
        c.priority, c.endpoint,
    ]  # fmt: skip
    return [_cell(v) for v in (*head, *limits, *tail)]


def render_csv(result: Result) -> str:
    """The CSV text (RFC 4180 quoting, ``\\r\\n`` line ends)."""
    levels = levels_used(result, result.all_constraints)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([_cell(col) for col in columns(result)])
    for c in result.all_constraints:
        writer.writerow(_row(c, levels))
    return buf.getvalue()


def write_csv(result: Result, out: BinaryIO) -> None:
    """Registry writer: UTF-8 without a byte-order mark (a BOM would corrupt the first
    column name for ``csv.DictReader``); spreadsheets may need "import as UTF-8"."""
    out.write(render_csv(result).encode("utf-8"))
