"""Which dose an organ constraint is evaluated on (single plan, physical sum, EQD2/BED sum).

Rules (``docs/evaluation.md``, ``docs/multiplan.md``):

* One plan: its own dose grid for physical limits; EQD2/BED limits on that plan's converted
  dose (each voxel with the plan's dose per fraction).
* Several plans with the same number of fractions: physical limits on their physical sum.
* Several plans with different (or unknown) fraction counts: physical limits are **not
  evaluated** (a physical limit for one fractionation cannot be applied to the sum; no
  silent conversion); EQD2/BED limits on the voxel-wise EQD2/BED sum.
* alpha/beta of an EQD2/BED limit: the value written in the metric; otherwise ``--alpha-beta``,
  then the protocol's value for the structure, then rtcheck's default by organ class.
* Structures partly outside the dose grid of any summed plan are treated like a structure
  leaving the dose grid: that volume counts against the coverage tolerance (a plan's grid
  that ends does not say its dose is 0 beyond it).
* On a composite (a sum, or a converted dose) the exact per-plan sum is checked over each
  structure (:mod:`rtcheck.regrid_check`): the evaluator takes maxima from it and does not pass
  a value closer to its limit than the summed grid's interpolation uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtcheck.composite import Composite
from rtcheck.doseset import DoseSet
from rtcheck.dvh.compute import PreparedDose
from rtcheck.errors import Finding, RtcheckError, Severity
from rtcheck.evaluate import DoseChoice
from rtcheck.geometry.rasterize import Occupancy
from rtcheck.metrics import DoseBasis, Metric
from rtcheck.protocol import Comparator, Constraint, Protocol
from rtcheck.radiobiology import resolve_alpha_beta
from rtcheck.regrid_check import RegridCheck, regrid_check
from rtcheck.resolve import Resolved, StructureResolver


@dataclass
class OrganDoses:
    """The environment :func:`rtcheck.evaluate.evaluate_organ` uses for one case.

    Attributes
    ----------
    resolver
        Structure resolver of the case.
    doses
        The case's plan doses.
    protocol
        The protocol.
    rx_values
        ``(target, Gy or None)`` of every lesion (for ``%`` of Rx organ metrics).
    required_names
        Structures the user requires (``--require``).
    alpha_beta_override
        ``--alpha-beta`` (Gy) or None.
    alpha_beta_structures
        ``--alpha-beta STRUCTURE=GY`` values by protocol structure (win over the override).
    """

    resolver: StructureResolver
    doses: DoseSet
    protocol: Protocol
    rx_values: tuple[tuple[str, float | None], ...]
    required_names: frozenset[str] = frozenset()
    alpha_beta_override: float | None = None
    alpha_beta_structures: dict[str, float] = field(default_factory=dict)
    used_alpha_beta: dict[str, float] = field(default_factory=dict)
    used: list[tuple[Resolved, DoseChoice]] = field(default_factory=list)
    _prepared: dict[str, tuple[PreparedDose, Composite | None]] = field(default_factory=dict)
    _errors: dict[str, str] = field(default_factory=dict)
    _uncovered: dict[tuple[str, str], tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    _regrid: dict[tuple[str, str], RegridCheck | None] = field(default_factory=dict)

    # ------------------------------------------------------------------ doses
    @property
    def single(self) -> bool:
        """True for a case with one plan dose."""
        return len(self.doses.plan_doses) == 1

    def physical(self) -> DoseChoice:
        """The physical dose organs are evaluated on, or why there is none."""
        reason = self.doses.mixed_fractionation
        if reason and not self.single:
            return DoseChoice(
                None,
                reason=f"{reason}: a physical limit for one fractionation cannot be applied to "
                "their sum (no silent conversion); only EQD2/BED limits are evaluated",
                key="physical",
            )
        if self.single:
            return self._choice("physical", lambda: (self.doses.plan_doses[0].dose, None))
        return self._choice("physical", lambda: _from(self.doses.physical()))

    def dose_for(self, metric: Metric, structure: str) -> DoseChoice:
        """The dose for ``metric`` (physical or converted), see the module docstring."""
        if metric.basis is DoseBasis.PHYSICAL:
            return self.physical()
        assert metric.alpha_beta is not None
        ab = float(metric.alpha_beta)
        method = metric.basis.value
        key = f"{method}:{ab:g}"
        choice = self._choice(
            key, lambda: _from(self.doses.composite_for_alpha_beta(ab, method)), ab, method
        )
        self.used_alpha_beta[structure] = ab
        return choice

    def _choice(
        self, key: str, make, ab: float | None = None, method: str = "physical"
    ) -> DoseChoice:
        if key in self._errors:
            return DoseChoice(None, reason=self._errors[key], key=key)
        if key not in self._prepared:
            try:
                dose, comp = make()
                self._prepared[key] = (PreparedDose.of(dose), comp)
            except RtcheckError as exc:
                self._errors[key] = exc.message
                return DoseChoice(None, reason=exc.message, key=key)
        prepared, comp = self._prepared[key]
        basis = "physical" if ab is None else f"{method}(a/b={ab:g})"
        note = None
        if comp is not None and (len(comp.plan_doses) > 1 or ab is not None):
            note = comp.summary()
        return DoseChoice(prepared, basis, None, note, key)

    def composite(self, key: str) -> Composite | None:
        """The composite behind a dose key (None for a single plan's own dose)."""
        found = self._prepared.get(key)
        return None if found is None else found[1]

    # ------------------------------------------------------------------ alpha/beta
    def metric_for(self, c: Constraint) -> tuple[Metric, str | None]:
        """The metric to evaluate (point max applied, alpha/beta filled) and notes."""
        metric, note = self.protocol.metric_to_evaluate(c)
        if metric.basis is DoseBasis.PHYSICAL:
            return metric, note
        if c.metric.alpha_beta is not None:
            text = f"alpha/beta {c.metric.alpha_beta:g} Gy: stated in the protocol's metric"
            return metric, "; ".join(n for n in (note, text) if n)
        protocol_ab = None
        if self.protocol.alpha_beta is not None:
            protocol_ab = self.protocol.alpha_beta.for_structure(c.structure)
        ab = resolve_alpha_beta(
            c.structure,
            override=self.alpha_beta_structures.get(c.structure, self.alpha_beta_override),
            protocol=protocol_ab,
            protocol_name=self.protocol.id,
        )
        text = f"alpha/beta {ab.value:g} Gy: {ab.source}"
        if ab.organ_class is not None:
            self._note_default_alpha_beta(c, ab.value)
        return metric.with_alpha_beta(ab.value), "; ".join(n for n in (note, text) if n)

    def _note_default_alpha_beta(self, c: Constraint, value: float) -> None:
        """WARNING: an EQD2/BED limit judged with rtcheck's default alpha/beta, which may not
        be the value the limit was derived with (the protocol file does not state one)."""
        subject = f"{c.structure} {c.metric}"
        found = self.resolver.findings
        if any(f.code == "alpha_beta.default" and f.subject == subject for f in found):
            return
        found.append(
            Finding(
                "alpha_beta.default",
                f"{subject}: the protocol states no alpha/beta for this EQD2/BED limit; rtcheck's "
                f"default {value:g} Gy was used, which may not be the value the limit was "
                "derived with (state it in the protocol file, or give --alpha-beta)",
                Severity.WARNING,
                subject=subject,
            )
        )

    # ------------------------------------------------------------------ environment
    def plan_rx(self, comparator: Comparator) -> tuple[float | None, str]:
        """Prescription for ``%`` of Rx organ metrics: the strictest of the targets' (docs)."""
        if not self.rx_values:
            return None, "the metric is relative to the prescription, but no target was found"
        unknown = [t for t, gy in self.rx_values if gy is None]
        if unknown:
            return None, (
                "the metric is relative to the prescription, which is unknown for "
                f"{', '.join(unknown)} (give --rx NAME=GY)"
            )
        doses = sorted({float(gy) for _, gy in self.rx_values if gy is not None})
        if len(doses) == 1:
            return doses[0], f"% of the prescription {doses[0]:g} Gy"
        rx = doses[0] if comparator.is_upper else doses[-1]
        which = "lowest" if comparator.is_upper else "highest"
        listing = ", ".join(f"{d:g}" for d in doses)
        return rx, (
            f"targets have different prescriptions ({listing} Gy): % of the {which}, {rx:g} Gy "
            "(the strictest reading)"
        )

    def required(self, constraint: Constraint) -> bool:
        """``required: true`` in the protocol, or named by ``--require``."""
        return constraint.required or constraint.structure in self.required_names

    def uncovered(self, resolved: Resolved, choice: DoseChoice) -> tuple[float, tuple[str, ...]]:
        """:meth:`uncovered_cc` and the labels of the plans whose grids miss the structure."""
        comp = self.composite(choice.key)
        if comp is None or len(comp.plan_doses) < 2 or choice.dose is None:
            return 0.0, ()
        key = (resolved.name, choice.key)
        if key not in self._uncovered:
            occ = self.resolver.occupancy(resolved, choice.dose.dose.geometry)
            self._uncovered[key] = _uncovered(comp, occ)
        return self._uncovered[key]

    def regrid_check(self, resolved: Resolved, choice: DoseChoice) -> RegridCheck | None:
        """How far the summed grid may be from the exact per-plan sum over this structure.

        None for a plan's own dose grid (nothing was re-gridded or converted).
        """
        comp = self.composite(choice.key)
        if comp is None or choice.dose is None:
            return None
        key = (resolved.name, choice.key)
        if key not in self._regrid:
            occ = self.resolver.occupancy(resolved, choice.dose.dose.geometry)
            self._regrid[key] = regrid_check(comp, occ) if occ.fraction.size else None
        return self._regrid[key]


def _uncovered(comp: Composite, occ: Occupancy) -> tuple[float, tuple[str, ...]]:
    """Volume (cc) of ``occ`` outside some plan's grid, and those plans' labels."""
    if occ.fraction.size == 0:
        return 0.0, ()
    idx = np.argwhere(occ.fraction > 0)
    xyz = np.asarray(occ.geometry.origin) + idx[:, ::-1] * np.asarray(occ.geometry.spacing)
    missing = comp.outside_each_grid(xyz)
    frac = occ.fraction[tuple(idx[missing.any(axis=1)].T)]
    hits = missing.any(axis=0)
    plans = tuple(pd.label for pd, hit in zip(comp.plan_doses, hits, strict=True) if hit)
    return float(frac.sum(dtype=np.float64)) * occ.cell_volume_cc, plans


def _from(comp: Composite) -> tuple[object, Composite]:
    return comp.dose, comp
