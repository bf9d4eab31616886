"""Trilinear resampling and common grids against closed-form fields and a naive reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rtcheck.errors import GeometryError
from rtcheck.geometry.resample import (
    common_grid,
    coverage_mask,
    inside_grid,
    resample,
    sample_points,
    sub_grid,
    voxel_centres,
)
from rtcheck.model import DoseGrid, GridGeometry

# Patient orientations of axial dose grids: (row_dir, col_dir, slice_dir).
ORIENTATIONS = {
    "HFS": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "FFS": ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
    "HFP": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "FFP": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "HFS_reversed_frames": ((1, 0, 0), (0, 1, 0), (0, 0, -1)),
}


def grid(origin, spacing, shape, orient="HFS") -> GridGeometry:
    r, c, s = ORIENTATIONS[orient]
    f = lambda v: tuple(float(x) for x in v)  # noqa: E731
    return GridGeometry(f(origin), f(spacing), f(r), f(c), f(s), tuple(shape))


def linear(p: np.ndarray) -> np.ndarray:
    return 3.0 + 0.2 * p[..., 0] - 0.35 * p[..., 1] + 0.11 * p[..., 2]


def field_dose(g: GridGeometry, fn=linear) -> DoseGrid:
    return DoseGrid(fn(voxel_centres(g)), g)


def box_inside(g: GridGeometry, pts: np.ndarray) -> np.ndarray:
    lo, hi = g.bounds()
    return np.all((pts >= np.array(lo) - 1e-6) & (pts <= np.array(hi) + 1e-6), axis=-1)


def naive_trilinear(dose: DoseGrid, xyz: np.ndarray) -> float:
    """Obviously-correct scalar trilinear interpolation (None outside)."""
    g = dose.geometry
    i, j, k = g.patient_to_index(np.asarray(xyz, float))
    nz, ny, nx = g.shape
    if not (
        -1e-9 <= i <= nx - 1 + 1e-9 and -1e-9 <= j <= ny - 1 + 1e-9 and -1e-9 <= k <= nz - 1 + 1e-9
    ):
        return float("nan")
    total = 0.0
    for di, dj, dk in itertools.product((0, 1), repeat=3):
        ii, jj, kk = int(np.floor(i)) + di, int(np.floor(j)) + dj, int(np.floor(k)) + dk
        w = (1 - abs(i - ii)) * (1 - abs(j - jj)) * (1 - abs(k - kk))
        if w > 0 and 0 <= ii < nx and 0 <= jj < ny and 0 <= kk < nz:
            total += w * dose.dose_gy[kk, jj, ii]
    return total


@pytest.mark.parametrize("src_orient", list(ORIENTATIONS))
@pytest.mark.parametrize("dst_orient", ["HFS", "FFS", "HFP"])
def test_linear_field_exact_across_orientations(src_orient: str, dst_orient: str) -> None:
    # Source grid: 3 x 2.5 x 2 mm; target: offset origin, other spacings, other orientation.
    src = grid((-20.0, 10.0, -15.0), (3.0, 2.5, 2.0), (12, 14, 16), src_orient)
    lo, hi = np.array(src.bounds()[0]), np.array(src.bounds()[1])
    centre = (lo + hi) / 2
    dst = grid(centre + np.array([-1.3, 0.7, 2.1]), (1.7, 2.2, 1.3), (15, 18, 20), dst_orient)
    r = resample(field_dose(src), dst)
    pts = voxel_centres(dst)
    inside = box_inside(src, pts)
    assert inside.any() and (~inside).any()  # target straddles the source edge
    np.testing.assert_array_equal(r.covered, inside)
    np.testing.assert_allclose(r.values[inside], linear(pts)[inside], rtol=0, atol=1e-10)
    assert np.all(r.values[~inside] == 0.0)


def test_random_field_matches_naive_reference() -> None:
    rng = np.random.default_rng(7)
    src = grid((0.0, 0.0, 0.0), (2.0, 3.0, 2.5), (7, 8, 9), "FFS")
    dose = DoseGrid(rng.uniform(0, 60, src.shape), src)
    dst = grid((-12.0, 2.0, -10.0), (1.1, 1.9, 1.4), (9, 10, 11), "HFP")
    r = resample(dose, dst)
    pts = voxel_centres(dst).reshape(-1, 3)
    ref = np.array([naive_trilinear(dose, p) for p in pts])
    covered = r.covered.ravel()
    np.testing.assert_array_equal(covered, ~np.isnan(ref))
    np.testing.assert_allclose(r.values.ravel()[covered], ref[covered], atol=1e-10)
    v, inside = sample_points(dose, pts)
    np.testing.assert_array_equal(inside, covered)
    np.testing.assert_allclose(v[inside], ref[inside], atol=1e-10)


def test_oblique_target_uses_gather_and_is_exact_for_linear_fields() -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    src = grid((-30.0, -30.0, -30.0), (2.0, 2.0, 2.0), (31, 31, 31))
    dst = GridGeometry(
        (0.0, 0.0, 0.0), (1.5, 1.5, 1.5), (c, s, 0.0), (-s, c, 0.0), (0.0, 0.0, 1.0), (6, 7, 8)
    )
    r = resample(field_dose(src), dst)
    assert r.covered.all()
    np.testing.assert_allclose(r.values, linear(voxel_centres(dst)), atol=1e-10)


def test_quadratic_field_within_interpolation_bound() -> None:
    # f = x^2 + y^2 + z^2 is separable: trilinear interpolation = sum of 1-D linear
    # interpolations, each overestimating a parabola by at most h^2/4 (f'' = 2, error h^2/8 * 2).
    quad = lambda p: (p**2).sum(axis=-1)  # noqa: E731
    src = grid((-10.0, -12.0, -9.0), (2.0, 3.0, 2.5), (9, 9, 11))
    dst = grid((9.3, -9.1, 6.6), (0.7, 0.9, 1.1), (12, 15, 16), "FFS")
    r = resample(field_dose(src, quad), dst)
    assert r.covered.all()
    err = r.values - quad(voxel_centres(dst))
    bound = (2.0**2 + 3.0**2 + 2.5**2) / 4
    assert err.min() >= -1e-9
    assert err.max() <= bound + 1e-9
    assert err.max() > 0.1 * bound  # the bound is not vacuous here


def test_same_grid_is_a_copy_and_slabs_match_whole() -> None:
    rng = np.random.default_rng(3)
    g = grid((1.0, 2.0, 3.0), (2.5, 2.5, 3.0), (6, 5, 4), "HFP")
    dose = DoseGrid(rng.uniform(0, 10, g.shape), g)
    r = resample(dose, g)
    np.testing.assert_array_equal(r.values, dose.dose_gy)
    assert r.covered.all()
    target = grid((-3.0, -8.0, -1.0), (1.0, 1.0, 1.0), (20, 12, 14))
    whole = resample(dose, target)
    parts = [resample(dose, sub_grid(target, k, min(k + 3, 20))) for k in range(0, 20, 3)]
    np.testing.assert_allclose(np.concatenate([p.values for p in parts]), whole.values, atol=1e-12)
    np.testing.assert_array_equal(np.concatenate([p.covered for p in parts]), whole.covered)


def test_common_grid_covers_and_uses_finest_spacing() -> None:
    a = grid((-50.0, -40.0, -30.0), (2.5, 2.5, 3.0), (20, 30, 40))
    b = grid((30.0, 35.0, 10.0), (4.0, 2.0, 2.0), (15, 10, 12), "FFS")
    g = common_grid([a, b])
    assert g.spacing == (2.5, 2.0, 2.0)
    assert (g.row_dir, g.col_dir, g.slice_dir) == ((1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0))
    lo, hi = g.bounds()
    for src in (a, b):
        slo, shi = src.bounds()
        assert all(lo[p] <= slo[p] + 1e-9 and hi[p] >= shi[p] - 1e-9 for p in range(3))
        assert all(
            hi[p] - shi[p] < g.spacing[p] + 1e-9
            for p in range(3)
            if shi[p] == max(a.bounds()[1][p], b.bounds()[1][p])
        )
    # x nodes aligned with grid a (finest in x): a's dose is sampled at its own voxel centres
    assert ((g.origin[0] - a.origin[0]) / 2.5) % 1 == pytest.approx(0.0, abs=1e-9)


def test_common_grid_samples_finest_grid_at_its_nodes() -> None:
    rng = np.random.default_rng(11)
    fine = grid((0.3, 0.1, -0.2), (1.0, 1.0, 1.0), (10, 10, 10))
    coarse = grid((-20.0, -20.0, -20.0), (3.0, 3.0, 3.0), (5, 5, 5))
    dose = DoseGrid(rng.uniform(0, 50, fine.shape), fine)
    g = common_grid([coarse, fine])
    r = resample(dose, g)
    assert r.covered.sum() == dose.dose_gy.size
    np.testing.assert_allclose(
        np.sort(r.values[r.covered]), np.sort(dose.dose_gy.ravel()), atol=1e-9
    )


def test_common_grid_user_spacing_and_errors() -> None:
    a = grid((0.0, 0.0, 0.0), (2.5, 2.5, 2.5), (5, 5, 5))
    g = common_grid([a], 1.0)
    assert g.spacing == (1.0, 1.0, 1.0) and g.shape == (11, 11, 11)
    g2 = common_grid([a], (1.0, 2.0, 5.0))
    assert g2.shape == (3, 6, 11)
    with pytest.raises(GeometryError):
        common_grid([a], 0.0)
    with pytest.raises(GeometryError):
        common_grid([])
    oblique = GridGeometry(
        (0, 0, 0), (1, 1, 1), (0.8, 0.6, 0), (-0.6, 0.8, 0), (0, 0, 1), (2, 2, 2)
    )
    with pytest.raises(GeometryError):
        common_grid([a, oblique])


def test_single_frame_axis_ignored_for_finest_spacing() -> None:
    a = grid((0.0, 0.0, 0.0), (2.0, 2.0, 1.0), (1, 5, 5))  # one frame, nominal 1 mm
    b = grid((0.0, 0.0, -4.0), (2.0, 2.0, 3.0), (4, 5, 5))
    assert common_grid([a, b]).spacing == (2.0, 2.0, 3.0)


def test_coverage_helpers() -> None:
    a = grid((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (3, 3, 3))  # centres 0..4 mm
    pts = np.array([[0, 0, 0], [4, 4, 4], [4.0005, 2, 2], [4.01, 2, 2], [-1, 2, 2]], float)
    np.testing.assert_array_equal(inside_grid(a, pts), [True, True, True, False, False])
    b = grid((3.0, -10.0, 2.0), (1.0, 5.0, 5.0), (5, 5, 4), "FFS")
    mask = coverage_mask(b, a)
    np.testing.assert_array_equal(mask, box_inside(a, voxel_centres(b)))
    assert mask.any() and not mask.all()
