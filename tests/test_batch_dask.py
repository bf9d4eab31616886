"""The same batch on a local Dask cluster of two worker processes (loopback only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_batch import make_tiny_case

from rtcheck.batch import BatchOptions, run_batch
from rtcheck.errors import ConfigError

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
pytestmark = pytest.mark.timeout(300)


def test_dask_cluster_matches_local_run(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for patient, dose, roi in (("D1", 10.0, "SpinalCord"), ("D2", 40.0, "SpinalCord"),
                               ("D3", 10.0, "Liver"), ("D4", 12.0, "SpinalCord")):  # fmt: skip
        make_tiny_case(root / patient, patient, dose, roi)
    common = {"formats": ("json",), "progress": False}
    local = run_batch(root, "tg101", tmp_path / "local", BatchOptions(jobs=1, **common))
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        host="127.0.0.1",
    ) as cluster:
        opts = BatchOptions(scheduler=cluster.scheduler_address, **common)
        report = run_batch(root, "tg101", tmp_path / "dask", opts)
    assert report.executor.startswith("Dask")
    assert [r.verdict for r in report.records] == ["pass", "fail", "incomplete", "pass"]
    assert len(report.worker_stats) == 4 and all(s["peak_rss_mb"] > 0 for s in report.worker_stats)
    for name in ("summary.csv", "summary.json", "index.html"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    for rec in local.records:
        for rel in rec.reports:
            a = json.loads((tmp_path / "local" / rel).read_text())
            b = json.loads((tmp_path / "dask" / rel).read_text())
            assert a.pop("created") and b.pop("created")
            assert a == b


def test_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    make_tiny_case(tmp_path / "in", "P1", 10.0)
    opts = BatchOptions(scheduler="tcp://127.0.0.1:9", progress=False)
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(ConfigError, match="Dask scheduler"),
    ):
        run_batch(tmp_path / "in", "tg101", tmp_path / "out", opts)
