"""``band-values``: band values and spectral indices at a location, one row per date.

Per date, each band (or index) is reduced over the location's window to one number: the mean (or median) of
the valid pixels. A pixel is valid when no band of that date is nodata or non-finite (the raster's own
:meth:`~satcore.data.Raster.invalid_mask`) and, with ``cloud_band``, its cloud value is at most
``cloud_threshold``. A date whose window has no valid pixel gives NaN (the VAR detector handles gaps).

Index formulas (per pixel, then the window statistic; pixels with a zero denominator are left out):

- ``NDVI = (nir − red) / (nir + red)``
- ``NDWI = (green − nir) / (green + nir)`` (McFeeters 1996, open water)
- ``NDBI = (swir1 − nir) / (swir1 + nir)`` (Zha et al. 2003, built-up)

Band names are looked up as given first, then through the aliases ``red`` ↔ ``B04``, ``green`` ↔ ``B03``,
``blue`` ↔ ``B02``, ``nir`` ↔ ``B08`` (then ``B8A``), ``swir1`` ↔ ``B11``. A band that already *is* an index
(the Slovenia series' ``NDVI``) can be asked for by its plain name in ``bands``; an index asked for in
``indices`` whose input bands are missing is read from a band of that name when the series has one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from satcore.components import Batch, Extractor, Params
from satcore.data import Item, Raster
from satcore.errors import ComponentError
from satcore_timeseries.series import feature_output

#: Alias → the names it may appear under (tried in order), both ways.
ALIASES: dict[str, tuple[str, ...]] = {
    "red": ("red", "B04", "B4"), "green": ("green", "B03", "B3"), "blue": ("blue", "B02", "B2"),
    "nir": ("nir", "B08", "B8", "B8A"), "swir1": ("swir1", "B11"),
    "B04": ("B04", "red", "B4"), "B03": ("B03", "green", "B3"), "B02": ("B02", "blue", "B2"),
    "B08": ("B08", "nir", "B8"), "B8A": ("B8A", "nir"), "B11": ("B11", "swir1"),
}

#: Index name → (a, b) for the normalised difference (a − b) / (a + b).
INDICES: dict[str, tuple[str, str]] = {"NDVI": ("nir", "red"), "NDWI": ("green", "nir"),
                                       "NDBI": ("swir1", "nir")}


class BandValuesParams(Params):
    """Parameters of ``band-values``."""

    bands: list[str] = Field(default_factory=list, description="Band names to read (e.g. [B04, B03, B02], "
                             "[red, nir], or a band that is already an index such as NDVI). Empty with no "
                             "`indices`: every band of the series.")
    indices: list[Literal["NDVI", "NDWI", "NDBI"]] = Field(
        default_factory=list,
        description="Spectral indices to compute per pixel (formulas in docs/timeseries.md).")
    statistic: Literal["mean", "median"] = Field("mean", description="How a window becomes one number per "
                                                 "date, over its valid pixels.")
    cloud_band: str | None = Field(None, description="A band of cloud probability (e.g. CLP); pixels above "
                                   "`cloud_threshold` are left out (a fully cloudy date gives NaN).")
    cloud_threshold: float = Field(0.5, description="Cloud value above which a pixel is masked (units of "
                                   "`cloud_band`: 0.5 for probabilities in [0, 1], 127 for 0..255).")

    @field_validator("bands")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"bands repeat a name: {v}")
        return v


def find_band(raster: Raster, name: str) -> np.ndarray | None:
    """The band ``name`` (or an alias of it) as float64, or ``None`` when the raster has none."""
    for cand in ALIASES.get(name, (name,)):
        if cand in raster.band_names:
            return np.asarray(raster.array[raster.band_names.index(cand)], dtype=np.float64)
    return None


def _reduce(values: np.ndarray, ok: np.ndarray, statistic: str) -> float:
    v = values[ok & np.isfinite(values)]
    if v.size == 0:
        return float("nan")
    return float(np.median(v) if statistic == "median" else np.mean(v))


class BandValuesExtractor(Extractor):
    """Band values and spectral indices (NDVI, NDWI, NDBI) per date at a location: the window statistic."""

    name = "band-values"
    params_model = BandValuesParams
    consumes: ClassVar[tuple[str, ...]] = ("series",)
    produces: ClassVar[tuple[str, ...]] = ("features",)
    params: BandValuesParams

    def _row(self, item: Item, raster: Raster, names: list[str]) -> list[float]:
        p = self.params
        ok = np.ones(raster.shape, dtype=bool)
        bad = raster.invalid_mask()
        if bad is not None:
            ok &= ~bad
        if p.cloud_band is not None:
            cloud = find_band(raster, p.cloud_band)
            if cloud is None:
                raise ComponentError(f"band-values: cloud_band {p.cloud_band!r} is not in the series "
                                     f"(bands {list(raster.band_names)}); fix `cloud_band`", item.item_id)
            ok &= ~(cloud > p.cloud_threshold)
        row = []
        for name in names:
            if name in p.indices and name not in p.bands:
                a, b = (find_band(raster, n) for n in INDICES[name])
                if a is None or b is None:
                    own = find_band(raster, name)  # the series carries the index itself
                    if own is None:
                        need = " and ".join(INDICES[name])
                        raise ComponentError(f"band-values: {name} needs bands {need} (or a band named "
                                             f"{name}); the series has {list(raster.band_names)}",
                                             item.item_id)
                    row.append(_reduce(own, ok, p.statistic))
                    continue
                den = a + b
                with np.errstate(divide="ignore", invalid="ignore"):
                    idx = (a - b) / den
                row.append(_reduce(idx, ok & (den != 0), p.statistic))
            else:
                band = find_band(raster, name)
                if band is None:
                    raise ComponentError(f"band-values: band {name!r} is not in the series (bands "
                                         f"{list(raster.band_names)}); fix `bands` or the source's `bands:`",
                                         item.item_id)
                row.append(_reduce(band, ok, p.statistic))
        return row

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """One ``(T, K)`` series per item (:func:`~satcore_timeseries.series.feature_output`)."""
        out = []
        for item in batch:
            if not item.images:
                raise ComponentError("band-values: the item has no images (expected a location series)",
                                     item.item_id)
            names = list(self.params.bands) + [i for i in self.params.indices if i not in self.params.bands]
            if not names:
                names = list(item.images[0].band_names)
            rows = [self._row(item, r, names) for r in item.images]
            values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
            out.append(feature_output(names, values))
        return out
