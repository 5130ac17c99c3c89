"""Training-side augmentation: random scale and rotation applied to images and mask alike."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from satcore.data import Item


def item_rng(seed: int, item_id: str, k: int) -> np.random.Generator:
    """A generator that depends only on the seed, the item and the copy number."""
    # SeedSequence refuses negative entries; a negative spec seed is still a valid seed
    return np.random.default_rng([seed % 2**32, zlib.crc32(item_id.encode()), k])


def augment_item(item: Item, rng: np.random.Generator, scale: tuple[float, float],
                 rotate: tuple[float, float], k: int) -> Item:
    """One randomly scaled and rotated copy (same transform for every image and the mask)."""
    from scipy import ndimage

    s = float(rng.uniform(*scale))
    angle = float(rng.uniform(*rotate))

    # one affine map about the centre that keeps the frame: every copy has its original's shape, so batched
    # components that stack a batch still work (a zoom that resized the arrays mixed shapes in one batch)
    th = np.deg2rad(angle)
    m = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]) / s  # output → input coordinates

    def tf(a: np.ndarray, order: int) -> np.ndarray:
        h, w = a.shape[-2:]
        c = np.array([(h - 1) / 2, (w - 1) / 2])
        mat, off = m, c - m @ c
        if a.ndim == 3:  # bands are not mixed: identity on the first axis
            mat = np.block([[np.ones((1, 1)), np.zeros((1, 2))], [np.zeros((2, 1)), m]])
            off = np.concatenate([[0.0], off])
        return np.asarray(ndimage.affine_transform(a, mat, offset=off, order=order, mode="reflect"))

    def tf_image(a: np.ndarray) -> np.ndarray:
        out = tf(a.astype(np.float64), 1)
        if np.issubdtype(a.dtype, np.integer):  # round, not truncate, and stay inside the dtype's range
            info = np.iinfo(a.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(a.dtype)

    images = [r.with_array(tf_image(r.array)) for r in item.images]
    for r in images:
        r.crs, r.transform = None, None  # an augmented copy is no longer on the source grid
    label = tf(item.label.astype(np.uint8), 0).astype(bool) if item.label is not None else None
    valid = tf(item.valid.astype(np.uint8), 0).astype(bool) if item.valid is not None else None
    meta = {**item.meta, "augmented_from": item.item_id, "scale": s, "rotate": angle}
    # with a mask, the copy's image label follows the transformed mask (a zoom can crop the change away);
    # without one, the item's own image label is kept
    return replace(item, item_id=f"{item.item_id}#aug{k}", images=images, label=label, valid=valid, meta=meta,
                   image_label=None if label is not None else item.image_label)


def copies_per_class(labels: np.ndarray, copies: int | Mapping[int | str, int], balance: bool
                     ) -> dict[int, int]:
    """How many augmented copies each class gets so that, with ``balance``, classes end up about even.

    ``copies`` given per class (``{0: 1, 1: 0}``, as ``evaluate.augment.copies`` validates it) is used as it
    is: e.g. one copy of each unchanged LEVIR-CD pair turns its 637 pairs into the thesis's 746.
    """
    if not isinstance(copies, int):
        return {0: int(copies.get(0, 0)), 1: int(copies.get(1, 0))}
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
