"""DICOM RT readers: files -> frozen :mod:`rtcheck.model` objects (Gy, mm, patient coordinates).

Public API (the readers live in :mod:`rtcheck.io.dose`, :mod:`rtcheck.io.structures`,
:mod:`rtcheck.io.plan` and :mod:`rtcheck.io.image`; this module re-exports them):

* :func:`read_dose`, :func:`read_structures`, :func:`read_plan`, :func:`read_image_series`,
  :func:`read_patient` -> model objects; :func:`read_any` dispatches on the file's content.
* :func:`sniff` -> a :class:`Header` (modality, UIDs, links) read without pixel data, or None for
  files that are not DICOM. Discovery uses it.
* ``load_*`` variants also return the :class:`~rtcheck.errors.Finding` list met while reading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from pydicom.dataset import Dataset

from rtcheck.errors import InputError
from rtcheck.io.common import (
    capture_warnings,
    display_path,
    looks_like_dicom,
    modality_of,
    open_dataset,
    opt_str,
)
from rtcheck.io.dose import load_dose, read_dose
from rtcheck.io.image import read_image_series
from rtcheck.io.plan import load_plan, read_plan
from rtcheck.io.structures import read_structures
from rtcheck.model import DoseGrid, ImageGeometry, Patient, Plan, StructureSet

__all__ = [
    "Header",
    "load_dose",
    "load_plan",
    "read_any",
    "read_dose",
    "read_image_series",
    "read_patient",
    "read_plan",
    "read_structures",
    "sniff",
]

_HEADER_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "ReferencedRTPlanSequence",
    "ReferencedStructureSetSequence",
    "ReferencedFrameOfReferenceSequence",
    "RTPlanLabel",
    "StructureSetLabel",
    "DoseSummationType",
]


RT_MODALITIES = ("RTPLAN", "RTSTRUCT", "RTDOSE")

_IDENTITY_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "PatientID",
    "PatientName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
]

_PATIENT_TAGS = [
    "SOPClassUID",
    "Modality",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
]


@dataclass(frozen=True)
class Header:
    """What discovery needs to know about one DICOM file (no pixel data read).

    Attributes
    ----------
    path, modality
        File and short modality (``RTDOSE``, ``RTSTRUCT``, ``RTPLAN``, ``CT``, or the
        file's Modality for other objects).
    sop_instance_uid, study_instance_uid, series_instance_uid, frame_of_reference_uid
        Identity. For an RT Structure Set the frame is the one its contours refer to.
    patient
        :class:`Patient`.
    referenced_plan_uid
        RT Dose -> RT Plan link (ReferencedRTPlanSequence).
    referenced_structure_set_uid
        RT Plan -> RT Structure Set link (ReferencedStructureSetSequence).
    referenced_series_uid
        RT Structure Set -> image series link.
    label
        RTPlanLabel or StructureSetLabel; DoseSummationType for doses.
    problem
        Why the whole file cannot be read (e.g. truncated), when its header could be.
    """

    path: str
    modality: str
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    frame_of_reference_uid: str | None
    patient: Patient
    referenced_plan_uid: str | None = None
    referenced_structure_set_uid: str | None = None
    referenced_series_uid: str | None = None
    label: str | None = None
    problem: str | None = None


def sniff(path: str | os.PathLike[str], *, check_rt: bool = True) -> Header | None:
    """Header of a DICOM file, or None when the file is not DICOM at all.

    Headers are read without pixel data. With ``check_rt`` (default), RT Plan, RT Structure
    Set and RT Dose files are then read whole once, so a truncated RT file is caught here
    rather than silently losing its last elements: its header comes back with ``problem``
    set (CT files are never read whole).

    Raises
    ------
    InputError
        Not even the header can be read (truncated, corrupt).
    """
    p = display_path(path)
    if os.path.isfile(p) and not looks_like_dicom(p):
        return None
    try:
        ds = open_dataset(p, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except InputError as exc:
        if "not a DICOM" in exc.message:
            return None
        return _identity_only(p, exc)
    with capture_warnings([], p):
        header = _header(ds, p)
    if check_rt and header.modality in RT_MODALITIES:
        try:
            open_dataset(p)
        except InputError as exc:
            return replace(header, problem=exc.message)
    return header


def _identity_only(path: str, error: InputError) -> Header:
    """Header from the identity elements alone, flagged with ``error`` (or ``error`` raised)."""
    ds = open_dataset(path, stop_before_pixels=True, specific_tags=_IDENTITY_TAGS)
    if not ds.get("SOPInstanceUID"):
        raise error
    with capture_warnings([], path):
        return replace(_header(ds, path), problem=error.message)


def _first_uid(ds: Dataset, seq: str, keyword: str) -> str | None:
    items = ds.get(seq) or []
    return opt_str(items[0], keyword) if items else None


def _header(ds: Dataset, path: str) -> Header:
    modality = modality_of(ds)
    frame = opt_str(ds, "FrameOfReferenceUID")
    series_ref = None
    if modality == "RTSTRUCT":
        refs = ds.get("ReferencedFrameOfReferenceSequence") or []
        frame = frame or (opt_str(refs[0], "FrameOfReferenceUID") if refs else None)
        for ref in refs:
            for study in ref.get("RTReferencedStudySequence") or []:
                for s in study.get("RTReferencedSeriesSequence") or []:
                    series_ref = series_ref or opt_str(s, "SeriesInstanceUID")
    label = {
        "RTPLAN": opt_str(ds, "RTPlanLabel"),
        "RTSTRUCT": opt_str(ds, "StructureSetLabel"),
        "RTDOSE": opt_str(ds, "DoseSummationType"),
    }.get(modality)
    return Header(
        path=path,
        modality=modality,
        sop_instance_uid=opt_str(ds, "SOPInstanceUID"),
        study_instance_uid=opt_str(ds, "StudyInstanceUID"),
        series_instance_uid=opt_str(ds, "SeriesInstanceUID"),
        frame_of_reference_uid=frame,
        patient=patient_from_dataset(ds),
        referenced_plan_uid=(
            _first_uid(ds, "ReferencedRTPlanSequence", "ReferencedSOPInstanceUID")
            if modality == "RTDOSE"
            else None
        ),
        referenced_structure_set_uid=(
            _first_uid(ds, "ReferencedStructureSetSequence", "ReferencedSOPInstanceUID")
            if modality == "RTPLAN"
            else None
        ),
        referenced_series_uid=series_ref,
        label=label,
    )


def patient_from_dataset(ds: Dataset) -> Patient:
    """Patient identity elements of a dataset."""
    return Patient(
        id=opt_str(ds, "PatientID"),
        name=opt_str(ds, "PatientName"),
        birth_date=opt_str(ds, "PatientBirthDate"),
        sex=opt_str(ds, "PatientSex"),
    )


def read_patient(path: str | os.PathLike[str]) -> Patient:
    """Patient identity of any DICOM file."""
    p = display_path(path)
    ds = open_dataset(
        p,
        stop_before_pixels=True,
        specific_tags=_PATIENT_TAGS,
    )
    with capture_warnings([], p):
        return patient_from_dataset(ds)


def read_any(
    path: str | os.PathLike[str], *, relative_prescription_gy: float | None = None
) -> DoseGrid | StructureSet | Plan | ImageGeometry:
    """Read a file as whatever RT object it holds (RTDOSE, RTSTRUCT, RTPLAN or one CT image).

    Raises
    ------
    InputError
        Not DICOM, unreadable, or an object rtcheck does not read.
    """
    header = sniff(path)
    p = display_path(path)
    if header is None:
        raise InputError("not a DICOM file", path=p)
    if header.modality == "RTDOSE":
        return read_dose(p, relative_prescription_gy=relative_prescription_gy)
    if header.modality == "RTSTRUCT":
        return read_structures(p)
    if header.modality == "RTPLAN":
        return read_plan(p)
    if header.modality == "CT":
        return read_image_series([p])
    raise InputError(f"{header.modality} objects are not read by rtcheck", path=p)
