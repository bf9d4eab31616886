"""RT Structure Set reader -> :class:`~rtcheck.model.StructureSet`.

Tolerated problems become findings on the ROI (or the structure set); nothing is dropped
silently. Closed planar contours must lie on an axial plane: the z values of their points may
spread by at most :data:`COPLANAR_TOL_MM`; otherwise the contour is dropped with a finding.
A dropped contour that may have described volume (closed or of unknown type) is also listed
in ``Roi.dropped_contours``: the ROI is incomplete and the evaluation does not use it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.errors import Finding, InputError, Severity
from rtcheck.io.common import (
    capture_warnings,
    display_path,
    ds_numbers,
    expect_modality,
    open_dataset,
    opt_int,
    opt_str,
)
from rtcheck.model import Contour, ContourType, Roi, StructureSet

#: Largest z spread (mm) of the points of one closed planar contour.
COPLANAR_TOL_MM = 0.01

_CLOSED = (ContourType.CLOSED_PLANAR, ContourType.CLOSED_PLANAR_XOR)


def read_structures(path: str | os.PathLike[str]) -> StructureSet:
    """Read an RT Structure Set file.

    Returns every ROI of StructureSetROISequence (also ROIs without contours), with name,
    number, interpreted type, colour and contours; problems are in ``Roi.findings`` and
    ``StructureSet.findings``.

    Raises
    ------
    InputError
        Not a DICOM RT Structure Set, truncated, or no StructureSetROISequence.
    """
    p = display_path(path)
    findings: list[Finding] = []
    ds = open_dataset(p, findings=findings)
    with capture_warnings(findings, p):
        return structures_from_dataset(ds, p, findings)


def structures_from_dataset(ds: Dataset, path: str, findings: list[Finding]) -> StructureSet:
    """Build a :class:`StructureSet` from an RTSTRUCT dataset."""
    expect_modality(ds, "RTSTRUCT", path)
    ordered = _roi_builders(ds, path, findings)
    builders = {b.number: b for b in reversed(ordered)}  # the first ROI of each number
    _add_observations(ds, builders)
    _add_contours(ds, path, builders, findings)
    frame, series = _frame_and_series(ds, builders, path, findings)
    rois = tuple(b.build(path) for b in ordered)
    _name_findings(rois, path, findings)
    return StructureSet(
        rois=rois,
        sop_instance_uid=opt_str(ds, "SOPInstanceUID"),
        frame_of_reference_uid=frame,
        referenced_series_uid=series,
        label=opt_str(ds, "StructureSetLabel"),
        source=path,
        findings=tuple(findings),
    )


@dataclass
class _RoiBuilder:
    number: int
    name: str
    frame: str | None = None
    interpreted_type: str | None = None
    color: tuple[int, int, int] | None = None
    contours: list[Contour] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    has_contour_item: bool = False
    dropped: list[tuple[int, str]] = field(default_factory=list)
    conflict: str | None = None  # ROI number shared with another ROI: contours unattributable

    def note(self, code: str, message: str, severity: Severity, path: str) -> None:
        self.findings.append(Finding(code, message, severity, source=path, subject=self.name))

    def drop(self, idx: int, why: str, path: str, *, volume: bool = True) -> None:
        """Drop contour ``idx`` (0-based) with a WARNING; ``volume``: it may have held volume,
        so the ROI is incomplete (``Roi.dropped_contours``)."""
        self.note(
            "roi.contour_dropped",
            f"ROI '{self.name}' contour {idx + 1} {why}; dropped",
            Severity.WARNING,
            path,
        )
        if volume:
            self.dropped.append((idx + 1, why))

    def build(self, path: str) -> Roi:
        if self.conflict is not None:
            # The contours of this number may be either ROI's: use none of them, keep the ROI
            # (named, so its constraints say why they are not evaluated) as incomplete.
            self.contours.clear()
            self.dropped = [(0, self.conflict)]
        ignored = Counter(c.geometric_type.value for c in self.contours if not c.usable_for_dvh)
        for kind, n in sorted(ignored.items()):
            self.note(
                "roi.contours_ignored",
                f"ROI '{self.name}' has {n} {kind} contour(s) that describe no volume; "
                "they are kept but not used for the DVH",
                Severity.INFO,
                path,
            )
        if not self.contours:
            why = "no contours" if self.has_contour_item else "no ROI Contour item"
            self.note("roi.empty", f"ROI '{self.name}' has {why}", Severity.INFO, path)
        return Roi(
            number=self.number,
            name=self.name,
            interpreted_type=self.interpreted_type,
            color=self.color,
            contours=tuple(self.contours),
            findings=tuple(self.findings),
            dropped_contours=tuple(self.dropped),
        )


def _roi_builders(ds: Dataset, path: str, findings: list[Finding]) -> list[_RoiBuilder]:
    """One builder per StructureSetROISequence item, in file order.

    ROIs that share an ROI number all get a ``conflict``: the ROI Contour items refer to
    ROIs by number only, so their contours cannot be attributed to either ROI.
    """
    seq = ds.get("StructureSetROISequence")
    if seq is None:
        raise InputError("required element StructureSetROISequence is missing", path)
    builders: dict[int, _RoiBuilder] = {}
    ordered: list[_RoiBuilder] = []
    for idx, item in enumerate(seq):
        number = opt_int(item, "ROINumber")
        if number is None:
            findings.append(
                Finding(
                    "structures.roi_without_number",
                    f"StructureSetROISequence item {idx + 1} has no ROINumber; skipped: its "
                    "contours cannot be found, so a constraint on it would not be evaluated",
                    Severity.ERROR,
                    source=path,
                    subject=opt_str(item, "ROIName"),
                )
            )
            continue
        name = opt_str(item, "ROIName") or f"ROI {number}"
        builder = _RoiBuilder(number, name, frame=opt_str(item, "ReferencedFrameOfReferenceUID"))
        if number in builders:
            first = builders[number]
            why = (
                f"ROI number {number} is used by both '{first.name}' and '{name}'; the "
                "contours of that number cannot be attributed to either ROI"
            )
            findings.append(
                Finding(
                    "structures.duplicate_roi_number",
                    f"{why}: neither is used for the DVH",
                    Severity.ERROR,
                    source=path,
                    subject=name,
                )
            )
            first.conflict = builder.conflict = why
        else:
            builders[number] = builder
        ordered.append(builder)
    return ordered


def _add_observations(ds: Dataset, builders: dict[int, _RoiBuilder]) -> None:
    for item in ds.get("RTROIObservationsSequence") or []:
        b = builders.get(opt_int(item, "ReferencedROINumber") or -1)
        if b is not None and b.interpreted_type is None:
            kind = opt_str(item, "RTROIInterpretedType")
            b.interpreted_type = kind.upper() if kind else None


def _add_contours(
    ds: Dataset, path: str, builders: dict[int, _RoiBuilder], findings: list[Finding]
) -> None:
    orphans: list[str] = []
    for item in ds.get("ROIContourSequence") or []:
        number = opt_int(item, "ReferencedROINumber")
        b = builders.get(number if number is not None else -1)
        if b is None:
            n = len(item.get("ContourSequence") or [])
            findings.append(
                Finding(
                    "structures.orphan_contours",
                    f"ROI Contour item refers to ROI number {number}, which is not in "
                    f"StructureSetROISequence; its {n} contour(s) are ignored",
                    Severity.WARNING,
                    source=path,
                )
            )
            if n:
                orphans.append(str(number))
            continue
        b.has_contour_item = True
        b.color = _color(item)
        for idx, c in enumerate(item.get("ContourSequence") or []):
            contour = _contour(c, idx, b, path)
            if contour is not None:
                b.contours.append(contour)
    _claim_orphans(orphans, builders, path)


def _claim_orphans(orphans: list[str], builders: dict[int, _RoiBuilder], path: str) -> None:
    """Make every ROI without a ROI Contour item unusable when orphan contours exist.

    Contours of a ROI Contour item whose ReferencedROINumber is missing or unknown may be
    any ROI's that has no ROI Contour item of its own (a renumbered or broken export):
    taking such an ROI as "not contoured" would silently skip its constraints.
    """
    if not orphans:
        return
    for b in builders.values():
        if b.has_contour_item or b.conflict is not None:
            continue
        why = (
            f"it has no ROI Contour item, and the file holds contours of unknown ROI number(s) "
            f"{', '.join(orphans)} that may be its own"
        )
        b.dropped = [(0, why)]
        b.note(
            "roi.contours_unattributed",
            f"ROI '{b.name}': {why}; not used for the DVH",
            Severity.WARNING,
            path,
        )


def _color(item: Dataset) -> tuple[int, int, int] | None:
    value = item.get("ROIDisplayColor")
    try:
        rgb = [int(v) for v in value] if value is not None else []
    except (TypeError, ValueError):
        return None
    return (rgb[0], rgb[1], rgb[2]) if len(rgb) == 3 else None


def _contour(c: Dataset, idx: int, b: _RoiBuilder, path: str) -> Contour | None:
    """One contour, or None (with a finding on the ROI) when it has to be dropped."""
    where = f"ROI '{b.name}' contour {idx + 1}"
    kind_text = (opt_str(c, "ContourGeometricType") or "").upper()
    try:
        kind = ContourType(kind_text)
    except ValueError:
        b.drop(idx, f"has unknown ContourGeometricType {kind_text!r}", path)
        return None
    try:
        values = ds_numbers(c, "ContourData")
    except ValueError:
        values = np.array([np.nan])
    if values.size == 0 or values.size % 3 or not np.all(np.isfinite(values)):
        b.drop(idx, f"has invalid ContourData ({values.size} values)", path, volume=kind in _CLOSED)
        return None
    points = values.reshape(-1, 3)
    stated = opt_int(c, "NumberOfContourPoints")
    if stated is not None and stated != len(points):
        b.note(
            "roi.point_count_mismatch",
            f"{where}: NumberOfContourPoints is {stated} but ContourData holds "
            f"{len(points)} points; the points are used",
            Severity.INFO,
            path,
        )
    if kind in _CLOSED:
        reason = _planarity_problem(points)
        if reason:
            b.drop(idx, reason, path)
            return None
        if len(points) < 3:
            b.note(
                "roi.contour_degenerate",
                f"{where} is a closed contour with {len(points)} point(s); no area, not used",
                Severity.INFO,
                path,
            )
    return Contour(points=points, geometric_type=kind)


def _planarity_problem(points: np.ndarray) -> str | None:
    """Why a closed contour cannot be used as an axial slice, or None."""
    spread = float(np.ptp(points[:, 2]))
    if spread <= COPLANAR_TOL_MM:
        return None
    centred = points - points.mean(axis=0)
    residual = np.linalg.svd(centred, compute_uv=False)[-1] if len(points) >= 3 else 0.0
    if residual / np.sqrt(len(points)) <= COPLANAR_TOL_MM:
        return f"lies on a non-axial plane (z spans {spread:.3g} mm); only axial contours are used"
    return f"is not planar (z spans {spread:.3g} mm > {COPLANAR_TOL_MM} mm)"


def _main_frame(roi_frames: list[str], listed: list[str]) -> str | None:
    """The frame of reference most ROIs with contours use (ties: listed first, then file order)."""
    if not roi_frames:
        return listed[0] if listed else None
    counts = Counter(roi_frames)
    top = max(counts.values())
    tied = [f for f in dict.fromkeys(roi_frames) if counts[f] == top]
    return next((f for f in listed if f in tied), tied[0])


def _name_findings(rois: tuple[Roi, ...], path: str, findings: list[Finding]) -> None:
    counts = Counter(r.name for r in rois)
    for name, n in sorted(counts.items()):
        if n > 1:
            findings.append(
                Finding(
                    "structures.duplicate_name",
                    f"{n} ROIs are named '{name}'; matching them by name is ambiguous",
                    Severity.WARNING,
                    source=path,
                    subject=name,
                )
            )


def _frame_and_series(
    ds: Dataset, builders: dict[int, _RoiBuilder], path: str, findings: list[Finding]
) -> tuple[str | None, str | None]:
    """Frame of reference of the contours and the referenced image series."""
    frames: list[str] = []
    series: str | None = None
    for ref in ds.get("ReferencedFrameOfReferenceSequence") or []:
        uid = opt_str(ref, "FrameOfReferenceUID")
        if uid and uid not in frames:
            frames.append(uid)
        for study in ref.get("RTReferencedStudySequence") or []:
            for s in study.get("RTReferencedSeriesSequence") or []:
                series = series or opt_str(s, "SeriesInstanceUID")
    roi_frames = [b.frame for b in builders.values() if b.frame and b.contours]
    frame = _main_frame(roi_frames, frames)
    distinct = sorted(set(roi_frames))
    if len(distinct) > 1:
        others = [b for b in builders.values() if b.frame and b.contours and b.frame != frame]
        for b in others:
            why = f"its contours are in frame of reference {b.frame}, not {frame}"
            b.dropped = [(0, why)]
            b.note("roi.other_frame", f"ROI '{b.name}': {why}", Severity.WARNING, path)
        findings.append(
            Finding(
                "structures.several_frames",
                f"contours refer to {len(distinct)} frames of reference ({', '.join(distinct)}); "
                f"{frame} is used for linking; the {len(others)} ROI(s) in another frame "
                f"({', '.join(b.name for b in others)}) are not used",
                Severity.WARNING,
                source=path,
            )
        )
    elif len(frames) > 1:
        findings.append(
            Finding(
                "structures.several_frames",
                f"the structure set lists {len(frames)} frames of reference; the contours use "
                f"{frame}",
                Severity.INFO,
                source=path,
            )
        )
    return frame, series
