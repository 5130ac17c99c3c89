"""The contract kit with truth beyond change masks: its data makers, and the recognizer, captioner and
generator contracts run against small honest components, and against broken ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore.components import Batch, Captioner, Generator, Params, Recognizer
from satcore.data import Item, Raster
from satcore.testing import (
    TEST_CAPTIONS,
    TEST_CLASSES,
    CaptionerContract,
    GeneratorContract,
    RecognizerContract,
    make_caption_items,
    make_class_items,
    make_target_items,
    make_text_items,
)
from satcore.testing.contracts import check_ranking, strip_truth


class NoParams(Params):
    """No parameters."""


def _rank(raster: Raster) -> dict[str, Any]:
    """Labels by greenness and brightness (a hand rule, deterministic)."""
    arr = raster.array.astype(np.float64)
    green = 2 * (arr[1].mean() / max(arr.mean(), 1e-9) - 1)  # forest: green well above the mean
    bright = arr.mean() / 255
    scores = {"forest": green, "water": 1 - 2 * bright, "urban": bright}
    labels = sorted(scores, key=lambda k: -scores[k])
    return {"labels": labels, "scores": [float(scores[k]) for k in labels]}


class SceneRecognizer(Recognizer):
    """Labels a scene by its colours."""

    name = "scene-colours"
    params_model = NoParams
    consumes: ClassVar[tuple[str, ...]] = ("scene",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            if len(item.images) != 1:
                from satcore.errors import ComponentError

                raise ComponentError(f"expected one image, got {len(item.images)}", item.item_id)
            out.append(_rank(item.images[0]))
        return out


class PairRecognizer(Recognizer):
    """Labels each image of a pair by its colours."""

    name = "pair-colours"
    params_model = NoParams
    consumes: ClassVar[tuple[str, ...]] = ("pair",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        from satcore.errors import ComponentError

        out = []
        for item in batch:
            if len(item.images) != 2:
                raise ComponentError("expected a pair", item.item_id)
            out.append({"images": [_rank(r) for r in item.images]})
        return out


class PeekingRecognizer(SceneRecognizer):
    """Reads the truth it should predict."""

    name = "peeking"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        res = super().process(batch)
        return [{"labels": list(it.classes or ("?",)), "scores": [1.0] * len(it.classes or "?")}
                for it, _ in zip(batch, res, strict=True)]


class MeanCaptioner(Captioner):
    """Says how bright each image is."""

    name = "brightness-captioner"
    params_model = NoParams
    consumes: ClassVar[tuple[str, ...]] = ("scene",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        from satcore.errors import ComponentError

        out = []
        for item in batch:
            if not item.images:
                raise ComponentError("no image", item.item_id)
            out.append({"captions": [f"brightness {int(r.array.mean())}" for r in item.images]})
        return out


class PromptGenerator(Generator):
    """Turns a prompt into a grey image whose level is the prompt's length."""

    name = "prompt-grey"
    params_model = NoParams
    consumes: ClassVar[tuple[str, ...]] = ("text",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        from satcore.errors import ComponentError

        out = []
        for item in batch:
            if not item.text:
                raise ComponentError("no prompt", item.item_id)
            out.append({"images": [Raster(np.full((3, 8, 8), len(item.text), np.uint8))]})
        return out


class AddNirGenerator(Generator):
    """Adds a nir band (the band mean) to a scene."""

    name = "add-nir"
    params_model = NoParams
    consumes: ClassVar[tuple[str, ...]] = ("scene",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        from satcore.errors import ComponentError

        out = []
        for item in batch:
            if not item.images:
                raise ComponentError("no image", item.item_id)
            src = item.images[0].array.astype(np.float32)
            arr = np.concatenate([src, src.mean(axis=0, keepdims=True) * 0.8 + 20])
            out.append({"images": [item.images[0].with_array(arr, ("red", "green", "blue", "nir"))]})
        return out


class TestSceneRecognizer(RecognizerContract):
    component = SceneRecognizer


class TestPairRecognizer(RecognizerContract):
    component = PairRecognizer


class TestMeanCaptioner(CaptionerContract):
    component = MeanCaptioner


class TestPromptGenerator(GeneratorContract):
    component = PromptGenerator


class TestAddNirGenerator(GeneratorContract):
    component = AddNirGenerator


# ------------------------------------------------------------------------------------------ the data makers

def test_class_items_carry_their_class_in_pixels_and_truth():
    items = make_class_items(6)
    assert [it.classes for it in items] == [(TEST_CLASSES[i % 3],) for i in range(6)]
    assert all(it.kind == "scene" and len(it.images) == 1 for it in items)
    # the hand rule recognises the planted class: the classes are visible, not just labels
    truth = [c for it in items for c in it.classes or ()]
    assert [_rank(it.images[0])["labels"][0] for it in items] == truth
    pairs = make_class_items(2, kind="pair")
    assert all(len(it.images) == 2 and it.kind == "pair" for it in pairs)


def test_caption_text_and_target_items():
    caps = make_caption_items(3)
    assert [it.texts for it in caps] == [TEST_CAPTIONS[c] for c in TEST_CLASSES]
    texts = make_text_items(5)
    assert all(it.kind == "text" and not it.images and it.text for it in texts)
    assert len({it.item_id for it in texts}) == 5
    (tgt,) = make_target_items(1)
    target = (tgt.targets or {})["target"]
    assert target.band_names == ("red", "green", "blue", "nir") and target.shape == tgt.reference.shape
    src = tgt.images[0].array.astype(np.float32)
    np.testing.assert_allclose(target.band("nir"), src.mean(axis=0) * 0.8 + 20, rtol=1e-6)
    # the image-to-image generator above reproduces the target exactly
    [res] = AddNirGenerator(NoParams()).process(Batch([tgt]))
    np.testing.assert_allclose(res["images"][0].array, target.array, rtol=1e-6)


def test_strip_truth_removes_every_truth():
    item = make_caption_items(1)[0]
    blind = strip_truth(item)
    assert (blind.classes, blind.texts, blind.targets, blind.label) == (None, None, None, None)
    assert "class" not in blind.meta and blind.images is item.images or blind.images == item.images


# ------------------------------------------------------------------------------------------ broken components

def test_peeking_recognizer_fails_the_truth_check(tmp_path: Path):
    contract = type("TestPeeking", (RecognizerContract,), {"component": PeekingRecognizer})()
    with pytest.raises(AssertionError, match="differ|vs"):
        contract.test_does_not_read_truth(tmp_path)


@pytest.mark.parametrize("result, match", [
    ({"images": [{"labels": ["a"], "scores": [1.0]}]}, "one .* per image: 2 images, got 1"),
    ({"images": [{"labels": ["a"], "scores": [1.0]}, {"labels": ["a", "b"], "scores": [1.0]}]},
     r"images\[1\]: 2 labels but 1 scores"),
    ({"images": [{"labels": [1], "scores": [1.0]}] * 2}, "labels must be strings"),
    ({"labels": ["a"], "scores": [float("nan")]}, "scores must be finite"),
    ({"label": "a"}, "per item, or"),
])
def test_recognizer_shapes_that_fail(result, match):
    pair = make_class_items(1, kind="pair")[0]
    with pytest.raises(AssertionError, match=match):
        RecognizerContract().check_result(result, pair)


def test_recognizer_shapes_that_pass():
    pair: Item = make_class_items(1, kind="pair")[0]
    contract = RecognizerContract()
    contract.check_result({"labels": ["a", "b"], "scores": [0.7, 0.3]}, pair)  # the pair as a whole
    per_image = {"images": [{"labels": ["a"], "scores": [0.9]}, {"labels": ["b"], "scores": [0.8]}]}
    contract.check_result(per_image, pair)
    contract.check_result({**per_image, "labels": ["a"], "scores": [0.5]}, pair)
    check_ranking({"labels": [], "scores": []}, "empty")
