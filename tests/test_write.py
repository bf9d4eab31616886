"""Round trips through rtcheck.io.write and the readers (real pydicom files, no mocks).

Geometry expectations are written out by hand per orientation (what ImagePositionPatient,
ImageOrientationPatient and GridFrameOffsetVector must be), not derived from the writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from rtcheck.io.dicom import read_dose, read_image_series, read_plan, read_structures
from rtcheck.io.write import (
    CT_CLASS,
    ORIENTATION_AXES,
    RTDOSE_CLASS,
    RTPLAN_CLASS,
    RTSTRUCT_CLASS,
    ds_number,
    uid_from,
    write_ct_series,
    write_dose,
    write_plan,
    write_structure_set,
)
from rtcheck.model import (
    Beam,
    Contour,
    ContourType,
    DoseGrid,
    GridGeometry,
    Patient,
    Plan,
    Prescription,
    Roi,
    StructureSet,
)

PATIENT = Patient("W1", "Write^Test", "19700101", "O")
STUDY = uid_from("test-write", "study")
FRAME = uid_from("test-write", "frame")
PLAN_UID = uid_from("test-write", "plan")


def field(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A smooth, asymmetric, non-negative dose field (Gy) of patient coordinates."""
    return 20.0 + 0.3 * x - 0.2 * y + 0.1 * z + 5.0 * np.exp(-((x - 4) ** 2 + y**2) / 200.0)


# (name, row_dir, col_dir, slice_dir, hand-written IOP, sign of the frame offsets)
ORIENTATIONS = [
    ("HFS", (1, 0, 0), (0, 1, 0), (0, 0, 1), [1, 0, 0, 0, 1, 0], 1),
    ("FFS", (-1, 0, 0), (0, 1, 0), (0, 0, -1), [-1, 0, 0, 0, 1, 0], 1),
    ("HFP", (-1, 0, 0), (0, -1, 0), (0, 0, 1), [-1, 0, 0, 0, -1, 0], 1),
    ("FFP", (1, 0, 0), (0, -1, 0), (0, 0, -1), [1, 0, 0, 0, -1, 0], 1),
    ("HFS-reversed", (1, 0, 0), (0, 1, 0), (0, 0, -1), [1, 0, 0, 0, 1, 0], -1),
]


def test_orientation_axes_match_the_hand_written_table() -> None:
    for name, row, col, sl, _, sign in ORIENTATIONS:
        if name in ORIENTATION_AXES:
            assert sign == 1
            assert ORIENTATION_AXES[name] == (row, col, sl)


def _grid(row: tuple, col: tuple, sl: tuple, origin=(-12.0, 7.5, -30.0)) -> GridGeometry:
    return GridGeometry(origin, (2.0, 2.5, 3.0), row, col, sl, (5, 6, 7))


def _dose_values(geometry: GridGeometry) -> np.ndarray:
    nz, ny, nx = geometry.shape
    kk, jj, ii = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    xyz = geometry.index_to_patient(np.stack([ii, jj, kk], axis=-1))
    return field(xyz[..., 0], xyz[..., 1], xyz[..., 2])


@pytest.mark.parametrize(("name", "row", "col", "sl", "iop", "sign"), ORIENTATIONS)
def test_dose_orientations_round_trip(tmp_path: Path, name, row, col, sl, iop, sign) -> None:
    geometry = _grid(row, col, sl)
    values = _dose_values(geometry)
    dose = DoseGrid(values, geometry, referenced_plan_uid=PLAN_UID)
    path = tmp_path / f"{name}.dcm"
    write_dose(dose, path, patient=PATIENT, study_uid=STUDY, frame_uid=FRAME, bits=32)

    ds = pydicom.dcmread(path)
    assert [float(v) for v in ds.ImageOrientationPatient] == iop
    assert [float(v) for v in ds.ImagePositionPatient] == [-12.0, 7.5, -30.0]
    assert [float(v) for v in ds.GridFrameOffsetVector] == [sign * 3.0 * k for k in range(5)]
    assert [float(v) for v in ds.PixelSpacing] == [2.5, 2.0]  # row spacing, column spacing
    assert (ds.NumberOfFrames, ds.Rows, ds.Columns) == (5, 6, 7)

    back = read_dose(path)
    assert back.geometry.shape == (5, 6, 7)
    np.testing.assert_allclose(back.geometry.origin, geometry.origin)
    np.testing.assert_allclose(back.geometry.row_dir, row)
    np.testing.assert_allclose(back.geometry.col_dir, col)
    np.testing.assert_allclose(back.geometry.slice_dir, sl)
    np.testing.assert_allclose(back.geometry.spacing, (2.0, 2.5, 3.0))
    # The value read at each voxel is the field at that voxel's patient position (reader's
    # own geometry): a flipped axis would move values to the wrong place.
    expected = _dose_values(back.geometry)
    np.testing.assert_allclose(back.dose_gy, expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("bits", [16, 32])
def test_dose_quantisation(tmp_path: Path, bits: int) -> None:
    geometry = _grid((1, 0, 0), (0, 1, 0), (0, 0, 1))
    values = _dose_values(geometry)
    write_dose(
        DoseGrid(values, geometry), tmp_path / "d.dcm", patient=PATIENT, study_uid=STUDY,
        frame_uid=FRAME, plan_uid=PLAN_UID, bits=bits,
    )  # fmt: skip
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    scale = float(ds.DoseGridScaling)
    top = 2**bits - 1
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
        bits, bits, bits - 1, 0,
    )  # fmt: skip
    assert ds.DoseUnits == "GY"
    assert values.max() / scale <= top
    assert values.max() / scale > 0.999 * top  # the stored range is used
    assert len(ds.DoseGridScaling.original_string or str(scale)) <= 16
    back = read_dose(tmp_path / "d.dcm")
    err = np.abs(back.dose_gy - values).max()
    assert err <= scale / 2 + 1e-12
    assert err < (1e-2 if bits == 16 else 1e-7)


def test_dose_links_beams_and_sources(tmp_path: Path) -> None:
    geometry = _grid((1, 0, 0), (0, 1, 0), (0, 0, 1))
    values = _dose_values(geometry)
    beam = DoseGrid(values, geometry, summation_type="BEAM", referenced_plan_uid=PLAN_UID)
    write_dose(
        beam, tmp_path / "b.dcm", patient=PATIENT, study_uid=STUDY, frame_uid=FRAME,
        beam_numbers=(2,),
    )  # fmt: skip
    back = read_dose(tmp_path / "b.dcm")
    assert back.summation_type == "BEAM"
    assert back.referenced_plan_uid == PLAN_UID
    assert back.referenced_beam_numbers == (2,)

    sources = (uid_from("d1"), uid_from("d2"))
    total = DoseGrid(values, geometry, summation_type="MULTI_PLAN", dose_type="EFFECTIVE")
    sop = write_dose(
        total, tmp_path / "sum.dcm", patient=PATIENT, study_uid=STUDY, frame_uid=FRAME,
        plan_uid=[PLAN_UID, uid_from("plan2")], referenced_dose_uids=sources,
        description="EQD2 sum",
    )  # fmt: skip
    ds = pydicom.dcmread(tmp_path / "sum.dcm")
    assert ds.SOPInstanceUID == sop
    assert ds.DoseSummationType == "MULTI_PLAN"
    assert ds.DoseType == "EFFECTIVE"
    assert [i.ReferencedSOPInstanceUID for i in ds.ReferencedRTPlanSequence] == [
        PLAN_UID, uid_from("plan2"),
    ]  # fmt: skip
    assert tuple(i.ReferencedSOPInstanceUID for i in ds.SourceImageSequence) == sources
    assert all(i.ReferencedSOPClassUID == RTDOSE_CLASS for i in ds.SourceImageSequence)


def test_dose_refuses_bad_input(tmp_path: Path) -> None:
    geometry = _grid((1, 0, 0), (0, 1, 0), (0, 0, 1))
    values = _dose_values(geometry)
    kw = {"patient": PATIENT, "study_uid": STUDY, "frame_uid": FRAME, "plan_uid": PLAN_UID}
    with pytest.raises(ValueError, match="bits"):
        write_dose(DoseGrid(values, geometry), tmp_path / "a.dcm", bits=8, **kw)
    with pytest.raises(ValueError, match=">= 0"):
        write_dose(DoseGrid(values - 100.0, geometry), tmp_path / "b.dcm", **kw)
    with pytest.raises(ValueError, match="requires a referenced RT Plan"):
        write_dose(DoseGrid(values, geometry), tmp_path / "c.dcm", patient=PATIENT,
                   study_uid=STUDY, frame_uid=FRAME)  # fmt: skip
    skew = GridGeometry((0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 1, 0), (5, 6, 7))
    with pytest.raises(ValueError, match="orthonormal"):
        write_dose(DoseGrid(values, skew), tmp_path / "d.dcm", **kw)


def test_dose_zero_everywhere(tmp_path: Path) -> None:
    geometry = _grid((1, 0, 0), (0, 1, 0), (0, 0, 1))
    write_dose(
        DoseGrid(np.zeros(geometry.shape), geometry), tmp_path / "z.dcm", patient=PATIENT,
        study_uid=STUDY, frame_uid=FRAME, plan_uid=PLAN_UID,
    )  # fmt: skip
    assert read_dose(tmp_path / "z.dcm").max_gy == 0.0


def _square(cx: float, cy: float, half: float, z: float) -> np.ndarray:
    return np.array(
        [[cx - half, cy - half, z], [cx + half, cy - half, z], [cx + half, cy + half, z],
         [cx - half, cy + half, z]]
    )  # fmt: skip


def test_structures_round_trip(tmp_path: Path) -> None:
    ring = [Contour(_square(0, 0, 20, z)) for z in (0.0, 3.0)]
    holes = [Contour(_square(0, 0, 5.25, z)) for z in (0.0, 3.0)]
    pair = [Contour(_square(-30, 0, 4, 3.0)), Contour(_square(30, 0, 4, 3.0))]
    point = Contour(np.array([[1.5, -2.25, 3.0]]), ContourType.POINT)
    ss = StructureSet(
        (
            Roi(7, "Ring", "ORGAN", (10, 20, 30), (ring[0], holes[0], ring[1], holes[1])),
            Roi(3, "Pair", "PTV", (255, 0, 0), tuple(pair)),
            Roi(9, "Marker", "MARKER", None, (point,)),
            Roi(11, "Empty", None, None, ()),
        )
    )
    series = uid_from("ct series")
    images = {0.0: uid_from("img0"), 3.0: uid_from("img3")}
    sop = write_structure_set(
        ss, tmp_path / "rs.dcm", patient=PATIENT, study_uid=STUDY, frame_uid=FRAME,
        referenced_series_uid=series, image_sop_uids=images, label="TEST",
    )  # fmt: skip
    back = read_structures(tmp_path / "rs.dcm")
    assert back.sop_instance_uid == sop
    assert back.frame_of_reference_uid == FRAME
    assert back.referenced_series_uid == series
    assert back.label == "TEST"
    assert [(r.number, r.name, r.interpreted_type, r.color) for r in back.rois] == [
        (7, "Ring", "ORGAN", (10, 20, 30)), (3, "Pair", "PTV", (255, 0, 0)),
        (9, "Marker", "MARKER", None), (11, "Empty", None, None),
    ]  # fmt: skip
    for original, read in zip(ss.rois, back.rois, strict=True):
        assert len(read.contours) == len(original.contours)
        for a, b in zip(original.contours, read.contours, strict=True):
            np.testing.assert_array_equal(a.points, b.points)  # exact: 2 decimals
            assert a.geometric_type == b.geometric_type
    ring_planes = back.by_name("Ring").planes()
    assert [len(cs) for _, cs in ring_planes] == [2, 2]  # outer + hole per plane
    assert [len(cs) for _, cs in back.by_name("Pair").planes()] == [2]
    assert back.by_name("Empty").is_empty

    ds = pydicom.dcmread(tmp_path / "rs.dcm")
    assert ds.SOPClassUID == RTSTRUCT_CLASS
    study = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    listed = study.RTReferencedSeriesSequence[0].ContourImageSequence
    assert [i.ReferencedSOPInstanceUID for i in listed] == [images[0.0], images[3.0]]
    contours = ds.ROIContourSequence[0].ContourSequence
    refs = [c.ContourImageSequence[0].ReferencedSOPInstanceUID for c in contours]
    assert refs == [images[0.0], images[0.0], images[3.0], images[3.0]]
    assert contours[0].ContourImageSequence[0].ReferencedSOPClassUID == CT_CLASS


def test_plan_round_trip(tmp_path: Path) -> None:
    ss_uid = uid_from("structure set")
    plan = Plan(
        "SBRT 5FX",
        PLAN_UID,
        "Lung SBRT",
        5,
        (
            Prescription(55.0, "PTVp", 19, "TARGET", 1),
            Prescription(35.5, "PTV2", 23, "TARGET", 2),
            Prescription(None, "Cord", 6, "ORGAN_AT_RISK", 3),
        ),
        (
            Beam(1, "A", "STATIC", "PHOTON", 123.4, (-112.0, 5.0, 70.0)),
            Beam(2, "B", "STATIC", "PHOTON", 98.7, (0.0, 35.0, -12.0)),
        ),
        ss_uid,
        FRAME,
    )
    sop = write_plan(
        plan, tmp_path / "rp.dcm", patient=PATIENT, study_uid=STUDY, gantry_angles={2: 181.5}
    )
    assert sop == PLAN_UID
    back = read_plan(tmp_path / "rp.dcm")
    assert back.label == "SBRT 5FX"
    assert back.name == "Lung SBRT"
    assert back.fractions_planned == 5
    assert back.referenced_structure_set_uid == ss_uid
    assert back.frame_of_reference_uid == FRAME
    assert back.prescriptions == plan.prescriptions
    assert [(t.target_dose_gy, t.roi_number) for t in back.target_prescriptions] == [
        (55.0, 19), (35.5, 23),
    ]  # fmt: skip
    assert back.beams == plan.beams
    ds = pydicom.dcmread(tmp_path / "rp.dcm")
    assert ds.SOPClassUID == RTPLAN_CLASS
    assert ds.RTPlanGeometry == "PATIENT"
    refs = ds.DoseReferenceSequence
    assert [r.DoseReferenceStructureType for r in refs] == ["VOLUME"] * 3
    assert "TargetPrescriptionDose" not in refs[2]
    cp = ds.BeamSequence[1].ControlPointSequence
    assert float(cp[0].GantryAngle) == 181.5
    assert float(cp[-1].CumulativeMetersetWeight) == 1.0


def test_plan_without_fractions_or_structures(tmp_path: Path) -> None:
    plan = Plan("QA", uid_from("qa plan"), prescriptions=(Prescription(20.0, "site"),))
    write_plan(plan, tmp_path / "qa.dcm", patient=PATIENT, study_uid=STUDY, frame_uid=FRAME)
    back = read_plan(tmp_path / "qa.dcm")
    assert back.fractions_planned is None
    assert back.beams == ()
    ds = pydicom.dcmread(tmp_path / "qa.dcm")
    assert ds.RTPlanGeometry == "TREATMENT_DEVICE"
    assert ds.DoseReferenceSequence[0].DoseReferenceStructureType == "SITE"


def test_ct_series_round_trip(tmp_path: Path) -> None:
    geometry = GridGeometry((-9.0, -6.0, -3.0), (3.0, 3.0, 3.0), (1, 0, 0), (0, 1, 0),
                            (0, 0, 1), (3, 4, 7))  # fmt: skip
    hu = np.arange(3 * 4 * 7, dtype=float).reshape(3, 4, 7) * 40 - 1000
    files = write_ct_series(hu, geometry, tmp_path / "ct", patient=PATIENT, study_uid=STUDY,
                            frame_uid=FRAME)  # fmt: skip
    assert [z for _, _, z in files] == [-3.0, 0.0, 3.0]
    image = read_image_series([p for p, _, _ in files])
    assert image.geometry == geometry
    assert image.n_files == 3
    for k, (path, sop, _) in enumerate(files):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == CT_CLASS
        assert ds.SOPInstanceUID == sop
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(values, hu[k])


def test_files_are_deterministic_and_conformant(tmp_path: Path) -> None:
    geometry = _grid((1, 0, 0), (0, 1, 0), (0, 0, 1))
    dose = DoseGrid(_dose_values(geometry), geometry, referenced_plan_uid=PLAN_UID)
    for name in ("a.dcm", "b.dcm"):
        write_dose(dose, tmp_path / name, patient=PATIENT, study_uid=STUDY, frame_uid=FRAME)
    raw = (tmp_path / "a.dcm").read_bytes()
    assert raw == (tmp_path / "b.dcm").read_bytes()
    assert raw[128:132] == b"DICM"
    assert b"PYDICOM" not in raw.upper()  # no library version in the file meta
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # explicit VR little endian
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                    "FrameOfReferenceUID", "Modality", "DoseUnits", "DoseType",
                    "DoseSummationType", "ReferencedRTPlanSequence", "FrameIncrementPointer",
                    "PatientID", "StudyDate", "ContentDate"):  # fmt: skip
        assert keyword in ds, keyword
    assert ds.FrameIncrementPointer == 0x3004000C


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-1e-7, "0"),
        (-0.0001, "-0.0001"),
        (1.5, "1.5"),
        (-123.456789, "-123.456789"),
        (2e-7, "0"),
    ],
)
def test_ds_number(value: float, text: str) -> None:
    assert ds_number(value) == text
    assert len(ds_number(1.23456789e15)) <= 16
