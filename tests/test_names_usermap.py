"""``--names`` map checks: doubtful entries are disclosed (rtcheck.names.usermap)."""

from __future__ import annotations

from rtcheck.errors import Severity
from rtcheck.model import Roi, StructureSet
from rtcheck.names.usermap import name_map_findings

SS = StructureSet(
    rois=(
        Roi(1, "Spinal Cord", "ORGAN"),
        Roi(2, "Heart", "ORGAN"),
        Roi(3, "PTV_T8", "PTV"),
        Roi(4, "External", "EXTERNAL"),
    )
)
PROTOCOL = ("SpinalCord", "Heart", "Esophagus")


def _codes(user_map: dict[str, str | None]) -> list[tuple[str, str]]:
    found = name_map_findings(user_map, PROTOCOL, ("PTV",), SS)
    assert all(f.severity is Severity.WARNING for f in found)
    return [(f.code, f.message) for f in found]


def test_a_sound_map_gives_no_finding() -> None:
    assert _codes({"SpinalCord": "spinal cord", "Esophagus": None}) == []


def test_misspelt_key_is_disclosed_with_the_nearest_name() -> None:
    ((code, message),) = _codes({"SpinalKord": "Spinal Cord"})
    assert code == "names.unused" and "did you mean SpinalCord?" in message


def test_value_that_is_no_roi() -> None:
    ((code, message),) = _codes({"SpinalCord": "Cord"})
    assert code == "names.unknown_roi" and "'Cord'" in message


def test_two_structures_on_one_roi() -> None:
    ((code, message),) = _codes({"SpinalCord": "Heart", "Heart": "Heart"})
    assert code == "names.shared_roi" and "SpinalCord, Heart" in message


def test_organ_mapped_to_a_target_or_the_external() -> None:
    found = _codes({"SpinalCord": "PTV_T8", "Heart": "External"})
    assert [c for c, _ in found] == ["names.target_as_organ"] * 2
    assert "PTV" in found[0][1] and "EXTERNAL" in found[1][1]
