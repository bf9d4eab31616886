"""DICOM receiver: a C-STORE SCP that checks each case once it is complete and quiet.

Objects (CT, RT Structure Set, RT Plan, RT Ion Plan, RT Dose) are written atomically to
``RESULTS/store/<StudyInstanceUID>/<MODALITY>_<SOPInstanceUID>.dcm``. A study that has been
quiet for ``quiet_seconds`` is searched for cases (structures with a linked dose); each case
is checked like a batch case, in a worker process (reports under ``RESULTS/cases/``, rows in
the database, an unchanged case is not recomputed), and the summaries in ``RESULTS`` are
rewritten. A study without a complete case stays pending until more objects arrive. A file of
the study that cannot be used (unreadable, or an RT object linked to no case) is an ERROR
finding of the study's only case, or an ``error`` entry when the study holds several.

A malformed dataset is answered with a failure status and kept under ``RESULTS/rejected/``
with a record (:mod:`rtcheck.refusals`): an ERROR finding of every case of its study, or an
``error`` entry when its study cannot be read. Aborted associations and errors while checking
are logged; none of them stops the server.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtcheck.batch.executors import mp_context
from rtcheck.batch.jobs import DEFAULT_CHECKER, CaseJob, plan_jobs
from rtcheck.batch.runner import (
    RunRecorder,
    check_results_folder,
    prepare_context,
    split_reusable,
    summary_meta,
)
from rtcheck.batch.summary import totals, write_summaries
from rtcheck.batch.worker import JobOutcome, error_outcome, file_error_outcome, run_job
from rtcheck.db import CaseRecord, ResultsDB, RunInfo
from rtcheck.errors import ConfigError, InputError
from rtcheck.io.dicom import Header, sniff
from rtcheck.io.discover import discover
from rtcheck.io.salvage import salvage_study_uid
from rtcheck.refusals import (
    ASSOCIATION_ABORTED,
    REFUSED_STATUS,
    Refusal,
    attach_refusals,
    keep_refused,
    refusal_job,
    study_refusals,
    supersede_aborts,
)
from rtcheck.report.atomic import atomic_write_bytes

__all__ = ["STORAGE_CLASSES", "Receiver", "ServeOptions"]

log = logging.getLogger("rtcheck.serve")

#: Storage SOP classes accepted (name -> UID).
STORAGE_CLASSES = {
    "CT Image Storage": "1.2.840.10008.5.1.4.1.1.2",
    "RT Dose Storage": "1.2.840.10008.5.1.4.1.1.481.2",
    "RT Structure Set Storage": "1.2.840.10008.5.1.4.1.1.481.3",
    "RT Plan Storage": "1.2.840.10008.5.1.4.1.1.481.5",
    "RT Ion Plan Storage": "1.2.840.10008.5.1.4.1.1.481.8",
}
_MODALITIES = {"CT", "RTDOSE", "RTSTRUCT", "RTPLAN", "RTIONPLAN"}
_VERIFICATION = "1.2.840.10008.1.1"
_STATUS_OK = 0x0000
_STATUS_OUT_OF_RESOURCES = 0xA700
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ServeOptions:
    """Receiver settings.

    Attributes
    ----------
    host, port
        Address to listen on (port 0: any free port; read :attr:`Receiver.port`).
    ae_title
        Our Application Entity title.
    quiet_seconds
        A study is checked once no object arrived for it for this long.
    db
        Database URL or SQLite path (None: ``RESULTS/results.sqlite``).
    formats
        Per-case report formats.
    check
        :class:`rtcheck.pipeline.CheckOptions` (None: defaults).
    checker
        ``"module:function"`` checking one case (tests only).
    poll_seconds
        How often pending studies are looked at.
    isolate
        Check cases in a separate worker process (default): a crash or a long computation
        there cannot stall or kill the receiver. False checks in a thread of this process.
    """

    host: str = "127.0.0.1"
    port: int = 11112
    ae_title: str = "RTCHECK"
    quiet_seconds: float = 10.0
    db: str | None = None
    formats: tuple[str, ...] = ("html", "json")
    check: Any = None
    checker: str = DEFAULT_CHECKER
    poll_seconds: float = 0.5
    isolate: bool = True


def _safe(text: str) -> str:
    return _SAFE.sub("_", text).strip("._")[:128] or "unknown"


class Receiver:
    """The C-STORE SCP and the thread that checks complete studies.

    Parameters
    ----------
    protocol
        Protocol id or YAML path (loaded and validated now).
    out
        Results folder (created).
    options
        :class:`ServeOptions`.
    """

    def __init__(
        self, protocol: str, out: str | os.PathLike[str], options: ServeOptions | None = None
    ) -> None:
        self.options = options or ServeOptions()
        if self.options.quiet_seconds < 0:
            raise ConfigError("--quiet-seconds must not be negative")
        self.out = Path(out).resolve()
        self.store = self.out / "store"
        check_results_folder(self.out)
        try:
            for sub in ("store", "incoming", "rejected"):
                (self.out / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the results folder: {exc.strerror}", str(out)
            ) from exc
        self.ctx = prepare_context(
            self.store,
            protocol,
            self.out,
            self.options.formats,
            self.options.check,
            self.options.checker,
        )
        self.db = ResultsDB.open(self.options.db or self.out / "results.sqlite")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: dict[str, float] = {}
        # studies each open association has delivered to: not checked before it ends
        self._open: dict[int, set[str]] = {}
        self._released: set[int] = set()
        self._records: dict[str, CaseRecord] = {}
        self._unattributed: list[Refusal] = []
        self._stop = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._run_id: int | None = None
        self._recorder: RunRecorder | None = None
        self._pool: ProcessPoolExecutor | None = None
        self.received = 0
        self.rejected = 0

    # -- life cycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is None:
            return self.options.port
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start listening and checking (returns at once)."""
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt

        ae = AE(ae_title=self.options.ae_title)
        for uid in STORAGE_CLASSES.values():
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(_VERIFICATION)
        ae.maximum_pdu_size = 0
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_ABORTED, self._on_abort),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]
        self._resume_stored()
        self._run_id = self.db.start_run(self._run_info())
        self._recorder = RunRecorder(self.db, self._run_id, None)
        try:
            self._server = ae.start_server(
                (self.options.host, self.options.port), block=False, evt_handlers=handlers
            )
        except OSError as exc:
            self.db.finish_run(self._run_id, "failed", {}, None)
            raise ConfigError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc.strerror}"
            ) from exc
        if self.options.isolate:
            self._pool = _new_pool()
        self._thread = threading.Thread(target=self._monitor, name="rtcheck-checker", daemon=True)
        self._thread.start()
        log.info(
            "listening on %s:%d as %s; results in %s",
            self.options.host,
            self.port,
            self.options.ae_title,
            self.out,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening, finish the check in progress (up to ``timeout`` s), close the run."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._run_id is not None:
            self.db.finish_run(self._run_id, "complete", totals(self.records), None)
            self._run_id = None
        self.db.close()

    def serve_forever(self) -> None:
        """Start, then block until interrupted (Ctrl-C), then stop cleanly."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            log.info("interrupted; stopping")
        finally:
            self.stop()

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def records(self) -> list[CaseRecord]:
        """Latest record per case checked in this session."""
        with self._lock:
            return list(self._records.values())

    def wait_for(self, n_cases: int, timeout: float) -> list[CaseRecord]:
        """Block until ``n_cases`` cases were checked or ``timeout`` s passed; the records."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._records) < n_cases and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.5))
            return list(self._records.values())

    def _run_info(self) -> RunInfo:
        return RunInfo(
            kind="serve",
            root=self.ctx.root,
            out_dir=self.ctx.out_dir,
            protocol_id=self.ctx.protocol_id,
            protocol_version=self.ctx.protocol_version,
            protocol_sha256=self.ctx.protocol_sha256,
            rtcheck_version=self.ctx.rtcheck_version,
            options={
                "ae_title": self.options.ae_title,
                "quiet_seconds": self.options.quiet_seconds,
                "formats": list(self.ctx.formats),
            },
            executor=f"receiver {self.options.ae_title}@{self.options.host}",
        )

    # -- receiving ----------------------------------------------------------------------
    def _on_abort(self, event: Any) -> None:
        log.warning("association with %s aborted", _peer(event))

    def _on_released(self, event: Any) -> None:
        with self._lock:
            self._released.add(id(event.assoc))

    def _on_close(self, event: Any) -> None:
        """An association ended: its studies may be checked; if it was not released (aborted,
        or the connection dropped), each study it delivered to gets a record that objects may
        be missing, which keeps its cases from passing (:mod:`rtcheck.refusals`)."""
        try:
            key = id(event.assoc)
            with self._changed:
                studies = self._open.pop(key, set())
                released = key in self._released
                self._released.discard(key)
                for study in studies:
                    self._pending[study] = time.monotonic()
            for study in sorted(studies):
                if released:  # sent again whole after an abort: the abort only warns now
                    supersede_aborts(self.out / "rejected" / study)
                else:
                    self._record_abort(study, _peer(event))
        except Exception as exc:  # never let a handler take the server down
            log.error("closing an association failed: %s", exc)

    def _record_abort(self, study: str, peer: str) -> None:
        tmp = self.out / "incoming" / f"{secrets.token_hex(8)}.dcm"
        tmp.write_bytes(b"")
        refusal = Refusal(
            str(tmp),
            ASSOCIATION_ABORTED,
            None,
            "the association that sent objects of this study ended without a release "
            "(aborted or dropped): objects may be missing",
            peer,
            study,
        )
        keep_refused(tmp, self.out / "rejected" / study, refusal)
        log.warning("study %s: association from %s ended without release", study, peer)

    def _resume_stored(self) -> None:
        """Studies already in the store (a receiver restarted after a crash): check them again
        once quiet; unchanged cases are reused, so nothing is recomputed for nothing."""
        for folder in sorted(self.store.iterdir()) if self.store.is_dir() else []:
            if folder.is_dir():
                self._pending[folder.name] = time.monotonic()

    def _on_store(self, event: Any) -> int:
        """C-STORE handler: never raises (pynetdicom would abort the association)."""
        try:
            return self._store(event)
        except Exception as exc:  # keep serving whatever happens to one object
            log.error("could not store an object from %s: %s", _peer(event), exc)
            return _STATUS_OUT_OF_RESOURCES

    def _store(self, event: Any) -> int:
        tmp = self.out / "incoming" / f"{secrets.token_hex(8)}.dcm"
        atomic_write_bytes(tmp, event.encoded_dataset())
        header, problem = _read_header(tmp)
        if header is None or problem is not None:
            return self._reject(tmp, event, problem or "unreadable", header)
        study = _safe(header.study_instance_uid or "no-study")
        folder = self.store / study
        folder.mkdir(exist_ok=True)
        name = f"{header.modality}_{_safe(header.sop_instance_uid or tmp.stem)}.dcm"
        os.replace(tmp, folder / name)
        with self._changed:
            self._pending[study] = time.monotonic()
            self._open.setdefault(id(event.assoc), set()).add(study)
            self.received += 1
        log.info("stored %s %s from %s", header.modality, name, _peer(event))
        return _STATUS_OK

    def _reject(self, tmp: Path, event: Any, problem: str, header: Header | None) -> int:
        """Keep a refused dataset with its record; its study is checked again (or, when its
        study cannot be read, an ``error`` entry is recorded): see :mod:`rtcheck.refusals`."""
        request = getattr(event, "request", None)
        uid = _uid(request, "AffectedSOPInstanceUID") or (
            header.sop_instance_uid if header else None
        )
        study_uid = (header.study_instance_uid if header else None) or salvage_study_uid(tmp)
        study = _safe(study_uid) if study_uid else None
        refusal = Refusal(
            str(tmp),
            _uid(request, "AffectedSOPClassUID"),
            uid,
            " ".join(problem.split()),
            _peer(event),
            study_uid,
        )
        folder = self.out / "rejected" / study if study else self.out / "rejected"
        refusal = keep_refused(tmp, folder, refusal)
        with self._changed:
            self.rejected += 1
            if study is not None:
                self._pending[study] = time.monotonic()
            else:
                self._unattributed.append(refusal)
        where = f"study {study_uid}" if study_uid else "study unknown"
        log.warning(
            "refused %s from %s (%s): %s (kept as %s)",
            refusal.what,
            refusal.peer,
            where,
            refusal.reason,
            refusal.path,
        )
        return REFUSED_STATUS

    # -- checking -----------------------------------------------------------------------
    def _due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            busy = set().union(*self._open.values()) if self._open else set()
            due = [
                s
                for s, t in self._pending.items()
                if now - t >= self.options.quiet_seconds and s not in busy
            ]
            for s in due:
                del self._pending[s]
        return sorted(due)

    def _monitor(self) -> None:
        while not self._stop.is_set():
            try:
                self._record_unattributed()
            except Exception as exc:  # log and keep serving
                log.exception("recording refused datasets failed: %s", exc)
            for study in self._due():
                if self._stop.is_set():
                    return
                try:
                    self._check_study(study)
                except Exception as exc:  # log and keep serving
                    log.exception("checking study %s failed: %s", study, exc)
            self._stop.wait(self.options.poll_seconds)

    def _check_study(self, study: str) -> None:
        """Check the cases of a quiet study and record its files that could not be used.

        As in a batch, an unreadable file or an RT object linked to no case is an ERROR
        finding of the study's case when the study holds exactly one (it may be that case's
        other dose), else an ``error`` entry (database row and summaries). Nothing is recorded
        while the study holds no complete case: the missing objects may still arrive.
        """
        folder = self.store / study
        refused = study_refusals(self.out / "rejected" / study)
        jobs = plan_jobs(discover(folder), self.ctx) if folder.is_dir() else []
        if not any(j.ref is not None for j in jobs):
            more = f" ({len(refused)} object(s) refused so far)" if refused else ""
            log.info("study %s has no complete case yet (structures + linked dose)%s", study, more)
            self._record_incomplete(study, jobs)
            return
        if self._recorder is None:
            raise RuntimeError("receiver not started")
        stored = {p.stem.partition("_")[2] for p in folder.glob("*.dcm")}
        uids = {r.sop_instance_uid for r in refused if r.sop_instance_uid}
        resent = {u for u in uids if _safe(u) in stored}  # stored as <MODALITY>_<UID>.dcm
        jobs = attach_refusals(jobs, refused, resent, self.ctx)
        self._forget_file_errors(study)
        reuse, todo = split_reusable(self.db, jobs, self.ctx, True)
        for case_id, record in reuse:
            self._recorder.reused(case_id, record)
            self._done(record, "unchanged")
        for job in todo:
            outcome = file_error_outcome(job, self.ctx) if job.ref is None else self._run(job)
            self._recorder.computed(outcome)
            self._done(outcome.record, "checked" if job.ref is not None else "file")
        write_summaries(self.out, self.records, summary_meta(self.ctx, None))

    def _record_incomplete(self, study: str, jobs: list[CaseJob]) -> None:
        """A quiet study without a case: its RT objects are ``error`` entries (no structure
        set for a plan's dose, e.g. a plan sent in another study), never silence. They are
        dropped when the study's case is complete and checked."""
        files = [j for j in jobs if j.ref is None]
        if not files or self._recorder is None:
            return
        self._forget_file_errors(study)
        for job in files:
            outcome = file_error_outcome(job, self.ctx)
            self._recorder.computed(outcome)
            self._done(outcome.record, "waiting")
        write_summaries(self.out, self.records, summary_meta(self.ctx, None))

    def _record_unattributed(self) -> None:
        """Record refusals whose study could not be read as ``error`` entries."""
        with self._lock:
            todo, self._unattributed = self._unattributed, []
        if not todo:
            return
        if self._recorder is None:
            raise RuntimeError("receiver not started")
        for refusal in todo:
            outcome = file_error_outcome(refusal_job(refusal, self.ctx), self.ctx)
            self._recorder.computed(outcome)
            self._done(outcome.record, "refused")
        write_summaries(self.out, self.records, summary_meta(self.ctx, None))

    def _forget_file_errors(self, study: str) -> None:
        """Drop this session's file entries of ``study``: the new check says what still holds."""
        prefix = f"file:{study}/"
        with self._lock:
            for key in [k for k in self._records if k.startswith(prefix)]:
                del self._records[key]

    def _run(self, job: CaseJob) -> JobOutcome:
        """Check one case, in the worker process when isolating (a new one if it died)."""
        if self._pool is None:
            return run_job(job, self.ctx)
        try:
            return self._pool.submit(run_job, job, self.ctx).result()
        except BrokenProcessPool:
            self._pool = _new_pool()
            return error_outcome(
                job, self.ctx, "worker", "the checking process died (out of memory or a crash)"
            )

    def _done(self, record: CaseRecord, how: str) -> None:
        with self._changed:
            self._records[record.key] = record
            self._changed.notify_all()
        detail = f": {record.error}" if record.error else ""
        level = logging.WARNING if record.verdict == "error" else logging.INFO
        log.log(level, "%s %s: %s%s", how, record.label, record.verdict.upper(), detail)


def _read_header(path: Path) -> tuple[Header | None, str | None]:
    """The header of a received file, and why it is refused (None: accepted)."""
    try:
        header = sniff(str(path))
    except InputError as exc:
        return None, exc.message
    if header is None:
        return None, "not a DICOM dataset"
    if header.problem:
        return header, header.problem
    if header.modality not in _MODALITIES:
        return header, f"modality {header.modality} is not accepted"
    return header, None


def _uid(request: Any, keyword: str) -> str | None:
    """A UID of the C-STORE request (None when absent or unreadable)."""
    try:
        value = getattr(request, keyword, None)
    except Exception:  # pynetdicom validates on access; a bad value is no UID
        return None
    return str(value) if value else None


def _new_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=mp_context())


def _peer(event: Any) -> str:
    try:
        assoc = event.assoc
        return f"{assoc.requestor.ae_title}@{assoc.requestor.address}"
    except AttributeError:
        return "peer"
