"""examples/timeseries/slovenia/make_series.py: the real Sentinel-2 patch as a dated GeoTIFF series.

Checked against the .npy arrays and timestamps of the patch itself, read with numpy and json.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp

from satcore.builtin.series import GeoTiffSeriesParams, GeoTiffSeriesSource

REPO = Path(__file__).resolve().parents[2]
PATCH = REPO.parent / "shared" / "data" / "sentinel2-eopatch-slovenia" / "example_data" / "TestEOPatch"
SCRIPT = REPO / "examples" / "timeseries" / "slovenia" / "make_series.py"


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("make_series", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path_factory.mktemp("slovenia")
    return mod.write_series(PATCH, out), out


def test_files_dates_crs_and_values_equal_the_patch(series):
    files, _out = series
    times = [datetime.fromisoformat(t) for t in json.loads((PATCH / "timestamps.json").read_text())]
    ndvi, clp = np.load(PATCH / "data" / "NDVI.npy"), np.load(PATCH / "data" / "CLP.npy")
    assert len(times) == 68 and len(files) == 67  # 2015-12-08 has two acquisitions: one file per date
    days = sorted({t.date().isoformat() for t in times})
    assert [f.name for f in files] == [f"S2_{d}.tif" for d in days]
    geo = json.loads((PATCH / "bbox.geojson").read_text())
    xs, ys = zip(*geo["coordinates"][0], strict=True)
    for f in files:
        same_day = [i for i, t in enumerate(times) if t.date().isoformat() == f.stem[3:]]
        i = min(same_day, key=lambda k: clp[k].mean())  # the clearer one of a day's acquisitions
        with rasterio.open(f) as ds:
            assert ds.crs.to_epsg() == 32633 and ds.descriptions == ("NDVI", "CLP")
            assert (ds.width, ds.height) == (100, 101) and np.isnan(ds.nodata)
            assert ds.bounds.left == pytest.approx(min(xs)) and ds.bounds.top == pytest.approx(max(ys))
            assert ds.bounds.right == pytest.approx(max(xs)) and ds.bounds.bottom == pytest.approx(min(ys))
            np.testing.assert_array_equal(ds.read(1), ndvi[i, :, :, 0])
            np.testing.assert_array_equal(ds.read(2), clp[i, :, :, 0])
    assert files[7].name == "S2_2015-12-08.tif"


def test_geotiff_series_reads_it_with_the_cloud_band(series):
    _files, out = series
    ndvi, clp = np.load(PATCH / "data" / "NDVI.npy")[..., 0], np.load(PATCH / "data" / "CLP.npy")[..., 0]
    times = json.loads((PATCH / "timestamps.json").read_text())
    kept = [i for i, t in enumerate(times) if t != "2015-12-08T10:04:09"]
    row, col = 40, 60
    with rasterio.open(out / "S2_2015-07-11.tif") as ds:
        x, y = ds.xy(row, col)
    (lon,), (lat,) = warp("EPSG:32633", "EPSG:4326", [x], [y])
    src = GeoTiffSeriesSource(GeoTiffSeriesParams.model_validate(
        {"root": str(out), "locations": [{"id": "a", "lat": lat, "lon": lon}], "window": 4,
         "cloud_band": "CLP", "cloud_threshold": 0.4}))
    (ref,) = src.list_items()
    item = src.load(ref)
    assert len(item.images) == 67
    want_ndvi = ndvi[kept][:, row - 2:row + 2, col - 2:col + 2]
    want_clp = clp[kept][:, row - 2:row + 2, col - 2:col + 2]
    got = np.stack([im.array for im in item.images])
    np.testing.assert_array_equal(got[:, 1], want_clp)
    np.testing.assert_array_equal(got[:, 0], np.where(want_clp >= 0.4, np.nan, want_ndvi))
    assert item.meta["valid_fraction"] == pytest.approx(list((want_clp < 0.4).mean(axis=(1, 2))))
