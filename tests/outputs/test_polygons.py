"""Change maps as polygons: areas, mean scores and the minimum-area filter, checked against numpy."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize

from satcore.data import Raster, write_geotiff
from satcore.outputs.polygons import area_unit, polygonize, read_polygons, write_polygons


def _label_and_score(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.zeros((40, 50), np.uint8)
    label[2:7, 3:9] = 1          # 30 px
    label[10:30, 20:45] = 1      # 500 px, with a hole
    label[15:18, 25:28] = 0      # hole: 9 px
    label[35, 0] = 1             # 1 px
    label[36, 1] = 1             # diagonal neighbour: a separate patch under 4-connectivity
    score = rng.random(label.shape).astype(np.float32)
    return label, score


def test_areas_and_mean_scores_match_the_pixels():
    label, score = _label_and_score()
    transform = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)  # 10 m pixels: 100 m² each
    patches = polygonize(label, score, transform)
    assert sorted(p.pixels for p in patches) == [1, 1, 30, 491]
    assert sum(p.pixels for p in patches) == int(label.sum())
    for p in patches:
        shape = shapely.geometry.shape(p.geometry)
        assert shape.area == pytest.approx(p.pixels * 100.0)   # the traced polygon's own area
        assert p.area == pytest.approx(p.pixels * 100.0)
        # the patch's pixels, rasterised back from its polygon: numpy's mean over that mask
        mask = rasterize([(p.geometry, 1)], out_shape=label.shape, transform=transform).astype(bool)
        assert mask.sum() == p.pixels and label[mask].all()
        assert p.mean_score == pytest.approx(float(score[mask].astype(np.float64).mean()), rel=1e-9)


def test_the_minimum_area_filter():
    label, score = _label_and_score()
    transform = Affine(10.0, 0, 0, 0, -10.0, 0)
    assert sorted(p.pixels for p in polygonize(label, score, transform, min_area=100.0)) == [1, 1, 30, 491]
    assert sorted(p.pixels for p in polygonize(label, score, transform, min_area=101.0)) == [30, 491]
    assert sorted(p.pixels for p in polygonize(label, score, transform, min_area=3001.0)) == [491]
    assert polygonize(np.zeros((4, 4), np.uint8)) == []


def test_ungeoreferenced_maps_are_in_pixels():
    label, score = _label_and_score()
    patches = polygonize(label, None)
    assert all(p.mean_score is None for p in patches)
    big = patches[0]
    assert big.area == 491.0
    assert shapely.geometry.shape(big.geometry).bounds == (20.0, 10.0, 45.0, 30.0)  # x = column, y = row
    assert area_unit(None) == "pixel"
    assert area_unit(CRS.from_epsg(32633)) == "m²" and area_unit(CRS.from_epsg(4326)) == "m²"  # geodesic


def test_write_polygons_from_a_run_folder(tmp_path):
    label, score = _label_and_score()
    crs = CRS.from_epsg(32633)
    like = Raster(np.zeros((1, *label.shape)), crs=crs,
                  transform=Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0))
    write_geotiff(tmp_path / "maps" / "a" / "x.tif", np.stack([score, label.astype(np.float32)]), like=like,
                  band_descriptions=["d.score", "d.label"])
    write_geotiff(tmp_path / "maps" / "b.tif", np.stack([score, np.zeros_like(score)]), like=like,
                  band_descriptions=["d.score", "d.label"])
    written = write_polygons(tmp_path, min_area=500.0)
    assert written == {"d": tmp_path / "artifacts" / "d" / "polygons.gpkg"}
    assert pyogrio.list_layers(written["d"])[:, 0].tolist() == ["polygons"]
    geoms, fields, crs_wkt = read_polygons(written["d"])
    assert CRS.from_user_input(crs_wkt).to_epsg() == 32633
    assert fields["item_id"].tolist() == ["a/x", "a/x"]            # two patches ≥ 5 pixels; b has none
    assert fields["pixels"].tolist() == [491, 30]
    assert fields["area"].tolist() == [49100.0, 3000.0]
    assert set(fields["area_unit"]) == {"m²"}
    areas = shapely.area(shapely.from_wkb(geoms))
    np.testing.assert_allclose(areas, fields["area"])


def test_png_maps_and_several_crss_get_a_layer_each(tmp_path):
    label, score = _label_and_score()
    bands = np.stack([score, label.astype(np.float32)])
    write_geotiff(tmp_path / "maps" / "png.tif", bands, band_descriptions=["d.score", "d.label"])
    like = Raster(np.zeros((1, *label.shape)), crs=CRS.from_epsg(32633), transform=Affine(2, 0, 0, 0, -2, 0))
    write_geotiff(tmp_path / "maps" / "utm.tif", bands, like=like, band_descriptions=["d.score", "d.label"])
    path = write_polygons(tmp_path)["d"]
    assert sorted(pyogrio.list_layers(path)[:, 0]) == ["polygons_epsg_32633", "polygons_pixels"]
    _g, px, crs = read_polygons(path, layer="polygons_pixels")
    assert crs is None and px["area"].tolist() == [491.0, 30.0, 1.0, 1.0]
    assert set(px["area_unit"]) == {"pixel"}
    _g, utm, _crs = read_polygons(path, layer="polygons_epsg_32633")
    assert utm["area"].tolist() == [4 * a for a in px["area"]]


def test_windowed_polygons_equal_the_whole_array(tmp_path):
    """A raster polygonised in 32-px windows: the same patches (merged across edges) as in one piece."""
    import rasterio
    from scipy import ndimage

    from satcore.outputs.polygons import polygonize_windows

    rng = np.random.default_rng(1)
    label = (ndimage.gaussian_filter(rng.random((100, 130)), 3) > 0.5).astype(np.float32)
    label[40:50, 40:50] = np.nan          # a mosaic's nodata is not change
    label[0:100, 64] = 1                  # one long patch through every window row
    score = rng.random(label.shape).astype(np.float32)
    transform = Affine(10.0, 0, 500000.0, 0, -10.0, 4200000.0)
    with rasterio.open(tmp_path / "m.tif", "w", driver="GTiff", height=100, width=130, count=2,
                       dtype="float32", crs="EPSG:32633", transform=transform) as ds:
        ds.write(np.stack([score, label]))
    whole = polygonize(label, score, transform, crs=CRS.from_epsg(32633))
    with rasterio.open(tmp_path / "m.tif") as ds:
        windowed = polygonize_windows(ds, 2, 1, window=32)
    assert len(windowed) == len(whole) >= 8
    assert windowed[0].pixels == whole[0].pixels > 100
    for w, r in zip(sorted(windowed, key=lambda p: (p.pixels, p.geometry["coordinates"][0][0])),
                    sorted(whole, key=lambda p: (p.pixels, p.geometry["coordinates"][0][0])), strict=True):
        assert (w.pixels, w.area) == (r.pixels, pytest.approx(r.area))
        assert w.mean_score == pytest.approx(r.mean_score, rel=1e-9)
        assert shapely.geometry.shape(w.geometry).equals(shapely.geometry.shape(r.geometry))


def test_geographic_areas_are_geodesic_square_metres():
    """A 20 × 10 px patch of 0.01° pixels at 45°N: pyproj's geodesic area of that lon/lat rectangle."""
    from pyproj import Geod

    label = np.zeros((30, 40), np.uint8)
    label[5:15, 10:30] = 1
    # columns 10..30 → 7.1..7.3°E, rows 5..15 → 45.25..45.15°N
    transform = Affine(0.01, 0, 7.0, 0, -0.01, 45.3)
    (patch,) = polygonize(label, None, transform, crs=CRS.from_epsg(4326))
    assert area_unit(CRS.from_epsg(4326)) == "m²"
    # the reference: the rectangle's boundary, one vertex per 0.001° so edges follow the parallels
    lon = np.r_[np.linspace(7.1, 7.3, 201), np.full(101, 7.3), np.linspace(7.3, 7.1, 201), np.full(101, 7.1)]
    lat = np.r_[np.full(201, 45.25), np.linspace(45.25, 45.15, 101), np.full(201, 45.15),
                np.linspace(45.15, 45.25, 101)]
    expected = abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0])
    assert patch.area == pytest.approx(expected, rel=1e-6)
    assert 1.7e8 < patch.area < 1.8e8                  # ≈ 15.7 km × 11.1 km
