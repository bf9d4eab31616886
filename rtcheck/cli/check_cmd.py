"""``rtcheck check PATH --protocol ID``: check a plan against a protocol; exit code by verdict.

Prints the terminal table (or, with ``--format json``, ``Result.to_dict()``) on stdout, writes
the requested reports, and returns 0 (pass), 1 (fail), 3 (incomplete); errors give 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from rtcheck.cli.options import (
    build_check_options,
    check_options,
    dose_reading_options,
    format_option,
    input_options,
)
from rtcheck.errors import ConfigError, RtcheckError
from rtcheck.pipeline import check_path
from rtcheck.protocol import load_protocol
from rtcheck.report import render_json, render_terminal, resolve_format, write_reports
from rtcheck.result import Result


def register(cli: click.Group) -> None:
    """Add ``check`` to ``cli``."""

    @cli.command("check")
    @click.argument("path", required=False, type=click.Path(path_type=str))
    @click.option(
        "--protocol", "protocol_ref", required=True, help="Protocol id (e.g. tg101) or YAML file."
    )
    @check_options()
    @format_option(text="What to print on stdout.")
    @click.option(
        "--report",
        "reports",
        multiple=True,
        type=click.Path(path_type=str),
        help="Write a report; format from the extension (.html .pdf .json .csv .xml .txt).",
    )
    @click.option(
        "--json",
        "json_out",
        type=click.Path(path_type=str),
        help="Write the JSON result to this file.",
    )
    @click.option(
        "--csv",
        "csv_out",
        type=click.Path(path_type=str),
        help="Write the CSV report to this file.",
    )
    @click.option(
        "--junit", "junit_out", type=click.Path(path_type=str), help="Write JUnit XML to this file."
    )
    @input_options(several=True)
    @dose_reading_options()
    @click.option(
        "--color/--no-color",
        default=None,
        help="Colour in the terminal table [default: when a terminal].",
    )
    def check(
        path: str | None,
        protocol_ref: str,
        fmt: str,
        reports: tuple[str, ...],
        json_out: str | None,
        csv_out: str | None,
        junit_out: str | None,
        color: bool | None,
        **values: Any,
    ) -> int:
        """Check the plan in PATH (a folder, or --rtstruct/--rtdose files) against a protocol.

        Exit codes: 0 pass, 1 fail, 2 error, 3 incomplete (nothing failed but something
        required could not be evaluated).
        """
        if path is None and values["rtstruct"] is None and not values["rtdose"]:
            raise ConfigError("give a plan folder, or --rtstruct and --rtdose files")
        outputs = _outputs(reports, json_out, csv_out, junit_out)
        options = build_check_options(**values)
        protocol = load_protocol(protocol_ref)
        result = check_path(path, protocol, options)
        _print(result, fmt, color)
        for (out, _), written in zip(outputs, write_reports(result, outputs), strict=True):
            click.echo(f"rtcheck: wrote {written.name} report {out}", err=True)
        return result.exit_code


def _outputs(
    reports: tuple[str, ...], json_out: str | None, csv_out: str | None, junit_out: str | None
) -> list[tuple[str, str | None]]:
    """Report paths and formats, validated before the (long) evaluation."""
    out: list[tuple[str, str | None]] = [(p, None) for p in reports]
    out += [
        (p, kind) for p, kind in ((json_out, "json"), (csv_out, "csv"), (junit_out, "junit")) if p
    ]
    for p, kind in out:
        resolve_format(p, kind)
        _check_writable(p)
    return out


def _check_writable(path: str) -> None:
    """Refuse a report path that cannot be written, before the evaluation (not after it).

    The report is written to a temporary file beside the target (beside the file a symbolic
    link points to), then renamed over it (:mod:`rtcheck.report.atomic`). So that folder must
    exist and be writable, and the target, if it exists, must be a regular file (not a
    folder, nor a device, pipe or socket, which the rename would replace).
    """
    shown = Path(path)
    target = Path(os.path.realpath(shown)) if shown.is_symlink() else shown
    folder = target.parent
    if not folder.is_dir():
        why = "does not exist" if not folder.exists() else "is not a folder"
        raise RtcheckError(f"cannot write report: folder {folder} {why}; create it first", path)
    if target.is_dir():
        raise RtcheckError("cannot write report: the path is a folder", path)
    if target.exists() and not target.is_file():
        raise RtcheckError(
            "cannot write report: the path exists and is not a regular file (a device, pipe "
            "or socket); choose another file name",
            path,
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RtcheckError(f"cannot write report: folder {folder} is not writable", path)


def _print(result: Result, fmt: str, color: bool | None) -> None:
    if fmt == "json":
        sys.stdout.write(render_json(result))
        sys.stdout.flush()
        return
    render_terminal(result, sys.stdout, color=color)
