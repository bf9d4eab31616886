"""Many cases at once: discovery, parallel checks (local pool or Dask), resume, summaries.

Typical use::

    from rtcheck.batch import BatchOptions, run_batch

    report = run_batch("exports/", "tg101", "results/", BatchOptions(jobs=4))
    report.exit_code   # 2 any error, else 1 any fail, else 3 any incomplete, else 0

See ``docs/batch.md`` for the results layout, the database schema and the resume rules.
"""

from __future__ import annotations

from rtcheck.batch.jobs import CaseJob, JobContext, fingerprint, plan_jobs
from rtcheck.batch.runner import BatchOptions, BatchReport, describe, prepare_context, run_batch
from rtcheck.batch.summary import batch_exit_code, write_summaries
from rtcheck.batch.worker import JobOutcome, run_job

__all__ = [
    "BatchOptions",
    "BatchReport",
    "CaseJob",
    "JobContext",
    "JobOutcome",
    "batch_exit_code",
    "describe",
    "fingerprint",
    "plan_jobs",
    "prepare_context",
    "run_batch",
    "run_job",
    "write_summaries",
]
