"""Safety QA: can rtcheck be made to PASS a plan it cannot vouch for? (geometry and structures)

Each test writes a small real DICOM case (``tests/safety_cases.py``): a PTV far from a cold
spinal cord and oesophagus, so the unmodified case passes TG-101 (5 fx). One thing is then
changed (dose grid cropped, ROI renamed, contours broken...) and the test checks what the
project's non-negotiables demand: a constraint whose structure is missing, ambiguous or leaves
the dose grid is *not evaluated* with the reason, and the verdict is never ``pass``.

Tests marked ``xfail(strict=True, reason="BUG: ...")`` pin behaviour that is wrong today;
``docs/safety.md`` lists each with its reproduction and the function at fault.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rtcheck.model import Contour, Roi
from rtcheck.names import match_structure
from rtcheck.protocol import Protocol, load_protocol
from tests.safety_cases import (
    CORD_XY,
    ESO_XY,
    CaseSpec,
    check_spec,
    circle,
    codes,
    cylinder_roi,
    edit,
    falloff,
    grid,
    hot_cord,
    hot_cord_max_gy,
    point_roi,
    rows,
    with_hotspot,
)

CORD_ROWS = 3  # TG-101 5 fx: D0.35cc, Max, D1.2cc


@pytest.fixture(scope="module")
def tg101() -> Protocol:
    return load_protocol("tg101")


@pytest.fixture(scope="module")
def base() -> CaseSpec:
    return CaseSpec()


def _cord(spec: CaseSpec) -> Roi:
    return next(r for r in spec.rois if r.name == "SpinalCord")


def _not_evaluated(result, structure: str, *words: str) -> None:
    found = rows(result, structure)
    assert found, f"no {structure} rows"
    for row in found:
        assert row.status == "not_evaluated", (row.id, row.status, row.value)
        assert row.value is None
        for w in words:
            assert w in (row.reason or ""), (row.id, row.reason)


# ----------------------------------------------------------------------------- baseline
def test_base_case_passes_with_analytic_cord_values(tmp_path, base, tg101):
    """The unmodified case passes, so every scenario below changes only one thing."""
    r = check_spec(base, tmp_path, tg101)
    assert r.verdict == "pass"
    assert {c.status for c in rows(r, "SpinalCord")} == {"pass"}
    assert len(rows(r, "SpinalCord")) == CORD_ROWS


def test_hot_cord_fails_with_the_analytic_maximum(tmp_path, base, tg101):
    r = check_spec(base.but(dose_fn=hot_cord()), tmp_path, tg101)
    cord_max = next(c for c in rows(r, "SpinalCord") if c.metric == "Max[Gy]")
    assert cord_max.value == pytest.approx(hot_cord_max_gy(), abs=1e-3)
    assert cord_max.status == "fail"
    assert r.verdict == "fail"


# ----------------------------------------------------------------------------- dose grid coverage
def test_cord_partly_outside_grid_is_not_evaluated(tmp_path, base, tg101):
    """Grid cropped at z = -30 mm; the cord reaches -51 mm with a 40 Gy hot spot down there."""
    hot_below = with_hotspot(falloff(), (CORD_XY[0], CORD_XY[1], -45.0), 40.0)
    spec = base.but(geometry=grid(lo=(-60, -60, -30)), dose_fn=hot_below)
    r = check_spec(spec, tmp_path, tg101)
    _not_evaluated(r, "SpinalCord", "outside the dose grid")
    assert r.verdict == "incomplete"
    assert "dose.partial_coverage" in codes(r)


def test_cord_one_plane_beyond_grid_is_not_evaluated(tmp_path, base, tg101):
    """Only the last 2.5 mm (0.2 cc) of the cord lies beyond the last dose plane."""
    r = check_spec(base.but(geometry=grid(lo=(-60, -60, -48.75))), tmp_path, tg101)
    _not_evaluated(r, "SpinalCord", "outside the dose grid")
    assert r.verdict == "incomplete"


def test_cord_ending_on_the_grid_edge_is_evaluated(tmp_path, base, tg101):
    """The cord's end cap (z = -51.25 mm) on the first dose plane: fully covered, evaluated."""
    r = check_spec(
        base.but(geometry=grid(lo=(-60, -60, -51.25), hi=(60, 60, 58.75))), tmp_path, tg101
    )
    assert {c.status for c in rows(r, "SpinalCord")} == {"pass"}
    assert r.verdict == "pass"


def test_cord_entirely_outside_grid_is_not_evaluated(tmp_path, base, tg101):
    r = check_spec(base.but(geometry=grid(hi=(60, 25, 60))), tmp_path, tg101)
    _not_evaluated(r, "SpinalCord", "no volume on the dose grid")
    assert r.verdict == "incomplete"


def test_optional_organ_leaving_grid_still_blocks_the_pass(tmp_path, base, tg101):
    """The oesophagus is not required by TG-101, but a contoured organ off the grid blocks."""
    r = check_spec(base.but(geometry=grid(lo=(-18, -60, -60))), tmp_path, tg101)
    assert {c.status for c in rows(r, "SpinalCord")} == {"pass"}
    _not_evaluated(r, "Esophagus", "outside the dose grid")
    assert r.verdict == "incomplete"


def test_organ_with_zero_dose_inside_grid_passes_with_zero(tmp_path, base, tg101):
    """Legitimate 0 Gy: the organ is on the grid, the dose there is exactly 0."""
    stomach = cylinder_roi(6, "Stomach", "ORGAN", (-35.0, -35.0), 10.0, -20.0, 20.0)

    def dose(x, y, z):
        inside = (x <= -20) & (y <= -20) & (np.abs(z) <= 30)
        return np.where(inside, 0.0, falloff()(x, y, z))

    r = check_spec(base.with_rois(stomach).but(dose_fn=dose), tmp_path, tg101)
    for row in rows(r, "Stomach"):
        assert row.status == "pass"
        assert row.value == 0.0
    assert r.verdict == "pass"


def test_organ_entirely_outside_grid_is_not_a_zero(tmp_path, base, tg101):
    stomach = cylinder_roi(6, "Stomach", "ORGAN", (-35.0, -35.0), 10.0, 70.0, 90.0)
    r = check_spec(base.with_rois(stomach), tmp_path, tg101)
    _not_evaluated(r, "Stomach", "no volume on the dose grid")
    assert r.verdict == "incomplete"


# ----------------------------------------------------------------------------- missing cord
@pytest.mark.parametrize(
    ("cord", "why"),
    [
        (Roi(4, "SpinalCord", "ORGAN"), "required structure not contoured"),
        (point_roi(4, "SpinalCord", (0.0, 35.0, 0.0)), "none closed planar"),
        (None, "required structure not contoured"),
    ],
    ids=["empty-roi", "point-contour-only", "absent"],
)
def test_required_cord_without_volume_blocks(tmp_path, base, tg101, cord, why):
    spec = base.with_rois(*([cord] if cord else []), drop=["SpinalCord"])
    r = check_spec(spec.but(dose_fn=hot_cord()), tmp_path, tg101)
    _not_evaluated(r, "SpinalCord", why)
    assert r.verdict == "incomplete"


def test_cord_drawn_on_sagittal_planes_is_not_used(tmp_path, base, tg101):
    sagittal = []
    for x in np.arange(-5.0, 5.1, 2.5):
        h = float(np.sqrt(max(25.0 - x * x, 0.01)))
        y0, y1 = CORD_XY[1] - h, CORD_XY[1] + h
        sagittal.append(Contour(np.array([[x, y0, -50], [x, y1, -50], [x, y1, 50], [x, y0, 50]])))
    cord = replace(_cord(base), contours=tuple(sagittal))
    r = check_spec(
        base.with_rois(cord, drop=["SpinalCord"]).but(dose_fn=hot_cord()), tmp_path, tg101
    )
    _not_evaluated(r, "SpinalCord")
    assert "roi.contour_dropped" in codes(r)
    assert r.verdict == "incomplete"


# ----------------------------------------------------------------------------- names
def _cold_copy(name: str) -> Roi:
    return cylinder_roi(9, name, "ORGAN", (-40.0, -40.0), 5.0, -50.0, 50.0)


def test_duplicate_roi_names_are_ambiguous(tmp_path, base, tg101):
    r = check_spec(
        base.with_rois(_cold_copy("SpinalCord")).but(dose_fn=hot_cord()), tmp_path, tg101
    )
    _not_evaluated(r, "SpinalCord", "ambiguous")
    assert r.verdict == "incomplete"


def test_cord_and_spinal_cord_are_ambiguous(tmp_path, base, tg101):
    hot = replace(_cord(base), name="Cord")
    spec = base.with_rois(hot, _cold_copy("Spinal Cord"), drop=["SpinalCord"])
    r = check_spec(spec.but(dose_fn=hot_cord()), tmp_path, tg101)
    _not_evaluated(r, "SpinalCord", "ambiguous")
    assert "structure.ambiguous" in codes(r)
    assert r.verdict == "incomplete"


def test_prv_only_is_not_the_cord(tmp_path, base, tg101):
    prv = replace(_cord(base), name="SpinalCord_PRV05")
    r = check_spec(base.with_rois(prv, drop=["SpinalCord"]), tmp_path, tg101)
    _not_evaluated(r, "SpinalCord", "required structure not contoured", "SpinalCord_PRV05")
    assert all(c.matched_roi is None for c in rows(r, "SpinalCord"))
    assert r.verdict == "incomplete"


@pytest.mark.parametrize(
    ("structure", "roi"),
    [
        ("SpinalCord", "SpinalCord_PRV05"),
        ("SpinalCord", "PRV_SpinalCord"),
        ("SpinalCord", "SpinalCord+5mm"),
        ("SpinalCord", "SpinalCord_5mm"),
        ("SpinalCord", "Cord_PRV3"),
        ("SpinalCord", "SpinalCordPRV"),
        ("SpinalCord", "z_SpinalCord"),
        ("SpinalCord", "SpinalCord_opt"),
        ("SpinalCord", "SpinalCord~"),
        ("SpinalCord", "SpinalCord^Sub"),
        ("SpinalCord", "SpinalCord_eval"),
        ("Esophagus", "Esophagus-PTV"),
        ("Esophagus", "Esophagus_PRV"),
        ("Esophagus", "Esophagus_crop"),
        ("Heart", "Heart-PTV"),
        ("Lungs", "Lung_L"),
        ("Lungs", "Lungs-GTV"),
        ("BrachialPlex_L", "BrachialPlex_R"),
        ("BrachialPlex_L", "Brachial Plexus"),
    ],
)
def test_lookalike_names_never_match(structure, roi):
    """A PRV, a subtraction, a margin or the other side is not the organ (a PRV is colder)."""
    m = match_structure(structure, (), ["PTV1", roi])
    assert not m.found, (structure, roi, m)


@pytest.mark.parametrize(
    "roi", ["Spinal Cord", "SPINAL_CORD", "spinal cord", "Cord", "Spinal-Cord"]
)
def test_usual_cord_spellings_match(roi):
    m = match_structure("SpinalCord", (), ["PTV1", roi])
    assert m.roi_name == roi


def test_exact_name_beside_a_lookalike_is_disclosed(tmp_path, base, tg101):
    """Old cold 'SpinalCord' + current hot 'Spinal Cord': the report must name the other ROI."""
    hot = replace(_cord(base), name="Spinal Cord")
    spec = base.with_rois(hot, _cold_copy("SpinalCord"), drop=["SpinalCord"])
    r = check_spec(spec.but(dose_fn=hot_cord()), tmp_path, tg101)
    assert any("Spinal Cord" in f.message for f in r.findings)


def test_exact_name_beside_a_normalised_twin_is_not_a_pass(tmp_path, base, tg101):
    hot = replace(_cord(base), name="Spinal Cord")
    spec = base.with_rois(hot, _cold_copy("SpinalCord"), drop=["SpinalCord"])
    r = check_spec(spec.but(dose_fn=hot_cord()), tmp_path, tg101)
    assert r.verdict != "pass"


# ----------------------------------------------------------------------------- broken contours
def _narrow_hot():
    """40 Gy on the cord at z = 0 only (sigma 1.5 mm): a plane missing there hides it."""
    return hot_cord(sigma=1.5)


def test_narrow_hot_spot_on_intact_cord_fails(tmp_path, base, tg101):
    r = check_spec(base.but(dose_fn=_narrow_hot()), tmp_path, tg101)
    cord_max = next(c for c in rows(r, "SpinalCord") if c.metric == "Max[Gy]")
    assert cord_max.value == pytest.approx(hot_cord_max_gy(), abs=1e-3)
    assert r.verdict == "fail"


def test_duplicated_contour_does_not_hide_a_hot_plane(tmp_path, base, tg101):
    cord = _cord(base)
    twin = next(c for c in cord.contours if abs(c.z) < 0.1)
    dup = replace(cord, contours=(*cord.contours, Contour(twin.points.copy())))
    r = check_spec(
        base.with_rois(dup, drop=["SpinalCord"]).but(dose_fn=_narrow_hot()), tmp_path, tg101
    )
    assert r.verdict != "pass"


def _drop_last_value_at_z0(files) -> None:
    """ContourData of the cord's z = 0 contour loses its last value (3n - 1 numbers)."""

    def fn(ds) -> None:
        for rc in ds.ROIContourSequence:
            if rc.ReferencedROINumber != 4:
                continue
            for c in rc.ContourSequence:
                values = list(c.ContourData)
                if abs(float(values[2])) < 0.1:
                    c.ContourData = values[:-1]

    edit(files.rtstruct, fn)


def test_dropped_contour_does_not_leave_a_pass(tmp_path, base, tg101):
    r = check_spec(base.but(dose_fn=_narrow_hot()), tmp_path, tg101, mutate=_drop_last_value_at_z0)
    assert "roi.contour_dropped" in codes(r)
    assert r.verdict != "pass"


def _drop_last_value_of_ptv_mid_contour(files) -> None:
    """ContourData of the PTV's middle contour loses its last value (3n - 1 numbers)."""

    def fn(ds) -> None:
        for rc in ds.ROIContourSequence:
            if rc.ReferencedROINumber != 2:
                continue
            seq = rc.ContourSequence
            mid = seq[len(seq) // 2]
            mid.ContourData = list(mid.ContourData)[:-1]

    edit(files.rtstruct, fn)


def test_lesion_with_a_dropped_contour_blocks_the_pass(tmp_path, base, tg101):
    """The safe base case passes; losing one PTV contour must leave it incomplete."""
    r = check_spec(base, tmp_path, tg101, mutate=_drop_last_value_of_ptv_mid_contour)
    incomplete = [f for f in r.findings if f.code == "target.incomplete"]
    assert incomplete and incomplete[0].severity == "error"
    assert "PTV1" in incomplete[0].message
    assert r.verdict == "incomplete"


def test_overlapping_blob_is_disclosed(tmp_path, base, tg101):
    cord = _cord(base)
    blob = tuple(
        Contour(circle(CORD_XY[0] + 2.0, CORD_XY[1], 4.0, c.z))
        for c in cord.contours
        if abs(c.z) < 4
    )
    spec = base.with_rois(replace(cord, contours=cord.contours + blob), drop=["SpinalCord"])
    r = check_spec(spec.but(dose_fn=hot_cord()), tmp_path, tg101)
    crossing = [f for f in r.findings if f.code == "structure.crossing_contours"]
    assert crossing and crossing[0].severity == "warning"


# ----------------------------------------------------------------------------- orientation
@pytest.mark.parametrize("position", ["FFS", "HFP", "FFP", "HFS-descending"])
def test_patient_position_does_not_change_the_result(tmp_path, base, tg101, position):
    """Same dose in patient space on differently oriented grids: same verdict and values."""
    ref = check_spec(base.but(dose_fn=hot_cord()), tmp_path / "hfs", tg101)
    if position == "HFS-descending":
        g = grid()
        geo = replace(g, origin=(g.origin[0], g.origin[1], 60.0), slice_dir=(0.0, 0.0, -1.0))
        spec = base.but(geometry=geo, dose_fn=hot_cord())
    else:
        spec = base.but(
            geometry=grid(orientation=position), orientation=position, dose_fn=hot_cord()
        )
    r = check_spec(spec, tmp_path / "other", tg101)
    assert r.verdict == ref.verdict == "fail"
    want = {c.id: (c.status, c.value) for c in ref.constraints}
    got = {c.id: (c.status, c.value) for c in r.constraints}
    assert got.keys() == want.keys()
    for key, (status, value) in want.items():
        assert got[key][0] == status, key
        if value is not None:
            assert got[key][1] == pytest.approx(value, abs=1e-6), key
    for a, b in zip(ref.lesions, r.lesions, strict=True):
        for k, v in a.metrics.items():
            assert b.metrics[k] == pytest.approx(v, abs=1e-6), k


# ----------------------------------------------------------------------------- small organs
def test_d_metric_larger_than_the_organ_is_not_the_minimum(tmp_path, base, tg101):
    """D5cc on a 1.8 cc oesophagus: not evaluated (not its minimum dose)."""
    small = cylinder_roi(5, "Esophagus", "ORGAN", ESO_XY, 5.0, -10.0, 10.0)
    r = check_spec(base.with_rois(small, drop=["Esophagus"]), tmp_path, tg101)
    d5 = next(c for c in rows(r, "Esophagus") if c.metric == "D5cc[Gy]")
    assert d5.status == "not_evaluated"
    assert d5.value is None
    assert "needs 5 cc" in (d5.reason or "")
    assert r.verdict == "incomplete"
