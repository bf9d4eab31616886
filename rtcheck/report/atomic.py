"""Atomic file writes: a report file is either the old one or the complete new one.

The new content goes to a temporary file in the same directory (so the final rename never
crosses a file system), is flushed and fsync'ed, and only then replaces the target with
:func:`os.replace`. If writing fails for any reason, including ``KeyboardInterrupt``, the
temporary file is removed and an existing target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from rtcheck.errors import RtcheckError

__all__ = ["atomic_open", "atomic_write", "atomic_write_bytes"]

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


def _check_directory(target: Path) -> None:
    directory = target.parent
    if not directory.is_dir():
        raise RtcheckError(
            f"cannot write report: folder {directory} does not exist; create it first",
            path=str(target),
        )
    if target.is_dir():
        raise RtcheckError("cannot write report: the path is a folder", path=str(target))


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
        When the folder does not exist or the file cannot be created or replaced.
    """
    target = Path(path)
    _check_directory(target)
    tmp = _temp_path(target)
    try:
        # 0o666 honours the user's umask, like a normal open(); mkstemp would force 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise RtcheckError(f"cannot write report: {exc.strerror}", path=str(target)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise RtcheckError(
                f"cannot write report: {exc.strerror or exc}", path=str(target)
            ) from exc
        raise
    _fsync_directory(target.parent)


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
