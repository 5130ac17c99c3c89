"""The Dask executor gives the same result table and metrics as the local one."""

import json

import pandas as pd
import pytest

import satcore

pytest.importorskip("dask.distributed", reason="the [dask] extra is part of the test install")


def _spec(levir_dir, out, executor):
    return {"version": 1, "seed": 0, "source": {"type": "folder-pairs", "root": str(levir_dir)},
            "steps": [{"id": "cva", "type": "cva"}],
            "evaluate": {"bootstrap": 20},
            "output": {"dir": str(out), "report": False},
            "execution": {"executor": executor, "workers": 2, "batch_size": 3}}


def test_dask_matches_local(tmp_path, levir_dir):
    local = satcore.run(_spec(levir_dir, tmp_path / "local", "local"), progress=False)
    dask = satcore.run(_spec(levir_dir, tmp_path / "dask", "dask"), progress=False)
    a = pd.read_parquet(local.results_path)
    b = pd.read_parquet(dask.results_path)
    pd.testing.assert_frame_equal(a, b)
    ma = json.loads((tmp_path / "local" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "dask" / "metrics.json").read_text())
    assert ma == mb
    man = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert man["executor"] == "dask" and man["items"]["ok"] == local.items_ok
    assert man["loading"] == {"mode": "serial", "where": "in each Dask worker"}
    assert sorted(p.name for p in (tmp_path / "dask" / "maps").iterdir()) == sorted(
        p.name for p in (tmp_path / "local" / "maps").iterdir())


def test_worker_engine_reads_itself_and_shares_the_cores(tmp_path, levir_dir, monkeypatch):
    """A Dask worker has no loader threads and, on a local cluster, a 1/workers share of the cores."""
    from satcore.engine.executors import dask as dask_executor

    monkeypatch.setattr(dask_executor, "_WORKER_ENGINES", type(dask_executor._WORKER_ENGINES)())
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    spec = _spec(levir_dir, tmp_path / "w", "dask")
    spec["execution"]["workers"] = 4
    eng = dask_executor._worker_engine(spec, None, str(tmp_path / "w"), "hash-local")
    assert eng.context.loader_workers == 0 and eng.context.processes == 4
    assert eng.context.cpu_threads() == 2
    assert all(c.context is eng.context for _s, c in eng.steps)
    spec["execution"]["address"] = "tcp://scheduler:8786"  # a remote cluster: its workers' machines unknown
    eng = dask_executor._worker_engine(spec, None, str(tmp_path / "w"), "hash-remote")
    assert eng.context.processes == 1 and eng.context.cpu_threads() == 8
