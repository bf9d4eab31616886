"""Initial schema: runs, cases, run_cases, constraint_results, lesions, findings.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _case_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("out_dir", sa.Text(), nullable=False),
        sa.Column("protocol_id", sa.String(length=200), nullable=False),
        sa.Column("protocol_version", sa.String(length=100), nullable=False),
        sa.Column("protocol_sha256", sa.String(length=64), nullable=True),
        sa.Column("rtcheck_version", sa.String(length=50), nullable=False),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=200), nullable=False),
        sa.Column("n_cases", sa.Integer(), nullable=False),
        sa.Column("n_computed", sa.Integer(), nullable=False),
        sa.Column("n_reused", sa.Integer(), nullable=False),
        sa.Column("n_pass", sa.Integer(), nullable=False),
        sa.Column("n_fail", sa.Integer(), nullable=False),
        sa.Column("n_incomplete", sa.Integer(), nullable=False),
        sa.Column("n_error", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("case_key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=True),
        sa.Column("study_uid", sa.String(length=100), nullable=True),
        sa.Column("protocol_id", sa.String(length=200), nullable=False),
        sa.Column("protocol_version", sa.String(length=100), nullable=False),
        sa.Column("rtcheck_version", sa.String(length=50), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("n_pass", sa.Integer(), nullable=False),
        sa.Column("n_fail", sa.Integer(), nullable=False),
        sa.Column("n_not_evaluated", sa.Integer(), nullable=False),
        sa.Column("n_findings", sa.Integer(), nullable=False),
        sa.Column("n_inputs", sa.Integer(), nullable=False),
        sa.Column("reports_json", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cases_fingerprint", "cases", ["fingerprint"])
    op.create_index("ix_cases_key", "cases", ["case_key"])
    op.create_index("ix_cases_patient", "cases", ["patient_id"])
    op.create_index("ix_cases_protocol_created", "cases", ["protocol_id", "created"])
    op.create_table(
        "run_cases",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reused", sa.Boolean(), nullable=False),
        _case_fk(),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "case_id"),
    )
    op.create_table(
        "constraint_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("lesion", sa.String(length=200), nullable=True),
        sa.Column("constraint_id", sa.String(length=200), nullable=False),
        sa.Column("structure", sa.String(length=200), nullable=False),
        sa.Column("matched_roi", sa.String(length=200), nullable=True),
        sa.Column("match", sa.Text(), nullable=True),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=50), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("priority", sa.String(length=50), nullable=True),
        sa.Column("dose_basis", sa.String(length=50), nullable=False),
        sa.Column("limits_json", sa.Text(), nullable=False),
        _case_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_constraint_results_case", "constraint_results", ["case_id"])
    op.create_table(
        "lesions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prescription_gy", sa.Float(), nullable=True),
        sa.Column("prescription_source", sa.String(length=100), nullable=True),
        sa.Column("plan_label", sa.String(length=200), nullable=True),
        sa.Column("fractions", sa.Integer(), nullable=True),
        sa.Column("volume_cc", sa.Float(), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        _case_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lesions_case", "lesions", ["case_id"])
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=220), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        _case_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_findings_case", "findings", ["case_id"])


def downgrade() -> None:
    for table in ("findings", "lesions", "constraint_results", "run_cases", "cases", "runs"):
        op.drop_table(table)
