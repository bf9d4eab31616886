"""Atomic report writes: the old file survives a failing writer; no temporary file is left."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from rtcheck.errors import RtcheckError
from rtcheck.report import write_report
from rtcheck.report.atomic import atomic_write, atomic_write_bytes
from tests.report_fixtures import fail_result


class Boom(RuntimeError):
    pass


def _half_then_raise(out) -> None:
    out.write(b"<html>half a report")
    out.flush()
    raise Boom("writer failed midway")


def test_failing_writer_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old report")
    with pytest.raises(Boom):
        atomic_write(target, _half_then_raise)
    assert target.read_bytes() == b"old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_failing_writer_creates_nothing_when_no_old_file(tmp_path: Path) -> None:
    target = tmp_path / "new.pdf"
    with pytest.raises(Boom):
        atomic_write(target, _half_then_raise)
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("{}")

    def interrupted(out) -> None:
        out.write(b'{"verdict": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_success_replaces_content_and_honours_umask(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_write_report_failing_midway_keeps_old_file(tmp_path: Path) -> None:
    """A real writer failing on bad data (NaN cannot be JSON) leaves the old report."""
    result = fail_result()
    bad = dataclasses.replace(
        result,
        constraints=(dataclasses.replace(result.constraints[0], value=float("nan")),),
    )
    target = tmp_path / "out.json"
    write_report(result, target)
    good = target.read_bytes()
    with pytest.raises(ValueError, match="JSON compliant"):
        write_report(bad, target)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "r.html"
    with pytest.raises(RtcheckError) as info:
        write_report(fail_result(), target)
    assert str(target) in str(info.value)
    assert "does not exist" in str(info.value)
    assert "\n" not in str(info.value)


def test_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "report.html"
    folder.mkdir()
    with pytest.raises(RtcheckError, match="folder"):
        write_report(fail_result(), folder)
    assert folder.is_dir()
