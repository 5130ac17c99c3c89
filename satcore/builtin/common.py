"""What the built-in sources share: file indexing, item ids, pair alignment, change truth, dates."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from satcore.data import MAX_PIXELS, Item, ItemRef, Raster, item_id_problem, read_mask, read_raster
from satcore.errors import ComponentError, SatcoreError, SpecError

if TYPE_CHECKING:
    from affine import Affine

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".jp2", ".img")

#: The split names a dataset's own folders (``train/ val/ test/``) or ``evaluate.split: {by: …}`` may use.
SPLIT_FOLDERS = ("train", "val", "test")


class EmptySourceError(SatcoreError):
    """A source found nothing to process."""

    exit_code = 2


def must_exist(path: Path, what: str) -> Path:
    """``path``, or a ``ValueError`` (a params validation error): it does not exist, or is the wrong kind.

    ``what`` is ``"folder"`` for a folder; anything else names a file.
    """
    if not path.exists():
        raise ValueError(f"{what} {path} does not exist")
    if path.is_dir() != (what == "folder"):  # reading a folder as a file fails only at run time
        raise ValueError(f"{what} {path} is a {'file' if what == 'folder' else 'folder'}: give the "
                         f"{'folder' if what == 'folder' else 'file'} itself")
    return path


def valid_regex(pattern: str | None) -> str | None:
    """``pattern``, or a ``ValueError`` (a params validation error) when it is not a regular expression."""
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise ValueError(f"not a valid regular expression: {str(exc)[:120]}") from None
    return pattern


def tile_of(stem: str, pattern: str | None) -> str:
    """The ``tile`` group of ``pattern`` matched on ``stem`` (the whole stem when it does not match)."""
    if not pattern:
        return stem
    m = re.match(pattern, stem)
    if m is None:
        return stem
    return m.group("tile") if "tile" in m.groupdict() else m.group(1) if m.groups() else m.group(0)


def index_files(folder: Path, extensions: Iterable[str],
                duplicates: dict[str, list[Path]] | None = None) -> dict[str, Path]:
    """Relative id (POSIX, without extension) → file, for every image under ``folder``, sorted by id.

    Symlinks are followed for reading but never resolved into ids; hidden files are skipped. A linked folder
    is listed once, at the first path that reaches it (a seen-set of ``(st_dev, st_ino)``), so a symlink loop
    ends the walk instead of listing ``a/a/a/…`` until the path is too long. When two files differ only by
    extension (``x.png`` and ``x.tif``) neither is picked silently: the id maps to the first and, when
    ``duplicates`` is given, it receives ``id → [every file]`` so the source can fail that item naming them.
    """
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    exts = {e.lower() for e in extensions}
    top = os.fspath(folder)
    seen: set[tuple[int, int]] = set()
    # string operations, not pathlib: this runs once per file of the dataset
    for dirpath, dirs, files in os.walk(top, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link: already listed (or a loop)
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()  # the first path to a linked folder is the same on every machine
        rel_dir = os.path.relpath(dirpath, top)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            if ext.lower() in exts and not f.startswith("."):
                key = prefix + stem
                if key in out and duplicates is not None:
                    duplicates.setdefault(key, [out[key]]).append(Path(dirpath, f))
                out.setdefault(key, Path(dirpath, f))
    return dict(sorted(out.items()))


def duplicate_problem(item_id: str, files: list[Path]) -> tuple[str, str, str]:
    """The failed-item row for one stem found with several extensions."""
    return (item_id, "DuplicateFile", f"{' and '.join(map(str, files))} have the same name with different "
            "extensions, so the item is ambiguous; remove or rename all but one")


#: The ``max_pixels`` field of every built-in source that reads images.
MAX_PIXELS_DESCRIPTION = ("Largest image read, in width × height × bands (checked from the file header "
                          "before decoding); a larger file fails its item. null = no limit.")


def mark_invalid(item: Item, logger: logging.Logger) -> Item:
    """Make the item's nodata and non-finite pixels invalid (``Item.valid``) and log how many there were."""
    n = item.mask_invalid_pixels()
    if n:
        h, w = item.images[0].shape
        logger.info("item %s: %d of %d pixels are nodata or not finite; left out of statistics and metrics",
                    item.item_id, n, h * w)
    return item


class IdChecker:
    """Checks every id a source lists (:func:`satcore.data.item_id_problem`), collecting the bad ones.

    Ids made from file names become a failed item (``BadItemId`` in ``errors.jsonl``), never a file written
    outside the run folder; ids a user typed (a manifest, a text file) are a spec error naming the row.
    """

    def __init__(self) -> None:
        self.problems: list[tuple[str, str, str]] = []

    def ok(self, item_id: str, where: str) -> bool:
        """Whether ``item_id`` is usable; if not, record the problem naming ``where`` it came from."""
        problem = item_id_problem(item_id)
        if problem is not None:
            # a file name that is not UTF-8 holds lone surrogates (PEP 383), which no UTF-8 writer accepts:
            # the bytes are shown as \xNN escapes instead
            shown = where.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            self.problems.append((repr(item_id)[1:-1], "BadItemId", f"{shown}: {problem}"))
        return problem is None

    @staticmethod
    def require(item_id: str, where: str) -> str:
        """``item_id``, or a :class:`~satcore.errors.SpecError` naming ``where`` (a file and row)."""
        problem = item_id_problem(item_id)
        if problem is not None:
            raise SpecError(f"{where}: bad item id {item_id!r}: {problem}")
        return item_id


def align_pair(a: Raster, b: Raster, mode: str, a_path: str, b_path: str) -> Raster:
    """Return ``b`` on ``a``'s grid, or raise ComponentError when they differ and ``mode`` is ``error``."""
    same_crs = (a.crs is None and b.crs is None) or (
        a.crs is not None and b.crs is not None and a.crs == b.crs)
    if a.shape == b.shape and same_crs and (
            a.crs is None or cast("Affine", a.transform).almost_equals(cast("Affine", b.transform))):
        return b
    if mode == "error":
        if not same_crs:
            raise ComponentError(f"{a_path} has CRS {a.crs} but {b_path} has CRS {b.crs}; reproject one of "
                                 "them or set `align: reproject` on the source")
        if a.shape != b.shape:
            raise ComponentError(f"{a_path} is {a.shape[1]}×{a.shape[0]} px but {b_path} is "
                                 f"{b.shape[1]}×{b.shape[0]} px; pairs must share one grid "
                                 "(crop/resample them, "
                                 "or set `align: reproject` for georeferenced pairs)")
        raise ComponentError(f"{a_path} and {b_path} have different geotransforms; set `align: reproject`")
    if a.crs is None or b.crs is None:
        raise ComponentError(f"{a_path} / {b_path}: `align: reproject` needs georeferenced images (CRS and "
                             "transform); these have none")
    from rasterio.warp import Resampling, reproject

    out = np.zeros((b.count, *a.shape), dtype=b.array.dtype)
    reproject(b.array, out, src_transform=b.transform, src_crs=b.crs, dst_transform=a.transform,
              dst_crs=a.crs, resampling=Resampling.bilinear, src_nodata=b.nodata, dst_nodata=b.nodata)
    return Raster(out, crs=a.crs, transform=a.transform, band_names=b.band_names, nodata=b.nodata,
                  time=b.time, path=b.path)


def load_truth(ref: ItemRef, shape: tuple[int, int], ignore_value: int | None,
               max_pixels: int | None = MAX_PIXELS) -> tuple[Any, Any]:
    """Read the label (nonzero = change), the optional ``unchanged`` and ``ignore`` masks → (label, valid)."""
    label = valid = None
    if ref.paths.get("label"):
        raw = read_raster(ref.paths["label"], max_pixels=max_pixels).array
        if raw.shape[1:] != shape:
            raise ComponentError(f"{ref.paths['label']} is {raw.shape[2]}×{raw.shape[1]} px but the image is "
                                 f"{shape[1]}×{shape[0]} px")
        label = (raw != 0).any(axis=0)
        if ignore_value is not None:
            valid = ~(raw == ignore_value).any(axis=0)
            label &= valid
    if ref.paths.get("unchanged"):
        unchanged = read_mask(ref.paths["unchanged"])
        if unchanged.shape != shape:
            raise ComponentError(f"{ref.paths['unchanged']} does not match the image size {shape}")
        known = unchanged if label is None else (unchanged | label)
        valid = known if valid is None else (valid & known)
        if label is None:
            label = np.zeros(shape, bool)
    if ref.paths.get("ignore"):
        ign = read_mask(ref.paths["ignore"])
        if ign.shape != shape:
            raise ComponentError(f"{ref.paths['ignore']} does not match the image size {shape}")
        valid = ~ign if valid is None else (valid & ~ign)
    return label, valid


_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y_%m_%d", "%Y%m", "%Y")


def parse_time(value: Any) -> datetime | None:
    """A date from ``20200131``, ``2020-01-31``, ``2020_01_31``, ``202001`` or ``2020``; else ``None``."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(str(value), fmt)
        except ValueError:
            continue
    return None


def split_list(value: Any, sep: str) -> tuple[str, ...] | None:
    """``"a; b"`` → ``("a", "b")`` (stripped, empty parts dropped); a list stays a list; empty → ``None``."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    parts = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value).split(sep)
    out = tuple(p.strip() for p in parts if p.strip())
    return out or None
