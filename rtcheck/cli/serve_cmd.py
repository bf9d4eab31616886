"""``rtcheck serve``: a DICOM C-STORE receiver that checks each complete, quiet study.

Runs until interrupted (Ctrl-C), then exits 0. Log lines (stored, rejected, checked) go to
stderr. See ``docs/batch.md``.
"""

from __future__ import annotations

import logging
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


def register(cli: click.Group) -> None:
    """Add ``serve`` to ``cli``."""

    @cli.command("serve")
    @protocol_option()
    @click.option(
        "--out",
        "-o",
        required=True,
        type=click.Path(path_type=str, file_okay=False),
        help="Results folder: received objects, reports, summaries, database.",
    )
    @click.option("--port", type=click.IntRange(0, 65535), default=11112, show_default=True)
    @click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to listen on (0.0.0.0 for every interface).",
    )
    @click.option("--ae-title", default="RTCHECK", show_default=True, help="Our AE title.")
    @click.option(
        "--quiet-seconds",
        type=click.FloatRange(min=0),
        default=10.0,
        show_default=True,
        help="Check a study once nothing arrived for it for this long.",
    )
    @click.option(
        "--db", default=None, help="Database file or URL (default RESULTS/results.sqlite)."
    )
    @report_formats_option()
    @click.option("--quiet", "-q", is_flag=True, help="Log warnings and errors only.")
    @check_options(per_case=True)
    @dose_reading_options()
    def serve(
        protocol: str,
        out: str,
        port: int,
        host: str,
        ae_title: str,
        quiet_seconds: float,
        db: str | None,
        report_formats: str,
        quiet: bool,
        **check: Any,
    ) -> int:
        """Receive DICOM RT objects (C-STORE) and check each case once it is complete."""
        from rtcheck.serve import Receiver, ServeOptions

        logger = logging.getLogger("rtcheck.serve")
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("rtcheck serve: %(levelname)s: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
        options = ServeOptions(
            host=host,
            port=port,
            ae_title=ae_title,
            quiet_seconds=quiet_seconds,
            db=db,
            formats=parse_formats(report_formats),
            check=build_check_options(**check),
        )
        Receiver(protocol, out, options).serve_forever()
        return 0
