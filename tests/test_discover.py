"""Discovery and linking over real files written with pydicom."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from rtcheck.errors import InputError, LinkError, Severity
from rtcheck.io.discover import discover, load_case
from tests.dicom_factory import (
    contour_item,
    ct_series_uid,
    make_ct_series,
    make_dose,
    make_plan,
    make_structures,
    square,
    uid,
)

DOSE = np.full((3, 4, 4), 2.0)


def _patient(
    root: Path, pid: str, *, plans: int, frame: str = "FOR1", dose_frame: str | None = None
) -> None:
    """A patient: CT, structure set, ``plans`` per-lesion plans, each with a dose."""
    make_ct_series(root / "CT", [0.0, 2.0, 4.0], patient=pid, frame=frame, series=f"ct{pid}")
    rois = [
        (n, f"PTV_{n}", "PTV", [contour_item(square(3 * n, 0, 1, z)) for z in (0, 2)])
        for n in range(1, plans + 1)
    ]
    make_structures(
        root / "RS" / "rs.dcm",
        rois,
        patient=pid,
        frame=frame,
        name=f"ss{pid}",
        series_ref=ct_series_uid(f"ct{pid}"),
    )
    for n in range(1, plans + 1):
        make_plan(
            root / "RP" / f"rp{n}.dcm",
            label=f"L{n}",
            patient=pid,
            name=f"plan{pid}{n}",
            struct_uid=uid(f"ss-ss{pid}"),
            prescriptions=[(f"PTV_{n}", 50.0, n)],
        )
        make_dose(
            root / "RD" / f"rd{n}.dcm",
            DOSE * n,
            ipp=(-4, -4, 0),
            patient=pid,
            frame=dose_frame or frame,
            plan_uid=uid(f"plan-plan{pid}{n}"),
            name=f"dose{pid}{n}",
        )


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    root = tmp_path / "mixed"
    _patient(root / "a" / "P1", "P1", plans=2)
    _patient(root / "b" / "deep" / "P2", "P2", plans=1, frame="FOR2")
    # a dose whose plan is missing: linked by frame of reference with a finding
    make_dose(
        root / "b" / "orphan.dcm",
        DOSE,
        ipp=(-4, -4, 0),
        patient="P2",
        frame="FOR2",
        plan_uid=uid("missing-plan"),
        name="orphan",
    )
    (root / "README.txt").write_text("notes about these plans\n")
    shutil.copy(root / "a" / "P1" / "RS" / "rs.dcm", root / "copy_of_rs.dcm")
    data = Path(get_testdata_file("rtdose.dcm")).read_bytes()
    (root / "broken.dcm").write_bytes(data[:400])  # truncated inside its SOP Instance UID
    return root


def test_discover_mixed_folder(mixed: Path) -> None:
    found = discover(mixed)
    assert [c.patient.id for c in found.cases] == ["P1", "P2"]
    p1, p2 = found.cases
    assert [h.label for h in p1.plans] == ["L1", "L2"] and len(p1.doses) == 2
    assert p1.label == "P1: L1 + L2"
    assert len(p1.images) == 3 and p1.structure_set.path.endswith("a/P1/RS/rs.dcm")
    assert len(p2.doses) == 2 and len(p2.plans) == 1
    assert any(f.code == "link.by_frame" and f.source.endswith("orphan.dcm") for f in p2.findings)
    codes = {(f.code, Path(f.source).name) for f in found.findings}
    assert ("file.not_dicom", "README.txt") in codes
    assert ("file.duplicate", "copy_of_rs.dcm") in codes
    assert [Path(p).name for p, _ in found.unreadable] == ["broken.dcm"]
    assert dict(found.counts) == {"CT": 6, "RTDOSE": 4, "RTPLAN": 3, "RTSTRUCT": 3}


def test_load_discovered_case(mixed: Path) -> None:
    ref = discover(mixed).cases[0]
    case = ref.load()
    assert case.patient.id == "P1" and len(case.plans) == 2 and len(case.doses) == 2
    for dose in case.doses:
        plan = case.plan_for_dose(dose)
        assert plan is not None and dose.max_gy == pytest.approx(2.0 * int(plan.label[1]))
    assert case.image is not None and case.image.geometry.shape == (3, 4, 4)
    assert case.structure_set.by_name("PTV_2") is not None
    kinds = sorted(f.modality for f in case.files)
    assert kinds == ["CT"] * 3 + ["RTDOSE"] * 2 + ["RTPLAN"] * 2 + ["RTSTRUCT"]
    for f in case.files:
        assert f.sha256 == hashlib.sha256(Path(f.path).read_bytes()).hexdigest()


def test_load_case_several_cases_lists_them(mixed: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_case(mixed)
    text = str(exc.value)
    assert "found 2 cases" in text and "P1: L1 + L2" in text and "P2: L1" in text


def test_per_lesion_plans_are_one_case(tmp_path: Path) -> None:
    _patient(tmp_path, "P9", plans=3)
    case = load_case(tmp_path)
    assert len(case.plans) == 3 and len(case.doses) == 3
    assert [p.fractions_planned for p in case.plans] == [5, 5, 5]


def test_frame_mismatch(tmp_path: Path) -> None:
    _patient(tmp_path, "P3", plans=1, dose_frame="OTHER")
    ref = discover(tmp_path).cases[0]
    assert any(
        f.code == "link.frame_mismatch" and f.severity is Severity.ERROR for f in ref.findings
    )
    with pytest.raises(LinkError, match="frame of reference"):
        load_case(tmp_path)
    case = load_case(tmp_path, allow_frame_mismatch=True)
    mismatch = [f for f in case.findings if f.code == "link.frame_mismatch"]
    assert len(mismatch) == 1 and mismatch[0].severity is Severity.WARNING


def test_conflicting_duplicate_refuses_to_load(tmp_path: Path) -> None:
    _patient(tmp_path / "x", "P4", plans=1)
    other = tmp_path / "x" / "RD" / "rd1_v2.dcm"
    ds = pydicom.dcmread(tmp_path / "x" / "RD" / "rd1.dcm")
    ds.DoseGridScaling = 2e-4  # same UID, different dose
    ds.save_as(other)
    found = discover(tmp_path)
    assert any(f.code == "file.duplicate" and f.severity is Severity.ERROR for f in found.findings)
    with pytest.raises(LinkError, match="two different versions"):
        found.cases[0].load()


def test_truncated_plan_in_single_case_folder_is_disclosed(tmp_path: Path) -> None:
    _patient(tmp_path, "P5", plans=1)
    data = (tmp_path / "RP" / "rp1.dcm").read_bytes()
    (tmp_path / "RP" / "rp1.dcm").write_bytes(data[:-30])
    with pytest.raises(InputError, match="truncated"):
        load_case(tmp_path)  # the plan is part of the case: loading refuses it


def test_truncated_copy_with_same_uid_conflicts(tmp_path: Path) -> None:
    _patient(tmp_path / "x", "P7", plans=1)
    data = (tmp_path / "x" / "RP" / "rp1.dcm").read_bytes()
    (tmp_path / "x" / "RP" / "zz_copy.dcm").write_bytes(data[:-30])
    found = discover(tmp_path)
    assert any(f.code == "file.unreadable" and f.severity is Severity.ERROR for f in found.findings)
    with pytest.raises(LinkError, match="two different versions"):
        found.cases[0].load()


def test_explicit_files(tmp_path: Path) -> None:
    _patient(tmp_path, "P6", plans=2)
    case = load_case(
        tmp_path, rtstruct=tmp_path / "RS" / "rs.dcm", rtdose=[tmp_path / "RD" / "rd1.dcm"]
    )
    assert [p.label for p in case.plans] == ["L1"]  # the referenced plan, found in the folder
    assert len(case.doses) == 1 and case.image is not None
    bare = load_case(rtstruct=tmp_path / "RS" / "rs.dcm", rtdose=tmp_path / "RD" / "rd2.dcm")
    assert bare.plans == () and any(f.code == "link.plan_missing" for f in bare.findings)
