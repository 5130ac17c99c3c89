"""``var-forecast``: a VAR per location on the earlier dates; change where observations leave the interval.

The model and the interval are in :mod:`satcore_timeseries.var_fit`; the run's files (Table 2, the
GeoPackage, the Figure-7 plots) in :mod:`satcore_timeseries.var_outputs`. Definitions: docs/timeseries.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from satcore.components import Batch, Detection, Detector, DetectorParams
from satcore.data import Item
from satcore.errors import ComponentError
from satcore.io import json_ready, write_text
from satcore_timeseries.series import stack_inputs
from satcore_timeseries.var_fit import SeriesError, VarFit, fall_in_ci, fit_var, forecast_rmse


class VarForecastParams(DetectorParams):
    """Parameters of ``var-forecast``."""

    features: list[str] | None = Field(None, description="Features to model (names from the inputs, e.g. "
                                       "[NDVI, cloud_prob]); default: all of them.")
    horizon: int = Field(12, ge=1, description="The last `horizon` dates are held out and forecast.")
    max_lags: int = Field(4, ge=1, description="Largest lag order AIC may choose (capped by the series "
                          "length so that df ≥ 1).")
    interval: Literal["t-fixed", "statsmodels"] = Field(
        "t-fixed", description="`t-fixed`: forecast ± t(1−α/2, df)·σ̂ at every step (the thesis); "
        "`statsmodels`: results.forecast_interval (widens with the step).")
    alpha: float = Field(0.05, gt=0, lt=1, description="1 − confidence of the interval.")
    fall_in: Literal["forecast", "in_sample"] = Field(
        "forecast", description="Fall-in-CI over the held-out forecast dates, or over the training dates "
        "(fitted values against observations).")
    flag_features: list[str] | None = Field(None, description="Features whose fall-in-CI decides the flag; "
                                            "default: every modelled feature.")
    threshold: float = Field(0.5, ge=0, le=1, description="Change when the lowest fall-in-CI of "
                             "`flag_features` is below this.")
    nan: Literal["interpolate", "drop"] = Field("interpolate", description="Training dates with NaN: "
                                                "interpolate linearly in time, or drop them.")
    max_nan_fraction: float = Field(0.5, ge=0, le=1, description="A feature missing on more of the "
                                    "training dates than this fails the location (cloud-masked, nodata).")
    plots: int = Field(6, ge=0, description="Locations plotted in the report (flagged ones first).")


@dataclass
class ForecastDetection(Detection):
    """A :class:`~satcore.components.Detection` that also carries the forecast for the ``forecast`` block."""

    forecast: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    observed: np.ndarray | None = None
    aic: float | None = None
    names: list[str] = field(default_factory=list)


def _safe_name(item_id: str) -> str:
    from urllib.parse import quote

    return quote(item_id, safe="") + ".json"


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class VarForecastDetector(Detector):
    """VAR forecast per location; change when observations fall outside the forecast interval."""

    name = "var-forecast"
    params_model = VarForecastParams
    consumes: ClassVar[tuple[str, ...]] = ("features",)
    metric_blocks: ClassVar[tuple[str, ...]] = ("forecast",)
    params: VarForecastParams

    def _select(self, item: Item, inp: Any) -> tuple[list[str], np.ndarray]:
        try:
            names, values = stack_inputs(inp)
        except ValueError as exc:
            raise ComponentError(f"var-forecast: {exc}", item.item_id) from exc
        want = self.params.features
        if want is None:
            return names, values
        missing = [f for f in want if f not in names]
        if missing:
            raise ComponentError(f"var-forecast: features {missing} are not among the inputs' {names}; fix "
                                 "`features`", item.item_id)
        return list(want), values[:, [names.index(f) for f in want]]

    def _row(self, item: Item, fit: VarFit) -> tuple[dict[str, Any], float | None, str | None]:
        p = self.params
        extra: dict[str, Any] = {"lat": item.meta.get("lat"), "lon": item.meta.get("lon"),
                                 "lag_order": fit.lag_order, "df_resid": fit.df_resid, "n_train": fit.n_train,
                                 "aic": fit.aic}
        if fit.aic is None:
            extra["aic_reason"] = fit.aic_reason
        flags = p.flag_features or fit.names
        unknown = [f for f in flags if f not in fit.names]
        if unknown:
            raise ComponentError(f"var-forecast: flag_features {unknown} are not modelled features "
                                 f"{fit.names}",
                                 item.item_id)
        lowest: float | None = None
        which: str | None = None
        for k, name in enumerate(fit.names):
            frac, n = fall_in_ci(fit, k, p.fall_in)
            rmse = forecast_rmse(fit, k)
            extra[f"{name}_rmse"] = rmse
            extra[f"{name}_aic"] = fit.feature_aic[k]
            extra[f"{name}_fall_in_ci"] = frac
            extra[f"{name}_fall_in_ci_n"] = n
            if fit.feature_aic[k] is None:
                extra[f"{name}_aic_reason"] = fit.feature_aic_reason[k]
            if frac is None:
                extra[f"{name}_fall_in_ci_reason"] = "no observed value to compare"
            if name in flags and frac is not None and (lowest is None or frac < lowest):
                lowest, which = frac, name
        return extra, lowest, which

    def process(self, batch: Batch) -> list[Detection]:
        """Fit, forecast and score each location (a series that cannot be modelled is a per-item error)."""
        p = self.params
        out: list[Detection] = []
        for item, inp in batch.with_inputs():
            names, values = self._select(item, inp)
            try:
                fit = fit_var(values, names, horizon=p.horizon, max_lags=p.max_lags, interval=p.interval,
                              alpha=p.alpha, nan=p.nan, max_nan_fraction=p.max_nan_fraction)
            except SeriesError as exc:
                raise SeriesError(f"var-forecast: {exc}", item.item_id) from None
            extra, lowest, which = self._row(item, fit)
            score = None if lowest is None else 1.0 - lowest
            label = None if lowest is None else int(lowest < p.threshold)
            extra["flag_feature"] = which
            det = ForecastDetection(score=score, label=label, threshold=p.threshold, extra=extra,
                                    forecast=fit.forecast, lower=fit.lower, upper=fit.upper,
                                    observed=fit.held_out, aic=fit.aic, names=fit.names)
            out.append(det)
            self._write_location(item, fit, det)
        return out

    def _write_location(self, item: Item, fit: VarFit, det: Detection) -> None:
        """``artifacts/<step>/locations/<item>.json``: source of Table 2, GeoPackage and plots."""
        if self.context.run_dir is None:
            return
        times = item.meta.get("times") or [r.time.isoformat() if r.time else str(i)
                                           for i, r in enumerate(item.images)]
        doc = {"item_id": item.item_id, "lat": item.meta.get("lat"), "lon": item.meta.get("lon"),
               "times": list(times), "names": fit.names, "n_train": fit.n_train, "horizon": fit.horizon,
               "interval": self.params.interval, "alpha": self.params.alpha, "fall_in": self.params.fall_in,
               "plots": self.params.plots,
               "observed": fit.observed, "forecast": fit.forecast, "lower": fit.lower, "upper": fit.upper,
               "label": det.label, "score": det.score, "columns": det.extra}
        d = self.artifacts_dir() / "locations"
        d.mkdir(parents=True, exist_ok=True)
        write_text(d / _safe_name(item.item_id), json.dumps(json_ready(doc), allow_nan=False))

    # ------------------------------------------------------------------ metrics.json
    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """The forecast values ``(h, K)``."""
        return output.forecast if block == "forecast" and isinstance(output, ForecastDetection) else None

    def metric_truth(self, block: str, item: Item, output: Any) -> Any | None:
        """The held-out observations ``(h, K)`` (NaN: not observed)."""
        return output.observed if block == "forecast" and isinstance(output, ForecastDetection) else None

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """``lower``, ``upper`` and the model's ``aic``."""
        if block != "forecast" or not isinstance(output, ForecastDetection):
            return {}
        return {"lower": output.lower, "upper": output.upper, "aic": _num(output.aic)}

    # ------------------------------------------------------------------ run files and report
    def teardown(self) -> None:
        """Write Table 2 and the GeoPackage from every location written so far (the last teardown wins)."""
        if self.context.run_dir is None:
            return
        d = self.context.run_dir / "artifacts" / self.step_id
        if (d / "locations").is_dir():
            from satcore_timeseries.var_outputs import write_tables

            write_tables(d)

    @classmethod
    def report_sections(cls, run_dir: Path, step_id: str, results: Any) -> list[tuple[str, str]]:
        """Table 2 and the forecast plots (thesis Figure 7)."""
        from satcore_timeseries.var_outputs import report_sections

        return report_sections(Path(run_dir), step_id)
