"""Trilinear resampling of dose grids and the common grid of several dose grids (numpy only).

Rules (see ``docs/multiplan.md``):

* The dose between voxel centres is the trilinear interpolation of the voxel values; resampling
  evaluates exactly that field at the target voxel centres.
* A target point is *covered* by a source grid when it lies inside the box spanned by the
  source voxel centres (within :data:`COVERAGE_TOL_MM`). Outside, the source contributes 0 Gy:
  a plan's dose grid not reaching a region is the plan's statement that its dose there is
  negligible. Coverage is returned with every result so callers can flag structures outside
  all grids.
* Grids whose index axes map onto each other (same or flipped orientation, any axis order:
  HFS, FFS, HFP, FFP...) are resampled separably, one axis at a time, which is exactly trilinear
  interpolation; any other pair falls back to a per-point gather, in chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtcheck.errors import GeometryError
from rtcheck.model import DoseGrid, GridGeometry

#: Points this close (mm) outside the voxel-centre box still count as covered (rounding).
COVERAGE_TOL_MM = 1e-3
#: Relative tolerance for "this index axis maps onto exactly one other axis".
_AXIS_MAP_TOL = 1e-9
#: Points per chunk of the gather fallback.
_CHUNK = 1 << 18

CANONICAL_DIRECTIONS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True, eq=False)
class Resampled:
    """A dose evaluated on another grid.

    Attributes
    ----------
    values
        Gy at the target voxel centres, shape ``target.shape``; 0 where not covered.
    covered
        Boolean, True where the target voxel centre lies inside the source voxel-centre box.
    """

    values: NDArray[np.float64]
    covered: NDArray[np.bool_]


# ------------------------------------------------------------------------------- points
def _axis_weights(
    f: NDArray[np.float64], n: int, spacing: float
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
    """Lower/upper neighbour indices, upper weight and inside mask along one index axis."""
    tol = COVERAGE_TOL_MM / spacing
    inside = (f >= -tol) & (f <= (n - 1) + tol)
    fc = np.clip(f, 0.0, n - 1.0)
    if n == 1:
        zero = np.zeros(f.shape, dtype=np.intp)
        return zero, zero, np.zeros(f.shape), inside
    i0 = np.minimum(np.floor(fc).astype(np.intp), n - 2)
    return i0, i0 + 1, fc - i0, inside


def sample_points(
    dose: DoseGrid, xyz: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Trilinear dose at patient points.

    Parameters
    ----------
    dose
        The dose grid.
    xyz
        ``(N, 3)`` patient coordinates (mm).

    Returns
    -------
    values, inside
        Gy at each point (0 outside the voxel-centre box) and the coverage mask.
    """
    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    values = np.zeros(len(pts))
    inside = np.zeros(len(pts), dtype=bool)
    for start in range(0, len(pts), _CHUNK):
        sl = slice(start, start + _CHUNK)
        values[sl], inside[sl] = _sample_chunk(dose, pts[sl])
    return values, inside


def _sample_chunk(
    dose: DoseGrid, pts: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    g = dose.geometry
    ijk = g.patient_to_index(pts)
    nz, ny, nx = g.shape
    i0, i1, wi, ini = _axis_weights(ijk[:, 0], nx, g.spacing[0])
    j0, j1, wj, inj = _axis_weights(ijk[:, 1], ny, g.spacing[1])
    k0, k1, wk, ink = _axis_weights(ijk[:, 2], nz, g.spacing[2])
    a = dose.dose_gy
    out = np.zeros(len(pts))
    for kk, fk in ((k0, 1.0 - wk), (k1, wk)):
        for jj, fj in ((j0, 1.0 - wj), (j1, wj)):
            for ii, fi in ((i0, 1.0 - wi), (i1, wi)):
                out += a[kk, jj, ii] * (fk * fj * fi)
    inside = ini & inj & ink
    out[~inside] = 0.0
    return out, inside


def voxel_centres(geometry: GridGeometry) -> NDArray[np.float64]:
    """Patient coordinates of every voxel centre, shape ``(nz, ny, nx, 3)``."""
    nz, ny, nx = geometry.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return geometry.index_to_patient(np.stack([i, j, k], axis=-1))


# ------------------------------------------------------------------------------- grids
def _axis_map(
    src: GridGeometry, dst: GridGeometry
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """``(M, c)`` with ``src_index = M @ dst_index + c`` when M is a scaled permutation."""
    inv = np.linalg.inv(src.affine)
    full = inv @ dst.affine
    m, c = full[:3, :3], full[:3, 3]
    big = np.abs(m) > _AXIS_MAP_TOL * np.abs(m).max()
    if not (big.sum(axis=0) == 1).all() or not (big.sum(axis=1) == 1).all():
        return None
    return np.where(big, m, 0.0), c


def _interp_axis(
    a: NDArray[np.float64], axis: int, f: NDArray[np.float64], spacing: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Linear interpolation of ``a`` along ``axis`` at fractional positions ``f``."""
    lo, hi, w, inside = _axis_weights(f, a.shape[axis], spacing)
    shape = [1, 1, 1]
    shape[axis] = len(f)
    w_hi = np.where(inside, w, 0.0).reshape(shape)
    w_lo = np.where(inside, 1.0 - w, 0.0).reshape(shape)
    return np.take(a, lo, axis=axis) * w_lo + np.take(a, hi, axis=axis) * w_hi, inside


def _resample_separable(
    dose: DoseGrid, target: GridGeometry, m: NDArray[np.float64], c: NDArray[np.float64]
) -> Resampled:
    src = dose.geometry
    a: NDArray[np.float64] = np.asarray(dose.dose_gy, dtype=np.float64)
    tsize = (target.shape[2], target.shape[1], target.shape[0])  # sizes of i, j, k
    masks: dict[int, NDArray[np.bool_]] = {}
    owner: dict[int, int] = {}  # target index component -> source index component
    order = sorted(range(3), key=lambda s: tsize[int(np.flatnonzero(m[s])[0])] / src.shape[2 - s])
    for s in order:
        t = int(np.flatnonzero(m[s])[0])
        f = m[s, t] * np.arange(tsize[t], dtype=np.float64) + c[s]
        a, masks[t] = _interp_axis(a, 2 - s, f, src.spacing[s])
        owner[t] = s
    # array axis (2 - s) now runs along target component t; reorder to target [k, j, i].
    values = np.ascontiguousarray(np.transpose(a, [2 - owner[2 - p] for p in range(3)]))
    covered = masks[2][:, None, None] & masks[1][None, :, None] & masks[0][None, None, :]
    return Resampled(values, covered)


def _resample_gather(dose: DoseGrid, target: GridGeometry) -> Resampled:
    nz, ny, nx = target.shape
    values = np.zeros(target.shape)
    covered = np.zeros(target.shape, dtype=bool)
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    for k in range(nz):
        ijk = np.stack([i.ravel(), j.ravel(), np.full(i.size, k)], axis=-1)
        v, inside = sample_points(dose, target.index_to_patient(ijk))
        values[k], covered[k] = v.reshape(ny, nx), inside.reshape(ny, nx)
    return Resampled(values, covered)


def resample(dose: DoseGrid, target: GridGeometry) -> Resampled:
    """Evaluate the trilinear dose of ``dose`` at the voxel centres of ``target``.

    Outside the source voxel-centre box the value is 0 and ``covered`` is False.
    """
    if same_geometry(dose.geometry, target):
        values = np.array(dose.dose_gy, dtype=np.float64)
        return Resampled(values, np.ones(target.shape, dtype=bool))
    mapping = _axis_map(dose.geometry, target)
    if mapping is not None:
        return _resample_separable(dose, target, *mapping)
    return _resample_gather(dose, target)


def same_geometry(a: GridGeometry, b: GridGeometry, tol_mm: float = 1e-4) -> bool:
    """True when both grids have the same voxel centres (within ``tol_mm``)."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    return bool(np.allclose(a.affine, b.affine, atol=tol_mm, rtol=0.0))


def sub_grid(geometry: GridGeometry, k0: int, k1: int) -> GridGeometry:
    """The slabs ``k0 <= k < k1`` of ``geometry`` as a grid of their own."""
    if not 0 <= k0 < k1 <= geometry.shape[0]:
        raise ValueError(f"slab {k0}:{k1} outside 0:{geometry.shape[0]}")
    origin = geometry.index_to_patient(np.array([0.0, 0.0, float(k0)]))
    return GridGeometry(
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing=geometry.spacing,
        row_dir=geometry.row_dir,
        col_dir=geometry.col_dir,
        slice_dir=geometry.slice_dir,
        shape=(k1 - k0, geometry.shape[1], geometry.shape[2]),
    )


# ------------------------------------------------------------------------------- common grid
def _axis_spacings(g: GridGeometry) -> list[tuple[int, float, int]]:
    """For each index component: (patient axis, spacing, number of voxels along it)."""
    dirs = (g.row_dir, g.col_dir, g.slice_dir)
    sizes = (g.shape[2], g.shape[1], g.shape[0])
    return [
        (int(np.argmax(np.abs(d))), float(g.spacing[c]), int(sizes[c])) for c, d in enumerate(dirs)
    ]


def _finest(geometries: Sequence[GridGeometry]) -> tuple[list[float], list[int]]:
    """Per patient axis: finest spacing and the index of the grid that has it."""
    best: list[tuple[float, int] | None] = [None, None, None]
    fallback: list[tuple[float, int] | None] = [None, None, None]
    for n, g in enumerate(geometries):
        for p, sp, size in _axis_spacings(g):
            slot = best if size > 1 else fallback
            cur = slot[p]
            if cur is None or sp < cur[0] - 1e-9:
                slot[p] = (sp, n)
    chosen = [b if b is not None else fb for b, fb in zip(best, fallback, strict=True)]
    return [c[0] for c in chosen], [c[1] for c in chosen]  # type: ignore[index]


def common_grid(
    geometries: Sequence[GridGeometry], spacing: float | Sequence[float] | None = None
) -> GridGeometry:
    """An axis-aligned grid in canonical orientation covering every grid in ``geometries``.

    Parameters
    ----------
    geometries
        Axis-aligned source grids (any patient orientation).
    spacing
        None for the finest spacing along each patient axis among the grids (axes with a
        single voxel are ignored unless every grid has one); a number for isotropic spacing;
        or ``(sx, sy, sz)`` along patient x, y, z (mm).

    Returns
    -------
    GridGeometry
        Directions +x, +y, +z. Along each patient axis the voxel centres are aligned with those
        of the grid giving the finest spacing there (so that grid is sampled at its own voxel
        centres) and extend just far enough to cover the union of all voxel-centre boxes.

    Raises
    ------
    GeometryError
        No grids, an oblique grid, or a non-positive spacing.
    """
    if not geometries:
        raise GeometryError("no dose grids to combine")
    for g in geometries:
        if not g.is_axis_aligned:
            raise GeometryError("cannot build a common grid for an oblique dose grid")
    finest, ref = _finest(geometries)
    if spacing is None:
        steps = finest
    elif isinstance(spacing, int | float):
        steps = [float(spacing)] * 3
    else:
        steps = [float(s) for s in spacing]
    if len(steps) != 3 or not all(s > 0 and math.isfinite(s) for s in steps):
        raise GeometryError(f"grid spacing must be positive numbers, got {spacing!r}")
    lows = np.array([g.bounds()[0] for g in geometries]).min(axis=0)
    highs = np.array([g.bounds()[1] for g in geometries]).max(axis=0)
    origin, counts = [], []
    for p in range(3):
        anchor = float(geometries[ref[p]].origin[p])
        tol = COVERAGE_TOL_MM / steps[p]
        below = math.ceil((anchor - lows[p]) / steps[p] - tol)
        start = anchor - below * steps[p]
        origin.append(start)
        counts.append(math.ceil((highs[p] - start) / steps[p] - tol) + 1)
    return GridGeometry(
        origin=(origin[0], origin[1], origin[2]),
        spacing=(steps[0], steps[1], steps[2]),
        row_dir=CANONICAL_DIRECTIONS[0],
        col_dir=CANONICAL_DIRECTIONS[1],
        slice_dir=CANONICAL_DIRECTIONS[2],
        shape=(counts[2], counts[1], counts[0]),
    )


def describe_grid(geometry: GridGeometry) -> str:
    """One line: spacing, size and extent of a grid."""
    dx, dy, dz = geometry.spacing
    nz, ny, nx = geometry.shape
    lo, hi = geometry.bounds()
    box = ", ".join(f"{a:.1f}..{b:.1f}" for a, b in zip(lo, hi, strict=True))
    return (
        f"{dx:g} x {dy:g} x {dz:g} mm, {nx} x {ny} x {nz} voxels, voxel centres x, y, z in {box} mm"
    )


# ------------------------------------------------------------------------------- coverage
def inside_grid(geometry: GridGeometry, xyz: NDArray[np.float64]) -> NDArray[np.bool_]:
    """True for patient points inside the voxel-centre box of ``geometry``."""
    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    ijk = geometry.patient_to_index(pts)
    sizes = (geometry.shape[2], geometry.shape[1], geometry.shape[0])
    inside = np.ones(len(pts), dtype=bool)
    for c in range(3):
        tol = COVERAGE_TOL_MM / geometry.spacing[c]
        inside &= (ijk[:, c] >= -tol) & (ijk[:, c] <= sizes[c] - 1 + tol)
    return inside


def coverage_mask(source: GridGeometry, target: GridGeometry) -> NDArray[np.bool_]:
    """Boolean array of ``source.shape``: True where a source voxel centre lies in ``target``."""
    mapping = _axis_map(target, source)
    if mapping is None:
        return inside_grid(target, voxel_centres(source)).reshape(source.shape)
    m, c = mapping
    ssize = (source.shape[2], source.shape[1], source.shape[0])
    tsize = (target.shape[2], target.shape[1], target.shape[0])
    masks: list[NDArray[np.bool_]] = [np.zeros(0, dtype=bool)] * 3
    for t in range(3):  # target index component t is driven by one source component s
        s = int(np.flatnonzero(m[t])[0])
        f = m[t, s] * np.arange(ssize[s], dtype=np.float64) + c[t]
        tol = COVERAGE_TOL_MM / target.spacing[t]
        masks[s] = (f >= -tol) & (f <= tsize[t] - 1 + tol)
    return masks[2][:, None, None] & masks[1][None, :, None] & masks[0][None, None, :]


# ------------------------------------------------------------------------------- sums
def max_abs_difference(a: DoseGrid, b: DoseGrid) -> float:
    """Largest |a - b| (Gy) over the voxels of ``a`` that ``b`` covers (inf if none)."""
    r = resample(b, a.geometry)
    if not r.covered.any():
        return float("inf")
    return float(np.abs(a.dose_gy - r.values)[r.covered].max())


def sum_doses(doses: Sequence[DoseGrid]) -> tuple[NDArray[np.float64], GridGeometry, bool]:
    """Voxel-wise sum of physical doses of one plan (e.g. its BEAM doses).

    Returns the summed array, its grid (the first dose's grid when all grids are the same,
    else their common grid) and whether the grids were the same (no interpolation).
    """
    first = doses[0].geometry
    if all(same_geometry(first, d.geometry) for d in doses[1:]):
        return np.sum([d.dose_gy for d in doses], axis=0, dtype=np.float64), first, True
    grid = common_grid([d.geometry for d in doses])
    return np.sum([resample(d, grid).values for d in doses], axis=0), grid, False


# ------------------------------------------------------------------------------- regridding
def midpoint_grid(geometry: GridGeometry) -> GridGeometry | None:
    """The grid of cell centres (half a voxel in from each node); None if an axis has 1 voxel."""
    if min(geometry.shape) < 2:
        return None
    origin = geometry.index_to_patient(np.array([0.5, 0.5, 0.5]))
    nz, ny, nx = geometry.shape
    return GridGeometry(
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing=geometry.spacing,
        row_dir=geometry.row_dir,
        col_dir=geometry.col_dir,
        slice_dir=geometry.slice_dir,
        shape=(nz - 1, ny - 1, nx - 1),
    )


def corner_mean(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Trilinear interpolation of ``values`` at the cell centres: the mean of 8 corners."""
    a = np.asarray(values, dtype=np.float64)
    a = a[1:] + a[:-1]
    a = a[:, 1:] + a[:, :-1]
    return (a[:, :, 1:] + a[:, :, :-1]) / 8.0
