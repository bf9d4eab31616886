"""Discovery -> batch jobs: stable case keys, report folders and input fingerprints.

A job is one case found by :func:`rtcheck.io.discover.discover`, or one file that could not
be made into a case (unreadable DICOM, an RT object that links to nothing: the *orphans* of
:func:`rtcheck.io.discover.orphan_findings`). An orphan inside the folder of exactly one case
(:func:`rtcheck.io.discover.case_folder`) may be part of that case (another lesion's dose):
it becomes an ERROR finding of the case, which then cannot pass. Any other orphan is recorded
as an ``error`` entry, so that nothing under the batch root is silently dropped. WARNING
findings of discovery (a non-DICOM ``*.dcm``, a named pipe) inside exactly one case's folder
are attached to that case too, as ``rtcheck check`` does for a single folder.

The fingerprint that decides whether a case can be reused is the SHA-256 of a canonical JSON
document holding: the case key, every input file's path relative to the root and SHA-256, the
protocol id, version and file SHA-256, the rtcheck version, the check options and the report
formats (see :func:`fingerprint`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from rtcheck.errors import Finding, Severity
from rtcheck.io.common import sha256_file
from rtcheck.io.discover import CaseRef, Discovery, case_folder, orphan_findings

__all__ = [
    "DEFAULT_CHECKER",
    "CaseJob",
    "JobContext",
    "case_key",
    "fingerprint",
    "job_files",
    "options_dict",
    "plan_jobs",
    "relative",
    "slug_for",
]

#: The function that checks one loaded case: ``(case, protocol, options) -> Result``.
DEFAULT_CHECKER = "rtcheck.pipeline:check_case"


@dataclass(frozen=True)
class JobContext:
    """Everything a worker needs besides the case (picklable, sent with every job).

    Attributes
    ----------
    root, out_dir
        Absolute batch root and results folder (shared by all workers).
    protocol_ref
        What the worker passes to ``load_protocol`` (an id, or a file path).
    protocol_id, protocol_version, protocol_sha256
        Identity of the protocol the parent loaded; workers refuse a different one.
    options
        :class:`rtcheck.pipeline.CheckOptions` (or None for the defaults).
    formats
        Report formats written per case (``()`` for none).
    rtcheck_version
        Version of the parent; workers refuse to run another.
    checker
        ``"module:function"`` checking one loaded case: ``(case, protocol, options) ->
        Result``. Only tests and benchmarks change it.
    """

    root: str
    out_dir: str
    protocol_ref: str
    protocol_id: str
    protocol_version: str
    protocol_sha256: str | None
    options: Any
    formats: tuple[str, ...]
    rtcheck_version: str
    checker: str = DEFAULT_CHECKER

    def base(self) -> dict[str, Any]:
        """The parts of every fingerprint that do not depend on the case."""
        return {
            "rtcheck": self.rtcheck_version,
            "protocol": [self.protocol_id, self.protocol_version, self.protocol_sha256],
            "options": options_dict(self.options),
            "formats": sorted(self.formats),
            "checker": None if self.checker == DEFAULT_CHECKER else self.checker,
        }


@dataclass(frozen=True)
class CaseJob:
    """One unit of batch work.

    Attributes
    ----------
    key
        Stable identity: ``case:<RT Structure Set SOP Instance UID>`` or ``file:<relpath>``.
    slug
        Report folder name under ``RESULTS/cases/``.
    label, patient_id, study_uid
        Identity shown in summaries.
    ref
        The linked case to load, or None for a file-level error entry.
    files
        ``(path relative to the root, SHA-256)`` of every input file, sorted.
    fingerprint
        See :func:`fingerprint`.
    error
        For file-level error entries: the one-line message.
    extra_files
        ``(path relative to the root, SHA-256)`` of files in the case's folder whose findings
        were attached to the case (see module docstring); part of ``files`` and of the
        fingerprint, so fixing or removing such a file recomputes the case.
    """

    key: str
    slug: str
    label: str
    patient_id: str | None
    study_uid: str | None
    ref: CaseRef | None
    files: tuple[tuple[str, str], ...]
    fingerprint: str
    error: str | None = None
    extra_files: tuple[tuple[str, str], ...] = ()


def options_dict(options: Any) -> dict[str, Any]:
    """JSON-ready form of check options (a dataclass, a mapping or None)."""
    if options is None:
        return {}
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        raw = dataclasses.asdict(options)
    elif isinstance(options, dict):
        raw = dict(options)
    else:
        raw = {"repr": repr(options)}
    return json.loads(json.dumps(raw, sort_keys=True, default=str))


def fingerprint(
    base: dict[str, Any], key: str, files: Iterable[tuple[str, str]], extra: str | None = None
) -> str:
    """SHA-256 (hex) of the canonical JSON of the case's inputs and the run's settings."""
    doc = {"base": base, "key": key, "files": sorted(files), "extra": extra}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators (absolute if outside the root)."""
    full = os.path.abspath(path)
    rel = os.path.relpath(full, root)
    if rel.startswith(os.pardir):
        return full.replace(os.sep, "/")
    return rel.replace(os.sep, "/")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug_for(key: str, patient_id: str | None) -> str:
    """Folder name: sanitised patient ID (max 40 characters) and 10 hex digits of the key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    stem = _UNSAFE.sub("_", patient_id or "").strip("._")[:40] or "unknown"
    if key.startswith("file:"):
        stem = "_files"
    return f"{stem}-{digest}"


def case_key(ref: CaseRef, root: str) -> str:
    """``case:<structure set UID>`` (or its path when the UID is missing)."""
    uid = ref.structure_set.sop_instance_uid
    return f"case:{uid}" if uid else f"case:{relative(ref.structure_set.path, root)}"


def _safe_hash(path: str) -> str:
    """SHA-256 of a file, or a marker naming why it cannot be read (then the load fails).

    Only regular files are opened: hashing a named pipe would block.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return "not-a-regular-file"
        return sha256_file(path)
    except OSError as exc:
        return f"unreadable:{exc.errno}"


def _hash_all(paths: Iterable[str], workers: int) -> dict[str, str]:
    unique = sorted(set(paths))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(unique, pool.map(_safe_hash, unique), strict=True))


@dataclass(frozen=True)
class _Leftover:
    """A discovery finding about a file that belongs to no case; ``row``: its error text."""

    finding: Finding
    row: str | None


def _leftovers(found: Discovery) -> list[_Leftover]:
    """Orphans (with the text of their error entry) and other non-INFO file findings."""
    orphans = orphan_findings(found)
    why = dict(found.unreadable)
    # A file read only in part (truncated...) is an orphan because what names its links was
    # lost: its damage, not the missing link, is the cause to show first.
    damaged = {
        f.source: f.message for f in found.findings if f.code == "file.unreadable" and f.source
    }
    out = []
    for f in orphans:
        if not f.source:
            continue
        if f.source in why:
            text = f"file could not be read: {why[f.source]}"
        elif f.source in damaged:
            text = f"{damaged[f.source]} (as read: {f.message})"
        else:
            text = f.message
        out.append(_Leftover(f, text))
    out += [
        _Leftover(f, None)
        for f in found.findings
        if f.source and f.severity is not Severity.INFO and f not in orphans
    ]
    return out


def _inside(path: str, folder: str) -> bool:
    full = os.path.abspath(path)
    return os.path.commonpath([full, folder]) == folder


def _attach(
    cases: Sequence[CaseRef], leftovers: Sequence[_Leftover]
) -> tuple[dict[int, list[Finding]], list[_Leftover]]:
    """Findings per case index for leftovers in exactly one case's folder; the others."""
    folders = [case_folder(ref) for ref in cases]
    attached: dict[int, list[Finding]] = defaultdict(list)
    rest = []
    for item in leftovers:
        source = item.finding.source or ""
        owners = [i for i, folder in enumerate(folders) if _inside(source, folder)]
        if len(owners) > 1:
            # the most specific folder wins: a case folder widened to a parent (e.g. by a
            # misfiled file of that case) must not take the leftovers of the cases inside it
            depth = {i: os.path.abspath(folders[i]).count(os.sep) for i in owners}
            deepest = max(depth.values())
            owners = [i for i in owners if depth[i] == deepest]
        if len(owners) == 1:
            attached[owners[0]].append(item.finding)
        else:
            rest.append(item)
    return attached, rest


def job_files(
    case_files: Iterable[tuple[str, str]], extra_files: Iterable[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """The input files of a case job: its own files and the attached ones, sorted, unique."""
    return tuple(sorted(set(case_files) | set(extra_files)))


def plan_jobs(found: Discovery, ctx: JobContext, *, hash_workers: int = 4) -> list[CaseJob]:
    """One job per case and per file-level error of ``found``, in deterministic order.

    Input files are hashed here (in threads) so that unchanged cases can be skipped before
    any worker starts. Orphans and warnings inside exactly one case's folder are attached to
    that case (module docstring).
    """
    root = ctx.root
    base = ctx.base()
    leftovers = _leftovers(found)
    attached, rest = _attach(found.cases, leftovers)
    digests = _hash_all(
        [f.path for ref in found.cases for f in ref.files]
        + [item.finding.source or "" for item in leftovers],
        hash_workers,
    )
    jobs: dict[str, CaseJob] = {}
    for i, ref in enumerate(found.cases):
        key = case_key(ref, root)
        extra = attached.get(i, [])
        extra_files = tuple(
            sorted({(relative(f.source or "", root), digests[f.source or ""]) for f in extra})
        )
        own = [(relative(f.path, root), digests[f.path]) for f in ref.files]
        files = job_files(own, extra_files)
        jobs[key] = CaseJob(
            key=key,
            slug=slug_for(key, ref.patient.id),
            label=ref.label,
            patient_id=ref.patient.id,
            study_uid=ref.study_instance_uid,
            ref=replace(ref, findings=ref.findings + tuple(extra)) if extra else ref,
            files=files,
            fingerprint=fingerprint(base, key, files),
            extra_files=extra_files,
        )
    for item in rest:
        row = item.row
        if row is None and _blocks_a_case(item.finding):
            row = f"{item.finding.message} (in no case's folder; it may belong to any case)"
        if row is not None:
            _add_file_error(jobs, base, root, item.finding.source, row, digests)
    return sorted(jobs.values(), key=lambda j: (j.patient_id or "", j.label, j.key))


def _blocks_a_case(f: Finding) -> bool:
    """A discovery finding that would keep a case from passing (a ``*.dcm`` file that is not
    DICOM: an interrupted export), outside every case: an ``error`` entry, never dropped."""
    return f.code == "file.not_dicom" and f.severity is not Severity.INFO


def _add_file_error(
    jobs: dict[str, CaseJob],
    base: dict[str, Any],
    root: str,
    path: str | None,
    message: str,
    digests: dict[str, str],
) -> None:
    if path is None:
        return
    rel = relative(path, root)
    key = f"file:{rel}"
    one_line = " ".join(message.split())
    old = jobs.get(key)
    if old is not None and old.error:
        one_line = f"{old.error.removeprefix(rel + ': ')}; {one_line}"
    files = ((rel, digests.get(path, "")),)
    jobs[key] = CaseJob(
        key=key,
        slug=slug_for(key, None),
        label=rel,
        patient_id=None,
        study_uid=None,
        ref=None,
        files=files,
        fingerprint=fingerprint(base, key, files, extra=one_line),
        error=f"{rel}: {one_line}",
    )
