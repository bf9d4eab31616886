"""TG-263 metric grammar and evaluation against closed-form answers.

The reference DVH is a uniform dose distribution on [0, 40) Gy over 100 cc, with exact
extremes 0 and 40 Gy, so V(D) = 100 (40 - D) / 40 cc and D(v) = 40 - 0.4 v Gy.
"""

import numpy as np
import pytest

from rtcheck.dvh import DVH
from rtcheck.errors import MetricSyntaxError, ProtocolError, RtcheckError
from rtcheck.metrics import (
    DoseBasis,
    MetricKind,
    MetricNotComputable,
    Unit,
    describe_point_max,
    evaluate_point_max,
    parse_metric,
    parse_point_max,
    resolve_point_max,
)

N = 40_000
TOL = 2e-3


def uniform(top: float = 40.0, volume: float = 100.0, name: str = "u") -> DVH:
    doses = (np.arange(N) + 0.5) * (top / N)
    return DVH(name, doses, np.full(N, volume / N), dmax_gy=top, dmin_gy=0.0)


def v_cc(d: float) -> float:
    return 100.0 * (40.0 - d) / 40.0


def d_gy(v: float) -> float:
    return 40.0 - 0.4 * v


RX = 30.0
CASES = [
    # metric, prescription, closed-form value
    ("D95%[Gy]", None, d_gy(95.0)),
    ("D0.03cc[Gy]", None, d_gy(0.03)),
    ("D2%[%]", RX, 100.0 * d_gy(2.0) / RX),
    ("V20Gy[%]", None, v_cc(20.0)),  # 100 cc total: cc == %
    ("V20Gy[cc]", None, v_cc(20.0)),
    ("V100%[%]", RX, v_cc(RX)),
    ("V50%[cc]", RX, v_cc(0.5 * RX)),
    ("CV12.5Gy[cc]", None, 100.0 - v_cc(12.5)),
    ("CV12.5Gy[%]", None, 100.0 - v_cc(12.5)),
    ("DC10cc[Gy]", None, d_gy(90.0)),  # highest dose in the coldest 10 cc
    ("DC10%[Gy]", None, d_gy(90.0)),
    ("Mean[Gy]", None, 20.0),
    ("Dmean[Gy]", None, 20.0),
    ("Max[Gy]", None, 40.0),
    ("Dmax[Gy]", None, 40.0),
    ("Min[Gy]", None, 0.0),
    ("Dmin[Gy]", None, 0.0),
    ("Max[%]", RX, 100.0 * 40.0 / RX),
    ("V2000cGy[cc]", None, v_cc(20.0)),
    ("D0.35cc[cGy]", None, 100.0 * d_gy(0.35)),
    ("Mean[cGy]", None, 2000.0),
    ("D35mm3[Gy]", None, d_gy(0.035)),
]


@pytest.mark.parametrize(("text", "rx", "expected"), CASES)
def test_every_form_matches_closed_form(text, rx, expected):
    value = parse_metric(text).evaluate(uniform(), prescription_gy=rx)
    assert value == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize(
    ("text", "kind", "value", "value_unit", "out"),
    [
        ("D95%[Gy]", MetricKind.DOSE_AT_VOLUME, 95.0, Unit.PERCENT, Unit.GY),
        ("D0.03cc[Gy]", MetricKind.DOSE_AT_VOLUME, 0.03, Unit.CC, Unit.GY),
        ("V20Gy[%]", MetricKind.VOLUME_AT_DOSE, 20.0, Unit.GY, Unit.PERCENT),
        ("V100%[%]", MetricKind.VOLUME_AT_DOSE, 100.0, Unit.PERCENT, Unit.PERCENT),
        ("CV12.5Gy[cc]", MetricKind.COLD_VOLUME, 12.5, Unit.GY, Unit.CC),
        ("DC1000cc[Gy]", MetricKind.COLD_VOLUME_DOSE, 1000.0, Unit.CC, Unit.GY),
        ("V2000cGy[cc]", MetricKind.VOLUME_AT_DOSE, 2000.0, Unit.CGY, Unit.CC),
        ("Mean[Gy]", MetricKind.MEAN, None, None, Unit.GY),
        ("Max[cGy]", MetricKind.MAX, None, None, Unit.CGY),
    ],
)
def test_parsed_into_typed_fields(text, kind, value, value_unit, out):
    m = parse_metric(text)
    assert (m.kind, m.value, m.value_unit, m.output_unit) == (kind, value, value_unit, out)
    assert m.basis is DoseBasis.PHYSICAL and m.alpha_beta is None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (" d 0.035 CC [ gy ] ", "D0.035cc[Gy]"),
        ("v20GY[CC]", "V20Gy[cc]"),
        ("Dmax[Gy]", "Max[Gy]"),
        ("dmean[GY]", "Mean[Gy]"),
        ("cv 12.5 gy [cc]", "CV12.5Gy[cc]"),
        ("dc1000CC[gy]", "DC1000cc[Gy]"),
        ("D0.35cc[CGY]", "D0.35cc[cGy]"),
        ("D2cm3[Gy]", "D2cc[Gy]"),
        ("V.5Gy[cc]", "V0.5Gy[cc]"),
    ],
)
def test_whitespace_and_unit_case_are_tolerated(text, canonical):
    m = parse_metric(text)
    assert m.canonical == canonical == str(m)
    assert parse_metric(m.canonical) == m


@pytest.mark.parametrize(
    ("text", "basis", "ab", "label", "canonical"),
    [
        ("D0.03cc[EQD2Gy(a/b=2)]", DoseBasis.EQD2, 2.0, "EQD2(a/b=2)", "D0.03cc[EQD2Gy(a/b=2)]"),
        ("Mean[BED(a/b=10)]", DoseBasis.BED, 10.0, "BED(a/b=10)", "Mean[BED(a/b=10)]"),
        ("Max[EQD2Gy]", DoseBasis.EQD2, None, "EQD2", "Max[EQD2Gy]"),
        ("D2%[eqd2gy(a/b = 3)]", DoseBasis.EQD2, 3.0, "EQD2(a/b=3)", "D2%[EQD2Gy(a/b=3)]"),
        ("V60EQD2Gy(a/b=3)[%]", DoseBasis.EQD2, 3.0, "EQD2(a/b=3)", "V60EQD2Gy(a/b=3)[%]"),
    ],
)
def test_radiobiological_suffixes_state_the_dose_basis(text, basis, ab, label, canonical):
    m = parse_metric(text)
    assert (m.basis, m.alpha_beta, m.basis_label, m.canonical) == (basis, ab, label, canonical)
    assert m.unit_label in ("Gy", "%")
    assert m.needs_alpha_beta is (ab is None)


def test_alpha_beta_can_be_filled_from_a_protocol_default():
    m = parse_metric("Max[EQD2Gy]").with_alpha_beta(3)
    assert m.canonical == "Max[EQD2Gy(a/b=3)]" and not m.needs_alpha_beta
    with pytest.raises(ValueError, match="physical"):
        parse_metric("Max[Gy]").with_alpha_beta(3)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("D95[Gy]", "needs a unit after the number"),
        ("V20Gy", "output unit in brackets"),
        ("Mean[cc]", "gives a dose"),
        ("V20Gy[Gy]", "gives a volume"),
        ("D120%[Gy]", "cannot exceed 100"),
        ("X5[Gy]", "is not a query"),
        ("D5cc[RBE]", "not supported"),
        ("", "empty"),
        ("D5cc[]", "empty"),
        ("V20cc[%]", "not a dose unit"),
        ("D20Gy[Gy]", "not a volume unit"),
        ("D-5cc[Gy]", "is not a query"),
        ("D5cc[Gy]x", "output unit in brackets"),
        ("Max[EQD2Gy(a/b=0)]", "alpha/beta must be positive"),
    ],
)
def test_malformed_metrics_say_what_is_wrong_and_list_accepted_forms(text, fragment):
    with pytest.raises(MetricSyntaxError) as info:
        parse_metric(text)
    message = str(info.value)
    assert fragment in message
    assert "Accepted forms" in message and "CV12.5Gy[cc]" in message
    assert isinstance(info.value, ProtocolError)


def test_percent_of_prescription_needs_the_prescription():
    for text in ("V100%[%]", "D2%[%]", "Max[%]"):
        m = parse_metric(text)
        assert m.needs_prescription
        for rx in (None, 0.0, float("nan")):
            with pytest.raises(MetricNotComputable, match="prescription"):
                m.evaluate(uniform(), prescription_gy=rx)
    assert not parse_metric("D95%[Gy]").needs_prescription  # % of volume, not of Rx


def test_empty_dvh_is_not_computable():
    empty = DVH("Cord", np.zeros(0), np.zeros(0))
    with pytest.raises(MetricNotComputable, match="no volume"):
        parse_metric("Max[Gy]").evaluate(empty)
    assert issubclass(MetricNotComputable, RtcheckError)


def test_volume_larger_than_the_structure_is_not_computable_never_a_silent_min():
    lung = uniform(volume=1000.0, name="Lungs")
    for text in ("D1500cc[Gy]", "DC1500cc[Gy]"):
        with pytest.raises(MetricNotComputable) as info:
            parse_metric(text).evaluate(lung)
        assert "1500 cc" in info.value.reason and "1000 cc" in info.value.reason
    assert parse_metric("D1000cc[Gy]").evaluate(lung) == pytest.approx(0.0, abs=TOL)
    # contour volume 1000 cc, samples summing to a rounding less: D1000cc is the minimum
    doses = (np.arange(N) + 0.5) * (40.0 / N)
    rounded = DVH("Lungs", doses, np.full(N, (1000.0 - 1e-10) / N), structure_volume_cc=1000.0)
    assert parse_metric("D1000cc[Gy]").evaluate(rounded) == pytest.approx(0.0, abs=TOL)


def test_volume_outside_the_dose_grid_is_not_computable():
    # 1000 cc sampled of a 1200 cc structure: D1100cc is unknown, not the minimum.
    doses = (np.arange(N) + 0.5) * (40.0 / N)
    dvh = DVH("Lungs", doses, np.full(N, 1000.0 / N), structure_volume_cc=1200.0)
    with pytest.raises(MetricNotComputable, match="inside the dose grid"):
        parse_metric("D1100cc[Gy]").evaluate(dvh)


def test_cold_volume_and_volume_add_up_to_the_total():
    dvh = uniform()
    for dose in (0.5, 7.0, 12.5, 33.3):
        v = parse_metric(f"V{dose}Gy[cc]").evaluate(dvh)
        cv = parse_metric(f"CV{dose}Gy[cc]").evaluate(dvh)
        assert v + cv == pytest.approx(100.0, abs=1e-9)


def test_critical_volume_forms_agree():
    """CV{T}Gy[cc] >= x  <=>  DC{x}cc[Gy] <= T (constraints.md section 2)."""
    dvh = uniform()
    cv = parse_metric("CV12.5Gy[cc]").evaluate(dvh)  # 31.25 cc below 12.5 Gy
    assert cv == pytest.approx(31.25, abs=TOL)
    assert parse_metric(f"DC{cv}cc[Gy]").evaluate(dvh) == pytest.approx(12.5, abs=TOL)


def test_scaling_the_dose_scales_dose_metrics_and_moves_volume_metrics():
    dvh, k = uniform(), 1.7
    scaled = dvh.scaled(k)
    for text in ("D95%[Gy]", "D0.03cc[Gy]", "DC10cc[Gy]", "Mean[Gy]", "Max[Gy]"):
        m = parse_metric(text)
        assert m.evaluate(scaled) == pytest.approx(k * m.evaluate(dvh), rel=1e-9)
    assert parse_metric(f"V{20 * k}Gy[cc]").evaluate(scaled) == pytest.approx(
        parse_metric("V20Gy[cc]").evaluate(dvh), abs=1e-6
    )


def test_point_max_definitions():
    dvh = uniform()
    d0035 = parse_point_max("D0.035cc")
    assert d0035.canonical == "D0.035cc[Gy]"
    assert parse_point_max("Max").kind is MetricKind.MAX
    assert evaluate_point_max(dvh, parse_point_max("Max")) == pytest.approx(40.0)
    assert evaluate_point_max(dvh, d0035) == pytest.approx(d_gy(0.035), abs=TOL)
    assert evaluate_point_max(dvh, d0035, output_unit=Unit.PERCENT, prescription_gy=RX) == (
        pytest.approx(100 * d_gy(0.035) / RX, abs=TOL)
    )
    resolved = resolve_point_max(parse_metric("Max[%]"), d0035)
    assert resolved.canonical == "D0.035cc[%]"
    assert resolve_point_max(parse_metric("D2cc[Gy]"), d0035).canonical == "D2cc[Gy]"
    assert "0.035 cc" in describe_point_max(d0035)
    assert "maximum" in describe_point_max(parse_point_max("Max[Gy]"))
    for bad in ("Mean", "D2%", "V20Gy[cc]", "D0.03cc[%]"):
        with pytest.raises(MetricSyntaxError, match="point-max"):
            parse_point_max(bad)


def test_metrics_are_immutable_and_hashable():
    m = parse_metric("D95%[Gy]")
    with pytest.raises(AttributeError):
        m.value = 90.0  # type: ignore[misc]
    assert {m, parse_metric("d95%[gy]")} == {m}
    assert repr(m) == "Metric('D95%[Gy]')"
