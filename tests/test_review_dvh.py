"""Third review of the DVH engine: adversarial cases with analytic truth.

Truth is closed-form: linear dose fields (trilinear interpolation reproduces them exactly),
boxes drawn as rectangles, a single hot voxel (its trilinear field is a product of hat
functions). See ``docs/dvh.md``, "Third review (DVH engine)".
"""

from __future__ import annotations

import numpy as np
import pytest
from analytic import Shape, dose_grid, linear, rect

from rtcheck.dvh.compute import PreparedDose, compute_dvh, dvh_from_occupancy
from rtcheck.geometry import derive
from rtcheck.geometry.planes import plane_stack
from rtcheck.geometry.rasterize import rasterize
from rtcheck.metrics import MetricNotComputable, parse_metric

#: Dose grid: 2.5 mm voxels, nodes at x = -60.3 + 2.5 i, y = -59.8 + 2.5 j, z = -59.6 + 2.5 k.
LO, SPACING, SHAPE = (-60.3, -59.8, -59.6), (2.5, 2.5, 2.5), (49, 49, 49)
#: Contour planes every 3 mm, 1.1 mm off the dose planes' phase: slabs -10.4 .. 10.6 mm.
PLANES = np.arange(-8.9, 9.2, 3.0)
Z_LO, Z_HI = PLANES[0] - 1.5, PLANES[-1] + 1.5


def _box(name: str, x0: float, x1: float, y0: float = -7.9, y1: float = 8.1) -> Shape:
    return Shape(name, [(float(z), [rect(x0, y0, x1, y1)]) for z in PLANES], 3.0)


# ----------------------------------------------------------------------- derived structures
@pytest.mark.parametrize("factor", [(1, 1, 1), (2, 2, 2)])
def test_derived_structure_max_is_not_half_a_cell_low(factor: tuple[int, int, int]) -> None:
    """Union of two boxes whose x faces lie on refined-cell edges, in D = 20 + 2 x.

    Every occupied cell is full, so the sampled centres sit half a cell inside the hot face:
    Dmax used to read g h / 2 low (36.9 instead of 39.4 Gy with 2.5 mm cells) and D0.03cc was
    clipped to that value (a false pass for a Max or D0.03cc limit on a derived organ).
    """
    g = 2.0
    prepared = PreparedDose.of(dose_grid(LO, SPACING, SHAPE, linear(20.0, (g, 0.0, 0.0))))
    base = prepared.dose.geometry
    left, right = _box("L", -30.3, -10.3), _box("R", 4.7, 9.7)  # x faces on dose nodes
    occ = [rasterize(plane_stack(s.roi()), base, factor) for s in (left, right)]
    both = derive.union(*occ).occupancy
    dvh = dvh_from_occupancy(prepared, both, "Lungs")
    area_yz = 16.0 * (Z_HI - Z_LO)  # mm^2, cross-section of the hot box
    assert dvh.structure_volume_cc == pytest.approx((20 + 5) * area_yz / 1000, rel=1e-6)
    assert dvh.max_gy == pytest.approx(20 + g * 9.7, abs=1e-9)
    assert dvh.min_gy == pytest.approx(20 - g * 30.3, abs=1e-9)
    # hottest 0.03 cc: a layer 30 / area_yz mm deep behind the hot face
    d003 = 20 + g * (9.7 - 30.0 / area_yz)
    assert parse_metric("D0.03cc[Gy]").evaluate(dvh) == pytest.approx(d003, abs=0.05)
    assert dvh.mean_gy == pytest.approx(
        20 + g * (20 * -20.3 + 5 * 7.2) / 25, abs=1e-6
    )  # volume-weighted centres of the boxes
    # D-metrics never exceed Dmax
    assert parse_metric("D0.03cc[Gy]").evaluate(dvh) <= dvh.max_gy


def test_derived_structure_extremes_stay_on_the_safe_side_of_a_cut_face() -> None:
    """A box face cutting 2.5 mm cells (not on their edges): Dmax is at or above the true
    maximum, by less than one cell's dose range (Dmin likewise below the minimum)."""
    g = 2.0
    prepared = PreparedDose.of(dose_grid(LO, SPACING, SHAPE, linear(20.0, (g, 0.0, 0.0))))
    base = prepared.dose.geometry
    for x1 in (8.3, 9.0, 10.4, 11.1):
        occ = rasterize(plane_stack(_box("B", -4.6, x1).roi()), base, (1, 1, 1))
        dvh = dvh_from_occupancy(prepared, occ)
        assert 20 + g * x1 - 1e-9 <= dvh.max_gy <= 20 + g * (x1 + 2.5)
        assert 20 - g * (4.6 + 2.5) <= dvh.min_gy <= 20 - g * 4.6 + 1e-9


def test_centre_extremes_remain_available_for_cell_centre_quantities() -> None:
    prepared = PreparedDose.of(dose_grid(LO, SPACING, SHAPE, linear(20.0, (2.0, 0.0, 0.0))))
    occ = rasterize(plane_stack(_box("B", -30.3, 9.7).roi()), prepared.dose.geometry, (1, 1, 1))
    centres = dvh_from_occupancy(prepared, occ, extremes="centres")
    assert centres.max_gy == pytest.approx(20 + 2.0 * (9.7 - 1.25), abs=1e-9)
    with pytest.raises(ValueError, match="extremes"):
        dvh_from_occupancy(prepared, occ, extremes="corners")


# ----------------------------------------------------------------------- direct engine
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_box_in_a_linear_gradient_is_exact(axis: int) -> None:
    """Box (slab model: [-7.3, 9.2] x [-4.1, 6.6] x [Z_LO, Z_HI]) in a gradient along one
    axis: the dose is uniform over an interval, every D/V metric is a closed form."""
    grad = [0.0, 0.0, 0.0]
    grad[axis] = 1.3
    dose = dose_grid(LO, SPACING, SHAPE, linear(20.0, tuple(grad)))
    shape = Shape("box", [(float(z), [rect(-7.3, -4.1, 9.2, 6.6)]) for z in PLANES], 3.0)
    dvh = compute_dvh(dose, shape.roi())
    lo, hi = [(-7.3, 9.2), (-4.1, 6.6), (Z_LO, Z_HI)][axis]
    bottom, top = 20 + 1.3 * lo, 20 + 1.3 * hi
    volume = 16.5 * 10.7 * (Z_HI - Z_LO) / 1000
    assert dvh.structure_volume_cc == pytest.approx(volume, rel=1e-12)
    assert dvh.max_gy == pytest.approx(top, abs=1e-9)  # includes the end-cap slab along z
    assert dvh.min_gy == pytest.approx(bottom, abs=1e-9)
    tol = 2e-4 * (top - bottom)
    for pct in (99, 95, 50, 2, 1):
        got = parse_metric(f"D{pct}%[Gy]").evaluate(dvh)
        assert got == pytest.approx(top - pct / 100 * (top - bottom), abs=tol)
    d003 = top - 0.03 / volume * (top - bottom)
    assert parse_metric("D0.03cc[cGy]").evaluate(dvh) == pytest.approx(100 * d003, abs=100 * tol)
    level = bottom + 0.3 * (top - bottom)
    v = parse_metric(f"V{level}Gy[cc]").evaluate(dvh)
    assert v == pytest.approx(0.7 * volume, abs=1e-4 * volume)
    cv = parse_metric(f"CV{level}Gy[cc]").evaluate(dvh)
    assert cv == pytest.approx(0.3 * volume, abs=1e-4 * volume)
    rx = top / 1.1
    assert parse_metric("V100%[%]").evaluate(dvh, prescription_gy=rx) == pytest.approx(
        100 * (top - rx) / (top - bottom), abs=0.01
    )
    assert parse_metric(f"V{top + 0.5}Gy[cc]").evaluate(dvh) == 0.0  # above Dmax: none


def test_single_hot_voxel_max_is_exact_inside_and_beside_the_structure() -> None:
    """One hot voxel H over a background B: the trilinear field is B + (H - B) times a
    product of hat functions, whose maximum over a box is the product of the axis maxima."""
    rng = np.random.default_rng(3)
    background, hot = 10.0, 50.0

    def hat(lo: float, hi: float, c: float) -> float:
        return max(0.0, 1.0 - abs(min(max(c, lo), hi) - c) / 2.5)

    for _ in range(12):
        i, j, k = (int(n) for n in rng.integers(6, 42, 3))
        node = (LO[0] + 2.5 * i, LO[1] + 2.5 * j, LO[2] + 2.5 * k)
        values = np.full(SHAPE[::-1], background)
        values[k, j, i] = hot
        dose = dose_grid(LO, SPACING, SHAPE, lambda x, y, z, v=values: v)
        x0, y0 = node[0] + rng.uniform(-6, 2), node[1] + rng.uniform(-6, 2)
        x1, y1 = x0 + rng.uniform(0.5, 6), y0 + rng.uniform(0.5, 6)
        zs = node[2] + rng.uniform(-9, 3) + 3.0 * np.arange(3)
        shape = Shape("b", [(float(z), [rect(x0, y0, x1, y1)]) for z in zs], 3.0)
        dvh = compute_dvh(dose, shape.roi())
        peak = hat(x0, x1, node[0]) * hat(y0, y1, node[1])
        peak *= hat(zs[0] - 1.5, zs[-1] + 1.5, node[2])
        assert dvh.max_gy == pytest.approx(background + (hot - background) * peak, abs=1e-9)


# ----------------------------------------------------------------------- not computable
def test_small_structures_refuse_volumes_they_do_not_have() -> None:
    """A 0.01 cc structure: D0.03cc / D0.035cc / DC0.03cc are not computable (never Dmin)."""
    dose = dose_grid(LO, SPACING, SHAPE, linear(20.0, (0.5, 0.0, 0.0)))
    tiny = Shape("tiny", [(0.1, [rect(-1.0, -1.0, 1.0, 1.5)])], 2.0)  # 5 mm^2 x 2 mm
    dvh = compute_dvh(dose, tiny.roi())
    assert dvh.structure_volume_cc == pytest.approx(0.01, rel=1e-12)
    for text in ("D0.03cc[Gy]", "D0.035cc[Gy]", "DC0.03cc[Gy]", "D35mm3[Gy]"):
        with pytest.raises(MetricNotComputable, match=r"only 0\.01 cc"):
            parse_metric(text).evaluate(dvh)
    assert parse_metric("D0.01cc[Gy]").evaluate(dvh) == pytest.approx(19.5, abs=1e-9)
