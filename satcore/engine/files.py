"""Files steps make: a generator's images and texts (``generated/``), arrays a step returns (``artifacts/``).

Both are written while rows are built, by whichever process builds them (the driver, or a Dask worker writing
into the shared run folder, as maps are); the rows get the files' paths relative to the run folder.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from satcore.data import Item, Raster, write_geotiff
from satcore.errors import ComponentError
from satcore.io import write_bytes, write_text

#: the run-folder subfolders of this module
GENERATED = "generated"
ARTIFACTS = "artifacts"


def relative(out: Path, path: Path) -> str:
    """``path`` relative to the run folder ``out``, with ``/`` (the form the table holds)."""
    return path.relative_to(out).as_posix()


def georeference_of(raster: Raster, item: Item) -> Raster | None:
    """Whose CRS and transform a generated raster is written with.

    Its own when it has a CRS; else the input item's when the item has images and the raster has their
    height and width (an image→image generator need not copy the georeference); else none.
    """
    if raster.crs is not None:
        return raster
    if item.images and raster.shape == item.images[0].shape and item.images[0].crs is not None:
        return item.images[0]
    return None


def _rasters(step_id: str, output: dict[str, Any]) -> list[Raster]:
    rasters: list[Any] = []
    if output.get("image") is not None:
        rasters.append(output["image"])
    images = output.get("images")
    if images is not None:
        if isinstance(images, Raster) or not isinstance(images, (list, tuple)):
            raise ComponentError(f"step {step_id!r}: `images` must be a list of Raster, got "
                                 f"{type(images).__name__} (return `image: Raster` for one image)")
        rasters.extend(images)
    bad = [type(r).__name__ for r in rasters if not isinstance(r, Raster)]
    if bad:
        raise ComponentError(f"step {step_id!r}: generated images must be satcore.data.Raster, got {bad}: "
                             "wrap an array as Raster(array) (bands, height, width), or "
                             "item.images[0].with_array(array) to keep the input's georeference")
    return rasters


def _texts(step_id: str, output: dict[str, Any]) -> list[str]:
    texts: list[Any] = []
    if output.get("text") is not None:
        texts.append(output["text"])
    more = output.get("texts")
    if more is not None:
        if isinstance(more, str) or not isinstance(more, (list, tuple)):
            raise ComponentError(f"step {step_id!r}: `texts` must be a list of strings, got "
                                 f"{type(more).__name__} (return `text: str` for one text)")
        texts.extend(more)
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise ComponentError(f"step {step_id!r}: generated texts must be strings, got {bad}")
    return texts


def _names(step_id: str, n: int, ext: str) -> list[str]:
    return [f"{step_id}.{ext}"] if n == 1 else [f"{step_id}.{k}.{ext}" for k in range(n)]


def write_generated(out: Path, item: Item, step_id: str, output: Any) -> list[str]:
    """Write one item's generator output under ``generated/<item_id>/``; returns the relative paths.

    Rasters become ``<step_id>.tif`` (several: ``<step_id>.<k>.tif``), GeoTIFFs with the raster's band
    names as band descriptions and the georeference :func:`georeference_of` picks; texts become
    ``<step_id>.txt`` (several: ``<step_id>.<k>.txt``).

    Raises:
        ComponentError: the output is not a dict, or its images/texts are not Rasters/strings.
    """
    if not isinstance(output, dict):
        raise ComponentError(f"step {step_id!r}: a generator returns one dict per item (with `images` and/or "
                             f"`texts`), got {type(output).__name__}")
    rasters = _rasters(step_id, output)
    texts = _texts(step_id, output)
    folder = out / GENERATED / item.item_id
    paths: list[str] = []
    for name, r in zip(_names(step_id, len(rasters), "tif"), rasters, strict=True):
        arr = r.array.astype(np.uint8) if r.array.dtype == bool else r.array
        write_geotiff(folder / name, arr, like=georeference_of(r, item), band_descriptions=list(r.band_names))
        paths.append(relative(out, folder / name))
    for name, t in zip(_names(step_id, len(texts), "txt"), texts, strict=True):
        write_text(folder / name, t)
        paths.append(relative(out, folder / name))
    return paths


def write_array(out: Path, step_id: str, item_id: str, key: str, array: np.ndarray) -> str:
    """Write an output array to ``artifacts/<step_id>/<item_id>.<key>.npy``; returns its relative path."""
    path = out / ARTIFACTS / step_id / f"{item_id}.{key.replace('/', '_')}.npy"
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes(path, buf.getvalue())
    return relative(out, path)
