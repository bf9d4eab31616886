"""Cumulative DVH plot for the HTML (inline SVG) and PDF (PNG) reports.

matplotlib with the Agg backend, never pyplot: no global state, safe in worker processes.
Every curve is drawn as its own artist with the SVG id ``dvh-curve-<n>`` and every
constraint marker as ``dvh-marker-<n>``, so tests (and users) can count what was drawn.

Constraint markers put a protocol limit on the curve's axes, e.g. ``D0.35cc[Gy] < 23`` on a
28.4 cc cord becomes a marker at (23 Gy, 1.23 %). A curve passing above-right of a ``<``
marker exceeds that limit. The marker's fill and shape give the constraint's status, its edge
the colour of its curve. Only the limit is placed; no dose metric is computed here.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rtcheck.report.common import fmt_limit
from rtcheck.result import ConstraintResult, DvhCurve, Limit, Result, Status

__all__ = ["Marker", "constraint_markers", "dvh_figure", "dvh_png", "dvh_svg"]

_NUM = r"(\d+(?:\.\d+)?)"
_D_CC = re.compile(rf"^D{_NUM}cc\[Gy\]$")
_D_PCT = re.compile(rf"^D{_NUM}%\[Gy\]$")
_V_GY_PCT = re.compile(rf"^V{_NUM}Gy\[%\]$")
_V_GY_CC = re.compile(rf"^V{_NUM}Gy\[cc\]$")
_V_RX_PCT = re.compile(rf"^V{_NUM}%\[%\]$")

#: Okabe-Ito palette (colour-blind safe) followed by darker tab10 tones.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
    "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd", "#2ca02c", "#d62728",
)  # fmt: skip
STATUS_STYLE: dict[Status, dict[str, object]] = {
    Status.PASS: {"marker": "o", "color": "#1a7f37", "label": "limit met (pass)"},
    Status.FAIL: {"marker": "X", "color": "#c62828", "label": "limit exceeded (fail)"},
    Status.NOT_EVALUATED: {"marker": "s", "color": "#9e9e9e", "label": "not evaluated"},
}


@dataclass(frozen=True)
class Marker:
    """A constraint limit placed on the DVH axes."""

    dose_gy: float
    volume_pct: float
    status: Status
    curve: str
    label: str


def _curve_for(c: ConstraintResult, curves: dict[tuple[str, str], DvhCurve]) -> DvhCurve | None:
    for name in (c.matched_roi, c.structure):
        if name is not None and (name, c.dose_basis) in curves:
            return curves[(name, c.dose_basis)]
    return None


def _rx_of(result: Result, c: ConstraintResult) -> float | None:
    for lesion in result.lesions:
        if lesion.name == c.lesion:
            return lesion.prescription_gy
    return None


def _place(
    metric: str, lim: Limit, curve: DvhCurve, rx: float | None
) -> tuple[float, float] | None:
    """(dose Gy, volume %) of a limit, or None when the metric has no point on a DVH."""
    vol = curve.volume_cc
    if metric == "Max[Gy]" and lim.unit == "Gy":
        return lim.value, 0.0
    if (m := _D_CC.match(metric)) and lim.unit == "Gy" and vol > 0:
        return lim.value, 100.0 * float(m.group(1)) / vol
    if (m := _D_PCT.match(metric)) and lim.unit == "Gy":
        return lim.value, float(m.group(1))
    if (m := _V_GY_PCT.match(metric)) and lim.unit == "%":
        return float(m.group(1)), lim.value
    if (m := _V_GY_CC.match(metric)) and lim.unit == "cc" and vol > 0:
        return float(m.group(1)), 100.0 * lim.value / vol
    if (m := _V_RX_PCT.match(metric)) and lim.unit == "%" and rx is not None:
        return rx * float(m.group(1)) / 100.0, lim.value
    return None


def constraint_markers(result: Result) -> list[Marker]:
    """Markers for every limit that has a place on a plotted curve (same dose basis)."""
    curves = {(d.structure, d.dose_basis): d for d in result.dvhs}
    out: list[Marker] = []
    for c in result.all_constraints:
        curve = _curve_for(c, curves)
        if curve is None:
            continue
        for lim in c.limits:
            point = _place(c.metric, lim, curve, _rx_of(result, c))
            if point is not None:
                label = f"{curve.structure} {c.metric} {fmt_limit(lim, c)} ({lim.level})"
                out.append(Marker(point[0], point[1], c.status, curve.structure, label))
    return out


def _dose_label(dvhs: tuple[DvhCurve, ...]) -> str:
    bases = {d.dose_basis for d in dvhs}
    if bases == {"physical"} or not bases:
        return "Dose [Gy]"
    if len(bases) == 1:
        return f"Dose [Gy, {next(iter(bases))}]"
    return "Dose [Gy; dose basis per curve in the legend]"


def _curve_label(d: DvhCurve, mixed: bool) -> str:
    kind = "target" if d.kind == "target" else "organ"
    basis = f", {d.dose_basis}" if mixed and d.dose_basis != "physical" else ""
    vol = f"{d.volume_cc:.0f}" if d.volume_cc >= 100 else f"{d.volume_cc:.3g}"
    return f"{d.structure} ({kind}, {vol} cc{basis})"


def dvh_figure(result: Result) -> Figure | None:
    """The DVH figure, or None when the result carries no curves."""
    if not result.dvhs:
        return None
    fig = Figure(figsize=(10.0, 5.4), dpi=100)
    fig.subplots_adjust(left=0.07, right=0.66, top=0.93, bottom=0.1)
    ax = fig.add_subplot()
    mixed = len({d.dose_basis for d in result.dvhs}) > 1
    order = sorted(range(len(result.dvhs)), key=lambda i: result.dvhs[i].kind != "target")
    xmax = 1.0
    colours: dict[str, str] = {}
    for n, i in enumerate(order):
        d = result.dvhs[i]
        colours.setdefault(d.structure, PALETTE[n % len(PALETTE)])
        is_target = d.kind == "target"
        (line,) = ax.plot(
            d.dose_gy,
            d.volume_pct,
            color=colours[d.structure],
            linestyle="-" if is_target else (0, (5, 2)) if n % 2 else (0, (2, 1.5)),
            linewidth=2.2 if is_target else 1.6,
            label=_curve_label(d, mixed),
        )
        line.set_gid(f"dvh-curve-{i}")
        if d.dose_gy:
            xmax = max(xmax, max(d.dose_gy))
    fig.legend(
        handles=ax.get_lines(),
        loc="upper left",
        bbox_to_anchor=(0.67, 0.95),
        fontsize=8,
        frameon=False,
        title="Curves",
        alignment="left",
    )
    markers = constraint_markers(result)
    for k, mk in enumerate(markers):
        style = STATUS_STYLE[mk.status]
        (pt,) = ax.plot(
            [mk.dose_gy],
            [mk.volume_pct],
            linestyle="none",
            marker=style["marker"],
            markersize=8,
            markerfacecolor=style["color"] if mk.status is not Status.NOT_EVALUATED else "white",
            markeredgecolor=colours.get(mk.curve, "black"),  # ties the marker to its curve
            markeredgewidth=1.8,
            zorder=5,
            clip_on=False,
        )
        pt.set_gid(f"dvh-marker-{k}")
        xmax = max(xmax, mk.dose_gy)
    _status_legend(fig, markers)
    ax.set_xlim(0.0, xmax * 1.04)
    ax.set_ylim(0.0, 102.0)
    ax.set_xlabel(_dose_label(result.dvhs))
    ax.set_ylabel("Volume [% of structure]")
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title("Cumulative DVH with constraint limits", fontsize=11, loc="left")
    return fig


def _status_legend(fig: Figure, markers: list[Marker]) -> None:
    handles = [
        Line2D([], [], color="#444444", linestyle="-", linewidth=2.2, label="target (solid)"),
        Line2D([], [], color="#444444", linestyle=(0, (5, 2)), linewidth=1.6,
               label="organ at risk (dashed)"),
    ]  # fmt: skip
    for status in (Status.PASS, Status.FAIL, Status.NOT_EVALUATED):
        if any(m.status is status for m in markers):
            style = STATUS_STYLE[status]
            filled = status is not Status.NOT_EVALUATED
            handles.append(
                Line2D(
                    [], [], linestyle="none", marker=style["marker"], markersize=8,
                    markerfacecolor=style["color"] if filled else "white",
                    markeredgecolor="#444444",
                    label=f"constraint {style['label']}",
                )
            )  # fmt: skip
    fig.legend(
        handles=handles, loc="lower left", bbox_to_anchor=(0.67, 0.08), fontsize=8,
        frameon=False, title="Key", alignment="left",
    )  # fmt: skip


_RC = {
    "svg.fonttype": "none",  # text stays text: small, selectable, searchable
    "svg.hashsalt": "rtcheck",  # deterministic ids
    "text.parse_math": False,  # ROI names with '$' are not mathtext
    "font.family": "DejaVu Sans",
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _render(fig: Figure, fmt: str, dpi: float) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # a name DejaVu cannot draw (食道) is not an error: see _glyph_safe_texts
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        fig.savefig(
            buf,
            format=fmt,
            dpi=dpi,
            bbox_inches="tight",  # legends sit outside the axes
            pad_inches=0.08,
            metadata={"Date": None} if fmt == "svg" else None,
        )
    return buf.getvalue()


def _figure(result: Result) -> Figure | None:
    import matplotlib

    with matplotlib.rc_context(_RC):
        return dvh_figure(result)


_SVG_ROOT = re.compile(r'<svg([^>]*?)\swidth="[^"]*"\s+height="[^"]*"')


def dvh_svg(result: Result) -> str | None:
    """The DVH plot as an inline ``<svg>`` element (no XML prolog), or None without curves."""
    fig = _figure(result)
    if fig is None:
        return None
    text = _render(fig, "svg", 100).decode("utf-8")
    text = text[text.index("<svg") :]
    text = _SVG_ROOT.sub(
        r'<svg\1 class="dvh-plot" role="img" aria-label="Cumulative DVH"', text, count=1
    )
    return text


def _glyph_safe_texts(fig: Figure) -> None:
    """Write characters DejaVu Sans lacks as ``[U+98DF]`` in every text of ``fig``.

    In a PNG they would be empty boxes, and two lesions named in Chinese or Japanese would
    have indistinguishable legend entries (the PDF tables do the same, ``pdf_layout``).
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    from matplotlib.text import Text

    charmap = FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap()
    for item in fig.findobj(Text):
        text = item.get_text()
        if all(ord(ch) in charmap or ch.isspace() for ch in text):
            continue
        item.set_text(
            "".join(
                ch if ord(ch) in charmap or ch.isspace() else f"[U+{ord(ch):04X}]" for ch in text
            )
        )


def dvh_png(result: Result, dpi: float = 170) -> bytes | None:
    """The DVH plot as PNG bytes (for the PDF), or None without curves."""
    fig = _figure(result)
    if fig is None:
        return None
    _glyph_safe_texts(fig)
    return _render(fig, "png", dpi)
