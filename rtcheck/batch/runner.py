"""``run_batch``: discover every case under a folder, check them in parallel, record, summarise."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtcheck import __version__
from rtcheck.batch.executors import make_executor
from rtcheck.batch.jobs import DEFAULT_CHECKER, CaseJob, JobContext, options_dict, plan_jobs
from rtcheck.batch.progress import BatchProgress
from rtcheck.batch.summary import batch_exit_code, sort_records, totals, write_summaries
from rtcheck.batch.worker import JobOutcome, file_error_outcome, reports_belong_to
from rtcheck.db import CaseRecord, ResultsDB, RunInfo
from rtcheck.db.engine import database_url
from rtcheck.errors import ConfigError, InputError
from rtcheck.io.common import sha256_file
from rtcheck.io.discover import Discovery, discover

__all__ = [
    "BatchOptions",
    "BatchReport",
    "RunRecorder",
    "describe",
    "prepare_context",
    "run_batch",
    "split_reusable",
    "summary_meta",
]

#: Called with each finished case's record and whether it was reused.
OnRecord = Callable[[CaseRecord, bool], None]


@dataclass(frozen=True)
class BatchOptions:
    """How to run a batch.

    Attributes
    ----------
    jobs
        Local worker processes (None: one per CPU; 1: in this process).
    db
        Database URL or SQLite path (None: ``RESULTS/results.sqlite``).
    scheduler
        Dask scheduler address (``tcp://host:8786``); replaces the local pool.
    formats
        Report formats per case (``()``: no per-case reports, database and summaries only).
    check
        :class:`rtcheck.pipeline.CheckOptions` for every case (None: defaults).
    resume
        Reuse unchanged cases recorded in the database (False recomputes everything).
    progress
        Progress bar: None on a terminal only, True/False to force.
    checker
        ``"module:function"`` checking one case (tests and benchmarks only).
    """

    jobs: int | None = None
    db: str | None = None
    scheduler: str | None = None
    formats: tuple[str, ...] = ("html", "json")
    check: Any = None
    resume: bool = True
    progress: bool | None = None
    checker: str = DEFAULT_CHECKER


@dataclass(frozen=True)
class BatchReport:
    """What a batch did.

    Attributes
    ----------
    run_id, db_url
        The run's row in the database.
    root, out_dir, executor
        Where and how it ran.
    records
        One record per case, in summary order.
    reused
        Keys of the cases taken from earlier runs.
    totals, exit_code
        Counts per verdict; the batch exit code (see :func:`batch_exit_code`).
    summary_files
        ``summary.csv``, ``summary.json``, ``index.html``.
    worker_stats
        Per computed case: worker pid, host, peak memory, load/check/write seconds.
    timings
        Seconds spent in ``discover``, ``plan`` (hashing, reuse lookup), ``execute``
        (including database writes), ``summary`` and ``total``.
    discovery
        The discovery result (for messages).
    """

    run_id: int
    db_url: str
    root: str
    out_dir: str
    executor: str
    records: tuple[CaseRecord, ...]
    reused: tuple[str, ...]
    totals: dict[str, int]
    exit_code: int
    summary_files: tuple[str, ...]
    worker_stats: tuple[dict[str, Any], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    discovery: Discovery | None = None


def _protocol_identity(protocol_ref: str) -> tuple[str, Any, str | None]:
    """Load the protocol once in the parent: (ref for workers, protocol, file SHA-256)."""
    from rtcheck.protocol import load_protocol

    protocol = load_protocol(protocol_ref)
    ref = os.path.abspath(protocol_ref) if os.path.isfile(protocol_ref) else protocol_ref
    source = getattr(protocol, "source_file", None)
    digest = sha256_file(source) if source and os.path.isfile(source) else None
    return ref, protocol, digest


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    from rtcheck.report import resolve_format

    names = [resolve_format(None, f).name for f in formats]
    return tuple(dict.fromkeys(names))


def prepare_context(
    root: str | os.PathLike[str],
    protocol: str,
    out: str | os.PathLike[str],
    formats: Sequence[str],
    check: Any = None,
    checker: str = DEFAULT_CHECKER,
) -> JobContext:
    """Validate the protocol and formats and build the context sent to every worker.

    Raises
    ------
    ProtocolError
        Unknown or invalid protocol.
    ConfigError
        Unknown report format, or options naming structures the protocol lacks.
    """
    ref, proto, digest = _protocol_identity(str(protocol))
    from rtcheck.pipeline import CheckOptions, validate_options

    if check is None:
        check = CheckOptions()
    if isinstance(check, CheckOptions):
        validate_options(proto, check)  # one line before the run, not an error per case
    return JobContext(
        root=os.path.abspath(root),
        out_dir=os.path.abspath(out),
        protocol_ref=ref,
        protocol_id=proto.id,
        protocol_version=str(proto.version),
        protocol_sha256=digest,
        options=check,
        formats=_check_formats(formats),
        rtcheck_version=__version__,
        checker=checker,
    )


def _no_cases_error(found: Discovery) -> InputError:
    have = ", ".join(f"{n} {m}" for m, n in found.counts) or "no DICOM files"
    return InputError(f"no RT cases found (found {have})", path=found.root)


def summary_meta(ctx: JobContext, found: Discovery | None) -> dict[str, Any]:
    """The run-level part of ``summary.json`` (no times: reproducible)."""
    all_findings = found.findings if found is not None else ()
    findings = sorted(
        (f.to_dict() for f in all_findings if f.severity.value != "info"),
        key=lambda d: (d["source"] or "", d["code"], d["message"]),
    )
    return {
        "root": ctx.root,
        "rtcheck_version": ctx.rtcheck_version,
        "protocol": {
            "id": ctx.protocol_id,
            "version": ctx.protocol_version,
            "sha256": ctx.protocol_sha256,
        },
        "options": options_dict(ctx.options),
        "formats": list(ctx.formats),
        "discovery": {
            "counts": dict(found.counts) if found is not None else {},
            "findings": findings,
        },
    }


def _reports_exist(record: CaseRecord, out_dir: str) -> bool:
    return reports_belong_to(record.reports, out_dir, record.fingerprint)


def split_reusable(
    db: ResultsDB, jobs: Sequence[CaseJob], ctx: JobContext, resume: bool
) -> tuple[list[tuple[int, CaseRecord]], list[CaseJob]]:
    """Split jobs into reusable evaluations ``(case id, record)`` and jobs to compute.

    An evaluation is reused when its fingerprint and key match and every report it wrote is
    still in the results folder, written for that evaluation (not overwritten since by a run
    with other inputs or another protocol: ``worker.EVALUATION_FILE``).
    """
    if not resume:
        return [], list(jobs)
    known = db.reusable([j.fingerprint for j in jobs])
    reuse, todo = [], []
    for job in jobs:
        hit = known.get(job.fingerprint)
        if hit is not None and hit[1].key == job.key and _reports_exist(hit[1], ctx.out_dir):
            reuse.append(hit)
        else:
            todo.append(job)
    return reuse, todo


def run_batch(
    root: str | os.PathLike[str],
    protocol: str,
    out: str | os.PathLike[str],
    options: BatchOptions | None = None,
    *,
    on_record: OnRecord | None = None,
) -> BatchReport:
    """Check every case under ``root`` against ``protocol``; reports and summaries in ``out``.

    Parameters
    ----------
    root
        Folder searched recursively (nested patient/study/series folders, mixed exports).
    protocol
        Protocol id or YAML path.
    out
        Results folder (created if needed).
    options
        :class:`BatchOptions`.
    on_record
        Called after each case is recorded (also for reused cases), in completion order.

    Returns
    -------
    BatchReport
        ``exit_code``: 2 if any case errored, else 1 if any failed, else 3 if any is
        incomplete, else 0.

    Raises
    ------
    RtcheckError
        Bad root, protocol, format, database or scheduler (nothing was checked), or no case.
    """
    opts = options or BatchOptions()
    t0 = time.perf_counter()
    out_dir = Path(out)
    check_results_folder(out_dir)
    executor = make_executor(opts.jobs, opts.scheduler)
    ctx = prepare_context(root, protocol, out, opts.formats, opts.check, opts.checker)
    if not os.path.isdir(ctx.root):
        why = "batch root must be a folder" if os.path.exists(ctx.root) else "no such folder"
        raise InputError(why, path=str(root))
    db_url = database_url(opts.db) if opts.db else None
    found = discover(ctx.root)
    t_discover = time.perf_counter()
    jobs = plan_jobs(found, ctx, hash_workers=4)
    if not jobs:
        raise _no_cases_error(found)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the results folder: {exc.strerror}", str(out)) from exc
    db = ResultsDB.open(db_url or out_dir / "results.sqlite")
    try:
        return _run(db, jobs, ctx, found, executor, opts, on_record, t0, t_discover)
    finally:
        db.close()


def check_results_folder(out_dir: Path) -> None:
    """Refuse a results folder that cannot be written, before the (long) discovery.

    The folder itself, or the nearest folder above it that exists, must take a new file
    (checked by creating one: permission bits alone do not show read-only mounts or
    immutable folders).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("results path exists and is not a folder", path=str(out_dir))
    probe = out_dir.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"cannot create the results folder: {probe} is not a folder", str(out_dir)
        )
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        where = "" if probe == out_dir.absolute() else f" ({probe})"
        raise ConfigError(
            f"results folder cannot be written{where}: {exc.strerror}", path=str(out_dir)
        ) from exc


def _run(
    db: ResultsDB,
    jobs: Sequence[CaseJob],
    ctx: JobContext,
    found: Discovery,
    executor: Any,
    opts: BatchOptions,
    on_record: OnRecord | None,
    t0: float,
    t_discover: float,
) -> BatchReport:
    run_options = {
        "check": options_dict(ctx.options),
        "formats": list(ctx.formats),
        "resume": opts.resume,
    }
    info = RunInfo(
        kind="batch",
        root=ctx.root,
        out_dir=ctx.out_dir,
        protocol_id=ctx.protocol_id,
        protocol_version=ctx.protocol_version,
        protocol_sha256=ctx.protocol_sha256,
        rtcheck_version=ctx.rtcheck_version,
        options=run_options,
        executor=executor.description,
    )
    run_id = db.start_run(info)
    state = RunRecorder(db, run_id, on_record)
    try:
        reuse, todo = split_reusable(db, jobs, ctx, opts.resume)
        t_plan = time.perf_counter()
        with BatchProgress(len(jobs), opts.progress) as progress:
            state.progress = progress
            for case_id, record in reuse:
                state.reused(case_id, record)
            file_jobs = [j for j in todo if j.ref is None]
            case_jobs = [j for j in todo if j.ref is not None]
            for job in file_jobs:
                state.computed(file_error_outcome(job, ctx))
            with closing(executor.run(case_jobs, ctx)) as outcomes:
                for outcome in outcomes:
                    state.computed(outcome)
        t_exec = time.perf_counter()
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        db.finish_run(run_id, status, state.totals(), None)
        raise
    records = sort_records(state.records)
    summary_files = write_summaries(ctx.out_dir, records, summary_meta(ctx, found))
    code = batch_exit_code(records)
    db.finish_run(run_id, "complete", state.totals(), code)
    t_end = time.perf_counter()
    timings = {
        "discover": t_discover - t0,
        "plan": t_plan - t_discover,
        "execute": t_exec - t_plan,
        "summary": t_end - t_exec,
        "total": t_end - t0,
    }
    return BatchReport(
        run_id=run_id,
        db_url=db.url,
        root=ctx.root,
        out_dir=ctx.out_dir,
        executor=executor.description,
        records=tuple(records),
        reused=tuple(sorted(state.reused_keys)),
        totals=totals(records),
        exit_code=code,
        summary_files=summary_files,
        worker_stats=tuple(state.stats),
        timings={k: round(v, 4) for k, v in timings.items()},
        discovery=found,
    )


class RunRecorder:
    """Records outcomes as they arrive: database row, progress, callback."""

    # The database write comes first: a crash after it loses nothing already recorded.

    def __init__(self, db: ResultsDB, run_id: int, on_record: OnRecord | None) -> None:
        self.db = db
        self.run_id = run_id
        self.on_record = on_record
        self.progress: BatchProgress | None = None
        self.records: list[CaseRecord] = []
        self.reused_keys: list[str] = []
        self.stats: list[dict[str, Any]] = []

    def reused(self, case_id: int, record: CaseRecord) -> None:
        """Link an earlier evaluation to this run."""
        self.db.reuse_case(self.run_id, case_id)
        self.reused_keys.append(record.key)
        self._done(record, True)

    def computed(self, outcome: JobOutcome) -> None:
        """Store a new evaluation (one transaction) and count it."""
        self.db.record_case(self.run_id, outcome.record, outcome.result)
        if outcome.result is not None:
            self.stats.append({"key": outcome.record.key, **outcome.stats})
        self._done(outcome.record, False)

    def _done(self, record: CaseRecord, reused: bool) -> None:
        self.records.append(record)
        if self.progress is not None:
            self.progress.advance(record, reused)
        if self.on_record is not None:
            self.on_record(record, reused)

    def totals(self) -> dict[str, int]:
        """Counts per verdict plus ``reused`` and ``computed``."""
        out = totals(self.records)
        out["reused"] = len(self.reused_keys)
        out["computed"] = len(self.records) - len(self.reused_keys)
        return out


def describe(report: BatchReport) -> str:
    """One line for the terminal: counts, reuse and where the index is."""
    t = report.totals
    index = Path(report.out_dir, "index.html")
    return (
        f"{t['cases']} cases: {t['pass']} pass, {t['fail']} fail, {t['incomplete']} incomplete, "
        f"{t['error']} error ({len(report.reused)} unchanged, reused) -> {index}"
    )
