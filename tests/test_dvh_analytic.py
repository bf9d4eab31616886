"""DVH engine against independent truth: closed forms, fine lattice integration, invariants.

Truth (``tests/analytic.py``) never uses rtcheck's geometry or DVH code. Targets from the
project brief: volume within 1 %, D-metrics within 1 % of the structure's D2%, V-metrics
within 1 percentage point. The asserts use half of those (the engine is far closer; see
``docs/dvh.md`` for measured errors).
"""

from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np
import pytest
import shapely
from analytic import (
    Shape,
    cone_z,
    cylinder_x,
    cylinder_z,
    dose_grid,
    gaussian,
    linear,
    rect,
    sphere,
    truth,
    tube_z,
    union_planes,
)

from rtcheck.dvh import DVH
from rtcheck.dvh.compute import (
    DvhOptions,
    PreparedDose,
    compute_dvh,
    compute_dvhs,
    dvh_from_occupancy,
)
from rtcheck.geometry.grid import canonical_geometry
from rtcheck.geometry.planes import plane_stack
from rtcheck.geometry.rasterize import rasterize
from rtcheck.model import Contour, ContourType, DoseGrid, Roi, StructureSet

D_TOL = 0.005  # fraction of D2%
V_TOL = 0.5  # percentage points
#: Dose grid: 2.5 mm voxels, planes at z = -59.6 + 2.5 k (contour planes are elsewhere).
LO, SPACING, SHAPE = (-60.3, -59.8, -59.6), (2.5, 2.5, 2.5), (49, 49, 49)

SHAPES = {
    "sphere_6mm": sphere((1.1, -2.3, 0.7), 3.0, 2.0, 0.3, name="sphere_6mm"),
    "sphere_12mm": sphere((1.1, -2.3, 0.7), 6.0, 2.0, 0.3, name="sphere_12mm"),
    "sphere_50mm": sphere((1.1, -2.3, 0.7), 25.0, 3.0, 1.1, name="sphere_50mm"),
    "cylinder_along_z": cylinder_z((0.4, 0.9, -3.0), 8.0, 30.0, 3.0, 1.1),
    "cylinder_across_z": cylinder_x((0.4, 0.9, -3.0), 8.0, 30.0, 3.0, 1.1),
    "cone": cone_z((0.4, 0.9, -13.0), 12.0, 24.0, 2.0, 0.5),
    "hollow_tube": tube_z((0.4, 0.9, 0.0), 15.0, 9.0, 20.0, 2.5, 0.3),
    "two_parts_one_plane": union_planes(
        "two_parts", sphere((-20, 0, 0), 7, 2.0, 0.1), sphere((20, 5, 0), 9, 2.0, 0.1)
    ),
}
FIELDS = {
    "linear": linear(20.0, (0.3, -0.5, 0.8)),
    "gaussian": gaussian(60.0, (3.0, -4.0, 5.0), 12.0, 2.0),
}


def dose_for(field: str, orientation: str = "HFS") -> DoseGrid:
    return dose_grid(LO, SPACING, SHAPE, FIELDS[field], orientation)


def check_against_truth(dvh: DVH, shape: Shape, dose: DoseGrid) -> None:
    ref = truth(shape, dose)
    assert dvh.structure_volume_cc == pytest.approx(shape.slab_cc, rel=1e-9)
    assert dvh.volume_cc == pytest.approx(ref.volume_cc, rel=1e-6)
    d2 = ref.d_pct(2)
    for pct in (98, 95, 50, 5, 2):
        assert abs(dvh.dose_at_volume_pct(pct) - ref.d_pct(pct)) <= D_TOL * d2, f"D{pct}"
    assert abs(dvh.mean_gy - ref.mean) <= D_TOL * d2
    if ref.volume_cc > 0.1:
        assert abs(dvh.dose_at_volume_cc(0.03) - ref.d_cc(0.03)) <= D_TOL * d2
    for pct in (90, 50, 10):
        level = ref.d_pct(pct)
        assert abs(dvh.volume_at_dose_pct(level) - ref.v_pct(level)) <= V_TOL, f"V at D{pct}"
    # exact extremes bound the lattice's
    assert dvh.max_gy >= ref.centres.max() - 1e-6 * d2
    assert dvh.min_gy <= ref.centres.min() + 1e-6 * d2


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("name", list(SHAPES))
def test_matches_independent_truth(name: str, field: str) -> None:
    dose = dose_for(field)
    shape = SHAPES[name]
    check_against_truth(compute_dvh(dose, shape.roi()), shape, dose)


# ----------------------------------------------------------------------------- closed forms
def test_cylinder_in_cranio_caudal_gradient_is_exact() -> None:
    """Discs on every plane in D = 10 + 0.5 z: dose uniform over [z_bottom, z_top] exactly."""
    shape = cylinder_z((0.3, -0.2, 0.0), 10.0, 30.0, 3.0, 1.1)
    dose = dose_grid(LO, SPACING, SHAPE, linear(10.0, (0.0, 0.0, 0.5)))
    dvh = compute_dvh(dose, shape.roi())
    z_lo = shape.planes[0][0] - 1.5
    z_hi = shape.planes[-1][0] + 1.5
    top, bottom = 10 + 0.5 * z_hi, 10 + 0.5 * z_lo
    assert dvh.max_gy == pytest.approx(top, abs=1e-9)
    assert dvh.min_gy == pytest.approx(bottom, abs=1e-9)
    assert dvh.mean_gy == pytest.approx((top + bottom) / 2, abs=1e-9)
    for pct in (99, 90, 50, 10, 1):
        assert dvh.dose_at_volume_pct(pct) == pytest.approx(
            top - pct / 100 * (top - bottom), abs=2e-3 * (top - bottom) / 100
        )


def test_fine_contours_approach_the_solid_volume() -> None:
    s = sphere((0.2, 0.1, 0.3), 15.0, 0.5, 0.1, n=720)
    dvh = compute_dvh(dose_for("linear"), s.roi())
    assert dvh.structure_volume_cc == pytest.approx(s.solid_cc, rel=1e-3)


# ----------------------------------------------------------------------------- invariants
def test_scaling_the_dose_scales_every_d_metric() -> None:
    dose = dose_for("gaussian")
    shape = SHAPES["cone"]
    base = compute_dvh(dose, shape.roi())
    k = 1.37
    scaled = compute_dvh(replace(dose, dose_gy=dose.dose_gy * k), shape.roi())
    for pct in (99, 95, 50, 5, 1):
        assert scaled.dose_at_volume_pct(pct) == pytest.approx(
            k * base.dose_at_volume_pct(pct), rel=1e-4
        )
    assert scaled.max_gy == pytest.approx(k * base.max_gy, rel=1e-12)
    assert scaled.mean_gy == pytest.approx(k * base.mean_gy, rel=1e-9)


def test_whole_voxel_shift_of_dose_and_structure_leaves_the_dvh_unchanged() -> None:
    shape = SHAPES["hollow_tube"]
    dose = dose_for("gaussian")
    shift = np.array([2.5, -5.0, 7.5])
    g = dose.geometry
    moved = replace(dose, geometry=replace(g, origin=tuple(np.add(g.origin, shift))))
    a = compute_dvh(dose, shape.roi())
    b = compute_dvh(moved, shape.shifted(*shift).roi())
    assert b.structure_volume_cc == pytest.approx(a.structure_volume_cc, rel=1e-12)
    for pct in (98, 50, 2):
        assert b.dose_at_volume_pct(pct) == pytest.approx(a.dose_at_volume_pct(pct), rel=1e-6)
    assert b.max_gy == pytest.approx(a.max_gy, rel=1e-9)
    assert b.mean_gy == pytest.approx(a.mean_gy, rel=1e-9)


def test_refining_the_sampling_converges_to_the_truth() -> None:
    shape = SHAPES["sphere_12mm"]
    dose = dose_for("gaussian")
    ref = truth(shape, dose, points_across=240)
    errors = []
    for n in (2, 6, 24):
        dvh = compute_dvh(dose, shape.roi(), options=DvhOptions(samples_across=n))
        errors.append(max(abs(dvh.dose_at_volume_pct(p) - ref.d_pct(p)) for p in (98, 50, 2)))
    assert errors[-1] <= errors[0]
    assert errors[-1] < 0.002 * ref.d_pct(2)


@pytest.mark.parametrize("orientation", ["FFS", "HFP", "FFP"])
def test_patient_orientation_does_not_change_the_dvh(orientation: str) -> None:
    shape = SHAPES["two_parts_one_plane"]
    hfs = compute_dvh(dose_for("gaussian", "HFS"), shape.roi())
    other_dose = dose_for("gaussian", orientation)
    assert other_dose.geometry.row_dir != (1.0, 0.0, 0.0) or other_dose.geometry.slice_dir[2] < 0
    other = compute_dvh(other_dose, shape.roi())
    assert canonical_geometry(other_dose.geometry).origin == pytest.approx(LO)
    assert np.allclose(other.doses_gy, hfs.doses_gy, rtol=1e-12, atol=1e-12)
    assert np.allclose(other.volumes_cc, hfs.volumes_cc, rtol=1e-9, atol=1e-15)
    assert other.max_gy == pytest.approx(hfs.max_gy, abs=1e-12)
    assert other.min_gy == pytest.approx(hfs.min_gy, abs=1e-12)


# ----------------------------------------------------------------------------- disclosure
def test_structure_leaving_the_grid_is_reported_not_counted_as_zero() -> None:
    shape = sphere((0.0, 0.0, 58.0), 8.0, 2.0, 0.3, name="edge")  # grid ends at z = 60.4
    dose = dose_for("linear")
    dvh = compute_dvh(dose, shape.roi())
    ref = truth(shape, dose)
    assert dvh.structure_volume_cc == pytest.approx(shape.slab_cc, rel=1e-9)
    top = LO[2] + SPACING[2] * (SHAPE[2] - 1)
    outside = sum(
        region.area * max(0.0, z + 1.0 - max(z - 1.0, top))
        for (z, _), region in zip(shape.planes, shape.regions(), strict=True)
    )
    assert dvh.outside_volume_cc == pytest.approx(outside / 1000, rel=1e-9)
    assert dvh.volume_cc + dvh.outside_volume_cc == pytest.approx(shape.slab_cc, rel=1e-9)
    finding = next(f for f in dvh.findings if f.code == "dose.partial_coverage")
    assert f"{dvh.outside_volume_cc:.3f} cc" in finding.message and "%" in finding.message
    assert dvh.min_gy >= dose.dose_gy.min() and dvh.dose_at_volume_pct(99) > 20.0
    assert abs(dvh.dose_at_volume_pct(50) - ref.d_pct(50)) <= D_TOL * ref.d_pct(2)


def test_structure_wholly_outside_has_no_samples() -> None:
    shape = sphere((0.0, 0.0, 150.0), 5.0, 2.0)
    dvh = compute_dvh(dose_for("linear"), shape.roi())
    assert dvh.is_empty and dvh.outside_volume_cc == pytest.approx(shape.slab_cc)
    assert any(f.code == "dose.partial_coverage" and "100.0 %" in f.message for f in dvh.findings)


def test_empty_roi_gives_an_empty_dvh_with_a_finding() -> None:
    point = Roi(7, "marker", contours=(Contour(np.zeros((1, 3)), ContourType.POINT),))
    dvh = compute_dvh(dose_for("linear"), point)
    assert dvh.is_empty and dvh.structure_volume_cc == 0.0 and dvh.roi_number == 7
    assert {f.code for f in dvh.findings} == {"structure.empty", "structure.ignored_contours"}
    with pytest.raises(ValueError):
        dvh.max_gy  # noqa: B018


def test_single_plane_structure_uses_the_stated_thickness() -> None:
    ring = rect(-5, -5, 5, 5)
    roi = Roi(1, "flat", contours=(Contour(np.c_[ring, np.full(4, 1.0)]),))
    dose = dose_for("linear")
    default = compute_dvh(dose, roi)
    thick = compute_dvh(dose, roi, options=DvhOptions(single_plane_thickness_mm=3.0))
    assert default.structure_volume_cc == pytest.approx(0.2)
    assert thick.structure_volume_cc == pytest.approx(0.3)
    assert any(f.code == "structure.single_plane" and "2 mm" in f.message for f in default.findings)
    assert thick.mean_gy == pytest.approx(20 + 0.8 * 1.0, abs=1e-9)


def test_parts_separated_in_z_are_not_bridged() -> None:
    a = sphere((0, 0, -30), 6, 2.0, 0.3)
    b = sphere((3, 1, 25), 8, 2.0, 0.3)
    both = Shape("split", a.planes + b.planes, 2.0)
    dvh = compute_dvh(dose_for("gaussian"), both.roi())
    assert dvh.structure_volume_cc == pytest.approx(a.slab_cc + b.slab_cc, rel=1e-9)
    assert any(f.code == "structure.z_gap" for f in dvh.findings)
    check_against_truth(dvh, both, dose_for("gaussian"))


def test_crossing_contours_follow_even_odd_and_are_disclosed() -> None:
    a, b = rect(-10, -10, 6, 6), rect(-2, -2, 12, 12)
    planes = [(z, [a, b]) for z in np.arange(-6.0, 7.0, 3.0)]
    shape = Shape("crossing", planes, 3.0)
    dose = dose_for("linear")
    dvh = compute_dvh(dose, shape.roi())
    xor = shapely.Polygon(a).symmetric_difference(shapely.Polygon(b)).area
    assert dvh.structure_volume_cc == pytest.approx(xor * 3.0 * 5 / 1000, rel=1e-9)
    assert any(f.code == "structure.crossing_contours" for f in dvh.findings)
    check_against_truth(dvh, shape, dose)


def test_named_conventions_are_reported() -> None:
    shape = SHAPES["sphere_12mm"]
    dose = dose_for("gaussian")
    ref = compute_dvh(dose, shape.roi())
    assert ref.convention == "slab end caps (half spacing); trilinear dose"
    other = compute_dvh(
        dose, shape.roi(), options=DvhOptions(end_caps=False, interpolation="nearest")
    )
    assert other.convention == "no end caps; nearest-voxel dose"
    spacing = shape.spacing
    end_areas = sum(shapely.Polygon(shape.planes[p][1][0]).area for p in (0, -1))
    assert other.structure_volume_cc == pytest.approx(
        ref.structure_volume_cc - end_areas * spacing / 2 / 1000, rel=1e-9
    )
    assert other.max_gy <= dose.dose_gy.max()


def test_compute_dvhs_and_occupancy_path_agree() -> None:
    dose = dose_for("gaussian")
    shapes = [SHAPES["cone"], SHAPES["sphere_12mm"]]
    rois = tuple(s.roi(number=n) for n, s in enumerate(shapes, start=3))
    dvhs = compute_dvhs(dose, StructureSet(rois=rois))
    assert set(dvhs) == {3, 4}
    prepared = PreparedDose.of(dose)
    for roi in rois:
        direct = dvhs[roi.number]
        occ = rasterize(plane_stack(roi), prepared.dose.geometry, (4, 4, 4))
        via = dvh_from_occupancy(prepared, occ)
        assert via.structure_volume_cc == pytest.approx(direct.structure_volume_cc, rel=1e-9)
        assert via.volume_cc == pytest.approx(direct.volume_cc, rel=1e-5)
        d2 = direct.dose_at_volume_pct(2)
        for pct in (98, 50, 2):
            assert abs(via.dose_at_volume_pct(pct) - direct.dose_at_volume_pct(pct)) < 0.01 * d2


@pytest.mark.parametrize("field", list(FIELDS))
def test_sample_budget_for_big_organs_stays_accurate(field: str) -> None:
    """A tiny sample budget forces dose-voxel cells and one layer per slab (the big-organ
    path); the DVH stays within the same tolerances."""
    shape = SHAPES["sphere_50mm"]
    dose = dose_for(field)
    dvh = compute_dvh(dose, shape.roi(), options=DvhOptions(max_samples=2_000))
    check_against_truth(dvh, shape, dose)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads")
def test_the_dvh_does_not_depend_on_the_thread_count() -> None:
    """Bit-identical DVHs with 1 and with every thread (batch --jobs 1 and --jobs 2 agree)."""
    dose = dose_for("gaussian")
    rois = [SHAPES[name].roi() for name in ("cone", "hollow_tube", "sphere_50mm")]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [compute_dvh(dose, roi) for roi in rois]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = [compute_dvh(dose, roi) for roi in rois]
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many, strict=True):
        assert np.array_equal(a.doses_gy, b.doses_gy)
        assert np.array_equal(a.volumes_cc, b.volumes_cc)
        assert (a.mean_gy, a.max_gy, a.structure_volume_cc) == (
            b.mean_gy,
            b.max_gy,
            b.structure_volume_cc,
        )
