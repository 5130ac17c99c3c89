"""``geotiff-series``: a time series of dated GeoTIFFs of one area, sampled at lat/lon locations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from satcore.builtin.common import (
    EmptySourceError,
    IdChecker,
    mark_invalid,
    must_exist,
    parse_time,
    valid_regex,
)
from satcore.builtin.series_window import (
    DatasetCache,
    cloud_mask,
    nan_fill,
    pad_window,
    point_window,
    random_lonlat,
)
from satcore.components import Params, Source, SpecPath
from satcore.data import Item, ItemRef, Raster, _describe_read_failure, read_raster
from satcore.errors import ComponentError, SpecError


class Location(Params):
    """A point to sample."""

    id: str = Field(description="Location id (the item id).")
    lat: float = Field(ge=-90, le=90, description="Latitude (WGS84).")
    lon: float = Field(ge=-180, le=180, description="Longitude (WGS84).")


BBox = tuple[float, float, float, float]


class RandomPoints(Params):
    """Locations drawn at random, reproducibly (as the thesis drew its 100 locations)."""

    n: int = Field(ge=1, le=1_000_000, description="Number of points; ids `p000`, `p001`, ….")
    bbox: BBox | None = Field(
        None, description="`[min_lon, min_lat, max_lon, max_lat]` (WGS84): points uniform in lon/lat. "
        "Omitted: uniform over the first file's bounds in its own CRS, so every point is inside it.")
    seed: int = Field(0, description="Seed of `numpy.random.default_rng`: one seed, the same points.")

    @field_validator("bbox")
    @classmethod
    def _bbox_ok(cls, v: BBox | None) -> BBox | None:
        if v is not None:
            x0, y0, x1, y1 = v
            if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
                raise ValueError(f"bbox {list(v)} must be [min_lon, min_lat, max_lon, max_lat] with "
                                 "min < max, lon in -180..180 and lat in -90..90")
        return v


class GeoTiffSeriesParams(Params):
    """Parameters of ``geotiff-series``."""

    root: SpecPath | list[SpecPath] = Field(
        description="Folder of dated GeoTIFFs of one area, or a list of folders (their dates are merged and "
        "sorted; one date in two files is an error naming both).")
    pattern: str = Field("*.tif", description="Glob for the files inside `root`.")
    date_pattern: str = Field(r"(?<!\d)(?P<date>\d{8}|\d{4}-\d{2}-\d{2}|\d{4})(?!\d)",
                              description="Regex on the file name whose `date` group gives the "
                              "acquisition date.")
    locations: list[Location] | None = Field(None, description="Points to sample; omit for the scene centre.")
    random_points: RandomPoints | None = Field(
        None, description="`{n, bbox, seed}`: sample n seeded random points instead of `locations`.")
    window: int = Field(32, ge=1, description="Window size in pixels around each location; at a scene edge "
                        "the part outside is NaN, the window is never shrunk.")
    bands: tuple[str, ...] | None = Field(None, description="Band names, overriding the files'.")
    cloud_band: str | None = Field(None, description="Band holding a cloud probability (e.g. `CLP`); pixels "
                                   "at or over `cloud_threshold` become NaN in the other bands.")
    cloud_scale: float | None = Field(None, gt=0, description="The `cloud_band` value meaning probability 1; "
                                      "null = 255 for an integer band, 1 for a float band.")
    cloud_threshold: float = Field(0.4, gt=0, le=1, description="Cloud probability (0–1) from which a pixel "
                                   "is masked (0.4 is s2cloudless's default).")
    mask_band: str | None = Field(None, description="Band whose nonzero pixels are masked (e.g. `CLM`); they "
                                  "become NaN in the other bands.")

    @field_validator("root")
    @classmethod
    def _exists(cls, v: Path | list[Path]) -> Path | list[Path]:
        if isinstance(v, list):
            if not v:
                raise ValueError("give at least one folder")
            return [must_exist(p, "folder") for p in v]
        return must_exist(v, "folder")

    _date_pattern_ok = field_validator("date_pattern")(valid_regex)

    @model_validator(mode="after")
    def _one_way_to_locate(self) -> GeoTiffSeriesParams:
        if self.locations is not None and self.random_points is not None:
            raise ValueError("`locations` and `random_points` are mutually exclusive: give one of them")
        return self

    @property
    def roots(self) -> list[Path]:
        """The folders, as a list."""
        return list(self.root) if isinstance(self.root, list) else [self.root]


class GeoTiffSeriesSource(Source):
    """A time series of dated GeoTIFFs of one area, sampled in a window at lat/lon locations.

    Every image of an item is a `window × window` float32 raster (NaN = no measurement: the file's nodata,
    outside the scene, cloudy or masked); `meta["valid_fraction"]` gives, per date, the share of the
    window's pixels with a measurement. See `docs/items.md`.
    """

    name = "geotiff-series"
    params_model = GeoTiffSeriesParams
    produces: ClassVar[tuple[str, ...]] = ("series",)
    params: GeoTiffSeriesParams

    def teardown(self) -> None:
        """Close the files this thread kept open (see :data:`DATASETS`)."""
        DATASETS.clear()

    def _files(self) -> list[tuple[datetime, Path]]:
        rx = re.compile(self.params.date_pattern)
        out: dict[datetime, Path] = {}
        for root in self.params.roots:
            for f in sorted(root.glob(self.params.pattern)):
                m = rx.search(f.stem)
                raw = m.group("date") if m and "date" in m.groupdict() else m.group(0) if m else None
                t = parse_time(raw)
                if t is None:
                    raise SpecError(f"geotiff-series: cannot read a date from {f.name} with date_pattern "
                                    f"{self.params.date_pattern!r}")
                if t in out:
                    raise SpecError(f"geotiff-series: {out[t]} and {f} have the same date {t.date()}; a "
                                    "series has one file per date: remove one, or narrow `pattern`")
                out[t] = f
        if not out:
            where = ", ".join(f"{r}/{self.params.pattern}" for r in self.params.roots)
            raise EmptySourceError(f"geotiff-series: no files match {where}")
        return sorted(out.items())

    def _locations(self, first: Path) -> list[Location]:
        if self.params.locations:
            return self.params.locations
        import rasterio
        from rasterio.warp import transform as warp

        rp = self.params.random_points
        with rasterio.open(first) as ds:
            if rp is None:
                xs, ys = ds.xy(ds.height // 2, ds.width // 2)
                xs, ys = [xs], [ys]
            elif rp.bbox is not None:
                lon, lat = random_lonlat(rp.n, rp.bbox, rp.seed)
                return _numbered(lon, lat)
            else:
                b = ds.bounds
                xs, ys = random_lonlat(rp.n, (b.left, b.bottom, b.right, b.top), rp.seed)
            if ds.crs is None:
                raise SpecError(f"geotiff-series: {first} has no CRS, so locations cannot be placed; give "
                                "georeferenced files")
            lon, lat = warp(ds.crs, "EPSG:4326", list(xs), list(ys))
        if rp is None:
            return [Location(id="centre", lat=float(lat[0]), lon=float(lon[0]))]
        return _numbered(lon, lat)

    def list_items(self) -> Iterator[ItemRef]:
        """One item per location (the scene centre when none are given)."""
        files = self._files()
        paths = {f"t{i}": str(f) for i, (_t, f) in enumerate(files)}
        times = [t.isoformat() for t, _f in files]
        for loc in self._locations(files[0][1]):
            IdChecker.require(loc.id, "geotiff-series: locations")
            yield ItemRef(loc.id, dict(paths), {"lat": loc.lat, "lon": loc.lon, "times": times,
                                                "tile": loc.id, "kind": "series"})

    def load(self, ref: ItemRef) -> Item:
        """Read the window around the location in every dated file."""
        images, valid, inside = [], [], []
        keys = sorted(ref.paths, key=lambda k: int(k[1:]))
        for key, time in zip(keys, ref.meta["times"], strict=True):
            raster, hit = self._read(ref, ref.paths[key], datetime.fromisoformat(time))
            images.append(raster)
            inside.append(hit)
            valid.append(float(np.isfinite(raster.array).all(axis=0).mean()))
        if not any(inside):
            shown = ", ".join(Path(p).name for p in list(ref.paths.values())[:3])
            raise ComponentError(f"location {ref.item_id} ({ref.meta['lat']}, {ref.meta['lon']}) is outside "
                                 f"every file of the series ({len(keys)} files: {shown}"
                                 f"{', …' if len(keys) > 3 else ''})")
        meta = {**ref.meta, "valid_fraction": valid}
        return mark_invalid(Item(ref.item_id, images, meta=meta), self.context.logger)

    def _read(self, ref: ItemRef, path: str, time: datetime) -> tuple[Raster, bool]:
        """One date's window, and whether the location is inside this file (else the window is all NaN).

        The first read of a file goes through ``read_raster`` (its structure checks, band names, nodata)
        and the file stays open in :data:`DATASETS`; later locations read their window from that handle
        (the same ``ds.read(bands, window=...)`` call ``read_raster`` makes, so the same values).
        """
        import rasterio
        from rasterio.windows import Window

        p = self.params
        cached = DATASETS.get(path, p.bands)
        if cached is None:
            try:
                ds = rasterio.open(path)
            except Exception as exc:  # missing, corrupt or truncated: a failed item naming the file
                raise ComponentError(_describe_read_failure(path, exc)) from exc
            if ds.crs is None:
                ds.close()
                raise ComponentError(f"{path}: no CRS, cannot locate lat/lon")
            try:
                full, inside = point_window(ds, ref.meta["lon"], ref.meta["lat"], p.window)
                r = read_raster(path, bands=p.bands, window=inside or Window(0, 0, 1, 1), time=time)
            except BaseException:
                ds.close()
                raise
            from rasterio.enums import ColorInterp

            keep = [i for i, ci in enumerate(ds.colorinterp, 1) if ci != ColorInterp.alpha] or [1]
            header = (keep, r.band_names, r.nodata, r.crs)
            DATASETS.put(path, ds, header, p.bands)
            raw = r.array
        else:
            ds, header = cached
            keep = header[0]
            full, inside = point_window(ds, ref.meta["lon"], ref.meta["lat"], p.window)
            try:
                raw = ds.read(keep, window=inside or Window(0, 0, 1, 1))
            except Exception as exc:
                raise ComponentError(_describe_read_failure(path, exc)) from exc
        _keep, band_names, nodata, crs = header
        transform = ds.window_transform(full)
        arr = pad_window(nan_fill(raw, nodata), full, inside)
        masks = [b for b in (p.cloud_band, p.mask_band) if b is not None]
        if masks:
            scale = p.cloud_scale or (255.0 if np.issubdtype(raw.dtype, np.integer) else 1.0)
            try:
                bad = cloud_mask(arr, band_names, cloud_band=p.cloud_band, cloud_scale=scale,
                                 cloud_threshold=p.cloud_threshold, mask_band=p.mask_band)
            except KeyError as exc:
                raise ComponentError(f"{path}: {exc.args[0]}; set `cloud_band`/`mask_band` on the source to "
                                     "one of them") from None
            other = [i for i, b in enumerate(band_names) if b not in masks]
            arr[other] = np.where(bad, np.nan, arr[other])
        return Raster(arr, crs=crs, transform=transform, band_names=band_names, nodata=float("nan"),
                      time=time, path=path), inside is not None


#: Datasets kept open between locations (per process and thread; see :class:`DatasetCache`).
DATASETS = DatasetCache()


def _numbered(lon: Any, lat: Any) -> list[Location]:
    """Locations ``p000``, ``p001``, … (wider when there are over 1000)."""
    width = max(3, len(str(len(lon) - 1)))
    return [Location(id=f"p{i:0{width}d}", lat=float(y), lon=float(x))
            for i, (x, y) in enumerate(zip(lon, lat, strict=True))]
