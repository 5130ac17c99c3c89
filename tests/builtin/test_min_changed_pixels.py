"""folder-pairs `min_changed_pixels`: an image is "change" only with at least that many changed pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satcore.builtin.sources import FolderPairsParams, FolderPairsSource
from satcore.evaluate.augment import augment_item, item_rng
from tests.evaluate.test_augment import write_png


def _write(root: Path, changed: dict[str, int]) -> None:
    for name, n in changed.items():
        a = np.zeros((3, 8, 8), np.uint8)
        mask = np.zeros((8, 8), np.uint8)
        mask.ravel()[:n] = 255
        write_png(root / "A" / f"{name}.png", a)
        write_png(root / "B" / f"{name}.png", a)
        write_png(root / "label" / f"{name}.png", mask)


@pytest.mark.parametrize("least", [1, 3, 5])
def test_image_label_counts_changed_pixels(tmp_path, least):
    counts = {"none": 0, "one": 1, "three": 3, "four": 4, "ten": 10}
    _write(tmp_path, counts)
    src = FolderPairsSource(FolderPairsParams(root=str(tmp_path), min_changed_pixels=least))
    got = {ref.item_id: src.load(ref).image_label for ref in src.list_items()}
    assert got == {k: int(n >= least) for k, n in counts.items()}


def test_augmented_copies_follow_the_same_rule(tmp_path):
    _write(tmp_path, {"four": 4})
    src = FolderPairsSource(FolderPairsParams(root=str(tmp_path), min_changed_pixels=5))
    item = src.load(src.list_items()[0])
    copy = augment_item(item, item_rng(0, item.item_id, 0), (1.0, 1.0), (0.0, 0.0), 0)
    assert item.image_label == 0 and copy.image_label == 0 and copy.label.sum() == 4
