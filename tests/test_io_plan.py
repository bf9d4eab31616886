"""RT Plan reader: pydicom's rtplan.dcm and rtplan_truncated.dcm, synthetic plans."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from rtcheck.errors import InputError
from rtcheck.io.dicom import load_plan, read_plan
from tests.dicom_factory import make_plan, uid


def test_pydicom_rtplan() -> None:
    plan = read_plan(get_testdata_file("rtplan.dcm"))
    assert plan.label == "Plan1" and plan.name == "Plan1"
    assert plan.fractions_planned == 30
    assert [
        (p.number, p.reference_type, p.description, p.target_dose_gy) for p in plan.prescriptions
    ] == [
        (1, "ORGAN_AT_RISK", "iso", None),
        (2, "TARGET", "PTV", pytest.approx(30.826203)),
    ]
    assert len(plan.target_prescriptions) == 1
    beam = plan.beams[0]
    assert (beam.number, beam.name, beam.beam_type, beam.radiation_type) == (
        1,
        "Field 1",
        "STATIC",
        "PHOTON",
    )
    assert beam.meterset == pytest.approx(116.0036697)
    assert beam.isocenter_mm == pytest.approx(
        (235.711172833292, 244.135437110782, -724.97815409918)
    )
    assert plan.referenced_structure_set_uid == "1.2.333.444.55.6.7777.88888"


def test_truncated_plan_is_refused() -> None:
    path = get_testdata_file("rtplan_truncated.dcm")
    with pytest.raises(InputError) as exc:
        read_plan(path)
    text = str(exc.value)
    assert text.startswith(path) and "truncated" in text and "BeamSequence" in text


def test_multi_target_plan(tmp_path: Path) -> None:
    path = make_plan(
        tmp_path / "rp.dcm",
        prescriptions=[("PTV_1", 50.0, 1), ("PTV_2", 54.0, 2), ("PTV_3", None, 3)],
        struct_uid=uid("ss-x"),
    )
    plan = read_plan(path)
    assert [p.target_dose_gy for p in plan.prescriptions] == [50.0, 54.0, None]
    assert [p.roi_number for p in plan.prescriptions] == [1, 2, 3]
    assert [p.description for p in plan.target_prescriptions] == ["PTV_1", "PTV_2"]
    assert plan.fractions_planned == 5 and plan.referenced_structure_set_uid == uid("ss-x")
    assert plan.beams[0].isocenter_mm == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("fractions", [(5, 3), (None,), ()])
def test_fractions_unknown_is_a_finding(tmp_path: Path, fractions: tuple) -> None:
    plan, findings = load_plan(make_plan(tmp_path / "rp.dcm", fractions=fractions))
    assert plan.fractions_planned is None
    assert [f.code for f in findings] == ["plan.fractions_unknown"]
