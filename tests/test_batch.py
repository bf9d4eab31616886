"""``rtcheck batch`` end to end with the real pipeline, and its command-line errors.

Cases are tiny synthetic plans (``tests/dicom_factory.py``): a 12 x 12 mm spinal cord on seven
planes (2.02 cc) in a uniform dose. A uniform dose makes the truth analytic: every dose
metric of the cord equals the dose, so tg101's cord limits (5 fractions: Max < 30 Gy) pass at
10 Gy and fail at 40 Gy; a plan without a cord is incomplete (SpinalCord is required).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import contour_item, make_dose, make_plan, make_structures, square, uid

from rtcheck.batch import BatchOptions, run_batch
from rtcheck.cli import main
from rtcheck.db import ResultsDB

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(300)

CORD_Z = (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)


def make_tiny_case(folder: Path, patient: str, dose_gy: float, roi: str = "SpinalCord") -> None:
    """Structures, a 5-fraction plan and a uniform dose, nested in series folders."""
    study, frame = f"study-{patient}", f"FOR-{patient}"
    cord = [contour_item(square(0.0, 0.0, 6.0, z)) for z in CORD_Z]
    make_structures(
        folder / "RTSTRUCT" / "rs.dcm",
        [(1, roi, "ORGAN", cord)],
        patient=patient,
        study=study,
        frame=frame,
        name=patient,
    )
    make_plan(
        folder / "RTPLAN" / "rp.dcm",
        label="SBRT",
        prescriptions=(("PTV", dose_gy, None),),  # a plausible plan delivers its prescription
        patient=patient,
        study=study,
        struct_uid=uid(f"ss-{patient}"),
        frame=frame,
        name=patient,
    )
    make_dose(
        folder / "RTDOSE" / "rd.dcm",
        np.full((10, 12, 12), dose_gy),
        ipp=(-11.0, -11.0, -9.0),
        patient=patient,
        study=study,
        frame=frame,
        plan_uid=uid(f"plan-{patient}"),
        name=patient,
    )


def make_tree(root: Path) -> Path:
    """Good, failing, incomplete and malformed cases plus a junk file, mixed layouts."""
    make_tiny_case(root / "T1" / "study", "T1", 10.0)
    make_tiny_case(root / "T2", "T2", 40.0)
    make_tiny_case(root / "T3" / "a" / "b", "T3", 10.0, roi="Liver")
    make_tiny_case(root / "T4", "T4", 10.0)
    dose = root / "T4" / "RTDOSE" / "rd.dcm"
    dose.write_bytes(dose.read_bytes()[:-200])  # truncated inside the pixel data
    (root / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    (root / "notes.txt").write_text("not DICOM, ignored")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("batch") / "in")


def _opts(**kw: object) -> BatchOptions:
    base: dict[str, object] = {"jobs": 1, "formats": ("json",), "progress": False}
    base.update(kw)
    return BatchOptions(**base)  # type: ignore[arg-type]


def _summary(out: Path) -> list[dict[str, str]]:
    with open(out / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_batch_cli_records_every_case(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["batch", str(tree), "-p", "tg101", "-o", str(out), "-j", "1"]
    assert main([*args, "--report-formats", "html,json"]) == 2
    captured = capsys.readouterr()
    assert "5 cases: 1 pass, 1 fail, 1 incomplete, 2 error" in captured.out
    assert captured.err.count("rtcheck: case error:") == 2
    rows = {r["patient_id"] or r["label"]: r for r in _summary(out)}
    assert {k: r["verdict"] for k, r in rows.items()} == {
        "T1": "pass",
        "T2": "fail",
        "T3": "incomplete",
        "T4": "error",
        "junk.dcm": "error",
    }
    assert "truncated" in rows["T4"]["error"] and "\n" not in rows["T4"]["error"]
    assert rows["T1"]["report"].endswith("report.html")
    index = (out / "index.html").read_text()
    for row in rows.values():
        if row["report"]:
            assert f'href="{row["report"]}"' in index
            assert (out / row["report"]).is_file()
    t2 = json.loads((out / rows["T2"]["report"]).with_name("report.json").read_text())
    cord_max = next(c for c in t2["constraints"] if c["id"].startswith("SpinalCord.Max"))
    assert cord_max["status"] == "fail" and cord_max["value"] == pytest.approx(40.0, abs=1e-3)


def test_database_contents_after_batch(tree: Path, tmp_path: Path) -> None:
    report = run_batch(tree, "tg101", tmp_path / "out", _opts())
    with ResultsDB.open(tmp_path / "out" / "results.sqlite") as db:
        [run] = db.runs()
        assert (run["status"], run["exit_code"], run["n_cases"]) == ("complete", 2, 5)
        assert (run["n_pass"], run["n_fail"], run["n_incomplete"], run["n_error"]) == (1, 1, 1, 2)
        assert db.count("cases") == 5 and db.count("run_cases") == 5
        stored = [db.case_result(i) for i in range(1, 6)]
        results = [s for s in stored if s is not None]
        n_constraints = sum(
            len(r["constraints"]) + sum(len(les["constraints"]) for les in r["lesions"])
            for r in results
        )
        assert len(results) == 3 and db.count("constraint_results") == n_constraints
        assert db.count("findings") == sum(
            len(r["findings"]) + sum(len(les["findings"]) for les in r["lesions"]) for r in results
        )
        from sqlalchemy import text

        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.patient_id, r.value, r.status FROM constraint_results r "
                    "JOIN cases c ON c.id = r.case_id "
                    "WHERE r.constraint_id LIKE 'SpinalCord.Max%' ORDER BY c.patient_id"
                )
            ).all()
    assert [(p, s) for p, _, s in rows] == [
        ("T1", "pass"),
        ("T2", "fail"),
        ("T3", "not_evaluated"),
    ]
    assert rows[0][1] == pytest.approx(10.0, abs=1e-3)
    assert rows[1][1] == pytest.approx(40.0, abs=1e-3)
    assert report.exit_code == 2


def test_jobs_1_and_2_identical_and_resume(tree: Path, tmp_path: Path) -> None:
    one = run_batch(tree, "tg101", tmp_path / "j1", _opts(jobs=1))
    two = run_batch(tree, "tg101", tmp_path / "j2", _opts(jobs=2))
    for name in ("summary.csv", "summary.json", "index.html"):
        assert (tmp_path / "j1" / name).read_bytes() == (tmp_path / "j2" / name).read_bytes()
    for rec in one.records:
        for rel in rec.reports:
            a = json.loads((tmp_path / "j1" / rel).read_text())
            b = json.loads((tmp_path / "j2" / rel).read_text())
            assert a.pop("created") and b.pop("created")
            assert a == b
    assert two.reused == ()

    # interrupted run: the callback raises after two recorded cases (like a crash)
    class Crash(Exception):
        pass

    seen: list[str] = []

    def crash_after_two(record: object, reused: bool) -> None:
        seen.append(record.key)  # type: ignore[attr-defined]
        if len(seen) == 2:
            raise Crash

    out = tmp_path / "resumed"
    with pytest.raises(Crash):
        run_batch(tree, "tg101", out, _opts(jobs=2), on_record=crash_after_two)
    again = run_batch(tree, "tg101", out, _opts(jobs=1))
    assert sorted(again.reused) == sorted(seen)
    assert len(again.records) == 5
    for name in ("summary.csv", "summary.json", "index.html"):
        assert (out / name).read_bytes() == (tmp_path / "j1" / name).read_bytes()
    third = run_batch(tree, "tg101", out, _opts(jobs=1))
    assert len(third.reused) == 5  # everything unchanged, nothing recomputed
    with ResultsDB.open(out / "results.sqlite") as db:
        assert [r["status"] for r in db.runs()] == ["failed", "complete", "complete"]
        assert db.count("cases") == 5


def test_a_reused_evaluation_comes_with_its_own_reports(tree: Path, tmp_path: Path) -> None:
    """tg101, then rtog0813, then tg101 again into one results folder: the third run may reuse
    the first evaluation only if the reports on disk are still the first run's (they are the
    second's), so it recomputes; never a tg101 verdict beside an rtog0813 report."""
    small = tmp_path / "in"
    shutil.copytree(tree / "T2", small / "T2")
    out = tmp_path / "out"
    for protocol in ("tg101", "rtog0813", "tg101"):
        report = run_batch(small, protocol, out, _opts())
    assert report.reused == ()
    (rec,) = report.records
    shown = json.loads((out / rec.reports[0]).read_text())
    assert shown["protocol"]["id"] == "tg101" and shown["verdict"] == rec.verdict
    again = run_batch(small, "tg101", out, _opts())  # now the reports match: reused
    assert len(again.reused) == 1


def test_a_misfiled_file_does_not_take_another_case_s_leftovers(tmp_path: Path) -> None:
    """X's dose lies in Y's folder, so X's case folder widens to the root, which also holds
    Y's orphan dose (its plan never exported). The orphan belongs to Y, the innermost case
    folder holding it: Y is incomplete, as ``rtcheck check`` of Y's folder says."""
    root = tmp_path / "in"
    make_tiny_case(root / "X", "PX", 10.0)  # 10 Gy: passes TG-101 5 fx
    make_tiny_case(root / "Y", "PY", 10.0)
    shutil.move(str(root / "X" / "RTDOSE" / "rd.dcm"), root / "Y" / "rd_of_x.dcm")
    make_dose(
        root / "Y" / "RTDOSE" / "rd_other_plan.dcm",
        np.full((10, 12, 12), 10.0),
        ipp=(-11.0, -11.0, -9.0),
        patient="PY",
        study="another-study-PY",  # another study and frame: linked to no case of PY
        frame="FOR-OTHER",
        plan_uid=uid("plan-never-exported"),
        name="PY-other",
    )
    report = run_batch(root, "tg101", tmp_path / "out", _opts())
    verdicts = {r.patient_id: r.verdict for r in report.records}
    assert verdicts == {"PX": "pass", "PY": "incomplete"}


_CORD_ONLY = """\
format: 1
id: cordonly
title: cord only (test)
version: "1"
citation: test fixture
sources:
  S1: {citation: test fixture}
levels: [limit]
point_max: Max
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: LIMIT},
         source: S1}
"""


def test_history_counts_the_evaluation_a_rerun_reused(tree: Path, tmp_path: Path) -> None:
    """The protocol file changes (limit 5 Gy: fail; 100 Gy: pass) and back: the third run
    reuses the first evaluation (no reports to go stale), so history counts a failure."""
    from rtcheck.db import HistoryQuery, constraint_rates

    small = tmp_path / "in"
    shutil.copytree(tree / "T2", small / "T2")
    proto, out = tmp_path / "cordonly.yaml", tmp_path / "out"
    verdicts = []
    for limit in (5, 100, 5):
        proto.write_text(_CORD_ONLY.replace("LIMIT", str(limit)), encoding="utf-8")
        report = run_batch(small, str(proto), out, _opts(formats=()))
        verdicts.append((report.records[0].verdict, len(report.reused)))
    assert verdicts == [("fail", 0), ("pass", 0), ("fail", 1)]
    with ResultsDB.open(out / "results.sqlite") as db:
        (row,) = constraint_rates(db, HistoryQuery(period="all"))
    assert (row["pass"], row["fail"]) == (0, 1)


def test_changed_protocol_or_options_recompute(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    small = tmp_path / "small"
    shutil.copytree(tree / "T1", small / "T1")
    run_batch(small, "tg101", out, _opts())
    from rtcheck.pipeline import CheckOptions

    changed = run_batch(small, "tg101", out, _opts(check=CheckOptions(fractions=3)))
    assert changed.reused == ()
    protocol = tmp_path / "tg101.yaml"
    text = (Path(__file__).resolve().parents[1] / "constraints" / "tg101.yaml").read_text()
    protocol.write_text(text + "\n# a local copy\n")
    copied = run_batch(small, str(protocol), out, _opts(check=CheckOptions(fractions=3)))
    assert copied.reused == ()  # same id and version, different file hash
    assert (
        len(run_batch(small, str(protocol), out, _opts(check=CheckOptions(fractions=3))).reused)
        == 1
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--report-formats", "html,bogus"], "unknown report format"),
        (["--report-formats", "none,json"], "'none' cannot be combined"),
        (["--scheduler", "127.0.0.1:8786"], "needs a protocol"),
        (["--protocol", "no-such-protocol"], "unknown protocol"),
        (["--db", "/no/such/folder/r.sqlite"], "does not exist"),
        (["--fractions-override"], "--fractions-override needs --fractions"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.dcm").write_bytes(b"not dicom")
    args = ["batch", str(tmp_path / "in"), "--protocol", "tg101", "--out", str(tmp_path / "o")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("rtcheck: ")


def test_missing_root_and_empty_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["batch", str(tmp_path / "nope"), "-p", "tg101", "-o", str(tmp_path / "o")]
    assert main(args) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "-p", "tg101", "-o", str(tmp_path / "o")]) == 2
    assert "no RT cases found" in capsys.readouterr().err


def test_a_dose_truncated_before_its_links_is_reported_as_truncated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cut inside the header, an RT Dose also loses its plan reference: the cause comes first."""
    source = ROOT / "sample_dicom" / "oligo_single" / "RD.oligo.dcm"
    (tmp_path / "in" / "t").mkdir(parents=True)
    (tmp_path / "in" / "t" / "RD.dcm").write_bytes(source.read_bytes()[:1500])
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "in"), "-p", "tg101", "-o", str(out)]) == 2
    (row,) = _summary(out)
    assert row["verdict"] == "error"
    assert row["error"].startswith("t/RD.dcm: RTDOSE: file is truncated")
    assert "names no plan" in row["error"]  # what the partial read showed, second
    capsys.readouterr()


@pytest.mark.parametrize("command", ["batch", "serve"])
def test_unwritable_results_folder_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A results folder under a file, or in a read-only folder: refused before any work."""
    (tmp_path / "in").mkdir()
    (tmp_path / "file").write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    outs = [(tmp_path / "file" / "out", "is not a folder")]
    if os.geteuid() != 0:  # root writes into any folder whatever its permission bits
        outs.append((ro / "out", "results folder cannot be written"))
    try:
        for out, message in outs:
            args = [command, *(["--port", "0"] if command == "serve" else [str(tmp_path / "in")])]
            assert main([*args, "-p", "tg101", "--out", str(out)]) == 2
            err = capsys.readouterr().err
            assert message in err and str(out) in err and err.count("\n") == 1
            assert not out.exists()
    finally:
        ro.chmod(0o700)


def test_cli_check_options_reach_every_case(tree: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    shutil.copytree(tree / "T2", small / "T2")
    out = tmp_path / "out"
    args = ["batch", str(small), "-p", "tg101", "-o", str(out), "-j", "1"]
    assert main([*args, "--fractions", "3", "--report-formats", "none", "--no-progress"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["fractions"] == 3 and summary["formats"] == []
    with ResultsDB.open(out / "results.sqlite") as db:
        stored = db.case_result(1)
    assert stored is not None and stored["plan"]["fractions"] == 3
    assert all(c["id"].endswith(".3fx") for c in stored["constraints"] if "fx" in c["id"])


def _case_report(out: Path) -> dict:
    (row,) = _summary(out)
    return json.loads((out / row["report"]).read_text())


def test_cli_fractions_override_reaches_every_case(tmp_path: Path) -> None:
    """The plan says 5 fx; the uniform 10 Gy cord passes the 3 fx limits (Max < 21.9 Gy,
    D0.35cc < 18 Gy, D1.2cc < 12.3 Gy). ``--fractions 3`` disagrees with the plan: incomplete
    for that reason alone; confirmed with ``--fractions-override`` the case passes. The
    confirmed run reuses nothing: the option is part of the fingerprint."""
    root = tmp_path / "in"
    make_tiny_case(root / "T1", "T1", 10.0)
    out = tmp_path / "out"
    args = ["batch", str(root), "-p", "tg101", "-o", str(out), "-j", "1", "--fractions", "3"]
    args += ["--report-formats", "json", "--no-progress"]
    assert main(args) == 3
    asked = _case_report(out)
    assert asked["verdict"] == "incomplete" and asked["plan"]["fractions"] == 3
    errors = [f for f in asked["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in errors] == ["fractions.overridden"]
    assert "--fractions-override" in errors[0]["message"]
    cord = [c for c in asked["constraints"] if c["id"].startswith("SpinalCord.")]
    assert cord and all(c["id"].endswith(".3fx") and c["status"] == "pass" for c in cord)
    assert all(c["value"] == pytest.approx(10.0, abs=1e-3) for c in cord)

    assert main([*args, "--fractions-override"]) == 0
    confirmed = _case_report(out)
    assert confirmed["verdict"] == "pass"
    assert not [f for f in confirmed["findings"] if f["severity"] == "error"]
    (w,) = [f for f in confirmed["findings"] if f["code"] == "fractions.overridden"]
    assert w["severity"] == "warning"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["fractions_override"] is True
