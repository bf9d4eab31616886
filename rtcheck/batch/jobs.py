"""Discovery -> batch jobs: stable case keys, report folders and input fingerprints.

A job is one case found by :func:`rtcheck.io.discover.discover`, or one file that could not
be made into a case (unreadable DICOM, an RT object that links to nothing). The latter are
recorded as ``error`` entries so that nothing under the batch root is silently dropped.

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
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from rtcheck.errors import Finding
from rtcheck.io.common import sha256_file
from rtcheck.io.discover import CaseRef, Discovery

__all__ = [
    "DEFAULT_CHECKER",
    "CaseJob",
    "JobContext",
    "case_key",
    "fingerprint",
    "options_dict",
    "plan_jobs",
    "relative",
    "slug_for",
]

#: The function that checks one loaded case: ``(case, protocol, options) -> Result``.
DEFAULT_CHECKER = "rtcheck.pipeline:check_case"

#: Discovery findings that mean "this file is a case we could not build": recorded as errors.
ERROR_FINDINGS = frozenset({"link.no_dose", "link.unlinked"})


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
    """SHA-256 of a file, or a marker naming why it cannot be read (then the load fails)."""
    try:
        return sha256_file(path)
    except OSError as exc:
        return f"unreadable:{exc.errno}"


def _hash_all(paths: Iterable[str], workers: int) -> dict[str, str]:
    unique = sorted(set(paths))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(unique, pool.map(_safe_hash, unique), strict=True))


def plan_jobs(found: Discovery, ctx: JobContext, *, hash_workers: int = 4) -> list[CaseJob]:
    """One job per case and per file-level error of ``found``, in deterministic order.

    Input files are hashed here (in threads) so that unchanged cases can be skipped before
    any worker starts.
    """
    root = ctx.root
    base = ctx.base()
    digests = _hash_all(
        [f.path for ref in found.cases for f in ref.files]
        + [p for p, _ in found.unreadable]
        + [f.source for f in found.findings if f.code in ERROR_FINDINGS and f.source],
        hash_workers,
    )
    jobs: dict[str, CaseJob] = {}
    for ref in found.cases:
        key = case_key(ref, root)
        files = tuple(sorted((relative(f.path, root), digests[f.path]) for f in ref.files))
        jobs[key] = CaseJob(
            key=key,
            slug=slug_for(key, ref.patient.id),
            label=ref.label,
            patient_id=ref.patient.id,
            study_uid=ref.study_instance_uid,
            ref=ref,
            files=files,
            fingerprint=fingerprint(base, key, files),
        )
    problems = [(p, f"file could not be read: {why}") for p, why in found.unreadable]
    problems += [(f.source, f.message) for f in _error_findings(found.findings)]
    for path, message in problems:
        _add_file_error(jobs, base, root, path, message, digests)
    return sorted(jobs.values(), key=lambda j: (j.patient_id or "", j.label, j.key))


def _error_findings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.code in ERROR_FINDINGS and f.source]


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
