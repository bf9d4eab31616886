"""`rtcheck info`: table and JSON output on real files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from rtcheck.cli import main
from tests.dicom_factory import (
    contour_item,
    ct_series_uid,
    make_ct_series,
    make_dose,
    make_plan,
    make_structures,
    square,
    uid,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    make_ct_series(tmp_path / "CT", [0.0, 2.0, 4.0], thickness=2.5)
    make_structures(
        tmp_path / "rs.dcm",
        [
            (1, "PTV_1", "PTV", [contour_item(square(0, 0, 5, z)) for z in (0.0, 2.0, 4.0)]),
            (2, "FLAT", "ORGAN", [contour_item(square(0, 0, 5, 2.0))]),
            (
                3,
                "RING",
                "ORGAN",
                [
                    contour_item(square(0, 0, 5, 0.0)),
                    contour_item(square(0, 0, 2, 0.0)),
                    contour_item(square(0, 0, 5, 2.0)),
                    contour_item(square(0, 0, 2, 2.0)),
                ],
            ),
            (4, "ISO", "ISOCENTER", [contour_item(np.array([[0.0, 0.0, 0.0]]), "POINT")]),
        ],
        series_ref=ct_series_uid(),
    )
    make_plan(
        tmp_path / "rp.dcm",
        label="SBRT1",
        fractions=(3,),
        prescriptions=[("PTV_1", 54.0, 1)],
        struct_uid=uid("ss-ss"),
    )
    make_dose(
        tmp_path / "rd.dcm",
        np.full((3, 4, 5), 12.5),
        ipp=(-4, -3, 0),
        spacing=(2.0, 2.5),
        plan_uid=uid("plan-plan"),
    )
    return tmp_path


def test_info_json(case_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(case_dir), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (case,) = report["cases"]
    assert case["patient"]["id"] == "P1"
    (plan,) = case["plans"]
    assert plan["label"] == "SBRT1" and plan["fractions_planned"] == 3
    assert plan["prescriptions"][0]["target_dose_gy"] == 54.0
    (dose,) = case["doses"]
    assert dose["shape"] == [3, 4, 5] and dose["spacing_mm"] == [2.5, 2.0, 2.0]
    assert dose["max_gy"] == pytest.approx(12.5) and dose["referenced_plan_label"] == "SBRT1"
    rois = {r["name"]: r for r in case["structure_set"]["rois"]}
    assert rois["PTV_1"]["planes"] == 3 and rois["PTV_1"]["volume_cc"] == pytest.approx(0.6)
    # one plane: slab = CT slice thickness (2.5 mm), and the report says so
    assert rois["FLAT"]["volume_cc"] == pytest.approx(100 * 2.5 / 1000)
    assert "CT slice thickness" in rois["FLAT"]["volume_note"]
    assert rois["RING"]["volume_cc"] == pytest.approx((100 - 16) * 4 / 1000)
    assert rois["ISO"]["volume_contours"] == 0 and rois["ISO"]["contours"] == 1
    assert all(link["ok"] for link in case["links"])
    assert {f["code"] for f in case["findings"]} >= {"roi.contours_ignored"}
    assert len(case["files"]) == 6 and all(len(f["sha256"]) == 64 for f in case["files"])


def test_info_table(case_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(case_dir)]) == 0
    out = capsys.readouterr().out
    for text in ("P1", "SBRT1", "Dose grids", "12.500", "PTV_1", "0.600", "Links", "Findings"):
        assert text in out
    assert "\x1b[" not in out  # plain when not a terminal


def test_info_single_file_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", get_testdata_file("rtplan.dcm"), "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)["object"]
    assert obj["modality"] == "RTPLAN" and obj["fractions_planned"] == 30


def test_info_relative_dose_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = get_testdata_file("rtdose.dcm")
    assert main(["info", path, "--relative-prescription-gy", "10", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)["object"]
    assert obj["max_gy"] == pytest.approx(12.54) and obj["units"] == "RELATIVE x 10 Gy"


def test_info_nelms_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("Sphere_20_0.dcm", "Linear_AntPost_2mm_Aligned.dcm"):
        shutil.copy(DATA / "nelms2015" / name, tmp_path / name)
    assert main(["info", str(tmp_path), "--format", "json"]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    sphere = next(r for r in case["structure_set"]["rois"] if r["number"] == 2)
    assert sphere["volume_cc"] == pytest.approx(7.1877, abs=1e-4)
    # the dose names a plan that is not there: linked by frame of reference, disclosed
    assert any(f["code"] == "link.by_frame" for f in case["findings"])
    assert not all(link["ok"] for link in case["links"])


def test_info_several_cases(
    case_dir: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path_factory.mktemp("two")
    shutil.copytree(case_dir, root / "p1")
    make_structures(
        root / "p2" / "rs.dcm",
        [(1, "PTV", "PTV", [contour_item(square(0, 0, 3, 0))])],
        patient="P2",
        name="ss2",
    )
    make_dose(root / "p2" / "rd.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0), patient="P2", name="d2")
    assert main(["info", str(root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["patient"]["id"] for c in report["cases"]] == ["P1", "P2"]


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def test_info_single_file_default_is_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", get_testdata_file("rtplan.dcm")]) == 0
    out = capsys.readouterr().out
    assert _not_json(out)
    assert out.startswith("-") and "RTPLAN" in out.splitlines()[0]
    assert re.search(r"^Fractions +30$", out, re.MULTILINE)  # not "fractions_planned": 30
    for text in ("Prescriptions", "PTV", "30.8262", "Beams", "Field 1"):
        assert text in out
    assert "\x1b[" not in out and not any(line.endswith(" ") for line in out.splitlines())


def test_info_single_structure_set_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = get_testdata_file("rtstruct.dcm")
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert _not_json(out)
    assert "Structures (sep30)" in out and "3600.000" in out
    assert "roi.contours_ignored" in out  # findings shown with the table
    assert main(["info", path, "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)["object"]
    assert obj["modality"] == "RTSTRUCT" and obj["rois"][0]["volume_cc"] == pytest.approx(3600)


def test_info_single_dose_file_table(capsys: pytest.CaptureFixture[str]) -> None:
    path = get_testdata_file("rtdose.dcm")
    assert main(["info", path, "--relative-prescription-gy", "10"]) == 0
    out = capsys.readouterr().out
    assert _not_json(out)
    assert "Dose grid" in out and "12.540" in out and "RELATIVE x 10 Gy" in out
