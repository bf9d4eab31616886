"""Third review (protocols): loader paths that could give a false PASS, and a reference
cross-check that catches every kind of transcription slip (docs/protocols.md).

Part 1 writes protocol files that used to load and be evaluated although no plan could miss
(or meet) their limits, or although part of the file was silently dropped; each must now stop
loading with one line naming the file and the key (exit 2 from ``rtcheck check``).

Part 2 reads the reference (tests/data/reference/constraints.csv and constraints.md, copies of
/work/shared/reference) independently and compares every shipped number with it, both ways.
Mutated copies of the shipped files (a changed limit, volume, comparator, a row moved to
another fraction table, a wrong structure, a dropped row or table, an invented level, a
point-max change, a conflict shipped as confirmed) must each be caught.
"""

from __future__ import annotations

import copy
import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rtcheck.cli import main
from rtcheck.errors import ProtocolError
from rtcheck.metrics import MetricKind, parse_metric
from rtcheck.protocol import AppliesTo, Constraint, Protocol, load_protocol, read_protocol_file

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "reference"
SAMPLE = ROOT / "sample_dicom" / "oligo_single"

# ====================================================================== part 1: loader
HEAD = """\
format: 1
id: review
title: review test protocol (synthetic limits)
version: "1"
citation: synthetic limits for tests; no clinical meaning
sources:
  T1: {citation: test fixture}
levels: [optimal, mandatory]
point_max: Max
"""
CORD = (
    '{structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {mandatory: 30}, '
    "source: T1}"
)


def _table(key: str, *rows: str) -> str:
    return f"  {key}:\n    constraints:\n" + "".join(f"      - {r}\n" for r in rows)


def _write(tmp_path: Path, body: str, extra: str = "") -> Path:
    path = tmp_path / "review.yaml"
    path.write_text(HEAD + extra + "tables:\n" + body, encoding="utf-8")
    return path


def _refused(path: Path, *fragments: str) -> str:
    with pytest.raises(ProtocolError) as info:
        read_protocol_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_valid_file_loads(tmp_path):
    (c,) = read_protocol_file(_write(tmp_path, _table("5", CORD))).table_for(5).constraints
    assert dict(c.limits) == {"mandatory": 30.0}


def test_two_keys_for_one_fractionation_are_refused(tmp_path):
    # YAML keys 5 and "5" differ, so the duplicate-key guard let both through and the second
    # table silently replaced the first: the cord limit was never evaluated.
    heart = CORD.replace("SpinalCord", "Heart")
    path = _write(tmp_path, _table("5", CORD) + _table('"5"', heart))
    _refused(path, "tables.5", "second table for 5 fraction(s)")


@pytest.mark.parametrize("key", ["yes", "true", "5.0", "'3 fx'"])
def test_table_keys_must_be_whole_numbers_of_fractions(tmp_path, key):
    # `yes:` used to load as a 1-fraction table (YAML boolean True == 1).
    _refused(_write(tmp_path, _table(key, CORD)), "invalid key", "whole number of fractions")


@pytest.mark.parametrize(
    ("metric", "comparator", "limit"),
    [
        ("CV12Gy[cc]", ">=", "0"),  # every plan has >= 0 cc below 12 Gy: always met
        ("Max[Gy]", "<", ".inf"),  # always met
        ("Max[Gy]", "<", ".nan"),
        ("D95%[Gy]", ">=", "-1"),
        ("Max[Gy]", "<", "true"),  # YAML boolean, read as 1.0
        ("D0.03cc[Gy]", "<", '"2300 cGy"'),
        ("Max[Gy]", "<", '"30"'),
    ],
)
def test_limits_must_be_positive_finite_numbers(tmp_path, metric, comparator, limit):
    row = (
        f'{{structure: SpinalCord, metric: "{metric}", comparator: "{comparator}", '
        f"limits: {{mandatory: {limit}}}, source: T1}}"
    )
    message = _refused(_write(tmp_path, _table("5", row)), "tables.5.constraints.0.limits")
    assert "positive finite" in message or "plain number in the output unit" in message


@pytest.mark.parametrize(("comparator", "limit"), [("<", 150), ("<", 1500), ("<=", 100)])
def test_volume_percentage_limits_every_plan_meets_are_refused(tmp_path, comparator, limit):
    # V20Gy[%] < 1500 (a cc number written for a [%] metric) passed every plan.
    row = (
        f'{{structure: Lungs, metric: "V20Gy[%]", comparator: "{comparator}", '
        f"limits: {{mandatory: {limit}}}, source: T1}}"
    )
    _refused(_write(tmp_path, _table("5", row)), "tables.5.constraints.0", "at most 100")


def test_percentage_limits_within_range_still_load(tmp_path):
    rows = (
        '{structure: Lungs, metric: "V20Gy[%]", comparator: "<", limits: {mandatory: 10}, '
        "source: T1}",
        '{structure: PTV, metric: "V100%[%]", comparator: ">=", limits: {mandatory: 100}, '
        "source: T1, applies_to: target}",
        '{structure: Esophagus, metric: "Max[%]", comparator: "<", limits: {mandatory: 105}, '
        "source: T1}",
    )
    assert len(read_protocol_file(_write(tmp_path, _table("5", *rows))).tables[5].constraints) == 3


EQD2_HEART = (
    '{structure: Heart, metric: "Max[EQD2Gy]", comparator: "<", limits: {mandatory: 30}, '
    "source: T1}"
)


def test_eqd2_limit_without_its_alpha_beta_loads_and_resolves_to_none(tmp_path):
    # The issue asks for rtcheck's stated defaults when the protocol gives no alpha/beta: the
    # file loads, the metric is left open (filled at evaluation, disclosed by the WARNING
    # alpha_beta.default, tests/test_review_lead.py).
    p = read_protocol_file(_write(tmp_path, _table("any", EQD2_HEART)))
    (c,) = p.any_table.constraints
    assert p.metric_to_evaluate(c)[0].alpha_beta is None


@pytest.mark.parametrize(
    ("extra", "row"),
    [
        ("alpha_beta: {default: 3, source: T1}\n", EQD2_HEART),
        ("alpha_beta: {structures: {Heart: 3}, source: T1}\n", EQD2_HEART),
        ("", EQD2_HEART.replace("[EQD2Gy]", "[EQD2Gy(a/b=3)]")),
    ],
)
def test_eqd2_limit_with_a_stated_alpha_beta_loads(tmp_path, extra, row):
    p = read_protocol_file(_write(tmp_path, _table("any", row), extra=extra))
    (c,) = p.any_table.constraints
    assert p.metric_to_evaluate(c)[0].alpha_beta == 3.0


@pytest.mark.parametrize("definition", ["D35cc", "D2cc", "D1.5cc"])
def test_point_max_must_be_a_small_volume(tmp_path, definition):
    # point_max: D35cc (meant D35mm3) evaluated every Max row as the dose to the hottest 35 cc.
    path = _write(tmp_path, _table("5", CORD)).read_text(encoding="utf-8")
    bad = tmp_path / "pm.yaml"
    bad.write_text(path.replace("point_max: Max", f"point_max: {definition}"), encoding="utf-8")
    _refused(bad, "point_max", "small volume")


@pytest.mark.parametrize("definition", ["D0.035cc", "D35mm3", "D0.1cc", "D1cc"])
def test_small_point_max_volumes_load(tmp_path, definition):
    text = _write(tmp_path, _table("5", CORD)).read_text(encoding="utf-8")
    path = tmp_path / "pm.yaml"
    path.write_text(text.replace("point_max: Max", f"point_max: {definition}"), encoding="utf-8")
    assert read_protocol_file(path).point_max.kind is MetricKind.DOSE_AT_VOLUME


CONFORMITY = """\
    conformity:
      target: PTV
      source: T1
      volume_cc: [1.8, VOL]
      columns:
        - index: "R50%"
          comparator: "<"
          limits: {optimal: [5.9, 5.5], mandatory: [7.5, LAST]}
"""


@pytest.mark.parametrize(("vol", "last"), [("3.8", ".inf"), ("3.8", "0"), (".inf", "6.5")])
def test_conformity_limits_and_volumes_must_be_finite(tmp_path, vol, last):
    # An .inf in the most lenient level passed the strictest-first check and met every plan;
    # an .inf volume row extended the table to every target volume (clamping).
    table = _table("5", CORD).replace(
        "    constraints:\n",
        CONFORMITY.replace("VOL", vol).replace("LAST", last) + "    constraints:\n",
    )
    _refused(_write(tmp_path, table), "tables.5.conformity")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_table("5", CORD) + _table('"5"', CORD.replace("SpinalCord", "Heart")), "tables.5"),
        (_table("5", CORD.replace("30}", ".inf}")), "tables.5.constraints.0.limits"),
    ],
)
def test_check_command_stops_with_one_line_and_exit_2(tmp_path, capsys, body, fragment):
    path = _write(tmp_path, body)
    assert main(["check", str(SAMPLE), "--protocol", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtcheck: error: {path}: ") and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


# ====================================================================== part 2: reference
FAMILIES: dict[str, dict[int, str]] = {
    # protocol id -> {fractions: prefix of the csv "level" column}
    "tg101": {1: "TG-101", 3: "TG-101", 5: "TG-101"},
    "rtog0915": {1: "RTOG 0915 34/1", 4: "RTOG 0915 48/4"},
    "rtog0813": {5: "RTOG 0813"},
}
CUSTOM = "^<custom>"


@dataclass(frozen=True)
class Ref:
    line: int
    groups: tuple[tuple[frozenset[str], ...], ...]  # each group: alternatives of name sets
    fractions: int
    metric: str | None
    comparator: str | None
    value: float | None
    level: str
    sources: frozenset[str]
    flagged: bool  # UNCONFIRMED or CONFLICT in the note

    @property
    def names(self) -> frozenset[str]:
        return frozenset().union(*(alt for group in self.groups for alt in group))


def _name_groups(text: str) -> tuple[tuple[frozenset[str], ...], ...]:
    """``A; B_L/_R (or C)`` -> ((A,), ({B_L, B_R}, {C})): every group needs one alternative."""
    groups = []
    for part in text.split(";"):
        alternatives = [frozenset({n.strip()}) for n in re.findall(r"\(or ([^)]+)\)", part)]
        main_text = re.sub(r"\([^)]*\)", "", part).replace("per protocol", "")
        for option in main_text.split(" / "):
            option = option.strip()
            if option.endswith("/_R"):
                base = option[: -len("/_R")].removesuffix("_L")
                alternatives.insert(0, frozenset({f"{base}_L", f"{base}_R"}))
            elif option:
                alternatives.insert(0, frozenset({option}))
        groups.append(tuple(alternatives))
    return tuple(groups)


def _read_reference() -> list[Ref]:
    out = []
    with (REF / "constraints.csv").open(encoding="utf-8", newline="") as fh:
        for line, r in enumerate(csv.DictReader(fh), start=2):
            try:
                metric: str | None = parse_metric(r["metric_tg263"].split()[0]).canonical
            except Exception:
                metric = None
            m = re.match(r"\s*(<=|>=|<|>)\s*([0-9.]+)", r["limit"])
            out.append(
                Ref(
                    line=line,
                    groups=_name_groups(r["tg263_name"]),
                    fractions=int(r["fractions"]),
                    metric=metric,
                    comparator=m[1] if m else None,
                    value=float(m[2]) if m else None,
                    level=r["level"],
                    sources=frozenset(re.findall(r"S\d+", r["source"])),
                    flagged="UNCONFIRMED" in r["note"] or "CONFLICT" in r["note"],
                )
            )
    return out


REFERENCE = _read_reference()


def _md() -> str:
    return (REF / "constraints.md").read_text(encoding="utf-8")


def _table1() -> dict[str, list[float]]:
    """RTOG 0813/0915 Table 1 (constraints.md section 5a), column by column."""
    text = _md()
    block = text[text.index("### 5a.") : text.index("Definitions/notes")]
    keys = ("vol", "R100% none", "R100% minor", "R50% none", "R50% minor")
    keys += ("D2cm[%] none", "D2cm[%] minor", "V20 none", "V20 minor")
    cols: dict[str, list[float]] = {k: [] for k in keys}
    for line in block.splitlines():
        cells = [c.strip().lstrip("<") for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and re.fullmatch(r"[0-9.]+", cells[0]):
            for key, cell in zip(keys, cells, strict=True):
                cols[key].append(float(cell))
    return cols


def _covers(c: Constraint, name: str) -> bool:
    if name.endswith(CUSTOM):
        return c.structure.startswith(name[: -len(CUSTOM)] + "^")
    return name == c.structure or name in c.aliases


def _same_rule(c: Constraint, value: float, ref: Ref) -> bool:
    metric, comp = c.metric.canonical, c.comparator.value
    if (metric, comp) == (ref.metric, ref.comparator) and value == ref.value:
        return True
    # Documented translation (docs/protocols.md): S4 "D<vol>cc[Gy] < T" -> "CV<T>Gy[cc] >= vol".
    cv = re.fullmatch(r"CV([0-9.]+)Gy\[cc\]", metric)
    return bool(
        cv
        and comp == ">="
        and ref.comparator == "<"
        and ref.metric == f"D{value:g}cc[Gy]"
        and ref.value == float(cv[1])
    )


def _rows_for(pid: str, fx: int) -> list[Ref]:
    prefix = FAMILIES[pid].get(fx)
    if prefix is None:
        return []
    return [r for r in REFERENCE if r.fractions == fx and r.level.startswith(prefix)]


def _check_levels(pid: str, c: Constraint, table1: dict[str, list[float]]) -> list[str]:
    expected = {"none"} if pid.startswith("rtog") else {"limit"}
    if pid.startswith("rtog") and c.metric.canonical == "V20Gy[%]":
        expected = {"none", "minor"}
        minor = set(table1["V20 minor"])
        if len(minor) != 1 or c.limits.get("minor") != minor.pop():
            return [f"{c.id}: minor level {c.limits.get('minor')} is not Table 1's"]
    if set(c.limits) != expected:
        return [f"{c.id}: levels {sorted(c.limits)}, the reference gives {sorted(expected)}"]
    return []


def _shipped_rows_problems(pid: str, p: Protocol, table1: dict[str, list[float]]) -> list[str]:
    problems = []
    for fx, table in p.tables.items():
        refs = _rows_for(pid, fx)
        for c in table.oar_constraints:
            problems += _check_levels(pid, c, table1)
            value = next(iter(c.limits.values()))  # 'limit' / 'none': the reference value
            found = [r for r in refs if any(_covers(c, n) for n in r.names)]
            found = [r for r in found if _same_rule(c, value, r)]
            if not found:
                problems.append(
                    f"{fx} fx {c.id} {c.comparator.value} {value}: not in the reference"
                )
                continue
            ref_sources = frozenset().union(*(r.sources for r in found))
            if not ref_sources <= set(c.source) or set(c.source) - ref_sources - {"S5", "S6"}:
                problems.append(f"{c.id}: sources {c.source}, reference {sorted(ref_sources)}")
            if any(r.flagged for r in found):  # issue #4: not shipped, even unconfirmed
                problems.append(f"{c.id}: the reference flags this value, yet it is shipped")
    return problems


def _reference_rows_problems(pid: str, p: Protocol) -> list[str]:
    problems = []
    expected_fx = set(FAMILIES[pid])
    if set(p.tables) != expected_fx:
        problems.append(
            f"{pid}: tables {sorted(p.tables)}, the reference has {sorted(expected_fx)}"
        )
    omitted = " ".join(o.what for o in p.omitted)
    for fx in expected_fx:
        rows = p.tables[fx].oar_constraints if fx in p.tables else ()
        for ref in _rows_for(pid, fx):
            if ref.comparator is None or ref.metric is None:
                continue
            if ref.flagged:  # UNCONFIRMED / CONFLICT: must be disclosed as omitted
                if not any(n.split("_")[0] in omitted for g in ref.groups for a in g for n in a):
                    problems.append(f"line {ref.line}: flagged value not listed as omitted")
                continue
            if ref.names == {"SpinalCord" + CUSTOM} and ref.metric == "Max[Gy]":
                if "cord sub-volume" not in omitted:  # disclosed as omitted in the file
                    problems.append(
                        f"line {ref.line}: cord sub-volume max neither shipped nor omitted"
                    )
                continue
            for group in ref.groups:
                if not any(
                    all(
                        any(
                            _covers(c, n) and _same_rule(c, v, ref)
                            for c in rows
                            for v in c.limits.values()
                        )
                        for n in alternative
                    )
                    for alternative in group
                ):
                    problems.append(
                        f"{fx} fx, csv line {ref.line}: {sorted(group[0])} {ref.metric} not shipped"
                    )
    return problems


def _target_problems(p: Protocol, table1: dict[str, list[float]]) -> list[str]:
    line = next(x for x in _md().splitlines() if x.startswith("| RTOG 0813/0915 PTV coverage"))
    expected = {
        (m, ">=", (("none", float(v)),)) for m, v in re.findall(r"`(V\d+%\[%\]) >= (\d+)`", line)
    }
    problems = []
    for fx, table in p.tables.items():
        got = {
            (c.metric.canonical, c.comparator.value, tuple(c.limits.items()))
            for c in table.target_constraints
        }
        if got != expected or len(table.target_constraints) != len(expected):
            problems.append(f"{fx} fx targets {sorted(got)} != {sorted(expected)}")
        if table.global_max_in_target is None:
            problems.append(f"{fx} fx: global maximum inside the PTV rule missing")
        conf = table.conformity
        if conf is None or list(conf.volume_cc) != table1["vol"] or conf.target.value != "PTV":
            problems.append(f"{fx} fx: conformity volumes/target differ from Table 1")
            continue
        for col in conf.columns:
            for level in ("none", "minor"):
                if (
                    col.comparator.value != "<"
                    or list(col.limits.get(level, ())) != table1[f"{col.index.value} {level}"]
                ):
                    problems.append(f"{fx} fx: {col.index.value} {level} differs from Table 1")
        if {col.index.value for col in conf.columns} != {"R100%", "R50%", "D2cm[%]"}:
            problems.append(f"{fx} fx: conformity columns differ")
    return problems


def _point_max_problems(p: Protocol) -> list[str]:
    # Every shipped file says how a point maximum is evaluated; all use the true maximum
    # (stricter than any D<x>cc reading; the reference does not confirm a point volume).
    note = p.point_max_note or ""
    if p.point_max.kind is not MetricKind.MAX or "maximum of the interpolated" not in note:
        return [f"{p.id}: point_max {p.point_max} / note {note!r}"]
    return []


def reference_problems(pid: str, p: Protocol) -> list[str]:
    """Every difference between a shipped RTOG/TG-101 protocol and the reference."""
    table1 = _table1()
    problems = _shipped_rows_problems(pid, p, table1) + _reference_rows_problems(pid, p)
    problems += _point_max_problems(p)
    if pid.startswith("rtog"):
        problems += _target_problems(p, table1)
    return problems


def hytec_problems(p: Protocol) -> list[str]:
    """The HyTEC row against constraints.md section 7 (cumulative thecal sac Max <= 70 Gy)."""
    text = _md()
    section = text[text.index("## 7. HyTEC") :]
    row = next(x for x in section.splitlines() if x.startswith("| Spinal cord (re-irradiation)"))
    value = float(re.search(r"cumulative `Max` ≤\s*([0-9.]+) Gy", row)[1])
    assert "EQD2(α/β=2)" in row and "thecal sac" in row
    problems = _point_max_problems(p)
    rows = p.any_table.constraints if p.any_table else ()
    if p.tables or {c.structure for c in rows} != {"SpinalCanal", "SpinalCord"}:
        problems.append("tables or structures differ")
    for c in rows:
        got = (c.metric.canonical, c.comparator.value, tuple(c.limits.values()), c.confirmed)
        if got != ("Max[EQD2Gy(a/b=2)]", "<=", (value,), True) or not c.required:
            problems.append(f"{c.id}: {got}")
    return problems


def test_reference_parsing_sees_every_row_and_name():
    assert len(REFERENCE) == 257
    sided = next(
        r for r in REFERENCE if r.level.startswith("RTOG 0813") and "BrachialPlex_L" in r.names
    )
    assert sided.groups == ((frozenset({"BrachialPlex_L", "BrachialPlex_R"}),),)
    trachea = next(r for r in REFERENCE if r.level == "TG-101 threshold" and "Trachea" in r.names)
    assert trachea.groups[1] == (
        frozenset({"Bronchus_Main_L", "Bronchus_Main_R"}),
        frozenset({"AirWay_Prox"}),
    )
    assert sum(r.flagged for r in REFERENCE if r.level.startswith("TG-101")) == 3
    assert len(_table1()["vol"]) == 11


@pytest.mark.parametrize("pid", sorted(FAMILIES))
def test_shipped_protocol_matches_the_reference(pid):
    assert reference_problems(pid, load_protocol(pid)) == []


def test_shipped_hytec_matches_the_reference():
    assert hytec_problems(load_protocol("hytec-cord-eqd2")) == []


def _rows(data: dict[str, Any], fx: int) -> list[dict[str, Any]]:
    return data["tables"][fx]["constraints"]


def _find(data: dict[str, Any], fx: int, structure: str, metric: str) -> dict[str, Any]:
    return next(r for r in _rows(data, fx) if r["structure"] == structure and r["metric"] == metric)


def _set(
    fx: int, structure: str, metric_: str, /, **changes: Any
) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        row = _find(data, fx, structure, metric_)
        row.update(changes)
        for key, value in list(changes.items()):
            if value is None:
                del row[key]

    return mutate


def _add(fx: int, row: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda d: _rows(d, fx).append(dict(row))


def _drop(fx: int, structure: str, metric: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: _rows(d, fx).remove(_find(d, fx, structure, metric))


def _move(src: int, dst: int, structure: str, metric: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        row = _find(data, src, structure, metric)
        _rows(data, src).remove(row)
        _rows(data, dst).append({**row, "id": "moved"})

    return mutate


def _top(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.__setitem__(key, value)


def _conformity(
    fx: int, index: str, level: str, i: int, value: float
) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        col = next(c for c in data["tables"][fx]["conformity"]["columns"] if c["index"] == index)
        col["limits"][level][i] = value

    return mutate


#: TG-101's 5-fraction liver row, which the reference flags (CONFLICT / UNCONFIRMED).
LIVER_5FX = {
    "structure": "Liver",
    "metric": "CV21.5Gy[cc]",
    "comparator": ">=",
    "limits": {"limit": 700},
    "source": "S2",
}

MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "changed limit": ("tg101", _set(5, "SpinalCord", "Max[Gy]", limits={"limit": 31})),
    "changed volume threshold": ("tg101", _set(5, "Esophagus", "D5cc[Gy]", metric="D6cc[Gy]")),
    "comparator < -> <=": ("rtog0915", _set(1, "SpinalCord", "Max[Gy]", comparator="<=")),
    "moved to another fraction table": ("tg101", _move(1, 3, "Stomach", "D10cc[Gy]")),
    "wrong structure": ("rtog0813", _set(5, "Skin", "D10cc[Gy]", structure="Stomach")),
    "dropped row": ("tg101", _drop(3, "Heart", "D15cc[Gy]")),
    "dropped right-sided row": ("tg101", _drop(5, "BrachialPlex_R", "D3cc[Gy]")),
    "dropped alternative structure": ("rtog0915", _drop(4, "AirWay_Prox", "D4cc[Gy]")),
    "dropped table": ("tg101", lambda d: d["tables"].pop(3)),
    "invented minor level": (
        "rtog0915",
        _set(1, "SpinalCord", "Max[Gy]", limits={"none": 14, "minor": 16}),
    ),
    "invented target level": (
        "rtog0813",
        _set(5, "PTV", "V100%[%]", limits={"none": 95, "minor": 90}),
    ),
    "lung critical volume changed": (
        "rtog0813",
        _set(5, "Lungs-GTV", "CV12.5Gy[cc]", limits={"none": 1400}),
    ),
    "conflict shipped": ("tg101", _add(5, LIVER_5FX)),
    "conflict shipped unconfirmed": (
        "tg101",
        _add(5, {**LIVER_5FX, "confirmed": False, "unconfirmed_reason": "x"}),
    ),
    "omission dropped": ("tg101", lambda d: d.__setitem__("omitted", d["omitted"][:1])),
    "point max as D0.1cc": ("tg101", _top("point_max", "D0.1cc")),
    "Table 1 value": ("rtog0915", _conformity(4, "D2cm[%]", "none", 8, 72.0)),
    "Table 1 minor value": ("rtog0813", _conformity(5, "R50%", "minor", 3, 5.9)),
}


def _load_yaml(pid: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "constraints" / f"{pid}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_cross_check_catches_each_kind_of_slip(tmp_path, name):
    pid, mutate = MUTATIONS[name]
    data = copy.deepcopy(_load_yaml(pid))
    mutate(data)
    path = tmp_path / f"{pid}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    problems = reference_problems(pid, read_protocol_file(path))
    assert problems, f"{name}: not caught"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["tables"]["any"]["constraints"][0]["limits"].update(lower_risk=75),
        lambda d: d["tables"]["any"]["constraints"][1].update(comparator="<"),
        lambda d: d["tables"]["any"]["constraints"][0].update(metric="Max[EQD2Gy(a/b=3)]"),
        lambda d: d["tables"]["any"]["constraints"].pop(0),
    ],
)
def test_the_hytec_cross_check_catches_slips(tmp_path, mutate):
    data = _load_yaml("hytec-cord-eqd2")
    mutate(data)
    path = tmp_path / "hytec-cord-eqd2.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    assert hytec_problems(read_protocol_file(path))


def test_every_shipped_file_states_how_a_point_maximum_is_evaluated():
    for pid in (*FAMILIES, "hytec-cord-eqd2"):
        text = (ROOT / "constraints" / f"{pid}.yaml").read_text(encoding="utf-8")
        assert re.search(r"^point_max: Max$", text, re.M) and "point_max_note:" in text, pid
        p = load_protocol(pid)
        rows = [c for t in p.all_tables for c in t.constraints if c.metric.kind is MetricKind.MAX]
        assert rows and all(p.metric_to_evaluate(c)[0].kind is MetricKind.MAX for c in rows)


def test_target_rows_are_only_on_rtog_tables():
    for pid in FAMILIES:
        for table in load_protocol(pid).all_tables:
            targets = [c for c in table.constraints if c.applies_to is AppliesTo.TARGET]
            assert bool(targets) == pid.startswith("rtog"), pid


def test_mutation_helper_writes_loadable_copies(tmp_path):
    # the harness itself: an unmutated round trip through yaml.safe_dump has no problems
    for pid in FAMILIES:
        path = tmp_path / f"{pid}.yaml"
        path.write_text(yaml.safe_dump(_load_yaml(pid), sort_keys=False), encoding="utf-8")
        assert reference_problems(pid, read_protocol_file(path)) == []
