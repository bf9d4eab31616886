"""Geometry: grid transforms, contours -> slab model -> fractional occupancy.

* :mod:`rtcheck.geometry.grid` - canonical views of axis-aligned grids, index <-> patient.
* :mod:`rtcheck.geometry.planes` - a ROI's contours as planes with slabs (the volume model).
* :mod:`rtcheck.geometry.rasterize` - exact fractional occupancy on a refined grid.
"""

from rtcheck.geometry.grid import (
    AxisMap,
    axis_map,
    canonical_array,
    canonical_dose,
    canonical_geometry,
    is_canonical,
)
from rtcheck.geometry.planes import PlaneStack, plane_stack, slab_extents
from rtcheck.geometry.rasterize import Occupancy, Resolution, choose_resolution, rasterize

__all__ = [
    "AxisMap",
    "Occupancy",
    "PlaneStack",
    "Resolution",
    "axis_map",
    "canonical_array",
    "canonical_dose",
    "canonical_geometry",
    "choose_resolution",
    "is_canonical",
    "plane_stack",
    "rasterize",
    "slab_extents",
]
