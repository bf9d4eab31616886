"""JSON report: exactly ``Result.to_dict()`` (the versioned contract; see ``rtcheck schema``)."""

from __future__ import annotations

import json
from typing import BinaryIO

from rtcheck.result import Result

__all__ = ["dumps", "write_json"]


def dumps(result: Result, *, indent: int | None = 2) -> str:
    """The JSON text of ``result``, newline-terminated.

    Raises
    ------
    ValueError
        A value is NaN or infinite. JSON cannot carry them, and writing a non-standard
        ``NaN`` would break consumers; such a value is a bug upstream, not something to hide.
    """
    return json.dumps(result.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(result: Result, out: BinaryIO) -> None:
    """Registry writer: the JSON report as UTF-8."""
    out.write(dumps(result).encode("utf-8"))
