"""Table output of ``rtcheck info``: the report dict of :func:`rtcheck.cli.info_cmd.build_info`.

A plan folder prints one section per case (plans, dose grids, structures, CT, links,
findings); a single file prints its identity and the same tables for its modality. Plain
ASCII rules and no colour when stdout is not a terminal (see ``rtcheck.report.terminal_style``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from rtcheck.errors import Severity
from rtcheck.report.terminal_style import (
    look_for,
    make_console,
    new_table,
    print_table,
    rule,
    trimmed,
)

__all__ = ["print_info_table"]


def print_info_table(report: dict[str, Any]) -> None:
    """Print ``report`` (from ``build_info``) as tables on stdout."""
    con = make_console(None, color=None, width=None)
    with trimmed(con):
        _print_report(con, report)


def _table(con: Any, title: str, columns: list[str], rows: list[list[Any]]) -> None:
    look = look_for(con)
    con.print(Text(title, style=look.style("bold")))
    table = new_table(look)
    for i, c in enumerate(columns):
        numeric = all(_is_number(r[i]) for r in rows if r[i] not in (None, "", "-"))
        table.add_column(c, overflow="fold", justify="right" if numeric and rows else "left")
    for r in rows:
        table.add_row(*[Text("" if v is None else str(v)) for v in r])
    print_table(con, table)
    con.print()


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _fields(con: Any, rows: list[tuple[str, Any]]) -> None:
    """Key/value lines (``None`` shown as ``-``)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(Text(key), Text("-" if value is None else str(value)))
    print_table(con, grid)
    con.print()


def _fmt_vec(v: list[float]) -> str:
    return " x ".join(f"{x:g}" for x in v)


def _print_report(con: Any, report: dict[str, Any]) -> None:
    if "object" in report:
        _print_object(con, report["object"], report["path"])
        return
    for case in report["cases"]:
        _print_case(con, case)
    if report.get("unreadable"):
        rows = [[u["path"], u["reason"]] for u in report["unreadable"]]
        _table(con, "Unreadable files", ["file", "reason"], rows)
    if report.get("findings"):
        _findings_table(con, "Folder findings", report["findings"])


def _print_object(con: Any, obj: dict[str, Any], path: str) -> None:
    """One DICOM file: its identity, then the same tables as for a case."""
    modality = obj["modality"]
    rule(con, f"{modality} {path}")
    if modality == "RTDOSE":
        _fields(
            con,
            [
                ("SOP instance UID", obj["sop_instance_uid"]),
                ("Frame of reference", obj["frame_of_reference_uid"]),
                ("Referenced plan", obj["referenced_plan_uid"]),
                ("Origin mm", _fmt_vec(obj["origin_mm"])),
                ("Dose type", obj["dose_type"]),
            ],
        )
        _table(con, "Dose grid", _DOSE_COLUMNS[:-1], [_dose_row(obj)[:-1]])
    elif modality == "RTPLAN":
        _fields(
            con,
            [
                ("Label", obj["label"]),
                ("Name", obj["name"]),
                ("SOP instance UID", obj["sop_instance_uid"]),
                ("Fractions", _fx(obj["fractions_planned"])),
                ("Structure set", obj["referenced_structure_set_uid"]),
            ],
        )
        _prescriptions_table(con, obj)
        _beams_table(con, obj)
    elif modality == "RTSTRUCT":
        _fields(
            con,
            [
                ("Label", obj["label"]),
                ("SOP instance UID", obj["sop_instance_uid"]),
                ("Frame of reference", obj["frame_of_reference_uid"]),
                ("CT series", obj["referenced_series_uid"]),
            ],
        )
        _rois_table(con, obj)
        _findings_table(con, "Findings", obj["findings"])
    else:
        _fields(con, _image_fields(obj))


def _image_fields(im: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("Series UID", im["series_instance_uid"]),
        ("Files", im["files"]),
        ("Voxels (x y z)", _fmt_vec(im["shape"][::-1])),
        ("Spacing mm", _fmt_vec(im["spacing_mm"])),
        ("Origin mm", _fmt_vec(im["origin_mm"])),
        ("Slice thickness mm", im["slice_thickness_mm"]),
        ("Frame of reference", im["frame_of_reference_uid"]),
    ]


def _fx(fractions: int | None) -> str:
    return "unknown" if fractions is None else str(fractions)


_DOSE_COLUMNS = ["file", "voxels (x y z)", "spacing mm", "max Gy", "summation", "units", "plan"]


def _dose_row(d: dict[str, Any]) -> list[Any]:
    return [
        Path(d["source"] or "?").name,
        _fmt_vec(d["shape"][::-1]),
        _fmt_vec(d["spacing_mm"]),
        f"{d['max_gy']:.3f}",
        d["summation_type"],
        d["units"],
        d["referenced_plan_label"] or d["referenced_plan_uid"] or "-",
    ]


def _prescriptions_table(con: Any, plan: dict[str, Any]) -> None:
    rows = [
        [
            rx["number"],
            rx["reference_type"],
            rx["description"] or "",
            rx["roi_number"],
            "-" if rx["target_dose_gy"] is None else f"{rx['target_dose_gy']:g}",
        ]
        for rx in plan["prescriptions"]
    ]
    if not rows:
        con.print("Prescriptions: none stated")
        con.print()
        return
    _table(con, "Prescriptions", ["#", "type", "description", "ROI", "dose Gy"], rows)


def _beams_table(con: Any, plan: dict[str, Any]) -> None:
    rows = [
        [
            b["number"],
            b["name"],
            b["beam_type"],
            b["radiation_type"],
            "-" if b["meterset"] is None else f"{b['meterset']:g}",
            _fmt_vec(b["isocenter_mm"]) if b["isocenter_mm"] else "-",
        ]
        for b in plan["beams"]
    ]
    if rows:
        _table(con, "Beams", ["#", "name", "type", "radiation", "MU", "isocentre mm"], rows)


def _print_case(con: Any, case: dict[str, Any]) -> None:
    rule(con, f"Case {case['label']}")
    if case.get("error"):
        con.print(f"error: {case['error']}")
        return
    p = case["patient"]
    _fields(
        con,
        [
            ("Patient", f"{p['id']}  {p['name'] or ''}".strip()),
            ("Study", case["study_instance_uid"]),
        ],
    )
    plan_rows = [
        [
            pl["label"],
            _fx(pl["fractions_planned"]),
            "; ".join(_rx_text(rx) for rx in pl["prescriptions"]) or "none stated",
            len(pl["beams"]),
        ]
        for pl in case["plans"]
    ]
    if plan_rows:
        _table(con, "Plans", ["label", "fractions", "prescriptions", "beams"], plan_rows)
    else:
        con.print("Plans: none found (fractions and prescriptions unknown)")
        con.print()
    _table(con, "Dose grids", _DOSE_COLUMNS, [_dose_row(d) for d in case["doses"]])
    if case["structure_set"]:
        _rois_table(con, case["structure_set"])
    if case["image"]:
        im = case["image"]
        con.print(
            f"CT: {im['files']} files, voxels {_fmt_vec(im['shape'][::-1])}, "
            f"spacing {_fmt_vec(im['spacing_mm'])} mm"
        )
        con.print()
    link_rows = [
        [lk["from"], lk["to"], "ok" if lk["ok"] else "NO", lk["note"]] for lk in case["links"]
    ]
    _table(con, "Links", ["from", "to", "linked", "note"], link_rows)
    _findings_table(con, "Findings", case["findings"])


def _rx_text(rx: dict[str, Any]) -> str:
    dose = rx["target_dose_gy"]
    what = rx["description"] or (f"ROI {rx['roi_number']}" if rx["roi_number"] else "?")
    amount = f"{dose:g} Gy" if dose is not None else "no dose"
    return f"{rx['reference_type']} {what}: {amount}"


def _rois_table(con: Any, ss: dict[str, Any]) -> None:
    rows = [
        [
            r["number"],
            r["name"],
            r["type"],
            r["volume_contours"],
            r["planes"],
            "-" if r["volume_cc"] is None else f"{r['volume_cc']:.3f}",
            r["volume_note"],
        ]
        for r in ss["rois"]
    ]
    _table(
        con,
        f"Structures ({ss['label']})",
        ["#", "name", "type", "contours", "planes", "volume cc", "note"],
        rows,
    )


def _findings_table(con: Any, title: str, findings: list[dict[str, Any]]) -> None:
    if not findings:
        con.print(f"{title}: none")
        return
    order = {s.value: i for i, s in enumerate((Severity.ERROR, Severity.WARNING, Severity.INFO))}
    rows = [
        [f["severity"], f["code"], f["subject"] or "", f["message"], Path(f["source"] or "").name]
        for f in sorted(findings, key=lambda f: order.get(f["severity"], 9))
    ]
    _table(con, title, ["severity", "code", "subject", "message", "file"], rows)
