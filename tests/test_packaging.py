"""An installed (non-editable) rtcheck ships its protocols (``constraints/`` as
``rtcheck/_constraints``) and finds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "constraints").glob("*.yaml"))

_PROBE = """
import json, rtcheck, rtcheck.protocol as p
print(json.dumps({"package": rtcheck.__file__, "dir": str(p.builtin_protocol_dir()),
                  "ids": [x.id for x in p.list_protocols()]}))
"""


def _build(tmp_path: Path) -> Path:
    """Run the real build configuration (pyproject.toml + setup.py) on a copy of the sources."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("rtcheck", "constraints"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
        cwd=src,
        check=True,
        capture_output=True,
    )
    return lib


def test_built_package_holds_the_protocols_and_finds_them(tmp_path: Path) -> None:
    lib = _build(tmp_path)
    assert sorted(p.name for p in (lib / "rtcheck" / "_constraints").glob("*.yaml")) == SHIPPED
    assert (lib / "rtcheck" / "db" / "migrations" / "script.py.mako").is_file()
    # the built package, imported from elsewhere (no checkout next to it), finds them
    env = {**os.environ, "PYTHONPATH": str(lib)}
    env.pop("RTCHECK_PROTOCOL_PATH", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    found = json.loads(out.stdout)
    assert Path(found["package"]).parent == lib / "rtcheck"
    assert Path(found["dir"]) == lib / "rtcheck" / "_constraints"
    assert sorted(f"{i}.yaml" for i in found["ids"]) == SHIPPED


def test_source_checkout_uses_the_top_level_constraints_folder() -> None:
    from rtcheck.protocol import builtin_protocol_dir

    assert builtin_protocol_dir() == ROOT / "constraints"
