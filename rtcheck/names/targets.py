"""Lesion targets in a structure set, by RT ROI Interpreted Type and by TG-263 target names.

:func:`find_targets` lists targets (``PTV1``, ``PTV_LUL``, ``PTVn1``, ``PTV_40Gy``, ``GTV1``...)
with the dose a name may carry; planning targets and inconsistent ROIs are listed as ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rtcheck.model import Roi
from rtcheck.names.matching import _FIRST_MARKERS, normalise, planning_markers, tokens


class TargetKind(StrEnum):
    """Kind of target volume."""

    PTV = "PTV"
    GTV = "GTV"
    CTV = "CTV"
    ITV = "ITV"


@dataclass(frozen=True)
class TargetName:
    """What a target's name says: kind, index, qualifier, and a dose if it carries one."""

    kind: TargetKind
    sub: str | None = None  # "p" primary, "n" nodal, "sb" (TG-263)
    index: int | None = None
    qualifier: str | None = None
    dose_gy: float | None = None
    fractions: int | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetCandidate:
    """A lesion target found in a structure set.

    Attributes
    ----------
    name, roi_number
        The ROI.
    kind
        :class:`TargetKind`.
    index, sub, qualifier
        From the name (``PTVn1`` -> sub ``n``, index 1; ``PTV_LUL`` -> qualifier ``LUL``).
    name_dose_gy, name_fractions
        Total dose and fractions written in the name (``PTV_50Gy/5fx``), if any.
    evidence
        ``interpreted type and name``, ``interpreted type`` or ``name``.
    notes
        Assumptions made (e.g. a bare number read as cGy).
    """

    name: str
    roi_number: int | None
    kind: TargetKind
    index: int | None = None
    sub: str | None = None
    qualifier: str | None = None
    name_dose_gy: float | None = None
    name_fractions: int | None = None
    evidence: str = "name"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetSearch:
    """Targets found, and target-like ROIs not used with the reason."""

    targets: tuple[TargetCandidate, ...]
    ignored: tuple[tuple[str, str], ...] = ()

    def of_kind(self, kind: TargetKind) -> tuple[TargetCandidate, ...]:
        """Targets of one kind, in structure-set order."""
        return tuple(t for t in self.targets if t.kind is kind)


_TARGET_HEAD = re.compile(r"^(?P<kind>igtv|ictv|gtv|ctv|itv|ptv)(?P<rest>.*)$", re.I)
_SUB = re.compile(r"^(?P<sub>sb|p|n)(?=\d|[\s_^\-.]|$)", re.I)
_INDEX = re.compile(r"^[\s_\-]?(?P<idx>\d{1,2})(?![\d.,]|\s*c?gy)(?=[\s_^\-]|$)", re.I)
_DOSE = re.compile(r"^(?P<d>\d+(?:[.,]\d+)?)(?P<u>c?gy)?(?:/(?P<f>\d+)(?:fx|fr|f|#)?)?$", re.I)
_FX = re.compile(r"^(?P<f>\d+)(?:fx|fr|f|#)$", re.I)
_DICOM_TARGET_TYPES = {"PTV": TargetKind.PTV, "GTV": TargetKind.GTV, "CTV": TargetKind.CTV}


def parse_target_name(name: str) -> TargetName | None:
    """Read a target name (``PTV1``, ``PTVn1``, ``PTV_LUL``, ``PTV_40Gy``...); None if not one."""
    head = _TARGET_HEAD.match(name.strip())
    if head is None:
        return None
    text = head.group("kind").upper()
    kind = TargetKind.ITV if text in ("ITV", "IGTV", "ICTV") else TargetKind(text)
    rest = head.group("rest")
    if rest[:1].isalpha() and _SUB.match(rest) is None:
        return None  # e.g. "PTVneck" is read as a name, not a target grammar
    sub = None
    if (m := _SUB.match(rest)) is not None:
        sub, rest = m.group("sub").lower(), rest[m.end() :]
    index = None
    if (m := _INDEX.match(rest)) is not None:
        index, rest = int(m.group("idx")), rest[m.end() :]
    return _parse_target_rest(kind, sub, index, rest)


def _parse_target_rest(
    kind: TargetKind, sub: str | None, index: int | None, rest: str
) -> TargetName:
    dose = fractions = None
    words: list[str] = []
    notes: list[str] = []
    ambiguous: str | None = None
    tokens = [t for t in re.split(r"[\s_^]+|(?<!\d)-|-(?!\d)", rest) if t]
    for n, token in enumerate(tokens):
        if (m := _DOSE.match(token)) is not None and (m.group("u") or m.group("f") or _big(m)):
            value = float(m.group("d").replace(",", "."))
            unit = (m.group("u") or "").lower()
            if not unit and not _big(m):
                ambiguous = f"{token!r} gives no unit (Gy or cGy?)"
            elif n and tokens[n - 1].isdigit():
                ambiguous = f"'{tokens[n - 1]}_{token}' may be a decimal dose"
            elif n == 0 and index is not None and m.group("d").isdigit() and value < 10:
                ambiguous = f"'{index}_{token}' may be a decimal dose"
            elif any(t.lower() in ("x", "×") or re.fullmatch(r"x\d+", t, re.I) for t in tokens):
                ambiguous = f"{token!r} with an 'x' may be a dose per fraction"
            if not unit:
                notes.append(f"number {m.group('d')} in the name read as cGy")
            dose = value / 100.0 if unit in ("cgy", "") else value
            fractions = int(m.group("f")) if m.group("f") else fractions
        elif (m := _FX.match(token)) is not None:
            fractions = int(m.group("f"))
        elif token.isdigit() and index is None and len(token) <= 2:
            index = int(token)
        else:
            words.append(token)
    qualifier = "_".join(words) or None
    if ambiguous is not None:  # never guess a prescription from an unclear name
        dose, notes = None, [f"no dose read from the name: {ambiguous}"]
    return TargetName(kind, sub, index, qualifier, dose, fractions, tuple(notes))


def _big(m: re.Match[str]) -> bool:
    """A bare number of 3-5 digits (``PTV_5000``) is a dose in cGy by naming convention."""
    text = m.group("d")
    return text.isdigit() and 3 <= len(text) <= 5


def find_targets(rois: Iterable[Roi]) -> TargetSearch:
    """Lesion targets among ``rois`` by RT ROI Interpreted Type and by name.

    An ROI is a target when its interpreted type is PTV/GTV/CTV or its name follows the
    target grammar. Planning structures (``PTV_opt``, ``zPTV``, ``PTV_ring``, ``PTV+3mm``,
    ``PTV-GTV``...) and ROIs whose type and name disagree are listed in ``ignored``.
    """
    found: list[TargetCandidate] = []
    ignored: list[tuple[str, str]] = []
    for roi in rois:
        outcome = _target_from_roi(roi)
        if isinstance(outcome, TargetCandidate):
            found.append(outcome)
        elif outcome is not None:
            ignored.append((roi.name, outcome))
    return TargetSearch(tuple(found), tuple(ignored))


def _target_from_roi(roi: Roi) -> TargetCandidate | str | None:
    rtype = (roi.interpreted_type or "").strip().upper()
    type_kind = _DICOM_TARGET_TYPES.get(rtype)
    words = tokens(roi.name)
    first = words[0] if words else ""
    stripped = roi.name
    if first in _FIRST_MARKERS:
        stripped = re.sub(r"^[zZxX]+[\s_\-]*", "", roi.name)
    parsed = parse_target_name(stripped)
    if type_kind is None and parsed is None:
        return None
    kind_words = {k.value.lower() for k in TargetKind} | {"igtv", "ictv"}
    markers = [m for m in planning_markers(roi.name) if m not in kind_words and m != "^"]
    markers += [w for w in _glued_markers(stripped) if w not in markers]
    extra_kinds = [w for w in words[1:] if w in kind_words]
    if markers or extra_kinds:
        why = ", ".join(markers + [f"contains {w.upper()}" for w in extra_kinds])
        return f"planning or derived structure ({why})"
    if parsed is not None and type_kind is not None and parsed.kind is not type_kind:
        if parsed.kind is not TargetKind.ITV or type_kind is TargetKind.PTV:
            return f"interpreted type {rtype} disagrees with the name ({parsed.kind.value})"
    return _candidate(roi, rtype, type_kind, parsed)


_GLUED = re.compile(r"^(?:i?gtv|i?ctv|itv|ptv)(?P<word>[a-z]{3,})", re.I)
#: Helper words that may follow the target kind without a separator (``PTVring``, ``PTVopt``).
_GLUED_MARKERS = frozenset(
    "ring opt optim eval avoid avd shell dummy help helper hlp tmp temp crop".split()
)


def _glued_markers(name: str) -> list[str]:
    """Planning markers written straight after the target kind (``PTVring``, ``PTVeval``).

    The letters after the kind must be a marker word exactly (``PTVoptic`` is not ``opt``).
    """
    m = _GLUED.match(normalise(name))
    word = m.group("word").lower() if m is not None else ""
    return [word] if word in _GLUED_MARKERS else []


def _candidate(
    roi: Roi, rtype: str, type_kind: TargetKind | None, parsed: TargetName | None
) -> TargetCandidate:
    notes = list(parsed.notes) if parsed else []
    if type_kind is not None and parsed is not None:
        evidence = "interpreted type and name"
    elif type_kind is not None:
        evidence = "interpreted type"
    else:
        evidence = "name"
        if rtype:
            notes.append(f"interpreted type {rtype}; taken as a target from its name")
    kind = parsed.kind if parsed is not None else type_kind
    assert kind is not None
    return TargetCandidate(
        name=roi.name,
        roi_number=roi.number,
        kind=kind,
        index=parsed.index if parsed else None,
        sub=parsed.sub if parsed else None,
        qualifier=parsed.qualifier if parsed else None,
        name_dose_gy=parsed.dose_gy if parsed else None,
        name_fractions=parsed.fractions if parsed else None,
        evidence=evidence,
        notes=tuple(notes),
    )
