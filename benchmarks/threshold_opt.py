"""Threshold optimisation speed: one sort over all distinct scores (satcore.evaluate.threshold).

    python benchmarks/threshold_opt.py [--n 1000000] [--repeat 3]

Optimises the F1 threshold of N random scores (with ties: scores rounded to 1e-4) and reports the best
wall time;
also the best thresholds for all four objectives from the same curve, and, for a small N, a check against a
brute-force loop with scikit-learn metrics (the reference the tests use).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from satcore.evaluate.threshold import OBJECTIVES, optimise_threshold, threshold_curve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--decimals", type=int, default=4, help="round scores (ties); -1 = all distinct")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    scores = rng.random(a.n)
    if a.decimals >= 0:
        scores = np.round(scores, a.decimals)
    labels = (scores + rng.normal(0, 0.3, a.n) > 0.5).astype(int)
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        thr, f1 = optimise_threshold(scores, labels, "f1")
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    curve = threshold_curve(scores, labels)
    best = {o: curve.best(o) for o in OBJECTIVES}
    t_all = time.perf_counter() - t
    print(f"n={a.n:,} scores, {len(curve.thresholds) - 1:,} distinct")
    print(f"optimise f1: best of {a.repeat}: {min(times):.3f} s (threshold {thr:.4f}, f1 {f1:.4f})")
    print(f"curve + best threshold for all four objectives: {t_all:.3f} s")
    for o, (th, v) in best.items():
        print(f"  {o:9s} threshold {th:.6g}  value {v:.4f}")
    # brute-force check on a subsample
    from sklearn.metrics import f1_score

    s, y = scores[:2000], labels[:2000]
    cands = np.r_[np.nextafter(s.min(), -np.inf), np.unique(s)]
    ref = max(f1_score(y, (s > c).astype(int), zero_division=0) for c in cands)
    ours = optimise_threshold(s, y, "f1")[1]
    print(
        f"brute-force check on 2,000 scores: {'OK' if abs(ref - ours) < 1e-12 else 'MISMATCH'} "
        f"(sklearn {ref:.6f}, ours {ours:.6f})"
    )
    print("PASS: under 1 s" if min(times) < 1.0 else "SLOW: over 1 s")


if __name__ == "__main__":
    main()
