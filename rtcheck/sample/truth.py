"""Ground-truth DVH metrics of the samples, computed without rtcheck's DVH engine (numpy only).

A structure's volume is what its contours describe (``ARCHITECTURE.md``): each plane's
polygons (even-odd) extruded half-way to the neighbouring planes (half the plane spacing
beyond the end planes). It is sampled densely: scan-line rasterisation of the polygons on a
fine in-plane lattice, several sub-levels per slab, every sample weighted by its volume.
A dose function is evaluated at the samples; metrics come from the weighted samples, and
maxima are refined locally (pattern search inside the structure) so they do not depend on
the lattice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DoseFn = Callable[[np.ndarray], np.ndarray]
Planes = Sequence[tuple[float, Sequence[np.ndarray]]]


@dataclass(frozen=True)
class Slab:
    """One contour plane: z, its extrusion interval and polygons."""

    z: float
    lo: float
    hi: float
    polys: tuple[np.ndarray, ...]


def slabs(planes: Planes) -> list[Slab]:
    """Extrusion intervals: half-way to each neighbour, half a spacing beyond the ends."""
    planes = sorted(((float(z), tuple(p)) for z, p in planes if len(p)), key=lambda t: t[0])
    zs = np.array([z for z, _ in planes])
    if len(zs) == 0:
        return []
    gaps = np.diff(zs)
    default = float(np.median(gaps)) if len(gaps) else 3.0
    out = []
    for n, (z, polys) in enumerate(planes):
        below = gaps[n - 1] if n > 0 else default
        above = gaps[n] if n < len(gaps) else default
        out.append(Slab(z, z - below / 2, z + above / 2, polys))
    return out


def _edges(polys: Sequence[np.ndarray]) -> np.ndarray:
    """``(E, 4)`` edges ``x0, y0, x1, y1`` of closed polygons."""
    rows = []
    for p in polys:
        xy = np.asarray(p, float)[:, :2]
        rows.append(np.hstack([xy, np.roll(xy, -1, axis=0)]))
    return np.vstack(rows)


def lattice_points(polys: Sequence[np.ndarray], step: float) -> tuple[np.ndarray, np.ndarray]:
    """Lattice points ``(x, y)`` (cell centres, spacing ``step``) inside the polygons (even-odd).

    The lattice is anchored at multiples of ``step`` (cell centres at ``(n + 1/2) * step``)
    so neighbouring planes sample the same columns.
    """
    e = _edges(polys)
    x0, y0, x1, y1 = e.T
    ymin, ymax = float(min(y0.min(), y1.min())), float(max(y0.max(), y1.max()))
    j0, j1 = int(np.floor(ymin / step)), int(np.ceil(ymax / step))
    ys = (np.arange(j0, j1 + 1) + 0.5) * step
    y = ys[:, None]
    cross = (y0[None] <= y) != (y1[None] <= y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = np.where(cross, x0 + (y - y0) * (x1 - x0) / (y1 - y0), np.inf)
    xs.sort(axis=1)
    n_cross = cross.sum(axis=1)
    out_x, out_y = [], []
    for k in range(0, int(n_cross.max(initial=0)), 2):
        ok = n_cross > k + 1
        a, b = xs[ok, k], xs[ok, k + 1]
        i0 = np.ceil(a / step - 0.5).astype(int)
        i1 = np.ceil(b / step - 0.5).astype(int)
        counts = np.maximum(i1 - i0, 0)
        if counts.sum() == 0:
            continue
        starts = np.repeat(i0, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        out_x.append((starts + offsets + 0.5) * step)
        out_y.append(np.repeat(ys[ok], counts))
    if not out_x:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(out_x), np.concatenate(out_y)


def inside_polys(polys: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test for arbitrary points."""
    e = _edges(polys)
    e = e[e[:, 1] != e[:, 3]]
    x0, y0, x1, y1 = (c[:, None] for c in e.T)
    px, py = np.ravel(x)[None, :], np.ravel(y)[None, :]
    cross = (y0 <= py) != (y1 <= py)
    xc = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    inside = (np.count_nonzero(cross & (px < xc), axis=0) % 2).astype(bool)
    return inside.reshape(np.shape(x))


@dataclass(frozen=True)
class Samples:
    """Weighted sample points of a structure volume (mm, mm^3)."""

    points: np.ndarray
    weights: np.ndarray
    slabs: tuple[Slab, ...]

    @property
    def volume_cc(self) -> float:
        return float(self.weights.sum()) / 1000.0

    def contains(self, pts: np.ndarray) -> np.ndarray:
        """Whether ``(N, 3)`` points lie in the structure's volume."""
        out = np.zeros(len(pts), bool)
        for s in self.slabs:
            sel = (pts[:, 2] >= s.lo) & (pts[:, 2] < s.hi)
            if sel.any():
                out[sel] = inside_polys(s.polys, pts[sel, 0], pts[sel, 1])
        return out


def plane_area(polys: Sequence[np.ndarray]) -> float:
    """Even-odd area (mm^2) of a plane's polygons: nested ones alternate sign (holes)."""
    total = 0.0
    for n, p in enumerate(polys):
        xy = np.asarray(p, float)[:, :2]
        area = 0.5 * abs(float(np.dot(xy[:, 0], np.roll(xy[:, 1], -1))
                                - np.dot(xy[:, 1], np.roll(xy[:, 0], -1))))  # fmt: skip
        others = [q for m, q in enumerate(polys) if m != n]
        depth = sum(bool(inside_polys([q], xy[:1, 0], xy[:1, 1])[0]) for q in others)
        total += area if depth % 2 == 0 else -area
    return total


def sample_volume(planes: Planes, step: float = 1.0, sublevels: int = 6) -> Samples:
    """Dense weighted samples of the contour-defined volume.

    Lattice points inside each plane's polygons, repeated on ``sublevels`` levels of its
    slab; the weights of a plane are scaled so they add up to the exact (shoelace) area x slab
    thickness, which removes the lattice's area error (a few % for a 1 cm wide cord).
    """
    parts, weights = [], []
    sl = slabs(planes)
    for s in sl:
        x, y = lattice_points(s.polys, step)
        if not len(x):
            continue
        h = (s.hi - s.lo) / sublevels
        w = plane_area(s.polys) / len(x) * h
        for n in range(sublevels):
            z = s.lo + (n + 0.5) * h
            parts.append(np.stack([x, y, np.full(len(x), z)], axis=1))
            weights.append(np.full(len(x), w))
    if not parts:
        return Samples(np.zeros((0, 3)), np.zeros(0), tuple(sl))
    return Samples(np.vstack(parts), np.concatenate(weights), tuple(sl))


def refined_max(fn: DoseFn, samples: Samples, values: np.ndarray, step: float) -> float:
    """Maximum of ``fn`` over the structure: best samples refined by local pattern search."""
    if not len(values):
        return float("nan")
    order = np.argsort(values)[::-1]
    seeds: list[np.ndarray] = []
    for idx in order[:2000]:
        p = samples.points[idx]
        if all(np.linalg.norm(p - q) > 2 * step for q in seeds):
            seeds.append(p)
        if len(seeds) == 6:
            break
    best = float(values[order[0]])
    dz = float(min(s.hi - s.lo for s in samples.slabs)) / 2
    for p in seeds:
        best = max(best, _pattern_search(fn, samples, p, np.array([step, step, dz])))
        best = max(best, _boundary_max(fn, samples, p))
    return best


def _boundary_max(fn: DoseFn, samples: Samples, near: np.ndarray, reach: float = 4.0) -> float:
    """Maximum of ``fn`` on the structure's boundary within ``reach`` mm of ``near``: polygon
    edges densified to 0.1 mm on 31 levels of each slab (maxima of smooth doses over a
    polygon often sit on an edge or a vertex, where a stencil search stalls)."""
    best = -np.inf
    z = float(near[2])
    for s in samples.slabs:
        if s.hi < z - reach or s.lo > z + reach:
            continue
        edges = []
        for poly in s.polys:
            a = np.asarray(poly, float)[:, :2]
            b = np.roll(a, -1, axis=0)
            n = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / 0.1).astype(int), 1)
            t = np.concatenate([np.arange(k) / k for k in n])
            start = np.repeat(a, n, axis=0)
            edges.append(start + t[:, None] * (np.repeat(b, n, axis=0) - start))
        xy = np.vstack(edges)
        xy = xy[np.hypot(xy[:, 0] - near[0], xy[:, 1] - near[1]) <= reach]
        if not len(xy):
            continue
        levels = np.linspace(s.lo, s.hi, 31)
        pts = np.column_stack([np.tile(xy, (len(levels), 1)), np.repeat(levels, len(xy))])
        best = max(best, float(np.max(fn(pts))))
    return best


def _pattern_search(fn: DoseFn, samples: Samples, start: np.ndarray, half: np.ndarray) -> float:
    """Local maximum of ``fn`` inside the structure: a 7x7x7 stencil that moves to the best
    point, and halves when the best point is its centre (or lies inside the stencil)."""
    centre, best = start.copy(), -np.inf
    for _ in range(60):
        axes = [np.linspace(c - h, c + h, 7) for c, h in zip(centre, half, strict=True)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        grid = grid[samples.contains(grid)]
        if not len(grid):
            break
        v = fn(grid)
        k = int(np.argmax(v))
        on_rim = np.any(np.isclose(np.abs(grid[k] - centre), half))
        best, centre = max(best, float(v[k])), grid[k]
        if not on_rim:
            half = half / 2
        if np.all(half < 1e-3):
            break
    return best


# ------------------------------------------------------------------------------ metrics

_METRIC = re.compile(
    r"^(?P<q>Max|Mean|Min|D|V|CV)(?P<x>\d+(?:\.\d+)?)?(?P<xu>cc|%|Gy)?\[(?P<u>Gy|cc|%)\]$"
)


def metric_value(
    metric: str,
    values: np.ndarray,
    weights: np.ndarray,
    *,
    max_value: float | None = None,
    rx_gy: float | None = None,
) -> float:
    """A TG-263 DVH metric from weighted dose samples.

    Supported: ``Max[Gy]``, ``Mean[Gy]``, ``Min[Gy]``, ``D<x>cc[Gy]``, ``D<x>%[Gy]``,
    ``V<x>Gy[cc|%]``, ``V<x>%[cc|%]`` (x % of ``rx_gy``), ``CV<x>Gy[cc]`` (volume below).
    """
    m = _METRIC.match(metric)
    if not m:
        raise ValueError(f"unsupported metric {metric!r}")
    q, xu, unit = m["q"], m["xu"], m["u"]
    x = float(m["x"]) if m["x"] else None
    total = float(weights.sum())
    if q == "Max":
        return float(max_value if max_value is not None else values.max())
    if q == "Min":
        return float(values.min())
    if q == "Mean":
        return float((values * weights).sum() / total)
    assert x is not None
    if q == "D":
        want = x * 1000.0 if xu == "cc" else x / 100.0 * total
        order = np.argsort(values)[::-1]
        cum = np.cumsum(weights[order])
        k = int(np.searchsorted(cum, want))
        return float(values[order][min(k, len(order) - 1)])
    threshold = x if xu == "Gy" else x / 100.0 * float(rx_gy or np.nan)
    sel = values < threshold if q == "CV" else values >= threshold
    vol = float(weights[sel].sum())
    return vol / 1000.0 if unit == "cc" else 100.0 * vol / total
