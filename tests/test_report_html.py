"""HTML report: parsed with html.parser, DVH series counted, rendered in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rtcheck.report import write_report
from rtcheck.report.html import render_html
from rtcheck.report.plot import constraint_markers, dvh_svg
from rtcheck.result import Result, Status
from tests.report_fixtures import SCENARIOS, expected_markers, fail_result

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


class ReportParser(HTMLParser):
    """Collects constraint rows, the verdict, ids and every external reference."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, str | None]] = []
        self.verdict: str | None = None
        self.ids: list[str] = []
        self.external: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "tr" and "data-constraint-id" in a:
            self.rows.append(a)
        if "data-verdict" in a:
            self.verdict = a["data-verdict"]
        if a.get("id"):
            self.ids.append(a["id"] or "")
        for key in ("src", "href", "xlink:href"):
            value = a.get(key)
            if value and not value.startswith("#"):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    p.close()
    return p


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_html_has_verdict_and_every_constraint_row(name: str, tmp_path: Path) -> None:
    result = SCENARIOS[name]()
    out = tmp_path / "r.html"
    write_report(result, out)
    html = out.read_text(encoding="utf-8")
    p = parse(html)
    assert p.verdict == result.verdict.value
    got = sorted((r["data-constraint-id"], r["data-lesion"] or "") for r in p.rows)
    want = sorted((c.id, c.lesion or "") for c in result.all_constraints)
    assert got == want
    css = {"pass": "pass", "fail": "fail", "not_evaluated": "ne"}
    status_by_row = {(r["data-constraint-id"], r["data-lesion"] or ""): r["data-status"]
                     for r in p.rows}  # fmt: skip
    for c in result.all_constraints:
        assert status_by_row[(c.id, c.lesion or "")] == css[c.status.value]
    text = " ".join(p.text)
    for c in result.all_constraints:
        assert c.structure in text and c.metric in text
        if c.reason:
            assert c.reason in text
    for f in result.findings:
        assert f.message in text
    for i in result.inputs:
        assert i.sha256 and i.sha256 in text
    assert result.protocol.citation in text


def test_html_is_self_contained_and_escaped() -> None:
    result = fail_result()
    html = render_html(result)
    p = parse(html)
    assert p.external == []  # no src/href to anything but in-page anchors
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert "@import" not in html
    assert all(ref.startswith("#") for ref in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html))
    # hostile names are text, not markup
    assert "<QA>" not in html and "&lt;QA&gt;" in html
    assert "Ribs_L <&>" not in html and "Ribs_L &lt;&amp;&gt;" in html
    assert "O'Neil & Søn, Zoë <QA>" in " ".join(p.text)
    assert len(p.ids) == len(set(p.ids)), "duplicate element ids"


def test_html_shows_summation_and_alpha_beta_for_multi_plan() -> None:
    from tests.report_fixtures import eqd2_result

    text = " ".join(parse(render_html(eqd2_result())).text)
    assert "voxel-wise EQD2 sum" in text
    assert "SpinalCord 2 Gy" in text and "Esophagus 3 Gy" in text
    assert "EQD2(a/b=2)" in text
    single = " ".join(parse(render_html(fail_result())).text)
    assert "α/β" not in single


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_dvh_svg_has_one_series_per_curve_and_every_marker(name: str) -> None:
    result = SCENARIOS[name]()
    svg = dvh_svg(result)
    assert svg is not None
    curves = sorted(int(i) for i in re.findall(r'<g id="dvh-curve-(\d+)"', svg))
    assert curves == list(range(len(result.dvhs)))
    markers = re.findall(r'<g id="dvh-marker-(\d+)"', svg)
    assert len(markers) == expected_markers(result) > 0
    for d in result.dvhs:  # legend names each curve (escaped)
        name_xml = d.structure.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert name_xml in svg


def test_marker_positions_are_the_limits() -> None:
    """D0.35cc < 23 Gy on a 28.4 cc cord sits at (23 Gy, 0.35/28.4 %); V100% >= 95 at Rx."""
    result = fail_result()
    marks = constraint_markers(result)
    cord = [m for m in marks if m.curve == "SpinalCord" and "D0.35cc" in m.label]
    assert len(cord) == 1
    assert cord[0].dose_gy == 23.0
    assert cord[0].volume_pct == pytest.approx(100 * 0.35 / 28.4, rel=1e-12)
    assert cord[0].status is Status.PASS
    eso = next(m for m in marks if m.curve == "Oesophagus" and "D5cc" in m.label)
    assert (eso.dose_gy, eso.status) == (19.5, Status.FAIL)
    assert eso.volume_pct == pytest.approx(100 * 5 / 31.7, rel=1e-12)
    ptv = next(m for m in marks if m.curve == "PTV_Adrenal_L" and "V100%" in m.label)
    assert (ptv.dose_gy, ptv.volume_pct, ptv.status) == (40.0, 95.0, Status.FAIL)
    lungs = [m for m in marks if m.curve == "Lungs-ITV"]
    assert lungs == []  # a critical-volume rule has no point on a cumulative DVH


def test_no_dvh_curves_is_said_not_hidden() -> None:
    import dataclasses

    result = dataclasses.replace(fail_result(), dvhs=())
    assert dvh_svg(result) is None
    assert "No DVH curves were recorded" in render_html(result)


# -- headless browser ----------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[bytes]:
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium not installed (apt-get install chromium); browser test skipped")
    base = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ]  # fmt: skip
    return subprocess.run(base + args, capture_output=True, timeout=180, check=False)


def _pixel_spread(png: Path) -> tuple[float, int]:
    from PIL import Image, ImageStat

    with Image.open(png) as im:
        grey = im.convert("L")
        stddev = ImageStat.Stat(grey).stddev[0]
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
    return stddev, len(colours)


@pytest.mark.browser
@pytest.mark.parametrize("name", ["fail", "incomplete"])
def test_html_renders_in_headless_chromium(name: str, tmp_path: Path) -> None:
    result: Result = SCENARIOS[name]()
    page = tmp_path / f"report_{name}.html"
    write_report(result, page)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report_{name}.png"
    shot.unlink(missing_ok=True)
    run = _run_chromium(
        [f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()], tmp_path / "p1"
    )
    assert shot.exists(), run.stderr.decode(errors="replace")[-2000:]
    assert shot.stat().st_size > 50_000
    stddev, colours = _pixel_spread(shot)
    assert stddev > 20, "screenshot looks blank"
    assert colours > 200, "screenshot has almost no distinct colours"

    dom_run = _run_chromium(["--dump-dom", page.as_uri()], tmp_path / "p2")
    dom = dom_run.stdout.decode("utf-8")
    assert dom_run.returncode == 0, dom_run.stderr.decode(errors="replace")[-2000:]
    p = parse(dom)
    assert p.verdict == result.verdict.value
    assert len(p.rows) == len(result.all_constraints)
    assert len(re.findall(r'id="dvh-curve-\d+"', dom)) == len(result.dvhs)
    assert len(re.findall(r'id="dvh-marker-\d+"', dom)) == expected_markers(result)


def test_organs_not_contoured_have_their_own_table(tmp_path: Path) -> None:
    """Sample oligo_single under TG-101: 37 rows on organs the plan does not contain.

    They must not be interleaved with the evaluated organ rows (the main table then shows the
    4 failures among 25 rows, not among 62), and the attention list names them once.
    """
    from rtcheck.cli import main

    sample = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_single"
    out = tmp_path / "r.html"
    assert main(["check", str(sample), "--protocol", "tg101", "--report", str(out)]) == 1
    html = out.read_text(encoding="utf-8")
    oars = html[html.index('<section class="oars">') :]
    oars = oars[: oars.index("</section>")]
    main_table, _, absent_table = oars.partition("<h3>Organs not contoured</h3>")
    assert absent_table, "no table of organs not contoured"
    main_rows = re.findall(r'data-status="(\w+)"', main_table)
    absent_rows = re.findall(r'data-status="(\w+)"', absent_table)
    assert main_rows.count("fail") == 4 and main_rows.count("pass") == 21
    assert main_rows.count("ne") == 0  # the unconfirmed liver rule is not shipped (omitted)
    assert absent_rows == ["ne"] * 37
    assert "OpticChiasm" in absent_table and "OpticChiasm" not in main_table
    attention = html[html.index('<section class="attention">') :]
    attention = attention[: attention.index("</section>")]
    assert "22 protocol structures absent from the plan, 37 constraints" in attention


HOSTILE_NAME = 'Doe^Jane"; } body { display: none } </style><script>alert(1)</script>\\'


def test_print_header_is_a_safe_css_string() -> None:
    """The running header of printed pages carries the patient name inside a <style>
    element: quotes, braces, backslashes and </style> must not escape the CSS string."""
    from dataclasses import replace

    result = fail_result()
    result = replace(result, plan=replace(result.plan, patient_name=HOSTILE_NAME))
    html = render_html(result)
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    header = [s for s in styles if "@top-left" in s]
    assert len(header) == 1, "no running print header"
    content = re.search(r'content: "([^"]*)";', header[0])
    assert content, header[0]
    assert "<" not in content.group(1) and "}" not in content.group(1)
    assert "<script>" not in html


@pytest.mark.browser
def test_printed_html_repeats_patient_and_verdict_on_every_page(tmp_path: Path) -> None:
    """Printed from a browser, every page names the verdict and the patient (as the PDF
    does), so a loose page cannot be filed in the wrong chart or read without its verdict."""
    from dataclasses import replace

    from pypdf import PdfReader

    result = fail_result()
    result = replace(result, plan=replace(result.plan, patient_name=HOSTILE_NAME))
    page = tmp_path / "report.html"
    write_report(result, page)
    pdf = tmp_path / "printed.pdf"
    run = _run_chromium(
        ["--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()], tmp_path / "p"
    )
    assert pdf.exists(), run.stderr.decode(errors="replace")[-2000:]
    pages = PdfReader(pdf).pages
    assert len(pages) >= 2
    word = {"fail": "FAIL"}[result.verdict.value]
    for i, p in enumerate(pages, start=1):
        text = p.extract_text()
        assert f"rtcheck {word}" in text and "Doe" in text, (i, text[:200])
        assert f"page {i} of {len(pages)}" in text, (i, text[:200])
