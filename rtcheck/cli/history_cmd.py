"""``rtcheck history --db PATH``: failure rates per constraint over time, or past evaluations.

Default view: per protocol, constraint and period, how many results passed, failed or could
not be evaluated, and the failure rate among evaluated results. ``--cases`` lists the case
evaluations instead. ``--failures`` keeps only failing constraints (or failed/errored cases).
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from rtcheck.cli.options import format_option
from rtcheck.errors import ConfigError

_RATE_COLUMNS = (
    "protocol_id",
    "constraint_id",
    "structure",
    "period",
    "n",
    "pass",
    "fail",
    "not_evaluated",
    "fail_rate",
)
_CASE_COLUMNS = (
    "created",
    "patient_id",
    "label",
    "protocol_id",
    "verdict",
    "n_pass",
    "n_fail",
    "n_not_evaluated",
    "error",
)


def parse_since(text: str | None) -> datetime | None:
    """``YYYY-MM-DD`` or an ISO 8601 time (UTC unless it says otherwise) -> aware datetime.

    Raises
    ------
    ConfigError
        Not a date.
    """
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--since: {text!r} is not a date (use YYYY-MM-DD)") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _print_table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str) -> None:
    from rich import box
    from rich.table import Table

    from rtcheck.report.terminal_style import make_console

    console = make_console(None, color=None, width=None)
    if not console.is_terminal:  # a pipe or a log: one line per row, however long
        console = make_console(None, color=None, width=10_000)
    table = Table(title=title, box=box.SQUARE if console.is_terminal else box.ASCII)
    for col in columns:
        right = col.startswith(("n", "pass", "fail"))
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def _emit(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str, title: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
    elif not rows:
        click.echo("no matching results")
    else:
        _print_table(rows, columns, title)


def register(cli: click.Group) -> None:
    """Add ``history`` to ``cli``."""

    @cli.command("history")
    @click.option("--db", required=True, help="Results database: SQLite file or SQLAlchemy URL.")
    @click.option("--patient", default=None, help="Only this patient ID.")
    @click.option("--protocol", default=None, help="Only this protocol id.")
    @click.option(
        "--failures",
        is_flag=True,
        help="Only constraints that failed (with --cases: only failed or errored cases).",
    )
    @click.option("--since", default=None, help="Only evaluations from this date (YYYY-MM-DD).")
    @click.option(
        "--period",
        type=click.Choice(["day", "week", "month", "year", "all"]),
        default="month",
        show_default=True,
        help="Time bucket of the failure rates.",
    )
    @click.option("--cases", "show_cases", is_flag=True, help="List case evaluations instead.")
    @format_option(csv=True, text=None)
    def history(
        db: str,
        patient: str | None,
        protocol: str | None,
        failures: bool,
        since: str | None,
        period: str,
        show_cases: bool,
        fmt: str,
    ) -> int:
        """Failure rates per constraint over time (or past case evaluations) from a database."""
        import os

        from rtcheck.db import HistoryQuery, ResultsDB, case_history, constraint_rates

        if "://" not in db and not os.path.isfile(db):
            raise ConfigError("no such database file", path=db)
        query = HistoryQuery(patient, protocol, parse_since(since), failures, period)
        with ResultsDB.open(db) as store:
            if show_cases:
                rows = case_history(store, query)
                _emit(rows, _CASE_COLUMNS, fmt, "case evaluations")
            else:
                rows = constraint_rates(store, query)
                _emit(rows, _RATE_COLUMNS, fmt, f"constraint results per {period}")
        return 0
