"""compute_metrics with metric blocks: per-step scoring, failed records, and the journal's concatenation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from satcore.engine.journal import Journal
from satcore.evaluate.blocks import RecognitionBlock, recognition_record
from satcore.outputs.writer import BLOCK_COLUMN, ERROR_KEY, OutputSettings, compute_metrics

SETTINGS = OutputSettings(detector_ids=("d1", "d2"), bins=10, bootstrap=0, seed=0)


def _blk(**per_step: Any) -> str:
    return json.dumps(per_step)


def _rec(truth: str, pred: str) -> dict[str, Any]:
    rec = recognition_record([truth], [pred])
    assert rec is not None
    return rec


def _row(iid: str, **kw: Any) -> dict[str, Any]:
    return {"item_id": iid, "split": None, "error": None, **kw}


def test_each_step_counts_only_the_items_it_scored():
    rows = [
        _row("a", **{BLOCK_COLUMN: _blk(r={"recognition": _rec("x", "x")},
                                        s={"recognition": _rec("x", "y")})}),
        _row("b", **{BLOCK_COLUMN: _blk(r={"recognition": _rec("y", "y")},
                                        s={"recognition": _rec("y", "y")})}),
        # step s failed on c (and was dropped); r's output stays and counts
        _row("c", error="s: boom", _error_step="s", _failed_steps=["s"],
             **{BLOCK_COLUMN: _blk(r={"recognition": _rec("y", "x")}, s={"recognition": _rec("y", "y")})}),
        # failed at the source: counts nowhere
        _row("d", error="unreadable", _error_step="source", _failed_steps=None),
        # an error without _failed_steps (the whole item failed): counts nowhere
        _row("e", error="boom", _error_step="r", **{BLOCK_COLUMN: _blk(r={"recognition": _rec("x", "x")})}),
    ]
    m = compute_metrics([pd.DataFrame(rows)], SETTINGS)
    assert m is not None and set(m) == {"steps"}  # no change truth: no class_balance/baseline
    r = m["steps"]["r"]["all"]["recognition"]
    s = m["steps"]["s"]["all"]["recognition"]
    assert r["items"] == 3 and s["items"] == 2
    want = RecognitionBlock()
    for iid, t, p in (("a", "x", "x"), ("b", "y", "y"), ("c", "y", "x")):
        want.add(iid, _rec(t, p))
    assert r == want.result()
    assert r["top1"] == pytest.approx(2 / 3) and s["top1"] == pytest.approx(1 / 2)


def test_change_metrics_per_step():
    def change(iid: str, truth: int, **kw: Any) -> dict[str, Any]:
        return _row(iid, _truth=truth, **{"_pred.d1": truth, "_pred.d2": 1 - truth}, **kw)

    rows = [change("a", 1), change("b", 0), change("c", 1, error="d2: boom", _error_step="d2",
                                                        _failed_steps=["d2"])]
    m = compute_metrics([pd.DataFrame(rows)], SETTINGS)
    assert m is not None
    assert m["class_balance"]["items"] == 3  # truth belongs to the item, whatever a step did
    assert m["steps"]["d1"]["all"]["n_items"] == 3
    assert m["steps"]["d2"]["all"]["n_items"] == 2
    assert m["steps"]["d1"]["all"]["image"]["accuracy"] == 1.0
    assert m["steps"]["d2"]["all"]["image"]["accuracy"] == 0.0


def test_failed_records_are_counted_not_fatal():
    rows = [_row("a", **{BLOCK_COLUMN: _blk(g={"spectral": {ERROR_KEY: "ValueError: shape (2, 4, 4)"}})}),
            _row("b", **{BLOCK_COLUMN: _blk(g={"spectral": {ERROR_KEY: "ValueError: other"}})})]
    m = compute_metrics([pd.DataFrame(rows)], SETTINGS)
    assert m is not None
    sp = m["steps"]["g"]["all"]["spectral"]
    assert sp["items"] == 0 and sp["failed_items"] == 2 and "shape" in sp["failed_reason"]
    assert sp["mae"] is None and sp["mae_reason"]


def test_nothing_scored_is_no_metrics():
    rows = [_row("a"), _row("b", error="x", _error_step="source")]
    assert compute_metrics([pd.DataFrame(rows)], SETTINGS) is None


def test_splits_and_journal_parts_with_an_all_null_column(tmp_path):
    """A part whose block column is all null (failed items) concatenates with one holding JSON strings."""
    j = Journal(tmp_path, flush_rows=1)
    j.write([_row("z", error="x", _error_step="source", **{BLOCK_COLUMN: None}),
             _row("y", error="x", _error_step="source")])
    j.write([{**_row("a", **{BLOCK_COLUMN: _blk(r={"recognition": _rec("x", "x")})}), "split": "train"},
             {**_row("b", **{BLOCK_COLUMN: _blk(r={"recognition": _rec("x", "y")})}), "split": "test"},
             {**_row("c"), "split": "test"}])
    m = compute_metrics(j.iter_final(max_rows=2), SETTINGS)
    assert m is not None
    assert list(m["steps"]["r"]) == ["train", "test"]
    assert m["steps"]["r"]["train"]["recognition"]["top1"] == 1.0
    assert m["steps"]["r"]["test"]["recognition"]["top1"] == 0.0
    assert np.isclose(m["steps"]["r"]["test"]["recognition"]["baseline"]["top1"], 1.0)
