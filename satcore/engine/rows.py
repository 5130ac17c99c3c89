"""Row building: run the steps over one batch and turn each item into a result row (writing its map).

A row holds the visible columns of ``results.parquet`` and ``_``-prefixed bookkeeping the metrics need
(truth, predictions, per-item pixel counts and sparse score histograms); ``outputs.writer`` derives the
files from them.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import numpy as np

from satcore.components import Detection
from satcore.data import Item, ItemRef, write_geotiff
from satcore.engine.records import block_columns
from satcore.engine.steps import Engine
from satcore.errors import ComponentError, RunStopped, SatcoreError
from satcore.evaluate.metrics import PixelStats, auc_from_hist, confusion_metrics, quantise, sparse_hist

log = logging.getLogger("satcore")


def rows_for(engine: Engine, refs: list[ItemRef], loaded: list[Any],
             splits: dict[str, str]) -> list[dict[str, Any]]:
    """Process one batch and turn it into result rows (writing maps on the way)."""
    rows: list[dict[str, Any]] = []
    items: list[Item] = []
    where: list[int] = []
    for ref, x in zip(refs, loaded, strict=True):
        row = {"item_id": ref.item_id, "split": splits.get(ref.item_id), "error": None}
        if isinstance(x, BaseException):
            if engine.spec.execution.on_error == "fail":
                raise RunStopped(f"item {ref.item_id!r} could not be read: {x} (on_error: fail)") from x
            set_error(row, "source", x)
        else:
            where.append(len(rows))
            items.append(x)
        rows.append(row)
    if not items:
        return rows
    outputs, errors = engine.run_steps(items)
    for k, item in enumerate(items):
        row = rows[where[k]]
        err = errors[k]
        if err is not None:
            set_error(row, *err)
            continue
        try:
            fill_row(engine, row, item, outputs[k])
        except Exception as exc:
            set_error(row, "output", exc)
    return rows


def problem_rows(problems: list[tuple[str, str, str]], done: set[str], fail: bool) -> list[dict[str, Any]]:
    """Rows for the problems the source found while listing (missing partner or label): failed items too.

    ``done``: items an earlier run finished (``--resume``); ``fail``: ``on_error: fail`` stops at the first.
    """
    rows = []
    for iid, etype, msg in problems:
        if iid in done:
            continue
        if fail:
            raise RunStopped(f"item {iid!r}: {msg} (on_error: fail)")
        rows.append({"item_id": iid, "split": None, "error": msg, "_error_step": "source",
                     "_error_type": etype})
        log.warning("item %s failed in source: %s", iid, msg)
    return rows


def fill_row(engine: Engine, row: dict[str, Any], item: Item, outs: dict[str, Any]) -> None:
    """Add one item's truth, each step's columns and pixel statistics to ``row``; write its map."""
    truth = item.label
    bins = engine.bins
    if item.image_label is not None:
        row["truth.change"] = int(item.image_label)
        row["_truth"] = int(item.image_label)
    if truth is not None:
        valid = item.valid
        n_valid = int(truth.size if valid is None else valid.sum())
        n_changed = int((truth if valid is None else truth & valid).sum())
        row["truth.changed_fraction"] = n_changed / n_valid if n_valid else None
        row["_truth_px"] = [n_changed, n_valid]
    row.update(block_columns(engine.steps, item, outs))  # metric-block records (engine/records.py)
    bands: list[np.ndarray] = []
    names: list[str] = []
    for rs, comp in engine.steps:
        out = outs.get(rs.id)
        for k, v in comp.columns(out).items():
            row[f"{rs.id}.{k}"] = v
        if not isinstance(out, Detection):
            continue
        if out.label is not None:
            row[f"_pred.{rs.id}"] = int(out.label)
        score_q = None
        if out.score_map is not None:
            if out.score_map.shape != item.reference.shape:
                raise ComponentError(f"step {rs.id!r} returned a {out.score_map.shape} map for a "
                                     f"{item.reference.shape} item")
            _, score_q = quantise(out.score_map, bins)
        if out.score_map is not None or out.label_map is not None:
            bands.append(score_q if score_q is not None
                         else np.full(item.reference.shape, np.nan, np.float32))
            bands.append((out.label_map if out.label_map is not None
                          else np.zeros(item.reference.shape, bool)).astype(np.float32))
            names += [f"{rs.id}.score", f"{rs.id}.label"]
        if truth is not None and (out.score_map is not None or out.label_map is not None):
            st = PixelStats.from_maps(truth, out.label_map, out.score_map, item.valid, bins)
            if out.label_map is not None:
                row[f"_px.{rs.id}"] = [st.tp, st.fp, st.fn, st.tn]
                cm = confusion_metrics(st.tp, st.fp, st.fn, st.tn)
                row[f"{rs.id}.pixel_f1"] = cm["f1"]
                row[f"{rs.id}.pixel_iou"] = cm["iou"]
            if st.hist_pos is not None and st.hist_neg is not None:
                row[f"{rs.id}.pixel_auc"] = auc_from_hist(st.hist_pos, st.hist_neg)[0]
                row[f"_hp.{rs.id}"] = sparse_hist(st.hist_pos)
                row[f"_hn.{rs.id}"] = sparse_hist(st.hist_neg)
    if bands and engine.spec.output.maps:
        write_geotiff(engine.out / "maps" / f"{item.item_id}.tif", np.stack(bands).astype(np.float32),
                      like=item.reference, band_descriptions=names)


def set_error(row: dict[str, Any], step: str, exc: BaseException) -> None:
    """Mark ``row`` failed in ``step`` (message, type and, for unexpected errors, the traceback)."""
    row["error"] = str(exc) or type(exc).__name__
    row["_error_step"] = step
    row["_error_type"] = type(exc).__name__
    if not isinstance(exc, SatcoreError):
        row["_traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    log.warning("item %s failed in %s: %s: %s", row["item_id"], step, type(exc).__name__, exc)
