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
    assert sorted(p.name for p in (tmp_path / "dask" / "maps").iterdir()) == sorted(
        p.name for p in (tmp_path / "local" / "maps").iterdir())
