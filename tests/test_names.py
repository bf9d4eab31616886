"""Structure name matching and target discovery: a table of names -> expected outcome."""

import csv
from pathlib import Path

import pytest

from rtcheck.model import Roi
from rtcheck.names import (
    MatchMethod,
    TargetKind,
    find_targets,
    match_structure,
    normalise,
    parse_target_name,
    planning_markers,
)

EXACT, NORM, LAT, SYN, ALIAS, USER = (
    MatchMethod.EXACT,
    MatchMethod.NORMALISED,
    MatchMethod.LATERALITY,
    MatchMethod.SYNONYM,
    MatchMethod.ALIAS,
    MatchMethod.USER_MAP,
)
WORKSHEET = Path(__file__).parent / "data" / "reference" / "tg263_worksheet_20170815.csv"

POSITIVE = [
    # protocol name, aliases, ROI names in the plan, expected ROI, method
    ("SpinalCord", [], ["SpinalCord", "Lung_L"], "SpinalCord", EXACT),
    ("SpinalCord", [], ["Spinal Cord", "Heart"], "Spinal Cord", NORM),
    ("SpinalCord", [], ["spinal_cord"], "spinal_cord", NORM),
    ("SpinalCord", [], ["SPINALCORD"], "SPINALCORD", NORM),
    ("SpinalCord", [], ["Cord"], "Cord", SYN),
    ("SpinalCord", [], ["Myelon"], "Myelon", SYN),
    ("SpinalCord", [], ["SpinalCord", "SpinalCord_PRV05"], "SpinalCord", EXACT),
    ("SpinalCord", [], ["Spinal Cord", "SpinalCord_PRV05", "zCord"], "Spinal Cord", NORM),
    ("Lung_L", [], ["L Lung"], "L Lung", LAT),
    ("Lung_L", [], ["Left Lung", "Right Lung"], "Left Lung", LAT),
    ("Lung_L", [], ["LT_LUNG"], "LT_LUNG", LAT),
    ("Lung_L", [], ["Lung Lt"], "Lung Lt", LAT),
    ("Lung_L", [], ["LungL", "LungR"], "LungL", NORM),
    ("Lung_L", [], ["lung_left"], "lung_left", LAT),
    ("Lung_L", [], ["Lung sin", "Lung dx"], "Lung sin", LAT),
    ("Lung_R", [], ["Lung sin", "Lung dx"], "Lung dx", LAT),
    ("Kidney_R", [], ["Rt Kidney", "Lt Kidney"], "Rt Kidney", LAT),
    ("BrachialPlex_L", [], ["Brachial Plexus L", "Brachial Plexus R"], "Brachial Plexus L", SYN),
    ("BrachialPlex_R", [], ["R Brachial Plexus"], "R Brachial Plexus", SYN),
    ("OpticNrv_L", [], ["Optic Nerve L"], "Optic Nerve L", SYN),
    ("Femur_Head_R", [], ["Femoral Head Rt"], "Femoral Head Rt", SYN),
    ("Esophagus", [], ["Oesophagus"], "Oesophagus", SYN),
    ("Esophagus", [], ["esophagus"], "esophagus", NORM),
    ("Esophagus", [], ["Esoph"], "Esoph", SYN),
    ("GreatVes", [], ["Great Vessels"], "Great Vessels", SYN),
    ("GreatVes", [], ["GreatVessels"], "GreatVessels", SYN),
    ("Lungs", [], ["Lung Total", "Lung_L", "Lung_R"], "Lung Total", SYN),
    ("Lungs", [], ["Total Lung"], "Total Lung", SYN),
    ("Lungs", [], ["Lungs Total"], "Lungs Total", SYN),
    ("Lungs", [], ["LUNGS"], "LUNGS", NORM),
    ("Lungs", [], ["Lung"], "Lung", SYN),
    ("Body", [], ["BODY", "Skin"], "BODY", NORM),
    ("Body", [], ["External"], "External", SYN),
    ("Body", [], ["Outline"], "Outline", SYN),
    ("External", [], ["BODY"], "BODY", SYN),
    ("AirWay_Prox", [], ["PBT"], "PBT", SYN),
    ("AirWay_Prox", [], ["Proximal Bronchial Tree"], "Proximal Bronchial Tree", SYN),
    ("AirWay_Prox", [], ["Bronchus_Prox"], "Bronchus_Prox", SYN),
    ("Chestwall", [], ["Chest Wall"], "Chest Wall", NORM),
    ("Chestwall", [], ["ChestWall"], "ChestWall", NORM),
    ("Rib", [], ["Ribs"], "Ribs", SYN),
    ("Heart", ["Pericardium"], ["Pericardium"], "Pericardium", ALIAS),
    ("Heart", ["Pericardium"], ["Heart", "Pericardium"], "Heart", EXACT),
    ("Trachea", [], ["trachea"], "trachea", NORM),
    ("Stomach", [], ["STOMACH", "Stomach_PRV"], "STOMACH", NORM),
    ("Liver", [], ["Liver", "Liver-GTV"], "Liver", EXACT),
    ("Jejunum_Ileum", ["Bowel_Small"], ["Small Bowel"], "Small Bowel", ALIAS),
    ("Lungs-GTV", ["Lungs-ITV"], ["Lungs - GTV", "Lungs"], "Lungs - GTV", NORM),
    ("Lungs-GTV", ["Lungs-ITV"], ["Lung-GTV"], "Lung-GTV", SYN),
    ("Lungs-GTV", ["Lungs-ITV"], ["Lungs-ITV", "Lungs-PTV"], "Lungs-ITV", ALIAS),
    ("OpticChiasm", [], ["Chiasm"], "Chiasm", SYN),
    ("Kidney_Hilum_L", [], ["L Renal Hilum"], "L Renal Hilum", SYN),
]


@pytest.mark.parametrize(("name", "aliases", "rois", "roi", "method"), POSITIVE)
def test_positive_matches(name, aliases, rois, roi, method):
    m = match_structure(name, aliases, rois)
    assert (m.roi_name, m.method) == (roi, method), m.reason
    assert m.found and m.label == method.value


NEGATIVE = [
    # protocol name, aliases, ROI names, fragment of the reason, ambiguous?
    ("SpinalCord", [], ["Cord", "Spinal Cord"], "ambiguous", True),
    ("SpinalCord", [], ["SPINAL_CORD", "spinal cord"], "ambiguous", True),
    ("Heart", ["Pericardium"], ["HEART", "Pericardium"], "ambiguous", True),
    ("Heart", [], ["Heart", "Heart"], "several ROIs are named", True),
    ("SpinalCord", [], ["SpinalCord_PRV05"], "planning/partial", False),
    ("SpinalCord", [], ["SpinalCord_PRV5", "Cord_PRV3"], "prv", False),
    ("SpinalCord", [], ["zCord", "Cord_opt", "Cord+3mm", "SpinalCord~"], "planning/partial", False),
    ("SpinalCord", [], ["SpinalCord^Sub", "ring_cord", "Cord_eval", "Cord_old"], "planning", False),
    ("SpinalCord", [], ["Spinal Canal", "Heart"], "no ROI matches SpinalCord", False),
    ("Esophagus", [], ["Esophagus-PTV", "Esophagus_avoid"], "planning/partial", False),
    ("Lungs", [], ["Lung_L", "Lung_R"], "other or no side", False),
    ("Lungs", [], ["Lungs-GTV", "Lungs-PTV"], "planning/partial", False),
    ("Lung_L", [], ["Lung_R", "Lungs"], "other or no side", False),
    ("BrachialPlex_L", [], ["BrachialPlex_R"], "other or no side", False),
    ("BrachialPlex_L", [], ["Brachial Plexus"], "other or no side", False),
    ("Rib", [], ["Rib_L"], "other or no side", False),
    ("Skin", [], ["BODY", "External"], "no ROI matches Skin", False),
    ("Body", [], ["Skin"], "no ROI matches Body", False),
    ("Lungs-GTV", ["Lungs-ITV"], ["Lungs-PTV", "Lungs"], "no ROI matches Lungs-GTV", False),
    ("Kidney_L", [], ["Kidney_R", "Kidneys"], "other or no side", False),
    ("Liver", [], ["PTV_Liver", "Liver_PTV+5mm"], "no ROI matches Liver", False),
    ("Heart", [], [], "no ROI matches Heart", False),
]


@pytest.mark.parametrize(("name", "aliases", "rois", "fragment", "ambiguous"), NEGATIVE)
def test_negative_and_ambiguous_cases_match_nothing(name, aliases, rois, fragment, ambiguous):
    m = match_structure(name, aliases, rois)
    assert m.roi_name is None and m.method is None and not m.found
    assert fragment in m.reason
    assert m.ambiguous is ambiguous
    assert m.label == ("ambiguous" if ambiguous else "not found")


def test_ambiguity_lists_every_candidate():
    m = match_structure("SpinalCord", [], ["Cord", "Spinal Cord", "Heart"])
    assert set(m.candidates) == {"Cord", "Spinal Cord"}
    assert "'Cord' (synonym)" in m.reason and "'Spinal Cord' (normalised)" in m.reason
    assert "--names" in m.reason


def test_ignored_look_alikes_are_disclosed_next_to_a_match():
    m = match_structure("SpinalCord", [], ["Spinal Cord", "SpinalCord_PRV05"])
    assert m.roi_name == "Spinal Cord"
    assert "SpinalCord_PRV05" in m.candidates and "SpinalCord_PRV05" in m.reason


def test_user_map_wins_and_is_strict():
    rois = ["Cord", "Spinal Cord", "Heart"]
    m = match_structure("SpinalCord", [], rois, user_map={"SpinalCord": "Cord"})
    assert (m.roi_name, m.method) == ("Cord", USER)
    m = match_structure("SpinalCord", [], rois, user_map={"spinal cord": "cord"})
    assert (m.roi_name, m.method) == ("Cord", USER)
    m = match_structure("SpinalCord", [], rois, user_map={"SpinalCord": "Medulla"})
    assert m.roi_name is None and "Medulla" in m.reason and "absent" in m.reason
    m = match_structure("SpinalCord", [], rois, user_map={"SpinalCord": None})
    assert m.roi_name is None and "names map" in m.reason
    m = match_structure("Heart", [], rois, user_map={"SpinalCord": "Cord"})
    assert (m.roi_name, m.method) == ("Heart", EXACT)


def test_normalise_and_markers():
    assert normalise("Spinal Cord") == normalise("spinal_cord") == normalise("SPINALCORD")
    assert planning_markers("SpinalCord") == ()
    assert planning_markers("OpticNrv_L") == ()  # "opt" only as a whole word
    assert planning_markers("Chest_Wall") == ()
    assert "prv" in planning_markers("CORDPRV")
    assert "opt" in planning_markers("PTV_opt")
    assert "3mm" in planning_markers("Cord+3mm")
    assert planning_markers("Lungs-GTV", allowed=["lungs", "gtv"]) == ()


def test_every_tg263_primary_name_matches_itself_and_its_spaced_form():
    with WORKSHEET.open(encoding="utf-8", newline="") as fh:
        names = [r["TG263-Primary Name"].strip() for r in csv.DictReader(fh)]
    names = [n for n in names if n and " " not in n]
    assert len(names) > 600
    for name in names:
        assert match_structure(name, [], [name, "Other"]).method is EXACT
        spaced = name.replace("_", " ")
        if spaced != name and not planning_markers(spaced):
            m = match_structure(name, [], [spaced])
            assert m.roi_name == spaced, (name, m.reason)


# ---------------------------------------------------------------------- targets
def roi(number, name, rtype=None):
    return Roi(number=number, name=name, interpreted_type=rtype)


TN = "interpreted type and name"
TARGETS = [
    # name, type, kind, index, sub, qualifier, dose Gy, fractions, evidence
    ("PTV_1", "PTV", TargetKind.PTV, 1, None, None, None, None, TN),
    ("PTV1", None, TargetKind.PTV, 1, None, None, None, None, "name"),
    ("PTVp", "PTV", TargetKind.PTV, None, "p", None, None, None, TN),
    ("PTVn1", "ORGAN", TargetKind.PTV, 1, "n", None, None, None, "name"),
    ("PTV_LUL", "PTV", TargetKind.PTV, None, None, "LUL", None, None, TN),
    ("PTV_40Gy", "PTV", TargetKind.PTV, None, None, None, 40.0, None, TN),
    ("PTV 50Gy", "PTV", TargetKind.PTV, None, None, None, 50.0, None, TN),
    ("PTV^Spine", "PTV", TargetKind.PTV, None, None, "Spine", None, None, TN),
    ("GTV1", "GTV", TargetKind.GTV, 1, None, None, None, None, TN),
    ("PTV_5000", "PTV", TargetKind.PTV, None, None, None, 50.0, None, TN),
    ("PTV_50Gy/5fx", "PTV", TargetKind.PTV, None, None, None, 50.0, 5, TN),
    ("PTV2_54Gy_3fx", None, TargetKind.PTV, 2, None, None, 54.0, 3, "name"),
    ("PTV_50.4Gy", None, TargetKind.PTV, None, None, None, 50.4, None, "name"),
    ("PTV_2", None, TargetKind.PTV, 2, None, None, None, None, "name"),
    ("Lesion2", "PTV", TargetKind.PTV, None, None, None, None, None, "interpreted type"),
    ("PTVneck", "PTV", TargetKind.PTV, None, None, None, None, None, "interpreted type"),
    ("ITV", "GTV", TargetKind.ITV, None, None, None, None, None, TN),
    ("IGTV", None, TargetKind.ITV, None, None, None, None, None, "name"),
    ("CTV_5400", "CTV", TargetKind.CTV, None, None, None, 54.0, None, TN),
    ("PTV1_Glnd_Adrenal_L", "PTV", TargetKind.PTV, 1, None, "Glnd_Adrenal_L", None, None, TN),
    # unclear doses are never guessed: Gy or cGy? 7.5 Gy or PTV 7 at 5 Gy? 9 Gy per fraction?
    ("PTV_50/5", None, TargetKind.PTV, None, None, None, None, 5, "name"),
    ("PTV_7_5Gy", None, TargetKind.PTV, 7, None, None, None, None, "name"),
    ("PTV 9Gy x 5", None, TargetKind.PTV, 5, None, "x", None, None, "name"),
    ("PTVoptic", "PTV", TargetKind.PTV, None, None, None, None, None, "interpreted type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "rtype", "kind", "index", "sub", "qual", "dose", "fx", "evidence"), TARGETS
)
def test_targets_by_type_and_name(name, rtype, kind, index, sub, qual, dose, fx, evidence):
    found = find_targets([roi(7, name, rtype)])
    assert not found.ignored
    (t,) = found.targets
    assert (t.name, t.roi_number, t.kind, t.index, t.sub, t.qualifier) == (
        name, 7, kind, index, sub, qual
    )  # fmt: skip
    assert (t.name_dose_gy, t.name_fractions, t.evidence) == (dose, fx, evidence)


IGNORED = [
    ("PTV_opt", "PTV", "opt"),
    ("zPTV", "CONTROL", "z_"),
    ("PTV-GTV", None, "contains GTV"),
    ("PTV_ring", "AVOIDANCE", "ring"),
    ("PTV+3mm", None, "3mm"),
    ("PTV_eval", "PTV", "eval"),
    ("PTVring", "PTV", "ring"),
    ("PTVopt", "PTV", "opt"),
    ("PTVeval", "PTV", "eval"),
    ("GTV1", "PTV", "disagrees"),
    ("PTV1", "GTV", "disagrees"),
]


@pytest.mark.parametrize(("name", "rtype", "fragment"), IGNORED)
def test_planning_and_inconsistent_targets_are_ignored_with_a_reason(name, rtype, fragment):
    found = find_targets([roi(3, name, rtype)])
    assert found.targets == ()
    ((ignored_name, why),) = found.ignored
    assert ignored_name == name and fragment in why


def test_organs_are_not_targets_and_order_is_kept():
    rois = [
        roi(1, "Lung_L", "ORGAN"),
        roi(2, "PTV2", "PTV"),
        roi(3, "Lungs-GTV", "ORGAN"),
        roi(4, "BODY", "EXTERNAL"),
        roi(5, "PTV1", "PTV"),
        roi(6, "GTV1", "GTV"),
    ]
    found = find_targets(rois)
    assert [t.name for t in found.targets] == ["PTV2", "PTV1", "GTV1"]
    assert [t.name for t in found.of_kind(TargetKind.PTV)] == ["PTV2", "PTV1"]
    assert found.ignored == ()


def test_bare_numbers_read_as_cgy_say_so():
    parsed = parse_target_name("PTV_6000")
    assert parsed is not None and parsed.dose_gy == pytest.approx(60.0)
    assert any("cGy" in n for n in parsed.notes)
    assert parse_target_name("Lung_L") is None
    assert parse_target_name("Lungs-GTV") is None
