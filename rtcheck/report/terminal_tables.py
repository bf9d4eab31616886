"""Sections of the terminal report: organ table, not-evaluated table, not-contoured list, notes.

Constraints are split into four disjoint groups whose sizes add up to ``Result.counts``:

* organ constraints that were evaluated (pass or fail): the main table;
* target rules of the lesions: marks in the lesion table (:mod:`.terminal_lesions`);
* constraints not evaluated for a reason that matters (outside the dose grid, ambiguous
  structure, unknown prescription, unconfirmed limit, required structure missing...): a
  table with the reason;
* organs the protocol lists but the plan does not contour (and nobody requires): one line of
  names.

Notes that explain how a value was obtained ("point max evaluated as ...") are numbered
footnotes, printed once, instead of a text column repeated on every row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from rtcheck.report import common as cm
from rtcheck.report.common import is_not_contoured, table_tags
from rtcheck.report.terminal_style import Look, fits, new_table, print_table, status_text
from rtcheck.result import ConstraintResult, Limit, Result, Status

__all__ = [
    "Groups",
    "Notes",
    "group_constraints",
    "is_not_contoured",
    "limit_width",
    "longest",
    "print_not_contoured",
    "print_not_evaluated",
    "print_notes",
    "print_organs",
]


@dataclass(frozen=True)
class Groups:
    """The four disjoint groups of a result's constraints (see the module docstring)."""

    organs: tuple[ConstraintResult, ...]
    targets: tuple[ConstraintResult, ...]
    not_evaluated: tuple[ConstraintResult, ...]
    not_contoured: tuple[ConstraintResult, ...]

    @property
    def total(self) -> int:
        """Number of constraints in all groups (equals the result's total)."""
        return sum(
            len(g) for g in (self.organs, self.targets, self.not_evaluated, self.not_contoured)
        )


def group_constraints(result: Result) -> Groups:
    """Split ``result.all_constraints`` into :class:`Groups`."""
    organs, nc, ne = [], [], []
    for c in result.constraints:
        if c.status is not Status.NOT_EVALUATED:
            organs.append(c)
        elif is_not_contoured(c):
            nc.append(c)
        else:
            ne.append(c)
    targets = []
    for lesion in result.lesions:
        for c in lesion.constraints:
            (targets if c.status is not Status.NOT_EVALUATED else ne).append(c)
    return Groups(tuple(organs), tuple(targets), tuple(ne), tuple(nc))


# ----------------------------------------------------------------------------- notes
_SPLIT = re.compile(r";\s+")


def split_note(note: str | None) -> list[str]:
    """A note split at top-level ``"; "`` (not inside brackets) into single statements."""
    if not note:
        return []
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(note):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            parts.append(note[start:i])
            start = i + 1
    parts.append(note[start:])
    return [p.strip() for p in parts if p.strip()]


@dataclass
class Notes:
    """Numbered footnotes, each distinct statement once."""

    items: list[str] = field(default_factory=list)

    def refs(self, note: str | None) -> str:
        """Footnote numbers for ``note`` (``"1,3"``), registering new statements."""
        numbers: list[int] = []
        for part in split_note(note):
            if part not in self.items:
                self.items.append(part)
            numbers.append(self.items.index(part) + 1)
        return ",".join(str(n) for n in sorted(set(numbers)))


def print_notes(console: Console, notes: Notes, look: Look) -> None:
    """The footnotes, numbered as referenced in the tables."""
    if not notes.items:
        return
    console.print(Text("Notes", style=look.style("bold")))
    grid = new_table(look, show_header=False)
    grid.box = None
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(overflow="fold")
    for i, text in enumerate(notes.items, 1):
        grid.add_row(Text(f"[{i}]"), Text(look.plain(text)))
    print_table(console, grid)
    console.print()


# ----------------------------------------------------------------------------- cells
def limits_text(
    limits: tuple[Limit, ...], look: Look, judged: ConstraintResult | None = None
) -> str:
    """``< 23 Gy``; with several levels one per line, named: ``none < 4.6`` / ``minor < 5.7``.

    ``judged`` (the constraint of ``limits``) prints them to its value's precision.
    """
    if len(limits) == 1:
        return cm.fmt_limit(limits[0], judged)
    return "\n".join(f"{lim.level} {cm.fmt_limit(lim, judged)}" for lim in limits)


def limit_width(rows: Iterable[ConstraintResult], look: Look) -> int:
    """Minimum Limit column width: one level's limit never breaks inside."""
    pieces = [
        limits_text((lim,), look, c)
        if len(c.limits) == 1
        else f"{lim.level} {cm.fmt_limit(lim, c)}"
        for c in rows
        for lim in c.limits
    ]
    return longest(pieces, cap=24)


def roi_text(c: ConstraintResult, look: Look) -> str:
    """The ROI when it is not simply the protocol name, with how it was matched."""
    if c.matched_roi is None:
        return f"({c.match})" if c.match else ""
    if c.matched_roi == c.structure and c.match in (None, "exact"):
        return ""
    return f"{c.matched_roi} ({c.match})" if c.match else c.matched_roi


def value_text(c: ConstraintResult, look: Look) -> str:
    """The value with its unit, distinguishable from every limit."""
    return look.plain(cm.fmt_value(c.value, c.unit, c.limits))


def margin_text(c: ConstraintResult, look: Look) -> str:
    """Signed margin to the most lenient limit."""
    return look.plain(cm.fmt_margin(c))


def longest(names: Iterable[str], cap: int = 20) -> int:
    """Length of the longest name, at most ``cap``: a column's minimum width."""
    return min(cap, max((len(n) for n in names), default=1))


def _structure(c: ConstraintResult) -> str:
    return f"{c.lesion} (target)" if c.lesion and c.structure != c.lesion else c.structure


# ----------------------------------------------------------------------------- sections
def _name_cell(
    c: ConstraintResult, name: str, style: str, merge_roi: bool, look: Look
) -> Text | Group:
    """The structure name; on narrow consoles with the ROI indented below it."""
    cell = Text(name, style=look.style(style))
    roi = roi_text(c, look)
    if not (merge_roi and roi):
        return cell
    below = Text(f"ROI {roi}", style=look.style("dim"))
    return Group(cell, Padding(below, (0, 0, 0, 2)))


def _name_width(rows: tuple[ConstraintResult, ...], names: list[str], merge_roi: bool) -> int:
    """Structure column width: the longest name, or (ROI merged in) up to 24 for the ROI."""
    width = longest(names)
    if merge_roi:
        look = Look(fancy=False, color=False)
        width = max(width, longest((f"  ROI {roi_text(c, look)}" for c in rows), cap=24))
    return width


def _add_name_columns(
    table: Table,
    rows: tuple[ConstraintResult, ...],
    names: list[str],
    merge_roi: bool,
    roi: bool,
    tags: bool,
) -> None:
    """Add the Structure, optional ROI, Metric and optional Table columns."""
    table.add_column("Structure", overflow="fold", min_width=_name_width(rows, names, merge_roi))
    if roi:
        table.add_column("ROI", overflow="fold")
    table.add_column("Metric", overflow="fold", min_width=longest(c.metric for c in rows))
    if tags:
        table.add_column("Table", no_wrap=True)


def _print_fitting(console: Console, build: Callable[[bool], Table], show_roi: bool) -> None:
    """Print ``build(False)`` (ROI column), or ``build(True)`` (ROI under the name) if too wide."""
    table = build(False)
    if show_roi and not fits(console, table):
        table = build(True)
    print_table(console, table)
    console.print()


def print_organs(
    console: Console, rows: tuple[ConstraintResult, ...], notes: Notes, look: Look
) -> None:
    """Table of the evaluated organ constraints."""
    if not rows:
        return
    n_fail = sum(c.status is Status.FAIL for c in rows)
    head = f"Organ constraints: {len(rows)} evaluated, {n_fail} failed, {len(rows) - n_fail} passed"
    console.print(Text(head, style=look.style("bold")))
    show_roi = any(roi_text(c, look) for c in rows)
    refs = [notes.refs(c.note) for c in rows]
    tags = table_tags(rows)

    def build(merge_roi: bool) -> Table:
        table = new_table(look)
        names = [c.structure for c in rows]
        _add_name_columns(table, rows, names, merge_roi, show_roi and not merge_roi, bool(tags))
        table.add_column("Value", justify="right", no_wrap=True)
        table.add_column("Limit", overflow="fold", min_width=limit_width(rows, look))
        table.add_column("Margin", justify="right", no_wrap=True)
        table.add_column("Status", overflow="fold")
        if any(refs):
            table.add_column("Note", no_wrap=True, min_width=4)
        previous = None
        for i, (c, ref) in enumerate(zip(rows, refs, strict=True)):
            failed = c.status is Status.FAIL
            style = "bold" if failed else ("dim" if c.structure == previous else "")
            cells = [_name_cell(c, c.structure, style, merge_roi, look)]
            if show_roi and not merge_roi:
                cells.append(Text(roi_text(c, look)))
            cells.append(Text(cm.metric_text(c)))
            if tags:
                cells.append(Text(tags[i]))
            cells += [
                Text(value_text(c, look), style=look.style("bold" if failed else "")),
                Text(look.plain(limits_text(c.limits, look, c))),
                Text(margin_text(c, look)),
                status_text(c, look),
            ]
            if any(refs):
                cells.append(Text(ref))
            table.add_row(*cells)
            previous = c.structure
        return table

    _print_fitting(console, build, show_roi)


def print_not_evaluated(
    console: Console, rows: tuple[ConstraintResult, ...], notes: Notes, look: Look
) -> None:
    """Constraints not evaluated for a reason other than an organ simply not contoured.

    Rows are grouped by reason (a multi-plan sum can leave dozens of rows with one reason):
    each reason is printed once, followed by the constraints it applies to.
    """
    if not rows:
        return
    s_ = "s" if len(rows) != 1 else ""
    head = f"NOT EVALUATED for another reason: {len(rows)} constraint{s_}"
    console.print(Text(head, style=look.style("bold yellow")))
    by_reason: dict[str, list[ConstraintResult]] = {}
    for c in rows:
        by_reason.setdefault(look.plain(c.reason or "no reason given"), []).append(c)
    for reason, group in by_reason.items():
        n = f" ({len(group)} constraints)" if len(group) > 1 else ""
        bullet = Table.grid(padding=(0, 1))
        bullet.add_column(no_wrap=True)
        bullet.add_column(overflow="fold")
        bullet.add_row(Text("•" if look.fancy else "-"), Text(reason + n))
        print_table(console, bullet)
        _print_ne_group(console, tuple(group), notes, look)


def _print_ne_group(
    console: Console, rows: tuple[ConstraintResult, ...], notes: Notes, look: Look
) -> None:
    refs = [notes.refs(c.note) for c in rows]
    show_roi = any(roi_text(c, look) for c in rows)
    tags = table_tags(rows)

    def build(merge_roi: bool) -> Table:
        table = new_table(look, show_header=False)
        table.box = None
        table.collapse_padding = False
        table.add_column(no_wrap=True, min_width=1)  # indent under the reason
        names = [_structure(c) for c in rows]
        _add_name_columns(table, rows, names, merge_roi, show_roi and not merge_roi, bool(tags))
        table.add_column("Limit", overflow="fold", min_width=limit_width(rows, look))
        if any(refs):
            table.add_column("Note", no_wrap=True)
        for i, (c, name, ref) in enumerate(zip(rows, names, refs, strict=True)):
            cells: list[Text | Group] = [Text(""), _name_cell(c, name, "", merge_roi, look)]
            if show_roi and not merge_roi:
                cells.append(Text(roi_text(c, look)))
            cells.append(Text(cm.metric_text(c)))
            if tags:
                cells.append(Text(tags[i]))
            cells.append(Text(look.plain(limits_text(c.limits, look, c))))
            if any(refs):
                cells.append(Text(f"[{ref}]" if ref else ""))
            table.add_row(*cells)
        return table

    _print_fitting(console, build, show_roi)


def pair_names(names: list[str]) -> list[str]:
    """Names in order, left/right pairs joined: ``OpticNrv_L, OpticNrv_R`` -> ``OpticNrv_L/R``."""
    out: list[str] = []
    rest = list(names)
    while rest:
        name = rest.pop(0)
        if name.endswith("_L") and name[:-2] + "_R" in rest:
            rest.remove(name[:-2] + "_R")
            out.append(name + "/R")
        elif name.endswith("_R") and name[:-2] + "_L" in rest:
            rest.remove(name[:-2] + "_L")
            out.append(name[:-2] + "_L/R")
        else:
            out.append(name)
    return out


def _not_contoured_detail(c: ConstraintResult) -> str:
    """The reason beyond "no ROI matches ...", e.g. an ROI that exists but has no contour."""
    detail = (c.reason or "").removeprefix("not contoured").lstrip(": ")
    return "" if detail.startswith("no ROI matches") else detail


def print_not_contoured(console: Console, rows: tuple[ConstraintResult, ...], look: Look) -> None:
    """One paragraph naming the protocol structures the plan does not contour."""
    if not rows:
        return
    names = list(dict.fromkeys(c.structure for c in rows))
    details = {c.structure: d for c in rows if (d := _not_contoured_detail(c))}
    n = len(rows)
    s_c, s_s = ("s" if n != 1 else ""), ("s" if len(names) != 1 else "")
    console.print(
        Text(
            f"Not contoured: {len(names)} protocol structure{s_s}, {n} constraint{s_c} "
            "NOT EVALUATED (none required by the protocol or --require):",
            style=look.style("bold"),
        )
    )
    plain = pair_names([name for name in names if name not in details])
    listed = plain + [f"{name} ({look.plain(details[name])})" for name in details]
    console.print(Padding(Text(", ".join(listed)), (0, 0, 0, 2)))
    console.print()
