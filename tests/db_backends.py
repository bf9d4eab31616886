"""Results-database backends for tests: a SQLite file, or a fresh PostgreSQL schema.

The PostgreSQL server is, in this order: the database named by ``RTCHECK_TEST_POSTGRES_URL``
(one the test may create schemas in, e.g.
``postgresql+psycopg://rtcheck:rtcheck@127.0.0.1/rtcheck_test``); else a throwaway cluster
started once per session from the local ``initdb``/``pg_ctl`` (``postgres_url`` fixture, run as
``nobody`` when the tests run as root, since initdb refuses root); else the PostgreSQL half is
skipped with a message. Each test gets its own schema (``rtcheck_test_<random>``, selected
through the connection's ``search_path``), dropped with everything in it when the test ends, so
runs never see each other's rows. The session time zone is set far from UTC, so a stored time
that depends on it shows up as a failure.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
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


PG_USER = "rtcheck"
PG_DATABASE = "rtcheck_test"
PG_BIN_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/local/bin")
UNPRIVILEGED_USER = "nobody"
NOT_CONFIGURED = (
    f"PostgreSQL backend not tested: set {POSTGRES_ENV}="
    "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE or put initdb and pg_ctl on PATH "
    "(needs pip install rtcheck[postgres])"
)


def _version_key(folder: str) -> list[int]:
    return [int(part) for part in folder.split("/") if part.isdigit()]


def find_pg_bin_dir() -> Path | None:
    """The directory holding both ``initdb`` and ``pg_ctl``: PATH first, then the usual places."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).parent] if on_path else []
    for pattern in PG_BIN_DIRS:
        # newest major version first (glob order is arbitrary)
        found = sorted(glob.glob(pattern), key=_version_key)
        candidates += [Path(d) for d in reversed(found)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(workdir: Path) -> list[str]:
    """Command prefix running a server tool unprivileged; chowns ``workdir`` to that user.

    initdb and postgres refuse to run as root, so as root they run as ``nobody`` via
    ``runuser`` (or ``setpriv``). Skips the calling test when neither can switch user.
    """
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        pytest.skip(f"PostgreSQL backend not tested: running as root and no {UNPRIVILEGED_USER!r}")
    os.chown(workdir, account.pw_uid, account.pw_gid)
    prefixes = []
    if shutil.which("runuser"):
        prefixes.append(["runuser", "-u", UNPRIVILEGED_USER, "--"])
    if shutil.which("setpriv"):
        ids = [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
        prefixes.append(["setpriv", *ids])
    for prefix in prefixes:
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False, timeout=30)
        if probe.returncode == 0:
            return prefix
    pytest.skip(
        "PostgreSQL backend not tested: initdb refuses to run as root and neither runuser nor "
        f"setpriv could switch to {UNPRIVILEGED_USER!r}; set {POSTGRES_ENV} instead"
    )


def _run(cmd: list[str], workdir: Path, what: str) -> None:
    """Run a server tool; skip with its output when it fails (the server cannot be had here)."""
    done = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        log = workdir / "server.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        pytest.skip(
            f"PostgreSQL backend not tested: {what} failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-800:]} {tail}".strip()
        )


@contextmanager
def local_postgres(bin_dir: Path) -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yield the URL of an empty database in it.

    The cluster lives in a fresh directory under the system temp dir (world-traversable, so the
    unprivileged server user can reach it), trusts local connections, listens on a free port of
    127.0.0.1 and on a unix socket in that directory, and runs without fsync (throwaway data).
    It is stopped and the directory removed on exit.
    """
    workdir = Path(tempfile.mkdtemp(prefix="rtcheck-pg-"))
    data = workdir / "data"
    started = False
    try:
        prefix = _as_server_user(workdir)
        initdb = [str(bin_dir / "initdb"), "-A", "trust", "-U", PG_USER, "-D", str(data)]
        _run([*prefix, *initdb, "-E", "UTF8", "--no-locale", "--no-sync"], workdir, "initdb")
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg_ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data)]
        start = [*pg_ctl, "-w", "-t", "60", "-l", str(workdir / "server.log"), "-o", options]
        _run([*start, "start"], workdir, "pg_ctl start")
        started = True
        base = f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}"
        admin = create_engine(f"{base}/postgres", poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
        admin.dispose()
        yield f"{base}/{PG_DATABASE}"
    finally:
        if started:
            stop = [*pg_ctl, "-w", "-m", "fast", "stop"]
            subprocess.run(stop, cwd=workdir, capture_output=True, check=False, timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Base URL of a PostgreSQL database for the session (see the module docstring), or skip."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        yield url
        return
    bin_dir = find_pg_bin_dir()
    if bin_dir is None:
        pytest.skip(NOT_CONFIGURED)
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("PostgreSQL backend not tested: psycopg missing (pip install -e '.[dev]')")
    with local_postgres(bin_dir) as local_url:
        yield local_url


@contextmanager
def fresh_database(backend: str, tmp_path: Path, postgres: str | None = None) -> Iterator[str]:
    """A URL (PostgreSQL) or file path (SQLite) of an empty results database.

    ``postgres`` is the server's base URL (the ``postgres_url`` fixture); the schema is created
    in it here and dropped, with every table in it, on exit.
    """
    if backend == "sqlite":
        yield str(tmp_path / "r.sqlite")
        return
    if postgres is None:
        raise ValueError("fresh_database('postgresql', ...) needs the postgres_url fixture's URL")
    base = make_url(postgres)
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
