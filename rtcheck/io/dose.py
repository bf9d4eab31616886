"""RT Dose reader: pixel data -> :class:`~rtcheck.model.DoseGrid` in Gy and patient mm.

Geometry decisions (see ``docs/io.md``):

* Voxel ``(k, j, i)`` centre = ``IPP + i*dx*row + j*dy*col + offset_k*n`` where ``row``/``col``
  are ImageOrientationPatient's direction cosines, ``n = row x col`` the plane normal and
  ``offset_k`` the frame's relative GridFrameOffsetVector entry (DICOM PS3.3 C.8.8.3.2).
* GridFrameOffsetVector is *relative* when its first value is 0 and *absolute* (patient z of
  each plane) when its first value equals ImagePositionPatient z; absolute values are
  converted with ``offset_k = (gfov_k - gfov_0) / n_z``. Anything else is an error.
* ``slice_dir = sign(offset step) * n`` and ``dz = |offset step|``; frames must be evenly spaced
  (:data:`FRAME_SPACING_TOL_MM`), otherwise :class:`UnsupportedError` (no resampling).
"""

from __future__ import annotations

import os

import numpy as np
from pydicom.dataset import Dataset

from rtcheck.errors import Finding, InputError, Severity, UnsupportedError
from rtcheck.io.common import (
    axis_directions,
    capture_warnings,
    display_path,
    expect_modality,
    floats,
    open_dataset,
    opt_float,
    opt_int,
    opt_str,
    require,
    vec3,
    vector,
)
from rtcheck.model import DoseGrid, GridGeometry

#: Largest deviation (mm) of a frame offset step from the mean step for a "uniform" grid.
FRAME_SPACING_TOL_MM = 0.01
#: Slice spacing (mm) assigned to a single-frame dose grid that states no SliceThickness.
SINGLE_FRAME_DEFAULT_MM = 1.0
#: Largest stored RELATIVE value accepted as a fraction of the prescription (1.0 = 100 %).
RELATIVE_MAX_FRACTION = 10.0
#: Most negative dose (Gy, after scaling) accepted in a PHYSICAL or EFFECTIVE dose: float
#: round-off only. Any negative stored integer times a usual DoseGridScaling is below it.
NEGATIVE_DOSE_TOL_GY = 1e-6
#: DoseType values whose dose may legitimately be negative (ERROR: a dose difference).
SIGNED_DOSE_TYPES = frozenset({"ERROR"})


def read_dose(
    path: str | os.PathLike[str], *, relative_prescription_gy: float | None = None
) -> DoseGrid:
    """Read an RT Dose file into a :class:`DoseGrid` (Gy, patient mm).

    Parameters
    ----------
    path
        The RTDOSE file.
    relative_prescription_gy
        Required for DoseUnits ``RELATIVE``: the dose in Gy that a stored (scaled) value of
        1.0 represents. Ignored for ``GY``/``CGY`` files.

    Raises
    ------
    InputError
        Not an RT Dose, missing or inconsistent elements, unreadable pixel data, unknown units,
        RELATIVE dose without a prescription, negative values in a dose that is not a
        DoseType ERROR (difference) dose.
    UnsupportedError
        Oblique or non-axial planes, unevenly spaced frames.
    """
    grid, _ = load_dose(path, relative_prescription_gy=relative_prescription_gy)
    return grid


def load_dose(
    path: str | os.PathLike[str], *, relative_prescription_gy: float | None = None
) -> tuple[DoseGrid, list[Finding]]:
    """As :func:`read_dose`, also returning the findings met while reading."""
    p = display_path(path)
    findings: list[Finding] = []
    ds = open_dataset(p, findings=findings)
    with capture_warnings(findings, p):
        grid = dose_from_dataset(
            ds, p, findings=findings, relative_prescription_gy=relative_prescription_gy
        )
    return grid, findings


def dose_from_dataset(
    ds: Dataset,
    path: str,
    *,
    findings: list[Finding],
    relative_prescription_gy: float | None = None,
) -> DoseGrid:
    """Build a :class:`DoseGrid` from an RT Dose dataset (with pixel data)."""
    expect_modality(ds, "RTDOSE", path)
    rows = int(require(ds, "Rows", path))
    cols = int(require(ds, "Columns", path))
    nframes = opt_int(ds, "NumberOfFrames") or 1
    ipp = np.array(vector(ds, "ImagePositionPatient", 3, path))
    iop = vector(ds, "ImageOrientationPatient", 6, path)
    dy, dx = vector(ds, "PixelSpacing", 2, path)
    if dx <= 0 or dy <= 0:
        raise InputError(f"PixelSpacing {[dy, dx]} must be positive", path)
    row, col, normal = axis_directions(iop, path)
    offsets = _relative_offsets(ds, path, nframes, ipp, normal, findings)
    dz, slice_dir = _slice_step(ds, path, offsets, normal)
    factor, note = _unit_factor(ds, path, relative_prescription_gy)
    stored = _pixels(ds, path, (nframes, rows, cols))
    values = _scaled(ds, path, stored, factor)
    dose_type = (opt_str(ds, "DoseType") or "PHYSICAL").upper()
    if not opt_str(ds, "DoseType"):
        findings.append(
            Finding(
                "dose.type_missing",
                "RT Dose states no DoseType (a required element); read as PHYSICAL dose",
                Severity.WARNING,
                source=path,
            )
        )
    _check_not_negative(path, values, dose_type, integer=np.issubdtype(stored.dtype, np.integer))
    if note.startswith("RELATIVE") and stored.size:
        top = float(values.max()) / factor
        if top > RELATIVE_MAX_FRACTION:
            raise UnsupportedError(
                f"RELATIVE dose values reach {top:g}; rtcheck reads RELATIVE as a fraction of "
                "the prescription (1.0 = 100 %) and these look like percent; export in Gy",
                path,
            )
    geometry = GridGeometry(
        origin=vec3(ipp + offsets[0] * normal),
        spacing=(dx, dy, dz),
        row_dir=vec3(row),
        col_dir=vec3(col),
        slice_dir=vec3(slice_dir),
        shape=(nframes, rows, cols),
    )
    ref_plan, beams = _plan_reference(ds)
    return DoseGrid(
        dose_gy=values,
        geometry=geometry,
        dose_type=dose_type,
        summation_type=opt_str(ds, "DoseSummationType") or "UNKNOWN",
        referenced_plan_uid=ref_plan,
        referenced_beam_numbers=beams,
        frame_of_reference_uid=opt_str(ds, "FrameOfReferenceUID"),
        sop_instance_uid=opt_str(ds, "SOPInstanceUID"),
        source=path,
        units_note=note,
    )


def _relative_offsets(
    ds: Dataset,
    path: str,
    nframes: int,
    ipp: np.ndarray,
    normal: np.ndarray,
    findings: list[Finding],
) -> np.ndarray:
    """Frame offsets along the plane normal, relative to ImagePositionPatient."""
    if "GridFrameOffsetVector" not in ds or ds.GridFrameOffsetVector in (None, ""):
        if nframes == 1:
            return np.zeros(1)
        raise InputError(
            f"required element GridFrameOffsetVector is missing for a {nframes}-frame dose", path
        )
    raw = ds.GridFrameOffsetVector
    gfov = np.array(floats(raw if not isinstance(raw, float) else [raw], None, "GFOV", path))
    if nframes == 1:
        if len(gfov) != 1:
            findings.append(
                Finding(
                    "dose.offsets_extra",
                    f"single-frame dose lists {len(gfov)} GridFrameOffsetVector values; "
                    "only the first frame exists and is used",
                    Severity.INFO,
                    source=path,
                )
            )
        gfov = gfov[:1]
    elif len(gfov) != nframes:
        raise InputError(
            f"GridFrameOffsetVector has {len(gfov)} values but NumberOfFrames is {nframes}", path
        )
    first = float(gfov[0])
    if abs(first) <= 1e-6:
        return gfov - first
    if abs(first - float(ipp[2])) <= 1e-3:
        # Absolute (option b): values are patient z of each plane.
        return (gfov - first) / float(normal[2])
    raise InputError(
        f"GridFrameOffsetVector starts at {first:g}, neither 0 (relative offsets) nor "
        f"ImagePositionPatient z = {float(ipp[2]):g} (absolute positions); cannot place frames",
        path,
    )


def _slice_step(
    ds: Dataset, path: str, offsets: np.ndarray, normal: np.ndarray
) -> tuple[float, np.ndarray]:
    """Slice spacing and direction of increasing frame index."""
    if len(offsets) == 1:
        thickness = opt_float(ds, "SliceThickness")
        return (thickness if thickness and thickness > 0 else SINGLE_FRAME_DEFAULT_MM), normal
    steps = np.diff(offsets)
    mean = float(steps.mean())
    if abs(mean) < 1e-6 or np.any(np.sign(steps) != np.sign(mean)):
        raise InputError(
            "GridFrameOffsetVector is not strictly increasing or decreasing; frames overlap",
            path,
        )
    spread = float(np.abs(steps - mean).max())
    if spread > FRAME_SPACING_TOL_MM:
        raise UnsupportedError(
            f"dose frames are unevenly spaced (steps from {steps.min():g} to {steps.max():g} mm); "
            "rtcheck supports regular dose grids only; export the dose on a uniform grid",
            path,
        )
    return abs(mean), np.sign(mean) * normal


def _unit_factor(
    ds: Dataset, path: str, relative_prescription_gy: float | None
) -> tuple[float, str]:
    """Multiplier from scaled stored values to Gy, and the note saying how."""
    units = (opt_str(ds, "DoseUnits") or "").upper()
    if units == "GY":
        return 1.0, "GY"
    if units == "CGY":
        return 0.01, "CGY -> Gy (x 0.01)"
    if units == "RELATIVE":
        if relative_prescription_gy is None:
            raise InputError(
                "DoseUnits is RELATIVE; state the dose (Gy) a relative value of 1.0 represents "
                "(--relative-prescription-gy) or export the dose in Gy",
                path,
            )
        if not relative_prescription_gy > 0:
            raise InputError(
                f"relative prescription must be > 0 Gy, got {relative_prescription_gy}", path
            )
        return float(relative_prescription_gy), f"RELATIVE x {relative_prescription_gy:g} Gy"
    if not units:
        raise InputError("required element DoseUnits is missing; dose units unknown", path)
    raise InputError(f"unknown DoseUnits {units!r} (expected GY, CGY or RELATIVE)", path)


def _pixels(ds: Dataset, path: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Decoded stored values as an array of ``shape`` (any transfer syntax pydicom decodes)."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InputError("RT Dose has no pixel data (PixelData element missing)", path)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for undecodable or short data
        text = " ".join(str(exc).split())[:200]
        raise InputError(f"cannot decode dose pixel data: {text}", path) from exc
    arr = np.asarray(arr)
    if arr.size != shape[0] * shape[1] * shape[2]:
        raise InputError(
            f"pixel data holds {arr.size} values, expected {shape[0]}x{shape[1]}x{shape[2]} "
            "(NumberOfFrames x Rows x Columns)",
            path,
        )
    return arr.reshape(shape)


def _scaled(ds: Dataset, path: str, stored: np.ndarray, factor: float) -> np.ndarray:
    """Stored values x DoseGridScaling x unit factor, as float64 Gy."""
    scaling = opt_float(ds, "DoseGridScaling")
    raw = ds.get("DoseGridScaling")
    if scaling is None and raw is not None and str(raw).strip():
        raise InputError(f"DoseGridScaling {str(raw)!r} is not a number", path)
    if scaling is None:
        if np.issubdtype(stored.dtype, np.integer):
            raise InputError(
                "required element DoseGridScaling is missing for integer pixel data", path
            )
        scaling = 1.0
    if not np.isfinite(scaling) or scaling <= 0:
        raise InputError(f"DoseGridScaling {scaling} must be a positive number", path)
    values = stored.astype(np.float64) * (scaling * factor)
    if not np.all(np.isfinite(values)):
        raise InputError("dose pixel data contains non-finite values", path)
    return values


def _check_not_negative(path: str, values: np.ndarray, dose_type: str, *, integer: bool) -> None:
    """Refuse negative values in any dose but a DoseType ERROR (difference) dose.

    A negative absorbed (or effective) dose does not exist. The usual cause is an exporter
    that writes unsigned 16-bit data but declares PixelRepresentation 1 (signed): every value
    above 32767 is then read as negative and the hottest voxels vanish from the DVH, which
    could let a failing plan pass. Values down to :data:`NEGATIVE_DOSE_TOL_GY` are float
    round-off and accepted as they are.

    Raises
    ------
    InputError
        Values below ``-NEGATIVE_DOSE_TOL_GY`` Gy; names the minimum and how many voxels.
    """
    if dose_type in SIGNED_DOSE_TYPES or not values.size:
        return
    low = float(values.min())
    if low >= -NEGATIVE_DOSE_TOL_GY:
        return
    count = int(np.count_nonzero(values < -NEGATIVE_DOSE_TOL_GY))
    hint = (
        "the file says its pixel data are signed (PixelRepresentation 1); PixelRepresentation "
        "may be wrong: unsigned data read as signed turn the highest doses negative (16 bits: "
        "every stored value above 32767)"
        if integer
        else "the floating-point pixel data hold negative doses"
    )
    raise InputError(
        f"{dose_type} dose has {count} negative value(s) (minimum {low:.6g} Gy); a dose "
        f"cannot be negative: {hint}; fix the export, rtcheck does not guess",
        path,
    )


def _plan_reference(ds: Dataset) -> tuple[str | None, tuple[int, ...]]:
    """Referenced RT Plan SOP Instance UID and referenced beam numbers."""
    seq = ds.get("ReferencedRTPlanSequence") or []
    if not seq:
        return None, ()
    item = seq[0]
    beams: list[int] = []
    for fg in item.get("ReferencedFractionGroupSequence") or []:
        for b in fg.get("ReferencedBeamSequence") or []:
            number = opt_int(b, "ReferencedBeamNumber")
            if number is not None:
                beams.append(number)
    return opt_str(item, "ReferencedSOPInstanceUID"), tuple(beams)
