"""Builders of small, real DICOM RT cases for the safety tests (``tests/test_safety*.py``).

A *safe* base case is written with :mod:`rtcheck.io.write`: one PTV (40 Gy / 5 fx) far from a
spinal cord and an oesophagus, an analytic dose that falls steeply outside the PTV, so every
TG-101 organ row that is contoured passes with a wide margin and the verdict is ``pass``.
Each safety scenario changes one thing (crop the dose grid, rename an ROI, rewrite DoseUnits
with pydicom...) and checks that rtcheck then does *not* say ``pass`` where it must not.

Geometry (DICOM patient mm, HFS unless ``orientation`` says otherwise):

* dose grid: voxel centres x, y, z in [-60, 60] mm, 2.5 mm steps;
* ``PTV1``: sphere r = 15 mm at (20, 0, 0); ``GTV1``: sphere r = 8 mm, same centre;
* ``SpinalCord``: cylinder r = 5 mm at (x, y) = (0, 35), z from -50 to 50 mm;
* ``Esophagus``: cylinder r = 7 mm at (-15, 10), z from -50 to 50 mm;
* dose: ``D0 / (1 + (d / 20 mm)^8)`` with ``d`` the distance from the PTV centre, plus an
  optional *hot spot* (a Gaussian bump) that scenarios use to put a high dose where only a
  part of the grid sees it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pydicom

from rtcheck.io.write import (
    ORIENTATION_AXES,
    uid_from,
    write_dose,
    write_plan,
    write_structure_set,
)
from rtcheck.model import (
    Beam,
    Contour,
    ContourType,
    DoseGrid,
    GridGeometry,
    Patient,
    Plan,
    Prescription,
    Roi,
    StructureSet,
)

FRAME = uid_from("safety-frame")
OTHER_FRAME = uid_from("safety-other-frame")
STUDY = uid_from("safety-study")
PATIENT = Patient("SAFETY-1", "Safety^Case", "19700101", "O")

PTV_CENTRE = (20.0, 0.0, 0.0)
CORD_XY = (0.0, 35.0)
ESO_XY = (-15.0, 10.0)
#: Dose (Gy) at the PTV centre of the base case.
PEAK_GY = 44.0

DoseFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- shapes
def circle(cx: float, cy: float, r: float, z: float, n: int = 48) -> np.ndarray:
    """Counter-clockwise n-gon of radius ``r`` on plane ``z``: ``(n, 3)`` points."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.c_[cx + r * np.cos(t), cy + r * np.sin(t), np.full(n, z)]


def sphere_roi(
    number: int, name: str, kind: str | None, c: Sequence[float], r: float, dz: float = 2.5
) -> Roi:
    """A sphere as circles on planes ``dz`` apart."""
    contours = []
    for z in np.arange(c[2] - r + dz / 2, c[2] + r, dz):
        rr = r * r - (z - c[2]) ** 2
        if rr > 0:
            contours.append(Contour(circle(c[0], c[1], math.sqrt(rr), float(z))))
    return Roi(number, name, kind, None, tuple(contours))


def cylinder_roi(
    number: int,
    name: str,
    kind: str | None,
    xy: Sequence[float],
    r: float,
    z0: float,
    z1: float,
    dz: float = 2.5,
) -> Roi:
    """A z-aligned cylinder: circles on planes from ``z0`` to ``z1`` (inclusive) ``dz`` apart."""
    zs = np.arange(z0, z1 + dz / 2, dz)
    contours = tuple(Contour(circle(xy[0], xy[1], r, float(z))) for z in zs)
    return Roi(number, name, kind, None, contours)


def point_roi(number: int, name: str, xyz: Sequence[float]) -> Roi:
    """An ROI with a single POINT contour (a marker), no volume."""
    pts = np.array([list(xyz)], float)
    return Roi(number, name, "MARKER", None, (Contour(pts, ContourType.POINT),))


def base_rois() -> list[Roi]:
    """ROIs of the safe base case (numbers 1..5)."""
    return [
        cylinder_roi(1, "Body", "EXTERNAL", (0.0, 0.0), 55.0, -55.0, 55.0),
        sphere_roi(2, "PTV1", "PTV", PTV_CENTRE, 15.0),
        sphere_roi(3, "GTV1", "GTV", PTV_CENTRE, 8.0),
        cylinder_roi(4, "SpinalCord", "ORGAN", CORD_XY, 5.0, -50.0, 50.0),
        cylinder_roi(5, "Esophagus", "ORGAN", ESO_XY, 7.0, -50.0, 50.0),
    ]


# ----------------------------------------------------------------------------- dose
def grid(
    lo: Sequence[float] = (-60.0, -60.0, -60.0),
    hi: Sequence[float] = (60.0, 60.0, 60.0),
    step: float = 2.5,
    orientation: str = "HFS",
) -> GridGeometry:
    """An axis-aligned grid whose voxel centres span the box ``lo``..``hi`` (patient mm).

    ``orientation`` picks the directions of increasing column, row and frame index
    (:data:`rtcheck.io.write.ORIENTATION_AXES`); the box is the same for every orientation.
    """
    row, col, sl = (np.asarray(v, float) for v in ORIENTATION_AXES[orientation])
    lo_a, hi_a = np.asarray(lo, float), np.asarray(hi, float)
    n = np.rint((hi_a - lo_a) / step).astype(int) + 1
    origin = lo_a.copy()
    # each axis starts at the end its index direction grows away from
    for d in (row, col, sl):
        axis = int(np.argmax(np.abs(d)))
        origin[axis] = lo_a[axis] if d[axis] > 0 else hi_a[axis]
    size = [int(n[np.argmax(np.abs(d))]) for d in (sl, col, row)]
    shape = (size[0], size[1], size[2])
    return GridGeometry(
        tuple(float(v) for v in origin),  # type: ignore[arg-type]
        (step, step, step),
        tuple(row.tolist()),  # type: ignore[arg-type]
        tuple(col.tolist()),  # type: ignore[arg-type]
        tuple(sl.tolist()),  # type: ignore[arg-type]
        shape,  # type: ignore[arg-type]
    )


def sample(g: GridGeometry, fn: DoseFn) -> np.ndarray:
    """``fn(X, Y, Z)`` at the voxel centres of ``g``, as an array ``[k, j, i]``."""
    nz, ny, nx = g.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3)
    xyz = g.index_to_patient(ijk)
    return fn(xyz[:, 0], xyz[:, 1], xyz[:, 2]).reshape(g.shape)


def falloff(peak: float = PEAK_GY, centre: Sequence[float] = PTV_CENTRE) -> DoseFn:
    """``peak / (1 + (d / 20)^8)``: about 40 Gy on the PTV surface, < 1 Gy at the cord."""

    def fn(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
        return peak / (1.0 + (d / 20.0) ** 8)

    return fn


def with_hotspot(base: DoseFn, xyz: Sequence[float], gy: float, sigma: float = 4.0) -> DoseFn:
    """``base`` plus a Gaussian bump of ``gy`` Gy centred on ``xyz``."""

    def fn(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        r2 = (x - xyz[0]) ** 2 + (y - xyz[1]) ** 2 + (z - xyz[2]) ** 2
        return base(x, y, z) + gy * np.exp(-r2 / (2.0 * sigma**2))

    return fn


# ----------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class CaseSpec:
    """Everything a safety case is made of; :func:`write_case` writes it as DICOM files.

    Attributes
    ----------
    rois
        ROIs of the structure set.
    geometry
        Dose grid geometry.
    dose_fn
        Dose (Gy) as a function of patient x, y, z.
    fractions
        NumberOfFractionsPlanned of the RT Plan (None: not stated).
    prescriptions
        ``(description, Gy or None, ROI number or None)`` dose references of the plan.
    write_plan_file
        False: no RT Plan at all.
    dose_frame
        FrameOfReferenceUID of the RT Dose (structures and plan use :data:`FRAME`).
    orientation
        Patient position written in the plan.
    patient
        Patient identity written in every file.
    beam_doses
        0: one PLAN dose (RD.dcm). N > 0: the plan has N beams and the dose is written as N
        BEAM doses ``RD.B<n>.dcm``, each holding 1/N of the dose.
    dose_summation
        DoseSummationType of the single RT Dose (``PLAN``, ``FRACTION``...).
    dose_scale
        Factor applied to the dose values written (e.g. ``1/5`` for a dose per fraction).
    """

    rois: tuple[Roi, ...] = field(default_factory=lambda: tuple(base_rois()))
    geometry: GridGeometry = field(default_factory=grid)
    dose_fn: DoseFn = field(default_factory=falloff)
    fractions: int | None = 5
    prescriptions: tuple[tuple[str | None, float | None, int | None], ...] = (("PTV1", 40.0, 2),)
    write_plan_file: bool = True
    dose_frame: str = FRAME
    orientation: str = "HFS"
    patient: Patient = PATIENT
    beam_doses: int = 0
    dose_summation: str = "PLAN"
    dose_scale: float = 1.0

    def but(self, **changes: object) -> CaseSpec:
        """A copy with ``changes``."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def with_rois(self, *rois: Roi, drop: Sequence[str] = ()) -> CaseSpec:
        """A copy without ROIs named in ``drop`` and with ``rois`` added (renumbered if needed)."""
        kept = [r for r in self.rois if r.name not in drop]
        used = {r.number for r in kept}
        out = list(kept)
        for r in rois:
            n = r.number
            while n in used:
                n += 100
            used.add(n)
            out.append(replace(r, number=n))
        return replace(self, rois=tuple(out))


@dataclass(frozen=True)
class CaseFiles:
    """Paths of a written case."""

    folder: Path
    rtstruct: Path
    rtdose: Path
    rtplan: Path | None
    beam_doses: tuple[Path, ...] = ()


def dose_array(spec: CaseSpec) -> np.ndarray:
    """The dose (Gy) of ``spec`` on its grid."""
    return sample(spec.geometry, spec.dose_fn)


def write_case(spec: CaseSpec, folder: str | Path, tag: str = "safety") -> CaseFiles:
    """Write ``spec`` as RS.dcm, RD.dcm and (unless disabled) RP.dcm in ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ss = StructureSet(spec.rois, frame_of_reference_uid=FRAME, label="SAFETY")
    ss_uid = uid_from(tag, "rtstruct", str(out))
    write_structure_set(ss, out / "RS.dcm", patient=spec.patient, study_uid=STUDY, sop_uid=ss_uid)
    plan_uid = uid_from(tag, "rtplan", str(out))
    n_beams = max(spec.beam_doses, 1)
    beams = tuple(Beam(b, f"B{b}", meterset=100.0) for b in range(1, n_beams + 1))
    rp: Path | None = None
    if spec.write_plan_file:
        rx = tuple(
            Prescription(gy, desc, roi, "TARGET", n)
            for n, (desc, gy, roi) in enumerate(spec.prescriptions, start=1)
        )
        plan = Plan("SAFETY", plan_uid, "safety plan", spec.fractions, rx, beams, ss_uid, FRAME)
        rp = out / "RP.dcm"
        write_plan(
            plan,
            rp,
            patient=spec.patient,
            study_uid=STUDY,
            patient_position=spec.orientation,
        )
    values = dose_array(spec) * spec.dose_scale
    if spec.beam_doses == 0:
        sop = uid_from(tag, "rtdose", str(out))
        _write_dose(spec, values, out / "RD.dcm", plan_uid, sop, summation=spec.dose_summation)
        return CaseFiles(out, out / "RS.dcm", out / "RD.dcm", rp)
    paths = []
    for b in range(1, spec.beam_doses + 1):
        path = out / f"RD.B{b}.dcm"
        sop = uid_from(tag, "rtdose", str(out), b)
        _write_dose(spec, values / spec.beam_doses, path, plan_uid, sop, b)
        paths.append(path)
    return CaseFiles(out, out / "RS.dcm", paths[0], rp, tuple(paths))


def _write_dose(
    spec: CaseSpec,
    values: np.ndarray,
    path: Path,
    plan_uid: str,
    sop: str,
    beam: int | None = None,
    summation: str = "PLAN",
) -> None:
    dose = DoseGrid(values, spec.geometry, frame_of_reference_uid=spec.dose_frame)
    write_dose(
        dose,
        path,
        patient=spec.patient,
        study_uid=STUDY,
        plan_uid=plan_uid,
        sop_uid=sop,
        summation_type=summation if beam is None else "BEAM",
        beam_numbers=None if beam is None else (beam,),
    )


# ----------------------------------------------------------------------------- edits
def edit(path: str | Path, fn: Callable[[pydicom.Dataset], None]) -> None:
    """Read ``path`` with pydicom, apply ``fn`` to the dataset, write it back."""
    ds = pydicom.dcmread(str(path))
    fn(ds)
    ds.save_as(str(path), enforce_file_format=True)


def rewrite_dose_values(path: str | Path, stored: np.ndarray, *, signed: bool = False) -> None:
    """Replace the RT Dose pixel data by ``stored`` (integers, same shape as the frames)."""

    def fn(ds: pydicom.Dataset) -> None:
        bits = int(ds.BitsAllocated)
        dtype = {(16, False): "<u2", (16, True): "<i2", (32, False): "<u4", (32, True): "<i4"}
        arr = np.asarray(stored).astype(dtype[(bits, signed)])
        ds.PixelRepresentation = 1 if signed else 0
        ds.PixelData = arr.tobytes()

    edit(path, fn)


def stored_values(path: str | Path) -> tuple[np.ndarray, float]:
    """The raw stored RT Dose values and DoseGridScaling of ``path``."""
    ds = pydicom.dcmread(str(path))
    return np.asarray(ds.pixel_array), float(ds.DoseGridScaling)


# ----------------------------------------------------------------------------- checking
#: Peak (Gy) of the hot spot scenarios put on the spinal cord centre (0, 35, 0).
CORD_HOT_GY = 40.0
CORD_CENTRE = (CORD_XY[0], CORD_XY[1], 0.0)


def hot_cord(peak: float = CORD_HOT_GY, sigma: float = 4.0) -> DoseFn:
    """The base dose plus a Gaussian hot spot of ``peak`` Gy on the cord at z = 0.

    The cord centre (0, 35, 0) is a dose grid point, so the cord's maximum of the trilinear
    dose is exactly :func:`hot_cord_max_gy` (TG-101 5 fx: Max[Gy] < 30 fails).
    """
    return with_hotspot(falloff(), CORD_CENTRE, peak, sigma)


def hot_cord_max_gy(peak: float = CORD_HOT_GY) -> float:
    """Analytic maximum of :func:`hot_cord` in the cord: the value at the cord centre."""
    x, y, z = (np.array([v]) for v in CORD_CENTRE)
    return float(falloff()(x, y, z)[0]) + peak


def check_spec(
    spec: CaseSpec,
    folder: str | Path,
    protocol: object = "tg101",
    options: object = None,
    mutate: Callable[[CaseFiles], None] | None = None,
):  # -> rtcheck.result.Result
    """Write ``spec`` in ``folder``, apply ``mutate`` to the files, run ``check_path``."""
    from rtcheck.pipeline import CheckOptions, check_path

    files = write_case(spec, folder)
    if mutate is not None:
        mutate(files)
    return check_path(str(files.folder), protocol, options or CheckOptions())  # type: ignore[arg-type]


def rows(result, structure: str) -> list:
    """Constraint rows of ``result`` on protocol structure ``structure``."""
    return [c for c in result.constraints if c.structure == structure]


def codes(result) -> set[str]:
    """Finding codes of ``result``."""
    return {f.code for f in result.findings}
