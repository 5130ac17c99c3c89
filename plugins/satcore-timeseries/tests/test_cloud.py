"""cloud-probability: the s2cloudless, band and heuristic sources, each against an independent reference."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from satcore_timeseries.cloud import CloudProbabilityExtractor, CloudProbabilityParams

from satcore.components.base import Batch
from satcore.data import SENTINEL2_BANDS, Item, Raster
from satcore.errors import ComponentError
from satcore.testing import ExtractorContract


def series_item(arrays: list[np.ndarray], names: tuple[str, ...], item_id: str = "p000") -> Item:
    images = [Raster(a.astype(np.float32), band_names=names) for a in arrays]
    return Item(item_id, images, meta={"kind": "series", "lat": 46.0, "lon": 14.5,
                                       "times": [f"2020-01-0{i + 1}" for i in range(len(arrays))]})


def run(item: Item, **params: Any) -> dict[str, Any]:
    ext = CloudProbabilityExtractor(CloudProbabilityParams.model_validate(params))
    ext.setup()
    (out,) = ext.process(Batch([item]))
    return out


def s2_windows(seed: int = 0, t: int = 3, size: int = 6) -> list[np.ndarray]:
    """13-band L1C-like windows (DN = reflectance × 10000); date 1 is bright everywhere (cloud-like)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(t):
        a = rng.uniform(200, 2500, (13, size, size))
        if i == 1:
            a = rng.uniform(4000, 7000, (13, size, size))
        out.append(a)
    return out


def test_s2cloudless_path_equals_the_detector_called_directly():
    from s2cloudless import S2PixelCloudDetector

    arrays = s2_windows()
    arrays[2][:, 0, 0] = np.nan  # a pixel without a measurement is left out of the mean
    out = run(series_item(arrays, SENTINEL2_BANDS), fraction=True)
    assert out["cloud_source"] == "s2cloudless" and out["series_names"] == ["cloud_prob", "cloud_fraction"]
    # the reference: all 13 bands in ESA order, s2cloudless picking its own 10 (all_bands=True)
    data = np.stack([np.moveaxis(a, 0, -1) for a in arrays]).astype(np.float32) / 10000
    probs = S2PixelCloudDetector(all_bands=True).get_cloud_probability_maps(np.nan_to_num(data))
    probs[2, 0, 0] = np.nan
    np.testing.assert_allclose(out["series"][:, 0], np.nanmean(probs, axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(out["series"][:, 1], [np.nanmean(np.where(np.isnan(p), np.nan, p >= 0.4))
                                                     for p in probs], rtol=1e-6)
    assert out["series"][1, 0] > out["series"][0, 0]  # the bright date is cloudier
    assert out["n_dates"] == 3 and out["cloudy_dates"] == int((np.nanmean(probs, axis=(1, 2)) >= 0.4).sum())


def test_band_path_scales_an_8bit_band_and_a_0_1_band():
    rng = np.random.default_rng(2)
    ndvi = [rng.uniform(-1, 1, (1, 5, 5)) for _ in range(4)]
    clp = [rng.integers(0, 256, (1, 5, 5)).astype(float) for _ in range(4)]
    clp[3][0, 1, 1] = np.nan
    item = series_item([np.concatenate([n, c]) for n, c in zip(ndvi, clp, strict=True)], ("NDVI", "CLP"))
    out = run(item)
    assert out["cloud_source"] == "band" and out["series_names"] == ["cloud_prob"]
    np.testing.assert_allclose(out["series"][:, 0], [np.nanmean(c / 255) for c in clp])
    # the same band already in 0-1: scale 1 (auto), or given explicitly
    item01 = series_item([np.concatenate([n, c / 255]) for n, c in zip(ndvi, clp, strict=True)],
                         ("NDVI", "CLP"))
    np.testing.assert_allclose(run(item01)["series"][:, 0], [np.nanmean(c / 255) for c in clp])
    np.testing.assert_allclose(run(item, band_scale=100)["series"][:, 0],
                               [np.nanmean(np.clip(c / 100, 0, 1)) for c in clp])
    named = series_item([np.concatenate([n, c]) for n, c in zip(ndvi, clp, strict=True)], ("NDVI", "clouds"))
    np.testing.assert_allclose(run(named, band="clouds")["series"][:, 0], [np.nanmean(c / 255) for c in clp])


def test_heuristic_path_is_named_and_follows_the_brightness_rule():
    rng = np.random.default_rng(3)
    rgb = [rng.uniform(0, 4000, (3, 4, 4)) for _ in range(3)]
    out = run(series_item(rgb, ("red", "green", "blue")))
    assert out["cloud_source"] == "heuristic"
    want = [np.mean(np.clip((a.mean(axis=0) / 10000 - 0.1) / 0.2, 0, 1)) for a in rgb]
    np.testing.assert_allclose(out["series"][:, 0], want, rtol=1e-6)
    out = run(series_item(rgb, ("red", "green", "blue")), reflectance_scale=255, heuristic_range=(0.5, 0.9))
    want = [np.mean(np.clip((a.mean(axis=0) / 255 - 0.5) / 0.4, 0, 1)) for a in rgb]
    np.testing.assert_allclose(out["series"][:, 0], want, rtol=1e-6)


def test_missing_sources_fail_the_item_naming_the_bands():
    item = series_item([np.zeros((2, 3, 3))] * 2, ("NDVI", "NDWI"))
    with pytest.raises(ComponentError, match=r"no cloud source.*\['NDVI', 'NDWI'\]"):
        run(item)
    with pytest.raises(ComponentError, match=r"the band source needs bands \['CLP'\]"):
        run(item, method="band")
    with pytest.raises(ComponentError, match=r"s2cloudless needs bands \['B01'"):
        run(series_item([np.zeros((3, 3, 3))] * 2, ("red", "green", "blue")), method="s2cloudless")


def test_all_nan_date_is_nan_not_an_error():
    clp = [np.full((1, 3, 3), 100.0), np.full((1, 3, 3), np.nan)]
    out = run(series_item(clp, ("CLP",)))
    assert out["series"][0, 0] == pytest.approx(100 / 255) and np.isnan(out["series"][1, 0])


class TestCloudProbabilityContract(ExtractorContract):
    component = CloudProbabilityExtractor
    params: ClassVar[dict[str, Any]] = {"method": "band"}

    def make_items(self) -> list[Item]:
        rng = np.random.default_rng(0)
        return [series_item([rng.uniform(0, 255, (2, 4, 4)) for _ in range(3)], ("NDVI", "CLP"), f"p{i:03d}")
                for i in range(self.n_items)]
