"""The sample cases: lesions, prescriptions, plans and dose grids (data, numpy only).

Folder names are a contract (other tests use them):

* ``oligo_single``: one 5-fraction plan treating five lesions, TG-263 names, with a CT.
* ``oligo_single_clinic``: the same geometry and dose, clinic-style names, no CT.
* ``oligo_multi``: four per-lesion plans in 3, 5, 8 and 30 fractions on their own grids
  (one delivered as per-beam doses), one structure set, clinic-style names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtcheck.model import GridGeometry, Patient
from rtcheck.sample.anatomy import BODY_A, BODY_B, ORGANS, PLANE_SPACING_MM, Z_MAX
from rtcheck.sample.dose import (
    CONVENTIONAL,
    SBRT,
    Ball,
    Capsule,
    Cylinder,
    Lesion,
    axial_grid,
)
from rtcheck.sample.shapes import Solid

CASE_NAMES = ("oligo_single", "oligo_single_clinic", "oligo_multi")

# ------------------------------------------------------------------------------ lesions

PRIMARY = Lesion(
    "primary", Ball((-112.0, 5.0, 70.0), 16.0), 5.0, 55.0, SBRT,
    "PTVp", "GTVp", "PTV_55Gy", "GTV_RUL", "right upper lobe primary, peripheral",
)  # fmt: skip
LLL_NODULE = Lesion(
    "lll", Ball((90.5, -24.4, -21.1), 12.0), 5.0, 50.0, SBRT,
    "PTV1", "GTV1", "PTV2 LLL", "GTV2 LLL", "left lower lobe nodule abutting the heart",
)  # fmt: skip
T8 = Lesion(
    "t8", Cylinder(0.0, 35.0, 19.0, -28.5, 4.5), 4.0, 35.0, SBRT,
    "PTV2", "GTV2", "PTV_T8", "GTV_T8", "T8 vertebral body, next to the cord",
)  # fmt: skip
ADRENAL = Lesion(
    "adrenal", Ball((50.0, 30.0, -85.0), 13.0), 5.0, 40.0, SBRT,
    "PTV3", "GTV3", "PTV_40Gy", "GTV Adrenal", "left adrenal",
)  # fmt: skip
LIVER_MET = Lesion(
    "liver", Ball((-75.0, 10.0, -80.0), 15.0), 5.0, 45.0, SBRT,
    "PTV4", "GTV4", "PTV Liver", "GTV Liver", "liver segment VII",
)  # fmt: skip

T8_3FX = Lesion(
    "t8", T8.ptv, 4.0, 30.0, SBRT,
    "PTV_T8", "GTV_T8", "PTV_T8", "GTV_T8", "T8 vertebral body, next to the cord",
)  # fmt: skip
RUL = Lesion(
    "rul", PRIMARY.ptv, 5.0, 55.0, SBRT,
    "PTV_RUL", "GTV_RUL", "PTV_RUL", "GTV_RUL", "right upper lobe primary, peripheral",
)  # fmt: skip
HILUM = Lesion(
    "hilum", Ball((62.0, -8.0, 5.0), 13.0), 5.0, 60.0, SBRT,
    "PTV_Hilum", "GTV_Hilum", "PTV_Hilum", "GTV_Hilum", "left hilar (central) lesion",
)  # fmt: skip
MEDIAST = Lesion(
    "mediast", Capsule((-15.0, -10.0, 55.0), (5.0, -2.0, 25.0), 18.0), 8.0, 60.0, CONVENTIONAL,
    "PTV_Mediast", "GTV_Nodes", "PTV_Mediast", "GTV_Nodes", "mediastinal nodes (4R, 7)",
)  # fmt: skip


@dataclass(frozen=True)
class PlanSpec:
    """One RT Plan of a case and how its dose is exported."""

    key: str
    label: str
    name: str
    fractions: int
    lesions: tuple[Lesion, ...]
    grid: GridGeometry
    bits: int = 16
    delivery: str = "PLAN"
    beam_gantry: tuple[float, ...] = ()


@dataclass(frozen=True)
class CaseSpec:
    """A sample case."""

    name: str
    patient: Patient
    clinic_names: bool
    lesions: tuple[Lesion, ...]
    plans: tuple[PlanSpec, ...]
    with_ct: bool
    description: str
    protocol: str | None = None
    design: str = ""


@dataclass(frozen=True)
class RoiSpec:
    """One ROI of a case's structure set."""

    number: int
    name: str
    tg263: str
    kind: str
    color: tuple[int, int, int]
    solid: Solid
    lesion: Lesion | None = None


def roi_table(case: CaseSpec) -> tuple[RoiSpec, ...]:
    """ROIs in file order: organs (numbers 1..), then PTV and GTV of each lesion."""
    rois = [
        RoiSpec(n, o.clinic if case.clinic_names else o.tg263, o.tg263, o.kind, o.color, o.solid)
        for n, o in enumerate(ORGANS, start=1)
    ]
    number = len(rois) + 1
    for lesion in case.lesions:
        ptv = lesion.ptv_clinic if case.clinic_names else lesion.ptv_name
        gtv = lesion.gtv_clinic if case.clinic_names else lesion.gtv_name
        rois.append(
            RoiSpec(number, ptv, lesion.ptv_name, "PTV", (255, 0, 0), lesion.ptv.solid(), lesion)
        )
        rois.append(
            RoiSpec(
                number + 1,
                gtv,
                lesion.gtv_name,
                "GTV",
                (255, 255, 255),
                lesion.ptv.solid(lesion.gtv_margin),
                lesion,
            )
        )
        number += 2
    return tuple(rois)


def body_box(spacing: tuple[float, float, float], shift: float) -> GridGeometry:
    """A grid over the body contour's bounding box, as a TPS sets it (dose grid = External box).

    Voxel centres start ``shift`` mm (``-1 < shift <= 0``) beyond the box corner and reach past
    the far side, so every structure (slab end caps included: contours +-1.5 mm beyond the end
    planes) lies inside the voxel-centre box; different shifts give different origins.
    """
    half = np.array([BODY_A, BODY_B, Z_MAX + 0.5 * PLANE_SPACING_MM])
    lo = tuple(float(v) for v in np.round(-half - 1.0 + shift, 2))
    hi = tuple(float(v) for v in half + 1.0)
    return axial_grid(lo, hi, spacing)  # type: ignore[arg-type]


#: Full-body dose grid of the single-plan cases: 3 mm, voxel centres off the contour planes.
BODY_GRID = axial_grid((-167.5, -113.5, -152.0), (168.0, 114.0, 153.0), (3.0, 3.0, 3.0))
#: CT grid: 3 mm pixels, slices on the contour planes.
CT_GRID = axial_grid((-169.5, -115.5, -150.0), (169.5, 115.5, 150.0), (3.0, 3.0, 3.0))

SINGLE_LESIONS = (PRIMARY, LLL_NODULE, T8, ADRENAL, LIVER_MET)

_SINGLE_PLAN = PlanSpec(
    "oligo", "OLIGO 5FX", "Oligometastatic SBRT, 5 lesions", 5, SINGLE_LESIONS, BODY_GRID
)

_DESIGN = (
    "designed outcome for rtcheck check --protocol tg101 (5 fractions): SpinalCord fails every "
    "limit (T8 metastasis, cord max ~34.6 Gy > 30 Gy), Heart Max fails (left lower lobe "
    "nodule abutting the heart, ~49 Gy > 38 Gy) while Heart D15cc passes; every other "
    "constraint on a structure of the sample passes by more than 10 %"
)


def case_specs() -> dict[str, CaseSpec]:
    """Every sample case by folder name."""
    single = CaseSpec(
        "oligo_single",
        Patient("RTCHECK-SAMPLE-01", "Sample^Oligo^Single", "19580312", "M"),
        False,
        SINGLE_LESIONS,
        (_SINGLE_PLAN,),
        True,
        "Oligometastatic NSCLC, one 5-fraction SBRT plan for 5 lesions, TG-263 names, CT",
        "tg101",
        _DESIGN,
    )
    clinic = CaseSpec(
        "oligo_single_clinic",
        Patient("RTCHECK-SAMPLE-02", "Sample^Oligo^Clinic", "19580312", "M"),
        True,
        SINGLE_LESIONS,
        (_SINGLE_PLAN,),
        False,
        "Same geometry and dose as oligo_single with clinic-style structure names, no CT",
        "tg101",
        _DESIGN,
    )
    multi = CaseSpec(
        "oligo_multi",
        Patient("RTCHECK-SAMPLE-03", "Sample^Oligo^Multi", "19610704", "F"),
        True,
        (T8_3FX, RUL, HILUM, MEDIAST),
        _multi_plans(),
        False,
        "Oligometastatic NSCLC, four per-lesion plans (3, 5, 8, 30 fractions), clinic names",
    )
    return {c.name: c for c in (single, clinic, multi)}


def _multi_plans() -> tuple[PlanSpec, ...]:
    # Every grid covers the whole body contour (a real TPS computes dose over the External
    # box), each with its own spacing and origin: T8 2.5 x 2.5 x 5 mm, RUL 3.5 mm, HILUM
    # 3 x 3 x 3.25 mm (three per-beam files), MEDIAST 5 mm (conventional, 32-bit). Spacings
    # are chosen so the stored grids reproduce the formula within the stated tolerances
    # (SBRT V100% is the most sensitive) and sample_dicom stays below 18 MB.
    t8_grid = body_box((2.5, 2.5, 5.0), -0.3)
    rul_grid = body_box((3.5, 3.5, 3.5), -0.9)
    hilum_grid = body_box((3.0, 3.0, 3.25), -0.6)
    box = body_box((5.0, 5.0, 5.0), 0.0)
    # Frames from head to feet (negative GridFrameOffsetVector): origin at the top plane.
    nz = box.shape[0]
    top = (box.origin[0], box.origin[1], box.origin[2] + (nz - 1) * box.spacing[2])
    mediast_grid = GridGeometry(
        top, box.spacing, box.row_dir, box.col_dir, (0.0, 0.0, -1.0), box.shape
    )
    return (
        PlanSpec("T8", "T8 30/3", "T8 spine SBRT", 3, (T8_3FX,), t8_grid),
        PlanSpec("RUL", "RUL 55/5", "RUL primary SBRT", 5, (RUL,), rul_grid),
        PlanSpec(
            "HILUM",
            "HILUM 60/8",
            "Left hilum central SBRT",
            8,
            (HILUM,),
            hilum_grid,
            delivery="BEAM",
            beam_gantry=(40.0, 110.0, 180.0),
        ),
        PlanSpec(
            "MEDIAST",
            "MEDIAST 60/30",
            "Mediastinal nodes conventional",
            30,
            (MEDIAST,),
            mediast_grid,
            bits=32,
        ),
    )


def lesion_gantry(lesion: Lesion) -> tuple[float, float]:
    """Two beam angles (IEC, HFS) entering from the lesion's side of the body."""
    x, y, _ = lesion.ptv.centre
    g = float(np.degrees(np.arctan2(x, -y))) % 360.0
    return (round(g, 1) % 360.0, round(g + 40.0, 1) % 360.0)
