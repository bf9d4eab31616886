"""Sanity checks of a user's ``--names`` map against the protocol and the plan's ROIs.

A names map overrides automatic matching, so its mistakes bypass every matching safeguard.
These checks cannot know the user's intent; they disclose what looks wrong as WARNING findings
(the map is still applied):

* ``names.unused``: a key that names no structure of the protocol (a misspelt key leaves the
  structure to automatic matching, silently otherwise); the nearest protocol name is offered;
* ``names.unknown_roi``: a value that is no ROI of the plan (the structure is then missing);
* ``names.shared_roi``: several protocol structures mapped to the same ROI;
* ``names.target_as_organ``: an organ mapped to a target or External ROI (by its RT ROI
  Interpreted Type, e.g. the cord mapped to a PTV).
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping

from rtcheck.errors import Finding, Severity
from rtcheck.model import StructureSet
from rtcheck.names.matching import normalise

__all__ = ["name_map_findings"]

#: RT ROI Interpreted Types that are not organs at risk.
NOT_ORGANS = frozenset({"PTV", "CTV", "GTV", "EXTERNAL", "BOLUS", "SUPPORT", "FIXATION"})


def name_map_findings(
    user_map: Mapping[str, str | None],
    protocol_names: Iterable[str],
    target_names: Iterable[str],
    ss: StructureSet,
) -> list[Finding]:
    """WARNING findings for the doubtful entries of ``user_map`` (see the module docstring).

    Parameters
    ----------
    user_map
        ``{protocol structure: ROI name or None}``.
    protocol_names
        Every structure name the protocol uses (constraints, aliases, derived structures).
    target_names
        Names that stand for targets in the protocol (their ROIs may be PTVs).
    ss
        The plan's structure set.
    """
    known = {normalise(n): n for n in protocol_names}
    targets = {normalise(n) for n in target_names}
    rois = {normalise(r.name): r for r in ss.rois}
    out: list[Finding] = []
    users: dict[str, list[str]] = defaultdict(list)
    for key, value in user_map.items():
        if normalise(key) not in known:
            out.append(_unused(key, known))
            continue
        if value is None:
            continue
        roi = rois.get(normalise(value))
        if roi is None:
            message = f"--names maps {key} to {value!r}, which is no ROI of the plan"
            out.append(_warn("names.unknown_roi", message, key))
            continue
        users[roi.name].append(key)
        kind = (roi.interpreted_type or "").upper()
        if kind in NOT_ORGANS and normalise(key) not in targets:
            out.append(
                _warn(
                    "names.target_as_organ",
                    f"--names maps the organ {key} to ROI {roi.name!r}, whose RT ROI "
                    f"Interpreted Type is {kind}",
                    key,
                )
            )
    for roi_name, keys in users.items():
        if len(keys) > 1:
            listing = ", ".join(keys)
            out.append(
                _warn(
                    "names.shared_roi",
                    f"--names maps {listing} to the same ROI {roi_name!r}",
                    roi_name,
                )
            )
    return out


def _unused(key: str, known: Mapping[str, str]) -> Finding:
    close = difflib.get_close_matches(normalise(key), list(known), n=1, cutoff=0.75)
    hint = f"; did you mean {known[close[0]]}?" if close else ""
    return _warn(
        "names.unused",
        f"--names entry {key!r} names no structure of the protocol, so it maps nothing{hint}",
        key,
    )


def _warn(code: str, message: str, subject: str) -> Finding:
    return Finding(code, message, Severity.WARNING, subject=subject)
