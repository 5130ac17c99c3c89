"""Training-side augmentation: geometry, seeding, class balance, and no test-split leakage in the fit pass."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore import hookimpl
from satcore.components import Batch, Detection, Detector, Extractor
from satcore.data import Item, Raster
from satcore.evaluate.augment import augment_item, copies_per_class, item_rng
from satcore.evaluate.split import assign_splits

SCALE, ROTATE = (0.5, 1.5), (-90.0, 90.0)


def square_item(item_id: str = "tile_0000_0000", size: int = 64,
                box: tuple[int, int, int, int] = (24, 36, 20, 40),
                change: bool = True) -> Item:
    """A pair whose after-image and mask share one planted bright rectangle (rows r0:r1, cols c0:c1)."""
    r0, r1, c0, c1 = box
    a = np.full((3, size, size), 40, np.uint8)
    b = a.copy()
    mask = np.zeros((size, size), bool)
    if change:
        b[:, r0:r1, c0:c1] = 240
        mask[r0:r1, c0:c1] = True
    return Item(item_id, [Raster(a), Raster(b)], label=mask, meta={"tile": "tile"})


def iou(x: np.ndarray, y: np.ndarray) -> float:
    return float((x & y).sum() / max((x | y).sum(), 1))


# ------------------------------------------------------------------------------------------ geometry

@pytest.mark.parametrize("k", range(6))
def test_image_and_mask_transformed_alike(k: int) -> None:
    item = square_item()
    aug = augment_item(item, item_rng(0, item.item_id, k), SCALE, ROTATE, k)
    bright = aug.images[1].array[0] > 140  # the planted rectangle, wherever the transform put it
    assert aug.label is not None and aug.label.shape == bright.shape
    # interpolation differs at the edges only (bilinear image, nearest-neighbour mask)
    assert iou(bright, aug.label) > 0.85
    s, angle = aug.meta["scale"], aug.meta["rotate"]
    assert SCALE[0] <= s <= SCALE[1] and ROTATE[0] <= angle <= ROTATE[1]
    # the copy keeps its original's frame, so batched components can stack originals and copies
    assert all(r.array.shape == o.array.shape for r, o in zip(aug.images, item.images, strict=True))
    # the before image (uniform) stays uniform and keeps its dtype; no change planted there
    assert aug.images[0].array.dtype == np.uint8
    assert np.all(aug.images[0].array == 40)
    assert aug.image_label == int(aug.label.any())
    assert aug.meta["augmented_from"] == item.item_id and aug.item_id == f"{item.item_id}#aug{k}"


@pytest.mark.parametrize("scale", [1.0, 1.2, 1.5])
@pytest.mark.parametrize("angle", [-80.0, -30.0, 0.0, 45.0, 90.0])
def test_area_scales_with_the_square_of_the_scale(scale: float, angle: float) -> None:
    # independent of how the transform is implemented: a similarity scales areas by s² and keeps the centre
    item = square_item()
    aug = augment_item(item, item_rng(0, item.item_id, 0), (scale, scale), (angle, angle), 0)
    assert aug.label is not None and item.label is not None
    expected = item.label.sum() * scale * scale
    assert abs(aug.label.sum() - expected) / expected < 0.1
    ys, xs = np.nonzero(aug.label)
    centre = 31.5 + (np.array([29.5, 29.5]) - 31.5) * scale  # rotated about the frame centre: distance kept
    assert abs(np.hypot(ys.mean() - 31.5, xs.mean() - 31.5) - np.hypot(*(centre - 31.5))) < 1.0
    bright = aug.images[1].array[0] > 140
    assert iou(bright, aug.label) > 0.85


def test_both_images_get_the_same_transform() -> None:
    item = square_item()
    item.images[0] = item.images[1].with_array(item.images[1].array.copy())  # A == B
    aug = augment_item(item, item_rng(3, item.item_id, 0), SCALE, ROTATE, 0)
    np.testing.assert_array_equal(aug.images[0].array, aug.images[1].array)


def test_rotation_moves_an_off_centre_square() -> None:
    # a square in the top-left quadrant; a 90° rotation about the centre must move it to another quadrant
    item = square_item(box=(4, 20, 4, 20))
    aug = augment_item(item, item_rng(0, item.item_id, 0), (1.0, 1.0), (90.0, 90.0), 0)
    assert aug.label is not None
    assert iou(aug.label, item.label) == 0.0  # type: ignore[arg-type]
    ys, xs = np.nonzero(aug.label)
    assert (ys.mean() < 32) != (xs.mean() < 32)  # top-right or bottom-left quadrant
    bright = aug.images[1].array[0] > 140
    assert iou(bright, aug.label) > 0.95


def test_image_label_follows_transformed_mask() -> None:
    # a tiny change at the corner: a strong zoom-in about the centre pushes it out of the frame
    item = square_item(box=(0, 2, 0, 2))
    aug = augment_item(item, item_rng(0, item.item_id, 0), (1.5, 1.5), (0.0, 0.0), 0)
    assert aug.label is not None and not aug.label.any()
    assert aug.image_label == 0  # not the original item's 1


def test_unlabelled_item_keeps_its_image_label() -> None:
    item = square_item()
    item = Item(item.item_id, item.images, image_label=1, meta={})
    aug = augment_item(item, item_rng(0, item.item_id, 0), SCALE, ROTATE, 0)
    assert aug.label is None and aug.image_label == 1


# ------------------------------------------------------------------------------------------ seeding

def test_same_seed_same_copy_and_different_seed_different() -> None:
    item = square_item()
    one = augment_item(item, item_rng(7, item.item_id, 0), SCALE, ROTATE, 0)
    two = augment_item(item, item_rng(7, item.item_id, 0), SCALE, ROTATE, 0)
    np.testing.assert_array_equal(one.images[1].array, two.images[1].array)
    np.testing.assert_array_equal(one.label, two.label)  # type: ignore[arg-type]
    other_seed = augment_item(item, item_rng(8, item.item_id, 0), SCALE, ROTATE, 0)
    other_copy = augment_item(item, item_rng(7, item.item_id, 1), SCALE, ROTATE, 1)
    other_item = item_rng(7, "another_0000_0000", 0).uniform(*SCALE)
    assert other_seed.meta["scale"] != one.meta["scale"]
    assert not np.array_equal(other_seed.images[1].array, one.images[1].array)
    assert other_copy.meta["scale"] != one.meta["scale"]
    assert other_item != one.meta["scale"]


def test_negative_seed_is_accepted() -> None:
    assert item_rng(-1, "x", 0).uniform() != item_rng(1, "x", 0).uniform()


# ------------------------------------------------------------------------------------------ balance

def closest_minor_copies(n_minor: int, n_major: int, copies: int) -> set[int]:
    """Every copy count c >= copies for the minority that brings n_minor * (1 + c) nearest the majority's
    n_major * (1 + copies): what "classes end up about even" means (several when two are equally near)."""
    target = n_major * (1 + copies)
    gap = {c: abs(n_minor * (1 + c) - target) for c in range(copies, target + 1)}
    return {c for c, g in gap.items() if g == min(gap.values())}


@pytest.mark.parametrize(("n0", "n1", "copies", "minor_copies"),
                         [(80, 20, 1, 7),     # 160 / 20 = 8 items' worth
                          (20, 80, 1, 7),     # the minority is class 0
                          (90, 10, 0, 8),     # no copies asked: the minority still gets some
                          (50, 50, 2, 2),     # already even
                          (37, 5, 3, 29),     # 148 / 5 = 29.6 → 30
                          (80, 35, 1, 4),     # 160 / 35 = 4.57 → 5
                          (61, 9, 1, 13),     # 122 / 9 = 13.56 → 14
                          (7, 3, 0, 1),       # 7 / 3 = 2.33 → 2
                          (100, 30, 2, 9)])   # 300 / 30 = 10 exactly
def test_balance_gives_minority_the_copies_that_even_the_classes(n0: int, n1: int, copies: int,
                                                                 minor_copies: int) -> None:
    labels = np.array([0] * n0 + [1] * n1)
    per = copies_per_class(labels, copies, balance=True)
    minor, major = (1, 0) if n1 < n0 else (0, 1)
    n_minor, n_major = min(n0, n1), max(n0, n1)
    assert closest_minor_copies(n_minor, n_major, copies) == {minor_copies}  # the table is right
    assert per == {major: copies, minor: minor_copies}
    # so the classes end up within half a minority item's copies of each other
    assert abs(n_minor * (1 + per[minor]) - n_major * (1 + per[major])) <= n_minor / 2


def test_balance_on_an_exact_tie_takes_one_of_the_nearest() -> None:
    # 30 vs 20 items, no copies: 20 * 1 and 20 * 2 are both 10 away from 30
    per = copies_per_class(np.array([0] * 30 + [1] * 20), 0, balance=True)
    assert closest_minor_copies(20, 30, 0) == {0, 1}
    assert per[0] == 0 and per[1] in {0, 1}


def test_no_balance_gives_everyone_the_same() -> None:
    assert copies_per_class(np.array([0] * 9 + [1]), 2, balance=False) == {0: 2, 1: 2}


# ------------------------------------------------------------------------------- fit pass, end to end

def write_png(path: Path, array: np.ndarray) -> None:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array if array.ndim == 3 else array[None]
    with rasterio.open(path, "w", driver="PNG", height=arr.shape[1], width=arr.shape[2], count=arr.shape[0],
                       dtype="uint8") as dst:
        dst.write(arr)


def make_tiles(root: Path, tiles: int = 10, crops: int = 3, changed_tiles: int = 3, size: int = 24) -> None:
    """``tiles`` source tiles with ``crops`` crops each (LEVIR-CD style ``<tile>_<row>_<col>`` names)."""
    rng = np.random.default_rng(0)
    for t in range(tiles):
        for c in range(crops):
            stem = f"tile{t:02d}_{c * size:04d}_0000"
            a = rng.integers(0, 120, (3, size, size), dtype=np.uint8)
            b = a.copy()
            mask = np.zeros((size, size), np.uint8)
            if t < changed_tiles:
                b[:, 6:16, 6:16] = 250
                mask[6:16, 6:16] = 255
            write_png(root / "A" / f"{stem}.png", a)
            write_png(root / "B" / f"{stem}.png", b)
            write_png(root / "label" / f"{stem}.png", mask)


class RecordingDetector(Detector):
    """Remembers every item id (and label) it was fitted on."""

    name = "recording"
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    fittable = True
    seen: ClassVar[list[tuple[str, int, str]]] = []
    #: item id → (scale, rotate, digest of the after image's pixels) of every item fitted on
    looks: ClassVar[dict[str, tuple[Any, Any, str]]] = {}

    def fit_records(self, batch: Batch) -> list[Any]:
        return [(it.item_id, it.meta.get("augmented_from"), it.images[0].shape, it.meta.get("scale"),
                 it.meta.get("rotate"), hashlib.sha256(it.images[1].array.tobytes()).hexdigest())
                for it in batch]

    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        assert groups is not None
        RecordingDetector.seen = [(r[0], int(lab), str(g))
                                  for r, lab, g in zip(records, labels, groups, strict=True)]
        RecordingDetector.looks = {r[0]: (r[3], r[4], r[5]) for r in records}
        return {}

    def save_state(self, path: Path) -> None:
        path.write_text(json.dumps([s[0] for s in self.seen]))

    def process(self, batch: Batch) -> list[Detection]:
        return [Detection(score=1.0, label=1) for _ in batch]


def recording_pm() -> Any:
    from satcore.plugins import get_plugin_manager

    plugin = types.ModuleType("recording_plugin")

    @hookimpl
    def satcore_register_detectors() -> list[type[Detector]]:
        return [RecordingDetector]

    plugin.satcore_register_detectors = satcore_register_detectors  # type: ignore[attr-defined]
    pm = get_plugin_manager(fresh=True, entrypoints=False)
    pm.register_plugin(plugin, "recording")
    return pm


TILE_SPLIT: dict[str, Any] = {"test": 0.3, "group_by": "tile"}


def run_recording(tmp_path: Path, augment: dict[str, Any] | None, seed: int = 0,
                  split: dict[str, Any] | None = TILE_SPLIT) -> Any:
    from satcore.engine import run_pipeline

    RecordingDetector.seen, RecordingDetector.looks = [], {}
    data = tmp_path / "data"
    if not data.exists():
        make_tiles(data)
    spec = {"version": 1, "seed": seed, "source": {"type": "folder-pairs", "root": str(data)},
            "steps": [{"id": "rec", "type": "recording"}],
            "evaluate": {**({"split": split} if split is not None else {}), "bootstrap": 0,
                         **({"augment": augment} if augment is not None else {})},
            "output": {"dir": str(tmp_path / f"run-{seed}-{augment is not None}"), "maps": False,
                       "report": False},
            "execution": {"batch_size": 4, "loader_workers": 0}}
    return run_pipeline(spec, pm=recording_pm(), progress=False)


def test_fit_sees_train_side_and_its_copies_only(tmp_path: Path) -> None:
    res = run_recording(tmp_path, {"copies": 1, "balance": True})
    table = res.results()
    split = dict(zip(table["item_id"], table["split"], strict=True))
    tile = {i: i.split("_")[0] for i in split}
    test_ids = {i for i, s in split.items() if s == "test"}
    train_ids = {i for i, s in split.items() if s == "train"}
    assert test_ids and train_ids
    # crops of one tile never straddle the split
    assert {tile[i] for i in test_ids}.isdisjoint({tile[i] for i in train_ids})
    seen = RecordingDetector.seen
    originals = {i.split("#aug")[0] for i, _, _ in seen}
    copies = [i for i, _, _ in seen if "#aug" in i]
    assert copies, "augmentation produced no copies"
    # nothing of the test split — neither an item nor an augmented copy of one — was trained on
    assert originals.isdisjoint(test_ids)
    assert originals == train_ids
    # the groups handed to fit are source tiles, copies included
    assert all(g == tile[i.split("#aug")[0]] for i, _, g in seen)
    # every train item was seen once unaugmented
    assert sorted(i for i, _, _ in seen if "#aug" not in i) == sorted(train_ids)
    # balance: the minority class (changed) got more copies per item than the majority
    lab = {i: int(table.set_index("item_id").loc[i, "truth.change"]) for i in train_ids}
    n_copies = {i: sum(1 for c in copies if c.split("#aug")[0] == i) for i in train_ids}
    changed = [n_copies[i] for i in train_ids if lab[i] == 1]
    unchanged = [n_copies[i] for i in train_ids if lab[i] == 0]
    assert changed and unchanged
    assert min(changed) > max(unchanged) == 1
    labels = [lab_ for _, lab_, _ in seen]
    assert abs(sum(labels) - (len(labels) - sum(labels))) <= max(len(changed), 1) * 2


def test_fit_without_augment_sees_exactly_the_train_split(tmp_path: Path) -> None:
    res = run_recording(tmp_path, None)
    table = res.results()
    train_ids = set(table.loc[table["split"] == "train", "item_id"])
    assert sorted(i for i, _, _ in RecordingDetector.seen) == sorted(train_ids)


def test_augmented_fit_is_reproducible(tmp_path: Path) -> None:
    run_recording(tmp_path, {"copies": 2, "balance": False})
    first = list(RecordingDetector.seen)
    assert sum("#aug" in i for i, _, _ in first) == 2 * sum("#aug" not in i for i, _, _ in first)
    (tmp_path / "again").mkdir()
    run_recording(tmp_path / "again", {"copies": 2, "balance": False})
    assert first == RecordingDetector.seen


def test_copies_of_one_item_differ_and_repeat_with_the_seed(tmp_path: Path) -> None:
    aug = {"copies": 3, "balance": False, "scale": [0.6, 1.4], "rotate": [-60.0, 60.0]}
    split = {**TILE_SPLIT, "seed": 0}  # the same train items whatever the run seed
    run_recording(tmp_path / "a", aug, seed=5, split=split)
    first = dict(RecordingDetector.looks)
    by_source: dict[str, list[tuple[Any, Any, str]]] = {}
    for item_id, look in first.items():
        if "#aug" in item_id:
            by_source.setdefault(item_id.split("#aug")[0], []).append(look)
    assert by_source and all(len(v) == 3 for v in by_source.values())
    for source, looks in by_source.items():
        scales, angles, pixels = zip(*looks, strict=True)
        # each copy of an item is a transform of its own: scale, angle and pixels all differ
        assert len(set(scales)) == len(set(angles)) == len(set(pixels)) == 3, source
        assert all(0.6 <= s <= 1.4 for s in scales) and all(-60 <= a <= 60 for a in angles)
        assert first[source][2] not in pixels  # and none is the original
    run_recording(tmp_path / "b", aug, seed=5, split=split)
    assert RecordingDetector.looks == first  # the same seed gives the same copies
    run_recording(tmp_path / "c", aug, seed=6, split=split)
    other = RecordingDetector.looks
    assert other.keys() == first.keys()
    assert all(other[i][0] != first[i][0] and other[i][2] != first[i][2] for i in first if "#aug" in i)


@pytest.mark.parametrize("split", [{"test": 0.3, "group_by": None}, None],
                         ids=["group_by-null", "no-split"])
def test_copies_keep_their_source_group_without_group_by(tmp_path: Path,
                                                         split: dict[str, Any] | None) -> None:
    """Without ``group_by`` each item is its own group, and a copy belongs to its source item's group."""
    run_recording(tmp_path, {"copies": 2, "balance": False}, split=split)
    seen = RecordingDetector.seen
    copies = [(i, g) for i, _, g in seen if "#aug" in i]
    assert copies and len(copies) == 2 * (len(seen) - len(copies))
    assert all(g == i for i, _, g in seen if "#aug" not in i)
    assert all(g == i.split("#aug")[0] for i, g in copies)


def test_grouped_split_keeps_tiles_together() -> None:
    from satcore.data import ItemRef

    refs = [ItemRef(f"t{t}_{c}", meta={"tile": f"t{t}"}) for t in range(20) for c in range(4)]
    for seed in range(5):
        names = assign_splits(refs, 0.3, "tile", seed)
        by_tile: dict[str, set[str]] = {}
        for r, s in zip(refs, names, strict=True):
            by_tile.setdefault(r.meta["tile"], set()).add(s)
        assert all(len(v) == 1 for v in by_tile.values())
        assert 0.2 <= names.count("test") / len(names) <= 0.4


# ------------------------------------------------------------------------------- shared fit pass

class CountingExtractor(Extractor):
    """Counts which items it processed."""

    name = "counting"
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    produces: ClassVar[tuple[str, ...]] = ("features",)
    calls: ClassVar[list[str]] = []

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        CountingExtractor.calls += [it.item_id for it in batch]
        return [{"features": [float(it.images[1].array.mean())]} for it in batch]


class FitADetector(Detector):
    """Fittable on features; scores 1 once fitted, 0 before."""

    name = "fit-a"
    consumes: ClassVar[tuple[str, ...]] = ("features",)
    fittable = True
    fitted_items: ClassVar[dict[str, int]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fitted = False

    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        self.fitted = True
        FitADetector.fitted_items[self.step_id] = len(records)
        return {}

    def process(self, batch: Batch) -> list[Detection]:
        return [Detection(score=1.0 if self.fitted else 0.0, label=1) for _ in batch]


class FitBDetector(Detector):
    """Fittable on a detector's output: records what its upstream scored during the fit pass."""

    name = "fit-b"
    consumes: ClassVar[tuple[str, ...]] = ("change",)
    fittable = True
    upstream_scores: ClassVar[list[float]] = []

    def fit_records(self, batch: Batch) -> list[Any]:
        return [inp.score for _it, inp in batch.with_inputs()]

    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        FitBDetector.upstream_scores = list(records)
        return {}

    def process(self, batch: Batch) -> list[Detection]:
        return [Detection(score=0.5, label=0) for _ in batch]


def test_fittable_steps_share_one_pass_and_chained_ones_wait(tmp_path: Path) -> None:
    from satcore.engine import run_pipeline
    from satcore.plugins import get_plugin_manager

    plugin = types.ModuleType("fit_pass_plugin")

    @hookimpl
    def satcore_register_extractors() -> list[type[Extractor]]:
        return [CountingExtractor]

    @hookimpl
    def satcore_register_detectors() -> list[type[Detector]]:
        return [FitADetector, FitBDetector]

    plugin.satcore_register_extractors = satcore_register_extractors  # type: ignore[attr-defined]
    plugin.satcore_register_detectors = satcore_register_detectors  # type: ignore[attr-defined]
    pm = get_plugin_manager(fresh=True, entrypoints=False)
    pm.register_plugin(plugin, "fit-pass")
    make_tiles(tmp_path / "data")
    CountingExtractor.calls, FitADetector.fitted_items, FitBDetector.upstream_scores = [], {}, []
    spec = {"version": 1, "source": {"type": "folder-pairs", "root": str(tmp_path / "data")},
            "steps": [{"id": "feats", "type": "counting"},
                      {"id": "a1", "type": "fit-a", "input": "feats"},
                      {"id": "a2", "type": "fit-a", "input": "feats"},
                      {"id": "b", "type": "fit-b", "input": "a1"}],
            "evaluate": {"split": {"test": 0.3, "group_by": "tile"}, "bootstrap": 0,
                         "augment": {"copies": 1, "balance": False}},
            "output": {"dir": str(tmp_path / "run"), "maps": False, "report": False},
            "execution": {"batch_size": 4, "loader_workers": 0}}
    res = run_pipeline(spec, pm=pm, progress=False)
    table = res.results()
    train = set(table.loc[table["split"] == "train", "item_id"])
    test = set(table.loc[table["split"] == "test", "item_id"])
    counts = {i: CountingExtractor.calls.count(i) for i in train | test}
    copies = [c for c in CountingExtractor.calls if "#aug" in c]
    # a1 and a2 share one pass; b waits for a1 to be fitted (a second pass); then the streaming pass
    assert {counts[i] for i in train} == {3}
    assert {counts[i] for i in test} == {1}
    assert len(copies) == 2 * len(train) and len(set(copies)) == len(train)
    assert FitADetector.fitted_items == {"a1": 2 * len(train), "a2": 2 * len(train)}
    # b's training records were made by the fitted a1
    assert FitBDetector.upstream_scores and set(FitBDetector.upstream_scores) == {1.0}


def test_nothing_to_fit_says_why(tmp_path: Path) -> None:
    """No labels read → the stop names the cause and the way out, not a generic "check the labels"."""
    import shutil

    from satcore.engine import run_pipeline
    from satcore.errors import RunStopped

    data = tmp_path / "data"
    make_tiles(data)
    shutil.rmtree(data / "label")
    spec = {"version": 1, "source": {"type": "folder-pairs", "root": str(data), "labels": "optional"},
            "steps": [{"id": "rec", "type": "recording"}],
            "evaluate": {"split": {"test": 0.3, "group_by": "tile"}, "bootstrap": 0},
            "output": {"dir": str(tmp_path / "run"), "maps": False, "report": False},
            "execution": {"batch_size": 4, "loader_workers": 0}}
    with pytest.raises(RunStopped) as ei:
        run_pipeline(spec, pm=recording_pm(), progress=False)
    msg = str(ei.value)
    assert "step 'rec' needs labelled training items to fit, but none of the" in msg
    assert "training items read has a label" in msg and "`<root>/label/`" in msg
    assert "fixed `threshold:`" in msg
