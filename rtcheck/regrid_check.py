"""How far a DVH on a summed grid may be from the exact per-plan sum, for one structure.

A composite (:mod:`rtcheck.composite`) is exact at its grid nodes, but the DVH engine
interpolates *between* them, while the exact composite at a point is the sum of each plan's own
trilinear dose there (converted per plan for EQD2/BED). Where a plan's dose has kinks off the
summation grid, or the LQ conversion curves it, the two differ: a point maximum read on the
summed grid can be ~1 % low (``docs/multiplan.md``). For the structure actually evaluated this
module measures

* ``uncertainty_gy``: the largest ``|trilinear of the summed grid - exact sum|`` over the
  structure's sample points (centres of its occupied refined cells) and the centres of the
  summation-grid cells it touches (where the difference is largest for smooth fields);
* ``exact_max_gy``: the largest exact sum over the structure's sample points and over the
  nodes of every plan grid inside it (near the hottest points). Inside one cell of the union
  of all plan grids' node planes every plan dose is multilinear, so the exact sum (physical,
  or EQD2/BED: convex along each axis) peaks at such a node or on the structure's surface.
  Only points in cells the structure fills completely count (a boundary cell's centre may lie
  outside it); maxima on the surface are the DVH engine's, exact for the summed grid, which
  is why the evaluator bounds the true maximum by ``DVH max + uncertainty_gy`` too.

* per metric (:meth:`RegridCheck.metric_pair`): the metric of the exact sum and of the summed
  grid at the same (evenly chosen) sample points, whose difference is the re-gridding error
  of that metric.

The evaluator (``docs/evaluation.md``): a maximum is the larger of the DVH value and
``exact_max_gy`` and passes only if ``max(exact_max_gy, DVH max + uncertainty_gy)`` passes;
any other metric passes only if it also passes when shifted by its own re-gridding error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from rtcheck.composite import Composite, sample_composite
from rtcheck.dvh.dvh import DVH
from rtcheck.geometry.grid import canonical_geometry
from rtcheck.geometry.rasterize import Occupancy
from rtcheck.geometry.resample import sample_points
from rtcheck.metrics import Metric
from rtcheck.model import GridGeometry

#: At most this many structure points get the exact per-plan sum (each costs one trilinear
#: look-up per plan); beyond it, an even subsample plus every point near the maximum.
MAX_EXACT_POINTS = 400_000
#: Plan-grid nodes checked for the exact maximum (near the hottest points) at most.
MAX_LATTICE_POINTS = 1_000_000
#: Occupancy from which a refined cell counts as completely inside the structure.
FULL = 0.999


@dataclass(frozen=True, eq=False)
class RegridCheck:
    """Interpolation uncertainty of a composite over one structure.

    Attributes
    ----------
    uncertainty_gy
        Largest |summed-grid interpolation - exact per-plan sum| found (Gy of the composite).
    exact_max_gy
        Largest exact per-plan sum at the structure's sample points and plan-grid nodes.
    points
        Number of points where the exact sum was computed.
    exact_gy, grid_gy, weights_cc
        At an even sample of the structure's points: the exact sum, the summed grid's
        interpolation, and the volume each point stands for (adding up to the structure's
        occupied volume).
    """

    uncertainty_gy: float
    exact_max_gy: float | None
    points: int
    exact_gy: NDArray[np.float64] = field(repr=False)
    grid_gy: NDArray[np.float64] = field(repr=False)
    weights_cc: NDArray[np.float64] = field(repr=False)

    def describe(self) -> str:
        """One line for a constraint's note."""
        top = (
            ""
            if self.exact_max_gy is None
            else f", largest exact sum inside (off the surface) {self.exact_max_gy:.4g} Gy"
        )
        return (
            f"exact per-plan sum checked at {self.points} points: summed-grid interpolation "
            f"differs by up to {self.uncertainty_gy:.3g} Gy{top}"
        )

    def metric_pair(self, metric: Metric, rx: float | None) -> tuple[float, float]:
        """``metric`` from the exact sum and from the summed grid, at the same sample points.

        Raises
        ------
        MetricNotComputable
            As :meth:`rtcheck.metrics.Metric.evaluate`.
        """
        out = []
        for values in (self.exact_gy, self.grid_gy):
            dvh = DVH("regrid check", values, self.weights_cc)
            out.append(float(metric.evaluate(dvh, prescription_gy=rx)))
        return out[0], out[1]


def regrid_check(comp: Composite, occ: Occupancy) -> RegridCheck | None:
    """Compare the summed grid with the exact per-plan sum over an occupancy.

    Returns None when the composite cannot be sampled exactly (voxel-wise alpha/beta) or the
    structure has no occupied cell inside any plan grid.
    """
    if comp.method != "physical" and comp.alpha_beta is None:
        return None
    idx = np.argwhere(occ.fraction > 0)
    if idx.size == 0:
        return None
    geo = occ.geometry
    inner = np.asarray(geo.origin) + idx[:, ::-1] * np.asarray(geo.spacing)
    weights = occ.fraction[tuple(idx.T)].astype(np.float64) * occ.cell_volume_cc
    gridded, _ = sample_points(comp.dose, inner)
    even = _even(len(inner))
    hot = np.flatnonzero(gridded >= gridded.max() - _reach(comp, gridded))
    if hot.size > MAX_EXACT_POINTS // 2:
        hot = np.argpartition(gridded, -(MAX_EXACT_POINTS // 2))[-(MAX_EXACT_POINTS // 2) :]
    chosen = np.union1d(even, hot)
    # exact maxima: the structure's sample points and the plan grids' own nodes inside it
    # (each plan's trilinear dose has its kinks there); the error: also the summation cells
    nodes = _lattice(comp, occ, inner[hot])
    n_nodes = len(nodes)
    tops = np.vstack([inner[chosen], nodes])
    pts = np.vstack([tops, _cell_centres(comp, inner)])
    exact, cover = sample_composite(
        comp.plan_doses, pts, method=comp.method, alpha_beta=comp.alpha_beta, force_physical=True
    )
    grid_vals, _ = sample_points(comp.dose, pts)
    inside = cover > 0
    if not inside.any():
        return None
    diff = np.abs(grid_vals - exact)[inside]
    # maxima only from points surely inside the structure (cells it fills completely): a
    # boundary cell's centre may lie outside; the surface is the DVH engine's (exact) business
    full = np.concatenate([occ.fraction[tuple(idx[chosen].T)] >= FULL, np.ones(n_nodes, bool)])
    top_ok = inside[: len(tops)] & full
    top = float(exact[: len(tops)][top_ok].max()) if top_ok.any() else None
    at = np.searchsorted(chosen, even)  # positions of the even sample within ``chosen``
    w = weights[even] * (weights.sum() / weights[even].sum())
    return RegridCheck(float(diff.max()), top, int(inside.sum()), exact[at], grid_vals[at], w)


def _even(n: int) -> NDArray[np.int64]:
    """All indices, or an even subsample of about half :data:`MAX_EXACT_POINTS`."""
    if n <= MAX_EXACT_POINTS:
        return np.arange(n)
    return np.arange(0, n, int(np.ceil(2 * n / MAX_EXACT_POINTS)))


def _reach(comp: Composite, gridded: NDArray[np.float64]) -> float:
    """How far below the summed-grid maximum the exact maximum may hide."""
    if comp.regrid_error_gy is not None:
        return 2.0 * comp.regrid_error_gy
    return float(np.ptp(gridded))


def _lattice(comp: Composite, occ: Occupancy, hot: NDArray[np.float64]) -> NDArray[np.float64]:
    """Nodes of every plan grid (all combinations of their grid lines) near ``hot`` points
    and inside cells the structure fills completely; none when that would be too many."""
    if hot.size == 0:
        return np.zeros((0, 3))
    lo, hi = hot.min(axis=0), hot.max(axis=0)
    axes = []
    for a in range(3):
        lines = [_grid_lines(pd.dose.geometry, a, lo[a], hi[a]) for pd in comp.plan_doses]
        axes.append(np.unique(np.round(np.concatenate(lines), 6)))
    if np.prod([len(v) for v in axes], dtype=np.float64) > MAX_LATTICE_POINTS:
        return np.zeros((0, 3))
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    pts = np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    geo = occ.geometry
    cell = np.floor((pts - np.asarray(geo.origin)) / np.asarray(geo.spacing) + 0.5).astype(int)
    size = np.array(occ.fraction.shape[::-1])
    ok = np.all((cell >= 0) & (cell < size), axis=1)
    ok[ok] = occ.fraction[cell[ok, 2], cell[ok, 1], cell[ok, 0]] >= FULL
    return pts[ok]


def _grid_lines(g: GridGeometry, axis: int, lo: float, hi: float) -> NDArray[np.float64]:
    """Coordinates (mm) of a grid's node planes across patient ``axis`` within ``[lo, hi]``."""
    c = canonical_geometry(g)
    n = c.shape[::-1][axis]
    coords = c.origin[axis] + c.spacing[axis] * np.arange(n)
    return coords[(coords >= lo) & (coords <= hi)]


def _cell_centres(comp: Composite, xyz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Centres of the summation-grid cells holding ``xyz`` (each cell once)."""
    g = canonical_geometry(comp.dose.geometry)
    o, s = np.asarray(g.origin), np.asarray(g.spacing)
    top = np.maximum(np.array(g.shape[::-1]) - 2, 0)
    ijk = np.clip(np.floor((xyz - o) / s), 0, top).astype(np.int64)
    ijk = np.unique(ijk, axis=0)
    return o + (ijk + 0.5) * s
