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


def test_two_runs_on_one_cluster_write_their_own_folders(tmp_path, levir_dir, monkeypatch):
    """One persistent cluster, the same spec into two output folders: each folder gets its own maps and rows.

    The spec hash leaves out ``output``, so workers that cached engines by spec hash alone wrote the second
    run's maps into the first run's folder.
    """
    from dask.distributed import LocalCluster

    from satcore.engine.executors import dask as dask_executor

    monkeypatch.setattr(dask_executor, "_WORKER_ENGINES", type(dask_executor._WORKER_ENGINES)())
    ref = satcore.run(_spec(levir_dir, tmp_path / "ref", "local"), progress=False)
    want_maps = sorted(p.name for p in (tmp_path / "ref" / "maps").iterdir())
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        runs = {}
        for name in ("one", "two"):
            spec = _spec(levir_dir, tmp_path / name, "dask")
            spec["execution"]["address"] = cluster.scheduler_address
            runs[name] = satcore.run(spec, progress=False)
    for name, res in runs.items():
        assert sorted(p.name for p in (tmp_path / name / "maps").iterdir()) == want_maps, name
        pd.testing.assert_frame_equal(res.results(), ref.results())
    assert {k[1] for k in dask_executor._WORKER_ENGINES} == {str((tmp_path / n).resolve()) for n in runs}


def test_workers_get_fitted_state_as_bytes_and_key_engines_by_it(tmp_path, levir_dir, monkeypatch, h):
    """Fitted state travels with the task (no file in the run folder is read); other state, other engine."""
    import satcore.plugins
    from satcore.components import Detection, Detector, DetectorParams
    from satcore.engine.executors import dask as dask_executor

    class CutDetector(Detector):
        """Image-level: changed when the mean absolute difference passes a fitted cut."""

        name = "cut-test"
        params_model = DetectorParams
        fittable = True
        cut = -1.0

        def process(self, batch):
            return [Detection(score=0.0, label=0, threshold=self.cut) for _ in batch]

        def load_state(self, path):
            self.cut = json.loads(path.read_text())["cut"]

    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True, entrypoints=False)
    pm.register_plugin(h.plugin_module("cut_tests", satcore_register_detectors=[CutDetector]), "cut-tests",
                       "satcore-cut-tests", "0.0.1")
    # the worker builds its pipeline from the process's plugin manager (as a Dask worker process would)
    monkeypatch.setattr(satcore.plugins, "_DEFAULT", pm)
    monkeypatch.setattr(dask_executor, "_WORKER_ENGINES", type(dask_executor._WORKER_ENGINES)())
    spec = _spec(levir_dir, tmp_path / "w", "dask")
    spec["steps"] = [{"id": "cut", "type": "cut-test"}]
    out = str(tmp_path / "w")  # no fitted/ folder there: the state must come with the call
    a = dask_executor._worker_engine(spec, None, out, "h", {"cut": b'{"cut": 0.25}'})
    b = dask_executor._worker_engine(spec, None, out, "h", {"cut": b'{"cut": 0.75}'})
    assert a is not b and (a.steps[0][1].cut, b.steps[0][1].cut) == (0.25, 0.75)
    assert dask_executor._worker_engine(spec, None, out, "h", {"cut": b'{"cut": 0.25}'}) is a
    assert not (tmp_path / "w" / "fitted").exists()
