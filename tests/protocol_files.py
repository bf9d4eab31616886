"""Synthetic protocol files for tests: one fixed header, the tables (and derived structures)
each test needs. Limits in them are test values with no clinical meaning."""

from __future__ import annotations

from pathlib import Path

_HEAD = """\
format: 1
id: {pid}
title: {pid} (synthetic limits)
version: "test"
citation: "synthetic"
sources: {{T1: {{citation: "test fixture"}}}}
levels: [limit]
point_max: Max
"""


def synthetic_protocol(pid: str, body: str) -> str:
    """Protocol YAML text: the header (source ``T1``, one level ``limit``, point max = the
    maximum) followed by ``body`` (``derived:``, ``tables:``...)."""
    return _HEAD.format(pid=pid) + body


def write_protocol(folder: Path, pid: str, body: str) -> Path:
    """:func:`synthetic_protocol` written to ``folder/<pid>.yaml``."""
    path = Path(folder) / f"{pid}.yaml"
    path.write_text(synthetic_protocol(pid, body), encoding="utf-8")
    return path
