"""Paginated PDF report (reportlab platypus) with the same content as the HTML report.

Every page carries the patient, plan and verdict in its header and "Page x of y" in its
footer; long tables repeat their header row. Status cells carry a symbol and a word, and
failed rows are bold with a thick bar, not-evaluated ones a dashed box, so the printout reads
in greyscale. The DVH plot is the same matplotlib figure as in the HTML, as a 170 dpi PNG.
"""

from __future__ import annotations

import functools
import io
from typing import Any, BinaryIO

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    LayoutError,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from rtcheck.report.common import SEVERITY_LABELS
from rtcheck.report.pdf_layout import (
    FAIL_FG,
    HEAD,
    INK,
    MARGIN_BOTTOM,
    MARGIN_TOP,
    MARGIN_X,
    MONO,
    MUTED,
    NE_FG,
    PAGE,
    RULE,
    STATUS_COLOURS,
    WIDTH,
    NumberedCanvas,
    esc,
    glyph_safe,
    styles,
)
from rtcheck.report.plot import dvh_png
from rtcheck.report.view import ConstraintTable, LesionView, ReportView, StatusView, build_view
from rtcheck.result import RESULT_SCHEMA_VERSION, Result

__all__ = ["render_pdf", "write_pdf"]


def _p(text: object, style: str = "cell") -> Paragraph:
    return Paragraph(esc(text), styles()[style])


def _status(s: StatusView) -> Paragraph:
    fg = STATUS_COLOURS[s.css][0]
    return Paragraph(
        f'<font color="{fg.hexval()}"><b>{esc(s.symbol)} {esc(s.word)}</b></font>',
        styles()["cell"],
    )


def _base_style(n_rows: int) -> list[tuple[Any, ...]]:
    style: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), HEAD),
        ("LINEBELOW", (0, 0), (-1, 0), 1, colors.HexColor("#aeb6c2")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if n_rows > 1:
        style.append(("LINEBELOW", (0, 1), (-1, -1), 0.4, RULE))
    return style


def _table(
    rows: list[list[Any]], widths: list[float], extra: list[tuple[Any, ...]] | None = None
) -> Table:
    header = [Paragraph(esc(h).upper(), styles()["head"]) if isinstance(h, str) else h
              for h in rows[0]]  # fmt: skip
    t = Table([header, *rows[1:]], colWidths=widths, repeatRows=1, hAlign="LEFT")
    t.setStyle(TableStyle(_base_style(len(rows)) + (extra or [])))
    return t


def _status_style(col: int, row: int, css: str) -> list[tuple[Any, ...]]:
    bg = STATUS_COLOURS[css][1]
    out: list[tuple[Any, ...]] = [("BACKGROUND", (col, row), (col, row), bg)]
    if css == "fail":
        out += [
            ("LINEBEFORE", (0, row), (0, row), 3.5, FAIL_FG),
            ("BOX", (col, row), (col, row), 1.2, FAIL_FG),
        ]
    elif css == "ne":
        out += [
            ("LINEBEFORE", (0, row), (0, row), 3.5, NE_FG),
            ("BOX", (col, row), (col, row), 0.8, NE_FG, None, (2, 2)),
        ]
    return out


def _constraint_table(t: ConstraintTable) -> Table:
    s = styles()
    n_lv = len(t.levels)
    fixed = [29 * mm, 21 * mm, *([18 * mm] * n_lv), 17 * mm, 16 * mm, 22 * mm, 18 * mm]
    widths = [*fixed, max(WIDTH - sum(fixed), 24 * mm)]
    limit_heads = [
        Paragraph(f'LIMIT<br/><font size="6.5" color="{MUTED.hexval()}">{esc(lv)}</font>',
                  s["head"]) for lv in t.levels
    ]  # fmt: skip
    head: list[Any] = ["Structure", "Metric", *limit_heads,
                       "Value", "Margin", "Status", "Level met", "Note / source"]  # fmt: skip
    rows: list[list[Any]] = [head]
    extra: list[tuple[Any, ...]] = []
    for i, r in enumerate(t.rows, start=1):
        bold = r.status.css == "fail"
        who = f"<b>{esc(r.structure)}</b>"
        if r.roi != r.structure or r.match not in ("", "exact"):
            who += f'<br/><font color="{MUTED.hexval()}">ROI {esc(r.roi)}'
            who += f" ({esc(r.match)})</font>" if r.match else "</font>"
        if r.lesion and r.lesion != r.structure:
            who = f"{esc(r.lesion)}: " + who
        note = " — ".join(x for x in (esc(r.note), f"<i>{esc(r.source)}</i>" if r.source else "")
                          if x)  # fmt: skip
        rows.append([
            Paragraph(who, s["cell"]),
            Paragraph(esc(r.metric).replace(" [", "<br/>["), s["mono"]),
            *[_p(lim, "monor") for lim in r.limits],
            Paragraph(f"<b>{esc(r.value)}</b>", s["monor"]),
            _p(r.margin, "monor"),
            _status(r.status),
            _p(r.level, "cellb" if bold else "cell"),
            Paragraph(note, s["small"]),
        ])  # fmt: skip
        extra += _status_style(len(head) - 3, i, r.status.css)
    return _table(rows, widths, extra)


def _meta(v: ReportView) -> Table:
    s = styles()
    pairs = [
        ("Patient", f"{v.patient_name} (ID {v.patient_id})"),
        ("Plan", v.plans),
        ("Fractions", f"{v.fractions} (from {v.fractions_source})"),
        ("Protocol", f"{v.protocol} — {v.protocol_title}"),
        ("Citation", v.citation),
        ("Dose", v.summation + (f"; α/β: {v.alpha_beta}" if v.alpha_beta else "")),
        ("Dose grid", v.dose_grid),
        ("Checked", f"{v.created} with rtcheck {v.version} "
                    f"(result schema {RESULT_SCHEMA_VERSION})"),
    ]  # fmt: skip
    rows = [[Paragraph(f"<b>{esc(k)}</b>", s["small"]), _p(val, "small")] for k, val in pairs]
    t = Table(rows, colWidths=[24 * mm, WIDTH - 24 * mm], hAlign="LEFT")
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                           ("TOPPADDING", (0, 0), (-1, -1), 1),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                           ("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    return t


def _verdict(v: ReportView) -> Table:
    s = styles()
    fg, bg = STATUS_COLOURS[v.verdict.css]
    word = Paragraph(
        f'<font color="{fg.hexval()}">{esc(v.verdict.symbol)} {esc(v.verdict.word)}</font>',
        s["verdict"],
    )
    body = Paragraph(
        f"{esc(v.verdict_sentence)}<br/><b>{esc(v.counts_text)}</b> · "
        f"{len(v.findings)} finding{'s' if len(v.findings) != 1 else ''}",
        s["body"],
    )
    t = Table([[word, body]], colWidths=[66 * mm, WIDTH - 66 * mm])
    dash = (4, 2) if v.verdict.css == "incomplete" else None
    t.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), bg),
        ("BOX", (0, 0), (-1, -1), 3 if v.verdict.css == "fail" else 1.5, fg, None, dash),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 7),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
    ]))  # fmt: skip
    return t


def _attention(v: ReportView) -> list[Flowable]:
    if not v.attention and not v.not_contoured:
        return []
    s = styles()
    out: list[Flowable] = [Paragraph("Needs attention", s["h2"])]
    for r in v.attention:
        where = f"{esc(r.lesion)}: " if r.lesion and r.lesion != r.structure else ""
        if r.status.css == "fail":
            detail = f"= {esc(r.value)} (limit {esc(r.limits_text)}; margin {esc(r.margin)})"
        else:
            detail = f"— {esc(r.note or 'no reason recorded')}"
        fg = STATUS_COLOURS[r.status.css][0].hexval()
        out.append(Paragraph(
            f'<font color="{fg}"><b>{esc(r.status.symbol)} {esc(r.status.word)}</b></font> '
            f"{where}<b>{esc(r.structure)}</b> {esc(r.metric)} {detail}", s["body"]))  # fmt: skip
    if v.not_contoured:
        n, k = len(v.not_contoured), v.not_contoured_count
        names = esc(", ".join(v.not_contoured))
        text = (
            f"<b>? NOT CONTOURED</b> {n} protocol structure{'s' if n != 1 else ''} absent from "
            f"the plan, {k} constraint{'s' if k != 1 else ''} not evaluated (none required by "
            f"the protocol or --require): {names}"
        )
        out.append(Paragraph(text, s["body"]))
    return out


def _lesion(lv: LesionView) -> list[Flowable]:
    s = styles()
    rows: list[list[Any]] = [["Metric", "Value", "Limits", "Margin", "Status", "Note"]]
    extra: list[tuple[Any, ...]] = []
    for i, r in enumerate(lv.rows, start=1):
        status: Any = ""
        if r.status is not None:
            status = _status(r.status)
            if r.level not in ("", "—"):
                status = Paragraph(
                    f'<font color="{STATUS_COLOURS[r.status.css][0].hexval()}"><b>'
                    f"{esc(r.status.symbol)} {esc(r.status.word)}</b></font><br/>"
                    f"met: {esc(r.level)}", s["cell"])  # fmt: skip
            extra += _status_style(4, i, r.status.css)
        label = esc(r.label)
        if r.status is not None and r.key != r.label:
            label += (
                f'<br/><font name="{MONO}" size="6.3" color="{MUTED.hexval()}">{esc(r.key)}</font>'
            )
        rows.append([Paragraph(label, s["cell"]), _p(r.value, "monor"),
                     Paragraph("<br/>".join(esc(x) for x in r.limits), s["mono"]),
                     _p(r.margin, "monor"), status, _p(r.note, "small")])  # fmt: skip
    widths = [30 * mm, 22 * mm, 40 * mm, 18 * mm, 26 * mm]
    widths.append(WIDTH - sum(widths))
    head = Paragraph(
        f"<b>{esc(lv.name)}</b> — Rx {esc(lv.prescription)} ({esc(lv.prescription_source)}) · "
        f"{esc(lv.fractions)} fx · plan {esc(lv.plan)} · volume {esc(lv.volume)}",
        s["h3"],
    )
    out: list[Flowable] = [head, _table(rows, widths, extra)]
    if lv.plan_maximum:
        out.append(Paragraph(esc(lv.plan_maximum), s["small"]))
    for fr in lv.findings:
        sym, word = SEVERITY_LABELS[fr.finding.severity]
        out.append(Paragraph(f"<b>{esc(sym)} {esc(word)}</b> {esc(fr.finding.message)}",
                             s["small"]))  # fmt: skip
    return [KeepTogether(out[:2]), *out[2:]]


def _findings(v: ReportView) -> list[Flowable]:
    s = styles()
    out: list[Flowable] = [Paragraph("Findings and decisions", s["h2"]),
                           Paragraph("Not evaluated", s["h3"])]  # fmt: skip
    if v.not_evaluated:
        rows: list[list[Any]] = [["Lesion", "Structure", "Metric", "Why"]]
        rows += [
            [
                _p(r.lesion or "—"),
                _p(r.structure),
                _p(r.metric, "mono"),
                _p(r.note or "no reason recorded", "small"),
            ]
            for r in v.not_evaluated
        ]
        out.append(_table(rows, [25 * mm, 32 * mm, 30 * mm, WIDTH - 87 * mm]))
    else:
        out.append(_p("Every constraint was evaluated.", "body"))
    out.append(Paragraph("Findings", s["h3"]))
    if v.findings:
        rows = [["Severity", "About", "Finding", "Code / file"]]
        for fr in v.findings:
            f = fr.finding
            sym, word = SEVERITY_LABELS[f.severity]
            rows.append([Paragraph(f"<b>{esc(sym)} {esc(word)}</b>", s["cell"]),
                         _p(f.subject or fr.where), _p(f.message, "small"),
                         Paragraph(esc(f.code) + (f"<br/>{esc(f.source)}" if f.source else ""),
                                   s["mono"])])  # fmt: skip
        out.append(_table(rows, [20 * mm, 28 * mm, WIDTH - 98 * mm, 50 * mm]))
    else:
        out.append(_p("No findings.", "body"))
    out.append(Paragraph("Structure matching", s["h3"]))
    rows = [["Protocol structure", "Plan ROI", "How matched", "Lesion"]]
    rows += [[_p(m.structure), _p(m.matched_roi or "— none —", "mono"), _p(m.match or "—"),
              _p(m.lesion or "")] for m in v.matching]  # fmt: skip
    out.append(_table(rows, [45 * mm, 50 * mm, 45 * mm, WIDTH - 140 * mm]))
    return out


def _inputs(v: ReportView) -> list[Flowable]:
    s = styles()
    rows: list[list[Any]] = [["Modality", "File", "SHA-256"]]
    rows += [[_p(f.modality), _p(f.path, "mono"), _p(f.sha256 or "not computed", "hash")]
             for f in v.result.inputs]  # fmt: skip
    out: list[Flowable] = [Paragraph("Input files", s["h2"])]
    if len(rows) > 1:
        out.append(_table(rows, [18 * mm, WIDTH - 110 * mm, 92 * mm]))
    else:
        out.append(_p("No input files recorded.", "body"))
    if v.result.protocol.source_file:
        digest = v.result.protocol.source_sha256
        sha = f" (SHA-256 {digest})" if digest else ""
        out.append(_p(f"Protocol file: {v.result.protocol.source_file}{sha}", "muted"))
    return out


def _signoff() -> Flowable:
    s = styles()
    labels = [Paragraph(x, s["muted"]) for x in ("Reviewed by", "Signature", "Date")]
    gap = 8 * mm
    widths = [70 * mm, gap, 65 * mm, gap, WIDTH - 135 * mm - 2 * gap]
    t = Table([[""] * 5, [labels[0], "", labels[1], "", labels[2]]], colWidths=widths,
              rowHeights=[12 * mm, None])  # fmt: skip
    t.setStyle(TableStyle([("LINEBELOW", (c, 0), (c, 0), 0.8, INK) for c in (0, 2, 4)]
                          + [("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    return KeepTogether([Paragraph("Review", s["h2"]), t])


def _dvh(result: Result) -> list[Flowable]:
    s = styles()
    out: list[Flowable] = [CondPageBreak(95 * mm), Paragraph("Dose-volume histograms", s["h2"])]
    png = dvh_png(result)
    if png is None:
        return [*out, _p("No DVH curves were recorded in this result.", "body")]
    reader = ImageReader(io.BytesIO(png))
    w_px, h_px = reader.getSize()
    out.append(Image(io.BytesIO(png), width=WIDTH, height=WIDTH * h_px / w_px))
    out.append(
        _p(
            "Targets solid, organs at risk dashed. Markers sit at each constraint's limit "
            "(e.g. D0.35cc < 23 Gy at 23 Gy and 0.35 cc as % of the structure): filled circle = "
            "met, cross = exceeded, open square = not evaluated; marker edge = curve colour.",
            "muted",
        )
    )
    return out


def _story(v: ReportView) -> list[Flowable]:
    s = styles()
    story: list[Flowable] = [
        Paragraph("rtcheck plan constraint check", s["muted"]),
        Paragraph(esc(v.patient_name) + f' <font color="{MUTED.hexval()}" size="11">ID '
                  f"{esc(v.patient_id)}</font>", s["h1"]),
        _meta(v), Spacer(1, 4 * mm), _verdict(v), *_attention(v),
        Paragraph("Prescriptions", s["h2"]),
    ]  # fmt: skip
    rx_rows: list[list[Any]] = [["Target", "Prescription", "Source"]]
    rx_rows += [[_p(t), _p(d, "monor"), _p(src)] for t, d, src in v.prescriptions]
    if len(rx_rows) == 1:
        rx_rows.append([_p("No prescription recorded."), "", ""])
    story.append(_table(rx_rows, [60 * mm, 30 * mm, 50 * mm]))
    if v.lesions:
        story.append(Paragraph("Lesions", s["h2"]))
        for lv in v.lesions:
            story += _lesion(lv)
    story.append(Paragraph("Organs at risk", s["h2"]))
    if v.oars.rows:
        story.append(_p("Margin is the distance to the most lenient limit, positive on the "
                        "passing side.", "muted"))  # fmt: skip
        story.append(_constraint_table(v.oars))
    elif not v.oars_not_contoured.rows:
        story.append(_p("The protocol has no organ-at-risk constraints.", "body"))
    if v.oars_not_contoured.rows:
        story.append(Paragraph("Organs not contoured", s["h3"]))
        story.append(_p("Constraints on organs this plan does not contain: not evaluated, and "
                        "not required by the protocol or --require.", "muted"))  # fmt: skip
        story.append(_constraint_table(v.oars_not_contoured))
    story += _dvh(v.result)
    story += _findings(v)
    story += _inputs(v)
    story.append(_signoff())
    return story


def render_pdf(result: Result) -> bytes:
    """The PDF document for ``result``."""
    v = build_view(result)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=PAGE, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM, title=v.title, author=f"rtcheck {v.version}",
        subject=f"Plan check {v.verdict.word}", creator="rtcheck", invariant=True,
    )  # fmt: skip
    info = {
        "patient": glyph_safe(f"{v.patient_name}  ·  ID {v.patient_id}"),
        "plan": glyph_safe(
            f"Plan {v.plans}  ·  {v.protocol_id}  ·  "
            + (f"{v.fractions} fx" if v.result.plan.fractions is not None else v.fractions_source)
        ),
        "verdict": f"{v.verdict.symbol} {v.verdict.word}",
        "verdict_css": v.verdict.css,
        "footer": f"rtcheck {v.version} · {v.created} · a second check, not a replacement "
        "for clinical judgement",
    }
    canvas = functools.partial(NumberedCanvas, frame_info=info)
    try:
        doc.build(_story(v), canvasmaker=canvas)
    except LayoutError:
        # A cell taller than a page (a reason or finding of thousands of characters) cannot
        # be kept whole: only then may rows split across pages, rather than no PDF at all.
        buf.seek(0)
        buf.truncate()
        doc.build(_split_rows(_story(v)), canvasmaker=canvas)
    return buf.getvalue()


def _split_rows(story: list[Flowable]) -> list[Flowable]:
    """``story`` with every table allowed to split inside a row (see :func:`render_pdf`)."""
    for flowable in story:
        if isinstance(flowable, Table):
            flowable.splitInRow = 1
        elif isinstance(flowable, KeepTogether):
            _split_rows(flowable._content)
    return story


def write_pdf(result: Result, out: BinaryIO) -> None:
    """Registry writer."""
    out.write(render_pdf(result))
