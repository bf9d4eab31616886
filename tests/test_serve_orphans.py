"""``rtcheck serve``: a received file that belongs to no case is not left in the log only.

A pynetdicom SCU sends real files (``tests/safety_cases.py``) on loopback. An RT Dose that links
to no case (its plan never sent, another frame of reference) may be another lesion's dose:
with one case in the study it is an ERROR finding of that case (``incomplete``); with several
it is an ``error`` entry in the database and the summaries, as in ``rtcheck batch``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rtcheck.db import ResultsDB
from rtcheck.io.write import uid_from
from rtcheck.serve import Receiver, ServeOptions
from tests.safety_cases import OTHER_FRAME, CaseFiles, CaseSpec, write_case
from tests.test_safety_orphans import _lesion2_dose
from tests.test_serve import _send

pytestmark = pytest.mark.timeout(240)


def _files(case: CaseFiles) -> list[Path]:
    assert case.rtplan is not None
    return [case.rtstruct, case.rtplan, case.rtdose]


def _receive(out: Path, paths: list[Path], n_records: int) -> list:  # type: ignore[type-arg]
    opts = ServeOptions(port=0, quiet_seconds=2.0, poll_seconds=0.1, formats=("json",))
    with Receiver("tg101", out, opts) as receiver:
        assert _send(receiver.port, paths) == [0] * len(paths)
        records = receiver.wait_for(n_records, timeout=180)
    return records


def test_orphan_dose_blocks_the_study_case(tmp_path: Path) -> None:
    case = write_case(CaseSpec(), tmp_path / "src", tag="one")
    orphan = _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=OTHER_FRAME, plan_uid=uid_from("x"))
    out = tmp_path / "out"
    records = _receive(out, [orphan, *_files(case)], 1)  # the orphan first: never checked without
    assert [(r.patient_id, r.verdict) for r in records] == [("SAFETY-1", "incomplete")]
    with ResultsDB.open(out / "results.sqlite") as db:
        assert db.count("cases") == 1
        stored = db.case_result(1)
    assert stored is not None
    [f] = [f for f in stored["findings"] if f["severity"] == "error"]
    assert f["code"] == "link.unlinked" and f["source"].startswith(str(out / "store"))
    assert json.loads((out / "summary.json").read_text())["totals"]["incomplete"] == 1


def test_orphan_dose_beside_two_cases_is_an_error_entry(tmp_path: Path) -> None:
    one = write_case(CaseSpec(), tmp_path / "src" / "a", tag="a")
    two = write_case(CaseSpec(), tmp_path / "src" / "b", tag="b")
    orphan = _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=OTHER_FRAME, plan_uid=uid_from("x"))
    out = tmp_path / "out"
    records = _receive(out, [orphan, *_files(one), *_files(two)], 3)
    assert sorted(r.verdict for r in records) == ["error", "pass", "pass"]
    [row] = [r for r in records if r.verdict == "error"]
    assert row.key.startswith("file:") and row.key.endswith(".dcm")
    assert "RT Dose references plan" in (row.error or "")
    with ResultsDB.open(out / "results.sqlite") as db:
        assert db.count("cases") == 3
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["verdict"] for r in rows) == ["error", "pass", "pass"]
