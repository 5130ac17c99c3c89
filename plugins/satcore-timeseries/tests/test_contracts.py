"""satcore's component contracts for band-values, var-forecast and series-diff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from satcore_timeseries.bands import BandValuesExtractor
from satcore_timeseries.diff import SeriesDiffDetector
from satcore_timeseries.series import feature_output
from satcore_timeseries.synthetic import var_series
from satcore_timeseries.var import VarForecastDetector

from satcore.data import Item
from satcore.testing import DetectorContract, ExtractorContract


class TestBandValuesContract(ExtractorContract):
    component = BandValuesExtractor


class _SeriesInputs:
    """Upstream output per item: a seeded two-feature series.

    The bad item (no images) gets an all-NaN series (a cloud-masked location).
    """

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        out = []
        for it in items:
            seed = sum(map(ord, it.item_id))
            y = (var_series(40, 2, seed=seed, break_at=30 if seed % 2 else None) if it.images
                 else np.full((40, 2), np.nan))
            out.append(feature_output(["NDVI", "cloud_prob"], y))
        return out


class TestVarForecastContract(_SeriesInputs, DetectorContract):
    component = VarForecastDetector
    params: ClassVar[dict[str, Any]] = {"horizon": 8, "max_lags": 2}


class TestSeriesDiffContract(_SeriesInputs, DetectorContract):
    component = SeriesDiffDetector
