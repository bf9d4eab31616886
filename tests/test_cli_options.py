"""Option groups shared by the subcommands (``rtcheck/cli/options.py``).

Every command offers the shared options with one name, type and default; ``--help`` still
explains each one; ``rtcheck serve --fractions-override`` reaches the check of a received
case. The serve round trip runs the real command in a subprocess (it blocks until
interrupted), receives a tiny synthetic case over DICOM on loopback and is stopped with
SIGINT; every wait is bounded.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian
from test_batch import make_tiny_case

from rtcheck.cli import build_cli, main
from rtcheck.cli.options import build_check_options
from rtcheck.errors import ConfigError

pytestmark = pytest.mark.timeout(300)

PER_CASE = [
    "--protocol",
    "--report-formats",
    "--fractions",
    "--fractions-override",
    "--names",
    "--require",
    "--alpha-beta",
    "--relative-prescription-gy",
    "--allow-frame-mismatch",
]
SHARED = {
    "check": [
        "--fractions",
        "--fractions-override",
        "--rx",
        "--rx-file",
        "--names",
        "--require",
        "--alpha-beta",
        "--rtstruct",
        "--rtdose",
        "--rtplan",
        "--relative-prescription-gy",
        "--allow-frame-mismatch",
        "--format",
    ],
    "batch": PER_CASE,
    "serve": PER_CASE,
    "dvh": [
        "--rtstruct",
        "--rtdose",
        "--relative-prescription-gy",
        "--allow-frame-mismatch",
        "--format",
    ],
    "info": ["--relative-prescription-gy", "--allow-frame-mismatch", "--format"],
}


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        name: p
        for p in command.params
        if isinstance(p, click.Option)
        for name in p.opts
        if name.startswith("--")
    }


def _commands() -> dict[str, click.Command]:
    return build_cli().commands  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("name", sorted(SHARED))
def test_help_explains_every_shared_option(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    options = _options(_commands()[name])
    for opt in SHARED[name]:
        assert re.search(rf"(?<![\w-]){opt}(?![\w-])", out), opt
        assert options[opt].help, f"{name} {opt} has no help"
    assert not ({"--rx", "--rx-file"} & set(options)) or name == "check"


def test_shared_options_agree_across_commands() -> None:
    """Same name: same parameter, type, default, flag and metavar in every command."""
    seen: dict[str, tuple[str, tuple[object, ...]]] = {}
    for cmd_name, command in _commands().items():
        for opt, p in _options(command).items():
            if opt in ("--help", "--rtdose", "--format", "--out", "--db", "--alpha-beta"):
                continue  # --rtdose: one file in dvh; the others mean different things
            if opt == "--protocol" and cmd_name in ("check", "history"):
                continue  # check's dest is protocol_ref; history filters by protocol
            key = (p.name, p.type.name, p.default, p.is_flag, p.multiple, p.metavar)
            first = seen.setdefault(opt, (cmd_name, key))
            assert first[1] == key, f"{opt}: {first[0]} {first[1]} != {cmd_name} {key}"
    assert seen["--fractions-override"][1][3] is True  # a flag, in check, batch and serve


def test_alpha_beta_of_check_and_batch_agree() -> None:
    """``sum`` has its own --alpha-beta (a default of 3 Gy); the check options share one."""
    cmds = _commands()
    a, b, s = (_options(cmds[n])["--alpha-beta"] for n in ("check", "batch", "serve"))
    assert (a.type.name, a.default) == (b.type.name, b.default) == (s.type.name, s.default)


def test_build_check_options_passes_every_value(tmp_path: Path) -> None:
    names = tmp_path / "names.yaml"
    names.write_text('SpinalCord: "CORD clinic"\n')
    rx_file = tmp_path / "rx.txt"
    rx_file.write_text("PTV2=30\n")
    o = build_check_options(
        fractions=3,
        fractions_override=True,
        rx=("PTV1=40",),
        rx_file=str(rx_file),
        names_file=str(names),
        require=("Heart",),
        alpha_beta=2.0,
        rtstruct="rs.dcm",
        rtdose=("rd1.dcm", "rd2.dcm"),
        rtplan=("rp.dcm",),
        relative_prescription_gy=60.0,
        allow_frame_mismatch=True,
    )
    assert (o.fractions, o.fractions_override) == (3, True)
    assert o.rx == (("PTV1", 40.0), ("PTV2", 30.0))
    assert o.names == (("SpinalCord", "CORD clinic"),) and o.require == ("Heart",)
    assert (o.alpha_beta, o.relative_prescription_gy, o.allow_frame_mismatch) == (2.0, 60.0, True)
    assert (o.rtstruct, o.rtdose, o.rtplan) == ("rs.dcm", ("rd1.dcm", "rd2.dcm"), ("rp.dcm",))
    with pytest.raises(ConfigError, match="PTV1 given more than once"):
        build_check_options(rx=("PTV1=40", "PTV1=45"))


def test_serve_fractions_override_needs_fractions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "-p", "tg101", "-o", str(tmp_path / "o"), "--port", "0"]
    assert main([*args, "--fractions-override"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "--fractions-override needs --fractions" in err
    assert not (tmp_path / "o").exists()  # refused before the receiver starts


# ----------------------------------------------------------------------------- serve round trip
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, deadline: float) -> None:
    """Until a TCP connection to ``port`` succeeds (failed associations would leak sockets)."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.5)


def _send(port: int, files: list[Path]) -> list[int]:
    from pynetdicom import AE

    from rtcheck.serve import STORAGE_CLASSES

    ae = AE(ae_title="TESTSCU")
    for uid in STORAGE_CLASSES.values():
        ae.add_requested_context(uid, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="RTCHECK")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(dcmread(p)).Status) for p in files]
    finally:
        assoc.release()


def _summary(out: Path, deadline: float) -> dict:
    path = out / "summary.json"
    while True:
        if path.is_file():
            doc = json.loads(path.read_text())
            if doc["cases"]:
                return doc  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, "no case was checked in time"
        time.sleep(0.5)


def _serve_once(tmp_path: Path, extra: list[str]) -> tuple[dict, dict]:
    """Run ``rtcheck serve`` with ``extra``, send the tiny case, return summary and report."""
    make_tiny_case(tmp_path / "src", "S1", 10.0)
    files = sorted((tmp_path / "src").rglob("*.dcm"))
    out, port = tmp_path / "out", _free_port()
    args = ["serve", "-p", "tg101", "-o", str(out), "--port", str(port)]
    args += ["--quiet-seconds", "0.5", "--report-formats", "json", *extra]
    code = "import sys; from rtcheck.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        _wait_listening(port, deadline)
        assert _send(port, files) == [0] * len(files)
        summary = _summary(out, deadline)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    (case,) = summary["cases"]
    (path,) = [p for p in case["reports"] if p.endswith(".json")]
    report = json.loads((out / path).read_text())
    return summary, report


@pytest.mark.parametrize(
    ("extra", "verdict", "severity"),
    [
        (["--fractions", "3"], "incomplete", "error"),
        (["--fractions", "3", "--fractions-override"], "pass", "warning"),
    ],
)
def test_serve_fractions_override_reaches_the_case(
    tmp_path: Path, extra: list[str], verdict: str, severity: str
) -> None:
    """Plan 5 fx, uniform 10 Gy cord (passes the 3 fx limits: Max < 21.9 Gy, D1.2cc < 12.3
    Gy): ``--fractions 3`` alone leaves the case incomplete, confirmed it passes."""
    summary, report = _serve_once(tmp_path, extra)
    assert summary["options"]["fractions"] == 3
    assert summary["options"]["fractions_override"] is ("--fractions-override" in extra)
    assert report["verdict"] == verdict and report["plan"]["fractions"] == 3
    (f,) = [f for f in report["findings"] if f["code"] == "fractions.overridden"]
    assert f["severity"] == severity and "--fractions-override" in f["message"]
    assert [g["code"] for g in report["findings"] if g["severity"] == "error"] == (
        ["fractions.overridden"] if severity == "error" else []
    )
    cord = [c for c in report["constraints"] if c["id"].startswith("SpinalCord.")]
    assert cord and all(c["status"] == "pass" and c["id"].endswith(".3fx") for c in cord)
