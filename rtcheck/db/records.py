"""Plain records exchanged with the results database (no SQLAlchemy objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CACHEABLE_ERROR_KINDS", "VERDICTS", "CaseRecord", "RunInfo", "utc_now"]

#: Verdicts of a case in a batch, worst last in :data:`rtcheck.batch.WORST_ORDER`.
VERDICTS = ("pass", "fail", "incomplete", "error")

#: Errors that come from the input itself (re-running unchanged input gives the same error),
#: so an unchanged case with such an error is not recomputed. Other errors (a crashed worker,
#: a full disk) are retried on the next run.
CACHEABLE_ERROR_KINDS = frozenset({"input"})


def utc_now() -> datetime:
    """Current time, UTC, to the microsecond."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class CaseRecord:
    """What a batch knows about one case evaluation (one ``cases`` row, without its details).

    Attributes
    ----------
    key
        Stable identity of the case within its root (``case:<RT Structure Set UID>`` or
        ``file:<relative path>`` for a file that could not be made into a case).
    fingerprint
        SHA-256 over the inputs' hashes, protocol, rtcheck version and options.
    slug
        Folder name of the case's reports under ``RESULTS/cases/``.
    label
        Human label (patient ID and plan labels).
    patient_id, study_uid
        Identity, when known.
    protocol_id, protocol_version, rtcheck_version
        What it was checked with.
    verdict
        ``pass``, ``fail``, ``incomplete`` or ``error``.
    error, error_kind
        One-line message and kind (``input``, ``internal``, ``output``, ``worker``) for errors.
    counts
        Constraint counts ``{"pass": n, "fail": n, "not_evaluated": n}``.
    n_findings, n_inputs
        Number of findings (case and lesions) and of input files.
    reports
        Report files, relative to the results folder, sorted.
    created
        When the evaluation was computed (UTC); not part of any summary file.
    seconds
        Wall time of the evaluation in its worker.
    error_detail
        Traceback for unexpected errors (kept in the database only).
    """

    key: str
    fingerprint: str
    slug: str
    label: str
    patient_id: str | None
    study_uid: str | None
    protocol_id: str
    protocol_version: str
    rtcheck_version: str
    verdict: str
    error: str | None = None
    error_kind: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    n_findings: int = 0
    n_inputs: int = 0
    reports: tuple[str, ...] = ()
    created: datetime = field(default_factory=utc_now)
    seconds: float | None = None
    error_detail: str | None = None

    @property
    def cacheable(self) -> bool:
        """True when an unchanged case with this outcome need not be recomputed."""
        return self.verdict != "error" or self.error_kind in CACHEABLE_ERROR_KINDS

    def summary_dict(self) -> dict[str, Any]:
        """The fields a summary file shows (no times: summaries are reproducible)."""
        return {
            "key": self.key,
            "patient_id": self.patient_id,
            "study_uid": self.study_uid,
            "label": self.label,
            "verdict": self.verdict,
            "n_pass": self.counts.get("pass", 0),
            "n_fail": self.counts.get("fail", 0),
            "n_not_evaluated": self.counts.get("not_evaluated", 0),
            "n_findings": self.n_findings,
            "n_inputs": self.n_inputs,
            "error": self.error,
            "reports": list(self.reports),
            "protocol_id": self.protocol_id,
            "protocol_version": self.protocol_version,
        }


@dataclass(frozen=True)
class RunInfo:
    """What a run was asked to do (one ``runs`` row)."""

    kind: str
    root: str
    out_dir: str
    protocol_id: str
    protocol_version: str
    protocol_sha256: str | None
    rtcheck_version: str
    options: dict[str, Any]
    executor: str
