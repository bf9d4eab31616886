"""What can still be told about a DICOM file that rtcheck refuses to read.

The receiver (``rtcheck serve``) refuses a dataset it cannot read whole (truncated, corrupt):
it still needs the dataset's study to tell which case the refusal may concern. :func:`sniff`
already returns the identity of a file cut inside its pixel data; a file cut earlier (inside
a sequence before the pixel data, say) raises there. :func:`salvage_study_uid` reads the
file's top-level elements only up to StudyInstanceUID (0020,000D), so damage after it does
not matter, and never raises.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydicom.filereader import read_partial
from pydicom.tag import Tag

from rtcheck.io.common import capture_warnings, display_path

__all__ = ["salvage_study_uid"]

_STUDY_UID = Tag(0x0020, 0x000D)
#: A UID: digits and dots, at most 64 characters (PS3.5 section 9.1).
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def _past_study_uid(tag: Any, vr: Any, length: int) -> bool:
    del vr, length
    return bool(tag > _STUDY_UID)


def salvage_study_uid(path: str | os.PathLike[str]) -> str | None:
    """StudyInstanceUID of a damaged DICOM file, or None when it cannot be read.

    Only a value that is a valid UID is returned (a misread byte run never is one).
    """
    p = display_path(path)
    try:
        with open(p, "rb") as fh, capture_warnings([], p):
            ds = read_partial(fh, stop_when=_past_study_uid, force=True)
            value = ds.get("StudyInstanceUID")
    except Exception:  # a damaged file: pydicom raises many types; nothing to tell then
        return None
    text = str(value).strip().rstrip("\x00") if value is not None else ""
    return text if len(text) <= 64 and _UID.fullmatch(text) else None
