"""DICOM receiver round trip on loopback: a pynetdicom SCU sends a sample case, the server
stores it, checks it with the real pipeline and records it.

Bounded waits everywhere; the server listens on 127.0.0.1 on an ephemeral port and is stopped
by the test. Malformed input (a truncated dataset sent byte for byte, an aborted association)
must be refused or logged and survived. Values are compared with the sample's analytic
``expected.json``, not with rtcheck's own earlier output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pynetdicom
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE

from rtcheck.db import ResultsDB
from rtcheck.serve import STORAGE_CLASSES, Receiver, ServeOptions

pytestmark = pytest.mark.timeout(240)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_dicom" / "oligo_single_clinic"


def _scu() -> AE:
    ae = AE(ae_title="TESTSCU")
    for uid in STORAGE_CLASSES.values():
        ae.add_requested_context(uid, ExplicitVRLittleEndian)
    return ae


def _associate(port: int) -> pynetdicom.association.Association:
    assoc = _scu().associate("127.0.0.1", port, ae_title="RTCHECK")
    assert assoc.is_established
    return assoc


def _send(port: int, paths: list[Path]) -> list[int]:
    assoc = _associate(port)
    try:
        return [int(assoc.send_c_store(dcmread(p)).Status) for p in paths]
    finally:
        assoc.release()


def _truncated_copy(path: Path, dest: Path) -> Path:
    """The file cut short inside its pixel data (the last element)."""
    dest.write_bytes(path.read_bytes()[:-1001])
    return dest


def test_receiver_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not SAMPLE.is_dir():
        pytest.skip("sample_dicom/oligo_single_clinic missing (run `rtcheck sample`)")
    expected = json.loads((SAMPLE / "expected.json").read_text())
    files = sorted(SAMPLE.glob("*.dcm"))
    out = tmp_path / "out"
    opts = ServeOptions(port=0, quiet_seconds=1.0, poll_seconds=0.1, formats=("json",))
    receiver = Receiver("tg101", out, opts)
    receiver.start()
    try:
        _associate(receiver.port).abort()
        # send a file's bytes as they are (pynetdicom would otherwise decode and re-encode)
        monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
        assoc = _associate(receiver.port)
        dose = next(p for p in files if p.name.startswith("RD"))
        status = assoc.send_c_store(_truncated_copy(dose, tmp_path / "bad.dcm"))
        assoc.release()
        monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", False)
        assert int(status.Status) == 0xC210
        assert _send(receiver.port, files) == [0] * len(files)
        records = receiver.wait_for(1, timeout=180)
    finally:
        receiver.stop()
    assert [(r.patient_id, r.verdict) for r in records] == [
        (expected["patient_id"], expected["expected_verdict"])
    ]
    assert (receiver.received, receiver.rejected) == (len(files), 1)
    assert len(list((out / "rejected").iterdir())) == 1
    assert len(list((out / "store").rglob("*.dcm"))) == len(files)
    assert json.loads((out / "summary.json").read_text())["totals"]["cases"] == 1
    with ResultsDB.open(out / "results.sqlite") as db:
        [run] = db.runs()
        assert (run["kind"], run["status"]) == ("serve", "complete")
        stored = db.case_result(1)
    assert stored is not None
    got = {(c["structure"], c["metric"]): c for c in stored["constraints"]}
    for want in expected["constraints"]:
        c = got[want["structure"], want["metric"]]
        assert c["status"] == want["expected"], want
        if want["expected"] != "not_evaluated":
            assert c["value"] == pytest.approx(want["value"], abs=want["tolerance"]), want
