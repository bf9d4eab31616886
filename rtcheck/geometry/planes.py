"""A ROI's closed planar contours as a stack of planes with slabs: the volume model.

The volume of a structure (see ``docs/dvh.md``) is the union of its contour planes, each an
even-odd polygon region extruded over a slab ``[z_lo, z_hi]``:

* a plane's slab extends half-way to each neighbouring plane (non-uniform spacing allowed);
* the first and last planes extend half a contour spacing outwards (the neighbouring
  spacing; Nelms 2015 convention), or not at all with ``end_caps=False``;
* a *gap* - a spacing wider than ``gap_factor`` times the spacing on both sides of it and
  than the median spacing - separates parts of a structure: it is not filled, and the planes
  on either side get end caps as if they were first/last planes (a Finding says so);
* a structure on a single plane gets ``single_plane_thickness_mm`` (a Finding says so);
* a contour repeated on its plane (same vertices within :data:`DUPLICATE_TOL_MM`, whatever
  its start point and direction; a known export artefact) is kept once, with a WARNING:
  under the even-odd rule the copy would cancel the plane;
* contours inside an odd number of other contours on their plane are holes (even-odd).

Crossing or self-intersecting contours are detected while rasterizing (coverage outside
``[0, 1]``); :meth:`PlaneStack.with_exact_planes` then replaces those planes by the exact
even-odd region computed with shapely.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import reduce

import numpy as np
import shapely

from rtcheck.errors import Finding, Severity
from rtcheck.geometry import _kernels as gk
from rtcheck.model import Roi

#: Contours whose z differ by at most this (mm) lie on one plane.
PLANE_TOL_MM = 0.01
#: Default slab thickness (mm) of a structure contoured on one plane only.
DEFAULT_SINGLE_PLANE_MM = 2.0
#: A spacing this many times wider than its neighbours' (and the median) is a gap.
DEFAULT_GAP_FACTOR = 1.5
#: Two rings of one plane whose vertices all agree within this (mm) are one contour twice.
DUPLICATE_TOL_MM = 1e-3
#: Crossing rings of one plane that overlap by more than this fraction of the plane's union
#: area (and :data:`AMBIGUOUS_OVERLAP_MM2`) make the structure ambiguous: the even-odd rule
#: leaves the overlap out, a union would keep it (docs/io.md, "Third review").
AMBIGUOUS_OVERLAP_FRACTION = 0.01
#: Overlaps below this area (mm^2) are rounding where contours touch, not an ambiguity.
AMBIGUOUS_OVERLAP_MM2 = 1.0


@dataclass(frozen=True, eq=False)
class PlaneStack:
    """The slab model of one structure, packed for the kernels (patient mm).

    Attributes
    ----------
    name
        Structure name (for findings).
    z, z_lo, z_hi
        Plane positions and slab extents, sorted by z, shape ``(P,)``.
    xy
        Ring vertices ``(N, 2)`` (x, y).
    ring_start
        Ring ``r`` is ``xy[ring_start[r]:ring_start[r + 1]]``, shape ``(R + 1,)``.
    plane_ring_start
        Plane ``p`` holds rings ``plane_ring_start[p]`` to ``plane_ring_start[p + 1] - 1``.
    ring_factor
        Per ring: +1/-1 so that accumulated coverage is +1 inside solids and 0 in holes
        (orientation and even-odd parity); 0 for rings without area.
    plane_area_mm2
        Even-odd area of every plane's region.
    findings
        Tolerated problems (single plane, gaps, crossing contours, ignored contours).
    """

    name: str
    z: np.ndarray
    z_lo: np.ndarray
    z_hi: np.ndarray
    xy: np.ndarray
    ring_start: np.ndarray
    plane_ring_start: np.ndarray
    ring_factor: np.ndarray
    plane_area_mm2: np.ndarray
    findings: tuple[Finding, ...] = ()

    @property
    def plane_box(self) -> np.ndarray:
        """``(P, 4)`` boxes ``(xmin, ymin, xmax, ymax)`` of every plane's vertices."""
        _, box = gk.ring_geometry(self.xy, self.ring_start)
        prs = self.plane_ring_start
        out = np.empty((self.n_planes, 4))
        for p in range(self.n_planes):
            rb = box[prs[p] : prs[p + 1]]
            out[p, :2] = rb[:, :2].min(axis=0)
            out[p, 2:] = rb[:, 2:].max(axis=0)
        return out

    @property
    def n_planes(self) -> int:
        """Number of contour planes."""
        return int(self.z.size)

    @property
    def is_empty(self) -> bool:
        """True when the structure describes no volume."""
        return self.n_planes == 0 or self.volume_cc <= 0.0

    @property
    def thickness_mm(self) -> np.ndarray:
        """Slab thickness of every plane."""
        return self.z_hi - self.z_lo

    @property
    def volume_cc(self) -> float:
        """Exact slab-model volume (cm^3): sum of plane areas times slab thicknesses."""
        return float(np.dot(self.plane_area_mm2, self.thickness_mm)) / 1000.0

    def xy_bounds(self, plane: int | None = None) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of all vertices, or of one plane's vertices."""
        if plane is None:
            pts = self.xy
        else:
            a = self.ring_start[self.plane_ring_start[plane]]
            b = self.ring_start[self.plane_ring_start[plane + 1]]
            pts = self.xy[a:b]
        if pts.size == 0:
            return 0.0, 0.0, 0.0, 0.0
        lo = pts.min(axis=0)
        hi = pts.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def plane_rings(self, plane: int) -> list[np.ndarray]:
        """The rings of one plane, as ``(n, 2)`` arrays."""
        rs = self.ring_start
        return [
            self.xy[rs[r] : rs[r + 1]]
            for r in range(self.plane_ring_start[plane], self.plane_ring_start[plane + 1])
        ]

    def perimeter_mm(self, plane: int) -> float:
        """Total ring length of one plane."""
        total = 0.0
        for ring in self.plane_rings(plane):
            total += float(np.sum(np.hypot(*(ring - np.roll(ring, 1, axis=0)).T)))
        return total

    def with_exact_planes(self, planes: np.ndarray) -> PlaneStack:
        """Replace the listed planes by their exact even-odd regions (shapely), with a Finding."""
        planes = np.unique(np.asarray(planes, dtype=np.int64))
        if planes.size == 0:
            return self
        rings: list[list[np.ndarray]] = []
        parities: list[list[int]] = []
        areas = self.plane_area_mm2.copy()
        overlaps: list[tuple[float, float, float]] = []  # (z, overlap, union) of ambiguous planes
        for p in range(self.n_planes):
            if p in planes:
                rp, par, area = _even_odd_region(self.plane_rings(p))
                areas[p] = area
                overlap, union = _crossing_overlap(self.plane_rings(p))
                if overlap > max(AMBIGUOUS_OVERLAP_MM2, AMBIGUOUS_OVERLAP_FRACTION * union):
                    overlaps.append((float(self.z[p]), overlap, union))
            else:
                rp = self.plane_rings(p)
                par = [
                    0 if f * _shoelace(r) <= 0 else 1
                    for r, f in zip(rp, self._factors(p), strict=False)
                ]
            rings.append(rp)
            parities.append(par)
        packed = _pack(rings, parities)
        zs = ", ".join(f"{self.z[p]:.2f}" for p in planes[:10])
        more = f" and {planes.size - 10} more" if planes.size > 10 else ""
        finding = Finding(
            "structure.crossing_contours",
            f"{self.name!r}: contours cross or self-intersect on {planes.size} plane(s) "
            f"(z = {zs}{more} mm); the region was taken by the even-odd rule, computed exactly",
            Severity.WARNING,
            subject=self.name,
        )
        found = (*_overlap_findings(self.name, overlaps), finding)
        return replace(self, **packed, plane_area_mm2=areas, findings=(*self.findings, *found))

    def _factors(self, plane: int) -> np.ndarray:
        return self.ring_factor[self.plane_ring_start[plane] : self.plane_ring_start[plane + 1]]


# ----------------------------------------------------------------------------- slabs
def slab_extents(
    z: np.ndarray,
    *,
    end_caps: bool = True,
    single_plane_thickness_mm: float = DEFAULT_SINGLE_PLANE_MM,
    gap_factor: float | None = DEFAULT_GAP_FACTOR,
    nominal_spacing_mm: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab ``(z_lo, z_hi)`` of every plane of sorted positions ``z``, and the gap mask.

    ``gaps[m]`` is True when the spacing between planes ``m`` and ``m + 1`` is a gap (see
    the module docstring). With two planes only, the spacing is a gap when it exceeds
    ``gap_factor * nominal_spacing_mm`` (e.g. the CT slice thickness), if given.
    """
    z = np.asarray(z, dtype=float)
    n = z.size
    if n == 0:
        return z.copy(), z.copy(), np.zeros(0, dtype=bool)
    if n == 1:
        h = single_plane_thickness_mm / 2.0
        return z - h, z + h, np.zeros(0, dtype=bool)
    d = np.diff(z)
    gaps = _gaps(d, gap_factor, nominal_spacing_mm)
    below = np.empty(n)
    above = np.empty(n)
    below[1:] = np.where(gaps, np.nan, d / 2.0)
    above[:-1] = np.where(gaps, np.nan, d / 2.0)
    below[0] = np.nan
    above[-1] = np.nan
    nominal = float(np.median(d[~gaps])) if np.any(~gaps) else float(np.median(d))
    # a free side mirrors the plane's other side (half the neighbouring spacing)
    cap_below = np.where(np.isnan(above), nominal / 2.0, above)
    cap_above = np.where(np.isnan(below), nominal / 2.0, below)
    if not end_caps:
        isolated = np.isnan(below) & np.isnan(above)
        cap_below = np.where(isolated, cap_below, 0.0)
        cap_above = np.where(isolated, cap_above, 0.0)
    below = np.where(np.isnan(below), cap_below, below)
    above = np.where(np.isnan(above), cap_above, above)
    return z - below, z + above, gaps


def _gaps(d: np.ndarray, gap_factor: float | None, nominal: float | None) -> np.ndarray:
    gaps = np.zeros(d.size, dtype=bool)
    if gap_factor is None:
        return gaps
    if d.size == 1:
        if nominal:
            gaps[0] = d[0] > gap_factor * nominal
        return gaps
    med = float(np.median(d))
    left = np.concatenate(([0.0], d[:-1]))
    right = np.concatenate((d[1:], [0.0]))
    local = np.maximum(left, right)
    return (d > gap_factor * med) & (d > gap_factor * local)


# ----------------------------------------------------------------------------- building
def plane_stack(
    roi: Roi,
    *,
    end_caps: bool = True,
    single_plane_thickness_mm: float | None = None,
    gap_factor: float | None = DEFAULT_GAP_FACTOR,
    nominal_spacing_mm: float | None = None,
) -> PlaneStack:
    """Build the :class:`PlaneStack` of a ROI (closed planar contours only).

    Parameters
    ----------
    roi
        The structure.
    end_caps
        Extend the first and last planes by half a contour spacing (default, Nelms 2015).
    single_plane_thickness_mm
        Slab thickness of a one-plane structure; None means
        :data:`DEFAULT_SINGLE_PLANE_MM`. Either way a Finding states it.
    gap_factor, nominal_spacing_mm
        Gap rule, see :func:`slab_extents`.
    """
    findings = _ignored_contours(roi)
    z, rings = _group_planes(roi)
    rings, dup = _drop_duplicate_rings(roi.name, z, rings)
    findings += dup
    thick = single_plane_thickness_mm or DEFAULT_SINGLE_PLANE_MM
    z_lo, z_hi, gaps = slab_extents(
        z,
        end_caps=end_caps,
        single_plane_thickness_mm=thick,
        gap_factor=gap_factor,
        nominal_spacing_mm=nominal_spacing_mm,
    )
    packed = _pack(rings, None)
    stack = PlaneStack(
        name=roi.name,
        z=z,
        z_lo=z_lo,
        z_hi=z_hi,
        **packed,
        plane_area_mm2=np.zeros(z.size),
        findings=(),
    )
    areas = _plane_areas(stack)
    findings += _slab_findings(roi.name, z, gaps, thick, single_plane_thickness_mm)
    return replace(stack, plane_area_mm2=areas, findings=tuple(findings))


def _group_planes(roi: Roi) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Closed planar contours grouped by plane as in :meth:`Roi.planes` (sorted by z)."""
    contours = roi.dvh_contours
    if not contours:
        return np.zeros(0), []
    zc = np.array([float(c.points[:, 2].mean()) for c in contours])
    order = np.argsort(zc, kind="stable")
    z: list[float] = []
    rings: list[list[np.ndarray]] = []
    for i in order:
        ring = np.asarray(contours[i].points[:, :2], dtype=float)
        if z and abs(zc[i] - z[-1]) <= PLANE_TOL_MM:
            rings[-1].append(ring)
        else:
            z.append(float(zc[i]))
            rings.append([ring])
    return np.array(z), rings


def _drop_duplicate_rings(
    name: str, z: np.ndarray, rings: list[list[np.ndarray]]
) -> tuple[list[list[np.ndarray]], list[Finding]]:
    """Keep one copy of rings repeated on their plane (with a WARNING naming the planes)."""
    out: list[list[np.ndarray]] = []
    where: list[tuple[float, int]] = []
    for zp, plane in zip(z, rings, strict=True):
        kept: list[np.ndarray] = []
        for ring in plane:
            if any(_same_ring(ring, k) for k in kept):
                continue
            kept.append(ring)
        if len(kept) < len(plane):
            where.append((float(zp), len(plane) - len(kept)))
        out.append(kept)
    if not where:
        return rings, []
    n = sum(k for _, k in where)
    zs = ", ".join(f"{zp:.2f}" for zp, _ in where[:10])
    more = f" and {len(where) - 10} more" if len(where) > 10 else ""
    finding = Finding(
        "structure.duplicate_contours",
        f"{name!r}: {n} contour(s) repeat another contour of the same plane (z = {zs}{more} "
        f"mm; vertices within {DUPLICATE_TOL_MM:g} mm); each was used once (under the "
        "even-odd rule a copy would cancel the plane)",
        Severity.WARNING,
        subject=name,
    )
    return out, [finding]


def _same_ring(a: np.ndarray, b: np.ndarray, tol: float = DUPLICATE_TOL_MM) -> bool:
    """True when rings ``a`` and ``b`` have the same vertices within ``tol`` (mm), in the same
    cyclic order, whatever the start vertex and direction (a closing repeat of the first
    vertex is ignored)."""
    a, b = _open_ring(a, tol), _open_ring(b, tol)
    n = len(a)
    if n != len(b) or n == 0:
        return False
    if np.any(np.abs(a.min(axis=0) - b.min(axis=0)) > tol) or np.any(
        np.abs(a.max(axis=0) - b.max(axis=0)) > tol
    ):
        return False
    steps = np.arange(n)
    for s in np.flatnonzero(np.hypot(*(b - a[0]).T) <= tol):
        for order in ((s + steps) % n, (s - steps) % n):
            if np.all(np.hypot(*(b[order] - a).T) <= tol):
                return True
    return False


def _open_ring(ring: np.ndarray, tol: float) -> np.ndarray:
    if len(ring) > 1 and np.hypot(*(ring[-1] - ring[0])) <= tol:
        return ring[:-1]
    return ring


def _pack(rings: list[list[np.ndarray]], parities: list[list[int]] | None) -> dict[str, np.ndarray]:
    """Pack per-plane ring lists into flat arrays; parities None -> computed by nesting."""
    flat = [r for plane in rings for r in plane]
    counts = np.array([len(r) for r in flat], dtype=np.int64)
    ring_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    plane_ring_start = np.concatenate(([0], np.cumsum([len(p) for p in rings]))).astype(np.int64)
    xy = np.ascontiguousarray(np.concatenate(flat) if flat else np.zeros((0, 2)), dtype=float)
    signed, boxes = gk.ring_geometry(xy, ring_start)
    if parities is None:
        depth = gk.ring_depths(xy, ring_start, plane_ring_start, boxes)
        parity = depth % 2
    else:
        parity = np.array([q for plane in parities for q in plane], dtype=np.int64)
    # zero-area rings (e.g. a symmetric figure-8) still get +-1: their coverage then leaves
    # [0, 1] and the plane is redone exactly; degenerate rings cover nothing either way
    orient = np.where(signed > 0, -1.0, 1.0)
    factor = orient * (1 - 2 * parity)
    return {
        "xy": xy,
        "ring_start": ring_start,
        "plane_ring_start": plane_ring_start,
        "ring_factor": factor.astype(float),
    }


def _shoelace(ring: np.ndarray) -> float:
    """Signed area (mm^2), positive for counter-clockwise rings (x right, y up)."""
    x, y = ring[:, 0], ring[:, 1]
    xc, yc = x - x.mean(), y - y.mean()
    return 0.5 * float(np.dot(xc, np.roll(yc, -1)) - np.dot(yc, np.roll(xc, -1)))


def _plane_areas(stack: PlaneStack) -> np.ndarray:
    """Even-odd plane areas: |ring area| with the sign of its nesting parity, summed."""
    signed, _ = gk.ring_geometry(stack.xy, stack.ring_start)
    # ring_factor = -sign(area) * parity_sign, hence -factor * area = parity_sign * |area|
    contrib = -stack.ring_factor * signed
    prs = stack.plane_ring_start
    return np.array([contrib[prs[p] : prs[p + 1]].sum() for p in range(prs.size - 1)])


def _even_odd_region(rings: list[np.ndarray]) -> tuple[list[np.ndarray], list[int], float]:
    """Exact even-odd region of crossing rings: (rings, parities 0 solid/1 hole, area)."""
    polys = [shapely.make_valid(shapely.Polygon(r)) for r in rings if len(r) >= 3]
    region = reduce(shapely.symmetric_difference, polys) if polys else shapely.Polygon()
    parts = [g for g in shapely.get_parts(region) if g.geom_type in ("Polygon", "MultiPolygon")]
    out: list[np.ndarray] = []
    par: list[int] = []
    for part in parts:
        for poly in shapely.get_parts(part):
            out.append(np.asarray(poly.exterior.coords, dtype=float)[:-1, :2])
            par.append(0)
            for hole in poly.interiors:
                out.append(np.asarray(hole.coords, dtype=float)[:-1, :2])
                par.append(1)
    area = float(sum(p.area for p in parts))
    return out, par, area


def _crossing_overlap(rings: list[np.ndarray]) -> tuple[float, float]:
    """Area (mm^2) shared by rings whose boundaries cross, and the union area of the plane.

    Nested rings (a hole inside its outline) share area too but are not counted: only pairs
    where neither ring contains the other, i.e. crossing outlines such as a contour exported
    twice with different vertices, or two overlapping parts meant as a union.
    """
    polys = [shapely.make_valid(shapely.Polygon(r)) for r in rings if len(r) >= 3]
    union = float(shapely.union_all(polys).area) if polys else 0.0
    overlap = 0.0
    for a in range(len(polys)):
        for b in range(a + 1, len(polys)):
            pa, pb = polys[a], polys[b]
            if not pa.intersects(pb) or pa.contains(pb) or pb.contains(pa):
                continue
            overlap += float(pa.intersection(pb).area)
    return overlap, union


def _overlap_findings(name: str, overlaps: list[tuple[float, float, float]]) -> list[Finding]:
    """An ERROR naming the planes whose crossing contours overlap materially."""
    if not overlaps:
        return []
    zs = ", ".join(f"{z:.2f} ({ov:.1f} of {un:.1f} mm^2)" for z, ov, un in overlaps[:5])
    more = f" and {len(overlaps) - 5} more" if len(overlaps) > 5 else ""
    return [
        Finding(
            "structure.overlapping_contours",
            f"{name!r}: contours of one plane overlap on {len(overlaps)} plane(s) (z = {zs}"
            f"{more}); the even-odd rule leaves the overlap out of the structure, a union would "
            "keep it, and rtcheck cannot tell which was meant (a contour exported twice with "
            "other vertices, or parts drawn to overlap): fix the contours",
            Severity.ERROR,
            subject=name,
        )
    ]


def _ignored_contours(roi: Roi) -> list[Finding]:
    ignored = len(roi.contours) - len(roi.dvh_contours)
    if not ignored:
        return []
    kinds = sorted({c.geometric_type.value for c in roi.contours if not c.usable_for_dvh})
    return [
        Finding(
            "structure.ignored_contours",
            f"{roi.name!r}: {ignored} contour(s) that describe no volume ({', '.join(kinds)}) "
            "were not used for the DVH",
            Severity.INFO,
            subject=roi.name,
        )
    ]


def _slab_findings(
    name: str, z: np.ndarray, gaps: np.ndarray, thick: float, stated: float | None
) -> list[Finding]:
    out: list[Finding] = []
    if z.size == 1:
        why = "as stated" if stated else "default; pass the CT slice thickness to change it"
        out.append(
            Finding(
                "structure.single_plane",
                f"{name!r} is contoured on one plane only (z = {z[0]:.2f} mm); a slab "
                f"thickness of {thick:g} mm was used ({why})",
                Severity.WARNING,
                subject=name,
            )
        )
    if np.any(gaps):
        d = np.diff(z)
        nominal = float(np.median(d[~gaps])) if np.any(~gaps) else float(np.median(d))
        where = ", ".join(f"{z[m]:.2f} to {z[m + 1]:.2f}" for m in np.flatnonzero(gaps)[:10])
        large = bool(np.any(d[gaps] > 3.0 * nominal))
        why = (
            "; if the organ continues there (an uncontoured section rather than separate "
            "parts), the dose there is not evaluated: check the contours"
            if large
            else " (it looks like a missed slice)"
        )
        # a WARNING whatever the gap's size: a serial organ (cord) with an uncontoured
        # section at a hot spot would otherwise pass with only an INFO (docs/safety.md)
        out.append(
            Finding(
                "structure.z_gap",
                f"{name!r} has planes without contours between z = {where} mm (contour "
                f"spacing {nominal:g} mm); the gap is not filled: the parts on either side "
                f"end with half-spacing caps{why}",
                Severity.WARNING,
                subject=name,
            )
        )
    return out
