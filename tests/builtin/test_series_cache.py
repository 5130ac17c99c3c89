"""geotiff-series keeps its files open between locations: same values, and a rewritten file is reopened."""

from __future__ import annotations

import os

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform as warp
from rasterio.windows import Window

from satcore.builtin.series import DATASETS, GeoTiffSeriesParams, GeoTiffSeriesSource

CRS = "EPSG:32633"
ORIGIN = (465000.0, 5080000.0)


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1],
                       count=array.shape[0], dtype=array.dtype, crs=CRS,
                       transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])) as ds:
        ds.write(array)


def point(row, col):
    lon, lat = warp(CRS, "EPSG:4326", [ORIGIN[0] + 10 * col + 5], [ORIGIN[1] - 10 * row - 5])
    return {"id": f"r{row}c{col}", "lat": lat[0], "lon": lon[0]}


def direct(path, row, col):
    with rasterio.open(path) as ds:
        return ds.read(window=Window(col - 1, row - 1, 3, 3)).astype(np.float32)


def test_cached_reads_equal_direct_reads_and_a_rewrite_is_seen(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "s" / "S2_2020-01-01.tif"
    write(path, rng.integers(1, 1000, (2, 12, 12)).astype(np.uint16))
    places = [(3, 3), (6, 8), (9, 4)]
    src = GeoTiffSeriesSource(GeoTiffSeriesParams.model_validate(
        {"root": str(path.parent), "window": 3, "locations": [point(r, c) for r, c in places]}))
    DATASETS.clear()
    for (r, c), item in zip(places, [src.load(x) for x in src.list_items()], strict=True):
        np.testing.assert_array_equal(item.images[0].array, direct(path, r, c))
    assert DATASETS.get(str(path)) is not None  # kept open for the next location

    st = os.stat(path)
    write(path, rng.integers(1, 1000, (2, 12, 12)).astype(np.uint16))  # same size, new values
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    for (r, c), item in zip(places, [src.load(x) for x in src.list_items()], strict=True):
        np.testing.assert_array_equal(item.images[0].array, direct(path, r, c))
    src.teardown()
    assert DATASETS.get(str(path)) is None
