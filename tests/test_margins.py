"""Exact 3-D margins of contour structures (``rtcheck.geometry.margins``) against the
closed-form Minkowski sum of a box and a ball (Steiner formula), directly and through a
protocol's derived ``expand``/``ring`` structures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtcheck.geometry.margins import expanded_stack
from rtcheck.geometry.planes import plane_stack
from rtcheck.model import Contour, Roi
from rtcheck.protocol import load_protocol
from rtcheck.result import Status
from tests.protocol_files import write_protocol
from tests.safety_cases import CaseSpec, check_spec, rows

A, B, C = 20.0, 16.0, 21.0  # box edges (mm); C is 7 contour planes of 3 mm
X0, Y0, Z0 = -30.3, -40.7, -10.5  # away from the PTV, not on grid planes


def box_roi(number: int = 9, name: str = "Stomach") -> Roi:
    """A box drawn as in a planning system: one contour every 3 mm, slabs cover Z0..Z0+C."""
    contours = []
    for z in np.arange(Z0 + 1.5, Z0 + C, 3.0):
        pts = [[X0, Y0, z], [X0 + A, Y0, z], [X0 + A, Y0 + B, z], [X0, Y0 + B, z]]
        contours.append(Contour(np.array(pts)))
    return Roi(number, name, "ORGAN", contours=tuple(contours))


def steiner_cc(a: float, b: float, c: float, r: float) -> float:
    """Volume (cc) of an a x b x c mm box grown by a ball of radius r (Steiner formula:
    the box, its faces, its edges as quarter cylinders, its corners as a ball)."""
    faces = 2 * (a * b + b * c + a * c) * r
    edges = math.pi * r * r * (a + b + c)
    return (a * b * c + faces + edges + 4.0 / 3.0 * math.pi * r**3) / 1000.0


def minkowski_cc(r: float) -> float:
    """Volume of this module's box grown by r."""
    return steiner_cc(A, B, C, r)


@pytest.mark.parametrize("r", [1.0, 2.0, 5.0, 10.0, 20.0])
def test_expanded_box_is_the_minkowski_sum(r: float) -> None:
    grown = expanded_stack([plane_stack(box_roi())], r, 0.5, "E")
    assert grown.volume_cc == pytest.approx(minkowski_cc(r), rel=1e-3)


def test_expansion_of_two_parts_is_their_union() -> None:
    """Two boxes 30 mm apart grown by 5 mm stay apart: twice the single expansion."""
    one = plane_stack(box_roi())
    moved = Roi(8, "B2", "ORGAN", contours=tuple(
        Contour(c.points + np.array([0.0, 0.0, C + 30.0])) for c in box_roi().contours
    ))  # fmt: skip
    both = expanded_stack([one, plane_stack(moved)], 5.0, 0.5, "E")
    assert both.volume_cc == pytest.approx(2 * minkowski_cc(5.0), rel=1e-3)


BODY = """\
derived:
  Stomach_Ring: {expression: "ring(Stomach, 2, 7)", prefer: derived}
  Stomach_Grown: {expression: "expand(Stomach, 5)", prefer: derived}
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 100},
         source: T1}
      - {structure: Stomach_Ring, metric: "V0Gy[cc]", comparator: "<", limits: {limit: 1000},
         source: T1}
      - {structure: Stomach_Grown, metric: "V0Gy[cc]", comparator: "<", limits: {limit: 1000},
         source: T1}
"""


def test_protocol_margins_are_exact_and_not_flagged(tmp_path) -> None:
    """Through ``rtcheck check``: the voxel method read these 5-15 % low on 2.5 mm cells."""
    path = write_protocol(tmp_path, "margins", BODY)
    spec = CaseSpec().with_rois(box_roi())
    result = check_spec(spec, tmp_path / "case", load_protocol(str(path)))
    (ring,) = rows(result, "Stomach_Ring")
    (grown,) = rows(result, "Stomach_Grown")
    assert ring.status is Status.PASS and grown.status is Status.PASS
    assert ring.value == pytest.approx(minkowski_cc(7.0) - minkowski_cc(2.0), rel=5e-3)
    assert grown.value == pytest.approx(minkowski_cc(5.0), rel=5e-3)
    assert not [f for f in result.findings if f.code == "structure.margin_approximate"]


def test_margin_of_a_difference_keeps_the_voxel_method_and_says_so(tmp_path) -> None:
    """`expand(Stomach - PTV1, 5)` is not a union of ROIs: the voxel margin is used, and
    the WARNING structure.margin_approximate says its volume may be small."""
    body = BODY.replace('"expand(Stomach, 5)"', '"expand(Stomach - PTV1, 5)"')
    path = write_protocol(tmp_path, "margins", body)
    spec = CaseSpec().with_rois(box_roi())
    result = check_spec(spec, tmp_path / "case", load_protocol(str(path)))
    warn = [f for f in result.findings if f.code == "structure.margin_approximate"]
    assert len(warn) == 1 and "expand" in warn[0].message
