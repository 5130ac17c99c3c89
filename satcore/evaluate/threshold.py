"""Threshold optimisation by one sort over all distinct scores (not a grid).

The decision rule is ``score > threshold``. There is one candidate per distinct way of splitting the sorted
scores: nothing positive (the maximum), everything positive (just below the minimum), and between each pair
of neighbouring distinct scores their midpoint — so a fitted threshold never sits on a training score, and a
score recomputed with slightly different numerics (another device, dtype or batch) cannot flip across it.
After one descending sort, cumulative sums give the confusion counts of every candidate at once: O(n log n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OBJECTIVES: tuple[str, ...] = ("f1", "accuracy", "recall", "precision")


@dataclass
class ThresholdCurve:
    """Every candidate threshold with its confusion counts (ascending thresholds)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    def metric(self, name: str, undefined: float = 0.0) -> np.ndarray:
        """The metric at every threshold.

        Where it is 0/0 it is ``undefined``: 0 as scikit-learn's ``zero_division=0``, or NaN to tell them
        apart.
        """
        tp, fp, fn, tn = (a.astype(np.float64) for a in (self.tp, self.fp, self.fn, self.tn))
        with np.errstate(divide="ignore", invalid="ignore"):
            if name == "f1":
                v = 2 * tp / (2 * tp + fp + fn)
            elif name == "accuracy":
                v = (tp + tn) / (tp + fp + fn + tn)
            elif name == "recall":
                v = tp / (tp + fn)
            elif name == "precision":
                v = tp / (tp + fp)
            else:
                raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
        return np.where(np.isnan(v), undefined, v)

    def best_index(self, name: str) -> int:
        """The candidate maximising ``name`` (undefined counts as 0); ties go to the highest threshold."""
        m = self.metric(name)
        return len(m) - 1 - int(np.argmax(m[::-1]))

    def best(self, name: str) -> tuple[float, float]:
        """``(threshold, metric)`` maximising ``name``; ties go to the highest threshold."""
        i = self.best_index(name)
        return float(self.thresholds[i]), float(self.metric(name)[i])


def threshold_curve(scores: np.ndarray, labels: np.ndarray) -> ThresholdCurve:
    """Confusion counts of ``scores > t`` for every candidate ``t``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.size == 0:
        raise ValueError("no scores to optimise a threshold on")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # last index of each run of equal scores (descending)
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    ctp = np.cumsum(y_sorted)[ends]
    cfp = np.cumsum(~y_sorted)[ends]
    P, N = int(y.sum()), int((~y).sum())
    uniq_desc = s_sorted[ends]
    # candidate k (k = 0..m): positives = the first k runs; threshold = the maximum (k = 0), the midpoint of
    # runs k-1 and k, or just below the minimum (k = m)
    tp = np.r_[0, ctp]
    fp = np.r_[0, cfp]
    below_min = np.nextafter(uniq_desc[-1], -np.inf)
    lo, hi = uniq_desc[1:], uniq_desc[:-1]
    mid = lo + (hi - lo) / 2  # overflow-safe
    mid = np.where(mid < hi, mid, lo)  # neighbours one ulp apart: the lower one still splits them
    thr = np.r_[uniq_desc[0], mid, below_min]
    # reverse to ascending thresholds
    tp, fp, thr = tp[::-1], fp[::-1], thr[::-1]
    return ThresholdCurve(thresholds=thr, tp=tp, fp=fp, fn=P - tp, tn=N - fp)


def optimise_threshold(scores: np.ndarray, labels: np.ndarray, objective: str = "f1") -> tuple[float, float]:
    """The threshold maximising ``objective`` for the rule ``score > threshold``, and the metric there."""
    return threshold_curve(scores, labels).best(objective)
