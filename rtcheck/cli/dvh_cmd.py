"""``rtcheck dvh``: DVHs and DVH metrics of the structures of a plan (no protocol, no verdict).

``rtcheck dvh PATH`` (a folder holding one case) or ``rtcheck dvh --rtstruct F --rtdose F``
(two files, which may come from different exports: a patient mismatch is a finding; a
frame-of-reference mismatch is an error, as in ``rtcheck check``, unless
``--allow-frame-mismatch``). ``--format json`` prints the contract documented in
``docs/evaluation.md`` and ``docs/dvh.md``; a metric that cannot be computed is ``null`` with a
finding. Metrics in % of the prescription use the one :mod:`rtcheck.cli.dvh_rx` chooses.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from rtcheck.cli.dvh_rx import DvhPrescriptions, RxUse
from rtcheck.cli.options import dose_reading_options, format_option, input_options
from rtcheck.composite import DoseSet
from rtcheck.doseset import PlanDose, dose_set
from rtcheck.dvh.compute import DvhOptions, PreparedDose, compute_dvh
from rtcheck.dvh.dvh import DVH
from rtcheck.errors import (
    ConfigError,
    Finding,
    LinkError,
    RtcheckError,
    Severity,
    UnsupportedError,
)
from rtcheck.geometry.resample import describe_grid
from rtcheck.io.caseload import check_frames
from rtcheck.io.dicom import load_dose, read_patient, read_structures
from rtcheck.io.discover import load_case
from rtcheck.metrics import DoseBasis, Metric, MetricNotComputable, parse_metric
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
        help="Prescription dose for metrics in % of Rx [default: a target's own, from the "
        "RT Plan; for other structures the case's, if all targets have the same].",
    )
    @click.option(
        "--fractions",
        type=click.IntRange(min=1),
        default=None,
        help="Number of fractions for EQD2/BED metrics [default: from the RT Plan].",
    )
    @click.option(
        "--alpha-beta",
        "alpha_beta",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="GY",
        help="alpha/beta for EQD2/BED metrics that state none, e.g. Max[EQD2Gy].",
    )
    @dose_reading_options()
    def dvh(
        path: str | None,
        rtstruct: str | None,
        rtdose: str | None,
        structures: tuple[str, ...],
        metrics: tuple[str, ...],
        fmt: str,
        prescription: float | None,
        fractions: int | None,
        alpha_beta: float | None,
        relative_prescription_gy: float | None,
        allow_frame_mismatch: bool,
    ) -> int:
        """Print the DVH of every structure (or of --structure NAME) and DVH metrics.

        Metrics in EQD2 or BED (e.g. D0.03cc[EQD2Gy(a/b=2)]) are computed on the dose
        converted voxel-wise with the plan's number of fractions (LQ model, as rtcheck check).
        """
        parsed = [(text, parse_metric(text)) for text in metrics]
        if prescription is not None and not prescription > 0:
            raise ConfigError("--prescription must be a positive dose in Gy")
        ss, doses, findings, options = _inputs(
            path, rtstruct, rtdose, relative_prescription_gy, allow_frame_mismatch
        )
        doses = _with_fractions(doses, fractions, findings)
        dose = _physical(doses, path or rtdose, findings)
        rois = _select(ss, structures)
        radio = RadioDoses(doses, alpha_beta)
        rx = DvhPrescriptions(ss, doses, prescription)
        doc = build_dvh_report(ss, rois, dose, parsed, rx, findings, options, radio)
        with_rx = any(m.needs_prescription for _, m in parsed)
        _emit(doc, fmt, [t for t, _ in parsed], with_rx)
        return 0


def _inputs(
    path: str | None,
    rtstruct: str | None,
    rtdose: str | None,
    rel: float | None,
    allow_frame_mismatch: bool = False,
) -> tuple[StructureSet, DoseSet, list[Finding], DvhOptions]:
    if rtstruct is not None or rtdose is not None:
        if rtstruct is None or rtdose is None:
            raise ConfigError("give both --rtstruct and --rtdose (or a folder)")
        ss, dose, findings = _explicit(rtstruct, rtdose, rel, allow_frame_mismatch)
        if dose.dose_type.upper() != "PHYSICAL":
            findings.append(
                Finding(
                    "dose.not_physical",
                    f"the RT Dose has DoseType {dose.dose_type} (e.g. an EQD2/BED sum written "
                    "by rtcheck sum): every value below is in that basis, not physical Gy, and "
                    "EQD2/BED metrics are not computed on it",
                    Severity.WARNING,
                    source=dose.source,
                )
            )
        label = dose.source or rtdose
        return ss, DoseSet([PlanDose(None, dose, None, (label,))]), findings, DvhOptions()
    if path is None:
        raise ConfigError("give a plan folder, or --rtstruct and --rtdose files")
    case = load_case(path, relative_prescription_gy=rel, allow_frame_mismatch=allow_frame_mismatch)
    findings = list(case.findings)
    options = DvhOptions()
    if case.image is not None and case.image.slice_thickness_mm:
        thickness = case.image.slice_thickness_mm
        options = DvhOptions(single_plane_thickness_mm=thickness, nominal_spacing_mm=thickness)
    assert case.structure_set is not None
    ds = dose_set(case)
    findings += [f for f in ds.findings if f not in findings]
    return case.structure_set, ds, findings, options


def _with_fractions(doses: DoseSet, n: int | None, findings: list[Finding]) -> DoseSet:
    """``--fractions n`` for every plan dose; a plan stating another number is a finding."""
    if n is None:
        return doses
    for pd in doses.plan_doses:
        if pd.fractions is not None and pd.fractions != n:
            findings.append(
                Finding(
                    "fractions.overridden",
                    f"--fractions {n} used for EQD2/BED metrics although the RT Plan of "
                    f"{pd.label} states {pd.fractions}",
                    Severity.WARNING,
                    subject=pd.label,
                )
            )
    pds = [replace(pd, fractions=n) for pd in doses.plan_doses]
    return DoseSet(pds, doses.findings, grid=doses.grid_choice)


def _physical(doses: DoseSet, where: str | None, findings: list[Finding]) -> DoseGrid:
    """The physical dose the DVHs are computed on: the plan's, or the sum of the plans'."""
    if len(doses.plan_doses) == 1:
        return doses.plan_doses[0].dose
    reason = doses.mixed_fractionation
    if reason:
        raise UnsupportedError(
            f"{reason}: a DVH of their physical sum matches no fractionation; write an "
            "EQD2 sum with `rtcheck sum PATH -o sum.dcm --eqd2 --alpha-beta AB` and run "
            "`rtcheck dvh --rtstruct RS.dcm --rtdose sum.dcm`",
            path=where,
        )
    comp = doses.physical()
    findings.append(Finding("dvh.summed", f"DVHs of the {comp.summary()}", Severity.INFO))
    findings += list(comp.findings)
    return comp.dose


def _explicit(
    rtstruct: str, rtdose: str, rel: float | None, allow_frame_mismatch: bool = False
) -> tuple[StructureSet, DoseGrid, list[Finding]]:
    """Read the two files; a frame-of-reference mismatch is refused as ``rtcheck check`` does.

    Raises
    ------
    LinkError
        Dose and structures on different frames of reference, without
        ``allow_frame_mismatch`` (the message names both files).
    """
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
    try:
        check_frames(dose, ss, allow_frame_mismatch, findings)
    except LinkError as exc:
        raise LinkError(
            f"{exc.message} (RT Structure Set {rtstruct})", exc.path or rtdose
        ) from None
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


class RadioDoses:
    """EQD2/BED doses of a case for radiobiological metrics, converted once per alpha/beta.

    Parameters
    ----------
    doses
        The plan doses (each with its number of fractions).
    default_alpha_beta
        ``--alpha-beta``: for metrics that state no alpha/beta.
    """

    def __init__(self, doses: DoseSet, default_alpha_beta: float | None) -> None:
        self.doses = doses
        self.default_alpha_beta = default_alpha_beta
        self._prepared: dict[tuple[str, float], PreparedDose] = {}

    def prepared(self, metric: Metric) -> PreparedDose:
        """The converted dose for ``metric``'s basis and alpha/beta.

        Raises
        ------
        MetricNotComputable
            No alpha/beta (neither in the metric nor ``--alpha-beta``).
        RtcheckError
            The conversion is impossible (number of fractions unknown...).
        """
        ab = metric.alpha_beta if metric.alpha_beta is not None else self.default_alpha_beta
        if ab is None:
            raise MetricNotComputable(
                f"{metric.canonical}: no alpha/beta; write it in the metric "
                f"(e.g. [{metric.basis.value}{'Gy' if metric.basis is DoseBasis.EQD2 else ''}"
                "(a/b=3)]) or give --alpha-beta"
            )
        converted = [pd.label for pd in self.doses.plan_doses if pd.dose.dose_type != "PHYSICAL"]
        if converted:
            raise MetricNotComputable(
                f"{metric.canonical}: the dose of {', '.join(converted)} is not PHYSICAL "
                "(already converted); EQD2/BED metrics need the physical dose"
            )
        unknown = [pd.label for pd in self.doses.plan_doses if pd.fractions is None]
        if unknown:
            raise MetricNotComputable(
                f"{metric.canonical}: number of fractions unknown for {', '.join(unknown)} "
                "(no RT Plan states it); give --fractions N"
            )
        key = (metric.basis.value, float(ab))
        if key not in self._prepared:
            comp = self.doses.composite_for_alpha_beta(float(ab), metric.basis.value)
            self._prepared[key] = PreparedDose.of(comp.dose)
        return self._prepared[key]


def build_dvh_report(
    ss: StructureSet,
    rois: list[Roi],
    dose: DoseGrid,
    metrics: list[tuple[str, Metric]],
    rx: DvhPrescriptions | None,
    findings: list[Finding],
    options: DvhOptions | None = None,
    radio: RadioDoses | None = None,
) -> dict[str, Any]:
    """The ``rtcheck dvh`` JSON document (see ``docs/evaluation.md``, ``docs/dvh.md``).

    ``rx`` chooses the prescription of each structure's % of Rx metrics (None: unknown).
    ``radio`` gives the converted doses for EQD2/BED metrics; without it they are ``null``
    with a finding.
    """
    needs_rx = any(m.needs_prescription for _, m in metrics)
    prepared = PreparedDose.of(dose)
    options = options or DvhOptions()
    items = []
    for roi in rois:
        physical = compute_dvh(prepared, roi, options=options)

        def dvh_for(metric: Metric, roi: Roi = roi, physical: DVH = physical) -> DVH:
            if metric.basis is DoseBasis.PHYSICAL:
                return physical
            if radio is None:
                raise MetricNotComputable(
                    f"{metric.canonical}: EQD2/BED metrics need the plan doses"
                )
            return compute_dvh(radio.prepared(metric), roi, options=options)

        use = _rx_use(rx, roi) if needs_rx else None
        items.append(_structure(physical, roi, metrics, use, dvh_for))
    return {
        "structures": items,
        "dose": {
            "source": dose.source,
            "max_gy": dose.max_gy,
            "grid": describe_grid(dose.geometry),
            "dose_type": dose.dose_type,
            "summation_type": dose.summation_type,
            "units": dose.units_note,
            "prescription_gy": rx.given if rx else None,
            "convention": options.convention,
        },
        "findings": [f.to_dict() for f in findings],
    }


def _rx_use(rx: DvhPrescriptions | None, roi: Roi) -> RxUse:
    if rx is None:
        return RxUse(None, reason="give --prescription GY")
    return rx.for_roi(roi)


def _structure(
    dvh: DVH,
    roi: Roi,
    metrics: list[tuple[str, Metric]],
    rx: RxUse | None,
    dvh_for: Callable[[Metric], DVH],
) -> dict[str, Any]:
    """One structure of the JSON document; ``rx`` is None when no metric needs a prescription."""
    findings = list(dvh.findings) + list(rx.findings if rx else ())
    empty = dvh.is_empty
    values: dict[str, float | None] = {}
    gy = rx.gy if rx else None
    for text, metric in metrics:
        try:
            if metric.needs_prescription and gy is None:
                reason = rx.reason if rx else None
                raise MetricNotComputable(
                    f"{metric.canonical} is relative to the prescription: {reason}"
                )
            values[text] = metric.evaluate(dvh_for(metric), prescription_gy=gy)
        except (MetricNotComputable, RtcheckError) as exc:
            values[text] = None
            findings.append(
                Finding(
                    "metric.not_computable",
                    getattr(exc, "reason", None) or exc.message,
                    Severity.WARNING,
                    subject=roi.name,
                )
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
        "prescription_gy": gy,
        "prescription": rx.label if rx and gy is not None else None,
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


def _emit(doc: dict[str, Any], fmt: str, metric_texts: list[str], with_rx: bool = False) -> None:
    """Print ``doc``; ``with_rx`` adds the column saying which prescription each row used."""
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
        *(["prescription"] if with_rx else []),
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
        + ([s["prescription"]] if with_rx else [])
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
