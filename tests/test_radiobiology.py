"""LQ conversions against hand-computed values (arithmetic written out in each test)."""

from __future__ import annotations

import numpy as np
import pytest

from rtcheck.radiobiology import (
    AlphaBeta,
    bed,
    convert,
    default_alpha_beta,
    dose_basis_label,
    eqd2,
    eqdx,
    isoeffective_dose,
    organ_class,
    physical_from_bed,
    physical_from_eqd2,
    resolve_alpha_beta,
)


def test_bed_and_eqd2_50gy_5fx_ab10() -> None:
    # d = 50/5 = 10 Gy; BED = 50 * (1 + 10/10) = 100; EQD2 = 100 / (1 + 2/10) = 83.333...
    assert bed(50.0, 5, 10.0) == pytest.approx(100.0, rel=1e-12)
    assert eqd2(50.0, 5, 10.0) == pytest.approx(250.0 / 3.0, rel=1e-12)


@pytest.mark.parametrize(
    ("total", "n", "ab", "bed_gy", "eqd2_gy"),
    [
        # 55 Gy/5 fx, a/b 3: d = 11; BED = 55 * (1 + 11/3) = 770/3; EQD2 = BED / (5/3) = 154
        (55.0, 5, 3.0, 770.0 / 3.0, 154.0),
        # 60 Gy/8 fx, a/b 3: d = 7.5; BED = 60 * 3.5 = 210; EQD2 = 210 / (5/3) = 126
        (60.0, 8, 3.0, 210.0, 126.0),
        # 30 Gy/1 fx, a/b 2: BED = 30 * (1 + 15) = 480; EQD2 = 480 / 2 = 240
        (30.0, 1, 2.0, 480.0, 240.0),
        # 60 Gy/30 fx, a/b 3: d = 2 -> EQD2 = physical dose; BED = 60 * (1 + 2/3) = 100
        (60.0, 30, 3.0, 100.0, 60.0),
        # 34 Gy/1 fx, a/b 10: BED = 34 * (1 + 3.4) = 149.6; EQD2 = 149.6 / 1.2 = 124.666...
        (34.0, 1, 10.0, 149.6, 149.6 / 1.2),
    ],
)
def test_hand_computed_values(
    total: float, n: int, ab: float, bed_gy: float, eqd2_gy: float
) -> None:
    assert bed(total, n, ab) == pytest.approx(bed_gy, rel=1e-12)
    assert eqd2(total, n, ab) == pytest.approx(eqd2_gy, rel=1e-12)
    assert physical_from_eqd2(eqd2_gy, n, ab) == pytest.approx(total, rel=1e-12)
    assert physical_from_bed(bed_gy, n, ab) == pytest.approx(total, rel=1e-12)


def test_eqd2_closed_form_agrees_with_dvhmetrics_form() -> None:
    # EQD2 = D * (d + a/b) / (2 + a/b), the second form given in constraints.md section 9.
    d_tot = np.array([0.0, 5.0, 20.0, 48.0])
    n, ab = 4, 2.5
    expected = d_tot * (d_tot / n + ab) / (2.0 + ab)
    np.testing.assert_allclose(eqd2(d_tot, n, ab), expected, rtol=1e-13)


def test_eqd3_reference() -> None:
    # EQD at 3 Gy/fx: 60 Gy/20 fx (d = 3) is its own EQD3 for any a/b.
    assert eqdx(60.0, 20, 2.0, 3.0) == pytest.approx(60.0, rel=1e-12)


def test_isoeffective_dose_matches_reference_formula() -> None:
    # 50 Gy/5 fx, a/b 10 -> 25 fx. Reference (S3):
    # D' = N'(-ab + sqrt(ab^2 + 4(N d^2 + N d ab)/N'))/2
    # = 25 * (-10 + sqrt(100 + 4 * (500 + 500) / 25)) / 2 = 25 * (sqrt(260) - 10) / 2 = 76.556...
    ref = 25 * (-10 + np.sqrt(260.0)) / 2
    assert isoeffective_dose(50.0, 5, 25, 10.0) == pytest.approx(ref, rel=1e-12)
    assert ref == pytest.approx(76.5564, abs=1e-4)
    # Same BED in the new schedule:
    assert bed(ref, 25, 10.0) == pytest.approx(100.0, rel=1e-12)


def test_isoeffective_random_against_literal_formula() -> None:
    rng = np.random.default_rng(1)
    total = rng.uniform(1, 80, 50)
    n = rng.integers(1, 40, 50)
    n2 = rng.integers(1, 40, 50)
    ab = rng.uniform(1, 15, 50)
    d = total / n
    literal = n2 * (-ab + np.sqrt(ab**2 + 4 * (n * d**2 + n * d * ab) / n2)) / 2
    np.testing.assert_allclose(isoeffective_dose(total, n, n2, ab), literal, rtol=1e-10)


def test_vectorised_and_broadcast() -> None:
    doses = np.array([[10.0, 20.0], [30.0, 40.0]])
    ab = np.array([2.0, 10.0])  # broadcast along the last axis
    out = eqd2(doses, 5, ab)
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    # [0,1]: 20 Gy/5 fx, a/b 10: 20 * (4 + 10) / 12 = 23.333...
    assert out[0, 1] == pytest.approx(20 * 14 / 12, rel=1e-12)
    # [1,0]: 30 Gy/5 fx, a/b 2: 30 * (6 + 2) / 4 = 60
    assert out[1, 0] == pytest.approx(60.0, rel=1e-12)
    assert isinstance(bed(10.0, 1, 3.0), float)


def test_zero_dose_is_zero() -> None:
    assert eqd2(0.0, 3, 3.0) == 0.0
    assert physical_from_eqd2(0.0, 3, 3.0) == 0.0


@pytest.mark.parametrize(
    ("total", "n", "ab"), [(-1.0, 5, 3.0), (10.0, 0, 3.0), (10.0, 2.5, 3.0), (10.0, 5, 0.0)]
)
def test_invalid_inputs(total: float, n: float, ab: float) -> None:
    with pytest.raises(ValueError):
        eqd2(total, n, ab)


def test_convert_dispatch() -> None:
    assert convert(50.0, 5, 10.0, "physical") == 50.0
    assert convert(50.0, 5, 10.0, "bed") == pytest.approx(100.0)
    assert convert(50.0, 5, 10.0, "EQD2") == pytest.approx(250.0 / 3.0)
    with pytest.raises(ValueError):
        convert(50.0, 5, 10.0, "TCP")


def test_dose_basis_label() -> None:
    assert dose_basis_label("physical") == "physical"
    assert dose_basis_label("eqd2", 2.0) == "EQD2(a/b=2)"
    assert dose_basis_label("BED", 10.0) == "BED(a/b=10)"
    with pytest.raises(ValueError):
        dose_basis_label("EQD2")


@pytest.mark.parametrize(
    ("name", "itype", "cls"),
    [
        ("SpinalCord", None, "nervous"),
        ("SpinalCord_PRV03", None, "nervous"),
        ("Brainstem", None, "nervous"),
        ("CaudaEquina", None, "nervous"),
        ("SacralPlex", None, "nervous"),
        ("OpticNrv_L", None, "nervous"),
        ("OpticChiasm", None, "nervous"),
        ("BrachialPlex_R", None, "nervous"),
        ("Lung_L", None, "late"),
        ("Heart", None, "late"),
        ("Esophagus", "ORGAN", "late"),
        ("Liver", None, "late"),
        ("PTV_Lung_55", None, "tumour"),
        ("GTV1", None, "tumour"),
        ("Lesion1", "PTV", "tumour"),
    ],
)
def test_organ_class(name: str, itype: str | None, cls: str) -> None:
    assert organ_class(name, itype) == cls


def test_default_values_and_sources() -> None:
    assert default_alpha_beta("SpinalCord").value == 2.0
    assert default_alpha_beta("Lung_R").value == 3.0
    assert default_alpha_beta("PTV1").value == 10.0
    for name in ("SpinalCord", "Lung_R", "PTV1"):
        assert "not consensus" in default_alpha_beta(name).source


def test_resolution_order() -> None:
    # command line > protocol > default
    a = resolve_alpha_beta("SpinalCord", override=4.0, protocol=2.5)
    assert a == AlphaBeta(4.0, "command line (--alpha-beta)")
    b = resolve_alpha_beta("SpinalCord", protocol=2.5, protocol_name="tg101")
    assert b.value == 2.5 and "protocol tg101" in b.source
    c = resolve_alpha_beta("SpinalCord")
    assert c.value == 2.0 and c.organ_class == "nervous"
    with pytest.raises(ValueError):
        resolve_alpha_beta("Heart", override=-1.0)
