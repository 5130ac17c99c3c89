"""The final pass over the journal must not pin the parts it has read (memory flat in the number of items)."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from satcore.outputs.writer import visible_columns


def test_visible_columns_do_not_pin_the_histograms(tmp_path):
    """Rows as a journal part holds them: an all-null ``error`` column beside per-item histogram lists."""
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({
        "item_id": [f"item{i:03d}" for i in range(64)],
        "error": pa.array([None] * 64),  # null type: a part where no item failed
        "d.score": rng.random(64),
        "_hp.d": [rng.integers(0, 9, 2000).tolist() for _ in range(64)],
        "_hn.d": [rng.integers(0, 9, 2000).tolist() for _ in range(64)],
    }), tmp_path / "part.parquet")
    gc.collect()
    base = pa.total_allocated_bytes()
    table = pq.read_table(tmp_path / "part.parquet")  # as Journal.iter_final reads a part
    df = table.to_pandas()
    big = pa.total_allocated_bytes() - base
    assert big > 1 << 20  # the histograms: 2 MB of Arrow memory
    vis = visible_columns(df)
    del df, table
    gc.collect()
    kept = pa.total_allocated_bytes() - base
    assert list(vis.columns) == ["item_id", "error", "d.score"]
    assert kept < 16 << 10, f"{kept} bytes of Arrow memory still held by the visible columns (of {big})"
    assert vis["item_id"].tolist()[:2] == ["item000", "item001"] and vis["error"].isna().all()
