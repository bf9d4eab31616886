"""Option groups shared by the subcommands, each option declared once.

A group is a function returning a decorator that adds its :mod:`click` options to a command,
in the order they appear in ``--help``. Where a command words an option for its own use (for
every case of a batch, for ``info``'s report), the group takes that as an argument; name,
type and default never change between commands.

* :func:`input_options`: ``check`` (several doses and plans), ``dvh`` (one dose).
* :func:`dose_reading_options`: ``check``, ``info``, ``batch``, ``serve`` and ``dvh``.
* :func:`check_options`: ``check`` (with ``--rx``), ``batch`` and ``serve`` (per case).
* :func:`protocol_option`, :func:`report_formats_option`: ``batch`` and ``serve``.
* :func:`format_option`: ``check``, ``info``, ``dvh``, ``history``, ``protocols``.

:func:`build_check_options` turns the values of these options into the
:class:`rtcheck.pipeline.CheckOptions` of ``check``, and of every case of ``batch`` and
``serve``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from rtcheck.errors import ConfigError

if TYPE_CHECKING:
    from rtcheck.pipeline import CheckOptions

F = TypeVar("F", bound=Callable[..., Any])

#: An existing file (not a folder), passed on as ``str``.
EXISTING_FILE = click.Path(path_type=str, exists=True, dir_okay=False)

RELATIVE_HELP = "Dose (Gy) a stored value of 1.0 represents, for RELATIVE doses."
FRAME_HELP = "Accept dose and structures on different frames of reference."

_FRACTIONS_HELP = {
    False: "Number of fractions; if the RT Plan states another number the plan is not "
    "cleared unless you also give --fractions-override.",
    True: "Number of fractions for every case (default: from each RT Plan); a case whose "
    "RT Plan states another number is not cleared unless you also give --fractions-override.",
}
_ALPHA_BETA_HELP = {
    False: "alpha/beta (Gy) for EQD2/BED limits that state none; STRUCTURE=GY for one "
    "protocol structure (repeatable, e.g. --alpha-beta 3 --alpha-beta SpinalCord=2).",
    True: "alpha/beta (Gy) for EQD2/BED limits; STRUCTURE=GY for one protocol structure "
    "(repeatable).",
}


def _group(options: Sequence[Callable[[F], F]]) -> Callable[[F], F]:
    """One decorator applying ``options`` so that they show in ``--help`` in this order."""

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def input_options(*, several: bool = True) -> Callable[[F], F]:
    """``--rtstruct`` and ``--rtdose`` files; with ``several``, repeatable and ``--rtplan``.

    Parameters
    ----------
    several
        True (``check``): ``--rtdose`` and ``--rtplan`` are repeatable (tuples). False
        (``dvh``): one ``--rtdose`` (a ``str`` or None) and no ``--rtplan``.
    """
    repeatable = "repeatable; " if several else ""
    options = [
        click.option(
            "--rtstruct", type=EXISTING_FILE, help="RT Structure Set file (with --rtdose)."
        ),
        click.option(
            "--rtdose",
            multiple=several,
            type=EXISTING_FILE,
            help=f"RT Dose file ({repeatable}with --rtstruct).",
        ),
    ]
    if several:
        options.append(
            click.option(
                "--rtplan", multiple=True, type=EXISTING_FILE, help="RT Plan file (repeatable)."
            )
        )
    return _group(options)


def dose_reading_options(
    *,
    frame_mismatch: bool = True,
    relative_help: str = RELATIVE_HELP,
    frame_help: str = FRAME_HELP,
) -> Callable[[F], F]:
    """``--relative-prescription-gy`` and (with ``frame_mismatch``) ``--allow-frame-mismatch``.

    Parameters
    ----------
    frame_mismatch
        False for commands that report a frame mismatch instead of refusing it (``dvh``).
    relative_help, frame_help
        The commands' own wording of the two options (``info``).
    """
    options = [
        click.option("--relative-prescription-gy", type=float, default=None, help=relative_help),
    ]
    if frame_mismatch:
        options.append(click.option("--allow-frame-mismatch", is_flag=True, help=frame_help))
    return _group(options)


def check_options(*, per_case: bool = False) -> Callable[[F], F]:
    """What a check needs besides the files: fractions, names, required structures, alpha/beta.

    ``--fractions``, ``--fractions-override``, ``--names``, ``--require``, ``--alpha-beta``;
    for one plan (``check``) also ``--rx`` and ``--rx-file`` after ``--fractions-override``.

    Parameters
    ----------
    per_case
        True for ``batch`` and ``serve``: the options apply to every case (help says so) and
        there is no ``--rx`` (target names differ between cases).
    """
    every = " applied to every case" if per_case else ""
    options = [
        click.option(
            "--fractions",
            type=click.IntRange(min=1),
            default=None,
            help=_FRACTIONS_HELP[per_case],
        ),
        click.option(
            "--fractions-override",
            is_flag=True,
            help="Confirm --fractions for plans whose RT Plan states another number (a "
            "WARNING in the report instead of an incomplete verdict).",
        ),
    ]
    if not per_case:
        options += [
            click.option(
                "--rx",
                "rx",
                multiple=True,
                metavar="TARGET=GY",
                help="Prescription of a target (repeatable), e.g. --rx PTV1=40.",
            ),
            click.option("--rx-file", type=EXISTING_FILE, help="File of TARGET=GY lines."),
        ]
    options += [
        click.option(
            "--names",
            "names_file",
            type=EXISTING_FILE,
            help=f"YAML map 'protocol name: ROI name'{every}.",
        ),
        click.option(
            "--require",
            multiple=True,
            metavar="STRUCTURE",
            help="Protocol structure that must be evaluated (repeatable).",
        ),
        click.option(
            "--alpha-beta",
            multiple=True,
            metavar="[STRUCTURE=]GY",
            help=_ALPHA_BETA_HELP[per_case],
        ),
    ]
    return _group(options)


def format_option(*, csv: bool = False, text: str | None = "Output format.") -> Callable[[F], F]:
    """``--format`` (parameter ``fmt``): ``table`` (the default) or ``json``.

    Parameters
    ----------
    csv
        Also offer ``csv``.
    text
        The command's help for the option (None: none).
    """
    choices = ["table", "json", "csv"] if csv else ["table", "json"]
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default="table", show_default=True, help=text
    )


def protocol_option() -> Callable[[F], F]:
    """``--protocol``/``-p`` (required) of ``batch`` and ``serve``."""
    return click.option("--protocol", "-p", required=True, help="Protocol id or YAML file.")


def report_formats_option() -> Callable[[F], F]:
    """``--report-formats`` of ``batch`` and ``serve`` (parse with :func:`parse_formats`)."""
    return click.option(
        "--report-formats",
        default="html,json",
        show_default=True,
        help="Per-case reports, comma separated (html, pdf, json, csv, junit, text) or 'none'.",
    )


def parse_formats(text: str) -> tuple[str, ...]:
    """``--report-formats`` text -> format names (``none`` or empty: no per-case reports)."""
    items = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    if items in ((), ("none",)):
        return ()
    if "none" in items:
        raise ConfigError("--report-formats: 'none' cannot be combined with other formats")
    return items


def build_check_options(
    *,
    fractions: int | None = None,
    fractions_override: bool = False,
    rx: tuple[str, ...] = (),
    rx_file: str | None = None,
    names_file: str | None = None,
    require: tuple[str, ...] = (),
    alpha_beta: tuple[str, ...] | float | None = None,
    rtstruct: str | None = None,
    rtdose: tuple[str, ...] = (),
    rtplan: tuple[str, ...] = (),
    relative_prescription_gy: float | None = None,
    allow_frame_mismatch: bool = False,
) -> CheckOptions:
    """The :class:`rtcheck.pipeline.CheckOptions` from the values of the option groups.

    Takes the parameters the groups declare (by their click names), so a command passes
    them on with ``**values``. Reads ``--names`` and ``--rx-file`` files.

    Raises
    ------
    ConfigError
        A target given twice in ``--rx``/``--rx-file``, an unreadable names map, or values
        :class:`~rtcheck.pipeline.CheckOptions` refuses (``--fractions-override`` without
        ``--fractions``, a non-positive ``--alpha-beta``).
    """
    from rtcheck.pipeline import CheckOptions
    from rtcheck.protocol import load_name_map

    default_ab, per_structure_ab = parse_alpha_beta(alpha_beta)
    return CheckOptions(
        fractions=fractions,
        fractions_override=fractions_override,
        rx=_rx(rx, rx_file),
        names=tuple(load_name_map(names_file).items()) if names_file else (),
        require=tuple(require),
        alpha_beta=default_ab,
        alpha_beta_structures=per_structure_ab,
        rtstruct=rtstruct,
        rtdose=tuple(rtdose),
        rtplan=tuple(rtplan),
        allow_frame_mismatch=allow_frame_mismatch,
        relative_prescription_gy=relative_prescription_gy,
    )


def parse_alpha_beta(
    values: tuple[str, ...] | float | None,
) -> tuple[float | None, tuple[tuple[str, float], ...]]:
    """``--alpha-beta`` values -> (default Gy or None, ``(structure, Gy)`` pairs).

    ``GY`` sets the value for every EQD2/BED limit that states none; ``STRUCTURE=GY`` for one
    protocol structure (it wins over the default). Given twice for one target: an error.
    """
    if values is None or isinstance(values, int | float):
        return (None if values is None else float(values)), ()
    default: float | None = None
    per: dict[str, float] = {}
    for text in values:
        name, sep, number = text.rpartition("=")
        try:
            gy = float(number)
        except ValueError:
            raise ConfigError(
                f"--alpha-beta {text!r}: expected GY or STRUCTURE=GY (e.g. SpinalCord=2)"
            ) from None
        name = name.strip()
        if sep and not name:
            raise ConfigError(f"--alpha-beta {text!r}: the structure name is missing")
        if (name in per) if sep else (default is not None):
            raise ConfigError(f"--alpha-beta given twice for {name or 'the default'}")
        if sep:
            per[name] = gy
        else:
            default = gy
    return default, tuple(per.items())


def _rx(rx: tuple[str, ...], rx_file: str | None) -> tuple[tuple[str, float], ...]:
    """``--rx`` and ``--rx-file`` as ``(target, Gy)`` pairs; a target given twice is refused."""
    from rtcheck.prescriptions import parse_rx_text, read_rx_file

    pairs = [parse_rx_text(text) for text in rx]
    if rx_file:
        pairs += list(read_rx_file(rx_file))
    names = [n for n, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--rx: {', '.join(twice)} given more than once")
    return tuple(pairs)
