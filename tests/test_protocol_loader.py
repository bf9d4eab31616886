"""Protocol schema and loader: shipped files load; bad files fail naming the file and the key."""

import hashlib
import json
import pickle
import textwrap
from pathlib import Path

import pytest

from rtcheck.cli import main
from rtcheck.errors import ConfigError, ProtocolError
from rtcheck.metrics import MetricKind
from rtcheck.names import TargetKind
from rtcheck.protocol import (
    ENV_VAR,
    AppliesTo,
    Combine,
    ConformityIndex,
    Expand,
    ExpressionError,
    Ring,
    SetOp,
    StructureRef,
    TargetGroup,
    list_protocols,
    load_name_map,
    load_protocol,
    parse_expression,
    read_protocol_file,
    references,
)

MINIMAL = """\
format: 1
id: mini
title: Minimal test protocol
version: "1"
citation: Test citation
sources:
  S1: {citation: a source}
levels: [optimal, mandatory]
point_max: D0.035cc
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<",
         limits: {optimal: 25, mandatory: 28}, source: S1}
"""


def write(tmp_path: Path, text: str, name: str = "mini.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def replaced(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


# ---------------------------------------------------------------------- shipped files
def test_shipped_protocols_load_with_their_fractionations():
    found = {p.id: p for p in list_protocols()}
    assert {"tg101", "rtog0915", "rtog0813"} <= set(found)
    assert found["tg101"].fractions == (1, 3, 5)
    assert found["rtog0915"].fractions == (1, 4)
    assert found["rtog0813"].fractions == (5,)
    assert found["tg101"].levels == ("limit",)
    assert found["rtog0915"].levels == ("none", "minor")


def test_table_for_never_falls_back_to_another_table():
    tg101 = load_protocol("tg101")
    assert tg101.table_for(5).fractions == 5
    for fx in (2, 4, 8, None):
        assert tg101.table_for(fx) is None


def test_protocols_are_immutable():
    p = load_protocol("tg101")
    table = p.table_for(3)
    with pytest.raises(Exception, match="frozen"):
        p.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.tables[2] = table  # type: ignore[index]
    with pytest.raises(TypeError):
        table.constraints[0].limits["limit"] = 99.0  # type: ignore[index]
    assert isinstance(table.constraints, tuple)


def test_protocols_survive_pickling_for_worker_processes():
    p = load_protocol("rtog0915")
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.table_for(4).conformity == p.table_for(4).conformity
    assert q.metric_to_evaluate(q.table_for(1).constraints[2])[0].canonical == "Max[Gy]"


def test_metrics_are_parsed_at_load_and_point_max_is_applied():
    rtog = load_protocol("rtog0813")
    table = rtog.table_for(5)
    cord_max = next(c for c in table.constraints if c.id == "SpinalCord.Max[Gy].5fx")
    assert cord_max.metric.kind is MetricKind.MAX and cord_max.unit == "Gy"
    metric, note = rtog.metric_to_evaluate(cord_max)
    assert metric.canonical == "Max[Gy]" and "maximum of the interpolated dose" in note
    heart = next(c for c in table.constraints if c.id == "Heart.Max[%].5fx")
    assert heart.metric.needs_prescription and heart.limits["none"] == 105
    targets = table.target_constraints
    assert {c.metric.canonical for c in targets} == {"V100%[%]", "V90%[%]"}
    assert all(c.applies_to is AppliesTo.TARGET and c.structure == "PTV" for c in targets)
    assert table.global_max_in_target.target is TargetKind.PTV


def test_point_max_definition_from_the_file(tmp_path):
    p = read_protocol_file(write(tmp_path, MINIMAL))
    (c,) = p.table_for(5).constraints
    metric, note = p.metric_to_evaluate(c)
    assert metric.canonical == "D0.035cc[Gy]" and "0.035 cc" in note
    assert c.id == "SpinalCord.Max[Gy].5fx"


def test_limits_levels_and_result_limits(tmp_path):
    text = replaced("limits: {optimal: 25, mandatory: 28}", "limits: {mandatory: 28, optimal: 25}")
    (c,) = read_protocol_file(write(tmp_path, text)).table_for(5).constraints
    assert list(c.limits) == ["optimal", "mandatory"]  # protocol level order
    assert [(x.level, x.comparator, x.value, x.unit) for x in c.result_limits()] == [
        ("optimal", "<", 25.0, "Gy"),
        ("mandatory", "<", 28.0, "Gy"),
    ]
    assert c.level_met(24.9) == "optimal"
    assert c.level_met(25.0) == "mandatory"
    assert c.level_met(28.0) is None
    assert c.margin(26.0) == pytest.approx(2.0) and c.margin(29.0) == pytest.approx(-1.0)


def test_alpha_beta_default_fills_radiobiological_metrics(tmp_path):
    text = replaced('metric: "Max[Gy]"', 'metric: "Max[EQD2Gy]"') + (
        "alpha_beta: {default: 3, structures: {SpinalCord: 2}, source: S1}\n"
    )
    p = read_protocol_file(write(tmp_path, text))
    (c,) = p.table_for(5).constraints
    metric, _ = p.metric_to_evaluate(c)
    assert metric.canonical == "D0.035cc[EQD2Gy(a/b=2)]"
    assert p.alpha_beta.for_structure("Heart") == 3


def test_info_for_results():
    info = load_protocol("rtog0915").info()
    assert info.id == "rtog0915" and info.levels == ("none", "minor")
    assert info.source_file.endswith("rtog0915.yaml")
    # the report names the exact file applied: its SHA-256, computed here independently
    assert info.source_sha256 == hashlib.sha256(Path(info.source_file).read_bytes()).hexdigest()


# ---------------------------------------------------------------------- errors
BAD = [
    # (old, new, fragments expected in the error message)
    ('metric: "Max[Gy]"', 'metric: "D95[Gy]"',
     ["tables.5.constraints.0.metric", "[SpinalCord D95[Gy]]", "needs a unit", "Accepted forms"]),
    ('comparator: "<",', "", ["tables.5.constraints.0.comparator", "required key missing"]),
    ("limits: {", "limts: {", ["tables.5.constraints.0.limts", "unknown key"]),
    ("levels: [optimal, mandatory]", "levels: [optimal, mandatory]\ncolour: red",
     ["colour", "unknown key"]),
    ("{optimal: 25, mandatory: 28}", "{optimal: 25, major: 28}", ["unknown level", "major"]),
    ("{optimal: 25, mandatory: 28}", "{optimal: 30, mandatory: 28}", ["strictest-first"]),
    ("source: S1}", "source: S9}", ["S9", "not listed under sources"]),
    ("  5:\n", "  five:\n", ["tables.five", "invalid key"]),
    ('comparator: "<"', 'comparator: "=<"', ["comparator"]),
    ("point_max: D0.035cc", "point_max: Mean", ["point_max", "point-max"]),
    ("id: mini", "id: Mini Protocol", ["id"]),
    ("format: 1", "format: 2", ["format", "reads protocol format 1"]),
    ("structure: SpinalCord,", "structure: SpinalCord, applies_to: target,",
     ["PTV, GTV, CTV or ITV"]),
    ("source: S1}", "source: S1, confirmed: false}", ["unconfirmed_reason"]),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "fragments"), BAD)
def test_schema_errors_name_the_file_and_the_key(tmp_path, old, new, fragments):
    path = write(tmp_path, replaced(old, new))
    with pytest.raises(ProtocolError) as info:
        read_protocol_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert info.value.path == str(path)
    for fragment in fragments:
        assert fragment in message


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, MINIMAL + "tables: [unclosed\n")
    with pytest.raises(ProtocolError, match=r"not valid YAML.*line \d+"):
        read_protocol_file(path)


def test_duplicate_keys_are_refused_not_silently_overwritten(tmp_path):
    text = MINIMAL + "  5:\n    constraints: []\n"
    with pytest.raises(ProtocolError, match="duplicate key 5"):
        read_protocol_file(write(tmp_path, text))


def test_non_mapping_and_missing_files(tmp_path):
    with pytest.raises(ProtocolError, match="must be a YAML mapping"):
        read_protocol_file(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ProtocolError, match="not found"):
        load_protocol(tmp_path / "absent.yaml")
    with pytest.raises(ProtocolError, match=r"unknown protocol 'nope'.*tg101"):
        load_protocol("nope")


def test_derived_errors_and_cycles(tmp_path):
    bad = MINIMAL + 'derived:\n  Lungs: "Lung_L + "\n'
    with pytest.raises(ProtocolError, match=r"derived\.Lungs\.expression.*unexpected end"):
        read_protocol_file(write(tmp_path, bad))
    cyc = MINIMAL + 'derived:\n  A: "B + C"\n  B: "expand(A, 3)"\n'
    with pytest.raises(ProtocolError, match="A -> B -> A"):
        read_protocol_file(write(tmp_path, cyc))


def test_environment_folder_is_searched_first_and_ids_must_match_file_names(tmp_path, monkeypatch):
    write(tmp_path, MINIMAL)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load_protocol("mini").id == "mini"
    assert "mini" in {p.id for p in list_protocols()}
    write(tmp_path, MINIMAL, name="other.yaml")
    with pytest.raises(ProtocolError, match="does not match the file name"):
        load_protocol("other")


def test_loading_by_path(tmp_path):
    path = write(tmp_path, MINIMAL, name="anything.yaml")
    p = load_protocol(str(path))
    assert p.id == "mini" and p.source_file == str(path)


# ---------------------------------------------------------------------- conformity
def test_conformity_table_interpolates_linearly_and_refuses_extrapolation():
    conf = load_protocol("rtog0915").table_for(4).conformity
    # constraints.md 5a: R50% none 5.9 at 1.8 cc and 5.5 at 3.8 cc; minor 7.5 and 6.5.
    lim = {c.index: dict(c.limits) for c in conf.limits_at(2.8)}
    assert lim[ConformityIndex.R50] == pytest.approx({"none": 5.7, "minor": 7.0})
    assert lim[ConformityIndex.R100] == pytest.approx({"none": 1.2, "minor": 1.5})
    # D2cm none 62 at 50 cc and 66 at 70 cc; minor 77 and 86.
    lim = {c.index: dict(c.limits) for c in conf.limits_at(60.0)}
    assert lim[ConformityIndex.D2CM] == pytest.approx({"none": 64.0, "minor": 81.5})
    # R50% none 3.3 at 95 cc and 3.1 at 126 cc.
    lim = {c.index: dict(c.limits) for c in conf.limits_at(100.0)}
    assert lim[ConformityIndex.R50]["none"] == pytest.approx(3.3 - 0.2 * 5 / 31)
    assert {c.index: dict(c.limits) for c in conf.limits_at(163.0)}[ConformityIndex.R50] == {
        "none": 2.9,
        "minor": 3.7,
    }
    for outside in (1.7, 163.5, 500.0):
        assert conf.limits_at(outside) is None
        assert "outside the conformity table" in conf.not_covered_reason(outside)
    r50 = next(c for c in conf.limits_at(2.8) if c.index is ConformityIndex.R50)
    assert r50.level_met(5.0) == "none" and r50.level_met(6.9) == "minor"
    assert r50.level_met(7.0) is None
    assert [x.unit for x in r50.result_limits()] == ["ratio", "ratio"]


def test_conformity_table_validation(tmp_path):
    table = """\
    conformity:
      source: S1
      volume_cc: [1.8, 3.8]
      columns:
        - index: "R50%"
          limits: {optimal: [5.9, 5.5], mandatory: [7.5]}
"""
    text = MINIMAL + textwrap.indent(textwrap.dedent(table), "    ")
    with pytest.raises(ProtocolError, match="1 values for 2 rows"):
        read_protocol_file(write(tmp_path, text))


# ---------------------------------------------------------------------- derived grammar
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lung_L + Lung_R", Combine(SetOp.UNION, StructureRef("Lung_L"), StructureRef("Lung_R"))),
        ("Lungs - GTV",
         Combine(SetOp.DIFFERENCE, StructureRef("Lungs"), TargetGroup(TargetKind.GTV))),
        ("Lungs-GTV", StructureRef("Lungs-GTV")),
        ("ring(PTV, 20, 30)", Ring(TargetGroup(TargetKind.PTV), 20.0, 30.0)),
        ("expand(PTV, 20)", Expand(TargetGroup(TargetKind.PTV), 20.0)),
        ("shrink(PTV, 3)", Expand(TargetGroup(TargetKind.PTV), -3.0)),
        ("expand(PTV, -3)", Expand(TargetGroup(TargetKind.PTV), -3.0)),
        ('"Spinal Cord" & expand(PTV, 6)',
         Combine(SetOp.INTERSECTION, StructureRef("Spinal Cord"),
                 Expand(TargetGroup(TargetKind.PTV), 6.0))),
        ("Body - (Lungs + Heart)",
         Combine(SetOp.DIFFERENCE, StructureRef("Body"),
                 Combine(SetOp.UNION, StructureRef("Lungs"), StructureRef("Heart")))),
        ("A + B - C", Combine(SetOp.DIFFERENCE,
                              Combine(SetOp.UNION, StructureRef("A"), StructureRef("B")),
                              StructureRef("C"))),
    ],
)  # fmt: skip
def test_derived_expressions_parse_into_typed_trees(text, expected):
    expr = parse_expression(text)
    assert expr == expected
    assert parse_expression(expr.to_text()) == expr


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ring(PTV, 30, 20)", "inner < outer"),
        ("expand(PTV)", "1 number"),
        ("Lungs -", "unexpected end"),
        ("foo(PTV, 1)", "unknown function"),
        ("Lungs + 3", "expected a structure name"),
        ("(Lungs + Heart", "expected ')'"),
        ("Lungs Heart", "unexpected 'Heart'"),
        ("Lungs * 2", "cannot read"),
    ],
)
def test_malformed_derived_expressions(text, fragment):
    with pytest.raises(ExpressionError, match="invalid derived-structure expression") as info:
        parse_expression(text)
    assert fragment in str(info.value)


def test_references_list_structures_not_target_groups():
    assert references(parse_expression("ring(Lungs - GTV, 0, 5) + Heart")) == ("Lungs", "Heart")
    derived = load_protocol("rtog0915").derived
    assert derived["Lungs-GTV"].references == ("Lungs",)


# ---------------------------------------------------------------------- names map
def test_names_map(tmp_path):
    path = write(tmp_path, "SpinalCord: Cord\nHeart: null\nLungs: 'Lungs Total'\n", "map.yaml")
    assert load_name_map(path) == {"SpinalCord": "Cord", "Heart": None, "Lungs": "Lungs Total"}
    bad = write(tmp_path, "SpinalCord: [a, b]\n", "bad.yaml")
    with pytest.raises(ConfigError, match="protocol name: ROI name") as info:
        load_name_map(bad)
    assert info.value.path == str(bad)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_name_map(write(tmp_path, "- a\n", "list.yaml"))
    assert load_name_map(write(tmp_path, "", "empty.yaml")) == {}


# ---------------------------------------------------------------------- CLI
def test_cli_list_json_and_table(capsys):
    assert main(["protocols", "list", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_id = {d["id"]: d for d in data}
    assert by_id["rtog0915"]["fractions"] == [1, 4]
    assert main(["protocols", "list"]) == 0
    out = capsys.readouterr().out
    assert "tg101" in out and "rtog0813" in out and "1, 3, 5" in out


def test_cli_show_json_and_table(capsys):
    assert main(["protocols", "show", "tg101", "--fractions", "5", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["tables"]) == ["5"] and data["point_max"] == "Max[Gy]"
    rows = data["tables"]["5"]["constraints"]
    cord = next(r for r in rows if r["id"] == "SpinalCord.D0.35cc[Gy].5fx")
    assert cord["limits"] == {"limit": 23.0} and cord["source"] == ["S1"]
    assert not [r for r in rows if r["structure"] == "Liver"]  # unconfirmed: not shipped
    assert any("Liver" in o["what"] and "UNCONFIRMED" in o["reason"] for o in data["omitted"])
    assert main(["protocols", "show", "rtog0915"]) == 0
    out = capsys.readouterr().out
    assert "CV7Gy[cc]" in out and "R50% none" in out and "HIGH DOSE" in out


def test_cli_errors_are_one_line_with_exit_code_2(capsys, tmp_path):
    assert main(["protocols", "show", "tg101", "--fractions", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtcheck: error:") and "no table for 4 fractions" in err
    assert err.count("\n") == 1
    bad = write(tmp_path, replaced('metric: "Max[Gy]"', 'metric: "Max[Gy"'))
    assert main(["protocols", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtcheck: error: {bad}: ") and "metric" in err
    assert err.count("\n") == 1


def test_the_schema_example_in_constraints_readme_is_valid(tmp_path):
    readme = Path(__file__).parents[1] / "constraints" / "README.md"
    block = readme.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    p = read_protocol_file(write(tmp_path, block, name="my_centre_sabr.yaml"))
    (c,) = p.table_for(5).constraints
    assert (c.id, c.required, tuple(c.limits)) == ("cord-d01", True, ("optimal", "mandatory"))
    assert p.table_for(5).conformity.limits_at(2.8) is not None
    assert p.derived["Lungs-GTV"].references == ("Lungs",)
