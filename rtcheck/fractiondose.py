"""FRACTION doses: the dose of one fraction, scaled to the whole plan.

A plan whose only dose is a FRACTION dose (DoseSummationType FRACTION) gets the dose of one
fraction x the number of fractions to be delivered: the RT Plan's NumberOfFractionsPlanned, or
the user's ``--fractions N`` (``docs/multiplan.md``, section 1). Used by :mod:`rtcheck.doseset`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rtcheck.errors import Finding, Severity
from rtcheck.model import DoseGrid, Plan

__all__ = ["FractionCount", "fraction_dose"]


@dataclass(frozen=True)
class FractionCount:
    """The number of fractions the user gave for every plan (``--fractions N``).

    Attributes
    ----------
    n
        The count (None: each plan's own NumberOfFractionsPlanned).
    confirmed
        The user confirmed ``n`` for plans whose RT Plan states another number, or none
        (``--fractions-override``).
    """

    n: int | None = None
    confirmed: bool = False


def fraction_dose(
    d: DoseGrid, plan: Plan | None, subj: str, user: FractionCount
) -> tuple[DoseGrid | None, Finding]:
    """The whole-plan dose of a FRACTION dose: the dose of one fraction x the fractions.

    The plan's total is the dose per fraction x the number of fractions actually delivered.
    That number is the RT Plan's NumberOfFractionsPlanned, unless the user gave another one
    (``--fractions N``): the evaluation then uses N (table, dose per fraction for EQD2/BED),
    so the dose is scaled by N too; a per-fraction dose x the plan's count checked against
    the N-fraction table, or converted with D / N per fraction, would be wrong. A count that
    the RT Plan does not state is an ERROR unless confirmed with ``--fractions-override``
    (WARNING): a typo would scale every dose of the plan.
    """
    planned = None if plan is None else plan.fractions_planned
    planned = planned if planned is not None and planned >= 1 else None
    n = user.n if user.n is not None else planned
    where = d.source
    if n is None:
        why = "it has no RT Plan" if plan is None else "its RT Plan states none"
        message = (
            f"FRACTION dose of {subj} cannot be scaled to the whole plan (number of fractions "
            f"unknown: {why}); NOT used. Give --fractions N --fractions-override to scale it "
            "by N"
        )
        return None, Finding("dose.fraction_unscaled", message, Severity.ERROR, where, subj)
    stated = "there is no RT Plan" if plan is None else f"the RT Plan states {planned or 'none'}"
    severity, text = _fraction_source(n, planned, stated, user)
    name = d.source or d.sop_instance_uid or "RT Dose"
    message = f"dose of {subj} = FRACTION dose {name} x {text}"
    scaled = replace(
        d,
        dose_gy=np.asarray(d.dose_gy) * n,
        summation_type="PLAN",
        units_note=f"{d.units_note}; FRACTION dose x {n} fractions",
    )
    return scaled, Finding("dose.fraction_scaled", message, severity, where, subj)


def _fraction_source(
    n: int, planned: int | None, stated: str, user: FractionCount
) -> tuple[Severity, str]:
    """Severity and wording of the count that scaled a FRACTION dose."""
    if user.n is None:
        return Severity.INFO, f"{n} planned fractions (the RT Plan's NumberOfFractionsPlanned)"
    if n == planned:
        return Severity.INFO, f"{n} fractions (--fractions {n}, as the RT Plan states)"
    if user.confirmed:
        return Severity.WARNING, (
            f"{n} fractions from --fractions {n}, confirmed by --fractions-override "
            f"({stated}); the RT Plan's count was NOT used"
        )
    return Severity.ERROR, (
        f"{n} fractions from --fractions {n}, not confirmed ({stated}); the plan is not "
        "cleared until --fractions-override confirms it (or --fractions is left out)"
    )
