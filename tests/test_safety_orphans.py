"""Files of a plan folder that belong to no case, and files that are not regular files.

An RT Dose, RT Plan or RT Structure Set that cannot be linked to the case (``link.unlinked``,
``link.no_dose``) or has no SOP Instance UID (``file.no_uid``) may be another lesion's plan,
whose dose is then missing from every organ: ``rtcheck check`` on the folder must not PASS
(ERROR finding naming the file and why, verdict ``incomplete``, exit code 3). A CT slice that
cannot be linked does not block. Named pipes, sockets and links are handled without opening
anything that could block (``docs/io.md``, ``docs/safety.md``).

Cases are real DICOM files written with :mod:`rtcheck.io.write` (``tests/safety_cases.py``);
the extra "lesion 2" dose puts a 40 Gy hot spot on the spinal cord (TG-101 5 fx: Max < 30 Gy),
so a check that silently drops it PASSES where the true sum fails.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from rtcheck.cli import main
from rtcheck.errors import Severity
from rtcheck.io.discover import discover, load_case
from rtcheck.io.write import uid_from, write_ct_series, write_dose, write_plan, write_structure_set
from rtcheck.model import Beam, DoseGrid, GridGeometry, Plan, Prescription, StructureSet
from tests.safety_cases import (
    FRAME,
    OTHER_FRAME,
    PATIENT,
    STUDY,
    CaseSpec,
    base_rois,
    dose_array,
    edit,
    hot_cord,
    write_case,
)

pytestmark = pytest.mark.timeout(120)  # a FIFO opened by mistake would block forever


def _check(capsys: pytest.CaptureFixture[str], folder: Path) -> tuple[int, dict]:
    rc = main(["check", str(folder), "--protocol", "tg101", "--format", "json"])
    out, _ = capsys.readouterr()
    return rc, json.loads(out) if out.strip() else {}


def _errors(data: dict) -> dict[str, dict]:
    """ERROR findings of a JSON result by file name."""
    return {
        Path(f["source"]).name: f
        for f in data["findings"]
        if f["severity"] == "error" and f["source"]
    }


def _lesion2_dose(folder: Path, name: str, *, frame: str, plan_uid: str) -> Path:
    """An RT Dose of another plan: the cord hot spot (40 Gy), referencing ``plan_uid``."""
    spec = CaseSpec(dose_fn=hot_cord())
    dose = DoseGrid(dose_array(spec), spec.geometry, frame_of_reference_uid=frame)
    path = folder / name
    write_dose(
        dose,
        path,
        patient=PATIENT,
        study_uid=STUDY,
        plan_uid=plan_uid,
        sop_uid=uid_from("lesion2-dose", name, str(folder)),
    )
    return path


def _old_structure_set(folder: Path) -> Path:
    """A second structure set on the case's frame (an older contour version), no plan."""
    path = folder / "RS.old.dcm"
    ss = StructureSet(tuple(base_rois()), frame_of_reference_uid=FRAME, label="OLD")
    write_structure_set(
        ss, path, patient=PATIENT, study_uid=STUDY, sop_uid=uid_from("old-rs", str(folder))
    )
    return path


# ----------------------------------------------------------------------------- item 1
def test_base_case_passes(tmp_path, capsys):
    """Control: the folder without extra files passes."""
    write_case(CaseSpec(), tmp_path)
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (0, "pass")


def test_unlinked_dose_on_another_frame_is_not_a_pass(tmp_path, capsys):
    """Lesion 2 planned on another CT: its dose references a plan that was not exported."""
    write_case(CaseSpec(), tmp_path)
    _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=OTHER_FRAME, plan_uid=uid_from("missing"))
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (3, "incomplete")
    f = _errors(data)["RD.lesion2.dcm"]
    assert f["code"] == "link.unlinked"
    assert uid_from("missing") in f["message"]  # why: the plan it references is not there
    assert "no structure set on its frame of reference" in f["message"]
    assert "cannot be cleared" in f["message"]


def test_dose_ambiguous_between_two_structure_sets_is_not_a_pass(tmp_path, capsys):
    """Same frame, plan missing, two structure sets: the dose cannot be linked by frame."""
    write_case(CaseSpec(), tmp_path)
    _old_structure_set(tmp_path)
    _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=FRAME, plan_uid=uid_from("missing"))
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (3, "incomplete")
    errors = _errors(data)
    assert errors["RD.lesion2.dcm"]["code"] == "link.unlinked"
    assert "2 structure sets share its frame of reference" in errors["RD.lesion2.dcm"]["message"]
    assert errors["RS.old.dcm"]["code"] == "link.no_dose"


def _lesion2_plan(folder: Path, case_folder: Path, frame: str = FRAME) -> Path:
    """A linked lesion-2 plan (5 fx, references the case's RS.dcm) and its hot-cord dose."""
    plan = Plan(
        "LESION2",
        uid_from("lesion2-plan", str(folder)),
        "lesion 2",
        5,
        (Prescription(40.0, "PTV1", 2, "TARGET", 1),),
        (Beam(1, "B1", meterset=100.0),),
        uid_from("safety", "rtstruct", str(case_folder)),  # write_case's structure set UID
        frame,
    )
    write_plan(plan, folder / "RP.lesion2.dcm", patient=PATIENT, study_uid=STUDY)
    assert plan.sop_instance_uid is not None
    return _lesion2_dose(folder, "RD.lesion2.dcm", frame=frame, plan_uid=plan.sop_instance_uid)


def test_linked_lesion2_plan_is_summed(tmp_path, capsys):
    """Control: a lesion-2 plan linked by UIDs joins the case and its dose fails the cord."""
    write_case(CaseSpec(), tmp_path)
    _lesion2_plan(tmp_path, tmp_path)
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (1, "fail")
    assert not _errors(data)


def test_structure_set_without_dose_is_not_a_pass(tmp_path, capsys):
    write_case(CaseSpec(), tmp_path)
    _old_structure_set(tmp_path)
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (3, "incomplete")
    f = _errors(data)["RS.old.dcm"]
    assert f["code"] == "link.no_dose" and "'OLD' has no RT Dose" in f["message"]


def test_unlinked_plan_is_not_a_pass(tmp_path, capsys):
    """An RT Plan of another lesion, on another frame, referencing a missing structure set."""
    write_case(CaseSpec(), tmp_path)
    plan = Plan(
        "LESION2",
        uid_from("lesion2-plan"),
        "lesion 2",
        5,
        (Prescription(40.0, "PTV2", None, "TARGET", 1),),
        (Beam(1, "B1", meterset=100.0),),
        uid_from("missing-rs"),
        OTHER_FRAME,
    )
    write_plan(plan, tmp_path / "RP.lesion2.dcm", patient=PATIENT, study_uid=STUDY)
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (3, "incomplete")
    f = _errors(data)["RP.lesion2.dcm"]
    assert f["code"] == "link.unlinked" and uid_from("missing-rs") in f["message"]


def _no_uid(ds) -> None:  # type: ignore[no-untyped-def]
    del ds.SOPInstanceUID


def test_rt_dose_without_uid_is_not_a_pass(tmp_path, capsys):
    write_case(CaseSpec(), tmp_path)
    extra = _lesion2_dose(tmp_path, "RD.nouid.dcm", frame=FRAME, plan_uid=uid_from("missing"))
    edit(extra, _no_uid)
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (3, "incomplete")
    f = _errors(data)["RD.nouid.dcm"]
    assert f["code"] == "file.no_uid" and "RT Dose without SOP Instance UID" in f["message"]


def _ct(folder: Path, frame: str, seed: str) -> list[tuple[str, str, float]]:
    g = GridGeometry(
        (-20.0, -20.0, -5.0), (2.0, 2.0, 2.5), (1, 0, 0), (0, 1, 0), (0, 0, 1), (5, 21, 21)
    )
    return write_ct_series(
        np.zeros(g.shape), g, folder, patient=PATIENT, study_uid=STUDY, frame_uid=frame, seed=seed
    )


def test_unlinked_ct_does_not_block(tmp_path, capsys):
    """CT is informational: an unused series and a CT slice without UID are not blocking."""
    write_case(CaseSpec(), tmp_path)
    _ct(tmp_path / "CT_other", OTHER_FRAME, "other-ct")
    first = _ct(tmp_path / "CT_bad", OTHER_FRAME, "bad-ct")[0][0]
    edit(first, _no_uid)
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (0, "pass")
    sources = {Path(f["source"] or "").name: f for f in data["findings"]}
    assert sources[Path(first).name]["severity"] == "warning"


def test_orphan_severities_in_discovery(tmp_path):
    write_case(CaseSpec(), tmp_path)
    _old_structure_set(tmp_path)
    _lesion2_dose(tmp_path, "RD.lesion2.dcm", frame=FRAME, plan_uid=uid_from("missing"))
    found = discover(tmp_path)
    got = {(Path(f.source).name, f.code): f.severity for f in found.findings if f.source}
    assert got[("RD.lesion2.dcm", "link.unlinked")] is Severity.ERROR
    assert got[("RS.old.dcm", "link.no_dose")] is Severity.ERROR


# ----------------------------------------------------------------------------- item 2
def test_named_pipe_is_skipped_without_opening_it(tmp_path, capsys):
    write_case(CaseSpec(), tmp_path)
    os.mkfifo(tmp_path / "RD.pipe.dcm")
    found = discover(tmp_path)  # would block forever if the pipe were opened
    f = next(f for f in found.findings if f.source and f.source.endswith("RD.pipe.dcm"))
    assert (f.code, f.severity) == ("file.special", Severity.WARNING)
    assert "named pipe" in f.message
    assert not found.unreadable
    rc, data = _check(capsys, tmp_path)
    assert (rc, data["verdict"]) == (0, "pass")  # disclosed, not blocking
    assert any(f["code"] == "file.special" for f in data["findings"])


def test_socket_is_skipped(tmp_path):
    write_case(CaseSpec(), tmp_path)
    path = tmp_path / "s.sock"
    if len(str(path)) > 100:
        pytest.skip("tmp path too long for an AF_UNIX socket")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        found = discover(tmp_path)
    codes = {(Path(f.source).name, f.code) for f in found.findings if f.source}
    assert ("s.sock", "file.special") in codes
    assert len(found.cases) == 1


def test_pipe_as_root_or_explicit_file_is_refused(tmp_path, capsys):
    files = write_case(CaseSpec(), tmp_path / "case")
    pipe = tmp_path / "pipe.dcm"
    os.mkfifo(pipe)
    rc = main(["check", str(pipe), "--protocol", "tg101"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "pipe.dcm" in err
    case_args = ["--rtstruct", str(files.rtstruct), "--rtdose", str(pipe)]
    rc = main(["check", *case_args, "--protocol", "tg101"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "named pipe" in err and "pipe.dcm" in err


def test_dose_in_a_linked_folder_is_found(tmp_path, capsys):
    """A symbolic link to a folder is followed (loops once): lesion 2's plan there is summed."""
    write_case(CaseSpec(), tmp_path / "case")
    other = tmp_path / "elsewhere"
    other.mkdir()
    _lesion2_plan(other, tmp_path / "case")
    (tmp_path / "case" / "lesion2").symlink_to(other, target_is_directory=True)
    (tmp_path / "case" / "loop").symlink_to(tmp_path / "case", target_is_directory=True)
    rc, data = _check(capsys, tmp_path / "case")
    assert (rc, data["verdict"]) == (1, "fail")
    assert not _errors(data)


def test_broken_link_is_unreadable(tmp_path):
    write_case(CaseSpec(), tmp_path)
    (tmp_path / "RD.lesion2.dcm").symlink_to(tmp_path / "gone.dcm")
    case = load_case(tmp_path)
    f = next(f for f in case.findings if f.code == "file.unreadable")
    assert f.severity is Severity.ERROR and "broken symbolic link" in f.message
