"""RT Structure Set reader: pydicom's rtstruct.dcm, Nelms sphere, synthetic edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from rtcheck.errors import InputError
from rtcheck.io.dicom import read_structures
from rtcheck.model import ContourType
from tests.dicom_factory import contour_item, make_structures, square, uid

DATA = Path(__file__).parent / "data"


def test_pydicom_rtstruct() -> None:
    ss = read_structures(get_testdata_file("rtstruct.dcm"))  # a file without preamble
    assert [(r.number, r.name, r.interpreted_type) for r in ss.rois] == [
        (1, "patient", "EXTERNAL"),
        (2, "Isocenter 1", "ISOCENTER"),
        (3, "Isocenter 2", "ISOCENTER"),
    ]
    patient = ss.by_number(1)
    assert patient.color == (220, 160, 120)
    assert len(patient.dvh_contours) == 3 and [len(c.points) for c in patient.contours] == [5, 6, 6]
    iso = ss.by_name("Isocenter 1")
    assert iso.contours[0].geometric_type is ContourType.POINT and iso.is_empty
    assert any(f.code == "roi.contours_ignored" and "POINT" in f.message for f in iso.findings)
    assert ss.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.2010020400001.2"
    assert ss.referenced_series_uid == "1.2.826.0.1.3680043.8.498.2010020400001.2.1.1"
    assert ss.label == "sep30"


def test_nelms_sphere() -> None:
    ss = read_structures(DATA / "nelms2015" / "Sphere_20_0.dcm")
    sphere = ss.by_number(2)
    assert sphere.name == "Sphere_20_0"
    planes = sphere.planes()
    assert len(planes) == 13  # 2 mm contours through a 24 mm sphere
    zs = np.array([z for z, _ in planes])
    np.testing.assert_allclose(np.diff(zs), 2.0, atol=1e-6)
    # each inner plane is a circle on the sphere R = 12 mm centred at (0, -6, 6) (Nelms);
    # the poles at z = -6 and 18 are tiny stand-in polygons
    for z, (contour,) in planes[1:-1]:
        r = np.linalg.norm(contour.points[:, :2] - [0, -6], axis=1)
        np.testing.assert_allclose(r, np.sqrt(144 - (z - 6) ** 2), atol=1e-6)
    assert (zs[0], zs[-1]) == pytest.approx((-6.0, 18.0))
    empty = ss.by_number(1)
    assert empty.is_empty and any(f.code == "roi.empty" for f in empty.findings)


def test_holes_disjoint_open_empty_and_bad_contours(tmp_path: Path) -> None:
    tilted = square(0, 0, 5, 0)
    tilted[:, 2] = tilted[:, 0] * 0.5  # planar but not axial
    wobbly = square(0, 0, 5, 4.0)
    wobbly[1, 2] += 0.3  # not planar
    tiny = square(0, 0, 5, 6.0)
    tiny[1, 2] += 0.005  # within tolerance
    path = make_structures(
        tmp_path / "rs.dcm",
        [
            (
                1,
                "RING",
                "ORGAN",
                [contour_item(square(0, 0, 10, z)) for z in (0, 2)]
                + [contour_item(square(0, 0, 4, z)) for z in (0, 2)]
                + [contour_item(square(30, 0, 2, 0))],
            ),
            (2, "LINE", "ORGAN", [contour_item(square(0, 0, 1, 0), "OPEN_PLANAR")]),
            (3, "EMPTY", "ORGAN", []),
            (4, "BAD", "PTV", [contour_item(tilted), contour_item(wobbly), contour_item(tiny)]),
            (5, "NOITEM", "ORGAN", []),
        ],
        no_contour_item=[5],
    )
    ss = read_structures(path)
    ring = ss.by_name("RING")
    assert len(ring.dvh_contours) == 5 and len(ring.planes()) == 2
    assert len(ring.planes()[0][1]) == 3  # outer, hole and a disjoint island kept
    line = ss.by_name("LINE")
    assert line.contours[0].geometric_type is ContourType.OPEN_PLANAR and line.is_empty
    assert any("OPEN_PLANAR" in f.message for f in line.findings)
    for name in ("EMPTY", "NOITEM"):
        roi = ss.by_name(name)
        assert roi is not None and roi.contours == ()
        assert [f.code for f in roi.findings] == ["roi.empty"]
    bad = ss.by_name("BAD")
    assert len(bad.contours) == 1 and bad.contours[0].z == pytest.approx(6.0, abs=0.01)
    messages = " | ".join(f.message for f in bad.findings if f.code == "roi.contour_dropped")
    assert "non-axial plane" in messages and "not planar" in messages
    assert ss.frame_of_reference_uid == uid("FOR1")


def test_duplicate_names_flagged(tmp_path: Path) -> None:
    path = make_structures(
        tmp_path / "rs.dcm",
        [
            (1, "PTV", "PTV", [contour_item(square(0, 0, 3, 0))]),
            (2, "PTV", "PTV", [contour_item(square(9, 0, 3, 0))]),
        ],
    )
    ss = read_structures(path)
    assert any(f.code == "structures.duplicate_name" for f in ss.findings)


def test_structures_required_sequence(tmp_path: Path) -> None:
    import pydicom

    path = make_structures(tmp_path / "rs.dcm", [(1, "A", None, [])])
    ds = pydicom.dcmread(path)
    del ds.StructureSetROISequence
    ds.save_as(path)
    with pytest.raises(InputError, match="StructureSetROISequence"):
        read_structures(path)
