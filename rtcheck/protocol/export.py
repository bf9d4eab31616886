"""Views of protocols for ``rtcheck protocols show`` (JSON and table) and reports.

:func:`protocol_to_dict` is the JSON view: everything rtcheck understood. :func:`header_lines`
and :func:`constraint_flags` are the plain-text pieces of the table view (the CLI lays them out
with rich), so both views show the same keys, including the centre-specific structure names
(``extra_structures`` and per-row ``custom_name``) that are exempt from the TG-263 name check.
"""

from __future__ import annotations

from typing import Any

from rtcheck.protocol.conformity import ConformityTable
from rtcheck.protocol.schema import ANY_FRACTIONS, Constraint, Protocol, Table


def protocol_summary(protocol: Protocol) -> dict[str, Any]:
    """Identity and fractionations of a protocol."""
    return {
        "id": protocol.id,
        "title": protocol.title,
        "version": protocol.version,
        "fractions": list(protocol.fractions),
        "any_fractions": protocol.any_fractions,
        "levels": list(protocol.levels),
        "source_file": protocol.source_file,
    }


def protocol_to_dict(protocol: Protocol, fractions: int | None = None) -> dict[str, Any]:
    """Everything in a protocol as plain data (metrics and expressions as text)."""
    tables: dict[str, Table] = {str(fx): t for fx, t in sorted(protocol.tables.items())}
    if fractions is not None:
        tables = {k: t for k, t in tables.items() if k == str(fractions)}
    if protocol.any_table is not None:
        tables[ANY_FRACTIONS] = protocol.any_table
    return {
        **protocol_summary(protocol),
        "citation": protocol.citation,
        "description": protocol.description,
        "beyond_levels": protocol.beyond_levels,
        "point_max": protocol.point_max.canonical,
        "point_max_note": protocol.point_max_note,
        "sources": {k: s.model_dump() for k, s in protocol.sources.items()},
        "alpha_beta": None
        if protocol.alpha_beta is None
        else {
            "default": protocol.alpha_beta.default,
            "structures": dict(protocol.alpha_beta.structures),
            "source": list(protocol.alpha_beta.source or ()),
            "note": protocol.alpha_beta.note,
        },
        "derived": {
            name: {"expression": d.expression.to_text(), "prefer": d.prefer.value, "note": d.note}
            for name, d in protocol.derived.items()
        },
        "extra_structures": list(protocol.extra_structures),
        "omitted": [
            {"what": o.what, "source": list(o.source), "reason": o.reason} for o in protocol.omitted
        ],
        "tables": {key: table_to_dict(t) for key, t in tables.items()},
    }


def table_to_dict(table: Table) -> dict[str, Any]:
    """One fractionation table as plain data."""
    return {
        "fractions": table.fractions,
        "label": table.label,
        "prescription_gy": table.prescription_gy,
        "constraints": [constraint_to_dict(c) for c in table.constraints],
        "conformity": None if table.conformity is None else conformity_to_dict(table.conformity),
        "global_max_in_target": None
        if table.global_max_in_target is None
        else {
            "target": table.global_max_in_target.target.value,
            "source": list(table.global_max_in_target.source),
            "note": table.global_max_in_target.note,
        },
    }


def constraint_to_dict(c: Constraint) -> dict[str, Any]:
    """One constraint as plain data."""
    return {
        "id": c.id,
        "structure": c.structure,
        "aliases": list(c.aliases),
        "applies_to": c.applies_to.value,
        "metric": c.metric.canonical,
        "unit": c.unit,
        "dose_basis": c.metric.basis_label,
        "comparator": c.comparator.value,
        "limits": dict(c.limits),
        "source": list(c.source),
        "required": c.required,
        "custom_name": c.custom_name,
        "confirmed": c.confirmed,
        "unconfirmed_reason": c.unconfirmed_reason,
        "priority": c.priority,
        "endpoint": c.endpoint,
        "note": c.note,
    }


def conformity_to_dict(t: ConformityTable) -> dict[str, Any]:
    """A conformity table as plain data."""
    return {
        "target": t.target.value,
        "source": list(t.source),
        "interpolation": t.interpolation,
        "note": t.note,
        "volume_cc": list(t.volume_cc),
        "columns": [
            {
                "index": col.index.value,
                "unit": col.index.unit,
                "comparator": col.comparator.value,
                "limits": {lvl: list(v) for lvl, v in col.limits.items()},
            }
            for col in t.columns
        ],
    }


#: Table-view flag of a row whose structure name is declared centre-specific (``custom_name``).
CUSTOM_NAME_FLAG = "custom name (not TG-263)"


def header_lines(protocol: Protocol) -> list[str]:
    """The lines printed above the tables by ``rtcheck protocols show`` (plain text)."""
    pm = protocol.point_max
    lines = [
        f"{protocol.title}  ({protocol.id}, version {protocol.version})",
        f"citation: {protocol.citation}",
        f"file: {protocol.source_file}",
        f"levels (strictest first): {', '.join(protocol.levels)}; beyond: {protocol.beyond_levels}",
        f"point max: {pm.kind.value if pm.value is None else pm}"
        + (f" - {protocol.point_max_note}" if protocol.point_max_note else ""),
    ]
    lines += [
        f"  {key}: {src.citation}" + (f" ({src.location})" if src.location else "")
        for key, src in protocol.sources.items()
    ]
    lines += [
        f"derived {name} = {d.expression.to_text()} (prefer {d.prefer.value})"
        for name, d in protocol.derived.items()
    ]
    if protocol.extra_structures:
        names = ", ".join(protocol.extra_structures)
        lines.append(f"centre-specific structure names (extra_structures, not TG-263): {names}")
    return lines


def constraint_flags(c: Constraint) -> list[str]:
    """Flags of one row in the table view: required, target, custom name, unconfirmed."""
    flags = [
        flag
        for flag, on in (
            ("required", c.required),
            ("target", c.applies_to.value == "target"),
            (CUSTOM_NAME_FLAG, c.custom_name),
        )
        if on
    ]
    if not c.confirmed:
        flags.append("UNCONFIRMED: not evaluated")
    return flags
