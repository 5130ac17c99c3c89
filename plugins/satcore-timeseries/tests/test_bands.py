"""band-values against numpy: window statistics, index formulas, aliases, masks, errors."""

from __future__ import annotations

import numpy as np
import pytest
from satcore_timeseries.bands import BandValuesExtractor

from satcore.components import Batch
from satcore.data import Item, Raster
from satcore.errors import ComponentError
from satcore.testing import build_component


def series_item(names=("B02", "B03", "B04", "B08", "B11"), t=3, seed=0, nodata=None) -> Item:
    rng = np.random.default_rng(seed)
    images = [Raster(rng.uniform(0.01, 0.5, (len(names), 6, 6)).astype(np.float32), band_names=names,
                     nodata=nodata) for _ in range(t)]
    return Item("loc", images, meta={"kind": "series"})


def run(item: Item, **params):
    comp = build_component(BandValuesExtractor, params)
    return comp.process(Batch([item]))[0]


def test_bands_and_indices_by_name_and_alias():
    item = series_item()
    out = run(item, bands=["B04", "green", "nir"], indices=["NDVI", "NDWI", "NDBI"])
    assert out["series_names"] == ["B04", "green", "nir", "NDVI", "NDWI", "NDBI"]
    assert out["series"].shape == (3, 6) and out["n_dates"] == 3
    for t, r in enumerate(item.images):
        a = r.array.astype(np.float64)
        blue, green, red, nir, swir = a
        np.testing.assert_allclose(out["series"][t, :3], [red.mean(), green.mean(), nir.mean()], rtol=1e-12)
        np.testing.assert_allclose(out["series"][t, 3], ((nir - red) / (nir + red)).mean(), rtol=1e-12)
        np.testing.assert_allclose(out["series"][t, 4], ((green - nir) / (green + nir)).mean(), rtol=1e-12)
        np.testing.assert_allclose(out["series"][t, 5], ((swir - nir) / (swir + nir)).mean(), rtol=1e-12)


def test_median_nodata_and_cloud_mask():
    item = series_item(names=("red", "nir", "CLP"), nodata=-1.0)
    a0 = item.images[0].array
    a0[0, :2, :] = -1.0  # nodata rows in date 0
    a0[2] = 0.0
    a0[2, 4:, :] = 0.9  # cloudy rows in date 0
    item.images[1].array[2] = 0.9  # date 1: all cloudy
    out = run(item, bands=["B04"], indices=["NDVI"], statistic="median", cloud_band="CLP",
              cloud_threshold=0.5)
    red, nir = a0[0].astype(np.float64), a0[1].astype(np.float64)
    ok = np.zeros((6, 6), bool)
    ok[2:4] = True
    assert out["series"][0, 0] == pytest.approx(np.median(red[ok]))
    assert out["series"][0, 1] == pytest.approx(np.median(((nir - red) / (nir + red))[ok]))
    assert np.isnan(out["series"][1]).all()  # no valid pixel: NaN, not an error


def test_a_band_that_is_already_an_index_and_the_default_all_bands():
    item = series_item(names=("NDVI", "CLP"))
    out = run(item, indices=["NDVI"])  # no red/nir: the series' own NDVI band
    own = [r.array[0].astype(np.float64).mean() for r in item.images]
    np.testing.assert_allclose(out["series"][:, 0], own)
    out = run(item)
    assert out["series_names"] == ["NDVI", "CLP"]


def test_missing_band_is_a_component_error():
    with pytest.raises(ComponentError, match="band 'B12' is not in the series"):
        run(series_item(), bands=["B12"])
    with pytest.raises(ComponentError, match="NDVI needs bands nir and red"):
        run(series_item(names=("green", "blue")), indices=["NDVI"])
