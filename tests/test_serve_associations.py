"""``rtcheck serve``: associations, aborts and restarts never let a half-received case pass.

A pynetdicom SCU sends real files (``tests/safety_cases.py``: a case that passes TG-101) on
loopback. A study is not checked while an association that delivers to it is still open; an
association that ends without a release (aborted, dropped) blocks its studies until they are
sent again in one that ends normally; a receiver restarted on the same results folder checks
what was stored before.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydicom import dcmread

from rtcheck.serve import Receiver, ServeOptions
from tests.safety_cases import CaseFiles, CaseSpec, write_case
from tests.test_serve import _associate, _send

pytestmark = pytest.mark.timeout(240)


def _files(tmp_path: Path) -> list[Path]:
    case: CaseFiles = write_case(CaseSpec(), tmp_path / "src", tag="assoc")
    assert case.rtplan is not None
    return [case.rtstruct, case.rtplan, case.rtdose]


def _opts(quiet: float) -> ServeOptions:
    return ServeOptions(port=0, quiet_seconds=quiet, poll_seconds=0.1, formats=("json",))


def _until(receiver: Receiver, verdict: str, timeout: float = 120.0) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = receiver.records
        if records and all(r.verdict == verdict for r in records):
            return records
        time.sleep(0.2)
    return receiver.records


def test_a_study_is_not_checked_while_its_association_is_open(tmp_path: Path) -> None:
    files = _files(tmp_path)
    with Receiver("tg101", tmp_path / "out", _opts(0.5)) as receiver:
        assoc = _associate(receiver.port)
        try:
            assert [int(assoc.send_c_store(dcmread(p)).Status) for p in files] == [0, 0, 0]
            time.sleep(3.0)  # six quiet periods, association still open
            assert receiver.records == []
        finally:
            assoc.release()
        records = receiver.wait_for(1, timeout=120)
    assert [r.verdict for r in records] == ["pass"]


def test_an_aborted_association_blocks_its_study_until_sent_again(tmp_path: Path) -> None:
    files = _files(tmp_path)
    with Receiver("tg101", tmp_path / "out", _opts(0.5)) as receiver:
        assoc = _associate(receiver.port)
        assert [int(assoc.send_c_store(dcmread(p)).Status) for p in files] == [0, 0, 0]
        assoc.abort()
        (record,) = receiver.wait_for(1, timeout=120)
        assert record.verdict == "incomplete"
        assert _send(receiver.port, files) == [0, 0, 0]  # sent again, released normally
        records = _until(receiver, "pass")
    assert [r.verdict for r in records] == ["pass"]


def test_a_restarted_receiver_checks_what_was_stored(tmp_path: Path) -> None:
    files, out = _files(tmp_path), tmp_path / "out"
    with Receiver("tg101", out, _opts(3600.0)) as receiver:  # stopped before any check
        assert _send(receiver.port, files) == [0, 0, 0]
        assert receiver.records == []
    with Receiver("tg101", out, _opts(0.5)) as receiver:
        records = receiver.wait_for(1, timeout=120)
    assert [r.verdict for r in records] == ["pass"]


def test_a_study_without_a_case_is_recorded_not_forgotten(tmp_path: Path) -> None:
    """A plan and its dose without a structure set (e.g. sent in another study)."""
    files = _files(tmp_path)
    with Receiver("tg101", tmp_path / "out", _opts(0.5)) as receiver:
        assert _send(receiver.port, files[1:]) == [0, 0]
        records = receiver.wait_for(1, timeout=120)
        assert records and all(r.verdict == "error" for r in records)
        assert _send(receiver.port, files[:1]) == [0]  # the structure set arrives
        records = _until(receiver, "pass")
    assert [r.verdict for r in records] == ["pass"]
