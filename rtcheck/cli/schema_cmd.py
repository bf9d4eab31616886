"""``rtcheck schema``: print the JSON Schema of the result JSON, or check a file against it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rtcheck.errors import InputError
from rtcheck.result import EXIT_CODES


def register(cli: click.Group) -> None:
    """Add this subcommand to ``cli``."""

    @cli.command(
        "schema",
        help=(
            "Print the JSON Schema (draft 2020-12) of the result JSON that "
            "`rtcheck check --json` writes. Its $id carries the schema version. "
            "With --validate FILE, check a result JSON against it instead (exit 0 valid, 2 not)."
        ),
    )
    @click.option(
        "--validate",
        "validate_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="A result JSON file to check against the schema.",
    )
    def schema(validate_path: Path | None) -> int:
        from rtcheck.report.schema import SchemaError, result_schema, validate

        if validate_path is None:
            click.echo(json.dumps(result_schema(), indent=2, ensure_ascii=False))
            return EXIT_CODES["pass"]
        try:
            doc = json.loads(validate_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", path=str(validate_path)) from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not a JSON file: {exc}", path=str(validate_path)) from exc
        try:
            validate(doc)
        except SchemaError as exc:
            raise InputError(
                f"does not match the result schema: {exc} ({len(exc.problems)} problems)",
                path=str(validate_path),
            ) from exc
        click.echo(f"{validate_path}: valid rtcheck result JSON")
        return EXIT_CODES["pass"]
