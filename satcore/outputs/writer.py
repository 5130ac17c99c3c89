"""Derive ``results.parquet``, ``errors.jsonl`` and ``metrics.json`` from the journal's final rows.

Gets data only (frames of rows and :class:`OutputSettings`), never the engine: the engine calls it with
``Journal.iter_final()``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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

    def add_item(self, item_id: str, truth: int, pred: Any, counts: Any, hp: Any, hn: Any) -> None:
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
    """metrics.json in the DESIGN.md layout from the journal's final rows; ``None`` when no item has truth."""
    det_ids = settings.detector_ids
    acc: dict[tuple[str, str], _Acc] = defaultdict(
        lambda: _Acc(settings.bins, settings.bootstrap, settings.seed))
    truth_items: dict[str, list[int]] = defaultdict(list)
    truth_px: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    thresholds: dict[str, set[float]] = defaultdict(set)
    # streamed part by part: pooled sums are integer, and each item's bootstrap weights come from its id, so
    # the result does not depend on executor/batch order and memory does not grow with the dataset
    for df in frames:
        if "_truth" not in df.columns:
            continue
        for rec in df.to_dict("records"):
            if not _ok(rec.get("error")) or rec.get("_truth") is None or _isnan(rec.get("_truth")):
                continue
            split = rec.get("split") or "all"
            truth = int(rec["_truth"])
            truth_items[split].append(truth)
            tp = rec.get("_truth_px")
            if tp is not None and not _isnan(tp):
                truth_px[split][0] += int(tp[0])
                truth_px[split][1] += int(tp[1])
            for sid in det_ids:
                pred = rec.get(f"_pred.{sid}")
                thr = rec.get(f"{sid}.threshold")
                if thr is not None and not _isnan(thr):
                    thresholds[sid].add(float(thr))
                c, hp, hn = rec.get(f"_px.{sid}"), rec.get(f"_hp.{sid}"), rec.get(f"_hn.{sid}")
                acc[(sid, split)].add_item(
                    str(rec["item_id"]), truth, None if pred is None or _isnan(pred) else pred,
                    None if _isnan(c) else c, None if _isnan(hp) else hp, None if _isnan(hn) else hn)
    if not truth_items:
        return None
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
            entry: dict[str, Any] = {"n_items": len(truth_items[s])}
            if a.y:
                entry["image"] = image_metrics(np.asarray(a.y), np.asarray(a.yhat),
                                               next(iter(thr)) if thr and len(thr) == 1 else None)
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


def _ok(err: Any) -> bool:
    """A journal row without error (pandas shows a missing error as None or NaN)."""
    return not isinstance(err, str)


def _str_or_none(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and x != x
