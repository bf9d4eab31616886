"""SQLAlchemy 2 models of the results database (schema documented in ``docs/batch.md``).

One row of ``cases`` is one *evaluation*: a case (``case_key``) checked once against one
protocol with one set of inputs (``fingerprint``). A batch run that finds an unchanged case
reuses that evaluation instead of adding a new one; ``run_cases`` records which evaluations
each run covered and whether it computed or reused them. Constraint results, lesions and
findings hang off the evaluation. Times are stored as UTC.

Values read from DICOM files, protocol files, paths or host names are ``Text``: SQLite never
enforces a ``VARCHAR`` length but PostgreSQL does, and the same data must fit both.

The Alembic migrations in :mod:`rtcheck.db.migrations` create exactly these tables; a change
here needs a new revision there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "CaseRow", "ConstraintRow", "FindingRow", "LesionRow", "RunCaseRow", "RunRow"]


class Base(DeclarativeBase):
    """Declarative base of every rtcheck table."""


class RunRow(Base):
    """One ``rtcheck batch`` run or one ``rtcheck serve`` session."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    root: Mapped[str] = mapped_column(Text)
    out_dir: Mapped[str] = mapped_column(Text)
    protocol_id: Mapped[str] = mapped_column(Text)
    protocol_version: Mapped[str] = mapped_column(Text)
    protocol_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rtcheck_version: Mapped[str] = mapped_column(String(50))
    options_json: Mapped[str] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(Text)
    n_cases: Mapped[int] = mapped_column(Integer, default=0)
    n_computed: Mapped[int] = mapped_column(Integer, default=0)
    n_reused: Mapped[int] = mapped_column(Integer, default=0)
    n_pass: Mapped[int] = mapped_column(Integer, default=0)
    n_fail: Mapped[int] = mapped_column(Integer, default=0)
    n_incomplete: Mapped[int] = mapped_column(Integer, default=0)
    n_error: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CaseRow(Base):
    """One evaluation of one case against one protocol."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_fingerprint", "fingerprint"),
        Index("ix_cases_patient", "patient_id"),
        Index("ix_cases_protocol_created", "protocol_id", "created"),
        Index("ix_cases_key", "case_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    case_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    slug: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(Text)
    patient_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    study_uid: Mapped[str | None] = mapped_column(Text, nullable=True)
    protocol_id: Mapped[str] = mapped_column(Text)
    protocol_version: Mapped[str] = mapped_column(Text)
    rtcheck_version: Mapped[str] = mapped_column(String(50))
    verdict: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    n_pass: Mapped[int] = mapped_column(Integer, default=0)
    n_fail: Mapped[int] = mapped_column(Integer, default=0)
    n_not_evaluated: Mapped[int] = mapped_column(Integer, default=0)
    n_findings: Mapped[int] = mapped_column(Integer, default=0)
    n_inputs: Mapped[int] = mapped_column(Integer, default=0)
    reports_json: Mapped[str] = mapped_column(Text, default="[]")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunCaseRow(Base):
    """Which evaluations a run covered; ``reused`` when it did not recompute them."""

    __tablename__ = "run_cases"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    reused: Mapped[bool] = mapped_column(Boolean, default=False)


class ConstraintRow(Base):
    """One constraint result of an evaluation (organ constraints and lesion rules)."""

    __tablename__ = "constraint_results"
    __table_args__ = (Index("ix_constraint_results_case", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    lesion: Mapped[str | None] = mapped_column(Text, nullable=True)
    constraint_id: Mapped[str] = mapped_column(Text)
    structure: Mapped[str] = mapped_column(Text)
    matched_roi: Mapped[str | None] = mapped_column(Text, nullable=True)
    match: Mapped[str | None] = mapped_column(Text, nullable=True)
    metric: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    level: Mapped[str | None] = mapped_column(Text, nullable=True)
    margin: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[str | None] = mapped_column(Text, nullable=True)
    dose_basis: Mapped[str] = mapped_column(Text)
    limits_json: Mapped[str] = mapped_column(Text)


class LesionRow(Base):
    """Per-lesion (target) metrics of an evaluation."""

    __tablename__ = "lesions"
    __table_args__ = (Index("ix_lesions_case", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    prescription_gy: Mapped[float | None] = mapped_column(Float, nullable=True)
    prescription_source: Mapped[str | None] = mapped_column(Text, nullable=True)
    plan_label: Mapped[str | None] = mapped_column(Text, nullable=True)
    fractions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    volume_cc: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics_json: Mapped[str] = mapped_column(Text)


class FindingRow(Base):
    """A finding of an evaluation (``scope``: ``case`` or ``lesion:<name>``)."""

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_case", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    scope: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
