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

__all__ = ["CaseRef", "Discovery", "discover", "load_case", "single_case"]


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
            findings.append(
                Finding(
                    "file.no_uid",
                    "DICOM file without SOP Instance UID; skipped",
                    Severity.WARNING,
                    h.path,
                )
            )
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
            findings.append(
                Finding(
                    "link.no_dose",
                    f"structure set '{g.struct.label or g.struct.sop_instance_uid}' has no "
                    f"RT Dose linked to it ({len(g.plans)} plan(s)); not a checkable case",
                    Severity.WARNING,
                    g.struct.path,
                )
            )
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


def _unlinked(h: Header, what: str, ref: str | None, n: int) -> Finding:
    ref_text = f"references {what} {ref}, which was not found" if ref else f"names no {what}"
    tail = (
        "no structure set on its frame of reference"
        if n == 0
        else (f"{n} structure sets share its frame of reference (ambiguous)")
    )
    return Finding(
        "link.unlinked", f"{h.modality} {ref_text}; {tail}; not used", Severity.WARNING, h.path
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
    """Add the folder's unreadable files and leftovers to the only case's findings."""
    extra = [
        Finding("file.unreadable", f"file could not be read: {why}", Severity.WARNING, p)
        for p, why in found.unreadable
    ]
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
