"""Small synthetic DICOM RT files for tests, written with pydicom (no mocks).

Every builder writes a real file and returns its path. UIDs are deterministic per call
arguments so tests can link files on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RTDOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"
CT = "1.2.840.10008.5.1.4.1.1.2"

#: Hand-written voxel layouts per patient orientation: ImageOrientationPatient, and for
#: (column i, row j, frame k) which patient axis grows or shrinks. Frames follow the
#: normal row x col with positive offsets.
ORIENTATIONS = {
    # name: (IOP, x from i or j, sign per axis) -- spelled out for the tests
    "HFS": [1, 0, 0, 0, 1, 0],
    "FFS": [-1, 0, 0, 0, 1, 0],
    "HFP": [-1, 0, 0, 0, -1, 0],
    "FFP": [1, 0, 0, 0, -1, 0],
}


def uid(name: str) -> str:
    """A deterministic, valid UID for ``name``."""
    return generate_uid(entropy_srcs=[name])


def _base(sop_class: str, modality: str, sop_uid: str, patient: str, study: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientID = patient
    ds.PatientName = f"Test^{patient}"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uid(f"study-{patient}-{study}")
    ds.SeriesInstanceUID = uid(f"series-{sop_uid}")
    ds.StudyDate = "20240101"
    return ds


def _save(ds: Dataset, path: str | Path) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return str(path)


def make_dose(
    path: str | Path,
    values: np.ndarray,
    *,
    ipp: Sequence[float],
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    spacing: tuple[float, float] = (2.0, 2.0),
    offsets: Sequence[float] | None = None,
    units: str = "GY",
    scaling: float = 1e-4,
    bits: int = 32,
    patient: str = "P1",
    study: str = "S1",
    frame: str = "FOR1",
    plan_uid: str | None = None,
    name: str = "dose",
    summation: str = "PLAN",
    with_pixels: bool = True,
) -> str:
    """Write an RT Dose whose stored values are ``round(values / scaling)``.

    ``values`` is indexed ``[frame, row, column]``; ``spacing`` is (row spacing, column
    spacing) as in PixelSpacing.
    """
    nframes, rows, cols = values.shape
    ds = _base(RTDOSE, "RTDOSE", uid(f"dose-{name}"), patient, study)
    ds.FrameOfReferenceUID = uid(frame)
    ds.ImagePositionPatient = [float(v) for v in ipp]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.Rows, ds.Columns = rows, cols
    if nframes > 1 or offsets is not None:
        ds.NumberOfFrames = nframes
        ds.FrameIncrementPointer = (0x3004, 0x000C)
        step = 2.0
        gfov = offsets if offsets is not None else [k * step for k in range(nframes)]
        ds.GridFrameOffsetVector = [float(v) for v in gfov]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = units
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    ds.DoseGridScaling = scaling
    if plan_uid is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RTPLAN
        ref.ReferencedSOPInstanceUID = plan_uid
        ds.ReferencedRTPlanSequence = DicomSequence([ref])
    if with_pixels:
        dtype = np.uint32 if bits == 32 else np.uint16
        stored = np.round(np.asarray(values) / scaling).astype(dtype)
        ds.PixelData = stored.tobytes()
    return _save(ds, path)


def make_oriented_dose(
    path: str | Path,
    orientation: str,
    f: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    *,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    absolute_offsets: bool = False,
    reverse_frames: bool = False,
    **kw: object,
) -> str:
    """RT Dose sampling ``f(x, y, z)`` on the physical nodes ``x`` x ``y`` x ``z`` (ascending).

    The layout of each orientation is written out by hand (not derived from a formula the
    reader shares): e.g. FFS has x decreasing along a row and z decreasing from frame to frame.
    """
    iop = ORIENTATIONS[orientation]
    # Which physical coordinate each array axis walks along, and in which direction.
    layout = {
        "HFS": (x, y, z),  # i: x up, j: y up, k: z up (normal +z)
        "FFS": (x[::-1], y, z[::-1]),  # i: x down, j: y up, normal -z: frames go z down
        "HFP": (x[::-1], y[::-1], z),  # i: x down, j: y down, normal +z
        "FFP": (x, y[::-1], z[::-1]),  # i: x up, j: y down, normal -z
    }[orientation]
    xs, ys, zs = layout
    if reverse_frames:  # negative offsets: frames walk against the normal
        zs = zs[::-1]
    kk, jj, ii = np.meshgrid(zs, ys, xs, indexing="ij")
    values = f(ii, jj, kk)
    dz = float(abs(z[1] - z[0])) if len(z) > 1 else 1.0
    step = -dz if reverse_frames else dz
    offsets = [k * step for k in range(len(zs))]
    if absolute_offsets:
        offsets = [float(v) for v in zs]
    dx = float(abs(x[1] - x[0]))
    dy = float(abs(y[1] - y[0]))
    return make_dose(
        path,
        values,
        ipp=(xs[0], ys[0], zs[0]),
        iop=iop,
        spacing=(dy, dx),
        offsets=offsets,
        **kw,  # type: ignore[arg-type]
    )


def contour_item(points: np.ndarray, kind: str = "CLOSED_PLANAR") -> Dataset:
    """One ContourSequence item."""
    c = Dataset()
    c.ContourGeometricType = kind
    c.NumberOfContourPoints = len(points)
    c.ContourData = [f"{v:.6g}" for v in np.asarray(points, float).ravel()]
    return c


def square(cx: float, cy: float, half: float, z: float) -> np.ndarray:
    """Counter-clockwise square contour centred on (cx, cy) at height z."""
    return np.array(
        [
            [cx - half, cy - half, z],
            [cx + half, cy - half, z],
            [cx + half, cy + half, z],
            [cx - half, cy + half, z],
        ]
    )


def make_structures(
    path: str | Path,
    rois: Sequence[tuple[int, str, str | None, Sequence[Dataset]]],
    *,
    patient: str = "P1",
    study: str = "S1",
    frame: str = "FOR1",
    name: str = "ss",
    series_ref: str | None = None,
    no_contour_item: Sequence[int] = (),
) -> str:
    """Write an RT Structure Set; ``rois`` = (number, name, interpreted type, contour items)."""
    ds = _base(RTSTRUCT, "RTSTRUCT", uid(f"ss-{name}"), patient, study)
    ds.StructureSetLabel = name
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = uid(frame)
    if series_ref is not None:
        study_item, series_item = Dataset(), Dataset()
        series_item.SeriesInstanceUID = series_ref
        study_item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        study_item.ReferencedSOPInstanceUID = ds.StudyInstanceUID
        study_item.RTReferencedSeriesSequence = DicomSequence([series_item])
        ref_for.RTReferencedStudySequence = DicomSequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_for])
    roi_items, obs_items, contour_items = [], [], []
    for number, roi_name, kind, contours in rois:
        r = Dataset()
        r.ROINumber = number
        r.ROIName = roi_name
        r.ReferencedFrameOfReferenceUID = uid(frame)
        roi_items.append(r)
        o = Dataset()
        o.ObservationNumber = number
        o.ReferencedROINumber = number
        o.RTROIInterpretedType = kind or ""
        obs_items.append(o)
        if number in no_contour_item:
            continue
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = [255, 0, 0]
        if contours:
            rc.ContourSequence = DicomSequence(list(contours))
        contour_items.append(rc)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.RTROIObservationsSequence = DicomSequence(obs_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    return _save(ds, path)


def make_plan(
    path: str | Path,
    *,
    label: str = "PLAN",
    fractions: Sequence[int | None] = (5,),
    prescriptions: Sequence[tuple[str, float | None, int | None]] = (("PTV", 50.0, 1),),
    patient: str = "P1",
    study: str = "S1",
    struct_uid: str | None = None,
    frame: str | None = "FOR1",
    name: str = "plan",
) -> str:
    """Write an RT Plan with fraction groups, TARGET dose references and one beam."""
    ds = _base(RTPLAN, "RTPLAN", uid(f"plan-{name}"), patient, study)
    ds.RTPlanLabel = label
    ds.RTPlanName = label
    if frame is not None:
        ds.FrameOfReferenceUID = uid(frame)
    refs = []
    for number, (desc, dose, roi) in enumerate(prescriptions, start=1):
        d = Dataset()
        d.DoseReferenceNumber = number
        d.DoseReferenceStructureType = "VOLUME" if roi else "SITE"
        d.DoseReferenceDescription = desc
        d.DoseReferenceType = "TARGET"
        if roi is not None:
            d.ReferencedROINumber = roi
        if dose is not None:
            d.TargetPrescriptionDose = dose
        d.DeliveryMaximumDose = (dose or 0) * 1.3
        refs.append(d)
    ds.DoseReferenceSequence = DicomSequence(refs)
    groups = []
    for g_number, n in enumerate(fractions, start=1):
        g = Dataset()
        g.FractionGroupNumber = g_number
        if n is not None:
            g.NumberOfFractionsPlanned = n
        g.NumberOfBeams = 1
        rb = Dataset()
        rb.ReferencedBeamNumber = 1
        rb.BeamMeterset = 250.0
        g.ReferencedBeamSequence = DicomSequence([rb])
        groups.append(g)
    ds.FractionGroupSequence = DicomSequence(groups)
    beam = Dataset()
    beam.BeamNumber = 1
    beam.BeamName = "ARC1"
    beam.BeamType = "DYNAMIC"
    beam.RadiationType = "PHOTON"
    cp = Dataset()
    cp.ControlPointIndex = 0
    cp.IsocenterPosition = [1.0, 2.0, 3.0]
    beam.ControlPointSequence = DicomSequence([cp])
    ds.BeamSequence = DicomSequence([beam])
    if struct_uid is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RTSTRUCT
        ref.ReferencedSOPInstanceUID = struct_uid
        ds.ReferencedStructureSetSequence = DicomSequence([ref])
    return _save(ds, path)


def make_ct_series(
    folder: str | Path,
    z_positions: Sequence[float],
    *,
    patient: str = "P1",
    study: str = "S1",
    frame: str = "FOR1",
    series: str = "ct",
    size: int = 4,
    thickness: float = 2.0,
) -> list[str]:
    """Write a tiny CT series (``size`` x ``size`` pixels) at the given slice positions."""
    paths = []
    for n, z in enumerate(z_positions):
        ds = _base(CT, "CT", uid(f"ct-{series}-{n}"), patient, study)
        ds.SeriesInstanceUID = uid(f"ctseries-{series}")
        ds.FrameOfReferenceUID = uid(frame)
        ds.ImagePositionPatient = [-10.0, -10.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.5, 1.0]
        ds.SliceThickness = thickness
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.zeros((size, size), np.int16).tobytes()
        paths.append(_save(ds, Path(folder) / f"CT{n:03d}.dcm"))
    return paths


def ct_series_uid(series: str = "ct") -> str:
    """SeriesInstanceUID of :func:`make_ct_series` with this ``series`` name."""
    return uid(f"ctseries-{series}")
