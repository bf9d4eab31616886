"""Self-contained HTML report: one file, inline CSS and SVG, no script, no network.

Rendered with jinja2 (autoescaping on: patient and ROI names may contain ``<&>``). The DVH
plot is matplotlib SVG, whose text matplotlib escapes itself; it is the only markup inserted
unescaped, after its XML prolog and RDF metadata are removed.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import BinaryIO

import jinja2
from markupsafe import Markup

from rtcheck.report.common import SEVERITY_LABELS
from rtcheck.report.plot import dvh_svg
from rtcheck.report.view import build_view
from rtcheck.result import RESULT_SCHEMA_VERSION, Result

__all__ = ["render_html", "write_html"]

_TEMPLATES = Path(__file__).with_name("templates")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["severity_label"] = lambda sev: SEVERITY_LABELS[sev]
    env.filters["css_string"] = css_string
    return env


def css_string(text: str) -> Markup:
    """``text`` as a quoted CSS string safe inside a ``<style>`` element.

    Every character other than letters, digits, space and ``.,:;_-()/#`` becomes a CSS hex
    escape (``\\3C `` for ``<``), so quotes, backslashes, line breaks and ``</style>`` in a
    patient name or plan label cannot end the string or the element.
    """
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;_-()/#")
    body = "".join(ch if ch in safe else f"\\{ord(ch):X} " for ch in text)
    return Markup(f'"{body}"')


def render_html(result: Result) -> str:
    """The complete HTML document for ``result``."""
    svg = dvh_svg(result)
    if svg is not None:
        svg = _METADATA.sub("", svg, count=1)
    css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            v=build_view(result),
            svg=Markup(svg) if svg is not None else None,
            css=Markup(css),
            schema_version=RESULT_SCHEMA_VERSION,
        )
    )


def write_html(result: Result, out: BinaryIO) -> None:
    """Registry writer: the HTML report as UTF-8."""
    out.write(render_html(result).encode("utf-8"))
