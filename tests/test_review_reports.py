"""Third review (reports): every report must carry what the JSON says, readably and safely.

One sample case (``oligo_single_clinic``) is copied and mutated with pydicom (hostile and
non-ASCII ROI and patient names, a 150-character ROI name) and checked once with every
report format; other tests write reports of Results built in code (``report_fixtures``) whose
values sit on purpose next to their limits. Each test failed on the code before the review.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pydicom
import pytest
import yaml
from pypdf import PdfReader
from report_fixtures import judged, lim, pass_result
from test_report_html import _run_chromium

from rtcheck.cli import main
from rtcheck.report import write_report
from rtcheck.report.common import fmt_limit, fmt_value
from rtcheck.report.pdf import render_pdf
from rtcheck.result import Result, Status, Verdict

SAMPLE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_single_clinic"
# longer than the 64 characters DICOM allows an LO, as some exports write them; no space
LONG_ROI = "GreatVessels_PRV05_" + "x" * 131
RENAMED = {
    "Heart": '=HYPERLINK("http://x","Heart")',
    "Stomach": "+Stomach",
    "Trachea": "@Trachea",
    "Chest Wall": "-ChestWall",
    "Oesophagus": "Speiseröhre 食道",
    "Great Vessels": LONG_ROI,
    "Spinal Cord": "</td><script>cord</script>",
}
NAMES_MAP = {
    "Heart": RENAMED["Heart"],
    "Stomach": "+Stomach",
    "Trachea": "@Trachea",
    "Chestwall": "-ChestWall",
    "Esophagus": RENAMED["Oesophagus"],
    "GreatVes": LONG_ROI,
    "SpinalCord": RENAMED["Spinal Cord"],
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _mutated_case(root: Path) -> tuple[Path, Path]:
    case = root / "case"
    shutil.copytree(SAMPLE, case)
    rs = pydicom.dcmread(case / "RS.dcm")
    rs.SpecificCharacterSet = "ISO_IR 192"
    rs.PatientName = "Öztürk^食道"
    with warnings.catch_warnings():  # pydicom warns about the over-long name, as it should
        warnings.simplefilter("ignore", UserWarning)
        for roi in rs.StructureSetROISequence:
            roi.ROIName = RENAMED.get(roi.ROIName, roi.ROIName)
        rs.save_as(case / "RS.dcm")
    for name in ("RP.oligo.dcm", "RD.oligo.dcm"):
        ds = pydicom.dcmread(case / name)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = rs.PatientName
        ds.save_as(case / name)
    names = root / "names.yaml"
    names.write_text(yaml.safe_dump(NAMES_MAP, allow_unicode=True), encoding="utf-8")
    return case, names


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The mutated case checked once, with every report format."""
    root = tmp_path_factory.mktemp("review_reports")
    case, names = _mutated_case(root)
    out = {ext: root / f"r.{ext}" for ext in ("html", "pdf", "xml", "csv", "json", "txt")}
    args = ["check", str(case), "--protocol", "tg101", "--names", str(names)]
    args += ["--report", str(out["html"]), "--report", str(out["pdf"]), "--report", str(out["txt"])]
    args += ["--junit", str(out["xml"]), "--csv", str(out["csv"]), "--json", str(out["json"])]
    assert main(args) == 1  # the cord and the heart fail in this sample
    return out


def _json(reports: dict[str, Path]) -> dict:
    return json.loads(reports["json"].read_text(encoding="utf-8"))


def _pdf_text(data: bytes | Path) -> str:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return "\n".join(page.extract_text() for page in PdfReader(stream).pages)


# -- CSV -------------------------------------------------------------------------------------


def test_csv_text_cells_cannot_run_as_spreadsheet_formulas(reports: dict[str, Path]) -> None:
    with reports["csv"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    doc = _json(reports)
    constraints = doc["constraints"] + [c for le in doc["lesions"] for c in le["constraints"]]
    assert len(rows) == len(constraints)
    numeric = {"value", "margin"} | {k for k in rows[0] if k.endswith("_limit")}
    hostile = 0
    for row, c in zip(rows, constraints, strict=True):
        for key, cell in row.items():
            if key not in numeric:
                assert not cell.startswith(FORMULA_START), (key, cell)
        # the name is kept, behind the apostrophe a spreadsheet does not show
        roi = c["matched_roi"]
        if roi is not None and roi.startswith(FORMULA_START):
            hostile += 1
            assert row["matched_roi"] == "'" + roi
        elif roi is not None:
            assert row["matched_roi"] == roi
        if c["margin"] is not None:  # numbers stay numbers: a negative margin keeps its minus
            assert float(row["margin"]) == c["margin"]
    assert hostile == 8  # Heart, Stomach, Trachea, Chestwall: two constraints each


# -- PDF -------------------------------------------------------------------------------------


def test_pdf_writes_characters_without_glyph_as_code_points(reports: dict[str, Path]) -> None:
    """DejaVu has no CJK: 食道 used to print as two empty boxes (U+0000 in the text layer)."""
    text = _pdf_text(reports["pdf"])
    assert "\x00" not in text
    assert "Speiseröhre [U+98DF][U+9053]" in text  # the ROI, in the organ table
    assert "Öztürk, [U+98DF][U+9053]" in text  # the patient, on every page header


def test_pdf_row_taller_than_a_page_is_split_not_lost(tmp_path: Path) -> None:
    """A not-evaluated reason naming 600 ROIs used to raise LayoutError: no report at all."""
    base = pass_result()
    reason = "ambiguous: " + ", ".join(f"ROI_candidate_{n:04d}" for n in range(600))
    ne = judged("Liver.CV", "Liver", "CV21Gy[cc]", None, "cc", (lim(">=", 700.0, "cc"),),
                Status.NOT_EVALUATED, matched_roi=None, match="ambiguous",
                reason=reason)  # fmt: skip
    result = dataclasses.replace(
        base, verdict=Verdict.INCOMPLETE, constraints=(*base.constraints, ne)
    )
    out = tmp_path / "long.pdf"
    write_report(result, out)
    text = _pdf_text(out).replace("\n", "").replace(" ", "")
    assert all(f"ROI_candidate_{n:04d}" in text for n in range(600))


# -- JUnit -----------------------------------------------------------------------------------


def test_junit_properties_carry_protocol_hash_and_input_hashes(reports: dict[str, Path]) -> None:
    doc = _json(reports)
    root = ET.parse(reports["xml"]).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["protocol_sha256"] == doc["protocol"]["source_sha256"]
    assert props["protocol_file"] == doc["protocol"]["source_file"]
    assert props["dose_grid"] == doc["plan"]["dose_grid"]
    inputs = [v for k, v in props.items() if k.startswith("input_")]
    assert len(inputs) == len(doc["inputs"])
    for f in doc["inputs"]:
        assert f"{f['modality']} {f['path']} sha256:{f['sha256']}" in inputs


def _two_tables() -> Result:
    """The same organ metric once per fraction table (as a multi-plan case has it)."""
    base = pass_result()
    cord3 = judged(
        "SpinalCord.D0.35cc[Gy].3fx",
        "SpinalCord",
        "D0.35cc[Gy]",
        19.0,
        "Gy",
        (lim("<", 18.0),),
        Status.FAIL,
        matched_roi="SpinalCord",
        match="exact",
    )
    cord5 = judged("SpinalCord.D0.35cc[Gy].5fx", "SpinalCord", "D0.35cc[Gy]", 19.0, "Gy",
                   (lim("<", 23.0),), Status.PASS, matched_roi="SpinalCord",
                   match="exact")  # fmt: skip
    return dataclasses.replace(base, verdict=Verdict.FAIL, constraints=(cord3, cord5))


def test_junit_testcases_of_two_fraction_tables_have_distinct_names(tmp_path: Path) -> None:
    """Dashboards merge testcases of equal classname and name: the 3fx FAIL could vanish."""
    out = tmp_path / "r.xml"
    write_report(_two_tables(), out)
    cases = Counter(
        (t.get("classname"), t.get("name")) for t in ET.parse(out).getroot().iter("testcase")
    )
    assert max(cases.values()) == 1
    names = {name for _, name in cases}
    assert "SpinalCord D0.35cc[Gy] (3fx)" in names and "SpinalCord D0.35cc[Gy] (5fx)" in names


def test_html_and_pdf_rows_of_two_fraction_tables_are_told_apart(tmp_path: Path) -> None:
    result = _two_tables()
    write_report(result, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "D0.35cc[Gy] (3fx)" in html and "D0.35cc[Gy] (5fx)" in html
    text = _pdf_text(render_pdf(result))
    assert "(3fx)" in text and "(5fx)" in text


# -- numbers ---------------------------------------------------------------------------------


def test_value_never_prints_equal_to_a_limit_it_exceeds(tmp_path: Path) -> None:
    """23.0000004 Gy against <= 23 Gy is a FAIL; it used to print as 23.000000 Gy."""
    base = pass_result()
    c = judged("Cord.Max", "SpinalCord", "Max[Gy]", 23.0000004, "Gy", (lim("<=", 23.0),),
               Status.FAIL, matched_roi="SpinalCord", match="exact")  # fmt: skip
    result = dataclasses.replace(base, verdict=Verdict.FAIL, constraints=(c,))
    shown = fmt_value(c.value, c.unit, c.limits)
    assert float(shown.removesuffix(" Gy")) == c.value
    for ext in ("html", "txt", "xml"):
        write_report(result, tmp_path / f"r.{ext}")
        text = (tmp_path / f"r.{ext}").read_text(encoding="utf-8")
        assert "23.000000 Gy" not in text and shown in text, ext
    assert shown in _pdf_text(render_pdf(result)).replace("\n", " ")


def test_limit_is_printed_as_given_not_to_six_digits() -> None:
    """``:g`` printed a limit of 23.0000005 Gy as ``< 23 Gy``."""
    limit = lim("<", 23.0000005)
    shown = fmt_limit(limit)
    assert float(shown.removeprefix("< ").removesuffix(" Gy")) == limit.value


# -- header facts ----------------------------------------------------------------------------


def test_alpha_beta_is_shown_whenever_the_result_has_one(tmp_path: Path) -> None:
    """A single plan judged against an EQD2 limit: alpha/beta was hidden in HTML and PDF."""
    base = pass_result()
    plan = dataclasses.replace(base.plan, dose_summation="single plan", alpha_beta=(("Cord", 2.0),))
    result = dataclasses.replace(base, plan=plan)
    write_report(result, tmp_path / "r.html")
    assert "α/β: Cord 2 Gy" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "α/β: Cord 2 Gy" in _pdf_text(render_pdf(result))


def test_terminal_names_protocol_hash_and_prescription_source(reports: dict[str, Path]) -> None:
    doc = _json(reports)
    text = reports["txt"].read_text(encoding="utf-8").replace("\n", " ")
    squeezed = "".join(text.split())
    assert doc["protocol"]["source_sha256"] in squeezed
    for lesion in doc["lesions"]:
        assert "".join(lesion["prescription_source"].split()) in squeezed
    assert f"{len(doc['inputs'])} files" in text


# -- printed HTML ----------------------------------------------------------------------------


@pytest.mark.browser
def test_printed_html_keeps_status_and_value_columns_on_the_page(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    """A 150-character ROI name without spaces widened the structure column until value,
    limit and status of every organ row were cut off the printed page."""
    printed = tmp_path / "printed.pdf"
    run = _run_chromium(
        ["--no-pdf-header-footer", f"--print-to-pdf={printed}", reports["html"].as_uri()],
        tmp_path / "profile",
    )
    assert printed.exists(), run.stderr.decode(errors="replace")[-2000:]
    reader = PdfReader(printed)
    page_width = float(reader.pages[0].mediabox.width)
    seen: list[tuple[str, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            seen.append((text.strip(), cm[4] + tm[4] * cm[0]))

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    doc = _json(reports)
    for c in doc["constraints"]:
        if c["value"] is None or c["matched_roi"] != LONG_ROI:
            continue
        value = fmt_value(c["value"], c["unit"])
        hits = [x for t, x in seen if value in t]
        assert hits, f"{value} of {c['id']} not on any printed page"
        assert all(0 <= x < page_width for x in hits)
    fails = [x for t, x in seen if t.endswith("FAIL")]
    assert fails and all(0 <= x < page_width for x in fails)
