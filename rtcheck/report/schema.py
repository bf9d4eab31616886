"""JSON Schema (draft 2020-12) of ``Result.to_dict()`` and a minimal validator for it.

The schema is written by hand, as data, next to the contract it describes; its version is
:data:`rtcheck.result.RESULT_SCHEMA_VERSION`. ``additionalProperties: false`` everywhere
means that a key added to ``to_dict()`` without a schema update fails the tests.

Versioning policy (see docs/reports.md): MINOR for additions that old readers can ignore
(a new optional key, a new enum value in a free-text field); MAJOR for anything that can break
a reader (a removed or renamed key, a changed type or unit, a new status or verdict value).

:func:`validate` implements exactly the keywords this schema uses (``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``enum``, ``const``, ``$ref``,
``minimum``, ``pattern``), so no third-party validator is needed.
"""

from __future__ import annotations

import re
from typing import Any

from rtcheck.result import RESULT_SCHEMA_VERSION, Status, Verdict

__all__ = ["SchemaError", "result_schema", "validate"]

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR = {"type": "string"}
_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


def _map(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


_LIMIT = _obj(
    {
        "comparator": {"enum": ["<", "<=", ">", ">="]},
        "value": _NUM,
        "unit": _STR,
    }
)

_FINDING = _obj(
    {
        "code": _STR,
        "severity": {"enum": ["info", "warning", "error"]},
        "message": _STR,
        "source": _STR_OR_NULL,
        "subject": _STR_OR_NULL,
    }
)

_CONSTRAINT = _obj(
    {
        "id": _STR,
        "structure": _STR,
        "matched_roi": _STR_OR_NULL,
        "match": _STR_OR_NULL,
        "metric": _STR,
        "value": _NUM_OR_NULL,
        "unit": _STR,
        "limits": _map({"$ref": "#/$defs/limit"}),
        "status": {"enum": [s.value for s in Status]},
        "level": _STR_OR_NULL,
        "margin": _NUM_OR_NULL,
        "reason": _STR_OR_NULL,
        "priority": _STR_OR_NULL,
        "endpoint": _STR_OR_NULL,
        "source": _STR_OR_NULL,
        "dose_basis": _STR,
        "note": _STR_OR_NULL,
        "lesion": _STR_OR_NULL,
    }
)

_PLAN_MAXIMUM = {
    **_obj(
        {
            "plan_label": _STR_OR_NULL,
            "value_gy": _NUM,
            "position_mm": {"type": "array", "items": _NUM},
            "points_at_max": {"type": "integer", "minimum": 1},
            "target_kind": _STR,
            "inside": {"type": ["array", "null"], "items": _STR},
            "in_this_lesion": {"type": ["boolean", "null"]},
            "reason": _STR_OR_NULL,
            "judged_by": _STR_OR_NULL,
        }
    ),
    "type": ["object", "null"],
}

_LESION = _obj(
    {
        "name": _STR,
        "roi_number": _INT_OR_NULL,
        "prescription_gy": _NUM_OR_NULL,
        "prescription_source": _STR_OR_NULL,
        "plan_label": _STR_OR_NULL,
        "fractions": _INT_OR_NULL,
        "volume_cc": _NUM_OR_NULL,
        "metrics": _map(_NUM_OR_NULL),
        "constraints": {"type": "array", "items": {"$ref": "#/$defs/constraint"}},
        "findings": {"type": "array", "items": {"$ref": "#/$defs/finding"}},
        "plan_maximum": {"$ref": "#/$defs/plan_maximum"},
    }
)

_DVH = _obj(
    {
        "structure": _STR,
        "kind": {"enum": ["target", "oar"]},
        "volume_cc": _NUM,
        "dose_basis": _STR,
        "dose_gy": {"type": "array", "items": _NUM},
        "volume_pct": {"type": "array", "items": _NUM},
    }
)

_PROTOCOL = _obj(
    {
        "id": _STR,
        "title": _STR,
        "version": _STR,
        "citation": _STR,
        "levels": {"type": "array", "items": _STR},
        "source_file": _STR_OR_NULL,
        "source_sha256": _STR_OR_NULL,
    }
)

_PLAN = _obj(
    {
        "patient_id": _STR_OR_NULL,
        "patient_name": _STR_OR_NULL,
        "plan_labels": {"type": "array", "items": _STR},
        "fractions": {"type": ["integer", "null"], "minimum": 1},
        "fractions_source": _STR,
        "prescriptions": {
            "type": "array",
            "items": _obj({"target": _STR, "dose_gy": _NUM_OR_NULL, "source": _STR}),
        },
        "dose_summation": _STR,
        "alpha_beta": _map(_NUM),
        "dose_grid": _STR_OR_NULL,
    }
)


def result_schema() -> dict[str, Any]:
    """The JSON Schema of the Result JSON, version :data:`RESULT_SCHEMA_VERSION`."""
    count = {"type": "integer", "minimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:rtcheck:result:{RESULT_SCHEMA_VERSION}",
        "title": "rtcheck plan check result",
        "description": (
            "Output of `rtcheck check --json` / Result.to_dict(). Doses in Gy, volumes in cc "
            "or % as each 'unit' says. A constraint with status 'not_evaluated' has value null "
            "and a reason; it never counts as a pass."
        ),
        "type": "object",
        "properties": {
            "schema_version": {"const": RESULT_SCHEMA_VERSION},
            "rtcheck_version": _STR,
            "created": _STR,
            "verdict": {"enum": [v.value for v in Verdict]},
            "counts": _obj({s.value: count for s in Status}),
            "protocol": {"$ref": "#/$defs/protocol"},
            "plan": {"$ref": "#/$defs/plan"},
            "constraints": {"type": "array", "items": {"$ref": "#/$defs/constraint"}},
            "lesions": {"type": "array", "items": {"$ref": "#/$defs/lesion"}},
            "findings": {"type": "array", "items": {"$ref": "#/$defs/finding"}},
            "dvhs": {"type": "array", "items": {"$ref": "#/$defs/dvh"}},
            "inputs": {
                "type": "array",
                "items": _obj(
                    {
                        "path": _STR,
                        "modality": _STR,
                        "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                    }
                ),
            },
        },
        "required": [
            "schema_version",
            "rtcheck_version",
            "created",
            "verdict",
            "counts",
            "protocol",
            "plan",
            "constraints",
            "lesions",
            "findings",
            "dvhs",
            "inputs",
        ],
        "additionalProperties": False,
        "$defs": {
            "limit": _LIMIT,
            "finding": _FINDING,
            "constraint": _CONSTRAINT,
            "lesion": _LESION,
            "plan_maximum": _PLAN_MAXIMUM,
            "dvh": _DVH,
            "protocol": _PROTOCOL,
            "plan": _PLAN,
        },
    }


class SchemaError(ValueError):
    """A document does not match the schema; ``problems`` lists every mismatch found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
        self.problems = problems


_TYPES: dict[str, Any] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _check(doc: Any, schema: dict[str, Any], root: dict[str, Any], at: str, out: list[str]) -> None:
    if "$ref" in schema:
        _check(doc, _resolve(schema["$ref"], root), root, at, out)
        return
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](doc) for t in names):
            out.append(f"{at}: expected {' or '.join(names)}, got {type(doc).__name__}")
            return
    if "const" in schema and doc != schema["const"]:
        out.append(f"{at}: must be {schema['const']!r}, got {doc!r}")
    if "enum" in schema and doc not in schema["enum"]:
        out.append(f"{at}: {doc!r} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](doc) and doc < schema["minimum"]:
        out.append(f"{at}: {doc} is below the minimum {schema['minimum']}")
    if "pattern" in schema and isinstance(doc, str) and not re.search(schema["pattern"], doc):
        out.append(f"{at}: {doc!r} does not match {schema['pattern']}")
    if isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            _check(item, schema["items"], root, f"{at}[{i}]", out)
    if isinstance(doc, dict):
        _check_object(doc, schema, root, at, out)


def _check_object(
    doc: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], at: str, out: list[str]
) -> None:
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in doc:
            out.append(f"{at}: missing required key {key!r}")
    extra = schema.get("additionalProperties", True)
    for key, value in doc.items():
        if not isinstance(key, str):
            out.append(f"{at}: key {key!r} is not a string")
        elif key in props:
            _check(value, props[key], root, f"{at}.{key}", out)
        elif extra is False:
            out.append(f"{at}: unexpected key {key!r}")
        elif isinstance(extra, dict):
            _check(value, extra, root, f"{at}.{key}", out)


def validate(doc: Any, schema: dict[str, Any] | None = None) -> None:
    """Check ``doc`` (parsed JSON) against ``schema`` (default: the Result schema).

    Raises
    ------
    SchemaError
        With every problem found, each as ``$.path: what is wrong``.
    """
    root = result_schema() if schema is None else schema
    problems: list[str] = []
    _check(doc, root, root, "$", problems)
    if problems:
        raise SchemaError(problems)
