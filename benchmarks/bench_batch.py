"""Batch throughput: cases per hour with 1 and 2 local workers and on a local Dask cluster.

Makes N copies of the sample cases in a temporary folder (new patient IDs and new UIDs, so
discovery sees N distinct cases), runs ``rtcheck.batch.run_batch`` on them with each
executor, and prints a table: wall time, cases per hour, peak memory per worker, and the
pipeline's own overhead as a share of the wall time.

Overhead = 1 - (time workers spent loading and checking cases / number of workers) / wall
time: discovery, hashing, scheduling, inter-process transfer, report writing, database
writes and summaries. Usage::

    python benchmarks/bench_batch.py                      # 200 cases, 1 and 2 workers, Dask
    python benchmarks/bench_batch.py --cases 20 --no-dask --formats html,json
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rtcheck.batch import BatchOptions, BatchReport, run_batch

REPO = Path(__file__).resolve().parents[1]
_DICOM_UIDS = "1.2.840.10008."  # SOP classes, transfer syntaxes: never remapped


def _ui_values(ds: Dataset) -> Iterator[str]:
    for elem in ds.iterall():
        if elem.VR == "UI" and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            yield from (str(v) for v in values)


def _remap(ds: Dataset, mapping: dict[str, str]) -> None:
    for elem in ds.iterall():
        if elem.VR == "UI" and elem.value:
            if elem.VM > 1:
                elem.value = [mapping.get(str(v), str(v)) for v in elem.value]
            else:
                elem.value = mapping.get(str(elem.value), str(elem.value))


def _new_uid(old: str, copy: int) -> str:
    digest = int(hashlib.sha256(f"{old}/{copy}".encode()).hexdigest()[:30], 16)
    return f"2.25.{digest}"


def copy_case(src: Path, dest: Path, copy: int) -> None:
    """Copy one case folder with a new patient ID and new instance/study/series/frame UIDs."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    datasets = {}
    for p in files:
        try:
            datasets[p] = pydicom.dcmread(p)
        except InvalidDicomError:  # expected.json, READMEs: copied as they are
            (dest / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest / p.relative_to(src))
    uids = {u for ds in datasets.values() for u in _ui_values(ds) if not u.startswith(_DICOM_UIDS)}
    mapping = {u: _new_uid(u, copy) for u in uids}
    for path, ds in datasets.items():
        _remap(ds, mapping)
        ds.PatientID = f"BENCH{copy:05d}"
        ds.PatientName = f"Bench^{copy:05d}"
        if ds.file_meta is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
            old = str(ds.file_meta.MediaStorageSOPInstanceUID)
            ds.file_meta.MediaStorageSOPInstanceUID = mapping.get(old, old)
        out = dest / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)


def sample_sources(explicit: list[str]) -> list[Path]:
    """Folders of the sample cases (``sample_dicom/*`` holding DICOM), or ``--source``."""
    if explicit:
        return [Path(s) for s in explicit]
    root = REPO / "sample_dicom"
    found = sorted(p for p in root.iterdir() if p.is_dir() and any(p.rglob("*.dcm")))
    if not found:
        sys.exit(f"no sample cases under {root}; run `rtcheck sample {root}` or use --source")
    return found


def make_tree(sources: list[Path], n: int, root: Path) -> None:
    """``n`` case copies, cycling over ``sources``, as ``root/BENCHnnnnn/<case>``."""
    for i in range(n):
        src = sources[i % len(sources)]
        copy_case(src, root / f"BENCH{i:05d}" / src.name, i)


def _summary(label: str, report: BatchReport, workers: int) -> dict[str, Any]:
    wall = report.timings["total"]
    busy = sum(s.get("load_s", 0) + s.get("check_s", 0) for s in report.worker_stats)
    per_worker: dict[tuple[str, int], float] = defaultdict(float)
    for s in report.worker_stats:
        key = (s["host"], s["pid"])
        per_worker[key] = max(per_worker[key], s["peak_rss_mb"])
    n = report.totals["cases"]
    per_case = sorted(s.get("load_s", 0) + s.get("check_s", 0) for s in report.worker_stats)
    return {
        "median_case_s": per_case[len(per_case) // 2] if per_case else float("nan"),
        "executor": label,
        "cases": n,
        "errors": report.totals["error"],
        "wall_s": wall,
        "cases_per_hour": n / wall * 3600 if wall else float("nan"),
        "peak_mb": max(per_worker.values(), default=float("nan")),
        "overhead_pct": 100 * (1 - busy / workers / wall) if wall else float("nan"),
        "discover_s": report.timings["discover"],
        "plan_s": report.timings["plan"],
        "summary_s": report.timings["summary"],
    }


def _run(root: Path, out: Path, protocol: str, opts: BatchOptions) -> BatchReport:
    if out.exists():
        shutil.rmtree(out)
    return run_batch(root, protocol, out, opts)


def _print(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'executor':<32} {'cases':>6} {'err':>4} {'wall s':>8} {'cases/h':>9} "
        f"{'case s (median)':>15} {'peak MB/worker':>15} {'overhead %':>11} "
        f"{'discover s':>11} {'plan s':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['executor']:<32} {r['cases']:>6} {r['errors']:>4} {r['wall_s']:>8.1f} "
            f"{r['cases_per_hour']:>9.0f} {r['median_case_s']:>15.2f} {r['peak_mb']:>15.0f} "
            f"{r['overhead_pct']:>11.1f} "
            f"{r['discover_s']:>11.2f} {r['plan_s']:>7.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="number of case copies (200)")
    ap.add_argument("--workers", default="1,2", help="local worker counts (1,2)")
    ap.add_argument("--no-dask", action="store_true", help="skip the local Dask cluster")
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--protocol", default="tg101")
    ap.add_argument("--formats", default="json", help="per-case reports (json)")
    ap.add_argument("--source", action="append", default=[], help="case folder(s) to copy")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f and f != "none")
    tmp = Path(tempfile.mkdtemp(prefix="rtcheck-bench-"))
    try:
        t0 = time.perf_counter()
        make_tree(sample_sources(args.source), args.cases, tmp / "in")
        print(f"made {args.cases} cases in {time.perf_counter() - t0:.1f} s under {tmp}")
        # one throw-away case first, so numba's on-disk cache holds the compiled kernels
        warm = BatchOptions(jobs=1, formats=formats, resume=False, progress=False)
        _run(tmp / "in" / "BENCH00000", tmp / "warm", args.protocol, warm)
        rows = []
        for w in (int(x) for x in args.workers.split(",") if x.strip()):
            opts = BatchOptions(jobs=w, formats=formats, resume=False, progress=False)
            report = _run(tmp / "in", tmp / f"out{w}", args.protocol, opts)
            rows.append(_summary(report.executor, report, w))
        if not args.no_dask:
            rows.append(_dask_row(tmp, args, formats))
        print()
        _print(rows)
        print(f"\nmachine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _dask_row(tmp: Path, args: argparse.Namespace, formats: tuple[str, ...]) -> dict[str, Any]:
    from distributed import LocalCluster

    # Each worker gets its share of the cores for numba, as the local pool's workers do
    # (rtcheck.batch.executors._init_worker); otherwise every worker runs one numba thread per core.
    share = str(max(1, (os.cpu_count() or 1) // args.dask_workers))
    env = {var: share for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with LocalCluster(
        n_workers=args.dask_workers,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        host="127.0.0.1",
        env=env,
    ) as cluster:
        opts = BatchOptions(
            scheduler=cluster.scheduler_address, formats=formats, resume=False, progress=False
        )
        report = _run(tmp / "in", tmp / "outdask", args.protocol, opts)
    return _summary(f"Dask LocalCluster ({args.dask_workers} workers)", report, args.dask_workers)


if __name__ == "__main__":
    sys.exit(main())
