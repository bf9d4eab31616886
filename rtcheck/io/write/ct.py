"""CT Image series writer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rtcheck.io.write.common import (
    CT_CLASS,
    FIXED_DATE,
    FIXED_TIME,
    base,
    check_frame,
    ct_image_uid,
    ds_number,
    frame_of_reference,
    image_plane,
    pixel_module,
    save,
    uid_from,
)
from rtcheck.model import GridGeometry, Patient


def write_ct_series(
    hu: np.ndarray,
    geometry: GridGeometry,
    folder: str | os.PathLike[str],
    *,
    patient: Patient,
    study_uid: str,
    frame_uid: str,
    series_uid: str | None = None,
    seed: str = "ct",
    patient_position: str = "HFS",
    description: str | None = None,
    prefix: str = "CT",
    series_number: int = 1,
    manufacturer: str = "rtcheck",
) -> list[tuple[str, str, float]]:
    """Write a CT Image series (one file per slice) from HU values ``[k, j, i]``.

    Stored as unsigned 12-bit values in 16 bits with RescaleIntercept -1024 (HU clipped to
    [-1024, 3071]). Slice ``k`` is at ``origin + k * dz * slice_dir``. Returns
    ``[(path, sop_instance_uid, slice position along slice_dir), ...]`` in slice order.
    """
    check_frame(geometry)
    nz, ny, nx = geometry.shape
    if hu.shape != (nz, ny, nx):
        raise ValueError(f"HU array shape {hu.shape} != geometry shape {geometry.shape}")
    series = series_uid or uid_from(seed, "series", frame_uid)
    stored = (np.clip(np.rint(hu), -1024, 3071) + 1024).astype("<u2")
    out = []
    for k in range(nz):
        sop = ct_image_uid(seed, series, k)
        ds = base(
            CT_CLASS,
            sop,
            "CT",
            patient=patient,
            study_uid=study_uid,
            series_uid=series,
            series_number=series_number,
            description=description,
            manufacturer=manufacturer,
        )
        ds.PatientPosition = patient_position
        frame_of_reference(ds, frame_uid)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ContentDate = FIXED_DATE
        ds.ContentTime = FIXED_TIME
        ds.AcquisitionNumber = 1
        pos = geometry.index_to_patient(np.array([0.0, 0.0, float(k)]))
        image_plane(ds, geometry, pos)
        ds.SliceLocation = ds_number(float(pos @ np.asarray(geometry.slice_dir)))
        pixel_module(ds, ny, nx, 16, 12)
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.KVP = "120"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.PixelData = stored[k].tobytes()
        path = Path(folder) / f"{prefix}.{k + 1:04d}.dcm"
        save(ds, path)
        out.append((str(path), sop, float(pos @ np.asarray(geometry.slice_dir))))
    return out
