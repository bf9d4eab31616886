"""Is the dose plausible for the prescriptions? ERROR findings when it clearly is not.

A dose in the wrong units (Gy labelled cGy), a dose per fraction labelled as the whole plan, or
the wrong dose file can meet every organ limit: a protocol without target rules (TG-101) would
then clear a plan whose targets get a fraction of their prescription. These checks compare each
plan's dose with what is known to be prescribed on it (``docs/evaluation.md``, section 5):

* the plan's dose is zero everywhere;
* no prescription is known for the plan at all (nothing to compare the dose with);
* the plan's dose maximum is below :data:`PLAUSIBLE_MAX_FRACTION` of the largest known
  prescription of the plan;
* a lesion with a known prescription has ``D95%`` below :data:`PLAUSIBLE_FRACTION` of it
  (on its own plan's dose), or above :data:`IMPLAUSIBLE_ABOVE` times it (a wrong
  prescription: every relative metric of that lesion would be meaningless);
* a lesion without a prescription has ``D95%`` below :data:`PLAUSIBLE_FRACTION` of its plan's
  largest prescription (it may be treated by a plan missing from the folder).

The first that applies to a plan is reported (the later ones follow from it). Each is an ERROR
finding, so the verdict cannot be ``pass`` (:func:`rtcheck.evaluate.decide`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rtcheck.doseset import DoseSet, PlanDose
from rtcheck.errors import Finding, MetricSyntaxError, Severity
from rtcheck.metrics import parse_metric
from rtcheck.result import ConstraintResult

__all__ = ["PLAUSIBLE_FRACTION", "PLAUSIBLE_MAX_FRACTION", "LesionDose", "dose_plausibility"]

#: A lesion's D95% below this fraction of its prescription is implausible.
PLAUSIBLE_FRACTION = 0.5
#: A plan's dose maximum below this fraction of its largest prescription is implausible: every
#: real plan reaches its prescription somewhere (SBRT maxima are 110-140 % of it).
PLAUSIBLE_MAX_FRACTION = 0.9
#: A lesion's D95% above this multiple of its prescription means the prescription is wrong
#: (even a plan prescribed to the 50 % isodose keeps D95% near the prescription).
IMPLAUSIBLE_ABOVE = 2.0

_CAUSES = (
    "this suggests wrong dose units (e.g. Gy values labelled cGy), a dose per fraction "
    "labelled as the plan dose, or a wrong dose file"
)


@dataclass(frozen=True)
class LesionDose:
    """What the check needs of one lesion.

    Attributes
    ----------
    name
        Target ROI name.
    plan
        The plan dose the lesion is evaluated on (None: no plan claims it).
    rx_gy
        Its prescription (total Gy), None when unknown.
    d95_gy
        ``D95%`` of the target on ``plan``'s dose, None when not computed.
    """

    name: str
    plan: PlanDose | None
    rx_gy: float | None
    d95_gy: float | None


def dose_plausibility(doses: DoseSet, lesions: Sequence[LesionDose]) -> list[Finding]:
    """ERROR findings for implausibly low doses (see the module docstring)."""
    out: list[Finding] = []
    for pd in doses.plan_doses:
        mine = [les for les in lesions if les.plan is pd]
        finding = _zero(pd) or _unverified(pd, mine) or _low_max(pd, mine)
        if finding is not None:
            out.append(finding)
            continue
        out += [f for f in (_low_d95(pd, les) for les in mine) if f is not None]
        out += [f for f in (_high_d95(pd, les) for les in mine) if f is not None]
        out += [f for f in (_untreated(pd, les, mine) for les in mine) if f is not None]
    return out


def _known_rx(pd: PlanDose, mine: Sequence[LesionDose]) -> tuple[float, str] | None:
    """Largest known prescription of the plan and what it is (lesions first, else the plan)."""
    known = [(les.rx_gy, les.name) for les in mine if _positive(les.rx_gy)]
    if not known and pd.plan is not None:  # no lesion prescription: the RT Plan's own
        known = [
            (p.target_dose_gy, f"dose reference {p.description or p.number or ''}".strip())
            for p in pd.plan.target_prescriptions
            if _positive(p.target_dose_gy)
        ]
    if not known:
        return None
    gy, what = max(known, key=lambda k: k[0])
    return float(gy), what


def _zero(pd: PlanDose) -> Finding | None:
    if pd.dose.max_gy > 0:
        return None
    return Finding(
        "dose.zero",
        f"the dose of plan {pd.label} is zero everywhere{_where(pd)}: nothing can be "
        "cleared on it; check that the right dose file was exported",
        Severity.ERROR,
        subject=pd.label,
        source=pd.dose.source,
    )


def _unverified(pd: PlanDose, mine: Sequence[LesionDose]) -> Finding | None:
    """No prescription at all: the dose cannot be checked, so nothing on it can be cleared."""
    if _known_rx(pd, mine) is not None:
        return None
    return Finding(
        "dose.unverified",
        f"no prescription is known for plan {pd.label} (no RT Plan dose reference, no dose in "
        "a target's name, no --rx): its dose cannot be checked for plausibility (wrong units, "
        "a dose per fraction labelled as the plan dose), so the plan cannot be cleared; give "
        f"--rx TARGET=GY{_where(pd)}",
        Severity.ERROR,
        subject=pd.label,
        source=pd.dose.source,
    )


def _low_max(pd: PlanDose, mine: Sequence[LesionDose]) -> Finding | None:
    rx = _known_rx(pd, mine)
    if rx is None:
        return None
    gy, what = rx
    top = pd.dose.max_gy
    if top >= PLAUSIBLE_MAX_FRACTION * gy:
        return None
    return Finding(
        "dose.below_prescription",
        f"the dose maximum of plan {pd.label} is {top:.4g} Gy, {_pct(top, gy)} of the largest "
        f"prescription of the plan ({gy:g} Gy, {what}); a maximum below "
        f"{PLAUSIBLE_MAX_FRACTION * 100:g} % of it is implausible: {_CAUSES}{_where(pd)}",
        Severity.ERROR,
        subject=pd.label,
        source=pd.dose.source,
    )


def _d95_and_rx(les: LesionDose) -> tuple[float, float] | None:
    """``(D95%, prescription)`` when both are known numbers (the prescription positive)."""
    if not _positive(les.rx_gy) or les.d95_gy is None or not math.isfinite(les.d95_gy):
        return None
    assert les.rx_gy is not None
    return les.d95_gy, les.rx_gy


def _low_d95(pd: PlanDose, les: LesionDose) -> Finding | None:
    known = _d95_and_rx(les)
    if known is None or known[0] >= PLAUSIBLE_FRACTION * known[1]:
        return None
    d95, rx = known
    return Finding(
        "dose.lesion_below_prescription",
        f"{les.name}: D95% is {d95:.4g} Gy on plan {pd.label}, {_pct(d95, rx)} of its "
        f"prescription ({rx:g} Gy); a D95% below {PLAUSIBLE_FRACTION * 100:g} % of "
        f"the prescription is implausible: {_CAUSES}, or a wrong target or prescription"
        f"{_where(pd)}",
        Severity.ERROR,
        subject=les.name,
        source=pd.dose.source,
    )


def _high_d95(pd: PlanDose, les: LesionDose) -> Finding | None:
    known = _d95_and_rx(les)
    if known is None or known[0] <= IMPLAUSIBLE_ABOVE * known[1]:
        return None
    d95, rx = known
    return Finding(
        "dose.lesion_above_prescription",
        f"{les.name}: D95% is {d95:.4g} Gy on plan {pd.label}, "
        f"{_pct(d95, rx)} of its prescription ({rx:g} Gy); no plan gives "
        f"95 % of a target more than {IMPLAUSIBLE_ABOVE:g} times its prescription: the "
        f"prescription is probably wrong (read from a name? give --rx {les.name}=GY)",
        Severity.ERROR,
        subject=les.name,
        source=pd.dose.source,
    )


def _untreated(pd: PlanDose, les: LesionDose, mine: Sequence[LesionDose]) -> Finding | None:
    """A lesion without a prescription that its plan's dose leaves far below the plan's.

    In a folder holding one plan of a multi-plan patient (the other plans not exported), every
    PTV falls to that plan; those it does not treat get almost no dose and no prescription.
    Their own plans' doses are then missing from every organ sum: nothing can be cleared.
    """
    if _positive(les.rx_gy) or les.d95_gy is None or not math.isfinite(les.d95_gy):
        return None
    rx = _known_rx(pd, mine)
    if rx is None or les.d95_gy >= PLAUSIBLE_FRACTION * rx[0]:
        return None
    return Finding(
        "dose.lesion_untreated",
        f"{les.name} has no prescription and D95% {les.d95_gy:.4g} Gy on plan {pd.label} "
        f"({_pct(les.d95_gy, rx[0])} of its {rx[0]:g} Gy): it may be treated by a plan that "
        "is missing from the folder, whose dose then misses from every organ; export it, or "
        f"give --rx {les.name}=GY if this plan treats it",
        Severity.ERROR,
        subject=les.name,
        source=pd.dose.source,
    )


def _positive(gy: float | None) -> bool:
    return gy is not None and math.isfinite(gy) and gy > 0


def _pct(value: float, of: float) -> str:
    return f"{100.0 * value / of:.3g} %"


def _where(pd: PlanDose) -> str:
    """The dose files, when the finding's ``source`` cannot name one (a sum of BEAM doses)."""
    if pd.dose.source:
        return ""
    return f" (dose {', '.join(pd.components)})" if pd.components else ""


# ----------------------------------------------------------------------------- protocol limits
#: An upper dose limit above this (Gy, in any basis) is far above any dose a plan delivers:
#: most likely a cGy number written for a ``[Gy]`` metric. A guard against a unit slip in a
#: user's protocol file, not a clinical value (``docs/protocols.md``, third review).
IMPLAUSIBLE_LIMIT_GY = 200.0

_TO_GY = {"Gy": 1.0, "cGy": 0.01}


def limit_plausibility(rows: Sequence[ConstraintResult]) -> list[Finding]:
    """A WARNING per row whose upper dose limit exceeds :data:`IMPLAUSIBLE_LIMIT_GY`.

    Such a limit is always met, so the row would pass whatever the dose; lower limits
    (coverage) cannot pass falsely this way and are not checked.
    """
    found = (f(r) for r in rows for f in (_threshold_finding, _limit_finding))
    return [f for f in found if f is not None]


def _limit_finding(r: ConstraintResult) -> Finding | None:
    """A WARNING when an upper dose limit of ``r`` exceeds :data:`IMPLAUSIBLE_LIMIT_GY`."""
    factor = _TO_GY.get(r.unit)
    if factor is None:
        return None
    high = [
        lim
        for lim in r.limits
        if lim.comparator in ("<", "<=") and lim.value * factor > IMPLAUSIBLE_LIMIT_GY
    ]
    if not high:
        return None
    return Finding(
        "protocol.limit_implausible",
        f"{r.structure} {r.metric}: limit {high[0].value:g} {r.unit} ({high[0].level}) is "
        f"above {IMPLAUSIBLE_LIMIT_GY:g} Gy, far above any delivered dose, so it is always "
        "met: a cGy value written for a [Gy] metric? Check the protocol file",
        Severity.WARNING,
        subject=r.structure,
    )


def _threshold_finding(r: ConstraintResult) -> Finding | None:
    """A WARNING when a V/CV metric's dose threshold exceeds :data:`IMPLAUSIBLE_LIMIT_GY`.

    ``V2000Gy[cc] < 0.35`` (cGy written for Gy in the metric) is always met: no dose reaches
    2000 Gy, so the volume is 0 (and ``CV2000Gy`` is the whole organ).
    """
    try:
        metric = parse_metric(r.metric)
    except MetricSyntaxError:
        return None
    unit = metric.value_unit.value if metric.value_unit else ""
    factor = _TO_GY.get(unit)
    if metric.kind.gives_dose or metric.value is None or factor is None:
        return None
    if metric.value * factor <= IMPLAUSIBLE_LIMIT_GY:
        return None
    return Finding(
        "protocol.limit_implausible",
        f"{r.structure} {r.metric}: its dose threshold {metric.value:g} {unit} is above "
        f"{IMPLAUSIBLE_LIMIT_GY:g} Gy, far above any delivered dose, so the volume it counts "
        "is always 0 (for CV, the whole structure) "
        "and the limit says nothing: a cGy value written for Gy? Check the protocol file",
        Severity.WARNING,
        subject=r.structure,
    )
