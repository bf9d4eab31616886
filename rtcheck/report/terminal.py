"""Terminal report: verdict and counts first, then compact tables (clinical-goals style).

Layout (see ``docs/terminal.md``):

1. verdict line with the counts (failed / passed / not evaluated, split into not contoured and
   other reasons), the verdict sentence and the failed constraints by name;
2. patient, plan, fractions, protocol, dose;
3. lesions: one row per lesion, target-rule marks on the judged values;
4. evaluated organ constraints (structure, ROI when it differs, metric, value, limit, margin,
   status);
5. constraints not evaluated for a reason that matters, with the reason;
6. protocol structures the plan does not contour, as one list of names;
7. numbered notes referenced by the tables; findings grouped by severity.

Every constraint is in exactly one of sections 3-6, so the section counts add up to the
verdict line. Colour and ``✔ ✖`` symbols on a terminal; plain ASCII (words, ``-`` rules,
at least 120 columns) in pipes, files and logs; ``NO_COLOR`` honoured. User strings go into
:class:`rich.text.Text`, never into markup, so an ROI called ``[bold]`` prints as is.
"""

from __future__ import annotations

import io
from pathlib import PurePath
from typing import BinaryIO, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rtcheck.errors import Severity
from rtcheck.report import common as cm
from rtcheck.report.terminal_lesions import print_lesions
from rtcheck.report.terminal_style import (
    Look,
    look_for,
    make_console,
    new_table,
    print_table,
    trimmed,
)
from rtcheck.report.terminal_tables import (
    Groups,
    Notes,
    group_constraints,
    print_not_contoured,
    print_not_evaluated,
    print_notes,
    print_organs,
)
from rtcheck.result import Result, Status, Verdict

__all__ = ["make_console", "render_terminal", "render_text", "write_text"]

_VERDICT_STYLE = {
    Verdict.PASS: "bold white on green",
    Verdict.FAIL: "bold white on red",
    Verdict.INCOMPLETE: "bold black on yellow",
}
_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_SEVERITY_TITLE = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Info"}


def counts_line(result: Result, groups: Groups, look: Look) -> str:
    """``4 failed · 21 passed · 38 not evaluated (37 not contoured, 1 other) · 63 constraints``."""
    n = result.counts
    total = sum(n.values())
    ne = f"{n['not_evaluated']} not evaluated"
    if groups.not_contoured and groups.not_evaluated:
        ne += f" ({len(groups.not_contoured)} not contoured, {len(groups.not_evaluated)} other)"
    elif groups.not_contoured:
        ne += f" ({len(groups.not_contoured)} not contoured)"
    sep = look.sep()
    noun = "constraint" if total == 1 else "constraints"
    return sep.join((f"{n['fail']} failed", f"{n['pass']} passed", ne, f"{total} {noun}"))


def _failed_line(result: Result, look: Look) -> Text | None:
    by_structure: dict[str, list[str]] = {}
    for c in result.all_constraints:
        if c.status is Status.FAIL:
            name = c.lesion or c.structure
            by_structure.setdefault(name, []).append(cm.metric_text(c))
    if not by_structure:
        return None
    parts = "; ".join(f"{name} {', '.join(m)}" for name, m in by_structure.items())
    line = Text("Failed: ", style=look.style("bold red"))
    line.append(parts)
    return line


def _header(console: Console, result: Result, groups: Groups, look: Look) -> None:
    p = result.plan
    symbol, word = cm.VERDICT_LABELS[result.verdict]
    if look.fancy:
        banner = Text(f" {symbol} {word} ", style=look.style(_VERDICT_STYLE[result.verdict]))
    else:
        banner = Text(word)
    console.print(Text.assemble(banner, "  ", counts_line(result, groups, look)))
    console.print(Text(cm.verdict_sentence(result)))
    failed = _failed_line(result, look)
    if failed is not None:
        console.print(failed)
    console.print()
    meta = Table.grid(padding=(0, 2))
    meta.add_column(style=look.style("bold"), no_wrap=True)
    meta.add_column(overflow="fold")
    fx = cm.fractions_text(p)
    dose = p.dose_summation
    if p.alpha_beta:
        dose += "; α/β " + ", ".join(f"{k} {cm.exact_number(v)} Gy" for k, v in p.alpha_beta)
    rows = [
        ("Patient", f"{cm.person_name(p.patient_name)} (ID {p.patient_id or '—'})"),
        ("Plan", ", ".join(p.plan_labels) or "—"),
        ("Fractions", f"{fx} (from {p.fractions_source})"),
        ("Protocol", f"{result.protocol.id}: {result.protocol.title}"),
        ("Version", result.protocol.version),
        ("Dose", dose),
    ]
    if result.protocol.source_file:
        sha = result.protocol.source_sha256
        rows.append(
            ("Protocol file", result.protocol.source_file + (f" (SHA-256 {sha})" if sha else ""))
        )
    if not result.lesions and p.prescriptions:
        rx = ", ".join(f"{t} {cm.fmt_gy(d)} ({s})" for t, d, s in p.prescriptions)
        rows.append(("Prescriptions", rx))
    if result.lesions:  # the lesion table shows each Rx; say where each came from
        by_source: dict[str, list[str]] = {}
        for lesion in result.lesions:
            by_source.setdefault(lesion.prescription_source or "unknown", []).append(lesion.name)
        rows.append(("Rx from", "; ".join(f"{s} ({', '.join(n)})" for s, n in by_source.items())))
    if p.dose_grid:
        rows.append(("Dose grid", p.dose_grid))
    if result.inputs:
        n = len(result.inputs)
        rows.append(
            (
                "Inputs",
                f"{n} file{'s' if n != 1 else ''}, SHA-256 of each in the JSON, HTML, PDF "
                "and JUnit reports",
            )
        )
    for key, value in rows:
        meta.add_row(Text(key), Text(look.plain(value)))
    print_table(console, meta)
    console.print()


def _finding_text(message: str, code: str, groups: Groups) -> str:
    """The not-contoured finding repeats the list printed above: refer to it instead."""
    if code != "structure.not_contoured" or ": " not in message:
        return message
    listed = {c.structure for c in groups.not_contoured}
    names = [n.strip() for n in message.split(": ", 1)[1].split(",")]
    if names and set(names) <= listed:
        return f"{len(names)} protocol structures not contoured in this plan (listed above)"
    return message


def _findings(console: Console, result: Result, groups: Groups, look: Look) -> None:
    rows = cm.all_findings(result)
    if not rows:
        console.print(Text("Findings: none."))
        return
    for severity in (Severity.ERROR, Severity.WARNING, Severity.INFO):
        these = [r for r in rows if r.finding.severity is severity]
        if not these:
            continue
        title = f"{_SEVERITY_TITLE[severity]} ({len(these)})"
        console.print(Text(title, style=look.style(_SEVERITY_STYLE[severity])))
        grid = new_table(look, show_header=False)
        grid.box = None
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for row in these:
            f = row.finding
            text = Text(f"{f.subject or row.where}: ")
            text.append(look.plain(_finding_text(f.message, f.code, groups)))
            if f.source:
                text.append(f" ({PurePath(f.source).name})")
            text.append(f" [{f.code}]", style=look.style("dim"))
            grid.add_row(Text("-" if not look.fancy else "•"), text)
        print_table(console, grid)


def render_terminal(
    result: Result,
    out: Console | TextIO | None = None,
    *,
    color: bool | None = None,
    width: int | None = None,
) -> None:
    """Print the terminal report (see :func:`rtcheck.report.render_terminal`)."""
    console = out if isinstance(out, Console) else make_console(out, color=color, width=width)
    look = look_for(console)
    groups = group_constraints(result)
    notes = Notes()
    with trimmed(console):
        _header(console, result, groups, look)
        print_lesions(console, result, notes, look)
        print_organs(console, groups.organs, notes, look)
        print_not_evaluated(console, groups.not_evaluated, notes, look)
        print_not_contoured(console, groups.not_contoured, look)
        print_notes(console, notes, look)
        _findings(console, result, groups, look)


def render_text(result: Result, width: int = 120) -> str:
    """The terminal report as plain text (no colour codes, ASCII rules and words)."""
    buf = io.StringIO()
    render_terminal(result, buf, color=False, width=width)
    return buf.getvalue()


def write_text(result: Result, out: BinaryIO) -> None:
    """Registry writer for ``.txt``: the plain terminal report in UTF-8."""
    out.write(render_text(result).encode("utf-8"))
