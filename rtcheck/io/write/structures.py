"""RT Structure Set writer."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from rtcheck.io.write.common import (
    CT_CLASS,
    FIXED_DATE,
    FIXED_TIME,
    RTSTRUCT_CLASS,
    STUDY_COMPONENT_CLASS,
    base,
    ref_item,
    save,
    uid_from,
)
from rtcheck.model import Patient, Roi, StructureSet

#: (3006,0050) ContourData.
CONTOUR_DATA = Tag(0x3006, 0x0050)


def _coords(points: np.ndarray, decimals: int) -> list[str]:
    """Coordinates as DS strings with ``decimals`` places, trailing zeros removed."""
    out = []
    for v in (np.round(points.ravel(), decimals) + 0.0).tolist():
        text = f"{v:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{v:.0f}"
        out.append("0" if text in ("-0", "") else text)
    if any(len(t) > 16 for t in out):
        raise ValueError("contour coordinate too large for a DS value (16 characters)")
    return out


def _raw_ds(tag: Tag, values: list[str]) -> RawDataElement:
    """A DS element from already formatted values (fast path for large contour data).

    pydicom validates every value of a DS assignment, which dominates the run time of big
    structure sets; the values here come from :func:`ds_number` (valid by construction).
    """
    data = "\\".join(values).encode("ascii")
    if len(data) % 2:
        data += b" "
    return RawDataElement(tag, "DS", len(data), data, 0, False, True)


def write_structure_set(
    ss: StructureSet,
    path: str | os.PathLike[str],
    *,
    patient: Patient,
    study_uid: str,
    frame_uid: str | None = None,
    referenced_series_uid: str | None = None,
    image_sop_uids: Mapping[float, str] | Iterable[tuple[float, str]] | None = None,
    image_sop_class: str = CT_CLASS,
    sop_uid: str | None = None,
    series_uid: str | None = None,
    label: str | None = None,
    description: str | None = None,
    decimals: int = 2,
    series_number: int = 2,
    manufacturer: str = "rtcheck",
) -> str:
    """Write ``ss`` as an RT Structure Set; return its SOP Instance UID.

    Every ROI becomes a StructureSetROISequence, ROIContourSequence and RTROIObservations item
    (in the order of ``ss.rois``); every contour keeps its points in order (coordinates
    written with ``decimals`` places: points already rounded so read back exactly) and its
    geometric type. Holes are simply further contours on the plane (even-odd rule).

    ``image_sop_uids`` maps image plane z (mm) -> image SOP Instance UID of the series
    ``referenced_series_uid``: each axial contour references the image on its plane, and the
    ReferencedFrameOfReferenceSequence lists the series with all images (as a conformant
    export does). Without it, the series is listed without ContourImageSequence (DICOM makes
    that Type 1: pass the images for a strictly conformant file).
    """
    frame = frame_uid or ss.frame_of_reference_uid
    if not frame:
        raise ValueError("a FrameOfReferenceUID is required (frame_uid or the structure set's)")
    images = sorted(dict(image_sop_uids or {}).items())
    series = referenced_series_uid or ss.referenced_series_uid
    sop = sop_uid or ss.sop_instance_uid or uid_from("rtstruct", frame, *(r.name for r in ss.rois))
    ds = base(
        RTSTRUCT_CLASS,
        sop,
        "RTSTRUCT",
        patient=patient,
        study_uid=study_uid,
        series_uid=series_uid or uid_from("rtstruct-series", sop),
        series_number=series_number,
        description=description,
        manufacturer=manufacturer,
    )
    ds.InstanceNumber = 1
    ds.StructureSetLabel = (label or ss.label or "RTSTRUCT")[:16]
    ds.StructureSetDate = FIXED_DATE
    ds.StructureSetTime = FIXED_TIME
    ds.ReferencedFrameOfReferenceSequence = DicomSequence(
        [_frameref_item(frame, study_uid, series, images, image_sop_class)]
    )
    ds.StructureSetROISequence = DicomSequence(
        [_roi_item(r.number, r.name, frame) for r in ss.rois]
    )
    ds.ROIContourSequence = DicomSequence(
        [_roi_contours(r, images, image_sop_class, decimals) for r in ss.rois]
    )
    obs = []
    for n, roi in enumerate(ss.rois, start=1):
        item = Dataset()
        item.ObservationNumber = n
        item.ReferencedROINumber = roi.number
        item.RTROIInterpretedType = roi.interpreted_type or ""
        item.ROIInterpreter = ""
        obs.append(item)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    save(ds, path)
    return sop


def _frameref_item(
    frame: str,
    study_uid: str,
    series: str | None,
    images: list[tuple[float, str]],
    image_class: str,
) -> Dataset:
    ref = Dataset()
    ref.FrameOfReferenceUID = frame
    if series:
        s = Dataset()
        s.SeriesInstanceUID = series
        if images:
            s.ContourImageSequence = DicomSequence([ref_item(image_class, u) for _, u in images])
        study = ref_item(STUDY_COMPONENT_CLASS, study_uid)
        study.RTReferencedSeriesSequence = DicomSequence([s])
        ref.RTReferencedStudySequence = DicomSequence([study])
    return ref


def _roi_item(number: int, name: str, frame: str) -> Dataset:
    item = Dataset()
    item.ROINumber = number
    item.ReferencedFrameOfReferenceUID = frame
    item.ROIName = name
    item.ROIGenerationAlgorithm = "AUTOMATIC"
    return item


def _roi_contours(
    roi: Roi, images: list[tuple[float, str]], image_class: str, decimals: int
) -> Dataset:
    item = Dataset()
    item.ReferencedROINumber = roi.number
    if roi.color is not None:
        item.ROIDisplayColor = [int(c) for c in roi.color]
    contours = []
    for n, c in enumerate(roi.contours, start=1):
        ci = Dataset()
        ci.ContourNumber = n
        pts = np.asarray(c.points, float)
        image = _image_on_plane(pts, images)
        if image is not None:
            ci.ContourImageSequence = DicomSequence([ref_item(image_class, image)])
        ci.ContourGeometricType = c.geometric_type.value
        ci.NumberOfContourPoints = len(pts)
        ci[CONTOUR_DATA] = _raw_ds(CONTOUR_DATA, _coords(pts, decimals))
        # Declared as already explicit VR little endian, so the writer keeps the raw element.
        ci.set_original_encoding(False, True, ci._character_set)
        contours.append(ci)
    if contours:
        item.ContourSequence = DicomSequence(contours)
    return item


def _image_on_plane(points: np.ndarray, images: list[tuple[float, str]]) -> str | None:
    if not images or len(points) == 0 or np.ptp(points[:, 2]) > 0.01:
        return None
    z = float(points[0, 2])
    best = min(images, key=lambda zu: abs(zu[0] - z))
    return best[1] if abs(best[0] - z) <= 0.01 else None
