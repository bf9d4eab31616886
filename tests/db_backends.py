"""Results-database backends for tests: a SQLite file, or a fresh PostgreSQL schema.

PostgreSQL runs only when ``RTCHECK_TEST_POSTGRES_URL`` names a database the test may create
schemas in, e.g. ``postgresql+psycopg://rtcheck:rtcheck@127.0.0.1/rtcheck_test``. Each test gets
its own schema (``rtcheck_test_<random>``, selected through the connection's ``search_path``),
dropped with everything in it when the test ends, so runs never see each other's rows. The
session time zone is set far from UTC, so a stored time that depends on it shows up as a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

POSTGRES_ENV = "RTCHECK_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def postgres_base_url() -> str:
    """The PostgreSQL URL from the environment, or skip the calling test saying how to set it."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(
            f"PostgreSQL backend not tested: set {POSTGRES_ENV}="
            "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE (needs pip install rtcheck[postgres])"
        )
    return url


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL (PostgreSQL) or file path (SQLite) of an empty results database.

    The PostgreSQL schema is created here and dropped, with every table in it, on exit.
    """
    if backend == "sqlite":
        yield str(tmp_path / "r.sqlite")
        return
    base = make_url(postgres_base_url())
    schema = f"rtcheck_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # a session time zone far from UTC (with a half-hour offset) exposes naive-time handling
    options = f"-c search_path={schema} -c timezone=America/St_Johns"
    url = base.update_query_dict({"options": options})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
