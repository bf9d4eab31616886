"""Lesions: which targets are lesions, their prescriptions, and per-lesion plan-quality metrics.

Definitions (``docs/evaluation.md``; constraints.md section 5):

* TV: target (PTV) volume from its contours. PIV: volume receiving at least the lesion's
  prescription (Rx); PIV50: at least 50 % of Rx; TV_PIV: target volume receiving at least Rx.
* RTOG CI = R100% = PIV / TV; Paddick CI = TV_PIV^2 / (TV x PIV); Paddick GI = PIV50 / PIV;
  R50% = PIV50 / TV; D2cm = maximum dose 20-22 mm outside the PTV surface, in % of Rx.
* Isodose volumes are measured over the whole dose grid, sampled like any DVH (trilinear dose at
  refined cell centres, :func:`rtcheck.dvh.compute.dvh_from_occupancy`).
* **Nearest-lesion rule.** When one dose holds several lesions, every point of the isodose
  volumes (and of the D2cm shell) is attributed to the lesion whose PTV is nearest (exact
  Euclidean distance to the PTV's voxels on the dose grid; ties to the first lesion). Limits:
  the boundary between two lesions is placed on the dose grid (within half a voxel); when the
  isodose clouds of two lesions meet, the split follows distance, not dose, and a finding
  says so (their CI/GI/R50% are then approximate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rtcheck.dvh.compute import DvhOptions, PreparedDose, dvh_from_occupancy, dvh_from_stack
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import Finding, Severity
from rtcheck.geometry import derive
from rtcheck.geometry.planes import PlaneStack, plane_stack
from rtcheck.geometry.rasterize import MAX_CELLS, Occupancy, choose_resolution, rasterize
from rtcheck.model import DoseGrid, GridGeometry, Roi
from rtcheck.names import TargetCandidate, TargetKind, TargetSearch
from rtcheck.resolve import outside_tolerance_cc

#: Kinds of target that are lesions, in order of preference.
LESION_KINDS = (TargetKind.PTV, TargetKind.ITV, TargetKind.CTV, TargetKind.GTV)
#: The D2cm shell: from 20 mm to this distance outside the PTV surface.
D2CM_INNER_MM = 20.0
D2CM_OUTER_MM = 22.0
#: Largest number of refined cells for an isodose or shell occupancy.
_MAX_RING_CELLS = 2_000_000


def lesion_targets(search: TargetSearch) -> tuple[TargetKind | None, tuple[TargetCandidate, ...]]:
    """The lesions: every target of the first kind present among PTV, ITV, CTV, GTV."""
    for kind in LESION_KINDS:
        found = search.of_kind(kind)
        if found:
            return kind, found
    return None, ()


# ----------------------------------------------------------------------------- plan maximum
@dataclass(frozen=True)
class DoseMaximum:
    """The largest voxel value of a dose and where it is."""

    value_gy: float
    position_mm: tuple[float, float, float]
    points_at_max: int


def dose_maximum(dose: DoseGrid) -> DoseMaximum | None:
    """:attr:`DoseGrid.max_gy` with the patient position of its grid point, None if empty.

    The maximum of the trilinear dose is a grid point value, so this is the plan's maximum
    anywhere. Among grid points sharing the value the first in the stored voxel order is given;
    ``points_at_max`` counts them.
    """
    values = dose.dose_gy
    if values.size == 0:
        return None
    top = dose.max_gy
    k, j, i = np.unravel_index(int(np.argmax(values)), values.shape)
    xyz = dose.geometry.index_to_patient(np.array([i, j, k], dtype=float))
    position = (float(xyz[0]), float(xyz[1]), float(xyz[2]))
    return DoseMaximum(top, position, int(np.count_nonzero(values == top)))


# ----------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class LesionInput:
    """One lesion on one dose: its ROI and prescription."""

    name: str
    roi: Roi
    rx_gy: float | None


@dataclass
class LesionMetrics:
    """What :func:`lesion_metrics` computes for one lesion."""

    dvh: DVH
    volume_cc: float
    metrics: dict[str, float | None] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    covered: bool = True


def lesion_metrics(
    dose: PreparedDose, lesions: Sequence[LesionInput], options: DvhOptions | None = None
) -> dict[str, LesionMetrics]:
    """Target DVH metrics and plan-quality indices of every lesion on one dose."""
    options = options or DvhOptions()
    base = dose.dose.geometry
    stacks = {les.name: _stack(les.roi, options) for les in lesions}
    out: dict[str, LesionMetrics] = {}
    for les in lesions:
        dvh = dvh_from_stack(dose, stacks[les.name], options=options, roi_number=les.roi.number)
        out[les.name] = _dvh_metrics(dvh, les.rx_gy)
    for name, finding in overlap_findings([(x.name, stacks[x.name]) for x in lesions], base):
        out[name].findings.append(finding)
    with_rx = [les for les in lesions if les.rx_gy and out[les.name].covered]
    if not with_rx:
        return out
    labels = _LabelMap.build(
        dose, [stacks[les.name] for les in lesions], [les.rx_gy for les in lesions]
    )
    for les in with_rx:
        n = next(i for i, x in enumerate(lesions) if x.name == les.name)
        m = out[les.name]
        _isodose_metrics(dose, base, stacks[les.name], les, n, labels, m, options)
        _d2cm(dose, base, stacks[les.name], les, n, labels, m, options)
        m.findings.extend(
            labels.close_findings(dose, n, les.name, les.rx_gy or 0.0, [x.name for x in lesions])
        )
    return out


#: Shared volume (cc) from which two targets count as overlapping.
OVERLAP_CC = 0.01


def overlap_findings(
    stacks: Sequence[tuple[str, PlaneStack]], base: GridGeometry
) -> list[tuple[str, Finding]]:
    """``lesion.overlap`` WARNINGs for targets that share volume (nested, union, touching).

    A boost inside its PTV, or a union of every PTV taken as one more target, shares volume
    with the other targets: the nearest-target split of the isodose volumes then gives each
    of them a meaningless part, so their conformity indices must not be judged
    (``docs/evaluation.md``). The shared volume is bounded from below cell by cell
    (``max(0, a + b - 1)`` of two occupied fractions), so targets that only touch do not count.
    """
    occ = {name: rasterize(st, base, (2, 2, 2)) for name, st in stacks if st.n_planes}
    out: list[tuple[str, Finding]] = []
    names = list(occ)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = _shared_cc(occ[a], occ[b])
            if shared <= OVERLAP_CC:
                continue
            for me, other in ((a, b), (b, a)):
                inside = shared >= 0.9 * float(occ[me].fraction.sum()) * occ[me].cell_volume_cc
                how = f"lies inside {other}" if inside else f"overlaps {other}"
                message = (
                    f"{me} {how} ({shared:.3g} cc shared): the isodose volumes cannot be split "
                    "between them, so their conformity indices are not judged"
                )
                out.append((me, _note("lesion.overlap", message, me, Severity.WARNING)))
    return out


def outside_fraction(
    roi: Roi, lesions: Sequence[Roi], base: GridGeometry, options: DvhOptions | None = None
) -> float:
    """Fraction of ``roi``'s volume that lies in none of ``lesions`` (1.0: wholly outside).

    Used to find a target (a GTV, or an ROI with its own RT Plan prescription) that is not
    part of any lesion, i.e. a lesion rtcheck would otherwise leave out silently.
    """
    options = options or DvhOptions()
    occ = rasterize(_stack(roi, options), base, (2, 2, 2))
    total = float(occ.fraction.sum(dtype=np.float64)) * occ.cell_volume_cc
    if total <= 0:
        return 0.0
    inside = sum(
        _shared_cc(occ, rasterize(_stack(les, options), base, (2, 2, 2))) for les in lesions
    )
    return max(0.0, 1.0 - inside / total)


def _shared_cc(a: Occupancy, b: Occupancy) -> float:
    """Lower bound of the volume two occupancies (same base grid and factor) share."""
    lo = np.maximum(a.offset, b.offset)
    hi = np.minimum(np.add(a.offset, a.fraction.shape), np.add(b.offset, b.fraction.shape))
    if np.any(hi <= lo):
        return 0.0
    sa = tuple(slice(int(x - o), int(y - o)) for x, y, o in zip(lo, hi, a.offset, strict=True))
    sb = tuple(slice(int(x - o), int(y - o)) for x, y, o in zip(lo, hi, b.offset, strict=True))
    both = a.fraction[sa].astype(np.float64) + b.fraction[sb] - 1.0
    return float(np.clip(both, 0.0, None).sum()) * a.cell_volume_cc


def _note(code: str, message: str, subject: str, severity: Severity = Severity.INFO) -> Finding:
    return Finding(code, message, severity, subject=subject)


def _stack(roi: Roi, options: DvhOptions) -> PlaneStack:
    return plane_stack(
        roi,
        end_caps=options.end_caps,
        single_plane_thickness_mm=options.single_plane_thickness_mm,
        gap_factor=options.gap_factor,
        nominal_spacing_mm=options.nominal_spacing_mm,
    )


_GY_METRICS = ("D95%", "D98%", "D2%", "D50%")


_INDEX_KEYS = (
    "TV_PIV[cc]",
    "PIV[cc]",
    "PIV50[cc]",
    "CI_RTOG",
    "R100%",
    "CI_Paddick",
    "GI",
    "R50%",
    "D2cm[Gy]",
    "D2cm[%]",
)


def _dvh_metrics(dvh: DVH, rx: float | None) -> LesionMetrics:
    total = float(dvh.structure_volume_cc or 0.0)
    m = LesionMetrics(dvh, total, findings=list(dvh.findings))
    keys = [f"{q}[Gy]" for q in _GY_METRICS] + ["Mean[Gy]", "Min[Gy]", "Max[Gy]"]
    keys += [f"{k}[%]" for k in ("D95%", "D98%", "Min", "Max", "Mean")]
    keys += ["V100%[%]", "V95%[%]", "V90%[%]"]
    m.metrics.update(dict.fromkeys((*keys, *_INDEX_KEYS)))
    if dvh.is_empty or dvh.outside_volume_cc > outside_tolerance_cc(total):
        m.covered = False
        m.findings.append(
            _note(
                "lesion.outside_grid",
                f"{dvh.outside_volume_cc:.3g} cc of the target lies outside the dose grid; its "
                "metrics are not computed, and a target the dose does not cover (it may be "
                "treated by a plan missing from the folder) keeps the plan from passing",
                dvh.name,
                Severity.ERROR,
            )
        )
        return m
    values = {f"{q}[Gy]": dvh.dose_at_volume_pct(float(q[1:-1])) for q in _GY_METRICS}
    values.update({"Mean[Gy]": dvh.mean_gy, "Min[Gy]": dvh.min_gy, "Max[Gy]": dvh.max_gy})
    m.metrics.update(values)
    if not rx:
        return m
    for k in ("D95%", "D98%", "Min", "Max", "Mean"):
        m.metrics[f"{k}[%]"] = 100.0 * values[f"{k}[Gy]"] / rx
    for pct in (100.0, 95.0, 90.0):
        m.metrics[f"V{pct:g}%[%]"] = dvh.volume_at_dose_pct(pct / 100.0 * rx)
    m.metrics["TV_PIV[cc]"] = dvh.volume_at_dose_cc(rx)
    return m


# ----------------------------------------------------------------------------- labels
@dataclass
class _LabelMap:
    """Nearest-lesion labels on a box of the (canonical) dose grid."""

    offset: tuple[int, int, int]  # (k0, j0, i0) voxel index of labels[0, 0, 0]
    labels: np.ndarray  # int16, -1 outside every attribution
    single: bool

    @classmethod
    def build(
        cls, dose: PreparedDose, stacks: Sequence[PlaneStack], rxs: Sequence[float | None]
    ) -> _LabelMap:
        g = dose.dose.geometry
        values = dose.dose.dose_gy
        known = [r for r in rxs if r]
        low = 0.5 * min(known) if known else np.inf
        nz, ny, nx = g.shape
        lo = np.array([nz, ny, nx])
        hi = np.array([-1, -1, -1])
        hot = np.argwhere(values >= low) if known else np.zeros((0, 3), int)
        if hot.size:
            lo, hi = np.minimum(lo, hot.min(axis=0)), np.maximum(hi, hot.max(axis=0))
        for st in stacks:  # every PTV plus the D2cm shell
            a, b = _stack_voxel_box(st, g, D2CM_OUTER_MM + 3 * max(g.spacing))
            lo, hi = np.minimum(lo, a), np.maximum(hi, b)
        lo = np.clip(lo - 1, 0, None)
        hi = np.minimum(hi + 1, np.array([nz, ny, nx]) - 1)
        shape = tuple(int(v) for v in hi - lo + 1)
        offset = (int(lo[0]), int(lo[1]), int(lo[2]))
        if len(stacks) == 1:
            return cls(offset, np.zeros(shape, np.int16), True)
        feats = [_voxel_feature(st, g, offset, shape) for st in stacks]
        spacing = (g.spacing[2], g.spacing[1], g.spacing[0])
        labels, _ = derive.nearest_labels(feats, spacing, None)
        return cls(offset, labels, False)

    def voxel_labels(self, occ: Occupancy) -> np.ndarray:
        """Label of the dose voxel nearest to every cell centre of ``occ`` (-1 outside)."""
        idx = []
        for axis, (f, o, n, off, size) in enumerate(
            zip(
                occ.factor[::-1],
                occ.offset,
                occ.fraction.shape,
                self.offset,
                self.labels.shape,
                strict=True,
            )
        ):
            del axis
            v = np.floor((o + np.arange(n) + 0.5) / f + 0.5).astype(np.int64) - off
            idx.append(np.where((v >= 0) & (v < size), v, -1))
        kz, jy, ix = idx
        out = self.labels[
            np.clip(kz, 0, None)[:, None, None],
            np.clip(jy, 0, None)[None, :, None],
            np.clip(ix, 0, None)[None, None, :],
        ]
        bad = (kz < 0)[:, None, None] | (jy < 0)[None, :, None] | (ix < 0)[None, None, :]
        return np.where(bad, -1, out)

    def close_findings(
        self, dose: PreparedDose, n: int, name: str, rx: float, names: list[str]
    ) -> list[Finding]:
        """Findings when the lesion's isodose cloud meets another lesion's region."""
        if self.single or not rx:
            return []
        box = _sub(dose.dose.dose_gy, self.offset, self.labels.shape)
        out = []
        for frac, what in ((1.0, "prescription isodose (CI)"), (0.5, "50 % isodose (GI, R50%)")):
            hot = box >= frac * rx
            mine = hot & (self.labels == n)
            grown = derive._touches(mine) | mine
            other = grown & hot & (self.labels != n) & (self.labels >= 0)
            if np.any(other):
                who = sorted({names[int(v)] for v in np.unique(self.labels[other])})
                out.append(
                    _note(
                        "lesion.close",
                        f"the {what} of {name} meets that of {', '.join(who)}: the volume is split "
                        "by distance to the nearest PTV, so these indices are approximate",
                        name,
                        Severity.WARNING,
                    )
                )
        return out


def _sub(a: np.ndarray, offset: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    k, j, i = offset
    return a[k : k + shape[0], j : j + shape[1], i : i + shape[2]]


def _stack_voxel_box(
    st: PlaneStack, g: GridGeometry, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    xmin, ymin, xmax, ymax = st.xy_bounds()
    lo_xyz = np.array([xmin, ymin, st.z_lo.min()]) - margin
    hi_xyz = np.array([xmax, ymax, st.z_hi.max()]) + margin
    o, s = np.asarray(g.origin), np.asarray(g.spacing)
    lo = np.floor((lo_xyz - o) / s).astype(int)[::-1]
    hi = np.ceil((hi_xyz - o) / s).astype(int)[::-1]
    return lo, hi


def _voxel_feature(
    st: PlaneStack, g: GridGeometry, offset: tuple[int, int, int], shape: tuple[int, ...]
) -> np.ndarray:
    """The PTV's voxels (occupancy >= 0.5 on the dose grid, else its fullest voxel)."""
    occ = rasterize(st, g, (1, 1, 1))
    out = np.zeros(shape, dtype=bool)
    if occ.fraction.size == 0:
        return out
    frac = occ.fraction
    mask = frac >= 0.5 if np.any(frac >= 0.5) else frac == frac.max()
    pts = np.argwhere(mask) + np.asarray(occ.offset) - np.asarray(offset)
    ok = np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)
    out[tuple(pts[ok].T)] = True
    return out


# ----------------------------------------------------------------------------- isodoses
def _isodose_metrics(
    dose: PreparedDose,
    base: GridGeometry,
    st: PlaneStack,
    les: LesionInput,
    n: int,
    labels: _LabelMap,
    m: LesionMetrics,
    options: DvhOptions,
) -> None:
    rx = float(les.rx_gy or 0.0)
    region = _region(dose, labels, n, 0.5 * rx)
    if region is None:
        return
    mask, edge = region
    if edge:
        m.findings.append(
            _note(
                "lesion.isodose_at_grid_edge",
                "the 50 % isodose of this lesion reaches the edge of the dose grid: PIV50, GI and "
                "R50% are not computed",
                les.name,
                Severity.WARNING,
            )
        )
    occ = _region_occupancy(st, base, labels, mask, n)
    dvh = dvh_from_occupancy(dose, occ, f"isodose region of {les.name}", options=options)
    if dvh.is_empty:
        return
    tv = m.volume_cc
    piv = dvh.volume_at_dose_cc(rx)
    piv50 = None if edge else dvh.volume_at_dose_cc(0.5 * rx)
    tv_piv = m.metrics.get("TV_PIV[cc]")
    m.metrics.update({"PIV[cc]": piv, "PIV50[cc]": piv50, "CI_RTOG": piv / tv, "R100%": piv / tv})
    if tv_piv is not None and piv > 0:
        m.metrics["CI_Paddick"] = tv_piv**2 / (tv * piv)
    if piv50 is not None:
        m.metrics["R50%"] = piv50 / tv
        m.metrics["GI"] = piv50 / piv if piv > 0 else None


def _region(
    dose: PreparedDose, labels: _LabelMap, n: int, level: float
) -> tuple[np.ndarray, bool] | None:
    """Voxels where the lesion's trilinear dose can reach ``level`` (dilated by one voxel)."""
    box = _sub(dose.dose.dose_gy, labels.offset, labels.labels.shape)
    hot = (box >= level) & (labels.labels == n)
    if not np.any(hot):
        return None
    grown = _dilate_cube(hot)
    g_shape = dose.dose.geometry.shape
    idx = np.argwhere(hot) + np.asarray(labels.offset)
    edge = bool(np.any(idx == 0) or np.any(idx == np.asarray(g_shape) - 1))
    return grown & (labels.labels == n) | hot, edge


def _dilate_cube(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one voxel in every direction (3 x 3 x 3 neighbourhood), no wrap."""
    out = mask.copy()
    for axis in range(mask.ndim):
        src = out.copy()
        n = mask.shape[axis]
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(1, None), slice(None, n - 1)
        out[tuple(lo)] |= src[tuple(hi)]
        out[tuple(hi)] |= src[tuple(lo)]
    return out


def _region_occupancy(
    st: PlaneStack, base: GridGeometry, labels: _LabelMap, mask: np.ndarray, n: int
) -> Occupancy:
    """Refined cells whose nearest dose voxel is in ``mask`` (cell fraction 1)."""
    res = choose_resolution(st, base)
    f = np.array([res.fx, res.fy, res.fz(base.spacing[2])])
    pts = np.argwhere(mask)
    lo = pts.min(axis=0) + np.asarray(labels.offset)
    hi = pts.max(axis=0) + np.asarray(labels.offset)
    n_vox = float(np.prod(hi - lo + 1))
    while n_vox * np.prod(f) > MAX_CELLS and f.max() > 1:
        f = np.maximum(1, f - 1)
    fz, fy, fx = int(f[2]), int(f[1]), int(f[0])
    start = [math.floor((lo[a] - 0.5) * k) for a, k in enumerate((fz, fy, fx))]
    stop = [math.ceil((hi[a] + 0.5) * k) for a, k in enumerate((fz, fy, fx))]
    offset = (start[0], start[1], start[2])
    shape = (stop[0] - start[0], stop[1] - start[1], stop[2] - start[2])
    occ = Occupancy(base, (fx, fy, fz), offset, np.ones(shape, np.float32), "isodose region")
    sub = _LabelMap(labels.offset, np.where(mask, n, -1).astype(np.int16), False)
    frac = (sub.voxel_labels(occ) == n).astype(np.float32)
    return replace(occ, fraction=frac, structure_volume_cc=None)


def _d2cm(
    dose: PreparedDose,
    base: GridGeometry,
    st: PlaneStack,
    les: LesionInput,
    n: int,
    labels: _LabelMap,
    m: LesionMetrics,
    options: DvhOptions,
) -> None:
    rx = float(les.rx_gy or 0.0)
    factor = _ring_factor(st, base)
    occ = rasterize(st, base, factor)
    shell = derive.ring(occ, D2CM_INNER_MM, D2CM_OUTER_MM, f"D2cm shell of {les.name}")
    frac = (shell.fraction >= 0.5).astype(np.float32)
    if not labels.single:
        frac = np.where(labels.voxel_labels(shell) == n, frac, 0.0).astype(np.float32)
    shell = replace(shell, fraction=frac, structure_volume_cc=None)
    dvh = dvh_from_occupancy(dose, shell, shell.name, options=options, extremes="centres")
    total = float(dvh.structure_volume_cc or 0.0)
    if dvh.is_empty or dvh.outside_volume_cc > outside_tolerance_cc(total):
        m.findings.append(
            _note(
                "lesion.d2cm_outside_grid",
                f"the {D2CM_INNER_MM:g}-{D2CM_OUTER_MM:g} mm shell around the target leaves the "
                "dose grid; D2cm is not computed",
                les.name,
                Severity.WARNING,
            )
        )
        return
    m.metrics["D2cm[Gy]"] = dvh.max_gy
    m.metrics["D2cm[%]"] = 100.0 * dvh.max_gy / rx


def _ring_factor(st: PlaneStack, base: GridGeometry) -> tuple[int, int, int]:
    """Refinement for the D2cm shell: the target's own, coarsened to a bounded box."""
    res = choose_resolution(st, base)
    f = np.array([res.fx, res.fy, res.fz(base.spacing[2])], dtype=float)
    xmin, ymin, xmax, ymax = st.xy_bounds()
    ext = np.array([xmax - xmin, ymax - ymin, st.z_hi.max() - st.z_lo.min()]) + 2 * (
        D2CM_OUTER_MM + 6
    )
    cells = lambda f: float(np.prod(ext / (np.asarray(base.spacing) / f)))  # noqa: E731
    while cells(f) > _MAX_RING_CELLS and f.max() > 1:
        f = np.maximum(1, f - 1)
    return (int(f[0]), int(f[1]), int(f[2]))
