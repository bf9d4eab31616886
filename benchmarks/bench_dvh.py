"""DVH engine benchmark: speed, memory and accuracy, with dicompyler-core side by side.

Usage (from the repository root)::

    python benchmarks/bench_dvh.py                 # everything that can run here
    python benchmarks/bench_dvh.py --quick         # smaller synthetic plan, no interpolated mode
    python benchmarks/bench_dvh.py --no-dicompyler --threads 2

Sections (each prints its figures; nothing is asserted):

A. sample plans in ``sample_dicom/`` (skipped with a message when absent): every structure on
   every dose grid; first call (including loading numba's cached kernels) and warm times.
B. a large synthetic plan built in memory: 512 x 512 x 200 dose grid (1 x 1 x 2.5 mm), 40
   structures including a 15,000 cc body, contours every 2.5 mm offset 1.1 mm from the dose
   planes.
C. dicompyler-core 0.5.6 in its own virtualenv (it needs pydicom < 3; skipped with a message
   when it cannot be installed): time on the same sample plan, default and interpolated
   modes; accuracy of both tools on the Nelms 2015 benchmark (test 2) and on analytic
   spheres/cones written as DICOM.
D. the speed target (all structures of a 2.5 M-voxel plan in < 0.5 s warm on 2 cores):
   ``sample_dicom/oligo_single`` with its dose resampled trilinearly onto the coarsest
   isotropic grid (0.01 mm steps) over the same voxel-centre box with at least 2.5 M voxels;
   all structures, first call and warm, and the warm time over 0.5 s. Runs right after A.

Timings are wall-clock minima over repeats; the machine may be shared, so they are noisy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402

from rtcheck.dvh import PreparedDose, compute_dvh, compute_dvhs  # noqa: E402
from rtcheck.model import Contour, DoseGrid, GridGeometry, Roi, StructureSet  # noqa: E402

VENV = Path(tempfile.gettempdir()) / "rtcheck-bench-dicompyler"
#: The DVH issue's speed target: all structures of a plan this size (dose voxels) ...
TARGET_VOXELS = 2_500_000
#: ... warm in this time (s) on 2 cores.
TARGET_SECONDS = 0.5


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_of(fn, repeat: int) -> tuple[float, object]:
    out, best = None, float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def report_plan(
    label: str,
    dose: DoseGrid,
    ss: StructureSet,
    repeat: int,
    first_note: str = "kernels from numba's cache",
) -> tuple[float, float]:
    """Time all structures of one plan; print totals and the slowest structures.

    Returns
    -------
    tuple of float
        First call (prepare + DVHs) and warm (minimum over ``repeat``) times in s.
    """
    t = time.perf_counter()
    prepared = PreparedDose.of(dose)
    dvhs = compute_dvhs(prepared, ss)
    first = time.perf_counter() - t
    warm, _ = best_of(lambda: compute_dvhs(prepared, ss), repeat)
    per = []
    for roi in ss.rois:
        dt, d = best_of(lambda r=roi: compute_dvh(prepared, r), max(1, repeat // 2))
        per.append((dt, roi.name, d.structure_volume_cc or 0.0))
    per.sort(reverse=True)
    nvox = dose.dose_gy.size
    print(
        f"\n[{label}] dose grid {dose.geometry.shape[::-1]} = {nvox / 1e6:.2f} M voxels, "
        f"{len(ss.rois)} structures, {sum(v for *_, v in per):,.0f} cc in total"
    )
    print(f"  first call {first:.3f} s (prepare + DVHs, {first_note})")
    print(
        f"  warm: all structures {warm:.3f} s = {nvox / warm / 1e6:.1f} M dose voxels/s; "
        f"{len(dvhs) / warm:.0f} structures/s; peak RSS {peak_rss_mb():.0f} MB"
    )
    print("  slowest: " + "; ".join(f"{n} ({v:,.0f} cc) {1e3 * dt:.0f} ms" for dt, n, v in per[:5]))
    return first, warm


# ----------------------------------------------------------------------------- A. samples
def find_plans(folder: Path) -> list[tuple[str, Path, Path]]:
    from rtcheck.io.dicom import sniff

    files = [p for p in folder.rglob("*") if p.is_file()]
    heads = [(p, sniff(p)) for p in files]
    structs = [p for p, h in heads if h and h.modality == "RTSTRUCT"]
    doses = [p for p, h in heads if h and h.modality == "RTDOSE"]
    return [(f"{folder.name}/{d.name}", s, d) for s in structs[:1] for d in doses]


def section_samples(repeat: int) -> None:
    from rtcheck.io.dicom import read_dose, read_structures

    base = ROOT / "sample_dicom"
    if not base.is_dir():
        print("\n[A] sample_dicom/ not found: skipped (generate it with `rtcheck sample`)")
        return
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        for label, rs, rd in find_plans(folder):
            report_plan(label, read_dose(rd), read_structures(rs), repeat)


# ----------------------------------------------------------------------------- D. target
def finer_grid(g: GridGeometry, min_voxels: int) -> GridGeometry:
    """Coarsest isotropic grid (0.01 mm steps) over ``g``'s voxel-centre box, >= ``min_voxels``.

    The new grid starts at ``g``'s first voxel centre and keeps its directions; its last
    centres do not pass ``g``'s, so every new centre is covered by the source grid.
    """
    extent = [(n - 1) * d for n, d in zip(g.shape[::-1], g.spacing, strict=True)]
    hundredths = int(np.floor(100 * min(g.spacing)))
    while True:
        step = hundredths / 100
        shape = tuple(int(np.floor(e / step + 1e-9)) + 1 for e in extent)  # (nx, ny, nz)
        if np.prod(shape) >= min_voxels or hundredths == 1:
            break
        hundredths -= 1
    return GridGeometry(
        g.origin, (step, step, step), g.row_dir, g.col_dir, g.slice_dir, shape[::-1]
    )


def section_target(repeat: int) -> None:
    from rtcheck.geometry.resample import resample
    from rtcheck.io.dicom import read_dose, read_structures

    folder = ROOT / "sample_dicom" / "oligo_single"
    plans = find_plans(folder) if folder.is_dir() else []
    if not plans:
        print(
            "\n[D] sample_dicom/oligo_single not found: skipped (generate it with `rtcheck sample`)"
        )
        return
    _, rs, rd = plans[0]
    source = read_dose(rd)
    target = finer_grid(source.geometry, TARGET_VOXELS)
    t = time.perf_counter()
    res = resample(source, target)
    took = time.perf_counter() - t
    if not res.covered.all():
        raise RuntimeError("resampled grid leaves the source dose grid")
    dose = DoseGrid(dose_gy=res.values, geometry=target, source=f"{rd} resampled")
    print(
        f"\n[D] speed target: {TARGET_VOXELS / 1e6:.1f} M voxels, all structures < "
        f"{TARGET_SECONDS} s warm on 2 cores. oligo_single dose "
        f"{' x '.join(f'{d:g}' for d in source.geometry.spacing)} mm -> {target.spacing[0]:.2f} mm "
        f"isotropic, trilinear (rtcheck.geometry.resample, {took:.2f} s)"
    )
    first, warm = report_plan(
        f"oligo_single at {target.spacing[0]:.2f} mm",
        dose,
        read_structures(rs),
        repeat,
        first_note="new plan, kernels already loaded by A",
    )
    print(
        f"  target: warm {warm:.3f} s / {TARGET_SECONDS} s = {warm / TARGET_SECONDS:.2f} "
        f"({'met' if warm < TARGET_SECONDS else 'NOT met'} on this machine, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}); "
        f"first call {first / TARGET_SECONDS:.2f} x target"
    )


# ----------------------------------------------------------------------------- B. synthetic
def ellipse(cx: float, cy: float, a: float, b: float, n: int = 180) -> np.ndarray:
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[cx + a * np.cos(th), cy + b * np.sin(th)]


def prism(number: int, name: str, rings_at, z0: float, z1: float, dz: float = 2.5) -> Roi:
    """A structure whose rings at height z are ``rings_at(z)`` (a list, maybe empty)."""
    contours = []
    for z in np.arange(-250.0 + 1.1, 250.0, dz):
        if z0 <= z <= z1:
            for ring in rings_at(z):
                contours.append(Contour(np.c_[ring, np.full(len(ring), z)]))
    return Roi(number, name, contours=tuple(contours))


def ball(cx: float, cy: float, cz: float, r: float):
    return lambda z: (
        [ellipse(cx, cy, s, s, 72)] if (s := np.sqrt(max(r * r - (z - cz) ** 2, 0))) > 0.3 else []
    )


def synthetic_plan(nx: int, ny: int, nz: int) -> tuple[DoseGrid, StructureSet]:
    """512 x 512 x 200 dose (1 x 1 x 2.5 mm) and 40 structures incl. a 15,000 cc body."""
    dx, dz = 512.0 / nx, 500.0 / nz
    xs = -256.0 + dx * np.arange(nx)
    zs = -250.0 + dz * np.arange(nz)
    targets = [
        (-60, -20, 40, 25),
        (55, 10, -30, 15),
        (-30, 40, -80, 12),
        (20, -40, 90, 18),
        (80, -20, 10, 10),
        (-90, 0, -10, 8),
    ]
    dose = np.full((nz, ny, nx), 0.5)
    for cx, cy, cz, r in targets:
        s = r * 0.8 + 6
        gx = np.exp(-((xs - cx) ** 2) / (2 * s * s))
        gy = np.exp(-((xs[:ny] - cy) ** 2) / (2 * s * s))
        gz = np.exp(-((zs - cz) ** 2) / (2 * s * s))
        dose += 55.0 * gz[:, None, None] * gy[None, :, None] * gx[None, None, :]
    geo = GridGeometry(
        (-256.0, -256.0, -250.0), (dx, dx, dz), (1, 0, 0), (0, 1, 0), (0, 0, 1), (nz, ny, nx)
    )
    rois = [prism(1, "Body", lambda z: [ellipse(0, 0, 170, 110, 360)], -127.5, 127.5)]
    rois.append(
        prism(
            2,
            "Skin",
            lambda z: [ellipse(0, 0, 170, 110, 360), ellipse(0, 0, 165, 105, 360)],
            -127.5,
            127.5,
        )
    )
    rois += [
        prism(3, "Lung_L", lambda z: [ellipse(70, 0, 55, 70)], -60, 110),
        prism(4, "Lung_R", lambda z: [ellipse(-70, 0, 55, 70)], -60, 110),
        prism(5, "Lungs", lambda z: [ellipse(70, 0, 55, 70), ellipse(-70, 0, 55, 70)], -60, 110),
        prism(6, "SpinalCord", lambda z: [ellipse(0, 80, 7.5, 7.5, 36)], -127, 127),
        prism(7, "SpinalCanal", lambda z: [ellipse(0, 80, 11, 11, 48)], -127, 127),
        prism(8, "Esophagus", lambda z: [ellipse(0, 50, 10, 8, 48)], -100, 120),
        prism(9, "Heart", ball(20, -20, -30, 50), -90, 30),
        prism(10, "Liver", ball(-60, -10, -110, 60), -127, -60),
        prism(11, "Trachea", lambda z: [ellipse(0, 20, 9, 9, 48)], 60, 127),
        prism(12, "GreatVes", lambda z: [ellipse(20, 10, 15, 15, 60)], 0, 110),
        prism(
            13,
            "Chestwall",
            lambda z: [ellipse(0, 0, 165, 105, 360), ellipse(0, 0, 145, 90, 360)],
            -60,
            110,
        ),
        prism(14, "Stomach", ball(60, -30, -100, 40), -127, -70),
        prism(15, "Kidney_L", ball(70, 60, -115, 25), -127, -95),
        prism(16, "Kidney_R", ball(-70, 60, -115, 25), -127, -95),
        prism(17, "BrachialPlex_L", lambda z: [ellipse(90, 40, 6, 6, 24)], 100, 127),
        prism(18, "BrachialPlex_R", lambda z: [ellipse(-90, 40, 6, 6, 24)], 100, 127),
    ]
    n = 19
    for k, (cx, cy, cz, r) in enumerate(targets, start=1):
        rois.append(prism(n, f"PTV{k}", ball(cx, cy, cz, r), -127, 127))
        rois.append(prism(n + 1, f"GTV{k}", ball(cx, cy, cz, r - 5), -127, 127))
        rois.append(
            prism(
                n + 2,
                f"Ring{k}",
                lambda z, c=(cx, cy, cz, r): ball(*c[:3], c[3] + 15)(z) + ball(*c)(z),
                -127,
                127,
            )
        )
        n += 3
    rois.append(prism(n, "Carina", ball(0, 20, 55, 6), -127, 127))
    rois.append(
        prism(
            n + 1,
            "Couch",
            lambda z: [np.array([[-200, -140], [200, -140], [200, -120], [-200, -120.0]])],
            -127,
            127,
        )
    )
    rois.append(
        prism(n + 2, "External_margin", lambda z: [ellipse(0, 0, 180, 120, 360)], -130, 130)
    )
    rois.append(prism(n + 3, "Bronchus", lambda z: [ellipse(-15, 25, 6, 6, 36)], 20, 60))
    return DoseGrid(dose_gy=dose, geometry=geo), StructureSet(rois=tuple(rois))


def section_synthetic(repeat: int, quick: bool) -> None:
    shape = (256, 256, 100) if quick else (512, 512, 200)
    t = time.perf_counter()
    dose, ss = synthetic_plan(*shape)
    print(f"\n[B] synthetic plan built in {time.perf_counter() - t:.1f} s")
    report_plan("synthetic", dose, ss, repeat)
    body = compute_dvh(dose, ss.rois[0])
    print(f"  body volume {body.structure_volume_cc:,.0f} cc")


# ----------------------------------------------------------------------------- C. dicompyler
WORKER = r"""
import json, sys, time
from dicompylercore import dvhcalc
jobs = json.load(open(sys.argv[1]))
out = []
for job in jobs:
    kw = job.get("kw", {})
    if "interpolation_resolution" in kw:
        kw["interpolation_resolution"] = tuple(kw["interpolation_resolution"])
    t = time.perf_counter()
    try:
        d = dvhcalc.get_dvh(job["rs"], job["rd"], job["roi"], **kw)
        dt = time.perf_counter() - t
        def st(name):
            try:
                return float(d.statistic(name).value)
            except Exception:
                return None
        res = {"time": dt, "volume_cc": float(d.volume), "Dmax_Gy": float(d.max),
               "Dmin_Gy": float(d.min), "Dmean_Gy": float(d.mean)}
        for m in job.get("metrics", []):
            res[m] = st(m.replace("_Gy", ""))
    except Exception as exc:
        res = {"time": time.perf_counter() - t, "error": repr(exc)[:200]}
    out.append(res)
json.dump(out, open(sys.argv[2], "w"))
"""


def dicompyler_python() -> Path | None:
    py = VENV / "bin" / "python"
    check = [
        str(py),
        "-c",
        "import dicompylercore, skimage; assert dicompylercore.__version__ == '0.5.6'",
    ]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    print(f"  installing dicompyler-core 0.5.6 (+ pydicom<3, scikit-image) into {VENV} ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "-q",
                "dicompyler-core==0.5.6",
                "pydicom<3",
                "scikit-image",
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"  dicompyler-core could not be installed ({type(exc).__name__}): skipped")
        return None
    return py if subprocess.run(check, capture_output=True).returncode == 0 else None


def run_dicompyler(py: Path, jobs: list[dict]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, worker = Path(tmp, "jobs.json"), Path(tmp, "out.json"), Path(tmp, "w.py")
        src.write_text(json.dumps(jobs))
        worker.write_text(WORKER)
        subprocess.run(
            [str(py), str(worker), str(src), str(dst)],
            check=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        return json.loads(dst.read_text())


def section_dicompyler(quick: bool) -> None:
    print("\n[C] dicompyler-core 0.5.6 side by side")
    py = dicompyler_python()
    if py is None:
        return
    speed_comparison(py, quick)
    nelms_comparison(py, quick)
    analytic_comparison(py, quick)


def speed_comparison(py: Path, quick: bool) -> None:
    from rtcheck.io.dicom import read_dose, read_structures

    folder = ROOT / "sample_dicom" / "oligo_single"
    plans = find_plans(folder) if folder.is_dir() else []
    if not plans:
        print("  speed: sample_dicom/oligo_single not found: skipped")
        return
    _, rs, rd = plans[0]
    ss = read_structures(rs)
    rois = [r for r in ss.rois if not r.is_empty]
    dose = PreparedDose.of(read_dose(rd))
    ours, _ = best_of(lambda: compute_dvhs(dose, rois), 3)
    modes = {"default": {}}
    if not quick:
        spacing = read_dose(rd).geometry.spacing
        modes["interpolated"] = {
            "interpolation_resolution": [spacing[0] / 4, spacing[1] / 4],
            "interpolation_segments_between_planes": 2,
        }
    for mode, kw in modes.items():
        jobs = [{"rs": str(rs), "rd": str(rd), "roi": r.number, "kw": kw} for r in rois]
        res = run_dicompyler(py, jobs)
        total = sum(r["time"] for r in res)
        errors = [r for r in res if "error" in r]
        print(
            f"  {folder.name}, {len(rois)} structures: dicompyler-core {mode} {total:.2f} s, "
            f"rtcheck {ours:.3f} s (warm) -> rtcheck {total / ours:.0f}x faster"
            + (f"; {len(errors)} dicompyler errors" if errors else "")
        )


NELMS_METRICS = (
    "Dmin_Gy",
    "Dmax_Gy",
    "Dmean_Gy",
    "D99_Gy",
    "D95_Gy",
    "D5_Gy",
    "D1_Gy",
    "D0.03cc_Gy",
)


def nelms_comparison(py: Path, quick: bool) -> None:
    """Nelms 2015 test 2 (255 values): values beyond 3 % of the analytical value, per tool."""
    from test_nelms import DATA, metrics

    from rtcheck.io.dicom import read_dose, read_structures

    cases = [
        c
        for c in json.loads((DATA / "analytical_values.json").read_text())["cases"]
        if c["test"] == "test2"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for gz in DATA.glob("*/*.dcm.gz"):
            Path(tmp, gz.parent.name).mkdir(exist_ok=True)
            with gzip.open(gz) as a, open(Path(tmp, gz.parent.name, gz.name[:-3]), "wb") as b:
                shutil.copyfileobj(a, b)
        ours = []
        for c in cases:
            dvh = compute_dvh(
                read_dose(Path(tmp, c["rtdose"])),
                read_structures(Path(tmp, c["rtstruct"])).by_number(c["roi_number"]),
            )
            ours.append(metrics(dvh))
        tools = {"rtcheck": ours}
        modes = {"dicompyler-core default": {}}
        if not quick:
            modes["dicompyler-core interpolated"] = {
                "interpolation_resolution": [0.25, 0.25],
                "interpolation_segments_between_planes": 2,
            }
        for mode, kw in modes.items():
            jobs = [
                {
                    "rs": str(Path(tmp, c["rtstruct"])),
                    "rd": str(Path(tmp, c["rtdose"])),
                    "roi": c["roi_number"],
                    "kw": kw,
                    "metrics": list(NELMS_METRICS[3:]),
                }
                for c in cases
            ]
            tools[mode] = run_dicompyler(py, jobs)
    print("  Nelms 2015 test 2 (255 values; PlanIQ published 18 beyond 3 %):")
    for tool, rows in tools.items():
        beyond, worst, seen = 0, 0.0, set()
        for c, got in zip(cases, rows, strict=True):
            names = list(NELMS_METRICS) + ([] if c["rtstruct"] in seen else ["volume_cc"])
            seen.add(c["rtstruct"])
            for m in names:
                v = got.get(m)
                err = 100.0 if v is None else 100 * abs(v - c["analytical"][m]) / c["analytical"][m]
                beyond += err > 3.0
                worst = max(worst, err)
        print(f"    {tool:30s} {beyond:3d} beyond 3 %, worst {worst:6.1f} %")


def analytic_comparison(py: Path, quick: bool) -> None:
    """Analytic shapes in a Gaussian field, written as DICOM: errors vs independent truth."""
    import analytic as A
    from dicom_factory import contour_item, make_dose, make_structures

    from rtcheck.io.dicom import read_dose

    shapes = [
        A.sphere((1.1, -2.3, 0.7), 3.0, 2.0, 0.3, name="sphere 6 mm"),
        A.sphere((1.1, -2.3, 0.7), 6.0, 2.0, 0.3, name="sphere 12 mm"),
        A.sphere((1.1, -2.3, 0.7), 25.0, 3.0, 1.1, name="sphere 50 mm"),
        A.cone_z((0.4, 0.9, -13.0), 12.0, 24.0, 2.0, 0.5, name="cone 24 mm"),
    ]
    field = A.gaussian(60.0, (3.0, -4.0, 5.0), 12.0, 2.0)
    print(
        "  analytic shapes, Gaussian dose, 2.5 mm grid: worst |error| of D98/D50/D2/Dmean "
        "in % of D2 (volume error in %)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        n = 49
        ax = -60.3 + 2.5 * np.arange(n), -59.8 + 2.5 * np.arange(n), -59.6 + 2.5 * np.arange(n)
        z, y, x = np.meshgrid(ax[2], ax[1], ax[0], indexing="ij")
        rd = make_dose(
            Path(tmp, "rd.dcm"),
            field(x, y, z),
            ipp=(ax[0][0], ax[1][0], ax[2][0]),
            spacing=(2.5, 2.5),
            offsets=list(2.5 * np.arange(n)),
            scaling=1e-5,
        )
        dose = read_dose(rd)
        rois = [
            (
                k + 1,
                s.name,
                "ORGAN",
                [
                    contour_item(np.c_[ring, np.full(len(ring), zz)])
                    for zz, rings in s.planes
                    for ring in rings
                ],
            )
            for k, s in enumerate(shapes)
        ]
        rs = make_structures(Path(tmp, "rs.dcm"), rois)
        modes = {"dicompyler-core default": {}}
        if not quick:
            modes["dicompyler-core interpolated"] = {
                "interpolation_resolution": [0.625, 0.625],
                "interpolation_segments_between_planes": 2,
            }
        results = {
            m: run_dicompyler(
                py,
                [
                    {"rs": rs, "rd": rd, "roi": k + 1, "kw": kw, "metrics": ["D98", "D50", "D2"]}
                    for k in range(len(shapes))
                ],
            )
            for m, kw in modes.items()
        }
        for k, s in enumerate(shapes):
            ref = A.truth(s, dose)
            d2 = ref.d_pct(2)
            want = {"D98": ref.d_pct(98), "D50": ref.d_pct(50), "D2": d2, "Dmean_Gy": ref.mean}
            dvh = compute_dvh(dose, s.roi())
            got = {
                "rtcheck": {
                    "D98": dvh.dose_at_volume_pct(98),
                    "D50": dvh.dose_at_volume_pct(50),
                    "D2": dvh.dose_at_volume_pct(2),
                    "Dmean_Gy": dvh.mean_gy,
                    "volume_cc": dvh.structure_volume_cc,
                }
            }
            got.update({m: r[k] for m, r in results.items()})
            cells = []
            for tool, g in got.items():
                if "error" in g:
                    cells.append(f"{tool}: error")
                    continue
                e = max(abs((g[m] or 0) - v) for m, v in want.items()) / d2 * 100
                ev = 100 * (g["volume_cc"] - s.slab_cc) / s.slab_cc
                cells.append(f"{tool} {e:.2f} % ({ev:+.1f} %)")
            print(f"    {s.name:13s} {s.slab_cc:7.2f} cc: " + "; ".join(cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller synthetic plan, fewer modes")
    ap.add_argument("--no-dicompyler", action="store_true", help="skip section C")
    ap.add_argument("--no-synthetic", action="store_true", help="skip section B")
    ap.add_argument(
        "--no-resampled", action="store_true", help="skip section D (2.5 M-voxel speed target)"
    )
    ap.add_argument("--threads", type=int, default=None, help="numba threads")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of each warm timing")
    args = ap.parse_args(argv)
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    print(
        f"rtcheck DVH benchmark: numba {numba.__version__}, {numba.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} (shared machines are noisy)"
    )
    section_samples(args.repeat)
    if not args.no_resampled:
        section_target(args.repeat)
    if not args.no_synthetic:
        section_synthetic(args.repeat, args.quick)
    if not args.no_dicompyler:
        section_dicompyler(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
