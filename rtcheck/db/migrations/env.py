"""Alembic environment: runs on the connection :func:`rtcheck.db.engine.upgrade` passes in.

To create a new revision from a source checkout::

    python -c "from rtcheck.db.engine import revision; revision('describe the change')"
"""

from __future__ import annotations

from alembic import context

from rtcheck.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when misused
    raise RuntimeError("run migrations through rtcheck.db.engine.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
