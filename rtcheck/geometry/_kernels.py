"""numba kernels for rasterization: exact polygon/pixel coverage and point-in-polygon tests.

This module (with :mod:`rtcheck.dvh._kernels`) is the only numba user of the geometry layer.
The numba flags live here, once: :data:`JIT` for serial kernels and :data:`PJIT` for
parallel ones; the DVH kernels import them.

Coverage accumulation
---------------------
Polygon vertices are given in *cell coordinates* of a raster: cell ``(r, c)`` is the unit
square ``[c, c + 1] x [r, r + 1]``. Every edge is cut at the integer grid lines into pieces
that each lie in one cell. A piece from ``(xa, ya)`` to ``(xb, yb)`` in cell ``(r, c)`` adds
its signed height ``dy = yb - ya`` times the fraction of the cell right of it,
``1 - (xa + xb) / 2 + c``, to ``acc[r, c]`` and the rest of ``dy`` to ``acc[r, c + 1]``. A
running sum along each row then gives, in every cell, the exact signed area of the polygon
inside that cell (the winding number integrated over the cell), as in font rasterizers. With
this orientation a polygon traversed clockwise in (x right, y up) axes - i.e. with a
negative shoelace area - has coverage +1 inside; :func:`ring_factor` gives the factor
that makes any ring positive.
"""

from __future__ import annotations

import os

# Parallel kernels use numba's OpenMP layer. Its default spin-waiting between parallel
# regions steals the CPU from the rest of the process (and from other processes) on small,
# frequent regions; passive waiting costs microseconds per region. An explicit user setting
# wins. Must happen before OpenMP is loaded (numba loads it on the first parallel launch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba as nb
import numpy as np

#: fastmath flags: no ``nnan``/``ninf`` (NaN marks points outside a grid), no ``reassoc``
#: (sums stay in program order, so results do not depend on compiler vectorisation).
FASTMATH = {"nsz", "arcp", "contract"}
#: Flags of every serial kernel.
JIT = {"cache": True, "nogil": True, "fastmath": FASTMATH}
#: Flags of every parallel kernel.
PJIT = {"cache": True, "nogil": True, "fastmath": FASTMATH, "parallel": True}
#: Flags of small helpers called in hot loops: inlined (no call overhead, no reference
#: counting of array arguments, which would make threads contend for cache lines).
IJIT = {"cache": True, "nogil": True, "fastmath": FASTMATH, "inline": "always"}

#: Coverage outside ``[-COVERAGE_TOL, 1 + COVERAGE_TOL]`` marks crossing contours.
COVERAGE_TOL = 1e-9


#: Moments accumulated per cell with ``moments=True``: area, x, y, xx, yy, xy.
N_MOMENTS = 6


@nb.njit(**JIT)
def _edge_records(
    rc: np.ndarray,
    val: np.ndarray,
    n: int,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    nrow: int,
    ncol: int,
) -> int:
    """Append one edge's exact signed deltas as records ``(row, col) -> moments``.

    ``val[:, 0]`` is area; with 6 columns, also the first and second moments of area about
    each cell's lower-left corner (cell units): x, y, xx, yy, xy. Returns the new count.
    """
    dye = y1 - y0
    if dye == 0.0:
        return n
    ylo = min(y0, y1)
    yhi = max(y0, y1)
    slope = (x1 - x0) / dye
    r0 = max(int(np.floor(ylo)), 0)
    r1 = min(int(np.ceil(yhi)), nrow)
    for r in range(r0, r1):
        if dye > 0.0:
            ya = max(y0, float(r))
            yb = min(y1, float(r + 1))
        else:
            ya = min(y0, float(r + 1))
            yb = max(y1, float(r))
        if yb == ya:
            continue
        xa = x0 + (ya - y0) * slope
        xb = x0 + (yb - y0) * slope
        n = _band_records(rc, val, n, r, ncol, xa, ya - r, xb, yb - r)
    return n


@nb.njit(**JIT)
def _band_records(
    rc: np.ndarray,
    val: np.ndarray,
    n: int,
    r: int,
    ncol: int,
    xa: float,
    ya: float,
    xb: float,
    yb: float,
) -> int:
    """Records of one edge piece inside row ``r`` from ``(xa, ya)`` to ``(xb, yb)``.

    x is in raster cell units, y local to the row (in [0, 1]). The piece is cut at the
    integer x lines into sub-pieces inside single cells.
    """
    ca = int(np.floor(xa))
    cb = int(np.floor(xb))
    if ca == cb or xa == xb:
        return _piece_records(rc, val, n, r, ncol, xa, ya, xb, yb)
    step = 1 if xb > xa else -1
    inv = 1.0 / (xb - xa)
    dy = yb - ya
    s_prev = 0.0
    x_prev = xa
    y_prev = ya
    c = ca
    while True:
        boundary = float(c + 1) if step > 0 else float(c)
        s = (boundary - xa) * inv
        if s >= 1.0:
            break
        y_new = ya + s * dy
        if s > s_prev:
            n = _piece_records(rc, val, n, r, ncol, x_prev, y_prev, boundary, y_new)
        s_prev = s
        x_prev = boundary
        y_prev = y_new
        c += step
    if s_prev < 1.0:
        n = _piece_records(rc, val, n, r, ncol, x_prev, y_prev, xb, yb)
    return n


@nb.njit(**JIT)
def _piece_records(
    rc: np.ndarray,
    val: np.ndarray,
    n: int,
    r: int,
    ncol: int,
    xa: float,
    ya: float,
    xb: float,
    yb: float,
) -> int:
    """A piece inside one cell: the signed moments of the part of the cell right of it go to
    the cell, the rest of the full band's moments to the next cell (so that running sums
    along the row give every cell its own moments)."""
    nm = val.shape[1]
    dy = yb - ya
    c = int(np.floor(0.5 * (xa + xb)))
    full = _band_moments(ya, yb, dy)
    if c < 0 or c >= ncol:
        rc[n, 0] = r
        rc[n, 1] = 0 if c < 0 else ncol
        for m in range(nm):
            val[n, m] = full[m]
        return n + 1
    part = _piece_moments(xa - c, xb - c, ya, dy)
    rc[n, 0] = r
    rc[n, 1] = c
    rc[n + 1, 0] = r
    rc[n + 1, 1] = c + 1
    for m in range(nm):
        val[n, m] = part[m]
        val[n + 1, m] = full[m] - part[m]
    return n + 2


@nb.njit(**IJIT)
def _band_moments(
    ya: float, yb: float, dy: float
) -> tuple[float, float, float, float, float, float]:
    """Signed moments of the unit-wide band between ``ya`` and ``yb`` (one whole cell)."""
    return (
        dy,
        0.5 * dy,
        0.5 * dy * (ya + yb),
        dy / 3.0,
        (yb * yb * yb - ya * ya * ya) / 3.0,
        0.25 * dy * (ya + yb),
    )


@nb.njit(**IJIT)
def _piece_moments(
    a: float, b: float, ya: float, dy: float
) -> tuple[float, float, float, float, float, float]:
    """Signed moments of the part of a cell right of the segment ``(a, ya)-(b, ya + dy)``.

    With ``x = a + s (b - a)``, ``y = ya + s dy`` for ``s`` in [0, 1], each moment is
    ``dy * integral over s`` of the cross-section ``x..1``: closed forms below.
    """
    d = b - a
    area = dy * (1.0 - 0.5 * (a + b))
    m_x = 0.5 * dy * (1.0 - (a * a + a * b + b * b) / 3.0)
    m_y = dy * (ya * (1.0 - a) + 0.5 * (dy * (1.0 - a) - ya * d) - dy * d / 3.0)
    m_xx = dy / 3.0 * (1.0 - 0.25 * (a * a * a + a * a * b + a * b * b + b * b * b))
    y2 = ya * ya + ya * dy + dy * dy / 3.0
    sy2 = 0.5 * ya * ya + 2.0 * ya * dy / 3.0 + 0.25 * dy * dy
    m_yy = dy * ((1.0 - a) * y2 - d * sy2)
    yx2 = ya * (a * a + a * d + d * d / 3.0) + dy * (0.5 * a * a + 2.0 * a * d / 3.0 + 0.25 * d * d)
    m_xy = 0.5 * dy * (ya + 0.5 * dy - yx2)
    return area, m_x, m_y, m_xx, m_yy, m_xy


@nb.njit(**JIT)
def ring_records(
    xy: np.ndarray,
    ring_start: np.ndarray,
    ring_factor: np.ndarray,
    first: int,
    last: int,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    nrow: int,
    ncol: int,
    nm: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Delta records ``(rc[n, 2], val[n, nm])`` of rings ``first..last-1`` on a raster.

    Vertex ``(x, y)`` (mm) maps to cell coordinates ``((x - ox) * sx, (y - oy) * sy)``.
    Each ring's deltas are multiplied by its ``ring_factor`` (+1, -1: orientation and hole
    parity; 0 skips the ring). Records of one cell add up; a running sum of them along each
    row gives the moments of every cell of the row.
    """
    cap = 0
    for ring in range(first, last):
        a = ring_start[ring]
        b = ring_start[ring + 1]
        px = xy[b - 1, 0]
        py = xy[b - 1, 1]
        for v in range(a, b):
            cap += 2 * int(abs(xy[v, 0] - px) * sx + abs(xy[v, 1] - py) * sy + 4.0)
            px = xy[v, 0]
            py = xy[v, 1]
    rc = np.empty((cap, 2), dtype=np.int64)
    val = np.empty((cap, nm))
    n = 0
    for ring in range(first, last):
        a = ring_start[ring]
        b = ring_start[ring + 1]
        f = ring_factor[ring]
        if b - a < 3 or f == 0:
            continue
        px = (xy[b - 1, 0] - ox) * sx
        py = (xy[b - 1, 1] - oy) * sy
        for v in range(a, b):
            qx = (xy[v, 0] - ox) * sx
            qy = (xy[v, 1] - oy) * sy
            if f > 0:
                n = _edge_records(rc, val, n, px, py, qx, qy, nrow, ncol)
            else:
                n = _edge_records(rc, val, n, qx, qy, px, py, nrow, ncol)
            px = qx
            py = qy
    return rc[:n], val[:n]


@nb.njit(**JIT)
def integrate_rows(acc: np.ndarray) -> tuple[float, float, float]:
    """Running sums along rows in place: deltas -> values. Returns (sum, min, max)."""
    total = 0.0
    lo = 0.0
    hi = 0.0
    for r in range(acc.shape[0]):
        run = 0.0
        for c in range(acc.shape[1]):
            run += acc[r, c]
            acc[r, c] = run
            total += run
            lo = min(lo, run)
            hi = max(hi, run)
    return total, lo, hi


@nb.njit(**JIT)
def plane_coverage(
    xy: np.ndarray,
    ring_start: np.ndarray,
    ring_factor: np.ndarray,
    first: int,
    last: int,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    nrow: int,
    ncol: int,
) -> tuple[np.ndarray, float, bool]:
    """Exact fractional coverage of one plane's rings on a dense ``nrow x ncol`` raster.

    Returns ``(coverage[nrow, ncol + 1], area_in_cells, ok)`` (the last column is spill-over,
    0 for a region inside the raster); ``ok`` is False when some cell's coverage leaves
    ``[0, 1]`` (crossing or self-intersecting contours).
    """
    rc, val = ring_records(xy, ring_start, ring_factor, first, last, ox, oy, sx, sy, nrow, ncol, 1)
    acc = np.zeros((nrow, ncol + 1))
    for q in range(rc.shape[0]):
        acc[rc[q, 0], rc[q, 1]] += val[q, 0]
    total, lo, hi = integrate_rows(acc)
    ok = lo >= -COVERAGE_TOL and hi <= 1.0 + COVERAGE_TOL
    return acc, total, ok


@nb.njit(**JIT)
def plane_cells(
    xy: np.ndarray,
    ring_start: np.ndarray,
    ring_factor: np.ndarray,
    first: int,
    last: int,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    nrow: int,
    ncol: int,
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Covered cells of one plane with their exact area moments (sparse rasterization).

    Work is proportional to the contour length and the covered cells, not to the bounding
    box: records are sorted by cell, and running sums along each row change only at cells
    an edge passes through; cells between them share the running value.

    Returns ``(rc[n, 2], mom[n, 6], area_in_cells, ok)`` for every cell with coverage above
    rounding noise: ``mom`` = covered area, first moments (x, y) and second moments (xx, yy,
    xy) of the covered part about the cell's lower-left corner, in cell units. ``ok`` is
    False when some coverage leaves ``[0, 1]`` (crossing or self-intersecting contours).
    """
    rc, val = ring_records(
        xy, ring_start, ring_factor, first, last, ox, oy, sx, sy, nrow, ncol, N_MOMENTS
    )
    m = rc.shape[0]
    order = _row_major_order(rc, nrow, ncol)
    # upper bound of covered cells: spans between consecutive records of a row
    cap = m
    for q in range(m - 1):
        a = order[q]
        b = order[q + 1]
        if rc[a, 0] == rc[b, 0]:
            cap += max(rc[b, 1] - rc[a, 1] - 1, 0)
    out_rc = np.empty((cap, 2), dtype=np.int64)
    out_m = np.empty((cap, N_MOMENTS))
    run = np.zeros(N_MOMENTS)
    n = 0
    total = 0.0
    lo = 0.0
    hi = 0.0
    q = 0
    while q < m:
        row = rc[order[q], 0]
        run[:] = 0.0
        while q < m and rc[order[q], 0] == row:
            col = rc[order[q], 1]
            while q < m and rc[order[q], 0] == row and rc[order[q], 1] == col:
                for k in range(N_MOMENTS):
                    run[k] += val[order[q], k]
                q += 1
            # this cell, then the cells up to the next record share the running value
            nxt = rc[order[q], 1] if q < m and rc[order[q], 0] == row else col + 1
            cov = run[0]
            lo = min(lo, cov)
            hi = max(hi, cov)
            if cov > 1e-12 and col < ncol:
                for c in range(col, min(nxt, ncol)):
                    out_rc[n, 0] = row
                    out_rc[n, 1] = c
                    for k in range(N_MOMENTS):
                        out_m[n, k] = run[k]
                    n += 1
                    total += cov
    ok = lo >= -COVERAGE_TOL and hi <= 1.0 + COVERAGE_TOL
    return out_rc[:n], out_m[:n], total, ok


@nb.njit(**JIT)
def _row_major_order(rc: np.ndarray, nrow: int, ncol: int) -> np.ndarray:
    """Order of records by (row, col): counting sort by row, then a sort within each row."""
    m = rc.shape[0]
    start = np.zeros(nrow + 1, dtype=np.int64)
    for q in range(m):
        start[rc[q, 0] + 1] += 1
    for r in range(nrow):
        start[r + 1] += start[r]
    fill = start[:-1].copy()
    order = np.empty(m, dtype=np.int64)
    for q in range(m):
        r = rc[q, 0]
        order[fill[r]] = q
        fill[r] += 1
    key = np.empty(m, dtype=np.int64)
    for q in range(m):
        key[q] = rc[order[q], 1]
    for r in range(nrow):
        a = start[r]
        b = start[r + 1]
        if b - a > 1:
            sub = np.argsort(key[a:b], kind="mergesort")
            order[a:b] = order[a:b][sub]
    return order


@nb.njit(**IJIT)
def point_in_ring(x: float, y: float, xy: np.ndarray, a: int, b: int) -> bool:
    """Even-odd crossing test of point ``(x, y)`` against ring ``xy[a:b]``."""
    inside = False
    px = xy[b - 1, 0]
    py = xy[b - 1, 1]
    for v in range(a, b):
        qx = xy[v, 0]
        qy = xy[v, 1]
        if (qy > y) != (py > y):
            xc = qx + (y - qy) * (px - qx) / (py - qy)
            if x < xc:
                inside = not inside
        px = qx
        py = qy
    return inside


@nb.njit(**JIT)
def point_in_region(
    x: float, y: float, xy: np.ndarray, ring_start: np.ndarray, first: int, last: int
) -> bool:
    """Even-odd test of ``(x, y)`` against all rings ``first..last-1`` of one plane."""
    inside = False
    for ring in range(first, last):
        a = ring_start[ring]
        b = ring_start[ring + 1]
        if b - a >= 3 and point_in_ring(x, y, xy, a, b):
            inside = not inside
    return inside


@nb.njit(**JIT)
def ring_depths(
    xy: np.ndarray,
    ring_start: np.ndarray,
    plane_ring_start: np.ndarray,
    ring_box: np.ndarray,
) -> np.ndarray:
    """Nesting depth of every ring: how many other rings of its plane contain it.

    A ring is tested by one of its vertices; only rings whose bounding box contains the
    ring's box are tested. ``ring_box[r] = (xmin, ymin, xmax, ymax)``.
    """
    nplane = plane_ring_start.shape[0] - 1
    depth = np.zeros(ring_start.shape[0] - 1, dtype=np.int64)
    for p in range(nplane):
        a = plane_ring_start[p]
        b = plane_ring_start[p + 1]
        if b - a < 2:
            continue
        for r in range(a, b):
            x = xy[ring_start[r], 0]
            y = xy[ring_start[r], 1]
            n = 0
            for o in range(a, b):
                if o == r:
                    continue
                if (
                    ring_box[o, 0] <= ring_box[r, 0]
                    and ring_box[o, 1] <= ring_box[r, 1]
                    and ring_box[o, 2] >= ring_box[r, 2]
                    and ring_box[o, 3] >= ring_box[r, 3]
                ):
                    if point_in_ring(x, y, xy, ring_start[o], ring_start[o + 1]):
                        n += 1
            depth[r] = n
    return depth


@nb.njit(**PJIT)
def occupancy_planes(
    xy: np.ndarray,
    ring_start: np.ndarray,
    ring_factor: np.ndarray,
    plane_ring_start: np.ndarray,
    planes: np.ndarray,
    ox: float,
    oy: float,
    sx: float,
    sy: float,
    nrow: int,
    ncol: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage rasters of the listed planes: ``(cov[len(planes), nrow, ncol], area, ok)``."""
    n = planes.shape[0]
    out = np.zeros((n, nrow, ncol), dtype=np.float32)
    area = np.zeros(n)
    ok = np.ones(n, dtype=np.bool_)
    for q in nb.prange(n):
        p = planes[q]
        cov, total, good = plane_coverage(
            xy,
            ring_start,
            ring_factor,
            plane_ring_start[p],
            plane_ring_start[p + 1],
            ox,
            oy,
            sx,
            sy,
            nrow,
            ncol,
        )
        area[q] = total
        ok[q] = good
        for r in range(nrow):
            for c in range(ncol):
                v = cov[r, c]
                # rounding residue of the running sums is not occupancy
                out[q, r, c] = 0.0 if v <= 1e-12 else min(v, 1.0)
    return out, area, ok


@nb.njit(**PJIT)
def add_slabs(
    occ: np.ndarray,
    cov: np.ndarray,
    cell_lo: np.ndarray,
    cell_hi: np.ndarray,
    k0: int,
) -> None:
    """Add coverage rasters times their exact z overlap with each occupancy z-cell.

    Plane ``q`` occupies cell-coordinate z range ``[cell_lo[q], cell_hi[q]]`` (cell ``k``
    of ``occ`` spans ``[k0 + k, k0 + k + 1]``). Parallel over z-cells (race-free).
    """
    nk = occ.shape[0]
    nq = cov.shape[0]
    for k in nb.prange(nk):
        zl = float(k0 + k)
        zh = zl + 1.0
        for q in range(nq):
            ov = min(zh, cell_hi[q]) - max(zl, cell_lo[q])
            if ov <= 0.0:
                continue
            for r in range(occ.shape[1]):
                for c in range(occ.shape[2]):
                    occ[k, r, c] += np.float32(ov) * cov[q, r, c]


@nb.njit(**JIT)
def ring_geometry(xy: np.ndarray, ring_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed shoelace area (counter-clockwise > 0) and box ``(xmin, ymin, xmax, ymax)`` of
    every ring (coordinates taken relative to the ring's first vertex, for precision)."""
    n = ring_start.shape[0] - 1
    area = np.zeros(n)
    box = np.zeros((n, 4))
    for r in range(n):
        a = ring_start[r]
        b = ring_start[r + 1]
        if b <= a:
            continue
        ox = xy[a, 0]
        oy = xy[a, 1]
        s = 0.0
        px = xy[b - 1, 0] - ox
        py = xy[b - 1, 1] - oy
        x_lo, y_lo, x_hi, y_hi = np.inf, np.inf, -np.inf, -np.inf
        for m in range(a, b):
            qx = xy[m, 0] - ox
            qy = xy[m, 1] - oy
            s += px * qy - qx * py
            px = qx
            py = qy
            x_lo = min(x_lo, xy[m, 0])
            y_lo = min(y_lo, xy[m, 1])
            x_hi = max(x_hi, xy[m, 0])
            y_hi = max(y_hi, xy[m, 1])
        area[r] = 0.5 * s
        box[r, 0] = x_lo
        box[r, 1] = y_lo
        box[r, 2] = x_hi
        box[r, 3] = y_hi
    return area, box
