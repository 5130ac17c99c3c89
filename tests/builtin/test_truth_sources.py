"""The sources of truth beyond change masks: folder-classes, text, manifest columns, split folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import satcore
from satcore.builtin.sources import (
    EmptySourceError,
    FolderClassesParams,
    FolderClassesSource,
    FolderPairsParams,
    FolderPairsSource,
    ManifestParams,
    ManifestSource,
    TextParams,
    TextSource,
)
from satcore.errors import SpecError, UsageError
from satcore.testing import SourceContract

RSSCN7 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rsscn7"
RSITMD = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rsicd-rsitmd-captions" / "AMFMN"
          / "data" / "rsitmd_precomp")
needs_rsscn7 = pytest.mark.skipif(not RSSCN7.is_dir(), reason="shared RSSCN7 sample not present")


def _build(cls, params_cls, **kw):
    return cls(params_cls.model_validate(kw))


# ------------------------------------------------------------------------------------------ folder-classes

@needs_rsscn7
def test_folder_classes_on_rsscn7():
    src = _build(FolderClassesSource, FolderClassesParams, root=str(RSSCN7), rename={"aGrass": "grass"})
    refs = list(src.list_items())
    # the independent reference: the files on disk, one folder per class
    files = sorted(p for p in RSSCN7.glob("*/*.jpg"))
    assert [r.item_id for r in refs] == sorted(f"{p.parent.name}/{p.stem}" for p in files)
    assert len(refs) == 70
    item = src.load(refs[0])
    assert item.item_id == "aGrass/a001" and item.classes == ("grass",) and item.kind == "scene"
    assert item.images[0].band_names == ("red", "green", "blue") and item.images[0].array.dtype == np.uint8
    other = src.load(next(r for r in refs if r.item_id.startswith("gParking/")))
    assert other.classes == ("gParking",)  # not renamed: the folder name
    assert src.list_problems() == []


@needs_rsscn7
def test_folder_classes_rename_of_a_missing_folder_is_an_error():
    src = _build(FolderClassesSource, FolderClassesParams, root=str(RSSCN7), rename={"aGras": "grass"})
    with pytest.raises(SpecError, match="aGras"):
        list(src.list_items())


def test_folder_classes_band_order_eurosat_ms(tmp_path, h):
    # EuroSAT MS stores B8A last; band_order names the file's bands, bands reorders to ESA order
    file_order = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
    arr = np.arange(13, dtype=np.uint16)[:, None, None] * np.ones((1, 4, 4), np.uint16)
    h.write_raster(tmp_path / "AnnualCrop" / "AnnualCrop_1.tif", arr)
    esa = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
    src = _build(FolderClassesSource, FolderClassesParams, root=str(tmp_path), band_order=list(file_order),
                 bands=list(esa))
    item = src.load(next(iter(src.list_items())))
    assert item.images[0].band_names == esa
    assert [int(item.images[0].band(b)[0, 0]) for b in esa] == [file_order.index(b) for b in esa]
    with pytest.raises(ValueError, match="not in band_order"):
        FolderClassesParams.model_validate({"root": str(tmp_path), "band_order": ["a"], "bands": ["b"]})


def test_folder_classes_empty_root(tmp_path):
    with pytest.raises(EmptySourceError, match="no images"):
        list(_build(FolderClassesSource, FolderClassesParams, root=str(tmp_path)).list_items())


def test_folder_classes_bad_file_name_is_a_failed_item(tmp_path, h):
    h.write_raster(tmp_path / "forest" / "ok.png", np.zeros((3, 4, 4), np.uint8))
    h.write_raster(tmp_path / "forest" / "bad\\name.png", np.zeros((3, 4, 4), np.uint8))
    src = _build(FolderClassesSource, FolderClassesParams, root=str(tmp_path))
    assert [r.item_id for r in src.list_items()] == ["forest/ok"]
    (problem,) = src.list_problems()
    assert problem[1] == "BadItemId" and "backslash" in problem[2]


# ------------------------------------------------------------------------------------------ text

def test_text_source_csv_from_rsitmd_captions(tmp_path):
    names = (RSITMD / "test_filename.txt").read_text().split()[:10]
    caps = (RSITMD / "test_caps.txt").read_text().splitlines()[:10]
    by_file: dict[str, list[str]] = {}
    for n, c in zip(names, caps, strict=True):
        by_file.setdefault(n, []).append(c.strip())
    rows = [{"item_id": Path(n).stem, "captions": "|".join(c), "labels": Path(n).stem.split("_")[0]}
            for n, c in by_file.items()]
    path = tmp_path / "caps.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    src = _build(TextSource, TextParams, path=str(path))
    refs = list(src.list_items())
    assert [r.item_id for r in refs] == list(dict.fromkeys(Path(n).stem for n in names))
    item = src.load(refs[0])
    assert item.kind == "text" and item.images == [] and item.text is None
    assert item.texts == tuple(by_file[names[0]]) and len(item.texts) == 5
    assert item.classes == (Path(names[0]).stem.split("_")[0],)


def test_text_source_jsonl_prompts_and_split(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"item_id": "p1", "text": "a forest", "captions": ["trees", "green"], "split": "train"},
        {"item_id": "p2", "text": "a lake", "labels": "water;blue", "split": "test"},
    ]) + "\n\n")
    src = _build(TextSource, TextParams, path=str(path))
    a, b = (src.load(r) for r in src.list_items())
    assert (a.text, a.texts, a.meta["split"]) == ("a forest", ("trees", "green"), "train")
    assert (b.text, b.classes, b.meta["split"]) == ("a lake", ("water", "blue"), "test")


@pytest.mark.parametrize("content, match", [
    ('{"item_id": "../x", "text": "t"}\n', "bad item id"),
    ('{"item_id": "a", "text": "t"}\n{"item_id": "a", "text": "u"}\n', "duplicate"),
    ('{"item_id": "a"}\n', "no text, captions or labels"),
    ("not json\n", r"prompts.jsonl:1: not valid JSON"),
])
def test_text_source_errors_name_the_row(tmp_path, content, match):
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    with pytest.raises(SpecError, match=match):
        list(_build(TextSource, TextParams, path=str(path)).list_items())


def test_text_source_numbers_rows_without_ids(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("text\na forest\na lake\n")
    assert [r.item_id for r in _build(TextSource, TextParams, path=str(path)).list_items()] == [
        "row-000001", "row-000002"]


class TestTextSourceContract(SourceContract):
    component = TextSource

    def make_params(self, tmp_path):
        path = tmp_path / "p.csv"
        path.write_text("item_id,text,captions\na,a forest,trees|green\nb,a lake,water\n")
        return {"path": str(path)}


class TestFolderClassesContract(SourceContract):
    component = FolderClassesSource

    def make_params(self, tmp_path):
        rng = np.random.default_rng(0)
        from satcore.data import write_geotiff

        for cls in ("forest", "water"):
            for i in range(2):
                write_geotiff(tmp_path / "classes" / cls / f"{i}.tif",
                              rng.integers(0, 255, (3, 8, 8), dtype=np.uint8))
        return {"root": str(tmp_path / "classes")}


# ------------------------------------------------------------------------------------------ manifest

def test_manifest_labels_captions_target_text(tmp_path, h):
    h.write_raster(tmp_path / "img" / "a.png", np.zeros((3, 8, 8), np.uint8))
    target = np.arange(13 * 64, dtype=np.uint16).reshape(13, 8, 8)
    h.write_raster(tmp_path / "s2" / "a.tif", target)
    (tmp_path / "m.csv").write_text(
        "item_id,a,labels,captions,target,text,split\n"
        "a,img/a.png,forest; river ;,a forest|a river by trees,s2/a.tif,make it spring,val\n")
    src = _build(ManifestSource, ManifestParams, path=str(tmp_path / "m.csv"))
    (ref,) = src.list_items()
    item = src.load(ref)
    assert item.classes == ("forest", "river") and item.texts == ("a forest", "a river by trees")
    assert item.text == "make it spring" and item.meta["split"] == "val"
    assert item.targets is not None and np.array_equal(item.targets["target"].array, target)
    assert item.targets["target"].band_names[8] == "B8A"  # a 13-band target gets Sentinel-2 names


def test_manifest_json_lists_and_bad_id(tmp_path, h):
    h.write_raster(tmp_path / "a.png", np.zeros((3, 8, 8), np.uint8))
    (tmp_path / "m.json").write_text(json.dumps([{"a": "a.png", "labels": ["x", "y"], "captions": ["c"]}]))
    item = next(iter(_load_all(tmp_path / "m.json")))
    assert item.classes == ("x", "y") and item.texts == ("c",)
    (tmp_path / "bad.json").write_text(json.dumps([{"a": "a.png", "item_id": "../../escape"}]))
    with pytest.raises(SpecError, match=r"bad.json: row 2: bad item id '../../escape'"):
        list(_build(ManifestSource, ManifestParams, path=str(tmp_path / "bad.json")).list_items())


def _load_all(path):
    src = _build(ManifestSource, ManifestParams, path=str(path))
    return [src.load(r) for r in src.list_items()]


# ------------------------------------------------------------------------------------------ split folders

def _levir_release(root, h):
    """A tiny LEVIR-CD release tree: train/ val/ test/, each with A/ B/ label/ (same stems across splits)."""
    ids = {}
    for k, split in enumerate(("train", "val", "test")):
        ids[split] = h.make_pairs(root / split, 4 if split == "train" else 2, seed=k)
    return ids


def test_folder_pairs_over_split_folders(tmp_path, h):
    ids = _levir_release(tmp_path / "levir", h)
    src = _build(FolderPairsSource, FolderPairsParams, root=str(tmp_path / "levir"))
    refs = list(src.list_items())
    expected = [f"{s}/{i}" for s in ("train", "val", "test") for i in ids[s]]
    assert [r.item_id for r in refs] == expected  # unique although stems repeat across splits
    assert [r.meta["split"] for r in refs] == [i.split("/")[0] for i in expected]
    assert len({r.meta["tile"] for r in refs}) == len(refs)
    item = src.load(refs[-1])
    assert item.label is not None and item.meta["split"] == "test"
    none = _build(FolderPairsSource, FolderPairsParams, root=str(tmp_path / "levir"), splits="none")
    with pytest.raises(EmptySourceError, match="is not a folder"):
        list(none.list_items())


def test_folder_pairs_plain_layout_is_unchanged(tmp_path, h, levir_dir):
    plain = _build(FolderPairsSource, FolderPairsParams, root=str(levir_dir))
    assert plain.split_folders() == [] and all("split" not in r.meta for r in plain.list_items())
    with pytest.raises(EmptySourceError, match="splits: folders"):
        list(_build(FolderPairsSource, FolderPairsParams, root=str(levir_dir), splits="folders").list_items())


def test_predefined_split_run_scores_val_and_test_apart(tmp_path, h, pm):
    root = tmp_path / "levir"
    _levir_release(root, h)
    spec = h.spec_dict(root, tmp_path / "out", evaluate={"bootstrap": 0, "split": {"by": "split"}})
    res = satcore.run(spec, progress=False, pm=pm)
    assert res.items_failed == 0
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert dict(zip(df["item_id"], df["split"], strict=True)) == {
        i: i.split("/")[0] for i in df["item_id"]}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["steps"]["diff"]) == {"train", "val", "test"}
    assert metrics["class_balance"]["splits"]["val"]["items"] == 2


def test_predefined_split_with_an_unknown_value_is_a_usage_error(tmp_path, h, pm):
    root = tmp_path / "levir"
    _levir_release(root, h)
    spec = h.spec_dict(root, tmp_path / "out", evaluate={"split": {"by": "tile"}})
    with pytest.raises(UsageError, match=r"`by: tile` needs each item's `tile` to be one of train, val, "
                       r"test: item 'train/img000' has 'train/img000'.*\(and 3 more\)") as exc:
        satcore.run(spec, progress=False, pm=pm)
    assert exc.value.exit_code == 2
