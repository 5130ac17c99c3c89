"""End-to-end: the quickstart (LEVIR-CD, RGB) and the Landsat example (ENVI, UTM, partial truth)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from sklearn.metrics import f1_score, roc_auc_score

import satcore
from satcore.data import read_mask

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# the examples live in the satcore repository, beside the plugin; a plugin checkout on its own skips these
pytestmark = pytest.mark.skipif(not (EXAMPLES / "quickstart.yaml").exists(), reason="no satcore examples/")


def _maps(path: Path) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():  # LEVIR maps are PNG-derived: no CRS, by design
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return dict(zip(ds.descriptions, ds.read(), strict=True))


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    return satcore.run(EXAMPLES / "quickstart.yaml", overrides={"output.dir": str(out)}, progress=False)


@pytest.fixture(scope="module")
def landsat(tmp_path_factory):
    out = tmp_path_factory.mktemp("landsat")
    return satcore.run(EXAMPLES / "landsat-classic.yaml", overrides={"output.dir": str(out)}, progress=False)


def test_quickstart_runs_the_rgb_detectors(quickstart):
    assert quickstart.items_failed == 1
    assert quickstart.items_ok == 11
    # the unlabelled 768x384 crop is the one failed item (see examples/data/levir-cd/NOTICE)
    assert [e["item_id"] for e in quickstart.errors()] == ["test_113_0256"]
    steps = quickstart.metrics["steps"]
    assert list(steps) == ["image-diff", "cva", "pca-kmeans"]
    for sid, d in steps.items():
        px = d["all"]["pixel"]
        assert 0.0 <= px["auc"] <= 1.0 and 0.0 <= px["f1"] <= 1.0, sid
    table = quickstart.results()
    ok = table[table["error"].isna()]
    for sid in steps:
        assert ok[f"{sid}.score"].between(0, 1).all()


def test_quickstart_maps_reproduce_the_pooled_auc(quickstart):
    ys, scores = [], {sid: [] for sid in quickstart.metrics["steps"]}
    for tif in sorted((quickstart.output_dir / "maps").glob("*.tif")):
        maps = _maps(tif)
        ys.append(read_mask(EXAMPLES / "data" / "levir-cd" / "label" / f"{tif.stem}.png").ravel())
        for sid in scores:
            scores[sid].append(maps[f"{sid}.score"].ravel())
    y = np.concatenate(ys)
    for sid, s in scores.items():
        ref = roc_auc_score(y, np.concatenate(s))
        assert quickstart.metrics["steps"][sid]["all"]["pixel"]["auc"] == pytest.approx(ref, abs=2e-3), sid


def test_landsat_maps_keep_the_utm_grid(landsat):
    assert landsat.items_ok == 2 and landsat.items_failed == 0
    inputs = {"taizhou": "Taizhou/2000TM", "nanjing": "Nanjing/LT51200382000124BJC00_Nanjing"}
    for item_id, rel in inputs.items():
        with rasterio.open(EXAMPLES / "data" / "landsat-cd" / rel) as src:
            crs, transform, shape = src.crs, src.transform, src.shape
        assert crs is not None and crs.is_projected and "UTM" in crs.to_wkt()
        with rasterio.open(landsat.output_dir / "maps" / f"{item_id}.tif") as ds:
            assert ds.crs == crs
            assert ds.transform.almost_equals(transform)
            assert ds.shape == shape
            assert "index-diff.score" in ds.descriptions and "pca-kmeans.label" in ds.descriptions
    assert {k: rasterio.open(landsat.output_dir / "maps" / f"{k}.tif").crs.to_epsg() for k in inputs} == {
        "taizhou": 32651,
        "nanjing": 32650,
    }


def test_landsat_metrics_ignore_unlabelled_pixels(landsat):
    root = EXAMPLES / "data" / "landsat-cd"
    table = landsat.results().set_index("item_id")
    metrics = json.loads((landsat.output_dir / "metrics.json").read_text())
    pooled_y, pooled_pred, all_y, all_pred = [], [], [], []
    for item_id, folder in (("nanjing", "Nanjing"), ("taizhou", "Taizhou")):
        change = read_mask(root / folder / "change.bmp")  # (BMPs have no georeference: read without warnings)
        unchanged = read_mask(root / folder / "unchanged.bmp")
        known = change | unchanged
        assert known.mean() < 0.2  # most pixels are unlabelled
        pred = _maps(landsat.output_dir / "maps" / f"{item_id}.tif")["cva.label"] > 0.5
        f1 = f1_score(change[known], pred[known])
        assert table.loc[item_id, "cva.pixel_f1"] == pytest.approx(f1, abs=1e-9)
        # counting the unlabelled pixels as "no change" would give a very different number
        assert abs(f1_score(change.ravel(), pred.ravel()) - f1) > 0.1
        pooled_y.append(change[known])
        pooled_pred.append(pred[known])
        all_y.append(change.ravel())
        all_pred.append(pred.ravel())
    pooled = f1_score(np.concatenate(pooled_y), np.concatenate(pooled_pred))
    assert metrics["steps"]["cva"]["all"]["pixel"]["f1"] == pytest.approx(pooled, abs=1e-9)
    assert metrics["class_balance"]["pixels_changed_fraction"] == pytest.approx(
        np.concatenate(pooled_y).mean(), abs=1e-9
    )


def test_landsat_index_diff_uses_the_named_bands(landsat):
    table = landsat.results().set_index("item_id")
    assert set(table["ndvi-diff.indices"]) == {"ndvi"}
    assert set(table["index-diff.indices"]) == {"ndvi,ndwi,ndbi"}
    assert pd.api.types.is_numeric_dtype(table["index-diff.score"])


def test_index_diff_on_rgb_pairs_lists_each_item_with_the_fix(tmp_path):
    levir = EXAMPLES / "data" / "levir-cd"
    spec = {
        "version": 1,
        "name": "rgb-index",
        "source": {"type": "folder-pairs", "root": str(levir), "list": str(levir / "list" / "demo.txt")},
        "steps": [{"id": "ndvi", "type": "index-diff", "index": "ndvi"}],
        "output": {"dir": str(tmp_path / "run"), "maps": False, "report": False},
    }
    res = satcore.run(spec, progress=False)
    assert res.items_ok == 0 and res.items_failed == 7
    for e in res.errors():
        assert e["step"] == "ndvi" and e["error_type"] == "ComponentError"
        assert "missing: nir" in e["message"] and "`bands:` on the source" in e["message"]
