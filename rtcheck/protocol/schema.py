"""Protocol file schema: frozen pydantic models validated once, on load.

The YAML layout is documented in ``constraints/README.md``. Every metric is parsed with the
TG-263 grammar (:func:`rtcheck.metrics.parse_metric`) and every derived structure with
:func:`rtcheck.protocol.derived.parse_expression` while validating, so later code works on
typed objects only. Every structure name must be a TG-263 name (or one the matcher reads
as one: :func:`rtcheck.names.standard_name`), a derived structure, a target name, or be
declared centre-specific (``custom_name: true`` on a row, or ``extra_structures``).
Mappings are read-only (:class:`types.FrozenDict`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rtcheck.errors import RtcheckError
from rtcheck.metrics import (
    Metric,
    MetricKind,
    Unit,
    describe_point_max,
    parse_metric,
    parse_point_max,
)
from rtcheck.metrics import resolve_point_max as _resolve_point_max
from rtcheck.names import TargetKind
from rtcheck.names.tg263 import nearest_tg263_name, standard_name
from rtcheck.protocol._base import (
    Comparator,
    Frozen,
    FrozenDict,
    SourceKeys,
    Text,
    order_by_levels,
    strictest_first,
)
from rtcheck.protocol.conformity import ConformityTable
from rtcheck.protocol.derived import Expr, parse_expression, references
from rtcheck.result import Limit, ProtocolInfo

FORMAT_VERSION = 1

#: Largest point-max volume: rtcheck's guard against a unit slip (D35cc for D35mm3), not a
#: clinical value (docs/protocols.md, third review).
MAX_POINT_MAX_CC = 1.0


def _metric(value: Any) -> Metric:
    if isinstance(value, Metric):
        return value
    if not isinstance(value, str):
        raise ValueError("a metric must be TG-263 text such as 'D0.03cc[Gy]'")
    try:
        return parse_metric(value)
    except RtcheckError as exc:
        raise ValueError(exc.message) from None


def _point_max(value: Any) -> Metric:
    if isinstance(value, Metric):
        return value
    try:
        metric = parse_point_max(str(value))
    except RtcheckError as exc:
        raise ValueError(exc.message) from None
    if metric.value is not None and metric.value > MAX_POINT_MAX_CC:
        raise ValueError(
            f"{value!r}: a point maximum is a small volume (e.g. D0.035cc = D35mm3); "
            f"{metric.value:g} cc is above {MAX_POINT_MAX_CC:g} cc and would evaluate every "
            "Max row far below the true maximum"
        )
    return metric


def _expression(value: Any) -> Expr:
    if not isinstance(value, str):
        return value  # already parsed
    try:
        return parse_expression(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


MetricField = Annotated[Metric, BeforeValidator(_metric)]


class AppliesTo(StrEnum):
    """Whether a constraint is about an organ or about each target."""

    OAR = "oar"
    TARGET = "target"


class Prefer(StrEnum):
    """For a derived structure: use a plan ROI with that name first, or always derive."""

    ROI = "roi"
    DERIVED = "derived"


class Source(Frozen):
    """A reference the protocol's numbers come from."""

    citation: Text
    location: str | None = None
    note: str | None = None


class Constraint(Frozen):
    """One row of a fractionation table: ``metric comparator limit`` per level."""

    id: Text
    structure: Text
    aliases: tuple[str, ...] = ()
    metric: MetricField
    comparator: Comparator
    limits: Annotated[dict[str, float], AfterValidator(FrozenDict)]
    source: SourceKeys
    priority: str | None = None
    endpoint: str | None = None
    note: str | None = None
    required: bool = False
    applies_to: AppliesTo = AppliesTo.OAR
    confirmed: bool = True
    unconfirmed_reason: str | None = None
    custom_name: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data and "structure" in data:
            data = {**data, "id": _default_id(data)}
        return data

    @field_validator("limits", mode="before")
    @classmethod
    def _numbers(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, dict):
            return v
        metric = info.data.get("metric")
        unit = f"[{metric.unit_label}] of {metric}" if isinstance(metric, Metric) else "the metric"
        for level, value in v.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    f"{level}: {value!r} is not a number; a limit is a plain number in the "
                    f"output unit {unit} (for cGy write the metric with [cGy])"
                )
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"{level}: {value!r} is not a limit; limits are positive finite numbers "
                    "(0, a negative value or .inf is always or never met)"
                )
        return v

    @field_validator("limits")
    @classmethod
    def _order_limits(cls, v: Mapping[str, float], info: ValidationInfo) -> Mapping[str, float]:
        if not v:
            raise ValueError("give at least one limit, e.g. {mandatory: 10}")
        keys = order_by_levels(list(v), (info.context or {}).get("levels"))
        return FrozenDict({k: v[k] for k in keys})

    @model_validator(mode="after")
    def _check(self) -> Constraint:
        if not strictest_first(self.comparator, list(self.limits.values())):
            raise ValueError(
                f"limits {dict(self.limits)} are not strictest-first for {self.comparator.value}"
            )
        if self.applies_to is AppliesTo.TARGET and self.structure not in TargetKind.__members__:
            raise ValueError("a target constraint's structure must be PTV, GTV, CTV or ITV")
        if not self.confirmed and not self.unconfirmed_reason:
            raise ValueError("confirmed: false needs unconfirmed_reason")
        self._check_plausible()
        return self

    def _check_plausible(self) -> None:
        """Refuse volume-percentage limits that every plan meets (or none can)."""
        m = self.metric
        for level, value in self.limits.items():
            if not m.kind.gives_dose and m.output_unit is Unit.PERCENT:
                if value > 100 or (value == 100 and self.comparator.value == "<="):
                    raise ValueError(
                        f"limits.{level} = {value:g} for {m}: a volume percentage is at most "
                        "100, so this limit is always (or never) met; a volume in cc needs [cc]"
                    )

    @property
    def unit(self) -> str:
        """Unit of the value and of every limit (the metric's output unit)."""
        return self.metric.unit_label

    def result_limits(self) -> tuple[Limit, ...]:
        """Limits as :class:`rtcheck.result.Limit` objects, strictest first."""
        return tuple(
            Limit(level, self.comparator.value, value, self.unit)
            for level, value in self.limits.items()
        )

    def margin(self, value: float) -> float:
        """Distance from ``value`` to the most lenient limit, positive on the passing side."""
        return self.comparator.margin(value, list(self.limits.values())[-1])

    def level_met(self, value: float) -> str | None:
        """Name of the strictest level ``value`` meets, or None (beyond every level)."""
        return next(
            (lvl for lvl, lim in self.limits.items() if self.comparator.holds(value, lim)), None
        )


class GlobalMaxRule(Frozen):
    """The plan's global dose maximum must lie inside a target of ``target`` kind."""

    target: TargetKind = TargetKind.PTV
    source: SourceKeys
    note: str | None = None


#: Key of the table that applies to every number of fractions (``tables: {any: ...}``).
ANY_FRACTIONS = "any"


class Table(Frozen):
    """The constraints for one number of fractions (``fractions`` None: for any number)."""

    fractions: Annotated[int, Field(ge=1)] | None
    label: str | None = None
    prescription_gy: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    constraints: tuple[Constraint, ...] = ()
    conformity: ConformityTable | None = None
    global_max_in_target: GlobalMaxRule | None = None

    @model_validator(mode="before")
    @classmethod
    def _ids(cls, data: Any) -> Any:
        rows = data.get("constraints") if isinstance(data, dict) else None
        if isinstance(rows, list):
            fx = data.get("fractions")
            rows = [
                {**r, "id": _default_id(r, fx)}
                if isinstance(r, dict) and "id" not in r and "structure" in r
                else r
                for r in rows
            ]
            data = {**data, "constraints": rows}
        return data

    @model_validator(mode="after")
    def _unique_ids(self) -> Table:
        seen: set[str] = set()
        for c in self.constraints:
            if c.id in seen:
                raise ValueError(f"constraint id {c.id!r} is used twice in this table")
            seen.add(c.id)
        if self.fractions is None:
            self._check_any()
        return self

    def _check_any(self) -> None:
        """The ``any`` table holds organ constraints only (target rules are per fractionation)."""
        extra = [
            key
            for key, value in (
                ("prescription_gy", self.prescription_gy),
                ("conformity", self.conformity),
                ("global_max_in_target", self.global_max_in_target),
            )
            if value is not None
        ]
        if self.target_constraints:
            extra.append("applies_to: target")
        if extra:
            raise ValueError(
                f"the '{ANY_FRACTIONS}' table (every number of fractions) takes organ "
                f"constraints only, not {', '.join(extra)}"
            )

    @property
    def oar_constraints(self) -> tuple[Constraint, ...]:
        """Constraints on organs."""
        return tuple(c for c in self.constraints if c.applies_to is AppliesTo.OAR)

    @property
    def target_constraints(self) -> tuple[Constraint, ...]:
        """Constraints evaluated on each target."""
        return tuple(c for c in self.constraints if c.applies_to is AppliesTo.TARGET)


class DerivedStructure(Frozen):
    """A structure computed from others when the plan does not provide it."""

    expression: Annotated[Expr, BeforeValidator(_expression)]
    prefer: Prefer = Prefer.ROI
    note: str | None = None

    @property
    def references(self) -> tuple[str, ...]:
        """Structure names the expression uses."""
        return references(self.expression)


PositiveGy = Annotated[float, Field(gt=0)]
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class AlphaBeta(Frozen):
    """alpha/beta (Gy) for EQD2/BED metrics that do not state one."""

    default: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    structures: Annotated[dict[str, PositiveFinite], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict
    )
    source: SourceKeys | None = None
    note: str | None = None

    def for_structure(self, name: str) -> float | None:
        """alpha/beta for ``name`` (structure-specific, else the default)."""
        return self.structures.get(name, self.default)


class Omission(Frozen):
    """A source value deliberately not shipped, disclosed by ``protocols show`` and reports."""

    what: Text
    source: SourceKeys
    reason: Text


class Protocol(Frozen):
    """A validated protocol file. Build with :func:`rtcheck.protocol.load_protocol`."""

    format: int = FORMAT_VERSION
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    title: Text
    version: Text
    citation: Text
    description: str | None = None
    sources: Annotated[dict[str, Source], AfterValidator(FrozenDict)]
    levels: tuple[Text, ...] = Field(min_length=1)
    beyond_levels: Text = "fail"
    point_max: Annotated[Metric, BeforeValidator(_point_max)]
    point_max_note: str | None = None
    alpha_beta: AlphaBeta | None = None
    derived: Annotated[dict[str, DerivedStructure], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict
    )
    extra_structures: tuple[Text, ...] = ()
    tables: Annotated[dict[int, Table], AfterValidator(FrozenDict)] = Field(
        default_factory=FrozenDict
    )
    any_table: Table | None = None
    omitted: tuple[Omission, ...] = ()
    source_file: str | None = None
    source_sha256: str | None = None

    @field_validator("format")
    @classmethod
    def _format(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"this rtcheck reads protocol format {FORMAT_VERSION}, not {v}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        derived = data.get("derived")
        if isinstance(derived, dict):
            data = {**data, "derived": {k: _derived_input(v) for k, v in derived.items()}}
        tables = data.get("tables")
        if isinstance(tables, dict):
            tables = _fraction_keys(tables)
            if ANY_FRACTIONS in tables:
                if "any_table" in data:
                    raise ValueError(f"give the '{ANY_FRACTIONS}' table once, under tables")
                tables = dict(tables)
                table = tables.pop(ANY_FRACTIONS)
                any_table = {"fractions": None, **table} if isinstance(table, dict) else table
                data = {**data, "any_table": any_table}
            data = {
                **data,
                "tables": {
                    k: {"fractions": k, **v} if isinstance(v, dict) else v
                    for k, v in tables.items()
                },
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> Protocol:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels {list(self.levels)} repeat a name")
        if not self.tables and self.any_table is None:
            raise ValueError("a protocol needs at least one table")
        for fx, table in self.tables.items():
            if table.fractions != fx:
                raise ValueError(f"table {fx} says fractions: {table.fractions}")
        if self.any_table is not None:
            if self.any_table.fractions is not None:
                raise ValueError(
                    f"the '{ANY_FRACTIONS}' table says fractions: {self.any_table.fractions}"
                )
            shared = {c.id for c in self.any_table.constraints}
            for fx, table in self.tables.items():
                clash = sorted(shared & {c.id for c in table.constraints})
                if clash:
                    raise ValueError(
                        f"constraint id(s) {clash} are used in table {fx} and in the "
                        f"'{ANY_FRACTIONS}' table"
                    )
        self._check_sources()
        self._check_levels()
        _check_cycles(self.derived)
        self._check_structure_names()
        return self

    def _check_structure_names(self) -> None:
        """Every structure name must be TG-263 (or matched as one), derived, a target name,
        or declared centre-specific: a misspelt name would match no ROI and its rows would
        be "not contoured" (a silent pass; docs/protocols.md)."""
        custom = set(self.extra_structures) | set(self.derived)
        for _, table in self._named_tables():
            custom |= {c.structure for c in table.constraints if c.custom_name}
        used: list[tuple[str, str]] = []
        for fx, table in self._named_tables():
            for i, c in enumerate(table.constraints):
                where = f"tables.{fx}.constraints.{i}.structure [{c.structure} {c.metric}]"
                used.append((where, c.structure))
        for name, d in self.derived.items():
            used += [(f"derived.{name}.expression", ref) for ref in d.references]
        if self.alpha_beta is not None:
            used += [(f"alpha_beta.structures.{n}", n) for n in self.alpha_beta.structures]
        bad = [(w, n) for w, n in used if n not in custom and not standard_name(n)]
        if bad:
            parts = [f"{where}: {_unknown_name(name)}" for where, name in bad[:3]]
            if len(bad) > 3:
                parts.append(f"and {len(bad) - 3} more")
            raise ValueError(
                "; ".join(parts) + ". A structure must be a TG-263 name, a known synonym, a "
                "derived structure or a target name: correct the spelling, or declare a "
                "centre-specific name with 'custom_name: true' on the row or under "
                "'extra_structures'"
            )

    def _check_sources(self) -> None:
        used: list[tuple[str, tuple[str, ...]]] = []
        for fx, table in self._named_tables():
            used += [(f"tables.{fx}.{c.id}", c.source) for c in table.constraints]
            if table.conformity is not None:
                used.append((f"tables.{fx}.conformity", table.conformity.source))
            if table.global_max_in_target is not None:
                used.append(
                    (f"tables.{fx}.global_max_in_target", table.global_max_in_target.source)
                )
        used += [(f"omitted.{o.what}", o.source) for o in self.omitted]
        if self.alpha_beta is not None and self.alpha_beta.source:
            used.append(("alpha_beta", self.alpha_beta.source))
        for where, keys in used:
            missing = [k for k in keys if k not in self.sources]
            if missing:
                raise ValueError(f"{where}: source key(s) {missing} are not listed under sources")

    def _check_levels(self) -> None:
        for fx, table in self._named_tables():
            for c in table.constraints:
                unknown = [k for k in c.limits if k not in self.levels]
                if unknown:
                    raise ValueError(f"tables.{fx}.{c.id}: unknown level(s) {unknown}")
            if table.conformity is not None:
                for col in table.conformity.columns:
                    unknown = [k for k in col.limits if k not in self.levels]
                    if unknown:
                        raise ValueError(f"tables.{fx}.conformity: unknown level(s) {unknown}")

    def _named_tables(self) -> list[tuple[str | int, Table]]:
        out: list[tuple[str | int, Table]] = list(self.tables.items())
        if self.any_table is not None:
            out.append((ANY_FRACTIONS, self.any_table))
        return out

    # ------------------------------------------------------------------ queries
    @property
    def fractions(self) -> tuple[int, ...]:
        """Fraction numbers that have a table of their own, ascending (see ``any_fractions``)."""
        return tuple(sorted(self.tables))

    @property
    def any_fractions(self) -> bool:
        """True when the protocol has an ``any`` table (constraints for every fractionation)."""
        return self.any_table is not None

    @property
    def all_tables(self) -> tuple[Table, ...]:
        """Every table: by fraction number, then the ``any`` table."""
        return tuple(t for _, t in self._named_tables())

    @property
    def fractions_text(self) -> str:
        """``1, 3, 5``, ``any`` or ``5, any`` (for listings and messages)."""
        parts = [str(n) for n in self.fractions] + ([ANY_FRACTIONS] if self.any_fractions else [])
        return ", ".join(parts)

    def table_for(self, fractions: int | None) -> Table | None:
        """The constraints that apply to a plan of ``fractions`` fractions, or None.

        The table for exactly that number (never another number's table), followed by the
        constraints of the ``any`` table, which apply to every number of fractions (also an
        unknown one: its EQD2/BED rows then cannot be formed and say so).
        """
        exact = None if fractions is None else self.tables.get(int(fractions))
        if self.any_table is None:
            return exact
        if exact is None:
            return self.any_table
        return exact.model_copy(
            update={"constraints": exact.constraints + self.any_table.constraints}
        )

    def metric_to_evaluate(self, constraint: Constraint) -> tuple[Metric, str | None]:
        """The metric actually evaluated for ``constraint`` and a note on how.

        ``Max`` follows the protocol's point-max definition; EQD2/BED metrics without an
        alpha/beta take the protocol's value for the structure.
        """
        metric = _resolve_point_max(constraint.metric, self.point_max)
        note = (
            describe_point_max(self.point_max) if constraint.metric.kind is MetricKind.MAX else None
        )
        if metric.needs_alpha_beta and self.alpha_beta is not None:
            ab = self.alpha_beta.for_structure(constraint.structure)
            if ab is not None:
                metric = metric.with_alpha_beta(ab)
        return metric, note

    def info(self) -> ProtocolInfo:
        """Identity for :class:`rtcheck.result.Result`."""
        return ProtocolInfo(
            id=self.id,
            title=self.title,
            version=self.version,
            citation=self.citation,
            levels=self.levels,
            source_file=self.source_file,
            source_sha256=self.source_sha256,
        )


def _unknown_name(name: str) -> str:
    nearest = nearest_tg263_name(name)
    hint = f" (nearest TG-263 name: {nearest!r})" if nearest else ""
    return f"unknown structure name {name!r}{hint}"


def _default_id(row: Mapping[str, Any], fractions: Any = None) -> str:
    """``<structure>.<canonical metric>[.<n>fx]`` for rows without an explicit id."""
    try:
        metric = parse_metric(row.get("metric", "")).canonical
    except RtcheckError:
        metric = str(row.get("metric"))
    return f"{row['structure']}.{metric}" + (f".{fractions}fx" if fractions else "")


def _fraction_keys(tables: Mapping[Any, Any]) -> dict[Any, Any]:
    """Table keys as fraction numbers (``5`` and ``"5"`` alike) or ``any``.

    Two keys meaning the same number (``5`` and ``"5"``) would silently drop one table;
    ``yes``/``true`` (YAML booleans) and ``5.0`` are refused rather than guessed.
    """
    out: dict[Any, Any] = {}
    for key, value in tables.items():
        if key == ANY_FRACTIONS:
            number: Any = key
        elif isinstance(key, int) and not isinstance(key, bool):
            number = key
        elif isinstance(key, str) and re.fullmatch(r"\s*\d+\s*", key, re.ASCII):
            number = int(key)
        else:
            raise ValueError(
                f"tables.{key}: invalid key {key!r}: a table is keyed by a whole number of "
                f"fractions (1, 3, 5...) or '{ANY_FRACTIONS}'"
            )
        if number in out:
            raise ValueError(
                f"tables.{key}: a second table for {number} fraction(s); one table would be "
                "dropped silently, give each fractionation once"
            )
        out[number] = value
    return out


def _derived_input(value: Any) -> Any:
    return {"expression": value} if isinstance(value, str) else value


def _check_cycles(derived: Mapping[str, DerivedStructure]) -> None:
    """Reject derived structures that refer to themselves through others."""

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(
                f"derived structures refer to each other: {' -> '.join((*path, name))}"
            )
        if name in derived:
            for ref in derived[name].references:
                visit(ref, (*path, name))

    for name in derived:
        visit(name, ())
