"""Command-line interface: ``main(argv) -> int`` so tests can call it.

Each subcommand lives in its own module ``<name>_cmd.py`` with a ``register(group)``
function adding a :mod:`click` command that *returns* its exit code. Errors that are
:class:`~rtcheck.errors.RtcheckError` print one line (``rtcheck: error: file: problem``) on
stderr and give exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence

import click

from rtcheck import __version__
from rtcheck.errors import RtcheckError
from rtcheck.result import EXIT_CODES

_SUBCOMMANDS = (
    "info",
    "sample",
    "dvh",
    "check",
    "protocols",
    "schema",
    "sum",
    "batch",
    "history",
    "serve",
)


class _State:
    debug = False


def build_cli() -> click.Group:
    """The ``rtcheck`` command group with every subcommand registered."""

    @click.group(
        name="rtcheck",
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Check radiotherapy treatment plans (DICOM RT) against dose constraints.",
    )
    @click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
    @click.version_option(__version__, prog_name="rtcheck")
    def cli(debug: bool) -> None:
        _State.debug = debug

    for name in _SUBCOMMANDS:
        importlib.import_module(f"rtcheck.cli.{name}_cmd").register(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    _State.debug = "--debug" in args
    try:
        rv = build_cli().main(args=args, prog_name="rtcheck", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        print("rtcheck: aborted", file=sys.stderr)
        return EXIT_CODES["error"]
    except click.ClickException as exc:
        print(f"rtcheck: {exc.format_message()}", file=sys.stderr)
        return EXIT_CODES["error"]
    except RtcheckError as exc:
        if _State.debug:
            traceback.print_exc()
        print(f"rtcheck: error: {exc}", file=sys.stderr)
        return EXIT_CODES["error"]
    except KeyboardInterrupt:
        print("rtcheck: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless --debug
        if _State.debug:
            raise
        print(
            f"rtcheck: internal error: {type(exc).__name__}: {exc} "
            "(re-run with --debug for the traceback and please report it)",
            file=sys.stderr,
        )
        return EXIT_CODES["error"]
    return int(rv) if isinstance(rv, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
