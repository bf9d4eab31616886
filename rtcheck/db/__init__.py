"""Results database (SQLAlchemy 2; SQLite by default, PostgreSQL through a URL).

Typical use::

    from rtcheck.db import ResultsDB

    with ResultsDB.open("results/results.sqlite") as db:   # creates / upgrades the schema
        run_id = db.start_run(info)
        db.record_case(run_id, record, result)              # one transaction per case

The schema (tables ``runs``, ``cases``, ``run_cases``, ``constraint_results``, ``lesions``,
``findings``) is documented in ``docs/batch.md``; migrations live in
:mod:`rtcheck.db.migrations` and run automatically when a database is opened.
"""

from __future__ import annotations

from rtcheck.db.history import HistoryQuery, case_history, constraint_rates
from rtcheck.db.records import CaseRecord, RunInfo, utc_now
from rtcheck.db.store import ResultsDB

__all__ = [
    "CaseRecord",
    "HistoryQuery",
    "ResultsDB",
    "RunInfo",
    "case_history",
    "constraint_rates",
    "utc_now",
]
