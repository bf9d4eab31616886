"""Fourth review (this session's features, ``docs/safety.md``): exact margins, the plan-maximum
line and ``protocol.limit_implausible``. Real DICOM files written into ``tmp_path``; volumes
against the closed-form Minkowski sum of a box and a ball (Steiner formula)."""

from __future__ import annotations

import numpy as np
import pytest

from rtcheck.model import Contour, Roi
from rtcheck.protocol import load_protocol
from rtcheck.result import Status
from tests.protocol_files import write_protocol
from tests.safety_cases import CaseSpec, check_spec, rows
from tests.test_margins import steiner_cc


def _protocol(tmp_path, body: str):
    return load_protocol(str(write_protocol(tmp_path, "review4", body)))


# ----------------------------------------------------------------------------- margins
A, B = 20.0, 16.0
X0, Y0 = -40.3, -40.7
PART_PLANES = ((-30.0, -27.0, -24.0), (20.0, 23.0, 26.0))  # slabs 9 mm thick, 41 mm apart


def _two_part_box() -> Roi:
    """One ROI drawn as two boxes on 3 mm planes with a 41 mm gap between them."""
    contours = []
    for planes in PART_PLANES:
        for z in planes:
            pts = [[X0, Y0, z], [X0 + A, Y0, z], [X0 + A, Y0 + B, z], [X0, Y0 + B, z]]
            contours.append(Contour(np.array(pts)))
    return Roi(9, "Stomach", "ORGAN", contours=tuple(contours))


GROWN = """\
derived:
  Stomach_Grown: {expression: "expand(Stomach, 5)", prefer: derived}
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 100},
         source: T1}
      - {structure: Stomach_Grown, metric: "V0Gy[cc]", comparator: "<", limits: {limit: 1000},
         source: T1}
"""


def test_exact_margin_of_two_parts_reports_no_gap_of_its_own(tmp_path) -> None:
    """The exact margin samples planes 0.5 mm apart; between two grown parts those planes are
    empty. That is no uncontoured section: the old code reported a WARNING structure.z_gap
    on 'expand(Stomach, 5)' ("contour spacing 0.5 mm ... if the organ continues there")."""
    proto = _protocol(tmp_path, GROWN)
    result = check_spec(CaseSpec().with_rois(_two_part_box()), tmp_path / "case", proto)
    (row,) = rows(result, "Stomach_Grown")
    assert row.status is Status.PASS
    assert row.value == pytest.approx(2 * steiner_cc(A, B, 9.0, 5.0), rel=5e-3)
    leaked = [f for f in result.findings if "expand(" in (f.subject or "") + f.message]
    assert {f.code for f in leaked} <= {"structure.derived"}


EMPTY_GROUP = """\
derived:
  GTV_Grown: {expression: "expand(GTV, 3)", prefer: derived}
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 100},
         source: T1}
      - {structure: GTV_Grown, metric: "V0Gy[cc]", comparator: "<", limits: {limit: 1000},
         source: T1}
"""


def test_margin_of_an_empty_target_group_is_not_called_a_voxel_margin(tmp_path) -> None:
    """No GTV in the plan: expand(GTV, 3) is empty, exactly. The old code sent it to the voxel
    margin and warned that it was "not a margin of ROIs" and could be too small."""
    proto = _protocol(tmp_path, EMPTY_GROUP)
    spec = CaseSpec().with_rois(drop=["GTV1"])
    result = check_spec(spec, tmp_path / "case", proto)
    (row,) = rows(result, "GTV_Grown")
    assert row.status is not Status.PASS
    assert not [f for f in result.findings if f.code == "structure.margin_approximate"]
    assert [f for f in result.findings if f.code == "structure.empty_target_group"]


# ----------------------------------------------------------------------------- plan maximum
def test_plan_maximum_names_only_a_row_that_judged_it(tmp_path) -> None:
    """RTOG 0915 (4 fx) judges "PTV max = global max" in row global_max_in_PTV. With GTV
    lesions only, that row is not evaluated ("no PTV lesions"): the plan-maximum line must not
    say it was judged by it (old code: "(judged by protocol row global_max_in_PTV)")."""
    from rtcheck.report.common import plan_maximum_text

    gtv_only = CaseSpec(fractions=4, prescriptions=(("GTV1", 40.0, 2),)).with_rois(drop=["PTV1"])
    result = check_spec(gtv_only, tmp_path / "gtv", "rtog0915")
    (row,) = [c for c in result.constraints if c.id.startswith("global_max_in_PTV")]
    assert row.status is Status.NOT_EVALUATED
    pm = result.lesions[0].plan_maximum
    assert pm is not None and pm.judged_by is None
    assert "judged by" not in plan_maximum_text(pm)
    with_ptv = check_spec(CaseSpec(fractions=4), tmp_path / "ptv", "rtog0915")
    (row,) = [c for c in with_ptv.constraints if c.id.startswith("global_max_in_PTV")]
    assert row.status is not Status.NOT_EVALUATED
    assert with_ptv.lesions[0].plan_maximum.judged_by == row.id


# ----------------------------------------------------------------------------- limits
THRESHOLDS = """\
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "V2000Gy[cc]", comparator: "<", limits: {limit: 0.35},
         source: T1}
      - {structure: Esophagus, metric: "V2000cGy[cc]", comparator: "<", limits: {limit: 5},
         source: T1}
      - {structure: SpinalCord, metric: "V20Gy[cc]", comparator: "<", limits: {limit: 0.35},
         source: T1}
"""


def test_dose_threshold_in_cgy_written_as_gy_is_implausible(tmp_path) -> None:
    """V2000Gy[cc] < 0.35 (20 Gy written in cGy) counts the volume above 2000 Gy: always 0,
    the row always passes. The old code warned only about the limit, not the metric's dose."""
    proto = _protocol(tmp_path, THRESHOLDS)
    result = check_spec(CaseSpec(), tmp_path / "case", proto)
    (typo,) = rows(result, "SpinalCord")[:1]
    assert typo.metric == "V2000Gy[cc]" and typo.status is Status.PASS and typo.value == 0
    warned = [f.message for f in result.findings if f.code == "protocol.limit_implausible"]
    assert len(warned) == 1 and "V2000Gy[cc]" in warned[0] and "2000 Gy" in warned[0]
