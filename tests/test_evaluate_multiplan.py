"""Several plans (one per lesion): lesions on their own plan, organs on the composite, no silent
conversion of physical limits across fractionations, EQD2 limits on the voxel-wise sum."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from evaluation_synth import case, cylinder, dose, gaussian, grid, plan, sample, sphere

from rtcheck.pipeline import CheckOptions, check_case
from rtcheck.result import Status, Verdict

G = grid((-70.0, -50.0, -50.0), (70.0, 50.0, 50.0), 2.0)
S = 15.57
A, B = (-30.0, 0.0, 0.0), (30.0, 0.0, 0.0)
CORD = (14.0, 12.0, 4.0)  # x, y, radius: between the lesions, nearer B
_CORD_EQD2 = """\
      - structure: SpinalCord
        metric: "Max[EQD2Gy]"
        comparator: "<"
        limits: {optimal: 10, mandatory: 200}
        source: T1
"""
_CORD_PHYSICAL = """\
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {mandatory: 200},
         source: T1}
"""
_PTV = """\
      - {structure: PTV, metric: "V100%[%]", comparator: ">=", limits: {mandatory: 90},
         source: T1, applies_to: target}
"""
PROTOCOL = (
    """\
format: 1
id: eqd2test
title: EQD2 test protocol (synthetic limits)
version: "test"
citation: "synthetic limits for tests; no clinical meaning"
sources:
  T1: {citation: "test fixture"}
levels: [optimal, mandatory]
point_max: Max
alpha_beta: {default: 3, structures: {SpinalCord: 2}, source: T1}
tables:
  FX_A:
    constraints:
"""
    + _CORD_EQD2
    + _CORD_PHYSICAL
    + _PTV
    + """\
  FX_B:
    constraints:
"""
    + _CORD_EQD2
    + _PTV
)


def _protocol(tmp_path: Path, fx_a: int, fx_b: int) -> str:
    tables = PROTOCOL.replace("FX_A", str(fx_a))
    if fx_a == fx_b:  # one table only
        tables = tables[: tables.index("  FX_B:")]
    tables = tables.replace("FX_B", str(fx_b))
    path = tmp_path / "eqd2test.yaml"
    path.write_text(textwrap.dedent(tables), encoding="utf-8")
    return str(path)


def _case(fx_a: int, fx_b: int, rx_a: float = 30.0, rx_b: float = 50.0):
    pa = plan("PA", fx_a, [("PTV_A", rx_a, 1)])
    pb = plan("PB", fx_b, [("PTV_B", rx_b, 2)])
    peak = math.exp(121.0 / S**2)
    da = sample(G, gaussian(A, rx_a * peak, S))
    db = sample(G, gaussian(B, rx_b * peak, S))
    rois = [
        sphere(1, "PTV_A", "PTV", A, 10.0),
        sphere(2, "PTV_B", "PTV", B, 10.0),
        cylinder(3, "SpinalCord", "ORGAN", CORD[0], CORD[1], CORD[2], -40.0, 40.0),
    ]
    return case(rois, [dose(G, da, pa), dose(G, db, pb)], [pa, pb]), da, db


def _cord_max(values: np.ndarray) -> float:
    """Maximum over the cord of the trilinear interpolation of voxel ``values``, by dense
    sampling (an independent re-implementation, not the DVH engine)."""
    step = 0.1
    u = np.arange(-CORD[2], CORD[2] + step / 2, step)
    xx, yy = np.meshgrid(u, u, indexing="ij")
    keep = np.hypot(xx, yy) <= CORD[2]
    ang = np.radians(np.arange(0.0, 360.0, 0.25))  # and the boundary itself, densely
    px = np.concatenate((xx[keep], CORD[2] * np.cos(ang))) + CORD[0]
    py = np.concatenate((yy[keep], CORD[2] * np.sin(ang))) + CORD[1]
    zs = np.arange(-40.0, 40.0 + step / 2, 0.5)
    pts = np.column_stack((np.tile(px, zs.size), np.tile(py, zs.size), np.repeat(zs, px.size)))
    f = (pts - np.asarray(G.origin)) / 2.0  # fractional (i, j, k)
    i0 = np.floor(f).astype(int)
    t = f - i0
    out = np.zeros(len(pts))
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                w = (t[:, 0] if di else 1 - t[:, 0]) * (t[:, 1] if dj else 1 - t[:, 1])
                w = w * (t[:, 2] if dk else 1 - t[:, 2])
                out += w * values[i0[:, 2] + dk, i0[:, 1] + dj, i0[:, 0] + di]
    return float(out.max())


def _eqd2(d: np.ndarray, n: int, ab: float) -> np.ndarray:
    return d * (d / n + ab) / (2.0 + ab)


def test_mixed_fractionation_physical_limits_are_not_converted(tmp_path: Path) -> None:
    c, da, db = _case(3, 5)
    r = check_case(c, _protocol(tmp_path, 3, 5))
    physical = next(x for x in r.constraints if x.metric == "Max[Gy]")
    assert physical.status is Status.NOT_EVALUATED
    assert "different numbers of fractions (3, 5)" in physical.reason
    assert "no silent conversion" in physical.reason
    eqd2 = [x for x in r.constraints if x.metric == "Max[EQD2Gy]"]
    assert len(eqd2) == 1  # the same limit in both tables is evaluated once
    row = eqd2[0]
    assert row.status is Status.PASS and row.dose_basis == "EQD2(a/b=2)"
    assert row.level == "mandatory"
    assert row.value == pytest.approx(_cord_max(_eqd2(da, 3, 2.0) + _eqd2(db, 5, 2.0)), rel=1e-3)
    assert "alpha/beta 2 Gy" in row.note
    assert r.plan.fractions is None and dict(r.plan.alpha_beta) == {"SpinalCord": 2.0}
    assert "different numbers of fractions" in r.plan.dose_summation
    assert r.verdict is Verdict.INCOMPLETE  # the physical row could not be evaluated


def test_alpha_beta_override(tmp_path: Path) -> None:
    c, da, db = _case(3, 5)
    r = check_case(c, _protocol(tmp_path, 3, 5), CheckOptions(alpha_beta=10.0))
    row = next(x for x in r.constraints if x.metric == "Max[EQD2Gy]")
    assert row.dose_basis == "EQD2(a/b=10)" and "command line" in row.note
    assert row.value == pytest.approx(_cord_max(_eqd2(da, 3, 10.0) + _eqd2(db, 5, 10.0)), rel=1e-3)


def test_each_lesion_on_its_own_plan(tmp_path: Path) -> None:
    c, da, _ = _case(3, 5)
    r = check_case(c, _protocol(tmp_path, 3, 5))
    lesions = {les.name: les for les in r.lesions}
    assert lesions["PTV_A"].plan_label == "PA" and lesions["PTV_A"].fractions == 3
    assert lesions["PTV_B"].plan_label == "PB" and lesions["PTV_B"].fractions == 5
    assert lesions["PTV_A"].prescription_gy == 30.0
    # PTV_A's metrics come from plan A alone: same as a case holding only plan A
    pa = c.plans[0]
    alone = case(c.structure_set.rois[:1], [dose(G, da, pa)], [pa])
    solo = check_case(alone, _protocol(tmp_path, 3, 5)).lesions[0]
    for key in ("D95%[Gy]", "V100%[%]", "CI_Paddick", "R50%"):
        assert lesions["PTV_A"].metrics[key] == pytest.approx(solo.metrics[key], rel=1e-6), key
    v100 = next(x for x in lesions["PTV_A"].constraints if x.metric == "V100%[%]")
    assert v100.status is Status.PASS


def test_same_fractionation_is_summed_physically(tmp_path: Path) -> None:
    c, da, db = _case(5, 5)
    r = check_case(c, _protocol(tmp_path, 5, 5))
    row = next(x for x in r.constraints if x.metric == "Max[Gy]")
    assert row.status is Status.PASS and row.dose_basis == "physical"
    assert row.value == pytest.approx(_cord_max(da + db), rel=1e-3)
    assert r.plan.fractions == 5 and "physical sum of 2 plans" in r.plan.dose_summation


def test_lesion_without_a_plan_is_reported(tmp_path: Path) -> None:
    c, _, _ = _case(3, 5)
    unlinked = [
        p if p.label == "PA" else plan("PB", 5, [("something else", 50.0, None)]) for p in c.plans
    ]
    doses = [
        d
        if d.referenced_plan_uid == c.plans[0].sop_instance_uid
        else dose(G, np.asarray(d.dose_gy), unlinked[1])
        for d in c.doses
    ]
    c2 = case(c.structure_set.rois, doses, unlinked)
    r = check_case(c2, _protocol(tmp_path, 3, 5))
    les = next(x for x in r.lesions if x.name == "PTV_B")
    assert les.plan_label is None
    assert any(f.code == "target.no_plan" for f in r.findings)
    row = les.constraints[0]
    assert row.status is Status.NOT_EVALUATED and "no plan dose" in row.reason
    assert r.verdict is Verdict.INCOMPLETE


def test_structure_outside_one_plans_grid_is_not_evaluated(tmp_path: Path) -> None:
    """Plan B's grid ends at z = 10 mm: its dose on the cord above is unknown, not 0."""
    c, _, _ = _case(5, 5)
    gb = grid((-70.0, -50.0, -50.0), (70.0, 50.0, 10.0), 2.0)
    pb = c.plans[1]
    peak = math.exp(121.0 / S**2)
    cropped = dose(gb, sample(gb, gaussian(B, 50.0 * peak, S)), pb)
    c = replace(c, doses=(c.doses[0], cropped))
    r = check_case(c, _protocol(tmp_path, 5, 5))
    cord = [x for x in r.constraints if x.structure == "SpinalCord"]
    assert len(cord) == 2 and all(x.status is Status.NOT_EVALUATED for x in cord)
    assert all("outside the dose grid of plan PB" in x.reason for x in cord)
    # 30 of the cord's 80 mm lie above z = 10 mm (to the cell-centre rule of the sum's grid)
    volume = math.pi * CORD[2] ** 2 * 30.0 / 1000.0
    assert all(x.reason.startswith(f"{volume:.3g} cc (38 %)") for x in cord)
    assert r.verdict is Verdict.INCOMPLETE
