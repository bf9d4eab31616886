"""numba kernels of the DVH engine: trilinear dose sampling and weighted accumulation.

Only loops live here; :mod:`rtcheck.dvh.compute` validates inputs and calls these. All
arrays are in the *canonical* dose frame: ``dose[k, j, i]`` with ``i, j, k`` along +x, +y,
+z and fractional index ``u = (x - x0) / dx`` etc. A point is inside the grid when it lies in
the box of voxel centres, widened by ``tol`` (index units) for rounding; outside points give
NaN and their volume is counted apart, never as 0 Gy.

Parallel kernels follow the race-free pattern of stumpy: work is cut into chunks, each
``prange`` chunk writes only its own accumulator row, and the caller sums the rows.
Flags come from :mod:`rtcheck.geometry._kernels` (one place).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from rtcheck.geometry._kernels import IJIT, JIT, PJIT, plane_cells

#: Coverage at or below this (fraction of a cell) is rounding noise.
COVERAGE_EPS = 1e-12


@nb.njit(**IJIT)
def _trilerp(
    dose: np.ndarray,
    i0: int,
    i1: int,
    j0: int,
    j1: int,
    k0: int,
    k1: int,
    tx: float,
    ty: float,
    tz: float,
) -> tuple[float, float, float, float]:
    """Trilinear value and gradient (per index step) from corner indices and weights."""
    e00 = dose[k0, j0, i1] - dose[k0, j0, i0]
    e01 = dose[k0, j1, i1] - dose[k0, j1, i0]
    e10 = dose[k1, j0, i1] - dose[k1, j0, i0]
    e11 = dose[k1, j1, i1] - dose[k1, j1, i0]
    c00 = dose[k0, j0, i0] + tx * e00
    c01 = dose[k0, j1, i0] + tx * e01
    c10 = dose[k1, j0, i0] + tx * e10
    c11 = dose[k1, j1, i0] + tx * e11
    c0 = c00 + ty * (c01 - c00)
    c1 = c10 + ty * (c11 - c10)
    e0 = e00 + ty * (e01 - e00)
    e1 = e10 + ty * (e11 - e10)
    gu = e0 + tz * (e1 - e0)
    gv = (c01 - c00) + tz * ((c11 - c10) - (c01 - c00))
    return c0 + tz * (c1 - c0), gu, gv, c1 - c0


@nb.njit(**IJIT)
def _inside(dose: np.ndarray, u: float, v: float, w: float, tol: np.ndarray) -> bool:
    nz, ny, nx = dose.shape
    return (
        -tol[0] <= u <= nx - 1 + tol[0]
        and -tol[1] <= v <= ny - 1 + tol[1]
        and -tol[2] <= w <= nz - 1 + tol[2]
    )


@nb.njit(**IJIT)
def sample(dose: np.ndarray, u: float, v: float, w: float, tol: np.ndarray, nearest: bool) -> float:
    """Dose at fractional index ``(u, v, w)``: trilinear (or nearest voxel); NaN outside."""
    if not _inside(dose, u, v, w, tol):
        return np.nan
    if nearest:
        nz, ny, nx = dose.shape
        i = int(min(max(u, 0.0), nx - 1.0) + 0.5)
        j = int(min(max(v, 0.0), ny - 1.0) + 0.5)
        k = int(min(max(w, 0.0), nz - 1.0) + 0.5)
        return dose[k, j, i]
    return sample_grad(dose, u, v, w, tol)[0]


@nb.njit(**IJIT)
def sample_grad(
    dose: np.ndarray, u: float, v: float, w: float, tol: np.ndarray
) -> tuple[float, float, float, float]:
    """Trilinear dose and its gradient (Gy per index step) at ``(u, v, w)``; NaN outside."""
    if not _inside(dose, u, v, w, tol):
        return np.nan, 0.0, 0.0, 0.0
    nz, ny, nx = dose.shape
    u = min(max(u, 0.0), nx - 1.0)
    v = min(max(v, 0.0), ny - 1.0)
    w = min(max(w, 0.0), nz - 1.0)
    i0 = int(u)
    j0 = int(v)
    k0 = int(w)
    i1 = min(i0 + 1, nx - 1)
    j1 = min(j0 + 1, ny - 1)
    k1 = min(k0 + 1, nz - 1)
    return _trilerp(dose, i0, i1, j0, j1, k0, k1, u - i0, v - j0, w - k0)


@nb.njit(**PJIT)
def sample_points(dose: np.ndarray, uvw: np.ndarray, tol: np.ndarray, nearest: bool) -> np.ndarray:
    """Dose at ``(n, 3)`` fractional indices ``(u, v, w)``; NaN outside the grid."""
    n = uvw.shape[0]
    out = np.empty(n)
    for m in nb.prange(n):
        out[m] = sample(dose, uvw[m, 0], uvw[m, 1], uvw[m, 2], tol, nearest)
    return out


@nb.njit(**IJIT)
def _bin(d: float, lo: float, inv_bw: float, nbins: int) -> int:
    b = int((d - lo) * inv_bw)
    return min(max(b, 0), nbins - 1)


@nb.njit(**IJIT)
def splat(
    hw: np.ndarray,
    hwd: np.ndarray,
    dens: np.ndarray,
    d: float,
    half: float,
    wt: float,
    lo: float,
    bw: float,
    inv_bw: float,
) -> None:
    """Spread weight ``wt`` uniformly over doses ``[d - half, d + half]`` into bin rows.

    The end bins get their share with its mean dose (``hw``, ``hwd``); whole bins in between
    get a constant density through the difference array ``dens`` (summed by
    :func:`finish_splats`). The interval is narrowed symmetrically to stay in the binned
    range, so the weighted mean dose is always exactly ``d``.
    """
    nbins = hw.shape[0]
    top = lo + nbins * bw
    half = min(half, d - lo, top - d)
    if half <= 0.0:
        b = _bin(d, lo, inv_bw, nbins)
        hw[b] += wt
        hwd[b] += wt * d
        return
    a = d - half
    b = d + half
    ba = _bin(a, lo, inv_bw, nbins)
    bb = _bin(b, lo, inv_bw, nbins)
    if ba == bb:
        hw[ba] += wt
        hwd[ba] += wt * d
        return
    rho = wt / (b - a)
    ea = min(max(lo + (ba + 1) * bw, a), b)
    eb = min(max(lo + bb * bw, ea), b)
    w1 = (ea - a) * rho
    w2 = (b - eb) * rho
    hw[ba] += w1
    hwd[ba] += w1 * 0.5 * (a + ea)
    hw[bb] += w2
    hwd[bb] += w2 * 0.5 * (eb + b)
    if bb > ba + 1:
        # whole bins ba+1 .. bb-1 hold the rest at density rho, each at its centre
        dens[ba + 1] += rho * bw
        dens[bb] -= rho * bw


@nb.njit(**JIT)
def finish_splats(
    hw: np.ndarray, hwd: np.ndarray, dens: np.ndarray, lo: float, bw: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sum the per-chunk rows and add the whole-bin densities: ``(sum_w, sum_wd)``."""
    nbins = hw.shape[1]
    sw = hw.sum(axis=0)
    swd = hwd.sum(axis=0)
    dsum = dens.sum(axis=0)
    run = 0.0
    for b in range(nbins):
        run += dsum[b]
        if run != 0.0:
            sw[b] += run
            swd[b] += run * (lo + (b + 0.5) * bw)
    return sw, swd


@nb.njit(**PJIT)
def weighted_histogram(
    values: np.ndarray, weights: np.ndarray, lo: float, hi: float, nbins: int, nchunk: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-bin sums of weights and of weight x value; NaN values go to ``outside``.

    Bins split ``[lo, hi]`` evenly; values beyond are clamped into the end bins. Returns
    ``(sum_w[nbins], sum_wd[nbins], outside_w)``.
    """
    n = values.shape[0]
    inv_bw = nbins / (hi - lo) if hi > lo else 0.0
    hw = np.zeros((nchunk, nbins))
    hwd = np.zeros((nchunk, nbins))
    out = np.zeros(nchunk)
    step = (n + nchunk - 1) // nchunk
    for ch in nb.prange(nchunk):
        for m in range(ch * step, min(n, (ch + 1) * step)):
            d = values[m]
            wt = weights[m]
            if np.isnan(d):
                out[ch] += wt
                continue
            b = _bin(d, lo, inv_bw, nbins)
            hw[ch, b] += wt
            hwd[ch, b] += wt * d
    return hw.sum(axis=0), hwd.sum(axis=0), out.sum()


@nb.njit(**JIT)
def block_extrema(dose: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of the voxel values over ``b x b x b`` blocks (a coarse pyramid)."""
    nz, ny, nx = dose.shape
    bz, by, bx = (nz + b - 1) // b, (ny + b - 1) // b, (nx + b - 1) // b
    bmin = np.empty((bz, by, bx))
    bmax = np.empty((bz, by, bx))
    for kk in range(bz):
        for jj in range(by):
            for ii in range(bx):
                lo = np.inf
                hi = -np.inf
                for k in range(kk * b, min(nz, kk * b + b)):
                    for j in range(jj * b, min(ny, jj * b + b)):
                        for i in range(ii * b, min(nx, ii * b + b)):
                            d = dose[k, j, i]
                            lo = min(lo, d)
                            hi = max(hi, d)
                bmin[kk, jj, ii] = lo
                bmax[kk, jj, ii] = hi
    return bmin, bmax


@nb.njit(**JIT)
def _n_layers(a: float, b: float, dz: float, cell_mm: float) -> int:
    """Layers of the piece ``[a, b]``: at least 1, each at most ``cell_mm`` thick."""
    x = np.ceil((b - a) * dz / cell_mm - 0.02)
    # a thin piece, or a non-finite count (cell_mm NaN or 0, refused upstream): one layer;
    # NaN and inf are never converted to int (undefined in LLVM)
    return int(x) if 1.0 < x < 1e15 else 1


@nb.njit(**JIT)
def _next_cut(a: float, top: float, nz: int, every_plane: bool) -> float:
    """Next cut above ``a``: the next dose plane, or only the grid's first/last plane."""
    if every_plane:
        return min(np.floor(a) + 1.0, top)
    for edge in (0.0, nz - 1.0):
        if a < edge < top:
            return edge
    return top


@nb.njit(**JIT)
def _slab_pieces(
    w_lo: np.ndarray, w_hi: np.ndarray, nz: int, every_plane: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut slabs at the dose planes: ``(piece_start[P + 1], piece_a, piece_b)``.

    Two passes of the same exact operations (floor, +1, min, compare: no rounding that
    compiler contraction could change), so the count of the first pass is the number of
    pieces the second writes.
    """
    n = w_lo.shape[0]
    start = np.zeros(n + 1, dtype=np.int64)
    for p in range(n):
        count = 0
        a = w_lo[p]
        while a < w_hi[p]:
            a = _next_cut(a, w_hi[p], nz, every_plane)
            count += 1
        start[p + 1] = start[p] + count
    pa = np.empty(start[n])
    pb = np.empty(start[n])
    for p in range(n):
        m = start[p]
        a = w_lo[p]
        while a < w_hi[p] and m < start[p + 1]:
            b = _next_cut(a, w_hi[p], nz, every_plane)
            pa[m] = a
            pb[m] = b
            m += 1
            a = b
    return start, pa, pb


@nb.njit(**JIT)
def slab_layers(
    w_lo: np.ndarray, w_hi: np.ndarray, dz: float, cell_mm: float, nz: int, every_plane: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut every slab ``[w_lo, w_hi]`` (dose z index) into sampling layers.

    Slabs are cut at every dose plane (``every_plane``: the dose is then linear in z inside a
    layer) or only at the grid's first and last planes (so a layer is wholly inside or
    outside the grid), and each piece into equal layers at most ``cell_mm`` thick (``inf``:
    one layer per piece). Returns ``(layer_start[P + 1], layer_w, layer_t_mm)``: centre
    (z index) and thickness (mm) of every layer.

    Each piece's layer count is computed once and stored, then used both to size and to
    fill the output: a count recomputed in a second pass could differ in the last bit
    (fastmath contraction) and write past the arrays (see ``docs/dvh.md``).
    """
    n = w_lo.shape[0]
    piece_start, pa, pb = _slab_pieces(w_lo, w_hi, nz, every_plane)
    npiece = pa.shape[0]
    pk = np.empty(npiece, dtype=np.int64)
    for m in range(npiece):
        pk[m] = _n_layers(pa[m], pb[m], dz, cell_mm)
    start = np.zeros(n + 1, dtype=np.int64)
    for p in range(n):
        start[p + 1] = start[p] + pk[piece_start[p] : piece_start[p + 1]].sum()
    lw = np.empty(start[n])
    lt = np.empty(start[n])
    m = 0
    for q in range(npiece):
        a = pa[q]
        b = pb[q]
        k = pk[q]
        for r in range(k):
            lw[m] = a + (r + 0.5) * (b - a) / k
            lt[m] = (b - a) * dz / k
            m += 1
    return start, lw, lt


@nb.njit(**IJIT)
def _accumulate(
    hw: np.ndarray,
    hwd: np.ndarray,
    dens: np.ndarray,
    dose: np.ndarray,
    u: float,
    v: float,
    w: float,
    wt: float,
    sx: float,
    sy: float,
    sz: float,
    tol: np.ndarray,
    nearest: bool,
    lo: float,
    bw: float,
) -> tuple[float, float]:
    """One sample: dose at ``(u, v, w)`` spread over the dose range of its volume.

    The spread is a uniform distribution with the variance of the (linearised) dose over
    the sample's volume, ``sx * gu**2 + sy * gv**2 + sz * gw**2`` (``s = extent**2 / 12``
    per axis, index units). Returns ``(dose, half-spread)``; dose NaN outside the grid
    (nothing accumulated).
    """
    if nearest:
        d = sample(dose, u, v, w, tol, True)
        half = 0.0
    else:
        d, gu, gv, gw = sample_grad(dose, u, v, w, tol)
        half = np.sqrt(3.0 * (sx * gu * gu + sy * gv * gv + sz * gw * gw))
    if not np.isnan(d):
        splat(hw, hwd, dens, d, half, wt, lo, bw, 1.0 / bw)
    return d, half


@nb.njit(**JIT)
def _new_stats(nchunk: int) -> np.ndarray:
    stats = np.zeros((nchunk, 5))
    stats[:, 2] = np.inf
    stats[:, 3] = -np.inf
    return stats


@nb.njit(**JIT)
def _reduce_stats(stats: np.ndarray) -> np.ndarray:
    out = np.empty(5)
    out[0] = stats[:, 0].sum()
    out[1] = stats[:, 1].sum()
    out[2] = stats[:, 2].min() if stats.shape[0] else np.inf
    out[3] = stats[:, 3].max() if stats.shape[0] else -np.inf
    out[4] = stats[:, 4].max() if stats.shape[0] else 0.0
    return out


@nb.njit(**JIT)
def _plane_samples(
    rc: np.ndarray,
    mom: np.ndarray,
    i0: int,
    j0: int,
    layer_w: np.ndarray,
    layer_t: np.ndarray,
    geom: np.ndarray,
    dose: np.ndarray,
    tol: np.ndarray,
    nearest: bool,
    lo: float,
    bw: float,
    hw: np.ndarray,
    hwd: np.ndarray,
    dens: np.ndarray,
    stats: np.ndarray,
    bounds: np.ndarray,
) -> None:
    """Samples of one plane's layers into bin rows: one per covered cell and layer.

    Each sample sits at the centroid of the covered part of its cell (exact first moments)
    and spreads its weight over a dose interval with the exact variance of the linearised
    dose over its volume (second moments of the covered part in-plane, the layer's
    thickness in z). ``geom = (fx, fy, dz, cell_mm2)``; ``stats = (outside, sampled, min,
    max, spread)`` is updated in place; ``bounds = (min, max)`` of the voxel values at the
    corners of every interpolation patch a sample lies in (so they bound the dose over the
    plane's slab inside the grid).
    """
    fx, fy, dz, cell_mm2 = geom[0], geom[1], geom[2], geom[3]
    inv_bw = 1.0 / bw
    nz, ny, nx = dose.shape
    # covered cells once: in-plane interpolation corners/weights at their centroids
    ia, ib, ja, jb, tx, ty, area, cvar = _covered_cells(rc, mom, i0, j0, fx, fy, nx, ny, tol)
    area *= cell_mm2
    n = area.shape[0]
    for m in range(layer_w.shape[0]):
        w = layer_w[m]
        wl = layer_t[m] / 1000.0
        if w < -tol[2] or w > nz - 1 + tol[2]:
            stats[0] += wl * area.sum()
            continue
        w = min(max(w, 0.0), nz - 1.0)
        ka = min(int(w), nz - 1)
        kb = min(ka + 1, nz - 1)
        tz = w - ka
        if nearest:
            ka = kb if tz >= 0.5 else ka
        tl = layer_t[m] / dz
        sz = tl * tl / 12.0
        # dose planes the layer spans (one patch when slabs are cut at every plane)
        k_lo = min(max(int(np.floor(w - 0.5 * tl + 1e-9)), 0), nz - 1)
        k_hi = min(max(int(np.ceil(w + 0.5 * tl - 1e-9)), k_lo), nz - 1)
        for q in range(n):
            wt = area[q] * wl
            if ia[q] < 0:
                stats[0] += wt
                continue
            if nearest:
                i = ib[q] if tx[q] >= 0.5 else ia[q]
                j = jb[q] if ty[q] >= 0.5 else ja[q]
                d = dose[ka, j, i]
                half = 0.0
            else:
                d, gu, gv, gw = _trilerp(dose, ia[q], ib[q], ja[q], jb[q], ka, kb, tx[q], ty[q], tz)
                gu /= fx
                gv /= fy
                var = cvar[q, 0] * gu * gu + cvar[q, 1] * gv * gv + 2.0 * cvar[q, 2] * gu * gv
                half = np.sqrt(3.0 * max(var + sz * gw * gw, 0.0))
                c_lo, c_hi = _corner_range(dose, ia[q], ib[q], ja[q], jb[q], k_lo, k_hi)
                bounds[0] = min(bounds[0], c_lo)
                bounds[1] = max(bounds[1], c_hi)
            splat(hw, hwd, dens, d, half, wt, lo, bw, inv_bw)
            stats[1] += wt
            stats[2] = min(stats[2], d)
            stats[3] = max(stats[3], d)
            stats[4] = max(stats[4], half)


@nb.njit(**JIT)
def _covered_cells(
    rc: np.ndarray,
    mom: np.ndarray,
    i0: int,
    j0: int,
    fx: float,
    fy: float,
    nx: int,
    ny: int,
    tol: np.ndarray,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]:
    """Interpolation corners and weights of the covered cells' centroids, their covered area
    (cell units) and the covariance ``(xx, yy, xy)`` of the covered part (cell units^2).
    ``ia < 0`` marks a centroid outside the grid in-plane."""
    n = rc.shape[0]
    ia = np.empty(n, dtype=np.int64)
    ib = np.empty(n, dtype=np.int64)
    ja = np.empty(n, dtype=np.int64)
    jb = np.empty(n, dtype=np.int64)
    tx = np.empty(n)
    ty = np.empty(n)
    area = np.empty(n)
    cvar = np.empty((n, 3))
    for q in range(n):
        cv = mom[q, 0]
        cx = min(max(mom[q, 1] / cv, 0.0), 1.0)
        cy = min(max(mom[q, 2] / cv, 0.0), 1.0)
        area[q] = cv
        cvar[q, 0] = max(mom[q, 3] / cv - cx * cx, 0.0)
        cvar[q, 1] = max(mom[q, 4] / cv - cy * cy, 0.0)
        cvar[q, 2] = mom[q, 5] / cv - cx * cy
        u = (i0 + rc[q, 1] + cx) / fx
        v = (j0 + rc[q, 0] + cy) / fy
        if u < -tol[0] or v < -tol[1] or u > nx - 1 + tol[0] or v > ny - 1 + tol[1]:
            ia[q] = -1
            continue
        u = min(max(u, 0.0), nx - 1.0)
        v = min(max(v, 0.0), ny - 1.0)
        ia[q] = min(int(u), nx - 1)
        ib[q] = min(ia[q] + 1, nx - 1)
        ja[q] = min(int(v), ny - 1)
        jb[q] = min(ja[q] + 1, ny - 1)
        tx[q] = u - ia[q]
        ty[q] = v - ja[q]
    return ia, ib, ja, jb, tx, ty, area, cvar


@nb.njit(**IJIT)
def _corner_range(
    dose: np.ndarray, i0: int, i1: int, j0: int, j1: int, k0: int, k1: int
) -> tuple[float, float]:
    """Min and max of the voxel values at columns i0, i1, rows j0, j1, planes k0..k1."""
    lo = np.inf
    hi = -np.inf
    for k in range(k0, k1 + 1):
        a = min(min(dose[k, j0, i0], dose[k, j0, i1]), min(dose[k, j1, i0], dose[k, j1, i1]))
        b = max(max(dose[k, j0, i0], dose[k, j0, i1]), max(dose[k, j1, i0], dose[k, j1, i1]))
        lo = min(lo, a)
        hi = max(hi, b)
    return lo, hi


@nb.njit(**IJIT)
def _tally(stats: np.ndarray, d: float, wt: float, half: float, d_lo: float, d_hi: float) -> None:
    """Add one sample to ``stats``; ``d_lo``/``d_hi``: the dose range over its volume."""
    if np.isnan(d):
        stats[0] += wt
    else:
        stats[1] += wt
        stats[2] = min(stats[2], d_lo)
        stats[3] = max(stats[3], d_hi)
        stats[4] = max(stats[4], half)


@nb.njit(**PJIT)
def slab_histogram(
    xy: np.ndarray,
    ring_start: np.ndarray,
    ring_factor: np.ndarray,
    plane_ring_start: np.ndarray,
    plane_box: np.ndarray,
    planes: np.ndarray,
    chunk_start: np.ndarray,
    layer_start: np.ndarray,
    layer_w: np.ndarray,
    layer_t: np.ndarray,
    dose: np.ndarray,
    grid: np.ndarray,
    fxy: np.ndarray,
    tol: np.ndarray,
    nearest: bool,
    lo: float,
    hi: float,
    nbins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rasterize each listed plane and accumulate its slab's dose samples.

    ``grid = (x0, y0, dx, dy, dz)`` of the canonical dose grid, ``fxy = (fx, fy)``; plane
    ``p`` is rasterized on refined cells ``plane_box[p] = (i0, j0, ncol, nrow)``. Every
    covered cell of every layer is one sample at the centroid of the covered part of the
    cell (exact first moments), weighted by covered area x layer thickness (cc), its dose
    spread over the dose range of its volume (:func:`splat`). Planes whose coverage leaves
    [0, 1] (crossing contours) are flagged and skipped. Returns ``(sum_w[nbins],
    sum_wd[nbins], stats[5], plane_area_mm2, plane_ok, plane_bounds)`` over the listed
    planes, ``stats = (outside_cc, sampled_cc, min, max, widest half-spread)`` and
    ``plane_bounds = (min, max)`` bounds of the dose over each plane's slab in the grid.
    """
    nchunk = chunk_start.shape[0] - 1
    nq = planes.shape[0]
    bw = (hi - lo) / nbins if hi > lo else 1.0
    x0, y0, dx, dy, dz = grid[0], grid[1], grid[2], grid[3], grid[4]
    fx, fy = fxy[0], fxy[1]
    cell_mm2 = dx / fx * dy / fy
    geom = np.array([fx, fy, dz, cell_mm2])
    hw = np.zeros((nchunk, nbins))
    hwd = np.zeros((nchunk, nbins))
    dens = np.zeros((nchunk, nbins))
    stats = _new_stats(nchunk)
    area = np.zeros(nq)
    ok = np.ones(nq, dtype=np.bool_)
    bounds = np.empty((nq, 2))
    bounds[:, 0] = np.inf
    bounds[:, 1] = -np.inf
    for ch in nb.prange(nchunk):
        for q in range(chunk_start[ch], chunk_start[ch + 1]):
            p = planes[q]
            i0, j0, ncol, nrow = plane_box[p, 0], plane_box[p, 1], plane_box[p, 2], plane_box[p, 3]
            rc, mom, tot, good = plane_cells(
                xy,
                ring_start,
                ring_factor,
                plane_ring_start[p],
                plane_ring_start[p + 1],
                x0 + i0 * dx / fx,
                y0 + j0 * dy / fy,
                fx / dx,
                fy / dy,
                nrow,
                ncol,
            )
            area[q] = tot * cell_mm2
            ok[q] = good
            if good:
                _plane_samples(
                    rc,
                    mom,
                    i0,
                    j0,
                    layer_w[layer_start[p] : layer_start[p + 1]],
                    layer_t[layer_start[p] : layer_start[p + 1]],
                    geom,
                    dose,
                    tol,
                    nearest,
                    lo,
                    bw,
                    hw[ch],
                    hwd[ch],
                    dens[ch],
                    stats[ch],
                    bounds[q],
                )
    sw, swd = finish_splats(hw, hwd, dens, lo, bw)
    return sw, swd, _reduce_stats(stats), area, ok, bounds


@nb.njit(**JIT)
def _cell_samples(
    plane: np.ndarray,
    k: int,
    origin: np.ndarray,
    step: np.ndarray,
    cell_cc: float,
    dose: np.ndarray,
    tol: np.ndarray,
    nearest: bool,
    lo: float,
    bw: float,
    hw: np.ndarray,
    hwd: np.ndarray,
    dens: np.ndarray,
    stats: np.ndarray,
    spread_extremes: bool,
) -> None:
    """Samples of one z-plane of occupancy cells (centres) into bin rows.

    With ``spread_extremes``, ``stats[2:4]`` get the extremes of the samples' spreads
    (``d -+ half``: the dose range over a full cell where the dose is linear), else the
    extremes of the centres' doses.
    """
    sx = step[0] * step[0] / 12.0
    sy = step[1] * step[1] / 12.0
    sz = step[2] * step[2] / 12.0
    w = origin[2] + k * step[2]
    for j in range(plane.shape[0]):
        v = origin[1] + j * step[1]
        for i in range(plane.shape[1]):
            f = plane[j, i]
            if f <= COVERAGE_EPS:
                continue
            cf = min(f, 1.0)
            wt = f * cell_cc
            u = origin[0] + i * step[0]
            d, half = _accumulate(
                hw, hwd, dens, dose, u, v, w, wt, sx * cf, sy * cf, sz * cf, tol, nearest, lo, bw
            )
            # extremes: the sample's spread (exact for a full cell in a linear field)
            spread = half if spread_extremes else 0.0
            _tally(stats, d, wt, half, d - spread, d + spread)


@nb.njit(**PJIT)
def occupancy_histogram(
    fraction: np.ndarray,
    origin: np.ndarray,
    step: np.ndarray,
    cell_cc: float,
    dose: np.ndarray,
    tol: np.ndarray,
    nearest: bool,
    lo: float,
    hi: float,
    nbins: int,
    spread_extremes: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accumulate the dose at the centre of every occupied cell of ``fraction[z, y, x]``.

    Cell ``(k, j, i)`` has its centre at dose index ``origin + (i, j, k) * step`` and spans
    ``step`` index units; its dose is spread as in :func:`slab_histogram` (the in-plane and
    z spreads scaled by the occupied fraction). Returns ``(sum_w, sum_wd, stats[5])``;
    with ``spread_extremes``, ``stats[2]``/``stats[3]`` are the extremes of the samples' spreads
    (trilinear mode), else those of the centres' doses.
    Parallel over z.
    """
    nk = fraction.shape[0]
    bw = (hi - lo) / nbins if hi > lo else 1.0
    hw = np.zeros((nk, nbins))
    hwd = np.zeros((nk, nbins))
    dens = np.zeros((nk, nbins))
    stats = _new_stats(nk)
    for k in nb.prange(nk):
        _cell_samples(
            fraction[k],
            k,
            origin,
            step,
            cell_cc,
            dose,
            tol,
            nearest,
            lo,
            bw,
            hw[k],
            hwd[k],
            dens[k],
            stats[k],
            spread_extremes,
        )
    sw, swd = finish_splats(hw, hwd, dens, lo, bw)
    return sw, swd, _reduce_stats(stats)


# ------------------------------------------------------------------------ exact extremes
@nb.njit(**JIT)
def _piece(
    dose: np.ndarray,
    sign: float,
    tol: np.ndarray,
    w: float,
    u0: float,
    v0: float,
    du: float,
    dv: float,
    ta: float,
    tb: float,
    best: float,
) -> float:
    """Best of ``sign * dose`` on the edge piece ``[ta, tb]`` (inside one cell) at level w."""
    nz, ny, nx = dose.shape
    tm = 0.5 * (ta + tb)
    i = int(np.floor(u0 + du * tm))
    j = int(np.floor(v0 + dv * tm))
    if 0 <= i < nx - 1 and 0 <= j < ny - 1:
        k0 = min(max(int(np.floor(w)), 0), nz - 1)
        k1 = min(k0 + 1, nz - 1)
        tz = min(max(w - k0, 0.0), 1.0)
        c00 = dose[k0, j, i] + tz * (dose[k1, j, i] - dose[k0, j, i])
        c10 = dose[k0, j, i + 1] + tz * (dose[k1, j, i + 1] - dose[k0, j, i + 1])
        c01 = dose[k0, j + 1, i] + tz * (dose[k1, j + 1, i] - dose[k0, j + 1, i])
        c11 = dose[k0, j + 1, i + 1] + tz * (dose[k1, j + 1, i + 1] - dose[k0, j + 1, i + 1])
        bound = max(max(sign * c00, sign * c10), max(sign * c01, sign * c11))
        if bound <= best:
            return best
        e = c00 - c10 - c01 + c11
        b2 = e * du * dv
        if b2 != 0.0:
            s0 = u0 - i
            t0 = v0 - j
            b1 = (c10 - c00) * du + (c01 - c00) * dv + e * (s0 * dv + t0 * du)
            ts = -b1 / (2.0 * b2)
            if ta < ts < tb:
                d = sample(dose, u0 + du * ts, v0 + dv * ts, w, tol, False)
                if not np.isnan(d):
                    best = max(best, sign * d)
    d = sample(dose, u0 + du * tb, v0 + dv * tb, w, tol, False)
    if not np.isnan(d):
        best = max(best, sign * d)
    return best


@nb.njit(**JIT)
def _edge(
    dose: np.ndarray,
    sign: float,
    tol: np.ndarray,
    w: float,
    u0: float,
    v0: float,
    u1: float,
    v1: float,
    best: float,
) -> float:
    """Best of ``sign * dose`` along one polygon edge at level w (cut at grid lines)."""
    du = u1 - u0
    dv = v1 - v0
    d = sample(dose, u0, v0, w, tol, False)
    if not np.isnan(d):
        best = max(best, sign * d)
    tu = np.inf
    dtu = np.inf
    if du != 0.0:
        ku = np.floor(u0) + 1.0 if du > 0 else np.ceil(u0) - 1.0
        tu = (ku - u0) / du
        dtu = 1.0 / abs(du)
    tv = np.inf
    dtv = np.inf
    if dv != 0.0:
        kv = np.floor(v0) + 1.0 if dv > 0 else np.ceil(v0) - 1.0
        tv = (kv - v0) / dv
        dtv = 1.0 / abs(dv)
    ta = 0.0
    while ta < 1.0:
        tb = min(min(tu, tv), 1.0)
        best = _piece(dose, sign, tol, w, u0, v0, du, dv, ta, tb, best)
        if tu <= tb:
            tu += dtu
        if tv <= tb:
            tv += dtv
        ta = tb
    return best


@nb.njit(**JIT)
def _plane_level(
    xy: np.ndarray,
    ring_start: np.ndarray,
    first: int,
    last: int,
    dose: np.ndarray,
    grid: np.ndarray,
    sign: float,
    tol: np.ndarray,
    w: float,
    spans: np.ndarray,
    best: float,
) -> float:
    """Best of ``sign * dose`` over one plane's region at level w: edges, then grid nodes
    inside (``spans`` rows ``(j, i_first, i_last)`` from :func:`node_spans`)."""
    nz = dose.shape[0]
    x0, y0, dx, dy = grid[0], grid[1], grid[2], grid[3]
    for ring in range(first, last):
        a = ring_start[ring]
        b = ring_start[ring + 1]
        if b - a < 3:
            continue
        pu = (xy[b - 1, 0] - x0) / dx
        pv = (xy[b - 1, 1] - y0) / dy
        for m in range(a, b):
            qu = (xy[m, 0] - x0) / dx
            qv = (xy[m, 1] - y0) / dy
            best = _edge(dose, sign, tol, w, pu, pv, qu, qv, best)
            pu = qu
            pv = qv
    k0 = min(max(int(np.floor(w)), 0), nz - 1)
    k1 = min(k0 + 1, nz - 1)
    tz = min(max(w - k0, 0.0), 1.0)
    for s in range(spans.shape[0]):
        j = spans[s, 0]
        for i in range(spans[s, 1], spans[s, 2] + 1):
            d = dose[k0, j, i] + tz * (dose[k1, j, i] - dose[k0, j, i])
            best = max(best, sign * d)
    return best


@nb.njit(**JIT)
def node_spans(
    xy: np.ndarray,
    ring_start: np.ndarray,
    first: int,
    last: int,
    grid: np.ndarray,
    box: np.ndarray,
) -> np.ndarray:
    """Grid nodes inside a plane's even-odd region, as row spans ``(j, i_first, i_last)``.

    Scanline rule of :func:`rtcheck.geometry._kernels.point_in_ring`: for each node row the
    crossings of every edge with the row are sorted; nodes strictly between the 1st and 2nd,
    3rd and 4th... crossings are inside. ``box = (i_lo, j_lo, i_hi, j_hi)`` clips the nodes.
    """
    x0, y0, dx, dy = grid[0], grid[1], grid[2], grid[3]
    n_edges = ring_start[last] - ring_start[first]
    xs = np.empty(n_edges)
    out = np.empty((0, 3), dtype=np.int64)
    rows = []
    for j in range(box[1], box[3] + 1):
        y = y0 + j * dy
        n = 0
        for ring in range(first, last):
            a = ring_start[ring]
            b = ring_start[ring + 1]
            if b - a < 3:
                continue
            px = xy[b - 1, 0]
            py = xy[b - 1, 1]
            for m in range(a, b):
                qx = xy[m, 0]
                qy = xy[m, 1]
                if (qy > y) != (py > y):
                    xs[n] = qx + (y - qy) * (px - qx) / (py - qy)
                    n += 1
                px = qx
                py = qy
        cuts = np.sort(xs[:n])
        for m in range(0, n - 1, 2):
            i_a = max(int(np.floor((cuts[m] - x0) / dx)) + 1, box[0])
            i_b = min(int(np.ceil((cuts[m + 1] - x0) / dx)) - 1, box[2])
            if i_b >= i_a:
                rows.append((j, i_a, i_b))
    if rows:
        out = np.empty((len(rows), 3), dtype=np.int64)
        for r in range(len(rows)):
            out[r, 0] = rows[r][0]
            out[r, 1] = rows[r][1]
            out[r, 2] = rows[r][2]
    return out


@nb.njit(**JIT)
def slab_extreme(
    xy: np.ndarray,
    ring_start: np.ndarray,
    plane_ring_start: np.ndarray,
    node_box: np.ndarray,
    w_lo: np.ndarray,
    w_hi: np.ndarray,
    dose: np.ndarray,
    grid: np.ndarray,
    tol: np.ndarray,
    sign: float,
    start: float,
    bound: np.ndarray,
    order: np.ndarray,
) -> float:
    """Exact max of ``sign * dose`` (trilinear) over the slab model inside the grid.

    The trilinear field is linear along each axis inside a voxel patch, so its extreme over a
    plane's slab lies at a level ``w`` in {slab ends, dose planes between} on the region's
    boundary or on a grid node inside it; along a polygon edge the field is quadratic
    between grid lines. Candidates: polygon vertices, edge/grid-line crossings, the edge
    pieces' stationary points and the grid nodes inside the region, at every level. Planes
    whose ``bound`` (an upper bound of ``sign * dose`` over the plane's slab) cannot beat
    the best so far (starting at ``start``) are skipped; planes are visited in ``order``
    (decreasing bound), so the search stops at the first such plane. ``node_box[p] =
    (i_lo, j_lo, i_hi, j_hi)`` are the grid nodes (clipped) around plane ``p``.
    """
    nz = dose.shape[0]
    best = start
    for p in order:
        if bound[p] <= best:
            break
        wl = max(w_lo[p], 0.0)
        wh = min(w_hi[p], nz - 1.0)
        if wl > wh + tol[2]:
            continue
        wh = max(wh, wl)
        spans = node_spans(
            xy, ring_start, plane_ring_start[p], plane_ring_start[p + 1], grid, node_box[p]
        )
        w = wl
        while True:
            best = _plane_level(
                xy,
                ring_start,
                plane_ring_start[p],
                plane_ring_start[p + 1],
                dose,
                grid,
                sign,
                tol,
                w,
                spans,
                best,
            )
            if w >= wh:
                break
            w = min(np.floor(w) + 1.0, wh)
    return best
