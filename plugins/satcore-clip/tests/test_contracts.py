"""satcore's contract tests for both components (tiny offline model for the extractor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from satcore_clip.delta import ProbabilityDeltaDetector
from satcore_clip.extractor import ClipZeroShotExtractor

from satcore.data import Item
from satcore.testing import DetectorContract, ExtractorContract
from satcore.testing.data import make_change_items, make_change_pair


class TestClipZeroShotContract(ExtractorContract):
    component = ClipZeroShotExtractor
    params: ClassVar[dict[str, Any]] = {
        "model": "tiny-a",
        "cache": False,
        "classes": ["forest", "road", "lake"],
    }

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_env):
        yield

    def make_bad_item(self) -> Item:
        # scenes and series are fine for clip-zeroshot; an item without images is not
        return Item("bad-item", [], meta={"kind": "scene"})


def _probs(array: np.ndarray) -> np.ndarray:
    m = array.astype(np.float64).mean(axis=(1, 2))
    e = np.exp(m / (np.abs(m).max() + 1e-9))
    return e / e.sum()


class TestProbabilityDeltaContract(DetectorContract):
    component = ProbabilityDeltaDetector
    params: ClassVar[dict[str, Any]] = {"threshold": {"optimise": "f1"}}

    def make_items(self) -> list[Item]:
        # the upstream extractor sees image pairs; this detector sees its probabilities
        return make_change_items(self.n_items, seed=0)

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        return [
            {
                "probabilities": np.stack([_probs(r.array) for r in it.images]),
                "classes": ("a", "b", "c")[: it.images[0].count] if it.images else (),
            }
            for it in items
        ]

    def make_bad_item(self) -> Item:
        good = make_change_pair("bad-item", seed=99)
        return Item("bad-item", [good.images[0]], meta={"kind": "scene"})
