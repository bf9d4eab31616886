"""Report formats: a name/extension -> writer table (a registry, not an if-chain).

Writers are looked up lazily (``module:function``) so that asking for a JSON report does not
import matplotlib or reportlab. Every writer has the signature
``writer(result: Result, out: BinaryIO) -> None`` and writes the complete file to ``out``;
:func:`rtcheck.report.write_report` wraps it in an atomic write.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from rtcheck.errors import ConfigError

if TYPE_CHECKING:
    from rtcheck.result import Result

__all__ = ["FORMATS", "ReportFormat", "Writer", "format_names", "register", "resolve_format"]

Writer = Callable[["Result", BinaryIO], None]


@dataclass(frozen=True)
class ReportFormat:
    """One output format.

    Attributes
    ----------
    name
        Canonical name (``html``, ``pdf``, ``json``, ``csv``, ``junit``, ``text``).
    extensions
        File extensions (lower case, with the dot) that select this format.
    target
        ``"module:function"`` of the writer, imported on first use.
    description
        One line for help texts and docs.
    aliases
        Other names accepted for ``fmt``.
    """

    name: str
    extensions: tuple[str, ...]
    target: str
    description: str
    aliases: tuple[str, ...] = field(default=())

    @property
    def writer(self) -> Writer:
        """The writer function (imports its module on first use)."""
        module_name, func_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), func_name)


#: Registered formats by canonical name.
FORMATS: dict[str, ReportFormat] = {}
_BY_NAME: dict[str, ReportFormat] = {}
_BY_EXTENSION: dict[str, ReportFormat] = {}


def register(fmt: ReportFormat) -> ReportFormat:
    """Add ``fmt`` to the registry; names and extensions must not collide.

    Raises
    ------
    ValueError
        When a name, alias or extension is already taken.
    """
    for key in (fmt.name, *fmt.aliases):
        if key in _BY_NAME:
            raise ValueError(f"report format name {key!r} is already registered")
    for ext in fmt.extensions:
        if ext in _BY_EXTENSION:
            raise ValueError(f"report extension {ext!r} is already registered")
    FORMATS[fmt.name] = fmt
    for key in (fmt.name, *fmt.aliases):
        _BY_NAME[key] = fmt
    for ext in fmt.extensions:
        _BY_EXTENSION[ext] = fmt
    return fmt


def format_names() -> tuple[str, ...]:
    """Canonical format names, for ``click.Choice`` and error messages."""
    return tuple(FORMATS)


def resolve_format(path: str | Path | None, fmt: str | None = None) -> ReportFormat:
    """The format for ``path``: ``fmt`` when given, else from the file extension.

    Parameters
    ----------
    path
        Output file (may be None when ``fmt`` is given).
    fmt
        Explicit format name or alias (case-insensitive), overriding the extension.

    Raises
    ------
    ConfigError
        Unknown format name, or an extension that selects no format (the message lists
        what is accepted).
    """
    if fmt is not None:
        found = _BY_NAME.get(fmt.strip().lower())
        if found is None:
            raise ConfigError(
                f"unknown report format {fmt!r}; use one of {', '.join(format_names())}",
                path=None if path is None else str(path),
            )
        return found
    suffix = Path(path).suffix.lower() if path is not None else ""
    found = _BY_EXTENSION.get(suffix)
    if found is None:
        exts = ", ".join(sorted(_BY_EXTENSION))
        raise ConfigError(
            f"cannot tell the report format from the extension {suffix or '(none)'!r}; "
            f"use one of {exts} or name the format explicitly",
            path=None if path is None else str(path),
        )
    return found


_PKG = "rtcheck.report"
for _fmt in (
    ReportFormat(
        "html",
        (".html", ".htm"),
        f"{_PKG}.html:write_html",
        "self-contained HTML page (inline CSS and SVG, print-ready)",
    ),
    ReportFormat("pdf", (".pdf",), f"{_PKG}.pdf:write_pdf", "paginated PDF for the patient chart"),
    ReportFormat(
        "json", (".json",), f"{_PKG}.json_report:write_json", "Result.to_dict() (versioned)"
    ),
    ReportFormat("csv", (".csv",), f"{_PKG}.csv_report:write_csv", "one row per constraint"),
    ReportFormat(
        "junit",
        (".xml",),
        f"{_PKG}.junit:write_junit",
        "JUnit XML: one testcase per constraint",
        aliases=("xml", "junit-xml"),
    ),
    ReportFormat(
        "text",
        (".txt",),
        f"{_PKG}.terminal:write_text",
        "the terminal table as plain text",
        aliases=("table", "txt"),
    ),
):
    register(_fmt)
