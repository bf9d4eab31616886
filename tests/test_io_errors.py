"""Malformed input: each case gives a specific one-line error naming the file and problem."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from rtcheck.cli import main
from rtcheck.errors import InputError, LinkError
from rtcheck.io.dicom import read_any, read_dose, read_plan, read_structures
from rtcheck.io.discover import load_case
from tests.dicom_factory import contour_item, make_dose, make_structures, square


def _truncated(tmp_path: Path) -> str:
    src = Path(get_testdata_file("rtdose.dcm")).read_bytes()
    path = tmp_path / "truncated.dcm"
    path.write_bytes(src[: len(src) - 500])
    return str(path)


def _not_dicom(tmp_path: Path) -> str:
    path = tmp_path / "notes.dcm"
    path.write_text("this is a text file, not DICOM\n" * 20)
    return str(path)


def _no_pixels(tmp_path: Path) -> str:
    return make_dose(tmp_path / "nopix.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0), with_pixels=False)


def _without(keyword: str) -> Callable[[Path], str]:
    def build(tmp_path: Path) -> str:
        path = make_dose(tmp_path / f"no{keyword}.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0))
        ds = pydicom.dcmread(path)
        delattr(ds, keyword)
        ds.save_as(path)
        return path

    return build


def _rtstruct(tmp_path: Path) -> str:
    path = tmp_path / "rs.dcm"
    shutil.copy(get_testdata_file("rtstruct.dcm"), path)
    return str(path)


CASES = [
    ("truncated", _truncated, "truncated"),
    ("not dicom", _not_dicom, "not a DICOM file"),
    ("no pixels", _no_pixels, "no pixel data"),
    ("no IPP", _without("ImagePositionPatient"), "ImagePositionPatient is missing"),
    ("no units", _without("DoseUnits"), "DoseUnits is missing"),
    ("no scaling", _without("DoseGridScaling"), "DoseGridScaling is missing"),
    ("wrong modality", _rtstruct, "expected an RTDOSE file but this is RTSTRUCT"),
]


@pytest.mark.parametrize("name,build,expected", CASES, ids=[c[0] for c in CASES])
def test_read_dose_errors(
    tmp_path: Path, name: str, build: Callable[[Path], str], expected: str
) -> None:
    path = build(tmp_path)
    with pytest.raises(InputError) as exc:
        read_dose(path)
    text = str(exc.value)
    assert expected in text and text.startswith(path) and "\n" not in text


CLI_CASES = [c for c in CASES if c[0] != "wrong modality"]  # info shows any object


@pytest.mark.parametrize("name,build,expected", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_info_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, build: Callable, expected: str
) -> None:
    path = build(tmp_path)
    assert main(["info", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rtcheck: error: ")
    assert expected in err and "Traceback" not in err


def test_wrong_modality_other_readers() -> None:
    dose = get_testdata_file("rtdose.dcm")
    with pytest.raises(InputError, match="expected an RTSTRUCT file but this is RTDOSE"):
        read_structures(dose)
    with pytest.raises(InputError, match="expected an RTPLAN file but this is RTDOSE"):
        read_plan(dose)


def test_missing_file_and_folder_given_as_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_dose(tmp_path / "absent.dcm")
    with pytest.raises(InputError, match="is a folder"):
        read_any(tmp_path)


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="no DICOM files found") as exc:
        load_case(tmp_path)
    assert str(exc.value).startswith(str(tmp_path))
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no DICOM files found" in err and err.count("\n") == 1


def test_structures_but_no_dose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_structures(tmp_path / "rs.dcm", [(1, "PTV", "PTV", [contour_item(square(0, 0, 5, 0))])])
    with pytest.raises(InputError, match="RT Structure Set found but no RT Dose"):
        load_case(tmp_path)
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no RT Dose" in err and err.count("\n") == 1 and "Traceback" not in err


def test_dose_but_no_structures(tmp_path: Path) -> None:
    make_dose(tmp_path / "rd.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0))
    with pytest.raises(InputError, match="no RT Structure Set found"):
        load_case(tmp_path)


def test_explicit_files_wrong_kind(tmp_path: Path) -> None:
    rs = make_structures(tmp_path / "rs.dcm", [(1, "A", None, [])])
    rd = make_dose(tmp_path / "rd.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0))
    with pytest.raises(InputError, match="given as RT Structure Set but this is RTDOSE"):
        load_case(rtstruct=rd, rtdose=rd)
    with pytest.raises(InputError, match="both"):
        load_case(rtstruct=rs)


def test_explicit_files_two_patients(tmp_path: Path) -> None:
    rs = make_structures(tmp_path / "rs.dcm", [(1, "A", None, [])], patient="P1")
    rd = make_dose(tmp_path / "rd.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0), patient="P2")
    with pytest.raises(LinkError, match="different patients"):
        load_case(rtstruct=rs, rtdose=rd)
