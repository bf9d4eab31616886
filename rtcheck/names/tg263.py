"""TG-263 structure names (AAPM worksheet v20170815) and whether a protocol name is one.

The worksheet ships as ``rtcheck/data/tg263_worksheet_20170815.csv`` (a copy of
``tests/data/reference/tg263_worksheet_20170815.csv``; source S8). Protocol loading uses
:func:`standard_name` to refuse structure names that no ROI would ever be matched to by
accident of spelling (``Esophagas``): see ``docs/protocols.md``.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from functools import lru_cache
from importlib import resources

from rtcheck.names.matching import match_keys
from rtcheck.names.targets import TargetKind, parse_target_name

#: File name of the TG-263 worksheet in ``rtcheck/data``.
WORKSHEET = "tg263_worksheet_20170815.csv"
_NAME_COLUMNS = ("TG263-Primary Name", "TG-263-Reverse Order Name")
#: TG-263 planning-risk-volume form: ``<name>_PRV[margin mm][_side]`` (``OpticNrv_PRV03_L``).
_PRV = re.compile(r"^(?P<base>.+?)_PRV\d{0,2}(?P<side>_[LR])?$")


@lru_cache(maxsize=1)
def tg263_names() -> tuple[str, ...]:
    """Primary names, then reverse-order names, of the TG-263 worksheet (no duplicates)."""
    text = resources.files("rtcheck").joinpath("data", WORKSHEET).read_text(encoding="utf-8")
    names: dict[str, None] = {}
    for column in _NAME_COLUMNS:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            name = (row.get(column) or "").strip()
            if name:
                names[name] = None
    return tuple(names)


@lru_cache(maxsize=1)
def _keys() -> frozenset[tuple[str, ...]]:
    return frozenset(k for name in tg263_names() for k in match_keys(name))


def standard_name(name: str) -> bool:
    """True when ``name`` is a TG-263 structure name or one the matcher treats as one.

    Accepted: a worksheet name (primary or reverse order); a name equal to one after
    normalisation, laterality rewriting or the built-in synonym table (``Spinal Cord``,
    ``Oesophagus``, ``Lung Lt``); a target name (``PTV``, ``PTV1``, ``PTV_40Gy``); the TG-263
    forms ``<name>_PRV<mm>[_L|_R]``, ``<name>-<target>`` and a partial ``~`` or custom ``^...``
    suffix on an accepted name.
    """
    base = name.strip()
    if "^" in base:  # TG-263 custom qualifier: the part before it must be standard
        base = base.split("^", 1)[0]
    base = base.rstrip("~")  # TG-263 partial structure
    if not base:
        return False
    if base in _name_set() or base in TargetKind.__members__:
        return True
    if parse_target_name(base) is not None:
        return True
    if (m := _PRV.match(base)) is not None:
        return standard_name(m.group("base") + (m.group("side") or ""))
    left, sep, right = base.rpartition("-")
    if sep and left and parse_target_name(right.strip()) is not None:
        return standard_name(left.strip())
    return bool(match_keys(base) & _keys())


def nearest_tg263_name(name: str) -> str | None:
    """The TG-263 name closest in spelling to ``name`` (:mod:`difflib`), or None."""
    names = tg263_names()
    lower = {n.lower(): n for n in reversed(names)}  # first spelling wins
    hits = difflib.get_close_matches(name.strip().lower(), list(lower), n=1, cutoff=0.6)
    return lower[hits[0]] if hits else None


@lru_cache(maxsize=1)
def _name_set() -> frozenset[str]:
    return frozenset(tg263_names())
