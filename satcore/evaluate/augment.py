"""Training-side augmentation: random scale and rotation applied to images and mask alike."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from satcore.data import Item


def item_rng(seed: int, item_id: str, k: int) -> np.random.Generator:
    """A generator that depends only on the seed, the item and the copy number."""
    return np.random.default_rng([seed, zlib.crc32(item_id.encode()), k])


def augment_item(item: Item, rng: np.random.Generator, scale: tuple[float, float],
                 rotate: tuple[float, float], k: int) -> Item:
    """One randomly scaled and rotated copy (same transform for every image and the mask)."""
    from scipy import ndimage

    s = float(rng.uniform(*scale))
    angle = float(rng.uniform(*rotate))

    def tf(a: np.ndarray, order: int) -> np.ndarray:
        z = ndimage.zoom(a, (1, s, s) if a.ndim == 3 else (s, s), order=order, mode="reflect")
        axes = (1, 2) if a.ndim == 3 else (0, 1)
        return ndimage.rotate(z, angle, axes=axes, reshape=False, order=order, mode="reflect")

    images = [r.with_array(tf(r.array, 1).astype(r.array.dtype)) for r in item.images]
    for r in images:
        r.crs, r.transform = None, None  # an augmented copy is no longer on the source grid
    label = tf(item.label.astype(np.uint8), 0).astype(bool) if item.label is not None else None
    valid = tf(item.valid.astype(np.uint8), 0).astype(bool) if item.valid is not None else None
    meta = {**item.meta, "augmented_from": item.item_id, "scale": s, "rotate": angle}
    new = replace(item, item_id=f"{item.item_id}#aug{k}", images=images, label=label, valid=valid, meta=meta)
    if item.label is None:
        new.image_label = item.image_label
    return new


def copies_per_class(labels: np.ndarray, copies: int, balance: bool) -> dict[int, int]:
    """How many augmented copies each class gets so that, with ``balance``, classes end up about even."""
    out = {0: copies, 1: copies}
    if not balance or labels.size == 0:
        return out
    n1 = int(labels.sum())
    n0 = int(labels.size - n1)
    if n0 == 0 or n1 == 0:
        return out
    major, minor = (0, 1) if n0 >= n1 else (1, 0)
    n_major, n_minor = max(n0, n1), min(n0, n1)
    out[minor] = max(copies, int(round(n_major * (1 + copies) / n_minor)) - 1)
    out[major] = copies
    return out
