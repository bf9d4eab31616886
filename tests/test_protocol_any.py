"""Protocol tables for any number of fractions (``tables: {any: ...}``): schema, lookup, CLI and
evaluation (cumulative EQD2 limits apply to every fractionation, evaluated once)."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
from evaluation_synth import case, cylinder, dose, gaussian, grid, plan, sample, sphere

from rtcheck.cli import main
from rtcheck.errors import ProtocolError
from rtcheck.pipeline import check_case
from rtcheck.protocol import ANY_FRACTIONS, load_protocol, read_protocol_file
from rtcheck.result import Status

BASE = """\
format: 1
id: anytest
title: Any-fractions test protocol (synthetic limits)
version: "1"
citation: synthetic limits for tests; no clinical meaning
sources:
  T1: {citation: test fixture}
levels: [limit]
point_max: Max
tables:
"""
EXACT_5 = """\
  5:
    constraints:
      - {structure: SpinalCord, metric: "D1cc[Gy]", comparator: "<", limits: {limit: 200},
         source: T1}
"""
ANY = """\
  any:
    label: cumulative
    constraints:
      - {structure: SpinalCord, metric: "Max[EQD2Gy(a/b=2)]", comparator: "<=",
         limits: {limit: 500}, source: T1}
      - {structure: SpinalCord, metric: "Mean[Gy]", comparator: "<", limits: {limit: 300},
         source: T1}
"""


def _write(tmp_path: Path, *parts: str, name: str = "anytest.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(BASE + "".join(parts)), encoding="utf-8")
    return path


def test_any_table_applies_to_every_fraction_count(tmp_path: Path) -> None:
    p = read_protocol_file(_write(tmp_path, EXACT_5, ANY))
    assert p.fractions == (5,) and p.any_fractions and p.fractions_text == "5, any"
    assert p.any_table is not None and p.any_table.fractions is None
    ids = [c.id for c in p.any_table.constraints]
    assert ids == ["SpinalCord.Max[EQD2Gy(a/b=2)]", "SpinalCord.Mean[Gy]"]  # no "Nfx" suffix
    # the exact table first, then the "any" rows; other counts (and unknown): the "any" rows
    five = p.table_for(5)
    assert [c.id for c in five.constraints] == ["SpinalCord.D1cc[Gy].5fx", *ids]
    assert five.fractions == 5
    for n in (1, 3, 8, 30, None):
        assert [c.id for c in p.table_for(n).constraints] == ids
    assert len(p.all_tables) == 2


def test_without_any_table_nothing_changes(tmp_path: Path) -> None:
    p = read_protocol_file(_write(tmp_path, EXACT_5))
    assert not p.any_fractions and p.any_table is None and p.fractions_text == "5"
    assert p.table_for(5) is p.tables[5]
    assert p.table_for(3) is None and p.table_for(None) is None


def test_protocol_with_only_an_any_table(tmp_path: Path) -> None:
    p = read_protocol_file(_write(tmp_path, ANY))
    assert p.fractions == () and p.fractions_text == ANY_FRACTIONS
    assert p.table_for(2) is p.any_table


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    prescription_gy: 50\n", "prescription_gy"),
        (
            "    global_max_in_target: {target: PTV, source: T1}\n",
            "global_max_in_target",
        ),
    ],
)
def test_any_table_takes_organ_constraints_only(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        read_protocol_file(_write(tmp_path, ANY.replace("    label: cumulative\n", extra)))
    assert "'any' table" in err.value.message and message in err.value.message


def test_any_table_refuses_target_rules(tmp_path: Path) -> None:
    target = """\
      - {structure: PTV, metric: "V100%[%]", comparator: ">=", limits: {limit: 95},
         source: T1, applies_to: target}
"""
    with pytest.raises(ProtocolError) as err:
        read_protocol_file(_write(tmp_path, ANY + target))
    assert "applies_to: target" in err.value.message


def test_ids_must_not_repeat_between_a_table_and_the_any_table(tmp_path: Path) -> None:
    clash = EXACT_5.replace("source: T1}", "source: T1, id: cord}")
    any_clash = ANY.replace("limits: {limit: 300},", "limits: {limit: 300}, id: cord,")
    with pytest.raises(ProtocolError) as err:
        read_protocol_file(_write(tmp_path, clash, any_clash))
    assert "'cord'" in err.value.message and "'any' table" in err.value.message


def test_an_empty_protocol_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError) as err:
        read_protocol_file(_write(tmp_path, "  {}\n"))
    assert "at least one table" in err.value.message


def test_cli_lists_and_shows_the_any_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, EXACT_5, ANY)
    monkeypatch.setenv("RTCHECK_PROTOCOL_PATH", str(tmp_path))
    assert main(["protocols", "list"]) == 0
    assert "5, any" in capsys.readouterr().out
    assert main(["protocols", "show", "anytest", "--fractions", "8", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["any_fractions"] is True and list(doc["tables"]) == ["any"]
    assert doc["tables"]["any"]["fractions"] is None
    assert main(["protocols", "show", "anytest"]) == 0
    out = capsys.readouterr().out
    assert "any number of fractions - cumulative" in out and "5 fraction(s)" in out


def test_shipped_hytec_protocol_is_an_any_table() -> None:
    p = load_protocol("hytec-cord-eqd2")
    assert p.fractions == () and p.any_fractions
    for n in (1, 3, 5, 8, 30):
        assert len(p.table_for(n).constraints) == 2


# ----------------------------------------------------------------------------- evaluation
G = grid((-60.0, -40.0, -40.0), (60.0, 40.0, 40.0), 2.0)


def _two_plans(fx_a: int, fx_b: int):
    pa = plan("PA", fx_a, [("PTV_A", 30.0, 1)])
    pb = plan("PB", fx_b, [("PTV_B", 50.0, 2)])
    peak = math.exp(121.0 / 15.57**2)
    da = sample(G, gaussian((-30.0, 0.0, 0.0), 30.0 * peak, 15.57))
    db = sample(G, gaussian((30.0, 0.0, 0.0), 50.0 * peak, 15.57))
    rois = [
        sphere(1, "PTV_A", "PTV", (-30.0, 0.0, 0.0), 10.0),
        sphere(2, "PTV_B", "PTV", (30.0, 0.0, 0.0), 10.0),
        cylinder(3, "SpinalCord", "ORGAN", 14.0, 12.0, 4.0, -30.0, 30.0),
    ]
    return case(rois, [dose(G, da, pa), dose(G, db, pb)], [pa, pb])


def test_mixed_fractionation_evaluates_any_rows_once(tmp_path: Path) -> None:
    # plans of 3 and 8 fractions; the protocol has a 5-fraction table and an "any" table:
    # the "any" rows apply to both counts (no "no table for 3/8 fractions" row), once each
    r = check_case(_two_plans(3, 8), str(_write(tmp_path, EXACT_5, ANY)))
    ids = [c.id for c in r.constraints]
    assert ids == ["SpinalCord.Max[EQD2Gy(a/b=2)]", "SpinalCord.Mean[Gy]"]  # each once
    eqd2, physical = r.constraints
    assert eqd2.status is Status.PASS and eqd2.dose_basis == "EQD2(a/b=2)"
    assert physical.status is Status.NOT_EVALUATED
    assert "different numbers of fractions (3, 8)" in physical.reason


def test_single_fractionation_gets_exact_and_any_rows(tmp_path: Path) -> None:
    r = check_case(_two_plans(5, 5), str(_write(tmp_path, EXACT_5, ANY)))
    got = {c.id: c for c in r.constraints}
    assert set(got) == {
        "SpinalCord.D1cc[Gy].5fx",
        "SpinalCord.Max[EQD2Gy(a/b=2)]",
        "SpinalCord.Mean[Gy]",
    }
    assert all(c.status is Status.PASS for c in got.values())
    assert got["SpinalCord.Mean[Gy]"].dose_basis == "physical"
    assert r.plan.dose_summation == (
        "physical sum of 2 plans (5 fractions each); EQD2(a/b=2) limits on the voxel-wise "
        "EQD2(a/b=2) sum of the plans"
    )
    assert dict(r.plan.alpha_beta) == {"SpinalCord": 2.0}
    c = _two_plans(5, 5)
    alone = case(c.structure_set.rois, c.doses[:1], c.plans[:1])
    single = check_case(alone, str(_write(tmp_path, EXACT_5, ANY)))
    assert single.plan.dose_summation == (
        "single plan; EQD2(a/b=2) limits on its dose converted voxel-wise (5 fractions)"
    )
