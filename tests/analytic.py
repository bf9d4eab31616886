"""Shapes, dose fields and independent truth for DVH tests and benchmarks.

Nothing here uses rtcheck's geometry or DVH code, so the truth is independent of the code
under test: slab extents come from each shape's own contour spacing, plane regions and areas
from shapely (even-odd by symmetric difference), doses from scipy's trilinear
``map_coordinates`` on the same voxel values, and the distribution from a fine point
lattice (``truth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import shapely
from scipy.ndimage import map_coordinates

from rtcheck.model import Contour, DoseGrid, GridGeometry, Roi

# ------------------------------------------------------------------------------ shapes


def disc(cx: float, cy: float, r: float, n: int = 360, ccw: bool = True) -> np.ndarray:
    """Regular ``n``-gon inscribed in a circle, ``(n, 2)``."""
    th = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    pts = np.c_[cx + r * np.cos(th), cy + r * np.sin(th)]
    return pts if ccw else pts[::-1]


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle, counter-clockwise."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


@dataclass
class Shape:
    """A structure as contour planes with uniform spacing (slabs = plane +- spacing / 2).

    Attributes
    ----------
    name
        Structure name.
    planes
        ``[(z, [ring, ...]), ...]`` sorted by z; rings ``(n, 2)`` x/y in mm.
    spacing
        Contour spacing (mm); each slab is ``[z - s/2, z + s/2]`` (Nelms end caps).
    solid_cc
        Volume of the continuous solid the contours approximate (no caps), if known.
    """

    name: str
    planes: list[tuple[float, list[np.ndarray]]]
    spacing: float
    solid_cc: float | None = None

    def roi(self, number: int = 1) -> Roi:
        """The shape as a model ROI."""
        contours = tuple(
            Contour(np.c_[ring, np.full(len(ring), z)])
            for z, rings in self.planes
            for ring in rings
        )
        return Roi(number=number, name=self.name, contours=contours)

    def regions(self) -> list[shapely.Geometry]:
        """Even-odd region of every plane."""
        return [
            reduce(shapely.symmetric_difference, [shapely.Polygon(r) for r in rings])
            for _, rings in self.planes
        ]

    @property
    def slab_cc(self) -> float:
        """Exact slab-model volume."""
        return sum(g.area for g in self.regions()) * self.spacing / 1000.0

    def shifted(self, dx: float, dy: float, dz: float) -> Shape:
        """The same shape moved by ``(dx, dy, dz)`` mm."""
        planes = [(z + dz, [r + np.array([dx, dy]) for r in rings]) for z, rings in self.planes]
        return Shape(self.name, planes, self.spacing, self.solid_cc)


def _plane_positions(lo: float, hi: float, spacing: float, offset: float) -> np.ndarray:
    """Positions ``offset + k * spacing`` strictly inside ``(lo, hi)``."""
    k0 = np.ceil((lo - offset) / spacing)
    k1 = np.floor((hi - offset) / spacing)
    z = offset + spacing * np.arange(k0, k1 + 1)
    return z[(z > lo + 1e-9) & (z < hi - 1e-9)]


def sphere(
    center: tuple[float, float, float],
    radius: float,
    spacing: float,
    offset: float = 0.0,
    n: int = 360,
    name: str = "sphere",
) -> Shape:
    """Sphere contoured on planes ``offset + k * spacing``."""
    cx, cy, cz = center
    planes = []
    for z in _plane_positions(cz - radius, cz + radius, spacing, offset):
        r = np.sqrt(radius**2 - (z - cz) ** 2)
        planes.append((float(z), [disc(cx, cy, r, n)]))
    return Shape(name, planes, spacing, 4.0 / 3.0 * np.pi * radius**3 / 1000.0)


def cylinder_z(
    center: tuple[float, float, float],
    radius: float,
    length: float,
    spacing: float,
    offset: float = 0.0,
    n: int = 360,
    name: str = "cylinder_z",
) -> Shape:
    """Cylinder with its axis along z (discs on every plane)."""
    cx, cy, cz = center
    zs = _plane_positions(cz - length / 2, cz + length / 2, spacing, offset)
    planes = [(float(z), [disc(cx, cy, radius, n)]) for z in zs]
    return Shape(name, planes, spacing, np.pi * radius**2 * length / 1000.0)


def cylinder_x(
    center: tuple[float, float, float],
    radius: float,
    length: float,
    spacing: float,
    offset: float = 0.0,
    name: str = "cylinder_x",
) -> Shape:
    """Cylinder with its axis along x (rectangles on every plane)."""
    cx, cy, cz = center
    planes = []
    for z in _plane_positions(cz - radius, cz + radius, spacing, offset):
        h = np.sqrt(radius**2 - (z - cz) ** 2)
        planes.append((float(z), [rect(cx - length / 2, cy - h, cx + length / 2, cy + h)]))
    return Shape(name, planes, spacing, np.pi * radius**2 * length / 1000.0)


def cone_z(
    base: tuple[float, float, float],
    radius: float,
    height: float,
    spacing: float,
    offset: float = 0.0,
    n: int = 360,
    name: str = "cone",
) -> Shape:
    """Cone with its base disc at ``base`` and apex ``height`` mm above (+z)."""
    cx, cy, cz = base
    planes = []
    for z in _plane_positions(cz, cz + height, spacing, offset):
        planes.append((float(z), [disc(cx, cy, radius * (1 - (z - cz) / height), n)]))
    return Shape(name, planes, spacing, np.pi * radius**2 * height / 3000.0)


def tube_z(
    center: tuple[float, float, float],
    r_out: float,
    r_in: float,
    length: float,
    spacing: float,
    offset: float = 0.0,
    n: int = 360,
    name: str = "tube",
) -> Shape:
    """Hollow tube along z: an outer and an inner (hole) contour on every plane."""
    cx, cy, cz = center
    zs = _plane_positions(cz - length / 2, cz + length / 2, spacing, offset)
    # the hole is drawn clockwise, as some systems do; even-odd makes it a hole either way
    planes = [(float(z), [disc(cx, cy, r_out, n), disc(cx, cy, r_in, n, ccw=False)]) for z in zs]
    return Shape(name, planes, spacing, np.pi * (r_out**2 - r_in**2) * length / 1000.0)


def union_planes(name: str, *shapes: Shape) -> Shape:
    """Disjoint shapes with the same spacing as one structure (rings merged per plane)."""
    by_z: dict[float, list[np.ndarray]] = {}
    for s in shapes:
        for z, rings in s.planes:
            key = round(z, 6)
            by_z.setdefault(key, []).extend(rings)
    planes = [(z, by_z[z]) for z in sorted(by_z)]
    solid = sum(s.solid_cc or 0.0 for s in shapes)
    return Shape(name, planes, shapes[0].spacing, solid)


# ------------------------------------------------------------------------------ doses

ORIENTATIONS = {
    # row_dir, col_dir, slice_dir of the stored array
    "HFS": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "FFS": ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
    "HFP": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "FFP": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
}


def dose_grid(
    lo: tuple[float, float, float],
    spacing: tuple[float, float, float],
    shape_xyz: tuple[int, int, int],
    field,
    orientation: str = "HFS",
) -> DoseGrid:
    """A dose grid whose voxel centres cover ``lo + spacing * [0, n-1]`` along x, y, z.

    The voxel values are ``field`` at the centres; ``orientation`` chooses how the same
    values are stored (index directions), which must not change any DVH.
    """
    nx, ny, nz = shape_xyz
    xs = lo[0] + spacing[0] * np.arange(nx)
    ys = lo[1] + spacing[1] * np.arange(ny)
    zs = lo[2] + spacing[2] * np.arange(nz)
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
    values = np.asarray(field(x, y, z), dtype=float)  # [z, y, x], canonical
    row, col, sl = ORIENTATIONS[orientation]
    flips = []
    if row[0] < 0:
        flips.append(2)
    if col[1] < 0:
        flips.append(1)
    if sl[2] < 0:
        flips.append(0)
    stored = np.ascontiguousarray(np.flip(values, axis=tuple(flips))) if flips else values
    origin = (
        xs[-1] if row[0] < 0 else xs[0],
        ys[-1] if col[1] < 0 else ys[0],
        zs[-1] if sl[2] < 0 else zs[0],
    )
    geometry = GridGeometry(
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        row_dir=tuple(float(v) for v in row),  # type: ignore[arg-type]
        col_dir=tuple(float(v) for v in col),  # type: ignore[arg-type]
        slice_dir=tuple(float(v) for v in sl),  # type: ignore[arg-type]
        shape=(nz, ny, nx),
    )
    return DoseGrid(dose_gy=stored, geometry=geometry)


def linear(a: float, g: tuple[float, float, float]):
    """Field ``a + g . (x, y, z)`` (Gy)."""
    return lambda x, y, z: a + g[0] * x + g[1] * y + g[2] * z


def gaussian(peak: float, center: tuple[float, float, float], sigma: float, floor: float = 0.0):
    """Field ``floor + peak * exp(-r^2 / (2 sigma^2))`` (Gy)."""
    cx, cy, cz = center
    return lambda x, y, z: (
        floor + peak * np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2.0 * sigma**2))
    )


# ------------------------------------------------------------------------------ truth


@dataclass
class Truth:
    """A fine-binned reference distribution (independent of rtcheck's DVH code)."""

    centres: np.ndarray
    weights: np.ndarray
    outside_cc: float

    @property
    def volume_cc(self) -> float:
        return float(self.weights.sum())

    @property
    def mean(self) -> float:
        return float(np.dot(self.centres, self.weights) / self.weights.sum())

    def d_pct(self, pct: float) -> float:
        """Minimum dose to the hottest ``pct`` % (linear interpolation of the cumulative)."""
        return self.d_cc(pct / 100.0 * self.volume_cc)

    def d_cc(self, v: float) -> float:
        cum = np.cumsum(self.weights[::-1])  # from the top
        doses = self.centres[::-1]
        return float(np.interp(v, cum - self.weights[::-1] / 2, doses))

    def v_pct(self, dose: float) -> float:
        """Percentage of the volume receiving at least ``dose``."""
        above = self.weights[self.centres >= dose].sum()
        return float(100.0 * above / self.weights.sum())


def truth(
    shape: Shape,
    dose: DoseGrid,
    *,
    points_across: int = 160,
    layers: int = 8,
    bins: int = 400_000,
) -> Truth:
    """Reference DVH of ``shape``'s slab model on ``dose`` by fine lattice integration.

    Every plane's region is sampled on a square lattice (``points_across`` points across
    the shape's largest extent), every slab at ``layers`` mid-points in z; the dose is the
    trilinear interpolation of the voxel values (scipy ``map_coordinates``, order 1).
    """
    regions = shape.regions()
    bounds = np.array([g.bounds for g in regions if not g.is_empty])
    lo_xy, hi_xy = bounds[:, :2].min(axis=0), bounds[:, 2:].max(axis=0)
    h = float(max(hi_xy - lo_xy)) / points_across
    inv = np.linalg.inv(dose.geometry.affine)
    data = dose.dose_gy
    parts_d, parts_w, outside = [], [], 0.0
    for (z, _), region in zip(shape.planes, regions, strict=False):
        if region.is_empty:
            continue
        x0, y0, x1, y1 = region.bounds
        xs = np.arange(x0 + h / 2, x1, h)
        ys = np.arange(y0 + h / 2, y1, h)
        gx, gy = np.meshgrid(xs, ys)
        inside = shapely.contains_xy(region, gx, gy)
        px, py = gx[inside], gy[inside]
        # the lattice area misses the boundary by a fraction: rescale to the exact area
        w_xy = region.area / max(px.size, 1)
        t = shape.spacing
        for zl in z - t / 2 + t * (np.arange(layers) + 0.5) / layers:
            pts = np.c_[px, py, np.full(px.size, zl), np.ones(px.size)] @ inv.T
            ijk = pts[:, :3]
            n = np.array(data.shape[::-1]) - 1
            ok = np.all((ijk >= -1e-6) & (ijk <= n + 1e-6), axis=1)
            w = w_xy * t / layers / 1000.0
            outside += w * float(np.count_nonzero(~ok))
            coords = np.clip(ijk[ok][:, ::-1].T, 0, (n[::-1])[:, None])
            parts_d.append(map_coordinates(data, coords, order=1, mode="nearest"))
            parts_w.append(np.full(parts_d[-1].size, w))
    d = np.concatenate(parts_d)
    w = np.concatenate(parts_w)
    lo, hi = float(d.min()), float(d.max())
    edges = np.linspace(lo, hi + 1e-9 * max(1.0, abs(hi)), bins + 1)
    hw, _ = np.histogram(d, edges, weights=w)
    hwd, _ = np.histogram(d, edges, weights=w * d)
    keep = hw > 0
    return Truth(hwd[keep] / hw[keep], hw[keep], outside)
