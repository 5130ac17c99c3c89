"""Which images a vision-language step describes: its input generator's, else the item's own.

A ``vlm-caption``/``vlm-prompt`` step whose ``input:`` names a generator step (``multispectral-to-rgb``,
``text-to-image``, …) describes what that generator made for the item: the output's ``image`` and then its
``images``, in the order the engine writes them to ``generated/<item_id>/``. Each is a
:class:`~satcore.data.Raster` or a ``(bands, H, W)`` array. Any other input (``source``, a step whose output
holds no images, several inputs) keeps the item's own images. Either way every image becomes 8-bit RGB by
:func:`satcore_vlm.backend.to_rgb_uint8` (RGB by band name, else the first three bands; non-uint8 values
stretched between their 2nd and 98th percentiles).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from satcore.data import Raster
from satcore.errors import ComponentError

#: One image to describe: its ``(bands, H, W)`` array and its band names (empty when unnamed).
Image = tuple[np.ndarray, tuple[str, ...]]


def generated_images(upstream: Any, step_id: str = "") -> list[Image] | None:
    """The images in a generator's output for one item, or ``None`` when ``upstream`` holds none.

    Args:
        upstream: What the step's ``input:`` produced for the item (a generator's output dict, or the item).
        step_id: The reading step, named in errors.

    Raises:
        ComponentError: an ``image``/``images`` entry is neither a Raster nor a 2-D/3-D array.
    """
    if not isinstance(upstream, dict):
        return None
    found: list[Any] = []
    if upstream.get("image") is not None:
        found.append(upstream["image"])
    more = upstream.get("images")
    if isinstance(more, (list, tuple)):
        found.extend(more)
    elif more is not None:
        found.append(more)
    if not found:
        return None
    out: list[Image] = []
    for img in found:
        if isinstance(img, Raster):
            out.append((img.array, tuple(img.band_names)))
        elif isinstance(img, np.ndarray) and img.ndim in (2, 3):
            out.append((img[None] if img.ndim == 2 else img, ()))
        else:
            raise ComponentError(f"step {step_id!r}: its input step's images must be Rasters or "
                                 f"(bands, H, W) arrays, got {type(img).__name__}"
                                 f"{' of shape ' + str(img.shape) if isinstance(img, np.ndarray) else ''}",
                                 step=step_id)
    return out


def input_images(item: Any, upstream: Any, step_id: str = "") -> list[Image]:
    """The images a vision-language step describes for ``item``: the input generator's, else the item's own.

    Raises:
        ComponentError: neither the input step nor the item has an image.
    """
    made = generated_images(upstream, step_id)
    if made is not None:
        return made
    if not item.images:
        raise ComponentError(f"item {item.item_id!r} has no image to describe (and its input step made "
                             f"none); {step_id} reads scenes, pairs, series or a generator's images",
                             item_id=item.item_id, step=step_id)
    return [(r.array, tuple(r.band_names)) for r in item.images]


def batch_pairs(batch: Any) -> list[tuple[Any, Any]]:
    """``(item, upstream)`` for each item of a batch (a plain list of items: the items themselves)."""
    inputs = getattr(batch, "inputs", None)
    if inputs is None:
        return [(it, it) for it in batch]
    return list(zip(batch, inputs, strict=True))
