"""CT series geometry -> :class:`~rtcheck.model.ImageGeometry` (headers only, no pixels)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from rtcheck.errors import InputError, UnsupportedError
from rtcheck.io.common import (
    axis_directions,
    capture_warnings,
    display_path,
    open_dataset,
    opt_float,
    opt_str,
    require,
    vec3,
    vector,
)
from rtcheck.model import GridGeometry, ImageGeometry

#: Largest deviation (mm) of a slice step from the mean step, and of in-plane positions.
SLICE_SPACING_TOL_MM = 0.01
#: Slice spacing (mm) of a one-image series that states no SliceThickness.
SINGLE_SLICE_DEFAULT_MM = 1.0

_TAGS = [
    "SOPClassUID",
    "Modality",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "SliceThickness",
]


def read_image_series(paths: Iterable[str | os.PathLike[str]]) -> ImageGeometry:
    """Geometry of one image series (CT) from its files, sorted by position.

    Raises
    ------
    InputError
        No files, several series, inconsistent or duplicate slices.
    UnsupportedError
        Oblique or non-axial images, uneven slice spacing, slices not stacked on one axis.
    """
    files = [display_path(p) for p in paths]
    if not files:
        raise InputError("no image files given")
    slices = [_slice_header(p) for p in files]
    keys = {s.key for s in slices}
    if len(keys) > 1:
        series = sorted({str(k[0]) for k in keys})
        what = f"series {', '.join(series)}" if len(series) > 1 else "orientation/size/spacing"
        raise InputError(f"image files differ in {what}; pass one series", files[0])
    series_uid, frame, iop_key, spacing, rows, cols = slices[0].key
    row, col, normal = axis_directions(list(iop_key), files[0])
    geometry = _stack(slices, (row, col, normal), (spacing[1], spacing[0]), (rows, cols))
    return ImageGeometry(
        geometry=geometry,
        series_instance_uid=series_uid,
        frame_of_reference_uid=frame,
        slice_thickness_mm=slices[0].thickness,
        n_files=len(slices),
    )


@dataclass(frozen=True)
class _Slice:
    path: str
    position: np.ndarray
    key: tuple
    thickness: float | None


def _slice_header(p: str) -> _Slice:
    ds = open_dataset(p, stop_before_pixels=True, specific_tags=_TAGS)
    with capture_warnings([], p):
        key = (
            opt_str(ds, "SeriesInstanceUID"),
            opt_str(ds, "FrameOfReferenceUID"),
            tuple(np.round(vector(ds, "ImageOrientationPatient", 6, p), 4).tolist()),
            tuple(np.round(vector(ds, "PixelSpacing", 2, p), 4).tolist()),
            int(require(ds, "Rows", p)),
            int(require(ds, "Columns", p)),
        )
        position = np.array(vector(ds, "ImagePositionPatient", 3, p))
        return _Slice(p, position, key, opt_float(ds, "SliceThickness"))


def _stack(
    slices: list[_Slice],
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    pixel: tuple[float, float],
    size: tuple[int, int],
) -> GridGeometry:
    row, col, normal = axes
    slices = sorted(slices, key=lambda s: float(s.position @ normal))
    pos = np.array([s.position for s in slices])
    first = slices[0].path
    inplane = pos - pos[0]
    drift = np.abs(np.stack([inplane @ row, inplane @ col])).max()
    if drift > SLICE_SPACING_TOL_MM:
        raise UnsupportedError(
            f"image slices are shifted in-plane by up to {drift:.3g} mm (tilted gantry?); "
            "only straight stacks are supported",
            first,
        )
    along = pos @ normal
    if len(slices) == 1:
        dz = slices[0].thickness or SINGLE_SLICE_DEFAULT_MM
    else:
        steps = np.diff(along)
        if np.any(steps < 1e-6):
            raise InputError("two image files have the same slice position", first)
        if float(np.abs(steps - steps.mean()).max()) > SLICE_SPACING_TOL_MM:
            raise UnsupportedError(
                f"image slices are unevenly spaced ({steps.min():g} to {steps.max():g} mm)",
                first,
            )
        dz = float(steps.mean())
    return GridGeometry(
        origin=vec3(pos[0]),
        spacing=(float(pixel[0]), float(pixel[1]), float(dz)),
        row_dir=vec3(row),
        col_dir=vec3(col),
        slice_dir=vec3(normal),
        shape=(len(slices), size[0], size[1]),
    )
