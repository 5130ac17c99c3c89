"""Sliding-window inference with overlap blending (numpy only; the model is any callable)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, size)`` with windows of ``window`` every ``stride``.

    The last one ends at ``size``, so no window sticks out and every pixel is covered.
    """
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def blend_weights(window: int) -> np.ndarray:
    """Separable tent weights ``(window, window)``: largest in the middle, small but positive at the edges.

    Each pixel of the output is the weighted mean of every window covering it, so a window's border pixels
    (where padding makes a convolutional net least reliable) count least and the transition between windows
    is smooth: no seams.
    """
    i = np.arange(window, dtype=np.float64)
    tent = 1.0 - np.abs(2.0 * (i + 0.5) / window - 1.0)  # (0, 1], symmetric
    tent = np.maximum(tent, 1e-3)
    return np.outer(tent, tent).astype(np.float32)


def sliding_window(array: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], *, out_bands: int,
                   window: int = 64, overlap: int = 32, batch: int = 16, multiple: int = 4) -> np.ndarray:
    """Apply ``predict`` to overlapping windows of ``array`` ``(C, H, W)``; blend to ``(out_bands, H, W)``.

    Args:
        array: the input image, already scaled for the model.
        predict: maps a batch ``(N, C, window, window)`` to ``(N, out_bands, window, window)``.
        out_bands: channels ``predict`` returns.
        window: side of a square window (an image smaller than it is reflect-padded up to it).
        overlap: pixels two neighbouring windows share (``0``: plain tiling, which shows seams).
        batch: windows per ``predict`` call.
        multiple: ``window`` is rounded up to a multiple of this (the net's downsampling factor).
    """
    if overlap < 0 or overlap >= window:
        raise ValueError(f"overlap must be in [0, window) (got overlap={overlap}, window={window})")
    window = -(-window // multiple) * multiple
    c, h, w = array.shape
    ph, pw = max(0, window - h), max(0, window - w)
    if ph or pw:  # small images: pad up to one window (reflect needs pad < size, so edge beyond that)
        mode = "reflect" if ph < h and pw < w else "edge"
        array = np.pad(array, ((0, 0), (0, ph), (0, pw)), mode=mode)  # type: ignore[call-overload]
    _, hh, ww = array.shape
    stride = window - overlap
    weights = blend_weights(window) if overlap else np.ones((window, window), np.float32)
    acc = np.zeros((out_bands, hh, ww), np.float64)
    norm = np.zeros((hh, ww), np.float64)
    boxes = [(y, x) for y in window_starts(hh, window, stride) for x in window_starts(ww, window, stride)]
    for k in range(0, len(boxes), batch):
        chunk = boxes[k:k + batch]
        tiles = np.stack([array[:, y:y + window, x:x + window] for y, x in chunk]).astype(np.float32)
        preds = np.asarray(predict(tiles), dtype=np.float32)
        for (y, x), pred in zip(chunk, preds, strict=True):
            acc[:, y:y + window, x:x + window] += pred * weights
            norm[y:y + window, x:x + window] += weights
    out = acc / norm
    return out[:, :h, :w].astype(np.float32)
