"""Where jobs run: in this process, a local process pool, or a Dask distributed cluster.

Every executor yields :class:`~rtcheck.batch.worker.JobOutcome` objects in completion order
(the runner sorts what it writes). A worker process that dies (out of memory, a crash in
compiled code) breaks a local pool: the jobs it was running are retried once in a fresh
pool; a job that is in flight during two such failures is recorded as an error and the rest
of the batch goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from rtcheck.batch.jobs import CaseJob, JobContext
from rtcheck.batch.worker import JobOutcome, error_outcome, one_line, run_job
from rtcheck.errors import ConfigError

__all__ = ["DaskExecutor", "Executor", "InProcessExecutor", "LocalPoolExecutor", "make_executor"]

_MAX_ATTEMPTS = 2


class Executor(Protocol):
    """Runs jobs and yields their outcomes as they complete."""

    description: str

    def run(self, jobs: Sequence[CaseJob], ctx: JobContext) -> Iterator[JobOutcome]:
        """Yield one outcome per job, in completion order."""
        ...


class InProcessExecutor:
    """Runs jobs one by one in this process (``--jobs 1``: simplest to debug, no isolation)."""

    description = "in-process (1 job)"

    def run(self, jobs: Sequence[CaseJob], ctx: JobContext) -> Iterator[JobOutcome]:
        """Yield one outcome per job, in order."""
        for job in jobs:
            yield run_job(job, ctx)


def _init_worker(threads: int) -> None:
    """Limit each worker's numeric thread pools so N workers do not oversubscribe the CPU.

    Workers ignore Ctrl-C: the parent handles it (marks the run interrupted, cancels what has
    not started); a case already running finishes and its result is dropped.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def mp_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` on Linux (no fork of a threaded parent), ``spawn`` elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context(
        "forkserver" if sys.platform.startswith("linux") and "forkserver" in methods else "spawn"
    )


class LocalPoolExecutor:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` of ``workers`` processes.

    At most ``2 * workers`` jobs are in flight, so a dying worker affects few jobs and
    memory stays bounded whatever the batch size.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"local process pool ({workers} workers)"

    def run(self, jobs: Sequence[CaseJob], ctx: JobContext) -> Iterator[JobOutcome]:
        """Yield one outcome per job, in completion order."""
        pending: deque[CaseJob] = deque(jobs)
        attempts: Counter[str] = Counter()
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        while pending:
            pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp_context(),
                initializer=_init_worker,
                initargs=(threads,),
            )
            try:
                yield from self._drain(pool, pending, attempts, ctx)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _drain(
        self,
        pool: ProcessPoolExecutor,
        pending: deque[CaseJob],
        attempts: Counter[str],
        ctx: JobContext,
    ) -> Iterator[JobOutcome]:
        """Run jobs on ``pool`` until all are done or the pool breaks (then re-queue)."""
        inflight: dict[Future[JobOutcome], CaseJob] = {}
        while pending or inflight:
            while pending and len(inflight) < 2 * self.workers:
                job = pending.popleft()
                attempts[job.key] += 1
                inflight[pool.submit(run_job, job, ctx)] = job
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in sorted(done, key=lambda f: inflight[f].key):
                job = inflight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield from _retry_or_fail(job, pending, attempts, ctx)
            if broken:
                for job in sorted(inflight.values(), key=lambda j: j.key):
                    yield from _retry_or_fail(job, pending, attempts, ctx)
                return


def _retry_or_fail(
    job: CaseJob, pending: deque[CaseJob], attempts: Counter[str], ctx: JobContext
) -> Iterator[JobOutcome]:
    if attempts[job.key] < _MAX_ATTEMPTS:
        pending.appendleft(job)
        return
    yield error_outcome(
        job,
        ctx,
        "worker",
        "a worker process died while checking this case (twice); out of memory or a crash "
        "in compiled code; re-run to retry it",
    )


class DaskExecutor:
    """Submits jobs to a Dask distributed scheduler (optional extra ``rtcheck[dask]``).

    The batch root and the results folder must be visible at the same paths on every worker
    (a shared file system), and the workers must run the same rtcheck and protocol files;
    a worker that does not records the case as an error instead of checking it differently.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.description = f"Dask scheduler {address}"

    def run(self, jobs: Sequence[CaseJob], ctx: JobContext) -> Iterator[JobOutcome]:
        """Yield one outcome per job, in completion order."""
        distributed = _import_distributed()
        try:
            client = distributed.Client(self.address, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot connect to the Dask scheduler: {one_line(exc)}", path=self.address
            ) from exc
        try:
            futures = {client.submit(run_job, job, ctx, pure=False, retries=1): job for job in jobs}
            for fut in distributed.as_completed(list(futures), loop=client.loop):
                job = futures[fut]
                yield _dask_result(fut, job, ctx)
                fut.release()
        finally:
            client.close()


def _dask_result(fut: Any, job: CaseJob, ctx: JobContext) -> JobOutcome:
    try:
        return fut.result()
    except Exception as exc:  # KilledWorker, serialisation errors, lost workers
        return error_outcome(job, ctx, "worker", f"Dask worker failed: {one_line(exc)}")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            "--scheduler needs Dask distributed, which is not installed; "
            "install it with: pip install 'rtcheck[dask]'"
        ) from exc
    return distributed


def make_executor(jobs: int | None, scheduler: str | None) -> Executor:
    """The executor for ``--jobs`` and ``--scheduler`` (scheduler wins when given).

    Raises
    ------
    ConfigError
        ``jobs`` < 1, or a scheduler address that is not ``tcp://``, ``tls://`` or ``inproc://``.
    """
    if scheduler:
        if "://" not in scheduler:
            raise ConfigError(
                f"scheduler address {scheduler!r} needs a protocol, e.g. tcp://host:8786"
            )
        return DaskExecutor(scheduler)
    n = jobs if jobs is not None else (os.cpu_count() or 1)
    if n < 1:
        raise ConfigError(f"--jobs must be at least 1, not {n}")
    return InProcessExecutor() if n == 1 else LocalPoolExecutor(n)
