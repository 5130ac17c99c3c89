"""``cloud-probability``: the cloud probability of each date of a location series (window mean).

Three sources, tried in this order by ``method: auto`` and named in the output's ``cloud_source``:

1. ``s2cloudless``: when every image has the ten Sentinel-2 L1C bands the s2cloudless classifier needs
   (B01, B02, B04, B05, B08, B8A, B09, B10, B11, B12; reflectance = value / ``reflectance_scale``), the
   LightGBM model shipped inside the ``s2cloudless`` wheel gives a probability per pixel.
2. ``band``: else the series' own cloud-probability band (``band``, default ``CLP``), scaled to 0–1.
3. ``heuristic``: else a brightness rule, clearly not a cloud model: the mean visible reflectance
   (B02/B03/B04 or blue/green/red), mapped linearly from ``heuristic_range[0]`` (0) to ``[1]`` (1).

Per date the output is the mean probability over the window's pixels that have a measurement (NaN when
none has); ``fraction: true`` adds the share of those pixels at or over ``threshold``.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from satcore.components import Extractor, Params
from satcore.components.base import Batch
from satcore.data import Item, Raster
from satcore.errors import ComponentError, MissingDependencyError
from satcore_timeseries.series import feature_output

#: The bands s2cloudless's classifier reads, in its order (MODELS.md; ``all_bands=False``).
S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
VISIBLE = (("B02", "B03", "B04"), ("blue", "green", "red"))


class CloudProbabilityParams(Params):
    """Parameters of ``cloud-probability``."""

    method: Literal["auto", "s2cloudless", "band", "heuristic"] = Field(
        "auto", description="`auto`: s2cloudless when its 10 bands are there, else `band`, else `heuristic`; "
        "or force one (an item without what it needs then fails).")
    band: str = Field("CLP", description="The series' own cloud-probability band.")
    band_scale: float | None = Field(
        None, gt=0, description="The `band` value meaning probability 1; null: 255 when any value of the "
        "item's series is over 1 (an 8-bit CLP), else 1.")
    reflectance_scale: float = Field(10000.0, gt=0, description="Band value / this = reflectance, for "
                                     "s2cloudless and the heuristic (Sentinel-2 L1C DN: 10000).")
    threshold: float = Field(0.4, gt=0, le=1, description="Probability from which a pixel counts as cloud "
                             "(for `cloud_fraction` and `cloudy_dates`; 0.4 is s2cloudless's default).")
    fraction: bool = Field(False, description="Also output `cloud_fraction` (share of the window's pixels "
                           "at or over `threshold`) as a second feature.")
    heuristic_range: tuple[float, float] = Field(
        (0.1, 0.3), description="Heuristic: mean visible reflectance mapped to probability 0 at the first "
        "value and 1 at the second.")

    @field_validator("heuristic_range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError(f"heuristic_range {list(v)} must be [low, high] with low < high")
        return v


class CloudProbabilityExtractor(Extractor):
    """Cloud probability per date of a location series: s2cloudless, the series' own band, or a heuristic."""

    name = "cloud-probability"
    params_model = CloudProbabilityParams
    consumes: ClassVar[tuple[str, ...]] = ("series",)
    produces: ClassVar[tuple[str, ...]] = ("features",)
    params: CloudProbabilityParams

    def setup(self) -> None:
        """Load the s2cloudless classifier when it is forced (``auto`` loads it on first use)."""
        self._detector: Any = None
        if self.params.method == "s2cloudless":
            self._s2cloudless()

    def _s2cloudless(self) -> Any:
        if getattr(self, "_detector", None) is None:
            try:
                from s2cloudless.cloud_detector import S2PixelCloudDetector
            except ImportError as exc:
                raise MissingDependencyError("s2cloudless", "cloud-probability",
                                             "pip install 'satcore-timeseries[models]'") from exc
            # all_bands=False: the 10 bands in S2CLOUDLESS_BANDS order; the threshold only matters for masks
            self._detector = S2PixelCloudDetector(threshold=self.params.threshold, all_bands=False)
        return self._detector

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """One ``feature_output(["cloud_prob"(, "cloud_fraction")], (T, K), cloud_source=…)`` per item."""
        return [self.one(item) for item in batch]

    def source_for(self, images: list[Raster]) -> str:
        """Which source ``method`` picks for these images (``s2cloudless``, ``band`` or ``heuristic``)."""
        if self.params.method != "auto":
            return self.params.method
        if all(im.has_bands(*S2CLOUDLESS_BANDS) for im in images) and (
                getattr(self, "_detector", None) is not None or importlib.util.find_spec("s2cloudless")):
            return "s2cloudless"  # (without the package installed, auto goes on to the band or heuristic)
        if all(im.has_bands(self.params.band) for im in images):
            return "band"
        return "heuristic"

    def one(self, item: Item) -> dict[str, Any]:
        """The output for one item."""
        if not item.images:
            raise ComponentError("the item has no images: cloud-probability needs a location series",
                                 item.item_id)
        source = self.source_for(item.images)
        if source == "s2cloudless":
            probs = self._s2cloudless_probs(item)
        elif source == "band":
            probs = self._band_probs(item)
        else:
            probs = [self._heuristic_probs(im, item.item_id) for im in item.images]
        t = self.params.threshold
        with warnings.catch_warnings():  # a date with no measured pixel is NaN, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.array([np.nanmean(p) for p in probs])
            frac = np.array([np.nanmean(np.where(np.isnan(p), np.nan, p >= t)) for p in probs])
        if self.params.fraction:
            names, values = ["cloud_prob", "cloud_fraction"], np.stack([mean, frac], 1)
        else:
            names, values = ["cloud_prob"], mean[:, None]
        return feature_output(names, values, cloud_source=source,
                              cloudy_dates=int(np.sum(mean >= t)))

    def _require(self, im: Raster, names: tuple[str, ...], item_id: str, why: str) -> None:
        missing = [b for b in names if b not in im.band_names]
        if missing:
            raise ComponentError(f"{why} needs bands {missing}, not in {list(im.band_names)} "
                                 f"({im.path or 'an image'}); use `method: auto` or name the bands on the "
                                 "source (`bands:`)", item_id)

    def _s2cloudless_probs(self, item: Item) -> list[np.ndarray]:
        for im in item.images:
            self._require(im, S2CLOUDLESS_BANDS, item.item_id, "s2cloudless")
        shapes = {im.shape for im in item.images}
        stack = [np.stack([im.band(b) for b in S2CLOUDLESS_BANDS], axis=-1) for im in item.images]
        if len(shapes) == 1:  # one classifier call for the whole series
            data = np.stack(stack) / self.params.reflectance_scale
            missing = ~np.isfinite(data).all(axis=-1)
            probs = self._s2cloudless().get_cloud_probability_maps(np.nan_to_num(data, nan=0.0))
            probs = np.where(missing, np.nan, probs)
            return list(probs)
        out = []
        for s in stack:
            data = s[None] / self.params.reflectance_scale
            p = self._s2cloudless().get_cloud_probability_maps(np.nan_to_num(data, nan=0.0))[0]
            out.append(np.where(~np.isfinite(data[0]).all(axis=-1), np.nan, p))
        return out

    def _band_probs(self, item: Item) -> list[np.ndarray]:
        bands = []
        for im in item.images:
            self._require(im, (self.params.band,), item.item_id, "the band source")
            bands.append(im.band(self.params.band))
        scale = self.params.band_scale
        if scale is None:
            top = max((float(np.nanmax(b)) for b in bands if np.isfinite(b).any()), default=0.0)
            scale = 255.0 if top > 1 else 1.0
        return [np.clip(b / scale, 0, 1) for b in bands]

    def _heuristic_probs(self, im: Raster, item_id: str) -> np.ndarray:
        names = next((v for v in VISIBLE if im.has_bands(*v)), None)
        if names is None:
            raise ComponentError(f"no cloud source: the image has neither the s2cloudless bands, nor a "
                                 f"`{self.params.band}` band, nor visible bands (B02 B03 B04 or blue green "
                                 f"red); its bands are {list(im.band_names)}", item_id)
        bright = np.mean([im.band(b) for b in names], axis=0) / self.params.reflectance_scale
        lo, hi = self.params.heuristic_range
        return np.asarray(np.clip((bright - lo) / (hi - lo), 0, 1))
