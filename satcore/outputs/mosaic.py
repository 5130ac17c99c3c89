"""``mosaic/<scene>.tif``: a tiled scene's per-tile change maps as one Cloud-Optimized GeoTIFF.

The tiles are copied window by window into a tiled temporary GeoTIFF beside the target, which GDAL's COG
driver then translates (with overviews) into the final file, so memory follows the tile, not the scene.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from satcore.io import atomic_path

#: internal tile (and overview block) size of the mosaics
BLOCKSIZE = 256


@dataclass
class MosaicTile:
    """One tile map to place: its GeoTIFF and its window in the scene, ``[row, col, height, width]``."""

    path: Path
    window: list[int]


def write_mosaic(dst: Path, shape: tuple[int, int], like: str, tiles: list[MosaicTile]) -> None:
    """Write the COG ``dst`` of a ``shape`` scene georeferenced as the file ``like`` from its tile maps.

    Bands, their descriptions and dtype come from the first tile; pixels no tile covers are nodata (NaN).
    Overviews use nearest-neighbour resampling (label bands stay 0/1); compression is deflate.
    """
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    from satcore.data import gdal_env

    with gdal_env(), rasterio.open(like) as ref, rasterio.open(tiles[0].path) as first:
        count, dtype, descriptions = first.count, first.dtypes[0], first.descriptions
        crs, transform = ref.crs, ref.transform
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tiles.{os.getpid()}.tmp")  # a temp name --overwrite recognises
    try:
        profile = {"driver": "GTiff", "height": shape[0], "width": shape[1], "count": count, "dtype": dtype,
                   "crs": crs, "transform": transform, "nodata": float("nan"), "tiled": True,
                   "blockxsize": BLOCKSIZE, "blockysize": BLOCKSIZE, "compress": "deflate",
                   "BIGTIFF": "IF_SAFER"}
        with gdal_env(), rasterio.open(tmp, "w", **profile) as out:
            for k, d in enumerate(descriptions, 1):
                if d:
                    out.set_band_description(k, d)
            for t in tiles:
                r, c, h, w = t.window
                with rasterio.open(t.path) as src:
                    out.write(src.read(), window=Window(c, r, w, h))
        with gdal_env(), atomic_path(dst) as final:
            rasterio.shutil.copy(tmp, final, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=str(BLOCKSIZE),
                                 OVERVIEWS="AUTO", OVERVIEW_RESAMPLING="NEAREST", BIGTIFF="IF_SAFER")
    finally:
        for p in (tmp, Path(str(tmp) + ".aux.xml")):
            if p.exists():
                p.unlink()
