"""``satcore train segmentation`` on tiny synthetic tiles.

Then the folder as the model of ``segmentation-probs`` in a ``satcore run`` on a synthetic 3-band
GeoTIFF series (core ``geotiff-series``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image
from satcore_timeseries import dubai

from satcore.cli import cli

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: several threads on a busy machine make small models crawl."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

TINY = {"crop": 32, "batch": 2, "steps": 4, "checkpoint_every": 2, "arch": "small", "base": 4, "depth": 2,
        "holdout_tiles": [3]}


def write_tiles(root, n_tiles=3, per_tile=2, seed=0):
    """Tiles in the Dubai layout: images whose colour follows the class, masks in the class colours.

    Tile 2's masks are palette PNGs, like the real tiles 2 and 4.
    """
    rng = np.random.default_rng(seed)
    colours = np.array([dubai.COLOURS[c] for c in dubai.CLASSES], dtype=np.uint8)
    for t in range(1, n_tiles + 1):
        for sub in ("images", "masks"):
            (root / "Semantic segmentation dataset" / f"Tile {t}" / sub).mkdir(parents=True)
        for i in range(per_tile):
            lab = np.repeat(np.repeat(rng.integers(0, 6, (5, 6)), 8, 0), 8, 1)  # 40 x 48, 8-px blocks
            img = (lab[..., None] * 40 + rng.integers(0, 20, (40, 48, 3))).astype(np.uint8)
            base = root / "Semantic segmentation dataset" / f"Tile {t}"
            Image.fromarray(img).save(base / "images" / f"image_part_{i:03d}.jpg", quality=95)
            mask = Image.fromarray(colours[lab])
            (mask.quantize(colors=8) if t == 2 else mask).save(base / "masks" / f"image_part_{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg")
    data = write_tiles(tmp / "data")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data), **TINY}))
    out = tmp / "run"
    r = CliRunner().invoke(cli, ["train", "segmentation", str(cfg), "--output", str(out), "--quiet",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return cfg, out, data


def test_folder_losses_checkpoints_and_heldout_scores(trained):
    _cfg, out, data = trained
    info = json.loads((out / "train.json").read_text())
    assert info["status"] == "complete" and info["model"]["family"] == "unet-segmentation"
    assert info["data"]["holdout_tiles"] == [3] and info["data"]["train_tiles"] == [1, 2]
    lines = [json.loads(x) for x in (out / "losses.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    assert all(np.isfinite(x["loss_ce"]) for x in lines)
    assert [("heldout_miou" in x) for x in lines] == [False, True, False, True]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002.pt", "step-00000004.pt"]
    assert "heldout_miou" in (out / "report.html").read_text()

    # the held-out scores in train.json are those of the last checkpoint on tile 3, recomputed here
    from satcore_timeseries import unet

    net, meta = unet.load_checkpoint(out / "checkpoints" / "step-00000004.pt")
    held = dubai.load_tiles(data, [3])
    cm = sum(dubai.confusion(lab, unet.predict_probs(net, unet.to_input(img)[0], "cpu", 4).argmax(0))
             for img, lab in held)
    want = dubai.scores(cm)
    h = info["data"]["heldout"]
    assert h["pixel_accuracy"] == pytest.approx(want["pixel_accuracy"])
    assert h["miou"] == pytest.approx(want["miou"])
    assert lines[-1]["heldout_miou"] == pytest.approx(want["miou"])
    base = dubai.majority_baseline(dubai.load_tiles(data, [1, 2]), held)
    assert info["data"]["baseline"]["pixel_accuracy"] == pytest.approx(base["pixel_accuracy"])
    assert h["beats_baseline"]["miou"] == pytest.approx(want["miou"] - base["miou"])
    assert meta["classes"] == list(dubai.CLASSES)


def test_resume_gives_the_same_checkpoint(trained, tmp_path):
    cfg, out, _ = trained
    import shutil

    part = tmp_path / "part"
    shutil.copytree(out, part)
    (part / "checkpoints" / "step-00000004.pt").unlink()
    r = CliRunner().invoke(cli, ["train", "segmentation", str(cfg), "--output", str(part), "--resume",
                                 "--quiet", "--device", "cpu"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    a = torch.load(out / "checkpoints" / "step-00000004.pt", weights_only=True)["model"]
    b = torch.load(part / "checkpoints" / "step-00000004.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_bad_holdout_tile_is_a_config_error(trained, tmp_path):
    cfg, _out, data = trained
    r = CliRunner().invoke(cli, ["train", "segmentation", str(cfg), "--output", str(tmp_path / "x"),
                                 "--quiet", "--set", "holdout_tiles=[9]"])
    from satcore.errors import SpecError

    # the CLI's main maps SpecError to exit 2; CliRunner hands the exception back
    assert isinstance(r.exception, SpecError) and r.exception.exit_code == 2
    assert "holdout_tiles: [9] not in" in str(r.exception) and "tiles there: [1, 2, 3]" in str(r.exception)


def _series(root, n_dates=3, size=40):
    """Dated 3-band uint8 GeoTIFFs (EPSG:32633) with no band descriptions (read as red/green/blue)."""
    from affine import Affine
    from rasterio.crs import CRS

    from satcore.data import Raster, write_geotiff

    rng = np.random.default_rng(5)
    root.mkdir()
    like = Raster(np.zeros((3, size, size), np.uint8), crs=CRS.from_epsg(32633),
                  transform=Affine(10.0, 0, 500000.0, 0, -10.0, 5100000.0))
    for d in range(n_dates):
        arr = rng.integers(0, 256, (3, size, size)).astype(np.uint8)
        write_geotiff(root / f"scene_2020010{d + 1}.tif", arr, like=like)
    return root


def test_segmentation_probs_in_a_satcore_run(trained, tmp_path, monkeypatch, run_pipeline):
    _cfg, out, _ = trained
    # the folder registered as an alias with `satcore models add`, in a registry file of this test
    reg = tmp_path / "registry.yaml"
    monkeypatch.setenv("SATCORE_REGISTRY", str(reg))
    r = CliRunner().invoke(cli, ["models", "add", "tiny-seg", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    series = _series(tmp_path / "series")
    res = run_pipeline({
        "source": {"type": "geotiff-series", "root": str(series), "window": 16},
        "steps": [{"id": "seg", "type": "segmentation-probs", "model": "tiny-seg"},
                  {"id": "seg2", "type": "segmentation-probs", "model": str(out)}],
        "execution": {"device": "cpu"},
    })
    assert res.errors == []
    t = res.table.set_index("item_id")
    assert t.loc["centre", "seg.n_dates"] == 3

    # the same numbers straight from the checkpoint and the same windows
    from satcore_timeseries import unet
    from satcore_timeseries.segmentation import SegmentationProbsExtractor

    from satcore.builtin.series import GeoTiffSeriesParams, GeoTiffSeriesSource
    from satcore.components import RunContext

    src = GeoTiffSeriesSource(GeoTiffSeriesParams.model_validate({"root": str(series), "window": 16}))
    item = src.load(next(iter(src.list_items())))
    net, _ = unet.load_checkpoint(out / "checkpoints" / "step-00000004.pt")
    rows = []
    for im in item.images:
        p = unet.predict_probs(net, im.array.astype(np.float32) / 255.0, "cpu", 4).reshape(6, -1)
        rows.append([*p.mean(1), p.max(0).mean()])
    ext = SegmentationProbsExtractor(SegmentationProbsExtractor.params_model.model_validate(
        {"model": str(out)}), context=RunContext(device="cpu", threads=1))
    ext.setup()
    (o,) = ext.process(_batch([item]))
    assert o["series_names"] == [f"seg_{c}" for c in dubai.CLASSES] + ["seg_confidence"]
    np.testing.assert_allclose(o["series"], rows, rtol=1e-5)
    np.testing.assert_allclose(o["series"][:, :6].sum(1), 1.0, rtol=1e-5)
    used = [m for m in res.manifest.get("models", []) if m.get("step") == "seg"]
    assert used and used[0]["alias"] == "tiny-seg"


def test_nodata_pixels_are_left_out_and_a_blank_date_is_nan(trained):
    from affine import Affine
    from satcore_timeseries.segmentation import SegmentationProbsExtractor

    from satcore.components import RunContext
    from satcore.data import Item, Raster

    _cfg, out, _ = trained
    ext = SegmentationProbsExtractor(SegmentationProbsExtractor.params_model.model_validate(
        {"model": str(out)}), context=RunContext(device="cpu", threads=1))
    ext.setup()
    a = np.random.default_rng(1).uniform(0, 255, (3, 16, 16)).astype(np.float32)
    b = a.copy()
    b[:, :4] = np.nan
    blank = np.full_like(a, np.nan)
    rs = [Raster(x, transform=Affine.identity()) for x in (a, b, blank)]
    (o,) = ext.process(_batch([Item("p", rs, meta={"kind": "series"})]))
    assert np.isnan(o["series"][2]).all() and np.isfinite(o["series"][:2]).all()
    # the NaN rows are left out of the mean: equal to the mean over the valid pixels of the filled image
    from satcore_timeseries import unet

    filled = np.where(np.isnan(b), 0, b) / 255.0
    p = unet.predict_probs(ext._net, filled.astype(np.float32), "cpu", 4)[:, 4:, :].reshape(6, -1)
    np.testing.assert_allclose(o["series"][1, :6], p.mean(1), rtol=1e-5)


def _batch(items):
    from satcore.components import Batch

    return Batch(items, list(items), "seg")
