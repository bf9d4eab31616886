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
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from rtcheck.report.atomic import atomic_write, atomic_write_all
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
    "write_reports",
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


def write_reports(
    result: Result, targets: Sequence[tuple[str | os.PathLike[str], str | None]]
) -> list[ReportFormat]:
    """Write ``result`` to several files as one set (see :func:`.atomic.atomic_write_all`).

    Every report is rendered to a temporary file first; the targets are replaced only when
    all of them are complete, so a failure (a folder turned read-only, a full disk) leaves the
    previous files in place rather than a mixture of new and old reports.

    Parameters
    ----------
    result
        The evaluation result.
    targets
        ``(path, fmt)`` pairs as for :func:`write_report`.

    Returns
    -------
    list of ReportFormat
        The format written to each path, in order.

    Raises
    ------
    ConfigError, RtcheckError
        As :func:`write_report`; nothing has been replaced.
    """
    formats = [resolve_format(path, fmt) for path, fmt in targets]
    atomic_write_all(
        [
            (path, lambda out, w=f.writer: w(result, out))
            for (path, _), f in zip(targets, formats, strict=True)
        ]
    )
    return formats


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
