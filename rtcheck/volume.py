"""Structure volume from contours (numpy only): polygon areas and the slab model.

The slab model is the one in ``ARCHITECTURE.md``: every plane of closed contours is extruded
half-way to its neighbouring planes, and half a contour spacing beyond the first and last
planes. Contours inside contours on one plane are holes (even-odd rule). One refinement
(documented in ``docs/io.md``): a plane never extends more than half the ROI's nominal contour
spacing (the median spacing between its planes) towards a neighbour, so a gap between two
separate parts of an ROI is not filled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


def slab_thicknesses(z: Sequence[float]) -> np.ndarray:
    """Thickness (mm) of the slab around each plane position in sorted ``z`` (len >= 2)."""
    zs = np.asarray(z, dtype=float)
    gaps = np.diff(zs)
    nominal = float(np.median(gaps))
    half = np.minimum(gaps, nominal) / 2.0
    below = np.concatenate([[nominal / 2.0], half])
    above = np.concatenate([half, [nominal / 2.0]])
    return below + above


def roi_volume_cc(
    roi: Roi, *, single_plane_thickness_mm: float | None = None, tol_mm: float = 0.01
) -> float | None:
    """Volume (cm^3) the closed planar contours of ``roi`` describe (slab model).

    Parameters
    ----------
    roi
        The ROI.
    single_plane_thickness_mm
        Slab thickness used when the ROI has contours on one plane only (e.g. the CT slice
        thickness). When None, a one-plane ROI has no defined volume and None is returned.
    tol_mm
        Contours whose z differ by at most this lie on one plane.

    Returns
    -------
    float or None
        0.0 for an ROI without volume contours; None for a one-plane ROI without a thickness.
    """
    planes = roi.planes(tol_mm)
    if not planes:
        return 0.0
    areas = np.array([plane_area([c.points for c in cs]) for _, cs in planes])
    if len(planes) == 1:
        if single_plane_thickness_mm is None:
            return None
        return float(areas[0] * single_plane_thickness_mm / 1000.0)
    thick = slab_thicknesses([z for z, _ in planes])
    return float(np.dot(areas, thick) / 1000.0)
