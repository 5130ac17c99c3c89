"""Nodata and non-finite pixels are invalid: left out of statistics and metrics, never zeroing an item."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from affine import Affine

from satcore.builtin.sources import FolderPairsParams, FolderPairsSource
from satcore.components import Batch
from satcore.components.filters import nan_where, normalise_pair, smooth
from satcore.components.thresholds import otsu_threshold
from satcore.data import Item, Raster
from satcore.testing import make_change_pair

classic = pytest.importorskip("satcore_classic.detectors")


def test_raster_invalid_mask_nan_inf_and_nodata():
    a = np.ones((2, 4, 4), np.float32)
    a[0, 0, 0], a[1, 1, 1] = np.nan, np.inf
    m = Raster(a).invalid_mask()
    assert m is not None and m.sum() == 2 and m[0, 0] and m[1, 1]
    b = np.full((1, 3, 3), 5, np.uint16)
    b[0, 2, 2] = 0
    assert Raster(b, nodata=0).invalid_mask().sum() == 1
    assert Raster(b, nodata=-9999).invalid_mask() is None  # a value uint16 cannot hold matches nothing
    assert Raster(b).invalid_mask() is None
    assert Raster(np.ones((1, 2, 2)), nodata=float("nan")).invalid_mask() is None


def test_folder_pairs_marks_a_nan_nodata_border_invalid_and_logs_it(tmp_path, h):
    rng = np.random.default_rng(0)
    a = rng.normal(100, 10, (3, 16, 16)).astype(np.float32)
    b = a + rng.normal(0, 1, a.shape).astype(np.float32)
    a[:, :, :3] = np.nan  # the NaN border of a reprojected scene
    crs, tr = "EPSG:32633", Affine(10, 0, 500000, 0, -10, 4000000)
    root = tmp_path / "d"
    for side, arr in (("A", a), ("B", b)):
        h.write_raster(root / side / "x.tif", arr, crs=crs, transform=tr)
    h.write_raster(root / "label" / "x.tif", np.ones((16, 16), np.uint8), crs=crs, transform=tr)
    src = FolderPairsSource(FolderPairsParams(root=root))
    seen: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    grab, logger = Grab(), src.context.logger
    level = logger.level
    logger.addHandler(grab)
    logger.setLevel(logging.INFO)
    try:
        item = src.load(next(iter(src.list_items())))
    finally:
        logger.removeHandler(grab)
        logger.setLevel(level)
    assert item.valid is not None and int((~item.valid).sum()) == 16 * 3
    assert not item.valid[:, :3].any() and item.valid[:, 3:].all()
    assert any("48 of 256 pixels are nodata or not finite" in m for m in seen), seen


def test_integer_nodata_value_is_invalid(tmp_path, h):
    a = np.full((1, 8, 8), 7, np.uint16)
    a[0, 0, :] = 0
    root = tmp_path / "d"
    import rasterio

    for side in ("A", "B"):
        path = root / side / "x.tif"
        h.write_raster(path, a)
        with rasterio.open(path, "r+") as ds:
            ds.nodata = 0
    src = FolderPairsSource(FolderPairsParams(root=root, label=None))
    item = src.load(next(iter(src.list_items())))
    assert item.valid is not None and (~item.valid).sum() == 8


def test_smooth_does_not_spread_nan_and_matches_plain_filter_without_it():
    x = np.random.default_rng(1).random((12, 12))
    y = x.copy()
    y[0, 0] = np.nan
    s = smooth(y, 1.0)
    assert np.isnan(s[0, 0]) and np.isfinite(np.delete(s.ravel(), 0)).all()
    np.testing.assert_array_equal(smooth(x, 1.0), smooth(x.copy(), 1.0))  # no NaN: the plain filter
    # normalised convolution: a constant map stays constant next to the hole
    c = np.full((9, 9), 3.0)
    c[4, 4] = np.nan
    np.testing.assert_allclose(np.delete(smooth(c, 1.5).ravel(), 40), 3.0)
    np.testing.assert_allclose(np.delete(smooth(c, 1, "mean").ravel(), 40), 3.0)


def test_normalise_match_ignores_nan():
    rng = np.random.default_rng(2)
    a, b = rng.normal(5, 2, (2, 6, 6)), rng.normal(50, 9, (2, 6, 6))
    inv = np.zeros((6, 6), bool)
    inv[0] = True
    _, bm = normalise_pair(nan_where(a, inv), nan_where(b, inv), "match")
    _, ref = normalise_pair(a[:, 1:], b[:, 1:], "match")  # the crop without the invalid row
    np.testing.assert_allclose(bm[:, 1:], ref)
    assert np.isnan(bm[:, 0]).all()


def _with_invalid_border(item: Item, rows: int, how: str) -> Item:
    """``item`` with its first ``rows`` rows made invalid (NaN, inf or a nodata value)."""
    images = []
    for r in item.images:
        arr = r.array.astype(np.float32)
        arr[:, :rows] = {"nan": np.nan, "inf": np.inf, "nodata": -9999.0}[how]
        images.append(Raster(arr, band_names=r.band_names, nodata=-9999.0 if how == "nodata" else None))
    return Item(item.item_id, images, label=item.label)


def _crop(item: Item, rows: int) -> Item:
    return Item(item.item_id, [Raster(r.array[:, rows:].astype(np.float32), band_names=r.band_names)
                               for r in item.images], label=item.label[rows:])


@pytest.mark.parametrize("how", ["nan", "inf", "nodata"])
@pytest.mark.parametrize("det_cls,params", [
    ("CVADetector", {"normalise": "zscore"}),
    ("CVADetector", {"normalise": "match"}),
    ("ImageDiffDetector", {"normalise": "zscore"}),
    ("IndexDiffDetector", {"index": "ndvi"}),
])
def test_classic_detectors_give_the_crop_numbers_on_valid_pixels(det_cls, params, how):
    """Invalid rows change nothing on the valid pixels: same scores, threshold and fraction as the crop."""
    names = ("red", "green", "blue", "nir")
    base = make_change_pair(seed=3, size=32, bands=4, band_names=names, fraction=0.2)
    rows = 5
    cls = getattr(classic, det_cls)
    det = cls(cls.params_model(smooth=0, morphology=0, **params))
    det.setup()
    full, crop = det.process(Batch([_with_invalid_border(base, rows, how), _crop(base, rows)]))
    np.testing.assert_allclose(full.score_map[rows:], crop.score_map, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(full.label_map[rows:], crop.label_map)
    assert not full.label_map[:rows].any() and (full.score_map[:rows] == 0).all()
    assert full.score == pytest.approx(crop.score) and full.score > 0  # not zeroed
    assert full.extra["magnitude_threshold"] == pytest.approx(crop.extra["magnitude_threshold"])
    assert full.extra["invalid_pixels"] == rows * 32


def test_otsu_on_valid_pixels_equals_skimage_on_the_crop():
    skf = pytest.importorskip("skimage.filters")
    v = np.random.default_rng(4).gamma(2.0, 1.0, (20, 20))
    w = v.copy()
    w[:3] = np.nan
    assert otsu_threshold(w) == pytest.approx(float(skf.threshold_otsu(v[3:])))


@pytest.mark.parametrize("how", ["nan", "nodata"])
def test_pca_kmeans_with_invalid_pixels_still_finds_the_change(how):
    base = make_change_pair(seed=5, size=32, fraction=0.2)
    det = classic.PCAKMeansDetector(classic.PCAKMeansParams())
    det.setup()
    bad = _with_invalid_border(base, 4, how)
    (d,) = det.process(Batch([bad]))
    truth = base.label[4:]
    found = d.label_map[4:]
    assert np.isfinite(d.score_map).all() and not d.label_map[:4].any()
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.7, iou


def test_all_invalid_pair_fails_the_item_clearly():
    base = make_change_pair(seed=6, size=8)
    det = classic.CVADetector(classic.ClassicParams())
    det.setup()
    from satcore.errors import ComponentError

    with pytest.raises(ComponentError, match="every pixel of the pair is nodata"):
        det.process(Batch([_with_invalid_border(base, 8, "nan")]))


def test_one_nan_pixel_does_not_zero_the_run_metrics(tmp_path, h):
    """End to end: one NaN pixel in one image keeps pixel AUC as on the clean data (it was 0.5 before)."""
    import json

    import satcore

    rng = np.random.default_rng(7)
    root = tmp_path / "d"
    for k in range(3):
        item = make_change_pair(f"p{k}", seed=k + 10, size=24, fraction=0.2, dtype=np.float32)
        a = item.images[0].array
        if k == 0:
            a = a.copy()
            a[0, rng.integers(24), rng.integers(24)] = np.nan
        h.write_raster(root / "A" / f"p{k}.tif", a)
        h.write_raster(root / "B" / f"p{k}.tif", item.images[1].array)
        h.write_raster(root / "label" / f"p{k}.tif", item.label.astype(np.uint8))
    res = satcore.run(h.spec_dict(root, tmp_path / "o", step="cva"), progress=False)
    assert res.items_ok == 3
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    auc = next(iter(m["steps"].values()))
    auc = next(iter(auc.values()))["pixel"]["auc"]
    assert auc > 0.9, auc
