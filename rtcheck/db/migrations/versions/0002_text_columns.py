"""Free-form columns become TEXT, so PostgreSQL stores whatever SQLite stored.

SQLite never enforces ``VARCHAR(n)``; PostgreSQL does and refuses a longer value, which made
a case with a deep relative path (``file:<path>`` keys), a long ROI name or a long protocol id
fail to record there only. Every column holding a value read from a DICOM file, a protocol
file, a path or a host name is now TEXT; rtcheck's own short vocabularies (verdicts, statuses,
kinds, finding codes) and hex digests keep their lengths.

On PostgreSQL this is an in-place ``ALTER COLUMN ... TYPE TEXT`` (no table rewrite). SQLite
cannot alter a column type, so Alembic's batch mode copies each table; foreign keys are
switched off for that by :func:`rtcheck.db.engine.upgrade` (dropping the old copy of a parent
table would otherwise cascade-delete its children).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: table -> ((column, old VARCHAR length, nullable), ...), parents before children.
COLUMNS: dict[str, tuple[tuple[str, int, bool], ...]] = {
    "runs": (
        ("protocol_id", 200, False),
        ("protocol_version", 100, False),
        ("executor", 200, False),
    ),
    "cases": (
        ("case_key", 200, False),
        ("patient_id", 200, True),
        ("study_uid", 100, True),
        ("protocol_id", 200, False),
        ("protocol_version", 100, False),
    ),
    "constraint_results": (
        ("lesion", 200, True),
        ("constraint_id", 200, False),
        ("structure", 200, False),
        ("matched_roi", 200, True),
        ("metric", 200, False),
        ("unit", 20, False),
        ("level", 50, True),
        ("priority", 50, True),
        ("dose_basis", 50, False),
    ),
    "lesions": (
        ("name", 200, False),
        ("prescription_source", 100, True),
        ("plan_label", 200, True),
    ),
    "findings": (("scope", 220, False), ("subject", 200, True)),
}


def _retype(to_text: bool) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, length, nullable in columns:
                old, new = sa.String(length=length), sa.Text()
                batch.alter_column(
                    name,
                    existing_type=old if to_text else new,
                    type_=new if to_text else old,
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    _retype(to_text=True)


def downgrade() -> None:
    # PostgreSQL refuses the downgrade if a stored value is longer than the old length.
    _retype(to_text=False)
