"""The versioned JSON Schema of the result JSON, its validator and ``rtcheck schema``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rtcheck.cli import main
from rtcheck.report import write_report
from rtcheck.report.schema import SchemaError, result_schema, validate
from rtcheck.result import RESULT_SCHEMA_VERSION
from tests.report_fixtures import SCENARIOS, fail_result


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fixtures_validate(name: str) -> None:
    doc = json.loads(json.dumps(SCENARIOS[name]().to_dict()))
    validate(doc)


def test_schema_is_versioned() -> None:
    schema = result_schema()
    assert schema["$id"].endswith(RESULT_SCHEMA_VERSION)
    assert schema["properties"]["schema_version"] == {"const": RESULT_SCHEMA_VERSION}
    assert schema["$schema"].endswith("2020-12/schema")


def _doc() -> dict:
    return json.loads(json.dumps(fail_result().to_dict()))


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.pop("verdict"), "missing required key 'verdict'"),
        (lambda d: d.__setitem__("extra", 1), "unexpected key 'extra'"),
        (lambda d: d.__setitem__("verdict", "ok"), "$.verdict"),
        (lambda d: d.__setitem__("schema_version", "0.9"), "$.schema_version"),
        (lambda d: d["constraints"][3].__setitem__("status", "passed"), "$.constraints[3].status"),
        (lambda d: d["constraints"][0].__setitem__("value", "16.5"), "$.constraints[0].value"),
        (lambda d: d["constraints"][0]["limits"]["mandatory"].__setitem__("comparator", "=<"),
         "$.constraints[0].limits.mandatory.comparator"),
        (lambda d: d["lesions"][0]["metrics"].__setitem__("GI", True), "$.lesions[0].metrics.GI"),
        (lambda d: d["plan"].__setitem__("fractions", 0), "$.plan.fractions"),
        (lambda d: d["inputs"][0].__setitem__("sha256", "abc"), "$.inputs[0].sha256"),
        (lambda d: d["findings"][0].__setitem__("severity", "fatal"), "$.findings[0].severity"),
        (lambda d: d["dvhs"][0]["dose_gy"].append(None), "$.dvhs[0].dose_gy["),
    ],
)  # fmt: skip
def test_validator_catches_contract_breaks(mutate, where: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(SchemaError) as info:
        validate(doc)
    assert any(where in p for p in info.value.problems), info.value.problems


def test_validator_accepts_nulls_where_allowed() -> None:
    doc = _doc()
    ne = next(c for c in doc["constraints"] if c["status"] == "not_evaluated")
    assert ne["value"] is None and ne["margin"] is None
    doc2 = copy.deepcopy(doc)
    doc2["plan"]["fractions"] = None
    doc2["inputs"][0]["sha256"] = None
    validate(doc2)


def test_cli_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == result_schema()


def test_cli_schema_validates_a_written_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "r.json"
    write_report(fail_result(), good)
    assert main(["schema", "--validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    doc = json.loads(good.read_text(encoding="utf-8"))
    doc["constraints"][0]["status"] = "ok"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["schema", "--validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rtcheck: error: ") and str(bad) in err
    assert "$.constraints[0].status" in err and "\n" not in err
    notjson = tmp_path / "x.json"
    notjson.write_text("{", encoding="utf-8")
    assert main(["schema", "--validate", str(notjson)]) == 2
