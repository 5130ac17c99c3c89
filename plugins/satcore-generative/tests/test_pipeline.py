"""End to end through ``satcore.run``: RGB GeoTIFFs → 13-band Sentinel-2 GeoTIFFs under ``generated/``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from satcore_generative.bands import ESA_BANDS

from satcore.data import Raster, write_geotiff

CRS_UTM = CRS.from_epsg(32633)


def _geo(i: int) -> Affine:
    return Affine(10.0, 0.0, 500000.0 + 1000 * i, 0.0, -10.0, 5100000.0)


@pytest.fixture
def rgb_items(tmp_path):
    """Three RGB GeoTIFFs of different sizes, each with a 13-band target on its grid, in a manifest."""
    rng = np.random.default_rng(12)
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for i, (h, w) in enumerate([(40, 40), (70, 50), (24, 90)]):
        rgb = rng.integers(0, 256, (3, h, w)).astype(np.uint8)
        like = Raster(rgb, crs=CRS_UTM, transform=_geo(i))
        write_geotiff(root / f"rgb{i}.tif", rgb, like=like)
        s2 = rng.integers(100, 4000, (13, h, w)).astype(np.float32)
        write_geotiff(root / f"s2_{i}.tif", s2, like=like, band_names=ESA_BANDS)
        rows.append({"item_id": f"s{i}", "a": f"rgb{i}.tif", "target": f"s2_{i}.tif"})
    path = root / "items.csv"
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    return path, rows


def test_rgb_to_multispectral_end_to_end(run_pipeline, rgb_items, tiny_ckpt):
    path, rows = rgb_items
    out = run_pipeline({
        "source": {"type": "manifest", "path": str(path)},
        "steps": [{"id": "s2", "type": "rgb-to-multispectral", "model": str(tiny_ckpt), "window": 32,
                   "overlap": 16}],
        "evaluate": {"bootstrap": 0},
    })
    assert out.errors == []
    t = out.table.set_index("item_id").sort_index()
    gen, tgt = [], []
    for row in rows:
        rel = t.loc[row["item_id"], "s2.path"]
        assert rel == f"generated/{row['item_id']}/s2.tif"
        with rasterio.open(out.output_dir / rel) as g, rasterio.open(path.parent / row["a"]) as a:
            assert g.count == 13 and g.descriptions == ESA_BANDS
            assert g.crs == a.crs == CRS_UTM and g.transform == a.transform
            assert (g.height, g.width) == (a.height, a.width)
            arr = g.read().astype(np.float64)
            assert np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 10000
            gen.append(arr.reshape(13, -1))
        with rasterio.open(path.parent / row["target"]) as tg:
            tgt.append(tg.read().reshape(13, -1).astype(np.float64))
    g, tt = np.concatenate(gen, axis=1), np.concatenate(tgt, axis=1)
    sp = out.metrics["steps"]["s2"]["all"]["spectral"]
    assert sp["items"] == len(rows)
    assert sp["mae"] == pytest.approx(np.abs(g - tt).mean(), rel=1e-5)
    assert sp["mse"] == pytest.approx(((g - tt) ** 2).mean(), rel=1e-5)
    assert sp["units"] == "reflectance ×10000"  # what the generator writes, said by the step
    # the manifest records the checkpoint
    used = [m for m in out.manifest.get("models", []) if m.get("step") == "s2"]
    assert used and used[0]["generator"] == "G"


def test_multispectral_to_rgb_end_to_end(run_pipeline, rgb_items, tiny_ckpt):
    """The 13-band targets as inputs, F back to RGB on their grid."""
    path, rows = rgb_items
    m = path.parent / "ms.csv"
    m.write_text("item_id,a\n" + "".join(f"{r['item_id']},{r['target']}\n" for r in rows))
    out = run_pipeline({
        "source": {"type": "manifest", "path": str(m)},
        "steps": [{"id": "rgb", "type": "multispectral-to-rgb", "model": str(tiny_ckpt), "window": 32,
                   "overlap": 8}],
        "evaluate": {"bootstrap": 0},
    })
    assert out.errors == []
    for row in rows:
        with rasterio.open(out.output_dir / "generated" / row["item_id"] / "rgb.tif") as g, \
                rasterio.open(path.parent / row["target"]) as a:
            assert g.descriptions == ("red", "green", "blue")
            assert g.crs == a.crs and g.transform == a.transform and g.shape == a.shape


def test_a_file_that_is_not_a_checkpoint_is_a_spec_error(run_pipeline, rgb_items, tmp_path):
    import torch

    from satcore.errors import RunStopped

    bad = tmp_path / "bad.pt"
    torch.save({"something": 1}, bad)
    path, _ = rgb_items
    msg = r"bad\.pt is not a satcore-cyclegan/1 checkpoint.*satcore train cyclegan"
    with pytest.raises(RunStopped, match=msg):
        run_pipeline({"source": {"type": "manifest", "path": str(path)},
                      "steps": [{"id": "s2", "type": "rgb-to-multispectral", "model": str(bad)}]})
