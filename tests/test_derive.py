"""Derived structures on occupancy grids against analytic volumes, and the distance transform
against a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from evaluation_synth import grid, sphere

from rtcheck.errors import GeometryError
from rtcheck.geometry import derive
from rtcheck.geometry.planes import plane_stack
from rtcheck.geometry.rasterize import rasterize

BASE = grid((-60.0, -60.0, -60.0), (60.0, 60.0, 60.0), 2.0)
FACTOR = (4, 4, 4)  # 0.5 mm cells


def ball_cc(r: float) -> float:
    return 4.0 / 3.0 * math.pi * r**3 / 1000.0


def occ_sphere(c: tuple[float, float, float], r: float, name: str = "S", factor=FACTOR):
    return rasterize(plane_stack(sphere(1, name, "ORGAN", c, r, dz=0.5)), BASE, factor)


# ----------------------------------------------------------------------------- distances
def _brute(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    pts = np.argwhere(mask) * np.asarray(spacing)
    cells = np.argwhere(np.ones_like(mask)) * np.asarray(spacing)
    d = np.sqrt(((cells[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return d.reshape(mask.shape)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_transform_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((7, 9, 8)) < 0.04
    mask[3, 4, 4] = True
    spacing = (1.7, 0.6, 1.1)  # anisotropic
    got, ids = derive.nearest_feature(mask, spacing)
    np.testing.assert_allclose(got, _brute(mask, spacing), rtol=1e-9, atol=1e-9)
    # the feature found is a True cell at exactly that distance
    assert ids is not None
    feat = np.array(np.unravel_index(ids.ravel(), mask.shape)).T
    assert mask[tuple(feat.T)].all()
    here = np.argwhere(np.ones_like(mask))
    d = np.sqrt((((feat - here) * np.asarray(spacing)) ** 2).sum(1))
    np.testing.assert_allclose(d, got.ravel(), atol=1e-9)


def test_distance_truncation_marks_far_cells_infinite() -> None:
    mask = np.zeros((1, 1, 30), bool)
    mask[0, 0, 0] = True
    d = derive.distance_to(mask, (1.0, 1.0, 2.0), max_mm=10.0)
    assert d[0, 0, 5] == 10.0
    assert np.isinf(d[0, 0, 6])


# ----------------------------------------------------------------------------- booleans
def test_union_of_disjoint_spheres_is_the_sum() -> None:
    a = occ_sphere((-20.0, 0.0, 0.0), 8.0)
    b = occ_sphere((20.0, 3.0, 1.0), 6.0)
    res = derive.union(a, b)
    assert res.occupancy.volume_cc == pytest.approx(a.volume_cc + b.volume_cc, rel=1e-6)
    assert res.occupancy.volume_cc == pytest.approx(ball_cc(8) + ball_cc(6), rel=5e-3)
    assert res.uncertainty_cc == 0.0


def test_difference_of_concentric_spheres_is_the_shell() -> None:
    outer = occ_sphere((0.3, 0.2, 0.1), 15.0)
    inner = occ_sphere((0.3, 0.2, 0.1), 7.0)
    shell = derive.difference(outer, inner).occupancy
    assert shell.volume_cc == pytest.approx(ball_cc(15) - ball_cc(7), rel=5e-3)
    # subtracting something disjoint changes nothing; subtracting itself leaves nothing
    far = occ_sphere((40.0, 0.0, 0.0), 5.0)
    assert derive.difference(outer, far).occupancy.volume_cc == pytest.approx(outer.volume_cc)
    assert derive.difference(outer, outer).occupancy.volume_cc == pytest.approx(0.0, abs=1e-9)


def test_intersection_of_nested_spheres_is_the_inner_one() -> None:
    outer = occ_sphere((0.0, 0.0, 0.0), 15.0)
    inner = occ_sphere((1.0, 0.0, 0.0), 7.0)  # strictly inside: no shared partial cells
    got = derive.intersection(outer, inner)
    assert got.occupancy.volume_cc == pytest.approx(inner.volume_cc, rel=1e-6)


def test_overlapping_partial_cells_are_disclosed() -> None:
    a = occ_sphere((-4.0, 0.0, 0.0), 8.0)
    b = occ_sphere((4.0, 0.0, 0.0), 8.0)
    res = derive.union(a, b)
    assert res.uncertainty_cc > 0.0
    # truth (two overlapping balls) lies within the stated uncertainty of the result
    cap = math.pi * (8 - 4) ** 2 * (3 * 8 - (8 - 4)) / 3 / 1000.0
    truth = 2 * ball_cc(8) - 2 * cap
    assert res.occupancy.volume_cc >= truth - 0.01
    assert res.occupancy.volume_cc - res.uncertainty_cc <= truth + 0.01


def test_combining_different_grids_is_refused() -> None:
    with pytest.raises(GeometryError, match="different refined grids"):
        derive.union(occ_sphere((0, 0, 0), 5.0), occ_sphere((0, 0, 0), 5.0, factor=(2, 2, 2)))


# ----------------------------------------------------------------------------- margins
@pytest.mark.parametrize(("inner", "outer"), [(0.0, 10.0), (10.0, 20.0), (5.0, 7.0)])
def test_ring_volume_is_the_spherical_shell(inner: float, outer: float) -> None:
    r = 10.0
    ring = derive.ring(occ_sphere((0.3, 0.2, 0.1), r), inner, outer)
    exact = ball_cc(r + outer) - ball_cc(r + inner)
    assert ring.volume_cc == pytest.approx(exact, rel=0.01)


def test_expand_and_shrink_a_sphere() -> None:
    occ = occ_sphere((0.3, 0.2, 0.1), 10.0)
    grown = derive.expand(occ, 8.0)
    assert grown.volume_cc == pytest.approx(ball_cc(18.0), rel=0.005)
    shrunk = derive.expand(occ, -5.0)
    assert shrunk.volume_cc == pytest.approx(ball_cc(5.0), rel=0.02)
    # the expansion contains the original, the contraction lies inside it
    inside = derive.difference(occ, grown).occupancy.volume_cc
    assert inside == pytest.approx(0.0, abs=1e-6)
    outside = derive.difference(shrunk, occ).occupancy.volume_cc
    assert outside == pytest.approx(0.0, abs=1e-6)


def test_margin_refines_with_the_grid() -> None:
    exact = ball_cc(20.0) - ball_cc(10.0)
    coarse = derive.ring(occ_sphere((0.3, 0.2, 0.1), 10.0, factor=(1, 1, 1)), 0.0, 10.0)
    fine = derive.ring(occ_sphere((0.3, 0.2, 0.1), 10.0, factor=(4, 4, 4)), 0.0, 10.0)
    assert abs(fine.volume_cc - exact) < abs(coarse.volume_cc - exact)


# ----------------------------------------------------------------------------- labels
def test_nearest_labels_split_by_distance() -> None:
    a = np.zeros((1, 1, 21), bool)
    b = np.zeros_like(a)
    a[0, 0, 2] = True
    b[0, 0, 14] = True
    labels, dist = derive.nearest_labels([a, b], (1.0, 1.0, 1.0), None)
    assert labels[0, 0, :9].tolist() == [0] * 9  # x = 8 is 6 from a and 6 from b: tie -> a
    assert labels[0, 0, 9:].tolist() == [1] * 12
    assert dist[0, 0, 20] == 6.0
