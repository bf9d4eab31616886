"""Frozen dataclasses describing a treatment plan, independent of any file format.

Conventions (see ``docs/conventions.md``):

* Coordinates are DICOM patient coordinates in mm.
* Arrays are indexed ``[k, j, i]`` = ``[slice, row, column]``.
* A grid's ``origin`` is the centre of voxel ``(0, 0, 0)``; the patient position of voxel
  ``(k, j, i)`` is ``origin + i*dx*row_dir + j*dy*col_dir + k*dz*slice_dir``, where
  ``row_dir`` is the direction along a row (increasing column index ``i``), ``col_dir``
  along a column (increasing row index ``j``) and ``slice_dir`` the direction of increasing
  slice index ``k`` (for RT Dose: the sign of the GridFrameOffsetVector times the plane normal).
* Doses are float Gy, whatever the file stored.

No pydicom, numba or yaml here: readers in :mod:`rtcheck.io` build these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from rtcheck.errors import Finding

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class GridGeometry:
    """Regular 3-D grid geometry in patient coordinates.

    Attributes
    ----------
    origin
        Patient position (mm) of the centre of voxel ``(0, 0, 0)``.
    spacing
        ``(dx, dy, dz)``: column spacing, row spacing, slice spacing in mm (all > 0).
    row_dir, col_dir, slice_dir
        Unit direction cosines of increasing ``i``, ``j`` and ``k``.
    shape
        Array shape ``(nz, ny, nx)``.
    """

    origin: Vec3
    spacing: Vec3
    row_dir: Vec3
    col_dir: Vec3
    slice_dir: Vec3
    shape: tuple[int, int, int]

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping ``(i, j, k, 1)`` to patient ``(x, y, z, 1)``."""
        a = np.eye(4)
        a[:3, 0] = np.asarray(self.row_dir) * self.spacing[0]
        a[:3, 1] = np.asarray(self.col_dir) * self.spacing[1]
        a[:3, 2] = np.asarray(self.slice_dir) * self.spacing[2]
        a[:3, 3] = self.origin
        return a

    @property
    def voxel_volume_cc(self) -> float:
        """Volume of one voxel in cm^3."""
        dx, dy, dz = self.spacing
        return dx * dy * dz / 1000.0

    @property
    def is_axis_aligned(self) -> bool:
        """True when every direction is +/- a patient axis (HFS, FFS, HFP, FFP...)."""
        m = np.abs(np.array([self.row_dir, self.col_dir, self.slice_dir]))
        return bool(np.allclose(np.sort(m, axis=1), [[0, 0, 1]] * 3, atol=1e-4))

    def index_to_patient(self, ijk: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` array of ``(i, j, k)`` indices to patient mm."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def patient_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` array of patient mm to fractional ``(i, j, k)`` indices."""
        xyz = np.asarray(xyz, dtype=float)
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def bounds(self) -> tuple[Vec3, Vec3]:
        """Patient-space axis-aligned box ``(lo, hi)`` spanned by the voxel centres."""
        nz, ny, nx = self.shape
        corners = np.array(
            [[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)], float
        )
        pts = self.index_to_patient(corners)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return (tuple(lo.tolist()), tuple(hi.tolist()))  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class DoseGrid:
    """A 3-D dose distribution in Gy.

    Attributes
    ----------
    dose_gy
        Read-only float array, shape ``geometry.shape``, in Gy.
    geometry
        :class:`GridGeometry`.
    dose_type
        DICOM DoseType (``PHYSICAL``, ``EFFECTIVE``, ``ERROR``...).
    summation_type
        DICOM DoseSummationType (``PLAN``, ``BEAM``, ``FRACTION``, ``MULTI_PLAN``...).
    referenced_plan_uid
        SOP Instance UID of the RT Plan this dose belongs to, if stated.
    referenced_beam_numbers
        Beam numbers for BEAM doses (empty otherwise).
    frame_of_reference_uid, sop_instance_uid, source
        Identity and origin of the object.
    units_note
        How the stored values became Gy (e.g. ``"GY"``, ``"RELATIVE x 50 Gy"``).
    referenced_dose_uids
        For summed doses written by rtcheck: the doses that were combined.
    """

    dose_gy: np.ndarray
    geometry: GridGeometry
    dose_type: str = "PHYSICAL"
    summation_type: str = "PLAN"
    referenced_plan_uid: str | None = None
    referenced_beam_numbers: tuple[int, ...] = ()
    frame_of_reference_uid: str | None = None
    sop_instance_uid: str | None = None
    source: str | None = None
    units_note: str = "GY"
    referenced_dose_uids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if tuple(self.dose_gy.shape) != tuple(self.geometry.shape):
            raise ValueError(
                f"dose array shape {self.dose_gy.shape} != geometry shape {self.geometry.shape}"
            )
        self.dose_gy.setflags(write=False)

    @property
    def max_gy(self) -> float:
        """Largest voxel value (Gy)."""
        return float(self.dose_gy.max()) if self.dose_gy.size else 0.0


class ContourType(StrEnum):
    """DICOM ContourGeometricType."""

    CLOSED_PLANAR = "CLOSED_PLANAR"
    POINT = "POINT"
    OPEN_PLANAR = "OPEN_PLANAR"
    OPEN_NONPLANAR = "OPEN_NONPLANAR"
    CLOSED_PLANAR_XOR = "CLOSED_PLANAR_XOR"


@dataclass(frozen=True, eq=False)
class Contour:
    """One contour: an ``(N, 3)`` array of patient mm points.

    Only closed planar contours on an axial plane (constant z) describe volume; others are
    kept so reports can say they were ignored.
    """

    points: np.ndarray
    geometric_type: ContourType = ContourType.CLOSED_PLANAR

    def __post_init__(self) -> None:
        self.points.setflags(write=False)

    @property
    def z(self) -> float:
        """Plane position (mean z of the points)."""
        return float(np.mean(self.points[:, 2]))

    @property
    def usable_for_dvh(self) -> bool:
        """True for closed planar contours with at least 3 points."""
        closed = self.geometric_type in (ContourType.CLOSED_PLANAR, ContourType.CLOSED_PLANAR_XOR)
        return closed and len(self.points) >= 3


@dataclass(frozen=True)
class Roi:
    """A region of interest of a structure set.

    Attributes
    ----------
    number
        ROI Number.
    name
        ROI Name as exported (never altered).
    interpreted_type
        RT ROI Interpreted Type (``PTV``, ``GTV``, ``CTV``, ``ORGAN``, ``EXTERNAL``...) or None.
    color
        Display colour (r, g, b) or None.
    contours
        All contours, of every geometric type.
    findings
        Problems met while reading this ROI (non-coplanar contour dropped...).
    dropped_contours
        Contours of the file that could not be read and are missing from ``contours``:
        ``(n, why)`` with ``n`` the 1-based position in the ROI's ContourSequence (0: all of
        them, e.g. an ROI number shared by two ROIs). An ROI
        with dropped contours is incomplete; the evaluation does not use it
        (``docs/safety.md``).
    """

    number: int
    name: str
    interpreted_type: str | None = None
    color: tuple[int, int, int] | None = None
    contours: tuple[Contour, ...] = ()
    findings: tuple[Finding, ...] = ()
    dropped_contours: tuple[tuple[int, str], ...] = ()

    @property
    def is_incomplete(self) -> bool:
        """True when some of the ROI's contours could not be read (see ``dropped_contours``)."""
        return bool(self.dropped_contours)

    def dropped_reason(self) -> str | None:
        """``contour N of ROI 'X' could not be read (why)``, or None when nothing was dropped."""
        if not self.dropped_contours:
            return None
        (n, why), rest = self.dropped_contours[0], self.dropped_contours[1:]
        if n == 0:  # the whole ROI (e.g. its ROI number is shared with another ROI)
            return f"the contours of ROI {self.name!r} cannot be used ({why})"
        text = f"contour {n} of ROI {self.name!r} could not be read ({why})"
        if rest:
            others = ", ".join(str(k) for k, _ in rest[:10])
            more = f" and {len(rest) - 10} more" if len(rest) > 10 else ""
            text += f"; nor could contour(s) {others}{more}"
        return text

    @property
    def dvh_contours(self) -> tuple[Contour, ...]:
        """Contours that describe volume (closed planar)."""
        return tuple(c for c in self.contours if c.usable_for_dvh)

    @property
    def is_empty(self) -> bool:
        """True when no contour describes volume."""
        return not self.dvh_contours

    def planes(self, tol_mm: float = 0.01) -> list[tuple[float, tuple[Contour, ...]]]:
        """Volume contours grouped by plane, sorted by z: ``[(z, contours), ...]``."""
        groups: list[tuple[float, list[Contour]]] = []
        for c in sorted(self.dvh_contours, key=lambda c: c.z):
            if groups and abs(c.z - groups[-1][0]) <= tol_mm:
                groups[-1][1].append(c)
            else:
                groups.append((c.z, [c]))
        return [(z, tuple(cs)) for z, cs in groups]


@dataclass(frozen=True)
class StructureSet:
    """An RT Structure Set."""

    rois: tuple[Roi, ...]
    sop_instance_uid: str | None = None
    frame_of_reference_uid: str | None = None
    referenced_series_uid: str | None = None
    label: str | None = None
    source: str | None = None
    findings: tuple[Finding, ...] = ()

    def by_number(self, number: int) -> Roi | None:
        """ROI with this ROI Number, or None."""
        return next((r for r in self.rois if r.number == number), None)

    def by_name(self, name: str) -> Roi | None:
        """ROI with exactly this name, or None."""
        return next((r for r in self.rois if r.name == name), None)


@dataclass(frozen=True)
class Prescription:
    """One dose reference of an RT Plan (usually a target prescription).

    Attributes
    ----------
    target_dose_gy
        Prescribed total dose (Gy), or None when the plan does not state it.
    description
        DoseReferenceDescription (often the target name).
    roi_number
        ReferencedROINumber, when the dose reference points at an ROI.
    reference_type
        ``TARGET`` or ``ORGAN_AT_RISK``.
    number
        DoseReferenceNumber.
    """

    target_dose_gy: float | None
    description: str | None = None
    roi_number: int | None = None
    reference_type: str = "TARGET"
    number: int | None = None


@dataclass(frozen=True)
class Beam:
    """Summary of one treatment beam."""

    number: int
    name: str | None = None
    beam_type: str | None = None
    radiation_type: str | None = None
    meterset: float | None = None
    isocenter_mm: Vec3 | None = None


@dataclass(frozen=True)
class Plan:
    """An RT Plan (or RT Ion Plan) summary."""

    label: str | None
    sop_instance_uid: str | None = None
    name: str | None = None
    fractions_planned: int | None = None
    prescriptions: tuple[Prescription, ...] = ()
    beams: tuple[Beam, ...] = ()
    referenced_structure_set_uid: str | None = None
    frame_of_reference_uid: str | None = None
    source: str | None = None

    @property
    def target_prescriptions(self) -> tuple[Prescription, ...]:
        """Dose references of type TARGET that state a dose."""
        return tuple(
            p
            for p in self.prescriptions
            if p.reference_type == "TARGET" and p.target_dose_gy is not None
        )


@dataclass(frozen=True)
class ImageGeometry:
    """Geometry of the planning CT series (optional)."""

    geometry: GridGeometry
    series_instance_uid: str | None = None
    frame_of_reference_uid: str | None = None
    slice_thickness_mm: float | None = None
    n_files: int = 0


@dataclass(frozen=True)
class Patient:
    """Patient identity as exported."""

    id: str | None = None
    name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


@dataclass(frozen=True)
class SourceFile:
    """A file that went into a case."""

    path: str
    modality: str
    sop_instance_uid: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Case:
    """The linked objects of one patient's plan (or plans, for multi-plan patients).

    Attributes
    ----------
    patient
        :class:`Patient`.
    structure_set
        The RT Structure Set, or None when absent.
    plans
        RT Plans (several for per-lesion plans).
    doses
        RT Doses; each may reference a plan via ``referenced_plan_uid``.
    image
        CT geometry, when CT was found.
    study_instance_uid
        Study the objects belong to.
    files
        Every file used, with its SHA-256.
    findings
        Discovery and linking problems that were tolerated.
    label
        Human label for the case (folder name or plan labels).
    """

    patient: Patient
    structure_set: StructureSet | None = None
    plans: tuple[Plan, ...] = ()
    doses: tuple[DoseGrid, ...] = ()
    image: ImageGeometry | None = None
    study_instance_uid: str | None = None
    files: tuple[SourceFile, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    label: str | None = None

    def plan_for_dose(self, dose: DoseGrid) -> Plan | None:
        """The plan a dose references, or None."""
        return next((p for p in self.plans if p.sop_instance_uid == dose.referenced_plan_uid), None)
