"""``rtcheck batch ROOT --protocol ID --out RESULTS``: check every case under a folder.

Exit code: 2 if any case errored, else 1 if any failed, else 3 if any is incomplete, else 0.
Errors of the batch itself (bad root, protocol, database, scheduler) also exit 2, with one
line on stderr. See ``docs/batch.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from rtcheck.errors import ConfigError

_MAX_ERROR_LINES = 20

_CHECK_OPTIONS = (
    click.option(
        "--fractions",
        type=click.IntRange(min=1),
        default=None,
        help="Number of fractions for every case (default: from each RT Plan).",
    ),
    click.option(
        "--names",
        "names_file",
        type=click.Path(path_type=str, exists=True, dir_okay=False),
        help="YAML map 'protocol name: ROI name' applied to every case.",
    ),
    click.option(
        "--require",
        multiple=True,
        metavar="STRUCTURE",
        help="Protocol structure that must be evaluated (repeatable).",
    ),
    click.option(
        "--alpha-beta", type=float, default=None, help="alpha/beta (Gy) for EQD2/BED limits."
    ),
    click.option(
        "--relative-prescription-gy",
        type=float,
        default=None,
        help="Dose (Gy) a stored value of 1.0 represents, for RELATIVE doses.",
    ),
    click.option(
        "--allow-frame-mismatch",
        is_flag=True,
        help="Accept dose and structures on different frames of reference.",
    ),
)


def check_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the per-case check options shared by ``batch`` and ``serve``."""
    for option in reversed(_CHECK_OPTIONS):
        func = option(func)
    return func


def build_check_options(
    fractions: int | None,
    names_file: str | None,
    require: tuple[str, ...],
    alpha_beta: float | None,
    relative_prescription_gy: float | None,
    allow_frame_mismatch: bool,
) -> Any:
    """The :class:`rtcheck.pipeline.CheckOptions` for every case of a batch."""
    from rtcheck.pipeline import CheckOptions
    from rtcheck.protocol import load_name_map

    return CheckOptions(
        fractions=fractions,
        names=tuple(load_name_map(names_file).items()) if names_file else (),
        require=tuple(require),
        alpha_beta=alpha_beta,
        allow_frame_mismatch=allow_frame_mismatch,
        relative_prescription_gy=relative_prescription_gy,
    )


def parse_formats(text: str) -> tuple[str, ...]:
    """``--report-formats`` text -> format names (``none`` or empty: no per-case reports)."""
    items = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    if items in ((), ("none",)):
        return ()
    if "none" in items:
        raise ConfigError("--report-formats: 'none' cannot be combined with other formats")
    return items


def register(cli: click.Group) -> None:
    """Add ``batch`` to ``cli``."""

    @cli.command("batch")
    @click.argument("root", type=click.Path(path_type=str))
    @click.option("--protocol", "-p", required=True, help="Protocol id or YAML file.")
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
    @click.option(
        "--report-formats",
        default="html,json",
        show_default=True,
        help="Per-case reports, comma separated (html, pdf, json, csv, junit, text) or 'none'.",
    )
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
    @check_options
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
