"""Structures that cannot be vouched for: dropped contours, duplicated rings, contour gaps,
normalised name twins, misspelt protocol structure names (docs/safety.md, bugs 2 to 5)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from rtcheck.errors import ProtocolError, Severity
from rtcheck.geometry.planes import plane_stack
from rtcheck.io.dicom import read_structures
from rtcheck.model import Contour, Roi, StructureSet
from rtcheck.names import find_targets, match_structure, nearest_tg263_name, standard_name
from rtcheck.protocol import load_protocol, read_protocol_file
from rtcheck.resolve import State, StructureResolver
from tests.dicom_factory import contour_item, make_structures, square


def _prism(number: int, name: str, zs, half: float = 5.0, cx: float = 0.0) -> Roi:
    return Roi(number, name, "ORGAN", contours=tuple(Contour(square(cx, 0, half, z)) for z in zs))


# ----------------------------------------------------------------------------- bug 2
def test_unreadable_contour_is_recorded_on_the_roi(tmp_path: Path) -> None:
    short = contour_item(square(0, 0, 5, 2.0))
    short.ContourData = list(short.ContourData)[:-1]  # 3n - 1 values
    bad_point = contour_item(np.array([[0.0, 0.0, 0.0]]), "POINT")
    bad_point.ContourData = ["0", "0"]
    path = make_structures(
        tmp_path / "rs.dcm",
        [
            (1, "Cord", "ORGAN", [contour_item(square(0, 0, 5, 0.0)), short]),
            (2, "Iso", "MARKER", [bad_point]),
        ],
    )
    ss = read_structures(path)
    cord, iso = ss.by_name("Cord"), ss.by_name("Iso")
    assert [n for n, _ in cord.dropped_contours] == [2] and cord.is_incomplete
    assert "contour 2 of ROI 'Cord' could not be read" in cord.dropped_reason()
    assert "11 values" in cord.dropped_reason()
    # a point that cannot be read takes no volume away: the ROI is not incomplete
    assert iso.dropped_contours == () and any(f.code == "roi.contour_dropped" for f in iso.findings)


def test_rois_sharing_a_number_are_both_unusable(tmp_path: Path) -> None:
    """Contour items name ROIs by number only: with a number used twice, the contours may be
    either ROI's, so neither is used (never the plexus contours under the cord's name)."""
    cord = [contour_item(square(0, 0, 5, z)) for z in (0.0, 2.0)]
    plexus = [contour_item(square(40, 0, 5, z)) for z in (0.0, 2.0)]
    path = make_structures(
        tmp_path / "rs.dcm",
        [
            (12, "Spinal Cord", "ORGAN", cord),
            (12, "Lt Brachial Plexus", "ORGAN", plexus),
            (3, "Heart", "ORGAN", [contour_item(square(0, 40, 5, 0.0))]),
        ],
    )
    ss = read_structures(path)
    assert [r.name for r in ss.rois] == ["Spinal Cord", "Lt Brachial Plexus", "Heart"]
    for name in ("Spinal Cord", "Lt Brachial Plexus"):
        roi = ss.by_name(name)
        assert roi.is_incomplete and roi.contours == ()
        assert "ROI number 12 is used by both" in roi.dropped_reason()
    assert not ss.by_name("Heart").is_incomplete
    (dup,) = [f for f in ss.findings if f.code == "structures.duplicate_roi_number"]
    assert dup.severity is Severity.ERROR
    res = StructureResolver(ss, load_protocol("tg101"), find_targets(ss.rois))
    assert res.resolve("SpinalCord").state is State.UNAVAILABLE


def test_incomplete_roi_and_what_is_derived_from_it_are_unavailable() -> None:
    lung_l = _prism(1, "Lung_L", (0, 2, 4))
    lung_l = Roi(1, "Lung_L", contours=lung_l.contours, dropped_contours=((3, "why"),))
    lung_r = _prism(2, "Lung_R", (0, 2, 4), cx=30)
    ss = StructureSet(rois=(lung_l, lung_r))
    res = StructureResolver(ss, load_protocol("tg101"), find_targets(ss.rois))
    left = res.resolve("Lung_L")
    assert left.state is State.UNAVAILABLE and not left.available
    assert "contour 3 of ROI 'Lung_L' could not be read" in left.reason
    lungs = res.resolve("Lungs")  # derived Lung_L + Lung_R: not "not contoured"
    assert lungs.state is State.UNAVAILABLE and "could not be read" in lungs.reason
    assert res.resolve("Lung_R").state is State.ROI


# ----------------------------------------------------------------------------- bug 3
def _volume(roi: Roi) -> tuple[float, list]:
    st = plane_stack(roi)
    return st.volume_cc, [f for f in st.findings if f.code == "structure.duplicate_contours"]


@pytest.mark.parametrize(
    "copy",
    [
        lambda r: r.copy(),
        lambda r: r[::-1].copy(),  # other direction
        lambda r: np.roll(r, 2, axis=0),  # other start vertex
        lambda r: np.vstack([np.roll(r[::-1], 1, axis=0), np.roll(r[::-1], 1, axis=0)[:1]]),
        lambda r: r + np.array([0.0005, -0.0005, 0.0]),  # within 1e-3 mm
    ],
    ids=["same", "reversed", "shifted", "closed-reversed", "near"],
)
def test_duplicated_ring_counts_once(copy) -> None:
    """10 x 10 mm squares on z = 0, 2, 4 (0.6 cc with end caps); the z = 2 square twice."""
    roi = _prism(1, "Cord", (0, 2, 4))
    dup = Roi(1, "Cord", contours=(*roi.contours, Contour(copy(square(0, 0, 5, 2.0)))))
    volume, found = _volume(dup)
    assert volume == pytest.approx(0.6, abs=1e-12)
    assert len(found) == 1 and found[0].severity is Severity.WARNING
    assert "'Cord'" in found[0].message and "z = 2.00" in found[0].message


def test_triple_ring_counts_once_and_holes_stay_holes() -> None:
    roi = _prism(1, "Cord", (0, 2, 4))
    extra = tuple(Contour(square(0, 0, 5, 2.0)) for _ in range(2))
    assert _volume(Roi(1, "Cord", contours=roi.contours + extra))[0] == pytest.approx(0.6)
    holes = tuple(Contour(square(0, 0, 2, z)) for z in (0, 2, 4))
    volume, found = _volume(Roi(1, "Ring", contours=roi.contours + holes))
    assert volume == pytest.approx(0.6 * 84 / 100) and not found  # (100 - 16) mm^2 per plane


def test_rings_further_apart_than_the_tolerance_are_not_merged() -> None:
    roi = _prism(1, "Cord", (0, 2, 4))
    near = Contour(square(0, 0, 5, 2.0) + np.array([0.002, 0.0, 0.0]))
    _, found = _volume(Roi(1, "Cord", contours=(*roi.contours, near)))
    assert not found


# ----------------------------------------------------------------------------- risk: gaps
def test_large_gap_inside_a_structure_is_a_warning() -> None:
    roi = _prism(1, "SpinalCord", (0, 2, 4, 6, 20, 22, 24))  # 14 mm = 7 spacings
    gaps = [f for f in plane_stack(roi).findings if f.code == "structure.z_gap"]
    assert len(gaps) == 1 and gaps[0].severity is Severity.WARNING
    assert "6.00 to 20.00" in gaps[0].message and "not evaluated" in gaps[0].message


@pytest.mark.parametrize(
    ("zs", "gap"),
    [((0, 2, 4, 6, 20, 22, 24), True), ((0, 2, 6, 8), True), ((10,), True), ((0, 2, 4), False)],
    ids=["large-gap", "missed-slice", "one-plane", "whole"],
)
def test_a_continuous_organ_with_a_gap_is_unavailable(zs, gap) -> None:
    """A cord meets every plane between its ends: planes without contours are an uncontoured
    section (its dose unknown), never separate parts. Ribs may be separate parts."""
    ss = StructureSet(rois=(_prism(1, "SpinalCord", zs), _prism(2, "Rib", zs, cx=40.0)))
    res = StructureResolver(ss, load_protocol("tg101"), find_targets(ss.rois))
    cord = res.resolve("SpinalCord")
    if gap:
        assert cord.state is State.UNAVAILABLE and "one continuous organ" in cord.reason
    else:
        assert cord.state is State.ROI
    assert res.resolve("Rib").state is State.ROI


# ----------------------------------------------------------------------------- bug 4
@pytest.mark.parametrize("twin", ["Spinal Cord", "SPINALCORD", "spinal_cord", "Spinal-Cord"])
def test_exact_name_with_a_normalised_twin_is_ambiguous(twin) -> None:
    m = match_structure("SpinalCord", (), ["SpinalCord", twin, "Heart"])
    assert m.ambiguous and not m.found
    assert set(m.candidates) == {"SpinalCord", twin} and twin in m.reason


def test_exact_name_beside_a_synonym_wins_with_a_warning() -> None:
    m = match_structure("SpinalCord", (), ["SpinalCord", "Cord", "SpinalCord_PRV05"])
    assert m.roi_name == "SpinalCord" and m.candidates == ("Cord",)
    rois = (_prism(1, "SpinalCord", (0, 2)), _prism(2, "Cord", (0, 2), cx=30))
    res = StructureResolver(StructureSet(rois=rois), load_protocol("tg101"), find_targets(rois))
    r = res.resolve("SpinalCord")
    assert r.state is State.ROI and r.roi.name == "SpinalCord"
    (f,) = [f for f in res.report() if f.code == "structure.also_similar"]
    assert f.severity is Severity.WARNING and "'Cord'" in f.message


# ----------------------------------------------------------------------------- bug 5
@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Esophagus", True),
        ("Oesophagus", True),  # synonym
        ("Spinal Cord", True),  # normalised
        ("Lung Lt", True),  # laterality
        ("SpinalCord^Sub", True),  # custom qualifier
        ("Heart~", True),  # partial
        ("SpinalCord_PRV05", True),
        ("OpticNrv_PRV03_L", True),
        ("Esophagus-PTV", True),
        ("PTV_40Gy", True),
        ("Esophagas", False),
        ("SpinalCrod", False),
        ("Organ1", False),
        ("Cord_opt", False),
    ],
)
def test_standard_structure_names(name, ok) -> None:
    assert standard_name(name) is ok


def test_nearest_name_is_suggested() -> None:
    assert nearest_tg263_name("Esophagas") == "Esophagus"
    assert nearest_tg263_name("spinalcrod") == "SpinalCord"


PROTOCOL = """\
format: 1
id: mini
title: Minimal test protocol
version: "1"
citation: Test citation
sources:
  S1: {citation: a source}
levels: [limit]
point_max: Max
tables:
  5:
    constraints:
      - {structure: SpinalCord, metric: "Max[Gy]", comparator: "<", limits: {limit: 30},
         source: S1}
      - {structure: Esophagus, metric: "Max[Gy]", comparator: "<", limits: {limit: 35},
         source: S1}
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "mini.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return read_protocol_file(path)


@pytest.mark.parametrize(
    ("old", "new", "where", "bad", "nearest"),
    [
        ("structure: Esophagus", "structure: Esophagas", "tables.5.constraints.1.structure",
         "Esophagas", "Esophagus"),
        ("levels: [limit]", "levels: [limit]\nderived: {Lungs: Lung_L + Lung_K}",
         "derived.Lungs.expression", "Lung_K", None),
        ("levels: [limit]", "levels: [limit]\nalpha_beta: {structures: {SpinalCrod: 2}}",
         "alpha_beta.structures.SpinalCrod", "SpinalCrod", "SpinalCord"),
    ],
    ids=["row", "derived", "alpha-beta"],
)  # fmt: skip
def test_unknown_structure_name_is_a_protocol_error(tmp_path, old, new, where, bad, nearest):
    with pytest.raises(ProtocolError) as info:
        _load(tmp_path, PROTOCOL.replace(old, new))
    text = str(info.value)
    assert text.startswith(str(tmp_path / "mini.yaml")) and "\n" not in text
    assert f"{where}" in text and f"unknown structure name {bad!r}" in text
    if nearest:
        assert f"nearest TG-263 name: {nearest!r}" in text
    assert "custom_name: true" in text and "extra_structures" in text


def test_centre_specific_names_can_be_declared(tmp_path) -> None:
    row = "structure: Esophagus, metric"
    custom = _load(
        tmp_path, PROTOCOL.replace(row, "structure: Eso_Wall, custom_name: true, metric")
    )
    assert [c.structure for c in custom.tables[5].constraints] == ["SpinalCord", "Eso_Wall"]
    extra = _load(
        tmp_path,
        PROTOCOL.replace(row, "structure: Eso_Wall, metric").replace(
            "levels: [limit]", "levels: [limit]\nextra_structures: [Eso_Wall]"
        ),
    )
    assert extra.extra_structures == ("Eso_Wall",)


@pytest.mark.parametrize(("kind", "warned"), [("CONTROL", True), ("PTV", True), ("ORGAN", False)])
def test_an_organ_typed_as_something_else_is_disclosed(kind, warned) -> None:
    cord = Roi(1, "SpinalCord", kind, contours=_prism(1, "x", (0, 2, 4)).contours)
    ss = StructureSet(rois=(cord,))
    res = StructureResolver(ss, load_protocol("tg101"), find_targets(ss.rois))
    r = res.resolve("SpinalCord")
    codes = [f.code for f in r.findings]
    assert ("structure.type_mismatch" in codes) == warned
