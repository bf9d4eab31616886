"""DICOM writers: model objects -> valid DICOM RT / CT files (pydicom; explicit VR little endian).

Used by the sample generator (:mod:`rtcheck.sample`) and by ``rtcheck sum``. Every file is a
conformant instance of its IOD (RT Dose, RT Structure Set, RT Plan, CT Image) with the
mandatory modules filled, and is *deterministic*: the same inputs and seeds give byte-identical
files (UIDs derived from seeds with :func:`uid_from`, fixed dates, no software version or
timestamp anywhere, a fixed implementation UID).

Geometry follows :mod:`rtcheck.model`: voxel ``(k, j, i)`` of a grid is written as frame ``k``,
row ``j``, column ``i``; ImageOrientationPatient is ``row_dir + col_dir``; frames are placed by
a *relative* GridFrameOffsetVector along the plane normal ``row_dir x col_dir`` (negative steps
when ``slice_dir`` is opposite to the normal). Any axis-aligned or oblique orthonormal frame is
accepted, so HFS, FFS, HFP and FFP grids can be written.
"""

from rtcheck.io.write.common import (
    CT_CLASS,
    FIXED_DATE,
    FIXED_TIME,
    IMPLEMENTATION_UID,
    ORIENTATION_AXES,
    RTDOSE_CLASS,
    RTPLAN_CLASS,
    RTSTRUCT_CLASS,
    ct_image_uid,
    ds_number,
    uid_from,
)
from rtcheck.io.write.ct import write_ct_series
from rtcheck.io.write.dose import dose_scaling, quantise_dose, write_dose
from rtcheck.io.write.plan import write_plan
from rtcheck.io.write.structures import write_structure_set

__all__ = [
    "CT_CLASS",
    "FIXED_DATE",
    "FIXED_TIME",
    "IMPLEMENTATION_UID",
    "ORIENTATION_AXES",
    "RTDOSE_CLASS",
    "RTPLAN_CLASS",
    "RTSTRUCT_CLASS",
    "ct_image_uid",
    "dose_scaling",
    "ds_number",
    "quantise_dose",
    "uid_from",
    "write_ct_series",
    "write_dose",
    "write_plan",
    "write_structure_set",
]
