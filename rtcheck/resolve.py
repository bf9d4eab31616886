"""Protocol structure names -> plan ROIs or derived structures -> DVHs (cached).

:class:`StructureResolver` answers, for a protocol structure name, *what* in the plan it is
(an ROI matched by :func:`rtcheck.names.match_structure`, a structure derived by the
protocol's expression, or nothing, with the reason) and computes its DVH on a dose.

Rules (``docs/evaluation.md``):

* A protocol ``derived`` entry with ``prefer: roi`` is derived only when no ROI matches
  (an *ambiguous* match is never replaced by a derivation); ``prefer: derived`` always derives.
* Every name inside an expression is matched like a protocol name; a missing or ambiguous
  operand makes the derived structure unavailable (reason says which). A target group
  (``GTV``) with no member is an empty set, disclosed by a WARNING finding.
* An ROI without any closed planar contour is *not contoured* (like a missing ROI).
* An ROI with a contour that could not be read (``Roi.dropped_contours``) is *unavailable*:
  "contour N of ROI X could not be read"; so is a derived structure using it (or a target
  group with such a member). Its constraints are not evaluated and block a pass.
* Derived structures are rasterized on the dose grid refined by the coarsest factor the
  operands need (:func:`rtcheck.geometry.rasterize.choose_resolution`); boolean operations
  follow :mod:`rtcheck.geometry.derive` and their uncertainty is disclosed when it exceeds
  the coverage tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from rtcheck.dvh.compute import DvhOptions, PreparedDose, compute_dvh, dvh_from_occupancy
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import Finding, Severity
from rtcheck.geometry import derive, margins
from rtcheck.geometry.planes import PlaneStack, plane_stack
from rtcheck.geometry.rasterize import Occupancy, choose_resolution, rasterize
from rtcheck.model import GridGeometry, Roi, StructureSet
from rtcheck.names import TargetKind, TargetSearch, match_structure, normalise
from rtcheck.protocol import (
    Combine,
    Expand,
    Expr,
    Prefer,
    Protocol,
    Ring,
    SetOp,
    StructureRef,
    TargetGroup,
)

#: Most refined cells of a structure built with a margin (expand, shrink, ring).
MARGIN_CELLS = 4_000_000
#: Structure volume allowed outside the dose grid: the larger of these (docs/evaluation.md).
OUTSIDE_TOL_CC = 0.01
OUTSIDE_TOL_FRACTION = 0.001


def outside_tolerance_cc(volume_cc: float) -> float:
    """Volume (cc) a structure may have outside the dose grid and still be evaluated."""
    return max(OUTSIDE_TOL_CC, OUTSIDE_TOL_FRACTION * max(volume_cc, 0.0))


#: Organs that are one connected tube or body along the patient axis: an axial plane without
#: contours between their ends is an uncontoured section (TG-263 names).
CONTINUOUS_ORGANS = frozenset(
    {
        "SpinalCord",
        "SpinalCanal",
        "CaudaEquina",
        "Brainstem",
        "Esophagus",
        "Trachea",
        "AirWay_Prox",
        "BrachialPlex_L",
        "BrachialPlex_R",
        "GreatVes",
        "Heart",
    }
)


class State(StrEnum):
    """What a protocol structure is in this plan."""

    ROI = "roi"
    DERIVED = "derived"
    NOT_CONTOURED = "not_contoured"
    AMBIGUOUS = "ambiguous"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Resolved:
    """A protocol structure found (or not) in the plan.

    Attributes
    ----------
    name
        Protocol structure name.
    state
        :class:`State`.
    roi
        The matched ROI (state ``roi``).
    label
        ROI name, or the derived expression text (e.g. ``Lung_L + Lung_R``).
    method
        How it was matched (``exact``, ``synonym``, ``user map``, ``derived``...) or None.
    reason
        Why it is not available, or a note on the match (look-alikes not used).
    expression
        The expression for a derived structure (operand names replaced by ROI names).
    findings
        Decisions worth disclosing (non-exact matches, derivations, empty target groups).
    """

    name: str
    state: State
    roi: Roi | None = None
    label: str | None = None
    method: str | None = None
    reason: str | None = None
    expression: Expr | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def available(self) -> bool:
        """True when a DVH can be computed."""
        return self.state in (State.ROI, State.DERIVED)


class _Unavailable(Exception):
    def __init__(self, reason: str, state: State = State.UNAVAILABLE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.state = state


class StructureResolver:
    """Resolve protocol names in one structure set and compute DVHs, with caches.

    Parameters
    ----------
    structures
        The plan's structure set.
    protocol
        The protocol (its ``derived`` structures).
    targets
        Targets found in the structure set (:func:`rtcheck.names.find_targets`).
    user_map
        ``--names`` map: protocol name -> ROI name (None: absent in this plan).
    dvh_options
        DVH engine options.
    """

    def __init__(
        self,
        structures: StructureSet,
        protocol: Protocol,
        targets: TargetSearch,
        user_map: Mapping[str, str | None] | None = None,
        dvh_options: DvhOptions | None = None,
    ) -> None:
        self.structures = structures
        self.protocol = protocol
        self.targets = targets
        self.user_map = dict(user_map or {})
        self.dvh_options = dvh_options or DvhOptions()
        self._names = tuple(r.name for r in structures.rois)
        self._resolved: dict[tuple[str, tuple[str, ...]], Resolved] = {}
        self._occupancies: dict[tuple[str, GridGeometry], Occupancy] = {}
        self._dvhs: dict[tuple[str, int], DVH] = {}
        self.findings: list[Finding] = []

    # ------------------------------------------------------------------ names
    def resolve(self, name: str, aliases: Sequence[str] = ()) -> Resolved:
        """What ``name`` is in this plan (cached)."""
        key = (name, tuple(aliases))
        if key not in self._resolved:
            self._resolved[key] = self._resolve(name, tuple(aliases), ())
        return self._resolved[key]

    def _resolve(self, name: str, aliases: tuple[str, ...], stack: tuple[str, ...]) -> Resolved:
        derived = self.protocol.derived.get(name)
        if derived is not None and derived.prefer is Prefer.DERIVED:
            return self._derive(name, derived.expression, stack, None)
        m = match_structure(name, aliases, self._names, user_map=self.user_map)
        if m.ambiguous:
            return Resolved(name, State.AMBIGUOUS, reason=m.reason)
        if m.found:
            roi = next(r for r in self.structures.rois if r.name == m.roi_name)
            unusable = self._unusable(name, roi)
            if unusable is not None:
                return Resolved(
                    name,
                    State.UNAVAILABLE,
                    roi=roi,
                    label=roi.name,
                    method=m.label,
                    reason=unusable,
                    findings=_match_findings(m),
                )
            if roi.is_empty:
                return Resolved(
                    name,
                    State.NOT_CONTOURED,
                    roi=roi,
                    label=roi.name,
                    method=m.label,
                    reason=f"ROI {roi.name!r} has no closed planar contour (not contoured)",
                )
            found = _match_findings(m) + _type_findings(name, roi)
            return Resolved(name, State.ROI, roi, roi.name, m.label, m.reason, findings=found)
        if derived is not None and m.reason and "names map says" not in m.reason:
            return self._derive(name, derived.expression, stack, m.reason)
        return Resolved(name, State.NOT_CONTOURED, reason=m.reason)

    def _unusable(self, name: str, roi: Roi) -> str | None:
        """Why the matched ``roi`` cannot stand for ``name`` (blocking), or None.

        Unreadable contours; contours drawn but none closed; a continuous organ with
        uncontoured planes. An ROI with no contour at all is *not contoured*, not unusable.
        """
        if roi.is_incomplete:
            return f"{roi.dropped_reason()}: the structure is incomplete"
        if roi.is_empty:
            return _no_volume_reason(roi) if roi.contours else None
        return self._broken_continuity(name, roi)

    def _derive(self, name: str, expr: Expr, stack: tuple[str, ...], why: str | None) -> Resolved:
        if name in stack:
            return Resolved(name, State.UNAVAILABLE, reason=f"{name} is defined through itself")
        try:
            text, found = self._describe(expr, (*stack, name))
        except _Unavailable as exc:
            reason = f"{name} is derived as {expr.to_text()}, but {exc.reason}"
            if why:
                reason = f"{why}; {reason}"
            state = exc.state  # not contoured, ambiguous or unavailable, like the operand
            return Resolved(name, state, reason=reason)
        note = f"derived as {text}" + (f" ({why})" if why else "")
        finding = Finding(
            "structure.derived",
            f"{name}: not in the plan as an ROI; {note}",
            Severity.INFO,
            subject=name,
        )
        return Resolved(name, State.DERIVED, None, text, "derived", note, expr, (*found, finding))

    def _describe(self, expr: Expr, stack: tuple[str, ...]) -> tuple[str, tuple[Finding, ...]]:
        """Expression text with ROI names, checking every operand exists."""
        if isinstance(expr, StructureRef):
            r = self._resolve(expr.name, (), stack)
            if not r.available:
                # an ambiguous or unavailable (e.g. incomplete) operand makes the derived
                # structure so too; a missing one makes it not contoured
                raise _Unavailable(f"{expr.name}: {r.reason or r.state.value}", r.state)
            label = r.label or expr.name
            return (label if r.state is State.ROI else f"({label})"), r.findings
        if isinstance(expr, TargetGroup):
            members = self.targets.of_kind(expr.kind)
            for t in members:
                why = self._target_roi(t.name).dropped_reason()
                if why:
                    raise _Unavailable(f"{expr.kind.value} {t.name}: {why}", State.UNAVAILABLE)
            if not members:
                return f"no {expr.kind.value}", (
                    Finding(
                        "structure.empty_target_group",
                        f"no {expr.kind.value} found in the plan: {expr.kind.value} is an empty "
                        "set in derived structures (e.g. lungs minus nothing: the whole lungs, "
                        "which is conservative for lung V and mean-dose limits)",
                        Severity.WARNING,
                    ),
                )
            return "(" + " + ".join(t.name for t in members) + ")", ()
        if isinstance(expr, Combine):
            left, f1 = self._describe(expr.left, stack)
            right, f2 = self._describe(expr.right, stack)
            return f"{left} {expr.op.value} {right}", (*f1, *f2)
        inner, found = self._describe(expr.operand, stack)
        if isinstance(expr, Ring):
            return f"ring({inner}, {expr.inner_mm:g}, {expr.outer_mm:g})", found
        return f"expand({inner}, {expr.margin_mm:g})", found

    def report(self) -> list[Finding]:
        """Findings about every structure looked up: matches, derivations, ambiguities, DVHs."""
        out: list[Finding] = []
        missing: list[str] = []
        for r in self._resolved.values():
            out += r.findings
            if r.state is State.AMBIGUOUS:
                out.append(
                    Finding(
                        "structure.ambiguous",
                        f"{r.name}: {r.reason}",
                        Severity.WARNING,
                        subject=r.name,
                    )
                )
            elif r.state is State.UNAVAILABLE:
                out.append(
                    Finding(
                        "structure.unavailable",
                        f"{r.name}: {r.reason}",
                        Severity.WARNING,
                        subject=r.name,
                    )
                )
            elif r.state is State.NOT_CONTOURED:
                missing.append(r.name)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            out.append(
                Finding(
                    "structure.not_contoured",
                    f"not contoured in this plan (their constraints are not evaluated): {names}",
                    Severity.INFO,
                )
            )
        for dvh in self._dvhs.values():
            out += dvh.findings
        return out + self.findings

    # ------------------------------------------------------------------ DVHs
    def dvh(self, resolved: Resolved, dose: PreparedDose) -> DVH:
        """DVH of an available structure on ``dose`` (cached per dose object)."""
        key = (resolved.name, id(dose))
        if key not in self._dvhs:
            if resolved.state is State.ROI:
                assert resolved.roi is not None
                dvh = compute_dvh(dose, resolved.roi, options=self.dvh_options)
            else:
                occ = self.occupancy(resolved, dose.dose.geometry)
                dvh = dvh_from_occupancy(
                    dose, occ, resolved.label or resolved.name, options=self.dvh_options
                )
            self._dvhs[key] = dvh
        return self._dvhs[key]

    def occupancy(self, resolved: Resolved, base: GridGeometry) -> Occupancy:
        """Occupancy of an available structure on the canonical grid ``base`` (cached)."""
        key = (resolved.name, base)
        if key not in self._occupancies:
            if resolved.state is State.ROI:
                assert resolved.roi is not None
                occ = rasterize(self._stack(resolved.roi), base)
            else:
                assert resolved.expression is not None
                rois = self._leaf_rois(resolved.expression, (resolved.name,))
                factor = self._factor(rois, base, _margin_mm(resolved.expression))
                occ = self._build(resolved.expression, base, factor, (resolved.name,))
                occ = _named(occ, resolved.label or resolved.name)
            self._occupancies[key] = occ
        return self._occupancies[key]

    def _broken_continuity(self, name: str, roi: Roi) -> str | None:
        """Why the ROI of a continuous organ cannot be trusted whole, or None.

        A connected organ meets every axial plane between its ends, so planes without
        contours inside a cord, oesophagus... are an uncontoured section, not a space
        between parts: its dose is unknown and a hot spot there would go unseen.
        """
        if name not in CONTINUOUS_ORGANS:
            return None
        for f in self._stack(roi).findings:
            if f.code in ("structure.z_gap", "structure.single_plane"):
                return (
                    f"{name} is one continuous organ, but {f.message}; the dose of the "
                    "uncontoured part is unknown (contour every plane between the ends)"
                )
        return None

    def _stack(self, roi: Roi):
        o = self.dvh_options
        return plane_stack(
            roi,
            end_caps=o.end_caps,
            single_plane_thickness_mm=o.single_plane_thickness_mm,
            gap_factor=o.gap_factor,
            nominal_spacing_mm=o.nominal_spacing_mm,
        )

    def _leaf_rois(self, expr: Expr, stack: tuple[str, ...]) -> list[Roi]:
        if isinstance(expr, StructureRef):
            r = self._resolve(expr.name, (), stack)
            if r.state is State.ROI:
                return [r.roi]  # type: ignore[list-item]
            assert r.expression is not None
            return self._leaf_rois(r.expression, (*stack, expr.name))
        if isinstance(expr, TargetGroup):
            return [self._target_roi(t.name) for t in self.targets.of_kind(expr.kind)]
        if isinstance(expr, Combine):
            return self._leaf_rois(expr.left, stack) + self._leaf_rois(expr.right, stack)
        return self._leaf_rois(expr.operand, stack)

    def _target_roi(self, name: str) -> Roi:
        return next(r for r in self.structures.rois if r.name == name)

    def _factor(
        self, rois: list[Roi], base: GridGeometry, margin_mm: float = 0.0
    ) -> tuple[int, int, int]:
        """The coarsest refinement any operand needs (volumes stay exact at any factor),
        coarsened further so that margins stay within :data:`MARGIN_CELLS`."""
        best: tuple[int, int, int] | None = None
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for roi in rois:
            st = self._stack(roi)
            res = choose_resolution(st, base)
            f = (res.fx, res.fy, res.fz(base.spacing[2]))
            best = f if best is None else tuple(min(a, b) for a, b in zip(best, f, strict=True))  # type: ignore[assignment]
            if not st.is_empty:
                xmin, ymin, xmax, ymax = st.xy_bounds()
                lo = np.minimum(lo, [xmin, ymin, st.z_lo.min()])
                hi = np.maximum(hi, [xmax, ymax, st.z_hi.max()])
        factor = np.array(best or (1, 1, 1))
        if margin_mm > 0 and np.all(np.isfinite(lo)):
            extent = hi - lo + 2 * margin_mm + 4 * np.asarray(base.spacing)
            while np.prod(extent / (np.asarray(base.spacing) / factor)) > MARGIN_CELLS:
                if factor.max() == 1:
                    break
                factor = np.maximum(1, factor - 1)
        return (int(factor[0]), int(factor[1]), int(factor[2]))

    def _build(
        self, expr: Expr, base: GridGeometry, factor: tuple[int, int, int], stack: tuple[str, ...]
    ) -> Occupancy:
        if isinstance(expr, StructureRef):
            r = self._resolve(expr.name, (), stack)
            if r.state is State.ROI:
                assert r.roi is not None
                return rasterize(self._stack(r.roi), base, factor)
            assert r.expression is not None
            return self._build(r.expression, base, factor, (*stack, expr.name))
        if isinstance(expr, TargetGroup):
            parts = [
                rasterize(self._stack(self._target_roi(t.name)), base, factor)
                for t in self.targets.of_kind(expr.kind)
            ]
            return self._union_all(parts, base, factor, expr.kind.value)
        if isinstance(expr, Combine):
            a = self._build(expr.left, base, factor, stack)
            b = self._build(expr.right, base, factor, stack)
            op = {
                SetOp.UNION: derive.union,
                SetOp.DIFFERENCE: derive.difference,
                SetOp.INTERSECTION: derive.intersection,
            }[expr.op]
            out = op(a, b)
            self._note_uncertainty(out, expr)
            return out.occupancy
        inner = self._build(expr.operand, base, factor, stack)
        leaves = self._contour_leaves(expr.operand, stack)
        if leaves is not None and isinstance(expr, Ring):
            name = expr.to_text()
            return margins.ring_occupancy(
                leaves, inner, expr.inner_mm, expr.outer_mm, base, factor, name
            )
        if leaves is not None and isinstance(expr, Expand) and expr.margin_mm > 0:
            return margins.expand_occupancy(leaves, expr.margin_mm, base, factor, expr.to_text())
        self._note_margin(expr, base, factor)
        if isinstance(expr, Ring):
            return derive.ring(inner, expr.inner_mm, expr.outer_mm)
        assert isinstance(expr, Expand)
        return derive.expand(inner, expr.margin_mm)

    def _contour_leaves(self, expr: Expr, stack: tuple[str, ...]) -> list[PlaneStack] | None:
        """Slab stacks whose union is ``expr``, or None when ``expr`` is not a union of ROIs
        (its margin then uses the voxel method)."""
        if isinstance(expr, StructureRef):
            r = self._resolve(expr.name, (), stack)
            if r.state is State.ROI and r.roi is not None:
                return [self._stack(r.roi)]
            if r.expression is not None:
                return self._contour_leaves(r.expression, (*stack, expr.name))
            return None
        if isinstance(expr, TargetGroup):
            return [self._stack(self._target_roi(t.name)) for t in self.targets.of_kind(expr.kind)]
        if isinstance(expr, Combine) and expr.op is SetOp.UNION:
            a = self._contour_leaves(expr.left, stack)
            b = self._contour_leaves(expr.right, stack)
            return None if a is None or b is None else a + b
        return None

    def _union_all(
        self, parts: list[Occupancy], base: GridGeometry, factor: tuple[int, int, int], name: str
    ) -> Occupancy:
        if not parts:
            empty = np.zeros((0, 0, 0), np.float32)
            return Occupancy(base, factor, (0, 0, 0), empty, name, 0.0)
        out = parts[0]
        for p in parts[1:]:
            res = derive.union(out, p, name)
            out = res.occupancy
        return out

    def _note_margin(
        self, expr: Ring | Expand, base: GridGeometry, factor: tuple[int, int, int]
    ) -> None:
        if any(
            f.code == "structure.margin_approximate" and f.subject == expr.to_text()
            for f in self.findings
        ):
            return
        cell = ", ".join(f"{s / f:.3g}" for s, f in zip(base.spacing, factor, strict=True))
        self.findings.append(
            Finding(
                "structure.margin_approximate",
                f"{expr.to_text()}: not a margin of ROIs, so computed on cells of {cell} mm "
                "(exact margins need an ROI or a union of ROIs); at the edges and corners of "
                "a shape such volumes come out smaller than the exact expansion (measured up "
                "to 9 % on 2.5 mm cells, docs/evaluation.md section 3)",
                Severity.WARNING,
                subject=expr.to_text(),
            )
        )

    def _note_uncertainty(self, res: derive.BooleanResult, expr: Combine) -> None:
        occ = res.occupancy
        if res.uncertainty_cc > outside_tolerance_cc(occ.volume_cc):
            self.findings.append(
                Finding(
                    "structure.boolean_uncertain",
                    f"{expr.to_text()}: {res.uncertainty_cc:.3f} cc of cells are only partly "
                    "filled by both operands; the derived volume "
                    f"({occ.volume_cc:.2f} cc) may differ by up to that much",
                    Severity.INFO,
                    subject=expr.to_text(),
                )
            )


def _margin_mm(expr: Expr) -> float:
    """Largest total margin (mm) an expression adds around its operands."""
    if isinstance(expr, StructureRef | TargetGroup):
        return 0.0
    if isinstance(expr, Combine):
        return max(_margin_mm(expr.left), _margin_mm(expr.right))
    own = expr.outer_mm if isinstance(expr, Ring) else abs(expr.margin_mm)
    return own + _margin_mm(expr.operand)


def _named(occ: Occupancy, name: str) -> Occupancy:
    from dataclasses import replace

    return replace(occ, name=name, structure_volume_cc=occ.volume_cc)


#: RT ROI Interpreted Types that an organ at risk should not carry.
NOT_ORGAN_TYPES = frozenset(
    {"PTV", "CTV", "GTV", "EXTERNAL", "CONTROL", "BOLUS", "SUPPORT", "FIXATION", "MARKER"}
)


def _no_volume_reason(roi: Roi) -> str:
    """Why an ROI that was drawn (it has contours) gives no DVH: none of them is closed."""
    kinds = sorted({str(c.geometric_type) for c in roi.contours})
    return (
        f"ROI {roi.name!r} has {len(roi.contours)} contour(s), none closed planar with 3 or more "
        f"points ({', '.join(kinds)}): it was drawn but describes no volume, so its dose is "
        "unknown; close the contours or map the organ to another ROI with --names"
    )


def _type_findings(name: str, roi: Roi) -> tuple[Finding, ...]:
    """WARNING when an organ's ROI is typed as a target, the External, or a helper."""
    kind = (roi.interpreted_type or "").upper()
    if kind not in NOT_ORGAN_TYPES or name in TargetKind.__members__:
        return ()
    if kind == "EXTERNAL" and normalise(name) in ("external", "body"):
        return ()
    return (
        Finding(
            "structure.type_mismatch",
            f"{name} matched to ROI {roi.name!r}, whose RT ROI Interpreted Type is {kind}, "
            "not an organ: check that it is the organ itself",
            Severity.WARNING,
            subject=name,
        ),
    )


def _match_findings(m) -> tuple[Finding, ...]:
    """INFO for a non-exact match; WARNING when other ROIs also match beside an exact name."""
    if m.method is None:
        return ()
    if m.method.value == "exact":
        if not m.reason:
            return ()
        return (
            Finding(
                "structure.also_similar",
                f"{m.protocol_name} matched to ROI {m.roi_name!r} (exact name); {m.reason}, "
                "not used: check that the exact name is the structure to evaluate",
                Severity.WARNING,
                subject=m.protocol_name,
            ),
        )
    extra = f"; {m.reason}" if m.reason else ""
    return (
        Finding(
            "structure.matched",
            f"{m.protocol_name} matched to ROI {m.roi_name!r} ({m.method.value}){extra}",
            Severity.INFO,
            subject=m.protocol_name,
        ),
    )
