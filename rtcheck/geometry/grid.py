"""Index <-> patient helpers and the canonical view of axis-aligned grids.

A grid is *canonical* when its index axes ``i, j, k`` run along patient ``+x, +y, +z``
(row_dir = (1, 0, 0), col_dir = (0, 1, 0), slice_dir = (0, 0, 1)). Every axis-aligned grid
(HFS, FFS, HFP, FFP, and grids whose index axes are permuted) has a canonical view: the same
voxel centres and values, with array axes transposed and flipped. The DVH engine works on
canonical grids only, so patient orientation cannot change a DVH.

In a canonical grid the fractional index of patient point ``(x, y, z)`` is simply
``((x - x0) / dx, (y - y0) / dy, (z - z0) / dz)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rtcheck.errors import GeometryError
from rtcheck.model import DoseGrid, GridGeometry

#: Direction cosines of a canonical grid.
CANONICAL_DIRS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class AxisMap:
    """How an axis-aligned grid's index axes map onto patient axes.

    Attributes
    ----------
    patient_axis
        For index axes ``(i, j, k)``: the patient axis (0 = x, 1 = y, 2 = z) each runs along.
    sign
        For index axes ``(i, j, k)``: +1 when the index grows with the patient coordinate.
    """

    patient_axis: tuple[int, int, int]
    sign: tuple[int, int, int]

    @property
    def index_axis(self) -> tuple[int, int, int]:
        """For patient axes ``(x, y, z)``: the index axis (0 = i, 1 = j, 2 = k) along it."""
        inv = [0, 0, 0]
        for a, p in enumerate(self.patient_axis):
            inv[p] = a
        return (inv[0], inv[1], inv[2])

    @property
    def is_identity(self) -> bool:
        """True for a canonical grid."""
        return self.patient_axis == (0, 1, 2) and self.sign == (1, 1, 1)


def axis_map(geometry: GridGeometry) -> AxisMap:
    """The :class:`AxisMap` of an axis-aligned grid.

    Raises
    ------
    GeometryError
        The grid is oblique (some index axis is not along a patient axis).
    """
    if not geometry.is_axis_aligned:
        raise GeometryError(
            "the dose grid is oblique (its axes are not along the patient axes); the DVH "
            "engine needs an axis-aligned grid: resample the dose onto an axial grid first"
        )
    dirs = np.array([geometry.row_dir, geometry.col_dir, geometry.slice_dir], dtype=float)
    axes = tuple(int(np.argmax(np.abs(d))) for d in dirs)
    if sorted(axes) != [0, 1, 2]:
        raise GeometryError("two grid axes point along the same patient axis")
    signs = tuple(1 if dirs[a, axes[a]] > 0 else -1 for a in range(3))
    return AxisMap(patient_axis=axes, sign=signs)  # type: ignore[arg-type]


def is_canonical(geometry: GridGeometry) -> bool:
    """True when the grid's i, j, k already run along +x, +y, +z."""
    return geometry.is_axis_aligned and axis_map(geometry).is_identity


def canonical_geometry(geometry: GridGeometry) -> GridGeometry:
    """The canonical view of an axis-aligned grid (same voxel centres)."""
    amap = axis_map(geometry)
    if amap.is_identity:
        return replace(
            geometry,
            row_dir=CANONICAL_DIRS[0],
            col_dir=CANONICAL_DIRS[1],
            slice_dir=CANONICAL_DIRS[2],
        )
    n_ijk = (geometry.shape[2], geometry.shape[1], geometry.shape[0])
    corner = [n_ijk[a] - 1 if amap.sign[a] < 0 else 0 for a in range(3)]
    origin = geometry.index_to_patient(np.array(corner, dtype=float))
    idx = amap.index_axis
    spacing = tuple(float(geometry.spacing[idx[p]]) for p in range(3))
    shape = (n_ijk[idx[2]], n_ijk[idx[1]], n_ijk[idx[0]])
    return GridGeometry(
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing=spacing,  # type: ignore[arg-type]
        row_dir=CANONICAL_DIRS[0],
        col_dir=CANONICAL_DIRS[1],
        slice_dir=CANONICAL_DIRS[2],
        shape=shape,
    )


def canonical_array(array: np.ndarray, geometry: GridGeometry) -> np.ndarray:
    """View of a ``[k, j, i]`` array of ``geometry`` as ``[z, y, x]`` of the canonical grid."""
    amap = axis_map(geometry)
    if amap.is_identity:
        return array
    idx = amap.index_axis
    # array axis of index axis a is 2 - a; canonical array axes are (z, y, x)
    view = np.transpose(array, (2 - idx[2], 2 - idx[1], 2 - idx[0]))
    flips = tuple(ax for ax, p in enumerate((2, 1, 0)) if amap.sign[idx[p]] < 0)
    return np.flip(view, axis=flips) if flips else view


def canonical_dose(dose: DoseGrid) -> DoseGrid:
    """The dose on its canonical grid, as a C-contiguous float64 array (copied only if needed)."""
    geometry = canonical_geometry(dose.geometry)
    values = np.ascontiguousarray(canonical_array(dose.dose_gy, dose.geometry), dtype=np.float64)
    if values is dose.dose_gy and geometry == dose.geometry:
        return dose
    return replace(dose, dose_gy=values, geometry=geometry)


def patient_to_canonical_index(geometry: GridGeometry, xyz: np.ndarray) -> np.ndarray:
    """Fractional ``(i, j, k)`` of ``(..., 3)`` patient points in a canonical grid."""
    xyz = np.asarray(xyz, dtype=float)
    return (xyz - np.asarray(geometry.origin)) / np.asarray(geometry.spacing)


def canonical_index_to_patient(geometry: GridGeometry, ijk: np.ndarray) -> np.ndarray:
    """Patient mm of ``(..., 3)`` fractional ``(i, j, k)`` in a canonical grid."""
    ijk = np.asarray(ijk, dtype=float)
    return ijk * np.asarray(geometry.spacing) + np.asarray(geometry.origin)


def refined_geometry(
    base: GridGeometry,
    factor: tuple[int, int, int],
    offset: tuple[int, int, int],
    shape: tuple[int, int, int],
) -> GridGeometry:
    """Geometry of a sub-box of the grid refining a canonical ``base`` grid.

    Refined cell ``(k, j, i)`` (``offset = (k0, j0, i0)`` added) spans base fractional index
    ``[i / fx, (i + 1) / fx]`` along x (likewise y, z): base voxel centres lie on refined cell
    corners, so every refined cell lies inside one trilinear interpolation patch.
    """
    fx, fy, fz = factor
    k0, j0, i0 = offset
    dx, dy, dz = base.spacing
    x0, y0, z0 = base.origin
    return GridGeometry(
        origin=(x0 + (i0 + 0.5) * dx / fx, y0 + (j0 + 0.5) * dy / fy, z0 + (k0 + 0.5) * dz / fz),
        spacing=(dx / fx, dy / fy, dz / fz),
        row_dir=CANONICAL_DIRS[0],
        col_dir=CANONICAL_DIRS[1],
        slice_dir=CANONICAL_DIRS[2],
        shape=shape,
    )


def same_grid(a: GridGeometry, b: GridGeometry, tol_mm: float = 1e-6) -> bool:
    """True when two grids have the same voxel centres (and index order)."""
    return (
        a.shape == b.shape
        and np.allclose(a.origin, b.origin, atol=tol_mm, rtol=0)
        and np.allclose(a.spacing, b.spacing, atol=tol_mm, rtol=0)
        and np.allclose(
            [a.row_dir, a.col_dir, a.slice_dir], [b.row_dir, b.col_dir, b.slice_dir], atol=1e-9
        )
    )
