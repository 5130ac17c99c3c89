"""``folder-classes`` with ``band_order``: EuroSAT MS files (B8A stored last) read in ESA order."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from satcore.builtin.folder_classes import BAND_ORDER_PRESETS, FolderClassesParams, FolderClassesSource
from satcore.components import RunContext
from satcore.data import Raster, write_geotiff
from satcore.errors import ComponentError

ESA = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
EUROSAT_FILE = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")


@pytest.fixture
def eurosat_ms(tmp_path):
    """Two class folders of 13-band uint16 GeoTIFFs laid out as EuroSAT MS: band k holds 100·(k+1) + image."""
    like = Raster(np.zeros((1, 8, 8), np.uint16), crs=CRS.from_epsg(32633),
                  transform=Affine(10, 0, 500000, 0, -10, 5000000))
    for cls in ("AnnualCrop", "Forest"):
        for i in range(2):
            arr = (np.arange(1, 14, dtype=np.uint16)[:, None, None] * 100 + i) * np.ones((1, 8, 8), np.uint16)
            write_geotiff(tmp_path / cls / f"{cls}_{i + 1}.tif", arr, like=like)
    return tmp_path


def _source(root, **params):
    src = FolderClassesSource(FolderClassesParams.model_validate({"root": str(root), **params}),
                              RunContext())
    return src, {r.item_id: r for r in src.list_items()}


def test_eurosat_ms_preset_reorders_to_esa_order(eurosat_ms):
    src, refs = _source(eurosat_ms, band_order="eurosat-ms")
    assert sorted(refs) == ["AnnualCrop/AnnualCrop_1", "AnnualCrop/AnnualCrop_2", "Forest/Forest_1",
                            "Forest/Forest_2"]
    item = src.load(refs["Forest/Forest_2"])
    r = item.images[0]
    assert r.band_names == ESA and item.classes == ("Forest",)
    # band B in ESA order holds the value written at B's position in the EuroSAT file order
    for b in ESA:
        assert int(r.band(b)[0, 0]) == 100 * (EUROSAT_FILE.index(b) + 1) + 1
    assert int(r.array[8, 0, 0]) == 1301 and int(r.array[12, 0, 0]) == 1201  # B8A was last, B12 before it
    assert r.crs == CRS.from_epsg(32633)


def test_explicit_list_and_band_selection(eurosat_ms):
    src, refs = _source(eurosat_ms, band_order=list(EUROSAT_FILE))  # the 13 bands named: ESA order out
    assert src.load(refs["AnnualCrop/AnnualCrop_1"]).images[0].band_names == ESA
    src, refs = _source(eurosat_ms, band_order="eurosat-ms", bands=["B04", "B03", "B02", "B8A"])
    r = src.load(refs["AnnualCrop/AnnualCrop_1"]).images[0]
    assert r.band_names == ("B04", "B03", "B02", "B8A")
    assert [int(v) for v in r.array[:, 0, 0]] == [400, 300, 200, 1300]


def test_band_order_problems(eurosat_ms):
    with pytest.raises(ValueError, match="unknown band_order preset 'eurosat'"):
        FolderClassesParams.model_validate({"root": str(eurosat_ms), "band_order": "eurosat"})
    with pytest.raises(ValueError, match="names a band twice"):
        FolderClassesParams.model_validate({"root": str(eurosat_ms), "band_order": ["B01", "B01"]})
    src, refs = _source(eurosat_ms, band_order=list(EUROSAT_FILE[:12]))
    with pytest.raises(ComponentError, match="13 bands but 12 band names"):
        src.load(refs["Forest/Forest_1"])
    assert BAND_ORDER_PRESETS["eurosat-ms"][-1] == "B8A" and BAND_ORDER_PRESETS["sentinel2"] == ESA
