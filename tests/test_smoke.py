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


def test_terminal_shows_which_step_is_being_set_up(tmp_path, h, pm, monkeypatch):
    """On a terminal a status line names each step while it sets up (models take seconds to load)."""
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    h.make_pairs(tmp_path / "d", 4, size=8)
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "run"), progress=True, pm=pm)
    shown = err.getvalue()
    assert "setting up" in shown and "source (folder-pairs)" in shown and "diff (test-diff)" in shown
    assert "0/2" in shown and "step/s" in shown  # the source and one step, counted as steps
    plain = io.StringIO()  # not a terminal: nothing drawn
    monkeypatch.setattr(sys, "stderr", plain)
    satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "run2"), progress=True, pm=pm)
    assert "setting up" not in plain.getvalue()
