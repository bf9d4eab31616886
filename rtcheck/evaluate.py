"""The verdict: every constraint judged, not evaluated (with the reason), and the plan verdict.

Rules (``docs/evaluation.md``):

* A constraint **passes** when its value meets at least one acceptance level; ``level`` names
  the strictest level met. It **fails** when the value is beyond every level. ``margin`` is
  the distance to the most lenient limit, positive on the passing side.
* A constraint is **not evaluated** (with the reason) when its structure is missing or
  ambiguous, leaves the dose grid by more than the tolerance, its metric needs an unknown
  prescription, its fraction count has no table, its dose cannot be formed (mixed
  fractionation for a physical limit), or its limit is unconfirmed.
* A not-evaluated constraint is *blocking* (keeps the verdict from ``pass``) unless it is an
  organ that is simply not contoured and neither the protocol (``required: true``) nor the
  user (``--require``) requires it.
* When an ERROR finding says the evaluated dose itself is in doubt (a dose file could not be
  read or linked, beams or a plan's dose are missing, the dose is implausibly low for the
  prescription: :data:`DOSE_DOUBT_CODES`), no row can *pass*: rows that would pass are not
  evaluated (blocking), their value kept and the doubt given as the reason. Failures stand
  (a reviewer must see them; the verdict is ``fail`` either way, never a clearance).
* Verdict: ``fail`` if any constraint fails; otherwise ``incomplete`` if a blocking constraint
  was not evaluated, an ERROR finding applies, or nothing at all was evaluated; else ``pass``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol as TypingProtocol

import numpy as np

from rtcheck.dvh.compute import PreparedDose
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import Finding, GeometryError, Severity
from rtcheck.metrics import Metric, MetricKind, MetricNotComputable
from rtcheck.protocol import Comparator, Constraint
from rtcheck.protocol import Protocol as ProtocolDef
from rtcheck.regrid_check import RegridCheck
from rtcheck.resolve import Resolved, State, StructureResolver, outside_tolerance_cc
from rtcheck.result import ConstraintResult, Limit, Status, Verdict


@dataclass(frozen=True)
class Outcome:
    """A judged constraint and whether, when not evaluated, it keeps the plan from passing."""

    result: ConstraintResult
    blocking: bool = True

    @property
    def status(self) -> Status:
        """Status of the constraint."""
        return self.result.status


@dataclass(frozen=True)
class RowSpec:
    """Everything about a constraint row except its value: builds judged results.

    Attributes
    ----------
    id, structure, metric, unit
        As in :class:`rtcheck.result.ConstraintResult`.
    comparator
        ``value <comparator> limit`` meets a level.
    limits
        ``(level, limit)`` strictest first.
    """

    id: str
    structure: str
    metric: str
    unit: str
    comparator: Comparator
    limits: tuple[tuple[str, float], ...]
    priority: str | None = None
    endpoint: str | None = None
    source: str | None = None
    note: str | None = None
    lesion: str | None = None
    dose_basis: str = "physical"

    @property
    def result_limits(self) -> tuple[Limit, ...]:
        """Limits for the result."""
        return tuple(Limit(lvl, self.comparator.value, v, self.unit) for lvl, v in self.limits)

    def judged(
        self, value: float, roi: str | None, match: str | None, note: str | None = None
    ) -> ConstraintResult:
        """The result for ``value`` (pass with its level, or fail) and its margin."""
        level = next((lvl for lvl, lim in self.limits if self.comparator.holds(value, lim)), None)
        lenient = self.limits[-1][1]
        return self._result(
            roi,
            match,
            value,
            Status.PASS if level is not None else Status.FAIL,
            level,
            float(self.comparator.margin(value, lenient)),
            None,
            note,
        )

    def skipped(
        self,
        reason: str,
        roi: str | None = None,
        match: str | None = None,
        note: str | None = None,
    ) -> ConstraintResult:
        """The result of a constraint that could not be evaluated."""
        return self._result(roi, match, None, Status.NOT_EVALUATED, None, None, reason, note)

    def _result(
        self,
        roi: str | None,
        match: str | None,
        value: float | None,
        status: Status,
        level: str | None,
        margin: float | None,
        reason: str | None,
        note: str | None,
    ) -> ConstraintResult:
        notes = "; ".join(n for n in (self.note, note) if n) or None
        return ConstraintResult(
            id=self.id,
            structure=self.structure,
            matched_roi=roi,
            match=match,
            metric=self.metric,
            value=value,
            unit=self.unit,
            limits=self.result_limits,
            status=status,
            level=level,
            margin=margin,
            reason=reason,
            priority=self.priority,
            endpoint=self.endpoint,
            source=self.source,
            dose_basis=self.dose_basis,
            note=notes,
            lesion=self.lesion,
        )


def row_spec(c: Constraint, *, lesion: str | None = None, structure: str | None = None) -> RowSpec:
    """The :class:`RowSpec` of a protocol constraint."""
    return RowSpec(
        id=c.id if lesion is None else f"{c.id}@{lesion}",
        structure=structure or c.structure,
        metric=c.metric.canonical,
        unit=c.unit,
        comparator=c.comparator,
        limits=tuple(c.limits.items()),
        priority=c.priority,
        endpoint=c.endpoint,
        source="; ".join(c.source),
        note=c.note,
        lesion=lesion,
        dose_basis=c.metric.basis_label,
    )


# ----------------------------------------------------------------------------- environment
@dataclass(frozen=True)
class DoseChoice:
    """The dose a constraint is evaluated on, or why there is none.

    Attributes
    ----------
    dose
        Prepared dose (physical, EQD2 or BED Gy), or None.
    basis
        ``physical``, ``EQD2(a/b=3)``...
    reason
        Why no dose is available.
    note
        How the dose was formed (alpha/beta and its source, composite).
    key
        Identity of the dose for caches and coverage checks.
    """

    dose: PreparedDose | None
    basis: str = "physical"
    reason: str | None = None
    note: str | None = None
    key: str = "plan"


class Environment(TypingProtocol):
    """What evaluating an organ constraint needs from the pipeline."""

    resolver: StructureResolver
    used: list[tuple[Resolved, DoseChoice]]

    def metric_for(self, c: Constraint) -> tuple[Metric, str | None]:
        """The metric to evaluate for ``c`` (point max, alpha/beta) and a note."""
        ...

    def dose_for(self, metric: Metric, structure: str) -> DoseChoice:
        """The dose ``metric`` must be evaluated on for ``structure``."""
        ...

    def plan_rx(self, comparator: Comparator) -> tuple[float | None, str]:
        """Plan prescription for ``%`` of Rx organ metrics, and a note (or the reason)."""
        ...

    def required(self, constraint: Constraint) -> bool:
        """True when the protocol or the user requires this structure."""
        ...

    def uncovered(self, resolved: Resolved, choice: DoseChoice) -> tuple[float, tuple[str, ...]]:
        """Volume of the structure outside the grid of some summed plan, and those plans."""
        ...

    def regrid_check(self, resolved: Resolved, choice: DoseChoice) -> RegridCheck | None:
        """Summed-grid vs exact per-plan sum over the structure (None: the plan's own grid)."""
        ...


# ----------------------------------------------------------------------------- organs
def evaluate_organ(c: Constraint, env: Environment) -> Outcome:
    """Judge one organ constraint (or say why it cannot be judged)."""
    spec = row_spec(c)
    resolved = env.resolver.resolve(c.structure, c.aliases)
    roi, match = resolved.label, _match_text(resolved)
    if not resolved.available:
        return _unavailable(spec, resolved, env.required(c))
    metric, note = env.metric_for(c)
    if metric.needs_alpha_beta:
        return Outcome(
            spec.skipped(f"{metric.canonical} needs an alpha/beta value", roi, match, note)
        )
    choice = env.dose_for(metric, c.structure)
    spec = replace(spec, dose_basis=choice.basis)
    notes = "; ".join(n for n in (note, choice.note) if n) or None
    if choice.dose is None:
        return Outcome(spec.skipped(choice.reason or "no dose", roi, match, notes))
    rx: float | None = None
    if metric.needs_prescription:
        rx, rx_note = env.plan_rx(c.comparator)
        if rx is None:
            return Outcome(spec.skipped(rx_note, roi, match, notes))
        notes = "; ".join(n for n in (notes, rx_note) if n)
    try:
        dvh = env.resolver.dvh(resolved, choice.dose)
    except GeometryError as exc:
        return Outcome(spec.skipped(f"the DVH cannot be computed: {exc}", roi, match, notes))
    env.used.append((resolved, choice))
    extra, plans = env.uncovered(resolved, choice)
    where = f"the dose grid of plan {', '.join(plans)}" if plans else "the dose grid"
    outcome = evaluate_on_dvh(
        spec, metric, dvh, rx, roi, match, notes, extra_outside_cc=extra, grid_name=where
    )
    if outcome.result.value is not None and c.confirmed:
        check = env.regrid_check(resolved, choice)
        if check is not None:
            outcome = judge_with_regrid_check(spec, metric, dvh, rx, check, roi, match, notes)
    if not c.confirmed and outcome.result.value is not None:
        value = outcome.result.value
        shown = f"computed value {value:.4g} {spec.unit}, not judged"
        return Outcome(
            spec.skipped(f"limit unconfirmed: {c.unconfirmed_reason}", roi, match, shown)
        )
    return outcome


def evaluate_on_dvh(
    spec: RowSpec,
    metric: Metric,
    dvh: DVH,
    rx: float | None,
    roi: str | None,
    match: str | None,
    note: str | None = None,
    *,
    extra_outside_cc: float = 0.0,
    grid_name: str = "the dose grid",
) -> Outcome:
    """Judge ``metric`` on ``dvh``: coverage check, then the value against the limits.

    ``extra_outside_cc``: volume outside the grid of some summed plan (``grid_name`` says
    which), counted with the volume outside the DVH's own grid.
    """
    if dvh.is_empty:
        return Outcome(
            spec.skipped(f"{dvh.name!r} has no volume on the dose grid", roi, match, note)
        )
    broken = [f for f in dvh.findings if f.severity is Severity.ERROR]
    if broken:  # e.g. overlapping contours: the volume itself is in doubt
        return Outcome(spec.skipped(broken[0].message, roi, match, note))
    total = float(dvh.structure_volume_cc or dvh.volume_cc)
    outside = dvh.outside_volume_cc + extra_outside_cc
    tol = outside_tolerance_cc(total)
    if outside > tol:
        pct = 100.0 * outside / total if total > 0 else 100.0
        return Outcome(
            spec.skipped(
                f"{outside:.3g} cc ({pct:.2g} %) of {dvh.name!r} lies outside {grid_name} "
                f"(tolerance {tol:.3g} cc); its dose there is unknown",
                roi,
                match,
                note,
            )
        )
    try:
        value = metric.evaluate(dvh, prescription_gy=rx)
    except MetricNotComputable as exc:
        return Outcome(spec.skipped(exc.reason, roi, match, note))
    return Outcome(spec.judged(value, roi, match, note))


def judge_with_regrid_check(
    spec: RowSpec,
    metric: Metric,
    dvh: DVH,
    rx: float | None,
    check: RegridCheck,
    roi: str | None,
    match: str | None,
    note: str | None = None,
) -> Outcome:
    """Judge a metric of a DVH computed on a summed (re-gridded or converted) dose.

    * A maximum is the larger of the DVH's and the exact per-plan sum's
      (``check.exact_max_gy``); the true maximum lies between that exact value and the DVH
      maximum plus ``check.uncertainty_gy``, and a pass must hold at both ends.
    * Any other metric is also computed from the exact sum and from the summed grid at the
      same sample points (``check.metric_pair``); a pass must hold for the DVH value shifted
      by that difference too.

    A pass that does not hold at the other end is *not evaluated* (the exact sum might fail);
    the level is the one both values meet. Failing values stay failures.
    """
    notes = [n for n in (note, check.describe()) if n]
    grid_max = dvh.max_gy
    exact = check.exact_max_gy if check.exact_max_gy is not None else -np.inf
    is_max = metric.kind is MetricKind.MAX
    if is_max:
        if exact > grid_max:
            notes.append(
                f"maximum from the exact per-plan sum ({exact:.4g} Gy; the DVH on the summed "
                f"grid gives {grid_max:.4g} Gy)"
            )
        dvh = replace(dvh, dmax_gy=max(grid_max, exact))
    value = metric.evaluate(dvh, prescription_gy=rx)
    if is_max:  # the true maximum lies in [max(exact, grid max - e), grid max + e]
        e = check.uncertainty_gy
        end = grid_max + e if spec.comparator.is_upper else grid_max - e
        bound = replace(dvh, dmax_gy=max(exact, end))
        other, spread = metric.evaluate(bound, prescription_gy=rx), f"+-{e:.3g} Gy"
    else:
        try:
            on_exact, on_grid = check.metric_pair(metric, rx)
            other = value + (on_exact - on_grid)
            spread = f"+-{abs(on_exact - on_grid):.3g} {spec.unit}"
            notes.append(
                f"from the exact sum at the same points: {on_exact - on_grid:+.3g} {spec.unit}"
            )
        except MetricNotComputable:  # fall back to the pointwise bound: every dose +- e
            e = check.uncertainty_gy
            shifted = [metric.evaluate(_shift(dvh, d), prescription_gy=rx) for d in (e, -e)]
            other = max(shifted) if spec.comparator.is_upper else min(shifted)
            spread = f"+-{e:.3g} Gy"
    text = "; ".join(notes)
    result = spec.judged(value, roi, match, text)
    if result.status is not Status.PASS:
        return Outcome(result)
    worst = max(value, other) if spec.comparator.is_upper else min(value, other)
    level = next((lvl for lvl, lim in spec.limits if spec.comparator.holds(worst, lim)), None)
    if level is None:
        margin = result.margin if result.margin is not None else 0.0
        reason = (
            f"within the composite's interpolation uncertainty ({spread}): {value:.4g} "
            f"{spec.unit} passes by {margin:.3g} {spec.unit}, but the exact sum of the plans "
            f"may give {worst:.4g} {spec.unit}, which does not pass; a point-dose check or a "
            "finer summation grid is needed"
        )
        return Outcome(spec.skipped(reason, roi, match, f"value {value:.4g} {spec.unit}; {text}"))
    if level == result.level:
        return Outcome(result)
    text += f"; level {level!r}: the one the exact-sum bound ({worst:.4g}) also meets"
    return Outcome(replace(spec.judged(value, roi, match, text), level=level))


def _shift(dvh: DVH, delta: float) -> DVH:
    """The DVH of the dose plus ``delta`` Gy everywhere."""
    return replace(
        dvh,
        doses_gy=dvh.doses_gy + delta,
        dmax_gy=None if dvh.dmax_gy is None else dvh.dmax_gy + delta,
        dmin_gy=None if dvh.dmin_gy is None else dvh.dmin_gy + delta,
    )


def _unavailable(spec: RowSpec, resolved: Resolved, required: bool) -> Outcome:
    reason = resolved.reason or resolved.state.value
    if resolved.state is State.NOT_CONTOURED:
        text = (
            f"required structure not contoured: {reason}"
            if required
            else f"not contoured: {reason}"
        )
        return Outcome(spec.skipped(text, resolved.label, _match_text(resolved)), blocking=required)
    if resolved.state is State.AMBIGUOUS:
        return Outcome(spec.skipped(reason, None, "ambiguous"))
    return Outcome(spec.skipped(reason, resolved.label, _match_text(resolved)))


def _match_text(resolved: Resolved) -> str | None:
    if resolved.state is State.DERIVED:
        return "derived"
    if resolved.state is State.AMBIGUOUS:
        return "ambiguous"
    if resolved.method is None:
        return "not found" if resolved.state is State.NOT_CONTOURED else None
    return resolved.method


def table_missing(
    protocol: ProtocolDef,
    fractions: int | None,
    source: str,
    what: str = "(all)",
    lesion: str | None = None,
) -> Outcome:
    """A blocking row saying the protocol has no table for ``fractions`` (for ``lesion``)."""
    have = protocol.fractions_text
    if fractions is None:
        reason = (
            "number of fractions unknown (the RT Plan does not state it); give --fractions N "
            f"(protocol {protocol.id} has tables for {have} fractions)"
        )
    else:
        reason = (
            f"protocol {protocol.id} has no table for {fractions} fractions "
            f"(tables: {have}); fractions from {source}; nothing is evaluated against another "
            "table"
        )
    key = f"table.{fractions if fractions is not None else 'unknown'}fx"
    spec = RowSpec(
        id=key if lesion is None else f"{key}@{lesion}",
        structure=what,
        metric="(protocol table)",
        unit="",
        comparator=Comparator.LT,
        limits=(),
        lesion=lesion,
    )
    return Outcome(spec._result(None, None, None, Status.NOT_EVALUATED, None, None, reason, None))


# ----------------------------------------------------------------------------- verdict
#: ERROR finding codes that put the evaluated dose itself in doubt: missing or unreadable dose
#: contributions, or a dose implausibly low for its prescription.
DOSE_DOUBT_CODES = frozenset(
    {
        "dose.beams_missing",
        "dose.summation_type_missing",
        "dose.plan_duplicate",
        "plan_without_dose",
        "file.unreadable",
        "file.not_dicom",
        "file.no_uid",
        "link.unlinked",
        "dose.zero",
        "dose.unverified",
        "dose.below_prescription",
        "dose.lesion_below_prescription",
        "dose.lesion_above_prescription",
        "dose.lesion_untreated",
    }
)


def distrust_passes(outcomes: Sequence[Outcome], findings: Sequence[Finding]) -> list[Outcome]:
    """Rows that would pass on a dose in doubt become blocking *not evaluated* rows.

    See the module docstring; the value and the level it would have met stay in the reason.
    """
    doubts = [f for f in findings if f.severity is Severity.ERROR and f.code in DOSE_DOUBT_CODES]
    if not doubts:
        return list(outcomes)
    first = doubts[0]
    more = f" and {len(doubts) - 1} more" if len(doubts) > 1 else ""
    why = f"dose in doubt ({first.code}: {first.message}{more})"
    out = []
    for o in outcomes:
        r = o.result
        if r.status is not Status.PASS:
            out.append(o)
            continue
        shown = f"{r.value:.4g} {r.unit}" if r.value is not None else "the value"
        reason = f"{why}: {shown} would pass but cannot be vouched for"
        demoted = replace(r, status=Status.NOT_EVALUATED, level=None, reason=reason)
        out.append(Outcome(demoted, blocking=True))
    return out


def decide(
    outcomes: Sequence[Outcome], findings: Sequence[Finding]
) -> tuple[Verdict, list[Finding]]:
    """The plan verdict and a finding explaining an ``incomplete`` one."""
    if any(o.status is Status.FAIL for o in outcomes):
        return Verdict.FAIL, []
    why: list[str] = []
    blocking = [o.result for o in outcomes if o.status is Status.NOT_EVALUATED and o.blocking]
    if blocking:
        names = list(dict.fromkeys(_row_name(r) for r in blocking))
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        listing = ", ".join(names[:5]) + more
        why.append(f"{len(blocking)} constraint(s) could not be evaluated ({listing})")
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        why.append(f"{len(errors)} ERROR finding(s) ({errors[0].code}: {errors[0].message})")
    if not any(o.status is Status.PASS for o in outcomes):
        why.append("no constraint could be evaluated")
    if not why:
        return Verdict.PASS, []
    return Verdict.INCOMPLETE, [
        Finding(
            "verdict.incomplete",
            "nothing failed, but the plan is not cleared: " + "; ".join(why),
            Severity.WARNING,
        )
    ]


def _row_name(r: ConstraintResult) -> str:
    where = f"{r.lesion}: " if r.lesion else ""
    return f"{where}{r.structure} {r.metric}"
