"""End to end, issue #6: ``rtcheck check`` on the multi-plan sample ``oligo_multi`` (plans of 3,
5, 8 and 30 fractions on their own grids, one exported as per-beam doses).

Each lesion is evaluated in its own plan; organs on the stated composite (EQD2, each plan
converted with its own dose per fraction), with the summation method and alpha/beta in the
JSON and in the HTML report. Expected values and statuses come from ``expected.json``, computed
by the sample generator from the analytic dose formula (independently of rtcheck's engine).
"""

from __future__ import annotations

import html
import json
import textwrap
from pathlib import Path

import pytest

from rtcheck.cli import main
from rtcheck.pipeline import check_path

CASE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_multi"
pytestmark = pytest.mark.skipif(not CASE.is_dir(), reason="sample_dicom/oligo_multi missing")


def _expected() -> dict:
    return json.loads((CASE / "expected.json").read_text(encoding="utf-8"))


def _run(protocol: str, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    """``rtcheck check CASE --protocol P --format json --report out/P.html``."""
    report = out / f"{Path(protocol).stem}.html"
    args = ["check", str(CASE), "--protocol", protocol, "--format", "json"]
    code = main([*args, "--report", str(report)])
    doc = json.loads(capsys.readouterr().out)
    return code, doc, html.unescape(report.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multiplan")


def _check_lesions(doc: dict, exp: dict) -> None:
    """Every lesion on its own plan: label, fractions, prescription, metrics."""
    plans = {p["key"]: p for p in exp["plans"]}
    lesions = {les["name"]: les for les in doc["lesions"]}
    assert len(lesions) == len(exp["lesions"]) == 4
    for row in exp["lesions"]:
        les = lesions[row["ptv"]]
        plan = plans[row["plan"]]
        assert les["plan_label"] == plan["label"]
        assert les["fractions"] == row["fractions"] == plan["fractions"]
        assert les["prescription_gy"] == row["rx_gy"]
        assert les["prescription_source"] == "RT Plan dose reference (ROI number)"
        for key, m in row["metrics"].items():
            assert abs(les["metrics"][key] - m["value_grid"]) <= m["tolerance"], (les, key)
    assert sorted(p["fractions"] for p in plans.values()) == [3, 5, 8, 30]


def test_hytec_cumulative_cord_eqd2(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = _expected()
    design = exp["protocols"]["hytec-cord-eqd2"]
    code, doc, report = _run("hytec-cord-eqd2", out, capsys)
    assert doc["verdict"] == design["expected_verdict"] == "fail" and code == 1
    # organs: on the EQD2 sum of all four plans, method and alpha/beta stated
    plan = doc["plan"]
    assert plan["fractions"] is None and "mixed: 3, 5, 8, 30" in plan["fractions_source"]
    assert sorted(plan["plan_labels"]) == sorted(p["label"] for p in exp["plans"])
    summation = plan["dose_summation"]
    assert "voxel-wise EQD2(a/b=2) sum" in summation and "own dose per fraction" in summation
    assert plan["alpha_beta"] == {"SpinalCord": 2.0}
    assert plan["dose_grid"] and "2.5 x 2.5" in plan["dose_grid"]
    rows = {(c["structure"], c["metric"]): c for c in doc["constraints"]}
    assert len(rows) == len(design["constraints"])
    for want in design["constraints"]:
        got = rows[(want["structure"], want["metric"])]
        assert got["status"] == want["expected"], got
        assert got["limits"] == {
            "lower_risk": {"comparator": want["comparator"], "value": want["limit"], "unit": "Gy"}
        }
        assert got["dose_basis"] == "EQD2(a/b=2)" and "S7" in got["source"]
        if want["expected"] == "not_evaluated":
            assert got["reason"].startswith("required structure not contoured")
            continue
        assert got["matched_roi"] == want["roi"]
        assert abs(got["value"] - want["value"]) <= want["tolerance"], got
        assert abs(got["value"] - want["value_grid"]) <= want["tolerance"], got
        assert "EQD2(a/b=2) sum of 4 plan dose(s)" in got["note"]
        assert "exact per-plan sum checked" in got["note"]
        assert "alpha/beta 2 Gy: stated in the protocol's metric" in got["note"]
    _check_lesions(doc, exp)
    # the HTML report shows the summation method and the alpha/beta values
    assert summation in report
    assert "α/β: SpinalCord 2 Gy" in report


def test_tg101_physical_limits_are_not_converted(
    out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = _expected()
    design = exp["protocols"]["tg101"]
    code, doc, report = _run("tg101", out, capsys)
    assert doc["verdict"] == design["expected_verdict"] == "incomplete" and code == 3
    organ = [c for c in doc["constraints"] if c["matched_roi"]]
    assert len(organ) > 20  # every TG-101 row on a structure of the sample
    for c in organ:
        assert c["status"] == design["organ_rows"] == "not_evaluated"
        assert c["reason"].startswith(design["organ_reason"]) and "no silent" in c["reason"]
    missing = sorted(c["id"] for c in doc["constraints"] if c["id"].startswith("table."))
    assert missing == sorted(f"table.{n}fx" for n in design["tables_missing"])
    assert doc["counts"]["pass"] == doc["counts"]["fail"] == 0
    assert doc["plan"]["alpha_beta"] == {}  # nothing was converted
    summation = doc["plan"]["dose_summation"]
    assert summation.startswith(design["organ_reason"])
    assert "each lesion on its own plan" in summation and "not evaluated" in summation
    _check_lesions(doc, exp)
    assert summation in report


_EQD2_ROWS = """\
format: 1
id: eqd2organs
title: Organ EQD2 values of the sample (test only, no clinical limits)
version: "test"
citation: synthetic limits far above any value, to read the composite's values
sources:
  T1: {citation: test fixture}
levels: [limit]
point_max: Max
tables:
  any:
    constraints:
"""


def test_organ_values_on_the_eqd2_composite(tmp_path: Path) -> None:
    # every composite EQD2 value expected.json lists, read through a protocol of limits far
    # above them (the centre-defined EQD2 protocol case of docs/protocols.md)
    exp = _expected()["composite_eqd2"]
    lines = []
    for n, row in enumerate(exp):
        kind = row["metric"].split("[")[0]
        metric = f"{kind}[EQD2Gy(a/b={row['alpha_beta']:g})]"
        lines.append(
            f'      - {{structure: {row["structure"]}, metric: "{metric}", comparator: "<", '
            f"limits: {{limit: 10000}}, source: T1, id: r{n}}}\n"
        )
    path = tmp_path / "eqd2organs.yaml"
    path.write_text(textwrap.dedent(_EQD2_ROWS) + "".join(lines), encoding="utf-8")
    r = check_path(CASE, str(path))
    got = {c.id: c for c in r.constraints}
    for n, row in enumerate(exp):
        c = got[f"r{n}"]
        assert c.status.value == "pass", (row, c.reason)
        assert c.matched_roi == row["roi"]
        assert c.dose_basis == f"EQD2(a/b={row['alpha_beta']:g})"
        assert abs(c.value - row["value"]) <= row["tolerance"], (row, c.value)
        assert abs(c.value - row["value_grid"]) <= row["tolerance"], (row, c.value)
    assert dict(r.plan.alpha_beta) == {row["structure"]: row["alpha_beta"] for row in exp}
    assert "EQD2(a/b=2) and EQD2(a/b=3) sum" in r.plan.dose_summation
