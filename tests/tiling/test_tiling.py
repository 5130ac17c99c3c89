"""Whole-scene tiling: the mosaic equals the whole-image result, a valid COG, windowed reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

H, W, SIZE, OVERLAP = 500, 600, 128, 8


def make_pair(root: Path, seed: int = 0) -> None:
    """A 600×500 georeferenced RGB pair with two changed rectangles and a label."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    for d in ("A", "B", "label"):
        (root / d).mkdir(parents=True, exist_ok=True)
    a = rng.normal(100, 20, (3, H, W)).clip(0, 255).astype(np.uint8)
    lab = np.zeros((H, W), np.uint8)
    lab[100:220, 150:400] = 1
    lab[300:450, 20:90] = 1
    b = a.astype(int) + rng.normal(0, 6, a.shape)
    b[:, lab.astype(bool)] += rng.normal(50, 15, (3, int(lab.sum())))
    b = b.clip(0, 255).astype(np.uint8)
    prof = {"driver": "GTiff", "height": H, "width": W, "dtype": "uint8", "crs": "EPSG:32633",
            "transform": from_origin(500000, 5000000, 10, 10), "tiled": True, "blockxsize": 128,
            "blockysize": 128}
    for name, arr in (("A", a), ("B", b), ("label", lab[None])):
        with rasterio.open(root / name / "scene.tif", "w", count=arr.shape[0], **prof) as ds:
            ds.write(arr)


STEPS = [
    {"id": "cva", "type": "cva"},  # z-score normalisation and Otsu: scene statistics
    {"id": "diff", "type": "image-diff", "normalise": "match", "smooth": 2.0},
    {"id": "pk", "type": "pca-kmeans", "sample_step": 4, "morphology": 1},
]


def spec(tmp: Path, name: str, tiling: dict[str, int] | None, steps: list[dict[str, Any]] = STEPS) -> Path:
    source: dict[str, Any] = {"type": "folder-pairs", "root": "data"}
    if tiling:
        source["tiling"] = tiling
    doc = {"version": 1, "name": name, "seed": 0, "source": source, "steps": steps,
           "output": {"dir": f"runs/{name}", "maps": True, "report": False}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiled and one whole-image run of the same pipeline on the same pair."""
    import satcore

    tmp = tmp_path_factory.mktemp("tiling")
    make_pair(tmp / "data")
    satcore.run(spec(tmp, "tiled", {"size": SIZE, "overlap": OVERLAP}), progress=False)
    satcore.run(spec(tmp, "whole", None), progress=False)
    return tmp


def read(path: Path) -> tuple[np.ndarray, Any]:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(), ds


@pytest.mark.slow  # two runs of three detectors (≈ 10 s on the shared CI machine)
def test_mosaic_equals_the_whole_image_result(runs: Path) -> None:
    import rasterio

    with rasterio.open(runs / "runs/tiled/mosaic/scene.tif") as m, \
            rasterio.open(runs / "runs/whole/maps/scene.tif") as w:
        assert m.descriptions == w.descriptions == ("cva.score", "cva.label", "diff.score", "diff.label",
                                                    "pk.score", "pk.label")
        mosaic, whole = m.read(), w.read()
    assert not np.isnan(mosaic).any()  # every tile placed
    for k, name in enumerate(("cva.score", "cva.label", "diff.score", "diff.label", "pk.score", "pk.label")):
        np.testing.assert_array_equal(mosaic[k], whole[k], err_msg=name)
    assert 0.05 < whole[1].mean() < 0.5  # the maps show change (a test that could fail)


@pytest.mark.slow  # two runs of three detectors (≈ 10 s on the shared CI machine)
def test_otsu_threshold_of_the_scene_is_the_whole_image_threshold(runs: Path) -> None:
    import pandas as pd

    tiled = pd.read_parquet(runs / "runs/tiled/results.parquet")
    whole = pd.read_parquet(runs / "runs/whole/results.parquet")
    assert len(tiled) == 4 * 5 and len(whole) == 1
    assert sorted(tiled["item_id"])[:2] == ["scene/r0_c0", "scene/r0_c1"]
    t = whole["cva.magnitude_threshold"].iloc[0]
    np.testing.assert_allclose(tiled["cva.magnitude_threshold"], t, rtol=1e-9)
    # pooled pixel metrics agree as well (each scene pixel counted once, truth cropped to the tiles)
    import json

    mt = json.loads((runs / "runs/tiled/metrics.json").read_text())["steps"]
    mw = json.loads((runs / "runs/whole/metrics.json").read_text())["steps"]
    for step in ("cva", "diff", "pk"):
        for key in ("f1", "iou", "auc"):
            assert mt[step]["all"]["pixel"][key] == pytest.approx(mw[step]["all"]["pixel"][key], abs=1e-9)


@pytest.mark.slow  # two runs of three detectors (≈ 10 s on the shared CI machine)
def test_mosaic_is_a_cog_with_the_input_georeference(runs: Path) -> None:
    import rasterio

    with rasterio.open(runs / "runs/tiled/mosaic/scene.tif") as m, \
            rasterio.open(runs / "data/A/scene.tif") as a:
        assert m.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert m.profile["tiled"] and m.block_shapes[0] == (256, 256)  # is_tiled is deprecated
        assert m.overviews(1)  # overview levels present
        assert (m.width, m.height) == (a.width, a.height)
        assert m.crs == a.crs and m.transform == a.transform
    leftovers = [p.name for p in (runs / "runs/tiled/mosaic").iterdir() if p.name != "scene.tif"]
    assert leftovers == []


@pytest.mark.slow  # two runs of three detectors (≈ 10 s on the shared CI machine)
def test_tile_maps_carry_their_window_transform(runs: Path) -> None:
    import rasterio

    with rasterio.open(runs / "runs/tiled/maps/scene/r1_c2.tif") as t, \
            rasterio.open(runs / "data/A/scene.tif") as a:
        assert (t.height, t.width) == (SIZE, SIZE)  # cropped back to the core
        assert t.transform == a.transform * a.transform.translation(2 * SIZE, SIZE)


def test_tiles_are_read_by_window_never_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import satcore.builtin.folder_pairs as fp
    import satcore.data
    from satcore.engine.steps import Engine
    from satcore.engine.tiling import prepare_tiles
    from satcore.spec import load_pipeline

    make_pair(tmp_path / "data")
    pipeline = load_pipeline(spec(tmp_path, "spy", {"size": SIZE, "overlap": 4}))
    engine = Engine(pipeline, tmp_path / "out", progress=False)
    refs = list(engine.source.list_items())
    assert len(refs) == 20 and {r.meta["tile"] for r in refs} == {"scene"}
    prepare_tiles(engine, refs)  # the statistics passes read through the same loader
    halo = max(c.halo for _s, c in engine.steps)
    # gaussian radius int(4σ + 0.5) + 4 × morphology: cva 4 + 4, image-diff (σ 2) 8 + 4; pca-kmeans 0 + 4 + 4
    assert [c.halo for _s, c in engine.steps] == [8, 12, 8] and halo == 12
    real = satcore.data.read_raster
    windows: list[Any] = []

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        assert kwargs.get("window") is not None, f"{path} read whole"
        windows.append(kwargs["window"])
        return real(path, *args, **kwargs)

    def whole(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a tile was read through the whole-image path")

    monkeypatch.setattr(satcore.data, "read_raster", spy)
    monkeypatch.setattr(fp, "read_raster", whole)
    item = engine.source.load(refs[6])  # r1_c1: an inner tile, halo on every side
    assert len(windows) == 3  # A, B, label
    assert all((w.width, w.height) == (SIZE + 2 * halo, SIZE + 2 * halo) for w in windows)
    assert item.images[0].shape == (SIZE + 2 * halo, SIZE + 2 * halo)
    assert item.meta["core"] == [halo, halo, SIZE, SIZE]
    assert "cva" in item.meta["scene_statistics"] and "threshold" in item.meta["scene_statistics"]["cva"]
    engine.teardown()


def test_pca_kmeans_on_tiles_needs_a_sample_step(tmp_path: Path) -> None:
    import satcore
    from satcore.errors import RunStopped

    make_pair(tmp_path / "data")
    path = spec(tmp_path, "nosample", {"size": SIZE}, [{"id": "pk", "type": "pca-kmeans"}])
    with pytest.raises(RunStopped, match="sample_step"):
        satcore.run(path, progress=False)
