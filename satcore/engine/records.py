"""Per-item metric-block records: each step's output and the item's truth, reduced for ``metrics.json``.

While the run streams, :func:`block_columns` turns one item's step outputs into the hidden journal column
:data:`BLOCK_COLUMN`: a JSON string ``{"<step_id>": {"<block>": record, ...}, ...}`` in spec order, with one
:class:`~satcore.evaluate.blocks.MetricBlock` record per block a step declares in ``metric_blocks`` and could
score (truth and prediction both present). One string column keeps the journal robust: parts are
concatenated with permissive type promotion, and a column that is all-null in one part (a batch of failed
items) is promoted to string, whatever the records hold. ``outputs.writer.compute_metrics`` reads it back.

A record that cannot be made (a generated raster of another shape than its target, an unknown block name)
does not fail the item: it is stored as ``{"_error": "<Type>: <message>"}``, logged, and counted in the
block as ``failed_items`` with the first message as ``failed_reason``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from satcore.components import Component
from satcore.data import Item, Raster
from satcore.evaluate.blocks import BLOCKS
from satcore.outputs.writer import BLOCK_COLUMN, ERROR_KEY

log = logging.getLogger("satcore")

__all__ = ["BLOCK_COLUMN", "ERROR_KEY", "TARGET_NAME", "block_columns", "item_truth", "scored_target",
           "step_records"]
#: The target raster a generator is scored against when the item has several (``targets`` key).
TARGET_NAME = "target"


def scored_target(item: Item) -> Raster | None:
    """The target raster scored by the ``spectral`` block: ``targets["target"]``, else the only one.

    Raises:
        ValueError: several targets and none named ``target`` (which one is meant is not known).
    """
    if not item.targets:
        return None
    if TARGET_NAME in item.targets:
        return item.targets[TARGET_NAME]
    if len(item.targets) == 1:
        return next(iter(item.targets.values()))
    raise ValueError(f"the item has targets {sorted(item.targets)} and none named {TARGET_NAME!r}: name the "
                     f"one generated images are scored against {TARGET_NAME!r}")


def item_truth(block: str, item: Item) -> Any | None:
    """The item's own truth for ``block`` (``None``: none).

    ``recognition``: ``item.classes``; ``captions``: ``item.texts``; ``spectral``: the array of
    :func:`scored_target`. Items carry no truth for ``image_quality`` (real-image features) or
    ``forecast`` (observed values): the component supplies it through ``metric_truth``.
    """
    if block == "recognition":
        return list(item.classes) if item.classes else None
    if block == "captions":
        return list(item.texts) if item.texts else None
    if block == "spectral":
        target = scored_target(item)
        return None if target is None else target.array
    return None


def step_records(comp: Component, item: Item, output: Any) -> dict[str, dict[str, Any]]:
    """The block records of one step's output for one item (blocks with nothing to score are left out)."""
    recs: dict[str, dict[str, Any]] = {}
    for block in comp.metric_blocks:
        try:
            cls = BLOCKS.get(block)
            if cls is None:
                raise ValueError(f"{type(comp).__name__}.metric_blocks names {block!r}, which is not a "
                                 f"metric block; known: {', '.join(BLOCKS)}")
            truth = comp.metric_truth(block, item, output)
            if truth is None:
                truth = item_truth(block, item)
            if truth is None:
                continue
            prediction = comp.metric_prediction(block, output)
            if prediction is None:
                continue
            rec = cls.item_record(truth, prediction, **comp.metric_settings(block, output))
        except Exception as exc:  # a record that cannot be made is counted in metrics.json, not fatal
            msg = f"{type(exc).__name__}: {exc}"
            log.warning("item %s, step %s: no %s record: %s", item.item_id, comp.step_id, block, msg)
            recs[block] = {ERROR_KEY: msg}
            continue
        if rec is not None:
            recs[block] = rec
    return recs


def block_columns(steps: Iterable[tuple[Any, Component]], item: Item,
                  outputs: Mapping[str, Any]) -> dict[str, str]:
    """``{BLOCK_COLUMN: json}`` with every step's block records for one item; ``{}`` when there are none.

    Args:
        steps: ``(resolved step, component)`` pairs in spec order (the step's ``id`` names its records).
        item: the item, with its truth.
        outputs: step id → that step's output for the item; a step missing here (failed) is skipped.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rs, comp in steps:
        if not comp.metric_blocks or outputs.get(rs.id) is None:
            continue
        recs = step_records(comp, item, outputs[rs.id])
        if recs:
            out[rs.id] = recs
    return {BLOCK_COLUMN: json.dumps(out, default=_json_default)} if out else {}


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (set, tuple)):
        return list(x)
    raise TypeError(f"a metric record holds a {type(x).__name__}, which JSON cannot store")
