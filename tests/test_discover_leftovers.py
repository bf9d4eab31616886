"""Files of a single-case folder that cannot be used: disclosed, and blocking when unreadable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtcheck.errors import Severity
from rtcheck.io.discover import discover, load_case
from tests.test_discover import _patient


def _garbled_copy(src: Path, dest: Path) -> None:
    """A DICOM file (preamble and DICM kept) whose header is overwritten with 0xFF."""
    data = bytearray(src.read_bytes())
    data[140:400] = b"\xff" * 260
    dest.write_bytes(bytes(data))


def _findings(case, code: str) -> dict[str, Severity]:
    return {Path(f.source).name: f.severity for f in case.findings if f.code == code}


def test_unreadable_dicom_file_is_an_error_of_the_case(tmp_path: Path) -> None:
    _patient(tmp_path, "P1", plans=1)
    _garbled_copy(tmp_path / "RD" / "rd1.dcm", tmp_path / "RD" / "rd_lesion2.dcm")
    case = load_case(tmp_path)
    assert len(case.doses) == 1  # the readable case still loads
    assert _findings(case, "file.unreadable") == {"rd_lesion2.dcm": Severity.ERROR}
    f = next(f for f in case.findings if f.code == "file.unreadable")
    assert "cannot be cleared" in f.message


def test_non_dicom_file_named_like_dicom_is_an_error(tmp_path: Path) -> None:
    _patient(tmp_path, "P1", plans=1)
    junk = b"not a DICOM file " * 20
    for name in ("RD.extra.dcm", "PLAN.DICOM", "IM0001", "1.2.840.10008.99"):
        (tmp_path / name).write_bytes(junk)
    for name in ("README.txt", ".DS_Store", "._rd1.dcm", "export.xml"):
        (tmp_path / name).write_bytes(junk)
    found = discover(tmp_path)
    severities = {Path(f.source).name: f.severity for f in found.findings}
    for name in ("RD.extra.dcm", "PLAN.DICOM", "IM0001", "1.2.840.10008.99"):
        assert severities[name] is Severity.ERROR, name  # an interrupted export?
    for name in ("README.txt", ".DS_Store", "._rd1.dcm", "export.xml"):
        assert severities[name] is Severity.INFO, name
    case = load_case(tmp_path)
    disclosed = _findings(case, "file.not_dicom")
    assert disclosed == dict.fromkeys(
        ("RD.extra.dcm", "PLAN.DICOM", "IM0001", "1.2.840.10008.99"), Severity.ERROR
    )
    errors = {f.code for f in case.findings if f.severity is Severity.ERROR}
    assert errors == {"file.not_dicom"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_file_without_read_permission_is_unreadable(tmp_path: Path) -> None:
    _patient(tmp_path, "P1", plans=1)
    locked = tmp_path / "rd_lesion2.dcm"
    locked.write_bytes((tmp_path / "RD" / "rd1.dcm").read_bytes())
    locked.chmod(0)
    try:
        case = load_case(tmp_path)
    finally:
        locked.chmod(0o644)
    assert _findings(case, "file.unreadable") == {"rd_lesion2.dcm": Severity.ERROR}
