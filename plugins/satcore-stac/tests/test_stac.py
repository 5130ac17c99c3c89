"""The stac source: a static catalog the test writes, and the API path against a local HTTP server.

Expected pixels come from rasterio reading the same window of the local file directly (boundless, nodata
as NaN); the HTTP server serves byte ranges (206) and counts what it sent. No other network.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from satcore_stac.source import StacParams, StacSource

from satcore.errors import ComponentError, SpecError
from satcore.testing import SourceContract

CRS = "EPSG:32633"
X0, Y0 = 460000.0, 5080000.0
SIZE = 256


def write_cog(path: Path, array: np.ndarray, res: float = 10.0) -> Path:
    """A tiled, deflate-compressed GeoTIFF (a COG's layout without overviews), nodata 0."""
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype=array.dtype, crs=CRS, transform=Affine(res, 0, X0, 0, -res, Y0), nodata=0,
                       tiled=True, blockxsize=64, blockysize=64, compress="deflate") as ds:
        ds.write(array, 1)
    return path


def lonlat(col: float, row: float) -> tuple[float, float]:
    lon, lat = warp(CRS, "EPSG:4326", [X0 + 10 * col + 5], [Y0 - 10 * row - 5])
    return float(lon[0]), float(lat[0])


def direct(path: Path | str, row: int, col: int, size: int) -> np.ndarray:
    with rasterio.open(path) as ds:
        a = ds.read(1, window=Window(col - size // 2, row - size // 2, size, size), boundless=True,
                    fill_value=0).astype(np.float32)
    a[a == 0] = np.nan
    return a


DATES = [("S2A_1", "2022-05-01", 10.0, "sentinel-2-l2a"), ("S2A_2", "2022-06-01", 80.0, "sentinel-2-l2a"),
         ("S2A_3", "2022-07-01", 5.0, "sentinel-2-l2a"), ("S2A_4", "2023-08-01", 1.0, "sentinel-2-l2a"),
         ("LC8_1", "2022-06-15", 0.0, "landsat-c2-l2")]


def make_items(folder: Path, href: Any = None) -> list[pystac.Item]:
    """One item per DATES row, assets red, nir (10 m) and swir16 (20 m) written under ``folder``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(write_cog(folder / "probe.tif", np.ones((SIZE, SIZE), np.uint16))) as ds:
        bbox = list(transform_bounds(CRS, "EPSG:4326", *ds.bounds))
    items = []
    x0, y0, x1, y1 = bbox
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    for item_id, day, cc, coll in DATES:
        when = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        item = pystac.Item(item_id, {"type": "Polygon", "coordinates": [ring]}, bbox, when,
                           {"eo:cloud_cover": cc}, collection=coll)
        for name, shape in (("red", SIZE), ("nir", SIZE), ("swir16", SIZE // 2)):
            f = write_cog(folder / f"{item_id}_{name}.tif",
                          rng.integers(1, 10000, (shape, shape)).astype(np.uint16), 10.0 * SIZE / shape)
            item.add_asset(name, pystac.Asset(href(f) if href else str(f), media_type=pystac.MediaType.COG))
        items.append(item)
    return items


def source(**params: Any) -> StacSource:
    return StacSource(StacParams.model_validate(params))


def check_windows(item, files: dict[str, dict[str, Path]], row: int, col: int, size: int) -> None:
    """Each image equals rasterio's own boundless read; swir16 (20 m): the 20 m pixel under each 10 m one."""
    for im, item_id in zip(item.images, item.meta["stac_items"], strict=True):
        assert im.band_names == ("red", "nir", "swir16") and im.array.shape == (3, size, size)
        np.testing.assert_array_equal(im.array[0], direct(files[item_id]["red"], row, col, size))
        np.testing.assert_array_equal(im.array[1], direct(files[item_id]["nir"], row, col, size))
        with rasterio.open(files[item_id]["swir16"]) as ds:
            coarse = ds.read(1).astype(np.float32)
        rows = np.arange(row - size // 2, row - size // 2 + size)
        cols = np.arange(col - size // 2, col - size // 2 + size)
        ok_r, ok_c = (rows >= 0) & (rows < SIZE), (cols >= 0) & (cols < SIZE)
        want = np.full((size, size), np.nan, np.float32)
        want[np.ix_(ok_r, ok_c)] = coarse[np.ix_(rows[ok_r] // 2, cols[ok_c] // 2)]
        np.testing.assert_array_equal(im.array[2], want)


@pytest.fixture
def catalog(tmp_path):
    items = make_items(tmp_path / "data")
    cat = pystac.Catalog("test", "a test catalog")
    cat.add_items(items)
    cat.normalize_hrefs(str(tmp_path / "stac"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    files = {it.id: {k: tmp_path / "data" / f"{it.id}_{k}.tif" for k in ("red", "nir", "swir16")}
             for it in items}
    return tmp_path / "stac" / "catalog.json", files


def test_static_catalog_filters_and_reads_edge_windows(catalog):
    path, files = catalog
    lon, lat = lonlat(250, 3)  # near the north-east corner: the window reaches past the scene
    src = source(catalog=str(path), locations=[{"id": "ne", "lat": lat, "lon": lon}], window=16,
                 datetime="2022-01-01/2022-12-31", max_cloud_cover=50, assets=["red", "nir", "swir16"])
    (ref,) = src.list_items()
    # S2A_2 is too cloudy, S2A_4 out of the time range, LC8_1 another collection
    assert ref.meta["stac_items"] == ["S2A_1", "S2A_3"] and ref.meta["cloud_cover"] == [10.0, 5.0]
    assert ref.meta["times"] == ["2022-05-01T00:00:00+00:00", "2022-07-01T00:00:00+00:00"]
    item = src.load(ref)
    assert item.kind == "series" and [im.time.month for im in item.images] == [5, 7]
    check_windows(item, files, 3, 250, 16)
    assert np.isnan(item.images[0].array[0, :5]).all()  # rows -5..-1 are outside: filled, not cut
    assert item.meta["valid_fraction"][0] == pytest.approx((11 * 14) / 256)


def test_random_points_and_uncovered_locations(catalog):
    path, _ = catalog
    lon0, lat0 = lonlat(0, SIZE - 1)
    lon1, lat1 = lonlat(SIZE - 1, 0)
    box = [lon0, lat0, lon1, lat1]
    a = source(catalog=str(path), random_points={"n": 5, "bbox": box, "seed": 3}, window=4,
               assets=["red", "nir"])
    refs = list(a.list_items())
    rng = np.random.default_rng(3)
    assert [r.meta["lon"] for r in refs] == list(rng.uniform(lon0, lon1, 5))
    assert [r.item_id for r in refs] == ["p000", "p001", "p002", "p003", "p004"]
    far = source(catalog=str(path), locations=[{"id": "far", "lat": 10.0, "lon": 10.0}], assets=["red"])
    assert list(far.list_items()) == []
    assert far.list_problems()[0][:2] == ("far", "NoScenes")
    wrong = source(catalog=str(path), locations=[{"id": "a", "lat": lat0, "lon": lon0}])  # no green, blue
    with pytest.raises(SpecError, match=r"has all the assets \['red', 'green', 'blue', 'nir'\] .*"
                                        r"has \['nir', 'red', 'swir16'\]"):
        list(wrong.list_items())
    with pytest.raises(ValueError, match="exactly one of `url`"):
        StacParams.model_validate({"locations": []})


@pytest.fixture
def server():
    """A threaded pytest-httpserver on 127.0.0.1 (GDAL keeps a connection open while it opens the next)."""
    from pytest_httpserver import HTTPServer

    httpserver = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    httpserver.start()
    yield httpserver
    httpserver.clear()
    httpserver.stop()


def test_api_search_with_range_requests(tmp_path, server, monkeypatch):
    httpserver = server
    from werkzeug import Request, Response

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    items = make_items(tmp_path, href=lambda f: httpserver.url_for(f"/data/{f.name}"))
    served: dict[str, int] = {}
    searches: list[dict[str, Any]] = []

    def serve_file(request: Request) -> Response:
        f = tmp_path / Path(request.path).name
        if not f.is_file():  # GDAL also asks for side-car files (.aux.xml, .msk): an empty 404
            gone = Response(b"", status=404)
            gone.headers["Connection"] = "close"
            return gone
        if request.method == "HEAD":  # the size only (werkzeug would otherwise send the body too)
            head = Response(b"", mimetype="image/tiff")
            head.headers["Content-Length"] = str(f.stat().st_size)
            head.headers["Accept-Ranges"] = "bytes"
            head.headers["Connection"] = "close"
            return head
        resp = Response(f.read_bytes(), mimetype="image/tiff")
        resp = resp.make_conditional(request, accept_ranges=True, complete_length=f.stat().st_size)
        resp.headers["Connection"] = "close"  # the test server handles one connection at a time
        if request.method != "HEAD":
            served[f.name] = served.get(f.name, 0) + int(resp.headers.get("Content-Length", 0))
        return resp

    def search(request: Request) -> Response:
        body = json.loads(request.data)
        searches.append(body)
        hits = [it.to_dict() for it in items if it.collection_id in body["collections"]
                and it.properties["eo:cloud_cover"] <= body["query"]["eo:cloud_cover"]["lte"]]
        return Response(json.dumps({"type": "FeatureCollection", "features": hits, "links": []}),
                        mimetype="application/geo+json")

    root = httpserver.url_for("/")
    httpserver.expect_request("/").respond_with_json({
        "type": "Catalog", "id": "test-api", "description": "local", "stac_version": "1.0.0",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                       "https://api.stacspec.org/v1.0.0/item-search#query"],
        "links": [{"rel": "self", "href": root}, {"rel": "root", "href": root},
                  {"rel": "search", "href": httpserver.url_for("/search"), "method": "POST",
                   "type": "application/geo+json"}]})
    httpserver.expect_request("/search", method="POST").respond_with_handler(search)
    httpserver.expect_request(re.compile(r"^/data/.*")).respond_with_handler(serve_file)

    lon, lat = lonlat(128, 128)
    src = source(url=root, locations=[{"id": "mid", "lat": lat, "lon": lon}], window=8,
                 datetime="2022-01-01/2023-12-31", max_cloud_cover=50, assets=["red", "nir", "swir16"])
    (ref,) = src.list_items()
    assert searches[0]["intersects"] == {"type": "Point", "coordinates": [lon, lat]}
    assert searches[0]["collections"] == ["sentinel-2-l2a"]
    assert searches[0]["datetime"].startswith("2022-01-01")
    assert searches[0]["query"] == {"eo:cloud_cover": {"lte": 50}}
    assert ref.meta["stac_items"] == ["S2A_1", "S2A_3", "S2A_4"]
    item = src.load(ref)
    files = {it.id: {k: tmp_path / f"{it.id}_{k}.tif" for k in ("red", "nir", "swir16")} for it in items}
    check_windows(item, files, 128, 128, 8)
    tens = {n: b for n, b in served.items() if "_swir16" not in n}  # 10 m assets, 130 kB each
    assert len(tens) == 6  # red and nir of the three dates
    for name, n in tens.items():  # only the header and the window's tiles, never the whole file
        assert n < (tmp_path / name).stat().st_size / 2, (name, n)


def test_unreadable_asset_is_an_item_error(catalog):
    path, files = catalog
    files["S2A_1"]["red"].write_bytes(b"II*\x00garbage")
    lon, lat = lonlat(100, 100)
    src = source(catalog=str(path), locations=[{"id": "a", "lat": lat, "lon": lon}], window=4,
                 max_cloud_cover=50, assets=["red"])
    (ref,) = src.list_items()
    with pytest.raises(ComponentError, match="S2A_1_red.tif"):
        src.load(ref)


class TestStacSourceContract(SourceContract):
    component = StacSource

    def make_params(self, tmp_path):
        path = tmp_path / "stac" / "catalog.json"
        if not path.exists():
            cat = pystac.Catalog("test", "a test catalog")
            cat.add_items(make_items(tmp_path / "data"))
            cat.normalize_hrefs(str(tmp_path / "stac"))
            cat.save(pystac.CatalogType.SELF_CONTAINED)
        locs = [{"id": f"l{i}", "lat": lonlat(30 * i, 40)[1], "lon": lonlat(30 * i, 40)[0]} for i in range(3)]
        return {"catalog": str(path), "locations": locs, "window": 8, "assets": ["red", "nir"],
                "max_cloud_cover": 50}
