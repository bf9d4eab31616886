"""Atomic report writes: the old file survives a failing writer; no temporary file is left."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from rtcheck.errors import RtcheckError
from rtcheck.report import write_report, write_reports
from rtcheck.report.atomic import atomic_write, atomic_write_all, atomic_write_bytes
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


# ----------------------------------------------------------------------------- special files
def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _char_device(path: Path) -> Path:
    """A character device node (major 1, minor 3: like /dev/null) inside ``tmp_path``."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")
    return path


def _assert_refused(target: Path, shown: Path, kind: str) -> None:
    before = os.lstat(shown)
    with pytest.raises(RtcheckError) as info:
        write_report(fail_result(), shown)
    text = str(info.value)
    assert text.startswith(f"{shown}: ") and "\n" not in text
    assert kind in text and "not a regular file" in text
    after = os.lstat(shown)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert stat.S_IFMT(os.stat(target).st_mode) != stat.S_IFREG
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".rtcheck-tmp")]


@pytest.mark.parametrize(
    ("make", "kind"), [(_fifo, "named pipe"), (_char_device, "character device")]
)
def test_special_file_is_not_replaced(tmp_path: Path, make, kind: str) -> None:
    target = make(tmp_path / "r.json")
    _assert_refused(target, target, kind)


@pytest.mark.parametrize(
    ("make", "kind"),
    [(_fifo, "named pipe"), (lambda p: (p.mkdir(), p)[1], "folder")],
)
def test_symlink_to_special_file_is_refused(tmp_path: Path, make, kind: str) -> None:
    real = make(tmp_path / "special")
    link = tmp_path / "r.json"
    link.symlink_to(real)
    _assert_refused(real, link, kind)
    assert link.is_symlink() and os.readlink(link) == str(real)


def test_symlink_to_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    real = tmp_path / "keep" / "latest.json"
    real.write_bytes(b"old")
    link = tmp_path / "r.json"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new content")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "r.json"]
    assert [p.name for p in (tmp_path / "keep").iterdir()] == ["latest.json"]


def test_a_set_is_replaced_only_when_every_file_is_complete(tmp_path: Path) -> None:
    """One failing file of a set: no target of the set changes and no temporary file is left."""
    a, b, c = tmp_path / "a.html", tmp_path / "b.json", tmp_path / "c.pdf"
    a.write_bytes(b"old a")
    c.write_bytes(b"old c")
    with pytest.raises(Boom):
        atomic_write_all(
            [
                (a, lambda out: out.write(b"new a")),
                (b, lambda out: out.write(b"{}")),
                (c, _half_then_raise),
            ]
        )
    assert (a.read_bytes(), c.read_bytes()) == (b"old a", b"old c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "c.pdf"]
    atomic_write_all([(a, lambda out: out.write(b"new a")), (c, lambda out: out.write(b"new c"))])
    assert (a.read_bytes(), c.read_bytes()) == (b"new a", b"new c")


def test_reports_with_a_missing_folder_write_none_of_the_set(tmp_path: Path) -> None:
    result = fail_result()
    good, bad = tmp_path / "r.json", tmp_path / "gone" / "r.csv"
    with pytest.raises(RtcheckError, match="does not exist"):
        write_reports(result, [(good, None), (bad, None)])
    assert list(tmp_path.iterdir()) == []
    written = write_reports(result, [(good, None), (tmp_path / "r.csv", "csv")])
    assert [f.name for f in written] == ["json", "csv"]
    assert good.read_text(encoding="utf-8").lstrip().startswith("{")
