"""End to end: ``sample_dicom`` cases against their independently computed ``expected.json``
(H2's truth: analytic dose and the generator's own trilinear interpolation), and the
``rtcheck check`` command line (exit codes, JSON on stdout, report files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluation_synth import case, cylinder, dose, gaussian, grid, plan, sample, sphere, write_case

from rtcheck.cli import main
from rtcheck.pipeline import check_path
from rtcheck.result import Result, Status

ROOT = Path(__file__).resolve().parents[1]
CASES = ("oligo_single", "oligo_single_clinic", "oligo_multi")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample cases, or freshly generated ones when the folder is not there."""
    shipped = ROOT / "sample_dicom"
    if all((shipped / name / "expected.json").is_file() for name in CASES):
        return shipped
    from rtcheck.sample.build import generate

    out = tmp_path_factory.mktemp("samples")
    generate(out, CASES)
    return out


@pytest.fixture(scope="module")
def results(samples: Path) -> dict[str, Result]:
    return {name: check_path(samples / name, "tg101") for name in CASES}


def _expected(samples: Path, name: str) -> dict:
    return json.loads((samples / name / "expected.json").read_text(encoding="utf-8"))


def _by_row(result: Result) -> dict[tuple[str, str], object]:
    return {(c.structure, c.metric): c for c in result.constraints}


@pytest.mark.parametrize("name", ["oligo_single", "oligo_single_clinic"])
def test_single_plan_samples_meet_their_design(samples: Path, results: dict, name: str) -> None:
    exp = _expected(samples, name)
    r = results[name]
    assert r.verdict.value == exp["expected_verdict"] == "fail"
    got = _by_row(r)
    for row in exp["constraints"]:
        c = got[(row["structure"], row["metric"])]
        assert c.status.value == row["expected"], (row["structure"], row["metric"], c.reason)
        assert c.matched_roi == row["roi"]
        if c.value is not None:
            assert abs(c.value - row["value_grid"]) <= row["tolerance"], row
            assert abs(c.value - row["value"]) <= row["tolerance"], row
    # every other protocol row names a structure the sample lacks: not evaluated, not blocking
    listed = {(row["structure"], row["metric"]) for row in exp["constraints"]}
    for key, c in got.items():
        if key not in listed and not c.id.startswith("table"):
            assert c.status is Status.NOT_EVALUATED and c.reason.startswith("not contoured")


def test_tg263_and_clinic_names_give_the_same_answers(results: dict) -> None:
    a, b = results["oligo_single"], results["oligo_single_clinic"]
    assert a.verdict == b.verdict and a.counts == b.counts
    ra, rb = _by_row(a), _by_row(b)
    assert ra.keys() == rb.keys()
    for key, ca in ra.items():
        cb = rb[key]
        assert (ca.status, ca.level) == (cb.status, cb.level), key
        assert (ca.value is None) == (cb.value is None), key
        if ca.value is not None:
            assert cb.value == pytest.approx(ca.value, rel=1e-9, abs=1e-12), key
    for la, lb in zip(a.lesions, b.lesions, strict=True):
        assert la.prescription_gy == lb.prescription_gy
        for k, v in la.metrics.items():
            assert (v is None) == (lb.metrics[k] is None)
            if v is not None:
                assert lb.metrics[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (la.name, k)


@pytest.mark.parametrize("name", CASES)
def test_lesion_metrics_match_the_expected_values(samples: Path, results: dict, name: str) -> None:
    exp = _expected(samples, name)
    lesions = {les.name: les for les in results[name].lesions}
    assert len(lesions) == len(exp["lesions"])
    plans = {p["key"]: p["label"] for p in exp["plans"]}
    for row in exp["lesions"]:
        les = lesions[row["ptv"]]
        assert les.prescription_gy == row["rx_gy"]
        assert les.prescription_source == "RT Plan dose reference (ROI number)"
        assert les.fractions == row["fractions"] and les.plan_label == plans[row["plan"]]
        assert les.volume_cc == pytest.approx(row["ptv_volume_cc"], abs=0.1)
        for key, m in row["metrics"].items():
            if key in les.metrics:
                assert abs(les.metrics[key] - m["value_grid"]) <= m["tolerance"], (row["ptv"], key)


def test_multi_plan_sample_is_incomplete_with_reasons(results: dict) -> None:
    r = results["oligo_multi"]
    assert r.verdict.value == "incomplete" and r.exit_code == 3
    assert r.plan.fractions is None and "different numbers of fractions" in r.plan.dose_summation
    tables = [c for c in r.constraints if c.id.startswith("table.")]
    assert {c.id for c in tables} == {"table.8fx", "table.30fx"}
    physical = [c for c in r.constraints if not c.id.startswith("table.") and c.matched_roi]
    assert physical and all(c.status is Status.NOT_EVALUATED for c in physical)
    assert all("no silent conversion" in c.reason for c in physical)


def test_lesions_without_a_table_get_their_own_rows(samples: Path) -> None:
    """RTOG 0915 has no 5-fraction table: one blocking row per lesion, tied to that lesion."""
    r = check_path(samples / "oligo_single", "rtog0915")
    ids = [c.id for c in r.all_constraints]
    assert len(ids) == len(set(ids))
    tables = [c for c in r.all_constraints if c.id.startswith("table.5fx")]
    assert {c.lesion for c in tables} == {None} | {les.name for les in r.lesions}
    assert all(c.status is Status.NOT_EVALUATED and "no table for 5" in c.reason for c in tables)
    assert r.verdict.value == "incomplete"


def test_lesions_prescribed_otherwise_than_the_table_are_disclosed(samples: Path) -> None:
    """RTOG 0915's 4-fraction table is written for 48 Gy; the sample's lesions are 35-55 Gy."""
    from rtcheck.pipeline import CheckOptions

    options = CheckOptions(fractions=4, fractions_override=True)
    r = check_path(samples / "oligo_single", "rtog0915", options)
    noted = {f.subject for f in r.findings if f.code == "target.rx_differs_from_table"}
    assert noted == {les.name for les in r.lesions if les.prescription_gy != 48.0}
    assert len(noted) == 5


# ----------------------------------------------------------------------------- CLI
def test_cli_on_a_sample(samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = ["check", str(samples / "oligo_single"), "--protocol", "tg101", "--format", "json"]
    args += ["--report", str(out / "r.html"), "--csv", str(out / "r.csv")]
    args += ["--junit", str(out / "r.xml"), "--json", str(out / "r.json")]
    assert main(args) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["verdict"] == "fail" and doc["counts"]["fail"] == 4
    assert json.loads((out / "r.json").read_text(encoding="utf-8"))["verdict"] == "fail"
    for name in ("r.html", "r.csv", "r.xml"):
        assert (out / name).stat().st_size > 0
    assert "wrote" in captured.err


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small synthetic DICOM cases: one that passes tg101, one without a cord."""
    g = grid((-40.0, -40.0, -40.0), (40.0, 40.0, 40.0), 2.0)
    p = plan("P1", 5, [("PTV1", 50.0, 1)])
    values = sample(g, gaussian((0.0, 0.0, 0.0), 82.4, 15.57))
    ptv = sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 10.0)
    cord = cylinder(2, "SpinalCord", "ORGAN", 0.0, 30.0, 5.0, -30.0, 30.0)
    base = tmp_path_factory.mktemp("cli")
    return {
        "pass": write_case(case([ptv, cord], [dose(g, values, p)], [p]), base / "pass"),
        "nocord": write_case(case([ptv], [dose(g, values, p)], [p]), base / "nocord"),
    }


def test_cli_exit_codes(small: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(small["pass"]), "--protocol", "tg101"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out
    assert main(["check", str(small["nocord"]), "--protocol", "tg101"]) == 3
    assert main(["check", str(small["pass"]), "--protocol", "tg101", "--fractions", "8"]) == 3
    rs, rd = small["pass"] / "RS.dcm", small["pass"] / "RD.0.dcm"
    args = ["check", "--rtstruct", str(rs), "--rtdose", str(rd), "--protocol", "tg101"]
    # explicit files: no RT Plan, so no prescription to check the dose against -> incomplete
    assert main([*args, "--fractions", "5"]) == 3
    assert "dose.unverified" in capsys.readouterr().out
    assert main([*args, "--fractions", "5", "--rx", "PTV1=50"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "nosuchprotocol"], "unknown protocol"),
        (["--protocol", "tg101", "--rx", "PTV9=40"], "not a target"),
        (["--protocol", "tg101", "--rx", "PTV1"], "expected TARGET=GY"),
        (["--protocol", "tg101", "--report", "x.docx"], "report format"),
        (["--protocol", "tg101", "--require", "Kidney"], "no constraint on"),
    ],
)
def test_cli_errors_are_one_line(
    small: dict[str, Path], capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    assert main(["check", str(small["pass"]), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rtcheck: ") and message in err[0]


def test_cli_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(tmp_path / "nothing"), "--protocol", "tg101"]) == 2
    assert capsys.readouterr().err.startswith("rtcheck: error: ")


def test_cli_rx_file_and_names_map(
    small: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rx = tmp_path / "rx.txt"
    rx.write_text("PTV1 = 48  # from the chart\n", encoding="utf-8")
    names = tmp_path / "names.yaml"
    names.write_text("SpinalCord: SpinalCord\nEsophagus: null\n", encoding="utf-8")
    args = ["check", str(small["pass"]), "--protocol", "tg101", "--format", "json"]
    assert main([*args, "--rx-file", str(rx), "--names", str(names)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["plan"]["prescriptions"] == [{"target": "PTV1", "dose_gy": 48.0, "source": "--rx"}]
    cord = [c for c in doc["constraints"] if c["structure"] == "SpinalCord"]
    assert cord and all(c["match"] == "user map" for c in cord)
    eso = [c for c in doc["constraints"] if c["structure"] == "Esophagus"]
    assert all("names map says" in c["reason"] for c in eso)
    assert any(f["code"] == "rx.overridden" for f in doc["findings"])
