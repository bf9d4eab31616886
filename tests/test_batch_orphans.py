"""``rtcheck batch``: a file that may be part of a case but could not be used blocks that case.

An unreadable DICOM file, or an RT object linked to no case, inside the folder of exactly one
case is an ERROR finding of that case (verdict ``incomplete``), not a separate error row beside
a PASS. Elsewhere (the batch root, a folder shared by several cases) it stays an error row.
Cases are the safety base case (``tests/safety_cases.py``), which passes TG-101 on its own.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from rtcheck.batch import BatchOptions, run_batch
from rtcheck.io.write import uid_from
from rtcheck.model import Patient
from tests.safety_cases import OTHER_FRAME, CaseSpec, write_case
from tests.test_safety_orphans import _lesion2_dose

pytestmark = pytest.mark.timeout(600)

P1 = Patient("ORPH-1", "Orphan^One")
P2 = Patient("ORPH-2", "Orphan^Two")


def _garble(src: Path, dest: Path) -> Path:
    """A copy of a DICOM file whose header is overwritten: DICM kept, unreadable."""
    data = bytearray(src.read_bytes())
    data[140:400] = b"\xff" * 260
    dest.write_bytes(bytes(data))
    return dest


def _tree(root: Path) -> Path:
    """Two passing cases; orphans inside case 1's folder, at the root, and nowhere else."""
    one = write_case(CaseSpec(patient=P1), root / "p1" / "study", tag="p1")
    write_case(CaseSpec(patient=P2), root / "p2", tag="p2")
    dose_folder = root / "p1" / "study" / "lesion2"
    dose_folder.mkdir()
    _garble(one.rtdose, dose_folder / "RD.lesion2.dcm")
    _garble(one.rtdose, root / "stray.dcm")
    return root


def _opts(**kw: object) -> BatchOptions:
    base: dict[str, object] = {"jobs": 1, "formats": ("json",), "progress": False}
    base.update(kw)
    return BatchOptions(**base)  # type: ignore[arg-type]


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as fh:
        return {r["patient_id"] or r["label"]: r for r in csv.DictReader(fh)}


def _report(out: Path, row: dict[str, str]) -> dict:
    return json.loads((out / row["report"]).read_text())


def test_unreadable_file_in_a_case_folder_blocks_that_case(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    report = run_batch(root, "tg101", out, _opts())
    rows = _rows(out)
    assert {k: r["verdict"] for k, r in rows.items()} == {
        "ORPH-1": "incomplete",  # the unreadable file lies in its folder
        "ORPH-2": "pass",
        "stray.dcm": "error",  # at the root: belongs to no case's folder
    }
    assert report.exit_code == 2
    errors = [f for f in _report(out, rows["ORPH-1"])["findings"] if f["severity"] == "error"]
    assert [(f["code"], Path(f["source"]).name) for f in errors] == [
        ("file.unreadable", "RD.lesion2.dcm")
    ]
    assert "could not be read" in errors[0]["message"]
    assert not [k for k in rows if "RD.lesion2" in k]  # no separate row for it
    assert int(rows["ORPH-1"]["n_inputs"]) == 4  # RS, RP, RD + the attached file


def test_unlinked_dose_in_a_case_folder_blocks_that_case(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write_case(CaseSpec(patient=P1), root / "p1", tag="p1")
    write_case(CaseSpec(patient=P2), root / "p2", tag="p2")
    _lesion2_dose(root / "p1", "RD.lesion2.dcm", frame=OTHER_FRAME, plan_uid=uid_from("gone"))
    out = tmp_path / "out"
    report = run_batch(root, "tg101", out, _opts())
    rows = _rows(out)
    assert {k: r["verdict"] for k, r in rows.items()} == {"ORPH-1": "incomplete", "ORPH-2": "pass"}
    assert report.exit_code == 3
    f = next(f for f in _report(out, rows["ORPH-1"])["findings"] if f["code"] == "link.unlinked")
    assert f["severity"] == "error" and f["source"].endswith("RD.lesion2.dcm")


def test_orphan_in_nested_case_folders_goes_to_the_innermost_case(tmp_path: Path) -> None:
    """Case 2 lies inside case 1's folder: a file in case 2's folder is in both, and belongs
    to case 2 (the innermost), which cannot pass with it (it may be case 2's dose)."""
    root = tmp_path / "in"
    write_case(CaseSpec(patient=P1), root / "p1", tag="p1")
    two = write_case(CaseSpec(patient=P2), root / "p1" / "p2", tag="p2")
    _garble(two.rtdose, root / "p1" / "p2" / "RD.x.dcm")
    out = tmp_path / "out"
    run_batch(root, "tg101", out, _opts())
    rows = _rows(out)
    assert {k: r["verdict"] for k, r in rows.items()} == {"ORPH-1": "pass", "ORPH-2": "incomplete"}


def test_jobs_1_and_2_identical_then_resume_and_fix(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in")
    one, two = tmp_path / "one", tmp_path / "two"
    run_batch(root, "tg101", one, _opts(jobs=1))
    run_batch(root, "tg101", two, _opts(jobs=2))
    for name in ("summary.csv", "summary.json", "index.html"):
        a = (one / name).read_bytes().replace(str(one).encode(), b"OUT")
        b = (two / name).read_bytes().replace(str(two).encode(), b"OUT")
        assert a == b, name
    again = run_batch(root, "tg101", one, _opts())
    assert len(again.reused) == 3  # the fingerprint with the attached file is stable
    (root / "p1" / "study" / "lesion2" / "RD.lesion2.dcm").unlink()
    fixed = run_batch(root, "tg101", one, _opts())
    assert {r.patient_id or r.label: r.verdict for r in fixed.records} == {
        "ORPH-1": "pass",
        "ORPH-2": "pass",
        "stray.dcm": "error",
    }
    assert sorted(fixed.reused) == sorted(r.key for r in fixed.records if r.patient_id != "ORPH-1")


def test_named_pipe_in_a_case_folder_is_a_warning_of_that_case(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write_case(CaseSpec(patient=P1), root / "p1", tag="p1")
    os.mkfifo(root / "p1" / "RD.pipe.dcm")  # opening or hashing it would block the batch
    out = tmp_path / "out"
    report = run_batch(root, "tg101", out, _opts())
    rows = _rows(out)
    assert {k: r["verdict"] for k, r in rows.items()} == {"ORPH-1": "pass"}
    assert report.exit_code == 0
    special = [f for f in _report(out, rows["ORPH-1"])["findings"] if f["code"] == "file.special"]
    assert [(f["severity"], Path(f["source"]).name) for f in special] == [
        ("warning", "RD.pipe.dcm")
    ]


def test_non_dicom_dcm_outside_every_case_is_an_error_row(tmp_path: Path) -> None:
    """README audit: a `.dcm` at the batch root that is not DICOM (an interrupted export) was
    only listed under discovery findings, and the batch exit code said pass. Inside a case's
    folder the same file blocks that case; outside every case it must be an error row."""
    root = tmp_path / "in"
    write_case(CaseSpec(patient=P1), root / "p1", tag="p1")
    (root / "RD.interrupted.dcm").write_bytes(b"partial export, not DICOM")
    out = tmp_path / "out"
    report = run_batch(root, "tg101", out, _opts())
    rows = _rows(out)
    assert {k: r["verdict"] for k, r in rows.items()} == {
        "ORPH-1": "pass",
        "RD.interrupted.dcm": "error",
    }
    assert report.exit_code == 2
