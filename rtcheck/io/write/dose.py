"""RT Dose writer."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from rtcheck.io.write.common import (
    FIXED_DATE,
    FIXED_TIME,
    MAX_STORED,
    NEEDS_PLAN,
    RTDOSE_CLASS,
    RTPLAN_CLASS,
    as_uids,
    base,
    check_frame,
    ds_number,
    frame_of_reference,
    image_plane,
    pixel_module,
    ref_item,
    save,
    uid_from,
)
from rtcheck.model import DoseGrid, Patient


def dose_scaling(max_gy: float, bits: int = 16) -> float:
    """DoseGridScaling for ``bits``-bit storage: 7 significant digits, ``max/scaling <= 2**bits-1``.

    The value is exactly what the file states (``f"{scale:.6e}"``), so quantising with it and
    reading it back use the same number.
    """
    if bits not in MAX_STORED:
        raise ValueError(f"bits must be 16 or 32, got {bits}")
    if not max_gy > 0:
        return 1.0
    top = MAX_STORED[bits]
    scale = float(f"{max_gy / top:.6e}")
    while max_gy / scale > top:
        scale = float(f"{scale * (1 + 1e-6):.6e}")
    return scale


def quantise_dose(dose_gy: np.ndarray, bits: int = 16) -> tuple[np.ndarray, float]:
    """Stored integer values and DoseGridScaling for a non-negative dose array (Gy)."""
    values = np.asarray(dose_gy, dtype=float)
    if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
        raise ValueError("dose values must be finite and >= 0 to be written as RT Dose")
    scale = dose_scaling(float(values.max()) if values.size else 0.0, bits)
    dtype = np.uint16 if bits == 16 else np.uint32
    stored = np.clip(np.rint(values / scale), 0, MAX_STORED[bits]).astype(dtype)
    return stored, scale


def write_dose(
    dose: DoseGrid,
    path: str | os.PathLike[str],
    *,
    patient: Patient,
    study_uid: str,
    frame_uid: str | None = None,
    plan_uid: str | Sequence[str] | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    bits: int = 16,
    summation_type: str | None = None,
    beam_numbers: Sequence[int] | None = None,
    fraction_group: int = 1,
    referenced_dose_uids: Sequence[str] | None = None,
    description: str | None = None,
    series_number: int = 3,
    manufacturer: str = "rtcheck",
) -> str:
    """Write ``dose`` as an RT Dose file (DoseUnits GY); return its SOP Instance UID.

    Parameters
    ----------
    dose
        The grid; its ``summation_type``, ``referenced_plan_uid``, ``referenced_beam_numbers``,
        ``dose_type``, ``frame_of_reference_uid``, ``sop_instance_uid`` and
        ``referenced_dose_uids`` are used unless the matching keyword is given.
    path
        Output file (parent folders are created).
    patient, study_uid, frame_uid
        Identity; ``frame_uid`` defaults to ``dose.frame_of_reference_uid``.
    plan_uid
        Referenced RT Plan(s) (several for MULTI_PLAN sums). Required for summation types that
        DICOM ties to a plan (PLAN, MULTI_PLAN, FRACTION, BEAM...).
    series_uid, sop_uid
        Default: derived from the content (deterministic).
    bits
        16 or 32: unsigned stored values with DoseGridScaling = max / (2**bits - 1) (rounded up
        to 7 significant digits). The read-back error is at most half the scaling.
    summation_type, beam_numbers, fraction_group
        DoseSummationType; for BEAM doses the beam numbers referenced in the plan's fraction
        group ``fraction_group``.
    referenced_dose_uids
        RT Doses this one was computed from (a sum): written as SourceImageSequence items with
        a DerivationDescription.
    description
        SeriesDescription and DoseComment.
    """
    _, _, sign = check_frame(dose.geometry)
    frame = frame_uid or dose.frame_of_reference_uid
    if not frame:
        raise ValueError("a FrameOfReferenceUID is required (frame_uid or dose's own)")
    stored, scale = quantise_dose(dose.dose_gy, bits)
    summation = (summation_type or dose.summation_type or "PLAN").upper()
    plans = as_uids(plan_uid if plan_uid is not None else dose.referenced_plan_uid)
    if summation in NEEDS_PLAN and not plans:
        raise ValueError(f"DoseSummationType {summation} requires a referenced RT Plan UID")
    sop = sop_uid or dose.sop_instance_uid or uid_from("rtdose", stored.tobytes(), frame, scale)
    ds = base(
        RTDOSE_CLASS,
        sop,
        "RTDOSE",
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid or uid_from("rtdose-series", sop),
        series_number=series_number,
        description=description,
        manufacturer=manufacturer,
    )
    frame_of_reference(ds, frame)
    ds.InstanceNumber = 1
    ds.ContentDate = FIXED_DATE
    ds.ContentTime = FIXED_TIME
    nz, ny, nx = dose.geometry.shape
    image_plane(ds, dose.geometry, dose.geometry.origin)
    pixel_module(ds, ny, nx, bits, bits)
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = 0x3004000C
    ds.DoseUnits = "GY"
    ds.DoseType = (dose.dose_type or "PHYSICAL").upper()
    if description:
        ds.DoseComment = description[:64]
    ds.DoseSummationType = summation
    dz = dose.geometry.spacing[2]
    ds.GridFrameOffsetVector = [ds_number(k * dz * sign) for k in range(nz)]
    ds.DoseGridScaling = f"{scale:.6e}"
    if plans:
        beams = beam_numbers if beam_numbers is not None else dose.referenced_beam_numbers
        ds.ReferencedRTPlanSequence = _plan_refs(plans, summation, beams, fraction_group)
    sources = (
        referenced_dose_uids if referenced_dose_uids is not None else dose.referenced_dose_uids
    )
    if sources:
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.DerivationDescription = f"sum of {len(sources)} RT Dose(s) by rtcheck"
        ds.SourceImageSequence = DicomSequence([ref_item(RTDOSE_CLASS, uid) for uid in sources])
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    save(ds, path)
    return sop


def _plan_refs(
    plans: list[str], summation: str, beams: Sequence[int], fraction_group: int
) -> DicomSequence:
    items = []
    for uid in plans:
        item = ref_item(RTPLAN_CLASS, uid)
        if summation in ("BEAM", "FRACTION") and len(plans) == 1:
            fg = Dataset()
            fg.ReferencedFractionGroupNumber = fraction_group
            if summation == "BEAM":
                refs = []
                for b in beams:
                    rb = Dataset()
                    rb.ReferencedBeamNumber = int(b)
                    refs.append(rb)
                fg.ReferencedBeamSequence = DicomSequence(refs)
            item.ReferencedFractionGroupSequence = DicomSequence([fg])
        items.append(item)
    return DicomSequence(items)
