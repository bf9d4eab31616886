"""Contour volume (slab model) against closed forms and the Nelms slab-model values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtcheck.io.dicom import read_structures
from rtcheck.model import Contour, Roi
from rtcheck.volume import plane_area, polygon_area, roi_volume_cc
from tests.dicom_factory import square

DATA = Path(__file__).parent / "data"


def _roi(*contours: np.ndarray) -> Roi:
    return Roi(1, "R", contours=tuple(Contour(c) for c in contours))


def test_polygon_area_orientation_independent() -> None:
    sq = square(0, 0, 5, 0)
    assert polygon_area(sq) == pytest.approx(100.0)
    assert polygon_area(sq[::-1]) == pytest.approx(100.0)


def test_even_odd_holes_and_islands() -> None:
    outer, hole, island = square(0, 0, 10, 0), square(0, 0, 4, 0), square(0, 0, 1, 0)
    far = square(50, 0, 2, 0)
    assert plane_area([outer, hole]) == pytest.approx(400 - 64)
    assert plane_area([outer, hole, island]) == pytest.approx(400 - 64 + 4)
    assert plane_area([outer, far]) == pytest.approx(400 + 16)


def test_slab_model_box_with_end_caps() -> None:
    # 10 x 10 mm square on planes z = 0, 2, 4: slabs extend 1 mm beyond the ends -> 6 mm tall
    roi = _roi(*(square(0, 0, 5, z) for z in (0, 2, 4)))
    assert roi_volume_cc(roi) == pytest.approx(100 * 6 / 1000)


def test_gap_between_parts_not_filled() -> None:
    # two 3-plane blocks 2 mm apart internally, separated by a 20 mm gap
    zs = (0, 2, 4, 24, 26, 28)
    roi = _roi(*(square(0, 0, 5, z) for z in zs))
    assert roi_volume_cc(roi) == pytest.approx(2 * 100 * 6 / 1000)


def test_single_plane_needs_a_thickness() -> None:
    roi = _roi(square(0, 0, 5, 0))
    assert roi_volume_cc(roi) is None
    assert roi_volume_cc(roi, single_plane_thickness_mm=3.0) == pytest.approx(0.3)
    assert roi_volume_cc(Roi(2, "empty")) == 0.0


@pytest.mark.parametrize("name", ["Sphere_20_0"])
def test_nelms_slab_model_volume(name: str) -> None:
    table = json.loads((DATA / "nelms2015" / "slab_volumes.json").read_text())
    roi = read_structures(DATA / "nelms2015" / f"{name}.dcm").by_number(2)
    assert roi_volume_cc(roi) == pytest.approx(table[name], rel=1e-9)
    # and within 1 % of the exact sphere (R = 12 mm) with end caps
    assert roi_volume_cc(roi) == pytest.approx(4 / 3 * np.pi * 1.2**3, rel=0.01)
