"""Metrics accumulated per item, so memory does not grow with the dataset.

Pixel metrics come from per-item confusion counts and a fixed-bin score histogram (for ROC AUC); image
metrics from per-item labels. Definitions follow scikit-learn (``precision_score``, ``f1_score``,
``jaccard_score``, ``cohen_kappa_score``, ``roc_auc_score``); undefined values are ``None`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # type: ignore[attr-defined]  # numpy < 2: only trapz


def sparse_hist(hist: np.ndarray) -> list[int]:
    """A histogram as ``[bin, count, bin, count, ...]`` (most bins of one item are empty).

    How per-item score histograms are stored in the run journal; :func:`dense_hist` reads them back.
    """
    nz = np.flatnonzero(hist)
    return np.stack([nz, hist[nz]], axis=1).ravel().astype(np.int64).tolist()


def dense_hist(pairs: Any, bins: int) -> np.ndarray:
    """Inverse of :func:`sparse_hist`: ``bins`` counts from ``[bin, count, ...]`` pairs (``None``: zeros)."""
    out = np.zeros(bins, np.int64)
    if pairs is not None and len(pairs):
        a = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        out[a[:, 0]] = a[:, 1]
    return out


def quantise(scores: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Map scores in ``[0, 1]`` to bin indices and to the bin centres written in the maps."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    idx = np.clip(np.floor(s * bins), 0, bins - 1).astype(np.int64)
    return idx, ((idx + 0.5) / bins).astype(np.float32)


@dataclass
class PixelStats:
    """Confusion counts and score histograms of one item (or a sum of items)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    hist_pos: np.ndarray | None = None
    hist_neg: np.ndarray | None = None

    @classmethod
    def from_maps(cls, truth: np.ndarray, pred: np.ndarray | None, score: np.ndarray | None,
                  valid: np.ndarray | None, bins: int) -> PixelStats:
        """Count one item's pixels (only where ``valid``)."""
        t = truth.astype(bool)
        m = np.ones_like(t) if valid is None else valid.astype(bool)
        st = cls()
        if pred is not None:
            p = pred.astype(bool)
            st.tp = int(np.count_nonzero(t & p & m))
            st.fp = int(np.count_nonzero(~t & p & m))
            st.fn = int(np.count_nonzero(t & ~p & m))
            st.tn = int(np.count_nonzero(~t & ~p & m))
        if score is not None:
            idx, _ = quantise(score, bins)
            st.hist_pos = np.bincount(idx[t & m], minlength=bins).astype(np.int64)
            st.hist_neg = np.bincount(idx[~t & m], minlength=bins).astype(np.int64)
        return st


def _div(a: float, b: float, reason: str) -> tuple[float | None, str | None]:
    return (float(a / b), None) if b > 0 else (None, reason)


def confusion_metrics(tp: float, fp: float, fn: float, tn: float) -> dict[str, Any]:
    """Precision, recall, F1, IoU and Cohen's kappa from confusion counts (scikit-learn definitions)."""
    out: dict[str, Any] = {}
    n = tp + fp + fn + tn
    for key, (val, why) in {
        "precision": _div(tp, tp + fp, "no positive predictions"),
        "recall": _div(tp, tp + fn, "no positive truth"),
        "f1": _div(2 * tp, 2 * tp + fp + fn, "no positive truth or predictions"),
        "iou": _div(tp, tp + fp + fn, "no positive truth or predictions"),
    }.items():
        out[key] = val
        if why:
            out[f"{key}_reason"] = why
    if n == 0:
        out["kappa"], out["kappa_reason"] = None, "no pixels"
    else:
        po = (tp + tn) / n
        pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        if pe >= 1:
            out["kappa"], out["kappa_reason"] = None, "chance agreement is 1 (one class only)"
        else:
            out["kappa"] = float((po - pe) / (1 - pe))
    return out


def auc_from_hist(pos: np.ndarray, neg: np.ndarray) -> tuple[float | None, str | None]:
    """ROC AUC from per-bin counts, equal to ``roc_auc_score`` on the bin-quantised scores."""
    p_tot, n_tot = float(pos.sum()), float(neg.sum())
    if p_tot == 0 or n_tot == 0:
        return None, "only one class present"
    # descending thresholds: cumulative counts at or above each bin
    tps = np.concatenate([[0.0], np.cumsum(pos[::-1])]) / p_tot
    fps = np.concatenate([[0.0], np.cumsum(neg[::-1])]) / n_tot
    return float(_trapezoid(tps, fps)), None


def pixel_metrics(st: PixelStats, with_auc: bool = True) -> dict[str, Any]:
    """Pooled pixel metrics in the metrics.json layout."""
    out: dict[str, Any] = {}
    if with_auc and st.hist_pos is not None and st.hist_neg is not None:
        out["auc"], why = auc_from_hist(st.hist_pos, st.hist_neg)
        if why:
            out["auc_reason"] = why
    else:
        out["auc"], out["auc_reason"] = None, "the detector writes no score map"
    out.update(confusion_metrics(st.tp, st.fp, st.fn, st.tn))
    return out


def image_metrics(y_true: np.ndarray, y_pred: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 on image-level labels (scikit-learn, undefined → None + reason)."""
    from sklearn.metrics import accuracy_score

    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.size == 0:
        return {"accuracy": None, "accuracy_reason": "no labelled items", "precision": None, "recall": None,
                "f1": None, "threshold": threshold}
    tp = int(np.sum((y_true == 1) & (y_pred == 1)))
    fp = int(np.sum((y_true == 0) & (y_pred == 1)))
    fn = int(np.sum((y_true == 1) & (y_pred == 0)))
    tn = int(np.sum((y_true == 0) & (y_pred == 0)))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    cm = confusion_metrics(tp, fp, fn, tn)
    for k in ("precision", "recall", "f1"):
        out[k] = cm[k]
        if f"{k}_reason" in cm:
            out[f"{k}_reason"] = cm[f"{k}_reason"]
    out["threshold"] = threshold
    return out


MIN_DEFINED_RESAMPLES = 10


def item_weights(seed: int, key: str, n_boot: int) -> np.ndarray:
    """An item's Poisson(1) weight in each of ``n_boot`` resamples, drawn from ``(seed, key)`` alone."""
    import zlib

    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return rng.poisson(1.0, n_boot).astype(np.float64)


def _nan_if_none(v: float | None) -> float:
    # not ``v or nan``: an AUC (or any metric) of exactly 0.0 is defined
    return np.nan if v is None else v


def _percentiles(vals: np.ndarray) -> tuple[list[float] | None, str | None]:
    """The 2.5th and 97.5th percentiles over the resamples where the metric is defined (finite)."""
    n_all, vals = vals.size, vals[np.isfinite(vals)]
    if vals.size < MIN_DEFINED_RESAMPLES:
        return None, f"defined in {vals.size} of {n_all} resamples (fewer than {MIN_DEFINED_RESAMPLES})"
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return [float(lo), float(hi)], None


def _intervals(metrics: dict[str, np.ndarray]) -> dict[str, Any]:
    """``{key: [lo, hi]}``, with ``key: None`` and ``key_reason`` where there is no interval."""
    out: dict[str, Any] = {}
    for key, vals in metrics.items():
        out[key], why = _percentiles(vals)
        if why:
            out[f"{key}_reason"] = why
    return out


class ItemBootstrap:
    """95% percentile intervals over items by the Poisson bootstrap, accumulated one item at a time.

    Each resample weighs every item by a Poisson(1) draw (the streaming form of resampling items with
    replacement), so memory is ``resamples × (4 + 4 + 2·bins)`` numbers whatever the number of items. An
    item's weights come from ``(seed, item_id)``, so the intervals do not depend on the order items arrive
    in (a resumed run gives the same intervals as an uninterrupted one).

    A resample where a metric is undefined (e.g. no positive prediction for precision, one class only for
    AUC) is left out of that metric's interval; with fewer than ``MIN_DEFINED_RESAMPLES`` defined resamples
    the interval is ``None`` with a ``<metric>_reason``.
    """

    def __init__(self, n_boot: int, seed: int) -> None:
        self.n_boot = n_boot
        self.seed = seed
        self.n = 0
        self.counts: np.ndarray | None = None
        self.pos: np.ndarray | None = None
        self.neg: np.ndarray | None = None
        self.image: np.ndarray | None = None

    def weights(self, key: str) -> np.ndarray:
        """The item's weight in each resample (:func:`item_weights`)."""
        return item_weights(self.seed, key, self.n_boot)

    def add(self, key: str, counts: Any = None, hist: tuple[np.ndarray, np.ndarray] | None = None,
            image: tuple[int, int] | None = None) -> None:
        """Add one item: ``[tp, fp, fn, tn]``, ``(positive, negative)`` score histograms, ``(y, y_pred)``."""
        self.n += 1
        if self.n_boot <= 0 or (counts is None and hist is None and image is None):
            return
        w = self.weights(key)
        if counts is not None:
            c = np.asarray(counts, dtype=np.float64)
            if self.counts is None:
                self.counts = np.zeros((self.n_boot, 4))
            self.counts += np.outer(w, c)
        if hist is not None:
            pos, neg = (np.asarray(x) for x in hist)
            if self.pos is None or self.neg is None:
                self.pos, self.neg = np.zeros((self.n_boot, pos.size)), np.zeros((self.n_boot, neg.size))
            for acc, h in ((self.pos, pos), (self.neg, neg)):
                nz = np.flatnonzero(h)  # most items fill few bins
                acc[:, nz] += np.outer(w, h[nz])
        if image is not None:
            y, yhat = int(image[0]), int(image[1])
            cell = np.array([y * yhat, (1 - y) * yhat, y * (1 - yhat), (1 - y) * (1 - yhat)], np.float64)
            if self.image is None:
                self.image = np.zeros((self.n_boot, 4))
            self.image += np.outer(w, cell)

    def result(self) -> dict[str, Any]:
        """Intervals in the ``ci95`` layout of metrics.json."""
        if self.n_boot <= 0 or self.n < 2:
            return {"reason": "fewer than 2 items" if self.n < 2 else "bootstrap disabled"}
        out: dict[str, Any] = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.counts is not None:
                tp, fp, fn, tn = self.counts.T
                nn = tp + fp + fn + tn
                po = (tp + tn) / nn
                pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (nn * nn)
                out["pixel"] = _intervals({
                    "f1": 2 * tp / (2 * tp + fp + fn), "iou": tp / (tp + fp + fn),
                    "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                    "kappa": (po - pe) / (1 - pe)})
            if self.pos is not None and self.neg is not None:
                aucs = np.array([_nan_if_none(auc_from_hist(self.pos[b], self.neg[b])[0])
                                 for b in range(self.n_boot)])
                out.setdefault("pixel", {}).update(_intervals({"auc": aucs}))
            if self.image is not None:
                tp, fp, fn, tn = self.image.T
                out["image"] = _intervals({
                    "accuracy": (tp + tn) / (tp + fp + fn + tn),
                    "precision": tp / (tp + fp),
                    "recall": tp / (tp + fn),
                    "f1": 2 * tp / (2 * tp + fp + fn),
                })
        out["resamples"] = self.n_boot
        out["unit"] = "items"
        out["method"] = "poisson"
        return out


def bootstrap_ci(
    counts: np.ndarray | None,
    hists: tuple[np.ndarray, np.ndarray] | None,
    image: tuple[np.ndarray, np.ndarray] | None,
    n_boot: int,
    seed: int,
    keys: list[str] | None = None,
) -> dict[str, Any]:
    """95% intervals over items from per-item arrays (see :class:`ItemBootstrap`).

    Args:
        counts: ``(n_items, 4)`` per-item tp, fp, fn, tn, or None.
        hists: per-item ``(n_items, bins)`` positive and negative histograms, or None.
        image: ``(y_true, y_pred)`` per item, or None.
        n_boot: resamples.
        seed: RNG seed.
        keys: item ids (default: the item's position).
    """
    n = (len(counts) if counts is not None else len(hists[0]) if hists is not None
         else len(image[0]) if image is not None else 0)
    boot = ItemBootstrap(n_boot, seed)
    for i in range(n):
        boot.add(keys[i] if keys is not None else str(i),
                 counts[i] if counts is not None else None,
                 (hists[0][i], hists[1][i]) if hists is not None else None,
                 (image[0][i], image[1][i]) if image is not None else None)
    return boot.result()
