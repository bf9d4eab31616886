"""The DVH object against hand-computed values of simple sample sets."""

import numpy as np
import pytest

from rtcheck.dvh import DVH


def uniform_dvh(n: int = 100_000) -> DVH:
    # Dose uniformly distributed on [0, 10) Gy over 10 cc: V(D) = 10 - D cc, D(v) = 10 - v.
    doses = (np.arange(n) + 0.5) * (10.0 / n)
    return DVH("u", doses, np.full(n, 10.0 / n))


def test_uniform_distribution_matches_closed_form():
    dvh = uniform_dvh()
    assert dvh.volume_cc == pytest.approx(10.0)
    assert dvh.mean_gy == pytest.approx(5.0)
    for v in (0.03, 1.0, 5.0, 9.5):
        assert dvh.dose_at_volume_cc(v) == pytest.approx(10.0 - v, abs=1e-3)
    for d in (0.5, 2.0, 7.5, 9.99):
        assert dvh.volume_at_dose_cc(d) == pytest.approx(10.0 - d, abs=1e-3)
    assert dvh.dose_at_volume_pct(95) == pytest.approx(0.5, abs=1e-3)
    assert dvh.volume_at_dose_pct(2.0) == pytest.approx(80.0, abs=1e-2)


def test_extremes_and_out_of_range_queries():
    dvh = DVH("s", np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]))
    assert dvh.max_gy == 3.0 and dvh.min_gy == 1.0
    assert dvh.volume_at_dose_cc(3.5) == 0.0
    assert dvh.volume_at_dose_cc(0.5) == pytest.approx(3.0)
    assert dvh.dose_at_volume_cc(0.0) == 3.0
    assert dvh.dose_at_volume_cc(10.0) == 1.0


def test_ties_are_merged_and_uniform_dose_is_exact():
    dvh = DVH("flat", np.full(1000, 20.0), np.full(1000, 0.01))
    assert dvh.volume_at_dose_cc(20.0) == pytest.approx(10.0)
    assert dvh.volume_at_dose_cc(20.0001) == 0.0
    assert dvh.dose_at_volume_cc(5.0) == 20.0


def test_scaling_dose_scales_d_metrics():
    dvh = uniform_dvh(10_000)
    k = 1.7
    s = dvh.scaled(k)
    for v in (0.1, 2.0, 8.0):
        assert s.dose_at_volume_cc(v) == pytest.approx(k * dvh.dose_at_volume_cc(v))


def test_partial_coverage_is_visible():
    dvh = DVH("p", np.array([1.0]), np.array([2.0]), structure_volume_cc=3.0)
    assert dvh.outside_volume_cc == pytest.approx(1.0)


def test_empty_dvh_refuses_queries():
    dvh = DVH("e", np.zeros(0), np.zeros(0))
    assert dvh.is_empty
    with pytest.raises(ValueError, match="no volume"):
        _ = dvh.max_gy
