"""Structure names: protocol name -> ROI matching (:mod:`.matching`), targets (:mod:`.targets`)."""

from rtcheck.names.matching import (
    Match,
    MatchMethod,
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

__all__ = [
    "Match",
    "MatchMethod",
    "TargetCandidate",
    "TargetKind",
    "TargetName",
    "TargetSearch",
    "find_targets",
    "match_structure",
    "normalise",
    "parse_target_name",
    "planning_markers",
    "tokens",
]
