"""``@njit`` kernels of the exact Euclidean distance transform (loops only, no validation).

Felzenszwalb & Huttenlocher, "Distance transforms of sampled functions" (Theory of
Computing 8, 2012): the squared distance transform of a sampled function is separable; along
one axis it is the lower envelope of parabolas ``f(q) + s^2 (p - q)^2``, found in linear
time. :func:`envelope_pass` runs that 1-D step on every line of a 2-D array of lines and also
returns, per cell, the line position of the parabola that attains the minimum, so the caller
can carry the nearest feature's indices from pass to pass (a feature transform).
Validation and the per-axis loop live in :mod:`rtcheck.geometry.derive`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = {"cache": True, "nogil": True}


@nb.njit(**_JIT)
def _line(
    f: np.ndarray, s2: float, out: np.ndarray, arg: np.ndarray, v: np.ndarray, z: np.ndarray
) -> None:
    """Lower envelope of ``f[q] + s2 (p - q)^2`` for one line (``inf`` entries skipped)."""
    n = f.shape[0]
    k = -1
    for q in range(n):
        fq = f[q]
        if fq == np.inf:
            continue
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -np.inf
            z[1] = np.inf
            continue
        while True:
            r = v[k]
            x = ((fq + s2 * q * q) - (f[r] + s2 * r * r)) / (2.0 * s2 * (q - r))
            if x <= z[k]:
                k -= 1
                if k < 0:
                    break
            else:
                break
        k += 1
        v[k] = q
        z[k] = -np.inf if k == 0 else x
        z[k + 1] = np.inf
    if k < 0:
        for p in range(n):
            out[p] = np.inf
            arg[p] = p
        return
    j = 0
    for p in range(n):
        while z[j + 1] < p:
            j += 1
        r = v[j]
        out[p] = f[r] + s2 * (p - r) * (p - r)
        arg[p] = r


@nb.njit(parallel=True, **_JIT)
def envelope_pass(f: np.ndarray, s2: float) -> tuple[np.ndarray, np.ndarray]:
    """Run :func:`_line` on every row of the 2-D array ``f`` (lines along axis 1).

    Returns the squared distances and, per cell, the position (along the line) of the
    minimising parabola.
    """
    m, n = f.shape
    out = np.empty((m, n), dtype=np.float64)
    arg = np.empty((m, n), dtype=np.int32)
    for i in nb.prange(m):
        v = np.empty(n, dtype=np.int64)
        z = np.empty(n + 1, dtype=np.float64)
        _line(f[i], s2, out[i], arg[i], v, z)
    return out, arg


@nb.njit(parallel=True, **_JIT)
def envelope_pass_tracked(
    f: np.ndarray, feature: np.ndarray, s2: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`envelope_pass` that also carries a feature id per cell.

    ``feature[i, q]`` is the id (e.g. flat index) of the feature nearest to cell ``q`` so far;
    the result holds, per cell ``p``, the id carried by the minimising position.
    """
    m, n = f.shape
    out = np.empty((m, n), dtype=np.float64)
    ids = np.empty((m, n), dtype=feature.dtype)
    for i in nb.prange(m):
        v = np.empty(n, dtype=np.int64)
        z = np.empty(n + 1, dtype=np.float64)
        arg = np.empty(n, dtype=np.int32)
        _line(f[i], s2, out[i], arg, v, z)
        for p in range(n):
            ids[i, p] = feature[i, arg[p]]
    return out, ids


@nb.njit(parallel=True, **_JIT)
def feature_estimate(
    frac: np.ndarray,
    dist: np.ndarray,
    ids: np.ndarray,
    spacing: np.ndarray,
    sign: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: ``dist + sign |F_c - 0.5| h_c`` for its nearest feature ``c`` (3-D, flat).

    ``h_c`` is the cell size along the direction from the cell to ``c`` (mean spacing when
    they coincide). Also returns whether ``c`` is partly occupied (``eps < F_c < 1 - eps``).
    """
    nz, ny, nx = frac.shape
    n = nz * ny * nx
    f = frac.ravel()
    d = dist.ravel()
    idx = ids.ravel()
    est = np.empty(n, dtype=np.float64)
    partial = np.zeros(n, dtype=np.bool_)
    h_mean = (spacing[0] + spacing[1] + spacing[2]) / 3.0
    for p in nb.prange(n):
        if not np.isfinite(d[p]):
            est[p] = np.inf
            continue
        c = idx[p]
        fc = f[c]
        kz, rem = divmod(p, ny * nx)
        jy, ix = divmod(rem, nx)
        cz, crem = divmod(c, ny * nx)
        cy, cx = divmod(crem, nx)
        vz = (cz - kz) * spacing[0]
        vy = (cy - jy) * spacing[1]
        vx = (cx - ix) * spacing[2]
        n2 = vz * vz + vy * vy + vx * vx
        h = h_mean
        if n2 > 0:
            h = (vz * vz * spacing[0] + vy * vy * spacing[1] + vx * vx * spacing[2]) / n2
        est[p] = d[p] + sign * abs(fc - 0.5) * h
        partial[p] = eps < fc < 1.0 - eps
    return est.reshape(frac.shape), partial.reshape(frac.shape)
