"""A FRACTION dose is scaled by the number of fractions actually used for the plan.

The file holds the dose of one fraction; the plan's total is that dose x the fractions to be
delivered. When the user gives ``--fractions N`` (the table for N is used, and EQD2/BED take
D / N per fraction), the dose is scaled by N, not by the RT Plan's NumberOfFractionsPlanned,
and a finding says which count scaled it (docs/multiplan.md, section 1). Real DICOM files
(``tests/safety_cases.py``); values are compared with the analytic dose they were written from.
"""

from __future__ import annotations

import pytest

from rtcheck.doseset import FractionCount, dose_set
from rtcheck.errors import InputError
from rtcheck.io.discover import load_case
from rtcheck.pipeline import CheckOptions
from rtcheck.protocol import Protocol, load_protocol
from tests.safety_cases import (
    CaseSpec,
    check_spec,
    dose_array,
    hot_cord,
    hot_cord_max_gy,
    rows,
    write_case,
)

#: Written dose = total / 5 per fraction.
PER_FRACTION = 1 / 5
#: The file stores the dose of one fraction in 16 bits: one step is (max / 65535) ~ 1.4e-4 Gy
#: for the 8.8 Gy per fraction maximum, times up to 8 fractions here.
STORED_STEP_GY = 44.0 * PER_FRACTION / 65535 * 8


@pytest.fixture(scope="module")
def tg101() -> Protocol:
    return load_protocol("tg101")


def _spec(fractions: int | None, peak: float) -> CaseSpec:
    return CaseSpec(
        fractions=fractions,
        dose_fn=hot_cord(peak),
        dose_summation="FRACTION",
        dose_scale=PER_FRACTION,
    )


def _cord_max(result) -> float:
    return next(c.value for c in rows(result, "SpinalCord") if c.metric == "Max[Gy]")


def _scaled(result):
    (f,) = [f for f in result.findings if f.code == "dose.fraction_scaled"]
    return f


def test_confirmed_count_scales_the_fraction_dose(tmp_path, tg101):
    """Cord 32.x Gy over 5 fx fails TG-101 (< 30 Gy); x 3 fx (19.x Gy) would have passed."""
    options = CheckOptions(fractions=5, fractions_override=True)
    r = check_spec(_spec(3, 32.0), tmp_path, tg101, options)
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(32.0), abs=STORED_STEP_GY)
    assert [c.status for c in rows(r, "SpinalCord") if c.metric == "Max[Gy]"] == ["fail"]
    assert r.verdict == "fail"
    f = _scaled(r)
    assert f.severity == "warning"
    assert "x 5 fractions from --fractions 5" in f.message and "states 3" in f.message


def test_unconfirmed_count_scales_but_does_not_clear(tmp_path, tg101):
    r = check_spec(_spec(3, 20.0), tmp_path, tg101, CheckOptions(fractions=5))
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(20.0), abs=STORED_STEP_GY)
    assert all(c.status == "pass" for c in rows(r, "SpinalCord"))
    f = _scaled(r)
    assert f.severity == "error" and "--fractions-override" in f.message
    assert r.verdict == "incomplete"


def test_count_for_a_plan_that_states_none_needs_confirmation(tmp_path, tg101):
    """Without --fractions-override the pipeline only notes N (INFO): the dose finding blocks."""
    spec = _spec(None, 20.0)
    with pytest.raises(InputError, match="no usable RT Dose"):
        check_spec(spec, tmp_path / "none", tg101)
    asked = check_spec(spec, tmp_path / "asked", tg101, CheckOptions(fractions=5))
    assert _scaled(asked).severity == "error" and asked.verdict == "incomplete"
    ok = check_spec(
        spec, tmp_path / "ok", tg101, CheckOptions(fractions=5, fractions_override=True)
    )
    assert _cord_max(ok) == pytest.approx(hot_cord_max_gy(20.0), abs=STORED_STEP_GY)
    assert _scaled(ok).severity == "warning" and "states none" in _scaled(ok).message
    assert ok.verdict == "pass"


def test_count_equal_to_the_plan_is_information(tmp_path, tg101):
    r = check_spec(_spec(5, 20.0), tmp_path, tg101, CheckOptions(fractions=5))
    f = _scaled(r)
    assert f.severity == "info" and "as the RT Plan states" in f.message
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(20.0), abs=STORED_STEP_GY)
    assert r.verdict == "pass"


def test_dose_per_fraction_is_the_files_dose(tmp_path):
    """Total / N = the dose written per fraction, whatever the RT Plan states (EQD2 uses it)."""
    spec = _spec(3, 20.0)
    files = write_case(spec, tmp_path)
    case = load_case(str(files.folder))
    per_fraction = float(dose_array(spec).max()) * PER_FRACTION  # the PTV centre, 8.8 Gy
    (plan_count,) = dose_set(case).plan_doses
    assert plan_count.dose.max_gy == pytest.approx(3 * per_fraction, abs=STORED_STEP_GY)
    for n in (1, 5, 8):
        (pd,) = dose_set(case, fractions=FractionCount(n, confirmed=True)).plan_doses
        assert pd.fractions == 3  # the RT Plan's count, for the caller to compare with n
        assert pd.dose.max_gy == pytest.approx(n * per_fraction, abs=STORED_STEP_GY)
