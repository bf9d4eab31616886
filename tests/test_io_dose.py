"""RT Dose reader: pydicom's real RT Dose files, Nelms grids, synthetic orientations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from rtcheck.errors import InputError, UnsupportedError
from rtcheck.io.dicom import load_dose, read_dose
from rtcheck.model import DoseGrid
from tests.dicom_factory import make_dose, make_oriented_dose

DATA = Path(__file__).parent / "data"


def _pydicom(name: str) -> str:
    return get_testdata_file(name)


def _raw_gy(name: str, prescription: float) -> np.ndarray:
    """Independent decode: the stored uint32 values read straight from the file bytes."""
    ds = pydicom.dcmread(_pydicom(name))
    raw = np.frombuffer(ds.PixelData, dtype="<u4").reshape(15, 10, 10)
    return raw * float(ds.DoseGridScaling) * prescription


def test_pydicom_rtdose_values_and_geometry() -> None:
    grid = read_dose(_pydicom("rtdose.dcm"), relative_prescription_gy=50.0)
    assert grid.geometry.shape == (15, 10, 10)
    assert grid.geometry.origin == pytest.approx((189.43125, 199.43125, -761.87))
    assert grid.geometry.spacing == pytest.approx((10.0, 10.0, 5.0))
    assert grid.geometry.slice_dir == (0.0, 0.0, 1.0)
    np.testing.assert_allclose(grid.dose_gy, _raw_gy("rtdose.dcm", 50.0))
    assert grid.summation_type == "BEAM"
    assert grid.units_note == "RELATIVE x 50 Gy"
    assert grid.referenced_plan_uid == "1.2.123.456.78.9.0123.4567.89012345678901"
    assert grid.referenced_beam_numbers == (1,)
    # last frame lies 70 mm above the first
    last = grid.geometry.index_to_patient(np.array([0, 0, 14]))
    assert last[2] == pytest.approx(-761.87 + 70.0)


def test_big_endian_and_rle_equal_little_endian() -> None:
    ref = read_dose(_pydicom("rtdose.dcm"), relative_prescription_gy=1.0)
    for name in ("rtdose_expb.dcm", "rtdose_rle.dcm"):
        other = read_dose(_pydicom(name), relative_prescription_gy=1.0)
        np.testing.assert_array_equal(other.dose_gy, ref.dose_gy)
        assert other.geometry == ref.geometry
    # the big-endian file really is stored big-endian: decoding its bytes as BE gives the same
    ds = pydicom.dcmread(_pydicom("rtdose_expb.dcm"))
    raw = np.frombuffer(ds.PixelData, dtype=">u4").reshape(15, 10, 10)
    np.testing.assert_allclose(raw * float(ds.DoseGridScaling), ref.dose_gy)


def test_single_frame_dose() -> None:
    grid, findings = load_dose(_pydicom("rtdose_1frame.dcm"), relative_prescription_gy=1.0)
    ref = read_dose(_pydicom("rtdose.dcm"), relative_prescription_gy=1.0)
    assert grid.geometry.shape == (1, 10, 10)
    np.testing.assert_array_equal(grid.dose_gy[0], ref.dose_gy[0])
    # it lists 15 offsets for one frame: tolerated, disclosed
    assert any(f.code == "dose.offsets_extra" for f in findings)


def test_relative_dose_needs_prescription() -> None:
    with pytest.raises(InputError, match="RELATIVE") as exc:
        read_dose(_pydicom("rtdose.dcm"))
    assert "rtdose.dcm" in str(exc.value)


def test_relative_prescription_must_be_positive() -> None:
    with pytest.raises(InputError, match="> 0"):
        read_dose(_pydicom("rtdose.dcm"), relative_prescription_gy=0.0)


def test_relative_percent_values_refused(tmp_path: Path) -> None:
    path = make_dose(
        tmp_path / "d.dcm", np.full((2, 2, 2), 105.0), ipp=(0, 0, 0), units="RELATIVE", scaling=0.01
    )
    with pytest.raises(UnsupportedError, match="percent"):
        read_dose(path, relative_prescription_gy=50.0)


@pytest.mark.parametrize(
    "name,shape,spacing,origin",
    [
        ("Linear_AntPost_2mm_Aligned.dcm", (25, 25, 25), 2.0, (-24.0, -24.0, -24.0)),
        ("Linear_SupInf_3mm_Aligned.dcm", (19, 19, 19), 3.0, (-24.0, -30.0, -30.0)),
    ],
)
def test_nelms_grids(name: str, shape: tuple, spacing: float, origin: tuple) -> None:
    grid = read_dose(DATA / "nelms2015" / name)
    assert grid.geometry.shape == shape
    assert grid.geometry.spacing == pytest.approx((spacing,) * 3)
    assert grid.geometry.origin == pytest.approx(origin)
    assert grid.units_note == "GY"
    # Nelms: AP gradient D = 10 - y Gy, SI gradient D = 10 + z Gy (clipped at 0), DICOM mm
    idx = np.argwhere(np.ones(shape, bool))
    xyz = grid.geometry.index_to_patient(idx[:, ::-1])
    expect = 10 - xyz[:, 1] if "AntPost" in name else 10 + xyz[:, 2]
    got = grid.dose_gy[idx[:, 0], idx[:, 1], idx[:, 2]]
    inside = expect > 0.5
    np.testing.assert_allclose(got[inside], expect[inside], atol=1e-5)


def test_cgy_and_16_bit(tmp_path: Path) -> None:
    values = np.arange(24, dtype=float).reshape(2, 3, 4) * 100.0  # cGy
    path = make_dose(tmp_path / "d.dcm", values, ipp=(0, 0, 0), units="CGY", scaling=1.0, bits=16)
    grid = read_dose(path)
    np.testing.assert_allclose(grid.dose_gy, values / 100.0)
    assert "CGY" in grid.units_note


def test_uneven_frames_refused(tmp_path: Path) -> None:
    path = make_dose(tmp_path / "d.dcm", np.ones((3, 2, 2)), ipp=(0, 0, 0), offsets=[0, 2, 5])
    with pytest.raises(UnsupportedError, match="unevenly spaced"):
        read_dose(path)


def test_offsets_neither_relative_nor_absolute(tmp_path: Path) -> None:
    path = make_dose(tmp_path / "d.dcm", np.ones((3, 2, 2)), ipp=(0, 0, 10), offsets=[3, 5, 7])
    with pytest.raises(InputError, match="GridFrameOffsetVector starts at 3"):
        read_dose(path)


def test_oblique_refused(tmp_path: Path) -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    path = make_dose(tmp_path / "d.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0), iop=(c, s, 0, -s, c, 0))
    with pytest.raises(UnsupportedError, match="oblique"):
        read_dose(path)


def test_sagittal_refused(tmp_path: Path) -> None:
    path = make_dose(tmp_path / "d.dcm", np.ones((2, 2, 2)), ipp=(0, 0, 0), iop=(0, 1, 0, 0, 0, -1))
    with pytest.raises(UnsupportedError, match="sagittal or coronal"):
        read_dose(path)


# ------------------------------------------------------------------ orientations

X = np.arange(-6.0, 6.1, 2.0)  # 7 columns, dx = 2
Y = np.arange(-9.0, 9.1, 3.0)  # 7 rows, dy = 3
Z = np.arange(-5.0, 5.1, 2.5)  # 5 frames, dz = 2.5


def _f(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Asymmetric, non-linear dose (Gy) so any flipped axis shows."""
    return 20.0 + 0.7 * x - 0.4 * y + 0.9 * z + 0.05 * x * z + 0.02 * y * y


def _trilinear(grid: DoseGrid, points: np.ndarray) -> np.ndarray:
    """Plain trilinear interpolation of the grid at patient points (test reference)."""
    ijk = grid.geometry.patient_to_index(points)
    out = []
    for i, j, k in ijk:
        i0, j0, k0 = (int(np.floor(v)) for v in (i, j, k))
        fi, fj, fk = i - i0, j - j0, k - k0
        acc = 0.0
        for di, wi in ((0, 1 - fi), (1, fi)):
            for dj, wj in ((0, 1 - fj), (1, fj)):
                for dk, wk in ((0, 1 - fk), (1, fk)):
                    w = wi * wj * wk
                    if w > 1e-12:
                        acc += w * grid.dose_gy[k0 + dk, j0 + dj, i0 + di]
        out.append(acc)
    return np.array(out)


@pytest.mark.parametrize("orientation", ["HFS", "FFS", "HFP", "FFP"])
@pytest.mark.parametrize("variant", ["relative", "absolute", "negative"])
def test_orientations_same_physical_dose(tmp_path: Path, orientation: str, variant: str) -> None:
    path = make_oriented_dose(
        tmp_path / f"{orientation}.dcm",
        orientation,
        _f,
        x=X,
        y=Y,
        z=Z,
        absolute_offsets=variant == "absolute",
        reverse_frames=variant == "negative",
        scaling=1e-6,
    )
    grid = read_dose(path)
    lo, hi = grid.geometry.bounds()
    assert lo == pytest.approx((-6, -9, -5)) and hi == pytest.approx((6, 9, 5))
    # every node: the voxel at the node's index holds f(node)
    nodes = np.stack(np.meshgrid(X, Y, Z, indexing="ij"), -1).reshape(-1, 3)
    ijk = np.rint(grid.geometry.patient_to_index(nodes)).astype(int)
    got = grid.dose_gy[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    np.testing.assert_allclose(got, _f(*nodes.T), atol=1e-5)
    # between nodes: trilinear sampling agrees with the HFS file (same physical dose)
    ref = read_dose(
        make_oriented_dose(tmp_path / "ref.dcm", "HFS", _f, x=X, y=Y, z=Z, scaling=1e-6)
    )
    rng = np.random.default_rng(1)
    pts = rng.uniform([-5.9, -8.9, -4.9], [5.9, 8.9, 4.9], size=(50, 3))
    np.testing.assert_allclose(_trilinear(grid, pts), _trilinear(ref, pts), atol=1e-5)
