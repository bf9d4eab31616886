"""Fonts, colours, paragraph styles and the page frame (header, footer, page x of y) of the PDF.

Fonts are the DejaVu TrueType files that matplotlib ships (a declared dependency), so the PDF
has ✔ ✖ α β and every accented patient name on any machine, and the text stays extractable.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

PAGE = A4
MARGIN_X = 14 * mm
MARGIN_TOP = 24 * mm
MARGIN_BOTTOM = 18 * mm
WIDTH = PAGE[0] - 2 * MARGIN_X

SANS, BOLD, MONO, ITALIC = "RtSans", "RtSans-Bold", "RtMono", "RtSans-Oblique"

INK = colors.HexColor("#1d2430")
MUTED = colors.HexColor("#5b6472")
RULE = colors.HexColor("#d5dae1")
HEAD = colors.HexColor("#eef1f5")
ACCENT = colors.HexColor("#1f4e8c")
PASS_FG, PASS_BG = colors.HexColor("#17692e"), colors.HexColor("#e4f3e8")
FAIL_FG, FAIL_BG = colors.HexColor("#a4161a"), colors.HexColor("#f6cfcf")
NE_FG, NE_BG = colors.HexColor("#3d434c"), colors.HexColor("#e6e8ec")
WARN_FG, WARN_BG = colors.HexColor("#7a4b00"), colors.HexColor("#fff1d6")

#: status/verdict css class -> (foreground, background)
STATUS_COLOURS = {
    "pass": (PASS_FG, PASS_BG),
    "fail": (FAIL_FG, FAIL_BG),
    "ne": (NE_FG, NE_BG),
    "incomplete": (WARN_FG, WARN_BG),
}


@cache
def register_fonts() -> None:
    """Register the DejaVu fonts shipped with matplotlib under rtcheck's names."""
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in (
        (SANS, "DejaVuSans.ttf"),
        (BOLD, "DejaVuSans-Bold.ttf"),
        (ITALIC, "DejaVuSans-Oblique.ttf"),
        (MONO, "DejaVuSansMono.ttf"),
    ):
        pdfmetrics.registerFont(TTFont(name, str(ttf / file)))
    pdfmetrics.registerFontFamily(SANS, normal=SANS, bold=BOLD, italic=ITALIC, boldItalic=BOLD)


@cache
def styles() -> dict[str, ParagraphStyle]:
    """Paragraph styles by name."""
    register_fonts()
    base = ParagraphStyle("body", fontName=SANS, fontSize=8.5, leading=11, textColor=INK)
    s = {
        "body": base,
        "small": ParagraphStyle("small", base, fontSize=7.5, leading=9.5),
        "muted": ParagraphStyle("muted", base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "cell": ParagraphStyle("cell", base, fontSize=7.5, leading=9.2),
        "cellb": ParagraphStyle("cellb", base, fontName=BOLD, fontSize=7.5, leading=9.2),
        "mono": ParagraphStyle("mono", base, fontName=MONO, fontSize=7, leading=9.2),
        "monor": ParagraphStyle("monor", base, fontName=MONO, fontSize=7, leading=9.2,
                                alignment=TA_RIGHT),
        "head": ParagraphStyle("head", base, fontName=BOLD, fontSize=7, leading=8.5,
                               textColor=colors.HexColor("#39414d")),
        "h1": ParagraphStyle("h1", base, fontName=BOLD, fontSize=16, leading=20, spaceAfter=4),
        "hash": ParagraphStyle("hash", base, fontName=MONO, fontSize=6.3, leading=9.2),
        "h2": ParagraphStyle("h2", base, fontName=BOLD, fontSize=11.5, leading=14,
                             textColor=ACCENT, spaceBefore=10, spaceAfter=4, keepWithNext=1),
        "h3": ParagraphStyle("h3", base, fontName=BOLD, fontSize=9.5, leading=12,
                             spaceBefore=6, spaceAfter=3, keepWithNext=1),
        "verdict": ParagraphStyle("verdict", base, fontName=BOLD, fontSize=20, leading=24),
    }  # fmt: skip
    return s


@cache
def _covered() -> frozenset[int]:
    """Code points every PDF font has a glyph for."""
    register_fonts()
    maps = [set(pdfmetrics.getFont(n).face.charToGlyph) for n in (SANS, BOLD, MONO, ITALIC)]
    return frozenset(set.intersection(*maps))


def glyph_safe(text: object) -> str:
    """``text`` with every character the fonts cannot draw written as ``[U+98DF]``.

    DejaVu has no CJK glyphs: without this, ``PTV 食道`` and ``PTV 肝臓`` would both print as
    ``PTV`` and two empty boxes, indistinguishable on the chart copy. The code point keeps
    names apart and traceable to the JSON report, which has them unchanged.
    """
    s = "" if text is None else str(text)
    covered = _covered()
    return "".join(ch if ord(ch) in covered or ch.isspace() else f"[U+{ord(ch):04X}]" for ch in s)


def esc(text: object) -> str:
    """Escape a user string for reportlab's paragraph markup (see :func:`glyph_safe`)."""
    return escape(glyph_safe(text))


class NumberedCanvas(Canvas):
    """Canvas that knows the page count when drawing the frame, for "page x of y"."""

    def __init__(self, *args: Any, frame_info: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frame_info = frame_info or {}
        self._saved: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's API name
        self._saved.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved)
        for state in self._saved:
            self.__dict__.update(state)
            draw_frame(self, self._pageNumber, total, self.frame_info)
            super().showPage()
        super().save()


def draw_frame(canvas: Canvas, page: int, total: int, info: dict[str, Any]) -> None:
    """Header (patient, plan, verdict) and footer (page x of y) on every page."""
    register_fonts()
    w, h = PAGE
    top = h - 12 * mm
    canvas.saveState()
    canvas.setFillColor(INK)
    canvas.setFont(BOLD, 8.5)
    canvas.drawString(MARGIN_X, top, info.get("patient", ""))
    canvas.setFont(SANS, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawString(MARGIN_X, top - 10, info.get("plan", ""))
    fg, bg = STATUS_COLOURS[info.get("verdict_css", "ne")]
    label = info.get("verdict", "")
    box_w = pdfmetrics.stringWidth(label, BOLD, 10) + 14
    canvas.setFillColor(bg)
    canvas.setStrokeColor(fg)
    canvas.setLineWidth(1.2)
    canvas.roundRect(w - MARGIN_X - box_w, top - 12, box_w, 20, 3, stroke=1, fill=1)
    canvas.setFillColor(fg)
    canvas.setFont(BOLD, 10)
    canvas.drawCentredString(w - MARGIN_X - box_w / 2, top - 5, label)
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.6)
    canvas.line(MARGIN_X, top - 16, w - MARGIN_X, top - 16)
    canvas.line(MARGIN_X, 12 * mm, w - MARGIN_X, 12 * mm)
    canvas.setFont(SANS, 7)
    canvas.setFillColor(MUTED)
    canvas.drawString(MARGIN_X, 8 * mm, info.get("footer", ""))
    canvas.setFont(BOLD, 7.5)
    canvas.setFillColor(INK)
    canvas.drawRightString(w - MARGIN_X, 8 * mm, f"Page {page} of {total}")
    canvas.restoreState()
