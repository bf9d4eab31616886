"""``rtcheck dvh``: DVHs and DVH metrics of the structures of a plan (no protocol, no verdict).

``rtcheck dvh PATH`` (a folder holding one case) or ``rtcheck dvh --rtstruct F --rtdose F``
(two files, which may come from different exports: a patient or frame-of-reference mismatch is
a finding, not an error). ``--format json`` prints the contract documented in
``docs/evaluation.md``; a metric that cannot be computed is ``null`` with a finding.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from rtcheck.cli.options import dose_reading_options, format_option, input_options
from rtcheck.doseset import dose_set
from rtcheck.dvh.compute import DvhOptions, PreparedDose, compute_dvh
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import ConfigError, Finding, Severity
from rtcheck.geometry.resample import describe_grid
from rtcheck.io.dicom import load_dose, read_patient, read_structures
from rtcheck.io.discover import load_case
from rtcheck.metrics import Metric, MetricNotComputable, parse_metric
from rtcheck.model import DoseGrid, Roi, StructureSet
from rtcheck.names import match_structure

#: Most points of a DVH curve in the JSON output.
CURVE_POINTS = 500


def register(cli: click.Group) -> None:
    """Add ``dvh`` to ``cli``."""

    @cli.command("dvh")
    @click.argument("path", required=False, type=click.Path(path_type=str))
    @input_options(several=False)
    @click.option(
        "--structure",
        "structures",
        multiple=True,
        metavar="NAME",
        help="Structure (repeatable; default: all).",
    )
    @click.option(
        "--metric",
        "metrics",
        multiple=True,
        metavar="EXPR",
        help="TG-263 metric, e.g. D95%[Gy] (repeatable).",
    )
    @format_option(csv=True)
    @click.option(
        "--prescription",
        type=float,
        default=None,
        metavar="GY",
        help="Prescription dose for metrics in % of Rx.",
    )
    @dose_reading_options(frame_mismatch=False)
    def dvh(
        path: str | None,
        rtstruct: str | None,
        rtdose: str | None,
        structures: tuple[str, ...],
        metrics: tuple[str, ...],
        fmt: str,
        prescription: float | None,
        relative_prescription_gy: float | None,
    ) -> int:
        """Print the DVH of every structure (or of --structure NAME) and DVH metrics."""
        parsed = [(text, parse_metric(text)) for text in metrics]
        if prescription is not None and not prescription > 0:
            raise ConfigError("--prescription must be a positive dose in Gy")
        ss, dose, findings, options = _inputs(path, rtstruct, rtdose, relative_prescription_gy)
        rois = _select(ss, structures)
        doc = build_dvh_report(ss, rois, dose, parsed, prescription, findings, options)
        _emit(doc, fmt, [t for t, _ in parsed])
        return 0


def _inputs(
    path: str | None, rtstruct: str | None, rtdose: str | None, rel: float | None
) -> tuple[StructureSet, DoseGrid, list[Finding], DvhOptions]:
    if rtstruct is not None or rtdose is not None:
        if rtstruct is None or rtdose is None:
            raise ConfigError("give both --rtstruct and --rtdose (or a folder)")
        return (*_explicit(rtstruct, rtdose, rel), DvhOptions())
    if path is None:
        raise ConfigError("give a plan folder, or --rtstruct and --rtdose files")
    case = load_case(path, relative_prescription_gy=rel)
    findings = list(case.findings)
    options = DvhOptions()
    if case.image is not None and case.image.slice_thickness_mm:
        thickness = case.image.slice_thickness_mm
        options = DvhOptions(single_plane_thickness_mm=thickness, nominal_spacing_mm=thickness)
    assert case.structure_set is not None
    ds = dose_set(case)
    findings += [f for f in ds.findings if f not in findings]
    if len(ds.plan_doses) == 1:
        return case.structure_set, ds.plan_doses[0].dose, findings, options
    comp = ds.physical()  # refuses mixed fractionation with a clear error
    findings.append(Finding("dvh.summed", f"DVHs of the {comp.summary()}", Severity.INFO))
    return case.structure_set, comp.dose, findings + list(comp.findings), options


def _explicit(
    rtstruct: str, rtdose: str, rel: float | None
) -> tuple[StructureSet, DoseGrid, list[Finding]]:
    ss = read_structures(rtstruct)
    dose, findings = load_dose(rtdose, relative_prescription_gy=rel)
    findings = list(ss.findings) + list(findings)
    p_s, p_d = read_patient(rtstruct), read_patient(rtdose)
    if p_s.id != p_d.id:
        findings.append(
            Finding(
                "link.patient_mismatch",
                f"the files belong to different patients ({p_s.id!r}, {p_d.id!r})",
                Severity.WARNING,
            )
        )
    f_s, f_d = ss.frame_of_reference_uid, dose.frame_of_reference_uid
    if f_s and f_d and f_s != f_d:
        findings.append(
            Finding(
                "link.frame_mismatch",
                f"structures and dose are on different frames of reference ({f_s}, {f_d}); "
                "coordinates are used as they are",
                Severity.WARNING,
            )
        )
    return ss, dose, findings


def _select(ss: StructureSet, names: tuple[str, ...]) -> list[Roi]:
    if not names:
        return list(ss.rois)
    all_names = [r.name for r in ss.rois]
    out = []
    for name in names:
        m = match_structure(name, (), all_names)
        if not m.found:
            listing = ", ".join(all_names) or "none"
            raise ConfigError(f"--structure {name}: {m.reason or 'not found'} (ROIs: {listing})")
        out.append(next(r for r in ss.rois if r.name == m.roi_name))
    return out


def build_dvh_report(
    ss: StructureSet,
    rois: list[Roi],
    dose: DoseGrid,
    metrics: list[tuple[str, Metric]],
    prescription: float | None,
    findings: list[Finding],
    options: DvhOptions | None = None,
) -> dict[str, Any]:
    """The ``rtcheck dvh`` JSON document (see ``docs/evaluation.md``)."""
    prepared = PreparedDose.of(dose)
    options = options or DvhOptions()
    items = [
        _structure(compute_dvh(prepared, roi, options=options), roi, metrics, prescription)
        for roi in rois
    ]
    return {
        "structures": items,
        "dose": {
            "source": dose.source,
            "max_gy": dose.max_gy,
            "grid": describe_grid(dose.geometry),
            "dose_type": dose.dose_type,
            "summation_type": dose.summation_type,
            "units": dose.units_note,
            "prescription_gy": prescription,
            "convention": options.convention,
        },
        "findings": [f.to_dict() for f in findings],
    }


def _structure(
    dvh: DVH, roi: Roi, metrics: list[tuple[str, Metric]], rx: float | None
) -> dict[str, Any]:
    findings = list(dvh.findings)
    empty = dvh.is_empty
    values: dict[str, float | None] = {}
    for text, metric in metrics:
        try:
            values[text] = metric.evaluate(dvh, prescription_gy=rx)
        except MetricNotComputable as exc:
            values[text] = None
            findings.append(
                Finding("metric.not_computable", exc.reason, Severity.WARNING, subject=roi.name)
            )
    dose, vol = _curve(dvh)
    return {
        "name": roi.name,
        "roi_number": roi.number,
        "type": roi.interpreted_type,
        "volume_cc": float(dvh.structure_volume_cc or 0.0),
        "outside_volume_cc": dvh.outside_volume_cc,
        "min_gy": None if empty else dvh.min_gy,
        "mean_gy": None if empty else dvh.mean_gy,
        "max_gy": None if empty else dvh.max_gy,
        "metrics": values,
        "dvh": {"dose_gy": dose, "volume_cc": vol},
        "findings": [f.to_dict() for f in findings],
    }


def _curve(dvh: DVH) -> tuple[list[float], list[float]]:
    """Cumulative DVH: volume (cc, inside the dose grid) receiving at least each dose."""
    if dvh.is_empty:
        return [], []
    top = dvh.max_gy
    n = CURVE_POINTS if top > 0 else 1
    doses = [top * i / max(n - 1, 1) for i in range(n)]
    return [round(d, 5) for d in doses], [round(dvh.volume_at_dose_cc(d), 6) for d in doses]


def _emit(doc: dict[str, Any], fmt: str, metric_texts: list[str]) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        return
    header = [
        "name",
        "roi_number",
        "type",
        "volume_cc",
        "min_gy",
        "mean_gy",
        "max_gy",
        *metric_texts,
    ]
    rows = [
        [
            s["name"],
            s["roi_number"],
            s["type"],
            s["volume_cc"],
            s["min_gy"],
            s["mean_gy"],
            s["max_gy"],
        ]
        + [s["metrics"][t] for t in metric_texts]
        for s in doc["structures"]
    ]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows([["" if v is None else v for v in row] for row in rows])
        sys.stdout.write(buf.getvalue())
        return
    _table(header, rows, doc)


def _table(header: list[str], rows: list[list[Any]], doc: dict[str, Any]) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(header)
    ]
    d = doc["dose"]
    click.echo(f"Dose: {d['source'] or '(sum)'}; max {d['max_gy']:.3f} Gy; {d['grid']}")
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in text:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    notes = [f for f in doc["findings"] if f["severity"] != "info"]
    notes += [f for s in doc["structures"] for f in s["findings"] if f["severity"] != "info"]
    for f in notes:
        click.echo(
            f"{f['severity'].upper()}: {f['subject'] + ': ' if f['subject'] else ''}{f['message']}"
        )
