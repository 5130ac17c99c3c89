"""Location windows of a series: a fixed-size window around a lat/lon point, cloud masks and random points.

Shared by ``geotiff-series`` and other series sources (``satcore-stac``), so that every location series
follows one rule: a window is always ``size × size`` pixels centred on the point's pixel (rows and columns
``row - size // 2 … row - size // 2 + size - 1``); the part outside the scene is NaN, never cut off.
rasterio is imported inside the functions (the core stays light).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rasterio.io import DatasetReader
    from rasterio.windows import Window

__all__ = ["DatasetCache", "cloud_mask", "nan_fill", "pad_window", "point_window", "random_lonlat"]


def point_window(ds: DatasetReader, lon: float, lat: float, size: int) -> tuple[Window, Window | None]:
    """The ``size × size`` window around a WGS84 point in an open dataset, and its part inside the scene.

    Args:
        ds: an open rasterio dataset with a CRS.
        lon: longitude (WGS84).
        lat: latitude (WGS84).
        size: window side in pixels.

    Returns:
        ``(full, inside)``: the full window (may reach past the scene) and its intersection with the scene,
        or ``None`` when the point's own pixel is outside the scene (the caller decides whether that is an
        error).
    """
    from rasterio.warp import transform as warp
    from rasterio.windows import Window

    xs, ys = warp("EPSG:4326", ds.crs, [lon], [lat])
    row, col = ds.index(xs[0], ys[0])
    half = size // 2
    full = Window(col - half, row - half, size, size)
    if not (0 <= row < ds.height and 0 <= col < ds.width):
        return full, None
    return full, full.intersection(Window(0, 0, ds.width, ds.height))


def pad_window(array: np.ndarray, full: Window, inside: Window | None) -> np.ndarray:
    """Place ``array`` (read over ``inside``) in a NaN float32 array covering ``full``.

    The result is what ``ds.read(window=full, boundless=True, fill_value=nan)`` gives for a float file;
    it is built here because boundless reads of remote COGs go through a VRT, which is slower and lossy on
    some drivers.

    Args:
        array: ``(bands, h, w)`` pixels of the ``inside`` window (any dtype).
        full: the full window.
        inside: the part of ``full`` that was read (``None``: nothing was, all NaN).

    Returns:
        ``(bands, full.height, full.width)`` float32.
    """
    out = np.full((array.shape[0], int(full.height), int(full.width)), np.nan, np.float32)
    if inside is not None:
        r0, c0 = int(inside.row_off - full.row_off), int(inside.col_off - full.col_off)
        out[:, r0:r0 + array.shape[1], c0:c0 + array.shape[2]] = array
    return out


def nan_fill(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """``array`` as float32 with the ``nodata`` value (and nothing else) replaced by NaN."""
    out = array.astype(np.float32, copy=True)
    if nodata is not None and not np.isnan(nodata):
        out[array == array.dtype.type(nodata)] = np.nan
    return out


def cloud_mask(array: np.ndarray, band_names: tuple[str, ...], *, cloud_band: str | None = None,
               cloud_scale: float = 1.0, cloud_threshold: float = 0.4,
               mask_band: str | None = None) -> np.ndarray:
    """``(H, W)``: True where a pixel is cloudy or masked.

    Args:
        array: ``(bands, H, W)`` float pixels (NaN = no measurement).
        band_names: one name per band.
        cloud_band: a cloud-probability band; ``value / cloud_scale`` is the probability 0–1.
        cloud_scale: the band value meaning probability 1 (255 for an 8-bit CLP, 1 for a 0–1 float).
        cloud_threshold: pixels whose probability is ``>=`` this are cloudy.
        mask_band: a mask band; nonzero = masked (e.g. Sentinel Hub's ``CLM``, 1 = cloud).

    Raises:
        KeyError: a named band is not there (the message lists the bands there are).
    """
    bad = np.zeros(array.shape[1:], bool)
    for name in (cloud_band, mask_band):
        if name is not None and name not in band_names:
            raise KeyError(f"band {name!r} not in {list(band_names)}")
    with np.errstate(invalid="ignore"):
        if cloud_band is not None:
            bad |= array[band_names.index(cloud_band)] / cloud_scale >= cloud_threshold
        if mask_band is not None:
            m = array[band_names.index(mask_band)]
            bad |= np.isfinite(m) & (m != 0)
    return bad


def random_lonlat(n: int, bbox: tuple[float, float, float, float],
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points drawn uniformly in ``bbox`` = ``(min_x, min_y, max_x, max_y)`` → ``(xs, ys)``.

    Drawn as ``rng = numpy.random.default_rng(seed)``, then ``rng.uniform(min_x, max_x, n)``, then
    ``rng.uniform(min_y, max_y, n)``, so a seed always gives the same points (the thesis drew its 100
    locations uniformly in a lon/lat box).
    """
    rng = np.random.default_rng(seed)
    xs = rng.uniform(bbox[0], bbox[2], n)
    ys = rng.uniform(bbox[1], bbox[3], n)
    return xs, ys



class DatasetCache:
    """Open rasterio datasets kept for the next location, per process and thread, least recently used closed.

    A location series reads one small window from every dated file, so opening each file once per location
    (and checking its structure) costs far more than the read (about 4 ms against 0.1 ms per date on the
    Slovenia series). An entry is keyed by the path, the file's size and modification time, and whatever
    the caller's ``extra`` says (e.g. the band names asked for): a rewritten file is opened afresh. Handles
    are never shared between threads (a rasterio dataset is not thread-safe) nor across a fork (the child
    starts empty); at most ``size`` per thread stay open.
    """

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._local = threading.local()

    def _entries(self) -> OrderedDict[Any, tuple[Any, Any]]:
        loc = self._local
        if getattr(loc, "pid", None) != os.getpid():
            loc.pid, loc.entries = os.getpid(), OrderedDict()
        entries: OrderedDict[Any, tuple[Any, Any]] = loc.entries
        return entries

    @staticmethod
    def _key(path: str, extra: Any) -> Any:
        st = os.stat(path)
        return (path, st.st_size, st.st_mtime_ns, extra)

    def get(self, path: str, extra: Any = None) -> tuple[Any, Any] | None:
        """``(dataset, header)`` stored for this file as it is now, or ``None``."""
        try:
            key = self._key(path, extra)
        except OSError:
            return None
        entries = self._entries()
        hit = entries.get(key)
        if hit is None or hit[0].closed:
            return None
        entries.move_to_end(key)
        return hit

    def put(self, path: str, dataset: Any, header: Any, extra: Any = None) -> None:
        """Keep ``dataset`` (open) with ``header``; closes the least recently used beyond ``size``."""
        entries = self._entries()
        for key in [k for k in entries if k[0] == path]:  # an older version of the file
            entries.pop(key)[0].close()
        entries[self._key(path, extra)] = (dataset, header)
        while len(entries) > self.size:
            entries.popitem(last=False)[1][0].close()

    def clear(self) -> None:
        """Close this thread's datasets."""
        entries = self._entries()
        while entries:
            entries.popitem()[1][0].close()
