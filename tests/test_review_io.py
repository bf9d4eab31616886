"""Third review of the DICOM readers and contour geometry (docs/io.md, "Third review").

Each test writes a small real DICOM case (``tests/safety_cases.py``: a PTV far from a cord and
an oesophagus, TG-101 5 fx passes) and changes one thing with pydicom the way a real export
can. The oesophagus gets a Gaussian hot spot of 40 Gy at its centre in the scenarios where
the truth is FAIL (TG-101 5 fx: Esophagus Max[Gy] < 35 Gy), so a PASS there is a false PASS.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from rtcheck.geometry.planes import plane_stack
from rtcheck.io.dicom import read_structures
from rtcheck.model import Contour, Roi
from rtcheck.protocol import Protocol, load_protocol
from rtcheck.result import Status, Verdict
from tests.safety_cases import (
    ESO_XY,
    FRAME,
    OTHER_FRAME,
    CaseSpec,
    check_spec,
    circle,
    edit,
    falloff,
    rows,
    with_hotspot,
    write_case,
)

ESO_NUMBER = 5  # base_rois(): Esophagus is ROI 5
ESO_CENTRE = (ESO_XY[0], ESO_XY[1], 0.0)


@pytest.fixture(scope="module")
def tg101() -> Protocol:
    return load_protocol("tg101")


def _hot_eso() -> CaseSpec:
    """Base case with 40 Gy on the oesophagus centre: the truth is Esophagus Max FAIL."""
    return CaseSpec(dose_fn=with_hotspot(falloff(), ESO_CENTRE, 40.0))


def _eso_contour_item(ds):
    return next(r for r in ds.ROIContourSequence if int(r.ReferencedROINumber) == ESO_NUMBER)


def test_hot_oesophagus_fails_unmutated(tmp_path, tg101):
    """Control: the scenario's truth is FAIL on the oesophagus maximum."""
    result = check_spec(_hot_eso(), tmp_path, tg101)
    eso_max = [r for r in rows(result, "Esophagus") if r.metric.startswith("Max")]
    assert result.verdict is Verdict.FAIL
    assert eso_max and eso_max[0].status is Status.FAIL and eso_max[0].value > 35.0


# ----------------------------------------------------------------------------- orphan contours
def test_contours_of_an_unknown_roi_number_block_the_pass(tmp_path, tg101):
    """ROI Contour item renumbered (ReferencedROINumber not in StructureSetROISequence): the
    oesophagus has no contour item of its own and must not be 'not contoured' (old: PASS)."""

    def mutate(files):
        edit(files.rtstruct, lambda ds: setattr(_eso_contour_item(ds), "ReferencedROINumber", 55))

    result = check_spec(_hot_eso(), tmp_path, tg101, mutate=mutate)
    assert result.verdict is not Verdict.PASS
    eso = rows(result, "Esophagus")
    assert eso and all(r.status is Status.NOT_EVALUATED for r in eso)
    assert any("55" in (r.reason or "") for r in eso)


def test_contour_item_without_roi_number_makes_contourless_rois_unusable(tmp_path):
    files = write_case(CaseSpec(), tmp_path)
    edit(files.rtstruct, lambda ds: delattr(_eso_contour_item(ds), "ReferencedROINumber"))
    ss = read_structures(files.rtstruct)
    eso = next(r for r in ss.rois if r.name == "Esophagus")
    cord = next(r for r in ss.rois if r.name == "SpinalCord")
    assert eso.is_incomplete and not eso.contours
    assert not cord.is_incomplete and cord.contours  # has its own contour item


def test_roi_without_roi_number_is_an_error(tmp_path, tg101):
    """A StructureSetROISequence item without ROINumber drops the oesophagus (old: WARNING and
    PASS with the hot oesophagus silently 'not contoured')."""

    def mutate(files):
        def fn(ds):
            item = next(r for r in ds.StructureSetROISequence if r.ROIName == "Esophagus")
            del item.ROINumber

        edit(files.rtstruct, fn)

    result = check_spec(_hot_eso(), tmp_path, tg101, mutate=mutate)
    assert result.verdict is not Verdict.PASS
    assert any(
        f.code == "structures.roi_without_number" and f.severity.name == "ERROR"
        for f in result.findings
    )


# ----------------------------------------------------------------------------- frames
def test_roi_in_another_frame_of_reference_is_not_used(tmp_path, tg101):
    """An ROI whose ReferencedFrameOfReferenceUID differs from the dose's is in other
    coordinates: it is not evaluated and blocks the pass (old: WARNING, cord rows PASS)."""

    def mutate(files):
        def fn(ds):
            item = next(r for r in ds.StructureSetROISequence if r.ROIName == "SpinalCord")
            item.ReferencedFrameOfReferenceUID = OTHER_FRAME

        edit(files.rtstruct, fn)

    result = check_spec(CaseSpec(), tmp_path, tg101, mutate=mutate)
    assert result.verdict is not Verdict.PASS
    cord = rows(result, "SpinalCord")
    assert cord and all(r.status is Status.NOT_EVALUATED for r in cord)
    assert any(OTHER_FRAME in (r.reason or "") for r in cord)


def test_structure_set_frame_is_the_majority_frame(tmp_path):
    """The first ROI in another frame no longer decides the structure set's frame (old: the
    whole case was refused as a frame mismatch with the dose)."""
    files = write_case(CaseSpec(), tmp_path)

    def fn(ds):
        ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = OTHER_FRAME

    edit(files.rtstruct, fn)
    ss = read_structures(files.rtstruct)
    assert ss.frame_of_reference_uid == FRAME
    body = ss.rois[0]
    assert body.is_incomplete and OTHER_FRAME in (body.dropped_reason() or "")
    assert not any(r.is_incomplete for r in ss.rois[1:])


# ----------------------------------------------------------------------------- overlapping
def _shifted_copies(ds, dx_mm: float) -> None:
    """Append to the oesophagus a copy of each contour shifted by ``dx_mm`` along x: a
    contour exported twice with other vertices (not a vertex-exact duplicate)."""
    item = _eso_contour_item(ds)
    extra = []
    for c in item.ContourSequence:
        c2 = copy.deepcopy(c)
        p = np.array(c2.ContourData, float).reshape(-1, 3)
        p[:, 0] += dx_mm
        c2.ContourData = [f"{v:.4f}" for v in p.ravel()]
        extra.append(c2)
    item.ContourSequence = [*item.ContourSequence, *extra]


def test_overlapping_copy_of_contours_blocks_the_pass(tmp_path, tg101):
    """Even-odd of a contour and its 2 mm shifted copy leaves two crescents at the edge: the
    hot centre of the oesophagus vanishes, Max drops from about 44 Gy to about 18 Gy and
    D5cc reads almost 0 Gy (old: verdict PASS, exit 0)."""
    result = check_spec(
        _hot_eso(), tmp_path, tg101, mutate=lambda f: edit(f.rtstruct, _shifted_copies_2mm)
    )
    assert result.verdict is not Verdict.PASS
    errors = [f for f in result.findings if f.code == "structure.overlapping_contours"]
    assert errors and errors[0].severity.name == "ERROR"


def _shifted_copies_2mm(ds) -> None:
    _shifted_copies(ds, 2.0)


def _roi(*rings: np.ndarray) -> Roi:
    return Roi(1, "X", "ORGAN", None, tuple(Contour(r) for r in rings))


def _stack_codes(roi: Roi) -> dict[str, str]:
    from rtcheck.volume import exact_stack

    stack = exact_stack(plane_stack(roi))
    return {f.code: f.severity.name for f in stack.findings}


def test_overlap_measure_spares_holes_and_touching_parts():
    """Analytic: a hole inside its outline and two parts touching within rounding are not
    ambiguous; two squares overlapping by a quarter are (the overlap is 25 of 175 mm^2)."""
    sq = lambda x0, y0, s, z=0.0: np.array(  # noqa: E731
        [[x0, y0, z], [x0 + s, y0, z], [x0 + s, y0 + s, z], [x0, y0 + s, z]]
    )
    hole = _stack_codes(_roi(circle(0, 0, 20, 0.0), circle(0, 0, 5, 0.0)))
    assert "structure.overlapping_contours" not in hole
    touching = _stack_codes(_roi(sq(0, 0, 10), sq(9.999, 0, 10)))
    assert "structure.overlapping_contours" not in touching
    overlap = _stack_codes(_roi(sq(0, 0, 10), sq(5, 5, 10)))
    assert overlap.get("structure.overlapping_contours") == "ERROR"
