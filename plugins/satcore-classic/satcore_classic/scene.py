"""Scene statistics of the classic detectors: what tiles of a scene compute, and how the parts merge.

Used by the detectors in :mod:`satcore_classic.detectors` both on a tiled scene (one part per tile, merged by
the engine's first pass) and on a whole image with ``sample_step`` (one part), so the two give the same
result (``docs/scale.md`` in the satcore repository):

* normalisation: per-band moments (count, mean, squared deviations), merged exactly;
* Otsu: the scene's value range, then a 256-bin histogram over that fixed range (counts add up);
* ``pca-kmeans``: the co-moments of the h×h blocks (aligned to the scene's grid) give the PCA; k-means is
  fitted on a deterministic sample of pixels (every ``sample_step``-th row and column of the scene), the same
  sample in both modes, because k-means itself cannot be merged from parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from satcore.components.detector import core_slices
from satcore.errors import ComponentError


def scene_origin(item: Any) -> tuple[int, int]:
    """The scene position ``(row, col)`` of the item's core's first pixel (``(0, 0)`` untiled)."""
    win = item.meta.get("window")
    return (int(win[0]), int(win[1])) if win else (0, 0)


def block_comoments(diff: np.ndarray, item: Any, h: int) -> tuple[float, np.ndarray, np.ndarray]:
    """``(n, mean, C)`` of the h×h blocks of the core of ``diff`` (scene-aligned; invalid blocks left out).

    ``C`` is the sum of outer products of the deviations from ``mean``. The core must start on the block
    grid (a tile size that is a multiple of ``h``).
    """
    r0, c0 = scene_origin(item)
    if r0 % h or c0 % h:
        raise ComponentError(f"pca-kmeans: a tile starts at row {r0}, column {c0}, off the {h}×{h} block "
                             f"grid: use a tile `size` that is a multiple of `block_size` ({h})")
    rows, cols = core_slices(item)
    core = diff[rows, cols]
    hh, ww = core.shape[0] // h, core.shape[1] // h
    blocks = core[: hh * h, : ww * h].reshape(hh, h, ww, h).swapaxes(1, 2).reshape(hh * ww, h * h)
    blocks = blocks[np.isfinite(blocks).all(axis=1)]
    n = float(blocks.shape[0])
    if not n:
        return 0.0, np.zeros(h * h), np.zeros((h * h, h * h))
    mean = blocks.mean(axis=0)
    dev = blocks - mean
    return n, mean, dev.T @ dev


Comoments = tuple[float, np.ndarray, np.ndarray]


def merge_comoments(parts: list[Comoments]) -> Comoments:
    """The co-moments of the union of the parts' vectors (pairwise update)."""
    n, mean, c = parts[0]
    mean, c = np.array(mean, dtype=np.float64), np.array(c, dtype=np.float64)
    for n2, mean2, c2 in parts[1:]:
        tot = n + n2
        if not n2:
            continue
        delta = np.asarray(mean2) - mean
        mean = mean + delta * n2 / tot
        c = c + np.asarray(c2) + np.outer(delta, delta) * n * n2 / tot
        n = tot
    return n, mean, c


def pca_from_comoments(n: float, mean: np.ndarray, c: np.ndarray, n_components: int | None) -> dict[str, Any]:
    """The PCA of the blocks: mean, the leading components (rows) and how many are kept.

    ``n_components`` null keeps as many as explain 90% of the variance. Each component's sign is fixed so
    that its largest-magnitude entry is positive (a deterministic choice; any sign gives the same clusters).
    """
    if n < 2:
        return {"degenerate": True}
    vals, vecs = np.linalg.eigh(c / (n - 1))
    order = np.argsort(vals)[::-1]
    vals, vecs = np.maximum(vals[order], 0.0), vecs[:, order].T
    signs = np.sign(vecs[np.arange(len(vecs)), np.argmax(np.abs(vecs), axis=1)])
    vecs = vecs * np.where(signs == 0, 1.0, signs)[:, None]
    total = vals.sum()
    if total <= 0:
        return {"degenerate": True}
    ratio = vals / total
    s = int(np.searchsorted(np.cumsum(ratio), 0.9) + 1) if n_components is None else n_components
    s = max(1, min(s, len(vals), int(n)))
    return {"mean": mean.tolist(), "components": vecs[:s].tolist(), "n_components": s,
            "explained_variance": float(ratio[:s].sum())}


def features(diff: np.ndarray, h: int, pca: dict[str, Any], rows: np.ndarray | None = None,
             cols: np.ndarray | None = None) -> np.ndarray:
    """Each pixel's h×h neighbourhood projected on the PCA components: ``(pixels, S)``.

    The neighbourhood is reflect-padded (symmetric) at the array's border, as the untiled detector does; with
    ``rows``/``cols`` only those pixels (the grid they span) are computed.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    before, after = (h - 1) // 2, h // 2
    padded = np.pad(diff, ((before, after), (before, after)), mode="symmetric")
    win = sliding_window_view(padded, (h, h))
    if rows is not None and cols is not None:
        win = win[rows][:, cols]
    vecs = win.reshape(-1, h * h)
    return (vecs - np.asarray(pca["mean"])) @ np.asarray(pca["components"]).T  # type: ignore[no-any-return]


def sample_part(diff: np.ndarray, item: Any, h: int, pca: dict[str, Any], step: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The core's sample pixels (scene rows and columns that are multiples of ``step``), valid ones only.

    Returns their flat scene positions (to order the parts), features and difference values.
    """
    rows, cols = core_slices(item)
    r0, c0 = scene_origin(item)
    core_r = np.arange(diff.shape[0])[rows]
    core_c = np.arange(diff.shape[1])[cols]
    base_r, base_c = core_r[0] if core_r.size else 0, core_c[0] if core_c.size else 0
    sr = core_r[(core_r - base_r + r0) % step == 0]
    sc = core_c[(core_c - base_c + c0) % step == 0]
    width = int(item.meta.get("scene_shape", diff.shape)[1])
    pos = ((sr - base_r + r0)[:, None] * width + (sc - base_c + c0)[None, :]).ravel()
    values = diff[np.ix_(sr, sc)].ravel()
    feats = features(np.nan_to_num(diff, nan=0.0), h, pca, sr, sc)
    ok = np.isfinite(values)
    return pos[ok], feats[ok], values[ok]


def fit_kmeans(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], seed: int,
               n_init: int) -> dict[str, Any]:
    """k-means (k=2) on the merged sample, in scene order; which centroid is change (larger mean diff)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    pos = np.concatenate([p[0] for p in parts])
    order = np.argsort(pos, kind="stable")
    feats = np.concatenate([p[1] for p in parts])[order]
    values = np.concatenate([p[2] for p in parts])[order]
    if feats.shape[0] < 2 or not np.ptp(feats, axis=0).any():
        return {"degenerate": True, "sample_size": int(feats.shape[0])}
    with threadpool_limits(limits=1):  # one thread: the same result on every machine
        km = KMeans(n_clusters=2, n_init=n_init, random_state=seed).fit(feats)
    means = [values[km.labels_ == k].mean() if np.any(km.labels_ == k) else -np.inf for k in (0, 1)]
    return {"centres": km.cluster_centers_.tolist(), "changed": int(np.argmax(means)),
            "sample_size": int(feats.shape[0])}


def score_maps(diff: np.ndarray, h: int, pca: dict[str, Any], km: dict[str, Any]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Score (relative distance to the two centroids) and change mask of every pixel of ``diff``."""
    feats = features(np.nan_to_num(diff, nan=0.0), h, pca)
    centres = np.asarray(km["centres"])
    d = np.linalg.norm(feats[:, None, :] - centres[None, :, :], axis=2)
    changed = int(km["changed"])
    d_changed, d_unchanged = d[:, changed], d[:, 1 - changed]
    total = d_changed + d_unchanged
    score = np.divide(d_unchanged, total, out=np.full_like(total, 0.5), where=total > 0)
    label = np.argmin(d, axis=1) == changed
    return score.reshape(diff.shape).astype(np.float32), label.reshape(diff.shape)
