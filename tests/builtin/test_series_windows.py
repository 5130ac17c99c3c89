"""geotiff-series: fixed windows at scene edges, cloud/mask bands, random points, several folders.

Every expected value comes from rasterio reading the file directly (``boundless=True``) or from numpy's
``default_rng``, not from the source's own helpers.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp
from rasterio.windows import Window

from satcore.builtin.series import GeoTiffSeriesParams, GeoTiffSeriesSource
from satcore.cli import main
from satcore.errors import ComponentError, SpecError

CRS = "EPSG:32633"
ORIGIN = (465000.0, 5080000.0)


def write(path, array, names=None, nodata=None, origin=ORIGIN):
    """A GeoTIFF of ``array`` (bands, H, W) at 10 m in UTM 33N."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tf = Affine(10, 0, origin[0], 0, -10, origin[1])
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1],
                       count=array.shape[0], dtype=array.dtype, crs=CRS, transform=tf, nodata=nodata) as ds:
        ds.write(array)
        for i, n in enumerate(names or (), 1):
            ds.set_band_description(i, n)
    return path


def lonlat(x, y):
    lon, lat = warp(CRS, "EPSG:4326", [x], [y])
    return lon[0], lat[0]


def source(**params):
    return GeoTiffSeriesSource(GeoTiffSeriesParams.model_validate(params))


def load_all(src):
    return [src.load(r) for r in src.list_items()]


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(1, 1000, (2, 20, 24)).astype(np.uint16)
    arr[0, 0, 0] = 0  # nodata in a corner
    return write(tmp_path / "s" / "S2_2020-01-01.tif", arr, nodata=0), arr


@pytest.mark.parametrize(("row", "col"), [(1, 2), (18, 22), (0, 0), (10, 12)])
def test_edge_windows_are_filled_never_shrunk(scene, row, col):
    path, _arr = scene
    lon, lat = lonlat(ORIGIN[0] + 10 * col + 5, ORIGIN[1] - 10 * row - 5)  # the pixel's centre
    src = source(root=str(path.parent), locations=[{"id": "a", "lat": lat, "lon": lon}], window=8)
    (item,) = load_all(src)
    im = item.images[0]
    assert im.array.shape == (2, 8, 8) and im.array.dtype == np.float32
    with rasterio.open(path) as ds:
        win = Window(col - 4, row - 4, 8, 8)
        direct = ds.read(window=win, boundless=True, fill_value=0).astype(np.float32)
        expected_tf = ds.window_transform(win)
    direct[direct == 0] = np.nan  # nodata (0) and the fill are both "no measurement"
    np.testing.assert_array_equal(im.array, direct)
    assert im.transform.almost_equals(expected_tf)
    assert np.isnan(im.nodata)
    inside = (~np.isnan(direct)).all(axis=0).mean()  # a pixel counts when every band has a value
    assert item.meta["valid_fraction"] == [pytest.approx(inside)]
    if (row, col) != (10, 12):
        assert inside < 1  # these windows really reach past the edge


def test_point_outside_every_scene_is_an_item_error(scene, tmp_path):
    path, arr = scene
    lon, lat = lonlat(ORIGIN[0] - 500, ORIGIN[1] + 500)
    # a second folder whose scene lies 600 m further north-west: the point is inside that one only
    write(tmp_path / "w" / "S2_2020-02-01.tif", arr, nodata=0, origin=(ORIGIN[0] - 600, ORIGIN[1] + 600))
    loc = [{"id": "a", "lat": lat, "lon": lon}]
    src = source(root=[str(path.parent), str(tmp_path / "w")], locations=loc, window=4)
    (item,) = load_all(src)
    assert np.isnan(item.images[0].array).all() and item.meta["valid_fraction"][0] == 0
    assert np.isfinite(item.images[1].array).any()
    src = source(root=str(path.parent), locations=[{"id": "far", "lat": lat, "lon": lon}], window=4)
    (ref,) = src.list_items()
    with pytest.raises(ComponentError, match=r"location far .* is outside every file of the series "
                                             r"\(1 files: S2_2020-01-01\.tif\)"):
        src.load(ref)


def test_cloud_band_and_mask_band(tmp_path):
    rng = np.random.default_rng(1)
    ndvi = rng.uniform(-1, 1, (1, 10, 10)).astype(np.float32)
    clp = rng.integers(0, 256, (1, 10, 10)).astype(np.float32)  # an 8-bit probability stored as float
    clm = (rng.uniform(size=(1, 10, 10)) < 0.2).astype(np.float32)
    path = write(tmp_path / "s" / "S2_2020-01-01.tif", np.concatenate([ndvi, clp, clm]),
                 ["NDVI", "CLP", "CLM"])
    lon, lat = lonlat(ORIGIN[0] + 55, ORIGIN[1] - 55)
    loc = [{"id": "a", "lat": lat, "lon": lon}]
    with rasterio.open(path) as ds:
        direct = ds.read(window=Window(0, 0, 10, 10), boundless=True, fill_value=np.nan)
    cloudy = direct[1] / 255 >= 0.5
    masked = direct[2] != 0
    clouds = {"cloud_band": "CLP", "cloud_scale": 255, "cloud_threshold": 0.5}
    for params, bad in [(clouds, cloudy), ({"mask_band": "CLM"}, masked),
                        ({**clouds, "mask_band": "CLM"}, cloudy | masked)]:
        (item,) = load_all(source(root=str(path.parent), locations=loc, window=10, **params))
        a = item.images[0].array
        for i, name in enumerate(["NDVI", "CLP", "CLM"]):
            if name in params.values():  # the cloud and mask bands themselves stay as read
                np.testing.assert_array_equal(a[i], direct[i])
            else:
                np.testing.assert_array_equal(np.isnan(a[i]), bad)
                np.testing.assert_array_equal(a[i][~bad], direct[i][~bad])
        assert item.meta["valid_fraction"][0] == pytest.approx((~bad).mean())
    # a missing band fails the item, naming the bands there are
    src = source(root=str(path.parent), locations=loc, window=10, cloud_band="CLOUDS")
    with pytest.raises(ComponentError, match=r"band 'CLOUDS' not in \['NDVI', 'CLP', 'CLM'\]"):
        src.load(next(iter(src.list_items())))


def test_cloud_scale_defaults_to_255_for_integer_bands(tmp_path):
    clp = np.array([[[0, 100, 101, 255]]], np.uint8)
    val = np.array([[[1, 2, 3, 4]]], np.uint8)
    path = write(tmp_path / "s" / "S2_2020-01-01.tif", np.concatenate([val, clp]), ["B04", "CLP"])
    lon, lat = lonlat(ORIGIN[0] + 15, ORIGIN[1] - 5)
    (item,) = load_all(source(root=str(path.parent), locations=[{"id": "a", "lat": lat, "lon": lon}],
                              window=4, cloud_band="CLP", cloud_threshold=101 / 255))
    row = item.images[0].array[0, 2]  # the window's row 2 is the file's row 0; columns -1..2
    np.testing.assert_array_equal(row, [np.nan, 1, 2, np.nan])


def test_random_points_are_seeded_and_inside_the_bbox(scene):
    path, _ = scene
    bbox = [14.5, 45.8, 14.6, 45.9]
    a = [r.meta for r in source(root=str(path.parent), random_points={"n": 12, "bbox": bbox, "seed": 7})
         .list_items()]
    b = [r.meta for r in source(root=str(path.parent), random_points={"n": 12, "bbox": bbox, "seed": 7})
         .list_items()]
    c = [r.meta for r in source(root=str(path.parent), random_points={"n": 12, "bbox": bbox, "seed": 8})
         .list_items()]
    assert a == b and a != c
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(14.5, 14.6, 12), rng.uniform(45.8, 45.9, 12)
    assert [m["lon"] for m in a] == list(lon) and [m["lat"] for m in a] == list(lat)
    assert [m["tile"] for m in a] == [f"p{i:03d}" for i in range(12)]
    assert all(14.5 <= m["lon"] <= 14.6 and 45.8 <= m["lat"] <= 45.9 for m in a)
    # without a bbox: uniform over the scene, so every point is inside it
    refs = list(source(root=str(path.parent), random_points={"n": 30, "seed": 1}, window=2).list_items())
    with rasterio.open(path) as ds:
        for r in refs:
            (x,), (y,) = warp("EPSG:4326", CRS, [r.meta["lon"]], [r.meta["lat"]])
            assert ds.bounds.left <= x <= ds.bounds.right and ds.bounds.bottom <= y <= ds.bounds.top


def test_locations_and_random_points_are_exclusive(scene, tmp_path, capsys):
    path, _ = scene
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"version: 1\nsource:\n  type: geotiff-series\n  root: {path.parent}\n"
                    "  locations: [{id: a, lat: 45.8, lon: 14.5}]\n  random_points: {n: 3, seed: 1}\n"
                    "steps:\n  - {id: cva, type: cva}\noutput: {dir: out}\n")
    with pytest.raises(SystemExit) as ei:
        main(["validate", str(spec)])
    out = capsys.readouterr()
    assert ei.value.code == 2
    assert "`locations` and `random_points` are mutually exclusive" in out.out + out.err


def test_several_folders_merge_dates_and_refuse_duplicates(tmp_path):
    arr = np.ones((1, 6, 6), np.float32)
    write(tmp_path / "a" / "S2_2020-03-01.tif", arr)
    write(tmp_path / "a" / "S2_2020-01-01.tif", arr * 2)
    write(tmp_path / "b" / "S2_2020-02-01.tif", arr * 3)
    lon, lat = lonlat(ORIGIN[0] + 30, ORIGIN[1] - 30)
    src = source(root=[str(tmp_path / "a"), str(tmp_path / "b")], window=2,
                 locations=[{"id": "x", "lat": lat, "lon": lon}])
    (ref,) = src.list_items()
    assert ref.meta["times"] == ["2020-01-01T00:00:00", "2020-02-01T00:00:00", "2020-03-01T00:00:00"]
    item = src.load(ref)
    assert [float(im.array.mean()) for im in item.images] == [2.0, 3.0, 1.0]
    write(tmp_path / "b" / "S2_20200101.tif", arr)
    with pytest.raises(SpecError, match=r"S2_2020-01-01\.tif and .*S2_20200101\.tif have the same date "
                                        r"2020-01-01"):
        list(src.list_items())
