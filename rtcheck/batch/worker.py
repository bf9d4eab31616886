"""What runs in a worker process (local pool, Dask worker, or in-process for ``--jobs 1``).

:func:`run_job` never raises for a bad case: every problem becomes an ``error`` record with a
one-line message, so one unreadable case cannot stop a batch. It writes the case's reports
(atomically) and returns the record plus the :class:`~rtcheck.result.Result` (without DVH
curves, which only the reports need) for the parent to store.
"""

from __future__ import annotations

import importlib
import os
import platform
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from rtcheck import __version__
from rtcheck.batch.jobs import CaseJob, JobContext, fingerprint, job_files, relative
from rtcheck.db.records import CaseRecord, utc_now
from rtcheck.errors import RtcheckError
from rtcheck.result import Result

__all__ = [
    "JobOutcome",
    "error_outcome",
    "file_error_outcome",
    "one_line",
    "report_name",
    "run_job",
]


@dataclass(frozen=True)
class JobOutcome:
    """A job's record, its result (None for errors) and worker statistics.

    ``stats`` holds ``pid``, ``host``, ``peak_rss_mb`` (the worker's peak resident memory so
    far), and ``load_s``, ``check_s``, ``write_s`` (seconds).
    """

    record: CaseRecord
    result: Result | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def _stats(**timings: float) -> dict[str, Any]:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "pid": os.getpid(),
        "host": platform.node(),
        "peak_rss_mb": round(peak_kb / 1024.0, 1),
        **{k: round(v, 4) for k, v in timings.items()},
    }


def _base_record(job: CaseJob, ctx: JobContext, **kw: Any) -> CaseRecord:
    return CaseRecord(
        key=job.key,
        fingerprint=kw.pop("fingerprint", job.fingerprint),
        slug=job.slug,
        label=job.label,
        patient_id=job.patient_id,
        study_uid=job.study_uid,
        protocol_id=ctx.protocol_id,
        protocol_version=ctx.protocol_version,
        rtcheck_version=ctx.rtcheck_version,
        n_inputs=len(job.files),
        **kw,
    )


def one_line(exc: BaseException) -> str:
    """An exception as one line (RtcheckError: ``file: problem``; others: ``Type: message``)."""
    if isinstance(exc, RtcheckError):
        return " ".join(str(exc).split())
    text = " ".join(str(exc).split())
    return f"internal error: {type(exc).__name__}: {text}" if text else type(exc).__name__


def error_outcome(
    job: CaseJob, ctx: JobContext, kind: str, message: str, detail: str | None = None
) -> JobOutcome:
    """An ``error`` outcome for ``job`` (``kind``: input, internal, output, worker)."""
    record = _base_record(
        job,
        ctx,
        verdict="error",
        error=message,
        error_kind=kind,
        error_detail=detail,
        created=utc_now(),
    )
    return JobOutcome(record, None, _stats())


def file_error_outcome(job: CaseJob, ctx: JobContext) -> JobOutcome:
    """The outcome of a file-level error entry (no worker needed)."""
    return error_outcome(job, ctx, "input", job.error or f"{job.label}: not a usable case")


@lru_cache(maxsize=4)
def _protocol(ref: str, expected: tuple[str, str, str | None]) -> Any:
    from rtcheck.io.common import sha256_file
    from rtcheck.protocol import load_protocol

    protocol = load_protocol(ref)
    source = getattr(protocol, "source_file", None)
    digest = sha256_file(source) if source and os.path.isfile(source) else None
    found = (protocol.id, protocol.version, digest)
    if found != expected:
        raise RtcheckError(
            f"the protocol this worker loads ({found[0]} {found[1]}, sha256 {found[2]}) differs "
            f"from the one the batch was started with ({expected[0]} {expected[1]}, "
            f"sha256 {expected[2]}); install the same protocol files on every worker",
            path=ref,
        )
    return protocol


@lru_cache(maxsize=4)
def _checker(target: str) -> Callable[..., Result]:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def report_name(fmt: str) -> str:
    """File name of a case report in format ``fmt`` (``report.html``, ``report.xml``...)."""
    from rtcheck.report import resolve_format

    return "report" + resolve_format(None, fmt).extensions[0]


#: File beside a case's reports naming the evaluation they show (its fingerprint): a reused
#: evaluation is reused only with its own reports, never with another run's.
EVALUATION_FILE = ".rtcheck-evaluation"


def _write_reports(
    result: Result, job: CaseJob, ctx: JobContext, evaluation: str
) -> tuple[str, ...]:
    from rtcheck.report import resolve_format
    from rtcheck.report.atomic import atomic_write_all

    if not ctx.formats:
        return ()
    folder = Path(ctx.out_dir, "cases", job.slug)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / report_name(fmt) for fmt in ctx.formats]
    writers = [resolve_format(None, fmt).writer for fmt in ctx.formats]
    items: list[tuple[str | os.PathLike[str], Callable[[BinaryIO], None]]] = [
        (path, lambda out, w=w: w(result, out)) for path, w in zip(paths, writers, strict=True)
    ]
    items.append((folder / EVALUATION_FILE, lambda out: out.write(evaluation.encode())))
    atomic_write_all(items)  # the reports and the evaluation they belong to, as one set
    return tuple(sorted(relative(str(path), ctx.out_dir) for path in paths))


def reports_belong_to(reports: tuple[str, ...], out_dir: str, evaluation: str) -> bool:
    """True when every report exists and the folder says it shows ``evaluation``."""
    if not reports:
        return True
    if not all(Path(out_dir, rel).is_file() for rel in reports):
        return False
    marker = Path(out_dir, reports[0]).with_name(EVALUATION_FILE)
    try:
        return marker.read_text(encoding="utf-8") == evaluation
    except OSError:
        return False


def run_job(job: CaseJob, ctx: JobContext) -> JobOutcome:
    """Load, check and report one case; every failure becomes an ``error`` outcome."""
    if job.ref is None:
        return file_error_outcome(job, ctx)
    if ctx.rtcheck_version != __version__:
        msg = f"worker runs rtcheck {__version__}, the batch {ctx.rtcheck_version}"
        return error_outcome(job, ctx, "worker", msg)
    started = time.perf_counter()
    stage = "load"
    try:
        protocol = _protocol(
            ctx.protocol_ref, (ctx.protocol_id, ctx.protocol_version, ctx.protocol_sha256)
        )
        case = job.ref.load(
            allow_frame_mismatch=bool(getattr(ctx.options, "allow_frame_mismatch", False)),
            relative_prescription_gy=getattr(ctx.options, "relative_prescription_gy", None),
        )
        t_load = time.perf_counter()
        stage = "check"
        result = _checker(ctx.checker)(case, protocol, ctx.options)
        t_check = time.perf_counter()
        stage = "write"
        own = [(relative(f.path, ctx.root), f.sha256 or "") for f in case.files]
        files = job_files(own, job.extra_files)
        evaluation = fingerprint(ctx.base(), job.key, files)
        reports = _write_reports(result, job, ctx, evaluation)
        t_write = time.perf_counter()
    except RtcheckError as exc:
        kind = "output" if stage == "write" else "input"
        return error_outcome(job, ctx, kind, one_line(exc))
    except Exception as exc:  # a bug or a resource problem: isolate it, keep the traceback
        return error_outcome(job, ctx, "internal", one_line(exc), traceback.format_exc())
    record = _base_record(
        job,
        ctx,
        fingerprint=evaluation,
        verdict=result.verdict.value,
        counts=dict(result.counts),
        n_findings=len(result.findings) + sum(len(les.findings) for les in result.lesions),
        reports=reports,
        created=utc_now(),
        seconds=round(t_write - started, 4),
    )
    stats = _stats(load_s=t_load - started, check_s=t_check - t_load, write_s=t_write - t_check)
    return JobOutcome(record, replace(result, dvhs=()), stats)
