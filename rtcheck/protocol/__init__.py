"""Protocols: ``constraints/*.yaml`` -> typed, immutable :class:`Protocol` objects.

Typical use::

    protocol = load_protocol("tg101")
    table = protocol.table_for(5)          # None when the protocol has no 5-fraction table
    for c in table.oar_constraints:
        metric, note = protocol.metric_to_evaluate(c)   # point-max definition applied
"""

from rtcheck.protocol._base import Comparator
from rtcheck.protocol.conformity import ConformityIndex, ConformityLimit, ConformityTable
from rtcheck.protocol.derived import (
    Combine,
    Expand,
    Expr,
    ExpressionError,
    Ring,
    SetOp,
    StructureRef,
    TargetGroup,
    parse_expression,
    references,
)
from rtcheck.protocol.loader import (
    ENV_VAR,
    builtin_protocol_dir,
    list_protocols,
    load_name_map,
    load_protocol,
    protocol_dirs,
    read_protocol_file,
)
from rtcheck.protocol.schema import (
    ANY_FRACTIONS,
    AlphaBeta,
    AppliesTo,
    Constraint,
    DerivedStructure,
    GlobalMaxRule,
    Omission,
    Prefer,
    Protocol,
    Source,
    Table,
)

__all__ = [
    "ANY_FRACTIONS",
    "ENV_VAR",
    "AlphaBeta",
    "AppliesTo",
    "Combine",
    "Comparator",
    "ConformityIndex",
    "ConformityLimit",
    "ConformityTable",
    "Constraint",
    "DerivedStructure",
    "Expand",
    "Expr",
    "ExpressionError",
    "GlobalMaxRule",
    "Omission",
    "Prefer",
    "Protocol",
    "Ring",
    "SetOp",
    "Source",
    "StructureRef",
    "Table",
    "TargetGroup",
    "builtin_protocol_dir",
    "list_protocols",
    "load_name_map",
    "load_protocol",
    "parse_expression",
    "protocol_dirs",
    "read_protocol_file",
    "references",
]
