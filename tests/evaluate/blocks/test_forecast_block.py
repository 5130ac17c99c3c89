"""The forecast block against scikit-learn on the concatenated values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from satcore.evaluate.blocks import ForecastBlock, forecast_record


def _series(seed: int, n: int = 12):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h = rng.integers(1, 8)
        y = rng.normal(size=h).cumsum()
        f = y + rng.normal(0, 0.5, h)
        half = rng.uniform(0.2, 1.0, h)
        y[rng.random(h) < 0.1] = np.nan  # not observed
        out.append((y, f, f - half, f + half, None if i % 4 == 0 else float(rng.normal(100, 10))))
    return out


def _reference(series):
    y = np.concatenate([s[0] for s in series])
    f = np.concatenate([s[1] for s in series])
    lo = np.concatenate([s[2] for s in series])
    hi = np.concatenate([s[3] for s in series])
    ok = np.isfinite(y)
    aics = [s[4] for s in series if s[4] is not None]
    return {"rmse": np.sqrt(mean_squared_error(y[ok], f[ok])), "mae": mean_absolute_error(y[ok], f[ok]),
            "fall_in_ci": np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])), "aic": np.mean(aics)}


def _recs(series):
    return {f"t{i}": forecast_record(y, f, lower=lo, upper=hi, aic=a) for i, (y, f, lo, hi, a) in
            enumerate(series)}


@pytest.mark.parametrize("seed", range(4))
def test_equals_sklearn(seed, block_result):
    series = _series(seed)
    out = block_result(ForecastBlock, _recs(series))
    for k, v in _reference(series).items():
        assert out[k] == pytest.approx(v, rel=1e-12), k
    assert out["items"] == len(series)


def test_order_does_not_matter(block_result):
    series = _series(9, n=30)
    assert block_result(ForecastBlock, _recs(series), seed=2) == block_result(ForecastBlock, _recs(series))


def test_a_wrong_forecast_moves_the_numbers_as_sklearn_does(block_result):
    series = _series(3)
    y, f, lo, hi, a = series[0]
    bad = [(y, f + 5, lo + 5, hi + 5, a), *series[1:]]
    good_out, bad_out = block_result(ForecastBlock, _recs(series)), block_result(ForecastBlock, _recs(bad))
    for k, v in _reference(bad).items():
        assert bad_out[k] == pytest.approx(v, rel=1e-12), k
    assert bad_out["rmse"] > good_out["rmse"] and bad_out["fall_in_ci"] < good_out["fall_in_ci"]


def test_undefined_values_are_null_with_reasons(block_result):
    out = block_result(ForecastBlock, {"a": forecast_record([1.0, 2.0], [1.5, 2.5])})
    assert out["rmse"] == pytest.approx(0.5)
    assert out["aic"] is None and out["aic_reason"] == "the forecaster reports no AIC"
    assert out["fall_in_ci"] is None and "interval" in out["fall_in_ci_reason"]
    out = block_result(ForecastBlock, {"a": forecast_record([np.nan], [1.0])})
    assert out["rmse"] is None and out["mae"] is None and out["rmse_reason"]
    assert forecast_record(None, [1.0]) is None
    with pytest.raises(ValueError, match="shape"):
        forecast_record([1.0, 2.0], [1.0])
