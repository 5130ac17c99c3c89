"""Helpers for the metric-block tests: records go through Parquet and back, as they do in the journal."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest


def through_parquet(records: dict[str, dict[str, Any] | None]) -> list[tuple[str, dict[str, Any]]]:
    """Store the records as journal rows (one column per key) and read them back as the writer does."""
    import pandas as pd

    rows = [{"item_id": k, **v} for k, v in records.items() if v is not None]
    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    back = pd.read_parquet(io.BytesIO(buf.getvalue()))
    return [(r.pop("item_id"), r) for r in back.to_dict("records")]


def run_block(cls: type, records: dict[str, dict[str, Any] | None], *, seed: int | None = None,
              parquet: bool = True, **settings: Any) -> dict[str, Any]:
    """Feed the records (shuffled when ``seed`` is given) to a fresh accumulator; its JSON result."""
    pairs = (through_parquet(records) if parquet
             else [(k, v) for k, v in records.items() if v is not None])
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(pairs))
        pairs = [pairs[i] for i in order]
    acc = cls(**settings)
    for item_id, rec in pairs:
        acc.add(item_id, rec)
    out = acc.result()
    # never NaN: the block must be strict JSON
    return json.loads(json.dumps(out, allow_nan=False))


@pytest.fixture
def block_result():
    return run_block
