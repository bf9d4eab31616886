"""Dose sets: the RT Doses of a case combined per plan, and composites over plans.

Recognition rules (``docs/multiplan.md`` has the full table):

* Only PHYSICAL doses are combined; EFFECTIVE/ERROR doses are left out with a Finding.
* A plan's dose is its PLAN dose when one exists; otherwise the sum of its BEAM doses (matched
  by referenced RT Plan UID, checked against the plan's beam list); otherwise its FRACTION dose
  times the number of fractions (the RT Plan's, or the user's ``--fractions N``:
  :mod:`rtcheck.fractiondose`). BEAM doses are never added to a PLAN dose of the same plan:
  a Finding says they were not added, and their sum is checked against the PLAN dose.
* MULTI_PLAN doses (sums made elsewhere) are left out when any per-plan dose exists.
* A plan without a dose, a dose without a plan, a plan without a fraction count: Findings.
  A dose whose fractionation is unknown cannot enter an EQD2/BED sum.

Summation itself is in :mod:`rtcheck.composite`; :class:`DoseSet` ties both together and
caches one composite per method and alpha/beta.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rtcheck.composite import Composite, DoseSet, GridChoice, composite, sample_composite
from rtcheck.errors import Finding, Severity
from rtcheck.fractiondose import FractionCount, fraction_dose
from rtcheck.geometry.resample import max_abs_difference, sum_doses
from rtcheck.model import Case, DoseGrid, Plan

__all__ = [
    "BEAM_AGREEMENT_TOL",
    "Composite",
    "DoseSet",
    "FractionCount",
    "PlanDose",
    "composite",
    "dose_set",
    "plan_doses",
    "sample_composite",
]

#: Largest |sum of BEAM doses - PLAN dose| accepted, as a fraction of the PLAN dose maximum.
BEAM_AGREEMENT_TOL = 0.02

INFO, WARNING, ERROR = Severity.INFO, Severity.WARNING, Severity.ERROR
Group = dict[str, list[DoseGrid]]


@dataclass(frozen=True, eq=False)
class PlanDose:
    """The physical dose of one plan (one lesion plan of a multi-plan patient).

    Attributes
    ----------
    plan
        The RT Plan, or None when the dose references no plan in the case.
    dose
        Physical dose of the whole plan (all fractions), Gy.
    fractions
        Planned number of fractions, or None when unknown.
    components
        SOP Instance UIDs (or file names) of the RT Doses that make up ``dose``.
    findings
        What was decided while building it (BEAM doses not added, beams missing...).
    """

    plan: Plan | None
    dose: DoseGrid
    fractions: int | None
    components: tuple[str, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def label(self) -> str:
        """Plan label (or name, or UID), or the dose file when there is no plan."""
        if self.plan is not None:
            return self.plan.label or self.plan.name or self.plan.sop_instance_uid or "plan"
        return self.dose.source or self.dose.sop_instance_uid or "dose without plan"

    @property
    def plan_uid(self) -> str | None:
        """SOP Instance UID of the plan (or the UID the dose references)."""
        if self.plan is not None and self.plan.sop_instance_uid:
            return self.plan.sop_instance_uid
        return self.dose.referenced_plan_uid

    @property
    def dose_per_fraction_max_gy(self) -> float | None:
        """Largest dose per fraction in the grid (Gy), when the fractions are known."""
        return None if self.fractions is None else self.dose.max_gy / self.fractions

    def describe(self) -> str:
        """One line: label, fractions, where the dose came from."""
        fx = f"{self.fractions} fx" if self.fractions else "fractions unknown"
        comps = ", ".join(self.components)
        return f"{self.label} ({fx}, max {self.dose.max_gy:.2f} Gy; RT Dose {comps})"


def _uid(d: DoseGrid) -> str:
    return d.sop_instance_uid or d.source or "RT Dose"


def _name(d: DoseGrid) -> str:
    return d.source or d.sop_instance_uid or "RT Dose"


def _note(
    out: list[Finding],
    code: str,
    sev: Severity,
    msg: str,
    subject: str | None = None,
    dose: DoseGrid | None = None,
) -> None:
    out.append(Finding(f"dose.{code}", msg, sev, None if dose is None else dose.source, subject))


# ----------------------------------------------------------------------------- classification
def _classify(case: Case, notes: list[Finding]) -> Group:
    """Doses by role: ``plan``, ``beam``, ``fraction``, ``multi``; the rest become Findings."""
    kinds: Group = {"plan": [], "beam": [], "fraction": [], "multi": []}
    seen: set[str] = set()
    for d in case.doses:
        if d.sop_instance_uid and d.sop_instance_uid in seen:
            _note(notes, "duplicate", INFO, f"RT Dose {_name(d)} appears twice; used once", None, d)
            continue
        seen.add(d.sop_instance_uid or "")
        dtype, stype = d.dose_type.upper(), d.summation_type.upper()
        if dtype != "PHYSICAL":
            sev = INFO if dtype == "ERROR" or stype == "MULTI_PLAN" else WARNING
            _note(
                notes,
                "not_physical",
                sev,
                f"RT Dose {_name(d)} has DoseType {dtype}; only "
                "PHYSICAL doses are summed, it was not used",
                None,
                d,
            )
        elif stype in ("PLAN", "BEAM", "FRACTION", "MULTI_PLAN"):
            kinds["multi" if stype == "MULTI_PLAN" else stype.lower()].append(d)
        elif stype in ("UNKNOWN", ""):
            _note(
                notes,
                "summation_type_missing",
                ERROR,
                f"RT Dose {_name(d)} states no DoseSummationType (a required element): it "
                "may be one beam's or one fraction's dose; treated as the dose of a whole "
                "plan, so the plan cannot be cleared",
                None,
                d,
            )
            kinds["plan"].append(d)
        else:
            _note(
                notes,
                "summation_type_unsupported",
                ERROR,
                f"RT Dose {_name(d)} has "
                f"DoseSummationType {stype}, which rtcheck does not sum; its dose is NOT in "
                "any composite",
                None,
                d,
            )
    return kinds


# ----------------------------------------------------------------------------- one plan
def _expected_beams(plan: Plan | None) -> set[int]:
    """Beam numbers that should have a dose (beams with meterset > 0 when metersets known)."""
    if plan is None or not plan.beams:
        return set()
    if any(b.meterset is not None for b in plan.beams):
        return {b.number for b in plan.beams if (b.meterset or 0) > 0}
    return {b.number for b in plan.beams}


def _beam_sum(
    beams: list[DoseGrid], plan: Plan | None, notes: list[Finding], subj: str
) -> DoseGrid:
    """Sum BEAM doses of one plan after duplicate and completeness checks."""
    used: list[DoseGrid] = []
    numbers: set[int] = set()
    unnumbered = False
    for d in beams:
        nums = set(d.referenced_beam_numbers)
        if nums & numbers:
            _note(
                notes,
                "beam_duplicate",
                ERROR,
                f"BEAM dose {_name(d)} repeats beam(s) "
                f"{sorted(nums & numbers)} of {subj}; not added (no double counting)",
                subj,
                d,
            )
            continue
        numbers |= nums
        unnumbered |= not nums
        used.append(d)
    expected = _expected_beams(plan)
    if unnumbered and len(used) < len(expected):
        _note(
            notes,
            "beams_missing",
            ERROR,
            f"{len(used)} BEAM dose(s) for the {len(expected)} beams of {subj}, without beam "
            "numbers: some beams have no dose; the plan dose is incomplete",
            subj,
        )
    elif unnumbered or not expected:
        _note(
            notes,
            "beams_unverified",
            WARNING,
            f"cannot verify that the BEAM doses of {subj} "
            "cover every beam (beam numbers not stated); summed as found",
            subj,
        )
    elif expected - numbers:
        _note(
            notes,
            "beams_missing",
            ERROR,
            f"beam(s) {sorted(expected - numbers)} of {subj} "
            "have no BEAM dose; the plan dose is incomplete",
            subj,
        )
    total, grid, same = sum_doses(used)
    how = "" if same else " on their common grid (finest spacing; grids differ)"
    _note(notes, "beams_summed", INFO, f"dose of {subj} = sum of {len(used)} BEAM doses{how}", subj)
    first = used[0]
    return DoseGrid(
        total,
        grid,
        "PHYSICAL",
        "PLAN",
        first.referenced_plan_uid,
        (),
        first.frame_of_reference_uid,
        None,
        f"sum of {len(used)} BEAM doses",
        "GY",
        tuple(_uid(d) for d in used),
    )


def _check_beams(
    plan_dose: DoseGrid, beams: list[DoseGrid], plan: Plan | None, notes: list[Finding], subj: str
) -> None:
    """BEAM doses beside a PLAN dose: say they were not added; check they agree."""
    _note(
        notes,
        "beams_not_added",
        INFO,
        f"{len(beams)} BEAM dose(s) of {subj} were NOT added: "
        f"the PLAN dose {_name(plan_dose)} already contains them",
        subj,
    )
    scratch: list[Finding] = []
    total = _beam_sum(beams, plan, scratch, subj)
    if any(f.code == "dose.beams_missing" for f in scratch):
        return
    diff = max_abs_difference(plan_dose, total)
    top = max(plan_dose.max_gy, 1e-12)
    if diff > BEAM_AGREEMENT_TOL * top:
        _note(
            notes,
            "beams_disagree",
            WARNING,
            f"sum of BEAM doses of {subj} differs from its "
            f"PLAN dose by up to {diff:.3g} Gy ({100 * diff / top:.1f} % of the maximum; "
            f"tolerance {100 * BEAM_AGREEMENT_TOL:g} %); the PLAN dose was used",
            subj,
        )


def _pick_plan_dose(cands: list[DoseGrid], notes: list[Finding], subj: str) -> DoseGrid:
    first = cands[0]
    for other in cands[1:]:
        diff = max(max_abs_difference(first, other), max_abs_difference(other, first))
        ok = diff <= BEAM_AGREEMENT_TOL * max(first.max_gy, 1e-12)
        _note(
            notes,
            "plan_duplicate",
            INFO if ok else ERROR,
            f"{subj} has several PLAN doses; "
            f"used {_name(first)}, not {_name(other)} (they differ by up to {diff:.3g} Gy)",
            subj,
            other,
        )
    return first


def _fraction_count(plan: Plan | None, notes: list[Finding], subj: str) -> int | None:
    n = None if plan is None else plan.fractions_planned
    if n is not None and n >= 1:
        return int(n)
    why = "no RT Plan" if plan is None else "its RT Plan states no number of fractions"
    _note(
        notes,
        "fractionation_unknown",
        WARNING,
        f"{subj}: {why}, so its fractionation is unknown; it cannot enter an EQD2/BED sum",
        subj,
    )
    return None


def _build(
    plan: Plan | None, group: Group, subj: str, user: FractionCount
) -> tuple[PlanDose | None, list[Finding]]:
    """PlanDose of one plan from its PLAN / BEAM / FRACTION doses."""
    notes: list[Finding] = []
    plans, beams, fracs = group.get("plan", []), group.get("beam", []), group.get("fraction", [])
    dose: DoseGrid | None
    if plans:
        dose = _pick_plan_dose(plans, notes, subj)
        if beams:
            _check_beams(dose, beams, plan, notes, subj)
    elif beams:
        dose = _beam_sum(beams, plan, notes, subj)
    elif fracs:
        dose, note = fraction_dose(fracs[0], plan, subj, user)
        notes.append(note)
    else:
        return None, notes
    if dose is None:
        return None, notes
    if fracs and (plans or beams):
        _note(
            notes,
            "fraction_not_added",
            INFO,
            f"FRACTION dose(s) of {subj} not added (a whole-plan dose exists)",
            subj,
        )
    comps = dose.referenced_dose_uids or (_uid(dose),)
    n = _fraction_count(plan, notes, subj)
    return PlanDose(plan, dose, n, tuple(comps), tuple(notes)), notes


# ----------------------------------------------------------------------------- whole case
def _refs(kinds: Group, uid: str | None) -> Group:
    return {k: [d for d in v if d.referenced_plan_uid == uid] for k, v in kinds.items()}


def _adopt_single_orphan(case: Case, kinds: Group, notes: list[Finding]) -> Group:
    """One plan, no dose linked to it, exactly one plan-level dose without plan: link them."""
    if len(case.plans) != 1 or not case.plans[0].sop_instance_uid:
        return kinds
    plan = case.plans[0]
    if any(_refs(kinds, plan.sop_instance_uid).values()):
        return kinds
    loose = [d for d in kinds["plan"] if d.referenced_plan_uid is None]
    if len(loose) != 1 or any(d.referenced_plan_uid is None for d in kinds["beam"]):
        return kinds
    d = loose[0]
    _note(
        notes,
        "plan_assumed",
        WARNING,
        f"RT Dose {_name(d)} references no RT Plan; assumed "
        f"to belong to the only plan {plan.label or plan.sop_instance_uid}",
        plan.label,
        d,
    )
    linked = replace(d, referenced_plan_uid=plan.sop_instance_uid)
    return {**kinds, "plan": [linked if x is d else x for x in kinds["plan"]]}


def _collect(case: Case, user: FractionCount) -> tuple[tuple[PlanDose, ...], tuple[Finding, ...]]:
    notes: list[Finding] = []
    kinds = _adopt_single_orphan(case, _classify(case, notes), notes)
    multi = kinds.pop("multi")
    out: list[PlanDose] = []

    def add(plan: Plan | None, group: Group, subj: str) -> PlanDose | None:
        pd, found = _build(plan, group, subj, user)
        notes.extend(found)
        out.extend([pd] if pd else [])
        return pd

    for plan in case.plans:
        subj = plan.label or plan.name or plan.sop_instance_uid or "plan"
        if add(plan, _refs(kinds, plan.sop_instance_uid), subj) is None:
            _note(
                notes,
                "plan_without_dose",
                ERROR,
                f"plan {subj} has no usable RT Dose; its dose is missing from every composite",
                subj,
            )
    known = {p.sop_instance_uid for p in case.plans if p.sop_instance_uid}
    loose = {k: [d for d in v if d.referenced_plan_uid not in known] for k, v in kinds.items()}
    for uid in sorted({d.referenced_plan_uid for v in loose.values() for d in v} - {None}):
        assert uid is not None
        _note(
            notes,
            "plan_not_found",
            WARNING,
            f"RT Dose(s) reference RT Plan {uid}, which is not in the case",
            uid,
        )
        add(None, _refs(loose, uid), f"plan {uid}")
    for kind, doses in _refs(loose, None).items():
        for d in doses:
            if kind == "beam":
                _note(
                    notes,
                    "beam_without_plan",
                    ERROR,
                    f"BEAM dose {_name(d)} references no "
                    "RT Plan: its plan and any missing beams are unknown; used as a dose of "
                    "its own",
                    None,
                    d,
                )
            add(None, {kind: [d]}, _name(d))
    if multi and out:
        for d in multi:
            _note(
                notes,
                "multi_plan_not_added",
                INFO,
                f"MULTI_PLAN dose {_name(d)} (a sum made "
                "elsewhere) was NOT added; the per-plan doses are used",
                None,
                d,
            )
    elif multi:
        _note(
            notes,
            "multi_plan_only",
            WARNING,
            f"only a MULTI_PLAN dose ({_name(multi[0])}) "
            "is available; used as is, its plans and fractionation are unknown",
            None,
            multi[0],
        )
        add(None, {"plan": multi}, _name(multi[0]))
    return tuple(out), tuple(notes)


def plan_doses(case: Case, *, fractions: FractionCount | None = None) -> tuple[PlanDose, ...]:
    """One :class:`PlanDose` per plan (and per dose without a plan) of ``case``.

    Case-level findings (a plan without a dose, doses left out) are only in
    :attr:`DoseSet.findings`: prefer :func:`dose_set`.
    """
    return _collect(case, fractions or FractionCount())[0]


def dose_set(
    case: Case, *, grid: GridChoice = None, fractions: FractionCount | None = None
) -> DoseSet:
    """The :class:`DoseSet` of ``case``: plan doses, every finding, cached composites.

    Parameters
    ----------
    case
        A linked case (from :func:`rtcheck.io.discover.load_case`).
    grid
        Summation grid choice (see :func:`rtcheck.composite.composite`).
    fractions
        The user's number of fractions (``--fractions``, ``--fractions-override``). It only
        scales FRACTION doses (:func:`rtcheck.fractiondose.fraction_dose`);
        :attr:`PlanDose.fractions` keeps the RT Plan's count, so the caller can compare the two.
    """
    pds, notes = _collect(case, fractions or FractionCount())
    return DoseSet(pds, notes, grid=grid)
