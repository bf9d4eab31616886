"""DVH engine: numba kernels behind a validating Python API.

* :func:`compute_dvh`, :func:`compute_dvhs` - DVHs of ROIs on a dose grid (the reference
  definition of ``docs/dvh.md``: slab-model volume, trilinear dose).
* :func:`dvh_from_occupancy`, :func:`dvh_from_stack` - DVHs of derived structures.
* :class:`DvhOptions` - named conventions and sampling settings; :class:`PreparedDose` - a
  dose grid prepared once for many DVHs.
* :class:`DVH` - weighted dose samples with interpolated D/V queries.
"""

from rtcheck.dvh.compute import (
    DvhOptions,
    PreparedDose,
    compute_dvh,
    compute_dvhs,
    dvh_from_occupancy,
    dvh_from_stack,
)
from rtcheck.dvh.dvh import DVH

__all__ = [
    "DVH",
    "DvhOptions",
    "PreparedDose",
    "compute_dvh",
    "compute_dvhs",
    "dvh_from_occupancy",
    "dvh_from_stack",
]
