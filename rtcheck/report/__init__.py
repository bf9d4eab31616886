"""Reports: a :class:`~rtcheck.result.Result` -> HTML, PDF, JSON, CSV, JUnit XML, terminal.

Reports only read the Result; they never compute a dose metric. Every file is written
atomically (:mod:`rtcheck.report.atomic`): a report path holds either its previous content or
the complete new report, never half of one.

Typical use (what ``rtcheck check`` does)::

    from rtcheck.report import render_terminal, resolve_format, write_report

    resolve_format(path)             # validate --report paths before the long evaluation
    write_report(result, "out.html") # format from the extension
    write_report(result, "ci.xml", "junit")
    render_terminal(result, sys.stdout)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

from rtcheck.report.atomic import atomic_write
from rtcheck.report.registry import FORMATS, ReportFormat, format_names, resolve_format

if TYPE_CHECKING:
    from rich.console import Console

    from rtcheck.result import Result

__all__ = [
    "FORMATS",
    "ReportFormat",
    "format_names",
    "render_json",
    "render_terminal",
    "resolve_format",
    "write_report",
]


def write_report(
    result: Result, path: str | os.PathLike[str], fmt: str | None = None
) -> ReportFormat:
    """Write ``result`` to ``path`` atomically.

    Parameters
    ----------
    result
        The evaluation result.
    path
        Output file; its folder must exist. An existing file is replaced only once the new
        report is complete.
    fmt
        ``html``, ``pdf``, ``json``, ``csv``, ``junit`` or ``text`` (aliases ``xml``,
        ``table``...). None: from the extension (``.html .htm .pdf .json .csv .xml .txt``).

    Returns
    -------
    ReportFormat
        The format that was written (for messages such as "wrote HTML report to ...").

    Raises
    ------
    ConfigError
        Unknown format or extension.
    RtcheckError
        The file cannot be written (missing folder, permissions, disk full); ``path`` names it.
    """
    report_format = resolve_format(path, fmt)
    writer = report_format.writer
    atomic_write(path, lambda out: writer(result, out))
    return report_format


def render_terminal(
    result: Result,
    out: Console | TextIO | None = None,
    *,
    color: bool | None = None,
    width: int | None = None,
) -> None:
    """Print the verdict, lesions, constraints and findings as rich tables.

    Parameters
    ----------
    result
        The evaluation result.
    out
        A :class:`rich.console.Console` (used as is), a text stream, or None for stdout.
    color
        None: colour only when ``out`` is a terminal (and ``NO_COLOR`` is unset). True/False
        force it on/off. Ignored when ``out`` is a Console.
    width
        Line width; default: the terminal's, or 120 for files and pipes.
    """
    from rtcheck.report.terminal import render_terminal as _render

    _render(result, out, color=color, width=width)


def render_json(result: Result, *, indent: int | None = 2) -> str:
    """``Result.to_dict()`` as JSON text (what ``--format json`` prints), newline-terminated."""
    from rtcheck.report.json_report import dumps

    return dumps(result, indent=indent)
