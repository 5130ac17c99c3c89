"""``series-diff``: the last date against the earlier ones, per feature (for series too short for a VAR).

Per feature k, over the dates before the last (NaN left out): ``diff_k = y_last − mean(y_earlier)`` and
``z_k = diff_k / std(y_earlier, ddof=1)``. The score is the largest ``|z_k|`` (``statistic: zscore``, the
default) or the largest ``|diff_k|`` (``statistic: difference``) over the chosen features; change when it
exceeds ``threshold``. ``z_k`` is null (with a reason) when the earlier values do not vary.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from satcore.components import Batch, Detection, Detector, DetectorParams
from satcore.errors import ComponentError
from satcore_timeseries.series import stack_inputs


class SeriesDiffParams(DetectorParams):
    """Parameters of ``series-diff``."""

    features: list[str] | None = Field(None, description="Features to compare; default: all of them.")
    statistic: Literal["zscore", "difference"] = Field(
        "zscore",
        description="Score each feature by its z-score or its plain difference from the earlier mean.")
    threshold: float = Field(3.0, gt=0, description="Change when the largest |score| exceeds this.")


class SeriesDiffDetector(Detector):
    """Last date minus the earlier mean per feature (difference or z-score): change when it is large."""

    name = "series-diff"
    params_model = SeriesDiffParams
    consumes: ClassVar[tuple[str, ...]] = ("features",)
    params: SeriesDiffParams

    def process(self, batch: Batch) -> list[Detection]:
        """One detection per location."""
        p = self.params
        out: list[Detection] = []
        for item, inp in batch.with_inputs():
            try:
                names, values = stack_inputs(inp)
            except ValueError as exc:
                raise ComponentError(f"series-diff: {exc}", item.item_id) from exc
            if p.features is not None:
                missing = [f for f in p.features if f not in names]
                if missing:
                    raise ComponentError(f"series-diff: features {missing} are not among {names}",
                                         item.item_id)
                values = values[:, [names.index(f) for f in p.features]]
                names = list(p.features)
            if values.shape[0] < 3:
                raise ComponentError(f"series-diff: {values.shape[0]} dates; at least 3 are needed (two "
                                     "earlier "
                                     "ones for a spread, and the last)", item.item_id)
            extra: dict[str, Any] = {"lat": item.meta.get("lat"), "lon": item.meta.get("lon")}
            best: float | None = None
            which: str | None = None
            for k, name in enumerate(names):
                last, earlier = values[-1, k], values[:-1, k]
                earlier = earlier[np.isfinite(earlier)]
                if not np.isfinite(last) or earlier.size < 2:
                    raise ComponentError(f"series-diff: feature {name!r} has no value on the last date or "
                                         "fewer "
                                         "than 2 earlier values (cloud-masked or nodata)", item.item_id)
                diff = float(last - earlier.mean())
                sd = float(earlier.std(ddof=1))
                z = diff / sd if sd > 0 else None
                extra[f"{name}_diff"] = diff
                extra[f"{name}_z"] = z
                if z is None:
                    extra[f"{name}_z_reason"] = "the earlier values do not vary"
                s = abs(z) if p.statistic == "zscore" and z is not None else (
                    abs(diff) if p.statistic == "difference" else None)
                if s is not None and (best is None or s > best):
                    best, which = s, name
            extra["flag_feature"] = which
            out.append(Detection(score=best, label=None if best is None else int(best > p.threshold),
                                 threshold=p.threshold, extra=extra))
        return out
