"""Per-lesion metrics against closed forms, the nearest-lesion rule, and prescriptions."""

from __future__ import annotations

import math

import pytest
from evaluation_synth import (
    gaussian,
    grid,
    octahedron,
    octahedron_slab_volume_cc,
    plan,
    pyramid,
    sample,
    sphere,
)

from rtcheck.dvh.compute import PreparedDose
from rtcheck.errors import ConfigError
from rtcheck.lesions import LesionInput, lesion_metrics, lesion_targets
from rtcheck.model import DoseGrid, Roi
from rtcheck.names import find_targets
from rtcheck.prescriptions import parse_rx_text, prescription_for, read_rx_file, user_rx_for


def _dose(g, values) -> PreparedDose:
    return PreparedDose.of(DoseGrid(values, g))


# ----------------------------------------------------------------------------- closed forms
def test_octahedral_dose_cloud_gives_exact_indices() -> None:
    """Pyramid dose P - k(|x|+|y|+|z|): trilinear interpolation is exact, isodoses are
    octahedra of half-size (P - D)/k, volume 4/3 a^3."""
    g = grid((-46.0, -46.0, -46.0), (46.0, 46.0, 46.0), 2.0)
    peak, slope, rx, a = 70.0, 1.5, 50.0, 10.0
    ptv = octahedron(1, "PTV1", "PTV", (0.0, 0.0, 0.0), a, dz=1.0)
    got = lesion_metrics(
        _dose(g, sample(g, pyramid((0, 0, 0), peak, slope))), [LesionInput("PTV1", ptv, rx)]
    )["PTV1"]
    m = got.metrics
    tv = octahedron_slab_volume_cc(a, 1.0)
    piv = 4.0 / 3.0 * ((peak - rx) / slope) ** 3 / 1000.0
    piv50 = 4.0 / 3.0 * ((peak - rx / 2) / slope) ** 3 / 1000.0
    assert got.volume_cc == pytest.approx(tv, rel=1e-9)
    assert m["PIV[cc]"] == pytest.approx(piv, rel=0.01)
    assert m["PIV50[cc]"] == pytest.approx(piv50, rel=0.005)
    assert m["TV_PIV[cc]"] == pytest.approx(tv, rel=1e-6)  # the PTV lies inside the Rx isodose
    assert m["CI_RTOG"] == pytest.approx(piv / tv, rel=0.01)
    assert m["R100%"] == m["CI_RTOG"]
    assert m["CI_Paddick"] == pytest.approx(tv / piv, rel=0.01)
    assert m["GI"] == pytest.approx(piv50 / piv, rel=0.01)
    assert m["R50%"] == pytest.approx(piv50 / tv, rel=0.005)
    # 20 mm from the octahedron, the lowest |x|+|y|+|z| is a + 20 (off a vertex)
    d2cm = peak - slope * (a + 20.0)
    assert m["D2cm[Gy]"] == pytest.approx(d2cm, abs=slope * 0.5)
    assert m["D2cm[%]"] == pytest.approx(100 * m["D2cm[Gy]"] / rx)
    assert m["Max[Gy]"] == pytest.approx(peak, rel=1e-9)  # exact max of the interpolated dose
    # the slab model extends the last planes by half a spacing: max |x|+|y|+|z| is a + dz/2
    assert m["Min[Gy]"] == pytest.approx(peak - slope * (a + 0.5), abs=1e-6)
    assert m["V100%[%]"] == pytest.approx(100.0, abs=1e-6)


def test_spherical_target_in_a_spherical_dose_cloud() -> None:
    """Gaussian cloud: isodose spheres of radius r_D = s sqrt(ln(P / D)); CI = (r100/R)^3,
    Paddick CI = (R/r100)^3, GI = (r50/r100)^3, R50% = (r50/R)^3, D2cm = D(R + 20)."""
    g = grid((-45.0, -45.0, -45.0), (45.0, 45.0, 45.0), 1.0)
    big_r, rx = 10.0, 50.0
    s = math.sqrt((17.0**2 - 11.0**2) / math.log(2.0))  # r100 = 11 mm, r50 = 17 mm
    peak = rx * math.exp(11.0**2 / s**2)
    ptv = sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), big_r, dz=1.0)
    m = lesion_metrics(
        _dose(g, sample(g, gaussian((0, 0, 0), peak, s))), [LesionInput("PTV1", ptv, rx)]
    )["PTV1"].metrics
    assert m["CI_RTOG"] == pytest.approx((11.0 / big_r) ** 3, rel=0.02)
    assert m["CI_Paddick"] == pytest.approx((big_r / 11.0) ** 3, rel=0.02)
    assert m["GI"] == pytest.approx((17.0 / 11.0) ** 3, rel=0.02)
    assert m["R50%"] == pytest.approx((17.0 / big_r) ** 3, rel=0.02)

    def pct_at(r: float) -> float:
        return 100 * peak * math.exp(-(r**2) / s**2) / rx

    # the shell starts at 20 mm within the surface estimate (+-0.3 mm); D2cm errs high
    assert pct_at(big_r + 20.0) * 0.995 <= m["D2cm[%]"] <= pct_at(big_r + 19.6)
    assert m["D95%[Gy]"] > rx  # the whole PTV lies inside the Rx isodose
    assert m["D95%[%]"] == pytest.approx(100 * m["D95%[Gy]"] / rx)


def test_unknown_prescription_leaves_rx_metrics_empty() -> None:
    g = grid((-30.0, -30.0, -30.0), (30.0, 30.0, 30.0), 2.0)
    ptv = sphere(1, "PTV1", "PTV", (0.0, 0.0, 0.0), 8.0)
    m = lesion_metrics(
        _dose(g, sample(g, gaussian((0, 0, 0), 60.0, 15.0))), [LesionInput("PTV1", ptv, None)]
    )["PTV1"].metrics
    assert m["D95%[Gy]"] is not None
    for key in ("V100%[%]", "D95%[%]", "CI_RTOG", "CI_Paddick", "GI", "R50%", "D2cm[%]"):
        assert m[key] is None, key


def test_target_outside_the_dose_grid_has_no_metrics() -> None:
    g = grid((-20.0, -20.0, -20.0), (20.0, 20.0, 20.0), 2.0)
    ptv = sphere(1, "PTV1", "PTV", (18.0, 0.0, 0.0), 8.0)
    got = lesion_metrics(
        _dose(g, sample(g, gaussian((0, 0, 0), 60.0, 15.0))), [LesionInput("PTV1", ptv, 50.0)]
    )["PTV1"]
    assert not got.covered
    assert got.metrics["D95%[Gy]"] is None
    assert any(f.code == "lesion.outside_grid" for f in got.findings)


# ----------------------------------------------------------------------------- nearest lesion
def _two_lesions(separation: float) -> dict:
    g = grid((-70.0, -40.0, -40.0), (70.0, 40.0, 40.0), 2.0)
    s, rx = 15.57, 50.0
    peak = rx * math.exp(121.0 / s**2)
    half = separation / 2
    fn_a, fn_b = gaussian((-half, 0, 0), peak, s), gaussian((half, 0, 0), peak, s)
    values = sample(g, lambda x, y, z: fn_a(x, y, z) + fn_b(x, y, z))
    lesions = [
        LesionInput("PTV_A", sphere(1, "PTV_A", "PTV", (-half, 0, 0), 10.0), rx),
        LesionInput("PTV_B", sphere(2, "PTV_B", "PTV", (half, 0, 0), 10.0), rx),
    ]
    both = lesion_metrics(_dose(g, values), lesions)
    alone = lesion_metrics(_dose(g, sample(g, fn_a)), lesions[:1])
    merged = lesion_metrics(_dose(g, values), lesions[:1])  # one lesion: no split
    return {"both": both, "alone": alone, "merged": merged}


def test_distant_lesions_get_their_own_isodose_volumes() -> None:
    got = _two_lesions(100.0)
    a, b, alone = got["both"]["PTV_A"], got["both"]["PTV_B"], got["alone"]["PTV_A"]
    for key in ("PIV[cc]", "PIV50[cc]", "CI_Paddick", "GI", "R50%"):
        assert a.metrics[key] == pytest.approx(alone.metrics[key], rel=0.01), key
        assert b.metrics[key] == pytest.approx(a.metrics[key], rel=0.01), key
    assert not [f for f in a.findings if f.code == "lesion.close"]


def test_close_lesions_are_split_and_reported() -> None:
    got = _two_lesions(36.0)
    a, b = got["both"]["PTV_A"], got["both"]["PTV_B"]
    assert any(f.code == "lesion.close" and "50 %" in f.message for f in a.findings)
    assert any(f.code == "lesion.close" for f in b.findings)
    # the merged 50 % cloud is partitioned: the two parts add up to the whole cloud
    whole = got["merged"]["PTV_A"].metrics["PIV50[cc]"]
    assert a.metrics["PIV50[cc]"] + b.metrics["PIV50[cc]"] == pytest.approx(whole, rel=0.01)
    assert a.metrics["PIV50[cc]"] == pytest.approx(whole / 2, rel=0.1)


@pytest.mark.parametrize(
    ("inner", "centre", "shared"),
    [(5.0, (0.0, 0.0, 0.0), True), (10.0, (20.5, 0.0, 0.0), False)],
    ids=["boost-inside", "touching"],
)
def test_targets_that_share_volume_are_reported(inner, centre, shared) -> None:
    """A boost inside its PTV shares volume with it; two spheres 0.5 mm apart do not."""
    g = grid((-40.0, -40.0, -40.0), (40.0, 40.0, 40.0), 2.0)
    values = sample(g, gaussian((0, 0, 0), 60.0, 15.0))
    lesions = [
        LesionInput("PTV_low", sphere(1, "PTV_low", "PTV", (0.0, 0.0, 0.0), 10.0), 40.0),
        LesionInput("PTV_high", sphere(2, "PTV_high", "PTV", centre, inner), 50.0),
    ]
    got = lesion_metrics(_dose(g, values), lesions)
    codes = {
        n: [f.message for f in m.findings if f.code == "lesion.overlap"] for n, m in got.items()
    }
    if shared:
        assert "PTV_high lies inside PTV_low" in codes["PTV_high"][0]
        assert "PTV_low overlaps PTV_high" in codes["PTV_low"][0]
    else:
        assert codes == {"PTV_low": [], "PTV_high": []}


def test_conformity_of_lesions_sharing_isodoses_is_not_judged(tmp_path) -> None:
    """Two lesions 36 mm apart: their 50 % clouds merge, so R50% and the other indices are
    shown but not judged (the nearest-target split could turn a failing lesion into a pass)."""
    from evaluation_synth import case, write_case

    from rtcheck.pipeline import check_path

    g = grid((-70.0, -40.0, -40.0), (70.0, 40.0, 40.0), 2.0)
    s, rx = 15.57, 50.0
    peak = rx * math.exp(121.0 / s**2)
    fa, fb = gaussian((-18.0, 0, 0), peak, s), gaussian((18.0, 0, 0), peak, s)
    values = sample(g, lambda x, y, z: fa(x, y, z) + fb(x, y, z))
    p = plan("P1", 5, [("PTV_A", rx, 1), ("PTV_B", rx, 2)])
    rois = [
        sphere(1, "PTV_A", "PTV", (-18.0, 0, 0), 10.0),
        sphere(2, "PTV_B", "PTV", (18.0, 0, 0), 10.0),
    ]
    from evaluation_synth import dose as dose_of

    folder = write_case(case(rois, [dose_of(g, values, p)], [p]), tmp_path / "c")
    r = check_path(folder, "rtog0813")
    for les in r.lesions:
        conf = [c for c in les.constraints if c.id.startswith("conformity.")]
        assert conf and all(c.status.value == "not_evaluated" for c in conf)
        assert all("meets that of" in c.reason for c in conf)
        assert les.metrics["R50%"] is not None  # computed and shown, not judged
    assert r.verdict.value != "pass"


# ----------------------------------------------------------------------------- prescriptions
def test_parse_rx_forms() -> None:
    assert parse_rx_text("PTV_1=40") == ("PTV_1", 40.0)
    assert parse_rx_text("PTV 2: 50 Gy") == ("PTV 2", 50.0)
    assert parse_rx_text("PTV3,35.5") == ("PTV3", 35.5)
    for bad in ("PTV1", "PTV1=abc", "PTV1=-5", "=40"):
        with pytest.raises(ConfigError):
            parse_rx_text(bad)


def test_rx_file(tmp_path) -> None:
    f = tmp_path / "rx.txt"
    f.write_text("# lesions\nPTV1 = 50\n\nPTV_LUL: 40  # second\n", encoding="utf-8")
    assert read_rx_file(str(f)) == (("PTV1", 50.0), ("PTV_LUL", 40.0))


def test_unknown_rx_target_is_an_error() -> None:
    assert user_rx_for([("ptv1", 40.0)], ["PTV1", "PTV2"]) == {"PTV1": 40.0}
    with pytest.raises(ConfigError, match="not a target"):
        user_rx_for([("PTV9", 40.0)], ["PTV1", "PTV2"])


def _targets(*names: tuple[int, str, str | None]):
    return find_targets([Roi(n, name, kind) for n, name, kind in names]).targets


def test_prescription_sources_and_precedence() -> None:
    t1, t2, t3 = _targets((1, "PTV1", "PTV"), (2, "PTV_40Gy", "PTV"), (3, "PTV3", "PTV"))
    p = plan("P", 5, [("PTV1", 50.0, 1), ("Lesion two", 45.0, 2)])
    rx1 = prescription_for(t1, p, {}, [t1, t2, t3])
    assert (rx1.gy, rx1.source) == (50.0, "RT Plan dose reference (ROI number)")
    rx2 = prescription_for(t2, p, {}, [t1, t2, t3])  # plan (45) wins over the name (40)
    assert (rx2.gy, rx2.source) == (45.0, "RT Plan dose reference (ROI number)")
    assert any(f.code == "rx.conflict" for f in rx2.findings)
    rx3 = prescription_for(t3, p, {}, [t1, t2, t3])
    assert rx3.gy is None and any(f.code == "rx.unknown" for f in rx3.findings)
    user = prescription_for(t1, p, {"PTV1": 48.0}, [t1, t2, t3])
    assert (user.gy, user.source) == (48.0, "--rx")
    assert any(f.code == "rx.overridden" for f in user.findings)
    by_name = prescription_for(t2, None, {}, [t2])
    assert (by_name.gy, by_name.source) == (40.0, "structure name")
    by_desc = prescription_for(t3, plan("Q", 5, [("ptv3", 30.0, None)]), {}, [t1, t3])
    assert (by_desc.gy, by_desc.source) == (30.0, "RT Plan dose reference (description)")


def test_single_unlinked_dose_reference_is_assumed_with_a_warning() -> None:
    (t1,) = _targets((1, "PTV1", "PTV"))
    rx = prescription_for(t1, plan("P", 5, [("Lung SBRT", 54.0, None)]), {}, [t1])
    assert (rx.gy, rx.source) == (54.0, "RT Plan (only dose reference)")
    assert any(f.code == "rx.assumed" and f.severity.value == "warning" for f in rx.findings)


def test_unlinked_dose_reference_is_not_assumed_for_one_of_several_targets() -> None:
    t1, t2 = _targets((1, "PTV1", "PTV"), (2, "PTV2", "PTV"))
    rx = prescription_for(t1, plan("P", 5, [("Lung SBRT", 54.0, None)]), {}, [t1, t2])
    assert rx.gy is None and any(f.code == "rx.unassigned" for f in rx.findings)


def test_assumed_dose_reference_against_the_name_is_ambiguous() -> None:
    (t,) = _targets((2, "PTV_40Gy", "PTV"))
    rx = prescription_for(t, plan("P", 5, [("Lung SBRT", 55.0, None)]), {}, [t])
    assert rx.gy is None and any(f.code == "rx.ambiguous" for f in rx.findings)


def test_dose_reference_of_another_roi_is_not_taken_by_its_description() -> None:
    """Described as 'PTV1' but referring to ROI 2 (PTV2, 35 Gy): not PTV1's prescription."""
    t1, t2 = _targets((1, "PTV1", "PTV"), (2, "PTV2", "PTV"))
    p = plan("P", 5, [("PTV1", 35.0, 2)])
    rx1 = prescription_for(t1, p, {}, [t1, t2])
    assert rx1.gy is None and any(f.code == "rx.reference_conflict" for f in rx1.findings)
    assert prescription_for(t2, p, {}, [t1, t2]).gy == 35.0


def test_lesions_are_ptvs_when_there_are_ptvs() -> None:
    search = find_targets([Roi(1, "GTV1", "GTV"), Roi(2, "PTV1", "PTV"), Roi(3, "CTV1", "CTV")])
    kind, found = lesion_targets(search)
    assert kind is not None and kind.value == "PTV"
    assert [t.name for t in found] == ["PTV1"]
    kind, found = lesion_targets(find_targets([Roi(1, "GTV1", "GTV")]))
    assert kind is not None and kind.value == "GTV" and len(found) == 1


# ----------------------------------------------------------------------------- left out
def _gtv_case(tmp_path, gtv_centre, rx_b):
    """PTV_A (Rx 50 Gy) and GTV_B; GTV_B has its own RT Plan prescription when ``rx_b``."""
    from evaluation_synth import case, write_case
    from evaluation_synth import dose as dose_of

    g = grid((-50.0, -40.0, -40.0), (50.0, 40.0, 40.0), 2.0)
    refs = [("PTV_A", 50.0, 1)] + ([("GTV_B", rx_b, 2)] if rx_b else [])
    p = plan("P1", 5, refs)
    values = sample(g, gaussian((-20.0, 0, 0), 50.0 * math.exp(121.0 / 15.57**2), 15.57))
    rois = [
        sphere(1, "PTV_A", "PTV", (-20.0, 0, 0), 10.0),
        sphere(2, "GTV_B", "GTV", gtv_centre, 6.0),
    ]
    return write_case(case(rois, [dose_of(g, values, p)], [p]), tmp_path / "c")


@pytest.mark.parametrize(
    ("centre", "rx_b", "left_out"),
    [((25.0, 0.0, 0.0), 50.0, True), ((25.0, 0.0, 0.0), None, True), ((-20.0, 0, 0), 60.0, False)],
    ids=["gtv-own-rx-outside", "gtv-outside", "gtv-inside-ptv"],
)
def test_a_target_outside_every_lesion_blocks_the_plan(tmp_path, centre, rx_b, left_out) -> None:
    """Lesions are the PTVs: a GTV outside every PTV (a metastasis without a PTV) would not be
    evaluated at all; it must keep the plan from passing. A GTV inside its PTV is normal."""
    from rtcheck.pipeline import check_path

    r = check_path(_gtv_case(tmp_path, centre, rx_b), "tg101")
    found = [f for f in r.findings if f.code == "target.left_out"]
    assert [les.name for les in r.lesions] == ["PTV_A"]
    if left_out:
        (f,) = found
        assert f.severity == "error" and "'GTV_B'" in f.message and "100 %" in f.message
        assert ("prescribes 50 Gy" in f.message) == bool(rx_b)
        assert r.verdict.value != "pass"
    else:
        assert not found


def test_rx_for_a_target_that_is_no_lesion_is_an_error(tmp_path) -> None:
    from rtcheck.pipeline import CheckOptions, check_path

    folder = _gtv_case(tmp_path, (25.0, 0.0, 0.0), None)
    with pytest.raises(ConfigError, match="not one of the lesions"):
        check_path(folder, "tg101", CheckOptions(rx=(("GTV_B", 50.0),)))
