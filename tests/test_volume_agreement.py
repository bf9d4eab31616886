"""`rtcheck info` reports the DVH engine's structure volume (one slab model, one number)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtcheck.cli import main
from tests.dicom_factory import (
    contour_item,
    ct_series_uid,
    make_ct_series,
    make_dose,
    make_structures,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_single"

R_MM = 10.0
N_SIDES = 128
ZS = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
#: Uneven spacing (2.5 mm, then 5 mm): no gap, slabs half-way, caps of the nearest spacing.
ZS_UNEVEN = [0.0, 2.5, 5.0, 10.0, 15.0]


def _circle(z: float) -> np.ndarray:
    t = 2 * np.pi * np.arange(N_SIDES) / N_SIDES
    return np.stack([R_MM * np.cos(t), R_MM * np.sin(t), np.full(N_SIDES, z)], axis=1)


def _square(x0: float, y0: float, x1: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def _reports(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, dict]:
    assert main(["info", str(folder), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert main(["dvh", str(folder), "--format", "json"]) == 0
    dvh = json.loads(capsys.readouterr().out)
    (case,) = info["cases"]
    info_cc = {r["name"]: r["volume_cc"] for r in case["structure_set"]["rois"]}
    return info_cc, {s["name"]: s for s in dvh["structures"]}


@pytest.fixture
def cylinder_case(tmp_path: Path) -> Path:
    make_ct_series(tmp_path / "CT", ZS, thickness=2.0)
    crossing = [contour_item(_square(0, 0, 10, 10, z)) for z in (0.0, 2.0, 4.0)] + [
        contour_item(_square(5, 5, 15, 15, z)) for z in (0.0, 2.0, 4.0)
    ]
    make_structures(
        tmp_path / "rs.dcm",
        [
            (1, "CYL", "ORGAN", [contour_item(_circle(z)) for z in ZS]),
            (2, "UNEVEN", "ORGAN", [contour_item(_square(-5, -5, 5, 5, z)) for z in ZS_UNEVEN]),
            (3, "CROSSING", "ORGAN", crossing),
        ],
        series_ref=ct_series_uid(),
    )
    # a smooth dose covering every structure (voxel centres -20..20 mm, z -6..26 mm)
    z = np.arange(-6.0, 27.0, 2.0)
    y = x = np.arange(-20.0, 21.0, 2.0)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    make_dose(
        tmp_path / "rd.dcm",
        10.0 + 0.1 * xx + 0.05 * yy + 0.02 * zz,
        ipp=(-20.0, -20.0, -6.0),
        spacing=(2.0, 2.0),
        offsets=list(z + 6.0),
    )
    return tmp_path


def test_info_volume_is_the_dvh_volume_and_the_analytic_one(
    cylinder_case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info_cc, dvh = _reports(cylinder_case, capsys)
    # cylinder: 128-gon prism, 11 planes 2 mm apart + half-spacing caps -> 22 mm tall
    polygon = 0.5 * N_SIDES * R_MM**2 * np.sin(2 * np.pi / N_SIDES)
    height = ZS[-1] - ZS[0] + 2.0
    assert info_cc["CYL"] == pytest.approx(polygon * height / 1000, rel=1e-5)
    assert info_cc["CYL"] == pytest.approx(np.pi * R_MM**2 * height / 1000, rel=5e-4)
    # uneven spacing: caps of 1.25 mm below and 2.5 mm above
    assert info_cc["UNEVEN"] == pytest.approx(100 * (15 + 1.25 + 2.5) / 1000, rel=1e-9)
    # crossing squares on a plane: the even-odd region, 100 + 100 - 2 * 25 mm^2, 6 mm tall
    assert info_cc["CROSSING"] == pytest.approx(150 * 6 / 1000, rel=1e-9)
    for name, cc in info_cc.items():
        s = dvh[name]
        assert s["outside_volume_cc"] == pytest.approx(0.0, abs=1e-9)
        assert cc == pytest.approx(s["volume_cc"], abs=1e-4)  # info rounds to 4 decimals
        # the DVH's total (cumulative volume at its lowest dose) is that volume too
        assert s["dvh"]["volume_cc"][0] == pytest.approx(s["volume_cc"], rel=1e-6)


def test_info_and_dvh_volumes_agree_on_the_sample_case(capsys: pytest.CaptureFixture[str]) -> None:
    info_cc, dvh = _reports(SAMPLE, capsys)
    assert info_cc and set(info_cc) == set(dvh)
    for name, cc in info_cc.items():
        assert cc == pytest.approx(dvh[name]["volume_cc"], abs=1e-4), name
