"""Issue #4: where each plan's dose maximum lies, always reported per lesion (information).

The plan maximum, its position and the PTV containing it are checked against an independent
reading of the DICOM files with pydicom and numpy (argmax of the stored dose -> patient mm from
ImagePositionPatient / ImageOrientationPatient / PixelSpacing / GridFrameOffsetVector) and a
point-in-polygon test of the PTV contours on the nearest contour plane (matplotlib.path).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from matplotlib.path import Path as Polygon
from pypdf import PdfReader

from rtcheck.pipeline import CheckOptions, check_path
from rtcheck.report import render_json
from rtcheck.report.html import render_html
from rtcheck.report.pdf import render_pdf
from rtcheck.report.schema import validate
from rtcheck.report.terminal import render_text
from rtcheck.result import PlanMaximum, Result, Status
from tests.safety_cases import CaseSpec, check_spec, falloff, with_hotspot

ROOT = Path(__file__).resolve().parents[1]
SINGLE = ROOT / "sample_dicom" / "oligo_single"

#: A hot spot (Gaussian, 60 Gy above the base dose) on a dose grid point 30 mm from PTV1
#: (centre (20, 0, 0), r 15 mm), away from the cord and the oesophagus.
HOT_XYZ = (-20.0, -20.0, 0.0)


# ----------------------------------------------------------------------------- truth
def dose_truth(path: Path) -> tuple[float, list[tuple[float, float, float]]]:
    """Max dose (Gy) of an RT Dose file and the patient mm of every voxel holding it,
    in stored voxel order."""
    ds = pydicom.dcmread(str(path))
    gy = ds.pixel_array.astype(float) * float(ds.DoseGridScaling)
    if gy.ndim == 2:
        gy = gy[np.newaxis]
    top = float(gy.max())
    row, col = (np.array(ds.ImageOrientationPatient[:3], float),
                np.array(ds.ImageOrientationPatient[3:], float))  # fmt: skip
    normal = np.cross(row, col)
    dr, dc = (float(v) for v in ds.PixelSpacing)  # row spacing, column spacing
    ipp = np.array(ds.ImagePositionPatient, float)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    out = []
    for k, j, i in zip(*np.nonzero(gy == top), strict=True):
        xyz = ipp + i * dc * row + j * dr * col + offsets[k] * normal
        out.append((float(xyz[0]), float(xyz[1]), float(xyz[2])))
    return top, out


def ptvs_containing(rs_path: Path, xyz: tuple[float, float, float]) -> set[str]:
    """Names of the PTV ROIs whose contours on the plane nearest ``xyz`` contain it (even-odd)."""
    ds = pydicom.dcmread(str(rs_path))
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    found = set()
    for rc in ds.ROIContourSequence:
        name = names[rc.ReferencedROINumber]
        if not name.upper().startswith("PTV"):
            continue
        rings = [np.array(c.ContourData, float).reshape(-1, 3) for c in rc.ContourSequence]
        zs = np.array([r[0, 2] for r in rings])
        nearest = zs[np.argmin(np.abs(zs - xyz[2]))]
        if abs(nearest - xyz[2]) > 3.0:  # beyond the structure's planes
            continue
        hits = sum(Polygon(r[:, :2]).contains_point(xyz[:2]) for r in rings if r[0, 2] == nearest)
        if hits % 2 == 1:
            found.add(name)
    return found


def coord_text(xyz: tuple[float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in xyz) + ") mm"


def one_maximum(result: Result) -> PlanMaximum:
    maxima = {lesion.plan_maximum for lesion in result.lesions}
    assert len(maxima) == 1 and None not in maxima
    (pm,) = maxima
    assert pm is not None
    return pm


def report_texts(result: Result) -> dict[str, str]:
    pdf = PdfReader(io.BytesIO(render_pdf(result)))
    return {
        "terminal": render_text(result, width=400),
        "html": render_html(result),
        "pdf": " ".join(p.extract_text() for p in pdf.pages),
    }


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# ----------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def single_tg101() -> Result:
    return check_path(str(SINGLE), "tg101", CheckOptions())


def test_tg101_reports_plan_maximum_and_its_ptv(single_tg101: Result) -> None:
    top, points = dose_truth(SINGLE / "RD.oligo.dcm")
    pm = one_maximum(single_tg101)
    assert pm.value_gy == pytest.approx(top, rel=1e-9)
    assert pm.points_at_max == len(points)
    assert pm.position_mm == pytest.approx(points[0], abs=1e-6)
    containing = ptvs_containing(SINGLE / "RS.dcm", points[0])
    assert containing  # the sample plan's maximum is in a PTV (PTVp, 62.45 Gy analytic)
    assert set(pm.inside or ()) == containing
    assert pm.judged_by is None and pm.target_kind == "PTV"
    # no target rule in TG-101: information only, no constraint row was added
    assert not any(c.id.startswith("global_max") for c in single_tg101.all_constraints)
    doc = json.loads(render_json(single_tg101))
    validate(doc)
    for lesion in doc["lesions"]:
        info = lesion["plan_maximum"]
        assert info["in_this_lesion"] is (lesion["name"] in containing)
        assert info["position_mm"] == pytest.approx(list(points[0]), abs=1e-6)
    expected = f"Plan maximum {top:.2f} Gy at {coord_text(points[0])}"
    inside = "inside " + ", ".join(sorted(containing))
    for fmt, text in report_texts(single_tg101).items():
        flat = squash(text)
        assert expected in flat, fmt
        assert f"{inside} (information only)" in flat, fmt


def test_hot_spot_outside_the_ptv_is_reported_outside(tmp_path: Path) -> None:
    spec = CaseSpec().but(dose_fn=with_hotspot(falloff(), HOT_XYZ, 60.0))
    result = check_spec(spec, tmp_path / "case", "tg101")
    top, points = dose_truth(tmp_path / "case" / "RD.dcm")
    assert points[0] == pytest.approx(HOT_XYZ, abs=1e-6)
    assert ptvs_containing(tmp_path / "case" / "RS.dcm", points[0]) == set()
    pm = one_maximum(result)
    assert pm.value_gy == pytest.approx(top, rel=1e-9)
    assert pm.position_mm == pytest.approx(HOT_XYZ, abs=1e-6)
    assert pm.inside == () and pm.judged_by is None
    (lesion,) = json.loads(render_json(result))["lesions"]
    assert lesion["plan_maximum"]["in_this_lesion"] is False
    for fmt, text in report_texts(result).items():
        flat = squash(text)
        assert f"at {coord_text(HOT_XYZ)}: outside every PTV (information only)" in flat, fmt
    # the information carries no status: the verdict is the one without it
    assert not any(c.id.startswith("global_max") for c in result.all_constraints)


def test_protocol_rule_judges_the_same_maximum(tmp_path: Path) -> None:
    """Under RTOG 0813 (5 fx) the rule's row and the information agree, and cross-refer."""
    hot = check_spec(
        CaseSpec().but(dose_fn=with_hotspot(falloff(), HOT_XYZ, 60.0)), tmp_path / "hot", "rtog0813"
    )
    ok = check_spec(CaseSpec(), tmp_path / "ok", "rtog0813")
    for result, inside, status in ((hot, (), Status.FAIL), (ok, ("PTV1",), Status.PASS)):
        (row,) = [c for c in result.constraints if c.id.startswith("global_max")]
        assert row.status is status
        pm = one_maximum(result)
        assert pm.inside == inside and pm.judged_by == row.id
        assert f"(judged by protocol row {row.id})" in squash(render_text(result, width=400))


def test_each_plan_of_a_multi_plan_case_has_its_own_maximum() -> None:
    folder = ROOT / "sample_dicom" / "oligo_multi"
    result = check_path(str(folder), "tg101", CheckOptions())
    by_plan = {les.plan_label: les.plan_maximum for les in result.lesions}
    assert len(by_plan) >= 2 and None not in by_plan.values()
    for label, pm in by_plan.items():
        assert pm is not None and pm.plan_label == label
    top, points = dose_truth(folder / "RD.RUL.dcm")
    (rul,) = [pm for label, pm in by_plan.items() if label and label.startswith("RUL")]
    assert rul is not None
    assert rul.value_gy == pytest.approx(top, rel=1e-9)
    assert rul.position_mm == pytest.approx(points[0], abs=1e-6)
    assert set(rul.inside or ()) == ptvs_containing(folder / "RS.dcm", points[0])
    text = squash(render_text(result, width=400))
    assert f"Plan maximum ({rul.plan_label}) {top:.2f} Gy" in text


def test_unknown_containment_is_said_not_guessed() -> None:
    from rtcheck.report.common import plan_maximum_text

    pm = PlanMaximum("P1", 50.0, (1.0, 2.0, 3.0), 1, "PTV", None, "no DVH for PTV2 on this dose")
    text = plan_maximum_text(pm, several_plans=True)
    assert text == (
        "Plan maximum (P1) 50.00 Gy at (1.0, 2.0, 3.0) mm: inside a PTV or not is unknown "
        "(no DVH for PTV2 on this dose) (information only)"
    )
    assert "outside every PTV of this plan" in plan_maximum_text(
        PlanMaximum("P1", 50.0, (1.0, 2.0, 3.0), 1, "PTV", ()), several_plans=True
    )
