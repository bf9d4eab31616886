"""``rtcheck sum PATH -o sum.dcm``: sum the plan doses of a case into one RT Dose.

Physical sum when every plan has the same number of fractions; ``--eqd2``/``--bed`` convert
each plan's dose voxel-wise with its own dose per fraction before summing (one alpha/beta
for the whole volume). The output is a MULTI_PLAN RT Dose that references every source RT
Plan; DoseType PHYSICAL for a physical sum, EFFECTIVE for EQD2/BED with the method and
alpha/beta in DoseComment and SeriesDescription. Written atomically with
:mod:`rtcheck.report.atomic` (temporary file beside the output, then a rename), which never
replaces a folder, named pipe, socket or device; the output path is checked before the sum.

Exit codes: 0 written; 2 error (nothing written); 3 written, but a plan's dose could not be
included or checked (ERROR findings, printed on stderr).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from rtcheck.composite import Composite
from rtcheck.doseset import DoseSet, dose_set
from rtcheck.errors import (
    ConfigError,
    Finding,
    InputError,
    RtcheckError,
    Severity,
    UnsupportedError,
)
from rtcheck.io.caseload import special_kind
from rtcheck.io.discover import load_case
from rtcheck.io.write import uid_from, write_dose
from rtcheck.model import Case, SourceFile
from rtcheck.radiobiology import DEFAULT_ALPHA_BETA, AlphaBeta
from rtcheck.report.atomic import atomic_open
from rtcheck.result import EXIT_CODES


def register(cli: click.Group) -> None:
    """Add ``sum`` to ``cli``."""

    @cli.command("sum")
    @click.argument("path", type=click.Path(path_type=str))
    @click.option(
        "-o",
        "--output",
        required=True,
        type=click.Path(path_type=str),
        help="RT Dose file to write.",
    )
    @click.option("--eqd2", is_flag=True, help="Sum in EQD2 (LQ, per plan).")
    @click.option("--bed", is_flag=True, help="Sum in BED (LQ, per plan).")
    @click.option(
        "--alpha-beta",
        type=float,
        default=None,
        help="alpha/beta in Gy for --eqd2/--bed [default: 3, late normal tissue].",
    )
    @click.option(
        "--grid",
        "grid",
        default="finest",
        show_default=True,
        help="Summation grid: finest (common grid, finest spacing), first (grid of "
        "the first plan's dose) or a spacing in mm.",
    )
    @click.option(
        "--force-physical",
        is_flag=True,
        help="Allow a physical sum of plans with different fraction counts.",
    )
    def sum_(
        path: str,
        output: str,
        eqd2: bool,
        bed: bool,
        alpha_beta: float | None,
        grid: str,
        force_physical: bool,
    ) -> int:
        """Sum the plan doses found in PATH into one RT Dose (OUTPUT)."""
        if eqd2 and bed:
            raise ConfigError("give --eqd2 or --bed, not both")
        method = "EQD2" if eqd2 else "BED" if bed else "physical"
        if force_physical and method != "physical":
            raise ConfigError("--force-physical applies only to a physical sum")
        return run_sum(path, output, method, alpha_beta, grid, force_physical)


def parse_grid(text: str) -> str | float:
    """``finest``, ``first`` or a positive spacing in mm."""
    key = text.strip().lower()
    if key in ("finest", "first"):
        return key
    try:
        value = float(key.removesuffix("mm"))
    except ValueError:
        raise ConfigError(f"--grid {text!r}: expected finest, first or a spacing in mm") from None
    if not value > 0:
        raise ConfigError(f"--grid {text!r}: spacing must be > 0 mm")
    return value


def alpha_beta_for_sum(method: str, value: float | None) -> AlphaBeta | None:
    """The single alpha/beta of a sum: the option, else rtcheck's late-tissue default."""
    if method == "physical":
        if value is not None:
            raise ConfigError("--alpha-beta applies only with --eqd2 or --bed")
        return None
    if value is not None:
        if not value > 0:
            raise ConfigError(f"--alpha-beta must be > 0 Gy, got {value:g}")
        return AlphaBeta(value, "command line (--alpha-beta)")
    ab, source = DEFAULT_ALPHA_BETA["late"]
    return AlphaBeta(ab, source, "late")


def run_sum(
    path: str,
    output: str,
    method: str,
    alpha_beta: float | None,
    grid: str,
    force_physical: bool,
) -> int:
    """Load, sum, write; print findings on stderr and one summary line on stdout."""
    ab = alpha_beta_for_sum(method, alpha_beta)
    check_output(output)
    case = load_case(path)
    ds = dose_set(case, grid=parse_grid(grid))
    try:
        comp = ds.composite(method, None if ab is None else ab.value, force_physical=force_physical)
    except UnsupportedError as exc:
        hint = " (options --eqd2, --bed, --force-physical)" if method == "physical" else ""
        raise UnsupportedError(exc.message + hint, path) from exc
    findings = _findings(case, ds, comp)
    write_composite(comp, case, output)
    for f in findings:
        if f.severity != Severity.INFO:
            where = f"{f.source}: " if f.source else ""
            click.echo(f"rtcheck: {f.severity.value}: {where}{f.message}", err=True)
    click.echo(f"{Path(output).name}: {_summary(comp, ab)}")
    errors = any(f.severity == Severity.ERROR for f in findings)
    return EXIT_CODES["incomplete"] if errors else EXIT_CODES["pass"]


def _findings(case: Case, ds: DoseSet, comp: Composite) -> list[Finding]:
    out: list[Finding] = []
    for f in (*case.findings, *ds.findings, *comp.findings):
        if f not in out:
            out.append(f)
    return out


def _summary(comp: Composite, ab: AlphaBeta | None) -> str:
    plans = ", ".join(f"{pd.label} ({pd.fractions or '?'} fx)" for pd in comp.plan_doses)
    if comp.method == "physical":
        how = "physical sum"
    else:
        origin = "--alpha-beta" if ab is None or ab.organ_class is None else "rtcheck default"
        how = f"{comp.method} sum (LQ per plan, a/b = {comp.alpha_beta:g} Gy, {origin})"
    regrid = comp.regrid_error_gy
    extra = "" if regrid is None else f" (re-gridding error up to {regrid:.2g} Gy)"
    return (
        f"{how} of {len(comp.plan_doses)} plan(s) [{plans}] on {comp.grid_description}"
        f"{extra}; max {comp.dose.max_gy:.2f} Gy"
    )


def short_description(comp: Composite) -> str:
    """SeriesDescription and DoseComment (<= 64 characters).

    E.g. ``rtcheck EQD2(a/b=3) sum of 4 plans``.
    """
    return f"rtcheck {comp.basis} sum of {len(comp.plan_doses)} plans"[:64]


def check_output(output: str) -> Path:
    """The output path, refused up front when it names a folder or a missing folder.

    A name ending in a path separator means a folder even when none exists yet (``-o out/``
    would otherwise write a file called ``out``). Anything but a regular file at the path is
    refused again by the atomic writer just before and after writing.

    Raises
    ------
    ConfigError
        The path is (or names) a folder, is a named pipe, socket or device, or its folder
        does not exist.
    """
    target = Path(output)
    if output.endswith(("/", os.sep)) or target.is_dir():
        raise ConfigError("output is a folder; give a file name such as sum.dcm", output)
    if not target.parent.is_dir():
        raise ConfigError("the output folder does not exist", str(target.parent))
    kind = special_kind(os.stat(target).st_mode) if target.exists() else None
    if kind is not None:  # never write into a named pipe or device (it may block)
        raise ConfigError(f"output is {kind}, not a regular file; give a file name", output)
    return target


def write_composite(comp: Composite, case: Case, output: str) -> str:
    """Write ``comp`` as an RT Dose atomically with :mod:`rtcheck.report.atomic`.

    The RT Dose is written to a private temporary folder, then copied into a temporary file
    beside ``output`` and renamed over it; only a regular file (or nothing) is ever replaced.
    Returns the SOP Instance UID written.
    """
    target = check_output(output)
    if target.exists() and any(os.path.samefile(target, f.path) for f in _existing(case)):
        raise ConfigError("refusing to overwrite an input file of the case", str(target))
    frame = comp.dose.frame_of_reference_uid or (
        case.structure_set.frame_of_reference_uid if case.structure_set else None
    )
    if not frame:
        raise InputError("no FrameOfReferenceUID in the doses or structures; cannot write a dose")
    plan_uids = tuple(dict.fromkeys(pd.plan_uid for pd in comp.plan_doses if pd.plan_uid))
    if not plan_uids:
        raise InputError("no source RT Plan UID is known; a MULTI_PLAN RT Dose must reference one")
    study = case.study_instance_uid or uid_from("rtcheck-sum-study", frame, *plan_uids)
    with tempfile.TemporaryDirectory(prefix="rtcheck-sum-") as scratch:
        tmp = Path(scratch, "sum.dcm")
        try:
            sop = write_dose(
                comp.dose,
                tmp,
                patient=case.patient,
                study_uid=study,
                frame_uid=frame,
                plan_uid=plan_uids,
                summation_type=comp.dose.summation_type,
                referenced_dose_uids=comp.dose.referenced_dose_uids,
                description=short_description(comp),
                bits=32,
            )
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot write the summed dose: {exc}", str(target)) from exc
        _install(tmp, target)
    return sop


def _install(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` atomically; errors name ``target`` in one line."""
    try:
        with atomic_open(target) as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
    except RtcheckError as exc:
        reason = exc.message.removeprefix("cannot write report: ")
        raise InputError(f"cannot write the summed dose: {reason}", str(target)) from exc
    except OSError as exc:
        raise InputError(f"cannot write the summed dose: {exc}", str(target)) from exc


def _existing(case: Case) -> list[SourceFile]:
    return [f for f in case.files if os.path.exists(f.path)]
