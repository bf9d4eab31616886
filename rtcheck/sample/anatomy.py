"""The synthetic thorax + upper abdomen (DICOM patient coordinates, HFS, mm).

Axes: ``+x`` patient left, ``+y`` posterior, ``+z`` superior (head). The body is an elliptic
cylinder cropped to the thorax and upper abdomen; organs are ellipsoids, cylinders, tubes
(capsule chains) and shells placed where they are in a typical adult. Contours are axial
polygons every :data:`PLANE_SPACING_MM` on the planes :data:`PLANES`, like CT slices.

Each organ has a TG-263 name and a clinic-style name (the ``*_clinic`` sample uses the
latter); targets are defined per case in :mod:`rtcheck.sample.cases`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtcheck.sample.shapes import (
    Difference,
    Ellipsoid,
    EllipticCylinder,
    Group,
    Shell,
    Solid,
    Tube,
)

#: Contour (and CT slice) spacing and the axial planes of the synthetic patient.
PLANE_SPACING_MM = 3.0
Z_MIN, Z_MAX = -150.0, 150.0
PLANES = tuple(float(z) for z in np.arange(Z_MIN, Z_MAX + 1e-6, PLANE_SPACING_MM))

BODY_A, BODY_B = 165.0, 110.0


@dataclass(frozen=True)
class Organ:
    """One structure of the synthetic patient."""

    tg263: str
    clinic: str
    solid: Solid
    kind: str = "ORGAN"
    color: tuple[int, int, int] = (200, 200, 200)


# --- building blocks -------------------------------------------------------------------

BODY = EllipticCylinder(0.0, 0.0, BODY_A, BODY_B, Z_MIN, Z_MAX)
VERTEBRA = EllipticCylinder(0.0, 35.0, 16.0, 16.0, Z_MIN, Z_MAX)  # vertebral bodies (CT only)
CORD = EllipticCylinder(0.0, 60.0, 5.0, 5.0, Z_MIN, Z_MAX)
HEART = Ellipsoid((25.0, -47.0, -25.0), (60.0, 38.0, 50.0))
LIVER_BLOCK = Ellipsoid((-65.0, -15.0, -110.0), (80.0, 70.0, 65.0), z1=-48.0)
KIDNEY_L = Ellipsoid((75.0, 55.0, -130.0), (28.0, 22.0, 50.0))
KIDNEY_R = Ellipsoid((-75.0, 55.0, -130.0), (28.0, 22.0, 50.0))
STOMACH = Ellipsoid((80.0, -38.0, -105.0), (38.0, 30.0, 40.0))
LUNG_R = Difference(Ellipsoid((-80.0, 5.0, 25.0), (55.0, 72.0, 100.0)), (HEART,), z0=-45.0)
LUNG_L = Difference(Ellipsoid((85.0, 5.0, 20.0), (52.0, 72.0, 100.0)), (HEART,), z0=-54.0)
ESOPHAGUS = Tube(
    (
        (0.0, 0.0, 160.0),
        (2.0, 0.0, 60.0),
        (8.0, 2.0, -20.0),
        (25.0, -5.0, -70.0),
        (45.0, -20.0, -100.0),
    ),
    7.0,
    z0=-78.0,
    z1=Z_MAX,
)
TRACHEA = Tube(((0.0, -18.0, 40.0), (0.0, -18.0, 170.0)), 9.0, z0=41.0, z1=Z_MAX)
BRONCHUS_R = Tube(((-10.0, -16.0, 39.0), (-30.0, -10.0, 21.0), (-45.0, -4.0, 6.0)), 6.0, z1=39.5)
BRONCHUS_L = Tube(((10.0, -16.0, 39.0), (35.0, -10.0, 15.0), (50.0, -4.0, 0.0)), 6.0, z1=39.5)
AIRWAY_PROX = Group(
    (Tube(((0.0, -18.0, 40.0), (0.0, -18.0, 170.0)), 9.0, z0=41.0, z1=60.5), BRONCHUS_R, BRONCHUS_L)
)
ASCENDING_AORTA = EllipticCylinder(-12.0, -44.0, 14.0, 14.0, 27.0, 61.5)
DESCENDING_AORTA = EllipticCylinder(24.0, 18.0, 11.0, 11.0, Z_MIN, 61.5)
AORTIC_ARCH = Tube(
    ((-12.0, -44.0, 70.0), (30.0, -30.0, 70.01), (24.0, 18.0, 70.02)),
    11.0,
    62.0,
    76.5,
    (30.0, -30.0),
)
GREAT_VESSELS = Group((ASCENDING_AORTA, DESCENDING_AORTA, AORTIC_ARCH))
PLEXUS_L = Tube(((32.0, 45.0, 152.0), (70.0, 28.0, 138.0), (110.0, 10.0, 127.0)), 5.0, z0=124.0)
PLEXUS_R = Tube(((-32.0, 45.0, 152.0), (-70.0, 28.0, 138.0), (-110.0, 10.0, 127.0)), 5.0, z0=124.0)
CHESTWALL = Shell(
    EllipticCylinder(0.0, 0.0, BODY_A - 5.0, BODY_B - 5.0, -66.0, 135.0),
    EllipticCylinder(0.0, 0.0, BODY_A - 25.0, BODY_B - 25.0, -66.0, 135.0),
)
SKIN = Shell(BODY, EllipticCylinder(0.0, 0.0, BODY_A - 5.0, BODY_B - 5.0, Z_MIN, Z_MAX))
LIVER = Difference(LIVER_BLOCK, (KIDNEY_R,))

#: The organs at risk, in ROI order.
ORGANS: tuple[Organ, ...] = (
    Organ("Body", "External", BODY, "EXTERNAL", (0, 128, 0)),
    Organ("Skin", "Skin", SKIN, "ORGAN", (255, 200, 160)),
    Organ("Lung_L", "Lt Lung", LUNG_L, "ORGAN", (0, 160, 255)),
    Organ("Lung_R", "Rt Lung", LUNG_R, "ORGAN", (0, 200, 255)),
    Organ("Lungs", "Lung Total", Group((LUNG_L, LUNG_R)), "ORGAN", (0, 120, 255)),
    Organ("SpinalCord", "Spinal Cord", CORD, "ORGAN", (255, 255, 0)),
    Organ("Esophagus", "Oesophagus", ESOPHAGUS, "ORGAN", (160, 82, 45)),
    Organ("Heart", "Heart", HEART, "ORGAN", (255, 0, 128)),
    Organ("GreatVes", "Great Vessels", GREAT_VESSELS, "ORGAN", (200, 0, 0)),
    Organ("Trachea", "Trachea", TRACHEA, "ORGAN", (128, 255, 255)),
    Organ("AirWay_Prox", "Prox Bronchial Tree", AIRWAY_PROX, "ORGAN", (64, 224, 208)),
    Organ("BrachialPlex_L", "Lt Brachial Plexus", PLEXUS_L, "ORGAN", (255, 165, 0)),
    Organ("BrachialPlex_R", "Rt Brachial Plexus", PLEXUS_R, "ORGAN", (255, 140, 0)),
    Organ("Chestwall", "Chest Wall", CHESTWALL, "ORGAN", (210, 180, 140)),
    Organ("Liver", "Liver", LIVER, "ORGAN", (139, 69, 19)),
    Organ("Kidney_L", "Lt Kidney", KIDNEY_L, "ORGAN", (128, 0, 128)),
    Organ("Kidney_R", "Rt Kidney", KIDNEY_R, "ORGAN", (160, 32, 240)),
    Organ("Stomach", "Stomach", STOMACH, "ORGAN", (255, 105, 180)),
)


def hu_volume(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Synthetic CT numbers (HU) at patient points (air, fat/muscle, lung, organs, bone)."""
    hu = np.full(np.broadcast(x, y, z).shape, -1000.0)
    layers: tuple[tuple[Solid, float], ...] = (
        (BODY, 20.0),
        (Shell(BODY, EllipticCylinder(0.0, 0.0, BODY_A - 12, BODY_B - 12, Z_MIN, Z_MAX)), -90.0),
        (LUNG_L, -820.0),
        (LUNG_R, -820.0),
        (HEART, 40.0),
        (GREAT_VESSELS, 45.0),
        (ESOPHAGUS, 30.0),
        (TRACHEA, -950.0),
        (BRONCHUS_L, -950.0),
        (BRONCHUS_R, -950.0),
        (LIVER_BLOCK, 60.0),
        (STOMACH, 10.0),
        (KIDNEY_L, 35.0),
        (KIDNEY_R, 35.0),
        (VERTEBRA, 450.0),
        (CORD, 35.0),
    )
    for solid, value in layers:
        hu = np.where(solid.inside(x, y, z), value, hu)
    return hu
