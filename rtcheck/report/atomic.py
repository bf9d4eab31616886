"""Atomic file writes: a report file is either the old one or the complete new one.

The new content goes to a temporary file in the same directory (so the final rename never
crosses a file system), is flushed and fsync'ed, and only then replaces the target with
:func:`os.replace`. If writing fails for any reason, including ``KeyboardInterrupt``, the
temporary file is removed and an existing target is left untouched.

Only regular files are replaced: a folder, device, named pipe or socket at the target (or a
symbolic link to one) is refused with an :class:`~rtcheck.errors.RtcheckError` naming the path.
A symbolic link to a regular file is followed (the file it points to is replaced).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from rtcheck.errors import RtcheckError

__all__ = [
    "StagedFile",
    "atomic_open",
    "atomic_write",
    "atomic_write_all",
    "atomic_write_bytes",
    "stage",
]

Writer = Callable[[BinaryIO], None]

_TEMP_SUFFIX = ".rtcheck-tmp"


def _temp_path(target: Path) -> Path:
    """A fresh, hidden temporary name beside ``target``."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _resolve(target: Path) -> Path:
    """The file to replace: ``target``, or the file a symbolic link ``target`` points to.

    Replacing a symbolic link would turn it into a regular file and leave the file it points
    to stale; the new content goes where the link points instead (the link is kept).
    """
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _kind(mode: int) -> str | None:
    """What a non-regular file is (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _check_target(target: Path, shown: Path) -> None:
    """Refuse to replace anything but a regular file (or nothing) at ``target``.

    ``os.replace`` would swap a device node, a named pipe or a socket for a regular file (run
    as root, ``--json /dev/full`` replaced the device). ``shown`` is the path the user gave.
    """
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RtcheckError(f"cannot write report: {exc.strerror}", path=str(shown)) from exc
    kind = _kind(mode)
    if kind is None:
        return
    via = f" ({target})" if target != shown else ""
    raise RtcheckError(
        f"cannot write report: the path is {kind}{via}, not a regular file; rtcheck only "
        "replaces regular files; choose another file name",
        path=str(shown),
    )


def _check_directory(target: Path, shown: Path) -> None:
    directory = target.parent
    if not directory.is_dir():
        raise RtcheckError(
            f"cannot write report: folder {directory} does not exist; create it first",
            path=str(shown),
        )
    _check_target(target, shown)


class StagedFile:
    """A complete new file waiting beside its target: :meth:`commit` installs it.

    Made by :func:`stage`. Several staged files are committed together by
    :func:`atomic_write_all`, so a set of reports is installed only once every one of them
    has been written.
    """

    def __init__(self, target: Path, shown: Path, tmp: Path) -> None:
        self.target, self.shown, self.tmp = target, shown, tmp

    def commit(self) -> None:
        """Replace the target by the staged file (one :func:`os.replace`)."""
        try:
            _check_target(self.target, self.shown)  # again: the path may have changed
            os.replace(self.tmp, self.target)
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise _write_error(exc, self.shown) from exc
            raise
        _fsync_directory(self.target.parent)

    def discard(self) -> None:
        """Remove the staged file (the target keeps its previous content)."""
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def _write_error(exc: OSError, shown: Path) -> RtcheckError:
    return RtcheckError(f"cannot write report: {exc.strerror or exc}", path=str(shown))


def _create_temp(path: str | os.PathLike[str]) -> tuple[StagedFile, int]:
    """Check ``path`` and create its temporary file: the staged file and an open descriptor."""
    shown = Path(path)
    target = _resolve(shown)
    _check_directory(target, shown)
    tmp = _temp_path(target)
    try:
        # 0o666 honours the user's umask, like a normal open(); mkstemp would force 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _write_error(exc, shown) from exc
    return StagedFile(target, shown, tmp), fd


@contextlib.contextmanager
def _staging(path: str | os.PathLike[str]) -> Iterator[tuple[StagedFile, BinaryIO]]:
    """The temporary file for ``path``, flushed and fsync'ed on a clean exit, removed on error."""
    staged, fd = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield staged, fh
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        staged.discard()
        if isinstance(exc, OSError):
            raise _write_error(exc, staged.shown) from exc
        raise


def stage(path: str | os.PathLike[str], writer: Writer) -> StagedFile:
    """Write ``writer``'s whole output to a temporary file beside ``path``, flushed to disk.

    Raises
    ------
    RtcheckError
        As :func:`atomic_open`; no temporary file is left behind.
    """
    with _staging(path) as (staged, fh):
        writer(fh)
    return staged


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary stream whose content replaces ``path`` only on a clean exit.

    Parameters
    ----------
    path
        Final file name. Its folder must exist.

    Yields
    ------
    BinaryIO
        A writable binary file object (a temporary file beside ``path``).

    Raises
    ------
    RtcheckError
        When the folder does not exist, ``path`` exists and is not a regular file (a folder,
        device, named pipe, socket, or a symbolic link to one), or the file cannot be created
        or replaced. A symbolic link to a regular file is kept; the file it points to is
        replaced.
    """
    with _staging(path) as (staged, fh):
        yield fh
    staged.commit()


def atomic_write_all(items: Sequence[tuple[str | os.PathLike[str], Writer]]) -> None:
    """Write several files as one set: all are staged first, then all are installed.

    If any file cannot be written (its folder vanished or became read-only, the disk filled,
    the renderer failed), every staged file is removed and no target is touched: the set is
    not left half-replaced. Only the final renames, which take microseconds, run after the
    point of no return.

    Parameters
    ----------
    items
        ``(path, writer)`` pairs; ``writer`` writes a whole file to the stream it is given.
    """
    staged: list[StagedFile] = []
    try:
        for path, writer in items:
            staged.append(stage(path, writer))
    except BaseException:
        for s in staged:
            s.discard()
        raise
    for i, s in enumerate(staged):
        try:
            s.commit()
        except BaseException:
            for rest in staged[i + 1 :]:
                rest.discard()
            raise


def atomic_write(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None]) -> None:
    """Call ``writer(stream)`` and atomically install what it wrote at ``path``.

    Parameters
    ----------
    path
        Final file name.
    writer
        Writes the whole content to the binary stream it is given. If it raises, ``path``
        keeps its previous content (or stays absent) and no temporary file is left.
    """
    with atomic_open(path) as fh:
        writer(fh)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_open(path) as fh:
        fh.write(data)
