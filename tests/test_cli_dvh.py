"""``rtcheck dvh``: the JSON contract, CSV/table output, explicit files, pydicom's RT test files
and a folder holding only an RT Structure Set and an RT Dose."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pydicom.data
import pytest
from evaluation_synth import case, cylinder, dose, gaussian, grid, plan, sample, sphere, write_case

from rtcheck.cli import main

PEAK, SIGMA = 82.4, 15.57


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    g = grid((-40.0, -40.0, -40.0), (40.0, 40.0, 40.0), 1.0)
    p = plan("P1", 5, [("PTV1", 50.0, 1)])
    values = sample(g, gaussian((0.0, 0.0, 0.0), PEAK, SIGMA))
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 30.0, 5.0, -30.0, 30.0),
        cylinder(3, "Outside", "ORGAN", 0.0, 0.0, 5.0, 30.0, 60.0),
    ]
    return write_case(case(rois, [dose(g, values, p)], [p]), tmp_path_factory.mktemp("dvh") / "c")


def _json(args: list[str], capsys: pytest.CaptureFixture) -> dict:
    assert main(["dvh", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract(folder: Path, capsys: pytest.CaptureFixture) -> None:
    doc = _json(
        [str(folder), "--metric", "D95%[Gy]", "--metric", "V100%[%]", "--prescription", "50"],
        capsys,
    )
    assert set(doc) == {"structures", "dose", "findings"}
    names = [s["name"] for s in doc["structures"]]
    assert names == ["PTV1", "SpinalCord", "Outside"]
    keys = {
        "name",
        "roi_number",
        "type",
        "volume_cc",
        "min_gy",
        "mean_gy",
        "max_gy",
        "metrics",
        "dvh",
        "findings",
    }
    for s in doc["structures"]:
        assert keys <= set(s)
        assert set(s["dvh"]) == {"dose_gy", "volume_cc"}
        assert set(s["metrics"]) == {"D95%[Gy]", "V100%[%]"}
    ptv = doc["structures"][0]
    assert ptv["roi_number"] == 1 and ptv["type"] == "PTV"
    assert ptv["volume_cc"] == pytest.approx(4 / 3 * math.pi, rel=0.01)
    # analytic: the highest dose is the peak; the lowest is at the rim of the end slabs
    # (the last contour, r^2 = 100 - 9.5^2, extruded half a spacing to z = 10)
    assert ptv["max_gy"] == pytest.approx(PEAK, rel=1e-3)
    far = 100.0 + (100.0 - 9.5**2)
    assert ptv["min_gy"] == pytest.approx(PEAK * math.exp(-far / SIGMA**2), rel=0.01)
    assert ptv["metrics"]["V100%[%]"] == pytest.approx(100.0)
    curve = ptv["dvh"]
    assert curve["volume_cc"][0] == pytest.approx(ptv["volume_cc"], rel=1e-3)
    assert all(a >= b for a, b in zip(curve["volume_cc"], curve["volume_cc"][1:], strict=False))
    assert doc["dose"]["max_gy"] == pytest.approx(PEAK, rel=1e-3)


def test_metric_that_cannot_be_computed_is_null_with_a_finding(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    # explicit files: no RT Plan, so no prescription for a % of Rx metric
    doc = _json(
        [
            "--rtstruct",
            str(folder / "RS.dcm"),
            "--rtdose",
            str(folder / "RD.0.dcm"),
            "--structure",
            "SpinalCord",
            "--metric",
            "D95%[%]",
            "--metric",
            "D5000cc[Gy]",
        ],
        capsys,
    )
    (cord,) = doc["structures"]
    assert cord["metrics"] == {"D95%[%]": None, "D5000cc[Gy]": None}
    assert cord["prescription_gy"] is None and cord["prescription"] is None
    codes = [f["code"] for f in cord["findings"]]
    assert codes.count("metric.not_computable") == 2
    assert any("prescription of PTV1 is unknown" in f["message"] for f in cord["findings"])


def test_partly_outside_structure_is_reported(folder: Path, capsys: pytest.CaptureFixture) -> None:
    doc = _json([str(folder), "--structure", "Outside"], capsys)
    (s,) = doc["structures"]
    assert s["outside_volume_cc"] > 0
    assert any(f["code"] == "dose.partial_coverage" for f in s["findings"])


def test_csv_and_table(folder: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["dvh", str(folder), "--metric", "Max[Gy]", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == ["PTV1", "SpinalCord", "Outside"]
    assert float(rows[0]["Max[Gy]"]) == pytest.approx(float(rows[0]["max_gy"]))
    assert main(["dvh", str(folder), "--structure", "spinal cord"]) == 0
    assert "SpinalCord" in capsys.readouterr().out


def test_explicit_files_and_bad_options(folder: Path, capsys: pytest.CaptureFixture) -> None:
    doc = _json(
        ["--rtstruct", str(folder / "RS.dcm"), "--rtdose", str(folder / "RD.0.dcm")], capsys
    )
    assert len(doc["structures"]) == 3
    assert main(["dvh", str(folder), "--metric", "D95"]) == 2
    assert main(["dvh", str(folder), "--structure", "Kidney"]) == 2
    assert main(["dvh", "--rtstruct", str(folder / "RS.dcm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("rtcheck: ") for line in err)


def test_folder_with_only_structures_and_dose(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    only = tmp_path / "only"
    only.mkdir()
    for name in ("RS.dcm", "RD.0.dcm"):
        (only / name).write_bytes((folder / name).read_bytes())
    doc = _json([str(only), "--structure", "PTV1"], capsys)
    assert doc["structures"][0]["max_gy"] == pytest.approx(PEAK, rel=1e-3)


def test_pydicom_rt_test_files(capsys: pytest.CaptureFixture) -> None:
    rs = pydicom.data.get_testdata_file("rtstruct.dcm")
    rd = pydicom.data.get_testdata_file("rtdose.dcm")
    # the dose is RELATIVE: without the scale it is a clear error, not a guess
    assert main(["dvh", "--rtstruct", rs, "--rtdose", rd]) == 2
    assert "RELATIVE" in capsys.readouterr().err
    doc = _json(
        [
            "--rtstruct",
            rs,
            "--rtdose",
            rd,
            "--relative-prescription-gy",
            "1",
            "--allow-frame-mismatch",
            "--metric",
            "Max[Gy]",
        ],
        capsys,
    )
    codes = {f["code"] for f in doc["findings"]}
    assert {"link.patient_mismatch", "link.frame_mismatch"} <= codes
    body = next(s for s in doc["structures"] if s["type"] == "EXTERNAL")
    assert body["volume_cc"] > 0 and body["max_gy"] is None  # the files do not overlap
    assert body["metrics"]["Max[Gy]"] is None
    assert any(f["code"] == "dose.partial_coverage" for f in body["findings"])


# ----------------------------------------------------------------------------- EQD2 / BED
def _eqd2(d: float, n: int, ab: float) -> float:
    """Hand formula: EQD2 = D (d + a/b) / (2 + a/b), d = D / n."""
    return d * (d / n + ab) / (2.0 + ab)


def _bed(d: float, n: int, ab: float) -> float:
    """Hand formula: BED = D (1 + d / (a/b))."""
    return d * (1.0 + d / (n * ab))


def test_radiobiological_metrics_use_the_plans_fractions(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    """The dose peak is a grid node inside PTV1: its EQD2/BED are the hand formulas of Max[Gy]."""
    metrics = ["Max[Gy]", "Max[EQD2Gy(a/b=10)]", "Max[BED(a/b=3)]", "D50%[Gy]", "D50%[EQD2Gy]"]
    args = [str(folder), "--structure", "PTV1", "--alpha-beta", "2"]
    doc = _json([*args, *(a for m in metrics for a in ("--metric", m))], capsys)
    got = doc["structures"][0]["metrics"]
    peak = got["Max[Gy]"]
    assert peak == pytest.approx(PEAK, rel=1e-3)
    assert got["Max[EQD2Gy(a/b=10)]"] == pytest.approx(_eqd2(peak, 5, 10.0), rel=1e-6)
    assert got["Max[BED(a/b=3)]"] == pytest.approx(_bed(peak, 5, 3.0), rel=1e-6)
    # a monotone conversion keeps the median voxel: D50% converts (to interpolation accuracy)
    assert got["D50%[EQD2Gy]"] == pytest.approx(_eqd2(got["D50%[Gy]"], 5, 2.0), rel=2e-3)
    # --fractions wins over the RT Plan, with a finding
    doc = _json([*args, "--metric", "Max[EQD2Gy]", "--fractions", "1"], capsys)
    assert doc["structures"][0]["metrics"]["Max[EQD2Gy]"] == pytest.approx(
        _eqd2(peak, 1, 2.0), rel=1e-6
    )
    assert any(f["code"] == "fractions.overridden" for f in doc["findings"])


def test_radiobiological_metric_without_fractions_or_alpha_beta_is_null(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    rs = next(folder.rglob("RS*.dcm"))
    rd = next(folder.rglob("RD*.dcm"))
    files = ["--rtstruct", str(rs), "--rtdose", str(rd), "--structure", "PTV1"]
    doc = _json([*files, "--metric", "Max[EQD2Gy(a/b=3)]"], capsys)
    s = doc["structures"][0]
    assert s["metrics"] == {"Max[EQD2Gy(a/b=3)]": None}
    assert any("--fractions N" in f["message"] for f in s["findings"])
    doc = _json([str(folder), "--structure", "PTV1", "--metric", "Max[EQD2Gy]"], capsys)
    s = doc["structures"][0]
    assert s["metrics"] == {"Max[EQD2Gy]": None}
    assert any("--alpha-beta" in f["message"] for f in s["findings"])


def test_an_effective_dose_is_not_converted_again(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An EQD2 sum (DoseType EFFECTIVE, as rtcheck sum writes) is already converted."""
    import pydicom

    rd = tmp_path / "sum.dcm"
    ds = pydicom.dcmread(next(folder.rglob("RD*.dcm")))
    ds.DoseType = "EFFECTIVE"
    ds.save_as(rd)
    rs = next(folder.rglob("RS*.dcm"))
    args = ["--rtstruct", str(rs), "--rtdose", str(rd), "--structure", "PTV1", "--fractions", "5"]
    doc = _json([*args, "--metric", "Max[EQD2Gy(a/b=2)]"], capsys)
    assert doc["structures"][0]["metrics"] == {"Max[EQD2Gy(a/b=2)]": None}
    assert any(f["code"] == "dose.not_physical" for f in doc["findings"])


# ----------------------------------------------------------------------------- prescriptions
SAMPLE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_single"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_dicom/oligo_single missing")


@needs_sample
def test_target_percent_metric_uses_its_rt_plan_prescription(capsys: pytest.CaptureFixture) -> None:
    """PTVp's V100% is relative to its own RT Plan prescription (55 Gy), as in rtcheck check."""
    assert main(["check", str(SAMPLE), "--protocol", "rtog0813", "--format", "json"]) in (0, 1, 3)
    lesion = next(x for x in json.loads(capsys.readouterr().out)["lesions"] if x["name"] == "PTVp")
    assert lesion["prescription_gy"] == 55.0
    doc = _json([str(SAMPLE), "--structure", "PTVp", "--metric", "V100%[%]"], capsys)
    (ptv,) = doc["structures"]
    assert ptv["prescription_gy"] == 55.0
    assert ptv["prescription"] == "55 Gy (RT Plan dose reference by ROI number, PTVp)"
    assert ptv["metrics"]["V100%[%]"] == pytest.approx(lesion["metrics"]["V100%[%]"], rel=1e-9)
    # and the analytic value on the dose grid (expected.json, computed without rtcheck's engine)
    expected = json.loads((SAMPLE / "expected.json").read_text())
    truth = next(x for x in expected["lesions"] if x["ptv"] == "PTVp")["metrics"]["V100%[%]"]
    assert abs(ptv["metrics"]["V100%[%]"] - truth["value_grid"]) <= truth["tolerance"]
    assert doc["dose"]["prescription_gy"] is None  # no --prescription given


@needs_sample
def test_prescription_option_wins_and_says_so(capsys: pytest.CaptureFixture) -> None:
    metrics = ["D95%[Gy]", "D95%[%]", "V100%[%]"]
    args = [str(SAMPLE), "--structure", "PTVp", "--prescription", "50"]
    doc = _json([*args, *(a for m in metrics for a in ("--metric", m))], capsys)
    (ptv,) = doc["structures"]
    got = ptv["metrics"]
    assert ptv["prescription_gy"] == 50.0 and ptv["prescription"] == "50 Gy (--prescription)"
    assert got["D95%[%]"] == pytest.approx(100.0 * got["D95%[Gy]"] / 50.0, rel=1e-9)
    assert doc["dose"]["prescription_gy"] == 50.0
    notes = [f for f in ptv["findings"] if f["code"] == "rx.overridden"]
    assert len(notes) == 1 and "instead of 55 Gy" in notes[0]["message"]
    assert main(["dvh", *args, "--metric", "V100%[%]", "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["prescription"] == "50 Gy (--prescription)"
    assert main(["dvh", *args, "--metric", "V100%[%]"]) == 0
    table = capsys.readouterr().out
    assert "prescription" in table and "50 Gy (--prescription)" in table
    assert "WARNING: PTVp: --prescription 50 Gy used instead of 55 Gy" in table


@needs_sample
def test_organ_percent_metric_with_several_prescriptions_is_null(
    capsys: pytest.CaptureFixture,
) -> None:
    doc = _json([str(SAMPLE), "--structure", "SpinalCord", "--metric", "V100%[%]"], capsys)
    (cord,) = doc["structures"]
    assert cord["metrics"] == {"V100%[%]": None}
    assert cord["prescription_gy"] is None and cord["prescription"] is None
    (note,) = [f for f in cord["findings"] if f["code"] == "metric.not_computable"]
    assert "targets have different prescriptions (35, 40, 45, 50, 55 Gy)" in note["message"]
    assert "give --prescription GY" in note["message"]
    assert main(["dvh", str(SAMPLE), "--structure", "SpinalCord", "--metric", "V100%[%]"]) == 0
    table = capsys.readouterr().out
    assert "targets have different prescriptions (35, 40, 45, 50, 55 Gy)" in table


def test_organ_percent_metric_uses_the_only_prescription(
    folder: Path, capsys: pytest.CaptureFixture
) -> None:
    """One target (PTV1, 50 Gy in the RT Plan): an organ's % of Rx is relative to 50 Gy."""
    args = [str(folder), "--structure", "SpinalCord", "--metric", "D5%[Gy]", "--metric", "D5%[%]"]
    doc = _json(args, capsys)
    (cord,) = doc["structures"]
    assert cord["prescription_gy"] == 50.0
    assert cord["prescription"].startswith("50 Gy (the case's only prescription: ")
    assert "PTV1" in cord["prescription"]
    got = cord["metrics"]
    assert got["D5%[%]"] == pytest.approx(100.0 * got["D5%[Gy]"] / 50.0, rel=1e-9)


# ----------------------------------------------------------------------------- frames
def _other_frame(src: Path, dst: Path) -> Path:
    """``src`` written to ``dst`` with a new FrameOfReferenceUID."""
    import pydicom

    ds = pydicom.dcmread(src)
    ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
    ds.save_as(dst)
    return dst


def test_explicit_files_on_different_frames_are_refused_unless_allowed(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rs = folder / "RS.dcm"
    rd = _other_frame(folder / "RD.0.dcm", tmp_path / "RD.other.dcm")
    files = ["--rtstruct", str(rs), "--rtdose", str(rd), "--structure", "PTV1"]
    assert main(["dvh", *files]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert str(rd) in lines[0] and str(rs) in lines[0]
    assert "frame of reference" in lines[0] and "--allow-frame-mismatch" in lines[0]
    assert "Traceback" not in captured.err
    doc = _json([*files, "--allow-frame-mismatch"], capsys)
    (note,) = [f for f in doc["findings"] if f["code"] == "link.frame_mismatch"]
    assert note["severity"] == "warning" and "accepted on request" in note["message"]
    assert doc["structures"][0]["max_gy"] == pytest.approx(PEAK, rel=1e-3)
    assert main(["dvh", *files, "--allow-frame-mismatch"]) == 0
    assert "WARNING: RT Dose frame of reference" in capsys.readouterr().out


def test_folder_on_different_frames_is_refused_unless_allowed(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    for f in folder.iterdir():
        (case_dir / f.name).write_bytes(f.read_bytes())
    _other_frame(folder / "RD.0.dcm", case_dir / "RD.0.dcm")
    assert main(["dvh", str(case_dir), "--structure", "PTV1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allow-frame-mismatch" in err[0]
    doc = _json([str(case_dir), "--structure", "PTV1", "--allow-frame-mismatch"], capsys)
    assert any(
        f["code"] == "link.frame_mismatch" and f["severity"] == "warning" for f in doc["findings"]
    )
