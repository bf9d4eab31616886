"""Alembic revisions of the results database, oldest first."""
