"""fit_var against statsmodels, scipy and hand formulas; planted breaks; per-location errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm
from satcore_timeseries.synthetic import var_series
from satcore_timeseries.var_fit import SeriesError, fall_in_ci, fit_var, forecast_rmse
from statsmodels.tsa.api import VAR
from statsmodels.tsa.ar_model import AutoReg

from satcore.errors import ComponentError


def reference(y: np.ndarray, h: int = 12, max_lags: int = 4):
    train = y[:-h]
    k = y.shape[1]
    res = VAR(train).fit(maxlags=min(max_lags, (len(train) - 2) // (k + 1)), ic="aic")
    return train, res


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forecast_lag_order_and_aic_equal_statsmodels(seed):
    y = var_series(60, 2, seed=seed)
    fit = fit_var(y, ["a", "b"], horizon=12, max_lags=4)
    train, res = reference(y)
    p = res.k_ar
    assert fit.lag_order == p
    np.testing.assert_allclose(fit.forecast, res.forecast(train[len(train) - p:], 12), rtol=1e-12)
    assert fit.aic == pytest.approx(res.aic, rel=1e-12)
    np.testing.assert_allclose(fit.fitted[p:], res.fittedvalues, rtol=1e-12)


def test_feature_aic_is_the_ols_aic_of_each_equation():
    y = var_series(60, 2, seed=3)
    fit = fit_var(y, ["a", "b"], horizon=12, max_lags=3)
    train = y[:-12]
    p = fit.lag_order
    assert p >= 1
    # the design of each equation: a constant and the p lags of every feature, built by hand
    x = np.column_stack([np.ones(len(train) - p)] + [train[p - i:len(train) - i] for i in range(1, p + 1)])
    for k in range(2):
        ols = sm.OLS(train[p:, k], x).fit()
        assert fit.feature_aic[k] == pytest.approx(ols.aic, rel=1e-9)


def test_t_fixed_interval_is_the_formula():
    y = var_series(60, 2, seed=4)
    fit = fit_var(y, ["a", "b"], horizon=12, alpha=0.05)
    train, res = reference(y)
    p, k = res.k_ar, 2
    nobs = len(train) - p
    df = nobs - k * p - 1  # T − K·p − 1 with T the equations' rows
    assert fit.df_resid == df
    # sigma_u: residual covariance with the degrees-of-freedom correction, by hand from the residuals
    resid = train[p:] - res.fittedvalues
    sigma = np.sqrt((resid * resid).sum(axis=0) / df)
    half = scipy.stats.t.ppf(0.975, df) * sigma
    np.testing.assert_allclose(fit.upper - fit.forecast, np.tile(half, (12, 1)), rtol=1e-9)
    np.testing.assert_allclose(fit.forecast - fit.lower, np.tile(half, (12, 1)), rtol=1e-9)


def test_statsmodels_interval_is_forecast_interval():
    y = var_series(60, 2, seed=5)
    fit = fit_var(y, ["a", "b"], horizon=12, interval="statsmodels", alpha=0.1)
    train, res = reference(y)
    mid, lo, hi = res.forecast_interval(train[len(train) - res.k_ar:], steps=12, alpha=0.1)
    np.testing.assert_allclose(fit.forecast, mid, rtol=1e-12)
    np.testing.assert_allclose(fit.lower, lo, rtol=1e-12)
    np.testing.assert_allclose(fit.upper, hi, rtol=1e-12)
    assert (np.diff(hi - lo, axis=0) >= -1e-12).all()  # widens with the step


def test_one_varying_feature_is_an_autoreg():
    """statsmodels' VAR refuses one variable: the same model is AutoReg with the same lag and df rules."""
    y = var_series(60, 2, seed=6)
    y[:, 1] = 0.25  # constant: not modelled
    fit = fit_var(y, ["a", "b"], horizon=12, max_lags=4)
    from statsmodels.tsa.ar_model import ar_select_order

    train = y[:-12, 0]
    lags = ar_select_order(train, maxlag=4, ic="aic", trend="c").ar_lags or []
    p = max(lags) if lags else 0
    ar = AutoReg(train, lags=p, trend="c").fit()
    np.testing.assert_allclose(fit.forecast[:, 0], ar.forecast(12), rtol=1e-12)
    df = len(train) - p - p - 1
    sigma = np.sqrt(np.sum(ar.resid**2) / df)
    np.testing.assert_allclose(fit.upper[:, 0] - fit.forecast[:, 0], scipy.stats.t.ppf(0.975, df) * sigma)
    assert fit.aic == pytest.approx(ar.aic)
    # the constant feature: forecast = the constant, zero width, observations inside, AIC null
    assert np.all(fit.forecast[:, 1] == 0.25) and np.all(fit.lower[:, 1] == fit.upper[:, 1])
    assert fall_in_ci(fit, 1) == (1.0, 12)
    assert fit.feature_aic[1] is None and "constant" in fit.feature_aic_reason[1]


def test_planted_break_drops_fall_in_ci_and_no_break_stays_high():
    steady, broken = [], []
    for seed in range(12):
        steady.append(fall_in_ci(fit_var(var_series(68, 2, seed=seed), ["a", "b"]), 0)[0])
        broken.append(fall_in_ci(fit_var(var_series(68, 2, seed=seed, break_at=56), ["a", "b"]), 0)[0])
    # nominal coverage 0.95; a fixed-width interval on autocorrelated errors covers a little less
    assert np.mean(steady) >= 0.8 and min(steady) >= 0.5, steady  # none below the default threshold
    assert max(broken) <= 0.25, broken
    # the unbroken feature of a broken series stays inside
    assert fall_in_ci(fit_var(var_series(68, 2, seed=0, break_at=56), ["a", "b"]), 1)[0] >= 0.75


def test_denominators_and_rmse():
    y = var_series(60, 2, seed=7)
    y[50, 0] = np.nan  # an unobserved forecast date
    y[[5, 6], 1] = np.nan  # training gaps (interpolated, not observations)
    fit = fit_var(y, ["a", "b"], horizon=12)
    frac, n = fall_in_ci(fit, 0)
    assert n == 11
    obs, fc = y[48:, 0], fit.forecast[:, 0]
    ok = np.isfinite(obs)
    inside = (obs[ok] >= fit.lower[ok, 0]) & (obs[ok] <= fit.upper[ok, 0])
    assert frac == pytest.approx(inside.sum() / 11)
    assert forecast_rmse(fit, 0) == pytest.approx(np.sqrt(np.mean((fc[ok] - obs[ok]) ** 2)))
    frac_in, n_in = fall_in_ci(fit, 1, "in_sample")
    assert n_in == 48 - fit.lag_order - sum(1 for i in (5, 6) if i >= fit.lag_order)


def test_interpolation_equals_fitting_the_interpolated_series():
    y = var_series(60, 2, seed=8)
    gappy = y.copy()
    gappy[[10, 11, 20], 0] = np.nan
    filled = y.copy()
    idx = np.arange(48)
    ok = np.isfinite(gappy[:48, 0])
    filled[:48, 0] = np.interp(idx, idx[ok], gappy[:48, 0][ok])
    np.testing.assert_allclose(fit_var(gappy, ["a", "b"]).forecast, fit_var(filled, ["a", "b"]).forecast)
    dropped = fit_var(gappy, ["a", "b"], nan="drop")
    train = np.delete(y[:48], [10, 11, 20], axis=0)
    res = VAR(train).fit(maxlags=4, ic="aic")
    np.testing.assert_allclose(dropped.forecast, res.forecast(train[len(train) - res.k_ar:], 12))


@pytest.mark.parametrize(("case", "match"), [
    ("constant", "constant"), ("short", "too short"), ("all-nan", "no value"), ("cloudy", "missing on"),
])
def test_degenerate_series_raise_a_component_error(case, match):
    y = var_series(40, 2, seed=9)
    if case == "constant":
        y[:] = 0.3
    elif case == "short":
        y = y[:15]
    elif case == "all-nan":
        y[:, 1] = np.nan
    else:
        y[:20, 0] = np.nan
    with pytest.raises(SeriesError, match=match) as info:
        fit_var(y, ["a", "b"], horizon=12)
    assert isinstance(info.value, ComponentError)
