"""Check one case: io -> geometry -> dvh -> metrics -> evaluate. What the CLI and batch call.

::

    result = check_path("patient/", "tg101", CheckOptions(fractions=5))
    result = check_case(case, protocol, options)     # an already loaded Case

Nothing here prints; problems that stop the check are :class:`~rtcheck.errors.RtcheckError`
(``InputError`` for unusable input, ``ConfigError`` for bad options); everything tolerated is a
:class:`~rtcheck.errors.Finding` in the :class:`~rtcheck.result.Result`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from rtcheck import __version__
from rtcheck.dosecontext import OrganDoses
from rtcheck.doseset import DoseSet, FractionCount, PlanDose, dose_set
from rtcheck.dvh.compute import DvhOptions
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import ConfigError, Finding, InputError, Severity
from rtcheck.evaluate import (
    Outcome,
    decide,
    distrust_passes,
    evaluate_organ,
    table_missing,
)
from rtcheck.geometry.resample import describe_grid
from rtcheck.io.discover import load_case
from rtcheck.metrics import DoseBasis
from rtcheck.model import Case, StructureSet
from rtcheck.names import TargetKind, find_targets, normalise
from rtcheck.names.usermap import name_map_findings
from rtcheck.plausibility import LesionDose, dose_plausibility, limit_plausibility
from rtcheck.protocol import AppliesTo, Constraint, Protocol, load_protocol
from rtcheck.resolve import StructureResolver
from rtcheck.result import ConstraintResult, DvhCurve, InputFile, PlanInfo, Result
from rtcheck.targets import TargetEvaluation, evaluate_targets

__all__ = ["CheckOptions", "check_case", "check_path"]


@dataclass(frozen=True)
class CheckOptions:
    """Options of ``rtcheck check`` (picklable, JSON-friendly: batch fingerprints use them).

    Attributes
    ----------
    fractions
        Number of fractions to use for every plan (``--fractions``); None: from the RT Plans.
    fractions_override
        The user confirms ``fractions`` for plans whose RT Plan states another number
        (``--fractions-override``). Without it such a disagreement is an ERROR finding (the
        plan is not cleared); with it, a WARNING.
    rx
        ``(target ROI name, Gy)`` prescriptions given by the user (``--rx``, ``--rx-file``).
    names
        ``(protocol structure name, ROI name or None)`` user map (``--names``).
    require
        Protocol structure names that must be evaluated (``--require``).
    alpha_beta
        alpha/beta (Gy) for EQD2/BED limits that do not state one (``--alpha-beta GY``).
    alpha_beta_structures
        ``(protocol structure, Gy)``: alpha/beta for one structure's EQD2/BED limits that do
        not state one (``--alpha-beta STRUCTURE=GY``); wins over ``alpha_beta``.
    rtstruct, rtdose, rtplan
        Explicit files instead of (or within) a folder.
    allow_frame_mismatch, relative_prescription_gy
        Passed to :func:`rtcheck.io.discover.load_case`.
    dvh_points
        Points per DVH curve in the result (for plots).
    """

    fractions: int | None = None
    fractions_override: bool = False
    rx: tuple[tuple[str, float], ...] = ()
    names: tuple[tuple[str, str | None], ...] = ()
    require: tuple[str, ...] = ()
    alpha_beta: float | None = None
    alpha_beta_structures: tuple[tuple[str, float], ...] = ()
    rtstruct: str | None = None
    rtdose: tuple[str, ...] = ()
    rtplan: tuple[str, ...] = ()
    allow_frame_mismatch: bool = False
    relative_prescription_gy: float | None = None
    dvh_points: int = 200

    def __post_init__(self) -> None:
        if self.fractions is not None and self.fractions < 1:
            raise ConfigError(f"--fractions must be a positive integer, not {self.fractions}")
        if self.fractions_override and self.fractions is None:
            raise ConfigError("--fractions-override needs --fractions N (the number to confirm)")
        if self.alpha_beta is not None and not 0 < self.alpha_beta < math.inf:
            raise ConfigError(f"--alpha-beta must be positive, not {self.alpha_beta}")
        for name, value in self.alpha_beta_structures:
            if not 0 < value < math.inf:
                raise ConfigError(f"--alpha-beta {name}={value}: must be positive")


def check_path(
    path: str | os.PathLike[str] | None,
    protocol: Protocol | str | os.PathLike[str],
    options: CheckOptions | None = None,
) -> Result:
    """Load the case at ``path`` (a folder, or explicit files in ``options``) and check it."""
    options = options or CheckOptions()
    case = load_case(
        path,
        rtstruct=options.rtstruct,
        rtdose=list(options.rtdose) or None,
        rtplan=list(options.rtplan) or None,
        allow_frame_mismatch=options.allow_frame_mismatch,
        relative_prescription_gy=options.relative_prescription_gy,
    )
    return check_case(case, protocol, options)


def check_case(
    case: Case, protocol: Protocol | str | os.PathLike[str], options: CheckOptions | None = None
) -> Result:
    """Evaluate ``case`` against ``protocol``: the :class:`~rtcheck.result.Result`."""
    options = options or CheckOptions()
    if not isinstance(protocol, Protocol):
        protocol = load_protocol(protocol)
    validate_options(protocol, options)
    if case.structure_set is None:
        raise InputError("the case has no RT Structure Set; nothing can be evaluated")
    findings: list[Finding] = list(case.findings)
    doses, fx_source = _doses(case, options, findings)
    search = find_targets(case.structure_set.rois)
    findings += [
        Finding(
            "target.ignored", f"{name!r} not used as a lesion: {why}", Severity.INFO, subject=name
        )
        for name, why in search.ignored
    ]
    user_map = _user_map(options.names)
    findings += _name_map_findings(protocol, case.structure_set, user_map)
    resolver = StructureResolver(case.structure_set, protocol, search, user_map, _dvh_options(case))
    targets = evaluate_targets(case, protocol, doses, search, resolver, options.rx)
    env = OrganDoses(
        resolver,
        doses,
        protocol,
        tuple((les.name, les.rx.gy) for les in targets.lesions),
        frozenset(options.require),
        options.alpha_beta,
        dict(options.alpha_beta_structures),
    )
    organ = _organ_outcomes(protocol, doses, fx_source, env)
    findings += targets.findings + _plausibility(doses, targets) + resolver.report()
    findings += limit_plausibility([o.result for o in organ + targets.outcomes])
    findings += _omissions(protocol)
    for _, choice in env.used:
        comp = env.composite(choice.key)
        if comp is not None:
            findings += [f for f in comp.findings if f not in findings]
    before = organ + targets.outcomes
    outcomes = distrust_passes(before, findings)
    verdict, why = decide(outcomes, findings)
    findings += why
    now = {id(a.result): b.result for a, b in zip(before, outcomes, strict=True)}

    def judged(rows: tuple[ConstraintResult, ...]) -> tuple[ConstraintResult, ...]:
        return tuple(now.get(id(r), r) for r in rows)

    return Result(
        verdict=verdict,
        protocol=protocol.info(),
        plan=_plan_info(case, doses, fx_source, targets, env),
        constraints=judged(tuple(o.result for o in organ) + targets.plan_rows),
        lesions=tuple(replace(les, constraints=judged(les.constraints)) for les in targets.results),
        findings=tuple(_unique(findings)),
        dvhs=_curves(env, targets, options.dvh_points),
        inputs=tuple(InputFile(f.path, f.modality, f.sha256) for f in case.files),
        rtcheck_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# ----------------------------------------------------------------------------- doses
def _doses(case: Case, options: CheckOptions, findings: list[Finding]) -> tuple[DoseSet, str]:
    ds = dose_set(case, fractions=FractionCount(options.fractions, options.fractions_override))
    findings += [f for f in ds.findings if f not in findings]
    if not ds.plan_doses:
        raise InputError("no usable RT Dose in the case (see the findings of `rtcheck info`)")
    for pd in ds.plan_doses:
        findings += [f for f in pd.findings if f not in findings]
    if options.fractions is None:
        counts = sorted({pd.fractions for pd in ds.plan_doses}, key=lambda f: (f is None, f or 0))
        if None in counts:
            return ds, "unknown"
        if len(counts) > 1:
            listing = ", ".join(str(f) for f in counts)
            return ds, f"RT Plans, mixed: {listing} fractions, one count per plan"
        return ds, "RT Plan"
    n = options.fractions
    for pd in ds.plan_doses:
        if pd.fractions != n:
            findings.append(_fractions_finding(pd, n, options.fractions_override))
    pds = tuple(replace(pd, fractions=n) for pd in ds.plan_doses)
    return DoseSet(pds, ds.findings, grid=ds.grid_choice), "--fractions"


def _fractions_finding(pd: PlanDose, n: int, confirmed: bool) -> Finding:
    """``--fractions n`` for a plan whose RT Plan states another number (or none).

    A plan that states no number just gets it (INFO). A plan that states another number is
    an ERROR (the verdict cannot be ``pass``: a typo in ``--fractions`` could select a more
    lenient table) unless the user confirmed with ``--fractions-override`` (WARNING).
    """
    if pd.fractions is None:
        message = f"--fractions {n} used for plan {pd.label} (its RT Plan states none)"
        return Finding("fractions.overridden", message, Severity.INFO, subject=pd.label)
    said = (
        f"--fractions {n} disagrees with the RT Plan of plan {pd.label} ({pd.fractions} fractions)"
    )
    source = pd.plan.source if pd.plan is not None else None
    if confirmed:
        message = f"{said}: {n} used as confirmed by --fractions-override"
        return Finding("fractions.overridden", message, Severity.WARNING, source, pd.label)
    message = (
        f"{said}: the {n}-fraction table was used, but the plan is not cleared; give "
        f"--fractions-override to confirm {n}, or leave out --fractions to use the RT Plan's "
        f"{pd.fractions}"
    )
    return Finding("fractions.overridden", message, Severity.ERROR, source, pd.label)


def _omissions(protocol: Protocol) -> list[Finding]:
    """INFO findings naming the source values the protocol deliberately does not ship."""
    return [
        Finding(
            "protocol.omitted",
            f"{protocol.id} does not check: {o.what} [{', '.join(o.source)}]: {o.reason}",
            Severity.INFO,
        )
        for o in protocol.omitted
    ]


def _plausibility(doses: DoseSet, targets: TargetEvaluation) -> list[Finding]:
    """ERROR findings for a dose implausibly low for the prescriptions (rtcheck.plausibility)."""
    lesions = [
        LesionDose(
            les.name,
            les.plan,
            les.rx.gy,
            les.metrics.metrics.get("D95%[Gy]") if les.metrics is not None else None,
        )
        for les in targets.lesions
    ]
    return dose_plausibility(doses, lesions)


def _dvh_options(case: Case) -> DvhOptions:
    thickness = case.image.slice_thickness_mm if case.image is not None else None
    if thickness is not None and thickness <= 0:
        thickness = None
    return DvhOptions(single_plane_thickness_mm=thickness, nominal_spacing_mm=thickness)


def _user_map(names: tuple[tuple[str, str | None], ...]) -> dict[str, str | None]:
    return dict(names)


def _name_map_findings(
    protocol: Protocol, ss: StructureSet, user_map: dict[str, str | None]
) -> list[Finding]:
    """WARNINGs for doubtful ``--names`` entries (:mod:`rtcheck.names.usermap`)."""
    if not user_map:
        return []
    rows = [c for t in protocol.all_tables for c in t.constraints]
    names = {c.structure for c in rows} | {a for c in rows for a in c.aliases}
    names |= set(protocol.derived) | set(protocol.extra_structures)
    targets = {c.structure for c in rows if c.applies_to is AppliesTo.TARGET}
    return name_map_findings(user_map, names, targets | set(TargetKind.__members__), ss)


def validate_options(protocol: Protocol, options: CheckOptions) -> None:
    """Refuse options that name structures the protocol does not have (``--require``,
    ``--alpha-beta STRUCTURE=GY``); batch and serve call it once, before any case.

    Raises
    ------
    ConfigError
        With one line naming the option and the structure.
    """
    _check_require(protocol, options.require)
    _check_alpha_beta_names(protocol, options.alpha_beta_structures)


def _check_alpha_beta_names(protocol: Protocol, pairs: tuple[tuple[str, float], ...]) -> None:
    """``--alpha-beta STRUCTURE=GY`` must name a structure of an EQD2/BED limit: a misspelt
    name would silently leave the limit on another alpha/beta."""
    known = {
        c.structure
        for t in protocol.all_tables
        for c in t.constraints
        if c.metric.basis is not DoseBasis.PHYSICAL
    }
    for name, _ in pairs:
        if name not in known:
            listing = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"--alpha-beta {name}=...: protocol {protocol.id} has no EQD2/BED limit on "
                f"{name!r} (structures with EQD2/BED limits: {listing})"
            )


def _check_require(protocol: Protocol, require: tuple[str, ...]) -> None:
    known = {c.structure for t in protocol.all_tables for c in t.constraints}
    for name in require:
        if name not in known:
            close = [k for k in sorted(known) if normalise(k) == normalise(name)]
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"--require {name}: protocol {protocol.id} has no constraint on {name!r}{hint}"
            )


# ----------------------------------------------------------------------------- organs
def _organ_outcomes(
    protocol: Protocol, doses: DoseSet, fx_source: str, env: OrganDoses
) -> list[Outcome]:
    counts = sorted({pd.fractions for pd in doses.plan_doses}, key=lambda f: (f is None, f or 0))
    if len(counts) == 1:
        table = protocol.table_for(counts[0])
        if table is None:
            return [table_missing(protocol, counts[0], fx_source)]
        return [evaluate_organ(c, env) for c in table.oar_constraints]
    out: list[Outcome] = []
    seen: dict[tuple, str] = {}
    done: set[str] = set()  # rows of the protocol's `any` table come with every count
    for fx in counts:
        table = protocol.table_for(fx)
        if table is None:
            out.append(table_missing(protocol, fx, fx_source, f"(organs, {fx} fx plan)"))
            continue
        for c in table.oar_constraints:
            key = (c.structure, c.metric.canonical, c.comparator, tuple(c.limits.items()))
            if c.id in done or (c.metric.basis.value != "physical" and key in seen):
                continue
            seen[key] = c.id
            if _from_any_table(protocol, c):
                done.add(c.id)
            out.append(evaluate_organ(c, env))
    return out


def _from_any_table(protocol: Protocol, c: Constraint) -> bool:
    return protocol.any_table is not None and c in protocol.any_table.constraints


# ----------------------------------------------------------------------------- result
def _plan_info(
    case: Case, doses: DoseSet, fx_source: str, targets: TargetEvaluation, env: OrganDoses
) -> PlanInfo:
    pds = doses.plan_doses
    labels = tuple(pd.label for pd in pds)
    fx = pds[0].fractions if len({pd.fractions for pd in pds}) == 1 else None
    summation = _summation(doses, fx, env)
    physical = env.physical()
    shown = physical.dose or next((ch.dose for _, ch in env.used if ch.dose is not None), None)
    grid = None if shown is None else describe_grid(shown.dose.geometry)
    return PlanInfo(
        patient_id=case.patient.id,
        patient_name=case.patient.name,
        plan_labels=labels,
        fractions=fx,
        fractions_source=fx_source,
        prescriptions=tuple(
            (les.name, les.rx.gy, les.rx.source or "unknown") for les in targets.lesions
        ),
        dose_summation=summation,
        alpha_beta=tuple(sorted(env.used_alpha_beta.items())),
        dose_grid=grid,
    )


def _summation(doses: DoseSet, fx: int | None, env: OrganDoses) -> str:
    """How the organ doses were formed (shown with the alpha/beta values in every report)."""
    pds = doses.plan_doses
    converted = sorted({ch.basis for _, ch in env.used if ch.dose is not None} - {"physical"})
    lq = " and ".join(converted)
    if len(pds) == 1:
        text = "single plan"
        if converted:  # EQD2/BED rows: say how (reports then show the alpha/beta too)
            text += f"; {lq} limits on its dose converted voxel-wise ({fx} fractions)"
        return text
    if doses.mixed_fractionation is None:
        text = f"physical sum of {len(pds)} plans ({fx} fractions each)"
        if converted:
            text += f"; {lq} limits on the voxel-wise {lq} sum of the plans"
        return text
    how = (
        f"organs on the voxel-wise {lq} sum (each plan's dose converted with its own dose per "
        "fraction, then summed)"
        if converted
        else "no organ limit in EQD2/BED was evaluated, so no sum was used"
    )
    return (
        f"{doses.mixed_fractionation}: each lesion on its own plan; {how}; physical limits not "
        "evaluated (no silent conversion)"
    )


def _curves(env: OrganDoses, targets: TargetEvaluation, points: int) -> tuple[DvhCurve, ...]:
    out: dict[tuple[str, str], DvhCurve] = {}
    for resolved, choice in env.used:
        if choice.dose is None:
            continue
        dvh = env.resolver.dvh(resolved, choice.dose)
        label = resolved.label or resolved.name
        if (label, choice.basis) not in out and not dvh.is_empty:
            out[(label, choice.basis)] = _curve(dvh, label, "oar", choice.basis, points)
    for les in targets.lesions:
        if les.dvh is not None and not les.dvh.is_empty:
            out[(les.name, "physical")] = _curve(les.dvh, les.name, "target", "physical", points)
    return tuple(out.values())


def _curve(dvh: DVH, name: str, kind: str, basis: str, points: int) -> DvhCurve:
    top = dvh.max_gy
    doses = [top * i / max(points - 1, 1) for i in range(points)]
    total = dvh.volume_cc
    vols = [100.0 * dvh.volume_at_dose_cc(d) / total for d in doses]
    return DvhCurve(
        structure=name,
        kind=kind,
        dose_gy=tuple(round(d, 4) for d in doses),
        volume_pct=tuple(round(v, 4) for v in vols),
        volume_cc=float(dvh.structure_volume_cc or total),
        dose_basis=basis,
    )


def _unique(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))
