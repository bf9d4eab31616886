"""Terminal report with rich: colour on a TTY, plain text otherwise.

Every status is a word (and, where the console can print it, a symbol), so the output reads
the same without colour, in a log file or on a screen reader. User strings go into
:class:`rich.text.Text` objects, never into markup, so an ROI called ``[bold]`` prints as is.
"""

from __future__ import annotations

import io
import os
import sys
from typing import BinaryIO, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rtcheck.report import common as cm
from rtcheck.result import ConstraintResult, Result, Status, Verdict

__all__ = ["make_console", "render_terminal", "render_text", "write_text"]

_STATUS_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.NOT_EVALUATED: "yellow",
}
_VERDICT_STYLE = {
    Verdict.PASS: "bold white on green",
    Verdict.FAIL: "bold white on red",
    Verdict.INCOMPLETE: "bold black on yellow",
}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def make_console(out: TextIO | None, *, color: bool | None, width: int | None) -> Console:
    """A Console on ``out`` (stdout when None) honouring ``color`` and ``NO_COLOR``."""
    stream = sys.stdout if out is None else out
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    use_color = (is_tty and "NO_COLOR" not in os.environ) if color is None else color
    return Console(
        file=stream,
        force_terminal=use_color,
        no_color=not use_color,
        color_system="auto" if use_color else None,
        width=width or (None if is_tty else 120),
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def _unicode_ok(console: Console) -> bool:
    return (console.encoding or "").lower().replace("-", "") in ("utf8", "utf16", "utf32")


def _status_text(status: Status, unicode: bool) -> Text:
    symbol, word = cm.STATUS_LABELS[status]
    label = f"{symbol} {word}" if unicode else word
    return Text(label, style=_STATUS_STYLE[status])


def _header(console: Console, result: Result, unicode: bool) -> None:
    p = result.plan
    symbol, word = cm.VERDICT_LABELS[result.verdict]
    banner = Text(
        f" {symbol + ' ' if unicode else ''}{word} ", style=_VERDICT_STYLE[result.verdict]
    )
    line = Text.assemble(banner, "  ", cm.counts_text(result))
    console.print(line)
    console.print(Text(cm.VERDICT_SENTENCES[result.verdict]))
    meta = Table.grid(padding=(0, 2))
    meta.add_column(style="bold")
    meta.add_column()
    rows = [
        ("Patient", f"{cm.person_name(p.patient_name)} (ID {p.patient_id or '—'})"),
        ("Plan", ", ".join(p.plan_labels) or "—"),
        ("Fractions", f"{p.fractions if p.fractions is not None else 'unknown'} "
                      f"(from {p.fractions_source})"),
        ("Protocol", f"{result.protocol.id} v{result.protocol.version} — {result.protocol.title}"),
        ("Dose", p.dose_summation + (
            "; α/β " + ", ".join(f"{k} {v:g} Gy" for k, v in p.alpha_beta)
            if p.alpha_beta else "")),
    ]  # fmt: skip
    for key, value in rows:
        meta.add_row(Text(key), Text(value))
    console.print(meta)


def _lesions(console: Console, result: Result, unicode: bool) -> None:
    if not result.lesions:
        return
    table = Table(title="Lesions", title_justify="left", box=_box(unicode), show_lines=False)
    for col, justify in (("Lesion", "left"), ("Rx", "right"), ("Volume", "right"),
                         ("Metric", "left"), ("Value", "right"), ("Limits", "left"),
                         ("Status", "left")):  # fmt: skip
        table.add_column(col, justify=justify, no_wrap=col in ("Value", "Status"))  # type: ignore[arg-type]
    for lesion in result.lesions:
        first = True
        for row in cm.lesion_rows(lesion):
            c = row.constraint
            limits = c.limits if c is not None else ()
            table.add_row(
                Text(lesion.name if first else "", style="bold"),
                Text(cm.fmt_gy(lesion.prescription_gy) if first else ""),
                Text(cm.fmt_value(lesion.volume_cc, "cc") if first else ""),
                Text(row.label),
                Text(cm.fmt_value(row.value, row.unit, limits)),
                Text(" · ".join(f"{lim.level} {cm.fmt_limit(lim)}" for lim in limits)),
                _status_text(c.status, unicode) if c is not None else Text(""),
            )
            first = False
        table.add_section()
    console.print(table)


def _box(unicode: bool) -> box.Box:
    return box.SIMPLE_HEAD if unicode else box.ASCII2


def _constraints(console: Console, result: Result, unicode: bool) -> None:
    cons: tuple[ConstraintResult, ...] = result.constraints
    if not cons:
        return
    table = Table(title="Organs at risk", title_justify="left", box=_box(unicode))
    for col, justify in (("Structure", "left"), ("ROI", "left"), ("Metric", "left"),
                         ("Value", "right"), ("Limits", "left"), ("Margin", "right"),
                         ("Status", "left"), ("Note", "left")):  # fmt: skip
        table.add_column(
            col,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=col in ("Metric", "Value", "Margin", "Status"),
        )
    for c in cons:
        roi = c.matched_roi or "—"
        if c.match and c.match != "exact":
            roi += f" ({c.match})"
        table.add_row(
            Text(c.structure, style="bold" if c.status is Status.FAIL else ""),
            Text(roi),
            Text(cm.metric_text(c)),
            Text(cm.fmt_value(c.value, c.unit, c.limits)),
            Text(" · ".join(f"{lim.level} {cm.fmt_limit(lim)}" for lim in c.limits)),
            Text(cm.fmt_margin(c)),
            _status_text(c.status, unicode),
            Text(cm.note_text(c)),
        )
    console.print(table)


def _findings(console: Console, result: Result) -> None:
    rows = cm.all_findings(result)
    if not rows:
        console.print(Text("No findings."))
        return
    console.print(Text("Findings", style="bold italic"))
    for row in rows:
        f = row.finding
        word = cm.SEVERITY_LABELS[f.severity][1]
        console.print(
            Text.assemble(
                ("  " + word.ljust(8), _SEVERITY_STYLE.get(f.severity.value, "")),
                f"{f.subject or row.where}: {f.message} ",
                (f"[{f.code}]", "dim"),
            )
        )


def render_terminal(
    result: Result,
    out: Console | TextIO | None = None,
    *,
    color: bool | None = None,
    width: int | None = None,
) -> None:
    """Print the terminal report (see :func:`rtcheck.report.render_terminal`)."""
    console = out if isinstance(out, Console) else make_console(out, color=color, width=width)
    unicode = _unicode_ok(console)
    _header(console, result, unicode)
    console.print()
    _lesions(console, result, unicode)
    _constraints(console, result, unicode)
    _findings(console, result)


def render_text(result: Result, width: int = 120) -> str:
    """The terminal report as plain text (no colour codes)."""
    buf = io.StringIO()
    render_terminal(result, buf, color=False, width=width)
    return buf.getvalue()


def write_text(result: Result, out: BinaryIO) -> None:
    """Registry writer for ``.txt``: the plain terminal report in UTF-8."""
    out.write(render_text(result).encode("utf-8"))
