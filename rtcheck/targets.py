"""Evaluate the lesions of a case: each on its own plan's dose, with its own prescription.

For every lesion (every PTV; ITV, CTV or GTV when there is no PTV) rtcheck finds the plan it
belongs to (:meth:`rtcheck.doseset.DoseSet.plan_for_target`), its prescription
(:func:`rtcheck.lesions.prescription_for`) and computes its metrics on that plan's dose
(:func:`rtcheck.lesions.lesion_metrics`). The protocol's target rules for that plan's number of
fractions (coverage rows, conformity table, global maximum inside a target) are then judged.
Whether each plan's dose maximum lies inside one of its lesions is always computed and given
with every lesion (:class:`rtcheck.result.PlanMaximum`); it is judged only by such a rule.

A protocol's target rules are **required** whenever they exist for the plan's fractionation:
a rule that cannot be evaluated (unknown prescription, target outside the conformity table,
lesion without a plan, no target found at all) keeps the verdict from ``pass``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rtcheck.doseset import DoseSet, PlanDose
from rtcheck.dvh.compute import PreparedDose
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import Finding, Severity
from rtcheck.evaluate import Outcome, RowSpec, evaluate_on_dvh, row_spec, table_missing
from rtcheck.lesions import (
    LesionInput,
    LesionMetrics,
    dose_maximum,
    lesion_metrics,
    lesion_targets,
    outside_fraction,
)
from rtcheck.model import Case, Roi
from rtcheck.names import TargetCandidate, TargetKind, TargetSearch
from rtcheck.prescriptions import Rx, prescription_for, user_rx_for
from rtcheck.protocol import Comparator, Protocol, Table
from rtcheck.resolve import StructureResolver
from rtcheck.result import ConstraintResult, LesionResult, PlanMaximum, Status

#: The global maximum counts as inside a target when the target's maximum is within this
#: fraction of it (the engine computes exact maxima of the interpolated dose).
GLOBAL_MAX_REL_TOL = 1e-4


@dataclass
class Lesion:
    """One lesion being evaluated."""

    name: str
    roi: Roi
    candidate: TargetCandidate
    plan: PlanDose | None
    plan_how: str
    rx: Rx
    dvh: DVH | None = None
    metrics: LesionMetrics | None = None


@dataclass
class TargetEvaluation:
    """Everything about the targets of one case."""

    lesions: list[Lesion] = field(default_factory=list)
    results: tuple[LesionResult, ...] = ()
    outcomes: list[Outcome] = field(default_factory=list)
    plan_rows: tuple[ConstraintResult, ...] = ()
    findings: list[Finding] = field(default_factory=list)


def evaluate_targets(
    case: Case,
    protocol: Protocol,
    doses: DoseSet,
    search: TargetSearch,
    resolver: StructureResolver,
    user_rx: Sequence[tuple[str, float]],
) -> TargetEvaluation:
    """Lesion metrics and target rules of ``case`` (see the module docstring)."""
    out = TargetEvaluation()
    kind, candidates = lesion_targets(search)
    user = user_rx_for(user_rx, [t.name for t in candidates], [t.name for t in search.targets])
    lesions = _lesions(case, doses, candidates, user, out.findings)
    out.findings += _left_out_targets(case, doses, search, lesions, resolver)
    for pd in doses.plan_doses:
        mine = [les for les in lesions if les.plan is pd]
        if not mine:
            continue
        prepared = PreparedDose.of(pd.dose)
        inputs = [LesionInput(les.name, les.roi, les.rx.gy) for les in mine]
        computed = lesion_metrics(prepared, inputs, resolver.dvh_options)
        for les in mine:
            les.metrics = computed[les.name]
            les.dvh = les.metrics.dvh
            # a lesion finding that keeps the plan from passing (a prescribed target the dose
            # grid does not cover) must reach the verdict, not only the lesion's section
            out.findings += [f for f in les.metrics.findings if f.severity is Severity.ERROR]
    rules = _has_target_rules(protocol)
    out.findings += _table_rx_notes(protocol, lesions) if rules else []
    lesion_rows, plan_rows = [], []
    for les in lesions:
        rows = _lesion_rows(protocol, les, kind, rules) if kind else []
        out.outcomes += rows
        lesion_rows.append([o.result for o in rows])
    if rules and not lesions:
        plan_rows += _no_target_rows(protocol, doses)
    maxima: dict[int, PlanMaximum] = {}
    for pd in doses.plan_doses:
        mine = [les for les in lesions if les.plan is pd]
        rows = _global_max_rows(protocol, pd, mine, kind, len(doses.plan_doses) > 1)
        plan_rows += rows
        # only a row that judged the question is named: a skipped one ("no PTV lesions in
        # this plan") judged nothing, and the line is then information only
        judged = [o.result.id for o in rows if o.result.status is not Status.NOT_EVALUATED]
        info = _plan_maximum(pd, mine, kind, judged[0] if judged else None)
        if info is not None:
            maxima[id(pd)] = info
    out.outcomes += plan_rows
    out.lesions = lesions
    out.results = tuple(
        _lesion_result(les, rows, maxima.get(id(les.plan)))
        for les, rows in zip(lesions, lesion_rows, strict=True)
    )
    out.plan_rows = tuple(o.result for o in plan_rows)
    return out


# ----------------------------------------------------------------------------- lesions
def _lesions(
    case: Case,
    doses: DoseSet,
    candidates: Sequence[TargetCandidate],
    user: dict[str, float],
    findings: list[Finding],
) -> list[Lesion]:
    assert case.structure_set is not None
    out = []
    placed = {
        c.name: doses.plan_for_target(name=c.name, roi_number=c.roi_number) for c in candidates
    }
    for cand in candidates:
        roi = case.structure_set.by_name(cand.name)
        if roi is None:
            continue
        if roi.is_empty:
            findings.append(
                Finding(
                    "target.empty",
                    f"target {cand.name!r} has no contour; not a lesion",
                    Severity.WARNING,
                    subject=cand.name,
                )
            )
            continue
        if roi.is_incomplete:
            findings.append(
                Finding(
                    "target.incomplete",
                    f"{roi.dropped_reason()}: the metrics of lesion {cand.name!r} describe an "
                    "incomplete structure and the plan cannot be cleared",
                    Severity.ERROR,
                    subject=cand.name,
                )
            )
        pd, how = placed[cand.name]
        same_plan = [c for c in candidates if placed[c.name][0] is pd]
        rx = prescription_for(cand, pd.plan if pd else None, user, same_plan)
        findings += rx.findings
        if pd is None:
            findings.append(
                Finding(
                    "target.no_plan",
                    f"{cand.name}: {how}; its metrics are not computed",
                    Severity.WARNING,
                    subject=cand.name,
                )
            )
        elif how not in ("only plan",):
            findings.append(
                Finding(
                    "target.plan",
                    f"{cand.name} evaluated on plan {pd.label} ({how})",
                    Severity.INFO,
                    subject=cand.name,
                )
            )
        out.append(Lesion(cand.name, roi, cand, pd, how, rx))
    return out


#: A target with at least this fraction of its volume outside every lesion is left out.
LEFT_OUT_FRACTION = 0.5


def _left_out_targets(
    case: Case,
    doses: DoseSet,
    search: TargetSearch,
    lesions: Sequence[Lesion],
    resolver: StructureResolver,
) -> list[Finding]:
    """ERRORs for targets that are no lesion and lie mostly outside every lesion.

    Lesions are the targets of one kind (the PTVs when there are PTVs). A GTV outside every
    PTV, or any ROI the RT Plan prescribes a dose to (a TARGET dose reference by ROI number)
    outside every lesion, is a lesion rtcheck would otherwise not evaluate at all.
    """
    assert case.structure_set is not None
    if not doses.plan_doses:
        return []
    names = {les.name for les in lesions}
    targets = {t.name for t in search.targets}
    rx = {
        p.roi_number: (p.target_dose_gy, pd.label)
        for pd in doses.plan_doses
        if pd.plan is not None
        for p in pd.plan.target_prescriptions
        if p.roi_number is not None
    }
    base = PreparedDose.of(doses.plan_doses[0].dose).dose.geometry
    out = []
    for roi in case.structure_set.rois:
        if roi.name in names or roi.is_empty or roi.is_incomplete:
            continue
        if roi.name not in targets and roi.number not in rx:
            continue
        share = outside_fraction(roi, [les.roi for les in lesions], base, resolver.dvh_options)
        if share < LEFT_OUT_FRACTION:
            continue
        why = (
            f"the RT Plan of {rx[roi.number][1]} prescribes {rx[roi.number][0]:g} Gy to it"
            if roi.number in rx and rx[roi.number][0]
            else f"it is a target ({roi.interpreted_type or 'by name'})"
        )
        out.append(
            Finding(
                "target.left_out",
                f"ROI {roi.name!r} is not evaluated as a lesion, but {why} and "
                f"{100 * share:.0f} % of it lies outside every lesion "
                f"({', '.join(sorted(names)) or 'none'}): a lesion may be unchecked; contour its "
                "PTV (lesions are the targets of one kind)",
                Severity.ERROR,
                subject=roi.name,
            )
        )
    return out


def _table_rx_notes(protocol: Protocol, lesions: Sequence[Lesion]) -> list[Finding]:
    """WARNINGs for lesions prescribed otherwise than the table their rules come from."""
    out = []
    for les in lesions:
        table = protocol.table_for(les.plan.fractions) if les.plan is not None else None
        gy, table_gy = les.rx.gy, table.prescription_gy if table is not None else None
        if gy is None or table_gy is None or abs(gy - table_gy) <= 0.01 * table_gy:
            continue
        out.append(
            Finding(
                "target.rx_differs_from_table",
                f"{les.name} is prescribed {gy:g} Gy, but the {protocol.id} table for "
                f"{les.plan.fractions} fractions is written for {table_gy:g} Gy: its target "
                "limits assume that prescription",
                Severity.WARNING,
                subject=les.name,
            )
        )
    return out


def _has_target_rules(protocol: Protocol) -> bool:
    return any(
        t.target_constraints or t.conformity is not None or t.global_max_in_target is not None
        for t in protocol.tables.values()
    )


def _lesion_rows(protocol: Protocol, les: Lesion, kind: TargetKind, rules: bool) -> list[Outcome]:
    if les.plan is None:
        if not rules:
            return []
        return [_blocked(les.name, kind.value, f"no plan dose for this target ({les.plan_how})")]
    table = protocol.table_for(les.plan.fractions)
    if table is None:
        if not rules:
            return []
        source = f"plan {les.plan.label}"
        what = f"{kind.value} {les.name}"
        return [table_missing(protocol, les.plan.fractions, source, what, lesion=les.name)]
    return _coverage_rows(protocol, table, les, kind) + _conformity_rows(table, les, kind)


def _coverage_rows(
    protocol: Protocol, table: Table, les: Lesion, kind: TargetKind
) -> list[Outcome]:
    out = []
    for c in table.target_constraints:
        spec = row_spec(c, lesion=les.name)
        if c.structure != kind.value:
            reason = f"rule on each {c.structure}, but the lesions of this plan are {kind.value}s"
            out.append(Outcome(spec.skipped(reason, les.name, "target")))
            continue
        metric, note = protocol.metric_to_evaluate(c)
        if les.dvh is None:
            out.append(Outcome(spec.skipped("no DVH for this target", les.name, "target", note)))
            continue
        o = evaluate_on_dvh(spec, metric, les.dvh, les.rx.gy, les.name, "target", note)
        if not c.confirmed and o.result.value is not None:
            o = Outcome(
                spec.skipped(f"limit unconfirmed: {c.unconfirmed_reason}", les.name, "target")
            )
        out.append(o)
    return out


def _conformity_rows(table: Table, les: Lesion, kind: TargetKind) -> list[Outcome]:
    conf = table.conformity
    if conf is None:
        return []
    if conf.target is not kind:
        reason = f"conformity table for {conf.target.value}s, but the lesions are {kind.value}s"
        return [_blocked(les.name, conf.target.value, reason)]
    tv = les.metrics.volume_cc if les.metrics is not None else None
    limits = conf.limits_at(tv) if tv else None
    shared = _shared_isodose(les)
    out = []
    for col in conf.columns:
        spec = RowSpec(
            id=f"conformity.{col.index.value}@{les.name}",
            structure=kind.value,
            metric=col.index.value,
            unit=col.index.unit,
            comparator=col.comparator,
            limits=(),
            source="; ".join(conf.source),
            note=col.index.description,
            lesion=les.name,
        )
        if shared is not None:
            out.append(Outcome(spec.skipped(shared, les.name, "target")))
            continue
        if limits is None:
            why = conf.not_covered_reason(tv) if tv else "target volume unknown"
            out.append(Outcome(spec.skipped(why, les.name, "target")))
            continue
        lim = next(x for x in limits if x.index is col.index)
        spec = replace(spec, limits=lim.limits, comparator=lim.comparator)
        value = les.metrics.metrics.get(col.index.value) if les.metrics else None
        if value is None:
            out.append(
                Outcome(spec.skipped(_why_missing(les, col.index.value), les.name, "target"))
            )
            continue
        note = f"limits interpolated for TV = {tv:.3g} cc"
        out.append(Outcome(spec.judged(float(value), les.name, "target", note)))
    return out


#: Lesion findings that make the split of the isodose volumes between targets unreliable.
SHARED_ISODOSE_CODES = ("lesion.overlap", "lesion.close")


def _shared_isodose(les: Lesion) -> str | None:
    """Why this lesion's conformity indices cannot be judged (isodose volumes shared), or None.

    Isodose volumes are split by distance to the nearest target. Where two targets' clouds
    meet (``lesion.close``) or the targets share volume (``lesion.overlap``), the split can
    move part of one lesion's spill to the other and turn a failing index into a pass; the
    indices are still computed and shown, but not judged.
    """
    for f in les.metrics.findings if les.metrics else []:
        if f.code in SHARED_ISODOSE_CODES:
            return f"{f.message}; judged only on a plan where the lesion stands alone"
    return None


def _why_missing(les: Lesion, key: str) -> str:
    if les.rx.gy is None:
        return f"{key} needs the prescription, which is unknown (give --rx {les.name}=GY)"
    codes = [
        f.message
        for f in (les.metrics.findings if les.metrics else [])
        if f.code.startswith("lesion.")
    ]
    return f"{key} could not be computed" + (f": {codes[0]}" if codes else "")


def _blocked(lesion: str | None, structure: str, reason: str) -> Outcome:
    spec = RowSpec(
        id=f"target.{structure}" + (f"@{lesion}" if lesion else ""),
        structure=structure,
        metric="(target rules)",
        unit="",
        comparator=Comparator.LT,
        limits=(),
        lesion=lesion,
    )
    return Outcome(spec.skipped(reason, lesion, "target" if lesion else "not found"))


def _no_target_rows(protocol: Protocol, doses: DoseSet) -> list[Outcome]:
    out = []
    for fx in sorted({pd.fractions for pd in doses.plan_doses if pd.fractions is not None}):
        table = protocol.table_for(fx)
        if table is None or not (
            table.target_constraints or table.conformity or table.global_max_in_target
        ):
            continue
        reason = (
            f"protocol {protocol.id} has target rules for {fx} fractions, but no target "
            "(PTV, ITV, CTV or GTV) was found in the structure set (name it e.g. PTV1, or set "
            "RT ROI Interpreted Type PTV)"
        )
        out.append(_blocked(None, "PTV", reason))
    return out


def _global_max_rows(
    protocol: Protocol, pd: PlanDose, lesions: list[Lesion], kind: TargetKind | None, multi: bool
) -> list[Outcome]:
    table = protocol.table_for(pd.fractions)
    if table is None or table.global_max_in_target is None or not lesions:
        return []
    rule = table.global_max_in_target
    where = f"@{pd.label}" if multi else ""
    level = protocol.levels[0]
    top = pd.dose.max_gy
    spec = RowSpec(
        id=f"global_max_in_{rule.target.value}{where}",
        structure=f"{rule.target.value} (any)",
        metric="Max[Gy] in target vs global max",
        unit="Gy",
        comparator=Comparator.GE,
        limits=((level, top * (1.0 - GLOBAL_MAX_REL_TOL)),),
        source="; ".join(rule.source),
        note=(rule.note or "") + f"; global maximum of plan {pd.label}: {top:.4g} Gy",
    )
    if rule.target is not kind:
        return [Outcome(spec.skipped(f"no {rule.target.value} lesions in this plan"))]
    maxima = _target_maxima(lesions)
    if maxima is None:
        return [Outcome(spec.skipped("a target of this plan has no DVH"))]
    names = ", ".join(les.name for les in lesions)
    return [Outcome(spec.judged(max(maxima), names, "target"))]


def _target_maxima(lesions: list[Lesion]) -> list[float] | None:
    """Each lesion's maximum of the interpolated dose, None when one has no DVH."""
    maxima = [les.dvh.max_gy for les in lesions if les.dvh is not None and not les.dvh.is_empty]
    return maxima if len(maxima) == len(lesions) else None


def _plan_maximum(
    pd: PlanDose, lesions: list[Lesion], kind: TargetKind | None, judged_by: str | None
) -> PlanMaximum | None:
    """Where the plan's maximum lies and which of its lesions contain it (information).

    The same test as :func:`_global_max_rows`: a lesion contains the plan's maximum when its
    own maximum reaches the plan's within :data:`GLOBAL_MAX_REL_TOL`.
    """
    top = dose_maximum(pd.dose)
    if top is None or not lesions or kind is None:
        return None
    maxima = _target_maxima(lesions)
    inside: tuple[str, ...] | None = None
    reason = None
    if maxima is None:
        missing = [les.name for les in lesions if les.dvh is None or les.dvh.is_empty]
        reason = f"no DVH for {', '.join(missing)} on this plan's dose"
    else:
        floor = top.value_gy * (1.0 - GLOBAL_MAX_REL_TOL)
        inside = tuple(les.name for les, m in zip(lesions, maxima, strict=True) if m >= floor)
    return PlanMaximum(
        plan_label=pd.label,
        value_gy=top.value_gy,
        position_mm=top.position_mm,
        points_at_max=top.points_at_max,
        target_kind=kind.value,
        inside=inside,
        reason=reason,
        judged_by=judged_by,
    )


def _lesion_result(
    les: Lesion, rows: list[ConstraintResult], plan_maximum: PlanMaximum | None = None
) -> LesionResult:
    m = les.metrics
    findings = list(m.findings) if m else []
    return LesionResult(
        name=les.name,
        roi_number=les.roi.number,
        prescription_gy=les.rx.gy,
        prescription_source=les.rx.source,
        plan_label=les.plan.label if les.plan else None,
        fractions=les.plan.fractions if les.plan else None,
        volume_cc=m.volume_cc if m else None,
        metrics=dict(m.metrics) if m else {},
        constraints=tuple(rows),
        findings=tuple(findings),
        plan_maximum=plan_maximum,
    )
