"""Derive ``results.parquet``, ``errors.jsonl`` and ``metrics.json`` from the journal's final rows.

Gets data only (frames of rows and :class:`OutputSettings`), never the engine: the engine calls it with
``Journal.iter_final()``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from satcore.evaluate.blocks import BLOCKS, MetricBlock
from satcore.evaluate.metrics import (
    ItemBootstrap,
    PixelStats,
    confusion_metrics,
    dense_hist,
    image_metrics,
    pixel_metrics,
)
from satcore.evaluate.split import SPLIT_ORDER
from satcore.io import atomic_path, write_json, write_text

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("satcore")

#: The hidden journal column with each item's metric-block records: a JSON string
#: ``{"<step_id>": {"<block>": record}}`` (written by ``engine/records.py``, read by :func:`compute_metrics`).
BLOCK_COLUMN = "_blk"
#: The key of a record that could not be made; its value is the error message.
ERROR_KEY = "_error"


@dataclass(frozen=True)
class OutputSettings:
    """What the writer needs to know about the run besides its rows."""

    #: the detector steps' ids, in spec order (the order of ``metrics.json`` → ``steps``)
    detector_ids: tuple[str, ...]
    #: score histogram bins (``evaluate.bins``)
    bins: int
    #: bootstrap resamples for the 95% intervals (``evaluate.bootstrap``; 0: none)
    bootstrap: int
    #: the run's seed (``seed``): the bootstrap's weights
    seed: int


@dataclass(frozen=True)
class Summary:
    """What :func:`finalize` wrote: item counts in results.parquet and the metrics (``None``: no truth)."""

    ok: int
    failed: int
    metrics: dict[str, Any] | None


class _Acc:
    """Per (step, split): pooled pixel stats, image labels and a streaming bootstrap (constant memory).

    The pooled sums are integers and each item's bootstrap weights come from its id, so the result does not
    depend on the order items arrive in (executor, batches, --resume).
    """

    def __init__(self, bins: int, n_boot: int, seed: int) -> None:
        self.bins = bins
        self.total = PixelStats(hist_pos=np.zeros(bins, np.int64), hist_neg=np.zeros(bins, np.int64))
        self.has_counts = False
        self.has_hist = False
        self.y: list[int] = []
        self.yhat: list[int] = []
        self.boot = ItemBootstrap(n_boot, seed)
        self.items = 0
        # objective → ([truth], [label], {threshold}): a detector's further decisions (Detection.by_objective)
        self.by_objective: dict[str, tuple[list[int], list[int], set[float]]] = {}

    def add_objectives(self, truth: int, cell: Any) -> None:
        """One item's ``_byobj.<step>`` cell: ``{objective: [label, threshold]}`` as JSON."""
        if not isinstance(cell, str) or not cell:
            return
        for name, (label, thr) in json.loads(cell).items():
            ys, preds, thrs = self.by_objective.setdefault(name, ([], [], set()))
            ys.append(truth)
            preds.append(int(label))
            if thr is not None:
                thrs.add(float(thr))

    def objective_metrics(self) -> dict[str, Any]:
        """``image.by_objective``: each objective's threshold and image metrics on these items."""
        out: dict[str, Any] = {}
        for name, (ys, preds, thrs) in self.by_objective.items():
            m = image_metrics(np.asarray(ys), np.asarray(preds), next(iter(thrs)) if len(thrs) == 1 else None)
            out[name] = {"threshold": m.pop("threshold"), **m}
        return out

    def add_item(self, item_id: str, truth: int, pred: Any, counts: Any, hp: Any, hn: Any) -> None:
        self.items += 1
        c = hist = image = None
        if pred is not None:
            image = (truth, int(pred))
            self.y.append(truth)
            self.yhat.append(int(pred))
        if counts is not None:
            c = [int(x) for x in counts]
            self.total.tp += c[0]
            self.total.fp += c[1]
            self.total.fn += c[2]
            self.total.tn += c[3]
            self.has_counts = True
        if hp is not None:
            hist = (dense_hist(hp, self.bins), dense_hist(hn, self.bins))
            self.total.hist_pos += hist[0]
            self.total.hist_neg += hist[1]
            self.has_hist = True
        self.boot.add(item_id, c, hist, image)


def visible_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The columns of results.parquet (not the ``_``-prefixed bookkeeping ones), as a frame of its own.

    A copy: a column selection shares pandas blocks with the hidden columns (``error`` sits in one object
    block with the per-item histograms, which are zero-copy views into the part's Arrow buffers), so keeping
    the selection kept every part read so far in memory (≈ 18 KB per item with pixel histograms;
    docs/performance.md, "Memory scaling").
    """
    return df[[c for c in df.columns if not c.startswith("_")]].copy()


def finalize(out: Path, frames: Iterable[pd.DataFrame], settings: OutputSettings) -> Summary:
    """Write results.parquet and errors.jsonl, compute metrics.json; return counts and metrics.

    ``frames``: the latest row of every item (journal rows, ``_``-prefixed bookkeeping included), in frames
    of bounded size; read once.
    """
    import pandas as pd

    visible: list[pd.DataFrame] = []
    errors_rows: list[dict[str, Any]] = []

    def rows() -> Iterator[pd.DataFrame]:
        # one pass over the journal feeds the table, errors.jsonl and the metrics
        for df in frames:
            visible.append(visible_columns(df))
            if "error" in df.columns:
                cols = ["item_id", *[c for c in ("error", "_error_step", "_error_type", "_errors")
                                     if c in df.columns]]
                for r in df[cols].to_dict("records"):
                    if isinstance(r.get("_errors"), str):  # one line per failed step (engine.rows)
                        errors_rows.extend({"item_id": r["item_id"], **e} for e in json.loads(r["_errors"]))
                    elif isinstance(r.get("error"), str):  # pandas turns a missing error into None or NaN
                        errors_rows.append({"item_id": r["item_id"],
                                            "step": _str_or_none(r.get("_error_step")),
                                            "error_type": _str_or_none(r.get("_error_type")),
                                            "message": r["error"]})
            yield df

    metrics = compute_metrics(rows(), settings)
    table = pd.concat(visible, ignore_index=True) if visible else pd.DataFrame(columns=["item_id", "split",
                                                                                         "error"])
    table = table.sort_values("item_id", kind="stable").reset_index(drop=True)
    front = ["item_id", "split"]
    table = table[front + [c for c in table.columns if c not in (*front, "error")] + ["error"]]
    table = table.convert_dtypes()  # nullable ints stay ints next to failed rows
    table["error"] = table["error"].astype("string")
    with atomic_path(out / "results.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    errors_rows.sort(key=lambda r: r["item_id"])  # stable: an item's steps stay in run order
    write_text(out / "errors.jsonl", "".join(json.dumps(r) + "\n" for r in errors_rows))
    if metrics is not None:
        write_json(out / "metrics.json", metrics)
    n_failed = len({r["item_id"] for r in errors_rows})
    return Summary(ok=int(len(table) - n_failed), failed=n_failed, metrics=metrics)


def compute_metrics(frames: Iterable[pd.DataFrame], settings: OutputSettings) -> dict[str, Any] | None:
    """metrics.json in the DESIGN.md layout from the journal's final rows; ``None`` when nothing has truth.

    Change metrics (``class_balance``, ``baseline``, each detector's ``image``/``pixel``/``ci95``) come from
    the rows with change truth; the metric blocks (``recognition``, ``captions``, …) from the records in
    :data:`BLOCK_COLUMN`. A step's metrics count only the items it scored: not failed at the source, and
    the step not among the row's ``_failed_steps`` (docs/metrics.md, "How a run fills the blocks").
    """
    det_ids = settings.detector_ids
    acc: dict[tuple[str, str], _Acc] = defaultdict(
        lambda: _Acc(settings.bins, settings.bootstrap, settings.seed))
    truth_items: dict[str, list[int]] = defaultdict(list)
    truth_px: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    thresholds: dict[str, set[float]] = defaultdict(set)
    blocks = _Blocks()
    # streamed part by part: pooled sums are integer, and each item's bootstrap weights come from its id, so
    # the result does not depend on executor/batch order and memory does not grow with the dataset
    for df in frames:
        has_change, has_blocks = "_truth" in df.columns, BLOCK_COLUMN in df.columns
        if not (has_change or has_blocks):
            continue
        for rec in df.to_dict("records"):
            failed = _failed_steps(rec)
            if failed is None:
                continue
            split = rec.get("split") or "all"
            item_id = str(rec["item_id"])
            if has_blocks:
                blocks.add_row(item_id, split, rec.get(BLOCK_COLUMN), failed)
            if not has_change or rec.get("_truth") is None or _isnan(rec.get("_truth")):
                continue
            truth = int(rec["_truth"])
            truth_items[split].append(truth)
            tp = rec.get("_truth_px")
            if tp is not None and not _isnan(tp):
                truth_px[split][0] += int(tp[0])
                truth_px[split][1] += int(tp[1])
            for sid in det_ids:
                if sid in failed:
                    continue
                pred = rec.get(f"_pred.{sid}")
                thr = rec.get(f"{sid}.threshold")
                if thr is not None and not _isnan(thr):
                    thresholds[sid].add(float(thr))
                c, hp, hn = rec.get(f"_px.{sid}"), rec.get(f"_hp.{sid}"), rec.get(f"_hn.{sid}")
                acc[(sid, split)].add_item(
                    item_id, truth, None if pred is None or _isnan(pred) else pred,
                    None if _isnan(c) else c, None if _isnan(hp) else hp, None if _isnan(hn) else hn)
                acc[(sid, split)].add_objectives(truth, rec.get(f"_byobj.{sid}"))
    if not truth_items and not blocks.any():
        return None
    out: dict[str, Any] = {}
    if truth_items:
        out.update(_change_metrics(det_ids, acc, truth_items, truth_px, thresholds))
    else:
        out["steps"] = {}
    steps: dict[str, Any] = out["steps"]
    for sid, per_split in blocks.results().items():
        entry = steps.setdefault(sid, {})
        for s in [s for s in SPLIT_ORDER if s in per_split]:
            entry.setdefault(s, {}).update(per_split[s])
    return out


def _change_metrics(det_ids: tuple[str, ...], acc: dict[tuple[str, str], _Acc],
                    truth_items: dict[str, list[int]], truth_px: dict[str, list[int]],
                    thresholds: dict[str, set[float]]) -> dict[str, Any]:
    """``class_balance``, ``baseline`` and each detector step's change blocks."""
    splits = [s for s in SPLIT_ORDER if s in truth_items]
    all_y = [y for s in splits for y in truth_items[s]]
    px_changed = sum(truth_px[s][0] for s in splits)
    px_total = sum(truth_px[s][1] for s in splits)
    out: dict[str, Any] = {
        "class_balance": {
            "items": len(all_y),
            "items_changed": int(sum(all_y)),
            "pixels_changed_fraction": px_changed / px_total if px_total else None,
            "splits": {s: {"items": len(truth_items[s]), "items_changed": int(sum(truth_items[s])),
                           "pixels_changed_fraction": (truth_px[s][0] / truth_px[s][1]) if truth_px[s][1]
                           else None} for s in splits},
        },
        "baseline": {},
        "steps": {},
    }
    for s in splits:
        y = np.asarray(truth_items[s])
        base: dict[str, Any] = {"image": image_metrics(y, np.ones_like(y)), "pixel": None}
        if truth_px[s][1]:
            ch, tot = truth_px[s]
            base["pixel"] = {"auc": None, "auc_reason": "a constant score has no ranking",
                             **confusion_metrics(ch, tot - ch, 0, 0)}
        else:
            base["pixel_reason"] = "no pixel truth"
        base["image"]["threshold"] = None
        out["baseline"][s] = base
    for sid in det_ids:
        per_split: dict[str, Any] = {}
        thr = thresholds.get(sid)
        for s in splits:
            a = acc[(sid, s)]
            # the items this step scored (a step that failed on an item does not count it)
            entry: dict[str, Any] = {"n_items": a.items}
            if a.y:
                entry["image"] = image_metrics(np.asarray(a.y), np.asarray(a.yhat),
                                               next(iter(thr)) if thr and len(thr) == 1 else None)
                if a.by_objective:
                    entry["image"]["by_objective"] = a.objective_metrics()
            else:
                entry["image"] = None
                entry["image_reason"] = "the step gives no image-level label"
            if a.has_counts or a.has_hist:
                entry["pixel"] = pixel_metrics(a.total, with_auc=a.has_hist)
                if not a.has_counts:
                    for k in ("f1", "iou", "precision", "recall", "kappa"):
                        entry["pixel"][k] = None
                        entry["pixel"][f"{k}_reason"] = "the step writes no label map"
            else:
                entry["pixel"] = None
                entry["pixel_reason"] = ("the step writes no change map" if truth_px[s][1]
                                         else "no pixel truth")
            entry["ci95"] = a.boot.result()
            per_split[s] = entry
        out["steps"][sid] = per_split
    return out


class _Blocks:
    """The metric-block accumulators of every (step, split, block), fed from :data:`BLOCK_COLUMN` row by row.

    Memory: what the blocks keep (counts and sums; CIDEr-D's n-grams and image-quality vectors per item),
    plus the step order and the first failure message per block.
    """

    def __init__(self) -> None:
        self.acc: dict[tuple[str, str, str], MetricBlock] = {}
        self.failed: dict[tuple[str, str, str], list[Any]] = {}  # key → [count, first message]
        self.order: list[str] = []

    def any(self) -> bool:
        return bool(self.acc or self.failed)

    def add_row(self, item_id: str, split: str, cell: Any, failed_steps: set[str]) -> None:
        if not isinstance(cell, str) or not cell:
            return
        try:
            per_step = json.loads(cell)
        except ValueError:  # a broken cell is a bug, not data: say so instead of losing the run's metrics
            log.warning("item %s: unreadable metric records in the journal, left out", item_id)
            return
        prev: str | None = None
        for sid, recs in per_step.items():
            if sid not in self.order:
                self.order.insert(self.order.index(prev) + 1 if prev is not None else len(self.order), sid)
            prev = sid
            if sid in failed_steps or not isinstance(recs, dict):
                continue
            for name, record in recs.items():
                cls = BLOCKS.get(name)
                if cls is None or not isinstance(record, dict):
                    continue
                key = (sid, split, name)
                if ERROR_KEY in record:
                    f = self.failed.setdefault(key, [0, str(record[ERROR_KEY])])
                    f[0] += 1
                    continue
                if key not in self.acc:
                    self.acc[key] = cls()
                self.acc[key].add(item_id, record)

    def results(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Step id → split → block name → block (``failed_items``/``failed_reason`` when some failed)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        keys = set(self.acc) | set(self.failed)
        names = list(BLOCKS)
        for key in sorted(keys, key=lambda k: (self.order.index(k[0]), names.index(k[2]))):
            sid, split, name = key
            a = self.acc.get(key) or BLOCKS[name]()
            try:
                block = a.result()
            except Exception as exc:  # result() should never raise on data; if it does, say so in the file
                block = {"items": None, "error": f"{type(exc).__name__}: {exc}"}
            if key in self.failed:
                block["failed_items"], block["failed_reason"] = self.failed[key]
            out.setdefault(sid, {}).setdefault(split, {})[name] = block
        return out


def _failed_steps(rec: dict[str, Any]) -> set[str] | None:
    """The steps whose outputs a row's metrics leave out; ``None``: the whole row is left out.

    A row without error: none. A row that failed at the source, or with an error but no ``_failed_steps``
    (the whole item failed): all. Otherwise the failed steps and their dependants (``_failed_steps``).
    """
    if _ok(rec.get("error")):
        return set()
    listed = rec.get("_failed_steps")
    if rec.get("_error_step") == "source" or listed is None or _isnan(listed):
        return None
    return {str(s) for s in listed}


def _ok(err: Any) -> bool:
    """A journal row without error (pandas shows a missing error as None or NaN)."""
    return not isinstance(err, str)


def _str_or_none(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and x != x
