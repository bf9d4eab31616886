"""Analytic solids for the synthetic patient and their axial contours (numpy only).

Every solid answers two questions:

* ``inside(x, y, z)``: vectorised membership (used for the synthetic CT numbers);
* ``sections(z)``: its cross-section with the axial plane ``z`` as a list of
  :class:`Section` (star-shaped pieces with a seed point; a hole is a section with
  ``hole=True`` that lies inside another).

:func:`trace` turns a section into a polygon: rays from the seed, the boundary found as the
*first* point where a ray leaves the section (marching, then bisection), so the polygon is
always simple. The polygons written to the RT Structure Set are the ground truth of a
structure (that is what every DICOM consumer sees); expected DVH values are computed on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Inside2D = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Contour point spacing target (mm) and limits on the number of points per contour.
POINT_SPACING_MM = 5.0
MIN_POINTS = 24
MAX_POINTS = 64
#: Coordinates are rounded to this many decimals (what the file stores).
DECIMALS = 2


@dataclass(frozen=True)
class Section:
    """A star-shaped piece of a solid on one axial plane."""

    seed: tuple[float, float]
    inside: Inside2D
    reach: float
    hole: bool = False


class Solid:
    """Base class: a solid with a z-extent ``[z0, z1]`` (planes outside give no sections)."""

    z0: float = -np.inf
    z1: float = np.inf

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sections(self, z: float) -> list[Section]:
        raise NotImplementedError

    def in_range(self, z: float) -> bool:
        return self.z0 - 1e-9 <= z <= self.z1 + 1e-9


@dataclass(frozen=True)
class EllipticCylinder(Solid):
    """Axis along z: ``((x-cx)/a)^2 + ((y-cy)/b)^2 <= 1`` for ``z0 <= z <= z1``."""

    cx: float
    cy: float
    a: float
    b: float
    z0: float
    z1: float

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        flat = ((x - self.cx) / self.a) ** 2 + ((y - self.cy) / self.b) ** 2 <= 1.0
        return flat & (z >= self.z0) & (z <= self.z1)

    def sections(self, z: float) -> list[Section]:
        if not self.in_range(z):
            return []
        cx, cy, a, b = self.cx, self.cy, self.a, self.b
        return [
            Section(
                (cx, cy),
                lambda x, y: ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0,
                max(a, b) * 1.05,
            )
        ]


@dataclass(frozen=True)
class Ellipsoid(Solid):
    """``sum(((p - c) / semi)^2) <= 1``, optionally clipped to ``[z0, z1]``."""

    c: tuple[float, float, float]
    semi: tuple[float, float, float]
    z0: float = -np.inf
    z1: float = np.inf

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (a, b, c) = self.c, self.semi
        q = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2
        return (q <= 1.0) & (z >= self.z0) & (z <= self.z1)

    def sections(self, z: float) -> list[Section]:
        (cx, cy, cz), (a, b, c) = self.c, self.semi
        t = 1.0 - ((z - cz) / c) ** 2
        if not self.in_range(z) or t <= 0.02:
            return []
        s = float(np.sqrt(t))
        sa, sb = a * s, b * s
        return [
            Section(
                (cx, cy),
                lambda x, y: ((x - cx) / sa) ** 2 + ((y - cy) / sb) ** 2 <= 1.0,
                max(sa, sb) * 1.05,
            )
        ]


def sphere(c: tuple[float, float, float], r: float) -> Ellipsoid:
    """A ball of radius ``r``."""
    return Ellipsoid(c, (r, r, r))


@dataclass(frozen=True)
class Tube(Solid):
    """Union of capsules of radius ``r`` around a polyline (optionally clipped to [z0, z1]).

    The polyline's z must be strictly monotone; the seed of a plane's section is the
    polyline point at that z (or the nearest end).
    """

    path: tuple[tuple[float, float, float], ...]
    r: float
    z0: float = -np.inf
    z1: float = np.inf
    seed_xy: tuple[float, float] | None = None

    def _dist(self, x: np.ndarray, y: np.ndarray, z: np.ndarray | float) -> np.ndarray:
        pts = np.asarray(self.path, float)
        best = np.full(np.broadcast(x, y, z).shape, np.inf)
        for a, b in itertools.pairwise(pts):
            ab = b - a
            t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / (ab @ ab)
            t = np.clip(t, 0.0, 1.0)
            d2 = (x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2
            d2 = d2 + (z - a[2] - t * ab[2]) ** 2
            best = np.minimum(best, d2)
        return np.sqrt(best)

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return (self._dist(x, y, z) <= self.r) & (z >= self.z0) & (z <= self.z1)

    def axis_point(self, z: float) -> tuple[float, float]:
        pts = np.asarray(self.path, float)
        order = np.argsort(pts[:, 2])
        zs, xs, ys = pts[order, 2], pts[order, 0], pts[order, 1]
        return float(np.interp(z, zs, xs)), float(np.interp(z, zs, ys))

    def sections(self, z: float) -> list[Section]:
        if not self.in_range(z):
            return []
        seed = self.seed_xy or self.axis_point(z)
        if self._dist(np.array(seed[0]), np.array(seed[1]), z) > self.r * 0.98:
            return []
        pts = np.asarray(self.path, float)
        reach = float(np.ptp(pts[:, :2], axis=0).max()) + 2 * self.r
        return [Section(seed, lambda x, y: self._dist(x, y, z) <= self.r, reach)]


@dataclass(frozen=True)
class Difference(Solid):
    """``base`` minus the union of ``minus`` (sections keep the base's seeds)."""

    base: Solid
    minus: tuple[Solid, ...]
    z0: float = -np.inf
    z1: float = np.inf

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        keep = self.base.inside(x, y, z) & (z >= self.z0) & (z <= self.z1)
        for m in self.minus:
            keep &= ~m.inside(x, y, z)
        return keep

    def sections(self, z: float) -> list[Section]:
        if not self.in_range(z):
            return []
        out = []
        for s in self.base.sections(z):
            cuts = [m for m in self.minus if m.sections(z)]

            def inside(
                x: np.ndarray,
                y: np.ndarray,
                s: Section = s,
                cuts: list[Solid] = cuts,
                zz: float = float(z),
            ) -> np.ndarray:
                keep = s.inside(x, y)
                for m in cuts:
                    keep = keep & ~m.inside(x, y, np.full(np.shape(x), zz))
                return keep

            sx, sy = np.array([s.seed[0]]), np.array([s.seed[1]])
            if bool(inside(sx, sy)[0]):
                out.append(Section(s.seed, inside, s.reach, s.hole))
        return out


@dataclass(frozen=True)
class Group(Solid):
    """Disjoint solids described as one structure (several contours per plane)."""

    parts: tuple[Solid, ...]

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast(x, y, z).shape, bool)
        for p in self.parts:
            out |= p.inside(x, y, z)
        return out

    def sections(self, z: float) -> list[Section]:
        return [s for p in self.parts for s in p.sections(z)]


@dataclass(frozen=True)
class Shell(Solid):
    """``outer`` minus ``inner`` where ``inner`` lies inside ``outer``: inner contours are holes."""

    outer: Solid
    inner: Solid
    z0: float = -np.inf
    z1: float = np.inf

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        band = self.outer.inside(x, y, z) & ~self.inner.inside(x, y, z)
        return band & (z >= self.z0) & (z <= self.z1)

    def sections(self, z: float) -> list[Section]:
        if not self.in_range(z):
            return []
        holes = [Section(s.seed, s.inside, s.reach, True) for s in self.inner.sections(z)]
        return self.outer.sections(z) + holes


# ------------------------------------------------------------------------------ tracing


def _first_exit(section: Section, directions: np.ndarray) -> np.ndarray:
    """Distance along each unit direction to the first point outside the section."""
    step = float(np.clip(section.reach / 150.0, 0.25, 1.0))
    n = int(np.ceil(section.reach / step)) + 2
    radii = np.arange(1, n + 1) * step
    sx, sy = section.seed
    x = sx + radii[None, :] * directions[:, :1]
    y = sy + radii[None, :] * directions[:, 1:]
    outside = ~section.inside(x, y)
    if not outside[:, -1].all():
        raise ValueError("section reach too small: a ray never leaves the section")
    first = outside.argmax(axis=1)
    lo = np.where(first > 0, radii[np.maximum(first - 1, 0)], 0.0)
    hi = radii[first]
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        out = ~section.inside(sx + mid * directions[:, 0], sy + mid * directions[:, 1])
        hi = np.where(out, mid, hi)
        lo = np.where(out, lo, mid)
    return 0.5 * (lo + hi)


def trace(section: Section, z: float) -> np.ndarray:
    """Closed planar polygon ``(N, 3)`` of a section, rounded to :data:`DECIMALS`."""
    probe = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    dirs = np.stack([np.cos(probe), np.sin(probe)], axis=1)
    r = _first_exit(section, dirs)
    pts = np.stack([r * dirs[:, 0], r * dirs[:, 1]], axis=1)
    perimeter = float(np.sum(np.linalg.norm(np.roll(pts, -1, axis=0) - pts, axis=1)))
    n = int(np.clip(np.ceil(perimeter / POINT_SPACING_MM / 4) * 4, MIN_POINTS, MAX_POINTS))
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    dirs = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    r = _first_exit(section, dirs)
    sx, sy = section.seed
    poly = np.stack([sx + r * dirs[:, 0], sy + r * dirs[:, 1], np.full(n, float(z))], axis=1)
    return np.round(poly, DECIMALS) + 0.0


def plane_contours(solid: Solid, z: float) -> list[np.ndarray]:
    """Every polygon of ``solid`` on plane ``z`` (outer contours and holes)."""
    return [trace(s, z) for s in solid.sections(z)]
