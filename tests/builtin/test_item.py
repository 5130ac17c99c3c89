"""The Item data model: truth beyond change masks, text-only items, and the item-id rule."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from satcore.data import Item, Raster, check_item_id, item_id_problem
from satcore.errors import ComponentError


def _raster(bands=3, size=4):
    return Raster(np.zeros((bands, size, size), np.uint8))


def test_existing_constructor_calls_keep_working():
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True
    item = Item("p", [_raster(), _raster()], label=mask, meta={"tile": "t"})
    assert (item.kind, item.image_label, item.classes, item.texts, item.targets, item.text) == (
        "pair", 1, None, None, None, None)
    assert Item("s", [_raster()]).kind == "scene"
    assert Item("x", [_raster()] * 3).kind == "series"
    assert Item("bad", [], meta={"kind": "scene"}).kind == "scene"  # meta["kind"] still wins


def test_truth_fields_are_normalised():
    item = Item("s", [_raster()], classes=["forest", "water"], texts="a forest",
                targets={"target": _raster(13)})
    assert item.classes == ("forest", "water") and item.texts == ("a forest",)
    assert item.targets is not None and item.targets["target"].band_names[0] == "B01"
    with pytest.raises(TypeError, match="classes must be strings"):
        Item("s", [_raster()], classes=[1, 2])
    with pytest.raises(TypeError, match="targets must map names"):
        Item("s", [_raster()], targets={"target": np.zeros((3, 4, 4))})


def test_text_only_item():
    item = Item("t", text="a satellite image of a harbour", texts=["a harbour"])
    assert item.kind == "text" and item.images == []
    with pytest.raises(ComponentError, match="no images"):
        _ = item.reference
    with pytest.raises(ComponentError, match="image pair"):
        item.pair_arrays()
    again = pickle.loads(pickle.dumps(item))  # items travel to loader processes and dask workers
    assert again == item


@pytest.mark.parametrize("bad", ["", "../x", "a/../../b", "/etc/passwd", "C:evil", "a\\b", "a\x00b", "a//b",
                                 "a/", ".", "line\nbreak", 3])
def test_bad_item_ids(bad):
    assert item_id_problem(bad) is not None
    with pytest.raises(ComponentError, match="bad item id"):
        check_item_id(bad, "test.csv row 2")


@pytest.mark.parametrize("good", ["a001", "train/0001", "aGrass/a001", "x.y_z-1", "ünïcode"])
def test_good_item_ids(good):
    assert item_id_problem(good) is None and check_item_id(good) == good
