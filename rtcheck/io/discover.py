"""Folders -> cases: find DICOM by content, link RT Dose -> RT Plan -> RT Structure Set -> CT.

Discovery reads headers only (no pixel data) and returns light :class:`CaseRef` objects;
:meth:`CaseRef.load` (or :func:`load_case`) reads the objects of one case. A case is one RT
Structure Set with every RT Plan that references it and every RT Dose that references those
plans (per-lesion plans of one patient are one case), plus the CT series it was drawn on.

The work is split in three modules: :mod:`rtcheck.io.caseload` scans folders and loads cases,
:mod:`rtcheck.io.linking` links headers into cases (its docstring lists the linking rules and
fallbacks), :mod:`rtcheck.io.leftovers` makes the findings about files that belong to no case
(*orphans*) and tells which folder a case occupies. This module ties them together; the names
of the other two that callers use are re-exported here.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtcheck.errors import Finding, InputError, LinkError, Severity
from rtcheck.io.caseload import CaseRef, explicit_ref, scan
from rtcheck.io.leftovers import ORPHAN_CODES, case_folder, orphan_findings, unreadable_finding
from rtcheck.io.linking import deduplicate, link_all
from rtcheck.model import Case

__all__ = [
    "ORPHAN_CODES",
    "CaseRef",
    "Discovery",
    "case_folder",
    "discover",
    "load_case",
    "orphan_findings",
    "single_case",
    "unreadable_finding",
]


@dataclass(frozen=True)
class Discovery:
    """Result of :func:`discover`.

    Attributes
    ----------
    root
        Folder (or file) searched.
    cases
        One :class:`CaseRef` per linked case, sorted by patient and label.
    findings
        Files skipped or left unlinked, duplicates, ambiguities.
    unreadable
        ``(path, reason)`` for files that look like DICOM but cannot be read.
    counts
        ``(modality, number of files)`` for every DICOM file read.
    """

    root: str
    cases: tuple[CaseRef, ...] = ()
    findings: tuple[Finding, ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()
    counts: tuple[tuple[str, int], ...] = field(default_factory=tuple)


def discover(root: str | os.PathLike[str], *, allow_frame_mismatch: bool = False) -> Discovery:
    """Find and link every case under ``root`` (recursive, by content, headers only).

    ``allow_frame_mismatch`` is accepted for symmetry with :func:`load_case`; discovery itself
    never fails on a mismatch (it is reported as a finding and checked again on load).

    Raises
    ------
    InputError
        ``root`` does not exist.
    """
    del allow_frame_mismatch
    found = scan(root)
    findings = list(found.findings)
    headers = list(found.headers)
    counts = tuple(sorted(Counter(h.modality for h in headers).items()))
    headers, conflicts = deduplicate(headers, findings)
    cases = link_all(headers, conflicts, findings)
    base = str(Path(root))
    return Discovery(base, tuple(cases), tuple(findings), found.unreadable, counts)


def load_case(
    path: str | os.PathLike[str] | CaseRef | None = None,
    *,
    rtstruct: str | os.PathLike[str] | None = None,
    rtdose: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    rtplan: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    allow_frame_mismatch: bool = False,
    relative_prescription_gy: float | None = None,
) -> Case:
    """Exactly one case from a folder, a :class:`CaseRef`, or explicit files.

    Parameters
    ----------
    path
        Folder holding one case, or a :class:`CaseRef` from :func:`discover`. With explicit
        files, an optional folder searched for the plans the doses reference and the CT.
    rtstruct, rtdose, rtplan
        Explicit RT Structure Set and RT Dose file(s) (both required together), and optional
        RT Plan file(s).
    allow_frame_mismatch
        Accept dose and structures on different frames of reference (WARNING finding).
    relative_prescription_gy
        Passed to :func:`rtcheck.io.dicom.read_dose` for RELATIVE doses.

    Raises
    ------
    InputError
        No case (empty folder, structures without dose...), several cases, unreadable files.
    LinkError
        Files that do not belong together.
    """
    opts = {
        "allow_frame_mismatch": allow_frame_mismatch,
        "relative_prescription_gy": relative_prescription_gy,
    }
    if isinstance(path, CaseRef):
        return path.load(**opts)
    if rtstruct is not None or rtdose is not None or rtplan is not None:
        return explicit_ref(path, rtstruct, rtdose, rtplan).load(**opts)
    if path is None:
        raise InputError("give a folder, or an RT Structure Set and an RT Dose file")
    folder = str(Path(path))
    if os.path.isfile(folder):
        raise InputError(
            "expected a folder holding one case (or give the RT Structure Set and RT Dose "
            "files explicitly)",
            path=folder,
        )
    return single_case(discover(folder), **opts)


def single_case(
    found: Discovery,
    *,
    allow_frame_mismatch: bool = False,
    relative_prescription_gy: float | None = None,
) -> Case:
    """Load the only case of a :class:`Discovery`; its folder's problems become findings.

    Raises
    ------
    InputError
        No case or several cases (the message says what was found).
    """
    if len(found.cases) != 1:
        raise _no_single_case(found)
    return _with_folder_findings(found.cases[0], found).load(
        allow_frame_mismatch=allow_frame_mismatch,
        relative_prescription_gy=relative_prescription_gy,
    )


def _with_folder_findings(ref: CaseRef, found: Discovery) -> CaseRef:
    """Add the folder's unreadable files and leftovers to the only case's findings.

    Every orphan (:func:`orphan_findings`: a file that looks like DICOM but cannot be read,
    an RT object linked to no case) is an ERROR, so the verdict cannot be ``pass``: it may be
    the dose of another plan of the case, whose contribution would then be missing from every
    organ. WARNING leftovers (a non-DICOM ``*.dcm``, a named pipe...) are disclosed too.
    """
    extra = [unreadable_finding(p, why) for p, why in found.unreadable]
    extra += [f for f in found.findings if f.severity != Severity.INFO]
    return replace(ref, findings=ref.findings + tuple(extra))


def _no_single_case(found: Discovery) -> InputError:
    counts = dict(found.counts)
    if len(found.cases) > 1:
        listing = "; ".join(f"{c.label} (study {c.study_instance_uid})" for c in found.cases[:10])
        more = f" and {len(found.cases) - 10} more" if len(found.cases) > 10 else ""
        return InputError(
            f"found {len(found.cases)} cases, expected one: {listing}{more}; point at one "
            "case's folder or use `rtcheck batch`",
            path=found.root,
        )
    if not counts:
        bad = f" ({len(found.unreadable)} unreadable DICOM file(s))" if found.unreadable else ""
        return InputError(f"no DICOM files found{bad}", path=found.root)
    have = ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))
    if not counts.get("RTSTRUCT"):
        return InputError(f"no RT Structure Set found (found {have})", path=found.root)
    if not counts.get("RTDOSE"):
        return InputError(
            f"RT Structure Set found but no RT Dose (found {have}); a dose is needed",
            path=found.root,
        )
    linked = [f.message for f in found.findings if f.code.startswith("link.")][:3]
    return LinkError(
        f"no RT Dose could be linked to an RT Structure Set (found {have}): " + " | ".join(linked),
        path=found.root,
    )
