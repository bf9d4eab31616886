"""PDF report: text extracted with pypdf shows the verdict, every constraint, header and pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from rtcheck.report import write_report
from rtcheck.result import Result
from tests.report_fixtures import SCENARIOS


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Result, list[str]]:
    result = SCENARIOS[request.param]()
    out = tmp_path_factory.mktemp("pdf") / f"{request.param}.pdf"
    write_report(result, out)
    assert out.read_bytes().startswith(b"%PDF-")
    pages = [page.extract_text() or "" for page in PdfReader(out).pages]
    return result, pages


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_pdf_shows_verdict_and_every_constraint(written: tuple[Result, list[str]]) -> None:
    result, pages = written
    text = _flat(" ".join(pages))
    word = result.verdict.value.upper()
    assert word in text
    for c in result.all_constraints:
        assert c.structure in text, c.id
        assert c.metric in text, c.id
        if c.reason:
            assert _flat(c.reason) in text, c.id
    for f in result.findings:
        assert f.code in text
    for i in result.inputs:
        assert i.sha256 and i.sha256 in text.replace(" ", "")


def test_every_page_has_header_and_page_number(written: tuple[Result, list[str]]) -> None:
    result, pages = written
    assert len(pages) >= 2
    for n, page in enumerate(pages, start=1):
        flat = _flat(page)
        assert f"Page {n} of {len(pages)}" in flat
        assert f"ID {result.plan.patient_id}" in flat
        assert result.verdict.value.upper() in flat
    # page 1: the page header and the verdict banner, the banner word not broken across lines
    assert _flat(pages[0]).count(result.verdict.value.upper()) >= 2


def test_pdf_keeps_hostile_strings_as_text(tmp_path: Path) -> None:
    from tests.report_fixtures import fail_result

    out = tmp_path / "r.pdf"
    write_report(fail_result(), out)
    text = _flat(" ".join(p.extract_text() or "" for p in PdfReader(out).pages))
    assert "O'Neil & Søn, Zoë <QA>" in text
    assert "Ribs_L <&>" in text


def test_long_oar_table_repeats_its_header(tmp_path: Path) -> None:
    """A table spanning pages starts each page with its column headings."""
    import dataclasses

    from tests.report_fixtures import fail_result

    r = fail_result()
    many = tuple(dataclasses.replace(c, id=f"{c.id}#{k}") for k in range(6) for c in r.constraints)
    out = tmp_path / "long.pdf"
    write_report(dataclasses.replace(r, constraints=many), out)
    pages = [_flat(p.extract_text() or "") for p in PdfReader(out).pages]
    with_rows = [p for p in pages if "S1 TG-101 Table III" in p]  # the source column
    assert len(with_rows) >= 2
    for page in with_rows:
        assert "STRUCTURE METRIC" in page
