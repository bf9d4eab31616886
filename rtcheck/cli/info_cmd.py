"""``rtcheck info PATH``: what rtcheck reads from a plan folder or a single DICOM file.

Shows the patient, plans (label, fractions, prescriptions), dose grids (shape, spacing, max
dose, summation type, referenced plan), structures (type, contours, planes, volume from the
contours), the links between the objects and every finding, as tables (for a folder and for
a single file alike; see :mod:`rtcheck.cli.info_table`). ``--format json`` prints one JSON
document on stdout instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from rtcheck import __version__
from rtcheck.cli.info_table import print_info_table
from rtcheck.cli.options import dose_reading_options, format_option
from rtcheck.errors import RtcheckError
from rtcheck.io.dicom import read_any
from rtcheck.io.discover import discover, single_case
from rtcheck.model import Case, DoseGrid, ImageGeometry, Plan, Roi, StructureSet
from rtcheck.volume import roi_volume

#: Slab thickness (mm) for an ROI drawn on one plane when no CT slice thickness is known.
DEFAULT_SINGLE_PLANE_MM = 2.0


def register(cli: click.Group) -> None:
    """Add ``info`` to ``cli``."""

    @cli.command("info")
    @click.argument("path", type=click.Path(path_type=str))
    @format_option()
    @dose_reading_options(
        relative_help="Dose (Gy) a stored value of 1.0 represents, for RT Doses in RELATIVE units.",
        frame_help="Accept dose and structures on different frames of reference (with a warning).",
    )
    def info(
        path: str, fmt: str, relative_prescription_gy: float | None, allow_frame_mismatch: bool
    ) -> int:
        """Show what rtcheck reads from PATH (a plan folder or one DICOM file)."""
        report = build_info(
            path,
            relative_prescription_gy=relative_prescription_gy,
            allow_frame_mismatch=allow_frame_mismatch,
        )
        if fmt == "json":
            click.echo(json.dumps(report, indent=2, allow_nan=False))
        else:
            print_info_table(report)
        return 2 if any(c.get("error") for c in report.get("cases", [])) else 0


def build_info(
    path: str,
    *,
    relative_prescription_gy: float | None = None,
    allow_frame_mismatch: bool = False,
) -> dict[str, Any]:
    """The ``info`` report as a JSON-ready dict.

    Raises
    ------
    RtcheckError
        PATH cannot be read, or a folder holds no case (one line for the CLI).
    """
    out: dict[str, Any] = {"rtcheck_version": __version__, "path": str(Path(path))}
    if os.path.isfile(path):
        obj = read_any(path, relative_prescription_gy=relative_prescription_gy)
        out["object"] = _object_info(obj)
        return out
    found = discover(path)
    opts = {
        "allow_frame_mismatch": allow_frame_mismatch,
        "relative_prescription_gy": relative_prescription_gy,
    }
    if len(found.cases) <= 1:
        out["cases"] = [case_info(single_case(found, **opts))]  # raises when there is none
    else:
        out["cases"] = []
        for ref in found.cases:
            try:
                out["cases"].append(case_info(ref.load(**opts)))
            except RtcheckError as exc:
                out["cases"].append({"label": ref.label, "error": str(exc)})
        out["findings"] = [f.to_dict() for f in found.findings]
        out["unreadable"] = [{"path": p, "reason": r} for p, r in found.unreadable]
    return out


def _object_info(obj: DoseGrid | StructureSet | Plan | ImageGeometry) -> dict[str, Any]:
    if isinstance(obj, DoseGrid):
        return {"modality": "RTDOSE", **dose_info(obj, {})}
    if isinstance(obj, StructureSet):
        return {"modality": "RTSTRUCT", **structures_info(obj, None)}
    if isinstance(obj, Plan):
        return {"modality": "RTPLAN", **plan_info(obj)}
    return {"modality": "CT", **image_info(obj)}


def case_info(case: Case) -> dict[str, Any]:
    """JSON-ready summary of a loaded :class:`Case`."""
    labels = {p.sop_instance_uid: p.label for p in case.plans}
    thickness = case.image.slice_thickness_mm if case.image else None
    structures = structures_info(case.structure_set, thickness) if case.structure_set else None
    geometry = [f for r in (structures or {}).get("rois", []) for f in r["geometry_findings"]]
    return {
        "label": case.label,
        "patient": vars(case.patient).copy(),
        "study_instance_uid": case.study_instance_uid,
        "plans": [plan_info(p) for p in case.plans],
        "doses": [dose_info(d, labels) for d in case.doses],
        "structure_set": structures,
        "image": image_info(case.image) if case.image else None,
        "links": links(case),
        "files": [vars(f).copy() for f in case.files],
        "findings": [f.to_dict() for f in case.findings] + geometry,
    }


def plan_info(plan: Plan) -> dict[str, Any]:
    """Plan summary."""
    return {
        "label": plan.label,
        "name": plan.name,
        "sop_instance_uid": plan.sop_instance_uid,
        "fractions_planned": plan.fractions_planned,
        "prescriptions": [vars(p).copy() for p in plan.prescriptions],
        "beams": [
            {**vars(b), "isocenter_mm": list(b.isocenter_mm) if b.isocenter_mm else None}
            for b in plan.beams
        ],
        "referenced_structure_set_uid": plan.referenced_structure_set_uid,
        "source": plan.source,
    }


def dose_info(dose: DoseGrid, plan_labels: dict[str | None, str | None]) -> dict[str, Any]:
    """Dose grid summary."""
    g = dose.geometry
    return {
        "source": dose.source,
        "sop_instance_uid": dose.sop_instance_uid,
        "shape": list(g.shape),
        "spacing_mm": list(g.spacing),
        "origin_mm": list(g.origin),
        "row_dir": list(g.row_dir),
        "col_dir": list(g.col_dir),
        "slice_dir": list(g.slice_dir),
        "max_gy": round(dose.max_gy, 6),
        "dose_type": dose.dose_type,
        "summation_type": dose.summation_type,
        "units": dose.units_note,
        "referenced_plan_uid": dose.referenced_plan_uid,
        "referenced_plan_label": plan_labels.get(dose.referenced_plan_uid),
        "frame_of_reference_uid": dose.frame_of_reference_uid,
    }


def roi_info(roi: Roi, ct_thickness_mm: float | None) -> dict[str, Any]:
    """ROI summary with its volume from the contours (slab model)."""
    planes = roi.planes()
    note = None
    thickness = ct_thickness_mm or DEFAULT_SINGLE_PLANE_MM
    # the DVH's volume: rtcheck check / dvh use the CT slice thickness for both keywords
    volume, errors = roi_volume(
        roi, single_plane_thickness_mm=thickness, nominal_spacing_mm=ct_thickness_mm
    )
    if len(planes) == 1:
        source = "CT slice thickness" if ct_thickness_mm else "default, no CT slice thickness known"
        note = f"single plane: slab of {thickness:g} mm ({source})"
    elif not planes:
        volume, note = None, "no closed planar contours: no volume"
    return {
        "number": roi.number,
        "name": roi.name,
        "type": roi.interpreted_type,
        "color": list(roi.color) if roi.color else None,
        "contours": len(roi.contours),
        "volume_contours": len(roi.dvh_contours),
        "planes": len(planes),
        "volume_cc": None if volume is None else round(volume, 4),
        "volume_note": note,
        "geometry_findings": [f.to_dict() for f in errors],
    }


def structures_info(ss: StructureSet, ct_thickness_mm: float | None) -> dict[str, Any]:
    """Structure set summary."""
    rois = [roi_info(r, ct_thickness_mm) for r in ss.rois]
    return {
        "label": ss.label,
        "source": ss.source,
        "sop_instance_uid": ss.sop_instance_uid,
        "frame_of_reference_uid": ss.frame_of_reference_uid,
        "referenced_series_uid": ss.referenced_series_uid,
        "rois": rois,
        "findings": [f.to_dict() for f in ss.findings]
        + [f.to_dict() for r in ss.rois for f in r.findings]
        + [f for r in rois for f in r["geometry_findings"]],
    }


def image_info(image: ImageGeometry) -> dict[str, Any]:
    """CT geometry summary."""
    g = image.geometry
    return {
        "series_instance_uid": image.series_instance_uid,
        "files": image.n_files,
        "shape": list(g.shape),
        "spacing_mm": list(g.spacing),
        "origin_mm": list(g.origin),
        "slice_thickness_mm": image.slice_thickness_mm,
        "frame_of_reference_uid": image.frame_of_reference_uid,
    }


def links(case: Case) -> list[dict[str, Any]]:
    """How the objects of the case refer to each other, and whether each link holds."""
    out: list[dict[str, Any]] = []
    ss = case.structure_set
    for d in case.doses:
        plan = case.plan_for_dose(d)
        out.append(
            {
                "from": f"RTDOSE {Path(d.source or '?').name}",
                "to": f"RTPLAN {plan.label}" if plan else f"RTPLAN {d.referenced_plan_uid}",
                "ok": plan is not None,
                "note": None if plan else "referenced plan not in the case",
            }
        )
        if ss is not None:
            same = d.frame_of_reference_uid == ss.frame_of_reference_uid
            out.append(
                {
                    "from": f"RTDOSE {Path(d.source or '?').name}",
                    "to": "RTSTRUCT frame of reference",
                    "ok": same,
                    "note": None if same else "different frame of reference",
                }
            )
    for p in case.plans:
        ok = ss is not None and p.referenced_structure_set_uid == ss.sop_instance_uid
        out.append(
            {
                "from": f"RTPLAN {p.label}",
                "to": f"RTSTRUCT {ss.label if ss else None}",
                "ok": ok,
                "note": None if ok else f"plan references {p.referenced_structure_set_uid}",
            }
        )
    if ss is not None:
        img = case.image
        ok = img is not None and img.series_instance_uid == ss.referenced_series_uid
        note = None if ok else ("no CT" if img is None else "CT linked by frame of reference")
        out.append({"from": f"RTSTRUCT {ss.label}", "to": "CT", "ok": ok, "note": note})
    return out
