"""Safety QA: dose values, units, summation, fractions and prescriptions.

Same method as ``tests/test_safety.py``: a small real DICOM case that passes TG-101, one change,
and the behaviour the non-negotiables demand (unknown units or prescription, or a fraction count
without a table: *not evaluated* with the reason or a clear error naming the file; never a pass
by default). ``xfail(strict=True, reason="BUG: ...")`` marks behaviour that is wrong today.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from rtcheck.errors import InputError, LinkError
from rtcheck.pipeline import CheckOptions
from rtcheck.protocol import Protocol, load_protocol
from tests.safety_cases import (
    OTHER_FRAME,
    CaseSpec,
    check_spec,
    codes,
    edit,
    hot_cord,
    hot_cord_max_gy,
    rewrite_dose_values,
    rows,
    stored_values,
)


@pytest.fixture(scope="module")
def tg101() -> Protocol:
    return load_protocol("tg101")


@pytest.fixture(scope="module")
def rtog0813() -> Protocol:
    return load_protocol("rtog0813")


@pytest.fixture(scope="module")
def base() -> CaseSpec:
    return CaseSpec()


def _cord_max(result) -> float | None:
    return next(c.value for c in rows(result, "SpinalCord") if c.metric == "Max[Gy]")


def _set(**elements):
    def mutate(files) -> None:
        def fn(ds: pydicom.Dataset) -> None:
            for key, value in elements.items():
                if value is None:
                    delattr(ds, key)
                else:
                    setattr(ds, key, value)

        edit(files.rtdose, fn)

    return mutate


def _rescale(units: str, factor: float):
    """DoseUnits ``units`` and DoseGridScaling x ``factor``: the same dose in other units."""

    def mutate(files) -> None:
        def fn(ds: pydicom.Dataset) -> None:
            ds.DoseUnits = units
            ds.DoseGridScaling = f"{float(ds.DoseGridScaling) * factor:.6e}"

        edit(files.rtdose, fn)

    return mutate


# ----------------------------------------------------------------------------- units
def test_cgy_dose_is_scaled_to_gy(tmp_path, base, tg101):
    r = check_spec(base.but(dose_fn=hot_cord()), tmp_path, tg101, mutate=_rescale("CGY", 100.0))
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(), rel=1e-5)
    assert r.verdict == "fail"


def test_relative_dose_needs_a_stated_prescription(tmp_path, base, tg101):
    with pytest.raises(InputError, match="RELATIVE") as err:
        check_spec(base, tmp_path, tg101, mutate=_rescale("RELATIVE", 1 / 40.0))
    assert "RD.dcm" in str(err.value)


def test_relative_dose_with_prescription_is_converted_and_disclosed(tmp_path, base, tg101):
    options = CheckOptions(relative_prescription_gy=40.0)
    r = check_spec(
        base.but(dose_fn=hot_cord()), tmp_path, tg101, options, _rescale("RELATIVE", 1 / 40.0)
    )
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(), rel=1e-5)
    assert "dose.relative" in codes(r)


def _garbled_scaling(files) -> None:
    """DoseGridScaling that is not a number (pydicom refuses "abc" as DS, so written as LO)."""
    ds = pydicom.dcmread(files.rtdose)
    del ds.DoseGridScaling
    ds.add_new(0x3004000E, "LO", "abc")
    ds.save_as(files.rtdose)


@pytest.mark.parametrize(
    ("mutation", "words"),
    [
        (_set(DoseUnits=None), "DoseUnits"),
        (_set(DoseUnits="MGY"), "DoseUnits"),
        (_set(DoseGridScaling=None), "DoseGridScaling"),
        (_set(DoseGridScaling="0"), "DoseGridScaling"),
        (_set(DoseGridScaling="-1e-3"), "DoseGridScaling"),
        (_garbled_scaling, "DoseGridScaling 'abc' is not a number"),
    ],
    ids=[
        "units-missing",
        "units-unknown",
        "scaling-missing",
        "scaling-zero",
        "scaling-negative",
        "scaling-garbled",
    ],
)
def test_unknown_dose_scale_is_an_error_naming_the_file(tmp_path, base, tg101, mutation, words):
    with pytest.raises(InputError, match=words) as err:
        check_spec(base, tmp_path, tg101, mutate=mutation)
    assert "RD.dcm" in str(err.value)


def _float_with_nan(files) -> None:
    stored, scale = stored_values(files.rtdose)
    values = (stored * scale).astype("<f4")
    values[10, 10, 10] = np.nan

    def fn(ds: pydicom.Dataset) -> None:
        del ds.PixelData, ds.PixelRepresentation, ds.DoseGridScaling
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
        ds.FloatPixelData = values.tobytes()

    edit(files.rtdose, fn)


def test_nan_dose_is_an_error_naming_the_file(tmp_path, base, tg101):
    with pytest.raises(InputError, match="non-finite") as err:
        check_spec(base, tmp_path, tg101, mutate=_float_with_nan)
    assert "RD.dcm" in str(err.value)


def _signed_flag(files) -> None:
    """PixelRepresentation 1 on unsigned data: values above 32767 read as negative."""
    edit(files.rtdose, lambda ds: setattr(ds, "PixelRepresentation", 1))


def _negative_block(files) -> None:
    """A genuinely signed file with a -44 Gy block around the cord at z = 0."""
    stored, scale = stored_values(files.rtdose)
    k = 30000.0 / float(stored.max())
    values = np.rint(stored.astype(np.int64) * k).astype(np.int64)
    values[values.shape[0] // 2, 30:50, 15:35] = -30000
    rewrite_dose_values(files.rtdose, values, signed=True)
    edit(files.rtdose, lambda ds: setattr(ds, "DoseGridScaling", f"{scale / k:.6e}"))


@pytest.mark.parametrize("mutation", [_signed_flag, _negative_block], ids=["sign-flag", "block"])
def test_negative_dose_is_never_silent(tmp_path, base, tg101, mutation):
    try:
        r = check_spec(base.but(dose_fn=hot_cord()), tmp_path, tg101, mutate=mutation)
    except InputError as exc:
        assert "RD.dcm" in str(exc)
        return
    assert r.verdict != "pass"
    assert any("negative" in f.message for f in r.findings)


# ----------------------------------------------------------------------------- frames and linking
def test_dose_on_another_frame_of_reference_is_an_error(tmp_path, base, tg101):
    with pytest.raises(LinkError, match="frame of reference") as err:
        check_spec(base.but(dose_frame=OTHER_FRAME), tmp_path, tg101)
    assert "RD.dcm" in str(err.value)


def test_frame_mismatch_allowed_by_the_user_is_disclosed(tmp_path, base, tg101):
    options = CheckOptions(allow_frame_mismatch=True)
    r = check_spec(base.but(dose_frame=OTHER_FRAME), tmp_path, tg101, options)
    f = next(f for f in r.findings if f.code == "link.frame_mismatch")
    assert f.severity == "warning"


# ----------------------------------------------------------------------------- summation
def test_fraction_dose_is_multiplied_by_the_fractions(tmp_path, base, tg101):
    spec = base.but(dose_fn=hot_cord(), dose_summation="FRACTION", dose_scale=1 / 5)
    r = check_spec(spec, tmp_path, tg101)
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(), rel=1e-5)
    assert "dose.fraction_scaled" in codes(r)
    assert r.verdict == "fail"


def test_beam_doses_are_summed(tmp_path, base, tg101):
    r = check_spec(base.but(dose_fn=hot_cord(), beam_doses=2), tmp_path, tg101)
    assert _cord_max(r) == pytest.approx(hot_cord_max_gy(), rel=1e-4)
    assert r.verdict == "fail"


def test_missing_beam_dose_is_not_a_pass(tmp_path, base, tg101):
    """Beam 2's file is gone: beam 1 alone gives 20 Gy on the cord, which would pass."""
    spec = base.but(dose_fn=hot_cord(), beam_doses=2)
    r = check_spec(spec, tmp_path, tg101, mutate=lambda f: f.beam_doses[1].unlink())
    assert "dose.beams_missing" in codes(r)
    assert r.verdict == "incomplete"


def test_rows_on_a_dose_in_doubt_do_not_pass(tmp_path, base, tg101):
    """Beam 2 missing: the cord rows (20 Gy of the true 40) must not read ``pass`` in the
    CSV/JUnit rows either; they are not evaluated, their value and the doubt in the reason."""
    spec = base.but(dose_fn=hot_cord(), beam_doses=2)
    r = check_spec(spec, tmp_path, tg101, mutate=lambda f: f.beam_doses[1].unlink())
    every = list(r.constraints) + [c for les in r.lesions for c in les.constraints]
    assert every and not [c for c in every if c.status == "pass"]
    cord = [c for c in rows(r, "SpinalCord") if c.metric == "Max[Gy]"]
    assert cord and cord[0].status == "not_evaluated"
    assert "dose in doubt (dose.beams_missing" in cord[0].reason
    assert "would pass" in cord[0].reason


def test_one_unnumbered_beam_dose_for_two_beams_is_not_a_pass(tmp_path, base, tg101):
    """Beam 2's file is gone and beam 1's names no beam: half the dose, and nothing in the
    file says so; the plan has two beams, so the count gives it away."""

    def drop_and_unnumber(files) -> None:
        files.beam_doses[1].unlink()

        def fn(ds: pydicom.Dataset) -> None:
            for ref in ds.ReferencedRTPlanSequence:
                if "ReferencedFractionGroupSequence" in ref:
                    del ref.ReferencedFractionGroupSequence

        edit(files.beam_doses[0], fn)

    spec = base.but(dose_fn=hot_cord(), beam_doses=2)
    r = check_spec(spec, tmp_path, tg101, mutate=drop_and_unnumber)
    (f,) = [f for f in r.findings if f.code == "dose.beams_missing"]
    assert "1 BEAM dose(s) for the 2 beams" in f.message and r.verdict == "incomplete"
    assert not [c for c in r.constraints if c.status == "pass"]


def test_dose_without_summation_type_is_not_a_pass(tmp_path, base, tg101):
    r = check_spec(base, tmp_path, tg101, mutate=_set(DoseSummationType=None))
    assert "dose.summation_type_missing" in codes(r) and r.verdict == "incomplete"
    assert not [c for c in r.constraints if c.status == "pass"]


def test_unreadable_beam_dose_is_not_a_pass(tmp_path, base, tg101):
    def garble(files) -> None:
        path = files.beam_doses[1]
        data = bytearray(path.read_bytes())
        data[140:400] = b"\xff" * 260
        path.write_bytes(bytes(data))

    r = check_spec(base.but(dose_fn=hot_cord(), beam_doses=2), tmp_path, tg101, mutate=garble)
    assert r.verdict != "pass"


@pytest.mark.parametrize(
    ("changes", "mutation"),
    [
        ({"dose_fn": lambda x, y, z: 0.0 * x}, None),
        ({"dose_fn": hot_cord(), "dose_scale": 1 / 5}, None),
        ({"dose_fn": hot_cord()}, _rescale("CGY", 1.0)),
    ],
    ids=["all-zero", "per-fraction-labelled-plan", "gy-labelled-cgy"],
)
def test_implausibly_low_dose_is_not_a_pass(tmp_path, base, tg101, changes, mutation):
    r = check_spec(base.but(**changes), tmp_path, tg101, mutate=mutation)
    assert r.verdict != "pass"
    errors = [f for f in r.findings if f.severity == "error" and f.code.startswith("dose.")]
    assert errors and r.verdict == "incomplete"


def _plan_rx(value):
    """The RT Plan's prescription removed (None) or set to ``value`` Gy."""

    def mutate(files) -> None:
        def fn(ds: pydicom.Dataset) -> None:
            if value is None:
                del ds.DoseReferenceSequence
            else:
                for item in ds.DoseReferenceSequence:
                    item.TargetPrescriptionDose = value

        edit(files.rtplan, fn)

    return mutate


@pytest.mark.parametrize(
    ("value", "code"),
    [(None, "dose.unverified"), (0.0, "dose.unverified"), (-40.0, "dose.unverified")],
    ids=["no-prescription", "zero", "negative"],
)
def test_dose_without_a_valid_prescription_is_not_a_pass(tmp_path, base, tg101, value, code):
    """A per-fraction dose labelled as the plan's (40 Gy cord hot spot / 5) meets every limit;
    without a valid prescription nothing can show the dose is implausible, so no pass."""
    spec = base.but(dose_fn=hot_cord(), dose_scale=1 / 5)
    r = check_spec(spec, tmp_path, tg101, mutate=_plan_rx(value))
    assert code in codes(r) and r.verdict == "incomplete"
    every = list(r.constraints) + [c for les in r.lesions for c in les.constraints]
    assert not [c for c in every if c.status == "pass"]
    if value is not None:
        assert "rx.invalid" in codes(r)
    # the same plan with its prescription given on the command line: the dose is caught
    r = check_spec(
        spec, tmp_path / "rx", tg101, CheckOptions(rx=(("PTV1", 40.0),)), _plan_rx(value)
    )
    assert "dose.below_prescription" in codes(r) and r.verdict == "incomplete"


# ----------------------------------------------------------------------------- fractions
def _table_row(result):
    return next(c for c in result.constraints if c.id.startswith("table."))


@pytest.mark.parametrize(
    ("changes", "options", "words"),
    [
        ({"fractions": None}, None, "number of fractions unknown"),
        ({"fractions": 2}, None, "no table for 2 fractions"),
        ({}, CheckOptions(fractions=2), "no table for 2 fractions"),
    ],
    ids=["plan-states-none", "plan-2fx", "option-2fx"],
)
def test_fraction_count_without_table_evaluates_nothing(
    tmp_path, base, tg101, changes, options, words
):
    r = check_spec(base.but(dose_fn=hot_cord(), **changes), tmp_path, tg101, options)
    row = _table_row(r)
    assert row.status == "not_evaluated"
    assert words in (row.reason or "")
    assert not rows(r, "SpinalCord")  # nothing evaluated against another table
    assert r.verdict == "incomplete"


@pytest.mark.parametrize("value", [0, -5])
def test_plan_with_nonpositive_fractions_is_unknown(tmp_path, base, tg101, value):
    def fn(ds: pydicom.Dataset) -> None:
        ds.FractionGroupSequence[0].NumberOfFractionsPlanned = value

    r = check_spec(base, tmp_path, tg101, mutate=lambda f: edit(f.rtplan, fn))
    assert _table_row(r).status == "not_evaluated"
    assert r.plan.fractions is None
    assert r.verdict == "incomplete"


def test_plan_with_two_fraction_groups_is_unknown(tmp_path, base, tg101):
    def fn(ds: pydicom.Dataset) -> None:
        second = pydicom.Dataset()
        second.FractionGroupNumber = 2
        second.NumberOfFractionsPlanned = 3
        second.NumberOfBeams = 0
        second.NumberOfBrachyApplicationSetups = 0
        ds.FractionGroupSequence.append(second)

    r = check_spec(base, tmp_path, tg101, mutate=lambda f: edit(f.rtplan, fn))
    assert r.plan.fractions is None
    assert r.verdict == "incomplete"


@pytest.mark.parametrize("bad", [0, -1])
def test_nonpositive_fraction_option_is_refused(bad):
    from rtcheck.errors import ConfigError

    with pytest.raises(ConfigError, match="--fractions"):
        CheckOptions(fractions=bad)


def test_fraction_option_disagreeing_with_plan_is_not_a_pass(tmp_path, base, tg101):
    """--fractions 3 on a 5-fraction plan: the 3 fx table is shown, an ERROR blocks the pass."""
    r = check_spec(base, tmp_path, tg101, CheckOptions(fractions=3))
    f = next(f for f in r.findings if f.code == "fractions.overridden")
    assert f.severity == "error"
    assert "--fractions 3" in f.message and "(5 fractions)" in f.message
    assert "--fractions-override" in f.message
    assert r.plan.fractions == 3
    assert r.plan.fractions_source == "--fractions"
    assert all(c.id.endswith(".3fx") for c in rows(r, "SpinalCord"))
    assert all(c.status == "pass" for c in r.constraints if c.status != "not_evaluated")
    assert r.verdict == "incomplete" and r.exit_code == 3


def test_fraction_option_disagreeing_with_plan_confirmed_is_warned(tmp_path, base, tg101):
    """With --fractions-override the 3 fx table is used, a WARNING says so, the plan passes."""
    r = check_spec(base, tmp_path, tg101, CheckOptions(fractions=3, fractions_override=True))
    f = next(f for f in r.findings if f.code == "fractions.overridden")
    assert f.severity == "warning"
    assert "--fractions 3" in f.message and "(5 fractions)" in f.message
    assert not [g for g in r.findings if g.severity == "error"]
    assert r.plan.fractions == 3
    assert all(c.id.endswith(".3fx") for c in rows(r, "SpinalCord"))
    assert r.verdict == "pass"


# ----------------------------------------------------------------------------- prescriptions
def _eso_max_pct(result):
    return next(c for c in rows(result, "Esophagus") if c.metric == "Max[%]")


def test_percent_of_rx_limit_without_prescription_is_not_evaluated(tmp_path, base, rtog0813):
    r = check_spec(base.but(prescriptions=()), tmp_path, rtog0813)
    row = _eso_max_pct(r)
    assert row.status == "not_evaluated"
    assert "prescription" in (row.reason or "")
    assert "rx.unknown" in codes(r)
    assert r.verdict != "pass"


def test_zero_prescription_is_not_used_as_a_prescription(tmp_path, base, rtog0813):
    r = check_spec(base.but(prescriptions=(("PTV1", 0.0, 2),)), tmp_path, rtog0813)
    assert _eso_max_pct(r).status == "not_evaluated"
    assert r.verdict != "pass"


def test_user_prescription_replaces_plan_with_a_warning(tmp_path, base, rtog0813):
    r = check_spec(base, tmp_path, rtog0813, CheckOptions(rx=(("PTV1", 400.0),)))
    f = next(f for f in r.findings if f.code == "rx.overridden")
    assert f.severity == "warning"
    assert _eso_max_pct(r).value == pytest.approx(_eso_max_gy(r, base, tmp_path) / 4.0, rel=1e-6)


def _eso_max_gy(result, base, tmp_path) -> float:
    """Esophagus Max[Gy] of the same case under TG-101 (Max[%] x Rx / 100 must equal it)."""
    ref = check_spec(base, tmp_path / "ref", "tg101")
    return next(c.value for c in rows(ref, "Esophagus") if c.metric == "Max[Gy]")


def test_prescription_for_an_unknown_target_is_refused(tmp_path, base, tg101):
    from rtcheck.errors import ConfigError

    with pytest.raises(ConfigError, match="PTVX"):
        check_spec(base, tmp_path, tg101, CheckOptions(rx=(("PTVX", 40.0),)))
