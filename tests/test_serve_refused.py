"""``rtcheck serve``: a dataset refused with status 0xC210 is never silent.

A pynetdicom SCU sends real files (``tests/safety_cases.py``) on loopback; damaged copies are
sent byte for byte (pynetdicom's chunked sending), so the receiver gets exactly the damaged
bytes. A refused RT Dose whose RT Plan was never sent may be another lesion's dose: the case of
its study must not pass. A refusal whose study cannot be read is an ``error`` entry.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pynetdicom
import pytest

from rtcheck.db import ResultsDB
from rtcheck.errors import InputError
from rtcheck.io.dicom import sniff
from rtcheck.io.salvage import salvage_study_uid
from rtcheck.io.write import uid_from
from rtcheck.serve import Receiver, ServeOptions
from tests.safety_cases import STUDY, CaseFiles, CaseSpec, write_case
from tests.test_safety_orphans import _lesion2_dose
from tests.test_serve import _associate, _send, _truncated_copy

pytestmark = pytest.mark.timeout(300)

#: Explicit VR little endian tags (tag, VR) where the damaged copies are cut.
_SOP_INSTANCE_UID = b"\x08\x00\x18\x00UI"
_SERIES_UID = b"\x20\x00\x0e\x00UI"
_REFERENCED_PLAN_SEQ = b"\x0c\x30\x02\x00SQ"


def _files(case: CaseFiles) -> list[Path]:
    assert case.rtplan is not None
    return [case.rtstruct, case.rtplan, case.rtdose]


def _cut_after(src: Path, dest: Path, marker: bytes, offset: int) -> Path:
    """``src`` cut ``offset`` bytes after the first ``marker`` (inside that element)."""
    data = src.read_bytes()
    dest.write_bytes(data[: data.index(marker) + offset])
    return dest


def _damaged(dose: Path, how: str, dest: Path) -> Path:
    if how == "pixel-data":  # the header is readable: the study is known from it
        return _truncated_copy(dose, dest)
    if how == "plan-sequence":  # the identity elements are still readable
        return _cut_after(dose, dest, _REFERENCED_PLAN_SEQ, 20)
    if how == "series-uid":  # the reader refuses even the identity; the study is salvaged
        return _cut_after(dose, dest, _SERIES_UID, 8 + 6)
    assert how == "sop-uid"  # cut before the Study Instance UID: no study
    return _cut_after(dose, dest, _SOP_INSTANCE_UID, 8 + 6)


def _send_raw(port: int, path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Send the file's bytes as they are (pynetdicom would otherwise decode and re-encode)."""
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
    assoc = _associate(port)
    try:
        return int(assoc.send_c_store(path).Status)
    finally:
        assoc.release()
        monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", False)


def _options() -> ServeOptions:
    return ServeOptions(port=0, quiet_seconds=2.0, poll_seconds=0.1, formats=("json",))


def _refusals(out: Path) -> list:  # type: ignore[type-arg]
    with ResultsDB.open(out / "results.sqlite") as db:
        stored = db.case_result(db.count("cases"))
    assert stored is not None
    return [f for f in stored["findings"] if f["code"] == "file.refused"]


def _uid_of(path: Path) -> str:
    return uid_from("lesion2-dose", path.name, str(path.parent))


@pytest.mark.parametrize(
    ("how", "sniffed"),
    [("pixel-data", True), ("plan-sequence", True), ("series-uid", False), ("sop-uid", False)],
)
def test_study_of_a_damaged_dataset(tmp_path, how, sniffed) -> None:
    """The reader's identity when it has one, else the salvaged study (None before it)."""
    lesion2 = _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=uid_from("f"), plan_uid="1.2.3")
    bad = _damaged(lesion2, how, tmp_path / "bad.dcm")
    if sniffed:
        header = sniff(str(bad))
        assert header is not None and header.study_instance_uid == STUDY and header.problem
    else:
        with pytest.raises(InputError, match="truncated"):
            sniff(str(bad))
    assert salvage_study_uid(bad) == (None if how == "sop-uid" else STUDY)


@pytest.mark.parametrize("how", ["pixel-data", "plan-sequence", "series-uid"])
def test_refused_dose_of_a_plan_never_sent_blocks_the_case(tmp_path, monkeypatch, how) -> None:
    case = write_case(CaseSpec(), tmp_path / "src", tag="one")
    lesion2 = _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=uid_from("f"), plan_uid="1.2.3")
    bad = _damaged(lesion2, how, tmp_path / "bad.dcm")
    out = tmp_path / "out"
    with Receiver("tg101", out, _options()) as receiver:
        assert _send_raw(receiver.port, bad, monkeypatch) == 0xC210
        assert _send(receiver.port, _files(case)) == [0, 0, 0]
        records = receiver.wait_for(1, timeout=180)
    assert [(r.patient_id, r.verdict) for r in records] == [("SAFETY-1", "incomplete")]
    [f] = _refusals(out)
    assert f["severity"] == "error"
    assert f"object RT Dose {_uid_of(lesion2)} of this study was refused" in f["message"]
    kept = out / "rejected" / STUDY
    assert f["source"].startswith(str(kept))
    tail = bad.read_bytes()[-64:]  # the dataset as sent (the file meta is rebuilt)
    assert Path(f["source"]).read_bytes().endswith(tail)
    [record] = [json.loads(p.read_text()) for p in kept.glob("*.json")]
    assert record["study_uid"] == STUDY and record["sop_instance_uid"] == _uid_of(lesion2)
    assert json.loads((out / "summary.json").read_text())["totals"]["incomplete"] == 1


def test_refused_copy_sent_again_intact_does_not_block(tmp_path, monkeypatch) -> None:
    case = write_case(CaseSpec(), tmp_path / "src", tag="one")
    out = tmp_path / "out"
    with Receiver("tg101", out, _options()) as receiver:
        bad = _truncated_copy(case.rtdose, tmp_path / "bad.dcm")
        assert _send_raw(receiver.port, bad, monkeypatch) == 0xC210
        assert _send(receiver.port, _files(case)) == [0, 0, 0]
        records = receiver.wait_for(1, timeout=180)
    assert [r.verdict for r in records] == ["pass"]
    [f] = _refusals(out)
    assert f["severity"] == "warning" and "received intact" in f["message"]


def test_refusal_after_the_check_reopens_the_case(tmp_path, monkeypatch) -> None:
    case = write_case(CaseSpec(), tmp_path / "src", tag="one")
    lesion2 = _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=uid_from("f"), plan_uid="1.2.3")
    out = tmp_path / "out"
    with Receiver("tg101", out, _options()) as receiver:
        assert _send(receiver.port, _files(case)) == [0, 0, 0]
        assert [r.verdict for r in receiver.wait_for(1, timeout=180)] == ["pass"]
        bad = _truncated_copy(lesion2, tmp_path / "bad.dcm")
        assert _send_raw(receiver.port, bad, monkeypatch) == 0xC210
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and receiver.records[0].verdict == "pass":
            time.sleep(0.2)
        records = receiver.records
    assert [r.verdict for r in records] == ["incomplete"]
    with ResultsDB.open(out / "results.sqlite") as db:
        assert db.count("cases") == 2  # checked again, not reused: the refusal is an input
    [f] = _refusals(out)
    assert f["severity"] == "error" and _uid_of(lesion2) in f["message"]


def test_refusal_without_a_study_is_an_error_entry(tmp_path, monkeypatch) -> None:
    lesion2 = _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=uid_from("f"), plan_uid="1.2.3")
    bad = _damaged(lesion2, "sop-uid", tmp_path / "bad.dcm")
    out = tmp_path / "out"
    with Receiver("tg101", out, _options()) as receiver:
        assert _send_raw(receiver.port, bad, monkeypatch) == 0xC210
        records = receiver.wait_for(1, timeout=60)
    [row] = records
    assert row.verdict == "error" and row.key.startswith("file:rejected/")
    assert "Study Instance UID could not be read" in (row.error or "")
    assert f"RT Dose {_uid_of(lesion2)}" in (row.error or "")
    with ResultsDB.open(out / "results.sqlite") as db:
        assert db.count("cases") == 1
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["verdict"], r["key"]) for r in rows] == [("error", row.key)]
    assert not [p for p in (out / "rejected").iterdir() if p.is_dir()]
