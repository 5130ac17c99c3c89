"""The map's data: Leaflet from xstatic-leaflet, bounds from rasterio, series frames for the time slider."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import transform_bounds

from satcore.data import Item, Raster, write_geotiff
from satcore.outputs.webmap import Grid, item_entry, leaflet_assets


def test_leaflet_is_inlined_with_its_images():
    js, css = leaflet_assets()
    assert 'version="1.9.3"' in js and "sourceMappingURL" not in js
    assert "url(images/" not in css and "url(data:image/png;base64," in css


def test_georeferenced_bounds_cover_the_source_in_lat_lon():
    crs = CRS.from_epsg(32633)
    t = Affine(10.0, 0, 500000.0, 0, -10.0, 5200000.0)
    grid = Grid(1000, 600, crs, t, max_px=256)
    assert max(grid.out_h, grid.out_w) <= 256
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *array_bounds(1000, 600, t))
    (s, w), (n, e) = grid.bounds
    tol = 1e-4  # degrees: about 10 m, one source pixel
    assert s <= south + tol and w <= west + tol and n >= north - tol and e >= east - tol
    assert n - s == pytest.approx(north - south, rel=0.02) and e - w == pytest.approx(east - west, rel=0.02)


def test_a_series_gets_one_frame_per_image_and_png_pairs_a_pixel_grid(tmp_path):
    label = np.zeros((20, 30), np.uint8)
    label[5:10, 5:15] = 1
    write_geotiff(tmp_path / "m.tif", np.stack([label.astype(np.float32), label.astype(np.float32)]),
                  band_descriptions=["s.score", "s.label"])
    images = [Raster(np.full((3, 20, 30), 10 * k, np.uint8), time=datetime(2020 + k, 6, 1)) for k in range(4)]
    poly = {"geometry": {"type": "Polygon", "coordinates": [[(5, 5), (15, 5), (15, 10), (5, 10), (5, 5)]]},
            "area": 50.0, "area_unit": "pixel", "mean_score": 1.0}
    entry = item_entry("x", tmp_path / "m.tif", Item("x", images), {"s": [poly]})
    assert entry["simple"] and entry["bounds"] == [[-20.0, 0.0], [0.0, 30.0]]
    assert [im["name"] for im in entry["images"]] == ["before (2020-06-01)", "image 2 (2021-06-01)",
                                                      "image 3 (2022-06-01)", "after (2023-06-01)"]
    assert [lay["name"] for lay in entry["layers"]] == ["change: s"]
    ring = entry["polygons"][0]["geojson"]["features"][0]["geometry"]["coordinates"][0]
    assert ring[1] == [15, -5]  # pixel (x = column, y = row) → Leaflet Simple (lng = x, lat = −y)


def test_polygon_layers_follow_the_change_maps_step_order(tmp_path):
    """The page shows the first change map and the first polygons at the start: they must be the same step."""
    label = np.zeros((20, 30), np.float32)
    label[5:10, 5:15] = 1
    write_geotiff(tmp_path / "m.tif", np.stack([label, label, label, label]),
                  band_descriptions=["zeta.score", "zeta.label", "alpha.score", "alpha.label"])
    poly = {"geometry": {"type": "Polygon", "coordinates": [[(5, 5), (15, 5), (15, 10), (5, 10), (5, 5)]]},
            "area": 50.0, "area_unit": "pixel", "mean_score": 1.0}
    entry = item_entry("x", tmp_path / "m.tif", None, {"alpha": [poly], "zeta": [poly]})
    assert [lay["name"] for lay in entry["layers"]] == ["change: zeta", "change: alpha"]
    assert [p["name"] for p in entry["polygons"]] == ["polygons: zeta", "polygons: alpha"]
