"""Built-in sources: ``folder-pairs``, ``manifest`` and ``geotiff-series``."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import numpy as np
from pydantic import Field, field_validator

from satcore.components import Params, Source
from satcore.data import Item, ItemRef, Raster, _describe_read_failure, read_mask, read_raster
from satcore.errors import ComponentError, SatcoreError, SpecError
from satcore.spec.model import SpecPath

if TYPE_CHECKING:
    from affine import Affine

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".jp2", ".img")


class EmptySourceError(SatcoreError):
    """A source found nothing to process."""

    exit_code = 2


def _must_exist(path: Path, what: str) -> Path:
    if not path.exists():
        raise ValueError(f"{what} {path} does not exist")
    return path


def _tile_of(stem: str, pattern: str | None) -> str:
    if not pattern:
        return stem
    m = re.match(pattern, stem)
    if m is None:
        return stem
    return m.group("tile") if "tile" in m.groupdict() else m.group(1) if m.groups() else m.group(0)


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


def load_truth(ref: ItemRef, shape: tuple[int, int], ignore_value: int | None) -> tuple[Any, Any]:
    """Read the label (nonzero = change), the optional ``unchanged`` and ``ignore`` masks → (label, valid)."""
    label = valid = None
    if ref.paths.get("label"):
        raw = read_raster(ref.paths["label"]).array
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


# ------------------------------------------------------------------------------------------ folder-pairs

class FolderPairsParams(Params):
    """Parameters of ``folder-pairs``."""

    root: SpecPath = Field(description="Folder holding `A/`, `B/` and optional `label/` (LEVIR-CD layout).")
    a: str = Field("A", description="Sub-folder of the 'before' images.")
    b: str = Field("B", description="Sub-folder of the 'after' images.")
    label: str | None = Field(
        "label", description="Sub-folder of change masks (nonzero = change); null = none.")
    ignore: str | None = Field(
        None, description="Sub-folder of ignore masks (nonzero = excluded from metrics).")
    ignore_value: int | None = Field(None, description="Label value that marks unknown pixels.")
    labels: Literal["required", "optional"] = Field(
        "required", description="`required`: an item without its label file fails (when the label folder "
        "exists); `optional`: it runs without truth.")
    list: SpecPath | None = Field(None, description="Optional text file of names (one per line) to keep.")
    extensions: tuple[str, ...] = Field(IMAGE_EXTENSIONS, description="Image file extensions to pick up.")
    bands: tuple[str, ...] | None = Field(None, description="Band names, overriding the files'.")
    align: Literal["error", "reproject"] = Field(
        "error",
        description="Pairs on different grids: `error` fails the item, `reproject` resamples B onto A.")
    tile_pattern: str | None = Field(
        r"^(?P<tile>.+?)(?:_\d+){2}$",
        description="Regex on the file stem whose `tile` group is the item's `tile` "
        "(crops of one tile share it); "
        "the default strips a trailing `_<row>_<col>`.")

    @field_validator("root")
    @classmethod
    def _root_exists(cls, v: Path) -> Path:
        return _must_exist(v, "folder")


class FolderPairsSource(Source):
    """Image pairs in `A/` and `B/` with optional change masks in `label/` (the LEVIR-CD layout)."""

    name = "folder-pairs"
    params_model = FolderPairsParams
    produces: ClassVar[tuple[str, ...]] = ("pair", "mask")
    params: FolderPairsParams

    def _index(self, folder: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        if not folder.is_dir():
            return out
        exts = {e.lower() for e in self.params.extensions}
        top = os.fspath(folder)
        # string operations, not pathlib: this runs once per file of the dataset
        for dirpath, _dirs, files in os.walk(top, followlinks=True):
            rel_dir = os.path.relpath(dirpath, top)  # never resolve symlinks into ids
            prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            for f in files:
                stem, ext = os.path.splitext(f)
                if ext.lower() in exts and not f.startswith("."):
                    out.setdefault(prefix + stem, Path(dirpath, f))
        return dict(sorted(out.items()))

    def _scan(self) -> tuple[list[ItemRef], list[tuple[str, str, str]]]:
        p = self.params
        a_dir, b_dir = p.root / p.a, p.root / p.b
        for d in (a_dir, b_dir):
            if not d.is_dir():
                raise EmptySourceError(f"folder-pairs: {d} is not a folder (expected {p.root}/{p.a} and "
                                       f"{p.root}/{p.b}; rename them with `a:` / `b:`)")
        a_files, b_files = self._index(a_dir), self._index(b_dir)
        label_dir = p.root / p.label if p.label else None
        labels = self._index(label_dir) if label_dir and label_dir.is_dir() else {}
        ignores = self._index(p.root / p.ignore) if p.ignore else {}
        keep: set[str] | None = None
        if p.list is not None:
            if not p.list.exists():
                raise SpecError(f"folder-pairs: list file {p.list} does not exist")
            keep = {Path(x.strip()).with_suffix("").as_posix()
                    for x in p.list.read_text().splitlines() if x.strip()}
        refs: list[ItemRef] = []
        problems: list[tuple[str, str, str]] = []
        for item_id, a_path in a_files.items():
            if keep is not None and item_id not in keep:
                continue
            b_path = b_files.get(item_id)
            if b_path is None:
                problems.append((item_id, "MissingPartner", f"{a_path} has no partner in {b_dir} (looked for "
                                 f"{item_id}{{{','.join(p.extensions)}}})"))
                continue
            paths = {"a": str(a_path), "b": str(b_path)}
            if labels or (label_dir is not None and label_dir.is_dir()):
                if item_id in labels:
                    paths["label"] = str(labels[item_id])
                elif p.labels == "required":
                    problems.append((item_id, "MissingLabel", f"{a_path} has no label file in {label_dir}; "
                                     "add it, or set `labels: optional` on the source to run it "
                                     "without truth"))
                    continue
            if item_id in ignores:
                paths["ignore"] = str(ignores[item_id])
            refs.append(ItemRef(item_id, paths, {"tile": _tile_of(Path(item_id).name, p.tile_pattern),
                                                 "kind": "pair"}))
        for item_id, b_path in b_files.items():
            if item_id not in a_files and (keep is None or item_id in keep):
                problems.append((item_id, "MissingPartner", f"{b_path} has no partner in {a_dir}"))
        if not refs and not problems:
            raise EmptySourceError(f"folder-pairs: no images found in {a_dir} (extensions: "
                                   f"{', '.join(p.extensions)})")
        return refs, problems

    def list_items(self) -> Iterable[ItemRef]:
        """Items are the files in `A/` whose stem also exists in `B/`."""
        refs, self._problems = self._scan()
        return refs

    def list_problems(self) -> list[tuple[str, str, str]]:
        """Files without a partner or label."""
        if not hasattr(self, "_problems"):
            self.list_items()
        return list(self._problems)

    def load(self, ref: ItemRef) -> Item:
        """Read A, B, the label and the ignore mask; check they share one grid."""
        p = self.params
        a = read_raster(ref.paths["a"], bands=p.bands)
        b = read_raster(ref.paths["b"], bands=p.bands)
        b = align_pair(a, b, p.align, ref.paths["a"], ref.paths["b"])
        if a.count != b.count:
            raise ComponentError(f"{ref.paths['a']} has {a.count} bands but {ref.paths['b']} has {b.count}")
        label, valid = load_truth(ref, a.shape, p.ignore_value)
        return Item(ref.item_id, [a, b], label=label, valid=valid, meta=dict(ref.meta))


# ------------------------------------------------------------------------------------------ manifest

class ManifestParams(Params):
    """Parameters of ``manifest``."""

    path: SpecPath = Field(description="CSV or JSON file: one row per item with columns `a`, `b` "
                           "(optional for "
                           "single scenes), and optional `item_id`, `label`, `unchanged`, `ignore`, `tile`, "
                           "`change`, `time_a`, `time_b`; paths relative to the manifest.")
    bands: tuple[str, ...] | None = Field(None, description="Band names, overriding the files'.")
    align: Literal["error", "reproject"] = Field("error", description="As for `folder-pairs`.")
    ignore_value: int | None = Field(None, description="Label value that marks unknown pixels.")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        return _must_exist(v, "manifest")


class ManifestSource(Source):
    """Items listed in a CSV or JSON manifest (pairs or single scenes, with optional partial truth)."""

    name = "manifest"
    params_model = ManifestParams
    produces: ClassVar[tuple[str, ...]] = ("pair", "scene", "mask")
    params: ManifestParams

    def _rows(self) -> list[dict[str, Any]]:
        path = self.params.path
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            rows = data.get("items", data) if isinstance(data, dict) else data
        else:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SpecError(f"{path}: expected a list of rows (objects) with at least an `a` column")
        if not rows:
            raise EmptySourceError(f"manifest {path} lists no items")
        return rows

    def list_items(self) -> Iterable[ItemRef]:
        """One ref per manifest row."""
        base = self.params.path.parent
        refs: list[ItemRef] = []
        seen: set[str] = set()
        for n, row in enumerate(self._rows(), 2):
            if not row.get("a"):
                raise SpecError(f"{self.params.path}: row {n} has no `a` path")
            item_id = str(row.get("item_id") or Path(str(row["a"])).with_suffix("").as_posix())
            if item_id in seen:
                raise SpecError(f"{self.params.path}: row {n}: duplicate item_id {item_id!r}")
            seen.add(item_id)
            paths = {k: str(base / str(row[k]))
                     for k in ("a", "b", "label", "unchanged", "ignore") if row.get(k)}
            meta: dict[str, Any] = {"tile": row.get("tile") or row.get("group") or item_id,
                                    "kind": "pair" if "b" in paths else "scene"}
            for k in ("change", "time_a", "time_b"):
                if row.get(k) not in (None, ""):
                    meta[k] = row[k]
            refs.append(ItemRef(item_id, paths, meta))
        return refs

    def load(self, ref: ItemRef) -> Item:
        """Read the row's images and truth."""
        p = self.params
        a = read_raster(ref.paths["a"], bands=p.bands, time=_parse_time(ref.meta.get("time_a")))
        images = [a]
        if "b" in ref.paths:
            b = read_raster(ref.paths["b"], bands=p.bands, time=_parse_time(ref.meta.get("time_b")))
            images.append(align_pair(a, b, p.align, ref.paths["a"], ref.paths["b"]))
        label, valid = load_truth(ref, a.shape, p.ignore_value)
        image_label = int(ref.meta["change"]) if ref.meta.get("change") not in (None, "") else None
        return Item(ref.item_id, images, label=label, valid=valid, image_label=image_label,
                    meta=dict(ref.meta))


# ------------------------------------------------------------------------------------------ geotiff-series

_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y_%m_%d", "%Y%m", "%Y")


def _parse_time(value: Any) -> datetime | None:
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


class Location(Params):
    """A point to sample."""

    id: str = Field(description="Location id (the item id).")
    lat: float = Field(ge=-90, le=90, description="Latitude (WGS84).")
    lon: float = Field(ge=-180, le=180, description="Longitude (WGS84).")


class GeoTiffSeriesParams(Params):
    """Parameters of ``geotiff-series``."""

    root: SpecPath = Field(description="Folder of dated GeoTIFFs of one area.")
    pattern: str = Field("*.tif", description="Glob for the files inside `root`.")
    date_pattern: str = Field(r"(?<!\d)(?P<date>\d{8}|\d{4}-\d{2}-\d{2}|\d{4})(?!\d)",
                              description="Regex on the file name whose `date` group gives the "
                              "acquisition date.")
    locations: list[Location] | None = Field(None, description="Points to sample; omit for the scene centre.")
    window: int = Field(32, ge=1, description="Window size in pixels around each location.")
    bands: tuple[str, ...] | None = Field(None, description="Band names, overriding the files'.")

    @field_validator("root")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        return _must_exist(v, "folder")


class GeoTiffSeriesSource(Source):
    """A time series of dated GeoTIFFs of one area, sampled in a window at lat/lon locations."""

    name = "geotiff-series"
    params_model = GeoTiffSeriesParams
    produces: ClassVar[tuple[str, ...]] = ("series",)
    params: GeoTiffSeriesParams

    def _files(self) -> list[tuple[datetime, Path]]:
        rx = re.compile(self.params.date_pattern)
        out = []
        for f in sorted(self.params.root.glob(self.params.pattern)):
            m = rx.search(f.stem)
            t = _parse_time(m.group("date") if m and "date" in m.groupdict() else m.group(0) if m else None)
            if t is None:
                raise SpecError(f"geotiff-series: cannot read a date from {f.name} with date_pattern "
                                f"{self.params.date_pattern!r}")
            out.append((t, f))
        if not out:
            raise EmptySourceError(f"geotiff-series: no files match {self.params.root}/{self.params.pattern}")
        return sorted(out)

    def list_items(self) -> Iterator[ItemRef]:
        """One item per location (the scene centre when none are given)."""
        files = self._files()
        paths = {f"t{i}": str(f) for i, (_t, f) in enumerate(files)}
        times = [t.isoformat() for t, _f in files]
        locs = self.params.locations
        if not locs:
            import rasterio
            from rasterio.warp import transform as warp

            with rasterio.open(files[0][1]) as ds:
                cx, cy = ds.xy(ds.height // 2, ds.width // 2)
                lon, lat = warp(ds.crs, "EPSG:4326", [cx], [cy]) if ds.crs else ([cx], [cy])
            locs = [Location(id="centre", lat=float(lat[0]), lon=float(lon[0]))]
        for loc in locs:
            yield ItemRef(loc.id, dict(paths), {"lat": loc.lat, "lon": loc.lon, "times": times,
                                                "tile": loc.id, "kind": "series"})

    def load(self, ref: ItemRef) -> Item:
        """Read the window around the location in every dated file."""
        import rasterio
        from rasterio.warp import transform as warp
        from rasterio.windows import Window

        images = []
        half = self.params.window // 2
        for key, time in zip(sorted(ref.paths, key=lambda k: int(k[1:])), ref.meta["times"], strict=True):
            path = ref.paths[key]
            try:
                ds = rasterio.open(path)
            except Exception as exc:  # missing, corrupt or truncated: a failed item naming the file
                raise ComponentError(_describe_read_failure(path, exc)) from exc
            with ds:
                if ds.crs is None:
                    raise ComponentError(f"{path}: no CRS, cannot locate lat/lon")
                xs, ys = warp("EPSG:4326", ds.crs, [ref.meta["lon"]], [ref.meta["lat"]])
                row, col = ds.index(xs[0], ys[0])
                if not (0 <= row < ds.height and 0 <= col < ds.width):
                    raise ComponentError(f"location {ref.item_id} ({ref.meta['lat']}, {ref.meta['lon']}) is "
                                         f"outside {path}")
                win = Window(col - half, row - half, self.params.window, self.params.window)
                win = win.intersection(Window(0, 0, ds.width, ds.height))
            images.append(read_raster(path, bands=self.params.bands, window=win,
                                      time=datetime.fromisoformat(time)))
        return Item(ref.item_id, images, meta=dict(ref.meta))
