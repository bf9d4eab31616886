"""``rtcheck sum -o``: only a regular file (or nothing) is written; anything else is one line.

The output goes through :mod:`rtcheck.report.atomic`: a folder, a name ending in ``/``, a named
pipe (opening it would block) or a missing folder is refused with exit code 2 and one line
naming the path, and nothing is created or replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rtcheck.cli import main
from rtcheck.io.dose import read_dose
from tests.test_cli_sum import write_case

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sum") / "case"
    write_case(folder, 5, 5)
    return folder


def _one_line(capsys: pytest.CaptureFixture[str], rc: int, *words: str) -> None:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("rtcheck: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert captured.out == ""


def test_existing_folder_is_refused(case: Path, tmp_path: Path, capsys) -> None:
    somedir = tmp_path / "somedir"
    somedir.mkdir()
    rc = main(["sum", str(case), "-o", f"{somedir}/"])
    _one_line(capsys, rc, "somedir", "output is a folder")
    assert list(somedir.iterdir()) == []


def test_name_ending_in_a_separator_is_a_folder(case: Path, tmp_path: Path, capsys) -> None:
    rc = main(["sum", str(case), "-o", f"{tmp_path / 'newdir'}/"])
    _one_line(capsys, rc, "newdir", "output is a folder")
    assert not (tmp_path / "newdir").exists()  # no file called "newdir"


def test_named_pipe_is_neither_opened_nor_replaced(case: Path, tmp_path: Path, capsys) -> None:
    pipe = tmp_path / "sum.dcm"
    os.mkfifo(pipe)
    rc = main(["sum", str(case), "-o", str(pipe)])
    _one_line(capsys, rc, str(pipe), "named pipe")
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name != "sum.dcm"]


def test_missing_folder_is_refused(case: Path, tmp_path: Path, capsys) -> None:
    rc = main(["sum", str(case), "-o", str(tmp_path / "missing" / "sum.dcm")])
    _one_line(capsys, rc, "missing", "does not exist")
    assert not (tmp_path / "missing").exists()


def test_link_to_a_regular_file_is_followed(case: Path, tmp_path: Path, capsys) -> None:
    real = tmp_path / "real.dcm"
    real.write_bytes(b"old")
    link = tmp_path / "link.dcm"
    link.symlink_to(real)
    assert main(["sum", str(case), "-o", str(link)]) == 0
    capsys.readouterr()
    assert link.is_symlink()
    assert read_dose(real).summation_type == "MULTI_PLAN"
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ("real.dcm", "link.dcm")]
