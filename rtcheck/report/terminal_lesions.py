"""Lesion table of the terminal report: one row per lesion, target-rule status marks on values.

Columns are the usual SBRT target metrics (D95%, D98%, V100%, Dmax, RTOG and Paddick CI, GI,
R50%, D2cm) plus any metric a target rule of the protocol judges; a column only appears when
at least one lesion has it. A value judged by a rule carries a mark (``✔ ~ ✖ ?``); rules that
failed or met only a lesser level are detailed (value, limits, margin) in a table below;
rules not evaluated are in the report's "Not evaluated" table with their reason. Below the
table, one line per plan says where its dose maximum lies and which lesion contains it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rtcheck.report import common as cm
from rtcheck.report.terminal_style import (
    Look,
    lesser_level,
    new_table,
    print_table,
    status_mark,
    status_text,
    table_width,
)
from rtcheck.report.terminal_tables import (
    Notes,
    limit_width,
    limits_text,
    longest,
    margin_text,
    value_text,
)
from rtcheck.result import ConstraintResult, LesionResult, Result, Status

__all__ = ["print_lesions"]


@dataclass(frozen=True)
class Column:
    """A metric column: the metric keys it reads (aliases), header and unit."""

    keys: tuple[str, ...]
    header: str
    unit: str


FIXED_COLUMNS: tuple[Column, ...] = (
    Column(("D95%[Gy]",), "D95%", "Gy"),
    Column(("D98%[Gy]",), "D98%", "Gy"),
    Column(("V100%[%]",), "V100%", "%"),
    Column(("Max[Gy]", "Dmax[Gy]"), "Dmax", "Gy"),
    Column(("CI_RTOG",), "CI", "ratio"),
    Column(("CI_Paddick",), "Paddick", "ratio"),
    Column(("GI",), "GI", "ratio"),
    Column(("R50%",), "R50%", "ratio"),
    Column(("D2cm[%]",), "D2cm", "%"),
)

_SEVERITY = {"fail": 0, "ne": 1, "lesser": 2, "pass": 3}


def _rank(c: ConstraintResult) -> int:
    if c.status is Status.FAIL:
        return _SEVERITY["fail"]
    if c.status is Status.NOT_EVALUATED:
        return _SEVERITY["ne"]
    return _SEVERITY["lesser"] if lesser_level(c) else _SEVERITY["pass"]


def columns_for(lesions: tuple[LesionResult, ...]) -> list[Column]:
    """Fixed columns some lesion has, then one per other metric a target rule judges."""
    have = {k for lesion in lesions for k in lesion.metrics}
    have |= {c.metric for lesion in lesions for c in lesion.constraints}
    cols = [col for col in FIXED_COLUMNS if have & set(col.keys)]
    known = {k for col in FIXED_COLUMNS for k in col.keys}
    for lesion in lesions:
        for c in lesion.constraints:
            if c.metric not in known:
                known.add(c.metric)
                label = cm.LESION_METRIC_LABELS.get(c.metric, c.metric.split("[")[0])
                cols.append(Column((c.metric,), label, c.unit))
    return cols


def _cell(lesion: LesionResult, col: Column, look: Look) -> Text:
    rules = [c for c in lesion.constraints if c.metric in col.keys]
    value: float | None = None
    refs: list[float] = []
    for key in col.keys:
        if lesion.metrics.get(key) is not None:
            value = lesion.metrics[key]
            break
    if rules:
        judged = next((c for c in rules if c.value is not None), None)
        if judged is not None:
            value = judged.value  # the value that was judged
        refs = [lim.value for c in rules for lim in c.limits]
    text = Text(look.plain(cm.fmt_number(value, col.unit, refs)))
    if rules:
        worst = min(rules, key=_rank)
        text.append(" ")
        text.append_text(status_mark(worst, look))
    return text


def _header(col: Column) -> str:
    unit = "" if col.unit == "ratio" else col.unit
    return f"{col.header}\n{unit}"


def _lesion_table(
    lesions: tuple[LesionResult, ...], cols: list[Column], look: Look, with_plan: bool
) -> Table:
    table = new_table(look)
    table.add_column("Lesion\n", overflow="fold", min_width=longest(x.name for x in lesions))
    if with_plan:
        table.add_column("Plan\n", overflow="fold")
        table.add_column("Fx\n", justify="right", no_wrap=True)
    table.add_column("Rx\nGy", justify="right", no_wrap=True)
    table.add_column("Vol\ncc", justify="right", no_wrap=True)
    for col in cols:
        table.add_column(_header(col), justify="right", no_wrap=True)
    for lesion in lesions:
        failed = any(c.status is Status.FAIL for c in lesion.constraints)
        cells = [Text(lesion.name, style=look.style("bold" if failed else ""))]
        if with_plan:
            fx = lesion.fractions
            cells += [Text(lesion.plan_label or look.dash()), Text("?" if fx is None else str(fx))]
        rx = lesion.prescription_gy
        cells += [
            Text(
                "unknown" if rx is None else cm.exact_number(rx),
                style=look.style("" if rx else "yellow"),
            ),
            Text(look.plain(cm.fmt_number(lesion.volume_cc, "cc"))),
        ]
        cells += [_cell(lesion, col, look) for col in cols]
        table.add_row(*cells)
    return table


def _fits(console: Console, table: Table) -> bool:
    return table_width(console, table) <= console.width


def _summary(lesions: tuple[LesionResult, ...]) -> str:
    rules = [c for lesion in lesions for c in lesion.constraints]
    n = len(lesions)
    head = f"Targets: {n} lesion{'s' if n != 1 else ''}"
    if not rules:
        return head + " (the protocol has no target rules)"
    n_pass = sum(c.status is Status.PASS for c in rules)
    n_fail = sum(c.status is Status.FAIL for c in rules)
    n_ne = len(rules) - n_pass - n_fail
    parts = [f"{n_fail} failed", f"{n_pass} passed"]
    if n_ne:
        parts.append(f"{n_ne} not evaluated (see below)")
    return f"{head}; {len(rules)} target rules: " + ", ".join(parts)


def _legend(look: Look) -> Text:
    if look.fancy:
        marks = "✔ met, ~ met a lesser level only, ✖ failed, ? not evaluated"
    else:
        marks = "ok met, ~ met a lesser level only, FAIL failed, ? not evaluated"
    return Text(f"Marks on values judged by a target rule: {marks}.")


def _attention(lesions: tuple[LesionResult, ...], notes: Notes, look: Look) -> Table | None:
    rows = [
        c
        for lesion in lesions
        for c in lesion.constraints
        if c.status is Status.FAIL or lesser_level(c)
    ]
    if not rows:
        return None
    refs = [notes.refs(c.note) for c in rows]
    table = new_table(look)
    table.add_column("Lesion", overflow="fold", min_width=longest(c.lesion or "" for c in rows))
    table.add_column("Metric", overflow="fold", min_width=longest(c.metric for c in rows))
    table.add_column("Value", justify="right", no_wrap=True)
    table.add_column("Limit", overflow="fold", min_width=limit_width(rows, look))
    table.add_column("Margin", justify="right", no_wrap=True)
    table.add_column("Status", overflow="fold")
    if any(refs):
        table.add_column("Note", no_wrap=True, min_width=4)
    for c, ref in zip(rows, refs, strict=True):
        cells = [
            Text(c.lesion or c.matched_roi or c.structure),
            Text(cm.metric_text(c)),
            Text(value_text(c, look)),
            Text(look.plain(limits_text(c.limits, look, c))),
            Text(margin_text(c, look)),
            status_text(c, look),
        ]
        if any(refs):
            cells.append(Text(ref))
        table.add_row(*cells)
    return table


def _more_metrics(lesions: tuple[LesionResult, ...], cols: list[Column]) -> str | None:
    shown = {k for col in cols for k in col.keys}
    other = [k for lesion in lesions for k in lesion.metrics if k not in shown]
    other = list(dict.fromkeys(other))
    if not other:
        return None
    labels = [cm.LESION_METRIC_LABELS.get(k, k) for k in other[:4]]
    more = ", ..." if len(other) > 4 else ""
    return (
        f"{len(other)} more metric{'s' if len(other) != 1 else ''} per lesion "
        f"({', '.join(labels)}{more}) in the JSON, CSV, HTML and PDF reports."
    )


def print_lesions(console: Console, result: Result, notes: Notes, look: Look) -> None:
    """The lesion table, its legend, the rules that need attention, the plan maxima."""
    lesions = result.lesions
    if not lesions:
        return
    console.print(Text(_summary(lesions), style=look.style("bold")))
    cols = columns_for(lesions)
    with_plan = len({lesion.plan_label for lesion in lesions}) > 1
    table = _lesion_table(lesions, cols, look, with_plan)
    if _fits(console, table) or len(cols) < 2:
        print_table(console, table)
    else:  # narrow terminal: the metric columns in two tables, one row per lesion in each
        half = (len(cols) + 1) // 2
        print_table(console, _lesion_table(lesions, cols[:half], look, with_plan))
        console.print()
        print_table(console, _lesion_table(lesions, cols[half:], look, False))
    if any(lesion.constraints for lesion in lesions):
        console.print(_legend(look))
    attention = _attention(lesions, notes, look)
    if attention is not None:
        console.print()
        console.print(Text("Target rules failed or met at a lesser level only:"))
        print_table(console, attention)
    for pm in cm.plan_maxima(result):
        console.print(Text(cm.plan_maximum_text(pm, cm.several_plans(result))))
    more = _more_metrics(lesions, cols)
    if more:
        console.print(Text(more, style=look.style("dim")))
    console.print()
