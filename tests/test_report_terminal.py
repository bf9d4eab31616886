"""Terminal report layout: counts add up, nothing hidden, compact, plain in pipes, no cropping."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest

from rtcheck.report import render_terminal
from rtcheck.report.common import fmt_margin, fmt_value, metric_text
from rtcheck.report.terminal import render_text
from rtcheck.report.terminal_tables import group_constraints, pair_names, split_note
from rtcheck.result import ConstraintResult, Limit, Result, Status
from tests.report_fixtures import SCENARIOS, fail_result, incomplete_result, pass_result

ROOT = Path(__file__).resolve().parents[1]
MISSING = ("OpticChiasm", "OpticNrv_L", "OpticNrv_R", "Cochlea_L", "Cochlea_R", "Brainstem",
           "Duodenum", "Colon", "Rectum", "Bladder_Wall")  # fmt: skip


def _absent(structure: str, metric: str, required: bool = False) -> ConstraintResult:
    """A row as the evaluator writes it for an organ the plan does not contour."""
    why = f"no ROI matches {structure}"
    return ConstraintResult(
        id=f"{structure}.{metric}",
        structure=structure,
        matched_roi=None,
        match="not found",
        metric=metric,
        value=None,
        unit="Gy",
        limits=(Limit("limit", "<", 25.0, "Gy"),),
        status=Status.NOT_EVALUATED,
        reason=f"required structure not contoured: {why}" if required else f"not contoured: {why}",
        note="TG-101 value from a secondary transcription (constraints.md section 3b)",
    )


def _with_absent(result: Result, required: tuple[str, ...] = ()) -> Result:
    extra = [_absent(s, m) for s in MISSING for m in ("Max[Gy]", "D0.2cc[Gy]")]
    extra += [_absent(s, "Max[Gy]", required=True) for s in required]
    return dataclasses.replace(result, constraints=(*result.constraints, *extra))


def _text(result: Result, width: int = 120, color: bool = False) -> str:
    buf = io.StringIO()
    render_terminal(result, buf, color=color, width=width)
    return buf.getvalue()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- grouping and counts ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_groups_partition_every_constraint(name: str) -> None:
    r = _with_absent(SCENARIOS[name]())
    g = group_constraints(r)
    ids = [c.id for part in (g.organs, g.targets, g.not_evaluated, g.not_contoured) for c in part]
    assert sorted(ids) == sorted(c.id for c in r.all_constraints)  # each exactly once
    assert g.total == sum(r.counts.values())
    assert all(c.status is not Status.NOT_EVALUATED for c in g.organs + g.targets)
    assert len(g.not_contoured) == 2 * len(MISSING)


def _section_counts(text: str) -> dict[str, int]:
    def num(pattern: str) -> int:
        m = re.search(pattern, text)
        return int(m.group(1)) if m else 0

    return {
        "total": num(r"(\d+) constraints?\n"),
        "organs": num(r"Organ constraints: (\d+) evaluated"),
        "targets": num(r"; (\d+) target rules:"),
        "target_ne": num(r"target rules: .*?(\d+) not evaluated"),
        "other": num(r"NOT EVALUATED for another reason: (\d+)"),
        "absent": num(r"Not contoured: \d+ protocol structures?, (\d+) constraints?"),
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_printed_section_counts_add_up_to_the_verdict_line(name: str) -> None:
    r = _with_absent(SCENARIOS[name]())
    text = _text(r)
    n = _section_counts(text)
    # target rules not evaluated are counted in the target header and listed (with the reason)
    # in the not-evaluated table: count them once
    assert n["organs"] + n["targets"] - n["target_ne"] + n["other"] + n["absent"] == n["total"]
    assert n["total"] == len(r.all_constraints)
    first = text.splitlines()[0]
    counts = r.counts
    assert first.startswith(r.verdict.value.upper())
    assert f"{counts['fail']} failed" in first and f"{counts['pass']} passed" in first
    assert f"{counts['not_evaluated']} not evaluated ({2 * len(MISSING)} not contoured" in first


# -- nothing hidden ----------------------------------------------------------------------------


def _row(text: str, *parts: str) -> str | None:
    return next((line for line in text.splitlines() if all(p in line for p in parts)), None)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_evaluated_organ_constraint_is_a_row_with_value_limit_margin_status(
    name: str,
) -> None:
    r = SCENARIOS[name]()
    text = _text(r, width=200)
    word = {Status.PASS: "PASS", Status.FAIL: "FAIL"}
    for c in group_constraints(r).organs:
        value = fmt_value(c.value, c.unit, c.limits)
        row = _row(text, c.structure, metric_text(c), value, fmt_margin(c), word[c.status])
        assert row is not None, (c.id, text)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_other_not_evaluated_constraint_shows_its_reason(name: str) -> None:
    r = SCENARIOS[name]()
    text = _text(r, width=300)
    section = text.split("NOT EVALUATED for another reason", 1)
    ne = group_constraints(r).not_evaluated
    assert (len(section) == 2) == bool(ne)
    if not ne:
        return
    body = section[1].split("\nNot contoured:", 1)[0].split("\nNotes\n", 1)[0]
    blocks = re.split(r"\n- ", body)[1:]  # one block per reason: reason line, then its rows
    assert len(blocks) == len({c.reason for c in ne})
    for c in ne:
        block = next(b for b in blocks if b.startswith(c.reason or "?"))
        assert _row(block, c.lesion or c.structure, c.metric), c.id


def test_not_contoured_organs_are_one_list_not_rows() -> None:
    base = fail_result()
    text = _text(_with_absent(base))
    lines = text.splitlines()
    assert len(lines) <= len(_text(base).splitlines()) + 6  # 20 more constraints, few lines
    assert text.count("no ROI matches Duodenum") == 0  # the reason is not repeated per row
    para = text.split("Not contoured:", 1)[1]
    for name in ("OpticChiasm", "Brainstem", "Duodenum", "Colon", "Rectum", "Bladder_Wall"):
        assert text.count(name) == 1 and name in para
    assert "OpticNrv_L/R" in para and "Cochlea_L/R" in para


def test_required_missing_structure_is_not_hidden_in_the_compact_list() -> None:
    r = _with_absent(pass_result(), required=("SpinalCord^Sub",))
    text = _text(r)
    ne, absent = text.split("NOT EVALUATED for another reason", 1)[1].split("Not contoured:", 1)
    assert "required structure not contoured: no ROI matches SpinalCord^Sub" in ne
    assert "SpinalCord^Sub" not in absent


def test_empty_roi_is_named_with_its_reason_in_the_compact_list() -> None:
    empty = dataclasses.replace(
        _absent("Rectum", "Max[Gy]"),
        reason="not contoured: ROI 'Rectum' has no closed planar contour (not contoured)",
    )
    r = _with_absent(pass_result())
    r = dataclasses.replace(
        r, constraints=(*(c for c in r.constraints if c.structure != "Rectum"), empty)
    )
    para = re.sub(r"\s+", " ", _text(r).split("Not contoured:", 1)[1])
    assert "Rectum (ROI 'Rectum' has no closed planar contour (not contoured))" in para


def test_rows_repeated_per_fraction_table_are_told_apart() -> None:
    base = pass_result()
    cord = base.constraints[1]  # SpinalCord Max[Gy]
    three = dataclasses.replace(cord, id="SpinalCord.Max[Gy].3fx")
    five = dataclasses.replace(cord, id="SpinalCord.Max[Gy].5fx", value=cord.value)
    r = dataclasses.replace(base, constraints=(three, five))
    text = _text(r)
    assert _row(text, "SpinalCord", "Max[Gy]", "3fx") and _row(text, "SpinalCord", "Max[Gy]", "5fx")
    assert "3fx" not in _text(dataclasses.replace(base, constraints=(three,)))


def test_point_max_note_is_one_footnote() -> None:
    r = fail_result()
    text = _text(r)
    note = "point max evaluated as D0.035cc"
    assert text.count(note) == 1
    number = re.search(r"\[(\d+)\] " + re.escape(note), text)
    assert number is not None
    cord_max = _row(text, "SpinalCord", "Max[Gy]", "PASS")
    assert cord_max is not None and cord_max.rstrip().endswith(number.group(1))
    cord_cc = _row(text, "SpinalCord", "D0.35cc[Gy]", "PASS")
    assert cord_cc is not None and not cord_cc.rstrip().endswith(number.group(1))


def test_lesions_are_one_row_each_with_rule_marks() -> None:
    r = fail_result()
    text = _text(r)
    table = text.split("Targets:", 1)[1].split("Marks on values", 1)[0]
    for lesion in r.lesions:
        rows = [line for line in table.splitlines() if line.startswith(lesion.name + " ")]
        assert len(rows) == 1, lesion.name
        d95 = fmt_value(lesion.metrics["D95%[Gy]"], "Gy").split()[0]
        assert d95 in rows[0]
    adrenal = _row(table, "PTV_Adrenal_L")
    assert adrenal is not None and adrenal.count("FAIL") == 3  # V100%, R50%, D2cm
    rll = _row(table, "PTV_RLL")
    assert rll is not None and " ~" in rll  # R50% met only the 'minor' level
    details = text.split("Target rules failed or met at a lesser level only", 1)[1]
    assert _row(details, "PTV_RLL", "R50%", "PASS (minor)")
    assert _row(details, "PTV_Adrenal_L", "V100%[%]", "FAIL")


def test_findings_grouped_by_severity_errors_first() -> None:
    r = incomplete_result()
    text = _text(r)
    errors, warnings = text.index("Errors (2)"), text.index("Warnings (2)")
    assert errors < warnings
    for code in ("structure.ambiguous", "prescription.unknown"):
        assert errors < text.index(code) < warnings
    assert text.index("dose.partial_coverage") > warnings


# -- plain output, colour, width ----------------------------------------------------------------


def test_pipe_output_is_plain_ascii_and_at_most_120_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    r = _with_absent(pass_result())
    r = dataclasses.replace(r, plan=dataclasses.replace(r.plan, dose_grid="2 x 2 x 2 mm"))
    buf = io.StringIO()
    render_terminal(r, buf)  # not a TTY
    text = buf.getvalue()
    text.encode("ascii")  # no box characters, symbols or dashes outside the user's strings
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 120
    assert not any(line.endswith(" ") for line in text.splitlines())
    assert text.startswith("PASS  ")


def test_tty_gets_colour_and_symbols_but_no_colour_under_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = _Tty()
    render_terminal(fail_result(), tty, width=120)
    assert "\x1b[" in tty.getvalue() and "✖ FAIL" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Tty()
    render_terminal(fail_result(), tty, width=120)
    assert "\x1b[" not in tty.getvalue()
    assert "✔ PASS" in tty.getvalue()  # symbols stay: NO_COLOR is about colour only


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_narrow_terminal_crops_nothing(name: str, width: int) -> None:
    r = SCENARIOS[name]()
    text = _text(r, width=width, color=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "…" not in plain
    flat = re.sub(r"\s+", "", plain)
    for c in group_constraints(r).organs:  # every value and margin whole, even if wrapped
        assert fmt_value(c.value, c.unit, c.limits).replace(" ", "") in flat, c.id
        assert fmt_margin(c).replace(" ", "") in flat, c.id
    for c in r.all_constraints:
        assert c.structure.replace(" ", "") in flat or (c.lesion or "") in flat
    if width == 80 and name in ("pass", "incomplete"):
        assert max(len(line) for line in plain.splitlines()) <= 80


def test_render_text_has_no_escape_codes_and_matches_width() -> None:
    text = render_text(fail_result(), width=100)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 100


# -- helpers -------------------------------------------------------------------------------


def test_split_note_keeps_bracketed_semicolons() -> None:
    note = "a; b (x; y); c [p; q]"
    assert split_note(note) == ["a", "b (x; y)", "c [p; q]"]
    assert split_note(None) == [] and split_note("") == []


def test_pair_names_joins_left_right_only_when_both_present() -> None:
    names = ["Cochlea_L", "Brainstem", "Cochlea_R", "Femur_Head_R", "Kidney_R", "Kidney_L"]
    assert pair_names(names) == ["Cochlea_L/R", "Brainstem", "Femur_Head_R", "Kidney_L/R"]


# -- real sample -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_result() -> Result:
    case = ROOT / "sample_dicom" / "oligo_single"
    if not case.is_dir():
        pytest.skip("sample_dicom/oligo_single not present")
    from rtcheck.pipeline import check_path

    return check_path(case, "tg101")


def test_real_sample_report_is_compact(sample_result: Result) -> None:
    text = render_text(sample_result)
    g = group_constraints(sample_result)
    assert len(g.not_contoured) > 30  # the protocol lists many organs this plan lacks
    n = _section_counts(text)
    assert n["organs"] + n["targets"] + n["other"] + n["absent"] == len(
        sample_result.all_constraints
    )
    assert len(text.splitlines()) < 90
    assert "not contoured:" not in text  # no per-row not-contoured reason
    for c in g.organs:
        assert _row(text, c.structure, c.metric, c.status.value.upper()), c.id
