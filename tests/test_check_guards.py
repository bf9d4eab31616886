"""Guards of ``rtcheck check`` around the evaluation: dose plausibility, ``--fractions`` against
the RT Plan (also with several plans), report paths checked before the evaluation, and the CT
slice thickness used for single-plane structures.

Real DICOM files written into ``tmp_path`` (``tests/safety_cases.py``,
``tests/evaluation_synth.py``); expected values are analytic.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rtcheck.cli import main
from rtcheck.errors import ConfigError
from rtcheck.io.write import uid_from, write_ct_series, write_structure_set
from rtcheck.model import Contour, GridGeometry, Roi, StructureSet
from rtcheck.pipeline import CheckOptions, check_path
from rtcheck.plausibility import PLAUSIBLE_MAX_FRACTION
from tests import evaluation_synth as es
from tests.safety_cases import FRAME, STUDY, CaseSpec, check_spec, write_case

# ----------------------------------------------------------------------------- two plans
G = es.grid((-70.0, -50.0, -50.0), (70.0, 50.0, 50.0), 2.0)
S = 15.57
A, B = (-30.0, 0.0, 0.0), (30.0, 0.0, 0.0)
RX_A, RX_B = 30.0, 50.0


def _peak(rx: float) -> float:
    """Gaussian peak whose value at 11 mm from the centre is ``rx``: a 10 mm PTV gets >= rx."""
    return rx * math.exp(121.0 / S**2)


def _two_plans(tmp_path: Path, fx_a: int, fx_b: int, *, scale_b: float = 1.0, centre_b=B) -> Path:
    """Plan PA (PTV_A, 30 Gy) and plan PB (PTV_B, 50 Gy), each with its own RT Dose."""
    pa = es.plan("PA", fx_a, [("PTV_A", RX_A, 1)])
    pb = es.plan("PB", fx_b, [("PTV_B", RX_B, 2)])
    da = es.sample(G, es.gaussian(A, _peak(RX_A), S))
    db = es.sample(G, es.gaussian(centre_b, _peak(RX_B) * scale_b, S))
    rois = [
        es.sphere(1, "PTV_A", "PTV", A, 10.0),
        es.sphere(2, "PTV_B", "PTV", B, 10.0),
        es.cylinder(3, "SpinalCord", "ORGAN", 14.0, 30.0, 4.0, -40.0, 40.0),
    ]
    c = es.case(rois, [es.dose(G, da, pa), es.dose(G, db, pb)], [pa, pb])
    return es.write_case(c, tmp_path / "case")


def _errors(result, prefix: str) -> list:
    return [f for f in result.findings if f.severity == "error" and f.code.startswith(prefix)]


# ----------------------------------------------------------------------------- plausibility
def test_plausible_plans_have_no_plausibility_error(tmp_path):
    r = check_path(_two_plans(tmp_path, 5, 5), "tg101")
    assert not _errors(r, "dose.")
    assert all(les.metrics["D95%[Gy]"] >= les.prescription_gy for les in r.lesions)


def test_low_dose_of_one_plan_is_an_error_naming_that_plan(tmp_path):
    # PB's maximum: 0.2 x 82.3 Gy = 16.5 Gy, below 90 % of its 50 Gy (plan PA is plausible)
    r = check_path(_two_plans(tmp_path, 5, 5, scale_b=0.2), "tg101")
    (f,) = _errors(r, "dose.")
    assert f.code == "dose.below_prescription" and f.subject == "PB"
    top = 0.2 * _peak(RX_B)
    assert top < PLAUSIBLE_MAX_FRACTION * RX_B
    assert f"{top:.4g} Gy" in f.message and "50 Gy" in f.message and "90 %" in f.message
    assert r.verdict != "pass"


def test_lesion_missed_by_its_own_plan_is_an_error(tmp_path):
    # PB's dose is centred 30 mm beside PTV_B: its maximum (82 Gy) is plausible, but PTV_B
    # (10 mm radius, 20-40 mm from that centre) gets at most 82.3 exp(-400 / S^2) = 15.8 Gy.
    r = check_path(_two_plans(tmp_path, 5, 5, centre_b=(60.0, 0.0, 0.0)), "tg101")
    (f,) = _errors(r, "dose.")
    assert f.code == "dose.lesion_below_prescription" and f.subject == "PTV_B"
    d95 = next(les for les in r.lesions if les.name == "PTV_B").metrics["D95%[Gy]"]
    assert d95 < _peak(RX_B) * math.exp(-400.0 / S**2) + 1e-6
    assert "D95%" in f.message and "50 Gy" in f.message
    assert r.verdict == "incomplete"


@pytest.mark.parametrize(("scale", "codes"), [(0.56, []), (0.53, ["dose.below_prescription"])])
def test_threshold_of_the_plan_maximum(tmp_path, scale, codes):
    # maximum 0.56 x 82.3 = 46.1 Gy >= 45 Gy (90 % of 50 Gy): plausible, and PTV_B's D95% is
    # about 0.56 x 50 = 28 Gy >= 25 Gy; at 0.53 the maximum, 43.6 Gy, is below 45 Gy
    assert (scale * _peak(RX_B) >= PLAUSIBLE_MAX_FRACTION * RX_B) == (not codes)
    r = check_path(_two_plans(tmp_path, 5, 5, scale_b=scale), "tg101")
    assert [f.code for f in _errors(r, "dose.")] == codes


# ----------------------------------------------------------------------------- --fractions
def test_fractions_option_against_a_3fx_plan_does_not_clear_it(tmp_path):
    """Plan 3 fx, cord maximum 25.2 Gy: fails 3 fx (< 21.9), passes 5 fx (< 30)."""
    from tests.safety_cases import hot_cord, rows

    spec = CaseSpec(fractions=3, dose_fn=hot_cord(25.0))
    own = check_spec(spec, tmp_path / "own", "tg101")
    assert own.verdict == "fail"
    asked = check_spec(spec, tmp_path / "asked", "tg101", CheckOptions(fractions=5))
    (f,) = _errors(asked, "fractions.")
    assert "--fractions 5" in f.message and "(3 fractions)" in f.message
    assert "--fractions-override" in f.message
    assert all(c.status == "pass" for c in rows(asked, "SpinalCord"))  # the 5 fx table
    assert asked.verdict == "incomplete" and asked.exit_code == 3
    confirmed = check_spec(
        spec, tmp_path / "confirmed", "tg101", CheckOptions(fractions=5, fractions_override=True)
    )
    assert confirmed.verdict == "pass" and not _errors(confirmed, "")
    (w,) = [f for f in confirmed.findings if f.code == "fractions.overridden"]
    assert w.severity == "warning" and "--fractions-override" in w.message


def test_fractions_option_with_plans_of_different_fractions(tmp_path):
    folder = _two_plans(tmp_path, 3, 5)
    r = check_path(folder, "tg101", CheckOptions(fractions=5))
    (f,) = _errors(r, "fractions.")  # only PA (3 fx) disagrees
    assert f.subject == "PA" and "(3 fractions)" in f.message
    assert r.verdict != "pass"
    ok = check_path(folder, "tg101", CheckOptions(fractions=5, fractions_override=True))
    assert not _errors(ok, "fractions.")
    assert {les.fractions for les in ok.lesions} == {5}
    assert ok.plan.fractions == 5 and "physical sum of 2 plans" in ok.plan.dose_summation


def test_fractions_override_needs_fractions(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--fractions-override"):
        CheckOptions(fractions_override=True)
    write_case(CaseSpec(), tmp_path)
    rc = main(["check", str(tmp_path), "--protocol", "tg101", "--fractions-override"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--fractions-override" in err


def test_fractions_override_on_the_command_line(tmp_path, capsys):
    write_case(CaseSpec(), tmp_path)
    base = ["check", str(tmp_path), "--protocol", "tg101", "--format", "json"]
    assert main([*base, "--fractions", "3"]) == 3
    capsys.readouterr()
    assert main([*base, "--fractions", "3", "--fractions-override"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plan"]["fractions"] == 3
    assert any(
        f["code"] == "fractions.overridden" and f["severity"] == "warning" for f in data["findings"]
    )


# ----------------------------------------------------------------------------- report paths
def _one_line(rc: int, out: str, err: str, *words: str) -> None:
    assert rc == 2, err
    assert out == ""  # nothing evaluated, nothing printed
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtcheck: error: "), err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.mark.parametrize(
    ("option", "where", "words"),
    [
        ("--report", "missing/r.html", "does not exist"),
        ("--json", "a-file/r.json", "is not a folder"),
        ("--csv", "a-folder", "is a folder"),
        ("--junit", "a-fifo", "not a regular file"),
    ],
)
def test_report_path_is_checked_before_the_evaluation(tmp_path, capsys, option, where, words):
    (tmp_path / "a-file").write_text("a file")
    (tmp_path / "a-folder").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    target = tmp_path / where
    # the plan folder does not exist: the report path must be refused before it is read
    argv = ["check", str(tmp_path / "no-plan"), "--protocol", "tg101", option, str(target)]
    rc = main(argv)
    out, err = capsys.readouterr()
    _one_line(rc, out, err, str(target), "cannot write report", words)
    assert (tmp_path / "a-fifo").is_fifo()


def test_valid_report_path_is_written(tmp_path, capsys):
    write_case(CaseSpec(), tmp_path / "plan")
    target = tmp_path / "r.json"
    rc = main(["check", str(tmp_path / "plan"), "--protocol", "tg101", "--json", str(target)])
    capsys.readouterr()
    assert rc == 0 and json.loads(target.read_text())["verdict"] == "pass"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any folder")
def test_read_only_report_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        rc = main(["check", str(tmp_path), "--protocol", "tg101", "--json", str(folder / "r")])
    finally:
        folder.chmod(0o700)
    out, err = capsys.readouterr()
    _one_line(rc, out, err, "not writable")


# ----------------------------------------------------------------------------- CT slices
def test_single_plane_structure_takes_the_ct_slice_thickness(tmp_path):
    """A one-contour ROI is a slab one CT slice thick (3 mm here, not the 2 mm default)."""
    spec = CaseSpec()
    files = write_case(spec, tmp_path)
    dz = 3.0
    axes = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    ct = GridGeometry((-30.0, -30.0, -30.0), (2.0, 2.0, dz), *axes, (21, 31, 31))
    series = uid_from("guards", "ct-series")
    write_ct_series(
        np.zeros(ct.shape), ct, tmp_path, patient=spec.patient, study_uid=STUDY,
        frame_uid=FRAME, series_uid=series,
    )  # fmt: skip
    square = np.array([[-20.0, -40.0, 0.0], [0.0, -40.0, 0.0], [0.0, -20.0, 0.0],
                       [-20.0, -20.0, 0.0]])  # fmt: skip
    stomach = Roi(20, "Stomach", "ORGAN", None, (Contour(square),))  # not a continuous organ
    ss = StructureSet((*spec.rois, stomach), frame_of_reference_uid=FRAME, label="SAFETY")
    write_structure_set(
        ss, files.rtstruct, patient=spec.patient, study_uid=STUDY, sop_uid=uid_from(
            "safety", "rtstruct", str(tmp_path)), referenced_series_uid=series,
    )  # fmt: skip
    r = check_path(tmp_path, "tg101")
    assert "link.no_ct" not in {f.code for f in r.findings}
    curve = next(c for c in r.dvhs if c.structure == "Stomach")
    assert curve.volume_cc == pytest.approx(20.0 * 20.0 * dz / 1000.0, rel=1e-9)


# ----------------------------------------------------------------------------- PASS sentence
def test_pass_sentence_follows_the_counts(tmp_path):
    from dataclasses import replace

    from rtcheck.report.common import verdict_sentence

    r = check_spec(CaseSpec(), tmp_path, "tg101")
    assert r.verdict == "pass"
    skipped = [c for c in r.constraints if c.status == "not_evaluated"]
    evaluated = tuple(c for c in r.constraints if c.status != "not_evaluated")
    assert len(skipped) > 1 and evaluated
    text = verdict_sentence(r)
    assert text.endswith(f"; {len(skipped)} constraints were not evaluated (organs not contoured).")
    assert verdict_sentence(replace(r, constraints=evaluated)) == (
        "Every constraint was evaluated and met."
    )
    one = replace(skipped[0], reason="some other reason")
    mixed = replace(r, constraints=(*evaluated, one, skipped[1]))
    assert verdict_sentence(mixed).endswith(
        "; 2 constraints were not evaluated (1 for organs not contoured, 1 for other reasons "
        "given in the report)."
    )
    assert verdict_sentence(replace(r, constraints=(*evaluated, skipped[0]))).endswith(
        "; 1 constraint was not evaluated (organs not contoured)."
    )


def test_lesion_far_above_its_prescription_is_an_error(tmp_path):
    """PTV_B receives about 50 Gy (D95% >= its 50 Gy); told 20 Gy, its D95% is 2.5 times the
    prescription: the prescription is wrong, so its relative metrics would be meaningless."""
    folder = _two_plans(tmp_path, 5, 5)
    r = check_path(folder, "tg101", CheckOptions(rx=(("PTV_B", 20.0),)))
    (f,) = _errors(r, "dose.")
    assert f.code == "dose.lesion_above_prescription" and f.subject == "PTV_B"
    assert "--rx PTV_B=GY" in f.message and r.verdict == "incomplete"
    assert not _errors(check_path(folder, "tg101", CheckOptions(rx=(("PTV_B", 45.0),))), "dose.")


def test_lesion_of_a_plan_missing_from_the_folder_blocks_the_pass(tmp_path):
    """Only plan PA was exported; PTV_B (no prescription in PA) gets almost no dose from it:
    its own plan's dose is missing from every organ, so nothing can be cleared."""
    pa = es.plan("PA", 5, [("PTV_A", RX_A, 1)])
    da = es.sample(G, es.gaussian(A, _peak(RX_A), S))
    rois = [es.sphere(1, "PTV_A", "PTV", A, 10.0), es.sphere(2, "PTV_B", "PTV", B, 10.0)]
    folder = es.write_case(es.case(rois, [es.dose(G, da, pa)], [pa]), tmp_path / "case")
    r = check_path(folder, "tg101")
    (f,) = _errors(r, "dose.")
    assert f.code == "dose.lesion_untreated" and f.subject == "PTV_B"
    assert r.verdict == "incomplete"
