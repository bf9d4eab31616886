"""Follow-ups of the third review that touch the evaluation (docs/safety.md, "Third review").

Cases from ``tests/safety_cases.py``: a PTV far from a cord and an oesophagus, TG-101 5 fx
passes; the oesophagus gets a 40 Gy hot spot where the truth is FAIL
(TG-101 5 fx: Esophagus Max[Gy] < 35 Gy).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from rtcheck.cli import main
from rtcheck.protocol import Protocol, load_protocol
from rtcheck.result import Status, Verdict
from tests.protocol_files import synthetic_protocol
from tests.safety_cases import (
    ESO_XY,
    CaseSpec,
    check_spec,
    edit,
    falloff,
    grid,
    rows,
    sphere_roi,
    with_hotspot,
    write_case,
)

ESO_NUMBER = 5  # base_rois(): Esophagus is ROI 5


@pytest.fixture(scope="module")
def tg101() -> Protocol:
    return load_protocol("tg101")


def _hot_eso() -> CaseSpec:
    return CaseSpec(dose_fn=with_hotspot(falloff(), (ESO_XY[0], ESO_XY[1], 0.0), 40.0))


def _eso_item(ds):
    return next(r for r in ds.ROIContourSequence if int(r.ReferencedROINumber) == ESO_NUMBER)


def _open_contours(ds) -> None:
    for c in _eso_item(ds).ContourSequence:
        c.ContourGeometricType = "OPEN_PLANAR"


def test_organ_drawn_with_open_contours_only_blocks_the_pass(tmp_path, tg101):
    """An oesophagus drawn, but with OPEN_PLANAR contours only, used to count as 'not
    contoured' (INFO), so its rows were skipped without blocking: PASS on a 40 Gy hot spot."""
    result = check_spec(
        _hot_eso(), tmp_path, tg101, mutate=lambda f: edit(f.rtstruct, _open_contours)
    )
    eso = rows(result, "Esophagus")
    assert eso and all(r.status is Status.NOT_EVALUATED for r in eso)
    assert all("none closed planar" in (r.reason or "") for r in eso)
    assert result.verdict is Verdict.INCOMPLETE


def test_organ_without_any_contour_is_still_not_contoured(tmp_path, tg101):
    """Control: an ROI left empty (a template structure never drawn) stays 'not contoured',
    which blocks nothing unless required; the rest of the plan passes."""

    def empty(ds) -> None:
        item = _eso_item(ds)
        del item.ContourSequence

    result = check_spec(CaseSpec(), tmp_path, tg101, mutate=lambda f: edit(f.rtstruct, empty))
    eso = rows(result, "Esophagus")
    assert eso and all(r.status is Status.NOT_EVALUATED for r in eso)
    assert all("not contoured" in (r.reason or "") for r in eso)
    assert result.verdict is Verdict.PASS


def _shifted_copies(ds) -> None:
    item = _eso_item(ds)
    extra = []
    for c in item.ContourSequence:
        c2 = copy.deepcopy(c)
        p = np.array(c2.ContourData, float).reshape(-1, 3)
        p[:, 0] += 2.0
        c2.ContourData = [f"{v:.4f}" for v in p.ravel()]
        extra.append(c2)
    item.ContourSequence = [*item.ContourSequence, *extra]


def test_rows_of_a_structure_with_overlapping_contours_show_no_value(tmp_path, tg101):
    """Even-odd of a contour and its 2 mm shifted copy leaves two crescents: Max reads about
    18 Gy where the truth is about 44 Gy. The rows must not show such a value as judged."""
    result = check_spec(
        _hot_eso(), tmp_path, tg101, mutate=lambda f: edit(f.rtstruct, _shifted_copies)
    )
    eso = rows(result, "Esophagus")
    assert eso and all(r.status is Status.NOT_EVALUATED for r in eso)
    assert all("overlap" in (r.reason or "") for r in eso)
    assert result.verdict is Verdict.INCOMPLETE


EQD2_PROTOCOL = synthetic_protocol(
    "eqd2default",
    """\
tables:
  any:
    constraints:
      - {structure: Esophagus, metric: "Max[EQD2Gy]", comparator: "<", limits: {limit: 500},
         source: T1}
""",
)


def test_eqd2_limit_without_alpha_beta_uses_the_default_and_says_so(tmp_path):
    """No alpha/beta in the file: the oesophagus (late-responding tissue, rtcheck default
    3 Gy) is judged on EQD2(a/b=3), the row says so and a WARNING names the row."""
    path = tmp_path / "eqd2.yaml"
    path.write_text(EQD2_PROTOCOL, encoding="utf-8")
    result = check_spec(CaseSpec(), tmp_path / "case", load_protocol(str(path)))
    (row,) = rows(result, "Esophagus")
    assert row.status is Status.PASS and row.dose_basis == "EQD2(a/b=3)"
    assert "alpha/beta 3 Gy: rtcheck default" in (row.note or "")
    warn = [f for f in result.findings if f.code == "alpha_beta.default"]
    assert len(warn) == 1 and warn[0].severity.name == "WARNING"
    assert "Esophagus Max[EQD2Gy]" in warn[0].message


def test_info_shows_overlapping_contours(tmp_path, capsys):
    """`rtcheck info` computes the volume from the contours: the ERROR that makes check refuse
    the structure must show there too (JSON and table)."""
    files = write_case(CaseSpec(), tmp_path)
    edit(files.rtstruct, _shifted_copies)
    assert main(["info", str(tmp_path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    case = out["cases"][0] if "cases" in out else out
    codes = [f["code"] for f in case["findings"]]
    assert "structure.overlapping_contours" in codes
    assert main(["info", str(tmp_path)]) == 0
    assert "overlapping_contours" in capsys.readouterr().out


CGY_SLIP = EQD2_PROTOCOL.replace('metric: "Max[EQD2Gy]"', 'metric: "Max[Gy]"').replace(
    "limit: 500}", "limit: 3500}"
)


def test_a_cgy_number_in_a_gy_limit_is_warned(tmp_path):
    """`Max[Gy] < 3500` (3500 cGy meant) is met by any plan: the row passes, so a WARNING
    must say the limit is implausible."""
    path = tmp_path / "slip.yaml"
    path.write_text(CGY_SLIP, encoding="utf-8")
    result = check_spec(_hot_eso(), tmp_path / "case", load_protocol(str(path)))
    (row,) = rows(result, "Esophagus")
    assert row.status is Status.PASS  # 44 Gy < 3500: the slip hides the failure
    warn = [f for f in result.findings if f.code == "protocol.limit_implausible"]
    assert len(warn) == 1 and "3500 Gy" in warn[0].message
    assert warn[0].severity.name == "WARNING"


def test_plausible_limits_are_not_warned(tmp_path):
    result = check_spec(CaseSpec(), tmp_path, load_protocol("tg101"))
    assert not [f for f in result.findings if f.code == "protocol.limit_implausible"]


ESO_ONLY = EQD2_PROTOCOL.replace('metric: "Max[EQD2Gy]"', 'metric: "Max[Gy]"').replace(
    "limit: 500}", "limit: 35}"
)


def test_prescribed_target_outside_the_dose_grid_blocks_the_pass(tmp_path):
    """Acceptance audit: a dose grid cropped through the PTV (x up to 25 mm; the PTV spans
    5-35 mm) used to give PASS, exit 0, with a WARNING: the target's dose is unknown."""
    spec = CaseSpec(geometry=grid(hi=(25.0, 60.0, 60.0)))
    path = tmp_path / "eso.yaml"
    path.write_text(ESO_ONLY, encoding="utf-8")
    result = check_spec(spec, tmp_path / "case", load_protocol(str(path)))
    (row,) = rows(result, "Esophagus")
    assert row.status is Status.PASS
    out = [f for f in result.findings if f.code == "lesion.outside_grid"]
    assert out and out[0].severity.name == "ERROR"
    assert result.verdict is Verdict.INCOMPLETE


def _eqd2(total: float, n: int, ab: float) -> float:
    return total * (total / n + ab) / (2.0 + ab)


def test_alpha_beta_per_structure_from_the_command_line(tmp_path):
    """Acceptance audit: `--alpha-beta STRUCTURE=GY` sets one organ's alpha/beta (it wins over
    `--alpha-beta GY`). EQD2 is monotonic in dose, so the maximum's EQD2 at a/b = 10 follows
    in closed form from the one at the default a/b = 3 (same hottest voxel, 5 fractions)."""
    from rtcheck.pipeline import CheckOptions

    path = tmp_path / "eqd2.yaml"
    path.write_text(EQD2_PROTOCOL, encoding="utf-8")
    proto = load_protocol(str(path))
    spec = _hot_eso()
    (base,) = rows(check_spec(spec, tmp_path / "a", proto), "Esophagus")
    assert base.dose_basis == "EQD2(a/b=3)"
    # invert EQD2(a/b=3) of the maximum -> physical maximum D (positive root)
    e, n = base.value, 5
    d_max = (-3.0 * n + ((3.0 * n) ** 2 + 4 * n * 5.0 * e) ** 0.5) / 2
    opts = CheckOptions(alpha_beta=4.0, alpha_beta_structures=(("Esophagus", 10.0),))
    (row,) = rows(check_spec(spec, tmp_path / "b", proto, opts), "Esophagus")
    assert row.dose_basis == "EQD2(a/b=10)"
    assert row.value == pytest.approx(_eqd2(d_max, n, 10.0), rel=1e-6)
    assert "--alpha-beta" in (row.note or "") or "command line" in (row.note or "")


def test_alpha_beta_for_an_unknown_structure_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "eqd2.yaml"
    path.write_text(EQD2_PROTOCOL, encoding="utf-8")
    write_case(CaseSpec(), tmp_path / "case")
    args = ["check", str(tmp_path / "case"), "--protocol", str(path)]
    assert main([*args, "--alpha-beta", "Esophagus=10", "--alpha-beta", "3"]) == 0
    capsys.readouterr()
    assert main([*args, "--alpha-beta", "Esophagos=10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Esophagos" in err and "Esophagus" in err
    assert main([*args, "--alpha-beta", "Esophagus=ten"]) == 2
    assert "STRUCTURE=GY" in capsys.readouterr().err


def test_batch_refuses_a_misspelt_alpha_beta_name_before_the_run(tmp_path, capsys):
    """Fourth review: a misspelt `--alpha-beta NAME=GY` (or `--require`) in batch made every
    case an error row; it is one line and exit 2 before any case is read."""
    path = tmp_path / "eqd2.yaml"
    path.write_text(EQD2_PROTOCOL, encoding="utf-8")
    write_case(CaseSpec(), tmp_path / "in" / "c1")
    out = tmp_path / "out"
    args = ["batch", str(tmp_path / "in"), "-p", str(path), "-o", str(out), "--no-progress"]
    assert main([*args, "--alpha-beta", "Esophagos=10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Esophagos" in err
    assert not (out / "summary.csv").exists()
    assert main([*args, "--require", "Esophagos"]) == 2
    assert "Esophagos" in capsys.readouterr().err


def test_target_without_prescription_outside_the_dose_grid_blocks_the_pass(tmp_path):
    """Final review: a second PTV with no prescription, wholly outside the only dose grid (its
    own plan missing from the folder), gave PASS with a WARNING: the organs then lack that
    plan's dose. Any target the dose does not cover is an ERROR."""
    spec = CaseSpec().with_rois(sphere_roi(9, "PTV2", "PTV", (20.0, 0.0, 100.0), 10.0))
    result = check_spec(spec, tmp_path, load_protocol("tg101"))
    out = [f for f in result.findings if f.code == "lesion.outside_grid"]
    assert out and out[0].severity.name == "ERROR" and out[0].subject == "PTV2"
    assert result.verdict is Verdict.INCOMPLETE
