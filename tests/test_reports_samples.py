"""Every report format of every bundled sample case agrees with its JSON (issue #5).

``rtcheck check`` runs once per sample case (module-scoped fixture) with HTML, PDF, JUnit, CSV
and JSON reports; each format is then read back with an independent parser (ElementTree,
csv, pypdf, html.parser) and compared with the JSON constraints. The second part checks how
limits are printed: to the precision of their value (an interpolated RTOG 0813 limit of
4.615696127272727 prints as 4.62), never so that a value and a limit it differs from print
equal or in the wrong order.
"""

from __future__ import annotations

import csv
import json
import math
import operator
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from rtcheck.cli import main
from rtcheck.report import write_report
from rtcheck.report.common import fmt_limit, fmt_value
from rtcheck.result import EXIT_CODES, ConstraintResult, Limit, Status
from tests.report_fixtures import judged, lim, pass_result
from tests.test_report_html import parse

SAMPLES = Path(__file__).resolve().parents[1] / "sample_dicom"

#: (case, protocol) as the README examples run them.
CASES = [
    ("oligo_single", "tg101"),
    ("oligo_single_clinic", "tg101"),
    ("oligo_multi", "tg101"),
    ("oligo_multi", "hytec-cord-eqd2"),
]

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


@dataclass(frozen=True)
class Run:
    """One ``rtcheck check`` of a sample case and the reports it wrote."""

    exit_code: int
    doc: dict[str, Any]
    out: Path

    @property
    def rows(self) -> list[dict[str, Any]]:
        """JSON constraints in report order: organs at risk, then each lesion's."""
        return [
            *self.doc["constraints"],
            *(c for le in self.doc["lesions"] for c in le["constraints"]),
        ]

    def count(self, status: str) -> int:
        return sum(c["status"] == status for c in self.rows)


@pytest.fixture(scope="module", params=CASES, ids=[f"{c}-{p}" for c, p in CASES])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    case, protocol = request.param
    out = tmp_path_factory.mktemp(f"{case}-{protocol}")
    code = main(
        [
            "check", str(SAMPLES / case), "--protocol", protocol,
            "--report", str(out / "x.html"), "--report", str(out / "x.pdf"),
            "--junit", str(out / "x.xml"), "--csv", str(out / "x.csv"),
            "--json", str(out / "x.json"),
        ]
    )  # fmt: skip
    doc = json.loads((out / "x.json").read_text(encoding="utf-8"))
    return Run(code, doc, out)


def _decimals(text: str) -> int:
    mantissa, _, exponent = text.lower().partition("e")
    places = len(mantissa.partition(".")[2])
    return max(0, places - int(exponent or 0))


def _shown_as(text: str, true: float) -> bool:
    """``text`` is ``true`` rounded to the decimals ``text`` has (or ``true`` exactly)."""
    return abs(float(text) - true) <= 0.5 * 10.0 ** -_decimals(text) * (1 + 1e-9)


def test_run_wrote_every_report_and_exit_code_follows_the_verdict(run: Run) -> None:
    assert run.exit_code == EXIT_CODES[run.doc["verdict"]]
    for name in ("x.html", "x.pdf", "x.xml", "x.csv"):
        assert (run.out / name).stat().st_size > 0, name
    assert run.rows, "a sample case with no constraint tests nothing"
    assert sum(run.doc["counts"].values()) == len(run.rows)


# -- JUnit ---------------------------------------------------------------------------------------


def _junit_cases(run: Run) -> tuple[ET.Element, ET.Element, list[tuple[ET.Element, str, str]]]:
    """Root, verdict testcase, and (testcase, constraint id, lesion) of every other testcase."""
    root = ET.parse(run.out / "x.xml").getroot()
    verdict = None
    cases = []
    prefix = f"rtcheck.{run.doc['protocol']['id']}."
    for case in root.iter("testcase"):
        if case.get("classname") == "rtcheck.verdict":
            assert verdict is None, "two verdict testcases"
            verdict = case
            continue
        out = case.findtext("system-out") or ""
        cid = re.match(r"id: (.*)", out)
        assert cid, f"testcase {case.get('name')} does not name its constraint"
        group = (case.get("classname") or "").removeprefix(prefix)
        lesion = group.removeprefix("lesion.") if group.startswith("lesion.") else ""
        cases.append((case, cid.group(1), lesion))
    assert verdict is not None, "no verdict testcase"
    return root, verdict, cases


def test_junit_has_one_testcase_per_constraint_plus_the_verdict(run: Run) -> None:
    root, verdict, cases = _junit_cases(run)
    fail, ne = run.count("fail"), run.count("not_evaluated")
    plan_failed = run.doc["verdict"] == "fail"
    plan_incomplete = run.doc["verdict"] == "incomplete"
    assert int(root.get("tests", -1)) == len(run.rows) + 1
    assert int(root.get("failures", -1)) == fail + plan_failed
    assert int(root.get("errors", -1)) == int(plan_incomplete)
    assert int(root.get("skipped", -1)) == ne
    assert (verdict.find("failure") is not None) == plan_failed
    assert (verdict.find("error") is not None) == plan_incomplete
    assert len(cases) == len(run.rows)
    assert sum(c.find("failure") is not None for c, _, _ in cases) == fail
    assert sum(c.find("skipped") is not None for c, _, _ in cases) == ne

    def status(case: ET.Element) -> str:
        if case.find("failure") is not None:
            return "fail"
        return "not_evaluated" if case.find("skipped") is not None else "pass"

    got = Counter((cid, lesion, status(case)) for case, cid, lesion in cases)
    want = Counter((c["id"], c["lesion"] or "", c["status"]) for c in run.rows)
    assert got == want


def test_junit_failure_messages_carry_value_and_every_limit(run: Run) -> None:
    _, _, cases = _junit_cases(run)
    by_key = {(c["id"], c["lesion"] or ""): c for c in run.rows}
    failures = [(case, by_key[(cid, lesion)]) for case, cid, lesion in cases
                if case.find("failure") is not None]  # fmt: skip
    assert len(failures) == run.count("fail")
    for case, c in failures:
        message = case.find("failure").get("message", "")  # type: ignore[union-attr]
        assert message.startswith(f"{c['metric']} = "), message
        shown = re.match(_NUMBER, message.removeprefix(f"{c['metric']} = "))
        assert shown and _shown_as(shown.group(), c["value"]), (message, c["value"])
        for level, limit in c["limits"].items():
            pattern = rf"\b{re.escape(level)} {re.escape(limit['comparator'])} ({_NUMBER})"
            printed = re.search(pattern, message)
            assert printed, f"limit {level} missing from {message!r}"
            assert _shown_as(printed.group(1), limit["value"]), (message, limit)
            # a failed level must read as failed: the printed value does not meet it
            met = COMPARE[limit["comparator"]](float(shown.group()), float(printed.group(1)))
            assert not met, message


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_has_every_constraint_with_its_status_and_full_precision_numbers(run: Run) -> None:
    with open(run.out / "x.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(run.rows)
    for row, c in zip(rows, run.rows, strict=True):
        assert (row["id"], row["lesion"], row["status"]) == (
            c["id"],
            c["lesion"] or "",
            c["status"],
        )
        if c["value"] is None:
            assert row["value"] == ""
        else:
            assert float(row["value"]) == c["value"]  # exact, not rounded
        for level, limit in c["limits"].items():
            assert row[f"{level}_comparator"] == limit["comparator"]
            assert float(row[f"{level}_limit"]) == limit["value"]


# -- PDF -----------------------------------------------------------------------------------------


def test_pdf_shows_the_verdict_and_every_constraint_row(run: Run) -> None:
    pages = [page.extract_text() or "" for page in PdfReader(run.out / "x.pdf").pages]
    text = " ".join(pages)
    assert run.doc["verdict"].upper() in text
    squeezed = "".join(text.split())  # long names wrap inside table cells
    for c in run.rows:
        assert "".join(c["structure"].split()) in squeezed, c["id"]
        assert "".join(c["metric"].split()) in squeezed, c["id"]


# -- HTML ----------------------------------------------------------------------------------------


def test_html_shows_the_verdict_and_one_row_per_constraint(run: Run) -> None:
    p = parse((run.out / "x.html").read_text(encoding="utf-8"))
    assert p.verdict == run.doc["verdict"]
    css = {"pass": "pass", "fail": "fail", "not_evaluated": "ne"}
    got = Counter(
        (r["data-constraint-id"], r["data-lesion"] or "", r["data-status"]) for r in p.rows
    )
    want = Counter((c["id"], c["lesion"] or "", css[c["status"]]) for c in run.rows)
    assert got == want


# -- how limits are printed ----------------------------------------------------------------------


def _number(text: str) -> float:
    """The number of ``< 4.62``, ``4.82 Gy``, ``>= 95%``."""
    found = re.search(_NUMBER, text)
    assert found, text
    return float(found.group())


def _judged(*args: Any) -> ConstraintResult:
    """A judged constraint on a matched ROI (the ROI does not matter for formatting)."""
    return judged(*args, matched_roi=args[1], match="exact")


def _r50(value: float, none: float, minor: float) -> ConstraintResult:
    limits = (lim("<", none, "ratio", "none"), lim("<", minor, "ratio", "minor"))
    expect = Status.PASS if value < minor else Status.FAIL
    return _judged("PTV.R50%@PTVp", "PTV", "R50%", value, "ratio", limits, expect)


def test_interpolated_limit_prints_with_the_values_decimals() -> None:
    """RTOG 0813 interpolates R50% limits by PTV volume: 4.615696127272727 printed in full."""
    c = _r50(4.82, 4.615696127272727, 5.77)
    assert fmt_value(c.value, c.unit, c.limits) == "4.82"
    assert fmt_limit(c.limits[0], c) == "< 4.62"
    assert fmt_limit(c.limits[1], c) == "< 5.77"
    low = _judged("PTV.Max@PTVp", "PTV", "Max[Gy]", 62.21, "Gy",
                 (lim(">=", 62.199286881256796, "Gy", "none"),), Status.PASS)  # fmt: skip
    assert fmt_limit(low.limits[0], low) == ">= 62.20 Gy"
    # a limit as short as the protocol gives it stays as given
    cord = _judged("Cord.Max", "SpinalCord", "Max[Gy]", 22.1, "Gy", (lim("<", 23.0),), Status.PASS)
    assert fmt_limit(cord.limits[0], cord) == "< 23 Gy"
    nothing = _judged("X", "X", "R50%", None, "ratio", (lim("<", 4.615696127272727, "ratio"),),
                     Status.NOT_EVALUATED)  # fmt: skip
    assert fmt_limit(nothing.limits[0], nothing) == "< 4.62"


def test_interpolated_limit_is_rounded_in_every_human_report(tmp_path: Path) -> None:
    c = _r50(4.82, 4.615696127272727, 5.77)
    c = replace(c, matched_roi="PTVp", match="target")
    result = replace(pass_result(), constraints=(c,))
    for ext in ("txt", "html", "xml", "pdf", "json", "csv"):
        write_report(result, tmp_path / f"r.{ext}")
    pdf = " ".join(page.extract_text() or "" for page in PdfReader(tmp_path / "r.pdf").pages)
    for ext, text in [
        ("txt", (tmp_path / "r.txt").read_text(encoding="utf-8")),
        ("html", (tmp_path / "r.html").read_text(encoding="utf-8")),
        ("xml", (tmp_path / "r.xml").read_text(encoding="utf-8")),
        ("pdf", pdf),
    ]:
        assert "4.6156" not in text and "4.62" in text, ext
    for ext in ("json", "csv"):  # machine-readable formats keep full precision
        assert "4.615696127272727" in (tmp_path / f"r.{ext}").read_text(encoding="utf-8"), ext


def test_limit_and_value_closer_than_six_decimals_stay_distinguishable() -> None:
    """23.0000005 against 23.0000004 (the case the earlier exact printing was for)."""
    limits = (lim("<", 23.0000005),)
    c = _judged("Cord.Max", "SpinalCord", "Max[Gy]", 23.0000004, "Gy", limits, Status.PASS)
    assert _number(fmt_value(c.value, c.unit, c.limits)) == 23.0000004
    assert _number(fmt_limit(c.limits[0], c)) == 23.0000005
    fail = _judged("Cord.Max", "SpinalCord", "Max[Gy]", 23.0000006, "Gy", limits, Status.FAIL)
    shown_value = fmt_value(fail.value, "Gy", fail.limits).removesuffix(" Gy")
    shown_limit = fmt_limit(fail.limits[0], fail).removeprefix("< ").removesuffix(" Gy")
    assert _shown_as(shown_value, 23.0000006) and _shown_as(shown_limit, 23.0000005)
    assert float(shown_value) > float(shown_limit), (shown_value, shown_limit)
    # without a constraint a limit is printed as given, as before
    assert _number(fmt_limit(lim("<", 23.0000005))) == 23.0000005


LIMITS = [4.615696127272727, 62.199286881256796, 23.0, 19.5, 0.35, 1500.0, 0.0456, 23.0000005]
OFFSETS = [0.0, 1e-2, 6e-3, 5e-3, 4e-3, 1e-3, 5e-4, 1e-5, 1e-6, 4e-7, 1e-9]


@pytest.mark.parametrize("unit", ["Gy", "cc", "%", "ratio"])
@pytest.mark.parametrize("comparator", ["<", "<=", ">", ">="])
def test_printed_value_meets_printed_limit_exactly_when_the_true_value_does(
    unit: str, comparator: str
) -> None:
    """Value and limit next to each other: reading the printed numbers gives the true status."""
    checked = 0
    for limit in LIMITS:
        for offset in OFFSETS:
            for value in {limit + offset * max(1.0, limit), limit - offset * max(1.0, limit)}:
                c = ConstraintResult(
                    id="x", structure="X", matched_roi="X", match="exact", metric="M",
                    value=value, unit=unit,
                    limits=(Limit("limit", comparator, limit, unit),),
                    status=Status.PASS if COMPARE[comparator](value, limit) else Status.FAIL,
                    level=None, margin=None,
                )  # fmt: skip
                shown_value = _number(fmt_value(value, unit, c.limits))
                shown_limit = _number(fmt_limit(c.limits[0], c))
                true = COMPARE[comparator](value, limit)
                assert COMPARE[comparator](shown_value, shown_limit) == true, (
                    value, limit, fmt_value(value, unit, c.limits), fmt_limit(c.limits[0], c)
                )  # fmt: skip
                checked += 1
    assert checked > len(LIMITS) * len(OFFSETS)


def test_two_levels_never_print_equal_when_they_differ() -> None:
    c = _r50(4.0, 4.6157, 4.6199)
    none, minor = (fmt_limit(x, c) for x in c.limits)
    assert none != minor and _number(none) < _number(minor)


def test_limit_of_a_value_that_is_not_a_number_prints_at_the_units_decimals() -> None:
    c = _judged("X", "X", "Max[Gy]", None, "Gy", (lim("<", 4.615696127272727),),
               Status.NOT_EVALUATED)  # fmt: skip
    assert fmt_limit(c.limits[0], replace(c, value=math.nan)) == "< 4.62 Gy"
