"""The results database: runs, case evaluations and their details, written per case.

Every :meth:`ResultsDB.record_case` is one transaction: the evaluation, its constraint
results, lesions and findings, and the run link are committed together or not at all, so a
batch that dies half-way keeps every case it had recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from rtcheck.db.engine import create_db_engine, database_url, upgrade
from rtcheck.db.models import (
    CaseRow,
    ConstraintRow,
    FindingRow,
    LesionRow,
    RunCaseRow,
    RunRow,
)
from rtcheck.db.records import CACHEABLE_ERROR_KINDS, CaseRecord, RunInfo, utc_now
from rtcheck.errors import ConfigError, RtcheckError
from rtcheck.result import ConstraintResult, Result

__all__ = ["ResultsDB", "as_utc"]

_CHUNK = 500


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive value is taken to be UTC already.

    Every time is converted with this before it is written: SQLite stores a datetime without
    its offset (and hands back naive values), PostgreSQL ``timestamptz`` reads a naive value
    in the session time zone; as UTC instants both give the same answer.
    """
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ResultsDB:
    """Read and write the results database.

    Parameters
    ----------
    engine
        A SQLAlchemy engine whose schema is up to date (use :meth:`open`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url_or_path: str | os.PathLike[str]) -> ResultsDB:
        """Open (creating or upgrading the schema if needed) a database by URL or file path.

        Raises
        ------
        ConfigError
            Bad URL, missing driver, missing folder, or a schema newer than this rtcheck.
        """
        engine = create_db_engine(database_url(url_or_path))
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()  # a refused database must not leave pooled connections open
            raise
        return cls(engine)

    @property
    def url(self) -> str:
        """The database URL without password."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction (committed on success, rolled back on error)."""
        try:
            with Session(self.engine) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0]
            raise RtcheckError(f"database error: {first}", path=self.url) from exc

    # -- runs -------------------------------------------------------------------------
    def start_run(self, info: RunInfo) -> int:
        """Insert a ``running`` run and return its id."""
        row = RunRow(
            kind=info.kind,
            status="running",
            started=utc_now(),
            root=info.root,
            out_dir=info.out_dir,
            protocol_id=info.protocol_id,
            protocol_version=info.protocol_version,
            protocol_sha256=info.protocol_sha256,
            rtcheck_version=info.rtcheck_version,
            options_json=json.dumps(info.options, sort_keys=True, default=str),
            executor=info.executor,
            n_cases=0,
            n_computed=0,
            n_reused=0,
            n_pass=0,
            n_fail=0,
            n_incomplete=0,
            n_error=0,
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            return int(row.id)

    def finish_run(
        self, run_id: int, status: str, totals: dict[str, int], exit_code: int | None
    ) -> None:
        """Mark a run ``complete``/``interrupted``/``failed`` with its totals."""
        values: dict[str, Any] = {
            "status": status,
            "finished": utc_now(),
            "exit_code": exit_code,
        }
        for name in ("cases", "computed", "reused", "pass", "fail", "incomplete", "error"):
            values[f"n_{name}"] = int(totals.get(name, 0))
        with self.session() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first, as plain dicts."""
        with self.session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.id)).all()
            return [_run_dict(r) for r in rows]

    # -- cases ------------------------------------------------------------------------
    def record_case(self, run_id: int, record: CaseRecord, result: Result | None) -> int:
        """Store one evaluation with its details and link it to ``run_id`` (one transaction).

        Returns
        -------
        int
            The evaluation's id (``cases.id``).
        """
        with self.session() as s:
            row = _case_row(run_id, record, result)
            s.add(row)
            s.flush()
            case_id = int(row.id)
            if result is not None:
                s.add_all(_detail_rows(case_id, result))
            s.add(RunCaseRow(run_id=run_id, case_id=case_id, reused=False))
            return case_id

    def reuse_case(self, run_id: int, case_id: int) -> None:
        """Record that ``run_id`` covered evaluation ``case_id`` without recomputing it."""
        with self.session() as s:
            if s.get(RunCaseRow, (run_id, case_id)) is None:
                s.add(RunCaseRow(run_id=run_id, case_id=case_id, reused=True))

    def reusable(self, fingerprints: Collection[str]) -> dict[str, tuple[int, CaseRecord]]:
        """Newest reusable evaluation for each fingerprint that has one.

        An evaluation is reusable unless it is an error of a kind that may not recur
        (crashed worker, unwritable output): see :data:`CACHEABLE_ERROR_KINDS`.
        """
        found: dict[str, tuple[int, CaseRecord]] = {}
        wanted = sorted(set(fingerprints))
        with self.session() as s:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                stmt = (
                    select(CaseRow)
                    .where(CaseRow.fingerprint.in_(chunk))
                    .where(
                        (CaseRow.verdict != "error")
                        | CaseRow.error_kind.in_(sorted(CACHEABLE_ERROR_KINDS))
                    )
                    .order_by(CaseRow.id)
                )
                for row in s.scalars(stmt):
                    found[row.fingerprint] = (int(row.id), _record(row))
        return found

    def run_cases(self, run_id: int) -> list[tuple[CaseRecord, bool]]:
        """Evaluations covered by a run, with ``reused`` flags, in case-key order."""
        with self.session() as s:
            stmt = (
                select(CaseRow, RunCaseRow.reused)
                .join(RunCaseRow, RunCaseRow.case_id == CaseRow.id)
                .where(RunCaseRow.run_id == run_id)
                .order_by(CaseRow.case_key, CaseRow.id)
            )
            return [(_record(row), bool(reused)) for row, reused in s.execute(stmt)]

    def case_result(self, case_id: int) -> dict[str, Any] | None:
        """The stored ``Result.to_dict()`` (without DVH curves) of an evaluation."""
        with self.session() as s:
            text = s.scalar(select(CaseRow.result_json).where(CaseRow.id == case_id))
        return None if text is None else json.loads(text)

    def count(self, table: str) -> int:
        """Number of rows in one of the tables (for checks and tests)."""
        models = {
            m.__tablename__: m
            for m in (RunRow, CaseRow, RunCaseRow, ConstraintRow, LesionRow, FindingRow)
        }
        if table not in models:
            raise ConfigError(f"unknown table {table!r}; one of {sorted(models)}")
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(models[table])) or 0)


def _run_dict(r: RunRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "status": r.status,
        "started": as_utc(r.started).isoformat(),
        "finished": None if r.finished is None else as_utc(r.finished).isoformat(),
        "root": r.root,
        "out_dir": r.out_dir,
        "protocol_id": r.protocol_id,
        "protocol_version": r.protocol_version,
        "executor": r.executor,
        "n_cases": r.n_cases,
        "n_computed": r.n_computed,
        "n_reused": r.n_reused,
        "n_pass": r.n_pass,
        "n_fail": r.n_fail,
        "n_incomplete": r.n_incomplete,
        "n_error": r.n_error,
        "exit_code": r.exit_code,
    }


def _case_row(run_id: int, rec: CaseRecord, result: Result | None) -> CaseRow:
    result_json = None
    if result is not None:
        data = result.to_dict()
        data.pop("dvhs", None)
        result_json = json.dumps(data, sort_keys=True)
    return CaseRow(
        run_id=run_id,
        case_key=rec.key,
        fingerprint=rec.fingerprint,
        slug=rec.slug,
        label=rec.label,
        patient_id=rec.patient_id,
        study_uid=rec.study_uid,
        protocol_id=rec.protocol_id,
        protocol_version=rec.protocol_version,
        rtcheck_version=rec.rtcheck_version,
        verdict=rec.verdict,
        error=rec.error,
        error_kind=rec.error_kind,
        error_detail=rec.error_detail,
        n_pass=rec.counts.get("pass", 0),
        n_fail=rec.counts.get("fail", 0),
        n_not_evaluated=rec.counts.get("not_evaluated", 0),
        n_findings=rec.n_findings,
        n_inputs=rec.n_inputs,
        reports_json=json.dumps(list(rec.reports)),
        created=as_utc(rec.created),  # SQLite keeps no offset: store the UTC instant
        seconds=rec.seconds,
        result_json=result_json,
    )


def _record(row: CaseRow) -> CaseRecord:
    return CaseRecord(
        key=row.case_key,
        fingerprint=row.fingerprint,
        slug=row.slug,
        label=row.label,
        patient_id=row.patient_id,
        study_uid=row.study_uid,
        protocol_id=row.protocol_id,
        protocol_version=row.protocol_version,
        rtcheck_version=row.rtcheck_version,
        verdict=row.verdict,
        error=row.error,
        error_kind=row.error_kind,
        counts={
            "pass": row.n_pass,
            "fail": row.n_fail,
            "not_evaluated": row.n_not_evaluated,
        },
        n_findings=row.n_findings,
        n_inputs=row.n_inputs,
        reports=tuple(json.loads(row.reports_json)),
        created=as_utc(row.created),
        seconds=row.seconds,
        error_detail=row.error_detail,
    )


def _constraint_row(case_id: int, pos: int, c: ConstraintResult) -> ConstraintRow:
    return ConstraintRow(
        case_id=case_id,
        position=pos,
        lesion=c.lesion,
        constraint_id=c.id,
        structure=c.structure,
        matched_roi=c.matched_roi,
        match=c.match,
        metric=c.metric,
        value=c.value,
        unit=c.unit,
        status=c.status.value,
        level=c.level,
        margin=c.margin,
        reason=c.reason,
        priority=c.priority,
        dose_basis=c.dose_basis,
        limits_json=json.dumps({lim.level: lim.to_dict() for lim in c.limits}),
    )


def _detail_rows(case_id: int, result: Result) -> list[Any]:
    rows: list[Any] = []
    for pos, c in enumerate(result.constraints):
        rows.append(_constraint_row(case_id, pos, c))
    offset = len(result.constraints)
    for lesion in result.lesions:
        for c in lesion.constraints:
            named = c if c.lesion is not None else replace(c, lesion=lesion.name)
            rows.append(_constraint_row(case_id, offset, named))
            offset += 1
    for pos, lesion in enumerate(result.lesions):
        rows.append(
            LesionRow(
                case_id=case_id,
                position=pos,
                name=lesion.name,
                prescription_gy=lesion.prescription_gy,
                prescription_source=lesion.prescription_source,
                plan_label=lesion.plan_label,
                fractions=lesion.fractions,
                volume_cc=lesion.volume_cc,
                metrics_json=json.dumps(dict(lesion.metrics), sort_keys=True),
            )
        )
    scoped = [("case", f) for f in result.findings]
    scoped += [(f"lesion:{les.name}", f) for les in result.lesions for f in les.findings]
    for pos, (scope, f) in enumerate(scoped):
        rows.append(
            FindingRow(
                case_id=case_id,
                position=pos,
                scope=scope,
                code=f.code,
                severity=f.severity.value,
                message=f.message,
                source=f.source,
                subject=f.subject,
            )
        )
    return rows
