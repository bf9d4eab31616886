"""Geometry: canonical grids, the slab model of contours, exact fractional occupancy."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from analytic import ORIENTATIONS, disc, dose_grid, rect, sphere, tube_z

from rtcheck.errors import GeometryError
from rtcheck.geometry.grid import (
    axis_map,
    canonical_array,
    canonical_dose,
    canonical_geometry,
    is_canonical,
)
from rtcheck.geometry.planes import plane_stack, slab_extents
from rtcheck.geometry.rasterize import choose_resolution, common_box, rasterize
from rtcheck.model import Contour, ContourType, GridGeometry, Roi


def roi_of(planes: list[tuple[float, list[np.ndarray]]], name: str = "r") -> Roi:
    contours = tuple(
        Contour(np.c_[ring, np.full(len(ring), z)]) for z, rings in planes for ring in rings
    )
    return Roi(1, name, contours=contours)


# ----------------------------------------------------------------------------- grids
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_canonical_view_keeps_every_voxel_at_its_place(orientation: str) -> None:
    field = lambda x, y, z: 1000 * x + 10 * y + 0.1 * z  # noqa: E731 - unique per voxel
    dose = dose_grid((-7.0, 3.0, -11.0), (2.0, 2.5, 3.0), (5, 4, 6), field, orientation)
    canon = canonical_dose(dose)
    g = canon.geometry
    assert is_canonical(g) and g.origin == pytest.approx((-7.0, 3.0, -11.0))
    assert g.spacing == pytest.approx((2.0, 2.5, 3.0)) and g.shape == (6, 4, 5)
    k, j, i = np.meshgrid(*[np.arange(n) for n in dose.geometry.shape], indexing="ij")
    xyz = dose.geometry.index_to_patient(np.c_[i.ravel(), j.ravel(), k.ravel()])
    ci = np.rint((xyz - g.origin) / g.spacing).astype(int)
    assert np.array_equal(canon.dose_gy[ci[:, 2], ci[:, 1], ci[:, 0]], dose.dose_gy.ravel())
    assert np.allclose(
        canon.dose_gy,
        field(
            *np.meshgrid(
                g.origin[0] + 2.0 * np.arange(5),
                g.origin[1] + 2.5 * np.arange(4),
                g.origin[2] + 3.0 * np.arange(6),
                indexing="xy",
            )
        ).transpose(2, 0, 1),
    )


def test_permuted_axes_are_canonicalised() -> None:
    g = GridGeometry((0.0, 0.0, 0.0), (1.0, 2.0, 3.0), (0, 1, 0), (0, 0, -1), (1, 0, 0), (4, 5, 6))
    assert axis_map(g).patient_axis == (1, 2, 0)
    c = canonical_geometry(g)
    assert c.spacing == (3.0, 1.0, 2.0)
    assert c.shape == (5, 6, 4)
    arr = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6)
    view = canonical_array(arr, g)
    assert view.shape == c.shape
    # voxel (i=2, j=3, k=1) of the original grid
    xyz = g.index_to_patient(np.array([2.0, 3.0, 1.0]))
    ci = np.rint((xyz - np.array(c.origin)) / np.array(c.spacing)).astype(int)
    assert view[ci[2], ci[1], ci[0]] == arr[1, 3, 2]


def test_oblique_grid_is_refused() -> None:
    s = np.sqrt(0.5)
    g = GridGeometry((0, 0, 0), (1, 1, 1), (s, s, 0), (-s, s, 0), (0, 0, 1), (2, 2, 2))
    with pytest.raises(GeometryError, match="oblique"):
        canonical_geometry(g)


# ----------------------------------------------------------------------------- slabs
def test_uniform_slabs_have_half_spacing_end_caps() -> None:
    lo, hi, gaps = slab_extents(np.array([0.0, 3.0, 6.0]))
    assert np.allclose(lo, [-1.5, 1.5, 4.5]) and np.allclose(hi, [1.5, 4.5, 7.5])
    assert not gaps.any()
    lo, hi, _ = slab_extents(np.array([0.0, 3.0, 6.0]), end_caps=False)
    assert np.allclose(lo, [0.0, 1.5, 4.5]) and np.allclose(hi, [1.5, 4.5, 6.0])


def test_non_uniform_slabs_extend_half_way_to_each_neighbour() -> None:
    z = np.array([0.0, 2.0, 4.0, 7.0, 10.0])
    lo, hi, gaps = slab_extents(z)
    assert not gaps.any()
    assert np.allclose(lo, [-1.0, 1.0, 3.0, 5.5, 8.5])
    assert np.allclose(hi, [1.0, 3.0, 5.5, 8.5, 11.5])


def test_gap_between_parts_is_not_filled() -> None:
    z = np.array([0.0, 2.0, 4.0, 30.0, 32.0, 34.0])
    lo, hi, gaps = slab_extents(z)
    assert list(gaps) == [False, False, True, False, False]
    assert hi[2] == pytest.approx(5.0) and lo[3] == pytest.approx(29.0)
    # two planes only: a gap only against a stated nominal spacing
    assert not slab_extents(np.array([0.0, 20.0]))[2].any()
    lo, hi, gaps = slab_extents(np.array([0.0, 20.0]), nominal_spacing_mm=2.0)
    assert gaps.all() and np.allclose(hi - lo, [20.0, 20.0])


def test_single_plane_uses_the_stated_thickness() -> None:
    lo, hi, _ = slab_extents(np.array([5.0]), single_plane_thickness_mm=3.0)
    assert lo[0] == pytest.approx(3.5) and hi[0] == pytest.approx(6.5)


# ----------------------------------------------------------------------------- plane stack
def test_holes_islands_and_disjoint_parts_follow_even_odd() -> None:
    outer, hole, island = disc(0, 0, 20, 200), disc(0, 0, 12, 150), disc(0, 0, 5, 100, ccw=False)
    other = rect(40, -5, 50, 5)
    stack = plane_stack(roi_of([(0.0, [hole, outer, island, other]), (2.0, [outer])]))
    region = (
        shapely.Polygon(outer).difference(shapely.Polygon(hole)).union(shapely.Polygon(island))
    ).union(shapely.Polygon(other))
    assert stack.plane_area_mm2[0] == pytest.approx(region.area, rel=1e-12)
    assert stack.plane_area_mm2[1] == pytest.approx(shapely.Polygon(outer).area, rel=1e-12)
    assert stack.volume_cc == pytest.approx((region.area + shapely.Polygon(outer).area) * 2 / 1000)
    assert not stack.findings


def test_crossing_contours_are_made_exact_with_a_finding() -> None:
    a, b = rect(0, 0, 10, 10), rect(5, 5, 15, 15)
    bowtie = np.array([[20.0, 0.0], [30.0, 10.0], [30.0, 0.0], [20.0, 10.0]])
    stack = plane_stack(roi_of([(0.0, [a, b, bowtie]), (3.0, [a])]))
    fixed = stack.with_exact_planes(np.array([0]))
    xor = shapely.Polygon(a).symmetric_difference(shapely.Polygon(b))
    assert fixed.plane_area_mm2[0] == pytest.approx(xor.area + 50.0)
    assert fixed.plane_area_mm2[1] == pytest.approx(100.0)
    assert fixed.findings[-1].code == "structure.crossing_contours"


def test_non_volume_contours_are_reported() -> None:
    pts = np.c_[disc(0, 0, 5, 40), np.zeros(40)]
    roi = Roi(1, "r", contours=(Contour(pts), Contour(pts[:1], ContourType.POINT)))
    stack = plane_stack(roi)
    codes = [f.code for f in stack.findings]
    assert "structure.ignored_contours" in codes and "structure.single_plane" in codes
    assert stack.volume_cc == pytest.approx(shapely.Polygon(pts[:, :2]).area * 2.0 / 1000)


# ----------------------------------------------------------------------------- occupancy
def base_grid(offset: float = 0.0) -> GridGeometry:
    return GridGeometry(
        (-40.0 + offset, -40.0 + 0.3 * offset, -40.0 + 0.7 * offset),
        (2.5, 2.5, 3.0),
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (33, 33, 28),
    )


@pytest.mark.parametrize("factor", [(1, 1, 1), (3, 3, 2), (4, 5, 3)])
@pytest.mark.parametrize("offset", [0.0, 0.37, 1.9])
def test_occupancy_volume_is_exact(factor: tuple[int, int, int], offset: float) -> None:
    shape = tube_z((1.3, -0.4, 0.2), 11.0, 6.0, 17.0, 2.0, 0.3, n=90)
    stack = plane_stack(shape.roi())
    occ = rasterize(stack, base_grid(offset), factor)
    assert occ.volume_cc == pytest.approx(shape.slab_cc, rel=2e-6)
    assert occ.structure_volume_cc == pytest.approx(shape.slab_cc, rel=1e-12)
    assert occ.fraction.min() >= 0 and occ.fraction.max() <= 1 + 1e-6


def test_occupancy_cells_match_brute_force() -> None:
    shape = sphere((0.7, -1.1, 0.4), 4.0, 1.5, 0.2, n=64)
    stack = plane_stack(shape.roi())
    base = base_grid(0.0)
    occ = rasterize(stack, base, (2, 2, 2))
    g = occ.geometry
    h = np.array(g.spacing)
    regions = shape.regions()
    for (k, j, i), frac in np.ndenumerate(occ.fraction):
        c = np.array(g.origin) + h * (i, j, k)
        box = shapely.box(c[0] - h[0] / 2, c[1] - h[1] / 2, c[0] + h[0] / 2, c[1] + h[1] / 2)
        want = 0.0
        for (z, _), region in zip(shape.planes, regions, strict=True):
            dz = min(z + 0.75, c[2] + h[2] / 2) - max(z - 0.75, c[2] - h[2] / 2)
            if dz > 0:
                want += region.intersection(box).area * dz
        assert frac == pytest.approx(want / h.prod(), abs=2e-6)


def test_occupancy_lies_between_shrunk_and_grown_contours() -> None:
    ring = disc(0.3, 0.2, 9.0, 120)
    stack = plane_stack(roi_of([(0.0, [ring]), (3.0, [ring]), (6.0, [ring])]))
    occ = rasterize(stack, base_grid(0.0), (4, 4, 1))
    g = occ.geometry
    poly = shapely.Polygon(ring)
    half = np.hypot(g.spacing[0], g.spacing[1]) / 2
    inner, outer = poly.buffer(-half), poly.buffer(half)
    ys, xs = np.meshgrid(
        g.origin[1] + g.spacing[1] * np.arange(g.shape[1]),
        g.origin[0] + g.spacing[0] * np.arange(g.shape[2]),
        indexing="ij",
    )
    k = int(np.argmax(occ.fraction.sum(axis=(1, 2))))
    frac = occ.fraction[k]
    assert np.all(frac[shapely.contains_xy(inner, xs, ys)] == pytest.approx(1.0, abs=1e-6))
    assert np.all(frac[~shapely.contains_xy(outer, xs, ys)] == 0.0)


def test_occupancies_embed_in_a_common_box() -> None:
    a = rasterize(plane_stack(sphere((-10, 0, 0), 4, 2.0).roi()), base_grid(), (2, 2, 2))
    b = rasterize(plane_stack(sphere((12, 3, 5), 5, 2.0).roi()), base_grid(), (2, 2, 2))
    offset, shape = common_box([a, b])
    ea, eb = a.embedded(offset, shape), b.embedded(offset, shape)
    assert ea.volume_cc == pytest.approx(a.volume_cc) and eb.volume_cc == pytest.approx(b.volume_cc)
    assert ea.aligned_with(eb) and ea.geometry.shape == shape


def test_resolution_adapts_to_size() -> None:
    g = base_grid()
    small = choose_resolution(plane_stack(sphere((0, 0, 0), 3.0, 1.0).roi()), g)
    big = choose_resolution(plane_stack(sphere((0, 0, 0), 30.0, 3.0).roi()), g)
    assert small.cell_mm < 0.3 and small.fx >= 9
    assert big.cell_mm > 2.0 and big.fx == 1
