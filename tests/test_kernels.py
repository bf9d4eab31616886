"""Every numba kernel against a slow, obviously correct numpy reference on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from rtcheck.dvh import _kernels as dk
from rtcheck.geometry import _kernels as gk

RNG = np.random.default_rng(20240601)
TOL = np.array([1e-9, 1e-9, 1e-9])


# ----------------------------------------------------------------------------- references
def naive_trilinear(dose: np.ndarray, u: float, v: float, w: float) -> float:
    """Textbook trilinear interpolation; NaN outside the box of voxel centres."""
    nz, ny, nx = dose.shape
    if not (0 <= u <= nx - 1 and 0 <= v <= ny - 1 and 0 <= w <= nz - 1):
        return np.nan
    i0, j0, k0 = min(int(u), nx - 2), min(int(v), ny - 2), min(int(w), nz - 2)
    fx, fy, fz = u - i0, v - j0, w - k0
    total = 0.0
    for dk_, wz in ((0, 1 - fz), (1, fz)):
        for dj, wy in ((0, 1 - fy), (1, fy)):
            for di, wx in ((0, 1 - fx), (1, fx)):
                total += wz * wy * wx * dose[k0 + dk_, j0 + dj, i0 + di]
    return total


def random_polygon(cx: float, cy: float, r_lo: float, r_hi: float, n: int) -> np.ndarray:
    """A random star-shaped (simple) polygon whose edges stay outside radius r_lo * cos(pi/n)."""
    th = (np.arange(n) + RNG.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    r = RNG.uniform(r_lo, r_hi, n)
    return np.c_[cx + r * np.cos(th), cy + r * np.sin(th)]


def polygon_moments(geom: shapely.Geometry, ox: float, oy: float) -> np.ndarray:
    """Area, first and second moments (x, y, xx, yy, xy) about ``(ox, oy)``: Green's theorem
    on every ring of a (multi)polygon, holes negative."""
    out = np.zeros(6)
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        for k, ring in enumerate([poly.exterior, *poly.interiors]):
            p = np.asarray(ring.coords)[:-1] - (ox, oy)
            x, y = p[:, 0], p[:, 1]
            x1, y1 = np.roll(x, -1), np.roll(y, -1)
            cr = x * y1 - x1 * y
            m = np.array(
                [
                    cr.sum() / 2,
                    ((x + x1) * cr).sum() / 6,
                    ((y + y1) * cr).sum() / 6,
                    ((x * x + x * x1 + x1 * x1) * cr).sum() / 12,
                    ((y * y + y * y1 + y1 * y1) * cr).sum() / 12,
                    ((x * y1 + 2 * x * y + 2 * x1 * y1 + x1 * y) * cr).sum() / 24,
                ]
            )
            out += abs(m[0]) / m[0] * m * (1 if k == 0 else -1) if m[0] else 0
    return out


def ring_args(rings: list[np.ndarray], parity: list[int]) -> tuple[np.ndarray, ...]:
    """Packed rings with factors as the engine computes them (orientation x parity)."""
    xy = np.ascontiguousarray(np.concatenate(rings))
    start = np.concatenate(([0], np.cumsum([len(r) for r in rings]))).astype(np.int64)
    area, _ = gk.ring_geometry(xy, start)
    factor = np.where(area > 0, -1.0, 1.0) * (1 - 2 * np.asarray(parity))
    return xy, start, factor.astype(float)


# ----------------------------------------------------------------------------- sampling
def test_sample_points_matches_naive_trilinear_inside_and_nan_outside() -> None:
    dose = RNG.uniform(0, 70, (5, 6, 7))
    uvw = RNG.uniform(-0.7, 7.5, (4000, 3)) * np.array([1.0, 6 / 7, 5 / 7])
    got = dk.sample_points(dose, uvw, TOL, False)
    want = np.array([naive_trilinear(dose, *p) for p in uvw])
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) < 1e-12
    assert np.isnan(want).sum() > 100 and (~np.isnan(want)).sum() > 1000


def test_sample_points_nearest_voxel() -> None:
    dose = RNG.uniform(0, 70, (4, 5, 6))
    uvw = RNG.uniform(0, 3, (500, 3))
    got = dk.sample_points(dose, uvw, TOL, True)
    idx = np.floor(uvw + 0.5).astype(int)
    assert np.array_equal(got, dose[idx[:, 2], idx[:, 1], idx[:, 0]])


def test_sample_grad_is_the_derivative_of_the_interpolant() -> None:
    dose = RNG.uniform(0, 70, (5, 5, 5))
    h = 1e-6
    for u, v, w in RNG.uniform(0.1, 3.9, (200, 3)):
        d, gu, gv, gw = dk.sample_grad(dose, u, v, w, TOL)
        assert d == pytest.approx(naive_trilinear(dose, u, v, w), abs=1e-12)
        num = [
            (naive_trilinear(dose, u + h, v, w) - naive_trilinear(dose, u - h, v, w)) / (2 * h),
            (naive_trilinear(dose, u, v + h, w) - naive_trilinear(dose, u, v - h, w)) / (2 * h),
            (naive_trilinear(dose, u, v, w + h) - naive_trilinear(dose, u, v, w - h)) / (2 * h),
        ]
        assert np.allclose([gu, gv, gw], num, atol=1e-5)


# ----------------------------------------------------------------------------- histograms
def test_weighted_histogram_matches_numpy() -> None:
    values = RNG.uniform(-5, 80, 10_000)
    values[RNG.random(values.size) < 0.05] = np.nan
    weights = RNG.uniform(0, 2, values.size)
    sw, swd, outside = dk.weighted_histogram(values, weights, 0.0, 70.0, 350, 7)
    inside = ~np.isnan(values)
    clipped = np.clip(values[inside], 0.0, 70.0 - 1e-12)
    ref_w, _ = np.histogram(clipped, 350, (0.0, 70.0), weights=weights[inside])
    ref_wd, _ = np.histogram(clipped, 350, (0.0, 70.0), weights=weights[inside] * values[inside])
    assert np.allclose(sw, ref_w) and np.allclose(swd, ref_wd)
    assert outside == pytest.approx(weights[~inside].sum())


@pytest.mark.parametrize("d, half", [(12.34, 3.21), (5.0, 0.0), (0.3, 2.0), (7.77, 0.004)])
def test_splat_spreads_uniformly_and_keeps_mean(d: float, half: float) -> None:
    lo, bw, nbins = 0.0, 0.05, 400
    hw, hwd, dens = np.zeros((1, nbins)), np.zeros((1, nbins)), np.zeros((1, nbins))
    dk.splat(hw[0], hwd[0], dens[0], d, half, 2.5, lo, bw, 1.0 / bw)
    sw, swd = dk.finish_splats(hw, hwd, dens, lo, bw)
    assert sw.sum() == pytest.approx(2.5, rel=1e-12)
    assert swd.sum() / sw.sum() == pytest.approx(d, rel=1e-12)
    # the narrowed interval stays inside the binned range, symmetric about d
    h = min(half, d - lo)
    edges = lo + bw * np.arange(nbins + 1)
    cdf = np.concatenate(([0.0], np.cumsum(sw))) / 2.5
    want = np.clip((edges - (d - h)) / (2 * h), 0, 1) if h > 0 else (edges > d).astype(float)
    assert np.max(np.abs(cdf - want)) < 1e-9 + (h == 0)


def test_block_extrema_match_numpy() -> None:
    dose = RNG.normal(size=(17, 9, 20))
    bmin, bmax = dk.block_extrema(dose, 4)
    for kk, jj, ii in np.ndindex(bmin.shape):
        block = dose[kk * 4 : kk * 4 + 4, jj * 4 : jj * 4 + 4, ii * 4 : ii * 4 + 4]
        assert bmin[kk, jj, ii] == block.min() and bmax[kk, jj, ii] == block.max()


def test_slab_layers_cut_at_dose_planes_and_keep_thickness() -> None:
    w_lo = RNG.uniform(-3, 10, 50)
    w_hi = w_lo + RNG.uniform(0.01, 4, 50)
    start, lw, lt = dk.slab_layers(w_lo, w_hi, 2.5, 0.7, 20, True)
    for p in range(50):
        centres, thick = lw[start[p] : start[p + 1]], lt[start[p] : start[p + 1]]
        assert thick.sum() == pytest.approx((w_hi[p] - w_lo[p]) * 2.5, rel=1e-12)
        assert np.all(thick <= 0.7 * 1.021)
        half = thick / 2.5 / 2
        # no layer straddles a dose plane (integer w)
        assert np.all(np.floor(centres - half + 1e-12) == np.floor(centres + half - 1e-12))
    # cut only at the grid's first and last planes (w = 0 and 19)
    start, lw, lt = dk.slab_layers(w_lo, w_hi, 2.5, np.inf, 20, False)
    for p in range(50):
        centres, thick = lw[start[p] : start[p + 1]], lt[start[p] : start[p + 1]]
        assert thick.sum() == pytest.approx((w_hi[p] - w_lo[p]) * 2.5, rel=1e-12)
        cuts = [e for e in (0.0, 19.0) if w_lo[p] < e < w_hi[p]]
        assert len(centres) == 1 + len(cuts)


def test_occupancy_histogram_total_and_mean_match_naive() -> None:
    dose = RNG.uniform(0, 60, (6, 7, 8))
    frac = RNG.random((9, 10, 11)).astype(np.float32)
    frac[frac < 0.3] = 0
    origin = np.array([-0.4, 0.2, 0.1])
    step = np.array([0.75, 0.6, 0.55])
    sw, swd, stats = dk.occupancy_histogram(
        frac, origin, step, 0.01, dose, TOL, False, 0, 60, 600, False
    )
    k, j, i = np.nonzero(frac)
    pts = origin + np.c_[i, j, k] * step
    d = np.array([naive_trilinear(dose, *p) for p in pts])
    w = frac[k, j, i].astype(float) * 0.01
    inside = ~np.isnan(d)
    assert stats[0] == pytest.approx(w[~inside].sum())
    assert sw.sum() == pytest.approx(w[inside].sum())
    assert swd.sum() == pytest.approx(np.dot(w[inside], d[inside]))
    assert stats[2] == pytest.approx(d[inside].min()) and stats[3] == pytest.approx(d[inside].max())


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("seed", range(4))
def test_plane_coverage_is_exact_per_cell(seed: int) -> None:
    global RNG
    RNG = np.random.default_rng(seed)
    outer = random_polygon(5.2, 4.9, 2.5, 4.6, 17)
    hole = random_polygon(5.2, 4.9, 0.4, 1.2, 9)
    region = shapely.Polygon(outer).difference(shapely.Polygon(hole))
    for rings, parity, want in (
        ([outer], [0], shapely.Polygon(outer)),
        ([outer, hole], [0, 1], region),
    ):
        xy, start, factor = ring_args(rings, parity)
        rc, mom, total, ok = gk.plane_cells(
            xy, start, factor, 0, len(rings), 0.0, 0.0, 1.0, 1.0, 11, 11
        )
        assert ok and total == pytest.approx(want.area, rel=1e-12)
        cov, dense_total, dense_ok = gk.plane_coverage(
            xy, start, factor, 0, len(rings), 0.0, 0.0, 1.0, 1.0, 11, 11
        )
        assert dense_ok and dense_total == pytest.approx(want.area, rel=1e-12)
        listed = {(int(r), int(c)): m for (r, c), m in zip(rc, mom, strict=True)}
        for r, c in np.ndindex(11, 11):
            cell = want.intersection(shapely.box(c, r, c + 1, r + 1))
            want_m = polygon_moments(cell, c, r)
            got = listed.get((r, c), np.zeros(6))
            assert got == pytest.approx(want_m, abs=1e-12)
            assert cov[r, c] == pytest.approx(want_m[0], abs=1e-12)


def test_plane_coverage_flags_crossing_contours() -> None:
    a = np.array([[0.5, 0.5], [3.5, 0.5], [3.5, 3.5], [0.5, 3.5]])
    b = a + 1.7  # overlaps a
    xy, start, factor = ring_args([a, b], [0, 0])
    *_, ok = gk.plane_coverage(xy, start, factor, 0, 2, 0.0, 0.0, 1.0, 1.0, 6, 6)
    assert not ok
    *_, ok = gk.plane_cells(xy, start, factor, 0, 2, 0.0, 0.0, 1.0, 1.0, 6, 6)
    assert not ok
    bowtie = np.array([[0.5, 0.5], [3.5, 3.5], [3.5, 0.5], [0.5, 3.5]])
    xy, start, factor = ring_args([bowtie], [0])
    *_, ok = gk.plane_coverage(xy, start, factor, 0, 1, 0.0, 0.0, 1.0, 1.0, 4, 4)
    assert not ok
    *_, ok = gk.plane_cells(xy, start, factor, 0, 1, 0.0, 0.0, 1.0, 1.0, 4, 4)
    assert not ok


def test_ring_depths_match_shapely_containment() -> None:
    rings = [
        random_polygon(0, 0, 9, 10, 12),
        random_polygon(0, 0, 5, 6, 10),
        random_polygon(0, 0, 1, 2, 8),
        random_polygon(30, 0, 2, 3, 8),
    ]
    xy = np.concatenate(rings)
    start = np.concatenate(([0], np.cumsum([len(r) for r in rings]))).astype(np.int64)
    _, boxes = gk.ring_geometry(xy, start)
    depth = gk.ring_depths(xy, start, np.array([0, 4], dtype=np.int64), boxes)
    polys = [shapely.Polygon(r) for r in rings]
    want = [sum(o.contains(p) for o in polys if o is not p) for p in polys]
    assert list(depth) == want == [0, 1, 2, 0]


def test_point_in_region_is_even_odd() -> None:
    rings = [random_polygon(0, 0, 6, 8, 15), random_polygon(0, 0, 2, 3, 11)]
    xy = np.concatenate(rings)
    start = np.array([0, len(rings[0]), len(xy)], dtype=np.int64)
    region = shapely.Polygon(rings[0]).difference(shapely.Polygon(rings[1]))
    for x, y in RNG.uniform(-9, 9, (500, 2)):
        assert gk.point_in_region(x, y, xy, start, 0, 2) == region.contains(shapely.Point(x, y))


# ----------------------------------------------------------------------------- extremes
def test_slab_extreme_is_the_true_maximum_over_the_region() -> None:
    """Exact extreme >= every point's dose, and attained within the dense-sampling error."""
    dose = RNG.uniform(0, 50, (6, 9, 9))
    ring = random_polygon(4.1, 3.9, 1.5, 3.6, 13)
    region = shapely.Polygon(ring)
    xy, start, _ = ring_args([ring], [0])
    grid = np.array([0.0, 0.0, 1.0, 1.0])
    box = np.array([[0, 0, 8, 8]], dtype=np.int64)
    w_lo, w_hi = np.array([1.3]), np.array([3.6])
    g = np.mgrid[0:9:0.02, 0:9:0.02].reshape(2, -1).T
    inside = g[shapely.contains_xy(region, g[:, 0], g[:, 1])]
    for sign in (1.0, -1.0):
        got = dk.slab_extreme(
            xy,
            start,
            np.array([0, 1], dtype=np.int64),
            box,
            w_lo,
            w_hi,
            dose,
            grid,
            TOL,
            sign,
            -np.inf,
            np.array([np.inf]),
            np.array([0], dtype=np.int64),
        )
        dense = max(
            np.nanmax(
                sign * dk.sample_points(dose, np.c_[inside, np.full(len(inside), w)], TOL, False)
            )
            for w in np.linspace(1.3, 3.6, 47)
        )
        lipschitz = 3 * 50.0
        assert dense <= got + 1e-9
        assert got <= dense + lipschitz * 0.02 * 1.5


@pytest.mark.parametrize("every_plane", [True, False])
def test_slab_layers_counts_hold_at_rounding_ties(every_plane: bool) -> None:
    # layer thicknesses chosen so that (piece * dz / cell_mm - 0.02) lands on an integer:
    # the count used to size the output must be the count written (no write past the end)
    rng = np.random.default_rng(7)
    w_lo = np.round(rng.uniform(-3, 22, 400) * 4) / 4
    w_hi = w_lo + rng.choice([0.25, 0.5, 1.0, 1.5, 1 / 3], 400)
    for dz in (1.0, 2.5, 3.0, 0.3):
        for k in (1, 2, 3, 5):
            for frac in (1.0, 0.5, 0.25):
                cell = dz * frac / (k + 0.02)
                start, lw, lt = dk.slab_layers(w_lo, w_hi, dz, cell, 20, every_plane)
                assert start[0] == 0 and start[-1] == lw.size == lt.size
                assert np.all(np.diff(start) >= 1)
                for p in range(w_lo.size):
                    seg = slice(start[p], start[p + 1])
                    assert lt[seg].sum() == pytest.approx((w_hi[p] - w_lo[p]) * dz, rel=1e-12)
                    assert np.all((lw[seg] > w_lo[p]) & (lw[seg] < w_hi[p]))
                    assert np.all(lt[seg] <= cell * 1.021)


def test_slab_layers_non_finite_layer_size_gives_one_layer_per_piece() -> None:
    w_lo = np.array([0.5, 3.0])
    w_hi = np.array([2.5, 3.5])
    for cell in (np.nan, np.inf):
        start, lw, lt = dk.slab_layers(w_lo, w_hi, 2.0, cell, 10, True)
        # first slab cut at w = 1 and 2, the second lies between planes
        assert list(start) == [0, 3, 4]
        assert lw.tolist() == pytest.approx([0.75, 1.5, 2.25, 3.25])
        assert lt.tolist() == pytest.approx([1.0, 2.0, 1.0, 1.0])
