"""Shared pydicom plumbing for the readers: opening files, clear errors, element access.

Everything here turns pydicom's many failure modes into :class:`~rtcheck.errors.InputError`
messages that name the file and the problem, and turns pydicom's warnings about non-conformant
values into :class:`~rtcheck.errors.Finding` objects instead of letting them escape.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rtcheck.errors import Finding, InputError, Severity, UnsupportedError

#: SOP Class UIDs rtcheck knows, by short name.
SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.481.2": "RTDOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",
    "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN",
    "1.2.840.10008.5.1.4.1.1.481.8": "RTPLAN",  # RT Ion Plan
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",  # Enhanced CT
}

#: Direction cosines must be within this of 0 or +/-1 to count as axis-aligned.
AXIS_TOL = 1e-4

_NO_PREAMBLE_GROUPS = {b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def looks_like_dicom(path: str | os.PathLike[str]) -> bool:
    """Cheap content test: ``DICM`` at byte 128, or a plausible first tag (no preamble).

    Files without a preamble (allowed by old exports, e.g. pydicom's ``rtstruct.dcm``) start
    with a group 0002 or 0008 tag; they still have to pass :func:`open_dataset`.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and head[:2] in _NO_PREAMBLE_GROUPS


@contextlib.contextmanager
def capture_warnings(findings: list[Finding], source: str) -> Iterator[None]:
    """Collect warnings raised inside the block as INFO findings (deduplicated)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = {f.message for f in findings}
    for w in caught:
        msg = f"non-conformant DICOM value tolerated: {' '.join(str(w.message).split())}"
        if msg not in seen:
            seen.add(msg)
            findings.append(Finding("dicom.nonconformant", msg, Severity.INFO, source=source))


_SEQ_DELIMITERS = (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xff\xfe\xe0\xdd\x00\x00\x00\x00")


def _check_truncated(ds: Dataset, path: str, whole_file: bool) -> None:
    """Raise when the file ends before its last element does (truncated file).

    Two checks: an element that declares more bytes than are present, and (for a whole-file
    read) a last element of undefined length whose Sequence Delimitation Item is missing.
    """
    tags = sorted(ds.keys())
    if whole_file and tags:
        last = ds.get_item(tags[-1])
        undefined = getattr(last, "length", None) == 0xFFFFFFFF or getattr(
            last, "is_undefined_length", False
        )
        if undefined:
            with open(path, "rb") as fh:
                fh.seek(max(os.path.getsize(path) - 8, 0))
                tail = fh.read(8)
            if tail not in _SEQ_DELIMITERS:
                name = pydicom.datadict.keyword_for_tag(tags[-1]) or str(tags[-1])
                raise InputError(
                    f"file is truncated: element {name} {tags[-1]} has no end marker; "
                    "re-export the file",
                    path=path,
                )
    for tag in tags:
        raw = ds.get_item(tag)
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if length is None or length == 0xFFFFFFFF or not isinstance(value, bytes | bytearray):
            continue
        if len(value) < length:
            name = pydicom.datadict.keyword_for_tag(tag) or str(tag)
            raise InputError(
                f"file is truncated: element {name} {tag} declares {length} bytes but only "
                f"{len(value)} are present; re-export the file",
                path=path,
            )


class _ShortReadTracker:
    """File wrapper noting the first read that returned some but not all requested bytes.

    pydicom stops quietly when a file ends inside an element header; a short read is the
    tell-tale of such a truncation.
    """

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.short_read_at: int | None = None

    def read(self, size: int = -1) -> bytes:
        start = self._fh.tell()
        data = self._fh.read(size)
        if size is not None and size > 0 and 0 < len(data) < size and self.short_read_at is None:
            self.short_read_at = start
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def _truncated(path: str, at: int) -> InputError:
    return InputError(
        f"file is truncated: it ends inside the element at byte {at}; re-export the file",
        path=path,
    )


def _dcmread(
    path: str, stop_before_pixels: bool, specific_tags: Sequence[str] | None
) -> tuple[Dataset, int | None]:
    """dcmread (preamble optional); also returns where a short read happened, if any."""
    with open(path, "rb") as raw:
        fh = _ShortReadTracker(raw)
        try:
            try:
                ds = pydicom.dcmread(
                    fh, stop_before_pixels=stop_before_pixels, specific_tags=specific_tags
                )
            except InvalidDicomError:
                raw.seek(0)
                fh.short_read_at = None
                ds = pydicom.dcmread(
                    fh,
                    force=True,
                    stop_before_pixels=stop_before_pixels,
                    specific_tags=specific_tags,
                )
        except Exception as exc:
            if fh.short_read_at is None:
                raise
            raise _truncated(path, fh.short_read_at) from exc
    return ds, fh.short_read_at


def open_dataset(
    path: str | os.PathLike[str],
    *,
    stop_before_pixels: bool = False,
    specific_tags: Sequence[str] | None = None,
    findings: list[Finding] | None = None,
) -> Dataset:
    """Read a DICOM file, turning every failure into a one-line :class:`InputError`.

    Files without the 128-byte preamble are accepted when their first element is a plausible
    group 0002/0008 tag. Truncated files raise (checked on the top-level elements read).
    """
    p = str(path)
    if not os.path.exists(p):
        raise InputError("file not found", path=p)
    if os.path.isdir(p):
        raise InputError("is a folder, expected a DICOM file", path=p)
    if not looks_like_dicom(p):
        raise InputError("not a DICOM file (no DICM marker and no DICOM header)", path=p)
    sink: list[Finding] = [] if findings is None else findings
    try:
        with capture_warnings(sink, p):
            ds, short_read_at = _dcmread(p, stop_before_pixels, specific_tags)
            whole = not stop_before_pixels and specific_tags is None
            _check_truncated(ds, p, whole)
            if short_read_at is not None:
                raise _truncated(p, short_read_at)
    except InputError:
        raise
    except Exception as exc:  # pydicom raises many types (struct.error, BytesLengthException...)
        raise InputError(f"cannot read DICOM ({_short(exc)}); truncated or corrupt?", p) from exc
    if "SOPClassUID" not in ds and "Modality" not in ds:
        if getattr(ds, "preamble", None) is not None:
            raise InputError("DICOM header without SOP Class UID or Modality (truncated?)", p)
        raise InputError("not a DICOM object (no SOP Class UID and no Modality)", path=p)
    return ds


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def modality_of(ds: Dataset) -> str:
    """Short modality name: from the SOP Class UID when known, else the Modality element."""
    sop = str(ds.get("SOPClassUID", "") or "")
    if sop in SOP_CLASSES:
        return SOP_CLASSES[sop]
    return str(ds.get("Modality", "") or "UNKNOWN").upper()


def expect_modality(ds: Dataset, expected: str, path: str) -> None:
    """Raise :class:`InputError` when ``ds`` is not an ``expected`` object."""
    found = modality_of(ds)
    if found != expected:
        raise InputError(
            f"expected an {expected} file but this is {found or 'an unknown object'}", path=path
        )


def require(ds: Dataset, keyword: str, path: str, what: str = "") -> Any:
    """Value of a required element, or :class:`InputError` naming it."""
    if keyword not in ds or ds[keyword].value is None or ds[keyword].value == "":
        where = f" in {what}" if what else ""
        raise InputError(f"required element {keyword} is missing or empty{where}", path=path)
    return ds[keyword].value


def opt_str(ds: Dataset, keyword: str) -> str | None:
    """String value of an optional element, None when absent or empty."""
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def opt_float(ds: Dataset, keyword: str) -> float | None:
    """Float value of an optional numeric element (None when absent, empty or invalid)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def opt_int(ds: Dataset, keyword: str) -> int | None:
    """Integer value of an optional element (None when absent, empty or invalid)."""
    value = opt_float(ds, keyword)
    return None if value is None or value != int(value) else int(value)


def floats(value: Any, n: int | None, keyword: str, path: str) -> list[float]:
    """A multi-valued numeric element as floats, checking the count."""
    try:
        out = [float(v) for v in (value if isinstance(value, list | tuple) else list(value))]
    except (TypeError, ValueError) as exc:
        raise InputError(f"element {keyword} is not numeric: {value!r}", path=path) from exc
    if n is not None and len(out) != n:
        raise InputError(f"element {keyword} has {len(out)} values, expected {n}", path=path)
    return out


def vector(ds: Dataset, keyword: str, n: int, path: str) -> list[float]:
    """A required multi-valued numeric element with exactly ``n`` values."""
    return floats(require(ds, keyword, path), n, keyword, path)


def ds_numbers(item: Dataset, keyword: str) -> np.ndarray:
    """Fast parse of a (long) DS element such as ContourData straight from its raw bytes."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    raw = item.get_item(tag) if tag is not None else None
    if raw is None:
        return np.empty(0)
    value = raw.value
    if isinstance(value, bytes | bytearray):
        text = bytes(value).replace(b"\\", b" ").replace(b"\x00", b" ")
        return np.array(text.split(), dtype=float)
    if value is None or value == "":
        return np.empty(0)
    if isinstance(value, str):
        return np.array(value.replace("\\", " ").split(), dtype=float)
    return np.asarray([float(v) for v in value], dtype=float)


def axis_directions(iop: Sequence[float], path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and normal direction of an axial, axis-aligned ImageOrientationPatient.

    Raises
    ------
    UnsupportedError
        Oblique orientations, or planes that are not transverse (sagittal/coronal).
    InputError
        Direction cosines that are not unit, orthogonal vectors.
    """
    v = np.asarray(iop, dtype=float)
    row, col = v[:3], v[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3:
        raise InputError(f"ImageOrientationPatient {list(iop)} is not two unit vectors", path)
    if abs(float(row @ col)) > 1e-3:
        raise InputError(f"ImageOrientationPatient {list(iop)} is not orthogonal", path)
    for vec in (row, col):
        if not np.all((np.abs(vec) < AXIS_TOL) | (np.abs(np.abs(vec) - 1) < AXIS_TOL)):
            raise UnsupportedError(
                f"oblique ImageOrientationPatient {list(iop)} is not supported; only "
                "axis-aligned orientations (HFS, FFS, HFP, FFP, decubitus) are",
                path,
            )
    row, col = np.round(row), np.round(col)
    normal = np.cross(row, col)
    if abs(normal[2]) != 1:
        raise UnsupportedError(
            f"ImageOrientationPatient {list(iop)} describes sagittal or coronal planes; only "
            "transverse (axial) planes are supported",
            path,
        )
    return row, col, normal


def vec3(v: np.ndarray | Sequence[float]) -> tuple[float, float, float]:
    """A 3-vector as a plain float tuple (``-0.0`` normalised to ``0.0``)."""
    a = np.asarray(v, dtype=float) + 0.0
    return (float(a[0]), float(a[1]), float(a[2]))


def display_path(path: str | os.PathLike[str]) -> str:
    """Path string used in model objects and messages."""
    return str(Path(path))
