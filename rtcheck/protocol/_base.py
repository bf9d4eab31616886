"""Shared pieces of the protocol schema: the frozen base model, comparators, source keys."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Frozen(BaseModel):
    """Immutable model that refuses unknown keys."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, str_strip_whitespace=True
    )


K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(Mapping[K, V]):
    """A read-only, picklable mapping (``MappingProxyType`` cannot be pickled)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(data)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __hash__(self) -> int:
        return hash(tuple(self._data.items()))

    def __reduce__(self) -> tuple[type[FrozenDict[K, V]], tuple[dict[K, V]]]:
        return (type(self), (self._data,))


class Comparator(StrEnum):
    """How a value is compared with a limit: ``value <op> limit`` meets the level."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    @property
    def is_upper(self) -> bool:
        """True for ``<`` and ``<=`` (the limit is an upper bound)."""
        return self in (Comparator.LT, Comparator.LE)

    def holds(self, value: float, limit: float) -> bool:
        """True when ``value <op> limit``."""
        return _OPS[self](value, limit)

    def margin(self, value: float, limit: float) -> float:
        """Distance to ``limit``, positive on the passing side."""
        return limit - value if self.is_upper else value - limit


_OPS: Mapping[Comparator, Callable[[float, float], bool]] = {
    Comparator.LT: operator.lt,
    Comparator.LE: operator.le,
    Comparator.GT: operator.gt,
    Comparator.GE: operator.ge,
}


def source_keys(value: Any) -> tuple[str, ...]:
    """Source keys from ``S4``, ``"S2; S4"`` or ``[S2, S4]``."""
    items = value.split(";") if isinstance(value, str) else list(value)
    keys = tuple(str(k).strip() for k in items if str(k).strip())
    if not keys:
        raise ValueError("at least one source key is needed, e.g. S1")
    return keys


def strictest_first(comparator: Comparator, values: Sequence[float]) -> bool:
    """True when ``values`` (one per level, strictest level first) get more lenient."""
    pairs = list(itertools.pairwise(values))
    if comparator.is_upper:
        return all(b >= a for a, b in pairs)
    return all(b <= a for a, b in pairs)


def order_by_levels(keys: Sequence[str], levels: Sequence[str] | None) -> list[str]:
    """``keys`` in the protocol's level order; raises ValueError for unknown levels."""
    if not levels:
        return list(keys)
    unknown = [k for k in keys if k not in levels]
    if unknown:
        raise ValueError(f"unknown level(s) {unknown}; this protocol's levels: {list(levels)}")
    return [lvl for lvl in levels if lvl in keys]


SourceKeys = Annotated[tuple[str, ...], BeforeValidator(source_keys)]
Text = Annotated[str, Field(min_length=1)]
