"""``forecast``: RMSE, MAE and interval coverage of forecasts against observed values, and the mean AIC.

- ``rmse``, ``mae``: pooled over every observed value of the split that has a finite forecast (scikit-learn's
  ``mean_squared_error`` (square-rooted) and ``mean_absolute_error`` on the concatenated values). Missing
  observations (NaN) are left out.
- ``fall_in_ci``: the fraction of those values with ``lower <= observed <= upper`` (over the values that have
  both bounds).
- ``aic``: the mean over items of the model's AIC, where the forecaster reports one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from satcore.evaluate.blocks.base import ExactSum, Record, _Seen, num, put


def forecast_record(truth: Any, prediction: Any, *, lower: Any = None, upper: Any = None,
                    aic: float | None = None) -> Record | None:
    """One item's forecast record.

    Args:
        truth: observed future values (any shape; NaN = not observed).
        prediction: forecast values, the same shape.
        lower: lower interval bounds, the same shape (optional).
        upper: upper interval bounds, the same shape (optional).
        aic: the fitted model's AIC (optional).

    Returns:
        ``None`` without truth or forecast; else ``values``, ``sq_sum``, ``abs_sum``, ``in_ci``/
        ``ci_values`` and ``aic``.

    Raises:
        ValueError: the arrays differ in shape.
    """
    if truth is None or prediction is None:
        return None
    y = np.asarray(truth, dtype=np.float64)
    f = np.asarray(prediction, dtype=np.float64)
    if y.shape != f.shape:
        raise ValueError(f"forecast: the forecast has shape {f.shape}, the observed values {y.shape}")
    ok = np.isfinite(y) & np.isfinite(f)
    d = (f - y)[ok]
    rec: Record = {"values": int(ok.sum()), "sq_sum": float((d * d).sum()), "abs_sum": float(np.abs(d).sum()),
                   "in_ci": 0, "ci_values": 0, "aic": None if aic is None else float(aic)}
    if lower is not None and upper is not None:
        lo = np.asarray(lower, dtype=np.float64)
        hi = np.asarray(upper, dtype=np.float64)
        if lo.shape != y.shape or hi.shape != y.shape:
            raise ValueError(f"forecast: interval bounds have shapes {lo.shape} and {hi.shape}, the observed "
                             f"values {y.shape}")
        has = ok & np.isfinite(lo) & np.isfinite(hi)
        rec["in_ci"] = int(np.sum(has & (y >= lo) & (y <= hi)))
        rec["ci_values"] = int(has.sum())
    return rec


class ForecastBlock:
    """Accumulates forecast records into the ``forecast`` block (definitions in the module docstring)."""

    name: ClassVar[str] = "forecast"
    item_record = staticmethod(forecast_record)

    def __init__(self, **settings: Any) -> None:
        self._seen = _Seen()
        self.values = 0
        self.in_ci = 0
        self.ci_values = 0
        self.sq = ExactSum()
        self.abs = ExactSum()
        self.aic = ExactSum()
        self.aic_items = 0

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        """Fold in one item's record."""
        self._seen.check(self.name, item_id)
        self.values += int(num(record.get("values")) or 0)
        self.sq.add(num(record.get("sq_sum")) or 0.0)
        self.abs.add(num(record.get("abs_sum")) or 0.0)
        self.in_ci += int(num(record.get("in_ci")) or 0)
        self.ci_values += int(num(record.get("ci_values")) or 0)
        a = num(record.get("aic"))
        if a is not None and math.isfinite(a):
            self.aic.add(a)
            self.aic_items += 1

    def result(self) -> dict[str, Any]:
        """The ``forecast`` block."""
        n = self.values
        out: dict[str, Any] = {"items": len(self._seen), "values": n}
        put(out, "rmse", math.sqrt(self.sq.value / n) if n else None, "no observed value with a forecast")
        put(out, "mae", self.abs.value / n if n else None, "no observed value with a forecast")
        put(out, "aic", self.aic.value / self.aic_items if self.aic_items else None,
            "the forecaster reports no AIC")
        put(out, "fall_in_ci", self.in_ci / self.ci_values if self.ci_values else None,
            "the forecaster gives no interval bounds")
        return out
