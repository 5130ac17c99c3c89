"""engine/records.py: which record each kind's output makes, from the item's truth, and what is skipped."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore.components import Batch, Captioner, Detector, Extractor, Generator, Recognizer
from satcore.data import Item, Raster
from satcore.engine.records import BLOCK_COLUMN, ERROR_KEY, block_columns, scored_target, step_records
from satcore.evaluate.blocks import (
    captions_record,
    image_quality_record,
    recognition_record,
    spectral_record,
)


class Rec(Recognizer):
    name = "t-rec"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        raise NotImplementedError


class Cap(Captioner):
    name = "t-cap"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        raise NotImplementedError


class Gen(Generator):
    name = "t-gen"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        raise NotImplementedError


class Ext(Extractor):
    name = "t-ext"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        raise NotImplementedError


class Det(Detector):
    name = "t-det"

    def process(self, batch: Batch) -> list[Any]:
        raise NotImplementedError


def _item(**kw: Any) -> Item:
    return Item("x/1", [Raster(np.full((3, 4, 4), 100, np.uint8))], **kw)


def test_recognizer_item_level_and_per_image():
    item = _item(classes=["forest"])
    out = {"labels": ["river", "forest"], "scores": [0.6, 0.4]}
    assert step_records(Rec(), item, out) == {
        "recognition": recognition_record(["forest"], ["river", "forest"], [0.6, 0.4])}
    per_image = {"images": [{"labels": ["forest"], "scores": [1.0]}, {"labels": ["river"], "scores": [1.0]}]}
    rec = step_records(Rec(), item, per_image)["recognition"]
    assert rec["units"] == 2 and rec["top"] == ["forest", "river"]
    # item-level labels beside per-image ones: the item-level ranking is scored (the truth is item-level)
    both = {**per_image, "labels": ["river"], "scores": [1.0]}
    assert step_records(Rec(), item, both)["recognition"]["units"] == 1
    assert step_records(Rec(), _item(), out) == {}  # no truth: not scored


def test_captioner_prefers_the_item_caption():
    item = _item(texts=["a forest", "trees"])
    assert step_records(Cap(), item, {"captions": ["a forest"]}) == {
        "captions": captions_record(["a forest", "trees"], "a forest")}
    got = step_records(Cap(), item, {"captions": ["x", "y"], "caption": "many trees"})
    assert got == {"captions": captions_record(["a forest", "trees"], "many trees")}


def test_generator_scores_the_first_image_against_the_target():
    tgt = Raster(np.arange(48, dtype=np.float32).reshape(3, 4, 4) + 1)
    gen = Raster(np.ones((3, 4, 4), np.float32) * 7)
    item = _item(targets={"s2": tgt})
    got = step_records(Gen(), item, {"images": [gen, Raster(np.zeros((3, 4, 4)))]})
    assert got == {"spectral": spectral_record(tgt.array, gen.array)}
    # a target of another shape: an error record, not a failed item
    bad = step_records(Gen(), _item(targets={"target": Raster(np.ones((2, 4, 4)))}), {"images": [gen]})
    assert "shape" in bad["spectral"][ERROR_KEY]


def test_scored_target_picks_target_else_the_only_one():
    a, b = Raster(np.zeros((1, 2, 2))), Raster(np.ones((1, 2, 2)))
    assert scored_target(_item(targets={"rgb": a, "target": b})) is b
    assert scored_target(_item(targets={"rgb": a})) is a
    assert scored_target(_item()) is None
    with pytest.raises(ValueError, match="none named 'target'"):
        scored_target(_item(targets={"rgb": a, "s2": b}))


def test_extractor_only_with_real_features():
    item = _item()
    assert step_records(Ext(), item, {"features": [[1.0, 2.0]]}) == {}
    got = step_records(Ext(), item, {"features": [1.0, 2.0], "real_features": [0.5, 1.0],
                                     "probabilities": [0.3, 0.7]})
    assert got == {"image_quality": image_quality_record([0.5, 1.0], [1.0, 2.0], probs=[0.3, 0.7])}


def test_detector_declares_no_block_and_unknown_names_are_error_records():
    assert Det.metric_blocks == ()

    class Odd(Recognizer):
        name = "t-odd"
        metric_blocks: ClassVar[tuple[str, ...]] = ("recognition", "nonsense")

        def process(self, batch: Batch) -> list[dict[str, Any]]:
            raise NotImplementedError

    got = step_records(Odd(), _item(classes=["a"]), {"labels": ["a"], "scores": [1.0]})
    assert got["recognition"]["units"] == 1
    assert "not a metric block" in got["nonsense"][ERROR_KEY]


def test_block_columns_one_json_cell_in_spec_order_skipping_failed_steps():
    item = _item(classes=["forest"], texts=["a forest"])
    steps = [(SimpleNamespace(id="r"), Rec()), (SimpleNamespace(id="d"), Det()),
             (SimpleNamespace(id="c"), Cap())]
    outs = {"r": {"labels": ["forest"], "scores": [1.0]}, "c": {"captions": ["a forest"]}}
    cols = block_columns(steps, item, outs)
    assert list(cols) == [BLOCK_COLUMN]
    data = json.loads(cols[BLOCK_COLUMN])
    assert list(data) == ["r", "c"] and list(data["c"]) == ["captions"]
    assert list(json.loads(block_columns(steps, item, {"c": outs["c"]})[BLOCK_COLUMN])) == ["c"]
    assert block_columns(steps, _item(), outs) == {}  # no truth: no column at all
