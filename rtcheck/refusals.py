"""Datasets the receiver refused (status 0xC210): kept, recorded per study, never silent.

``rtcheck serve`` refuses a dataset it cannot read whole (truncated, unreadable header, a
modality it does not take). The sender is told, but a refused RT Dose whose RT Plan was never
sent would otherwise leave no trace in the case's report: the case would be checked, and could
pass, without that dose. So every refusal is kept with a record of what it was:

* ``RESULTS/rejected/<study>/<token>.dcm`` and ``<token>.json`` (SOP Class and Instance UID
  from the C-STORE request, the reason, the peer) when the dataset's Study Instance UID can be
  read (:func:`rtcheck.io.dicom.sniff`, else :func:`rtcheck.io.salvage.salvage_study_uid`).
  When a case of that study is checked, every refusal of the study becomes a finding of every
  case of the study (:func:`attach_refusals`): an ERROR, so the verdict cannot be ``pass``,
  unless an object with the same SOP Instance UID was received intact later (a resend), then
  a WARNING. The record is on disk, so a receiver restarted in between still sees it.
* ``RESULTS/rejected/<token>.dcm`` and ``.json`` when the study cannot be read: it cannot be
  tied to a case, so it is an ``error`` entry of its own (:func:`refusal_job`), in the
  database and the summaries, like a batch file that belongs to no case.

The record is written before the dataset is moved beside it: a crash in between leaves a
record (the refusal still blocks) rather than an unrecorded file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from rtcheck.batch.jobs import CaseJob, JobContext, fingerprint, job_files, relative, slug_for
from rtcheck.errors import Finding, Severity
from rtcheck.io.common import sha256_file
from rtcheck.report.atomic import atomic_write_bytes

__all__ = [
    "ASSOCIATION_ABORTED",
    "REFUSED_STATUS",
    "Refusal",
    "attach_refusals",
    "keep_refused",
    "refusal_finding",
    "refusal_job",
    "study_refusals",
    "supersede_aborts",
]

#: DIMSE status of a refused dataset ("cannot understand").
REFUSED_STATUS = 0xC210
#: ``sop_class_uid`` of a record that says an association ended without release (no dataset).
ASSOCIATION_ABORTED = "association-aborted"

_CLASS_NAMES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.8": "RT Ion Plan",
}


@dataclass(frozen=True)
class Refusal:
    """One refused dataset.

    Attributes
    ----------
    path
        The dataset as received, kept under ``RESULTS/rejected/``.
    sop_class_uid, sop_instance_uid
        From the C-STORE request (None when not stated).
    reason
        Why it was refused (one line).
    peer
        ``AE title@address`` of the sender.
    study_uid
        Its Study Instance UID, when it could be read.
    superseded
        For an aborted association: the study was sent again afterwards in an association
        that ended normally (the record then only warns).
    """

    path: str
    sop_class_uid: str | None
    sop_instance_uid: str | None
    reason: str
    peer: str = "peer"
    study_uid: str | None = None
    superseded: bool = False

    @property
    def what(self) -> str:
        """``RT Dose 1.2.3...`` (SOP class and instance), or the kept file's name."""
        kind = _CLASS_NAMES.get(self.sop_class_uid or "", self.sop_class_uid or "")
        text = " ".join(x for x in (kind, self.sop_instance_uid) if x)
        return text or Path(self.path).name

    def to_json(self) -> bytes:
        """The record written beside the kept dataset."""
        doc = {
            "file": Path(self.path).name,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "reason": self.reason,
            "peer": self.peer,
            "study_uid": self.study_uid,
            "superseded": self.superseded,
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def keep_refused(tmp: Path, folder: Path, refusal: Refusal) -> Refusal:
    """Move the received file ``tmp`` into ``folder`` with its record; the kept refusal."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = replace(refusal, path=str(folder / tmp.name))
    atomic_write_bytes(folder / f"{tmp.stem}.json", kept.to_json())
    os.replace(tmp, kept.path)
    return kept


def _read_record(path: Path) -> Refusal:
    dataset = str(path.with_suffix(".dcm"))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Refusal(
            dataset,
            doc.get("sop_class_uid"),
            doc.get("sop_instance_uid"),
            str(doc.get("reason") or "reason not recorded"),
            str(doc.get("peer") or "peer"),
            doc.get("study_uid"),
            bool(doc.get("superseded", False)),
        )
    except (OSError, ValueError, AttributeError) as exc:  # a damaged record still counts
        return Refusal(dataset, None, None, f"its record {path.name} could not be read ({exc})")


def study_refusals(folder: Path) -> list[Refusal]:
    """The refusals recorded in ``RESULTS/rejected/<study>/`` (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return [_read_record(p) for p in sorted(folder.glob("*.json"))]


def refusal_finding(refusal: Refusal, resent: bool) -> Finding:
    """The finding a refusal puts on each case of its study (ERROR unless ``resent``)."""
    if refusal.sop_class_uid == ASSOCIATION_ABORTED:
        if refusal.superseded:
            message = (
                f"{refusal.reason} (from {refusal.peer}); the study was sent again afterwards "
                "in an association that ended normally"
            )
            return Finding("file.association_aborted", message, Severity.WARNING, refusal.path)
        message = (
            f"{refusal.reason} (from {refusal.peer}); the plan cannot be cleared until the "
            "study is sent again in an association that ends normally"
        )
        return Finding("file.association_aborted", message, Severity.ERROR, refusal.path)
    said = (
        f"object {refusal.what} of this study was refused by the receiver (status 0xC210): "
        f"{refusal.reason}"
    )
    if resent:
        message = (
            f"{said}; an object with the same SOP Instance UID was received intact, and that "
            "copy was checked"
        )
        return Finding("file.refused", message, Severity.WARNING, refusal.path)
    message = (
        f"{said}; it may be part of this case (e.g. the dose of another plan, missing from "
        "every organ), so the plan cannot be cleared until it is sent again intact "
        f"(kept as {refusal.path})"
    )
    return Finding("file.refused", message, Severity.ERROR, refusal.path)


def supersede_aborts(folder: Path) -> int:
    """Mark the aborted-association records in ``folder`` as superseded; how many."""
    n = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = _read_record(path)
        if record.sop_class_uid == ASSOCIATION_ABORTED and not record.superseded:
            atomic_write_bytes(path, replace(record, superseded=True).to_json())
            n += 1
    return n


def _digest(path: str) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        return f"unreadable:{exc.errno}"


def attach_refusals(
    jobs: list[CaseJob], refusals: list[Refusal], stored_uids: set[str], ctx: JobContext
) -> list[CaseJob]:
    """``jobs`` with every refusal of their study as a finding of each case job.

    ``stored_uids``: SOP Instance UIDs received intact in the study (a refusal of one of them
    was resent, so it is a WARNING). The kept datasets become inputs of each case (part of its
    fingerprint), so a case checked before a refusal is checked again, not reused.
    """
    if not refusals:
        return jobs
    found = tuple(
        refusal_finding(r, r.sop_instance_uid is not None and r.sop_instance_uid in stored_uids)
        for r in refusals
    )
    kept = tuple(
        (relative(r.path, ctx.root), _digest(r.path) + (":superseded" if r.superseded else ""))
        for r in refusals
    )
    out = []
    for job in jobs:
        if job.ref is None:
            out.append(job)
            continue
        extra = tuple(sorted(set(job.extra_files) | set(kept)))
        files = job_files(job.files, extra)
        out.append(
            replace(
                job,
                ref=replace(job.ref, findings=job.ref.findings + found),
                files=files,
                extra_files=extra,
                fingerprint=fingerprint(ctx.base(), job.key, files),
            )
        )
    return out


def refusal_job(refusal: Refusal, ctx: JobContext) -> CaseJob:
    """The ``error`` entry of a refusal whose study could not be read."""
    label = relative(refusal.path, ctx.out_dir)
    key = f"file:{label}"
    message = (
        f"refused by the receiver (status 0xC210): {refusal.reason}; {refusal.what} from "
        f"{refusal.peer}; its Study Instance UID could not be read, so it cannot be tied to a "
        "case: have it sent again intact"
    )
    one_line = " ".join(message.split())
    files = ((label, _digest(refusal.path)),)
    return CaseJob(
        key=key,
        slug=slug_for(key, None),
        label=label,
        patient_id=None,
        study_uid=None,
        ref=None,
        files=files,
        fingerprint=fingerprint(ctx.base(), key, files, extra=one_line),
        error=f"{label}: {one_line}",
    )
