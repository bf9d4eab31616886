"""``rtcheck protocols show`` shows the centre-specific structure names a protocol declares.

``extra_structures`` (protocol level) and ``custom_name: true`` (per row) exempt a name from
the TG-263 check on load (docs/protocols.md); a reviewer reading the protocol must see which
names were declared that way, in the JSON view and in the table view.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from rtcheck.cli import main
from rtcheck.protocol import load_protocol, read_protocol_file
from rtcheck.protocol.export import (
    CUSTOM_NAME_FLAG,
    constraint_flags,
    header_lines,
    protocol_to_dict,
)

CENTRE = """\
format: 1
id: centre
title: Centre protocol with its own structure names
version: "1"
citation: Test citation
sources:
  S1: {citation: a source}
levels: [limit]
point_max: Max
extra_structures: [Eso_Wall, Cord_Canal]
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 30},
         source: S1, required: true}
      - {structure: Eso_Wall, metric: "Max[Gy]", comparator: "<", limits: {limit: 35},
         source: S1}
      - {structure: Heart_Wall, custom_name: true, metric: "Max[Gy]", comparator: "<",
         limits: {limit: 38}, source: S1}
"""


def _write(tmp_path: Path, text: str = CENTRE) -> Path:
    path = tmp_path / "centre.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_json_view_names_the_declared_structures(tmp_path, capsys) -> None:
    path = _write(tmp_path)
    assert main(["protocols", "show", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["extra_structures"] == ["Eso_Wall", "Cord_Canal"]
    rows = {r["structure"]: r for r in doc["tables"]["5"]["constraints"]}
    assert {name: r["custom_name"] for name, r in rows.items()} == {
        "SpinalCord": False,
        "Eso_Wall": False,  # declared by extra_structures, not on the row
        "Heart_Wall": True,
    }


def test_shipped_protocols_declare_no_custom_names() -> None:
    doc = protocol_to_dict(load_protocol("tg101"))
    assert doc["extra_structures"] == []
    rows = [r for t in doc["tables"].values() for r in t["constraints"]]
    assert rows and not any(r["custom_name"] for r in rows)


def test_table_view_lines_and_flags(tmp_path) -> None:
    proto = read_protocol_file(_write(tmp_path))
    lines = header_lines(proto)
    [line] = [x for x in lines if "extra_structures" in x]
    assert line.endswith(": Eso_Wall, Cord_Canal") and "not TG-263" in line
    flags = {c.structure: constraint_flags(c) for c in proto.tables[5].constraints}
    assert flags == {
        "SpinalCord": ["required"],
        "Eso_Wall": [],
        "Heart_Wall": [CUSTOM_NAME_FLAG],
    }


def test_table_view_without_declared_names_has_no_such_line() -> None:
    proto = load_protocol("rtog0915")
    assert not any("extra_structures" in x for x in header_lines(proto))
    flags = [f for t in proto.all_tables for c in t.constraints for f in constraint_flags(c)]
    assert "required" in flags and "target" in flags and CUSTOM_NAME_FLAG not in flags
