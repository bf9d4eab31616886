"""The evaluation result: what :mod:`rtcheck.evaluate` produces and every report reads.

All objects are frozen. ``Result.to_dict()`` is the JSON contract (schema version
``RESULT_SCHEMA_VERSION``) documented in the README; reports never compute, they only read
these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rtcheck.errors import Finding

RESULT_SCHEMA_VERSION = "1.2"


class Status(StrEnum):
    """Outcome of one constraint."""

    PASS = "pass"
    FAIL = "fail"
    NOT_EVALUATED = "not_evaluated"


class Verdict(StrEnum):
    """Outcome of a whole plan check; exit codes in :data:`EXIT_CODES`."""

    PASS = "pass"
    FAIL = "fail"
    INCOMPLETE = "incomplete"


#: Process exit codes (documented in the README).
EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "error": 2, "incomplete": 3}


@dataclass(frozen=True)
class Limit:
    """One acceptance level of a constraint: ``value comparator limit`` passes the level.

    Attributes
    ----------
    level
        Level name as the protocol names it (``mandatory``, ``optimal``, ``none``...).
    comparator
        One of ``<``, ``<=``, ``>``, ``>=``.
    value
        The limit, in ``unit``.
    unit
        ``Gy``, ``cc``, ``%`` or ``ratio``.
    """

    level: str
    comparator: str
    value: float
    unit: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"comparator": self.comparator, "value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class ConstraintResult:
    """The evaluation of one protocol constraint on one structure.

    Attributes
    ----------
    id
        Stable id within the protocol (e.g. ``"SpinalCord.Max.5fx"``).
    structure
        Protocol structure name (TG-263).
    matched_roi
        ROI name in the plan it was evaluated on, or None.
    match
        How the ROI was matched (``exact``, ``normalised``, ``synonym``, ``user map``,
        ``derived``...), or why it was not.
    metric
        TG-263 metric expression as written in the protocol.
    value
        Metric value in ``unit`` or None when not evaluated.
    unit
        Unit of ``value`` and of the limits.
    limits
        Acceptance levels, strictest first.
    status
        :class:`Status`.
    level
        For a pass: the name of the strictest level met. For a fail: None.
    margin
        Distance to the most lenient limit, positive on the passing side, in ``unit``.
    reason
        Why not evaluated, or an explanatory note; None otherwise.
    priority, endpoint, source
        Protocol metadata shown in reports.
    dose_basis
        ``physical`` or e.g. ``EQD2(a/b=2)``.
    note
        How the metric was evaluated (e.g. "point max evaluated as D0.035cc").
    lesion
        Target name when this constraint belongs to a lesion.
    """

    id: str
    structure: str
    matched_roi: str | None
    match: str | None
    metric: str
    value: float | None
    unit: str
    limits: tuple[Limit, ...]
    status: Status
    level: str | None = None
    margin: float | None = None
    reason: str | None = None
    priority: str | None = None
    endpoint: str | None = None
    source: str | None = None
    dose_basis: str = "physical"
    note: str | None = None
    lesion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``constraints[]`` items of the contract)."""
        return {
            "id": self.id,
            "structure": self.structure,
            "matched_roi": self.matched_roi,
            "match": self.match,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "limits": {lim.level: lim.to_dict() for lim in self.limits},
            "status": self.status.value,
            "level": self.level,
            "margin": self.margin,
            "reason": self.reason,
            "priority": self.priority,
            "endpoint": self.endpoint,
            "source": self.source,
            "dose_basis": self.dose_basis,
            "note": self.note,
            "lesion": self.lesion,
        }


@dataclass(frozen=True)
class PlanMaximum:
    """Where a plan's dose maximum lies and which of the plan's lesions contains it.

    Information shown with every lesion of the plan; it has no status. A protocol with a
    ``global_max_in_target`` rule judges the same question in its own constraint row
    (``judged_by``).

    Attributes
    ----------
    plan_label
        Plan whose dose this is (each plan separately when there are several).
    value_gy
        Largest voxel value of the plan's dose, which is the maximum of the trilinear dose.
    position_mm
        Patient ``(x, y, z)`` mm of that dose grid point (the first in the file's voxel order
        when several points share the value).
    points_at_max
        Number of dose grid points with exactly that value.
    target_kind
        Kind of the plan's lesions (``PTV``, or ``ITV``/``CTV``/``GTV`` when there is no PTV).
    inside
        The plan's lesions that contain the maximum (their maximum reaches the plan's within
        0.01 %, the rule of ``global_max_in_target``); empty when it lies outside every one;
        None when this cannot be told (``reason``).
    reason
        Why ``inside`` is unknown, else None.
    judged_by
        Id of the protocol row that judges it, or None when it is information only.
    """

    plan_label: str | None
    value_gy: float
    position_mm: tuple[float, float, float]
    points_at_max: int
    target_kind: str
    inside: tuple[str, ...] | None
    reason: str | None = None
    judged_by: str | None = None

    def to_dict(self, lesion: str | None = None) -> dict[str, Any]:
        """JSON-ready form; ``in_this_lesion`` says whether ``lesion`` contains it."""
        inside = None if self.inside is None else list(self.inside)
        return {
            "plan_label": self.plan_label,
            "value_gy": self.value_gy,
            "position_mm": list(self.position_mm),
            "points_at_max": self.points_at_max,
            "target_kind": self.target_kind,
            "inside": inside,
            "in_this_lesion": None if inside is None else lesion in inside,
            "reason": self.reason,
            "judged_by": self.judged_by,
        }


@dataclass(frozen=True)
class LesionResult:
    """Per-lesion (target) metrics.

    Attributes
    ----------
    name
        Target ROI name.
    roi_number
        ROI number.
    prescription_gy
        Prescribed total dose, or None when unknown.
    prescription_source
        Where the prescription came from (``RT Plan``, ``name``, ``--rx``...).
    plan_label
        Plan the lesion was evaluated in.
    fractions
        Fractions of that plan.
    volume_cc
        Target volume.
    metrics
        Named values (``D95%[Gy]``, ``CI_RTOG``, ``CI_Paddick``, ``GI``, ``R50%``,
        ``D2cm[%]``...), None when not computable.
    constraints
        Target rules (coverage, conformity table), if the protocol has them.
    findings
        Lesion-specific findings.
    plan_maximum
        The maximum of the lesion's plan dose and the lesions containing it (information),
        None when the lesion has no plan dose.
    """

    name: str
    roi_number: int | None
    prescription_gy: float | None
    prescription_source: str | None
    plan_label: str | None
    fractions: int | None
    volume_cc: float | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    constraints: tuple[ConstraintResult, ...] = ()
    findings: tuple[Finding, ...] = ()
    plan_maximum: PlanMaximum | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        pm = self.plan_maximum
        return {
            "name": self.name,
            "roi_number": self.roi_number,
            "prescription_gy": self.prescription_gy,
            "prescription_source": self.prescription_source,
            "plan_label": self.plan_label,
            "fractions": self.fractions,
            "volume_cc": self.volume_cc,
            "metrics": dict(self.metrics),
            "constraints": [c.to_dict() for c in self.constraints],
            "findings": [f.to_dict() for f in self.findings],
            "plan_maximum": None if pm is None else pm.to_dict(self.name),
        }


@dataclass(frozen=True)
class DvhCurve:
    """A cumulative DVH for plotting: doses (Gy) and volumes (% of structure)."""

    structure: str
    kind: str  # "target" or "oar"
    dose_gy: tuple[float, ...]
    volume_pct: tuple[float, ...]
    volume_cc: float
    dose_basis: str = "physical"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "structure": self.structure,
            "kind": self.kind,
            "volume_cc": self.volume_cc,
            "dose_basis": self.dose_basis,
            "dose_gy": list(self.dose_gy),
            "volume_pct": list(self.volume_pct),
        }


@dataclass(frozen=True)
class ProtocolInfo:
    """Identity of the protocol used."""

    id: str
    title: str
    version: str
    citation: str
    levels: tuple[str, ...] = ()
    source_file: str | None = None
    source_sha256: str | None = None


@dataclass(frozen=True)
class PlanInfo:
    """What was checked: patient, plans, fractions and how they were determined."""

    patient_id: str | None
    patient_name: str | None
    plan_labels: tuple[str, ...]
    fractions: int | None
    fractions_source: str  # "RT Plan", "--fractions", "unknown"
    prescriptions: tuple[tuple[str, float | None, str], ...] = ()  # (target, Gy, source)
    dose_summation: str = "single plan"
    alpha_beta: tuple[tuple[str, float], ...] = ()
    dose_grid: str | None = None


@dataclass(frozen=True)
class InputFile:
    """An input file with its hash."""

    path: str
    modality: str
    sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"path": self.path, "modality": self.modality, "sha256": self.sha256}


@dataclass(frozen=True)
class Result:
    """Complete outcome of checking one case against one protocol."""

    verdict: Verdict
    protocol: ProtocolInfo
    plan: PlanInfo
    constraints: tuple[ConstraintResult, ...]
    lesions: tuple[LesionResult, ...] = ()
    findings: tuple[Finding, ...] = ()
    dvhs: tuple[DvhCurve, ...] = ()
    inputs: tuple[InputFile, ...] = ()
    rtcheck_version: str = ""
    created: str = ""  # ISO 8601 UTC

    @property
    def counts(self) -> dict[str, int]:
        """Number of constraints per status, lesions' included."""
        out = {s.value: 0 for s in Status}
        for c in self.all_constraints:
            out[c.status.value] += 1
        return out

    @property
    def all_constraints(self) -> tuple[ConstraintResult, ...]:
        """Organ constraints followed by every lesion's constraints."""
        extra = tuple(c for lesion in self.lesions for c in lesion.constraints)
        return self.constraints + extra

    @property
    def exit_code(self) -> int:
        """Process exit code for this verdict."""
        return EXIT_CODES[self.verdict.value]

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON contract."""
        p = self.plan
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "rtcheck_version": self.rtcheck_version,
            "created": self.created,
            "verdict": self.verdict.value,
            "counts": self.counts,
            "protocol": {
                "id": self.protocol.id,
                "title": self.protocol.title,
                "version": self.protocol.version,
                "citation": self.protocol.citation,
                "levels": list(self.protocol.levels),
                "source_file": self.protocol.source_file,
                "source_sha256": self.protocol.source_sha256,
            },
            "plan": {
                "patient_id": p.patient_id,
                "patient_name": p.patient_name,
                "plan_labels": list(p.plan_labels),
                "fractions": p.fractions,
                "fractions_source": p.fractions_source,
                "prescriptions": [
                    {"target": t, "dose_gy": d, "source": s} for t, d, s in p.prescriptions
                ],
                "dose_summation": p.dose_summation,
                "alpha_beta": {k: v for k, v in p.alpha_beta},
                "dose_grid": p.dose_grid,
            },
            "constraints": [c.to_dict() for c in self.constraints],
            "lesions": [lesion.to_dict() for lesion in self.lesions],
            "findings": [f.to_dict() for f in self.findings],
            "dvhs": [d.to_dict() for d in self.dvhs],
            "inputs": [i.to_dict() for i in self.inputs],
        }
