"""Summing plans on one grid must not turn a failing value into a pass (docs/evaluation.md).

Plan A's dose has a sharp peak on one of its own 4 mm grid nodes; plan B (3 mm grid, shifted)
is a linear field. The summation grid (3 mm, B's) misses A's node, so a DVH on the summed grid
reads the maximum well below the exact sum of the two plans' own trilinear doses. The truth is
computed here independently: A's trilinear interpolation by hand, B's formula (trilinear
interpolation reproduces a linear field exactly), dense samples of the structure's slab model.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from evaluation_synth import case, dose, gaussian, grid, plan, sample, sphere

from rtcheck.doseset import dose_set
from rtcheck.dvh.compute import compute_dvh
from rtcheck.pipeline import check_case
from rtcheck.result import Status

GA = grid((-40.0, -40.0, -40.0), (40.0, 40.0, 40.0), 4.0)  # a node at (0, 0, 0)
GB = grid((-40.3, -40.3, -40.3), (39.2, 39.2, 39.2), 3.0)
PEAK_A, SIGMA_A = 12.0, 10.0
CENTRE, RADIUS = (1.0, -0.5, 0.3), 6.0


def _b(x: np.ndarray) -> np.ndarray:
    return 6.0 + 0.05 * x


def _eqd2(d: np.ndarray, n: int, ab: float = 2.0) -> np.ndarray:
    return d * (d / n + ab) / (2.0 + ab)


def _case(fx_a: int, fx_b: int):
    pa = plan("PA", fx_a, [("PTV_A", 10.0, None)])
    pb = plan("PB", fx_b, [("PTV_B", 8.0, None)])  # max of B 7.96 Gy: a plausible dose
    da = sample(GA, gaussian((0.0, 0.0, 0.0), PEAK_A, SIGMA_A))
    db = sample(GB, lambda x, y, z: _b(x) + 0.0 * y)
    roi = sphere(3, "SpinalCord", "ORGAN", CENTRE, RADIUS, dz=1.0)
    return case([roi], [dose(GA, da, pa), dose(GB, db, pb)], [pa, pb]), da, roi


def _trilinear_a(values: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Plan A's trilinear interpolation, by hand (4 mm grid from -40 mm)."""
    f = (pts + 40.0) / 4.0
    i0 = np.floor(f).astype(int)
    t = f - i0
    out = np.zeros(len(pts))
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                w = (t[:, 0] if di else 1 - t[:, 0]) * (t[:, 1] if dj else 1 - t[:, 1])
                w = w * (t[:, 2] if dk else 1 - t[:, 2])
                out += w * values[i0[:, 2] + dk, i0[:, 1] + dj, i0[:, 0] + di]
    return out


def _slab_points(roi, step: float = 0.2) -> np.ndarray:
    """Uniform points of the slab model (each contour's n-gon extruded +-0.5 mm)."""
    out = []
    u = np.arange(-RADIUS - 1, RADIUS + 1, step) + step / 2
    xx, yy = np.meshgrid(u + CENTRE[0], u + CENTRE[1], indexing="ij")
    for contour in roi.contours:
        poly = np.asarray(contour.points)[:, :2]
        z = float(np.asarray(contour.points)[0, 2])
        r = float(np.hypot(*(poly[0] - CENTRE[:2])))
        n = len(poly)
        # inside the regular n-gon of circumradius r: the apothem test in every edge direction
        ang = np.arctan2(yy - CENTRE[1], xx - CENTRE[0])
        sector = np.mod(ang, 2 * np.pi / n) - np.pi / n
        rho = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
        inside = rho * np.cos(sector) <= r * math.cos(math.pi / n)
        for dz in np.arange(-0.5 + step / 2, 0.5, step):
            out.append(np.column_stack([xx[inside], yy[inside], np.full(inside.sum(), z + dz)]))
    return np.vstack(out)


def _truth(da: np.ndarray, roi, fx: tuple[int, int] | None) -> tuple[float, float]:
    """Exact (max, mean) of the sum of the plans' own doses over the structure."""
    pts = _slab_points(roi)
    pts = np.vstack([pts, [[0.0, 0.0, 0.0]]])  # A's node: the exact sum peaks on a node
    a, b = _trilinear_a(da, pts), _b(pts[:, 0])
    total = a + b if fx is None else _eqd2(a, fx[0]) + _eqd2(b, fx[1])
    return float(total.max()), float(total[:-1].mean())


def _protocol(tmp_path: Path, metric: str, comparator: str, limit: float) -> str:
    text = f"""\
    format: 1
    id: regridtest
    title: Re-gridding test protocol (synthetic limits)
    version: "1"
    citation: synthetic limits for tests; no clinical meaning
    sources:
      T1: {{citation: test fixture}}
    levels: [limit]
    point_max: Max
    tables:
      any:
        constraints:
          - {{structure: SpinalCord, metric: "{metric}", comparator: "{comparator}",
             limits: {{limit: {limit!r}}}, source: T1}}
    """
    path = tmp_path / "regridtest.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


CASES = {
    # name: (fractions A, B), metric, mixed fractionation -> EQD2 (a/b 2) sum
    "physical": ((5, 5), "Max[Gy]", None),
    "eqd2": ((1, 5), "Max[EQD2Gy(a/b=2)]", (1, 5)),
}


def _grid_dvh(c, fx):
    ds = dose_set(c)
    comp = ds.physical() if fx is None else ds.composite_for_alpha_beta(2.0)
    return compute_dvh(comp.dose, c.structure_set.rois[0])


@pytest.mark.parametrize("name", CASES)
def test_a_maximum_hidden_by_the_summed_grid_still_fails(tmp_path: Path, name: str) -> None:
    (fa, fb), metric, fx = CASES[name]
    c, da, roi = _case(fa, fb)
    exact_max, _ = _truth(da, roi, fx)
    on_node = PEAK_A + _b(np.zeros(1))[0] if fx is None else _eqd2(PEAK_A, 1) + _eqd2(6.0, 5)
    assert exact_max == pytest.approx(on_node, rel=1e-12)
    grid_max = _grid_dvh(c, fx).max_gy
    assert grid_max < exact_max - 1.0  # the summed grid misses the peak: the flaw exists
    limit = 0.5 * (grid_max + exact_max)  # a DVH on the summed grid alone would pass
    row = check_case(c, _protocol(tmp_path, metric, "<=", limit)).constraints[0]
    assert row.status is Status.FAIL
    assert row.value == pytest.approx(exact_max, rel=1e-9)
    assert "maximum from the exact per-plan sum" in row.note


@pytest.mark.parametrize("name", CASES)
def test_a_pass_closer_than_the_uncertainty_is_not_a_pass(tmp_path: Path, name: str) -> None:
    (fa, fb), metric, fx = CASES[name]
    c, da, roi = _case(fa, fb)
    exact_max, _ = _truth(da, roi, fx)
    # truly passes by 0.05 Gy, but the summed grid cannot confirm it
    row = check_case(c, _protocol(tmp_path, metric, "<=", exact_max + 0.05)).constraints[0]
    assert row.status is Status.NOT_EVALUATED
    assert row.reason.startswith("within the composite's interpolation uncertainty (+-")
    assert row.value is None and "value" in row.note


@pytest.mark.parametrize("name", CASES)
def test_clear_passes_and_fails_are_unchanged(tmp_path: Path, name: str) -> None:
    (fa, fb), metric, fx = CASES[name]
    c, da, roi = _case(fa, fb)
    exact_max, _ = _truth(da, roi, fx)
    passed = check_case(c, _protocol(tmp_path, metric, "<=", 1.3 * exact_max)).constraints[0]
    assert passed.status is Status.PASS and passed.level == "limit"
    assert passed.value == pytest.approx(exact_max, rel=1e-9)
    failed = check_case(c, _protocol(tmp_path, metric, "<=", 0.7 * exact_max)).constraints[0]
    assert failed.status is Status.FAIL
    lower = check_case(c, _protocol(tmp_path, metric, ">=", 0.7 * exact_max)).constraints[0]
    assert lower.status is Status.PASS  # a lower limit far below: still a pass


def test_a_mean_that_only_the_summed_grid_passes_is_not_a_pass(tmp_path: Path) -> None:
    c, da, roi = _case(5, 5)
    _, exact_mean = _truth(da, roi, None)
    grid_mean = _grid_dvh(c, None).mean_gy
    assert grid_mean < exact_mean - 0.2  # the summed grid underestimates the mean here
    limit = exact_mean - 0.1  # truly fails
    row = check_case(c, _protocol(tmp_path, "Mean[Gy]", "<", limit)).constraints[0]
    assert row.status is Status.NOT_EVALUATED
    assert row.reason.startswith("within the composite's interpolation uncertainty")
    assert "Gy" in row.reason
    clear = check_case(c, _protocol(tmp_path, "Mean[Gy]", "<", exact_mean + 1.0)).constraints[0]
    assert clear.status is Status.PASS
    assert clear.value == pytest.approx(grid_mean, rel=1e-9)  # the reported value: the DVH's
    assert abs(clear.value - exact_mean) < 1.0


def test_a_single_plan_on_its_own_grid_is_not_checked(tmp_path: Path) -> None:
    c, _, _ = _case(5, 5)
    alone = case(c.structure_set.rois, c.doses[:1], c.plans[:1])
    row = check_case(alone, _protocol(tmp_path, "Max[Gy]", "<=", 20.0)).constraints[0]
    assert row.status is Status.PASS and row.value == pytest.approx(PEAK_A, rel=1e-9)
    assert "exact per-plan sum" not in (row.note or "")
