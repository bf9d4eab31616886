"""RT Plan writer (photon, static beams)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from rtcheck.io.write.common import (
    FIXED_DATE,
    FIXED_TIME,
    RTPLAN_CLASS,
    RTSTRUCT_CLASS,
    base,
    ds_number,
    frame_of_reference,
    ref_item,
    save,
    uid_from,
)
from rtcheck.model import Beam, Patient, Plan, Prescription


def write_plan(
    plan: Plan,
    path: str | os.PathLike[str],
    *,
    patient: Patient,
    study_uid: str,
    frame_uid: str | None = None,
    sop_uid: str | None = None,
    series_uid: str | None = None,
    patient_position: str = "HFS",
    gantry_angles: Mapping[int, float] | None = None,
    machine: str = "SYNTH_LINAC",
    energy_mv: float = 6.0,
    description: str | None = None,
    series_number: int = 4,
    manufacturer: str = "rtcheck",
) -> str:
    """Write ``plan`` as an RT Plan (photon, static beams); return its SOP Instance UID.

    Written: RT General Plan (label, name, ReferencedStructureSetSequence with geometry
    PATIENT when the plan references a structure set), RT Prescription (one
    DoseReferenceSequence item per prescription: DoseReferenceStructureType VOLUME with
    ReferencedROINumber when an ROI is given, else SITE; TargetPrescriptionDose for targets),
    RT Patient Setup, RT Fraction Scheme (one fraction group: NumberOfFractionsPlanned,
    beam metersets), RT Beams (each beam: two control points with its isocentre, gantry angle
    from ``gantry_angles`` or spread evenly) and Approval (UNAPPROVED).
    """
    frame = frame_uid or plan.frame_of_reference_uid
    if not frame:
        raise ValueError("a FrameOfReferenceUID is required (frame_uid or the plan's)")
    sop = sop_uid or plan.sop_instance_uid or uid_from("rtplan", frame, plan.label, plan.name)
    ds = base(
        RTPLAN_CLASS,
        sop,
        "RTPLAN",
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid or uid_from("rtplan-series", sop),
        series_number=series_number,
        description=description,
        manufacturer=manufacturer,
    )
    frame_of_reference(ds, frame)
    ds.InstanceNumber = 1
    ds.RTPlanLabel = (plan.label or "PLAN")[:16]
    if plan.name:
        ds.RTPlanName = plan.name[:64]
    if description:
        ds.RTPlanDescription = description
    ds.RTPlanDate = FIXED_DATE
    ds.RTPlanTime = FIXED_TIME
    if plan.referenced_structure_set_uid:
        ds.RTPlanGeometry = "PATIENT"
        ds.ReferencedStructureSetSequence = DicomSequence(
            [ref_item(RTSTRUCT_CLASS, plan.referenced_structure_set_uid)]
        )
    else:
        ds.RTPlanGeometry = "TREATMENT_DEVICE"
    if plan.prescriptions:
        ds.DoseReferenceSequence = DicomSequence(
            [_dose_reference(p, n, sop) for n, p in enumerate(plan.prescriptions, start=1)]
        )
    setup = Dataset()
    setup.PatientSetupNumber = 1
    setup.PatientPosition = patient_position
    ds.PatientSetupSequence = DicomSequence([setup])
    ds.FractionGroupSequence = DicomSequence([_fraction_group(plan)])
    if plan.beams:
        n = len(plan.beams)
        angles = dict(gantry_angles or {})
        ds.BeamSequence = DicomSequence(
            [
                _beam(b, angles.get(b.number, (360.0 * i / n) % 360), machine, energy_mv)
                for i, b in enumerate(plan.beams)
            ]
        )
    ds.ApprovalStatus = "UNAPPROVED"
    save(ds, path)
    return sop


def _dose_reference(p: Prescription, n: int, plan_sop: str) -> Dataset:
    item = Dataset()
    number = p.number if p.number is not None else n
    item.DoseReferenceNumber = number
    item.DoseReferenceUID = uid_from("doseref", plan_sop, number)
    if p.roi_number is not None:
        item.DoseReferenceStructureType = "VOLUME"
        item.ReferencedROINumber = p.roi_number
    else:
        item.DoseReferenceStructureType = "SITE"
    if p.description:
        item.DoseReferenceDescription = p.description[:64]
    kind = p.reference_type if p.reference_type in ("TARGET", "ORGAN_AT_RISK") else "TARGET"
    item.DoseReferenceType = kind
    if p.target_dose_gy is not None and item.DoseReferenceType == "TARGET":
        item.TargetPrescriptionDose = ds_number(p.target_dose_gy)
    return item


def _fraction_group(plan: Plan) -> Dataset:
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = plan.fractions_planned if plan.fractions_planned else None
    fg.NumberOfBeams = len(plan.beams)
    fg.NumberOfBrachyApplicationSetups = 0
    refs = []
    for b in plan.beams:
        rb = Dataset()
        rb.ReferencedBeamNumber = b.number
        if b.meterset is not None:
            rb.BeamMeterset = ds_number(b.meterset, 4)
        refs.append(rb)
    if refs:
        fg.ReferencedBeamSequence = DicomSequence(refs)
    return fg


def _beam(b: Beam, gantry: float, machine: str, energy: float) -> Dataset:
    beam = Dataset()
    beam.BeamNumber = b.number
    beam.BeamName = (b.name or f"B{b.number}")[:64]
    beam.BeamType = b.beam_type or "STATIC"
    beam.RadiationType = b.radiation_type or "PHOTON"
    beam.TreatmentMachineName = machine
    beam.PrimaryDosimeterUnit = "MU"
    beam.SourceAxisDistance = "1000"
    devices = []
    for kind in ("ASYMX", "ASYMY"):
        d = Dataset()
        d.RTBeamLimitingDeviceType = kind
        d.NumberOfLeafJawPairs = 1
        devices.append(d)
    beam.BeamLimitingDeviceSequence = DicomSequence(devices)
    beam.ReferencedPatientSetupNumber = 1
    beam.TreatmentDeliveryType = "TREATMENT"
    beam.NumberOfWedges = 0
    beam.NumberOfCompensators = 0
    beam.NumberOfBoli = 0
    beam.NumberOfBlocks = 0
    beam.FinalCumulativeMetersetWeight = "1"
    beam.NumberOfControlPoints = 2
    beam.ControlPointSequence = DicomSequence(
        [_control_point(0, b, gantry, energy), _control_point(1, b, gantry, energy)]
    )
    return beam


def _control_point(index: int, b: Beam, gantry: float, energy: float) -> Dataset:
    cp = Dataset()
    cp.ControlPointIndex = index
    cp.CumulativeMetersetWeight = str(index)
    if index == 0:
        cp.NominalBeamEnergy = ds_number(energy)
        cp.GantryAngle = ds_number(gantry % 360)
        cp.GantryRotationDirection = "NONE"
        cp.BeamLimitingDeviceAngle = "0"
        cp.BeamLimitingDeviceRotationDirection = "NONE"
        cp.PatientSupportAngle = "0"
        cp.PatientSupportRotationDirection = "NONE"
        cp.TableTopEccentricAngle = "0"
        cp.TableTopEccentricRotationDirection = "NONE"
        cp.TableTopPitchAngle = 0.0
        cp.TableTopPitchRotationDirection = "NONE"
        cp.TableTopRollAngle = 0.0
        cp.TableTopRollRotationDirection = "NONE"
        cp.TableTopVerticalPosition = None
        cp.TableTopLongitudinalPosition = None
        cp.TableTopLateralPosition = None
        positions = []
        for kind in ("ASYMX", "ASYMY"):
            p = Dataset()
            p.RTBeamLimitingDeviceType = kind
            p.LeafJawPositions = ["-30", "30"]
            positions.append(p)
        cp.BeamLimitingDevicePositionSequence = DicomSequence(positions)
        if b.isocenter_mm is not None:
            cp.IsocenterPosition = [ds_number(v, 2) for v in b.isocenter_mm]
    return cp
