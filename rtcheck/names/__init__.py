"""Structure names: protocol name -> ROI matching (:mod:`.matching`), targets (:mod:`.targets`),
TG-263 names (:mod:`.tg263`)."""

from rtcheck.names.matching import (
    Match,
    MatchMethod,
    match_keys,
    match_structure,
    normalise,
    planning_markers,
    tokens,
)
from rtcheck.names.targets import (
    TargetCandidate,
    TargetKind,
    TargetName,
    TargetSearch,
    find_targets,
    parse_target_name,
)
from rtcheck.names.tg263 import nearest_tg263_name, standard_name, tg263_names

__all__ = [
    "Match",
    "MatchMethod",
    "TargetCandidate",
    "TargetKind",
    "TargetName",
    "TargetSearch",
    "find_targets",
    "match_keys",
    "match_structure",
    "nearest_tg263_name",
    "normalise",
    "parse_target_name",
    "planning_markers",
    "standard_name",
    "tg263_names",
    "tokens",
]
