"""Dose sets and composites on doses made in code, against closed-form values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtcheck.composite import composite, sample_composite
from rtcheck.doseset import BEAM_AGREEMENT_TOL, DoseSet, PlanDose, dose_set, plan_doses
from rtcheck.errors import LinkError, Severity, UnsupportedError
from rtcheck.geometry.resample import sample_points, voxel_centres
from rtcheck.model import (
    Beam,
    Case,
    Contour,
    DoseGrid,
    GridGeometry,
    Patient,
    Plan,
    Prescription,
    Roi,
)
from rtcheck.radiobiology import eqd2

FOR = "1.2.3.4.5.6.7.0"
ORIENT = {
    "HFS": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "FFS": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def geo(origin, spacing, shape, orient="HFS") -> GridGeometry:
    r, c, s = ORIENT[orient]
    return GridGeometry(tuple(map(float, origin)), tuple(map(float, spacing)), r, c, s, shape)


def f1(p: np.ndarray) -> np.ndarray:
    return 20.0 + 0.1 * p[..., 0] + 0.05 * p[..., 1] - 0.02 * p[..., 2]


def f2(p: np.ndarray) -> np.ndarray:
    return 10.0 - 0.03 * p[..., 0] + 0.08 * p[..., 2]


def dose(
    g: GridGeometry,
    fn,
    *,
    uid: str,
    plan: str | None,
    stype="PLAN",
    beams=(),
    dtype="PHYSICAL",
    frame=FOR,
) -> DoseGrid:
    values = fn(voxel_centres(g)) if callable(fn) else np.full(g.shape, float(fn))
    return DoseGrid(
        values,
        g,
        dose_type=dtype,
        summation_type=stype,
        referenced_plan_uid=plan,
        referenced_beam_numbers=tuple(beams),
        frame_of_reference_uid=frame,
        sop_instance_uid=uid,
        source=f"{uid}.dcm",
    )


def plan(uid: str, fx: int | None, beams=(), label=None, rx=()) -> Plan:
    return Plan(
        label=label or uid,
        sop_instance_uid=uid,
        fractions_planned=fx,
        beams=tuple(Beam(n, meterset=100.0) for n in beams),
        prescriptions=tuple(rx),
        frame_of_reference_uid=FOR,
    )


def case(plans=(), doses=()) -> Case:
    return Case(Patient("P1"), plans=tuple(plans), doses=tuple(doses))


def codes(findings) -> dict[str, Severity]:
    return {f.code: f.severity for f in findings}


G1 = geo((-30, -30, -30), (2.5, 2.5, 3.0), (21, 25, 25))  # x, y -30..30, z -30..30
G2 = geo((40, -20, 20), (2.0, 2.0, 2.0), (20, 21, 31), "FFS")  # x -20..40, y -20..20, z -18..20


# ------------------------------------------------------------------ recognition
def test_beam_doses_summed_equal_plan_dose() -> None:
    # Plan dose f1 + f2 delivered by two beams: f1 (beam 1) and f2 (beam 2) on the same grid.
    c = case(
        [plan("P", 5, beams=(1, 2))],
        [
            dose(G1, f1, uid="B1", plan="P", stype="BEAM", beams=(1,)),
            dose(G1, f2, uid="B2", plan="P", stype="BEAM", beams=(2,)),
        ],
    )
    (pd,) = plan_doses(c)
    np.testing.assert_allclose(
        pd.dose.dose_gy, f1(voxel_centres(G1)) + f2(voxel_centres(G1)), atol=1e-12
    )
    assert pd.fractions == 5 and set(pd.components) == {"B1", "B2"}
    assert "dose.beams_summed" in codes(pd.findings)


def test_plan_dose_preferred_and_beams_not_double_counted() -> None:
    total = lambda p: f1(p) + f2(p)  # noqa: E731
    c = case(
        [plan("P", 5, beams=(1, 2))],
        [
            dose(G1, total, uid="PD", plan="P"),
            dose(G1, f1, uid="B1", plan="P", stype="BEAM", beams=(1,)),
            dose(G1, f2, uid="B2", plan="P", stype="BEAM", beams=(2,)),
        ],
    )
    ds = dose_set(c)
    (pd,) = ds.plan_doses
    assert pd.components == ("PD",)
    np.testing.assert_allclose(pd.dose.dose_gy, total(voxel_centres(G1)), atol=1e-12)
    found = codes(ds.findings)
    assert found["dose.beams_not_added"] == Severity.INFO
    assert "dose.beams_disagree" not in found


def test_beams_disagreeing_with_plan_dose_flagged() -> None:
    # Beam 2 dose is 10 % short of the plan's share: max difference > 2 % of the plan max.
    total = lambda p: f1(p) + f2(p)  # noqa: E731
    short = lambda p: 0.9 * f2(p)  # noqa: E731
    c = case(
        [plan("P", 5, beams=(1, 2))],
        [
            dose(G1, total, uid="PD", plan="P"),
            dose(G1, f1, uid="B1", plan="P", stype="BEAM", beams=(1,)),
            dose(G1, short, uid="B2", plan="P", stype="BEAM", beams=(2,)),
        ],
    )
    found = codes(dose_set(c).findings)
    assert found["dose.beams_disagree"] == Severity.WARNING
    assert BEAM_AGREEMENT_TOL == 0.02


def test_missing_and_duplicate_beams() -> None:
    c = case(
        [plan("P", 3, beams=(1, 2, 3))],
        [
            dose(G1, f1, uid="B1", plan="P", stype="BEAM", beams=(1,)),
            dose(G1, f2, uid="B1b", plan="P", stype="BEAM", beams=(1,)),
            dose(G1, f2, uid="B2", plan="P", stype="BEAM", beams=(2,)),
        ],
    )
    ds = dose_set(c)
    found = codes(ds.findings)
    assert found["dose.beams_missing"] == Severity.ERROR  # beam 3
    assert found["dose.beam_duplicate"] == Severity.ERROR  # second dose of beam 1
    np.testing.assert_allclose(
        ds.plan_doses[0].dose.dose_gy, f1(voxel_centres(G1)) + f2(voxel_centres(G1)), atol=1e-12
    )


def test_beam_doses_on_different_grids_summed_by_interpolation() -> None:
    ga = geo((-10, -10, -10), (2.0, 2.0, 2.0), (11, 11, 11))
    gb = geo((10, -10, 10), (2.5, 2.5, 2.5), (9, 9, 9), "FFS")  # same box, other grid
    c = case(
        [plan("P", 5, beams=(1, 2))],
        [
            dose(ga, f1, uid="B1", plan="P", stype="BEAM", beams=(1,)),
            dose(gb, f2, uid="B2", plan="P", stype="BEAM", beams=(2,)),
        ],
    )
    (pd,) = plan_doses(c)
    pts = voxel_centres(pd.dose.geometry)
    np.testing.assert_allclose(pd.dose.dose_gy, f1(pts) + f2(pts), atol=1e-10)


def test_case_level_findings() -> None:
    c = case(
        [plan("A", 5), plan("NODOSE", 3), plan("NOFX", None)],
        [
            dose(G1, 10.0, uid="DA", plan="A"),
            dose(G1, 5.0, uid="DNOFX", plan="NOFX"),
            dose(G1, 99.0, uid="EFF", plan="A", dtype="EFFECTIVE"),
            dose(G1, 30.0, uid="MP", plan=None, stype="MULTI_PLAN"),
            dose(G2, 7.0, uid="GHOST", plan="X"),
            dose(G2, 1.0, uid="BRACHY", plan="A", stype="BRACHY"),
        ],
    )
    ds = dose_set(c)
    found = codes(ds.findings)
    assert found["dose.plan_without_dose"] == Severity.ERROR
    assert found["dose.fractionation_unknown"] == Severity.WARNING
    assert found["dose.not_physical"] == Severity.WARNING
    assert found["dose.multi_plan_not_added"] == Severity.INFO
    assert found["dose.plan_not_found"] == Severity.WARNING
    assert found["dose.summation_type_unsupported"] == Severity.ERROR
    labels = {pd.label: pd.fractions for pd in ds.plan_doses}
    assert labels == {"A": 5, "NOFX": None, "GHOST.dcm": None}


def test_fraction_dose_scaled_and_single_orphan_adopted() -> None:
    c = case([plan("P", 5)], [dose(G1, 2.0, uid="FX", plan="P", stype="FRACTION")])
    (pd,) = plan_doses(c)
    assert pd.dose.max_gy == pytest.approx(10.0)  # 2 Gy per fraction x 5
    c2 = case([plan("P", 5)], [dose(G1, 12.0, uid="D", plan=None)])
    ds = dose_set(c2)
    assert ds.plan_doses[0].fractions == 5
    assert codes(ds.findings)["dose.plan_assumed"] == Severity.WARNING


# ------------------------------------------------------------------ composites
def two_plans(fx_a: int, fx_b: int) -> DoseSet:
    c = case(
        [plan("A", fx_a), plan("B", fx_b)],
        [dose(G1, f1, uid="DA", plan="A"), dose(G2, f2, uid="DB", plan="B")],
    )
    return dose_set(c)


def test_physical_sum_on_different_grids_is_exact_for_linear_fields() -> None:
    ds = two_plans(5, 5)
    comp = ds.physical()
    pts = voxel_centres(comp.dose.geometry)
    in1 = np.all(
        (pts >= np.array(G1.bounds()[0]) - 1e-6) & (pts <= np.array(G1.bounds()[1]) + 1e-6), -1
    )
    in2 = np.all(
        (pts >= np.array(G2.bounds()[0]) - 1e-6) & (pts <= np.array(G2.bounds()[1]) + 1e-6), -1
    )
    expected = np.where(in1, f1(pts), 0.0) + np.where(in2, f2(pts), 0.0)
    np.testing.assert_allclose(comp.dose.dose_gy, expected, atol=1e-10)
    np.testing.assert_array_equal(comp.coverage, in1.astype(int) + in2.astype(int))
    assert (in1 & in2).any() and (in1 & ~in2).any() and (~in1 & ~in2).any()
    assert comp.fractions == 5 and comp.method == "physical" and comp.dose.dose_type == "PHYSICAL"
    assert comp.dose.summation_type == "MULTI_PLAN"
    assert comp.dose.geometry.spacing == (2.0, 2.0, 2.0)  # finest along each axis
    assert "finest" in comp.grid_description
    # exact point sampling (no intermediate grid)
    p = np.array([[0.3, 1.7, 5.2], [-25.0, 0.0, 0.0], [35.0, 0.0, 10.0], [100.0, 0, 0]])
    v, n = ds.sample(p)
    np.testing.assert_allclose(v, [f1(p[0]) + f2(p[0]), f1(p[1]), f2(p[2]), 0.0], atol=1e-10)
    np.testing.assert_array_equal(n, [2, 1, 1, 0])
    np.testing.assert_array_equal(comp.outside_all_grids(p), [False, False, False, True])


def test_physical_sum_refused_for_mixed_fractionation_unless_forced() -> None:
    ds = two_plans(1, 5)
    with pytest.raises(UnsupportedError, match="different numbers of fractions"):
        ds.physical()
    forced = ds.physical(force=True)
    assert codes(forced.findings)["sum.physical_forced"] == Severity.WARNING
    assert forced.fractions is None
    with pytest.raises(UnsupportedError):
        sample_composite(ds.plan_doses, np.zeros((1, 3)))


def test_eqd2_sum_of_uniform_plans_hand_computed() -> None:
    # Plan A 55 Gy/5 fx, plan B 30 Gy/1 fx, a/b = 3, both uniform over their grids.
    # A: d = 11, EQD2 = 55 * (11 + 3) / 5 = 154.  B: d = 30, EQD2 = 30 * (30 + 3) / 5 = 198.
    # Overlap: 154 + 198 = 352 Gy; A only: 154; B only: 198.
    c = case(
        [plan("A", 5), plan("B", 1)],
        [dose(G1, 55.0, uid="DA", plan="A"), dose(G2, 30.0, uid="DB", plan="B")],
    )
    comp = dose_set(c).composite_for_alpha_beta(3.0)
    assert comp.dose.dose_type == "EFFECTIVE" and comp.basis == "EQD2(a/b=3)"
    values = comp.dose.dose_gy
    assert values[comp.coverage == 2] == pytest.approx(352.0, rel=1e-12)
    by_a = (comp.coverage == 1) & (values < 170)
    assert values[by_a] == pytest.approx(154.0, rel=1e-12)
    assert values[(comp.coverage == 1) & ~by_a] == pytest.approx(198.0, rel=1e-12)
    assert np.all(values[comp.coverage == 0] == 0.0)
    # BED: A 55 * (1 + 11/3) = 256.67, B 30 * (1 + 10) = 330 -> 586.67
    bed_comp = dose_set(c).composite("BED", 3.0)
    assert bed_comp.dose.dose_gy.max() == pytest.approx(55 * (1 + 11 / 3) + 330.0, rel=1e-12)


def test_eqd2_voxelwise_conversion_of_linear_fields() -> None:
    ds = two_plans(1, 8)
    comp = ds.composite_for_alpha_beta(2.0)
    pts = voxel_centres(comp.dose.geometry)
    lo1, hi1 = np.array(G1.bounds()[0]), np.array(G1.bounds()[1])
    lo2, hi2 = np.array(G2.bounds()[0]), np.array(G2.bounds()[1])
    in1 = np.all((pts >= lo1 - 1e-6) & (pts <= hi1 + 1e-6), -1)
    in2 = np.all((pts >= lo2 - 1e-6) & (pts <= hi2 + 1e-6), -1)
    expected = np.where(in1, eqd2(np.where(in1, f1(pts), 0), 1, 2.0), 0) + np.where(
        in2, eqd2(np.where(in2, f2(pts), 0), 8, 2.0), 0
    )
    np.testing.assert_allclose(comp.dose.dose_gy, expected, rtol=1e-10, atol=1e-9)
    # not the EQD2 of the physical sum (conversion is per plan)
    assert not np.allclose(comp.dose.dose_gy[in1 & in2], eqd2(f1(pts) + f2(pts), 1, 2.0)[in1 & in2])


def test_composite_cache_per_alpha_beta() -> None:
    ds = two_plans(1, 5)
    a = ds.composite_for_alpha_beta(3.0)
    assert ds.composite_for_alpha_beta(3) is a
    b = ds.composite_for_alpha_beta(2.0)
    assert b is not a and b.dose.geometry == a.dose.geometry
    assert b.dose.max_gy > a.dose.max_gy  # lower a/b, larger EQD2 for > 2 Gy/fx


def test_voxelwise_alpha_beta_map() -> None:
    ds = two_plans(1, 5)
    g = ds.composite_for_alpha_beta(3.0).dose.geometry
    ab = np.full(g.shape, 3.0)
    ab[: g.shape[0] // 2] = 2.0
    comp = ds.composite("EQD2", ab)
    ref2, ref3 = ds.composite_for_alpha_beta(2.0), ds.composite_for_alpha_beta(3.0)
    half = g.shape[0] // 2
    np.testing.assert_allclose(comp.dose.dose_gy[:half], ref2.dose.dose_gy[:half])
    np.testing.assert_allclose(comp.dose.dose_gy[half:], ref3.dose.dose_gy[half:])
    assert comp.basis == "EQD2(a/b=voxel-wise)"


def test_unknown_fractionation_cannot_enter_eqd2() -> None:
    c = case(
        [plan("A", 5), plan("B", None)],
        [dose(G1, 1.0, uid="DA", plan="A"), dose(G2, 1.0, uid="DB", plan="B")],
    )
    ds = dose_set(c)
    with pytest.raises(UnsupportedError, match="fractions unknown"):
        ds.composite_for_alpha_beta(3.0)
    with pytest.raises(UnsupportedError):
        ds.physical()


def test_different_frames_refused() -> None:
    c = case(
        [plan("A", 5), plan("B", 5)],
        [dose(G1, 1.0, uid="DA", plan="A"), dose(G2, 1.0, uid="DB", plan="B", frame="9.9.9")],
    )
    with pytest.raises(LinkError, match="frames of reference"):
        dose_set(c).physical()


def test_first_grid_choice_reports_dose_outside() -> None:
    c = case(
        [plan("A", 5), plan("B", 5)],
        [dose(G1, 1.0, uid="DA", plan="A"), dose(G2, 2.0, uid="DB", plan="B")],
    )
    comp = dose_set(c, grid="first").physical()
    assert comp.dose.geometry == G1
    assert codes(comp.findings)["sum.dose_outside_grid"] == Severity.WARNING
    assert comp.dose.max_gy == pytest.approx(3.0)


def test_single_plan_composite_keeps_values() -> None:
    rng = np.random.default_rng(5)
    g = geo((10, -5, 7), (2.0, 2.5, 3.0), (6, 7, 8), "FFS")
    d = DoseGrid(
        rng.uniform(0, 40, g.shape),
        g,
        referenced_plan_uid="P",
        sop_instance_uid="D",
        frame_of_reference_uid=FOR,
    )
    comp = composite([PlanDose(plan("P", 5), d, 5, ("D",))])
    assert np.sort(comp.dose.dose_gy.ravel()) == pytest.approx(np.sort(d.dose_gy.ravel()))
    assert comp.dose.summation_type == "PLAN" and comp.dose.referenced_plan_uid == "P"


def test_plan_for_target() -> None:
    c = case(
        [
            plan("A", 5, rx=[Prescription(55.0, "PTV_Lung", roi_number=3)]),
            plan("B", 1, rx=[Prescription(30.0, "PTV_Bone", roi_number=7)]),
        ],
        [dose(G1, 1.0, uid="DA", plan="A"), dose(G2, 1.0, uid="DB", plan="B")],
    )
    ds = dose_set(c)
    pd, how = ds.plan_for_target(roi_number=7)
    assert pd is not None and pd.label == "B" and "ROI number" in how
    pd, how = ds.plan_for_target(name="ptv_lung")
    assert pd is not None and pd.label == "A" and "description" in how
    pd, how = ds.plan_for_target(name="PTV_Liver")
    assert pd is None and "no plan" in how


def square_roi(number: int, name: str, cx: float, cy: float, half: float) -> Roi:
    pts = [
        [cx - half, cy - half],
        [cx + half, cy - half],
        [cx + half, cy + half],
        [cx - half, cy + half],
    ]
    contours = tuple(
        Contour(np.array([[x, y, z] for x, y in pts], float)) for z in (-3.0, 0.0, 3.0)
    )
    return Roi(number, name, "ORGAN", contours=contours)


def test_uncovered_volume_of_structures() -> None:
    # G1 covers x, y in [-30, 30]; G2 covers x in [-20, 40], y in [-20, 20] (z covered by both for
    # z in [-4.5, 4.5]). The composite box reaches x = 40, y = 30: the corner x > 30, y > 20 is
    # covered by neither grid. Slab volume of a square of side 2h on planes -3, 0, 3 with end caps:
    # (2h)^2 * 9 mm.
    comp = two_plans(5, 5).physical()
    outside = square_roi(1, "Out", 35.0, 25.0, 3.0)  # x 32..38, y 22..28: uncovered
    assert comp.uncovered_volume_cc(outside) == pytest.approx(36 * 9 / 1000, rel=1e-6)
    inside = square_roi(2, "In", 30.0, 0.0, 4.0)  # x 26..34 within G2: covered
    assert comp.uncovered_volume_cc(inside) == 0.0
    half = square_roi(3, "Half", 35.0, 20.0, 4.0)  # y 16..24: the y > 20 half uncovered
    cells = 0.5 * 64 * 9 / 1000
    assert comp.uncovered_volume_cc(half) == pytest.approx(cells, rel=0.05)  # cell-centre rule


def test_dvh_engine_on_composite_mean_dose() -> None:
    # Mean of a linear field over a centred symmetric structure = field at its centroid:
    # f1(0,0,0) + f2(0,0,0) = 20 + 10 = 30 Gy (both plans cover the structure).
    compute_dvh = pytest.importorskip("rtcheck.dvh.compute").compute_dvh
    comp = two_plans(5, 5).physical()
    dvh = compute_dvh(comp.dose, square_roi(1, "PTV", 0.0, 0.0, 5.0))
    assert dvh.mean_gy == pytest.approx(30.0, abs=1e-6)
    assert dvh.volume_cc == pytest.approx(100 * 9 / 1000, rel=1e-9)


SAMPLE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_multi"


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_dicom/oligo_multi not present")
def test_sample_composite_eqd2_matches_independent_expected_values() -> None:
    # expected.json holds EQD2 composite metrics computed by the sample generator from its
    # analytic dose formula by dense sampling (independent of rtcheck's DVH engine and of this
    # module); HILUM is delivered as three BEAM doses, MEDIAST as a 30 fx PLAN dose.
    from rtcheck.dvh.compute import compute_dvh
    from rtcheck.io.discover import load_case

    expected = json.loads((SAMPLE / "expected.json").read_text())
    case = load_case(SAMPLE)
    ds = dose_set(case)
    assert sorted(pd.fractions for pd in ds.plan_doses) == [3, 5, 8, 30]
    hilum = next(pd for pd in ds.plan_doses if pd.label.startswith("HILUM"))
    assert len(hilum.components) == 3  # three BEAM doses summed into their plan
    assert ds.mixed_fractionation is not None
    rois = {r.name: r for r in case.structure_set.rois}
    for item in expected["composite_eqd2"]:
        comp = ds.composite_for_alpha_beta(item["alpha_beta"])
        dvh = compute_dvh(comp.dose, rois[item["roi"]])
        metric = item["metric"]
        if metric == "Max[Gy]":
            value = dvh.max_gy
        elif metric == "Mean[Gy]":
            value = dvh.mean_gy
        else:
            assert metric == "D5cc[Gy]"
            value = dvh.dose_at_volume_cc(5.0)
        assert value == pytest.approx(item["value"], abs=item["tolerance"]), item
        # value_grid is the exact sum of each plan's trilinear dose: the disclosed re-gridding
        # error bounds how far the composite's DVH may be from it (+ 0.1 Gy DVH engine slack).
        assert comp.regrid_error_gy is not None
        assert abs(value - item["value_grid"]) <= comp.regrid_error_gy + 0.1, item


def test_regrid_error_estimate() -> None:
    # Physical sum of linear fields: trilinear interpolation of the summed grid is exact inside
    # each coverage region, so the estimate is 0 (cells across grid edges are left out).
    ds = two_plans(1, 5)
    assert ds.physical(force=True).regrid_error_gy == pytest.approx(0.0, abs=1e-9)
    # EQD2 of a linear field is quadratic: interpolation between nodes overestimates it, most
    # at the cell centres; random points never exceed the stated estimate.
    comp = ds.composite_for_alpha_beta(2.0)
    est = comp.regrid_error_gy
    assert est is not None and est > 0
    assert "sum.regrid_error" in codes(comp.findings)
    rng = np.random.default_rng(2)
    # points where both plans cover, at least 3 mm (> one 2 mm cell) from either grid's edge
    lo = np.maximum(np.array(G1.bounds()[0]), np.array(G2.bounds()[0])) + 3
    hi = np.minimum(np.array(G1.bounds()[1]), np.array(G2.bounds()[1])) - 3
    pts = rng.uniform(lo, hi, (20000, 3))
    gridded, _ = sample_points(comp.dose, pts)
    exact, covering = ds.sample(pts, "EQD2", 2.0)
    assert np.all(covering == 2)
    err = np.abs(gridded - exact).max()
    assert 0.5 * est < err <= est + 1e-12
