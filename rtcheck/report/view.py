"""The report as display strings: one view model that the HTML and PDF writers both render.

Building the text once keeps the two human-readable formats identical in content. All values
are strings (already formatted); escaping is the job of each writer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtcheck.report import common as cm
from rtcheck.result import ConstraintResult, LesionResult, Result, Status


@dataclass(frozen=True)
class StatusView:
    """Symbol, word and CSS class of a status."""

    symbol: str
    word: str
    css: str


def status_view(status: Status) -> StatusView:
    """The display form of a constraint status."""
    symbol, word = cm.STATUS_LABELS[status]
    return StatusView(symbol, word, cm.status_class(status))


@dataclass(frozen=True)
class ConstraintRow:
    """One constraint, formatted."""

    id: str
    lesion: str
    structure: str
    roi: str
    match: str
    metric: str
    limits: tuple[str, ...]
    limits_text: str
    value: str
    margin: str
    status: StatusView
    level: str
    note: str
    source: str


@dataclass(frozen=True)
class ConstraintTable:
    """Rows plus the level columns they use."""

    levels: tuple[str, ...]
    rows: tuple[ConstraintRow, ...]


def _row(c: ConstraintResult, levels: list[str], tag: str | None = None) -> ConstraintRow:
    limits = []
    for level in levels:
        lim = cm.limit_for(c, level)
        limits.append(cm.fmt_limit(lim, c) if lim is not None else "")
    return ConstraintRow(
        id=c.id,
        lesion=c.lesion or "",
        structure=c.structure,
        roi=c.matched_roi or "—",
        match=c.match or "",
        metric=cm.metric_text(c) + (f" ({tag})" if tag else ""),
        limits=tuple(limits),
        limits_text=cm.fmt_limits(c.limits, c),
        value=cm.fmt_value(c.value, c.unit, c.limits),
        margin=cm.fmt_margin(c),
        status=status_view(c.status),
        level=c.level or ("—" if c.status is not Status.PASS else ""),
        note=cm.note_text(c),
        source=c.source or "",
    )


def constraint_table(result: Result, constraints: tuple[ConstraintResult, ...]) -> ConstraintTable:
    """Format ``constraints`` with one limit column per level they use."""
    levels = cm.levels_used(result, constraints)
    # rows repeated once per fraction table (multi-plan) are told apart by their table
    tags = cm.table_tags(constraints) or [None] * len(constraints)
    rows = tuple(_row(c, levels, tag) for c, tag in zip(constraints, tags, strict=True))
    return ConstraintTable(tuple(levels), rows)


@dataclass(frozen=True)
class LesionMetricRow:
    """A lesion metric and, when the protocol has a rule for it, the rule's outcome."""

    label: str
    key: str
    value: str
    limits: tuple[str, ...]
    margin: str
    status: StatusView | None
    level: str
    note: str
    constraint_id: str


@dataclass(frozen=True)
class LesionView:
    """One lesion section."""

    name: str
    prescription: str
    prescription_source: str
    plan: str
    fractions: str
    volume: str
    rows: tuple[LesionMetricRow, ...]
    findings: tuple[cm.FindingRow, ...]
    plan_maximum: str = ""
    max_in_this_lesion: str = ""


def _lesion_view(lesion: LesionResult, several_plans: bool = False) -> LesionView:
    pm = lesion.plan_maximum
    rows = []
    for r in cm.lesion_rows(lesion):
        c = r.constraint
        limits = c.limits if c is not None else ()
        rows.append(
            LesionMetricRow(
                label=r.label,
                key=r.key,
                value=cm.fmt_value(r.value, r.unit, limits),
                limits=tuple(f"{lim.level} {cm.fmt_limit(lim, c)}" for lim in limits),
                margin=cm.fmt_margin(c) if c is not None else "",
                status=status_view(c.status) if c is not None else None,
                level=(c.level or "—") if c is not None else "",
                note=cm.note_text(c) if c is not None else "",
                constraint_id=c.id if c is not None else "",
            )
        )
    return LesionView(
        name=lesion.name,
        prescription=cm.fmt_gy(lesion.prescription_gy),
        prescription_source=lesion.prescription_source or "unknown",
        plan=lesion.plan_label or "—",
        fractions="—" if lesion.fractions is None else str(lesion.fractions),
        volume=cm.fmt_value(lesion.volume_cc, "cc"),
        rows=tuple(rows),
        findings=tuple(cm.FindingRow(f, lesion.name) for f in lesion.findings),
        plan_maximum=cm.plan_maximum_text(pm, several_plans) if pm is not None else "",
        max_in_this_lesion=_in_this_lesion(lesion),
    )


def _in_this_lesion(lesion: LesionResult) -> str:
    """``true``/``false``/``unknown`` (HTML data attribute), ``""`` without a plan maximum."""
    pm = lesion.plan_maximum
    if pm is None:
        return ""
    if pm.inside is None:
        return "unknown"
    return "true" if lesion.name in pm.inside else "false"


@dataclass(frozen=True)
class ReportView:
    """Everything the HTML and PDF reports show."""

    result: Result
    patient_id: str
    patient_name: str
    plans: str
    fractions: str
    fractions_source: str
    prescriptions: tuple[tuple[str, str, str], ...]
    protocol: str
    protocol_id: str
    protocol_title: str
    citation: str
    created: str
    version: str
    summation: str
    alpha_beta: str
    dose_grid: str
    single_plan: bool
    verdict: StatusView
    verdict_sentence: str
    counts: dict[str, int]
    counts_text: str
    attention: tuple[ConstraintRow, ...]
    not_contoured: tuple[str, ...]
    not_contoured_count: int
    oars: ConstraintTable
    oars_not_contoured: ConstraintTable
    lesions: tuple[LesionView, ...]
    findings: tuple[cm.FindingRow, ...]
    matching: tuple[cm.MatchRow, ...]
    not_evaluated: tuple[ConstraintRow, ...]

    @property
    def title(self) -> str:
        """Document title."""
        return f"rtcheck {self.verdict.word}: {self.patient_id} {self.plans}"

    @property
    def print_header(self) -> str:
        """Running header of every printed page (as the PDF's): verdict, patient, plan."""
        return (
            f"rtcheck {self.verdict.word} · {self.patient_name} · ID {self.patient_id} · "
            f"plan {self.plans} · {self.protocol_id}"
        )


def build_view(result: Result) -> ReportView:
    """Format ``result`` for the human-readable reports."""
    p = result.plan
    symbol, word = cm.VERDICT_LABELS[result.verdict]
    everything = constraint_table(result, result.all_constraints)
    absent = [c for c in result.all_constraints if cm.is_not_contoured(c)]
    absent_ids = {(c.id, c.lesion or "") for c in absent}
    attention = tuple(
        r
        for r in everything.rows
        if r.status.css == "fail" or (r.status.css == "ne" and (r.id, r.lesion) not in absent_ids)
    )
    single = p.dose_summation == "single plan" and len(p.plan_labels) <= 1
    return ReportView(
        result=result,
        patient_id=p.patient_id or "—",
        patient_name=cm.person_name(p.patient_name),
        plans=", ".join(p.plan_labels) or "—",
        fractions=cm.fractions_text(p),
        fractions_source=p.fractions_source,
        prescriptions=tuple((t, cm.fmt_gy(d), s) for t, d, s in p.prescriptions),
        protocol=f"{result.protocol.id}, version: {result.protocol.version}",
        protocol_id=result.protocol.id,
        protocol_title=result.protocol.title,
        citation=result.protocol.citation,
        created=result.created or "—",
        version=result.rtcheck_version or "unknown",
        summation=p.dose_summation,
        alpha_beta=", ".join(f"{k} {cm.exact_number(v)} Gy" for k, v in p.alpha_beta),
        dose_grid=p.dose_grid or "—",
        single_plan=single,
        verdict=StatusView(symbol, word, cm.status_class(result.verdict)),
        verdict_sentence=cm.verdict_sentence(result),
        counts=result.counts,
        counts_text=cm.counts_text(result),
        attention=tuple(sorted(attention, key=lambda r: r.status.css != "fail")),
        not_contoured=tuple(dict.fromkeys(c.structure for c in absent)),
        not_contoured_count=len(absent),
        oars=constraint_table(
            result, tuple(c for c in result.constraints if not cm.is_not_contoured(c))
        ),
        oars_not_contoured=constraint_table(
            result, tuple(c for c in result.constraints if cm.is_not_contoured(c))
        ),
        lesions=tuple(_lesion_view(lesion, cm.several_plans(result)) for lesion in result.lesions),
        findings=tuple(cm.all_findings(result)),
        matching=tuple(cm.matching_decisions(result)),
        not_evaluated=tuple(r for r in everything.rows if r.status.css == "ne"),
    )
