"""``rtcheck sum`` end to end: a case written with rtcheck's DICOM writer, read back by rtcheck
and pydicom, compared with closed-form sums of analytic dose fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rtcheck.cli import main
from rtcheck.geometry.resample import voxel_centres
from rtcheck.io.dose import read_dose
from rtcheck.io.write import uid_from, write_dose, write_plan, write_structure_set
from rtcheck.model import (
    Beam,
    Contour,
    DoseGrid,
    GridGeometry,
    Patient,
    Plan,
    Prescription,
    Roi,
    StructureSet,
)
from rtcheck.radiobiology import bed, eqd2

PATIENT = Patient("MP1", "Multi^Plan", "19600101", "O")
STUDY = uid_from("test-sum-study")
FRAME = uid_from("test-sum-frame")
SAMPLE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_multi"

# Plan A: HFS grid; plan B: FFS grid (x and z flipped), other spacing, offset and overlapping.
GA = GridGeometry(
    (-30.0, -30.0, -30.0), (2.5, 2.5, 3.0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (21, 25, 25)
)
GB = GridGeometry(
    (40.0, -20.0, 20.0), (2.0, 2.0, 2.0), (-1, 0, 0), (0, 1, 0), (0, 0, -1), (20, 21, 31)
)


def fa(p: np.ndarray) -> np.ndarray:
    return 20.0 + 0.1 * p[..., 0] + 0.05 * p[..., 1] - 0.02 * p[..., 2]


def fb(p: np.ndarray) -> np.ndarray:
    return 10.0 - 0.03 * p[..., 0] + 0.08 * p[..., 2]


def square(cx: float, cy: float, half: float, z: float) -> Contour:
    pts = [
        [cx - half, cy - half, z],
        [cx + half, cy - half, z],
        [cx + half, cy + half, z],
        [cx - half, cy + half, z],
    ]
    return Contour(np.array(pts, float))


def write_case(
    folder: Path, fx_a: int, fx_b: int | None, *, beams_b: bool = False
) -> dict[str, str]:
    """Structure set, two plans and their doses (plan B optionally as two BEAM doses)."""
    folder.mkdir(parents=True, exist_ok=True)
    ss_uid = uid_from("ss", folder.name)
    rois = (
        Roi(1, "PTV_A", "PTV", contours=tuple(square(0, 0, 5, z) for z in (-3.0, 0.0, 3.0))),
        Roi(2, "PTV_B", "PTV", contours=tuple(square(20, 0, 5, z) for z in (6.0, 8.0, 10.0))),
        Roi(
            3, "SpinalCord", "ORGAN", contours=tuple(square(10, 10, 3, z) for z in (-3.0, 0.0, 3.0))
        ),
    )
    write_structure_set(
        StructureSet(rois, ss_uid, FRAME, label="SS"),
        folder / "RS.dcm",
        patient=PATIENT,
        study_uid=STUDY,
    )
    uids = {}
    for name, fx, g, fn, roi in (("A", fx_a, GA, fa, 1), ("B", fx_b, GB, fb, 2)):
        plan_uid = uid_from("plan", folder.name, name)
        uids[name] = plan_uid
        nbeams = 2 if (beams_b and name == "B") else 1
        plan = Plan(
            label=f"Plan{name}",
            sop_instance_uid=plan_uid,
            fractions_planned=fx,
            prescriptions=(Prescription(40.0, f"PTV_{name}", roi),),
            beams=tuple(Beam(n, meterset=100.0) for n in range(1, nbeams + 1)),
            referenced_structure_set_uid=ss_uid,
            frame_of_reference_uid=FRAME,
        )
        write_plan(plan, folder / f"RP_{name}.dcm", patient=PATIENT, study_uid=STUDY)
        values = fn(voxel_centres(g))
        if nbeams == 1:
            dose = DoseGrid(values, g, referenced_plan_uid=plan_uid, frame_of_reference_uid=FRAME)
            write_dose(dose, folder / f"RD_{name}.dcm", patient=PATIENT, study_uid=STUDY, bits=32)
        else:  # two beams: 30 % + 70 %, and a PLAN dose that must not be added again
            for n, share in ((1, 0.3), (2, 0.7)):
                beam = DoseGrid(
                    values * share,
                    g,
                    summation_type="BEAM",
                    referenced_plan_uid=plan_uid,
                    referenced_beam_numbers=(n,),
                    frame_of_reference_uid=FRAME,
                )
                write_dose(
                    beam,
                    folder / f"RD_{name}_beam{n}.dcm",
                    patient=PATIENT,
                    study_uid=STUDY,
                    bits=32,
                )
            plan_dose = DoseGrid(
                values, g, referenced_plan_uid=plan_uid, frame_of_reference_uid=FRAME
            )
            write_dose(
                plan_dose, folder / f"RD_{name}.dcm", patient=PATIENT, study_uid=STUDY, bits=32
            )
    return uids


def inside(g: GridGeometry, pts: np.ndarray) -> np.ndarray:
    lo, hi = np.array(g.bounds()[0]), np.array(g.bounds()[1])
    return np.all((pts >= lo - 1e-3) & (pts <= hi + 1e-3), axis=-1)


def expected(pts: np.ndarray, conv_a, conv_b) -> np.ndarray:
    ia, ib = inside(GA, pts), inside(GB, pts)
    a = np.where(ia, conv_a(np.where(ia, fa(pts), 0.0)), 0.0)
    b = np.where(ib, conv_b(np.where(ib, fb(pts), 0.0)), 0.0)
    return a + b


def test_physical_sum_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uids = write_case(tmp_path / "case", 5, 5, beams_b=True)
    out = tmp_path / "sum.dcm"
    assert main(["sum", str(tmp_path / "case"), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    line = captured.out.strip()
    assert "\n" not in line and line.startswith("sum.dcm: physical sum of 2 plan(s)")
    assert "PlanA (5 fx)" in line and "PlanB (5 fx)" in line
    ds = pydicom.dcmread(out)
    assert ds.Modality == "RTDOSE" and ds.DoseSummationType == "MULTI_PLAN"
    assert ds.DoseType == "PHYSICAL"
    assert sorted(i.ReferencedSOPInstanceUID for i in ds.ReferencedRTPlanSequence) == sorted(
        uids.values()
    )
    assert ds.pixel_array.shape == (ds.NumberOfFrames, ds.Rows, ds.Columns)
    grid = read_dose(out)
    pts = voxel_centres(grid.geometry)
    # BEAM doses of plan B were not added on top of its PLAN dose: exact f_a + f_b.
    np.testing.assert_allclose(grid.dose_gy, expected(pts, lambda d: d, lambda d: d), atol=1e-5)
    assert grid.geometry.spacing == pytest.approx((2.0, 2.0, 2.0))
    assert not list(tmp_path.glob(".*.tmp"))


def test_eqd2_and_bed_sums_of_mixed_fractionation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "case", 1, 5)
    out = tmp_path / "eqd2.dcm"
    assert main(["sum", str(tmp_path / "case"), "-o", str(out), "--eqd2", "--alpha-beta", "3"]) == 0
    assert "EQD2 sum (LQ per plan, a/b = 3 Gy, --alpha-beta)" in capsys.readouterr().out
    ds = pydicom.dcmread(out)
    assert ds.DoseType == "EFFECTIVE" and "EQD2(a/b=3)" in ds.DoseComment
    grid = read_dose(out)
    pts = voxel_centres(grid.geometry)
    want = expected(pts, lambda d: eqd2(d, 1, 3.0), lambda d: eqd2(d, 5, 3.0))
    np.testing.assert_allclose(grid.dose_gy, want, rtol=1e-6, atol=1e-5)
    # Spot value written out: f_a = 20 Gy in 1 fx -> EQD2 = 20 (20 + 3)/5 = 92 at (0, 0, 0) when
    # only plan A... plan B also covers the origin: f_b(0) = 10 Gy/5 fx -> 10 (2 + 3)/5 = 10.
    assert eqd2(20.0, 1, 3.0) + eqd2(10.0, 5, 3.0) == pytest.approx(102.0)
    out_bed = tmp_path / "bed.dcm"
    assert main(["sum", str(tmp_path / "case"), "-o", str(out_bed), "--bed", "--grid", "3"]) == 0
    text = capsys.readouterr().out
    assert "BED sum" in text and "rtcheck default" in text  # a/b 3 default stated
    g2 = read_dose(out_bed)
    assert g2.geometry.spacing == pytest.approx((3.0, 3.0, 3.0))
    want = expected(voxel_centres(g2.geometry), lambda d: bed(d, 1, 3.0), lambda d: bed(d, 5, 3.0))
    np.testing.assert_allclose(g2.dose_gy, want, rtol=1e-6, atol=1e-5)


def test_mixed_fractionation_physical_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "case", 1, 5)
    out = tmp_path / "sum.dcm"
    assert main(["sum", str(tmp_path / "case"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rtcheck: error:") and "\n" not in err
    assert "different numbers of fractions (1, 5)" in err and "--eqd2" in err
    assert not out.exists()
    assert main(["sum", str(tmp_path / "case"), "-o", str(out), "--force-physical"]) == 0
    assert "warning" in capsys.readouterr().err
    assert pydicom.dcmread(out).DoseType == "PHYSICAL"


def test_unknown_fractionation_cannot_be_converted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "case", 5, None)
    out = tmp_path / "sum.dcm"
    assert main(["sum", str(tmp_path / "case"), "-o", str(out), "--eqd2"]) == 2
    assert "fractions unknown for PlanB" in capsys.readouterr().err
    assert not out.exists()


def test_rerun_in_same_folder_does_not_double_count(tmp_path: Path) -> None:
    folder = tmp_path / "case"
    write_case(folder, 5, 5)
    first = folder / "sum.dcm"
    assert main(["sum", str(folder), "-o", str(first)]) == 0
    second = tmp_path / "again.dcm"
    assert main(["sum", str(folder), "-o", str(second)]) == 0  # sum.dcm (MULTI_PLAN) left out
    np.testing.assert_allclose(read_dose(second).dose_gy, read_dose(first).dose_gy, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha-beta", "3"], "--alpha-beta applies only with --eqd2 or --bed"),
        (["--eqd2", "--alpha-beta", "-1"], "must be > 0"),
        (["--grid", "coarse"], "expected finest, first or a spacing"),
        (["--eqd2", "--bed"], "not both"),
        (["--eqd2", "--force-physical"], "applies only to a physical sum"),
    ],
)
def test_option_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    write_case(tmp_path / "case", 5, 5)
    assert main(["sum", str(tmp_path / "case"), "-o", str(tmp_path / "x.dcm"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.dcm").exists()


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_dicom/oligo_multi not present yet")
def test_sample_multi_plan_case_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # oligo_multi: plans of 3, 5, 8 (as three BEAM doses) and 30 fractions on their own grids.
    # The written EQD2 (a/b 2) sum, read back by rtcheck, gives the cord maximum that the
    # sample generator computed independently (expected.json, composite_eqd2).
    from rtcheck.dvh.compute import compute_dvh
    from rtcheck.io.structures import read_structures

    out = tmp_path / "sum.dcm"
    assert main(["sum", str(SAMPLE), "-o", str(out), "--eqd2", "--alpha-beta", "2"]) == 0
    assert "of 4 plan(s)" in capsys.readouterr().out
    ds = pydicom.dcmread(out)
    assert ds.DoseSummationType == "MULTI_PLAN" and ds.DoseType == "EFFECTIVE"
    expected = json.loads((SAMPLE / "expected.json").read_text())
    plan_uids = {p["sop_instance_uid"] for p in expected["plans"]}
    assert {i.ReferencedSOPInstanceUID for i in ds.ReferencedRTPlanSequence} == plan_uids
    grid = read_dose(out)
    assert grid.dose_type == "EFFECTIVE"
    rois = {r.name: r for r in read_structures(SAMPLE / "RS.dcm").rois}
    (cord,) = [e for e in expected["composite_eqd2"] if e["structure"] == "SpinalCord"]
    assert cord["alpha_beta"] == 2.0
    dvh = compute_dvh(grid, rois[cord["roi"]])
    assert dvh.max_gy == pytest.approx(cord["value"], abs=cord["tolerance"])


def test_refuses_to_overwrite_an_input_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "case"
    write_case(folder, 5, 5)
    before = (folder / "RD_A.dcm").read_bytes()
    assert main(["sum", str(folder), "-o", str(folder / "RD_A.dcm")]) == 2
    assert "refusing to overwrite an input file" in capsys.readouterr().err
    assert (folder / "RD_A.dcm").read_bytes() == before
