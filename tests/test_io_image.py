"""CT series geometry."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from rtcheck.errors import InputError, UnsupportedError
from rtcheck.io.dicom import read_image_series
from tests.dicom_factory import ct_series_uid, make_ct_series, uid


def test_series_sorted_by_position(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path, [4.0, -2.0, 0.0, 2.0])  # written out of order
    image = read_image_series(paths)
    g = image.geometry
    assert g.shape == (4, 4, 4)
    assert g.origin == pytest.approx((-10.0, -10.0, -2.0))
    assert g.spacing == pytest.approx((1.0, 1.5, 2.0))  # PixelSpacing = [row 1.5, col 1.0]
    assert image.series_instance_uid == ct_series_uid()
    assert image.frame_of_reference_uid == uid("FOR1")
    assert image.slice_thickness_mm == 2.0 and image.n_files == 4


def test_uneven_and_duplicate_slices(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="unevenly spaced"):
        read_image_series(make_ct_series(tmp_path / "a", [0.0, 2.0, 5.0]))
    with pytest.raises(InputError, match="same slice position"):
        read_image_series(make_ct_series(tmp_path / "b", [0.0, 2.0, 2.0]))


def test_two_series_refused(tmp_path: Path) -> None:
    paths = make_ct_series(tmp_path / "a", [0.0, 2.0]) + make_ct_series(
        tmp_path / "b", [4.0], series="other"
    )
    with pytest.raises(InputError, match="differ in series"):
        read_image_series(paths)


def test_pydicom_ct_single_slice() -> None:
    image = read_image_series([get_testdata_file("CT_small.dcm")])
    assert image.geometry.shape == (1, 128, 128)
    assert image.slice_thickness_mm == 5.0
