"""Whole-scene tiling for the built-in sources: a scene's tile grid, tile items, and reading them by window.

``tiling: {size, overlap}`` on a source cuts each scene (a large GeoTIFF pair) into ``size × size`` tiles.
Each tile is one item, ``<scene>/r<row>_c<col>`` (row and column in the tile grid), read window by window
with rasterio, never whole: its core plus a margin of context (``overlap``, or the steps' ``halo`` when that
is larger), clipped at the scene's edge. The engine crops the maps back to the core and mosaics them into
``mosaic/<scene>.tif`` (``docs/scale.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from satcore import data as _data
from satcore.components import Params
from satcore.components.detector import CORE_KEY
from satcore.data import MAX_PIXELS, Item, ItemRef, Raster, check_item_id
from satcore.errors import ComponentError

if TYPE_CHECKING:
    from rasterio.windows import Window

#: ``ItemRef.meta`` keys of a tile (``docs/scale.md``): its scene's item id, the scene's ``[height, width]``,
#: the tile's core window in the scene ``[row, col, height, width]``, and the context margin to read.
SCENE_KEY = "scene"
SCENE_SHAPE_KEY = "scene_shape"
WINDOW_KEY = "window"
HALO_KEY = "halo"
#: ``Item.meta`` key of the window actually read (core plus halo), ``[row, col, height, width]``.
READ_WINDOW_KEY = "read_window"


class TilingParams(Params):
    """``tiling:`` of a source: cut each scene into tiles read window by window."""

    size: int = Field(..., ge=16, description="Tile side in pixels (tiles at the right and bottom edges are "
                      "smaller). Memory follows the tile, not the scene.")
    overlap: int = Field(0, ge=0, description="Context pixels read around each tile on every side (clipped "
                         "at the scene's edge) and cropped away after the steps; the steps' own `halo` is "
                         "used when it is larger.")


TILING_DESCRIPTION = ("Cut each pair into `size`×`size` tiles read window by window, with `overlap` context "
                      "pixels around each; items are `<pair id>/r<row>_c<col>` and the change maps are "
                      "mosaicked into `mosaic/<pair id>.tif` (a Cloud-Optimized GeoTIFF). "
                      "null = whole images.")


def tile_grid(height: int, width: int, size: int) -> list[tuple[int, int, list[int]]]:
    """``(tile_row, tile_col, [row, col, height, width])`` of every tile of a scene, row by row."""
    out = []
    for i, r in enumerate(range(0, height, size)):
        for j, c in enumerate(range(0, width, size)):
            out.append((i, j, [r, c, min(size, height - r), min(size, width - c)]))
    return out


def tile_refs(scene: ItemRef, tiling: TilingParams) -> list[ItemRef]:
    """The tile refs of one scene ref (its ``a`` file's size read from the header, no pixels).

    Raises:
        ComponentError: the file cannot be opened.
    """
    from satcore.data import gdal_env, open_quietly

    path = scene.paths["a"]
    try:
        with gdal_env(), open_quietly(path) as ds:
            height, width = int(ds.height), int(ds.width)
    except Exception as exc:  # rasterio raises several types
        raise ComponentError(_data.describe_read_failure(path, exc)) from exc
    refs = []
    for i, j, win in tile_grid(height, width, tiling.size):
        item_id = check_item_id(f"{scene.item_id}/r{i}_c{j}", path)
        meta = {**scene.meta, SCENE_KEY: scene.item_id, SCENE_SHAPE_KEY: [height, width], WINDOW_KEY: win,
                HALO_KEY: tiling.overlap, "tile_row": i, "tile_col": j}
        meta.setdefault("tile", scene.item_id)  # split groups: the tiles of one scene stay together
        refs.append(ItemRef(item_id, dict(scene.paths), meta))
    return refs


def read_window(ref: ItemRef) -> tuple[list[int], list[int]]:
    """``(read, core)``: the scene window to read (core plus halo, clipped) and the core inside it."""
    r, c, h, w = (int(v) for v in ref.meta[WINDOW_KEY])
    height, width = (int(v) for v in ref.meta[SCENE_SHAPE_KEY])
    halo = int(ref.meta.get(HALO_KEY) or 0)
    r0, c0 = max(0, r - halo), max(0, c - halo)
    r1, c1 = min(height, r + h + halo), min(width, c + w + halo)
    return [r0, c0, r1 - r0, c1 - c0], [r - r0, c - c0, h, w]


def _window(win: list[int]) -> Window:
    from rasterio.windows import Window

    return Window(win[1], win[0], win[3], win[2])


def read_tile(path: str, win: list[int], bands: tuple[str, ...] | None = None,
              max_pixels: int | None = MAX_PIXELS) -> Raster:
    """One window of a file (rasterio windowed read: only the blocks it covers are decoded)."""
    raster = _data.read_raster(path, bands=bands, window=_window(win), max_pixels=max_pixels)
    if raster.shape != (win[2], win[3]):
        raise ComponentError(f"{path}: the window {win} lies outside the image ({raster.shape[1]}×"
                             f"{raster.shape[0]} px read); the file changed since it was listed")
    return raster


def _check_scene(ref: ItemRef) -> None:
    """Every file of the tile's pair (B, label, ignore) has A's size, CRS and geotransform (headers only)."""
    from satcore.data import gdal_env, open_quietly

    height, width = (int(v) for v in ref.meta[SCENE_SHAPE_KEY])
    grids = {}
    for key in ("a", "b", "label", "ignore"):
        path = ref.paths.get(key)
        if not path:
            continue
        try:
            with gdal_env(), open_quietly(path) as ds:
                grids[key] = (path, (int(ds.height), int(ds.width)), ds.crs, ds.transform)
        except Exception as exc:
            raise ComponentError(_data.describe_read_failure(path, exc)) from exc
    a_path, _shape, a_crs, a_transform = grids.pop("a")
    for path, shape, crs, transform in grids.values():
        if shape != (height, width):
            raise ComponentError(f"{a_path} is {width}×{height} px but {path} is {shape[1]}×{shape[0]} px; a "
                                 "tiled pair must share one grid (reproject one of them first: `align: "
                                 "reproject` is not available with `tiling:`)")
        if crs != a_crs or (crs is not None and not transform.almost_equals(a_transform)):
            raise ComponentError(f"{a_path} and {path} have a different CRS or geotransform; a tiled pair "
                                 "must share one grid (reproject one of them first)")


def load_tile_pair(ref: ItemRef, bands: tuple[str, ...] | None, ignore_value: int | None,
                   max_pixels: int | None) -> Item:
    """Read one tile of a pair: A, B, the label and the ignore mask, each by window (core plus halo).

    ``Item.meta`` gets ``core`` (the tile inside the arrays read) and ``read_window``.
    """
    win, core = read_window(ref)
    _check_scene(ref)
    a = read_tile(ref.paths["a"], win, bands, max_pixels)
    b = read_tile(ref.paths["b"], win, bands, max_pixels)
    if a.count != b.count:
        raise ComponentError(f"{ref.paths['a']} has {a.count} bands but {ref.paths['b']} has {b.count}")
    label: np.ndarray | None = None
    valid: np.ndarray | None = None
    if ref.paths.get("label"):
        raw = read_tile(ref.paths["label"], win, None, max_pixels).array
        label = np.asarray(np.asarray(raw != 0).any(axis=0))
        if ignore_value is not None:
            valid = np.asarray(~np.asarray(raw == ignore_value).any(axis=0))
            label = label & valid
    if ref.paths.get("ignore"):
        ign_raw = read_tile(ref.paths["ignore"], win, None, max_pixels).array
        ign = np.asarray(np.asarray(ign_raw != 0).any(axis=0))
        valid = np.asarray(~ign if valid is None else (valid & ~ign))
    meta: dict[str, Any] = {**ref.meta, CORE_KEY: core, READ_WINDOW_KEY: win}
    return Item(ref.item_id, [a, b], label=label, valid=valid, meta=meta)
