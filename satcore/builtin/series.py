"""``geotiff-series``: a time series of dated GeoTIFFs of one area, sampled at lat/lon locations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from satcore.builtin.common import (
    EmptySourceError,
    IdChecker,
    mark_invalid,
    must_exist,
    parse_time,
    valid_regex,
)
from satcore.components import Params, Source, SpecPath
from satcore.data import Item, ItemRef, _describe_read_failure, read_raster
from satcore.errors import ComponentError, SpecError


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
        return must_exist(v, "folder")

    _date_pattern_ok = field_validator("date_pattern")(valid_regex)


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
            t = parse_time(m.group("date") if m and "date" in m.groupdict() else m.group(0) if m else None)
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
            IdChecker.require(loc.id, "geotiff-series: locations")
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
        return mark_invalid(Item(ref.item_id, images, meta=dict(ref.meta)), self.context.logger)
