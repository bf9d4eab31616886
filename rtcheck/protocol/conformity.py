"""Conformity tables indexed by target volume (RTOG 0813/0915 "Table 1" style).

Limits for a target are linearly interpolated between the two rows that bracket its volume;
outside the table's volume range nothing is evaluated (no extrapolation, no clamping).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from rtcheck.names import TargetKind
from rtcheck.protocol._base import (
    Comparator,
    Frozen,
    FrozenDict,
    SourceKeys,
    order_by_levels,
    strictest_first,
)
from rtcheck.result import Limit


class ConformityIndex(StrEnum):
    """Plan-quality indices a conformity table can limit."""

    R100 = "R100%"
    R50 = "R50%"
    D2CM = "D2cm[%]"

    @property
    def unit(self) -> str:
        """``ratio`` for R100%/R50%, ``%`` (of the prescription) for D2cm."""
        return "%" if self is ConformityIndex.D2CM else "ratio"

    @property
    def description(self) -> str:
        """What the index is."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    ConformityIndex.R100: "prescription isodose volume / target volume",
    ConformityIndex.R50: "50 % of prescription isodose volume / target volume",
    ConformityIndex.D2CM: "maximum dose 2 cm or more from the target, % of prescription",
}


class ConformityColumn(Frozen):
    """One index of the table: a limit per level for every volume row."""

    index: ConformityIndex
    comparator: Comparator = Comparator.LT
    limits: Annotated[dict[str, tuple[float, ...]], AfterValidator(FrozenDict)]

    @field_validator("limits")
    @classmethod
    def _order(
        cls, v: Mapping[str, tuple[float, ...]], info: ValidationInfo
    ) -> Mapping[str, tuple[float, ...]]:
        if not v:
            raise ValueError("give the limits of at least one level")
        for level, values in v.items():
            bad = [x for x in values if not math.isfinite(x) or x <= 0]
            if bad:
                raise ValueError(
                    f"{level}: {bad} are not limits; conformity limits are positive finite "
                    "numbers (.inf or 0 is always or never met)"
                )
        keys = order_by_levels(list(v), (info.context or {}).get("levels"))
        return FrozenDict({k: v[k] for k in keys})


@dataclass(frozen=True)
class ConformityLimit:
    """Interpolated limits of one index for one target volume."""

    index: ConformityIndex
    comparator: Comparator
    limits: tuple[tuple[str, float], ...]

    def result_limits(self) -> tuple[Limit, ...]:
        """As :class:`rtcheck.result.Limit` objects, strictest first."""
        return tuple(
            Limit(level, self.comparator.value, value, self.index.unit)
            for level, value in self.limits
        )

    def level_met(self, value: float) -> str | None:
        """Strictest level ``value`` meets, or None."""
        return next((lvl for lvl, lim in self.limits if self.comparator.holds(value, lim)), None)


class ConformityTable(Frozen):
    """Limits by target volume with linear interpolation between rows."""

    target: TargetKind = TargetKind.PTV
    source: SourceKeys
    interpolation: Literal["linear"] = "linear"
    note: str | None = None
    volume_cc: tuple[Annotated[float, Field(gt=0, allow_inf_nan=False)], ...] = Field(min_length=2)
    columns: tuple[ConformityColumn, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ConformityTable:
        vols = self.volume_cc
        if any(b <= a for a, b in itertools.pairwise(vols)):
            raise ValueError("volume_cc must increase strictly")
        seen: set[ConformityIndex] = set()
        for col in self.columns:
            if col.index in seen:
                raise ValueError(f"index {col.index.value} appears twice")
            seen.add(col.index)
            for level, values in col.limits.items():
                if len(values) != len(vols):
                    raise ValueError(
                        f"{col.index.value} {level}: {len(values)} values for {len(vols)} rows"
                    )
            for row in zip(*col.limits.values(), strict=True):
                if not strictest_first(col.comparator, row):
                    raise ValueError(f"{col.index.value}: levels not strictest-first in {row}")
        return self

    def covers(self, volume_cc: float) -> bool:
        """True when the table has a rule for a target of this volume."""
        return self.volume_cc[0] <= volume_cc <= self.volume_cc[-1]

    def not_covered_reason(self, volume_cc: float) -> str:
        """Why a target of this volume is not evaluated against the table."""
        return (
            f"{self.target.value} volume {volume_cc:.3g} cc is outside the conformity table "
            f"({self.volume_cc[0]:g}-{self.volume_cc[-1]:g} cc); the protocol gives no rule"
        )

    def limits_at(self, volume_cc: float) -> tuple[ConformityLimit, ...] | None:
        """Interpolated limits for a target of ``volume_cc``; None outside the table."""
        if not self.covers(volume_cc):
            return None
        return tuple(
            ConformityLimit(
                col.index,
                col.comparator,
                tuple(
                    (lvl, _interp(self.volume_cc, vals, volume_cc))
                    for lvl, vals in col.limits.items()
                ),
            )
            for col in self.columns
        )


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    """Linear interpolation of ``ys`` at ``x`` (``xs`` increasing, x within range)."""
    i = bisect.bisect_left(xs, x)
    if xs[i] == x:
        return float(ys[i])
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
