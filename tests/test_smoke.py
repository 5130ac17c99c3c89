import json

import pandas as pd

import satcore


def test_quickstart_runs(tmp_path, levir_dir):
    spec = {"version": 1, "source": {"type": "folder-pairs", "root": str(levir_dir)},
            "steps": [{"id": "cva", "type": "cva"}], "output": {"dir": str(tmp_path / "run")},
            "evaluate": {"bootstrap": 50}}
    res = satcore.run(spec, progress=False)
    assert res.items_ok == 11 and res.items_failed == 1
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert len(df) == 12 and df["item_id"].is_unique
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.3 < m["steps"]["cva"]["all"]["pixel"]["auc"] < 0.8
