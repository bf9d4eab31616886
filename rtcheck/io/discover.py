"""Folders -> cases: find DICOM by content, link RT Dose -> RT Plan -> RT Structure Set -> CT.

Discovery reads headers only (no pixel data) and returns light :class:`CaseRef` objects;
:meth:`CaseRef.load` (or :func:`load_case`) reads the objects of one case. A case is one RT
Structure Set with every RT Plan that references it and every RT Dose that references those
plans (per-lesion plans of one patient are one case), plus the CT series it was drawn on.

Linking rules (each fallback is disclosed as a finding):

1. RT Dose -> RT Plan by ReferencedRTPlanSequence; RT Plan -> RT Structure Set by
   ReferencedStructureSetSequence; RT Structure Set -> CT by the referenced series UID.
2. A plan or dose whose reference cannot be followed is attached to the patient's only
   structure set on the same frame of reference; with several candidates it stays unlinked.
3. CT: the referenced series, else the patient's only CT series on the structure set's frame.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtcheck.errors import Finding, InputError, LinkError, Severity
from rtcheck.io.caseload import CaseRef, explicit_ref, scan
from rtcheck.io.common import sha256_file
from rtcheck.io.dicom import Header
from rtcheck.model import Case

_RT = ("RTSTRUCT", "RTPLAN", "RTDOSE")

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
    headers, conflicts = _deduplicate(headers, findings)
    cases = _link_all(headers, conflicts, findings)
    base = str(Path(root))
    return Discovery(base, tuple(cases), tuple(findings), found.unreadable, counts)


def _deduplicate(
    headers: list[Header], findings: list[Finding]
) -> tuple[list[Header], dict[str, str]]:
    """Keep one file per SOP Instance UID; conflicting copies of RT objects are recorded."""
    by_uid: dict[str, list[Header]] = defaultdict(list)
    kept: list[Header] = []
    for h in sorted(headers, key=lambda h: h.path):
        if h.sop_instance_uid:
            by_uid[h.sop_instance_uid].append(h)
        else:
            findings.append(_no_uid(h))
    conflicts: dict[str, str] = {}
    for uid, group in by_uid.items():
        kept.append(group[0])
        if len(group) == 1:
            continue
        digest = sha256_file(group[0].path)
        for other in group[1:]:
            same = sha256_file(other.path) == digest
            text = "identical copy" if same else "DIFFERENT content"
            findings.append(
                Finding(
                    "file.duplicate",
                    f"same SOP Instance UID as {group[0].path} ({text}); ignored",
                    Severity.WARNING if same or group[0].modality not in _RT else Severity.ERROR,
                    other.path,
                )
            )
            if not same and group[0].modality in _RT:
                conflicts[uid] = (
                    f"{group[0].modality} {uid} exists in two different versions "
                    f"({group[0].path} and {other.path}); remove one"
                )
    return kept, conflicts


def _link_all(
    headers: list[Header], conflicts: dict[str, str], findings: list[Finding]
) -> list[CaseRef]:
    by_patient: dict[str, list[Header]] = defaultdict(list)
    for h in headers:
        by_patient[h.patient.id or ""].append(h)
    cases: list[CaseRef] = []
    for pid in sorted(by_patient):
        cases.extend(_link_patient(by_patient[pid], conflicts, findings))
    return cases


def _link_patient(
    heads: list[Header], conflicts: dict[str, str], findings: list[Finding]
) -> list[CaseRef]:
    structs = [h for h in heads if h.modality == "RTSTRUCT"]
    plans = [h for h in heads if h.modality == "RTPLAN"]
    doses = [h for h in heads if h.modality == "RTDOSE"]
    cts = [h for h in heads if h.modality == "CT"]
    _other_modalities(heads, findings)
    groups: dict[str, _Group] = {s.sop_instance_uid or s.path: _Group(s) for s in structs}
    plan_group = _attach_plans(plans, doses, groups, findings)
    _attach_doses(doses, plan_group, groups, findings)
    used_series: set[str] = set()
    cases = []
    for g in groups.values():
        if not g.doses:
            findings.append(_no_dose(g))
            continue
        images = _attach_ct(g, cts, findings)
        used_series.update(h.series_instance_uid or "" for h in images)
        cases.append(g.case(images, conflicts))
    for series, n in Counter(h.series_instance_uid for h in cts).items():
        if (series or "") not in used_series:
            findings.append(
                Finding(
                    "link.unused_ct",
                    f"CT series {series} ({n} files) belongs to no case",
                    Severity.INFO,
                    next(h.path for h in cts if h.series_instance_uid == series),
                )
            )
    return sorted(cases, key=lambda c: c.label)


@dataclass
class _Group:
    struct: Header
    plans: list[Header] = field(default_factory=list)
    doses: list[Header] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def case(self, images: list[Header], conflicts: dict[str, str]) -> CaseRef:
        labels = [p.label or p.sop_instance_uid or "?" for p in self.plans]
        label = " + ".join(labels) if labels else (self.struct.label or "structures")
        pid = self.struct.patient.id or "unknown patient"
        uids = [h.sop_instance_uid for h in (self.struct, *self.plans, *self.doses)]
        problems = tuple(conflicts[u] for u in uids if u in conflicts)
        findings = list(self.findings)
        for d in self.doses:
            if d.frame_of_reference_uid != self.struct.frame_of_reference_uid:
                findings.append(_mismatch_finding(d, self.struct))
        return CaseRef(
            patient=self.struct.patient,
            study_instance_uid=self.struct.study_instance_uid,
            label=f"{pid}: {label}",
            structure_set=self.struct,
            plans=tuple(self.plans),
            doses=tuple(self.doses),
            images=tuple(sorted(images, key=lambda h: h.path)),
            findings=tuple(findings),
            conflicts=problems,
        )


def _mismatch_finding(dose: Header, struct: Header) -> Finding:
    return Finding(
        "link.frame_mismatch",
        f"RT Dose frame of reference {dose.frame_of_reference_uid} differs from the structure "
        f"set's {struct.frame_of_reference_uid}",
        Severity.ERROR,
        dose.path,
    )


def _by_frame(frame: str | None, groups: dict[str, _Group]) -> list[_Group]:
    return [g for g in groups.values() if frame and g.struct.frame_of_reference_uid == frame]


def _attach_plans(
    plans: list[Header], doses: list[Header], groups: dict[str, _Group], findings: list[Finding]
) -> dict[str, _Group]:
    """Put each plan in its structure set's group; returns plan UID -> group."""
    out: dict[str, _Group] = {}
    for p in plans:
        g = groups.get(p.referenced_structure_set_uid or "")
        if g is None:
            frames = {p.frame_of_reference_uid} | {
                d.frame_of_reference_uid
                for d in doses
                if d.referenced_plan_uid == p.sop_instance_uid
            }
            candidates = {id(c): c for f in frames for c in _by_frame(f, groups)}
            if len(candidates) != 1:
                findings.append(
                    _unlinked(p, "structure set", p.referenced_structure_set_uid, len(candidates))
                )
                continue
            g = next(iter(candidates.values()))
            g.findings.append(_fallback(p, "structure set", p.referenced_structure_set_uid))
        g.plans.append(p)
        out[p.sop_instance_uid or p.path] = g
    return out


def _attach_doses(
    doses: list[Header],
    plan_group: dict[str, _Group],
    groups: dict[str, _Group],
    findings: list[Finding],
) -> None:
    for d in doses:
        g = plan_group.get(d.referenced_plan_uid or "")
        if g is None:
            candidates = _by_frame(d.frame_of_reference_uid, groups)
            if len(candidates) != 1:
                findings.append(_unlinked(d, "plan", d.referenced_plan_uid, len(candidates)))
                continue
            g = candidates[0]
            g.findings.append(_fallback(d, "plan", d.referenced_plan_uid))
        g.doses.append(d)


#: What an orphan RT object may have held, by modality (see :func:`orphan_findings`).
_ORPHAN_RISK = {
    "RTDOSE": "the dose of another plan (e.g. another lesion), missing from the organ doses",
    "RTPLAN": "another plan (e.g. another lesion), whose dose is then missing from the organ doses",
    "RTSTRUCT": "a newer version of the structures, or another lesion's structures whose "
    "dose is missing",
}
_RT_NAMES = {"RTDOSE": "RT Dose", "RTPLAN": "RT Plan", "RTSTRUCT": "RT Structure Set"}


def _orphan_tail(modality: str) -> str:
    risk = _ORPHAN_RISK.get(modality, "part of the plan")
    return (
        f"it may be {risk}, so the plan cannot be cleared until this file is linked (export "
        "the objects missing) or removed"
    )


def _unlinked(h: Header, what: str, ref: str | None, n: int) -> Finding:
    """ERROR: an RT Plan or RT Dose that belongs to no case (see :func:`orphan_findings`)."""
    ref_text = f"references {what} {ref}, which was not found" if ref else f"names no {what}"
    tail = (
        "no structure set on its frame of reference"
        if n == 0
        else (f"{n} structure sets share its frame of reference (ambiguous)")
    )
    name = _RT_NAMES.get(h.modality, h.modality)
    return Finding(
        "link.unlinked",
        f"{name} {ref_text}; {tail}; not linked to any case: {_orphan_tail(h.modality)}",
        Severity.ERROR,
        h.path,
    )


def _no_dose(g: _Group) -> Finding:
    """ERROR: a structure set without dose is no case, and may belong to one."""
    label = g.struct.label or g.struct.sop_instance_uid
    plans = f" ({len(g.plans)} plan(s) without dose)" if g.plans else ""
    return Finding(
        "link.no_dose",
        f"structure set '{label}' has no RT Dose linked to it{plans}; not a checkable case: "
        f"{_orphan_tail('RTSTRUCT')}",
        Severity.ERROR,
        g.struct.path,
    )


def _no_uid(h: Header) -> Finding:
    """A file without SOP Instance UID cannot be linked: ERROR for RT objects, else WARNING."""
    if h.modality in _RT:
        name = _RT_NAMES[h.modality]
        return Finding(
            "file.no_uid",
            f"{name} without SOP Instance UID; it cannot be linked and is skipped: "
            f"{_orphan_tail(h.modality)}",
            Severity.ERROR,
            h.path,
        )
    return Finding(
        "file.no_uid",
        f"{h.modality} file without SOP Instance UID; skipped",
        Severity.WARNING,
        h.path,
    )


def _fallback(h: Header, what: str, ref: str | None) -> Finding:
    ref_text = f"references {what} {ref}, which was not found" if ref else f"names no {what}"
    return Finding(
        "link.by_frame",
        f"{h.modality} {ref_text}; linked to the structure set by frame of reference",
        Severity.WARNING,
        h.path,
    )


def _attach_ct(g: _Group, cts: list[Header], findings: list[Finding]) -> list[Header]:
    series = g.struct.referenced_series_uid
    images = [h for h in cts if series and h.series_instance_uid == series]
    if images:
        return images
    frame = g.struct.frame_of_reference_uid
    by_series = {h.series_instance_uid for h in cts if frame and h.frame_of_reference_uid == frame}
    if len(by_series) == 1:
        chosen = by_series.pop()
        g.findings.append(
            Finding(
                "link.ct_by_frame",
                f"CT series {chosen} linked by frame of reference",
                Severity.INFO,
                g.struct.path,
            )
        )
        return [h for h in cts if h.series_instance_uid == chosen]
    why = "several CT series share its frame" if by_series else "no CT series found"
    g.findings.append(
        Finding(
            "link.no_ct",
            f"no CT for the structure set ({why}); CT geometry unknown",
            Severity.INFO,
            g.struct.path,
        )
    )
    return []


def _other_modalities(heads: list[Header], findings: list[Finding]) -> None:
    others = Counter(h.modality for h in heads if h.modality not in (*_RT, "CT"))
    for modality, n in sorted(others.items()):
        first = next(h.path for h in heads if h.modality == modality)
        findings.append(
            Finding(
                "file.ignored_modality",
                f"{n} {modality} file(s) ignored (e.g. this one)",
                Severity.INFO,
                first,
            )
        )


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


#: Discovery findings naming a file that may hold part of a case but belongs to none.
ORPHAN_CODES = frozenset({"link.unlinked", "link.no_dose", "file.no_uid"})


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
