"""`rtcheck sample OUTDIR [--case NAME]`: write the synthetic sample cases."""

from __future__ import annotations

from pathlib import Path

import click

from rtcheck.errors import ConfigError


def register(cli: click.Group) -> None:
    """Add this subcommand to ``cli``."""

    @cli.command(
        "sample",
        help=(
            "Write the synthetic oligometastatic NSCLC sample cases (CT, RT Structure Set, "
            "RT Plan, RT Dose, expected.json) into OUTDIR. Regenerating gives byte-identical "
            "files. Without --case every case and README.md are written."
        ),
    )
    @click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
    @click.option(
        "--case",
        "cases",
        multiple=True,
        metavar="NAME",
        help="Case to write (repeatable): oligo_single, oligo_single_clinic, oligo_multi.",
    )
    def sample(outdir: Path, cases: tuple[str, ...]) -> int:
        from rtcheck.sample import CASE_NAMES, generate

        unknown = [c for c in cases if c not in CASE_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown sample case {', '.join(unknown)}; choose from {', '.join(CASE_NAMES)}"
            )
        if outdir.exists() and not outdir.is_dir():
            raise ConfigError("output path exists and is not a folder", str(outdir))
        files = generate(outdir, tuple(cases) or None)
        size = sum(f.stat().st_size for f in files)
        click.echo(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {outdir}")
        return 0
