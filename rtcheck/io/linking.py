"""Linking discovered headers into cases: RT Dose -> RT Plan -> RT Structure Set -> CT.

Used by :func:`rtcheck.io.discover.discover` after the scan. One case per RT Structure Set, with
every RT Plan that references it and every RT Dose that references those plans; the CT series it
was drawn on. Each fallback is disclosed as a finding:

1. RT Dose -> RT Plan by ReferencedRTPlanSequence; RT Plan -> RT Structure Set by
   ReferencedStructureSetSequence; RT Structure Set -> CT by the referenced series UID.
2. A plan or dose whose reference cannot be followed is attached to the patient's only
   structure set on the same frame of reference; with several candidates it stays unlinked.
3. CT: the referenced series, else the patient's only CT series on the structure set's frame.

Objects that cannot be linked become the findings of :mod:`rtcheck.io.leftovers`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from rtcheck.errors import Finding, Severity
from rtcheck.io.caseload import CaseRef
from rtcheck.io.common import sha256_file
from rtcheck.io.dicom import Header
from rtcheck.io.leftovers import (
    RT_LINKED,
    no_dose_finding,
    no_uid_finding,
    unlinked_finding,
)

__all__ = ["deduplicate", "link_all"]


def deduplicate(
    headers: list[Header], findings: list[Finding]
) -> tuple[list[Header], dict[str, str]]:
    """Keep one file per SOP Instance UID; conflicting copies of RT objects are recorded."""
    by_uid: dict[str, list[Header]] = defaultdict(list)
    kept: list[Header] = []
    for h in sorted(headers, key=lambda h: h.path):
        if h.sop_instance_uid:
            by_uid[h.sop_instance_uid].append(h)
        else:
            findings.append(no_uid_finding(h))
    conflicts: dict[str, str] = {}
    for uid, group in by_uid.items():
        kept.append(group[0])
        if len(group) == 1:
            continue
        digest = sha256_file(group[0].path)
        for other in group[1:]:
            same = sha256_file(other.path) == digest
            text = "identical copy" if same else "DIFFERENT content"
            conflict = not same and group[0].modality in RT_LINKED
            findings.append(
                Finding(
                    "file.duplicate",
                    f"same SOP Instance UID as {group[0].path} ({text}); ignored",
                    Severity.ERROR if conflict else Severity.WARNING,
                    other.path,
                )
            )
            if conflict:
                conflicts[uid] = (
                    f"{group[0].modality} {uid} exists in two different versions "
                    f"({group[0].path} and {other.path}); remove one"
                )
    return kept, conflicts


def link_all(
    headers: list[Header], conflicts: dict[str, str], findings: list[Finding]
) -> list[CaseRef]:
    """Cases of every patient (by PatientID), sorted by patient then label.

    ``conflicts`` (SOP Instance UID -> message) marks RT objects found in two different
    versions (their case fails on load); unlinked objects and fallbacks go to ``findings``.
    """
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
            findings.append(no_dose_finding(g.struct, len(g.plans)))
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
                    unlinked_finding(
                        p, "structure set", p.referenced_structure_set_uid, len(candidates)
                    )
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
                findings.append(unlinked_finding(d, "plan", d.referenced_plan_uid, len(candidates)))
                continue
            g = candidates[0]
            g.findings.append(_fallback(d, "plan", d.referenced_plan_uid))
        g.doses.append(d)


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
    others = Counter(h.modality for h in heads if h.modality not in (*RT_LINKED, "CT"))
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
