"""Fixtures for the satcore-classic tests: seeded synthetic pairs with a planted change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from satcore.components import RunContext
from satcore.data import Item, Raster


def make_item(
    a: np.ndarray,
    b: np.ndarray,
    label: np.ndarray | None = None,
    item_id: str = "item",
    band_names: tuple[str, ...] = (),
) -> Item:
    """An image pair item from two ``(bands, H, W)`` arrays."""
    return Item(item_id, [Raster(a, band_names=band_names), Raster(b, band_names=band_names)], label=label)


def planted_pair(
    seed: int = 0,
    size: int = 64,
    bands: int = 3,
    square: tuple[int, int, int] = (20, 20, 16),
    shift: float = 3.0,
    noise: float = 1.0,
    alternate: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy textured image, the same scene re-imaged with fresh noise, and a square whose values changed.

    Returns ``(a, b, truth)``; inside the square ``b`` is shifted by ``shift`` noise standard deviations (in
    every band, or with alternating signs per band when ``alternate``: a colour change, no brightness change).
    """
    rng = np.random.default_rng(seed)
    scene = rng.normal(10.0, 2.0, (bands, size, size))
    a = scene + rng.normal(0.0, noise, scene.shape)
    b = scene + rng.normal(0.0, noise, scene.shape)
    r, c, s = square
    truth = np.zeros((size, size), bool)
    truth[r : r + s, c : c + s] = True
    signs = np.where((np.arange(bands) % 2 == 0) | (not alternate), 1.0, -1.0)
    b[:, truth] += (shift * noise * signs).reshape(bands, 1)
    return a.astype(np.float32), b.astype(np.float32), truth


@pytest.fixture
def build() -> Callable[..., Any]:
    """``build(cls, seed=0, **params)``: a detector with validated params, set up."""

    def make(cls: type, seed: int = 0, **params: Any) -> Any:
        det = cls(cls.params_model(**params), RunContext(seed=seed), cls.name)
        det.setup()
        return det

    return make


@pytest.fixture
def synth() -> Any:
    """``synth.make_item(a, b, ...)`` and ``synth.planted_pair(...)`` (see the module functions)."""
    from types import SimpleNamespace

    return SimpleNamespace(make_item=make_item, planted_pair=planted_pair)
