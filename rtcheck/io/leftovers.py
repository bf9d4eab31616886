"""What discovery could not link: findings about files that may hold part of a case but are in
none (the *orphans*), and the folder a case occupies (to decide which case a leftover file
may belong to).

The severities are decided per code (``docs/io.md``, "Orphans"): an unreadable file, an RT Plan
or RT Dose linked to no case, a structure set without dose and an RT object without SOP
Instance UID are ERRORs (each may be another lesion's dose or plan, missing from every organ);
a CT file without UID is a WARNING (CT geometry is informational).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rtcheck.errors import Finding, Severity
from rtcheck.io.caseload import CaseRef
from rtcheck.io.dicom import Header

if TYPE_CHECKING:
    from rtcheck.io.discover import Discovery

__all__ = [
    "ORPHAN_CODES",
    "RT_LINKED",
    "case_folder",
    "no_dose_finding",
    "no_uid_finding",
    "orphan_findings",
    "orphan_tail",
    "unlinked_finding",
    "unreadable_finding",
]

#: Modalities discovery links into cases (CT is attached, never summed).
RT_LINKED = ("RTSTRUCT", "RTPLAN", "RTDOSE")

#: Discovery findings naming a file that may hold part of a case but belongs to none.
ORPHAN_CODES = frozenset({"link.unlinked", "link.no_dose", "file.no_uid"})

#: What an orphan RT object may have held, by modality (see :func:`orphan_findings`).
_ORPHAN_RISK = {
    "RTDOSE": "the dose of another plan (e.g. another lesion), missing from the organ doses",
    "RTPLAN": "another plan (e.g. another lesion), whose dose is then missing from the organ doses",
    "RTSTRUCT": "a newer version of the structures, or another lesion's structures whose "
    "dose is missing",
}
_RT_NAMES = {"RTDOSE": "RT Dose", "RTPLAN": "RT Plan", "RTSTRUCT": "RT Structure Set"}


def orphan_tail(modality: str) -> str:
    """The end of an orphan's message: what it may have held, and what to do."""
    risk = _ORPHAN_RISK.get(modality, "part of the plan")
    return (
        f"it may be {risk}, so the plan cannot be cleared until this file is linked (export "
        "the objects missing) or removed"
    )


def unlinked_finding(h: Header, what: str, ref: str | None, n: int) -> Finding:
    """ERROR ``link.unlinked``: an RT Plan or RT Dose that belongs to no case.

    ``what`` is the kind of object it references (``plan``, ``structure set``), ``ref`` the
    UID it references, ``n`` the number of structure sets on its frame of reference.
    """
    ref_text = f"references {what} {ref}, which was not found" if ref else f"names no {what}"
    tail = (
        "no structure set on its frame of reference"
        if n == 0
        else (f"{n} structure sets share its frame of reference (ambiguous)")
    )
    name = _RT_NAMES.get(h.modality, h.modality)
    return Finding(
        "link.unlinked",
        f"{name} {ref_text}; {tail}; not linked to any case: {orphan_tail(h.modality)}",
        Severity.ERROR,
        h.path,
    )


def no_dose_finding(struct: Header, n_plans: int) -> Finding:
    """ERROR ``link.no_dose``: a structure set without dose is no case, and may belong to one."""
    label = struct.label or struct.sop_instance_uid
    plans = f" ({n_plans} plan(s) without dose)" if n_plans else ""
    return Finding(
        "link.no_dose",
        f"structure set '{label}' has no RT Dose linked to it{plans}; not a checkable case: "
        f"{orphan_tail('RTSTRUCT')}",
        Severity.ERROR,
        struct.path,
    )


def no_uid_finding(h: Header) -> Finding:
    """A file without SOP Instance UID cannot be linked: ERROR for RT objects, else WARNING."""
    if h.modality in RT_LINKED:
        name = _RT_NAMES[h.modality]
        return Finding(
            "file.no_uid",
            f"{name} without SOP Instance UID; it cannot be linked and is skipped: "
            f"{orphan_tail(h.modality)}",
            Severity.ERROR,
            h.path,
        )
    return Finding(
        "file.no_uid",
        f"{h.modality} file without SOP Instance UID; skipped",
        Severity.WARNING,
        h.path,
    )


def unreadable_finding(path: str, why: str) -> Finding:
    """ERROR ``file.unreadable`` for a file (or folder) that could not be read."""
    return Finding(
        "file.unreadable",
        f"file could not be read: {why}; it may belong to this case (e.g. the dose of "
        "another plan), so the plan cannot be cleared until it is fixed or removed",
        Severity.ERROR,
        path,
    )


def orphan_findings(found: Discovery) -> tuple[Finding, ...]:
    """ERROR findings, one per file that may hold part of a case but is in none.

    These are the unreadable files (and folders that cannot be listed), RT Plans and RT Doses
    that link to no structure set (``link.unlinked``), structure sets without a dose
    (``link.no_dose``) and RT objects without SOP Instance UID (``file.no_uid``). Any of them
    can be the dose (or plan) of another lesion of a case, whose contribution would then be
    missing from every organ: a case they may belong to cannot pass. A CT file without UID,
    unused CT series and non-DICOM files are not orphans (CT geometry is informational; a
    file that is not DICOM cannot hold a dose rtcheck could have read).
    """
    out = [unreadable_finding(p, why) for p, why in found.unreadable]
    out += [
        f
        for f in found.findings
        if f.code in ORPHAN_CODES and f.severity is Severity.ERROR and f.source
    ]
    return tuple(out)


def case_folder(ref: CaseRef) -> str:
    """The deepest folder holding every RT file of ``ref`` (structure set, plans, doses).

    CT files are left out: a CT series is often shared or stored beside the plan folders.
    """
    heads = (ref.structure_set, *ref.plans, *ref.doses)
    return os.path.commonpath([os.path.dirname(os.path.abspath(h.path)) for h in heads])
