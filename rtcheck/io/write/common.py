"""Shared parts of the DICOM writers: UIDs, number formatting and the common IOD modules."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtcheck.model import GridGeometry, Patient

RTDOSE_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
#: Referenced SOP Class of a study in RTReferencedStudySequence (customary value).
STUDY_COMPONENT_CLASS = "1.2.840.10008.3.1.2.3.1"

#: Fixed date and time written everywhere (determinism).
FIXED_DATE = "20240115"
FIXED_TIME = "120000"
#: Summation types that require ReferencedRTPlanSequence (PS3.3 C.8.8.3).
NEEDS_PLAN = {"PLAN", "MULTI_PLAN", "FRACTION", "BEAM", "BRACHY", "CONTROL_POINT"}
MAX_STORED = {16: 65535, 32: 4294967295}

#: ``(row_dir, col_dir, slice_dir)`` of the usual axial patient positions (ImageOrientationPatient
#: = row_dir + col_dir; slice_dir = row_dir x col_dir, i.e. positive GridFrameOffsetVector).
ORIENTATION_AXES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "HFS": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "FFS": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "HFP": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "FFP": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),
}


def uid_from(*seeds: object) -> str:
    """A valid, deterministic UID derived from ``seeds`` (pydicom root, SHA-512 of the seeds)."""
    return str(generate_uid(entropy_srcs=["rtcheck", *(str(s) for s in seeds)]))


IMPLEMENTATION_UID = uid_from("implementation")


def ct_image_uid(seed: str, series_uid: str, index: int) -> str:
    """SOP Instance UID of slice ``index`` of a series written by :func:`write_ct_series`."""
    return uid_from(seed, "image", series_uid, index)


def ds_number(value: float, decimals: int = 6) -> str:
    """A Decimal String (<= 16 characters) for ``value`` rounded to ``decimals`` places."""
    text = f"{round(float(value), decimals) + 0.0:.{decimals}f}".rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    if len(text) > 16:
        text = f"{float(value):.9e}"
    return text


def base(
    sop_class: str,
    sop_uid: str,
    modality: str,
    *,
    patient: Patient,
    study_uid: str,
    series_uid: str,
    series_number: int,
    description: str | None,
    manufacturer: str,
) -> Dataset:
    """SOP Common, Patient, General Study, (RT/General) Series and General Equipment modules."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "RTCHECK"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = FIXED_DATE
    ds.InstanceCreationTime = FIXED_TIME
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = FIXED_DATE
    ds.StudyTime = FIXED_TIME
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = manufacturer
    ds.ReferringPhysicianName = ""
    if description:
        ds.SeriesDescription = description[:64]
    ds.OperatorsName = ""
    ds.PatientName = patient.name or ""
    ds.PatientID = patient.id or ""
    ds.PatientBirthDate = patient.birth_date or ""
    ds.PatientSex = patient.sex or ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    return ds


def frame_of_reference(ds: Dataset, frame_uid: str) -> None:
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""


def save(ds: Dataset, path: str | os.PathLike[str]) -> str:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(out), enforce_file_format=True)
    return str(out)


def check_frame(geometry: GridGeometry) -> tuple[np.ndarray, np.ndarray, float]:
    """Row and column cosines and the sign of slice_dir along their normal (+1/-1)."""
    row = np.asarray(geometry.row_dir, float)
    col = np.asarray(geometry.col_dir, float)
    normal = np.cross(row, col)
    ok = (
        abs(np.linalg.norm(row) - 1) < 1e-6
        and abs(np.linalg.norm(col) - 1) < 1e-6
        and abs(float(row @ col)) < 1e-6
    )
    sign = float(np.asarray(geometry.slice_dir, float) @ normal)
    if not ok or abs(abs(sign) - 1) > 1e-6:
        raise ValueError(
            "grid directions must be orthonormal with slice_dir = +/- (row_dir x col_dir)"
        )
    return row, col, 1.0 if sign > 0 else -1.0


def image_plane(ds: Dataset, geometry: GridGeometry, origin: Sequence[float]) -> None:
    dx, dy, dz = geometry.spacing
    ds.PixelSpacing = [ds_number(dy), ds_number(dx)]
    ds.ImageOrientationPatient = [ds_number(v) for v in (*geometry.row_dir, *geometry.col_dir)]
    ds.ImagePositionPatient = [ds_number(v) for v in origin]
    ds.SliceThickness = ds_number(dz)


def pixel_module(ds: Dataset, rows: int, cols: int, bits: int, stored: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits
    ds.BitsStored = stored
    ds.HighBit = stored - 1
    ds.PixelRepresentation = 0


def as_uids(value: str | Sequence[str] | None) -> list[str]:
    """``None``/one UID/several UIDs -> list of UIDs."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def ref_item(sop_class: str, sop_uid: str) -> Dataset:
    """A referenced-SOP item (ReferencedSOPClassUID + ReferencedSOPInstanceUID)."""
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item
