"""Opening image files safely: one GDAL environment, thread-safe quiet opens, checks before decoding.

GDAL reads some broken files without an error — a truncated PNG, a JPEG without its end marker, a deflate
GeoTIFF block with one flipped bit all decode into whatever memory held — so these files are checked here
first (lengths and checksums only), and rasterio's "See previous exception" is replaced by the GDAL error it
points to. Used by :mod:`satcore.data`; rasterio is imported lazily.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from satcore.data import Raster

__all__ = [
    "DEFLATE_CHECK_BYTES", "GDAL_OPTIONS", "STRUCTURE_CHECKS", "deflate_problem", "describe_exception",
    "describe_read_failure", "gdal_env", "jpeg_problem", "open_quietly", "png_problem", "write_geotiff",
]


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, with the GDAL error it points to when rasterio says only "See previous".

    rasterio raises ``RasterioIOError("Read failed. See previous exception for details.")`` with the GDAL
    error (the real cause: "TIFFFillStrip: Read error…", "No space left on device") as ``__cause__``.
    """
    text = f"{type(exc).__name__}: {exc}"
    seen = 0
    cause = exc.__cause__ or exc.__context__
    while cause is not None and seen < 5 and "previous exception" in text.lower():
        text = f"{text.split(' See previous')[0]} ({cause})"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return text


def describe_read_failure(path: str, exc: BaseException) -> str:
    """The message of a failed item for an image ``path`` that could not be read (missing, empty, corrupt)."""
    size = os.path.getsize(path) if os.path.exists(path) else None
    if size is None:
        return f"{path}: file does not exist"
    if size == 0:
        return f"{path}: file is empty (0 bytes)"
    return f"{path}: cannot read image ({describe_exception(exc)}); the file may be corrupt or truncated"


def png_problem(path: str) -> str | None:
    """Why a PNG is truncated or malformed (its chunk chain must reach ``IEND``), or ``None``.

    GDAL's PNG driver reads a truncated file without an error, filling the missing rows with whatever the
    decoder's buffer held (different from run to run), so the chain is walked here first: lengths only,
    no decoding, a few reads per file.
    """
    import struct

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return None  # not a PNG after all: GDAL decides
        pos = 8
        while True:
            head = f.read(8)
            if len(head) < 8:
                return f"the PNG ends after {pos} of its bytes without an IEND chunk (truncated)"
            length, kind = struct.unpack(">I4s", head)
            pos += 12 + length
            if pos > size:
                return (f"the PNG chunk {kind!r} needs {length} bytes but the file ends at {size} bytes "
                        "(truncated)")
            if kind == b"IEND":
                return None
            f.seek(pos)


def jpeg_problem(path: str) -> str | None:
    """Why a JPEG is truncated (it must end with the EOI marker), or ``None``."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return None
        f.seek(-2, os.SEEK_END)
        if f.read(2) != b"\xff\xd9":
            return "the JPEG does not end with its end-of-image marker (truncated)"
    return None


#: Deflate-compressed GeoTIFFs up to this size have every block's zlib stream checked (see below).
DEFLATE_CHECK_BYTES = 256 << 20


def deflate_problem(ds: Any, path: str) -> str | None:
    """Why a deflate-compressed GeoTIFF block is corrupt (its zlib stream fails), or ``None``.

    GDAL 3.10 decodes a deflate block whose data is damaged (one flipped byte) without any error or warning,
    leaving the rest of the block as whatever memory held: different numbers on every read (found by
    ``tools/fuzz_images.py``). Each block is therefore inflated once more with :mod:`zlib`, which checks the
    stream's Adler-32; this costs about one more decode, so it is done for files up to
    :data:`DEFLATE_CHECK_BYTES`.
    """
    import zlib

    if os.path.getsize(path) > DEFLATE_CHECK_BYTES:
        return None
    blocks: set[tuple[int, int]] = set()
    bh, bw = ds.block_shapes[0]
    for b in range(1, ds.count + 1):
        for j in range(-(-ds.height // bh)):
            for i in range(-(-ds.width // bw)):
                off = ds.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=b)
                size = ds.get_tag_item(f"BLOCK_SIZE_{i}_{j}", "TIFF", bidx=b)
                if off and size:
                    blocks.add((int(off), int(size)))
    with open(path, "rb") as f:
        for off, size in sorted(blocks):
            f.seek(off)
            data = f.read(size)
            try:
                d = zlib.decompressobj()
                d.decompress(data)
                if not d.eof:
                    raise zlib.error("the stream ends early")
            except zlib.error as exc:
                return f"a deflate block at byte {off} is corrupt ({exc})"
    return None


#: File extension → its structure check (run before GDAL opens the file).
STRUCTURE_CHECKS = {".png": png_problem, ".jpg": jpeg_problem, ".jpeg": jpeg_problem}


#: GDAL options satcore reads and writes under. ``GDAL_DISABLE_READDIR_ON_OPEN=TRUE``: GDAL otherwise lists
#: the whole folder on every open to look for sidecar files, which makes reading N tiles from one folder O(N²)
#: (≈ 0.2 ms per open at 500 files, ≈ 0.5 ms at 4,000); with TRUE it probes the sidecars it needs
#: (``.aux.xml``, world files) by name, so georeferencing from sidecars still works (tested). ``EMPTY_DIR``
#: would be faster still but drops the sidecars. A value the user set in the environment wins.
GDAL_OPTIONS: dict[str, str] = {"GDAL_DISABLE_READDIR_ON_OPEN": "TRUE"}


def gdal_env() -> Any:
    """A ``rasterio.Env`` with :data:`GDAL_OPTIONS`, or a no-op when a GDAL environment is already active.

    Wrap a loop of reads in it (the engine wraps each item load and its main loop): one environment for many
    opens is cheaper than rasterio's default one per ``open``. A caller's own ``rasterio.Env`` is left as is.
    """
    import contextlib

    import rasterio.env

    if rasterio.env.hasenv():
        return contextlib.nullcontext()
    return rasterio.env.Env(**{k: v for k, v in GDAL_OPTIONS.items() if k not in os.environ})


_OPEN_LOCK = threading.Lock()


def open_quietly(path: str | os.PathLike[str], mode: str = "r", **kwargs: Any) -> Any:
    """``rasterio.open`` without its ``NotGeoreferencedWarning``, safe to call from many threads.

    PNG and JPEG tiles have no georeference by design, and rasterio warns about that when it opens them
    (only then). ``warnings.catch_warnings()`` swaps the process-wide filter list, so read-ahead threads each
    using it restore each other's lists: the warning leaks at random and stray filters stay behind (seen with
    two loader threads). The opens are therefore serialised under one lock (an open is ≈ 0.07 ms, most of it
    holding the GIL anyway); reading and writing pixels are not.
    """
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, mode, **kwargs)


def write_geotiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    like: Raster | None = None,
    band_descriptions: list[str] | None = None,
    **profile: Any,
) -> None:
    """Write ``(bands, H, W)`` to a tiled, deflate-compressed GeoTIFF, atomically (temp file + rename).

    The CRS and transform come from ``like``; an ungeoreferenced ``like`` writes no CRS.
    """
    if array.ndim == 2:
        array = array[None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = array.shape[1:]
    prof: dict[str, Any] = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "compress": "deflate",
    }
    if h >= 256 and w >= 256:
        prof.update(tiled=True, blockxsize=256, blockysize=256)
    if like is not None and like.crs is not None:
        prof.update(crs=like.crs, transform=like.transform)
    prof.update(profile)
    from satcore.io import atomic_path

    try:
        with atomic_path(path) as tmp, gdal_env(), open_quietly(tmp, "w", **prof) as dst:
            dst.write(array)
            for i, d in enumerate(band_descriptions or [], 1):
                dst.set_band_description(i, d)
    except Exception as exc:  # rasterio's "Write failed. See previous exception": say the cause
        raise OSError(f"{path}: cannot write ({describe_exception(exc)})") from exc
