"""The verdict rules on synthetic single-plan cases: pass/fail/levels/margins, not evaluated
with reasons (missing, ambiguous, outside the grid, unknown prescription, no table), required
structures, user maps, derived structures."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from evaluation_synth import case, cylinder, dose, empty_roi, gaussian, grid, plan, sample, sphere

from rtcheck.dvh.compute import PreparedDose, compute_dvh
from rtcheck.errors import ConfigError, Finding, Severity
from rtcheck.evaluate import Outcome, RowSpec, decide
from rtcheck.pipeline import CheckOptions, check_case
from rtcheck.protocol import Comparator
from rtcheck.result import EXIT_CODES, Status, Verdict
from tests.protocol_files import write_protocol

G = grid((-60.0, -60.0, -60.0), (60.0, 60.0, 60.0), 2.0)
S = math.sqrt((17.0**2 - 11.0**2) / math.log(2.0))
PEAK = 50.0 * math.exp(11.0**2 / S**2)  # 50 Gy at 11 mm, 25 Gy at 17 mm


def make(
    rois=None,
    fractions: int | None = 5,
    rx=(("PTV1", 50.0, 1),),
    dose_fn=None,
):
    p = plan("P1", fractions, list(rx))
    if rois is None:
        rois = [
            sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
            cylinder(2, "SpinalCord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 50.0),
            cylinder(3, "Esophagus", "ORGAN", 25.0, 0.0, 8.0, -40.0, 40.0),
        ]
    values = sample(G, dose_fn or gaussian((0.0, 0.0, 0.0), PEAK, S))
    return case(rois, [dose(G, values, p)], [p])


def rows(result, structure: str) -> list:
    return [c for c in result.all_constraints if c.structure == structure]


# ----------------------------------------------------------------------------- judging
def test_levels_margins_and_boundaries() -> None:
    spec = RowSpec(
        "x", "Cord", "Max[Gy]", "Gy", Comparator.LT, (("optimal", 20.0), ("mandatory", 25.0))
    )
    best = spec.judged(18.0, "Cord", "exact")
    assert (best.status, best.level, best.margin) == (Status.PASS, "optimal", 7.0)
    lower = spec.judged(22.0, "Cord", "exact")
    assert (lower.status, lower.level, lower.margin) == (Status.PASS, "mandatory", 3.0)
    beyond = spec.judged(25.0, "Cord", "exact")  # "< 25" is not met at 25
    assert (beyond.status, beyond.level, beyond.margin) == (Status.FAIL, None, 0.0)
    low = RowSpec("y", "Lungs", "CV7Gy[cc]", "cc", Comparator.GE, (("limit", 1500.0),))
    assert low.judged(1600.0, "Lungs", "exact").margin == 100.0
    assert low.judged(1400.0, "Lungs", "exact").status is Status.FAIL
    skipped = spec.skipped("why", None, "not found")
    assert (skipped.status, skipped.value, skipped.reason) == (Status.NOT_EVALUATED, None, "why")


def test_verdict_rules() -> None:
    spec = RowSpec("x", "Cord", "Max[Gy]", "Gy", Comparator.LT, (("limit", 20.0),))
    ok = Outcome(spec.judged(10.0, "Cord", "exact"))
    bad = Outcome(spec.judged(30.0, "Cord", "exact"))
    optional = Outcome(spec.skipped("not contoured"), blocking=False)
    required = Outcome(spec.skipped("required structure not contoured"))
    assert decide([ok, optional], [])[0] is Verdict.PASS
    assert decide([ok, bad, required], [])[0] is Verdict.FAIL
    verdict, why = decide([ok, required], [])
    assert verdict is Verdict.INCOMPLETE and "could not be evaluated" in why[0].message
    error = Finding("dose.beams_missing", "a beam has no dose", Severity.ERROR)
    assert decide([ok], [error])[0] is Verdict.INCOMPLETE
    assert decide([optional], [])[0] is Verdict.INCOMPLETE  # nothing evaluated at all
    assert EXIT_CODES == {"pass": 0, "fail": 1, "error": 2, "incomplete": 3}


# ----------------------------------------------------------------------------- whole cases
def test_clean_plan_passes_and_absent_optional_organs_do_not_block() -> None:
    r = check_case(make(), "tg101")
    assert r.verdict is Verdict.PASS and r.exit_code == 0
    cord = {c.metric: c for c in rows(r, "SpinalCord")}
    assert set(cord) == {"D0.35cc[Gy]", "Max[Gy]", "D1.2cc[Gy]"}
    mx = cord["Max[Gy]"]
    assert mx.status is Status.PASS and mx.level == "limit" and mx.match == "exact"
    assert mx.margin == pytest.approx(mx.limits[-1].value - mx.value)
    assert "point max" in (mx.note or "")
    heart = rows(r, "Heart")
    assert heart and all(c.status is Status.NOT_EVALUATED for c in heart)
    assert all(c.reason.startswith("not contoured") for c in heart)
    assert r.plan.fractions == 5 and r.plan.fractions_source == "RT Plan"


def test_organ_values_match_the_dvh() -> None:
    c = make()
    r = check_case(c, "tg101")
    roi = c.structure_set.by_name("Esophagus")
    dvh = compute_dvh(PreparedDose.of(c.doses[0]), roi)
    got = {x.metric: x.value for x in rows(r, "Esophagus")}
    assert got["D5cc[Gy]"] == pytest.approx(dvh.dose_at_volume_cc(5.0))
    assert got["Max[Gy]"] == pytest.approx(dvh.max_gy)


def test_failing_organ_fails_the_plan() -> None:
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 14.0, 4.0, -50.0, 50.0),
    ]
    r = check_case(make(rois), "tg101")
    assert r.verdict is Verdict.FAIL and r.exit_code == 1
    mx = next(c for c in rows(r, "SpinalCord") if c.metric == "Max[Gy]")
    assert mx.status is Status.FAIL and mx.level is None and mx.margin < 0


def test_missing_required_structure_makes_the_plan_incomplete() -> None:
    rois = [sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0)]
    r = check_case(make(rois), "tg101")
    assert r.verdict is Verdict.INCOMPLETE and r.exit_code == 3
    cord = rows(r, "SpinalCord")
    assert all(c.reason.startswith("required structure not contoured") for c in cord)
    assert any(f.code == "verdict.incomplete" for f in r.findings)


def test_an_empty_roi_is_not_contoured() -> None:
    rois = [sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0), empty_roi(2, "SpinalCord")]
    r = check_case(make(rois), "tg101")
    assert r.verdict is Verdict.INCOMPLETE
    assert all("no closed planar contour" in c.reason for c in rows(r, "SpinalCord"))


def test_require_option() -> None:
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 50.0),
    ]
    assert check_case(make(rois), "tg101").verdict is Verdict.PASS
    r = check_case(make(rois), "tg101", CheckOptions(require=("Esophagus",)))
    assert r.verdict is Verdict.INCOMPLETE
    with pytest.raises(ConfigError, match="no constraint on 'Oesophagus'"):
        check_case(make(rois), "tg101", CheckOptions(require=("Oesophagus",)))


def test_ambiguous_structure_is_not_evaluated() -> None:
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "Spinal Cord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 50.0),
        cylinder(3, "Spinal_Cord", "ORGAN", 0.0, 42.0, 5.0, -50.0, 50.0),
    ]
    r = check_case(make(rois), "tg101")
    cord = rows(r, "SpinalCord")
    assert all(c.status is Status.NOT_EVALUATED and c.match == "ambiguous" for c in cord)
    assert "ambiguous" in cord[0].reason
    assert r.verdict is Verdict.INCOMPLETE
    # a names map resolves it
    fixed = check_case(make(rois), "tg101", CheckOptions(names=(("SpinalCord", "Spinal_Cord"),)))
    cord = rows(fixed, "SpinalCord")
    assert all(c.status is Status.PASS and c.match == "user map" for c in cord)
    assert cord[0].matched_roi == "Spinal_Cord"


def test_structure_leaving_the_dose_grid_is_not_evaluated() -> None:
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 90.0),
    ]
    r = check_case(make(rois), "tg101")
    cord = rows(r, "SpinalCord")
    assert all("outside the dose grid" in c.reason for c in cord)
    assert r.verdict is Verdict.INCOMPLETE


def test_fraction_count_without_a_table() -> None:
    r = check_case(make(), "tg101", CheckOptions(fractions=8))
    assert r.verdict is Verdict.INCOMPLETE and r.exit_code == 3
    assert r.plan.fractions == 8 and r.plan.fractions_source == "--fractions"
    (row,) = r.constraints
    assert row.status is Status.NOT_EVALUATED and "no table for 8 fractions" in row.reason
    assert any(f.code == "fractions.overridden" for f in r.findings)
    unknown = check_case(make(fractions=None), "tg101")
    assert unknown.verdict is Verdict.INCOMPLETE
    assert "number of fractions unknown" in unknown.constraints[0].reason
    given = check_case(make(fractions=None), "tg101", CheckOptions(fractions=5))
    assert given.verdict is Verdict.PASS


def test_unknown_prescription_blocks_target_rules() -> None:
    c = make(rx=(("Site 1", None, None),))
    r = check_case(c, "rtog0813")
    (lesion,) = r.lesions
    assert lesion.prescription_gy is None
    v100 = next(x for x in lesion.constraints if x.metric == "V100%[%]")
    assert v100.status is Status.NOT_EVALUATED and "prescription" in v100.reason
    eso = next(x for x in rows(r, "Esophagus") if x.metric == "Max[%]")
    assert eso.status is Status.NOT_EVALUATED and "unknown for PTV1" in eso.reason
    assert r.verdict is Verdict.INCOMPLETE
    given = check_case(c, "rtog0813", CheckOptions(rx=(("PTV1", 50.0),)))
    (lesion,) = given.lesions
    assert lesion.prescription_source == "--rx"
    v100 = next(x for x in lesion.constraints if x.metric == "V100%[%]")
    assert v100.status is Status.PASS and v100.value == pytest.approx(100.0)
    conformity = {x.metric: x for x in lesion.constraints if x.id.startswith("conformity")}
    assert set(conformity) == {"R100%", "R50%", "D2cm[%]"}
    r100 = conformity["R100%"]
    assert r100.value == pytest.approx(lesion.metrics["CI_RTOG"])
    assert [lim.level for lim in r100.limits] == ["none", "minor"]


def test_percent_of_rx_organ_limit_uses_the_strictest_prescription() -> None:
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        sphere(2, "PTV2", "PTV", (0.0, -35.0, 0.0), 8.0),
        cylinder(3, "Esophagus", "ORGAN", 25.0, 0.0, 8.0, -40.0, 40.0),
    ]
    c = make(rois, rx=(("PTV1", 50.0, 1), ("PTV2", 40.0, 2)))
    r = check_case(c, "rtog0813")
    eso = next(x for x in rows(r, "Esophagus") if x.metric == "Max[%]")
    mx = next(x for x in rows(r, "Esophagus") if x.metric == "D5cc[Gy]")
    assert "lowest, 40 Gy" in eso.note
    dvh = compute_dvh(PreparedDose.of(c.doses[0]), rois[2])
    assert eso.value == pytest.approx(100.0 * dvh.max_gy / 40.0)
    # The synthetic dose covers PTV1 only: PTV2 receives ~0 Gy of its 40 Gy, an implausible
    # dose (ERROR dose.lesion_below_prescription), so nothing on this dose may pass.
    assert mx.value is not None and mx.value < 5.0
    assert mx.status is Status.NOT_EVALUATED and "dose in doubt" in (mx.reason or "")


def test_global_maximum_must_lie_in_a_target() -> None:
    def hot_outside(x, y, z):
        return gaussian((0, 0, 0), PEAK, S)(x, y, z) + gaussian((0, 30, 0), 95.0, 3.0)(x, y, z)

    r = check_case(make(dose_fn=hot_outside), "rtog0813")
    (row,) = [c for c in r.constraints if c.id.startswith("global_max")]
    assert row.status is Status.FAIL and r.verdict is Verdict.FAIL
    ok = check_case(make(), "rtog0813")
    (row,) = [c for c in ok.constraints if c.id.startswith("global_max")]
    assert row.status is Status.PASS


def test_protocol_with_target_rules_but_no_target() -> None:
    rois = [
        sphere(1, "Tumour", "ORGAN", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 50.0),
    ]
    r = check_case(make(rois, rx=(("Tumour", 50.0, 1),)), "rtog0813")
    assert not r.lesions
    row = next(c for c in r.constraints if c.id.startswith("target."))
    assert "no target" in row.reason and r.verdict is Verdict.INCOMPLETE


def test_derived_lungs_from_left_and_right() -> None:
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 50.0),
        sphere(3, "Lung_L", "ORGAN", (30.0, 0.0, 0.0), 18.0),
        sphere(4, "Lung_R", "ORGAN", (-30.0, 0.0, 0.0), 18.0),
    ]
    c = make(rois)
    r = check_case(c, "tg101")
    lungs = {x.metric: x for x in rows(r, "Lungs")}
    cv = lungs["CV12.5Gy[cc]"]
    assert cv.match == "derived" and cv.matched_roi == "Lung_L + Lung_R"
    prepared = PreparedDose.of(c.doses[0])
    parts = [compute_dvh(prepared, roi) for roi in rois[2:]]
    # disjoint lungs: volume below 12.5 Gy of the union = sum of the parts (independent DVHs)
    expected = sum(d.volume_cc - d.volume_at_dose_cc(12.5) for d in parts)
    assert cv.value == pytest.approx(expected, rel=0.01)
    assert any(f.code == "structure.derived" for f in r.findings)


UNCONFIRMED_TABLES = """\
tables:
  1:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 100},
         source: T1}
      - {structure: Bladder_Wall, metric: "Max[Gy]", comparator: "<", limits: {limit: 100},
         source: T1, confirmed: false, unconfirmed_reason: "value not confirmed (test)"}
      - {structure: Bladder_Wall, metric: "D15cc[Gy]", comparator: "<", limits: {limit: 100},
         source: T1, confirmed: false, unconfirmed_reason: "value not confirmed (test)"}
"""


def test_unconfirmed_limits_are_not_judged(tmp_path: Path) -> None:
    """A centre's file may keep a value it has not confirmed (`confirmed: false`): shown with
    its computed value, never judged, and the plan cannot pass (limits easily met here)."""
    rois = [
        sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0),
        cylinder(2, "SpinalCord", "ORGAN", 0.0, 40.0, 5.0, -50.0, 50.0),
        sphere(3, "Bladder_Wall", "ORGAN", (0.0, -38.0, 0.0), 17.0),
    ]
    path = write_protocol(tmp_path, "unconfirmed", UNCONFIRMED_TABLES)
    r = check_case(make(rois, fractions=1), str(path))
    rows_ = rows(r, "Bladder_Wall")
    assert rows_ and all(x.status is Status.NOT_EVALUATED for x in rows_)
    assert all(x.reason.startswith("limit unconfirmed") for x in rows_)
    assert all("computed value" in (x.note or "") for x in rows_)
    assert r.verdict is not Verdict.PASS


def test_result_json_contract_round_trip() -> None:
    import json

    r = check_case(make(), "rtog0813", CheckOptions(rx=(("PTV1", 50.0),)))
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert doc["verdict"] == r.verdict.value
    assert doc["plan"]["prescriptions"] == [{"target": "PTV1", "dose_gy": 50.0, "source": "--rx"}]
    assert doc["lesions"][0]["metrics"]["CI_Paddick"] is not None
    curves = {d["structure"]: d for d in doc["dvhs"]}
    assert curves["PTV1"]["kind"] == "target" and curves["SpinalCord"]["kind"] == "oar"
    v = np.asarray(curves["PTV1"]["volume_pct"])
    assert v[0] == pytest.approx(100.0) and np.all(np.diff(v) <= 1e-9)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        CheckOptions(fractions=0)
    with pytest.raises(ConfigError):
        CheckOptions(alpha_beta=-1.0)
    with pytest.raises(ConfigError, match="not a target"):
        check_case(make(), "tg101", CheckOptions(rx=(("PTV9", 40.0),)))
    assert replace(CheckOptions(), fractions=3).fractions == 3


def test_derived_ring_around_the_targets(tmp_path: Path) -> None:
    body = """\
derived:
  PTV_Shell: {expression: "ring(PTV, 0, 10)", prefer: derived}
tables:
  5:
    constraints:
      - {structure: PTV_Shell, metric: "Max[Gy]", comparator: "<", limits: {limit: 200},
         source: T1}
      - {structure: PTV_Shell, metric: "V1Gy[cc]", comparator: "<", limits: {limit: 1000},
         source: T1}
"""
    path = write_protocol(tmp_path, "ringtest", body)
    r = check_case(make(), str(path))
    rows_ = {c.metric: c for c in rows(r, "PTV_Shell")}
    mx, vol = rows_["Max[Gy]"], rows_["V1Gy[cc]"]
    assert mx.match == "derived" and mx.matched_roi == "ring((PTV1), 0, 10)"

    # the shell's highest dose is at the PTV surface (r = 10 mm); cells the surface cuts are
    # sampled at their centre, up to half a cell diagonal inside (conservative for a maximum)
    def dose_at(r: float) -> float:
        return PEAK * math.exp(-(r**2) / S**2)

    assert dose_at(10.0) * 0.995 <= mx.value <= dose_at(10.0 - 0.6)
    # the whole shell receives > 1 Gy: V1Gy = the shell around the sphere *as contoured*.
    # Its slab model has flat end caps, so the exact 10 mm shell (30.47 cc; a Monte Carlo of
    # the distance to the slabs gives 30.43 +- 0.08) is ~4 % above the ball's
    # 4/3 pi (20^3 - 10^3); tests/test_margins.py checks exactness against closed forms.
    ball_shell = 4 / 3 * math.pi * (20**3 - 10**3) / 1000
    assert ball_shell < vol.value < ball_shell * 1.05
    # a margin of ROIs is exact (rtcheck.geometry.margins): nothing to disclose
    assert not [f for f in r.findings if f.code == "structure.margin_approximate"]
