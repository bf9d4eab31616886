"""A linked-but-unloaded case (:class:`CaseRef`) and how it becomes a :class:`~rtcheck.model.Case`.

Also builds a :class:`CaseRef` from explicitly named files (:func:`explicit_ref`) and scans
folders for DICOM headers (:func:`scan`), which :mod:`rtcheck.io.discover` builds on.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtcheck.errors import Finding, InputError, LinkError, Severity
from rtcheck.io.common import sha256_file
from rtcheck.io.dicom import Header, load_dose, load_plan, read_image_series, read_structures, sniff
from rtcheck.model import Case, DoseGrid, ImageGeometry, Patient, Plan, SourceFile, StructureSet

PathLike = str | os.PathLike[str]

#: Name endings that announce a DICOM file; so does no ending and an all-digit one
#: (UID-named files such as ``1.2.840.10008.5``). Such a file that is not DICOM is a WARNING.
DICOM_SUFFIXES = frozenset({"", ".dcm", ".dicom", ".dic", ".ima"})


@dataclass(frozen=True)
class Scan:
    """Headers of the DICOM files under a folder, and what was skipped."""

    headers: tuple[Header, ...]
    findings: tuple[Finding, ...]
    unreadable: tuple[tuple[str, str], ...]


def scan(root: PathLike) -> Scan:
    """Read the header of every file under ``root`` (recursive; a file is scanned alone).

    Only regular files are opened: a named pipe (reading it would block discovery), socket or
    device node is skipped with a WARNING ``file.special``. Symbolic links are followed (a
    folder reached twice is searched once); a broken link, a file without read permission
    and a folder that cannot be listed are *unreadable* (they may hold part of a case).
    """
    base = str(Path(root))
    if not os.path.exists(base):
        raise InputError("no such file or folder", path=base)
    headers: list[Header] = []
    findings: list[Finding] = []
    unreadable: list[tuple[str, str]] = []
    for path in _walk(base, findings, unreadable):
        header = _scan_file(path, findings, unreadable)
        if header is not None:
            headers.append(header)
    return Scan(tuple(headers), tuple(findings), tuple(unreadable))


def _scan_file(
    path: str, findings: list[Finding], unreadable: list[tuple[str, str]]
) -> Header | None:
    """The header of one file, or None (the reason added to ``findings`` or ``unreadable``)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        why = "broken symbolic link" if os.path.islink(path) else "file disappeared"
        unreadable.append((path, why))
        return None
    except OSError as exc:
        unreadable.append((path, exc.strerror or str(exc)))
        return None
    kind = special_kind(mode)
    if kind is not None:
        findings.append(_special(path, kind))
        return None
    if not os.access(path, os.R_OK):
        unreadable.append((path, "permission denied"))
        return None
    try:
        header = sniff(path)
    except InputError as exc:
        unreadable.append((path, exc.message))
        return None
    if header is None:
        findings.append(_not_dicom(path))
        return None
    if header.problem:
        findings.append(
            Finding("file.unreadable", f"{header.modality}: {header.problem}", Severity.ERROR, path)
        )
    return header


def special_kind(mode: int) -> str | None:
    """What a file that is not a regular file is (``None`` for a regular file).

    ``mode`` is ``os.stat(path).st_mode`` (links followed).
    """
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _special(path: str, kind: str) -> Finding:
    """``file.special``: a named pipe, socket or device node, skipped without being opened."""
    return Finding(
        "file.special",
        f"{kind}, not a regular file; skipped without reading it (an export holds only "
        "regular files)",
        Severity.WARNING,
        path,
    )


def named_like_dicom(path: str) -> bool:
    """True when the file name announces DICOM (see :data:`DICOM_SUFFIXES`).

    Hidden files (``.DS_Store``, macOS ``._RD.dcm`` resource forks) never do.
    """
    name = os.path.basename(path)
    if name.startswith("."):
        return False
    suffix = os.path.splitext(name)[1].lower()
    return suffix in DICOM_SUFFIXES or suffix[1:].isdigit()


def _not_dicom(path: str) -> Finding:
    """``file.not_dicom``: an ERROR for a file named like DICOM, INFO for any other file.

    A ``.dcm`` file that is not DICOM (empty, or cut before its header) is most often an
    interrupted export: it may have been one of the plan's doses, so it keeps the plan from
    passing, as an unreadable file does.
    """
    if named_like_dicom(path):
        return Finding(
            "file.not_dicom",
            "named like a DICOM file but its content is not DICOM (an interrupted export?); "
            "it may have been part of the plan, e.g. a dose, so the plan cannot be cleared: "
            "export it again, or remove it",
            Severity.ERROR,
            path,
        )
    return Finding("file.not_dicom", "not a DICOM file; skipped", Severity.INFO, path)


def _walk(base: str, findings: list[Finding], unreadable: list[tuple[str, str]]) -> list[str]:
    """Every non-folder path under ``base`` (sorted), following links to folders once each."""
    if not os.path.isdir(base):
        return [base]
    out: list[str] = []
    seen: set[str] = set()

    def cannot_list(exc: OSError) -> None:
        where = exc.filename or base
        unreadable.append((str(where), f"folder cannot be listed: {exc.strerror or exc}"))

    # an explicit stack, not os.walk: os.walk recurses, so very deep nesting (~1000 folders)
    # would end in a RecursionError
    stack = [base]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            findings.append(
                Finding(
                    "file.folder_repeated",
                    f"folder already searched as {real} (symbolic link); not searched twice",
                    Severity.INFO,
                    folder,
                )
            )
            continue
        seen.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            cannot_list(exc)
            continue
        dirs = [e.path for e in entries if _is_dir(e)]
        folders = set(dirs)
        out.extend(e.path for e in entries if e.path not in folders)
        stack.extend(reversed(dirs))
    return out


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A folder, or a link to one (followed); False for a broken link."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


@dataclass(frozen=True)
class CaseRef:
    """The files of one case, linked but not yet loaded.

    Attributes
    ----------
    patient, study_instance_uid, label
        Identity of the case (study of the structure set).
    structure_set
        Header of the RT Structure Set.
    plans, doses, images
        Headers of the RT Plans, RT Doses and CT files of the case.
    findings
        Linking problems tolerated so far.
    conflicts
        Problems that make loading fail (ambiguous duplicates); :meth:`load` raises.
    """

    patient: Patient
    study_instance_uid: str | None
    label: str
    structure_set: Header
    plans: tuple[Header, ...] = ()
    doses: tuple[Header, ...] = ()
    images: tuple[Header, ...] = ()
    findings: tuple[Finding, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[SourceFile, ...]:
        """Every file of the case (without checksums; :meth:`load` adds them)."""
        heads = (self.structure_set, *self.plans, *self.doses, *self.images)
        return tuple(SourceFile(h.path, h.modality, h.sop_instance_uid) for h in heads)

    def load(
        self, *, allow_frame_mismatch: bool = False, relative_prescription_gy: float | None = None
    ) -> Case:
        """Read every object of the case (pixel data included) into a :class:`Case`.

        Raises
        ------
        LinkError
            Conflicting duplicates, or dose and structures on different frames of reference
            (unless ``allow_frame_mismatch``).
        InputError
            A file of the case cannot be read.
        """
        for h in (self.structure_set, *self.plans, *self.doses):
            if h.problem:
                raise InputError(f"{h.modality} of this case cannot be read: {h.problem}", h.path)
        if self.conflicts:
            raise LinkError("; ".join(self.conflicts))  # the messages name both files
        findings = [f for f in self.findings if f.code != "link.frame_mismatch"]
        structures = read_structures(self.structure_set.path)
        findings += _structure_findings(structures)
        plans = tuple(_read_plan(h.path, findings) for h in self.plans)
        doses = tuple(_read_dose(h.path, relative_prescription_gy, findings) for h in self.doses)
        for dose in doses:
            check_frames(dose, structures, allow_frame_mismatch, findings)
        findings += _dose_plan_findings(doses, plans)
        image = _read_image(self.images, structures, findings)
        files = tuple(
            SourceFile(f.path, f.modality, f.sop_instance_uid, sha256_file(f.path))
            for f in self.files
        )
        return Case(
            patient=self.patient,
            structure_set=structures,
            plans=plans,
            doses=doses,
            image=image,
            study_instance_uid=self.study_instance_uid,
            files=files,
            findings=tuple(_unique(findings)),
            label=self.label,
        )


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    out = []
    for f in findings:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _structure_findings(structures: StructureSet) -> list[Finding]:
    """Every finding of the structure set and its ROIs (Case.findings is the full list)."""
    out = list(structures.findings)
    for roi in structures.rois:
        out.extend(roi.findings)
    return out


def _read_plan(path: str, findings: list[Finding]) -> Plan:
    plan, found = load_plan(path)
    findings.extend(found)
    return plan


def _read_dose(path: str, relative_gy: float | None, findings: list[Finding]) -> DoseGrid:
    dose, found = load_dose(path, relative_prescription_gy=relative_gy)
    findings.extend(found)
    if dose.units_note.startswith("RELATIVE"):
        findings.append(
            Finding(
                "dose.relative",
                f"dose stored as RELATIVE values, converted with a stated prescription "
                f"({dose.units_note})",
                Severity.WARNING,
                path,
            )
        )
    return dose


def check_frames(
    dose: DoseGrid, structures: StructureSet, allow: bool, findings: list[Finding]
) -> None:
    if dose.frame_of_reference_uid == structures.frame_of_reference_uid:
        return
    text = (
        f"RT Dose frame of reference {dose.frame_of_reference_uid or '(none stated)'} differs "
        f"from the RT Structure Set's {structures.frame_of_reference_uid or '(none stated)'}"
    )
    if not allow:
        raise LinkError(
            f"{text}; the dose and the contours may not be in the same coordinates "
            "(allow with --allow-frame-mismatch only if you know they are)",
            path=dose.source,
        )
    findings.append(
        Finding(
            "link.frame_mismatch", f"{text}; accepted on request", Severity.WARNING, dose.source
        )
    )


def _dose_plan_findings(doses: tuple[DoseGrid, ...], plans: tuple[Plan, ...]) -> list[Finding]:
    out = []
    by_plan = Counter(d.referenced_plan_uid for d in doses)
    for plan in plans:
        kinds = [d.summation_type for d in doses if d.referenced_plan_uid == plan.sop_instance_uid]
        if len(kinds) > 1:
            out.append(
                Finding(
                    "link.several_doses",
                    f"plan '{plan.label}' has {len(kinds)} RT Doses ({', '.join(kinds)}); "
                    "take care not to count a dose twice",
                    Severity.INFO,
                    plan.source,
                    plan.label,
                )
            )
        if plan.sop_instance_uid not in by_plan:
            out.append(
                Finding(
                    "link.plan_without_dose",
                    f"plan '{plan.label}' has no RT Dose",
                    Severity.WARNING,
                    plan.source,
                    plan.label,
                )
            )
    return out


def _read_image(
    images: tuple[Header, ...], structures: StructureSet, findings: list[Finding]
) -> ImageGeometry | None:
    if not images:
        return None
    try:
        image = read_image_series([h.path for h in images])
    except InputError as exc:
        findings.append(
            Finding(
                "image.unusable", f"CT geometry not used: {exc.message}", Severity.WARNING, exc.path
            )
        )
        return None
    if image.frame_of_reference_uid != structures.frame_of_reference_uid:
        findings.append(
            Finding(
                "image.frame_mismatch",
                f"CT frame of reference {image.frame_of_reference_uid} differs from the "
                f"structure set's {structures.frame_of_reference_uid}",
                Severity.WARNING,
                images[0].path,
            )
        )
    return image


def _as_list(value: PathLike | Sequence[PathLike] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [str(value)]
    return [str(v) for v in value]


def _header_of(path: str, modality: str, option: str) -> Header:
    kind = special_kind(os.stat(path).st_mode) if os.path.exists(path) else None
    if kind is not None:  # never open a named pipe or device: reading it may block
        raise InputError(f"given as {option} but this is {kind}, not a regular file", path)
    header = sniff(path)
    if header is None:
        raise InputError(f"not a DICOM file (given as {option})", path=path)
    if header.modality != modality:
        raise InputError(f"given as {option} but this is {header.modality}, not {modality}", path)
    return header


def explicit_ref(
    folder: PathLike | None,
    rtstruct: PathLike | None,
    rtdose: PathLike | Sequence[PathLike] | None,
    rtplan: PathLike | Sequence[PathLike] | None = None,
) -> CaseRef:
    """A :class:`CaseRef` from named files; ``folder`` (optional) supplies plans and CT.

    Raises
    ------
    InputError
        A file is missing, not DICOM or not the expected object; structures or dose missing.
    LinkError
        The files belong to different patients.
    """
    if rtstruct is None or not _as_list(rtdose):
        raise InputError("give both an RT Structure Set and at least one RT Dose file")
    struct = _header_of(str(rtstruct), "RTSTRUCT", "RT Structure Set")
    doses = [_header_of(p, "RTDOSE", "RT Dose") for p in _as_list(rtdose)]
    plans = [_header_of(p, "RTPLAN", "RT Plan") for p in _as_list(rtplan)]
    images: list[Header] = []
    findings: list[Finding] = []
    if folder is not None and os.path.isdir(folder):
        plans, images = _from_folder(folder, struct, doses, plans)
    _check_patients([struct, *doses, *plans])
    findings += _explicit_link_findings(struct, doses, plans)
    labels = [p.label or p.sop_instance_uid or "?" for p in plans]
    label = " + ".join(labels) if labels else (struct.label or "structures")
    return CaseRef(
        patient=struct.patient,
        study_instance_uid=struct.study_instance_uid,
        label=f"{struct.patient.id or 'unknown patient'}: {label}",
        structure_set=struct,
        plans=tuple(plans),
        doses=tuple(doses),
        images=tuple(images),
        findings=tuple(findings),
    )


def _from_folder(
    folder: PathLike, struct: Header, doses: list[Header], plans: list[Header]
) -> tuple[list[Header], list[Header]]:
    """Plans referenced by the doses and the structure set's CT series, found in ``folder``."""
    found = scan(folder).headers
    wanted = {d.referenced_plan_uid for d in doses} - {p.sop_instance_uid for p in plans}
    seen = {p.sop_instance_uid for p in plans}
    for h in found:
        if (
            h.modality == "RTPLAN"
            and h.sop_instance_uid in wanted
            and h.sop_instance_uid not in seen
        ):
            plans.append(h)
            seen.add(h.sop_instance_uid)
    series = struct.referenced_series_uid
    images = [h for h in found if h.modality == "CT" and series and h.series_instance_uid == series]
    uids: set[str | None] = set()
    unique = []
    for h in images:
        if h.sop_instance_uid not in uids:
            uids.add(h.sop_instance_uid)
            unique.append(h)
    return plans, unique


def _check_patients(heads: list[Header]) -> None:
    ids = sorted({h.patient.id or "" for h in heads})
    if len(ids) > 1:
        listing = "; ".join(
            f"{h.modality} {Path(h.path).name}: patient {h.patient.id!r}" for h in heads
        )
        raise LinkError(f"the files belong to different patients ({listing})", path=heads[0].path)


def _explicit_link_findings(
    struct: Header, doses: list[Header], plans: list[Header]
) -> list[Finding]:
    out = []
    plan_uids = {p.sop_instance_uid for p in plans}
    for d in doses:
        if d.referenced_plan_uid and d.referenced_plan_uid not in plan_uids:
            out.append(
                Finding(
                    "link.plan_missing",
                    f"RT Dose references plan {d.referenced_plan_uid}, which was not given; "
                    "its fractions and prescription are unknown",
                    Severity.WARNING,
                    d.path,
                )
            )
    for p in plans:
        ref = p.referenced_structure_set_uid
        if ref and ref != struct.sop_instance_uid:
            out.append(
                Finding(
                    "link.other_structure_set",
                    f"plan '{p.label}' references structure set {ref}, not the one given "
                    f"({struct.sop_instance_uid})",
                    Severity.WARNING,
                    p.path,
                    p.label,
                )
            )
    return out
