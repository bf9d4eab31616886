"""RT Plan / RT Ion Plan reader -> :class:`~rtcheck.model.Plan`.

A truncated plan file is refused (:class:`~rtcheck.errors.InputError`): a partial read could
lose fraction groups or prescriptions without anyone noticing.
"""

from __future__ import annotations

import os

from pydicom.dataset import Dataset

from rtcheck.errors import Finding, InputError, Severity
from rtcheck.io.common import (
    capture_warnings,
    display_path,
    expect_modality,
    floats,
    open_dataset,
    opt_float,
    opt_int,
    opt_str,
    vec3,
)
from rtcheck.model import Beam, Plan, Prescription


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """Read an RT Plan or RT Ion Plan file into a :class:`Plan` summary.

    Raises
    ------
    InputError
        Not an RT Plan, truncated or unreadable.
    """
    plan, _ = load_plan(path)
    return plan


def load_plan(path: str | os.PathLike[str]) -> tuple[Plan, list[Finding]]:
    """As :func:`read_plan`, also returning the findings met while reading."""
    p = display_path(path)
    findings: list[Finding] = []
    ds = open_dataset(p, findings=findings)
    with capture_warnings(findings, p):
        plan = plan_from_dataset(ds, p, findings)
    return plan, findings


def plan_from_dataset(ds: Dataset, path: str, findings: list[Finding]) -> Plan:
    """Build a :class:`Plan` from an RTPLAN dataset."""
    expect_modality(ds, "RTPLAN", path)
    label = opt_str(ds, "RTPlanLabel")
    fractions = _fractions(ds, path, label, findings)
    refs = ds.get("ReferencedStructureSetSequence") or []
    struct_uid = opt_str(refs[0], "ReferencedSOPInstanceUID") if refs else None
    if len(refs) > 1:
        findings.append(
            Finding(
                "plan.several_structure_sets",
                f"plan references {len(refs)} structure sets; the first, {struct_uid}, is used",
                Severity.WARNING,
                source=path,
                subject=label,
            )
        )
    return Plan(
        label=label,
        sop_instance_uid=opt_str(ds, "SOPInstanceUID"),
        name=opt_str(ds, "RTPlanName"),
        fractions_planned=fractions,
        prescriptions=tuple(_prescriptions(ds)),
        beams=tuple(_beams(ds, path)),
        referenced_structure_set_uid=struct_uid,
        frame_of_reference_uid=opt_str(ds, "FrameOfReferenceUID"),
        source=path,
    )


def _fractions(ds: Dataset, path: str, label: str | None, findings: list[Finding]) -> int | None:
    """NumberOfFractionsPlanned when every fraction group agrees, else None with a finding."""
    groups = ds.get("FractionGroupSequence") or []
    values = [opt_int(g, "NumberOfFractionsPlanned") for g in groups]
    known = sorted({v for v in values if v is not None})
    if len(known) == 1 and None not in values:
        return known[0]
    if not groups:
        message = "plan has no FractionGroupSequence; number of fractions unknown"
    elif not known:
        message = "plan states no NumberOfFractionsPlanned; number of fractions unknown"
    else:
        message = (
            f"plan has {len(groups)} fraction groups with fractions {values}; "
            "the number of fractions is ambiguous and left unknown"
        )
    findings.append(
        Finding("plan.fractions_unknown", message, Severity.WARNING, source=path, subject=label)
    )
    return None


def _prescriptions(ds: Dataset) -> list[Prescription]:
    out = []
    for item in ds.get("DoseReferenceSequence") or []:
        out.append(
            Prescription(
                target_dose_gy=opt_float(item, "TargetPrescriptionDose"),
                description=opt_str(item, "DoseReferenceDescription"),
                roi_number=opt_int(item, "ReferencedROINumber"),
                reference_type=(opt_str(item, "DoseReferenceType") or "UNKNOWN").upper(),
                number=opt_int(item, "DoseReferenceNumber"),
            )
        )
    return out


def _beams(ds: Dataset, path: str) -> list[Beam]:
    metersets: dict[int, float] = {}
    for g in ds.get("FractionGroupSequence") or []:
        for rb in g.get("ReferencedBeamSequence") or []:
            number, mu = opt_int(rb, "ReferencedBeamNumber"), opt_float(rb, "BeamMeterset")
            if number is not None and mu is not None:
                metersets[number] = metersets.get(number, 0.0) + mu
    beams = []
    seq = ds.get("BeamSequence") or ds.get("IonBeamSequence") or []
    for item in seq:
        number = opt_int(item, "BeamNumber")
        if number is None:
            continue
        beams.append(
            Beam(
                number=number,
                name=opt_str(item, "BeamName"),
                beam_type=opt_str(item, "BeamType"),
                radiation_type=opt_str(item, "RadiationType"),
                meterset=metersets.get(number),
                isocenter_mm=_isocenter(item, path),
            )
        )
    return beams


def _isocenter(beam: Dataset, path: str) -> tuple[float, float, float] | None:
    cps = beam.get("ControlPointSequence") or beam.get("IonControlPointSequence") or []
    if not cps or "IsocenterPosition" not in cps[0]:
        return None
    try:
        return vec3(floats(cps[0].IsocenterPosition, 3, "IsocenterPosition", path))
    except InputError:  # an unusable isocentre is display-only information
        return None
