"""RT Dose reader: negative doses are refused, except in a DoseType ERROR (difference) dose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from rtcheck.errors import InputError
from rtcheck.io.dicom import read_dose
from rtcheck.io.dose import NEGATIVE_DOSE_TOL_GY
from tests.dicom_factory import make_dose

SCALING = 1e-3  # Gy per stored unit


def _int_dose(path: Path, stored: np.ndarray, *, signed: bool, dose_type: str | None) -> Path:
    """A 16-bit RT Dose holding ``stored`` as is, with the given PixelRepresentation/DoseType."""
    make_dose(path, np.zeros(stored.shape), ipp=(0, 0, 0), scaling=SCALING, bits=16)
    ds = pydicom.dcmread(path)
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()
    if dose_type is None:
        del ds.DoseType
    else:
        ds.DoseType = dose_type
    ds.save_as(path, enforce_file_format=True)
    return path


def _float_dose(path: Path, values: np.ndarray) -> Path:
    """A 32-bit float RT Dose (FloatPixelData, no DoseGridScaling) holding ``values`` in Gy."""
    make_dose(path, np.zeros(values.shape), ipp=(0, 0, 0), bits=32)
    ds = pydicom.dcmread(path)
    del ds.PixelData, ds.PixelRepresentation, ds.DoseGridScaling
    ds.FloatPixelData = values.astype("<f4").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _unsigned_values() -> np.ndarray:
    """Stored values of an unsigned export whose hot voxels exceed 32767."""
    stored = np.arange(2 * 3 * 4, dtype=np.int64).reshape(2, 3, 4) * 100
    stored[1, 2, 3] = 40000  # 40 Gy: read as signed, 40000 - 65536 = -25536 (-25.536 Gy)
    stored[1, 2, 2] = 65000  # read as signed, -536 (-0.536 Gy)
    return stored


def test_unsigned_data_flagged_signed_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _int_dose(tmp_path / "RD.dcm", _unsigned_values(), signed=False, dose_type="PHYSICAL")
    assert read_dose(path).max_gy == pytest.approx(65.0)  # as exported: fine
    ds = pydicom.dcmread(path)
    ds.PixelRepresentation = 1  # the exporter's error: same bytes, declared signed
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError) as err:
        read_dose(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert "PixelRepresentation" in text and "negative" in text
    assert "2 negative value(s)" in text and "-25.536 Gy" in text
    assert "\n" not in text


@pytest.mark.parametrize("dose_type", ["PHYSICAL", "EFFECTIVE", None, "SOMETHING"])
def test_negative_values_are_refused_for_every_non_difference_dose(
    tmp_path: Path, dose_type: str | None
) -> None:
    stored = np.full((2, 2, 2), 500)
    stored[0, 0, 0] = -1  # the smallest negative an integer dose can hold: -0.001 Gy
    path = _int_dose(tmp_path / "d.dcm", stored, signed=True, dose_type=dose_type)
    with pytest.raises(InputError, match="negative") as err:
        read_dose(path)
    assert str(path) in str(err.value)
    assert "-0.001 Gy" in str(err.value)


def test_signed_file_without_negative_values_is_read(tmp_path: Path) -> None:
    stored = np.arange(8).reshape(2, 2, 2) * 1000
    path = _int_dose(tmp_path / "d.dcm", stored, signed=True, dose_type="PHYSICAL")
    np.testing.assert_allclose(read_dose(path).dose_gy, stored * SCALING)


def test_difference_dose_keeps_its_negative_values(tmp_path: Path) -> None:
    stored = np.arange(8).reshape(2, 2, 2) * 1000 - 4000
    path = _int_dose(tmp_path / "d.dcm", stored, signed=True, dose_type="ERROR")
    grid = read_dose(path)
    assert grid.dose_type == "ERROR"
    np.testing.assert_allclose(grid.dose_gy, stored * SCALING)
    assert grid.dose_gy.min() == pytest.approx(-4.0)


def test_float_round_off_below_zero_is_tolerated(tmp_path: Path) -> None:
    values = np.full((2, 2, 2), 2.0)
    values[1, 1, 1] = -0.5 * NEGATIVE_DOSE_TOL_GY
    grid = read_dose(_float_dose(tmp_path / "d.dcm", values))
    np.testing.assert_allclose(grid.dose_gy, values.astype("<f4"))


def test_float_negative_beyond_tolerance_is_refused(tmp_path: Path) -> None:
    values = np.full((2, 2, 2), 2.0)
    values[1, 1, 1] = -2.0 * NEGATIVE_DOSE_TOL_GY
    path = _float_dose(tmp_path / "d.dcm", values)
    with pytest.raises(InputError, match="1 negative value") as err:
        read_dose(path)
    assert "floating-point" in str(err.value)
