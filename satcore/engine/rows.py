"""Row building: run the steps over one batch and turn each item into a result row (writing its files).

A row holds the visible columns of ``results.parquet`` and ``_``-prefixed bookkeeping the metrics need
(truth, predictions, per-item pixel counts and sparse score histograms); ``outputs.writer`` derives the
files from them.

A step failing on an item fails that step and its dependants only: the row keeps every other step's
columns. Failed rows carry:

- ``error``: the source's message as it is when the item could not be read (it reached no step); else
  ``step '<id>': <message>`` per failed step, joined by ``"; "``;
- ``_failed_steps``: every step that did not score the item (the failed ones and their dependants; every
  step when the source failed), in run order;
- ``_errors``: a JSON list of ``{"step", "error_type", "message"}``, one per failure (``errors.jsonl``);
- ``_error_step`` / ``_error_type``: the first failure's (as before several could fail).
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import numpy as np

from satcore.components import Component, Detection, Generator
from satcore.components.base import table_cells
from satcore.data import Item, ItemRef, write_geotiff
from satcore.engine.files import write_array, write_generated
from satcore.engine.records import block_columns
from satcore.engine.steps import Engine
from satcore.errors import ComponentError, RunStopped, SatcoreError
from satcore.evaluate.metrics import PixelStats, auc_from_hist, confusion_metrics, quantise, sparse_hist
from satcore.spec import ResolvedStep

log = logging.getLogger("satcore")

#: the pseudo-step of a failure in writing the item's map (not one step's: every detector's bands are in it)
OUTPUT = "output"


def rows_for(engine: Engine, refs: list[ItemRef], loaded: list[Any],
             splits: dict[str, str]) -> list[dict[str, Any]]:
    """Process one batch and turn it into result rows (writing maps and step files on the way)."""
    rows: list[dict[str, Any]] = []
    items: list[Item] = []
    where: list[int] = []
    for ref, x in zip(refs, loaded, strict=True):
        row: dict[str, Any] = {"item_id": ref.item_id, "split": splits.get(ref.item_id), "error": None}
        if isinstance(x, BaseException):
            if engine.spec.execution.on_error == "fail":
                raise RunStopped(f"item {ref.item_id!r} could not be read: {x} (on_error: fail)") from x
            set_error(row, "source", x)
            row["_failed_steps"] = list(engine.pipeline.order)
        else:
            where.append(len(rows))
            items.append(x)
        rows.append(row)
    if not items:
        return rows
    outputs, failed = engine.run_steps(items)
    for k, item in enumerate(items):
        fill_row(engine, rows[where[k]], item, outputs[k], failed[k])
    return rows


def problem_rows(problems: list[tuple[str, str, str]], done: set[str], fail: bool,
                 steps: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows for the problems the source found while listing (missing partner or label): failed items too.

    ``done``: items an earlier run finished (``--resume``); ``fail``: ``on_error: fail`` stops at the first;
    ``steps``: the pipeline's step ids (``_failed_steps``: the item reached none of them).
    """
    rows = []
    for iid, etype, msg in problems:
        if iid in done:
            continue
        if fail:
            raise RunStopped(f"item {iid!r}: {msg} (on_error: fail)")
        rows.append({"item_id": iid, "split": None, "error": msg, "_error_step": "source",
                     "_error_type": etype, "_failed_steps": list(steps or [])})
        log.warning("item %s failed in source: %s", iid, msg)
    return rows


def fill_row(engine: Engine, row: dict[str, Any], item: Item, outs: dict[str, Any],
             failed: dict[str, BaseException] | None = None) -> None:
    """Add one item's truth, each step's columns and pixel statistics to ``row``; write its map and files.

    ``failed``: the steps that failed on the item in :meth:`Engine.run_steps` (step id → error). Storing a
    step's output can fail too (a map of the wrong shape, a value no cell can hold): that fails the step,
    and its dependants' columns are left out, as if it had failed while running.
    """
    failures: dict[str, BaseException] = dict(failed or {})
    try:
        add_truth(row, item)
    except Exception as exc:
        failures[OUTPUT] = exc
    down = set(engine.failed_with_dependants(s for s in failures if s != OUTPUT))
    bands: list[np.ndarray] = []
    names: list[str] = []
    for rs, comp in engine.steps:
        if rs.id in down or rs.id not in outs:
            continue
        try:
            cells, step_bands, step_names = step_cells(engine, rs, comp, item, outs[rs.id])
        except Exception as exc:
            failures[rs.id] = exc
            down = set(engine.failed_with_dependants(s for s in failures if s != OUTPUT))
            continue
        row.update(cells)
        bands += step_bands
        names += step_names
    # metric-block records (engine/records.py) of the steps that gave this item an output
    row.update(block_columns([(rs, c) for rs, c in engine.steps if rs.id not in down], item, outs))
    if bands and engine.spec.output.maps and item.images:
        try:
            write_geotiff(engine.out / "maps" / f"{item.item_id}.tif", np.stack(bands).astype(np.float32),
                          like=item.reference, band_descriptions=names)
        except Exception as exc:
            failures[OUTPUT] = exc
    if failures:
        set_failures(row, failures, sorted(down, key=engine.pipeline.order.index))


def add_truth(row: dict[str, Any], item: Item) -> None:
    """The item's change truth: ``truth.*`` columns and the metrics' ``_truth`` / ``_truth_px``."""
    truth = item.label
    if item.image_label is not None:
        row["truth.change"] = int(item.image_label)
        row["_truth"] = int(item.image_label)
    if truth is not None:
        valid = item.valid
        n_valid = int(truth.size if valid is None else valid.sum())
        n_changed = int((truth if valid is None else truth & valid).sum())
        row["truth.changed_fraction"] = n_changed / n_valid if n_valid else None
        row["_truth_px"] = [n_changed, n_valid]


def step_cells(engine: Engine, rs: ResolvedStep, comp: Component, item: Item, out: Any
               ) -> tuple[dict[str, Any], list[np.ndarray], list[str]]:
    """One step's cells for an item's row (files written), and its bands of the item's map."""
    row: dict[str, Any] = {}
    if isinstance(comp, Generator):
        paths = write_generated(engine.out, item, rs.id, out)
        if paths:
            row[f"{rs.id}.path"] = paths[0] if len(paths) == 1 else paths
    cells, arrays = table_cells(comp.columns(out))
    for k, v in cells.items():
        row[f"{rs.id}.{k}"] = v
    for k, arr in arrays.items():
        row[f"{rs.id}.{k}.path"] = write_array(engine.out, rs.id, item.item_id, k, arr)
    bands: list[np.ndarray] = []
    names: list[str] = []
    if not isinstance(out, Detection):
        return row, bands, names
    truth = item.label
    bins = engine.bins
    if out.label is not None:
        row[f"_pred.{rs.id}"] = int(out.label)
    if out.by_objective:  # one JSON cell: {objective: [label, threshold]} (writer → image.by_objective)
        row[f"_byobj.{rs.id}"] = json.dumps({k: [int(v[0]), None if v[1] is None else float(v[1])]
                                             for k, v in out.by_objective.items()})
    score_q = None
    if out.score_map is not None:
        if out.score_map.shape != item.reference.shape:
            raise ComponentError(f"step {rs.id!r} returned a {out.score_map.shape} map for a "
                                 f"{item.reference.shape} item")
        _, score_q = quantise(out.score_map, bins)
    if out.score_map is not None or out.label_map is not None:
        shape = item.reference.shape
        bands.append(score_q if score_q is not None else np.full(shape, np.nan, np.float32))
        label_map = out.label_map if out.label_map is not None else np.zeros(shape, bool)
        bands.append(label_map.astype(np.float32))
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
    return row, bands, names


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def set_failures(row: dict[str, Any], failures: dict[str, BaseException], failed_steps: list[str]) -> None:
    """Mark ``row`` failed in the steps of ``failures`` (and ``failed_steps``: those plus their dependants).

    ``error`` is ``step '<id>': <message>`` per failure, joined by ``"; "`` (a map that could not be written:
    ``writing the map: <message>``); ``_errors`` lists them for ``errors.jsonl``.
    """
    parts = []
    entries = []
    for sid, exc in failures.items():
        msg = _message(exc)
        parts.append(f"writing the map: {msg}" if sid == OUTPUT else f"step {sid!r}: {msg}")
        entries.append({"step": sid, "error_type": type(exc).__name__, "message": msg})
        log.warning("item %s failed in %s: %s: %s", row["item_id"], sid, type(exc).__name__, exc)
    first_sid, first = next(iter(failures.items()))
    row["error"] = "; ".join(parts)
    row["_error_step"] = first_sid
    row["_error_type"] = type(first).__name__
    row["_errors"] = json.dumps(entries)
    row["_failed_steps"] = failed_steps
    unexpected = [e for e in failures.values() if not isinstance(e, SatcoreError)]
    if unexpected:
        e = unexpected[0]
        row["_traceback"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))[-4000:]


def set_error(row: dict[str, Any], step: str, exc: BaseException) -> None:
    """Mark ``row`` failed in ``step`` (message, type and, for unexpected errors, the traceback)."""
    row["error"] = _message(exc)
    row["_error_step"] = step
    row["_error_type"] = type(exc).__name__
    if not isinstance(exc, SatcoreError):
        row["_traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    log.warning("item %s failed in %s: %s: %s", row["item_id"], step, type(exc).__name__, exc)
