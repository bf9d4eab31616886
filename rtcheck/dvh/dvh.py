"""The :class:`DVH` object: a structure's dose distribution as weighted dose samples.

A DVH here is exact from its samples: every sample is a dose (Gy) with the volume (cc) it
stands for. Samples are sorted once; D-at-volume and V-at-dose are linear interpolations on
the cumulative curve (never nearest bin). Histograms for plotting are derived on demand.

Interpolation rule (documented in ``docs/conventions.md``): with samples sorted by
decreasing dose ``d_0 >= d_1 >= ...`` and volumes ``w_n``, the cumulative curve is the
polyline through ``(0, d_0)``, ``(c_n - w_n/2, d_n)`` for every n, and ``(V_total, d_last)``,
where ``c_n`` is the running sum of volumes. Equal doses are merged first. When the exact
extremes ``dmax_gy``/``dmin_gy`` are given, the curve starts at ``(0, dmax_gy)`` and ends at
``(V_total, dmin_gy)`` instead (each sample then stands for a dose spread around it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtcheck.errors import Finding


@dataclass(frozen=True, eq=False)
class DVH:
    """Dose-volume histogram of one structure.

    Attributes
    ----------
    name
        Structure name.
    doses_gy, volumes_cc
        Sample doses and the volume each represents; any order on input.
    structure_volume_cc
        Volume described by the contours (may exceed the sampled volume when the structure
        leaves the dose grid).
    dmax_gy, dmin_gy
        Optional exact extremes of the interpolated dose over the structure; default to the
        sample extremes.
    findings
        Problems met while computing (partial coverage, single plane...).
    convention
        Names of the volume and dose conventions used (for reports).
    """

    name: str
    doses_gy: np.ndarray
    volumes_cc: np.ndarray
    structure_volume_cc: float | None = None
    dmax_gy: float | None = None
    dmin_gy: float | None = None
    roi_number: int | None = None
    findings: tuple[Finding, ...] = ()
    convention: str = "slab end caps (half spacing); trilinear dose"
    _curve: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        d = np.asarray(self.doses_gy, dtype=np.float64).ravel()
        w = np.asarray(self.volumes_cc, dtype=np.float64).ravel()
        if d.shape != w.shape:
            raise ValueError("doses and volumes must have the same length")
        keep = w > 0
        d, w = d[keep], w[keep]
        order = np.argsort(-d, kind="stable")
        d, w = d[order], w[order]
        if d.size:
            uniq, start = np.unique(-d, return_index=True)
            w = np.add.reduceat(w, start)
            d = -uniq
        object.__setattr__(self, "doses_gy", d)
        object.__setattr__(self, "volumes_cc", w)
        cum = np.cumsum(w)
        total = float(cum[-1]) if cum.size else 0.0
        xs = np.concatenate(([0.0], cum - w / 2.0, [total]))
        ys = np.concatenate((d[:1], d, d[-1:])) if d.size else np.zeros(0)
        if d.size:
            # the curve starts at the true maximum and ends at the true minimum when known
            if self.dmax_gy is not None:
                ys[0] = max(float(self.dmax_gy), float(d[0]))
            if self.dmin_gy is not None:
                ys[-1] = min(float(self.dmin_gy), float(d[-1]))
        object.__setattr__(self, "_curve", (xs, ys))
        if self.structure_volume_cc is None:
            object.__setattr__(self, "structure_volume_cc", total)

    # ------------------------------------------------------------------ volumes
    @property
    def volume_cc(self) -> float:
        """Sampled volume (inside the dose grid), cc."""
        return float(self.volumes_cc.sum())

    @property
    def outside_volume_cc(self) -> float:
        """Structure volume not covered by the dose grid, cc (0 when fully covered)."""
        structure = float(self.structure_volume_cc or 0.0)
        outside = structure - self.volume_cc
        # sampled and exact volumes agree to rounding when the grid covers the structure
        return outside if outside > 1e-9 * structure else 0.0

    @property
    def is_empty(self) -> bool:
        """True when no sample has volume."""
        return self.doses_gy.size == 0

    # ------------------------------------------------------------------ statistics
    @property
    def max_gy(self) -> float:
        """Maximum dose (Gy)."""
        self._require_samples()
        return float(self.dmax_gy if self.dmax_gy is not None else self.doses_gy[0])

    @property
    def min_gy(self) -> float:
        """Minimum dose (Gy)."""
        self._require_samples()
        return float(self.dmin_gy if self.dmin_gy is not None else self.doses_gy[-1])

    @property
    def mean_gy(self) -> float:
        """Volume-weighted mean dose (Gy)."""
        self._require_samples()
        return float(np.dot(self.doses_gy, self.volumes_cc) / self.volume_cc)

    # ------------------------------------------------------------------ queries
    def dose_at_volume_cc(self, v_cc: float) -> float:
        """Minimum dose to the hottest ``v_cc`` cc (Gy), by linear interpolation."""
        self._require_samples()
        xs, ys = self._curve
        if v_cc <= 0:
            return self.max_gy
        if v_cc >= xs[-1]:
            return self.min_gy
        return float(np.interp(v_cc, xs, ys))

    def dose_at_volume_pct(self, pct: float) -> float:
        """Minimum dose to the hottest ``pct`` % of the sampled volume (Gy)."""
        return self.dose_at_volume_cc(pct / 100.0 * self.volume_cc)

    def volume_at_dose_cc(self, dose_gy: float) -> float:
        """Volume (cc) receiving at least ``dose_gy``, by linear interpolation."""
        self._require_samples()
        xs, ys = self._curve
        if dose_gy > ys[0]:
            return 0.0
        if dose_gy <= ys[-1]:
            return float(xs[-1])
        # ys is non-increasing in xs; find the largest x with y >= dose.
        n = int(np.searchsorted(-ys, -dose_gy, side="right"))  # ys[:n] >= dose
        x0, x1, y0, y1 = xs[n - 1], xs[n], ys[n - 1], ys[n]
        if y0 == y1:
            return float(x1)
        return float(x0 + (x1 - x0) * (y0 - dose_gy) / (y0 - y1))

    def volume_at_dose_pct(self, dose_gy: float) -> float:
        """Percentage of the sampled volume receiving at least ``dose_gy``."""
        return 100.0 * self.volume_at_dose_cc(dose_gy) / self.volume_cc

    def cumulative(self, bin_gy: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative DVH on a regular dose axis: ``(dose_gy, volume_cc)``."""
        self._require_samples()
        top = self.max_gy
        dose = np.arange(0.0, top + bin_gy, bin_gy)
        return dose, np.array([self.volume_at_dose_cc(float(x)) for x in dose])

    def differential(self, bin_gy: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
        """Differential DVH: bin lower edges (Gy) and volume (cc) per bin."""
        self._require_samples()
        edges = np.arange(0.0, self.max_gy + 2 * bin_gy, bin_gy)
        hist, _ = np.histogram(self.doses_gy, bins=edges, weights=self.volumes_cc)
        return edges[:-1], hist

    def scaled(self, factor: float) -> DVH:
        """The DVH of the dose multiplied by ``factor`` (for unit changes and tests)."""
        return DVH(
            name=self.name,
            doses_gy=self.doses_gy * factor,
            volumes_cc=self.volumes_cc,
            structure_volume_cc=self.structure_volume_cc,
            dmax_gy=None if self.dmax_gy is None else self.dmax_gy * factor,
            dmin_gy=None if self.dmin_gy is None else self.dmin_gy * factor,
            roi_number=self.roi_number,
            findings=self.findings,
            convention=self.convention,
        )

    def _require_samples(self) -> None:
        if self.is_empty:
            raise ValueError(f"DVH of {self.name!r} has no volume")
