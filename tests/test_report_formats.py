"""Registry, JSON, CSV, JUnit XML and terminal reports, read back with real parsers."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from rtcheck.errors import ConfigError
from rtcheck.report import FORMATS, render_json, render_terminal, resolve_format, write_report
from rtcheck.report.common import fmt_limit, fmt_margin, fmt_value
from rtcheck.report.registry import ReportFormat, register
from rtcheck.result import Limit, Result, Status, Verdict
from tests.report_fixtures import SCENARIOS, fail_result

SCENARIO_NAMES = sorted(SCENARIOS)


@pytest.fixture(scope="module", params=SCENARIO_NAMES)
def result(request: pytest.FixtureRequest) -> Result:
    return SCENARIOS[request.param]()


# -- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.html", "html"), ("a.HTM", "html"), ("a.pdf", "pdf"), ("a.json", "json"),
     ("a.csv", "csv"), ("a.xml", "junit"), ("a.txt", "text")],
)  # fmt: skip
def test_format_from_extension(name: str, fmt: str) -> None:
    assert resolve_format(name).name == fmt


def test_explicit_format_wins_over_extension() -> None:
    assert resolve_format("report.out", "JUnit").name == "junit"
    assert resolve_format("report.html", "json").name == "json"
    assert resolve_format(None, "xml").name == "junit"


@pytest.mark.parametrize(("path", "fmt"), [("r.docx", None), ("noext", None), ("r.html", "word")])
def test_unknown_format_is_a_config_error(path: str, fmt: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_format(path, fmt)
    assert path in str(info.value)
    assert ".html" in str(info.value) or "html" in str(info.value)


def test_registry_refuses_collisions() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(ReportFormat("html2", (".html",), "x:y", "dup"))
    with pytest.raises(ValueError, match="already registered"):
        register(ReportFormat("pdf", (".pdf2",), "x:y", "dup"))
    assert set(FORMATS) == {"html", "pdf", "json", "csv", "junit", "text"}


def test_every_format_writes_a_file(tmp_path: Path) -> None:
    r = fail_result()
    for name, fmt in FORMATS.items():
        out = tmp_path / f"r{fmt.extensions[0]}"
        assert write_report(r, out).name == name
        assert out.stat().st_size > 200, name


# -- number formatting ------------------------------------------------------------------------


def test_value_never_looks_equal_to_a_limit_it_differs_from() -> None:
    lim = (Limit("mandatory", "<", 23.0, "Gy"),)
    assert fmt_value(23.004, "Gy", lim) == "23.004 Gy"
    assert fmt_value(22.9999, "Gy", lim) == "22.9999 Gy"
    assert fmt_value(23.0, "Gy", lim) == "23.00 Gy"
    assert fmt_value(16.5, "Gy", lim) == "16.50 Gy"
    assert fmt_value(None, "Gy") == "—"
    assert fmt_limit(Limit("x", ">=", 95.0, "%")) == ">= 95%"
    assert fmt_limit(Limit("x", "<", 1.2, "ratio")) == "< 1.2"


def test_margin_keeps_its_sign_when_tiny() -> None:
    c = dataclasses.replace(fail_result().constraints[0], margin=-0.0004)
    assert fmt_margin(c).startswith("-0.0004")


# -- JSON ------------------------------------------------------------------------------------


def test_json_is_exactly_to_dict(result: Result, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    write_report(result, out)
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(result.to_dict()))
    assert json.loads(render_json(result)) == json.loads(out.read_text(encoding="utf-8"))


# -- CSV -------------------------------------------------------------------------------------

REQUIRED_CSV = [
    "id", "lesion", "structure", "matched_roi", "match", "metric", "value", "unit", "status",
    "level", "margin", "reason", "source", "dose_basis",
]  # fmt: skip


def _num(text: str) -> float | None:
    return None if text == "" else float(text)


def test_csv_one_row_per_constraint(result: Result, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    write_report(result, out)
    with out.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = reader.fieldnames or []
    for col in REQUIRED_CSV:
        assert col in header
    constraints = result.all_constraints
    assert len(rows) == len(constraints)
    for row, c in zip(rows, constraints, strict=True):
        assert row["id"] == c.id
        assert row["lesion"] == (c.lesion or "")
        assert row["structure"] == c.structure
        assert row["matched_roi"] == (c.matched_roi or "")
        assert row["metric"] == c.metric
        assert row["status"] == c.status.value
        assert _num(row["value"]) == c.value  # full precision round trip
        assert _num(row["margin"]) == c.margin
        assert row["reason"] == (c.reason or "")
        assert row["dose_basis"] == c.dose_basis
        for lim in c.limits:
            assert row[f"{lim.level}_comparator"] == lim.comparator
            assert float(row[f"{lim.level}_limit"]) == lim.value
        levels = {lim.level for lim in c.limits}
        for col in header:
            if col.endswith("_limit") and col[: -len("_limit")] not in levels:
                assert row[col] == ""


def test_csv_keeps_hostile_strings_intact(tmp_path: Path) -> None:
    r = fail_result()
    out = tmp_path / "r.csv"
    write_report(r, out)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert "Ribs_L <&>" in {row["matched_roi"] for row in rows}


# -- JUnit -----------------------------------------------------------------------------------


def _counts(node: ET.Element) -> dict[str, int]:
    return {k: int(node.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}


def test_junit_counts_match_constraints(result: Result, tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    write_report(result, out)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    verdict_cases = [c for c in cases if c.get("classname") == "rtcheck.verdict"]
    assert len(verdict_cases) == 1
    n = result.counts
    assert len(cases) == len(result.all_constraints) + 1
    assert _counts(root) == {
        "tests": len(result.all_constraints) + 1,
        "failures": n["fail"] + (result.verdict is Verdict.FAIL),
        "errors": int(result.verdict is Verdict.INCOMPLETE),
        "skipped": n["not_evaluated"],
    }
    assert len(root.findall(".//failure")) == _counts(root)["failures"]
    assert len(root.findall(".//skipped")) == n["not_evaluated"]
    assert len(root.findall(".//error")) == _counts(root)["errors"]
    for suite in root.findall("testsuite"):
        kids = suite.findall("testcase")
        assert _counts(suite) == {
            "tests": len(kids),
            "failures": sum(k.find("failure") is not None for k in kids),
            "errors": sum(k.find("error") is not None for k in kids),
            "skipped": sum(k.find("skipped") is not None for k in kids),
        }
    assert sum(_counts(s)["tests"] for s in root.findall("testsuite")) == _counts(root)["tests"]


def test_junit_messages_carry_value_limit_and_reason(tmp_path: Path) -> None:
    r = fail_result()
    out = tmp_path / "r.xml"
    write_report(r, out)
    root = ET.parse(out).getroot()
    by_name = {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}
    eso = by_name[("rtcheck.tg101.oar", "Esophagus D5cc[Gy]")]
    msg = eso.find("failure").get("message")  # type: ignore[union-attr]
    assert "21.40 Gy" in msg and "< 19.5 Gy" in msg and "-1.90 Gy" in msg
    skin = by_name[("rtcheck.tg101.oar", "Skin Max[Gy]")]
    assert skin.find("skipped").get("message") == next(  # type: ignore[union-attr]
        c.reason for c in r.constraints if c.id == "Skin.Max"
    )
    cord = by_name[("rtcheck.tg101.oar", "SpinalCord D0.35cc[Gy]")]
    assert cord.find("failure") is None and cord.find("skipped") is None
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict"] == "fail" and props["patient_id"] == "RTC-0042"
    assert "Zoë" not in out.read_text(encoding="utf-8")  # no patient name in CI logs


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    r = fail_result()
    c0 = dataclasses.replace(r.constraints[0], matched_roi="cord\x00\x07", reason="a\x1bb")
    r = dataclasses.replace(r, constraints=(c0, *r.constraints[1:]))
    out = tmp_path / "r.xml"
    write_report(r, out)
    ET.parse(out)  # raises on invalid XML


# -- terminal ------------------------------------------------------------------------------


def test_terminal_plain_text_has_everything(result: Result) -> None:
    buf = io.StringIO()
    render_terminal(result, buf)  # not a TTY: no colour
    text = buf.getvalue()
    assert "\x1b[" not in text
    assert result.verdict.value.upper() in text
    for c in result.constraints:
        assert c.structure in text
        assert c.metric in text
    for lesion in result.lesions:
        assert lesion.name in text
    words = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NOT_EVALUATED: "NOT EVALUATED"}
    for c in result.all_constraints:
        assert words[c.status] in text
    for lesion in result.lesions:
        for f in lesion.findings:
            assert f.code in text
    for f in result.findings:
        assert f.code in text


def test_terminal_colour_forced_and_markup_not_interpreted() -> None:
    r = fail_result()
    c0 = dataclasses.replace(r.constraints[0], matched_roi="[bold red]cord[/]")
    r = dataclasses.replace(r, constraints=(c0, *r.constraints[1:]))
    buf = io.StringIO()
    render_terminal(r, buf, color=True, width=160)
    assert "\x1b[" in buf.getvalue()
    plain = io.StringIO()
    render_terminal(r, plain, color=False, width=200)
    assert "[bold red]cord[/]" in plain.getvalue()


def test_terminal_accepts_a_console() -> None:
    console = Console(file=io.StringIO(), width=140, color_system=None)
    render_terminal(fail_result(), console)
    assert "Esophagus" in console.file.getvalue()  # type: ignore[attr-defined]


def test_text_format_matches_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    r = fail_result()
    out = tmp_path / "r.txt"
    write_report(r, out)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("FAIL  5 failed")  # verdict and counts first, plain words
    assert "\x1b[" not in text
    piped = io.StringIO()
    render_terminal(r, piped)  # what a pipe gets: the same plain report
    assert text == piped.getvalue()
