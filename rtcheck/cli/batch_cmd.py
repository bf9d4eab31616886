"""``rtcheck batch ROOT --protocol ID --out RESULTS``: check every case under a folder.

Exit code: 2 if any case errored, else 1 if any failed, else 3 if any is incomplete, else 0.
Errors of the batch itself (bad root, protocol, database, scheduler) also exit 2, with one
line on stderr. See ``docs/batch.md``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from rtcheck.cli.options import (
    build_check_options,
    check_options,
    dose_reading_options,
    parse_formats,
    protocol_option,
    report_formats_option,
)

_MAX_ERROR_LINES = 20


def register(cli: click.Group) -> None:
    """Add ``batch`` to ``cli``."""

    @cli.command("batch")
    @click.argument("root", type=click.Path(path_type=str))
    @protocol_option()
    @click.option(
        "--out",
        "-o",
        "out",
        required=True,
        type=click.Path(path_type=str, file_okay=False),
        help="Results folder (created if needed).",
    )
    @click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=None,
        help="Worker processes (default: one per CPU core; 1 runs in this process).",
    )
    @click.option(
        "--db",
        default=None,
        help="Results database: SQLite file or SQLAlchemy URL (default: RESULTS/results.sqlite).",
    )
    @click.option(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="Run on a Dask distributed cluster (needs rtcheck[dask]; shared file system).",
    )
    @report_formats_option()
    @click.option(
        "--no-resume",
        is_flag=True,
        help="Recompute every case, even unchanged ones recorded in the database.",
    )
    @click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bar on stderr (default: only on a terminal).",
    )
    @check_options(per_case=True)
    @dose_reading_options()
    def batch(
        root: str,
        protocol: str,
        out: str,
        jobs: int | None,
        db: str | None,
        scheduler: str | None,
        report_formats: str,
        no_resume: bool,
        progress: bool | None,
        **check: Any,
    ) -> int:
        """Check every case found under ROOT (recursively) against a protocol.

        Writes per-case reports under RESULTS/cases/, summary.csv, summary.json and index.html
        in RESULTS, and rows in the results database. Unchanged cases of an earlier run are
        reused, not recomputed.
        """
        from rtcheck.batch import BatchOptions, describe, run_batch

        options = BatchOptions(
            jobs=jobs,
            db=db,
            scheduler=scheduler,
            formats=parse_formats(report_formats),
            resume=not no_resume,
            progress=progress,
            check=build_check_options(**check),
        )
        report = run_batch(root, protocol, out, options)
        errors = [r for r in report.records if r.verdict == "error"]
        for record in errors[:_MAX_ERROR_LINES]:
            print(f"rtcheck: case error: {record.error}", file=sys.stderr)
        if len(errors) > _MAX_ERROR_LINES:
            more = len(errors) - _MAX_ERROR_LINES
            print(f"rtcheck: ... and {more} more errors (see summary.csv)", file=sys.stderr)
        click.echo(describe(report))
        return report.exit_code
