"""Database URLs, engines and schema upgrades (Alembic, run programmatically on open).

No ``alembic.ini`` is needed: the migration scripts ship inside the package
(:mod:`rtcheck.db.migrations`) and :func:`upgrade` points Alembic at them, so a
``pip install rtcheck`` user gets an up-to-date schema the first time a database is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from rtcheck.errors import ConfigError

__all__ = [
    "MIGRATIONS_DIR",
    "create_db_engine",
    "current_revision",
    "database_url",
    "revision",
    "upgrade",
]

#: Folder of the Alembic environment and revisions.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: PostgreSQL advisory lock key held while migrations run (any fixed 64-bit number).
_PG_MIGRATION_LOCK = 0x72746368_65636B01


def database_url(url_or_path: str | os.PathLike[str]) -> str:
    """SQLAlchemy URL for ``url_or_path``: a URL is kept, a file path becomes SQLite.

    Raises
    ------
    ConfigError
        The folder of a SQLite file does not exist.
    """
    text = str(url_or_path)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    if not path.parent.is_dir():
        raise ConfigError(
            f"database folder {path.parent} does not exist; create it or give another --db",
            path=text,
        )
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL may have to wait
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout.

    Raises
    ------
    ConfigError
        Unknown dialect or missing database driver.
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, poolclass=NullPool)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        hint = ""
        if isinstance(exc, ImportError) and url.startswith("postgresql"):
            hint = "; pip install 'rtcheck[postgres]' and use a postgresql+psycopg:// URL"
        raise ConfigError(f"cannot use database URL: {exc}{hint}", path=_safe(url)) from exc
    return engine


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in the database (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _known(script: Any, revision_id: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision_id) is not None
    except CommandError:
        return False


def upgrade(engine: Engine, target: str = "head") -> None:
    """Bring the schema to ``target`` (default the newest revision; no-op when it is there).

    On SQLite, foreign keys are off while migrations run: a migration that changes a column
    copies the table (Alembic batch mode), and dropping the old copy of a parent table with
    foreign keys on would cascade-delete every child row. The keys are checked before commit.

    Raises
    ------
    ConfigError
        The database cannot be opened, is newer than this rtcheck, or a migration left rows
        whose parent is missing.
    """
    from alembic.script import ScriptDirectory

    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    wanted = script.get_current_head() if target == "head" else target
    try:
        current = current_revision(engine)
        if current == wanted:
            return
        if current is not None and not _known(script, current):
            raise ConfigError(
                f"database schema revision {current} is newer than this rtcheck knows "
                f"(head {script.get_current_head()}); upgrade rtcheck",
                path=_safe(str(engine.url)),
            )
        _migrate(engine, cfg, target)
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"cannot open database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
            path=_safe(str(engine.url)),
        ) from exc


def _migrate(engine: Engine, cfg: Any, target: str) -> None:
    """Run the migrations up to ``target`` in one transaction on one connection."""
    from alembic import command

    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            _sqlite_migration_mode(conn)
        with conn.begin():
            # two rtcheck processes opening a new database at once: the second waits for
            # the first, then finds the schema at head (Alembic reads it after the lock)
            if sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
            if sqlite:
                _check_sqlite_keys(conn, engine)


def _sqlite_migration_mode(conn: Connection) -> None:
    """Foreign keys off and explicit transactions on this (unpooled) SQLite connection.

    Python's sqlite3 (3.11) opens a transaction only before INSERT/UPDATE/DELETE, so the
    ``CREATE TABLE`` that starts a batch-mode table copy would commit on its own and an
    interrupted upgrade would leave a half-made table behind; with ``isolation_level=None``
    and an explicit ``BEGIN IMMEDIATE`` the whole upgrade is one transaction holding the write
    lock from the start. ``PRAGMA foreign_keys`` only takes effect outside a transaction.
    NullPool closes this connection afterwards.
    """
    conn.connection.dbapi_connection.isolation_level = None  # type: ignore[union-attr]
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()


def _check_sqlite_keys(conn: Connection, engine: Engine) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise ConfigError(
            f"after the schema upgrade {len(broken)} rows have no parent row (first in "
            f"table {broken[0][0]}); the upgrade was rolled back, the database is unchanged",
            path=_safe(str(engine.url)),
        )


def revision(message: str, rev_id: str | None = None) -> None:
    """Developer helper: write a new revision for the changes made to :mod:`rtcheck.db.models`.

    Compares the models with a scratch SQLite database at the current head (Alembic
    autogenerate) and writes the script into ``migrations/versions``; review it before use.
    """
    import tempfile

    from alembic import command

    cfg = _alembic_config()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/scratch.sqlite")
        upgrade(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
