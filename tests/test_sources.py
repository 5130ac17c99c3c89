"""Built-in sources: item ids, labels, ignore masks, alignment, the NAIP series and manifests."""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

import satcore
from satcore.builtin.sources import (
    FolderPairsParams,
    FolderPairsSource,
    GeoTiffSeriesParams,
    GeoTiffSeriesSource,
    ManifestParams,
    ManifestSource,
)
from satcore.errors import ComponentError, SpecError


def folder_pairs(**kw):
    return FolderPairsSource(FolderPairsParams.model_validate(kw))


# ------------------------------------------------------------------------------------------ folder-pairs


def test_item_ids_nested_symlinks_and_duplicates(tmp_path, h):
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (3, 8, 8), dtype=np.uint8)
    for rel in ("top", "sub/inner", "sub/deeper/x", "copy"):
        h.write_raster(root / "A" / f"{rel}.png", img)  # identical contents everywhere
        h.write_raster(root / "B" / f"{rel}.png", img)
    # a symlinked file and a symlinked folder living outside A/ and B/
    outside = tmp_path / "outside"
    h.write_raster(outside / "real.png", img)
    h.write_raster(outside / "dir" / "y.png", img)
    for side in ("A", "B"):
        os.symlink(outside / "real.png", root / side / "link.png")
        os.symlink(outside / "dir", root / side / "linked")
    src = folder_pairs(root=str(root), label=None)
    refs = list(src.list_items())
    ids = [r.item_id for r in refs]
    assert ids == sorted(["top", "sub/inner", "sub/deeper/x", "copy", "link", "linked/y"])
    by = {r.item_id: r for r in refs}
    assert by["link"].paths["a"] == str(root / "A" / "link.png")  # not resolved into the target's name
    assert by["linked/y"].paths["b"] == str(root / "B" / "linked" / "y.png")
    item = src.load(by["link"])
    np.testing.assert_array_equal(item.images[0].array, img)  # followed for reading
    assert item.images[0].band_names == ("red", "green", "blue") and item.images[0].crs is None
    assert src.list_problems() == []
    # the engine keeps every one as its own row and writes nested maps
    res = satcore.run(
        {
            "version": 1,
            "source": {"type": "folder-pairs", "root": str(root), "label": None},
            "steps": [{"id": "cva", "type": "cva"}],
            "output": {"dir": str(tmp_path / "o"), "report": False},
        },
        progress=False,
    )
    assert res.items_ok == 6
    df = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert sorted(df["item_id"]) == sorted(ids)
    assert (tmp_path / "o" / "maps" / "sub" / "deeper" / "x.tif").exists()
    assert (tmp_path / "o" / "maps" / "linked" / "y.tif").exists()
    assert not (tmp_path / "o" / "metrics.json").exists()  # no truth, no metrics


def test_tile_metadata_from_crop_names(tmp_path, h):
    h.make_pairs(tmp_path / "d", 1, prefix="train_36_0512_")
    src = folder_pairs(root=str(tmp_path / "d"))
    (ref,) = src.list_items()
    assert ref.item_id == "train_36_0512_000" and ref.meta["tile"] == "train_36"


@pytest.mark.parametrize("scale", [1, 255])
def test_labels_zero_one_and_zero_255(tmp_path, h, scale):
    h.make_pairs(tmp_path / "d", 2, label_scale=scale)
    src = folder_pairs(root=str(tmp_path / "d"))
    it = src.load(next(iter(src.list_items())))
    expected = np.zeros((16, 16), bool)
    expected[2:8, 2:8] = True
    np.testing.assert_array_equal(it.label, expected)
    assert it.image_label == 1 and it.valid is None


def test_ignore_value_and_ignore_mask(tmp_path, h):
    root = tmp_path / "d"
    h.make_pairs(root, 1)
    lab = np.zeros((16, 16), np.uint8)
    lab[0:4, 0:4] = 1
    lab[10:12, :] = 9  # unknown
    h.write_raster(root / "label" / "img000.png", lab)
    ign = np.zeros((16, 16), np.uint8)
    ign[:, 15] = 255
    h.write_raster(root / "ignore" / "img000.png", ign)
    src = folder_pairs(root=str(root), ignore_value=9, ignore="ignore")
    it = src.load(next(iter(src.list_items())))
    valid = np.ones((16, 16), bool)
    valid[10:12, :] = False
    valid[:, 15] = False
    np.testing.assert_array_equal(it.valid, valid)
    np.testing.assert_array_equal(it.label, (lab == 1))


def test_labels_optional(tmp_path, h, pm):
    root = tmp_path / "d"
    h.make_pairs(root, 3)
    (root / "label" / "img001.png").unlink()
    src = folder_pairs(root=str(root), labels="optional")
    refs = {r.item_id: r for r in src.list_items()}
    assert set(refs) == {"img000", "img001", "img002"} and src.list_problems() == []
    assert src.load(refs["img001"]).label is None
    res = satcore.run(
        h.spec_dict(root, tmp_path / "o", **{})
        | {"source": {"type": "folder-pairs", "root": str(root), "labels": "optional"}},
        progress=False,
        pm=pm,
    )
    assert (res.items_ok, res.items_failed) == (3, 0)
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["class_balance"]["items"] == 2  # only items with truth are scored
    # required (the default): the item fails with a hint
    src = folder_pairs(root=str(root))
    assert [r.item_id for r in src.list_items()] == ["img000", "img002"]
    ((iid, etype, msg),) = src.list_problems()
    assert (iid, etype) == ("img001", "MissingLabel") and "`labels: optional`" in msg


def test_list_file_filters_items(tmp_path, h):
    h.make_pairs(tmp_path / "d", 4)
    (tmp_path / "keep.txt").write_text("img001.png\nimg003\n\n")
    src = folder_pairs(root=str(tmp_path / "d"), list=str(tmp_path / "keep.txt"))
    assert [r.item_id for r in src.list_items()] == ["img001", "img003"]


def test_align_reproject_georeferenced_pair(tmp_path, h):
    """B's grid is shifted by whole pixels: reprojecting onto A's grid is an exact shift of B's pixels."""
    root = tmp_path / "d"
    rng = np.random.default_rng(2)
    a = rng.integers(0, 200, (3, 20, 20)).astype(np.float32)
    b = rng.integers(0, 200, (3, 24, 24)).astype(np.float32)
    ta = Affine(10, 0, 500020, 0, -10, 4000000 - 20)  # A starts 2 px right and 2 px down of B
    tb = Affine(10, 0, 500000, 0, -10, 4000000)
    h.write_raster(root / "A" / "p.tif", a, "EPSG:32633", ta)
    h.write_raster(root / "B" / "p.tif", b, "EPSG:32633", tb)
    # error mode (the default) fails the item with a hint
    src = folder_pairs(root=str(root), label=None)
    ref = next(iter(src.list_items()))
    with pytest.raises(
        ComponentError, match=r"p\.tif is 20×20 px but .*p\.tif is 24×24 px.*`align: reproject`"
    ):
        src.load(ref)
    src = folder_pairs(root=str(root), label=None, align="reproject")
    it = src.load(ref)
    assert it.images[1].array.shape == (3, 20, 20)
    assert it.images[1].crs == it.images[0].crs and it.images[1].transform == ta
    np.testing.assert_allclose(it.images[1].array, b[:, 2:22, 2:22], atol=1e-3)


def test_align_reproject_other_crs(tmp_path, h):
    """B in another UTM zone's CRS is resampled onto A's grid (compared with rasterio.warp per pixel)."""
    from rasterio.warp import transform as warp

    root = tmp_path / "d"
    yy, xx = np.mgrid[0:40, 0:40]
    a = np.stack([xx, yy, xx + yy]).astype(np.float32)
    # B: a smooth ramp in EPSG:4326 so bilinear resampling is nearly exact
    lon0, lat0, res = 14.99, 45.01, 0.0005
    tb = Affine(res, 0, lon0, 0, -res, lat0)
    rows, cols = np.mgrid[0:60, 0:60]
    b = np.stack([cols, rows, cols * 2]).astype(np.float32)
    xs, ys = warp("EPSG:4326", "EPSG:32633", [lon0 + 0.005], [lat0 - 0.005])
    ta = Affine(10, 0, xs[0], 0, -10, ys[0])
    h.write_raster(root / "A" / "p.tif", a, "EPSG:32633", ta)
    h.write_raster(root / "B" / "p.tif", b, "EPSG:4326", tb)
    src = folder_pairs(root=str(root), label=None, align="reproject")
    with pytest.raises(ComponentError, match="has CRS EPSG:32633 but .* has CRS EPSG:4326"):
        folder_pairs(root=str(root), label=None).load(next(iter(src.list_items())))
    it = src.load(next(iter(src.list_items())))
    got = it.images[1].array
    # expected: the B column of each A pixel centre, through the CRS
    r, c = 10, 20
    x, y = ta * (c + 0.5, r + 0.5)
    lon, lat = warp("EPSG:32633", "EPSG:4326", [x], [y])
    bc, br = ~tb * (lon[0], lat[0])
    assert got[0, r, c] == pytest.approx(bc - 0.5, abs=0.05)
    assert got[1, r, c] == pytest.approx(br - 0.5, abs=0.05)


def test_png_pairs_need_georeference_to_reproject(tmp_path, h):
    root = tmp_path / "d"
    h.write_raster(root / "A" / "p.png", np.zeros((3, 8, 8), np.uint8))
    h.write_raster(root / "B" / "p.png", np.zeros((3, 9, 8), np.uint8))
    src = folder_pairs(root=str(root), label=None, align="reproject")
    with pytest.raises(ComponentError, match="`align: reproject` needs georeferenced images"):
        src.load(next(iter(src.list_items())))


# ------------------------------------------------------------------------------------------ geotiff-series


def utm_forward(lat, lon, lon0):
    """Transverse Mercator (Snyder 1987, eqs. 8-9 to 8-10) on GRS80, independent of PROJ."""
    a, f, k0 = 6378137.0, 1 / 298.257222101, 0.9996
    e2 = 2 * f - f * f
    ep2 = e2 / (1 - e2)
    phi, lam = math.radians(lat), math.radians(lon - lon0)
    n = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    t = math.tan(phi) ** 2
    c = ep2 * math.cos(phi) ** 2
    aa = lam * math.cos(phi)
    m = a * (
        (1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256) * phi
        - (3 * e2 / 8 + 3 * e2**2 / 32 + 45 * e2**3 / 1024) * math.sin(2 * phi)
        + (15 * e2**2 / 256 + 45 * e2**3 / 1024) * math.sin(4 * phi)
        - (35 * e2**3 / 3072) * math.sin(6 * phi)
    )
    x = (
        k0 * n * (aa + (1 - t + c) * aa**3 / 6 + (5 - 18 * t + t * t + 72 * c - 58 * ep2) * aa**5 / 120)
        + 500000
    )
    y = k0 * (
        m
        + n
        * math.tan(phi)
        * (
            aa**2 / 2
            + (5 - t + 9 * c + 4 * c * c) * aa**4 / 24
            + (61 - 58 * t + t * t + 600 * c - 330 * ep2) * aa**6 / 720
        )
    )
    return x, y


def test_naip_series_locations_windows_and_times(h):
    lat, lon, win = 47.0060, -99.1560, 32
    src = GeoTiffSeriesSource(
        GeoTiffSeriesParams.model_validate(
            {
                "root": str(h.NAIP),
                "locations": [
                    {"id": "field", "lat": lat, "lon": lon},
                    {"id": "far", "lat": 40.0, "lon": -99.0},
                ],
                "window": win,
            }
        )
    )
    refs = list(src.list_items())
    assert [r.item_id for r in refs] == ["field", "far"]
    files = sorted(h.NAIP.glob("*.tif"))
    dates = sorted(datetime.strptime(f.stem.rsplit("_", 1)[1], "%Y%m%d") for f in files)
    assert len(dates) == 10
    assert refs[0].meta["times"] == [d.isoformat() for d in dates]
    item = src.load(refs[0])
    assert item.kind == "series" and len(item.images) == 10
    assert [im.time for im in item.images] == dates
    x, y = utm_forward(lat, lon, -99.0)  # EPSG:26914 is UTM zone 14N (central meridian 99°W) on NAD83/GRS80
    for im, f in zip(item.images, sorted(files, key=lambda p: p.stem[-8:]), strict=True):
        assert im.path == str(f) and str(im.crs) == "EPSG:26914"
        with rasterio.open(f) as ds:
            col, row = (math.floor(v) for v in ~ds.transform * (x, y))
            expected = ds.read(window=((row - win // 2, row + win // 2), (col - win // 2, col + win // 2)))
        assert im.array.shape == (4, win, win)
        np.testing.assert_array_equal(im.array, expected)
        # the window's transform puts the location at its centre pixel
        cx, cy = ~im.transform * (x, y)
        assert (math.floor(cx), math.floor(cy)) == (win // 2, win // 2)
        assert im.band_names == ("red", "green", "blue", "nir")
    with pytest.raises(ComponentError, match=r"location far \(40\.0, -99\.0\) is outside .*20090818\.tif"):
        src.load(refs[1])


def test_series_without_locations_uses_the_centre_and_bad_dates(tmp_path, h):
    src = GeoTiffSeriesSource(
        GeoTiffSeriesParams.model_validate({"root": str(h.NAIP), "pattern": "*2009*.tif", "window": 8})
    )
    (ref,) = src.list_items()
    assert ref.item_id == "centre" and 46.9 < ref.meta["lat"] < 47.1 and -99.3 < ref.meta["lon"] < -99.0
    it = src.load(ref)
    assert it.images[0].array.shape == (4, 8, 8)
    shutil.copy(next(h.NAIP.glob("*2009*.tif")), tmp_path / "nodate.tif")
    src = GeoTiffSeriesSource(GeoTiffSeriesParams.model_validate({"root": str(tmp_path)}))
    with pytest.raises(SpecError, match=r"cannot read a date from nodate\.tif"):
        list(src.list_items())


# ------------------------------------------------------------------------------------------ manifest


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_manifest_csv_and_json(tmp_path, h, fmt, pm):
    h.make_pairs(tmp_path / "d", 3)
    rows = [
        {
            "item_id": f"m{i}",
            "a": f"d/A/img00{i}.png",
            "b": f"d/B/img00{i}.png",
            "label": f"d/label/img00{i}.png",
            "tile": "t0" if i < 2 else "t1",
        }
        for i in range(3)
    ]
    rows.append({"item_id": "scene", "a": "d/A/img000.png", "change": "1"})
    rows.append({"a": "d/A/img001.png", "b": "d/B/img001.png", "time_a": "2019-01-02", "time_b": "20200304"})
    path = tmp_path / f"items.{fmt}"
    if fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path.write_text(json.dumps({"items": rows}))
    src = ManifestSource(ManifestParams.model_validate({"path": str(path)}))
    refs = {r.item_id: r for r in src.list_items()}
    assert list(refs) == ["m0", "m1", "m2", "scene", "d/A/img001"]
    assert refs["m0"].paths["a"] == str(tmp_path / "d" / "A" / "img000.png")  # relative to the manifest
    assert refs["m1"].meta["tile"] == "t0" and refs["m2"].meta["tile"] == "t1"
    assert refs["scene"].meta["kind"] == "scene"
    it = src.load(refs["m0"])
    assert it.image_label == 1 and it.label.sum() == 36
    sc = src.load(refs["scene"])
    assert len(sc.images) == 1 and sc.image_label == 1 and sc.label is None
    t = src.load(refs["d/A/img001"])
    assert [im.time for im in t.images] == [datetime(2019, 1, 2), datetime(2020, 3, 4)]


def test_manifest_problems(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("item_id,a,b\nx,a.png,b.png\nx,c.png,d.png\n")
    with pytest.raises(SpecError, match=r"m\.csv: row 3: duplicate item_id 'x'"):
        list(ManifestSource(ManifestParams.model_validate({"path": str(p)})).list_items())
    p.write_text("item_id,a,b\ny,,b.png\n")
    with pytest.raises(SpecError, match=r"m\.csv: row 2 has no `a` path"):
        list(ManifestSource(ManifestParams.model_validate({"path": str(p)})).list_items())


def test_repeated_pairs_through_a_manifest_stay_separate(tmp_path, h, pm):
    """The same files listed under distinct ids are distinct items (used by the memory benchmark)."""
    ids = h.make_pairs(tmp_path / "d", 2)
    rows = [
        {"item_id": f"r{k}/{i}", "a": f"d/A/{i}.png", "b": f"d/B/{i}.png", "label": f"d/label/{i}.png"}
        for k in range(3)
        for i in ids
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    spec = h.spec_dict(tmp_path, tmp_path / "o")
    spec["source"] = {"type": "manifest", "path": str(tmp_path / "m.csv")}
    res = satcore.run(spec, progress=False, pm=pm)
    assert res.items_ok == 6
    df = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert df.groupby(df["item_id"].str.split("/").str[1])["diff.score"].nunique().eq(1).all()


def test_series_missing_file_is_a_component_error(tmp_path, h):
    for f in sorted(h.NAIP.glob("*.tif"))[:2]:
        shutil.copy(f, tmp_path / f.name)
    src = GeoTiffSeriesSource(GeoTiffSeriesParams.model_validate({"root": str(tmp_path), "window": 4}))
    (ref,) = src.list_items()
    gone = sorted(tmp_path.glob("*.tif"))[1]
    gone.unlink()
    with pytest.raises(ComponentError, match=rf"^{gone}: file does not exist$"):
        src.load(ref)
    gone.write_bytes(b"II*\x00garbage")
    with pytest.raises(ComponentError, match=rf"^{gone}: cannot read image \(.*corrupt or truncated$"):
        src.load(ref)


def test_png_sidecars_still_georeference_with_readdir_disabled(tmp_path):
    """GDAL_DISABLE_READDIR_ON_OPEN=TRUE (satcore's read option) still finds world files and .aux.xml."""
    from PIL import Image

    from satcore.data import GDAL_OPTIONS, gdal_env, read_raster

    assert GDAL_OPTIONS["GDAL_DISABLE_READDIR_ON_OPEN"] == "TRUE"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "a.pgw").write_text("10\n0\n0\n-10\n500000\n4000000\n")
    (tmp_path / "a.png.aux.xml").write_text("<PAMDataset><SRS>EPSG:32633</SRS></PAMDataset>")
    for ctx in (gdal_env(), rasterio.Env()):  # satcore's environment, and a caller's own one
        with ctx:
            r = read_raster(tmp_path / "a.png")
        assert r.crs == rasterio.crs.CRS.from_epsg(32633)
        assert r.transform == Affine(10, 0, 499995, 0, -10, 4000005)  # world files name pixel centres


def test_gdal_env_sets_the_option_and_leaves_a_callers_env_alone(monkeypatch):
    from rasterio.env import getenv, hasenv

    from satcore.data import gdal_env

    assert not hasenv()
    with gdal_env():
        assert getenv()["GDAL_DISABLE_READDIR_ON_OPEN"] == "TRUE"
        with gdal_env():  # nested: a no-op inside an active environment
            assert getenv()["GDAL_DISABLE_READDIR_ON_OPEN"] == "TRUE"
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), gdal_env():
        assert getenv()["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "FALSE")  # the user's environment variable wins
    with gdal_env():
        assert "GDAL_DISABLE_READDIR_ON_OPEN" not in getenv()


def test_reading_pngs_from_threads_leaks_no_warning_and_no_filter(tmp_path):
    """read_raster from several threads: no NotGeoreferencedWarning escapes and the filter list is unchanged.

    (warnings.catch_warnings() per read in each thread let the warning through and left stray filters behind.)
    """
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from satcore.data import read_raster

    rng = np.random.default_rng(0)
    paths = []
    for i in range(60):
        p = tmp_path / f"t{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    for _ in range(5):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            before = list(warnings.filters)
            with ThreadPoolExecutor(4) as ex:
                arrays = list(ex.map(lambda p: read_raster(p).array, paths * 10))
            after = list(warnings.filters)
        assert [str(w.message) for w in caught] == [] and after == before
    assert len(arrays) == 600 and all(a.shape == (3, 16, 16) for a in arrays)
