"""Batch machinery with a stand-in checker: discovery -> jobs, resume, isolation, DB, summaries.

The stand-in (:func:`standin_check`) replaces only the dose evaluation: cases are real DICOM
files (``tests/dicom_factory.py``) loaded by the real readers; the verdict comes from the plan
label so the batch bookkeeping can be checked exactly. End-to-end runs with the real pipeline
are in ``test_batch.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import contour_item, make_dose, make_plan, make_structures, square, uid

from rtcheck.batch import BatchOptions, run_batch
from rtcheck.db import ResultsDB
from rtcheck.errors import InputError
from rtcheck.model import Case
from rtcheck.result import (
    ConstraintResult,
    Limit,
    PlanInfo,
    ProtocolInfo,
    Result,
    Status,
    Verdict,
)

CHECKER = "test_batch_machinery:standin_check"
pytestmark = pytest.mark.timeout(120)


def standin_check(case: Case, protocol: object, options: object) -> Result:
    """Verdict from the plan label: PASS, FAIL, INCOMPLETE; CRASH raises a bug."""
    label = case.plans[0].label if case.plans else "PASS"
    if label == "CRASH":
        raise ZeroDivisionError("stand-in bug")
    status = {"PASS": Status.PASS, "FAIL": Status.FAIL}.get(label, Status.NOT_EVALUATED)
    verdict = {"PASS": Verdict.PASS, "FAIL": Verdict.FAIL}.get(label, Verdict.INCOMPLETE)
    constraint = ConstraintResult(
        id="SpinalCord.Max",
        structure="SpinalCord",
        matched_roi="Cord",
        match="exact",
        metric="Max[Gy]",
        value=None if status is Status.NOT_EVALUATED else 10.0,
        unit="Gy",
        limits=(Limit("mandatory", "<", 30.0, "Gy"),),
        status=status,
        reason="stand-in" if status is Status.NOT_EVALUATED else None,
    )
    return Result(
        verdict=verdict,
        protocol=ProtocolInfo(getattr(protocol, "id", "?"), "t", "v", "c"),
        plan=PlanInfo(case.patient.id, None, (label,), 5, "RT Plan"),
        constraints=(constraint,),
        rtcheck_version="test",
        created="2000-01-01T00:00:00Z",
    )


def make_case(folder: Path, patient: str, label: str) -> None:
    """A tiny linked case: structures (cord), plan and dose, nested in series folders."""
    name = f"{patient}-{label}"
    frame = f"FOR-{name}"
    ss = make_structures(
        folder / "RTSTRUCT" / "rs.dcm",
        [(1, "Cord", "ORGAN", [contour_item(square(0, 0, 2, z)) for z in (0.0, 2.0)])],
        patient=patient,
        study=f"study-{name}",
        frame=frame,
        name=name,
    )
    del ss
    make_plan(
        folder / "RTPLAN" / "rp.dcm",
        label=label,
        patient=patient,
        study=f"study-{name}",
        struct_uid=uid(f"ss-{name}"),
        frame=frame,
        name=name,
    )
    make_dose(
        folder / "RTDOSE" / "rd.dcm",
        np.full((3, 6, 6), 1.0),
        ipp=(-5.0, -5.0, -2.0),
        patient=patient,
        study=f"study-{name}",
        frame=frame,
        plan_uid=uid(f"plan-{name}"),
        name=name,
    )


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    make_case(root / "P01" / "a", "P01", "PASS")
    make_case(root / "P02" / "a", "P02", "FAIL")
    make_case(root / "P03" / "a", "P03", "INCOMPLETE")
    make_case(root / "P04" / "a", "P04", "PASS")
    bad = root / "P05" / "junk.dcm"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    return root


def _opts(**kw: object) -> BatchOptions:
    base = {"jobs": 1, "formats": ("json",), "checker": CHECKER, "progress": False}
    base.update(kw)
    return BatchOptions(**base)  # type: ignore[arg-type]


def _verdicts(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r.label: r.verdict for r in report.records}


def test_all_cases_recorded_and_exit_code(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_batch(tree, "tg101", out, _opts())
    labels = _verdicts(report)
    assert sorted(labels.values()) == ["error", "fail", "incomplete", "pass", "pass"]
    assert report.exit_code == 2
    err = next(r for r in report.records if r.verdict == "error")
    assert "junk.dcm" in (err.error or "") and "\n" not in (err.error or "")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"] == {"cases": 5, "pass": 2, "fail": 1, "incomplete": 1, "error": 1}
    assert summary["exit_code"] == 2
    for rec in report.records:
        for rel in rec.reports:
            assert (out / rel).is_file()
    # without the junk file: worst is FAIL -> 1; without the fail: INCOMPLETE -> 3
    shutil.rmtree(tree / "P05")
    assert run_batch(tree, "tg101", tmp_path / "o2", _opts()).exit_code == 1
    shutil.rmtree(tree / "P02")
    assert run_batch(tree, "tg101", tmp_path / "o3", _opts()).exit_code == 3
    shutil.rmtree(tree / "P03")
    assert run_batch(tree, "tg101", tmp_path / "o4", _opts()).exit_code == 0


def test_bug_in_one_case_is_isolated(tree: Path, tmp_path: Path) -> None:
    make_case(tree / "P06", "P06", "CRASH")
    report = run_batch(tree, "tg101", tmp_path / "out", _opts())
    crash = next(r for r in report.records if r.patient_id == "P06")
    assert crash.verdict == "error" and crash.error_kind == "internal"
    assert "ZeroDivisionError" in (crash.error or "")
    assert len(report.records) == 6
    with ResultsDB.open(tmp_path / "out" / "results.sqlite") as db:
        # internal errors are retried on the next run, input errors and verdicts reused
        again = run_batch(tree, "tg101", tmp_path / "out", _opts())
        assert sorted(again.reused) == sorted(
            r.key for r in report.records if r.patient_id != "P06"
        )
        assert db.count("runs") == 2


class _Stop(Exception):
    pass


def test_resume_after_interruption(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen: list[str] = []

    def crash_after_two(record, reused):  # type: ignore[no-untyped-def]
        seen.append(record.key)
        if len(seen) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        run_batch(tree, "tg101", out, _opts(), on_record=crash_after_two)
    with ResultsDB.open(out / "results.sqlite") as db:
        assert db.runs()[0]["status"] == "failed"
        assert db.count("cases") == 2
    report = run_batch(tree, "tg101", out, _opts())
    assert sorted(report.reused) == sorted(seen)
    assert len(report.records) == 5
    run_batch(tree, "tg101", tmp_path / "fresh", _opts())
    for name in ("summary.csv", "summary.json", "index.html"):
        a = (out / name).read_text().replace(str(out), "OUT")
        b = (tmp_path / "fresh" / name).read_text().replace(str(tmp_path / "fresh"), "OUT")
        assert a == b, name
    # a changed input is recomputed; the rest is reused
    make_dose(
        tree / "P01" / "a" / "RTDOSE" / "rd.dcm",
        np.full((3, 6, 6), 2.0),
        ipp=(-5.0, -5.0, -2.0),
        patient="P01",
        study="study-P01-PASS",
        frame="FOR-P01-PASS",
        plan_uid=uid("plan-P01-PASS"),
        name="P01-PASS",
    )
    third = run_batch(tree, "tg101", out, _opts())
    recomputed = {r.key for r in third.records} - set(third.reused)
    assert [r.patient_id for r in third.records if r.key in recomputed] == ["P01"]


def test_no_cases_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no RT cases"):
        run_batch(tmp_path / "empty", "tg101", tmp_path / "out", _opts())
