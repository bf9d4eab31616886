"""Alembic environment of the results database (run by :func:`rtcheck.db.engine.upgrade`)."""
