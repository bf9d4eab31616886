"""Structure name matching: TG-263 names, aliases, laterality, synonyms, user maps.

:func:`match_structure` finds the plan ROI a protocol structure refers to, in two tiers:

1. a user map entry (``--names map.yaml``) wins outright; then an ROI whose name is exactly
   the protocol name - unless another ROI differs from it only in case, spaces or punctuation
   (``SpinalCord`` beside ``Spinal Cord``): such twins are **ambiguous**, like two ROIs with
   the same name. Other tier-2 matches beside an exact name are listed in the note
   (``also similar: ...``), which the evaluation discloses;
2. otherwise every ROI that matches after normalisation (case, spaces, punctuation),
   laterality rewriting (``Lung_L`` = ``L Lung`` = ``Left Lung`` = ``LT_LUNG`` = ``Lung Lt``),
   the built-in synonym table (``Cord`` = ``SpinalCord``, ``Oesophagus`` = ``Esophagus``...)
   or one of the protocol's aliases. Exactly one such ROI is a match; two or more are
   **ambiguous** and nothing is matched (the reason lists them).

Planning structures (PRV, ``z_``/``zz`` prefixes, ``opt``, ``ring``, ``eval``, margins such as
``+3mm``, partial ``~`` and custom ``^`` suffixes, ``-PTV`` subtractions...) never match in
tier 2 unless the protocol name itself carries the same marker; they are listed in the reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class MatchMethod(StrEnum):
    """How a protocol structure was matched to an ROI."""

    USER_MAP = "user map"
    EXACT = "exact"
    NORMALISED = "normalised"
    LATERALITY = "laterality"
    SYNONYM = "synonym"
    ALIAS = "alias"


@dataclass(frozen=True)
class Match:
    """Outcome of matching one protocol structure name against a structure set.

    Attributes
    ----------
    protocol_name
        The protocol's structure name.
    roi_name
        The matched ROI name, or None when missing or ambiguous.
    method
        :class:`MatchMethod` of the match, None when nothing matched.
    candidates
        Ambiguous matches, or similar ROIs that were not used (planning structures,
        other side...), for the report.
    reason
        Why nothing matched, or a note about ignored look-alikes.
    """

    protocol_name: str
    roi_name: str | None
    method: MatchMethod | None
    candidates: tuple[str, ...] = ()
    reason: str | None = None
    ambiguous: bool = False

    @property
    def found(self) -> bool:
        """True when an ROI was matched."""
        return self.roi_name is not None

    @property
    def label(self) -> str:
        """Short text for reports: the method, ``ambiguous`` or ``not found``."""
        if self.method is not None:
            return self.method.value
        return "ambiguous" if self.ambiguous else "not found"


# ------------------------------------------------------------------ vocabulary
_SIDE_WORDS = {
    "l": "L", "lt": "L", "lft": "L", "left": "L", "sin": "L",
    "r": "R", "rt": "R", "rgt": "R", "right": "R", "dx": "R",
}  # fmt: skip

#: canonical key -> variants (normalised: lower-case letters and digits only), unsided names
_UNSIDED_SYNONYMS: dict[str, tuple[str, ...]] = {
    "spinalcord": ("cord", "myelon", "spinalcordwhole"),
    "spinalcanal": ("canal", "vertebralcanal", "canalspinal"),
    "esophagus": ("oesophagus", "esoph", "oesoph", "oesophag"),
    "greatves": ("greatvessels", "greatvessel", "greatvess"),
    "heart": ("wholeheart",),
    "pericardium": ("pericard",),
    "airwayprox": (
        "pbt", "proximalbronchialtree", "proxbronchialtree", "bronchusprox", "proxbronchus",
        "proximalbronchus", "proximalairway", "proxairway", "bronchialtreeprox",
    ),
    "airwaydist": ("distalairway", "distalairways", "smallairways"),
    "lungs": (
        "lung", "lungtotal", "totallung", "lungstotal", "totallungs", "bothlungs", "lungsboth",
        "lungboth", "lungscombined", "combinedlungs",
    ),
    "lungsgtv": ("lunggtv", "lungsminusgtv", "lungminusgtv", "totallunggtv", "lungtotalgtv"),
    "body": ("external", "outline", "bodyoutline", "patientoutline", "externalcontour"),
    "chestwall": ("thoracicwall",),
    "rib": ("ribs", "allribs", "ribsall"),
    "bowelsmall": ("smallbowel", "smallintestine", "smbowel", "bowelsm"),
    "bowellarge": ("largebowel", "largeintestine"),
    "jejunumileum": ("jejunoileum", "ileumjejunum"),
    "kidneys": ("bothkidneys", "kidneysboth", "kidneytotal", "totalkidney", "totalkidneys"),
    "kidneycortex": ("renalcortex", "kidneyscortex", "renalcortices"),
    "opticchiasm": ("chiasm", "chiasma", "chiasmoptic"),
    "caudaequina": ("cauda",),
    "sacralplex": ("sacralplexus",),
    "penilebulb": ("bulbofpenis", "bulbpenis"),
}  # fmt: skip

#: canonical base key -> variants, for names that carry a side (``_L``/``_R``)
_SIDED_SYNONYMS: dict[str, tuple[str, ...]] = {
    "brachialplex": ("brachialplexus", "plexusbrachialis", "bplex"),
    "opticnrv": ("opticnerve", "opticn", "nerveoptic"),
    "femurhead": ("femoralhead", "femhead", "headoffemur", "headfemur"),
    "kidneyhilum": ("renalhilum", "hilumkidney"),
    "kidneycortex": ("renalcortex",),
    "glndadrenal": ("adrenal", "adrenalgland", "glandadrenal"),
    "bronchusmain": ("mainbronchus", "mainstembronchus"),
}

_UNSIDED = {v: k for k, vs in _UNSIDED_SYNONYMS.items() for v in (k, *vs)}
_SIDED = {v: k for k, vs in _SIDED_SYNONYMS.items() for v in (k, *vs)}

#: tokens that mark planning / helper / partial structures
_MARKERS = frozenset(
    "prv opt optim optimization optimisation ring eval evaluation avoid avd dummy hlp help helper "
    "tmp temp expand exp shell block crop cropped minus old copy dose iso isodose ptv gtv ctv itv "
    "igtv ictv".split()
)
_FIRST_MARKERS = frozenset({"z", "zz", "zzz", "x", "xx", "xxx"})
_MARKER_CHARS = ("~", "^", "+", "%")
_MM = re.compile(r"\d+(?:[.,]\d+)?mm", re.I)
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def normalise(name: str) -> str:
    """Lower-case letters and digits only: ``Spinal Cord`` -> ``spinalcord``."""
    text = unicodedata.normalize("NFKD", name)
    return "".join(c for c in text.lower() if c.isalnum() and c.isascii())


def tokens(name: str) -> tuple[str, ...]:
    """Lower-case words of a name, split at separators, case changes and digits."""
    text = unicodedata.normalize("NFKD", name)
    out: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", text):
        out.extend(t.lower() for t in _CAMEL.findall(part))
    return tuple(out)


@dataclass(frozen=True)
class _Parsed:
    raw: str
    norm: str
    base: str  # normalised name without its side word
    side: str | None
    canon: str  # base after the synonym table
    words: tuple[str, ...]


def _parse(name: str) -> _Parsed:
    words = tokens(name)
    side = None
    base_words = words
    if len(words) >= 2 and words[-1] in _SIDE_WORDS:
        side, base_words = _SIDE_WORDS[words[-1]], words[:-1]
    elif len(words) >= 2 and words[0] in _SIDE_WORDS:
        side, base_words = _SIDE_WORDS[words[0]], words[1:]
    base = "".join(base_words)
    table = _SIDED if side else _UNSIDED
    return _Parsed(name, normalise(name), base, side, table.get(base, base), words)


def match_keys(name: str) -> frozenset[tuple[str, ...]]:
    """Keys under which tier 2 compares names: two names match each other in tier 2 exactly
    when they share a key (normalised text; side and synonym-table base; side and base)."""
    p = _parse(name)
    keys = {("norm", p.norm), ("canon", p.side or "", p.canon)}
    if p.side is not None:
        keys.add(("base", p.side, p.base))
    return frozenset(keys)


def planning_markers(name: str, allowed: Iterable[str] = ()) -> tuple[str, ...]:
    """Markers that make ``name`` a planning/helper/partial structure (empty for an organ).

    ``allowed`` are words the protocol name itself contains (e.g. ``gtv`` in ``Lungs-GTV``).
    """
    ok = set(allowed)
    words = tokens(name)
    found = [w for w in words if w in _MARKERS and w not in ok]
    found += [w for w in words if w.startswith("prv") and w not in ok and w != "prv"]
    if words and words[0] in _FIRST_MARKERS:
        found.append(words[0] + "_")
    if "prv" in normalise(name) and "prv" not in ok and not any("prv" in f for f in found):
        found.append("prv")
    found += [c for c in _MARKER_CHARS if c in name]
    found += _MM.findall(name)
    return tuple(dict.fromkeys(found))


def _compare(target: _Parsed, roi: _Parsed) -> MatchMethod | None:
    if roi.norm == target.norm:
        return MatchMethod.NORMALISED
    if roi.side != target.side:
        return None
    if roi.side is not None and roi.base == target.base:
        return MatchMethod.LATERALITY
    if roi.canon == target.canon:
        return MatchMethod.SYNONYM
    return None


# ------------------------------------------------------------------ matching
def match_structure(
    protocol_name: str,
    aliases: Sequence[str],
    roi_names: Sequence[str],
    *,
    user_map: Mapping[str, str | None] | None = None,
) -> Match:
    """Find the ROI for ``protocol_name`` among ``roi_names`` (see the module docstring).

    Parameters
    ----------
    protocol_name
        Structure name in the protocol (TG-263).
    aliases
        Extra names the protocol accepts for it.
    roi_names
        ROI names of the structure set, as exported.
    user_map
        ``{protocol name: ROI name or None}`` from the user; None means "absent in this plan".
    """
    if user_map:
        mapped = _from_user_map(protocol_name, roi_names, user_map)
        if mapped is not None:
            return mapped
    exact = [r for r in roi_names if r == protocol_name]
    if len(exact) > 1:
        return Match(protocol_name, None, None, tuple(exact), _duplicate_reason(exact[0]), True)
    fuzzy, ignored = _fuzzy(protocol_name, aliases, roi_names)
    if len(exact) == 1:
        return _exact_match(protocol_name, exact[0], fuzzy)
    if len(fuzzy) == 1:
        roi, method = fuzzy[0]
        note = _ignored_note(ignored) if ignored else None
        return Match(protocol_name, roi, method, tuple(n for n, _ in ignored), note)
    if len(fuzzy) > 1:
        listing = ", ".join(f"{r!r} ({m.value})" for r, m in fuzzy)
        reason = (
            f"ambiguous: {listing} all match {protocol_name}; "
            "choose one with a names map (--names map.yaml)"
        )
        return Match(protocol_name, None, None, tuple(r for r, _ in fuzzy), reason, True)
    reason = f"no ROI matches {protocol_name}" + (
        f" (aliases: {', '.join(aliases)})" if aliases else ""
    )
    if ignored:
        reason += f"; {_ignored_note(ignored)}"
    return Match(protocol_name, None, None, tuple(n for n, _ in ignored), reason)


def _exact_match(protocol_name: str, roi: str, fuzzy: list[tuple[str, MatchMethod]]) -> Match:
    """The exact ROI, unless a normalised twin makes it ambiguous; look-alikes in the note."""
    key = normalise(protocol_name)
    twins = [r for r, _ in fuzzy if normalise(r) == key]
    if twins:
        listing = ", ".join(repr(r) for r in (roi, *twins))
        reason = (
            f"ambiguous: {listing} all match {protocol_name} and differ only in case, spaces "
            "or punctuation; rename or remove the extra ROI, or choose one with a names map "
            "(--names map.yaml)"
        )
        return Match(protocol_name, None, None, (roi, *twins), reason, True)
    others = tuple(dict.fromkeys(r for r, _ in fuzzy))
    if not others:
        return Match(protocol_name, roi, MatchMethod.EXACT)
    listing = ", ".join(f"{r!r} ({m.value})" for r, m in dict(fuzzy).items())
    return Match(protocol_name, roi, MatchMethod.EXACT, others, f"also similar: {listing}")


def _from_user_map(
    protocol_name: str, roi_names: Sequence[str], user_map: Mapping[str, str | None]
) -> Match | None:
    if protocol_name in user_map:
        key: str | None = protocol_name
    else:
        key = next((k for k in user_map if normalise(k) == normalise(protocol_name)), None)
    if key is None:
        return None
    target = user_map[key]
    if target is None or not str(target).strip():
        return Match(protocol_name, None, None, (), "the names map says this plan has none")
    hits = [r for r in roi_names if r == target] or [
        r for r in roi_names if r.casefold() == str(target).casefold()
    ]
    if len(hits) == 1:
        return Match(protocol_name, hits[0], MatchMethod.USER_MAP)
    if len(hits) > 1:
        return Match(protocol_name, None, None, tuple(hits), _duplicate_reason(hits[0]), True)
    return Match(
        protocol_name, None, None, (), f"the names map points to ROI {target!r}, which is absent"
    )


def _fuzzy(
    protocol_name: str, aliases: Sequence[str], roi_names: Sequence[str]
) -> tuple[list[tuple[str, MatchMethod]], list[tuple[str, str]]]:
    """Tier-2 matches ``[(roi, method)]`` and ignored look-alikes ``[(roi, why)]``."""
    targets = [_parse(protocol_name)] + [_parse(a) for a in aliases]
    allowed = {w for t in targets for w in t.words}
    found: list[tuple[str, MatchMethod]] = []
    ignored: list[tuple[str, str]] = []
    for roi in roi_names:
        if roi == protocol_name:
            continue
        parsed = _parse(roi)
        method = _best_method(targets, parsed)
        markers = planning_markers(roi, allowed)
        if markers:
            if method is not None or _resembles(targets, parsed):
                ignored.append((roi, f"planning/partial structure ({', '.join(markers)})"))
            continue
        if method is not None:
            found.append((roi, method))
        elif _other_side(targets, parsed):
            ignored.append((roi, "other or no side"))
        elif _resembles(targets, parsed):
            ignored.append((roi, "similar name, not an accepted form"))
    return found, ignored


def _best_method(targets: list[_Parsed], roi: _Parsed) -> MatchMethod | None:
    for i, target in enumerate(targets):
        if i > 0 and roi.raw == target.raw:
            return MatchMethod.ALIAS
        method = _compare(target, roi)
        if method is not None:
            return method if i == 0 else MatchMethod.ALIAS
    return None


def _resembles(targets: list[_Parsed], roi: _Parsed) -> bool:
    """True when the ROI looks like the organ plus a planning marker (for reasons only)."""
    return any(t.canon and (t.canon in roi.norm or t.norm in roi.norm) for t in targets)


def _other_side(targets: list[_Parsed], roi: _Parsed) -> bool:
    """True when the ROI is the same organ with another side (or none)."""
    mine = _bases(roi.base)
    return any(roi.side != t.side and mine & _bases(t.base) for t in targets)


def _bases(base: str) -> set[str]:
    return {base, _SIDED.get(base, base), _UNSIDED.get(base, base)}


def _ignored_note(ignored: list[tuple[str, str]]) -> str:
    return "not used: " + "; ".join(f"{name!r} ({why})" for name, why in ignored)


def _duplicate_reason(name: str) -> str:
    return f"ambiguous: several ROIs are named {name!r}; rename or remove the duplicates"
