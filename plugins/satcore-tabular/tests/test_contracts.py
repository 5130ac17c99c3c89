"""satcore's detector contract for each tree detector (upstream: per-image probabilities from statistics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from satcore_tabular.detectors import (
    DecisionTreeDetector,
    GradientBoostingDetector,
    RandomForestDetector,
    XGBoostDetector,
)

from satcore.data import Item
from satcore.testing import DetectorContract
from satcore.testing.data import make_change_items, make_change_pair


def image_probs(array: np.ndarray) -> np.ndarray:
    a = array.astype(np.float64)
    logits = np.concatenate([a.mean(axis=(1, 2)), [a.std()]])
    logits = logits / (np.abs(logits).max() + 1e-9)
    e = np.exp(logits - logits.max())
    return np.asarray(e / e.sum())


class _TreeContract(DetectorContract):
    params: ClassVar[dict[str, Any]] = {}

    def make_items(self) -> list[Item]:
        # the upstream extractor sees image pairs; these detectors see its probabilities
        return make_change_items(self.n_items, seed=0)

    def make_bad_item(self) -> Item:
        # one image → probabilities shaped (1, K): no pair to compare
        good = make_change_pair("bad-item", seed=99)
        return Item("bad-item", [good.images[0]], meta={"kind": "scene"})

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        # what an upstream probability extractor gives each item: (n_images, K); a one-image item → (1, K)
        return [{"probabilities": np.stack([image_probs(r.array) for r in it.images])} for it in items]


class TestDecisionTreeContract(_TreeContract):
    component = DecisionTreeDetector


class TestRandomForestContract(_TreeContract):
    component = RandomForestDetector
    params: ClassVar[dict[str, Any]] = {"params": {"n_estimators": 10}}


class TestGradientBoostingContract(_TreeContract):
    component = GradientBoostingDetector
    params: ClassVar[dict[str, Any]] = {"params": {"n_estimators": 10}}


class TestXGBoostContract(_TreeContract):
    component = XGBoostDetector
    params: ClassVar[dict[str, Any]] = {"params": {"n_estimators": 10}}


def test_feature_sets_64_and_96_numbers():
    """`features: [p1, p2]` is the thesis's stored 64 numbers; the default adds |p1 − p2| (96)."""
    from satcore_tabular.detectors import feature_vector

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(32), size=2)
    assert np.array_equal(feature_vector({"probabilities": p}, ["p1", "p2"]), np.r_[p[0], p[1]])
    x = feature_vector({"probabilities": p}, ["p1", "p2", "absdiff"])
    assert x.shape == (96,) and np.allclose(x[64:], np.abs(p[0] - p[1]))
