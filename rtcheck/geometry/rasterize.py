"""Contours -> fractional occupancy on a refined grid aligned with the dose grid.

The refined grid splits every voxel of a canonical base grid (usually the dose grid) into
``fx x fy x fz`` cells whose corners include the base voxel centres, so each cell lies in
one trilinear interpolation patch. A structure's occupancy of a cell is exact:

* in-plane, the exact area of the even-odd polygon region inside the cell's square (signed
  area coverage accumulation, :mod:`rtcheck.geometry._kernels`);
* in z, the exact overlap of every plane's slab with the cell's z range.

Hence ``Occupancy.volume_cc`` equals the slab-model volume whatever the grid (up to float32
rounding). :class:`Occupancy` is the representation derived structures (union, difference,
rings) are built on; the DVH engine samples it (:func:`rtcheck.dvh.compute.dvh_from_occupancy`).
The direct DVH path (:func:`rtcheck.dvh.compute.compute_dvh`) uses the same rasterizer but
samples each plane's slab exactly in z instead of on regular z-cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from rtcheck.errors import Finding, GeometryError
from rtcheck.geometry import _kernels as gk
from rtcheck.geometry.grid import is_canonical, refined_geometry
from rtcheck.geometry.planes import PlaneStack
from rtcheck.model import GridGeometry

#: Refined cells across the structure's in-plane width (4 x area / perimeter).
SAMPLES_ACROSS = 24
#: Finest refined cell (mm).
MIN_CELL_MM = 0.05
#: Most refined cells in one structure's bounding box (coarser cells above).
MAX_CELLS = 8_000_000
#: Most refined cells inside one structure: big organs are sampled at the dose grid or a
#: little finer; with exact centroids and spreads their DVHs need no more.
MAX_SAMPLES = 250_000
#: Largest refinement factor per axis.
MAX_FACTOR = 64
#: Coverage rasters per batch are limited to this many float32 values.
_BATCH_VALUES = 1 << 25


@dataclass(frozen=True)
class Resolution:
    """Sampling resolution chosen for one structure.

    Attributes
    ----------
    fx, fy
        In-plane refinement factors of the base grid.
    cell_mm
        Target cell size (mm); slabs are cut into layers at most this thick.
    """

    fx: int
    fy: int
    cell_mm: float

    def fz(self, dz: float) -> int:
        """z refinement factor for a base slice spacing ``dz``."""
        return _factor(dz, self.cell_mm)


def choose_resolution(
    stack: PlaneStack,
    base: GridGeometry,
    *,
    samples_across: int = SAMPLES_ACROSS,
    min_cell_mm: float = MIN_CELL_MM,
    max_cells: int = MAX_CELLS,
    max_samples: int = MAX_SAMPLES,
) -> Resolution:
    """Adaptive cell size: ``samples_across`` cells across the structure's width.

    The width is ``4 A / P`` (the diameter for a disc, twice the width for a strip) of the
    largest plane. Cells are never finer than ``min_cell_mm``, never so fine that the
    bounding box holds more than ``max_cells`` or the structure about ``max_samples``
    samples (cells x layers), and never coarser than the base grid.
    """
    dx, dy, dz = base.spacing
    if stack.is_empty:
        return Resolution(1, 1, max(dx, dy, dz))
    p = int(np.argmax(stack.plane_area_mm2))
    area = float(stack.plane_area_mm2[p])
    perim = stack.perimeter_mm(p)
    width = 4.0 * area / perim if perim > 0 else math.sqrt(max(area, 1e-12))
    h = max(width / samples_across, min_cell_mm)
    xmin, ymin, xmax, ymax = stack.xy_bounds()
    box = (xmax - xmin + dx) * (ymax - ymin + dy) * (stack.z_hi.max() - stack.z_lo.min() + dz)
    h = min(max(h, (box / max_cells) ** (1.0 / 3.0)), max(dx, dy, dz))
    fx, fy = _factor(dx, h), _factor(dy, h)
    # samples ~ volume / (cell area x layer thickness); layers are slabs cut at dose planes
    layer = max(min(float(np.median(stack.thickness_mm)), dz) / 2.0, 1e-3)
    volume = stack.volume_cc * 1000.0
    while max(fx, fy) > 1 and volume / (dx / fx * dy / fy * layer) > max_samples:
        fx, fy = max(fx - 1, 1), max(fy - 1, 1)
    return Resolution(fx, fy, h)


def _factor(spacing: float, cell: float) -> int:
    """Refinement giving cells at most ~2 % above ``cell`` (so 24.0 / 24 stays one cell)."""
    return int(min(MAX_FACTOR, max(1, math.ceil(spacing / cell - 0.02))))


@dataclass(frozen=True, eq=False)
class Occupancy:
    """Fractional occupancy of a structure on a refined grid aligned with a canonical base grid.

    Attributes
    ----------
    base
        Canonical base grid (usually the canonical dose grid).
    factor
        ``(fx, fy, fz)``: refined cells per base voxel along x, y, z.
    offset
        ``(k0, j0, i0)``: refined-cell index of ``fraction[0, 0, 0]``. Refined cell
        ``(k, j, i)`` spans base fractional indices ``[i / fx, (i + 1) / fx]`` etc.
    fraction
        float32 ``[z, y, x]`` array of occupied fractions in ``[0, 1]``.
    name
        Structure name.
    structure_volume_cc
        Exact slab-model volume when built from contours (else the occupancy volume).
    findings
        Problems met while building it.
    """

    base: GridGeometry
    factor: tuple[int, int, int]
    offset: tuple[int, int, int]
    fraction: np.ndarray
    name: str = ""
    structure_volume_cc: float | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def geometry(self) -> GridGeometry:
        """Geometry of the refined cells held (centres)."""
        shape = tuple(int(n) for n in self.fraction.shape)
        return refined_geometry(self.base, self.factor, self.offset, shape)  # type: ignore[arg-type]

    @property
    def cell_volume_cc(self) -> float:
        """Volume of one refined cell (cm^3)."""
        return self.base.voxel_volume_cc / (self.factor[0] * self.factor[1] * self.factor[2])

    @property
    def volume_cc(self) -> float:
        """Occupied volume (cm^3)."""
        return float(self.fraction.sum(dtype=np.float64)) * self.cell_volume_cc

    def aligned_with(self, other: Occupancy) -> bool:
        """True when both live on the same refined grid (boolean operations are cell-wise)."""
        return self.factor == other.factor and self.base == other.base

    def embedded(self, offset: tuple[int, int, int], shape: tuple[int, int, int]) -> Occupancy:
        """The same occupancy in a larger box (``offset``, ``shape``) of the refined grid."""
        lo = np.subtract(self.offset, offset)
        hi = lo + np.asarray(self.fraction.shape)
        if np.any(lo < 0) or np.any(hi > np.asarray(shape)):
            raise GeometryError("the new box does not contain the occupancy")
        out = np.zeros(shape, dtype=np.float32)
        out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = self.fraction
        return replace(self, offset=tuple(int(v) for v in offset), fraction=out)  # type: ignore[arg-type]


def common_box(occupancies: list[Occupancy]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(offset, shape)`` of the smallest refined box holding all (aligned) occupancies."""
    lo = np.min([o.offset for o in occupancies], axis=0)
    hi = np.max([np.add(o.offset, o.fraction.shape) for o in occupancies], axis=0)
    return tuple(int(v) for v in lo), tuple(int(v) for v in hi - lo)  # type: ignore[return-value]


def rasterize(
    stack: PlaneStack,
    base: GridGeometry,
    factor: tuple[int, int, int] | None = None,
) -> Occupancy:
    """Fractional occupancy of a structure's slab model on the grid refining ``base``.

    Parameters
    ----------
    stack
        The structure (:func:`rtcheck.geometry.planes.plane_stack`).
    base
        A canonical grid (see :func:`rtcheck.geometry.grid.canonical_geometry`).
    factor
        ``(fx, fy, fz)``; None chooses it with :func:`choose_resolution`.
    """
    if not is_canonical(base):
        raise GeometryError("rasterize needs a canonical base grid (see canonical_geometry)")
    if factor is None:
        res = choose_resolution(stack, base)
        factor = (res.fx, res.fy, res.fz(base.spacing[2]))
    fx, fy, fz = (int(f) for f in factor)
    if stack.n_planes == 0:
        return Occupancy(
            base,
            (fx, fy, fz),
            (0, 0, 0),
            np.zeros((0, 0, 0), np.float32),
            stack.name,
            0.0,
            stack.findings,
        )
    box = _box(stack, base, (fx, fy, fz))
    (k0, j0, i0), (nz, ny, nx) = box
    occ = np.zeros((nz, ny, nx), dtype=np.float32)
    dx, dy, dz = base.spacing
    x0, y0, z0 = base.origin
    ox, oy = x0 + i0 * dx / fx, y0 + j0 * dy / fy
    w_lo = (stack.z_lo - z0) / dz * fz
    w_hi = (stack.z_hi - z0) / dz * fz
    batch = max(1, _BATCH_VALUES // max(1, ny * nx))
    for start in range(0, stack.n_planes, batch):
        planes = np.arange(start, min(start + batch, stack.n_planes), dtype=np.int64)
        cov, stack = _coverage(stack, planes, ox, oy, fx / dx, fy / dy, ny, nx)
        gk.add_slabs(occ, cov, w_lo[planes], w_hi[planes], k0)
    return Occupancy(
        base, (fx, fy, fz), (k0, j0, i0), occ, stack.name, stack.volume_cc, stack.findings
    )


def _coverage(
    stack: PlaneStack,
    planes: np.ndarray,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    ny: int,
    nx: int,
) -> tuple[np.ndarray, PlaneStack]:
    """Coverage rasters of some planes; crossing planes are made exact first."""
    args = (stack.xy, stack.ring_start, stack.ring_factor, stack.plane_ring_start)
    cov, _, ok = gk.occupancy_planes(*args, planes, ox, oy, sx, sy, ny, nx)
    if not np.all(ok):
        stack = stack.with_exact_planes(planes[~ok])
        args = (stack.xy, stack.ring_start, stack.ring_factor, stack.plane_ring_start)
        cov, _, ok = gk.occupancy_planes(*args, planes, ox, oy, sx, sy, ny, nx)
    return cov, stack


def _box(
    stack: PlaneStack, base: GridGeometry, factor: tuple[int, int, int]
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Refined-cell box ``(offset, shape)`` holding the whole structure."""
    fx, fy, fz = factor
    dx, dy, dz = base.spacing
    x0, y0, z0 = base.origin
    xmin, ymin, xmax, ymax = stack.xy_bounds()
    i0 = math.floor((xmin - x0) / dx * fx)
    i1 = math.ceil((xmax - x0) / dx * fx)
    j0 = math.floor((ymin - y0) / dy * fy)
    j1 = math.ceil((ymax - y0) / dy * fy)
    k0 = math.floor((stack.z_lo.min() - z0) / dz * fz)
    k1 = math.ceil((stack.z_hi.max() - z0) / dz * fz)
    return (k0, j0, i0), (max(k1 - k0, 1), max(j1 - j0, 1), max(i1 - i0, 1))
