"""Safety QA through the command line: bad input gives ONE line naming the file and exit 2.

``rtcheck.cli.main([...])`` is called with real files (``tests/safety_cases.py``); stdout and
stderr come from ``capsys``. Besides error handling this pins the exit codes of the verdicts
and what a PASS may contain. ``xfail(strict=True, reason="BUG: ...")`` marks behaviour that is
wrong today (see ``docs/safety.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtcheck.cli import main
from rtcheck.model import Patient
from tests.safety_cases import ESO_XY, CaseSpec, falloff, hot_cord, with_hotspot, write_case

ROOT = Path(__file__).resolve().parents[1]
TG101_YAML = (ROOT / "constraints" / "tg101.yaml").read_text(encoding="utf-8")
CORD_MAX_5FX = (
    '{structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 30}, '
    'source: S1, required: true, endpoint: "Myelitis"}'
)
ESO_MAX_5FX = '{structure: Esophagus, metric: "Max[Gy]", comparator: "<", limits: {limit: 35}'


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory) -> Path:
    """The safe base case (read-only for the tests that use it)."""
    folder = tmp_path_factory.mktemp("base")
    write_case(CaseSpec(), folder)
    return folder


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rtcheck: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for w in words:
        assert w in lines[0], (w, err)


# ----------------------------------------------------------------------------- exit codes
def test_verdict_exit_codes(tmp_path, capsys, case_dir):
    rc, out, _ = _run(capsys, "check", str(case_dir), "--protocol", "tg101", "--format", "json")
    assert (rc, json.loads(out)["verdict"]) == (0, "pass")
    hot = tmp_path / "hot"
    write_case(CaseSpec(dose_fn=hot_cord()), hot)
    rc, out, _ = _run(capsys, "check", str(hot), "--protocol", "tg101", "--format", "json")
    assert (rc, json.loads(out)["verdict"]) == (1, "fail")
    rc, out, _ = _run(capsys, "check", str(case_dir), "--protocol", "tg101", "--fractions", "2")
    assert rc == 3


def test_a_pass_hides_nothing_blocking(capsys, case_dir):
    """In a PASS every not-evaluated row is an organ that is simply not contoured."""
    rc, out, _ = _run(capsys, "check", str(case_dir), "--protocol", "tg101", "--format", "json")
    data = json.loads(out)
    assert rc == 0 and data["verdict"] == "pass"
    assert not [c for c in data["constraints"] if c["status"] == "fail"]
    for c in data["constraints"]:
        if c["status"] == "not_evaluated":
            assert c["reason"].startswith("not contoured: "), c
    assert not [f for f in data["findings"] if f["severity"] == "error"]


def test_pass_sentence_does_not_claim_everything_was_evaluated(capsys, case_dir):
    rc, out, _ = _run(capsys, "check", str(case_dir), "--protocol", "tg101", "--no-color")
    assert rc == 0
    assert "not evaluated" in out
    assert "Every constraint was evaluated" not in out
    text = " ".join(out.split())  # the terminal wraps long lines
    n = text.split(" not evaluated (")[0].rsplit(" ", 1)[1]  # from the counts line
    assert int(n) > 1
    said = f"every required constraint was evaluated; {n} constraints were not evaluated"
    assert said + " (organs not contoured)" in text


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", ""])
def test_bad_fraction_option_is_one_line(capsys, case_dir, value):
    rc, _, err = _run(capsys, "check", str(case_dir), "--protocol", "tg101", "--fractions", value)
    _one_line_error(rc, err, "--fractions")


@pytest.mark.parametrize(
    "value", ["PTV1=abc", "PTV1", "=40", "PTV1=-40", "PTV1=0", "PTV1=nan", "PTV1=inf", "PTVX=40"]
)
def test_bad_prescription_option_is_one_line(capsys, case_dir, value):
    rc, _, err = _run(capsys, "check", str(case_dir), "--protocol", "tg101", "--rx", value)
    _one_line_error(rc, err, "--rx")


def test_relative_dose_without_prescription_is_one_line(tmp_path, capsys):
    files = write_case(CaseSpec(), tmp_path)
    from tests.safety_cases import edit

    edit(files.rtdose, lambda ds: setattr(ds, "DoseUnits", "RELATIVE"))
    rc, _, err = _run(capsys, "check", str(tmp_path), "--protocol", "tg101")
    _one_line_error(rc, err, "RD.dcm", "RELATIVE")


# ----------------------------------------------------------------------------- protocol files
def _typo(old: str, new: str, count: int = 1) -> str:
    assert old in TG101_YAML, old
    return TG101_YAML.replace(old, new, count)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace('"<"', '"=<"')), "comparator"),
        (_typo('"D0.35cc[Gy]"', '"D0.35c[Gy]"'), "D0.35c"),
        (_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace("limits:", "limts:")), "limts"),
        (_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace("{limit: 30}", "{limt: 30}")), "limt"),
        (_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace("30}", "thirty}")), "number"),
        (_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace("true", "ture")), "required"),
        (_typo("tables:", "tables: ["), "YAML"),
        (_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace("{limit: 30}", "{limit: 30}, limits: {limit: 300}")), "duplicate"),  # noqa: E501
        (TG101_YAML + '\n  5:\n    label: x\n    constraints: []\n', "duplicate"),
        (_typo("\n  5:\n", "\n  -5:\n"), "fractions"),
    ],
    ids=[
        "comparator", "metric", "key", "level", "limit-text", "boolean", "yaml-syntax",
        "duplicate-key", "duplicate-table", "negative-fractions",
    ],
)  # fmt: skip
def test_protocol_typo_is_one_line_naming_the_file(tmp_path, capsys, case_dir, text, words):
    proto = tmp_path / "my_protocol.yaml"
    proto.write_text(text, encoding="utf-8")
    rc, out, err = _run(capsys, "check", str(case_dir), "--protocol", str(proto))
    _one_line_error(rc, err, "my_protocol.yaml", words)
    assert out == ""


def test_missing_protocol_is_one_line(capsys, case_dir, tmp_path):
    rc, _, err = _run(capsys, "check", str(case_dir), "--protocol", str(tmp_path / "nope.yaml"))
    _one_line_error(rc, err, "nope.yaml")
    rc, _, err = _run(capsys, "check", str(case_dir), "--protocol", "tg999")
    _one_line_error(rc, err, "tg999")


def test_protocol_structure_typo_on_required_organ_blocks(tmp_path, capsys, case_dir):
    proto = tmp_path / "my_protocol.yaml"
    proto.write_text(_typo(CORD_MAX_5FX, CORD_MAX_5FX.replace("SpinalCord", "SpinalCrod")))
    rc, _, _ = _run(capsys, "check", str(case_dir), "--protocol", str(proto))
    assert rc != 0


def test_protocol_structure_typo_is_not_a_silent_pass(tmp_path, capsys):
    hot_eso = with_hotspot(falloff(), (ESO_XY[0], ESO_XY[1], 0.0), 38.0)
    write_case(CaseSpec(dose_fn=hot_eso), tmp_path / "case")
    rc, _, _ = _run(capsys, "check", str(tmp_path / "case"), "--protocol", "tg101")
    assert rc == 1  # control: the shipped protocol fails the oesophagus maximum
    proto = tmp_path / "my_protocol.yaml"
    proto.write_text(_typo(ESO_MAX_5FX, ESO_MAX_5FX.replace("Esophagus", "Esophagas"), 3))
    rc, _, err = _run(capsys, "check", str(tmp_path / "case"), "--protocol", str(proto))
    assert rc != 0
    if rc == 2:
        _one_line_error(rc, err, "my_protocol.yaml", "Esophagas")


# ----------------------------------------------------------------------------- plan folders
@pytest.mark.parametrize("name", ["RD.dcm", "RS.dcm", "RP.dcm"])
@pytest.mark.parametrize("keep", [0.5, -2])
def test_truncated_file_is_one_line_naming_it(tmp_path, capsys, name, keep):
    write_case(CaseSpec(), tmp_path)
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:keep])
    rc, out, err = _run(capsys, "check", str(tmp_path), "--protocol", "tg101")
    _one_line_error(rc, err, name, "truncated")
    assert out == ""


def test_folder_with_two_patients_is_one_line(tmp_path, capsys):
    write_case(CaseSpec(), tmp_path)
    write_case(CaseSpec(patient=Patient("OTHER-2", "Other^Pat")), tmp_path / "p2", tag="p2")
    rc, _, err = _run(capsys, "check", str(tmp_path), "--protocol", "tg101")
    _one_line_error(rc, err, "2 cases", "OTHER-2", "SAFETY-1")


def test_dose_of_another_patient_is_not_used(tmp_path, capsys):
    files = write_case(CaseSpec(), tmp_path / "a")
    other = write_case(CaseSpec(patient=Patient("OTHER-2", "Other^Pat")), tmp_path / "b")
    files.rtdose.write_bytes(other.rtdose.read_bytes())
    rc, _, err = _run(capsys, "check", str(tmp_path / "a"), "--protocol", "tg101")
    _one_line_error(rc, err, str(tmp_path / "a"))


@pytest.mark.parametrize("remove", ["RS.dcm", "RD.dcm", "all"])
def test_incomplete_folder_is_one_line(tmp_path, capsys, remove):
    write_case(CaseSpec(), tmp_path)
    for p in tmp_path.iterdir():
        if remove in (p.name, "all"):
            p.unlink()
    rc, _, err = _run(capsys, "check", str(tmp_path), "--protocol", "tg101")
    _one_line_error(rc, err, str(tmp_path))


def test_missing_folder_is_one_line(tmp_path, capsys):
    rc, _, err = _run(capsys, "check", str(tmp_path / "absent"), "--protocol", "tg101")
    _one_line_error(rc, err, "absent")


def test_unreadable_dicom_in_the_folder_is_not_a_pass(tmp_path, capsys):
    files = write_case(CaseSpec(), tmp_path)
    data = bytearray(files.rtdose.read_bytes())
    data[140:400] = b"\xff" * 260
    (tmp_path / "RD.lesion2.dcm").write_bytes(bytes(data))
    rc, _, err = _run(capsys, "check", str(tmp_path), "--protocol", "tg101", "--format", "json")
    assert rc in (2, 3), rc
    if rc == 2:
        _one_line_error(rc, err, "RD.lesion2.dcm")


def test_non_dicom_dcm_file_blocks_the_pass(tmp_path, capsys):
    """An .dcm that is not DICOM (an interrupted export) may have been a dose: no pass."""
    write_case(CaseSpec(), tmp_path)
    (tmp_path / "RD.extra.dcm").write_bytes(b"not a DICOM file " * 20)
    rc, out, _ = _run(capsys, "check", str(tmp_path), "--protocol", "tg101", "--format", "json")
    assert rc == 3
    findings = json.loads(out)["findings"]
    assert any("RD.extra.dcm" in (f["source"] or "") + f["message"] for f in findings)


# ----------------------------------------------------------------------------- reports
@pytest.mark.parametrize(
    ("option", "where"),
    [
        ("--report", "under-a-file/r.html"),
        ("--json", "under-a-file/r.json"),
        ("--report", "missing/sub/r.pdf"),
        ("--csv", "a-folder"),
    ],
)
def test_unwritable_report_is_one_line_and_leaves_nothing(
    tmp_path, capsys, case_dir, option, where
):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "under-a-file").write_text("a file, not a folder")
    (out_dir / "a-folder").mkdir()
    before = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*"))
    target = out_dir / where
    rc, _, err = _run(capsys, "check", str(case_dir), "--protocol", "tg101", option, str(target))
    _one_line_error(rc, err, str(target), "cannot write report")
    assert sorted(p.relative_to(out_dir) for p in out_dir.rglob("*")) == before
    assert not list(tmp_path.rglob("*.rtcheck-tmp"))


def test_unknown_report_format_fails_before_the_check(tmp_path, capsys, case_dir):
    rc, out, err = _run(
        capsys, "check", str(case_dir), "--protocol", "tg101", "--report", str(tmp_path / "r.docx")
    )
    _one_line_error(rc, err, "r.docx")
    assert out == ""
