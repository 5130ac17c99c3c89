"""The data model: :class:`Raster` (pixels plus georeference) and :class:`Item` (what a source yields).

rasterio is imported lazily so that ``import satcore`` stays cheap.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from satcore.errors import ComponentError

# GDAL environment, opens and file checks live in satcore.raster_files; re-exported here, where plugins and
# the engine have always imported them from
from satcore.raster_files import GDAL_OPTIONS as GDAL_OPTIONS
from satcore.raster_files import STRUCTURE_CHECKS as STRUCTURE_CHECKS
from satcore.raster_files import deflate_problem as deflate_problem
from satcore.raster_files import describe_exception as describe_exception
from satcore.raster_files import describe_read_failure as describe_read_failure
from satcore.raster_files import gdal_env as gdal_env
from satcore.raster_files import open_quietly as open_quietly
from satcore.raster_files import write_geotiff as write_geotiff

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

#: Sentinel-2 band names in ESA order.
SENTINEL2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
RGB_BANDS = ("red", "green", "blue")
RGBN_BANDS = ("red", "green", "blue", "nir")


def default_band_names(count: int) -> tuple[str, ...]:
    """Band names for a raster that carries none: RGB, RGBN, Sentinel-2, else ``b1..bN``."""
    if count == 3:
        return RGB_BANDS
    if count == 4:
        return RGBN_BANDS
    if count == 13:
        return SENTINEL2_BANDS
    if count == 1:
        return ("gray",)
    return tuple(f"b{i}" for i in range(1, count + 1))


@dataclass
class Raster:
    """A multi-band image with its georeference.

    Attributes:
        array: pixels as ``(bands, height, width)``.
        crs: a :class:`rasterio.crs.CRS`, or ``None`` for PNG/JPEG and other ungeoreferenced files.
        transform: the affine pixel → CRS transform (identity when ungeoreferenced).
        band_names: one name per band (Sentinel-2 ``B01``…, ``red green blue [nir]``, or from the file).
        nodata: the nodata value, if any.
        time: acquisition time, if known.
        path: the file it was read from.
    """

    array: np.ndarray
    crs: CRS | None = None
    transform: Affine | None = None
    band_names: tuple[str, ...] = ()
    nodata: float | None = None
    time: datetime | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.array.ndim == 2:
            self.array = self.array[None]
        if self.array.ndim != 3:
            raise ValueError(f"Raster array must be (bands, height, width), got shape {self.array.shape}")
        if not self.band_names:
            self.band_names = default_band_names(self.array.shape[0])
        if len(self.band_names) != self.array.shape[0]:
            raise ValueError(f"{len(self.band_names)} band names for {self.array.shape[0]} bands")

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return int(self.array.shape[1]), int(self.array.shape[2])

    @property
    def count(self) -> int:
        """Number of bands."""
        return int(self.array.shape[0])

    def band(self, name: str) -> np.ndarray:
        """One band by name, as float32."""
        try:
            return cast(np.ndarray, self.array[self.band_names.index(name)].astype(np.float32))
        except ValueError:
            raise KeyError(f"band {name!r} not in {list(self.band_names)}") from None

    def has_bands(self, *names: str) -> bool:
        """Whether every band named exists."""
        return all(n in self.band_names for n in names)

    def invalid_mask(self) -> np.ndarray | None:
        """``(H, W)``: True where any band is the ``nodata`` value or not finite; ``None`` if no pixel is.

        These pixels carry no measurement (a NaN border of a reprojected GeoTIFF, a fill value), so sources
        mark them invalid on the item and statistics leave them out.
        """
        a = self.array
        bad: np.ndarray | None = None
        if np.issubdtype(a.dtype, np.floating):
            finite = np.isfinite(a)
            if not finite.all():
                bad = ~finite.all(axis=0)
        if self.nodata is not None:
            nd = float(self.nodata)
            if np.isnan(nd):
                hit = None  # NaN nodata: the non-finite test above already found them
            elif np.issubdtype(a.dtype, np.integer) and not (
                    nd.is_integer() and np.iinfo(a.dtype).min <= nd <= np.iinfo(a.dtype).max):
                hit = None  # a nodata value the dtype cannot hold matches no pixel
            else:
                hit = (a == a.dtype.type(nd)).any(axis=0)
            if hit is not None and hit.any():
                bad = hit if bad is None else (bad | hit)
        return bad

    def with_array(self, array: np.ndarray, band_names: tuple[str, ...] | None = None) -> Raster:
        """A copy with other pixels and the same georeference."""
        return replace(self, array=array, band_names=band_names or self.band_names)


@dataclass
class ItemRef:
    """A cheap handle on an item: id, file paths and metadata, listed before any pixel is read.

    The engine splits, skips (``--resume``) and schedules refs; the source turns each into an :class:`Item`
    with :meth:`satcore.components.Source.load`.
    """

    item_id: str
    paths: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def group(self, key: str | None) -> str:
        """The value used to keep related items on one side of a train/test split."""
        if key is None:
            return self.item_id
        value = self.meta.get(key)
        return str(value) if value is not None else self.item_id


@dataclass
class Item:
    """One unit of work: an image pair, a time series at a location, a single scene, or a text.

    Every field but ``item_id`` is optional, so ``Item("id", [a, b], label=mask)`` (a change-detection
    item) and ``Item("id", text="a harbour with boats")`` (a text-only item) are both plain constructor calls.
    Truth lives beside the inputs: ``label``/``valid``/``image_label`` for change, ``classes`` for scene
    labels, ``texts`` for reference captions, ``targets`` for target rasters (see ``docs/items.md``).

    Attributes:
        item_id: stable id (for ``folder-pairs`` the path relative to ``A/`` without extension); see
            :func:`item_id_problem` for what an id may contain.
        images: the rasters; two for a pair (before, after), N for a series, one for a scene, none for a
            text-only item.
        label: boolean change mask ``(H, W)`` (nonzero in the label file = change), or ``None``.
        valid: boolean mask of pixels whose truth is known (``None`` = all); pixels outside are ignored
            by the metrics.
        image_label: image-level truth (1 = change), derived from ``label`` when not given.
        meta: anything else the source knows (tile, location, dates, split).
        classes: class labels of the item (one for a single-label scene, several for multi-label), or
            ``None`` when unknown. A bare string is taken as one label; a list becomes a tuple.
        texts: reference captions (truth for captioners), or ``None``; same normalisation as ``classes``.
        targets: target rasters by name (truth for generators, e.g. ``{"target": s2}``), or ``None``. Each
            is a full :class:`Raster` with its own band names and georeference.
        text: the item's own input text (the prompt of a text-to-image generator, the text of a text-only
            item), or ``None``.
    """

    item_id: str
    images: list[Raster] = field(default_factory=list)
    label: np.ndarray | None = None
    valid: np.ndarray | None = None
    image_label: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    texts: tuple[str, ...] | None = None
    targets: dict[str, Raster] | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.image_label is None and self.label is not None:
            lab = self.label if self.valid is None else self.label & self.valid
            # a source may ask for more than one changed pixel (`min_changed_pixels`, kept in meta so that
            # augmented copies, whose label follows their transformed mask, use the same rule)
            least = int(self.meta.get("min_changed_pixels", 1))
            self.image_label = int(bool(lab.any())) if least <= 1 else int(int(lab.sum()) >= least)
        self.images = list(self.images)
        self.classes = _str_tuple(self.classes, "classes", self.item_id)
        self.texts = _str_tuple(self.texts, "texts", self.item_id)
        if self.targets is not None:
            targets = dict(self.targets)
            bad = [k for k, v in targets.items() if not isinstance(k, str) or not isinstance(v, Raster)]
            if bad:
                raise TypeError(f"item {self.item_id!r}: targets must map names (str) to Raster; bad: {bad}")
            self.targets = targets
        if self.text is not None and not isinstance(self.text, str):
            raise TypeError(f"item {self.item_id!r}: text must be a string, got {type(self.text).__name__}")

    @property
    def kind(self) -> str:
        """``pair``, ``series``, ``scene``, or ``text`` for an item without images (``meta["kind"]`` wins)."""
        if self.meta.get("kind"):
            return str(self.meta["kind"])
        n = len(self.images)
        return "text" if n == 0 else "pair" if n == 2 else "scene" if n == 1 else "series"

    @property
    def reference(self) -> Raster:
        """The raster whose grid maps are written on (the first image).

        Raises:
            ComponentError: the item has no images (a text-only item).
        """
        if not self.images:
            raise ComponentError("the item has no images (a text-only item), so it has no reference grid",
                                 self.item_id)
        return self.images[0]

    def invalid_pixels(self) -> np.ndarray | None:
        """``(H, W)``: True where any image has a nodata or non-finite pixel (``None`` when there is none).

        Unlike ``valid`` (where the *truth* is known) this is about the *pixels*: detectors leave these out of
        their statistics (normalisation, Otsu). Images on another grid than the first are not consulted.
        """
        bad: np.ndarray | None = None
        for r in self.images:
            m = r.invalid_mask()
            if m is not None and (bad is None or m.shape == bad.shape):
                bad = m if bad is None else (bad | m)
        return bad

    def mask_invalid_pixels(self) -> int:
        """Fold :meth:`invalid_pixels` into ``valid`` (so metrics skip them); returns how many there were."""
        bad = self.invalid_pixels()
        if bad is None or not bad.any():
            return 0
        if self.images and bad.shape == self.images[0].shape:
            self.valid = ~bad if self.valid is None else (self.valid & ~bad)
        return int(bad.sum())

    def pair_arrays(self, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """The before and after pixels as ``(bands, H, W)`` arrays of ``dtype``."""
        if len(self.images) != 2:
            raise ComponentError(f"expected an image pair, item has {len(self.images)} images", self.item_id)
        return self.images[0].array.astype(dtype), self.images[1].array.astype(dtype)


def _str_tuple(value: Any, name: str, item_id: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    out = tuple(value)
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"item {item_id!r}: {name} must be strings, got {[type(v).__name__ for v in out]}")
    return out


# ------------------------------------------------------------------------------------------ item ids

_DRIVE = re.compile(r"^[A-Za-z]:")


def item_id_problem(item_id: Any) -> str | None:
    """Why ``item_id`` cannot be an item id, or ``None`` when it can.

    Ids become file names under the run folder (``maps/<item_id>.tif``, ``generated/<item_id>/``), so an id
    is a relative POSIX path that stays inside its folder: non-empty; ``/`` the only separator; no absolute
    path or drive letter; no empty, ``.`` or ``..`` part; no backslash, NUL or other control character.
    """
    if not isinstance(item_id, str):
        return f"an item id must be a string, got {type(item_id).__name__}"
    if not item_id:
        return "the item id is empty"
    try:
        item_id.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir gives undecodable bytes as lone surrogates (PEP 383)
        return "the file name is not valid UTF-8; rename the file"
    if any(ord(c) < 32 or ord(c) == 127 for c in item_id):
        return "the item id contains a control character (NUL, newline, …)"
    if "\\" in item_id:
        return "the item id contains a backslash; use `/` between folders"
    if item_id.startswith("/") or _DRIVE.match(item_id):
        return "the item id is an absolute path; use a path relative to the dataset"
    if any(p in ("", ".", "..") for p in item_id.split("/")):
        return "the item id has an empty, `.` or `..` part; an id must stay inside its folder"
    return None


def check_item_id(item_id: Any, where: str = "") -> str:
    """``item_id`` when it is a safe id (see :func:`item_id_problem`), else raise.

    Args:
        item_id: the candidate id.
        where: what produced it, for the message (``"labels.csv row 4"``).

    Raises:
        ComponentError: naming the id, what is wrong with it and where it came from.
    """
    problem = item_id_problem(item_id)
    if problem is not None:
        raise ComponentError(f"{where + ': ' if where else ''}bad item id {item_id!r}: {problem}")
    return cast(str, item_id)


# --------------------------------------------------------------------------------------------- raster I/O

#: Largest image (width × height × bands) read by default: a 74-byte PNG header can claim 20,000×20,000
#: pixels, and decoding it would take gigabytes. Sources expose it as ``max_pixels``.
MAX_PIXELS = 100_000_000


_describe_read_failure = describe_read_failure  # the old private name, used by geotiff-series


def read_raster(
    path: str | os.PathLike[str],
    bands: tuple[str, ...] | None = None,
    window: Any = None,
    time: datetime | None = None,
    max_pixels: int | None = MAX_PIXELS,
) -> Raster:
    """Read PNG, JPEG, BMP, GeoTIFF or ENVI (any GDAL format) into a :class:`Raster`.

    An alpha band is dropped. Files without a georeference get ``crs=None``. Problems raise
    :class:`~satcore.errors.ComponentError` naming the file: a missing, empty, truncated (PNG chunk chain,
    JPEG end marker, any GDAL read error) or corrupt file, and one larger than ``max_pixels``
    (width × height × bands, checked from the header before any pixel is decoded; ``None`` = no limit).
    """
    from rasterio.enums import ColorInterp

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ComponentError(f"{path}: file does not exist")
    check = STRUCTURE_CHECKS.get(os.path.splitext(path)[1].lower())
    try:
        problem = check(path) if check is not None else None
    except OSError as exc:
        raise ComponentError(f"{path}: cannot read the file ({exc})") from exc
    if problem is not None:
        raise ComponentError(f"{path}: cannot read image ({problem}); the file may be corrupt or truncated: "
                             "re-export or re-download it")
    try:
        with gdal_env(), open_quietly(path) as ds:
            keep = [i for i, ci in enumerate(ds.colorinterp, 1) if ci != ColorInterp.alpha] or [1]
            h, w = (ds.height, ds.width) if window is None else (int(window.height), int(window.width))
            if max_pixels is not None and h * w * len(keep) > max_pixels:
                raise ComponentError(
                    f"{path}: the image is {w}×{h} px × {len(keep)} bands = {h * w * len(keep):,} values, "
                    f"over the limit of {max_pixels:,} (`max_pixels` on the source); raise `max_pixels` if "
                    "the file is genuine, or tile it")
            if window is None and ds.driver == "GTiff" and str(ds.compression).lower().endswith("deflate"):
                problem = deflate_problem(ds, path)
                if problem is not None:
                    raise ComponentError(f"{path}: cannot read image ({problem}); the file may be corrupt or "
                                         "truncated: re-export or re-download it")
            arr = ds.read(keep, window=window)
            descr = [ds.descriptions[i - 1] for i in keep]
            crs = ds.crs
            transform = ds.window_transform(window) if window is not None else ds.transform
            nodata = ds.nodata
    except ComponentError:
        raise
    except Exception as exc:  # rasterio raises several types for corrupt/truncated data
        raise ComponentError(describe_read_failure(path, exc)) from exc
    if bands:
        names = tuple(bands)
    elif all(descr) and len(set(descr)) == len(descr) and not any(d.startswith("Resize (") for d in descr):
        names = tuple(str(d) for d in descr)
    else:
        names = default_band_names(arr.shape[0])
    if len(names) != arr.shape[0]:
        raise ComponentError(
            f"{path}: {arr.shape[0]} bands but {len(names)} band names given ({list(names)})")
    if crs is None:
        from affine import Affine

        transform = Affine.identity() if window is None else transform
    return Raster(arr, crs=crs, transform=transform, band_names=names, nodata=nodata, time=time, path=path)


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a mask file as a boolean ``(H, W)`` array: nonzero in any band = True."""
    r = read_raster(path)
    return cast(np.ndarray, np.asarray(r.array != 0).any(axis=0))
