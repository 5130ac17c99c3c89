"""``clip-labels``: rankings from input probabilities, checked against numpy directly; its contract."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from satcore_vlm.clip_labels import ClipLabelsRecognizer

from satcore.components import Batch
from satcore.data import Item
from satcore.testing import RecognizerContract, build_component, make_class_items

CLASSES = ("forest", "water", "urban", "dense residential area", "sparse residential area")


def _probs(item: Item) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(item.item_id.encode()))
    p = rng.random((len(item.images), len(CLASSES)))
    return p / p.sum(axis=1, keepdims=True)


class TestClipLabelsContract(RecognizerContract):
    component = ClipLabelsRecognizer
    params: ClassVar[dict[str, Any]] = {"top_k": 3}

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        return [{} if it.item_id == "bad-item" else {"probabilities": _probs(it), "classes": CLASSES}
                for it in items]


def test_ranking_matches_argsort():
    items = make_class_items(4)
    probs = [np.random.default_rng(i).dirichlet(np.ones(len(CLASSES)))[None] for i in range(4)]
    comp = build_component(ClipLabelsRecognizer, {"top_k": 4})
    out = comp.process(Batch(items, [{"probabilities": p, "classes": CLASSES} for p in probs]))
    for res, p in zip(out, probs, strict=True):
        order = np.argsort(-p[0], kind="stable")[:4]
        assert res["labels"] == [CLASSES[i] for i in order]
        np.testing.assert_allclose(res["scores"], p[0][order])


def test_rename_sums_probabilities_and_drop_unnamed():
    p = np.array([[0.1, 0.2, 0.05, 0.4, 0.25]])
    comp = build_component(ClipLabelsRecognizer, {
        "rename": {"dense residential area": "resident", "sparse residential area": "resident",
                   "forest": "forest"}, "drop_unnamed": True})
    (res,) = comp.process(Batch(make_class_items(1), [{"probabilities": p, "classes": CLASSES}]))
    assert res["labels"] == ["resident", "forest"]
    np.testing.assert_allclose(res["scores"], [0.65, 0.1])


def test_pairs_give_one_ranking_per_image():
    items = make_class_items(1, kind="pair")
    comp = build_component(ClipLabelsRecognizer, {"top_k": 2})
    (res,) = comp.process(Batch(items, [{"probabilities": _probs(items[0]), "classes": CLASSES}]))
    assert len(res["images"]) == 2 and all(len(r["labels"]) == 2 for r in res["images"])
