"""``stac``: Sentinel-2 L2A location series from a STAC API or a static catalog, read window by window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from satcore.builtin.series import BBox, Location, RandomPoints
from satcore.builtin.series_window import nan_fill, pad_window, point_window, random_lonlat
from satcore.components import Params, Source, SpecPath
from satcore.data import Item, ItemRef, Raster, describe_read_failure, gdal_env
from satcore.errors import ComponentError
from satcore_stac.search import Scene, one_per_time, search_api, search_catalog, time_range

#: GDAL options for reading assets over HTTP (only what is needed: the header and the window's tiles).
REMOTE_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_PAM_ENABLED": "NO"}


class StacParams(Params):
    """Parameters of ``stac``."""

    url: str | None = Field(None, description="STAC API root (e.g. "
                            "https://earth-search.aws.element84.com/v1); or give `catalog`.")
    catalog: SpecPath | None = Field(None, description="A static catalog's `catalog.json`, filtered locally "
                                     "(collection, datetime, eo:cloud_cover, bbox); or give `url`.")
    collections: tuple[str, ...] = Field(("sentinel-2-l2a",), description="Collections to search.")
    locations: list[Location] | None = Field(None, description="Points to sample (one item each).")
    random_points: RandomPoints | None = Field(
        None, description="`{n, bbox, seed}`: seeded random points (bbox, or the source's `bbox`, required).")
    bbox: BBox | None = Field(None, description="`[min_lon, min_lat, max_lon, max_lat]`: search once over "
                              "this area; each location keeps the items whose bbox holds it. Omitted: one "
                              "search per location, by its point.")
    datetime: str | None = Field(None, description="Time range `start/end` (ISO dates, `..` for open), e.g. "
                                 "`2022-01-01/2023-12-31`.")
    max_cloud_cover: float | None = Field(None, ge=0, le=100, description="Keep items whose `eo:cloud_cover` "
                                          "is at most this (percent).")
    assets: tuple[str, ...] = Field(("red", "green", "blue", "nir"), min_length=1, description="Asset "
                                    "keys, one per band (Earth Search: red green blue nir nir08 swir16 …; "
                                    "other APIs: B04 B03 B02 B08 …); also the band names.")
    window: int = Field(32, ge=1, description="Window size in pixels (of the first asset's grid) around each "
                        "location; NaN past the scene edge, never shrunk.")
    max_items: int = Field(500, ge=1, description="Most items one search returns.")

    @field_validator("datetime")
    @classmethod
    def _time_ok(cls, v: str | None) -> str | None:
        time_range(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> StacParams:
        if (self.url is None) == (self.catalog is None):
            raise ValueError("give exactly one of `url` (a STAC API) and `catalog` (a static catalog)")
        if (self.locations is None) == (self.random_points is None):
            raise ValueError("give exactly one of `locations` and `random_points`")
        if self.random_points is not None and self.random_points.bbox is None and self.bbox is None:
            raise ValueError("`random_points` needs a `bbox` (its own or the source's)")
        return self


class StacSource(Source):
    """Location series of Sentinel-2 L2A from a STAC API or static catalog, reading only the needed windows.

    Items are like `geotiff-series`: one per location, one float32 image per acquisition (NaN = no
    measurement), meta `lat`, `lon`, `times`, plus `stac_items` and `cloud_cover` per date.
    """

    name = "stac"
    params_model = StacParams
    produces: ClassVar[tuple[str, ...]] = ("series",)
    params: StacParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._problems: list[tuple[str, str, str]] = []

    def locations(self) -> list[Location]:
        """The points: `locations`, or the seeded random points (ids `p000`, …)."""
        p = self.params
        if p.locations is not None:
            return p.locations
        assert p.random_points is not None  # the params validator guarantees one of the two
        box = p.random_points.bbox or p.bbox
        assert box is not None
        lon, lat = random_lonlat(p.random_points.n, box, p.random_points.seed)
        width = max(3, len(str(len(lon) - 1)))
        return [Location(id=f"p{i:0{width}d}", lat=float(y), lon=float(x))
                for i, (x, y) in enumerate(zip(lon, lat, strict=True))]

    def _search(self, bbox: tuple[float, float, float, float] | None,
                point: tuple[float, float] | None) -> list[Scene]:
        p = self.params
        common: dict[str, Any] = {"collections": p.collections, "datetime_range": p.datetime,
                                  "max_cloud_cover": p.max_cloud_cover, "max_items": p.max_items,
                                  "assets": p.assets}
        if p.url is not None:
            intersects = None if point is None else {"type": "Point", "coordinates": list(point)}
            return search_api(p.url, intersects=intersects, bbox=bbox, **common)
        box = bbox if point is None else (point[0], point[1], point[0], point[1])
        return search_catalog(str(p.catalog), bbox=box, **common)

    def list_items(self) -> Iterator[ItemRef]:
        """Search (once over `bbox`, or once per location) and list one series per location."""
        shared = self._search(self.params.bbox, None) if self.params.bbox is not None else None
        self._problems = []
        for loc in self.locations():
            found = shared if shared is not None else self._search(None, (loc.lon, loc.lat))
            scenes = one_per_time(s for s in found if s.covers(loc.lon, loc.lat))
            if not scenes:
                self._problems.append((loc.id, "NoScenes", f"no STAC item covers location {loc.id} "
                                       f"({loc.lat}, {loc.lon}) with these filters (collections, datetime, "
                                       "max_cloud_cover)"))
                continue
            paths = {f"t{i}/{a}": href for i, s in enumerate(scenes) for a, href in s.hrefs.items()}
            yield ItemRef(loc.id, paths, {
                "lat": loc.lat, "lon": loc.lon, "times": [s.time.isoformat() for s in scenes], "tile": loc.id,
                "kind": "series", "stac_items": [s.item_id for s in scenes],
                "cloud_cover": [s.cloud_cover for s in scenes]})

    def list_problems(self) -> list[tuple[str, str, str]]:
        """Locations no item covers."""
        return list(self._problems)

    def load(self, ref: ItemRef) -> Item:
        """Read the window around the location in every asset of every date."""
        from datetime import datetime

        import rasterio

        images, inside = [], []
        # remote COGs: no directory listing and no .aux.xml side-car probe, each a wasted HTTP round trip
        with gdal_env(), rasterio.Env(**REMOTE_OPTIONS):
            for i, time in enumerate(ref.meta["times"]):
                raster, hit = self._read_date(ref, [ref.paths[f"t{i}/{a}"] for a in self.params.assets],
                                              datetime.fromisoformat(time))
                images.append(raster)
                inside.append(hit)
        if not any(inside):
            raise ComponentError(f"location {ref.item_id} ({ref.meta['lat']}, {ref.meta['lon']}) is outside "
                                 f"every asset found ({len(images)} dates)")
        valid = [float(np.isfinite(r.array).all(axis=0).mean()) for r in images]
        meta = {**ref.meta, "valid_fraction": valid}
        return Item(ref.item_id, images, meta=meta)

    def _read_date(self, ref: ItemRef, hrefs: list[str], time: Any) -> tuple[Raster, bool]:
        """One date: the first asset's window as read; other assets warped onto its grid if theirs differs."""
        import rasterio
        from rasterio.warp import Resampling, reproject

        size = self.params.window
        bands: list[np.ndarray] = []
        crs = transform = None
        hit = False
        for href in hrefs:
            try:
                ds = rasterio.open(href)
            except Exception as exc:  # unreachable, not a GeoTIFF, truncated
                raise ComponentError(describe_read_failure(href, exc)) from exc
            with ds:
                if ds.crs is None:
                    raise ComponentError(f"{href}: no CRS, cannot locate lat/lon")
                if transform is None:  # the first asset sets the grid
                    full, win = point_window(ds, ref.meta["lon"], ref.meta["lat"], size)
                    crs, transform, hit = ds.crs, ds.window_transform(full), win is not None
                    data = ds.read(1, window=win)[None] if win is not None else np.zeros((1, 0, 0))
                    bands.append(pad_window(nan_fill(data, ds.nodata), full, win)[0])
                elif ds.crs == crs and _same_grid(ds, transform):
                    full, win = point_window(ds, ref.meta["lon"], ref.meta["lat"], size)
                    data = ds.read(1, window=win)[None] if win is not None else np.zeros((1, 0, 0))
                    bands.append(pad_window(nan_fill(data, ds.nodata), full, win)[0])
                else:  # another resolution or CRS: nearest-neighbour onto the first asset's window
                    out = np.full((size, size), np.nan, np.float32)
                    src_nodata = ds.nodata if ds.nodata is not None else None
                    reproject(rasterio.band(ds, 1), out, src_nodata=src_nodata, dst_nodata=np.nan,
                              dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest)
                    bands.append(out)
        return Raster(np.stack(bands), crs=crs, transform=transform, band_names=self.params.assets,
                      nodata=float("nan"), time=time, path=hrefs[0]), hit


def _same_grid(ds: Any, transform: Any) -> bool:
    """Whether ``ds``'s pixels line up with the window ``transform`` (same size, whole-pixel offset)."""
    a, b = ds.transform, transform
    if a.b or a.d or b.b or b.d or abs(a.a - b.a) > 1e-9 * abs(a.a) or abs(a.e - b.e) > 1e-9 * abs(a.e):
        return False
    col, row = ~a * (b.c, b.f)
    return bool(abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6)

