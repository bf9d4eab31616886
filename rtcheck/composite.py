"""Composites: plan doses summed on one grid, physically or in EQD2/BED.

A physical sum only when every plan has the same known number of fractions (or when forced,
with a WARNING Finding); EQD2/BED by voxel-wise LQ conversion of each plan's dose with its own
dose per fraction, then summation. Plan doses come from :mod:`rtcheck.doseset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rtcheck.errors import ConfigError, Finding, InputError, LinkError, Severity, UnsupportedError
from rtcheck.geometry.grid import canonical_geometry
from rtcheck.geometry.planes import PlaneStack, plane_stack
from rtcheck.geometry.rasterize import rasterize
from rtcheck.geometry.resample import (
    common_grid,
    corner_mean,
    coverage_mask,
    describe_grid,
    inside_grid,
    midpoint_grid,
    resample,
    sample_points,
    sub_grid,
    voxel_centres,
)
from rtcheck.model import DoseGrid, GridGeometry, Roi
from rtcheck.radiobiology import convert, dose_basis_label

if TYPE_CHECKING:
    from rtcheck.doseset import PlanDose


# ----------------------------------------------------------------------------- composites
#: Accepted ``method`` spellings -> canonical name.
METHODS = {"PHYSICAL": "physical", "EQD2": "EQD2", "BED": "BED"}
#: Refuse composite grids larger than this (memory); choose a coarser grid instead.
MAX_COMPOSITE_VOXELS = 60_000_000
_SLAB_VOXELS = 2_000_000

GridChoice = GridGeometry | str | float | tuple[float, float, float] | None


@dataclass(frozen=True, eq=False)
class Composite:
    """The sum of several plan doses on one grid.

    Attributes
    ----------
    dose
        Summed dose (Gy; EQD2 or BED Gy for those methods, ``dose_type`` EFFECTIVE).
    method
        ``physical``, ``EQD2`` or ``BED``.
    alpha_beta
        alpha/beta (Gy) of an EQD2/BED sum; None for physical or a voxel-wise map.
    grid_description
        How the grid was chosen and what it is.
    components
        One line per plan dose summed.
    findings
        Problems of this composite (forced physical sum, dose outside the grid...).
    coverage
        uint8 array on the grid: how many plan dose grids cover each voxel centre.
    plan_doses
        The plan doses summed.
    fractions
        The common number of fractions of a physical sum, None when mixed or for EQD2/BED.
    regrid_error_gy
        Largest difference, at the grid's cell centres, between trilinear interpolation of the
        summed grid and the exact sum of each plan's own trilinear dose (converted per plan):
        the accuracy lost by summing on a grid. None when not estimated (voxel-wise alpha/beta).
    """

    dose: DoseGrid
    method: str
    alpha_beta: float | None
    grid_description: str
    components: tuple[str, ...]
    findings: tuple[Finding, ...]
    coverage: NDArray[np.uint8]
    plan_doses: tuple[PlanDose, ...]
    fractions: int | None = None
    regrid_error_gy: float | None = None

    @property
    def basis(self) -> str:
        """``physical``, ``EQD2(a/b=3)``, ``BED(a/b=10)`` or ``EQD2(a/b=voxel-wise)``."""
        if self.method != "physical" and self.alpha_beta is None:
            return f"{self.method}(a/b=voxel-wise)"
        return dose_basis_label(self.method, self.alpha_beta)

    def outside_each_grid(self, xyz: NDArray[np.float64]) -> NDArray[np.bool_]:
        """``(points, plans)``: True where a plan's dose grid does not cover a patient point.

        A point outside one plan's grid has an unknown dose from that plan (a dose grid that
        ends does not say the dose is 0 beyond it), so the evaluator treats a structure there
        like one leaving the dose grid (``docs/multiplan.md``).
        """
        pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        return np.column_stack(
            [~inside_grid(pd.dose.geometry, pts) for pd in self.plan_doses]
        ).reshape(len(pts), len(self.plan_doses))

    def outside_all_grids(self, xyz: NDArray[np.float64]) -> NDArray[np.bool_]:
        """True for patient points that no plan dose grid covers (dose there assumed 0)."""
        pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        covered = np.zeros(len(pts), dtype=bool)
        for pd in self.plan_doses:
            covered |= inside_grid(pd.dose.geometry, pts)
        return ~covered

    def uncovered_volume_cc(self, structure: Roi | PlaneStack) -> float:
        """Volume (cc) of a structure that no plan dose grid covers (its dose there is 0 Gy).

        The structure is rasterised (fractional occupancy, :mod:`rtcheck.geometry.rasterize`)
        on cells refining the composite grid; a cell counts as uncovered when its centre lies
        outside every plan grid's voxel-centre box. Pass the evaluator's ``PlaneStack`` to use
        its end-cap options; a ``Roi`` uses the defaults.
        """
        stack = structure if isinstance(structure, PlaneStack) else plane_stack(structure)
        if stack.is_empty:
            return 0.0
        occ = rasterize(stack, canonical_geometry(self.dose.geometry))
        occupied = occ.fraction > 0
        if not occupied.any():
            return 0.0
        centres = voxel_centres(occ.geometry)[occupied]
        outside = self.outside_all_grids(centres)
        return float(occ.fraction[occupied][outside].sum(dtype=np.float64)) * occ.cell_volume_cc

    def summary(self) -> str:
        """One line saying what was summed and how."""
        what = ", ".join(
            f"{pd.label} ({pd.fractions if pd.fractions else '?'} fx)" for pd in self.plan_doses
        )
        how = "physical sum" if self.method == "physical" else f"{self.basis} sum"
        return (
            f"{how} of {len(self.plan_doses)} plan dose(s) [{what}] on {self.grid_description}; "
            f"max {self.dose.max_gy:.2f} Gy"
        )


def _method(method: str) -> str:
    try:
        return METHODS[method.upper()]
    except KeyError:
        raise ConfigError(f"unknown summation method {method!r} (physical, EQD2 or BED)") from None


def mixed_fractionation_reason(pds: Sequence[PlanDose]) -> str | None:
    """Why a physical sum of ``pds`` is not meaningful, or None when it is."""
    if len(pds) <= 1:
        return None
    unknown = [pd.label for pd in pds if pd.fractions is None]
    if unknown:
        return f"number of fractions unknown for {', '.join(unknown)}"
    counts = sorted({pd.fractions for pd in pds if pd.fractions is not None})
    if len(counts) > 1:
        return "plans have different numbers of fractions (" + ", ".join(map(str, counts)) + ")"
    return None


def _check_frames(pds: Sequence[PlanDose], findings: list[Finding]) -> str | None:
    frames = {pd.dose.frame_of_reference_uid for pd in pds}
    known = sorted(f for f in frames if f)
    if len(known) > 1:
        raise LinkError(
            "plan doses are in different frames of reference (" + ", ".join(known) + "); "
            "rtcheck does not register images, so it cannot sum them"
        )
    if None in frames and len(pds) > 1:
        findings.append(
            Finding(
                "sum.frame_unstated",
                "some plan doses state no frame of reference; "
                "assumed to share the others' patient coordinates",
                Severity.WARNING,
            )
        )
    return known[0] if known else None


def _target_grid(pds: Sequence[PlanDose], grid: GridChoice) -> tuple[GridGeometry, str]:
    geoms = [pd.dose.geometry for pd in pds]
    if grid is None or (isinstance(grid, str) and grid.lower() == "finest"):
        g, how = common_grid(geoms), "common grid (finest spacing of the plan dose grids)"
    elif isinstance(grid, str) and grid.lower() == "first":
        g, how = geoms[0], f"grid of the first plan dose ({pds[0].label})"
    elif isinstance(grid, GridGeometry):
        g, how = grid, "grid given by the caller"
    elif isinstance(grid, int | float | tuple):
        g = common_grid(geoms, grid)
        how = f"common grid (spacing {grid} mm)"
    else:
        raise ConfigError(f"unknown grid choice {grid!r} (finest, first or a spacing in mm)")
    n = int(np.prod(g.shape))
    if n > MAX_COMPOSITE_VOXELS:
        raise ConfigError(
            f"the summation grid would have {n} voxels ({describe_grid(g)}); choose a coarser "
            "grid spacing (e.g. --grid 2.5)"
        )
    return g, f"{how}: {describe_grid(g)}"


def _outside_findings(pds: Sequence[PlanDose], target: GridGeometry) -> list[Finding]:
    out = []
    for pd in pds:
        outside = pd.dose.dose_gy[~coverage_mask(pd.dose.geometry, target)]
        if outside.size and float(outside.max()) > 0:
            out.append(
                Finding(
                    "sum.dose_outside_grid",
                    f"plan {pd.label} delivers up to "
                    f"{float(outside.max()):.3g} Gy outside the summation grid; that dose is "
                    "NOT in the composite",
                    Severity.WARNING,
                    subject=pd.label,
                )
            )
    return out


def _accumulate(
    pds: Sequence[PlanDose], target: GridGeometry, method: str, ab: float | NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.uint8], float]:
    nz, ny, nx = target.shape
    total = np.zeros(target.shape)
    cover = np.zeros(target.shape, dtype=np.uint8)
    lowest = 0.0
    step = max(1, _SLAB_VOXELS // max(1, ny * nx))
    for k0 in range(0, nz, step):
        k1 = min(nz, k0 + step)
        sub = sub_grid(target, k0, k1)
        ab_slab = ab[k0:k1] if isinstance(ab, np.ndarray) else ab
        for pd in pds:
            r = resample(pd.dose, sub)
            vals = r.values
            if method != "physical":
                lowest = min(lowest, float(vals.min()))
                vals = np.asarray(
                    convert(np.maximum(vals, 0.0), pd.fractions or 0, ab_slab, method)
                )
            total[k0:k1] += vals
            cover[k0:k1] += r.covered.astype(np.uint8)
    return total, cover, lowest


def _regrid_error(
    pds: Sequence[PlanDose],
    target: GridGeometry,
    method: str,
    ab: float | NDArray[np.float64],
    total: NDArray[np.float64],
    node_cover: NDArray[np.uint8],
) -> float | None:
    """Largest |trilinear of the gridded sum - exact sum| at the cell centres of the grid.

    The exact sum at a point is the sum of each plan's own trilinear dose there (converted
    per plan); the gridded composite interpolates between its nodes instead. Cell centres are
    where this difference is largest for smooth fields. None for a voxel-wise alpha/beta map
    or a grid with a single voxel along an axis.
    """
    mid = midpoint_grid(target)
    if mid is None or isinstance(ab, np.ndarray):
        return None
    exact, mid_cover, _ = _accumulate(pds, mid, method, ab)
    # Cells across a plan grid's edge are left out: there the plan's dose steps to 0 by
    # convention (its grid says the dose is negligible), not a re-gridding error.
    c = node_cover.astype(np.float64)
    mean = corner_mean(c)
    uniform = np.isclose(corner_mean(c**2), mean**2) & (mid_cover == mean)
    diff = np.abs(corner_mean(total) - exact)[uniform]
    return float(diff.max()) if diff.size else 0.0


def _validate_lq(
    pds: Sequence[PlanDose], method: str, alpha_beta: object, shape: tuple[int, ...]
) -> float | NDArray[np.float64]:
    unknown = [pd.label for pd in pds if pd.fractions is None]
    if unknown:
        raise UnsupportedError(
            f"cannot convert to {method}: number of fractions unknown for {', '.join(unknown)}"
        )
    if alpha_beta is None:
        raise ConfigError(f"{method} summation needs an alpha/beta value")
    if isinstance(alpha_beta, np.ndarray) and alpha_beta.ndim:
        if alpha_beta.shape != shape:
            raise ConfigError(f"alpha/beta map has shape {alpha_beta.shape}, grid is {shape}")
        ab: float | NDArray[np.float64] = alpha_beta.astype(np.float64)
    else:
        ab = float(alpha_beta)  # type: ignore[arg-type]
    if not np.all(np.asarray(ab) > 0):
        raise ConfigError(f"alpha/beta must be > 0 Gy, got {alpha_beta!r}")
    return ab


def composite(
    pds: Sequence[PlanDose],
    *,
    method: str = "physical",
    alpha_beta: float | NDArray[np.float64] | None = None,
    grid: GridChoice = None,
    force_physical: bool = False,
) -> Composite:
    """Sum plan doses on one grid.

    Parameters
    ----------
    pds
        Plan doses (from :func:`plan_doses`).
    method
        ``physical``; or ``EQD2`` / ``BED``: each plan's dose converted voxel-wise with its own
        dose per fraction (LQ, :mod:`rtcheck.radiobiology`), then summed.
    alpha_beta
        alpha/beta in Gy for EQD2/BED: a number, or an array of the grid's shape.
    grid
        None or ``"finest"`` (common grid, finest spacing), ``"first"`` (first plan's grid),
        a spacing in mm (number or (sx, sy, sz)) for a common grid, or a :class:`GridGeometry`.
    force_physical
        Allow a physical sum of plans with different or unknown fractionation (WARNING).

    Raises
    ------
    UnsupportedError
        Physical sum of mixed fractionation without ``force_physical``; EQD2/BED with a plan
        whose fractionation is unknown.
    LinkError
        Plan doses in different frames of reference.
    ConfigError
        Bad method, alpha/beta or grid.
    """
    m = _method(method)
    if not pds:
        raise InputError("no plan dose to sum")
    findings: list[Finding] = []
    frame = _check_frames(pds, findings)
    fractions = None
    if m == "physical":
        reason = mixed_fractionation_reason(pds)
        if reason and not force_physical:
            raise UnsupportedError(
                f"{reason}: a physical sum is not comparable with any single-fractionation "
                "limit; sum in EQD2 or BED instead, or force a physical sum"
            )
        if reason:
            findings.append(
                Finding(
                    "sum.physical_forced",
                    f"physical sum forced although {reason}; it "
                    "matches no fractionation-specific table",
                    Severity.WARNING,
                )
            )
        fractions = None if reason else pds[0].fractions
    target, description = _target_grid(pds, grid)
    ab = 0.0 if m == "physical" else _validate_lq(pds, m, alpha_beta, target.shape)
    findings += _outside_findings(pds, target)
    total, cover, lowest = _accumulate(pds, target, m, ab)
    regrid = _regrid_error(pds, target, m, ab, total, cover)
    if regrid is not None:
        findings.append(
            Finding(
                "sum.regrid_error",
                f"interpolating the summed grid differs from the sum of each plan's own "
                f"interpolated dose by up to {regrid:.3g} Gy between grid points "
                f"({100 * regrid / max(float(total.max()), 1e-12):.2g} % of the maximum); a "
                "finer summation grid reduces it",
                Severity.INFO,
            )
        )
    if lowest < 0:
        findings.append(
            Finding(
                "sum.negative_dose",
                f"negative dose values (down to {lowest:.3g} Gy) were "
                f"set to 0 before the {m} conversion",
                Severity.WARNING,
            )
        )
    dose = DoseGrid(
        dose_gy=total,
        geometry=target,
        dose_type="PHYSICAL" if m == "physical" else "EFFECTIVE",
        summation_type="MULTI_PLAN" if len(pds) > 1 else "PLAN",
        referenced_plan_uid=pds[0].plan_uid if len(pds) == 1 else None,
        frame_of_reference_uid=frame,
        source=None,
        units_note="GY" if m == "physical" else f"{m} Gy",
        referenced_dose_uids=tuple(c for pd in pds for c in pd.components),
    )
    scalar_ab = None if m == "physical" or isinstance(ab, np.ndarray) else float(ab)
    return Composite(
        dose,
        m,
        scalar_ab,
        description,
        tuple(pd.describe() for pd in pds),
        tuple(findings),
        cover,
        tuple(pds),
        fractions,
        regrid,
    )


def sample_composite(
    pds: Sequence[PlanDose],
    xyz: NDArray[np.float64],
    *,
    method: str = "physical",
    alpha_beta: float | NDArray[np.float64] | None = None,
    force_physical: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
    """Composite dose at patient points, without an intermediate grid (exact trilinear per plan).

    Same rules as :func:`composite`; ``alpha_beta`` may be one value per point. Returns the
    dose at each point and how many plan grids cover it (0 = outside every grid, dose 0).
    """
    m = _method(method)
    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    _check_frames(pds, [])
    reason = mixed_fractionation_reason(pds)
    if m == "physical" and reason and not force_physical:
        raise UnsupportedError(f"{reason}: a physical sum is not meaningful")
    ab = 0.0 if m == "physical" else _validate_lq(pds, m, alpha_beta, (len(pts),))
    total = np.zeros(len(pts))
    cover = np.zeros(len(pts), dtype=np.uint8)
    for pd in pds:
        vals, inside = sample_points(pd.dose, pts)
        if m != "physical":
            vals = np.asarray(convert(np.maximum(vals, 0.0), pd.fractions or 0, ab, m))
        total += vals
        cover += inside.astype(np.uint8)
    return total, cover


# ----------------------------------------------------------------------------- dose set
class DoseSet:
    """The plan doses of one case, their findings, and composites cached per alpha/beta.

    Build it with :func:`rtcheck.doseset.dose_set`. Every composite of one DoseSet is on the
    same grid (chosen by ``grid`` as in :func:`composite`).
    """

    def __init__(
        self,
        plan_doses: Sequence[PlanDose],
        findings: Sequence[Finding] = (),
        *,
        grid: GridChoice = None,
    ) -> None:
        self.plan_doses: tuple[PlanDose, ...] = tuple(plan_doses)
        self.findings: tuple[Finding, ...] = tuple(findings)
        self.grid_choice = grid
        self._cache: dict[tuple[str, float | None, bool], Composite] = {}

    @property
    def fractions(self) -> tuple[int | None, ...]:
        """Number of fractions of each plan dose (None = unknown)."""
        return tuple(pd.fractions for pd in self.plan_doses)

    @property
    def mixed_fractionation(self) -> str | None:
        """Why a physical sum is not meaningful (mixed or unknown fractionation), or None."""
        return mixed_fractionation_reason(self.plan_doses)

    @property
    def common_fractions(self) -> int | None:
        """The single fraction count shared by every plan, or None."""
        if not self.plan_doses or self.mixed_fractionation:
            return None
        return self.plan_doses[0].fractions

    def composite(
        self,
        method: str = "physical",
        alpha_beta: float | NDArray[np.float64] | None = None,
        *,
        force_physical: bool = False,
    ) -> Composite:
        """The composite (see :func:`composite`), cached for scalar alpha/beta."""
        m = _method(method)
        if isinstance(alpha_beta, np.ndarray) and alpha_beta.ndim:
            return composite(
                self.plan_doses,
                method=m,
                alpha_beta=alpha_beta,
                grid=self.grid_choice,
                force_physical=force_physical,
            )
        ab = None if m == "physical" or alpha_beta is None else float(alpha_beta)
        key = (m, ab, force_physical and m == "physical")
        if key not in self._cache:
            self._cache[key] = composite(
                self.plan_doses,
                method=m,
                alpha_beta=ab,
                grid=self.grid_choice,
                force_physical=key[2],
            )
        return self._cache[key]

    def physical(self, *, force: bool = False) -> Composite:
        """The physical sum (refused for mixed fractionation unless ``force``)."""
        return self.composite("physical", force_physical=force)

    def composite_for_alpha_beta(self, alpha_beta: float, method: str = "EQD2") -> Composite:
        """EQD2 (or BED) composite for one alpha/beta value, computed once per value."""
        return self.composite(method, alpha_beta)

    def sample(
        self,
        xyz: NDArray[np.float64],
        method: str = "physical",
        alpha_beta: float | NDArray[np.float64] | None = None,
        *,
        force_physical: bool = False,
    ) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
        """Composite dose at points, exact (no intermediate grid); see :func:`sample_composite`."""
        return sample_composite(
            self.plan_doses,
            xyz,
            method=method,
            alpha_beta=alpha_beta,
            force_physical=force_physical,
        )

    def plan_for_target(
        self, name: str | None = None, roi_number: int | None = None
    ) -> tuple[PlanDose | None, str]:
        """The plan a target (lesion) belongs to, and how it was found (or why not).

        Matched by the plans' dose references: ReferencedROINumber, else the dose reference
        description equal to ``name`` (case-insensitive). A case with one plan dose: that one.
        """
        if len(self.plan_doses) == 1:
            return self.plan_doses[0], "only plan"
        for how, test in (
            ("RT Plan dose reference (ROI number)", lambda p: p.roi_number == roi_number),
            ("RT Plan dose reference (description)", lambda p: _same_name(p.description, name)),
        ):
            hits = [
                pd
                for pd in self.plan_doses
                if pd.plan and any(test(p) for p in pd.plan.prescriptions)
            ]
            if len(hits) == 1:
                return hits[0], how
            if len(hits) > 1:
                labels = ", ".join(pd.label for pd in hits)
                return None, f"several plans reference this target ({labels})"
        return None, "no plan's dose reference names this target"


def _same_name(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()
