"""Realistic :class:`rtcheck.result.Result` objects built in code, for the report tests.

Each structure has an analytic cumulative DVH ``V(D) = 100 (1 - (D/dmax)^a)^b`` percent,
anchored so that one chosen metric has a chosen value. Every other value (D-cc, Max as
D0.035cc, V-Gy, critical volumes) is read off the same analytic curve, so the tables, the
plotted curves and the constraint markers agree. Statuses,
levels and margins follow the rules documented on :class:`ConstraintResult`; each builder
asserts that the status it gets is the one the scenario intends.

Scenarios
---------
``fail_result``        TG-101 5 fx, three lesions, two failures, two not evaluated, hostile
                       strings (``<&>``) in the patient name and an ROI name.
``pass_result``        TG-101 3 fx, one lesion, everything passes.
``incomplete_result``  nothing fails, but an ambiguous structure, an unknown prescription and a
                       structure outside the dose grid leave rows not evaluated.
``eqd2_result``        two plans (1 fx + 5 fx) summed voxel-wise in EQD2, two acceptance
                       levels (optimal / mandatory) from a synthetic test protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtcheck.errors import Finding, Severity
from rtcheck.result import (
    ConstraintResult,
    DvhCurve,
    InputFile,
    LesionResult,
    Limit,
    PlanInfo,
    ProtocolInfo,
    Result,
    Status,
    Verdict,
)

POINT_MAX_CC = 0.035
POINT_MAX_NOTE = "point max evaluated as D0.035cc"
TG101_CITATION = (
    "Benedict SH et al. Stereotactic body radiation therapy: the report of AAPM Task Group 101. "
    "Med Phys 2010;37(8):4078-4101 (erratum 2023)."
)
TG101_SOURCE = "S1 TG-101 Table III"


@dataclass(frozen=True)
class Curve:
    """Analytic cumulative DVH ``V(D) = 100 (1 - (D/dmax)^a)^b`` percent for D < dmax."""

    name: str
    volume_cc: float
    dmax: float
    a: float
    b: float

    @classmethod
    def anchored(
        cls, name: str, volume_cc: float, dmax: float, a: float, dose: float, at_cc: float
    ) -> Curve:
        """Curve reaching 0 % at ``dmax`` whose D(at_cc) equals ``dose``."""
        p = at_cc / volume_cc
        return cls(name, volume_cc, dmax, a, math.log(p) / math.log1p(-((dose / dmax) ** a)))

    def v_pct(self, dose: float) -> float:
        """Volume (% of structure) receiving at least ``dose``."""
        if dose >= self.dmax:
            return 0.0
        return 100.0 * (1.0 - (max(dose, 0.0) / self.dmax) ** self.a) ** self.b

    def d_pct(self, pct: float) -> float:
        """Minimum dose to the hottest ``pct`` percent."""
        return self.dmax * (1.0 - (pct / 100.0) ** (1.0 / self.b)) ** (1.0 / self.a)

    def d_cc(self, cc: float) -> float:
        """Minimum dose to the hottest ``cc``."""
        return self.d_pct(100.0 * cc / self.volume_cc)

    def value(self, metric: str, rx: float | None = None) -> float:
        """Value of the few metrics the fixtures use."""
        if metric == "Max[Gy]":
            return self.d_cc(POINT_MAX_CC)
        if metric == "Min[Gy]":
            return self.d_pct(99.9)
        if metric.startswith("CV") and metric.endswith("Gy[cc]"):
            dose = float(metric[2:-6])
            return self.volume_cc * (1.0 - self.v_pct(dose) / 100.0)
        if metric.startswith("D") and metric.endswith("cc[Gy]"):
            return self.d_cc(float(metric[1:-6]))
        if metric.startswith("D") and metric.endswith("%[Gy]"):
            return self.d_pct(float(metric[1:-5]))
        if metric.startswith("V") and metric.endswith("Gy[%]"):
            return self.v_pct(float(metric[1:-5]))
        if metric.startswith("V") and metric.endswith("%[%]") and rx is not None:
            return self.v_pct(rx * float(metric[1:-4]) / 100.0)
        raise ValueError(f"fixture curve cannot evaluate {metric}")

    def dvh(self, kind: str, dose_basis: str = "physical", dmax: float | None = None) -> DvhCurve:
        """Sampled curve for the report (0.1 Gy steps up to dmax)."""
        top = dmax if dmax is not None else self.dmax
        dose = np.round(np.arange(0.0, top + 0.1, 0.1), 4)
        vol = 100.0 * np.clip(1.0 - (np.minimum(dose, top) / self.dmax) ** self.a, 0, 1) ** self.b
        return DvhCurve(
            structure=self.name,
            kind=kind,
            dose_gy=tuple(float(d) for d in dose),
            volume_pct=tuple(float(v) for v in vol),
            volume_cc=self.volume_cc,
            dose_basis=dose_basis,
        )


def _passes(value: float, lim: Limit) -> bool:
    return {
        "<": value < lim.value,
        "<=": value <= lim.value,
        ">": value > lim.value,
        ">=": value >= lim.value,
    }[lim.comparator]


def judged(
    cid: str,
    structure: str,
    metric: str,
    value: float | None,
    unit: str,
    limits: tuple[Limit, ...],
    expect: Status,
    **kw: object,
) -> ConstraintResult:
    """A ConstraintResult whose status/level/margin follow from value and limits."""
    if value is None:
        status, level, margin = Status.NOT_EVALUATED, None, None
    else:
        met = [lim for lim in limits if _passes(value, lim)]
        lenient = limits[-1]
        status = Status.PASS if _passes(value, lenient) else Status.FAIL
        level = met[0].level if status is Status.PASS else None
        sign = 1.0 if lenient.comparator in ("<", "<=") else -1.0
        margin = sign * (lenient.value - value)
    assert status is expect, f"fixture {cid}: got {status}, want {expect} (value {value})"
    return ConstraintResult(
        id=cid,
        structure=structure,
        metric=metric,
        value=value,
        unit=unit,
        limits=limits,
        status=status,
        level=level,
        margin=margin,
        **kw,  # type: ignore[arg-type]
    )


def lim(comparator: str, value: float, unit: str = "Gy", level: str = "mandatory") -> Limit:
    """Shorthand for a Limit."""
    return Limit(level=level, comparator=comparator, value=value, unit=unit)


def oar(
    curve: Curve | None,
    cid: str,
    structure: str,
    metric: str,
    limits: tuple[Limit, ...],
    expect: Status,
    *,
    roi: str | None = None,
    match: str | None = "exact",
    reason: str | None = None,
    **kw: object,
) -> ConstraintResult:
    """An organ-at-risk constraint evaluated on ``curve`` (None: not evaluated)."""
    unit = limits[0].unit
    value = None if curve is None or expect is Status.NOT_EVALUATED else curve.value(metric)
    note = kw.pop("note", POINT_MAX_NOTE if metric == "Max[Gy]" else None)
    return judged(
        cid,
        structure,
        metric,
        value,
        unit,
        limits,
        expect,
        matched_roi=roi if roi is not None else (structure if curve else None),
        match=match,
        reason=reason,
        note=note,
        **kw,
    )


def _inputs(stem: str, modalities: tuple[str, ...]) -> tuple[InputFile, ...]:
    import hashlib

    return tuple(
        InputFile(
            path=f"/data/{stem}/{m}.dcm",
            modality=m,
            sha256=hashlib.sha256(f"{stem}/{m}".encode()).hexdigest(),
        )
        for m in modalities
    )


def _tg101(fx: int) -> ProtocolInfo:
    return ProtocolInfo(
        id="tg101",
        title=f"AAPM TG-101 serial-tissue limits, {fx} fractions",
        version="2010 (2023 erratum)",
        citation=TG101_CITATION,
        levels=("mandatory", "none", "minor"),
        source_file="constraints/tg101.yaml",
    )


def _target(
    name: str, rx: float, volume_cc: float, d95: float, dmax: float
) -> tuple[Curve, dict[str, float | None]]:
    curve = Curve.anchored(name, volume_cc, dmax, 16.0, d95, 0.95 * volume_cc)
    metrics: dict[str, float | None] = {
        "D95%[Gy]": curve.value("D95%[Gy]"),
        "D98%[Gy]": curve.value("D98%[Gy]"),
        "V100%[%]": curve.value("V100%[%]", rx),
        "Min[Gy]": curve.value("Min[Gy]"),
        "Max[Gy]": curve.value("Max[Gy]"),
    }
    return curve, metrics


def _rtog_table(
    lesion: str, volume_cc: float, values: dict[str, float], expects: dict[str, Status]
) -> tuple[ConstraintResult, ...]:
    """V100% >= 95 and the RTOG 0813 conformity rows (limits interpolated for the volume)."""
    r50 = _interp_rtog(volume_cc, [(22.0, 4.5, 5.5), (34.0, 4.3, 5.3), (7.4, 5.1, 6.0)])
    d2cm = _interp_rtog(volume_cc, [(22.0, 54.0, 63.0), (34.0, 58.0, 68.0), (7.4, 50.0, 58.0)])
    src = "S5 RTOG 0813 Table 1 (interpolated for PTV volume)"
    out = [
        judged(
            f"{lesion}.V100",
            lesion,
            "V100%[%]",
            values.get("V100%[%]"),
            "%",
            (lim(">=", 95.0, "%"),),
            expects["V100%[%]"],
            matched_roi=lesion,
            match="exact",
            source="S4 RTOG 0813 target rule",
            lesion=lesion,
            reason=None if "V100%[%]" in values else "prescription unknown",
        ),
        judged(
            f"{lesion}.R50",
            lesion,
            "R50%",
            values.get("R50%"),
            "ratio",
            (lim("<", r50[0], "ratio", "none"), lim("<", r50[1], "ratio", "minor")),
            expects["R50%"],
            matched_roi=lesion,
            match="exact",
            source=src,
            lesion=lesion,
            reason=None if "R50%" in values else "prescription unknown",
        ),
        judged(
            f"{lesion}.D2cm",
            lesion,
            "D2cm[%]",
            values.get("D2cm[%]"),
            "%",
            (lim("<", d2cm[0], "%", "none"), lim("<", d2cm[1], "%", "minor")),
            expects["D2cm[%]"],
            matched_roi=lesion,
            match="exact",
            source=src,
            lesion=lesion,
            note="D2cm in % of the lesion prescription",
            reason=None if "D2cm[%]" in values else "prescription unknown",
        ),
    ]
    return tuple(out)


def _interp_rtog(v: float, rows: list[tuple[float, float, float]]) -> tuple[float, float]:
    rows = sorted(rows)
    xs = [r[0] for r in rows]
    none = float(np.interp(v, xs, [r[1] for r in rows]))
    minor = float(np.interp(v, xs, [r[2] for r in rows]))
    return round(none, 2), round(minor, 2)


def _lesion(
    name: str,
    rx: float | None,
    volume_cc: float,
    d95: float,
    dmax: float,
    plan: str,
    fx: int,
    quality: dict[str, float],
    expects: dict[str, Status],
    findings: tuple[Finding, ...] = (),
    rx_source: str | None = "RT Plan",
) -> tuple[LesionResult, Curve]:
    curve, metrics = _target(name, rx or 50.0, volume_cc, d95, dmax)
    if rx is None:
        metrics["V100%[%]"] = None
        quality = {}
    metrics.update(quality)
    metrics.setdefault("CI_RTOG", None)
    metrics.setdefault("CI_Paddick", None)
    metrics.setdefault("GI", None)
    metrics.setdefault("R50%", None)
    metrics.setdefault("D2cm[%]", None)
    values = {k_: v for k_, v in metrics.items() if v is not None}
    lesion = LesionResult(
        name=name,
        roi_number=None,
        prescription_gy=rx,
        prescription_source=rx_source,
        plan_label=plan,
        fractions=fx,
        volume_cc=volume_cc,
        metrics=metrics,
        constraints=_rtog_table(name, volume_cc, values, expects),
        findings=findings,
    )
    return lesion, curve


def _result(
    verdict: Verdict,
    protocol: ProtocolInfo,
    plan: PlanInfo,
    constraints: tuple[ConstraintResult, ...],
    lesions: tuple[LesionResult, ...],
    findings: tuple[Finding, ...],
    dvhs: tuple[DvhCurve, ...],
    inputs: tuple[InputFile, ...],
) -> Result:
    result = Result(
        verdict=verdict,
        protocol=protocol,
        plan=plan,
        constraints=constraints,
        lesions=lesions,
        findings=findings,
        dvhs=dvhs,
        inputs=inputs,
        rtcheck_version="0.1.0",
        created="2025-03-14T09:26:53Z",
    )
    statuses = {c.status for c in result.all_constraints}
    if Status.FAIL in statuses:
        want = Verdict.FAIL
    elif Status.NOT_EVALUATED in statuses or any(f.severity is Severity.ERROR for f in findings):
        want = Verdict.INCOMPLETE
    else:
        want = Verdict.PASS
    assert verdict is want, f"fixture verdict {verdict} inconsistent with rows ({want})"
    return result


P, F, N = Status.PASS, Status.FAIL, Status.NOT_EVALUATED


def fail_result() -> Result:
    """TG-101 5 fx, three lesions; oesophagus and rib fail; two rows not evaluated."""
    plan = "LUNG_OLIGO_5FX"
    lul, c_lul = _lesion(
        "PTV_LUL", 50.0, 24.3, 50.4, 64.0, plan, 5,
        {"CI_RTOG": 1.08, "CI_Paddick": 0.86, "GI": 4.21, "R50%": 4.31, "D2cm[%]": 51.2},
        {"V100%[%]": P, "R50%": P, "D2cm[%]": P},
    )  # fmt: skip
    rll, c_rll = _lesion(
        "PTV_RLL", 50.0, 8.1, 50.2, 61.5, plan, 5,
        {"CI_RTOG": 1.19, "CI_Paddick": 0.79, "GI": 5.62, "R50%": 5.64, "D2cm[%]": 49.0},
        {"V100%[%]": P, "R50%": P, "D2cm[%]": P},
    )  # fmt: skip
    adr, c_adr = _lesion(
        "PTV_Adrenal_L", 40.0, 15.6, 38.6, 47.0, plan, 5,
        {"CI_RTOG": 1.02, "CI_Paddick": 0.71, "GI": 6.05, "R50%": 6.10, "D2cm[%]": 61.0},
        {"V100%[%]": F, "R50%": F, "D2cm[%]": F},
        findings=(
            Finding(
                "lesion.gi_overlap",
                "GI may be biased: the 50% isodose of PTV_Adrenal_L merges with PTV_LUL's.",
                Severity.INFO,
                subject="PTV_Adrenal_L",
            ),
        ),
    )  # fmt: skip
    cord = Curve.anchored("SpinalCord", 28.4, 21.0, 0.8, 16.5, 0.35)
    eso = Curve.anchored("Oesophagus", 31.7, 30.0, 1.5, 21.4, 5.0)
    heart = Curve.anchored("Heart", 612.0, 34.0, 1.0, 18.2, 15.0)
    ves = Curve.anchored("Great Vessels", 188.0, 40.0, 1.0, 29.5, 10.0)
    trach = Curve.anchored("trachea", 24.9, 16.0, 1.0, 10.3, 4.0)
    rib = Curve.anchored("Ribs_L <&>", 96.0, 48.0, 1.5, 38.6, 1.0)
    lungs = Curve.anchored("Lungs-ITV", 3480.0, 62.0, 0.5, 6.0, 1200.0)
    tg = "S1 TG-101 Table III"
    oars = (
        oar(cord, "SpinalCord.D0.35cc", "SpinalCord", "D0.35cc[Gy]", (lim("<", 23),), P,
            source=tg, endpoint="myelitis", priority="1"),
        oar(cord, "SpinalCord.D1.2cc", "SpinalCord", "D1.2cc[Gy]", (lim("<", 14.5),), P,
            source=tg, endpoint="myelitis", priority="1"),
        oar(cord, "SpinalCord.Max", "SpinalCord", "Max[Gy]", (lim("<", 30),), P,
            source=tg, endpoint="myelitis", priority="1"),
        oar(eso, "Esophagus.D5cc", "Esophagus", "D5cc[Gy]", (lim("<", 19.5),), F,
            roi="Oesophagus", match="synonym", source=tg, endpoint="stenosis/fistula"),
        oar(eso, "Esophagus.Max", "Esophagus", "Max[Gy]", (lim("<", 35),), P,
            roi="Oesophagus", match="synonym", source=tg, endpoint="stenosis/fistula"),
        oar(heart, "Heart.D15cc", "Heart", "D15cc[Gy]", (lim("<", 32),), P,
            source=tg, endpoint="pericarditis"),
        oar(heart, "Heart.Max", "Heart", "Max[Gy]", (lim("<", 38),), P,
            source=tg, endpoint="pericarditis"),
        oar(ves, "GreatVes.D10cc", "GreatVes", "D10cc[Gy]", (lim("<", 47),), P,
            roi="Great Vessels", match="normalised", source=tg, endpoint="aneurysm"),
        oar(trach, "Trachea.D4cc", "Trachea", "D4cc[Gy]", (lim("<", 16.5),), P,
            roi="trachea", match="normalised", source=tg, endpoint="stenosis/fistula"),
        oar(rib, "Rib.D1cc", "Rib", "D1cc[Gy]", (lim("<", 35),), F,
            roi="Ribs_L <&>", match="user map", source=tg, endpoint="pain/fracture"),
        oar(None, "BrachialPlex_L.D3cc", "BrachialPlex_L", "D3cc[Gy]", (lim("<", 27),), N,
            match="no ROI found", reason="no ROI matches BrachialPlex_L (tried TG-263 synonyms)",
            source=tg),
        oar(None, "Skin.Max", "Skin", "Max[Gy]", (lim("<", 39.5),), N,
            roi="BODY-5mm", match="derived",
            reason="structure extends 14 mm outside the dose grid (3.2% of its volume)",
            source=tg, note=POINT_MAX_NOTE),
        oar(lungs, "Lungs.CV12.5Gy", "Lungs-ITV", "CV12.5Gy[cc]", (lim(">=", 1500, "cc"),), P,
            roi="Lungs-ITV", match="derived", source="S2 TG-101 (secondary transcription)",
            note="critical volume: lung volume receiving less than 12.5 Gy"),
    )  # fmt: skip
    findings = (
        Finding(
            "structure.unmatched",
            "No ROI matches BrachialPlex_L; its constraint is not evaluated.",
            Severity.WARNING,
            subject="BrachialPlex_L",
        ),
        Finding(
            "dose.partial_coverage",
            "Skin extends 14 mm outside the dose grid (3.2% of its volume); not evaluated.",
            Severity.WARNING,
            source="/data/rtc0042/RTDOSE.dcm",
            subject="Skin",
        ),
        Finding(
            "structure.derived",
            "Lungs-ITV derived as (Lung_L ∪ Lung_R) − ITV_total.",
            Severity.INFO,
            subject="Lungs-ITV",
        ),
        Finding(
            "structure.ignored_contour",
            "ROI 'Couch <Exact&IGRT>' has type SUPPORT and was ignored.",
            Severity.INFO,
            source="/data/rtc0042/RTSTRUCT.dcm",
        ),
    )
    targets = (c_lul, c_rll, c_adr)
    organs = (cord, eso, heart, ves, trach, rib, lungs)
    return _result(
        Verdict.FAIL,
        _tg101(5),
        PlanInfo(
            patient_id="RTC-0042",
            patient_name="O'Neil & Søn^Zoë <QA>",
            plan_labels=(plan,),
            fractions=5,
            fractions_source="RT Plan",
            prescriptions=(
                ("PTV_LUL", 50.0, "RT Plan"),
                ("PTV_RLL", 50.0, "RT Plan"),
                ("PTV_Adrenal_L", 40.0, "RT Plan"),
            ),
            dose_grid="2.5 × 2.5 × 2.5 mm, 160 × 140 × 96 voxels",
        ),
        oars,
        (lul, rll, adr),
        findings,
        tuple(c.dvh("target") for c in targets) + tuple(c.dvh("oar") for c in organs),
        _inputs("rtc0042", ("RTPLAN", "RTDOSE", "RTSTRUCT")),
    )


def pass_result() -> Result:
    """TG-101 3 fx, one lung lesion, every constraint met."""
    plan = "RUL_SBRT_3FX"
    ptv, c_ptv = _lesion(
        "PTV", 54.0, 18.2, 54.6, 68.0, plan, 3,
        {"CI_RTOG": 1.05, "CI_Paddick": 0.88, "GI": 4.02, "R50%": 4.10, "D2cm[%]": 47.5},
        {"V100%[%]": P, "R50%": P, "D2cm[%]": P},
    )  # fmt: skip
    cord = Curve.anchored("SpinalCord", 30.1, 14.0, 1.0, 9.8, 0.35)
    eso = Curve.anchored("Esophagus", 27.0, 15.0, 1.2, 8.9, 5.0)
    heart = Curve.anchored("Heart", 590.0, 16.0, 1.0, 6.4, 15.0)
    rib = Curve.anchored("Rib", 120.0, 31.0, 1.3, 24.1, 1.0)
    tg = TG101_SOURCE
    oars = (
        oar(cord, "SpinalCord.D0.35cc", "SpinalCord", "D0.35cc[Gy]", (lim("<", 18),), P, source=tg),
        oar(cord, "SpinalCord.Max", "SpinalCord", "Max[Gy]", (lim("<", 21.9),), P, source=tg),
        oar(eso, "Esophagus.D5cc", "Esophagus", "D5cc[Gy]", (lim("<", 17.7),), P, source=tg),
        oar(heart, "Heart.D15cc", "Heart", "D15cc[Gy]", (lim("<", 24),), P, source=tg),
        oar(rib, "Rib.D1cc", "Rib", "D1cc[Gy]", (lim("<", 28.8),), P, source=tg),
        oar(rib, "Rib.Max", "Rib", "Max[Gy]", (lim("<", 36.9),), P, source=tg),
    )  # fmt: skip
    return _result(
        Verdict.PASS,
        _tg101(3),
        PlanInfo(
            patient_id="RTC-0007",
            patient_name="Test^Pass",
            plan_labels=(plan,),
            fractions=3,
            fractions_source="RT Plan",
            prescriptions=(("PTV", 54.0, "RT Plan"),),
            dose_grid="2 × 2 × 2 mm, 180 × 160 × 110 voxels",
        ),
        oars,
        (ptv,),
        (),
        (c_ptv.dvh("target"), *(c.dvh("oar") for c in (cord, eso, heart, rib))),
        _inputs("rtc0007", ("RTPLAN", "RTDOSE", "RTSTRUCT", "CT")),
    )


def incomplete_result() -> Result:
    """Nothing fails, but three things could not be evaluated."""
    plan = "OLIGO_5FX"
    ptv1, c1 = _lesion(
        "PTV1", 40.0, 11.0, 40.3, 50.0, plan, 5,
        {"CI_RTOG": 1.10, "CI_Paddick": 0.83, "GI": 4.90, "R50%": 4.95, "D2cm[%]": 49.5},
        {"V100%[%]": P, "R50%": P, "D2cm[%]": P},
    )  # fmt: skip
    ptv2, c2 = _lesion(
        "PTV2", None, 6.3, 33.0, 42.0, plan, 5, {}, {"V100%[%]": N, "R50%": N, "D2cm[%]": N},
        findings=(
            Finding(
                "prescription.unknown",
                "No prescription for PTV2 in the RT Plan and none given with --rx; "
                "its prescription-relative metrics are not evaluated.",
                Severity.ERROR,
                subject="PTV2",
            ),
        ),
        rx_source=None,
    )  # fmt: skip
    cord = Curve.anchored("SpinalCord", 25.0, 21.0, 1.0, 15.2, 0.35)
    heart = Curve.anchored("Heart", 560.0, 26.0, 1.0, 12.0, 15.0)
    tg = TG101_SOURCE
    oars = (
        oar(cord, "SpinalCord.D0.35cc", "SpinalCord", "D0.35cc[Gy]", (lim("<", 23),), P, source=tg),
        oar(cord, "SpinalCord.Max", "SpinalCord", "Max[Gy]", (lim("<", 30),), P, source=tg),
        oar(None, "Esophagus.D5cc", "Esophagus", "D5cc[Gy]", (lim("<", 19.5),), N,
            match="ambiguous",
            reason="ambiguous: ROIs 'Esophagus' and 'esophagus_old' both match Esophagus",
            source=tg),
        oar(heart, "Heart.D15cc", "Heart", "D15cc[Gy]", (lim("<", 32),), P, source=tg),
        oar(None, "GreatVes.D10cc", "GreatVes", "D10cc[Gy]", (lim("<", 47),), N,
            roi="GreatVes", match="exact",
            reason="structure extends outside the dose grid (11% of its volume)", source=tg),
    )  # fmt: skip
    findings = (
        Finding(
            "structure.ambiguous",
            "ROIs 'Esophagus' and 'esophagus_old' both match Esophagus; map one with --map.",
            Severity.ERROR,
            subject="Esophagus",
        ),
        Finding(
            "dose.partial_coverage",
            "GreatVes extends 22 mm beyond the superior edge of the dose grid.",
            Severity.WARNING,
            source="/data/rtc0013/RTDOSE.dcm",
            subject="GreatVes",
        ),
        Finding(
            "plan.fractions_override",
            "Fractions taken from --fractions 5; the RT Plan states 1 (dose per fraction "
            "left unchanged).",
            Severity.WARNING,
            source="/data/rtc0013/RTPLAN.dcm",
        ),
    )
    return _result(
        Verdict.INCOMPLETE,
        _tg101(5),
        PlanInfo(
            patient_id="RTC-0013",
            patient_name="Incomplete^Case",
            plan_labels=(plan,),
            fractions=5,
            fractions_source="--fractions",
            prescriptions=(("PTV1", 40.0, "RT Plan"), ("PTV2", None, "unknown")),
            dose_grid="3 × 3 × 3 mm, 120 × 110 × 80 voxels",
        ),
        oars,
        (ptv1, ptv2),
        findings,
        (c1.dvh("target"), c2.dvh("target"), cord.dvh("oar"), heart.dvh("oar")),
        _inputs("rtc0013", ("RTPLAN", "RTDOSE", "RTSTRUCT")),
    )


def eqd2_result() -> Result:
    """Two plans (1 fx and 5 fx) summed in EQD2; optimal and mandatory levels."""
    basis_cord = "EQD2(a/b=2)"
    basis_3 = "EQD2(a/b=3)"
    protocol = ProtocolInfo(
        id="test-eqd2",
        title="Synthetic two-level EQD2 protocol (test data, not clinical)",
        version="0.0-test",
        citation="Synthetic values for report tests; not for clinical use.",
        levels=("optimal", "mandatory"),
        source_file="tests/data/test-eqd2.yaml",
    )
    cord = Curve.anchored("SpinalCord", 29.0, 40.0, 1.0, 38.0, 0.035)
    eso = Curve.anchored("Esophagus", 30.5, 64.0, 1.2, 62.0, 0.035)
    bp = Curve.anchored("BrachialPlex_R", 22.0, 57.0, 1.0, 55.0, 0.035)
    src = "synthetic test value"
    two = ("optimal", "mandatory")

    def levels(a: float, b: float) -> tuple[Limit, ...]:
        return (lim("<", a, "Gy", two[0]), lim("<", b, "Gy", two[1]))

    oars = (
        oar(cord, "SpinalCord.Max.EQD2", "SpinalCord", "Max[Gy]", levels(40, 45), P,
            dose_basis=basis_cord, source=src),
        oar(eso, "Esophagus.Max.EQD2", "Esophagus", "Max[Gy]", levels(60, 66), P,
            dose_basis=basis_3, source=src),
        oar(bp, "BrachialPlex_R.Max.EQD2", "BrachialPlex_R", "Max[Gy]", levels(50, 54), F,
            dose_basis=basis_3, source=src),
        oar(cord, "SpinalCord.D0.35cc.EQD2", "SpinalCord", "D0.35cc[Gy]", levels(30, 35), P,
            dose_basis=basis_cord, source=src),
    )  # fmt: skip
    brain = LesionResult(
        name="PTV_Brain",
        roi_number=12,
        prescription_gy=20.0,
        prescription_source="RT Plan",
        plan_label="BRAIN_SRS_1FX",
        fractions=1,
        volume_cc=2.4,
        metrics={"D95%[Gy]": 20.3, "V100%[%]": 97.1, "CI_Paddick": 0.81, "GI": 2.9},
    )
    lung = LesionResult(
        name="PTV_Lung",
        roi_number=14,
        prescription_gy=50.0,
        prescription_source="RT Plan",
        plan_label="LUNG_5FX",
        fractions=5,
        volume_cc=21.0,
        metrics={"D95%[Gy]": 50.6, "V100%[%]": 96.3, "CI_Paddick": 0.84, "GI": 4.3},
    )
    return _result(
        Verdict.FAIL,
        protocol,
        PlanInfo(
            patient_id="RTC-0099",
            patient_name="Multi^Plan",
            plan_labels=("BRAIN_SRS_1FX", "LUNG_5FX"),
            fractions=None,
            fractions_source="multiple plans: 1 and 5 fractions",
            prescriptions=(("PTV_Brain", 20.0, "RT Plan"), ("PTV_Lung", 50.0, "RT Plan")),
            dose_summation="voxel-wise EQD2 sum",
            alpha_beta=(("SpinalCord", 2.0), ("BrachialPlex_R", 3.0), ("Esophagus", 3.0)),
            dose_grid="2.5 mm common grid (plans resampled trilinearly)",
        ),
        oars,
        (brain, lung),
        (
            Finding(
                "sum.eqd2",
                "Plans summed voxel-wise after EQD2 conversion with the organ α/β listed.",
                Severity.INFO,
            ),
        ),
        (
            cord.dvh("oar", basis_cord),
            eso.dvh("oar", basis_3),
            bp.dvh("oar", basis_3),
        ),
        _inputs("rtc0099", ("RTPLAN", "RTDOSE", "RTPLAN", "RTDOSE", "RTSTRUCT")),
    )


def _rx(result: Result, c: ConstraintResult) -> float | None:
    for lesion in result.lesions:
        if lesion.name == c.lesion:
            return lesion.prescription_gy
    return None


#: Every scenario by name, for parametrised tests.
SCENARIOS = {
    "fail": fail_result,
    "pass": pass_result,
    "incomplete": incomplete_result,
    "eqd2": eqd2_result,
}


def expected_markers(result: Result) -> int:
    """Number of constraint markers a DVH plot of ``result`` must show (see docs/reports.md).

    One marker per limit of every constraint (whatever its status) whose matched ROI (or,
    without one, structure) has a curve with the same dose basis and whose metric is a
    D-at-volume, V-at-dose or Max rule (V-at-%-of-Rx only when the lesion's Rx is known).
    """
    curves = {(d.structure, d.dose_basis) for d in result.dvhs}
    n = 0
    for c in result.all_constraints:
        structure = c.matched_roi or c.structure
        if (structure, c.dose_basis) not in curves:
            continue
        m = c.metric
        plottable = (
            m == "Max[Gy]"
            or (m.startswith("D") and (m.endswith("cc[Gy]") or m.endswith("%[Gy]")))
            or (m.startswith("V") and m.endswith("Gy[%]"))
            or (m.startswith("V") and m.endswith("%[%]"))
        )
        if m.startswith("V") and m.endswith("%[%]") and _rx(result, c) is None:
            plottable = False
        if plottable:
            n += len(c.limits)
    return n
