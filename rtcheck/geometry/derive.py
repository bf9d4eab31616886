"""Derived structures on fractional occupancy grids: union, difference, margins, rings.

Every operation works on :class:`~rtcheck.geometry.rasterize.Occupancy` objects that live on
the same refined grid (same canonical base grid and refinement factor); the caller rasterizes
the operands with one factor. Results are new occupancies on the smallest common box.

Boolean operations on fractional cells (``docs/evaluation.md``)
-----------------------------------------------------------------
A cell occupied by fractions ``a`` and ``b`` of two structures does not say how the two parts
overlap inside the cell. rtcheck uses the bounded-sum (Lukasiewicz) operations::

    union        min(1, a + b)       exact when the structures do not share the cell's volume
    difference   max(0, a - b)       exact when the subtracted part lies inside the first
    intersection max(0, a + b - 1)   the overlap that cannot be avoided

These are exact for the uses protocols make (left + right lungs, lungs minus the GTVs inside
them). Cells where both fractions are partial are where the truth may differ; the width of
the possible range there is returned as :attr:`BooleanResult.uncertainty_cc` so the caller
can disclose it.

Margins (``expand``, ``shrink``, ``ring``)
------------------------------------------
Distances are exact Euclidean distances between refined cell centres (anisotropic spacing
honoured), computed by a truncated separable distance transform (:func:`distance_to`): the
result is exact for every distance up to the requested margin, which is all a margin needs.
The structure is its cells with occupancy >= 0.5; a cell centre outside it lies on average
half a cell further from the true surface than from the nearest inside centre, so the signed
distance to the surface is estimated as ``d - h/2`` (``h`` the mean cell spacing). The new
occupancy of a cell is a linear ramp of that signed distance over one cell width, which keeps
partial volumes at the new surface. The expanded structure always contains the original
(and a contracted one is always inside it); a ring ``ring(S, r1, r2)`` is
``expand(S, r2) - expand(S, r1)`` (``r1 = 0``: minus ``S`` itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rtcheck.errors import GeometryError
from rtcheck.geometry import _edt_kernels as ek
from rtcheck.geometry.rasterize import Occupancy, common_box

__all__ = [
    "BooleanResult",
    "cell_spacing_zyx",
    "difference",
    "distance_to",
    "expand",
    "intersection",
    "nearest_labels",
    "ring",
    "signed_distance",
    "union",
]

#: Largest number of refined cells a margin operation may create (memory guard).
MAX_MARGIN_CELLS = 16_000_000


@dataclass(frozen=True, eq=False)
class BooleanResult:
    """Outcome of a boolean operation.

    Attributes
    ----------
    occupancy
        The derived structure.
    uncertainty_cc
        Volume (cc) by which the truth may differ from ``occupancy`` because both operands
        only partly fill some cells (0 when no cell is shared by two partial boundaries).
    """

    occupancy: Occupancy
    uncertainty_cc: float


# ----------------------------------------------------------------------------- helpers
def cell_spacing_zyx(occ: Occupancy) -> tuple[float, float, float]:
    """Refined cell spacing in array order ``(z, y, x)`` (mm)."""
    dx, dy, dz = occ.base.spacing
    fx, fy, fz = occ.factor
    return (dz / fz, dy / fy, dx / fx)


def _check_aligned(occs: Sequence[Occupancy]) -> None:
    first = occs[0]
    for other in occs[1:]:
        if not first.aligned_with(other):
            raise GeometryError(
                f"{first.name!r} and {other.name!r} are on different refined grids; rasterize "
                "both with the same base grid and factor before combining them"
            )


def _non_empty(occs: Sequence[Occupancy]) -> list[Occupancy]:
    return [o for o in occs if o.fraction.size and o.volume_cc > 0]


def _on_common_box(occs: Sequence[Occupancy]) -> tuple[list[np.ndarray], Occupancy]:
    """Fractions of ``occs`` on their common box, and a template occupancy of that box."""
    offset, shape = common_box(list(occs))
    placed = [o.embedded(offset, shape) for o in occs]
    return [p.fraction for p in placed], placed[0]


def _empty_like(occ: Occupancy, name: str) -> Occupancy:
    return replace(
        occ,
        offset=(0, 0, 0),
        fraction=np.zeros((0, 0, 0), np.float32),
        name=name,
        structure_volume_cc=0.0,
        findings=(),
    )


def _result(template: Occupancy, fraction: np.ndarray, name: str) -> Occupancy:
    frac = np.clip(fraction, 0.0, 1.0).astype(np.float32)
    out = replace(template, fraction=frac, name=name, findings=())
    return replace(out, structure_volume_cc=out.volume_cc)


def _uncertainty(
    a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, cell: float
) -> float:
    both = (a > 0) & (a < 1) & (b > 0) & (b < 1)
    if not np.any(both):
        return 0.0
    return float(np.sum((hi - lo)[both], dtype=np.float64)) * cell


# ----------------------------------------------------------------------------- booleans
def union(a: Occupancy, b: Occupancy, name: str | None = None) -> BooleanResult:
    """``a + b``: bounded sum ``min(1, a + b)`` of the cell fractions."""
    _check_aligned([a, b])
    name = name or f"{a.name} + {b.name}"
    parts = _non_empty([a, b])
    if not parts:
        return BooleanResult(_empty_like(a, name), 0.0)
    if len(parts) == 1:
        return BooleanResult(_result(parts[0], parts[0].fraction, name), 0.0)
    (fa, fb), tpl = _on_common_box(parts)
    out = np.minimum(1.0, fa + fb)
    unc = _uncertainty(fa, fb, np.maximum(fa, fb), out, a.cell_volume_cc)
    return BooleanResult(_result(tpl, out, name), unc)


def difference(a: Occupancy, b: Occupancy, name: str | None = None) -> BooleanResult:
    """``a - b``: ``max(0, a - b)`` of the cell fractions, on ``a``'s box."""
    _check_aligned([a, b])
    name = name or f"{a.name} - {b.name}"
    if not _non_empty([a]):
        return BooleanResult(_empty_like(a, name), 0.0)
    if not _non_empty([b]):
        return BooleanResult(_result(a, a.fraction, name), 0.0)
    (fa, fb), tpl = _on_common_box([a, b])
    out = np.maximum(0.0, fa - fb)
    unc = _uncertainty(fa, fb, out, np.minimum(fa, 1.0 - fb), a.cell_volume_cc)
    return BooleanResult(_crop(_result(tpl, out, name)), unc)


def intersection(a: Occupancy, b: Occupancy, name: str | None = None) -> BooleanResult:
    """``a & b``: ``max(0, a + b - 1)`` of the cell fractions."""
    _check_aligned([a, b])
    name = name or f"{a.name} & {b.name}"
    if len(_non_empty([a, b])) < 2:
        return BooleanResult(_empty_like(a, name), 0.0)
    (fa, fb), tpl = _on_common_box([a, b])
    out = np.maximum(0.0, fa + fb - 1.0)
    unc = _uncertainty(fa, fb, out, np.minimum(fa, fb), a.cell_volume_cc)
    return BooleanResult(_crop(_result(tpl, out, name)), unc)


def _crop(occ: Occupancy) -> Occupancy:
    """The occupancy on the smallest box holding its non-zero cells."""
    nz = np.nonzero(occ.fraction)
    if not nz[0].size:
        return _empty_like(occ, occ.name)
    lo = [int(ax.min()) for ax in nz]
    hi = [int(ax.max()) + 1 for ax in nz]
    frac = occ.fraction[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    offset = tuple(int(o + d) for o, d in zip(occ.offset, lo, strict=True))
    return replace(occ, offset=offset, fraction=np.ascontiguousarray(frac))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- distances
def distance_to(
    mask: np.ndarray, spacing: Sequence[float], max_mm: float | None = None
) -> np.ndarray:
    """Euclidean distance (mm) from every cell centre to the nearest ``True`` cell centre.

    Exact for distances up to ``max_mm``; cells farther than ``max_mm`` from every ``True``
    cell get ``inf``. See :func:`nearest_feature`.
    """
    return nearest_feature(mask, spacing, max_mm, track=False)[0]


def nearest_feature(
    mask: np.ndarray, spacing: Sequence[float], max_mm: float | None = None, *, track: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact distance (mm) to the nearest ``True`` cell centre, and that cell's flat index.

    The separable exact Euclidean distance transform (Felzenszwalb & Huttenlocher 2012,
    :mod:`rtcheck.geometry._edt_kernels`), one axis after the other, carrying the index of the
    nearest feature along (a feature transform). Linear in the number of cells.

    Parameters
    ----------
    mask
        Boolean array (any number of dimensions matching ``spacing``).
    spacing
        Cell spacing per array axis (mm).
    max_mm
        Optional: distances above it are returned as ``inf``.
    track
        Also return the flat index (into ``mask``) of the nearest feature, else None.
    """
    if mask.ndim != len(spacing):
        raise ValueError("spacing needs one value per array axis")
    f = np.where(mask, 0.0, np.inf)
    ids = np.arange(mask.size, dtype=np.int64).reshape(mask.shape) if track else None
    for axis, step in enumerate(spacing):
        moved = np.moveaxis(f, axis, -1)
        lines = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]))
        if ids is None:
            out, _ = ek.envelope_pass(lines, float(step) ** 2)
        else:
            id_lines = np.ascontiguousarray(np.moveaxis(ids, axis, -1).reshape(lines.shape))
            out, new_ids = ek.envelope_pass_tracked(lines, id_lines, float(step) ** 2)
            ids = np.moveaxis(new_ids.reshape(moved.shape), -1, axis)
        f = np.moveaxis(out.reshape(moved.shape), -1, axis)
    dist = np.sqrt(f)
    if max_mm is not None:
        dist[dist > max_mm + 1e-6] = np.inf
    return dist, ids


#: Occupancies within this of 0 or 1 count as empty / full (rasterizer rounding).
_FRACTION_EPS = 1e-6


def signed_distance(
    occ: Occupancy, pad_mm: float, inside_mm: float = 0.0
) -> tuple[Occupancy, np.ndarray]:
    """Signed distance (mm) to the surface of ``occ`` on a box padded by ``pad_mm``.

    Negative inside. Outside distances up to ``pad_mm`` and inside depths up to
    ``inside_mm`` (plus two cells) are estimated; beyond, values are ``+inf`` / ``-inf``.

    Estimate (``docs/evaluation.md``): the structure is its cells with occupancy >= 0.5. A
    partly occupied cell holds the surface at ``|0.5 - F| h`` from its centre (exact for a
    plane along a grid axis), so its own signed distance is ``(0.5 - F) h``. Any other
    cell takes its exact distance to the nearest cell centre across the surface, minus that
    cell's ``|F - 0.5| h``, and its exact distance to the nearest boundary cell on its own
    side, plus that cell's ``|F - 0.5| h``; the estimate from a partly occupied feature cell
    (the one holding the surface) is preferred, the mean is used when both or neither are.
    ``h`` is the cell size along the direction to the feature.

    Returns
    -------
    (Occupancy, ndarray)
        ``occ`` embedded in the padded box, and the signed distance on that box.
    """
    spacing = cell_spacing_zyx(occ)
    pad = [math.ceil(pad_mm / s) + 2 for s in spacing]
    offset = tuple(int(o - p) for o, p in zip(occ.offset, pad, strict=True))
    shape = tuple(int(n + 2 * p) for n, p in zip(occ.fraction.shape, pad, strict=True))
    if math.prod(shape) > MAX_MARGIN_CELLS:
        raise GeometryError(
            f"a {pad_mm:g} mm margin around {occ.name!r} needs {math.prod(shape)} cells on its "
            "grid; rasterize it more coarsely"
        )
    big = occ.embedded(offset, shape)  # type: ignore[arg-type]
    frac = big.fraction
    inside = frac >= 0.5
    if not np.any(inside):  # smaller than half a cell everywhere: its fullest cell
        inside = frac == frac.max()
    h_mean = float(np.mean(spacing))
    out_max = pad_mm + 2 * max(spacing)
    in_max = max(inside_mm, 0.0) + 2 * max(spacing)
    sd_out = _side_distance(frac, inside, spacing, out_max)
    sd_in = _side_distance(frac, ~inside, spacing, in_max)
    sd = np.where(inside, -sd_in, sd_out)
    partial = (frac > _FRACTION_EPS) & (frac < 1.0 - _FRACTION_EPS)
    sd = np.where(partial, (0.5 - frac) * h_mean, sd)
    return big, sd.astype(np.float32)


def _side_distance(
    frac: np.ndarray, other: np.ndarray, spacing: Sequence[float], max_mm: float
) -> np.ndarray:
    """Distance to the surface for cells not in ``other`` (see :func:`signed_distance`)."""
    layer = ~other & _touches(other)
    d_a, c_a = nearest_feature(other, spacing, max_mm)
    d_b, c_b = nearest_feature(layer, spacing, max_mm)
    e_a, part_a = _feature_estimate(frac, d_a, c_a, spacing, -1.0)
    e_b, part_b = _feature_estimate(frac, d_b, c_b, spacing, +1.0)
    mean = 0.5 * (e_a + e_b)
    with np.errstate(invalid="ignore"):
        best = np.where(part_a & ~part_b, e_a, np.where(part_b & ~part_a, e_b, mean))
    best = np.where(np.isfinite(d_a), best, np.inf)
    return np.maximum(best, 0.0)


def _feature_estimate(
    frac: np.ndarray,
    dist: np.ndarray,
    ids: np.ndarray | None,
    spacing: Sequence[float],
    sign: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``dist + sign |F_c - 0.5| h_c`` for the nearest feature ``c``, and whether c is partial."""
    assert ids is not None
    return ek.feature_estimate(
        np.ascontiguousarray(frac, dtype=np.float32),
        np.ascontiguousarray(dist),
        np.ascontiguousarray(ids),
        np.asarray(spacing, dtype=np.float64),
        float(sign),
        _FRACTION_EPS,
    )


def _touches(mask: np.ndarray) -> np.ndarray:
    """Cells with a face neighbour in ``mask``."""
    out = np.zeros_like(mask)
    for axis in range(mask.ndim):
        n = mask.shape[axis]
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(1, None), slice(None, n - 1)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out


def _ramp(margin: float, sd: np.ndarray, h: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        out = np.clip(0.5 + (margin - sd) / h, 0.0, 1.0)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def expand(occ: Occupancy, margin_mm: float, name: str | None = None) -> Occupancy:
    """Isotropic 3-D margin: ``margin_mm > 0`` grows, ``< 0`` shrinks (see module docstring)."""
    name = name or f"expand({occ.name}, {margin_mm:g})"
    if occ.fraction.size == 0 or occ.volume_cc <= 0:
        return _empty_like(occ, name)
    if margin_mm == 0:
        return _result(occ, occ.fraction, name)
    big, sd = signed_distance(occ, max(margin_mm, 0.0), max(-margin_mm, 0.0))
    h = float(np.mean(cell_spacing_zyx(occ)))
    ramp = _ramp(margin_mm, sd, h)
    frac = np.maximum(big.fraction, ramp) if margin_mm > 0 else np.minimum(big.fraction, ramp)
    return _crop(_result(big, frac, name))


def ring(occ: Occupancy, inner_mm: float, outer_mm: float, name: str | None = None) -> Occupancy:
    """Shell between ``inner_mm`` and ``outer_mm`` outside the surface of ``occ``.

    ``inner_mm = 0`` gives ``expand(occ, outer_mm) - occ`` exactly.
    """
    if not 0 <= inner_mm < outer_mm:
        raise ValueError("ring needs 0 <= inner_mm < outer_mm")
    name = name or f"ring({occ.name}, {inner_mm:g}, {outer_mm:g})"
    if occ.fraction.size == 0 or occ.volume_cc <= 0:
        return _empty_like(occ, name)
    big, sd = signed_distance(occ, outer_mm)
    h = float(np.mean(cell_spacing_zyx(occ)))
    outer = np.maximum(big.fraction, _ramp(outer_mm, sd, h))
    inner = big.fraction if inner_mm == 0 else np.maximum(big.fraction, _ramp(inner_mm, sd, h))
    return _crop(_result(big, np.maximum(0.0, outer - inner), name))


# ----------------------------------------------------------------------------- labels
def nearest_labels(
    features: Sequence[np.ndarray], spacing: Sequence[float], max_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest feature set for every cell (a discrete Voronoi partition).

    Parameters
    ----------
    features
        One boolean array per set (same shape), e.g. each target's cells.
    spacing
        Cell spacing per axis (mm).
    max_mm
        Distances beyond this are not computed: such cells get label ``-1``.

    Returns
    -------
    (labels, distance)
        ``int16`` labels (``-1``: no set within ``max_mm``; ties go to the lower index) and the
        distance (mm) to the nearest set.
    """
    if not features:
        raise ValueError("at least one feature set is needed")
    best = np.full(features[0].shape, np.inf, dtype=np.float32)
    labels = np.full(features[0].shape, -1, dtype=np.int16)
    for n, mask in enumerate(features):
        d = distance_to(mask, spacing, max_mm)
        closer = d < best
        labels[closer] = n
        best = np.minimum(best, d)
    return labels, best
