"""TG-263 DVH metric grammar: parse once into a typed :class:`Metric`, evaluate on a DVH.

Accepted forms (whitespace anywhere is ignored; unit case is free)::

    D95%[Gy]   D0.03cc[Gy]   D2%[%]          dose to the hottest x % / x cc (output in % of Rx)
    V20Gy[%]   V20Gy[cc]     V100%[%]        volume receiving at least a dose (dose in % of Rx)
    V2000cGy[cc]             D0.35cc[cGy]    cGy in the query value or in the output
    CV12.5Gy[cc]                             volume receiving LESS than a dose (critical volume)
    DC1000cc[Gy]                             dose to the total volume minus x (cold-volume dose)
    Mean[Gy] Dmean[Gy] Max[Gy] Dmax[Gy] Min[Gy] Dmin[Gy]
    D0.03cc[EQD2Gy(a/b=2)]   Mean[BED(a/b=10)]   Max[EQD2Gy]         radiobiological output
    V60EQD2Gy(a/b=3)[%]                      radiobiological query dose (rtcheck extension)

``%`` in a D/DC query value is a percentage of the structure volume; ``%`` in a V/CV query
value and ``[%]`` on a dose output are percentages of the prescription dose. Radiobiological
metrics only *state* the dose basis they need (:attr:`Metric.basis`, :attr:`Metric.alpha_beta`):
:meth:`Metric.evaluate` assumes the DVH it is given is already in that basis.

Volumes are those of the DVH's samples (the structure inside the dose grid); whether a
structure that leaves the dose grid may be evaluated at all is decided by the caller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

import numpy as np

from rtcheck.dvh.dvh import DVH
from rtcheck.errors import MetricSyntaxError, RtcheckError

ACCEPTED_FORMS = (
    "D95%[Gy], D0.03cc[Gy], D2%[%], V20Gy[%], V20Gy[cc], V100%[%], V2000cGy[cc], "
    "CV12.5Gy[cc], DC1000cc[Gy], Mean[Gy], Max[Gy], Min[Gy] (also Dmean/Dmax/Dmin), "
    "outputs [Gy], [cGy], [%], [cc], [EQD2Gy], [EQD2Gy(a/b=2)], [BED(a/b=10)]"
)


class MetricNotComputable(RtcheckError):
    """A well-formed metric that cannot be computed on this DVH (the reason says why)."""

    @property
    def reason(self) -> str:
        """The explanation, without any path prefix."""
        return self.message


class MetricKind(StrEnum):
    """What a metric measures (the TG-263 query type)."""

    DOSE_AT_VOLUME = "D"
    VOLUME_AT_DOSE = "V"
    COLD_VOLUME = "CV"
    COLD_VOLUME_DOSE = "DC"
    MEAN = "Mean"
    MAX = "Max"
    MIN = "Min"

    @property
    def gives_dose(self) -> bool:
        """True when the metric's value is a dose (D, DC, Mean, Max, Min)."""
        return self not in (MetricKind.VOLUME_AT_DOSE, MetricKind.COLD_VOLUME)


class Unit(StrEnum):
    """Units of query values and outputs."""

    GY = "Gy"
    CGY = "cGy"
    CC = "cc"
    PERCENT = "%"


class DoseBasis(StrEnum):
    """Dose the metric is defined on."""

    PHYSICAL = "physical"
    EQD2 = "EQD2"
    BED = "BED"


_DOSE_UNITS = (Unit.GY, Unit.CGY)
_STATS: Mapping[str, MetricKind] = MappingProxyType(
    {
        "mean": MetricKind.MEAN,
        "dmean": MetricKind.MEAN,
        "max": MetricKind.MAX,
        "dmax": MetricKind.MAX,
        "min": MetricKind.MIN,
        "dmin": MetricKind.MIN,
    }
)
_PREFIXES: Mapping[str, MetricKind] = MappingProxyType(
    {
        "cv": MetricKind.COLD_VOLUME,
        "dc": MetricKind.COLD_VOLUME_DOSE,
        "d": MetricKind.DOSE_AT_VOLUME,
        "v": MetricKind.VOLUME_AT_DOSE,
    }
)
#: unit text (lower case) -> (unit, factor to the canonical unit)
_VOLUME_UNIT_TEXT = {"cc": (Unit.CC, 1.0), "cm3": (Unit.CC, 1.0), "ml": (Unit.CC, 1.0)}
_VOLUME_UNIT_TEXT["mm3"] = (Unit.CC, 0.001)
_PLAIN_UNIT_TEXT = {"gy": Unit.GY, "cgy": Unit.CGY, "%": Unit.PERCENT, "cc": Unit.CC}
_PLAIN_UNIT_TEXT.update({"cm3": Unit.CC, "ml": Unit.CC})

_BODY = re.compile(r"^(?P<prefix>cv|dc|d|v)(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<unit>[^\d.].*)$", re.I)
_BRACKETS = re.compile(r"^(?P<body>[^\[\]]+)\[(?P<unit>[^\[\]]*)\]$")
_RADIO = re.compile(
    r"^(?P<basis>eqd2(?:gy)?|bed(?:gy)?)"
    r"(?:\((?:a/b|α/β|ab|alpha/beta)=(?P<ab>\d+(?:\.\d*)?|\.\d+)(?:gy)?\))?$",
    re.I,
)


@dataclass(frozen=True, repr=False)
class Metric:
    """A parsed TG-263 DVH metric. Build with :func:`parse_metric`.

    Attributes
    ----------
    kind
        :class:`MetricKind`.
    output_unit
        Unit of the value (:class:`Unit`); Gy for radiobiological outputs.
    value
        Query number (volume for D/DC, dose for V/CV), in ``value_unit``; None for Mean/Max/Min.
    value_unit
        Unit of ``value``; ``%`` means % of volume (D/DC) or % of prescription (V/CV).
    basis
        :class:`DoseBasis` the metric is defined on.
    alpha_beta
        alpha/beta (Gy) for EQD2/BED; None when physical or left to the protocol default.
    """

    kind: MetricKind
    output_unit: Unit
    value: float | None = None
    value_unit: Unit | None = None
    basis: DoseBasis = DoseBasis.PHYSICAL
    alpha_beta: float | None = None

    # -------------------------------------------------------------- descriptions
    @property
    def canonical(self) -> str:
        """Normalised TG-263 text, e.g. ``D0.03cc[Gy]`` or ``Mean[EQD2Gy(a/b=2)]``."""
        if self.value is None:
            body = self.kind.value
        elif self.kind.gives_dose:
            body = f"{self.kind.value}{_num(self.value)}{self.value_unit.value}"  # type: ignore[union-attr]
        else:
            body = f"{self.kind.value}{_num(self.value)}{self._query_dose_unit_text()}"
        return f"{body}[{self._output_text()}]"

    def __str__(self) -> str:
        return self.canonical

    def __repr__(self) -> str:
        return f"Metric({self.canonical!r})"

    @property
    def unit_label(self) -> str:
        """Unit of the value and of the limits: ``Gy``, ``cGy``, ``cc`` or ``%``."""
        return self.output_unit.value

    @property
    def basis_label(self) -> str:
        """``physical``, ``EQD2``, ``EQD2(a/b=2)``, ``BED(a/b=10)``..."""
        if self.basis is DoseBasis.PHYSICAL:
            return "physical"
        ab = "" if self.alpha_beta is None else f"(a/b={_num(self.alpha_beta)})"
        return f"{self.basis.value}{ab}"

    @property
    def needs_prescription(self) -> bool:
        """True when the value or the output is a percentage of the prescription dose."""
        if self.kind.gives_dose:
            return self.output_unit is Unit.PERCENT
        return self.value_unit is Unit.PERCENT

    @property
    def needs_alpha_beta(self) -> bool:
        """True for EQD2/BED metrics whose alpha/beta must come from the protocol."""
        return self.basis is not DoseBasis.PHYSICAL and self.alpha_beta is None

    def with_alpha_beta(self, alpha_beta: float) -> Metric:
        """This metric with alpha/beta filled in (only for EQD2/BED metrics)."""
        if self.basis is DoseBasis.PHYSICAL:
            raise ValueError(f"{self.canonical} is a physical-dose metric")
        return replace(self, alpha_beta=float(alpha_beta))

    # -------------------------------------------------------------- evaluation
    def evaluate(self, dvh: DVH, *, prescription_gy: float | None = None) -> float:
        """Value of this metric on ``dvh`` in :attr:`output_unit`.

        Raises
        ------
        MetricNotComputable
            Empty DVH, unknown prescription for a % of Rx, or a requested volume larger
            than the structure's volume inside the dose grid.
        """
        if dvh.is_empty:
            raise MetricNotComputable(
                f"{self.canonical}: structure {dvh.name!r} has no volume inside the dose grid"
            )
        if self.needs_prescription and not _valid_rx(prescription_gy):
            raise MetricNotComputable(
                f"{self.canonical} is relative to the prescription dose, which is unknown"
            )
        return _EVALUATORS[self.kind](self, dvh, prescription_gy)

    # -------------------------------------------------------------- helpers
    def _query_dose_unit_text(self) -> str:
        if self.value_unit is Unit.PERCENT:
            return "%"
        if self.basis is DoseBasis.PHYSICAL:
            return self.value_unit.value  # type: ignore[union-attr]
        return self._basis_token()

    def _output_text(self) -> str:
        if self.kind.gives_dose and self.basis is not DoseBasis.PHYSICAL:
            return self._basis_token()
        return self.output_unit.value

    def _basis_token(self) -> str:
        name = "EQD2Gy" if self.basis is DoseBasis.EQD2 else "BED"
        return name if self.alpha_beta is None else f"{name}(a/b={_num(self.alpha_beta)})"

    def _query_gy(self, prescription_gy: float | None) -> float:
        """The V/CV query dose in Gy (of the metric's basis)."""
        assert self.value is not None
        if self.value_unit is Unit.PERCENT:
            return self.value / 100.0 * float(prescription_gy)  # type: ignore[arg-type]
        return self.value / 100.0 if self.value_unit is Unit.CGY else self.value

    def _dose_out(self, dose_gy: float, prescription_gy: float | None) -> float:
        if self.output_unit is Unit.CGY:
            return dose_gy * 100.0
        if self.output_unit is Unit.PERCENT:
            return 100.0 * dose_gy / float(prescription_gy)  # type: ignore[arg-type]
        return dose_gy


# ---------------------------------------------------------------------- parsing
def parse_metric(text: str) -> Metric:
    """Parse TG-263 metric text into a :class:`Metric`.

    Raises
    ------
    MetricSyntaxError
        Saying what is wrong and listing the accepted forms.
    """
    if not isinstance(text, str):
        _fail(repr(text), "a metric must be text")
    compact = "".join(text.split())
    if not compact:
        _fail(text, "the metric is empty")
    m = _BRACKETS.match(compact)
    if m is None:
        _fail(text, "expected a query followed by an output unit in brackets, e.g. D95%[Gy]")
    body, out = m.group("body"), m.group("unit")
    if not out:
        _fail(text, "the output unit in brackets is empty")
    stat = _STATS.get(body.lower())
    if stat is not None:
        return _parse_dose_output(text, stat, out, None, None)
    q = _BODY.match(body)
    if q is None and re.fullmatch(r"(cv|dc|d|v)(\d+(\.\d*)?|\.\d+)", body, re.I):
        _fail(text, f"{body!r} needs a unit after the number (cc/% for D, DC; Gy/cGy/% for V, CV)")
    if q is None:
        _fail(text, f"{body!r} is not a query: use D, V, CV or DC + number + unit, or Mean/Max/Min")
    kind = _PREFIXES[q.group("prefix").lower()]
    value = float(q.group("num"))
    if kind.gives_dose:
        return _parse_dose_query(text, kind, value, q.group("unit"), out)
    return _parse_volume_query(text, kind, value, q.group("unit"), out)


def _parse_dose_query(text: str, kind: MetricKind, value: float, unit: str, out: str) -> Metric:
    """D and DC: the query value is a volume (cc or % of the structure)."""
    if unit == "%":
        if value > 100.0:
            _fail(text, f"{kind.value}{_num(value)}%: a volume percentage cannot exceed 100")
        return _parse_dose_output(text, kind, out, value, Unit.PERCENT)
    found = _VOLUME_UNIT_TEXT.get(unit.lower())
    if found is None:
        _fail(text, f"{unit!r} after {kind.value}{_num(value)} is not a volume unit (cc or %)")
    vunit, factor = found
    return _parse_dose_output(text, kind, out, value * factor, vunit)


def _parse_dose_output(
    text: str, kind: MetricKind, out: str, value: float | None, value_unit: Unit | None
) -> Metric:
    """Dose-valued metrics: output Gy, cGy, % of Rx or a radiobiological basis (Gy)."""
    radio = _RADIO.match(out)
    if radio is not None:
        basis, ab = _radio_basis(text, radio)
        return Metric(kind, Unit.GY, value, value_unit, basis, ab)
    if out.lower() in ("rbe", "cge") or out.lower().startswith("rbe("):
        _fail(text, f"dose basis [{out}] is not supported (use Gy, cGy, %, EQD2Gy or BED)")
    unit = _PLAIN_UNIT_TEXT.get(out.lower())
    if unit is None or unit is Unit.CC:
        name = kind.value if value is None else f"{kind.value}{_num(value)}"
        _fail(text, f"{name} gives a dose: output unit must be Gy, cGy, % (of Rx) or EQD2Gy/BED")
    return Metric(kind, unit, value, value_unit)


def _parse_volume_query(text: str, kind: MetricKind, value: float, unit: str, out: str) -> Metric:
    """V and CV: the query value is a dose (Gy, cGy, % of Rx or radiobiological Gy)."""
    out_unit = _PLAIN_UNIT_TEXT.get(out.lower())
    if out_unit not in (Unit.CC, Unit.PERCENT):
        _fail(text, f"{kind.value} gives a volume: output unit must be [cc] or [%], not [{out}]")
    radio = _RADIO.match(unit)
    if radio is not None:
        basis, ab = _radio_basis(text, radio)
        return Metric(kind, out_unit, value, Unit.GY, basis, ab)  # type: ignore[arg-type]
    vunit = _PLAIN_UNIT_TEXT.get(unit.lower())
    if vunit is None or vunit is Unit.CC:
        _fail(text, f"{unit!r} after {kind.value}{_num(value)} is not a dose unit (Gy, cGy or %)")
    return Metric(kind, out_unit, value, vunit)  # type: ignore[arg-type]


def _radio_basis(text: str, m: re.Match[str]) -> tuple[DoseBasis, float | None]:
    basis = DoseBasis.EQD2 if m.group("basis").lower().startswith("eqd2") else DoseBasis.BED
    ab = None if m.group("ab") is None else float(m.group("ab"))
    if ab is not None and ab <= 0:
        _fail(text, "alpha/beta must be positive")
    return basis, ab


def parse_point_max(text: str) -> Metric:
    """Parse a protocol's point-max definition: ``Max`` or ``D<x>cc`` (``[Gy]`` optional).

    Raises
    ------
    MetricSyntaxError
        When the definition is neither the maximum nor a small absolute-volume D metric.
    """
    compact = "".join(str(text).split())
    metric = parse_metric(compact if compact.endswith("]") else f"{compact}[Gy]")
    ok_d = metric.kind is MetricKind.DOSE_AT_VOLUME and metric.value_unit is Unit.CC
    if not (metric.kind is MetricKind.MAX or ok_d) or metric.output_unit is not Unit.GY:
        _fail(text, "a point-max definition must be Max or D<x>cc, e.g. D0.035cc")
    if metric.basis is not DoseBasis.PHYSICAL:
        _fail(text, "a point-max definition is a physical dose")
    return metric


def _fail(text: str, problem: str) -> None:
    raise MetricSyntaxError(
        f"invalid DVH metric {text!r}: {problem}. Accepted forms: {ACCEPTED_FORMS}"
    )


# ---------------------------------------------------------------------- point max
def resolve_point_max(metric: Metric, definition: Metric) -> Metric:
    """The metric to evaluate for ``metric`` under a protocol's point-max ``definition``.

    ``Max[...]`` becomes ``D<x>cc[...]`` (same output unit and basis) when the protocol
    defines the point maximum as the minimum dose to the hottest x cc; any other metric,
    or a ``Max`` definition, is returned unchanged.
    """
    if metric.kind is not MetricKind.MAX or definition.kind is MetricKind.MAX:
        return metric
    return replace(
        metric, kind=MetricKind.DOSE_AT_VOLUME, value=definition.value, value_unit=Unit.CC
    )


def describe_point_max(definition: Metric) -> str:
    """One sentence saying how a point maximum is evaluated under ``definition``."""
    if definition.kind is MetricKind.MAX:
        return "point max evaluated as the maximum of the interpolated dose in the structure"
    return (
        f"point max evaluated as D{_num(definition.value)}cc "  # type: ignore[arg-type]
        f"(minimum dose to the hottest {_num(definition.value)} cc)"  # type: ignore[arg-type]
    )


def evaluate_point_max(
    dvh: DVH,
    definition: Metric,
    *,
    output_unit: Unit = Unit.GY,
    prescription_gy: float | None = None,
) -> float:
    """The point maximum of ``dvh`` per ``definition``, in ``output_unit`` (Gy, cGy or %)."""
    metric = resolve_point_max(Metric(MetricKind.MAX, output_unit), definition)
    return metric.evaluate(dvh, prescription_gy=prescription_gy)


# ---------------------------------------------------------------------- evaluators
def _dose_at_volume(metric: Metric, dvh: DVH, rx: float | None) -> float:
    v_cc = _requested_cc(metric, dvh)
    return metric._dose_out(dvh.dose_at_volume_cc(v_cc), rx)


def _cold_volume_dose(metric: Metric, dvh: DVH, rx: float | None) -> float:
    """DC: the dose to (total - x), i.e. the highest dose in the coldest x."""
    v_cc = _requested_cc(metric, dvh)
    return metric._dose_out(dvh.dose_at_volume_cc(max(0.0, dvh.volume_cc - v_cc)), rx)


def _volume_at_dose(metric: Metric, dvh: DVH, rx: float | None) -> float:
    cc = dvh.volume_at_dose_cc(metric._query_gy(rx))
    return cc if metric.output_unit is Unit.CC else 100.0 * cc / dvh.volume_cc


def _cold_volume(metric: Metric, dvh: DVH, rx: float | None) -> float:
    """CV: volume receiving less than the dose."""
    cc = max(0.0, dvh.volume_cc - dvh.volume_at_dose_cc(metric._query_gy(rx)))
    return cc if metric.output_unit is Unit.CC else 100.0 * cc / dvh.volume_cc


def _requested_cc(metric: Metric, dvh: DVH) -> float:
    assert metric.value is not None
    total = dvh.volume_cc
    if metric.value_unit is Unit.PERCENT:
        return metric.value / 100.0 * total
    # fully covered: the contour volume and the sampled volume agree up to rounding
    allowed = total if dvh.outside_volume_cc > 0 else max(total, dvh.structure_volume_cc or 0.0)
    if metric.value > allowed * (1.0 + 1e-9):
        where = (
            f"{total:.4g} cc inside the dose grid (structure {dvh.structure_volume_cc:.4g} cc)"
            if dvh.outside_volume_cc > 0
            else f"{total:.4g} cc"
        )
        raise MetricNotComputable(
            f"{metric.canonical} needs {_num(metric.value)} cc but {dvh.name!r} has only {where}"
        )
    return min(metric.value, total)


_Evaluator = Callable[[Metric, DVH, float | None], float]

#: Metric kind -> function computing its value (the registry used by :meth:`Metric.evaluate`).
_EVALUATORS: Mapping[MetricKind, _Evaluator] = MappingProxyType(
    {
        MetricKind.DOSE_AT_VOLUME: _dose_at_volume,
        MetricKind.COLD_VOLUME_DOSE: _cold_volume_dose,
        MetricKind.VOLUME_AT_DOSE: _volume_at_dose,
        MetricKind.COLD_VOLUME: _cold_volume,
        MetricKind.MEAN: lambda m, dvh, rx: m._dose_out(dvh.mean_gy, rx),
        MetricKind.MAX: lambda m, dvh, rx: m._dose_out(dvh.max_gy, rx),
        MetricKind.MIN: lambda m, dvh, rx: m._dose_out(dvh.min_gy, rx),
    }
)


def _valid_rx(rx: float | None) -> bool:
    return rx is not None and math.isfinite(rx) and rx > 0


def _num(x: float) -> str:
    """Shortest plain decimal text of ``x`` (no exponent): 1500, 0.035, 12.5."""
    return np.format_float_positional(float(x), trim="-")
