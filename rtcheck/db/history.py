"""Queries behind ``rtcheck history``: case evaluations, and constraint failure rates over time.

Periods are computed in Python from the UTC ``created`` time (``day``, ``week`` as ISO
``YYYY-Www``, ``month``, ``year`` or ``all``), which keeps the SQL portable between SQLite
and PostgreSQL. In the rates, a case checked several times within one period counts once
(its newest evaluation for that protocol), so re-running a batch does not inflate them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from rtcheck.db.models import CaseRow, ConstraintRow, RunCaseRow, RunRow
from rtcheck.db.store import ResultsDB, as_utc
from rtcheck.errors import ConfigError

__all__ = ["PERIODS", "HistoryQuery", "case_history", "constraint_rates", "period_of"]

PERIODS = ("day", "week", "month", "year", "all")
_CHUNK = 500


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of a history query.

    Attributes
    ----------
    patient
        Only this patient ID.
    protocol
        Only this protocol id.
    since
        Only evaluations computed at or after this time (aware or UTC).
    failures
        Cases: only ``fail`` and ``error`` verdicts. Rates: only constraints that failed.
    period
        Time bucket of the rates: one of :data:`PERIODS`.
    """

    patient: str | None = None
    protocol: str | None = None
    since: datetime | None = None
    failures: bool = False
    period: str = "month"

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ConfigError(f"unknown period {self.period!r}; use one of {', '.join(PERIODS)}")


def period_of(when: datetime, period: str) -> str:
    """Label of the period holding ``when`` (UTC)."""
    when = as_utc(when)
    if period == "day":
        return when.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return when.strftime("%Y-%m")
    if period == "year":
        return when.strftime("%Y")
    return "all"


def _filtered(stmt: Select[Any], q: HistoryQuery) -> Select[Any]:
    if q.patient is not None:
        stmt = stmt.where(CaseRow.patient_id == q.patient)
    if q.protocol is not None:
        stmt = stmt.where(CaseRow.protocol_id == q.protocol)
    if q.since is not None:
        stmt = stmt.where(CaseRow.created >= as_utc(q.since))
    return stmt


def case_history(db: ResultsDB, q: HistoryQuery) -> list[dict[str, Any]]:
    """One row per case evaluation, oldest first."""
    stmt = _filtered(select(CaseRow), q).order_by(CaseRow.created, CaseRow.id)
    if q.failures:
        stmt = stmt.where(CaseRow.verdict.in_(("fail", "error")))
    with db.session() as s:
        return [
            {
                "created": as_utc(r.created).isoformat(timespec="seconds"),
                "patient_id": r.patient_id,
                "label": r.label,
                "protocol_id": r.protocol_id,
                "protocol_version": r.protocol_version,
                "verdict": r.verdict,
                "n_pass": r.n_pass,
                "n_fail": r.n_fail,
                "n_not_evaluated": r.n_not_evaluated,
                "error": r.error,
                "rtcheck_version": r.rtcheck_version,
                "case_key": r.case_key,
            }
            for r in s.scalars(stmt)
        ]


def _latest_per_period(db: ResultsDB, q: HistoryQuery) -> dict[int, tuple[str, str]]:
    """``case id -> (protocol id, period)`` of the current evaluation per case and period.

    The period is the one the evaluation was made in; within it, the evaluation a run used
    last counts (a re-run that reuses an older evaluation makes it current again: after
    A, B, then A reused, A counts, not B).
    """
    last_used = (
        select(RunCaseRow.case_id, func.max(RunRow.started).label("used"))
        .join(RunRow, RunRow.id == RunCaseRow.run_id)
        .group_by(RunCaseRow.case_id)
        .subquery()
    )
    stmt = _filtered(
        select(
            CaseRow.id, CaseRow.case_key, CaseRow.protocol_id, CaseRow.created, last_used.c.used
        ).outerjoin(last_used, last_used.c.case_id == CaseRow.id),
        q,
    ).where(CaseRow.verdict != "error")
    chosen: dict[tuple[str, str, str], tuple[datetime, datetime, int]] = {}
    with db.session() as s:
        for case_id, key, protocol, created, used in s.execute(stmt):
            when = as_utc(created)
            seen = max(when, as_utc(used)) if used is not None else when
            slot = (period_of(when, q.period), key, protocol)
            if slot not in chosen or (seen, when, case_id) > chosen[slot]:
                chosen[slot] = (seen, when, case_id)
    return {cid: (slot[2], slot[0]) for slot, (_, _, cid) in chosen.items()}


def constraint_rates(db: ResultsDB, q: HistoryQuery) -> list[dict[str, Any]]:
    """Pass/fail/not-evaluated counts per protocol, constraint and period.

    ``fail_rate`` is ``fail / (pass + fail)``: the share of evaluated results that failed
    (None when none was evaluated); ``not_evaluated`` is reported beside it, never hidden.
    """
    cases = _latest_per_period(db, q)
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    counts: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
        lambda: {"pass": 0, "fail": 0, "not_evaluated": 0}
    )
    ids = sorted(cases)
    with db.session() as s:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            stmt = select(
                ConstraintRow.case_id,
                ConstraintRow.constraint_id,
                ConstraintRow.structure,
                ConstraintRow.status,
            ).where(ConstraintRow.case_id.in_(chunk))
            for case_id, cid, structure, status in s.execute(stmt):
                protocol, period = cases[case_id]
                key = (protocol, cid, period)
                groups.setdefault(key, {"structure": structure})
                counts[key][status] = counts[key].get(status, 0) + 1
    rows = []
    for key in sorted(groups):
        c = counts[key]
        evaluated = c["pass"] + c["fail"]
        if q.failures and c["fail"] == 0:
            continue
        rows.append(
            {
                "protocol_id": key[0],
                "constraint_id": key[1],
                "structure": groups[key]["structure"],
                "period": key[2],
                "n": sum(c.values()),
                "pass": c["pass"],
                "fail": c["fail"],
                "not_evaluated": c["not_evaluated"],
                "fail_rate": None if evaluated == 0 else round(c["fail"] / evaluated, 4),
            }
        )
    return rows
