"""Structure volume from contours: the DVH engine's exact slab model, and polygon helpers.

:func:`roi_volume_cc` is the volume the DVH engine uses (``DVH.structure_volume_cc``): the
:class:`~rtcheck.geometry.planes.PlaneStack` of the ROI (``docs/dvh.md``: slabs half-way to
the neighbouring planes, half-spacing end caps, the gap rule, duplicate contours kept once,
even-odd holes, crossing contours taken exactly), built with the same options as the DVH. So
``rtcheck info`` and ``rtcheck dvh`` / ``rtcheck check`` report the same volume.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from rtcheck.errors import Finding, Severity
from rtcheck.geometry.planes import DEFAULT_GAP_FACTOR, PlaneStack, plane_stack
from rtcheck.model import Roi


def polygon_area(points: np.ndarray) -> float:
    """Unsigned area (mm^2) of a simple polygon given as ``(N, 2+)`` points (x, y used)."""
    p = np.asarray(points, dtype=float)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def point_in_polygon(point: np.ndarray, polygon: np.ndarray) -> bool:
    """Even-odd ray-casting test of one ``(x, y)`` point against a polygon."""
    x, y = float(point[0]), float(point[1])
    px, py = polygon[:, 0], polygon[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    crosses = (py > y) != (qy > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = px + (y - py) * (qx - px) / (qy - py)
    return bool(np.count_nonzero(crosses & (x < x_at)) % 2)


def plane_area(polygons: Sequence[np.ndarray]) -> float:
    """Area (mm^2) of the region of one plane's contours under the even-odd rule.

    Contours are assumed not to cross each other (disjoint or nested); a contour inside an odd
    number of others is a hole.
    """
    polys = [np.asarray(p, dtype=float)[:, :2] for p in polygons if len(p) >= 3]
    total = 0.0
    for a, poly in enumerate(polys):
        depth = sum(point_in_polygon(poly[0], other) for b, other in enumerate(polys) if b != a)
        total += (-1) ** depth * polygon_area(poly)
    return max(total, 0.0)


def roi_stack(
    roi: Roi,
    *,
    single_plane_thickness_mm: float | None = None,
    nominal_spacing_mm: float | None = None,
    end_caps: bool = True,
    gap_factor: float | None = DEFAULT_GAP_FACTOR,
) -> PlaneStack:
    """The slab model of ``roi`` exactly as the DVH engine builds it (same keywords as
    :class:`rtcheck.dvh.compute.DvhOptions`)."""
    return plane_stack(
        roi,
        end_caps=end_caps,
        single_plane_thickness_mm=single_plane_thickness_mm,
        gap_factor=gap_factor,
        nominal_spacing_mm=nominal_spacing_mm,
    )


def roi_volume_cc(
    roi: Roi,
    *,
    single_plane_thickness_mm: float | None = None,
    nominal_spacing_mm: float | None = None,
    end_caps: bool = True,
    gap_factor: float | None = DEFAULT_GAP_FACTOR,
) -> float | None:
    """Volume (cm^3) the closed planar contours of ``roi`` describe: the DVH engine's volume.

    Parameters
    ----------
    roi
        The ROI.
    single_plane_thickness_mm
        Slab thickness used when the ROI has contours on one plane only (e.g. the CT slice
        thickness). When None, a one-plane ROI has no defined volume and None is returned
        (the DVH engine would use its 2 mm default and say so in a Finding).
    nominal_spacing_mm, end_caps, gap_factor
        As in :class:`rtcheck.dvh.compute.DvhOptions`; pass the DVH's values to get its
        volume (``rtcheck check`` and ``rtcheck dvh`` use the CT slice thickness for both
        thickness keywords).

    Returns
    -------
    float or None
        0.0 for an ROI without volume contours; None for a one-plane ROI without a thickness.
    """
    return roi_volume(
        roi,
        single_plane_thickness_mm=single_plane_thickness_mm,
        nominal_spacing_mm=nominal_spacing_mm,
        end_caps=end_caps,
        gap_factor=gap_factor,
    )[0]


def roi_volume(
    roi: Roi,
    *,
    single_plane_thickness_mm: float | None = None,
    nominal_spacing_mm: float | None = None,
    end_caps: bool = True,
    gap_factor: float | None = DEFAULT_GAP_FACTOR,
) -> tuple[float | None, tuple[Finding, ...]]:
    """:func:`roi_volume_cc` and the ERROR findings of the contour geometry (overlapping
    contours of one plane...), which make the ROI's DVH unusable in ``rtcheck check``."""
    stack = roi_stack(
        roi,
        single_plane_thickness_mm=single_plane_thickness_mm,
        nominal_spacing_mm=nominal_spacing_mm,
        end_caps=end_caps,
        gap_factor=gap_factor,
    )
    if stack.n_planes == 1 and single_plane_thickness_mm is None:
        return None, ()
    exact = exact_stack(stack)
    errors = tuple(f for f in exact.findings if f.severity is Severity.ERROR)
    return exact.volume_cc, errors


def exact_stack(stack: PlaneStack) -> PlaneStack:
    """``stack`` with its planes of crossing or self-intersecting contours made exact.

    The DVH engine finds such planes while rasterizing (coverage outside [0, 1]) and takes
    their exact even-odd region (:meth:`PlaneStack.with_exact_planes`); without a dose grid
    they are found here with shapely: a ring that is not simple, or two rings of one plane
    whose boundaries meet. (Rings that only touch are made exact too: same area.)
    """
    bad = crossing_planes(stack)
    return stack.with_exact_planes(bad) if bad.size else stack


def crossing_planes(stack: PlaneStack) -> np.ndarray:
    """Indices of the planes holding a self-intersecting ring or two rings that meet."""
    rs, prs = stack.ring_start, stack.plane_ring_start
    rings = np.array(
        [
            shapely.linearrings(stack.xy[rs[r] : rs[r + 1]]) if rs[r + 1] - rs[r] >= 3 else None
            for r in range(rs.size - 1)
        ],
        dtype=object,
    )
    simple = shapely.is_simple(rings) | shapely.is_missing(rings)
    bad = []
    for p in range(stack.n_planes):
        mine = rings[prs[p] : prs[p + 1]]
        if not simple[prs[p] : prs[p + 1]].all():
            bad.append(p)
        elif mine.size > 1:
            pairs = shapely.STRtree(mine).query(mine, predicate="intersects")
            if np.any(pairs[0] != pairs[1]):
                bad.append(p)
    return np.asarray(bad, dtype=np.int64)
