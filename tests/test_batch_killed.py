"""``rtcheck batch`` killed with SIGKILL mid-run, then run again (issue #7: "resume after an
interrupted run"; "a crash mid-batch loses nothing already reported").

A real process is killed once the results database holds its first case: every case it
recorded is reused by the next run, the rest are computed, and the summaries equal those of
an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtcheck.db import ResultsDB
from tests.test_batch import make_tiny_case

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX"),
]

N_CASES = 12
CLI = "import sys; from rtcheck.cli import main; sys.exit(main(sys.argv[1:]))"


def _tree(root: Path) -> Path:
    for i in range(N_CASES):
        make_tiny_case(root / f"K{i:02d}", f"K{i:02d}", 10.0 + 0.1 * i)
    return root


def _batch(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", CLI, "batch", str(root), "-p", "tg101", "-o", str(out),
            "-j", "1", "--report-formats", "json", "--no-progress"]  # fmt: skip


def _recorded(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM run_cases").fetchone()[0])
    except sqlite3.Error:  # schema not created yet, or locked for a moment
        return 0


def test_batch_killed_mid_run_resumes_without_losing_anything(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    db = out / "results.sqlite"
    proc = subprocess.Popen(_batch(root, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # hang guard, not a speed assertion
    while _recorded(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _recorded(db)
    assert 1 <= done < N_CASES, f"not interrupted mid-run ({done} of {N_CASES} recorded)"

    again = subprocess.run(_batch(root, out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr  # every case passes at 10-11 Gy
    clean = tmp_path / "clean"
    subprocess.run(_batch(root, clean), capture_output=True, timeout=600, check=True)
    for name in ("summary.csv", "summary.json", "index.html"):
        a = (out / name).read_bytes().replace(str(out).encode(), b"OUT")
        b = (clean / name).read_bytes().replace(str(clean).encode(), b"OUT")
        assert a == b, name
    with ResultsDB.open(db) as store:
        runs = store.runs()
        assert [r["status"] for r in runs][-1] == "complete"
        assert runs[0]["status"] != "complete"  # the killed run never claims to be complete
        assert store.count("cases") == N_CASES
    # every case recorded before the kill is reused, none is lost or computed twice
    assert f"({done} unchanged, reused)" in again.stdout, again.stdout
