"""Analytic dose of the synthetic plans (numpy only).

Each lesion's dose is ``Rx * f(s)`` where ``s`` is the signed distance (mm) from the point to
the surface of the lesion's PTV (negative inside) and ``f`` a smooth fall-off profile
(:class:`Profile`): SBRT-like (~100-114 % inside, 50 % about 1 cm outside, a low-dose tail)
or conventional (flatter inside, gentler fall-off). A plan's dose is the sum over its
lesions; per-beam doses split it with smooth weights that add up to one everywhere.

PTVs are solids with a closed-form signed distance: balls, capsules (a segment with a
radius) and capped cylinders along z. The same solids give the contours
(:mod:`rtcheck.sample.shapes`), so what is contoured and what is dosed agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rtcheck.model import GridGeometry
from rtcheck.sample.shapes import EllipticCylinder, Solid, Tube, sphere

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Profile:
    """``f(s) = a1 / (1 + exp((s - m1) / w1)) + a2 / (1 + exp((s - m2) / w2))`` (s in mm)."""

    a1: float
    m1: float
    w1: float
    a2: float
    m2: float
    w2: float

    def __call__(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, float)
        return self.a1 * _logistic((s - self.m1) / self.w1) + self.a2 * _logistic(
            (s - self.m2) / self.w2
        )


def _logistic(u: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(u))`` without overflow."""
    return 0.5 * (1.0 - np.tanh(0.5 * u))


#: SBRT fall-off: f = 1.00 at s = +0.32 mm, up to 1.15 deep inside, 0.50 at 10.9 mm,
#: 0.20 at 20 mm, 0.05 at 40 mm.
SBRT = Profile(0.78, 8.15, 3.84, 0.374, 17.94, 11.18)
#: Conventional fall-off: up to 1.02 inside, 0.965 at the PTV surface, 0.95 at +1.05 mm,
#: 0.50 at 10.4 mm, 0.09 at 20 mm.
CONVENTIONAL = Profile(0.92, 10.0, 3.2, 0.10, 20.0, 12.0)


# ------------------------------------------------------------------------ target solids


@dataclass(frozen=True)
class Ball:
    """A ball PTV (centre, radius)."""

    c: Vec3
    r: float

    def distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz) = self.c
        return np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) - self.r

    def solid(self, margin: float = 0.0) -> Solid:
        return sphere(self.c, self.r - margin)

    @property
    def centre(self) -> Vec3:
        return self.c


@dataclass(frozen=True)
class Capsule:
    """All points within ``r`` of the segment ``a``-``b``."""

    a: Vec3
    b: Vec3
    r: float

    def distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        a, b = np.asarray(self.a), np.asarray(self.b)
        ab = b - a
        t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / (ab @ ab)
        t = np.clip(t, 0.0, 1.0)
        d2 = (x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2
        return np.sqrt(d2 + (z - a[2] - t * ab[2]) ** 2) - self.r

    def solid(self, margin: float = 0.0) -> Solid:
        return Tube((self.a, self.b), self.r - margin)

    @property
    def centre(self) -> Vec3:
        return tuple(0.5 * (np.asarray(self.a) + np.asarray(self.b)))  # type: ignore[return-value]


@dataclass(frozen=True)
class Cylinder:
    """A capped cylinder along z: radius ``r`` around ``(cx, cy)``, ``z0 <= z <= z1``."""

    cx: float
    cy: float
    r: float
    z0: float
    z1: float

    def distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        dr = np.sqrt((x - self.cx) ** 2 + (y - self.cy) ** 2) - self.r
        dz = np.abs(z - 0.5 * (self.z0 + self.z1)) - 0.5 * (self.z1 - self.z0)
        outside = np.sqrt(np.maximum(dr, 0.0) ** 2 + np.maximum(dz, 0.0) ** 2)
        return outside + np.minimum(np.maximum(dr, dz), 0.0)

    def solid(self, margin: float = 0.0) -> Solid:
        m = margin
        return EllipticCylinder(self.cx, self.cy, self.r - m, self.r - m, self.z0 + m, self.z1 - m)

    @property
    def centre(self) -> Vec3:
        return (self.cx, self.cy, 0.5 * (self.z0 + self.z1))


Target = Ball | Capsule | Cylinder


@dataclass(frozen=True)
class Lesion:
    """One treated lesion: PTV solid, GTV margin, prescription and names."""

    key: str
    ptv: Target
    gtv_margin: float
    rx_gy: float
    profile: Profile
    ptv_name: str
    gtv_name: str
    ptv_clinic: str
    gtv_clinic: str
    site: str

    def dose(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """This lesion's dose contribution (Gy)."""
        return self.rx_gy * self.profile(self.ptv.distance(x, y, z))


def plan_dose(
    lesions: tuple[Lesion, ...], x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Sum of the lesions' doses at patient points (Gy)."""
    total = np.zeros(np.broadcast(x, y, z).shape)
    for lesion in lesions:
        total = total + lesion.dose(x, y, z)
    return total


def beam_weights(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, iso: Vec3, gantry_deg: tuple[float, ...]
) -> np.ndarray:
    """Smooth per-beam weights ``(n_beams, ...)`` adding up to 1 at every point.

    Beam ``b`` enters from gantry angle ``g`` (IEC, HFS: 0 = anterior, 90 = patient left):
    its weight grows towards its entrance side (softmax of the position along the beam's
    source direction, 40 mm scale).
    """
    logits = []
    for g in gantry_deg:
        t = np.deg2rad(g)
        ux, uy = np.sin(t), -np.cos(t)
        logits.append(((x - iso[0]) * ux + (y - iso[1]) * uy + 0.0 * (z - iso[2])) / 40.0)
    stack = np.stack(np.broadcast_arrays(*logits))
    stack = stack - stack.max(axis=0, keepdims=True)
    w = np.exp(stack)
    return w / w.sum(axis=0, keepdims=True)


def axial_grid(lo: Vec3, hi: Vec3, spacing: Vec3) -> GridGeometry:
    """HFS grid whose voxel centres start at ``lo`` and cover ``hi`` (``lo + n*spacing >= hi``)."""
    shape_xyz = [
        int(np.ceil((h - lo_ - 1e-9) / s)) + 1 for lo_, h, s in zip(lo, hi, spacing, strict=True)
    ]
    return GridGeometry(
        origin=tuple(float(v) for v in lo),  # type: ignore[arg-type]
        spacing=tuple(float(v) for v in spacing),  # type: ignore[arg-type]
        row_dir=(1.0, 0.0, 0.0),
        col_dir=(0.0, 1.0, 0.0),
        slice_dir=(0.0, 0.0, 1.0),
        shape=(shape_xyz[2], shape_xyz[1], shape_xyz[0]),
    )


def grid_points(geometry: GridGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patient x, y, z of every voxel centre, each shaped ``geometry.shape`` ([k, j, i])."""
    nz, ny, nx = geometry.shape
    kk, jj, ii = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    ijk = np.stack([ii, jj, kk], axis=-1).astype(float)
    xyz = geometry.index_to_patient(ijk)
    return xyz[..., 0], xyz[..., 1], xyz[..., 2]


@functools.lru_cache(maxsize=64)
def _inverse_affine(geometry: GridGeometry) -> np.ndarray:
    return np.linalg.inv(geometry.affine)


def to_index(geometry: GridGeometry, points: np.ndarray) -> np.ndarray:
    """Fractional ``(i, j, k)`` of ``(N, 3)`` patient points (einsum: fast for tall arrays)."""
    inv = _inverse_affine(geometry)
    return np.einsum("nj,ij->ni", np.asarray(points, float), inv[:3, :3]) + inv[:3, 3]


def trilinear(values: np.ndarray, geometry: GridGeometry, points: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of voxel values at ``(N, 3)`` patient points (NaN outside)."""
    ijk = to_index(geometry, points)
    nz, ny, nx = geometry.shape
    size = np.array([nx, ny, nz], float)
    outside = np.any((ijk < -1e-6) | (ijk > size - 1 + 1e-6), axis=1)
    ijk = np.clip(ijk, 0, size - 1)
    base = np.minimum(np.floor(ijk), np.maximum(size - 2, 0)).astype(np.int64)
    f = ijk - base
    g = 1.0 - f
    flat = np.ascontiguousarray(values).ravel()
    strides = np.array([1, nx, nx * ny], np.int64)
    shift = np.minimum(np.array([nx, ny, nz]) - 1, 1)  # 0 along an axis of one voxel
    index0 = base @ strides
    out = np.zeros(len(points))
    for di in (0, 1):
        wi = f[:, 0] if di else g[:, 0]
        for dj in (0, 1):
            wij = wi * (f[:, 1] if dj else g[:, 1])
            for dk in (0, 1):
                w = wij * (f[:, 2] if dk else g[:, 2])
                step = di * shift[0] * strides[0] + dj * shift[1] * strides[1]
                step += dk * shift[2] * strides[2]
                out += w * flat[index0 + step]
    out[outside] = np.nan
    return out
