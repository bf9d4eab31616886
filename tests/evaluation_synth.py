"""Synthetic plans with analytic geometry and dose, for the evaluation tests (no mocks).

Structures are stacks of polygons whose *area* equals the analytic cross-section (the radius of
an n-gon is scaled so its area is pi r^2), so slab-model volumes converge to the analytic
ones. Doses are analytic functions sampled on a grid. :func:`write_case` writes a case as real
DICOM files with :mod:`rtcheck.io.write`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rtcheck.io.write import uid_from, write_dose, write_plan, write_structure_set
from rtcheck.model import (
    Beam,
    Case,
    Contour,
    DoseGrid,
    GridGeometry,
    Patient,
    Plan,
    Prescription,
    Roi,
    StructureSet,
)

FRAME = "1.2.826.0.1.3680043.8.498.1"
PATIENT = Patient("SYNTH-1", "Synthetic^Case", "19700101", "O")


def circle(cx: float, cy: float, r: float, z: float, n: int = 96) -> np.ndarray:
    """A counter-clockwise n-gon with the area of the circle of radius ``r``."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    k = math.sqrt(2.0 * np.pi / (n * math.sin(2.0 * np.pi / n)))
    return np.c_[cx + r * k * np.cos(t), cy + r * k * np.sin(t), np.full(n, z)]


def diamond(cx: float, cy: float, a: float, z: float) -> np.ndarray:
    """Square rotated 45 degrees: ``|x - cx| + |y - cy| <= a`` (exact polygon)."""
    return np.array([[cx + a, cy, z], [cx, cy + a, z], [cx - a, cy, z], [cx, cy - a, z]])


def sphere(
    number: int, name: str, kind: str | None, c: Sequence[float], r: float, dz: float = 1.0
) -> Roi:
    """A sphere as circles on planes ``dz`` apart (planes at mid-slab heights)."""
    contours = []
    for z in np.arange(c[2] - r + dz / 2, c[2] + r, dz):
        rr = r * r - (z - c[2]) ** 2
        if rr > 0:
            contours.append(Contour(circle(c[0], c[1], math.sqrt(rr), float(z))))
    return Roi(number, name, kind, None, tuple(contours))


def octahedron(
    number: int, name: str, kind: str | None, c: Sequence[float], a: float, dz: float = 1.0
) -> Roi:
    """``|x| + |y| + |z| <= a`` around ``c`` as diamonds on planes ``dz`` apart."""
    contours = []
    for z in np.arange(c[2] - a + dz / 2, c[2] + a, dz):
        half = a - abs(z - c[2])
        if half > 0:
            contours.append(Contour(diamond(c[0], c[1], half, float(z))))
    return Roi(number, name, kind, None, tuple(contours))


def octahedron_slab_volume_cc(a: float, dz: float) -> float:
    """Slab-model volume of :func:`octahedron`: sum of diamond areas 2 h^2 times dz."""
    zs = np.arange(-a + dz / 2, a, dz)
    half = a - np.abs(zs)
    return float(np.sum(2.0 * half[half > 0] ** 2) * dz) / 1000.0


def cylinder(
    number: int,
    name: str,
    kind: str | None,
    cx: float,
    cy: float,
    r: float,
    z0: float,
    z1: float,
    dz: float = 2.0,
) -> Roi:
    """A z-aligned cylinder from ``z0`` to ``z1`` (planes ``dz`` apart)."""
    zs = np.arange(z0 + dz / 2, z1, dz)
    return Roi(number, name, kind, None, tuple(Contour(circle(cx, cy, r, float(z))) for z in zs))


def empty_roi(number: int, name: str, kind: str | None = "ORGAN") -> Roi:
    """An ROI without contours."""
    return Roi(number, name, kind, None, ())


def grid(lo: Sequence[float], hi: Sequence[float], step: float) -> GridGeometry:
    """Axis-aligned (HFS) grid with voxel centres from ``lo`` to ``hi``."""
    n = [round((hi_ - lo_) / step) + 1 for lo_, hi_ in zip(lo, hi, strict=True)]
    return GridGeometry(
        tuple(float(v) for v in lo),
        (step, step, step),
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (n[2], n[1], n[0]),
    )


def sample(
    g: GridGeometry, fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """``fn(X, Y, Z)`` at the voxel centres, array ``[z, y, x]``."""
    nz, ny, nx = g.shape
    x = g.origin[0] + np.arange(nx) * g.spacing[0]
    y = g.origin[1] + np.arange(ny) * g.spacing[1]
    z = g.origin[2] + np.arange(nz) * g.spacing[2]
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return np.asarray(fn(xx, yy, zz), dtype=float)


def gaussian(centre: Sequence[float], peak: float, sigma: float) -> Callable[..., np.ndarray]:
    """``peak exp(-r^2 / sigma^2)`` around ``centre``."""
    cx, cy, cz = centre

    def fn(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return peak * np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / sigma**2)

    return fn


def pyramid(centre: Sequence[float], peak: float, slope: float) -> Callable[..., np.ndarray]:
    """``peak - slope (|x| + |y| + |z|)`` (>= 0): trilinear interpolation reproduces it exactly
    when ``centre`` is a grid node, and its isodose surfaces are octahedra."""
    cx, cy, cz = centre

    def fn(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(peak - slope * (np.abs(x - cx) + np.abs(y - cy) + np.abs(z - cz)), 0.0)

    return fn


def plan(
    key: str, fractions: int | None, rx: Sequence[tuple[str, float | None, int | None]]
) -> Plan:
    """A plan with TARGET dose references ``(description, Gy, ROI number)``."""
    prescriptions = tuple(
        Prescription(gy, desc, roi, "TARGET", n) for n, (desc, gy, roi) in enumerate(rx, start=1)
    )
    beams = (Beam(1, "B1", "STATIC", "PHOTON", 100.0, (0.0, 0.0, 0.0)),)
    return Plan(key, uid_from("plan", key), key, fractions, prescriptions, beams, None, FRAME)


def dose(g: GridGeometry, values: np.ndarray, plan_obj: Plan | None) -> DoseGrid:
    """A PLAN dose referencing ``plan_obj``."""
    uid = plan_obj.sop_instance_uid if plan_obj is not None else None
    return DoseGrid(
        values,
        g,
        referenced_plan_uid=uid,
        frame_of_reference_uid=FRAME,
        sop_instance_uid=uid_from("dose", uid or "none"),
    )


def case(rois: Sequence[Roi], doses: Sequence[DoseGrid], plans: Sequence[Plan]) -> Case:
    """An in-memory :class:`Case`."""
    ss = StructureSet(tuple(rois), uid_from("ss"), FRAME, label="SYNTH")
    return Case(PATIENT, ss, tuple(plans), tuple(doses), label="synthetic")


def write_case(c: Case, folder: Path) -> Path:
    """Write ``c`` as DICOM files (RS, RP.*, RD.*) in ``folder``; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = {"patient": PATIENT, "study_uid": uid_from("study", str(folder.name))}
    assert c.structure_set is not None
    ss_uid = write_structure_set(c.structure_set, folder / "RS.dcm", frame_uid=FRAME, **ids)
    for p in c.plans:
        from dataclasses import replace

        write_plan(
            replace(p, referenced_structure_set_uid=ss_uid),
            folder / f"RP.{p.label}.dcm",
            frame_uid=FRAME,
            sop_uid=p.sop_instance_uid,
            **ids,
        )
    for n, d in enumerate(c.doses):
        write_dose(d, folder / f"RD.{n}.dcm", frame_uid=FRAME, bits=32, **ids)
    return folder
