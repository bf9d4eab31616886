"""Compute DVHs: validate in Python, loop in kernels (:mod:`rtcheck.dvh._kernels`).

Definition (``docs/dvh.md``): the DVH of a structure is the distribution of the trilinear
interpolation of the RT Dose voxel values over the structure's slab-model volume
(:mod:`rtcheck.geometry.planes`). The engine

1. builds the slab model of the ROI (exact volume from polygon areas x slab thicknesses);
2. chooses an adaptive sampling resolution (:func:`rtcheck.geometry.rasterize.choose_resolution`);
3. per contour plane, rasterizes the even-odd region exactly (fractional coverage of refined
   cells aligned with the dose grid) and cuts its slab into layers at the dose planes and at
   most one cell thick; each covered cell of each layer is a sample at its centre, weighted by
   coverage x cell area x layer thickness;
4. accumulates samples into fine dose bins keeping each bin's weighted mean dose (so bins
   carry no quantisation error beyond 1/n_bins of the structure's dose range);
5. computes the exact max and min of the interpolated dose over the structure.

Samples outside the dose grid are not counted as 0 Gy: their volume is reported
(``DVH.outside_volume_cc`` and a ``dose.partial_coverage`` Finding).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from rtcheck.dvh import _kernels as dk
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import Finding, GeometryError, Severity
from rtcheck.geometry.grid import canonical_dose, is_canonical
from rtcheck.geometry.planes import DEFAULT_GAP_FACTOR, PlaneStack, plane_stack
from rtcheck.geometry.rasterize import (
    MAX_CELLS,
    MAX_SAMPLES,
    MIN_CELL_MM,
    SAMPLES_ACROSS,
    Occupancy,
    Resolution,
    choose_resolution,
)
from rtcheck.model import DoseGrid, GridGeometry, Roi, StructureSet

#: Points this close (mm) outside the box of voxel centres still count as inside (rounding);
#: the same rule as :mod:`rtcheck.geometry.resample`.
INSIDE_TOL_MM = 1e-3
#: Block edge (voxels) of the min/max pyramid used to bound doses quickly.
_BLOCK = 8


@dataclass(frozen=True)
class DvhOptions:
    """How DVHs are computed. The defaults are the reference definition.

    Attributes
    ----------
    end_caps
        Extend the first/last contour planes by half a contour spacing (Nelms 2015).
    interpolation
        ``"trilinear"`` (reference) or ``"nearest"`` (nearest voxel value).
    single_plane_thickness_mm
        Slab thickness of one-plane structures (e.g. the CT slice thickness); None -> 2 mm.
    nominal_spacing_mm
        Contour spacing to expect (e.g. the CT slice thickness), used by the gap rule when a
        structure has only two planes.
    gap_factor
        Spacing ratio that makes a gap between separate parts; None never splits.
    samples_across, min_cell_mm, max_cells, max_samples
        Adaptive resolution (see :func:`rtcheck.geometry.rasterize.choose_resolution`).
    n_bins
        Dose bins over each structure's dose range; each bin keeps its mean dose.
    exact_extremes
        Compute the exact max/min of the interpolated dose over the structure.
    max_layer_mm
        Cut slabs into layers at most this thick; None cuts them only at the dose planes
        (inside a dose voxel the dose is linear in z, and each sample's z spread is exact).
    """

    end_caps: bool = True
    interpolation: str = "trilinear"
    single_plane_thickness_mm: float | None = None
    nominal_spacing_mm: float | None = None
    gap_factor: float | None = DEFAULT_GAP_FACTOR
    samples_across: int = SAMPLES_ACROSS
    min_cell_mm: float = MIN_CELL_MM
    max_cells: int = MAX_CELLS
    max_samples: int = MAX_SAMPLES
    n_bins: int = 16384
    exact_extremes: bool = True
    max_layer_mm: float | None = None

    def __post_init__(self) -> None:
        if self.interpolation not in ("trilinear", "nearest"):
            raise ValueError(
                f"interpolation must be 'trilinear' or 'nearest', not {self.interpolation!r}"
            )
        if min(self.samples_across, self.n_bins, self.max_cells, self.max_samples) < 1:
            raise ValueError("samples_across, n_bins, max_cells and max_samples must be positive")
        if self.single_plane_thickness_mm is not None and self.single_plane_thickness_mm <= 0:
            raise ValueError("single_plane_thickness_mm must be positive")

    @property
    def convention(self) -> str:
        """Names of the volume and dose conventions (shown in reports)."""
        caps = "slab end caps (half spacing)" if self.end_caps else "no end caps"
        dose = "trilinear dose" if self.interpolation == "trilinear" else "nearest-voxel dose"
        return f"{caps}; {dose}"


@dataclass(frozen=True, eq=False)
class PreparedDose:
    """A dose grid made ready for many DVHs: canonical view and a min/max block pyramid."""

    dose: DoseGrid
    block_min: np.ndarray = field(repr=False)
    block_max: np.ndarray = field(repr=False)

    @classmethod
    def of(cls, dose: DoseGrid | PreparedDose) -> PreparedDose:
        """Prepare ``dose`` (returned unchanged when already prepared)."""
        if isinstance(dose, PreparedDose):
            return dose
        canon = canonical_dose(dose)
        values = canon.dose_gy
        if values.size == 0:
            raise GeometryError("the dose grid is empty", canon.source)
        if not np.all(np.isfinite(values)):
            raise GeometryError("the dose grid holds NaN or infinite values", canon.source)
        bmin, bmax = dk.block_extrema(values, _BLOCK)
        return cls(canon, bmin, bmax)

    @property
    def tol(self) -> np.ndarray:
        """Inside tolerance in index units per axis."""
        return INSIDE_TOL_MM / np.asarray(self.dose.geometry.spacing, dtype=float)

    def node_range(self, lo_xyz: np.ndarray, hi_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clipped node index box ``(i, j, k)`` lo/hi around a patient box."""
        g = self.dose.geometry
        o, s = np.asarray(g.origin), np.asarray(g.spacing)
        n = np.array(g.shape[::-1]) - 1
        lo = np.clip(np.floor((lo_xyz - o) / s), 0, n).astype(np.int64)
        hi = np.clip(np.ceil((hi_xyz - o) / s), 0, n).astype(np.int64)
        return lo, hi

    def dose_range(self, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
        """Bounds of the voxel values in the node box ``lo..hi`` (from the pyramid)."""
        b = _BLOCK
        sl = tuple(slice(lo[a] // b, hi[a] // b + 1) for a in (2, 1, 0))
        return float(self.block_min[sl].min()), float(self.block_max[sl].max())


# ------------------------------------------------------------------------------ public API
def compute_dvh(
    dose: DoseGrid | PreparedDose, roi: Roi, *, options: DvhOptions | None = None
) -> DVH:
    """DVH of one ROI on a dose grid.

    Parameters
    ----------
    dose
        The dose (any axis-aligned orientation), or a :class:`PreparedDose` to reuse.
    roi
        The structure; its closed planar contours describe the volume.
    options
        :class:`DvhOptions`; the defaults are the reference definition.

    Raises
    ------
    GeometryError
        The dose grid is oblique, empty or holds non-finite values.
    """
    options = options or DvhOptions()
    prepared = PreparedDose.of(dose)
    stack = plane_stack(
        roi,
        end_caps=options.end_caps,
        single_plane_thickness_mm=options.single_plane_thickness_mm,
        gap_factor=options.gap_factor,
        nominal_spacing_mm=options.nominal_spacing_mm,
    )
    return dvh_from_stack(prepared, stack, options=options, roi_number=roi.number)


def compute_dvhs(
    dose: DoseGrid | PreparedDose,
    rois: StructureSet | Iterable[Roi],
    *,
    options: DvhOptions | None = None,
) -> dict[int, DVH]:
    """DVHs of many ROIs on one dose grid, keyed by ROI number (the dose is prepared once)."""
    prepared = PreparedDose.of(dose)
    items = rois.rois if isinstance(rois, StructureSet) else tuple(rois)
    return {r.number: compute_dvh(prepared, r, options=options) for r in items}


def dvh_from_stack(
    dose: DoseGrid | PreparedDose,
    stack: PlaneStack,
    *,
    options: DvhOptions | None = None,
    roi_number: int | None = None,
) -> DVH:
    """DVH of a structure's slab model (:class:`~rtcheck.geometry.planes.PlaneStack`)."""
    options = options or DvhOptions()
    prepared = PreparedDose.of(dose)
    if stack.is_empty:
        return _empty(stack.name, roi_number, stack.findings, options)
    g = prepared.dose.geometry
    res = choose_resolution(
        stack,
        g,
        samples_across=options.samples_across,
        min_cell_mm=options.min_cell_mm,
        max_cells=options.max_cells,
        max_samples=options.max_samples,
    )
    lo, hi = _dose_bounds(prepared, stack)
    hist, stack = _slab_samples(prepared, stack, res, options, lo, hi)
    sw, swd, stats, bounds = hist
    dmin, dmax = stats[2], stats[3]
    if options.exact_extremes and options.interpolation == "trilinear" and stats[1] > 0:
        # samples sit at centroids inside the structure; the exact extremes are searched
        # from a bound just inside the samples' range (their spread plus rounding), on the
        # planes whose dose bound can beat it
        margin = 2.0 * stats[4] + 1e-9 * max(abs(dmax), abs(dmin), 1.0)
        dmax = _extreme(prepared, stack, 1.0, dmax - margin, dmax, bounds[:, 1])
        dmin = -_extreme(prepared, stack, -1.0, -dmin - margin, -dmin, -bounds[:, 0])
    return _assemble(
        stack.name, roi_number, sw, swd, stats, stack.volume_cc, dmin, dmax, stack.findings, options
    )


def dvh_from_occupancy(
    dose: DoseGrid | PreparedDose,
    occupancy: Occupancy,
    name: str | None = None,
    *,
    options: DvhOptions | None = None,
    roi_number: int | None = None,
    extremes: str = "spread",
) -> DVH:
    """DVH of an :class:`~rtcheck.geometry.rasterize.Occupancy` (e.g. a derived structure).

    Every occupied cell is one sample at its centre (trilinear dose there, spread over the
    cell), weighted by its occupied volume.

    ``extremes``: ``"spread"`` (default) makes Dmax/Dmin the ends of the samples' spreads,
    the ends of the DVH curve: exact for a cell the structure fills where the dose is linear
    (centres alone read half a cell low at a face on the cells' edges), and on the safe side
    where a plane surface cuts a cell (``docs/dvh.md``, third review). ``"centres"``: the
    extremes of the cells' centre doses, for a quantity defined at cell centres (the D2cm
    shell).
    """
    if extremes not in ("spread", "centres"):
        raise ValueError(f"extremes must be 'spread' or 'centres', not {extremes!r}")
    options = options or DvhOptions()
    prepared = PreparedDose.of(dose)
    name = occupancy.name if name is None else name
    volume = occupancy.volume_cc
    if occupancy.fraction.size == 0 or volume <= 0:
        return _empty(name, roi_number, occupancy.findings, options)
    if not is_canonical(occupancy.base):
        raise GeometryError("the occupancy's base grid must be canonical")
    g = prepared.dose.geometry
    geo = occupancy.geometry
    origin = (np.asarray(geo.origin) - np.asarray(g.origin)) / np.asarray(g.spacing)
    step = np.asarray(geo.spacing) / np.asarray(g.spacing)
    top = np.asarray(geo.origin) + (np.array(geo.shape[::-1]) - 1) * np.asarray(geo.spacing)
    lo, hi = prepared.dose_range(*prepared.node_range(np.asarray(geo.origin), top))
    sw, swd, stats = dk.occupancy_histogram(
        np.ascontiguousarray(occupancy.fraction),
        origin,
        step,
        occupancy.cell_volume_cc,
        prepared.dose.dose_gy,
        prepared.tol,
        options.interpolation == "nearest",
        lo,
        hi,
        options.n_bins,
        extremes == "spread",
    )
    structure = volume if occupancy.structure_volume_cc is None else occupancy.structure_volume_cc
    return _assemble(
        name, roi_number, sw, swd, stats, structure, stats[2], stats[3], occupancy.findings, options
    )


# ------------------------------------------------------------------------------ internals
def _dose_bounds(prepared: PreparedDose, stack: PlaneStack) -> tuple[float, float]:
    xmin, ymin, xmax, ymax = stack.xy_bounds()
    lo_xyz = np.array([xmin, ymin, stack.z_lo.min()])
    hi_xyz = np.array([xmax, ymax, stack.z_hi.max()])
    return prepared.dose_range(*prepared.node_range(lo_xyz, hi_xyz))


def _slab_samples(
    prepared: PreparedDose,
    stack: PlaneStack,
    res: Resolution,
    options: DvhOptions,
    lo: float,
    hi: float,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], PlaneStack]:
    """Run the slab kernel over all planes; redo crossing-contour planes exactly.

    Returns ``((sum_w, sum_wd, stats, plane_bounds), stack)`` (see
    :func:`rtcheck.dvh._kernels.slab_histogram`).
    """
    g = prepared.dose.geometry
    (x0, y0, z0), (dx, dy, dz) = g.origin, g.spacing
    boxes = _plane_boxes(stack, g, res)
    w_lo = (stack.z_lo - z0) / dz
    w_hi = (stack.z_hi - z0) / dz
    layer_mm = options.max_layer_mm or float("inf")
    nz = g.shape[0]
    layer_start, layer_w, layer_t = dk.slab_layers(w_lo, w_hi, dz, layer_mm, nz, True)
    cells = stack.plane_area_mm2 * res.fx * res.fy / (dx * dy)
    if res.fx == res.fy == 1 and np.dot(cells, np.diff(layer_start)) > 2 * options.max_samples:
        # a big organ already sampled at the dose voxels: one layer per slab (cut only at the
        # grid's first/last planes) halves the work; each sample keeps its exact z spread
        layer_start, layer_w, layer_t = dk.slab_layers(w_lo, w_hi, dz, layer_mm, nz, False)
    grid = np.array([x0, y0, dx, dy, dz])
    fxy = np.array([float(res.fx), float(res.fy)])
    cost = boxes[:, 2] * boxes[:, 3] * (1 + np.diff(layer_start))

    def run(st: PlaneStack, planes: np.ndarray) -> tuple:
        return dk.slab_histogram(
            st.xy,
            st.ring_start,
            st.ring_factor,
            st.plane_ring_start,
            boxes,
            planes,
            _chunks(cost[planes]),
            layer_start,
            layer_w,
            layer_t,
            prepared.dose.dose_gy,
            grid,
            fxy,
            prepared.tol,
            options.interpolation == "nearest",
            lo,
            hi,
            options.n_bins,
        )

    planes = np.arange(stack.n_planes, dtype=np.int64)
    sw, swd, stats, _, ok, bounds = run(stack, planes)
    bounds = bounds.copy()
    if not np.all(ok):
        bad = planes[~ok]
        stack = stack.with_exact_planes(bad)
        sw2, swd2, stats2, _, _, bounds2 = run(stack, bad)
        bounds[bad] = bounds2
        sw, swd = sw + sw2, swd + swd2
        stats = np.array(
            [
                stats[0] + stats2[0],
                stats[1] + stats2[1],
                min(stats[2], stats2[2]),
                max(stats[3], stats2[3]),
                max(stats[4], stats2[4]),
            ]
        )
    return (sw, swd, stats, bounds), stack


def _plane_boxes(stack: PlaneStack, g: GridGeometry, res: Resolution) -> np.ndarray:
    """Refined-cell box ``(i0, j0, ncol, nrow)`` of every plane."""
    (x0, y0, _), (dx, dy, _) = g.origin, g.spacing
    box = stack.plane_box
    u0 = np.floor((box[:, 0] - x0) / dx * res.fx)
    v0 = np.floor((box[:, 1] - y0) / dy * res.fy)
    u1 = np.ceil((box[:, 2] - x0) / dx * res.fx)
    v1 = np.ceil((box[:, 3] - y0) / dy * res.fy)
    out = np.stack([u0, v0, np.maximum(u1 - u0, 1), np.maximum(v1 - v0, 1)], axis=1)
    return out.astype(np.int64)


#: Chunks of planes per structure. Fixed, not derived from the thread count: the chunks'
#: partial sums are added in chunk order, so the same number of chunks gives bit-identical
#: DVHs whatever NUMBA_NUM_THREADS (``--jobs 1`` and ``--jobs 2`` agree to the last digit).
#: 8 keeps up to 8 threads busy on one structure; each chunk costs three histogram rows
#: (16 chunks were 10 % slower on 2 cores). Batches parallelise across cases anyway.
N_CHUNKS = 8


def _chunks(cost: np.ndarray) -> np.ndarray:
    """Contiguous chunks of planes with about equal cost (:data:`N_CHUNKS` of them)."""
    n = cost.size
    nchunk = max(1, min(n, N_CHUNKS))
    cum = np.cumsum(cost, dtype=float)
    if n == 0 or cum[-1] <= 0:
        return np.array([0, n], dtype=np.int64)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, nchunk) / nchunk, side="right")
    return np.unique(np.concatenate(([0], cuts, [n]))).astype(np.int64)


def _extreme(
    prepared: PreparedDose,
    stack: PlaneStack,
    sign: float,
    start: float,
    fallback: float,
    bound: np.ndarray,
) -> float:
    """Exact max of ``sign * dose`` over the slab model (``fallback`` if below ``start``).

    ``bound[p]`` bounds ``sign * dose`` over plane ``p``'s slab; planes are searched from
    the highest bound down, so the others are skipped quickly.
    """
    g = prepared.dose.geometry
    (x0, y0, z0), (dx, dy, dz) = g.origin, g.spacing
    nx, ny = g.shape[2], g.shape[1]
    box = stack.plane_box
    boxes = np.stack(
        [
            np.maximum(np.floor((box[:, 0] - x0) / dx), 0),
            np.maximum(np.floor((box[:, 1] - y0) / dy), 0),
            np.minimum(np.ceil((box[:, 2] - x0) / dx), nx - 1),
            np.minimum(np.ceil((box[:, 3] - y0) / dy), ny - 1),
        ],
        axis=1,
    ).astype(np.int64)
    order = np.argsort(-bound, kind="stable").astype(np.int64)
    found = float(
        dk.slab_extreme(
            stack.xy,
            stack.ring_start,
            stack.plane_ring_start,
            boxes,
            (stack.z_lo - z0) / dz,
            (stack.z_hi - z0) / dz,
            prepared.dose.dose_gy,
            np.array([x0, y0, dx, dy]),
            prepared.tol,
            sign,
            start,
            np.ascontiguousarray(bound, dtype=np.float64),
            order,
        )
    )
    return found if found > start else fallback


def _assemble(
    name: str,
    roi_number: int | None,
    sw: np.ndarray,
    swd: np.ndarray,
    stats: np.ndarray,
    structure_cc: float,
    dmin: float,
    dmax: float,
    findings: tuple[Finding, ...],
    options: DvhOptions,
) -> DVH:
    keep = sw > 1e-12 * max(float(sw.sum()), 1e-300)  # drop rounding residue of the splats
    doses = swd[keep] / sw[keep]
    volumes = sw[keep]
    found = list(findings)
    outside = float(stats[0])
    if outside > 1e-9 * max(structure_cc, 1e-12):
        pct = 100.0 * outside / structure_cc if structure_cc > 0 else 100.0
        found.append(
            Finding(
                "dose.partial_coverage",
                f"{outside:.3f} cc ({pct:.1f} %) of {name!r} lies outside the dose grid; that "
                "volume is not in the DVH (not counted as 0 Gy)",
                Severity.WARNING,
                subject=name,
            )
        )
    if not volumes.size:
        return DVH(
            name,
            np.zeros(0),
            np.zeros(0),
            structure_volume_cc=structure_cc,
            roi_number=roi_number,
            findings=tuple(found),
            convention=options.convention,
        )
    if options.interpolation == "trilinear":
        # doses of binned samples stay inside the range of the samples
        doses = np.clip(doses, dmin, dmax)
    return DVH(
        name,
        doses,
        volumes,
        structure_volume_cc=structure_cc,
        dmax_gy=float(dmax),
        dmin_gy=float(dmin),
        roi_number=roi_number,
        findings=tuple(found),
        convention=options.convention,
    )


def _empty(
    name: str, roi_number: int | None, findings: tuple[Finding, ...], options: DvhOptions
) -> DVH:
    finding = Finding(
        "structure.empty",
        f"{name!r} has no closed planar contour with area; it has no DVH",
        Severity.WARNING,
        subject=name,
    )
    return DVH(
        name,
        np.zeros(0),
        np.zeros(0),
        structure_volume_cc=0.0,
        roi_number=roi_number,
        findings=(*findings, finding),
        convention=options.convention,
    )
