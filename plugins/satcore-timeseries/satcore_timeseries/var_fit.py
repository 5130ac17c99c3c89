"""One location's VAR: fit on the earlier dates, forecast the held-out ones, interval, per-feature scores.

Kept apart from the detector so tests (and notebooks) can call :func:`fit_var` on a plain ``(T, K)`` array
and compare it with statsmodels. Definitions (docs/timeseries.md):

- The last ``horizon`` dates are held out; the VAR is fitted on the dates before them.
- Gaps (NaN) in the training part: ``interpolate`` (default) fills interior gaps linearly in the date index
  and edge gaps with the nearest value, keeping the dates evenly stepped as a VAR assumes; ``drop`` removes
  every training date with a gap and treats the rest as consecutive. Held-out NaN stay NaN (not scored).
- Features constant over the training part are not modelled (statsmodels refuses a constant column beside
  the intercept): forecast = that constant, a zero-width interval, AIC null.
- Lag order: ``VAR(y).fit(maxlags=m, ic="aic")`` with ``m = min(max_lags, (n − 2) // (K + 1))`` so that the
  largest order still leaves ``df = n − p − K·p − 1 ≥ 1`` residual degrees of freedom (``n`` training dates).
- ``t-fixed`` interval: ``forecast ± t(1 − α/2, df) · σ̂_k`` at every step, ``df = results.df_resid``
  (``nobs − K·p − 1``, ``nobs = n − p`` the equations' rows) and ``σ̂_k = sqrt(results.sigma_u[k, k])`` (the
  residual covariance with the degrees-of-freedom correction). ``statsmodels``: ``results.forecast_interval``
  (normal quantile, widening with the step).
- AIC: ``aic`` is statsmodels' model AIC (``results.aic``, the lag-selection criterion over the modelled
  features); ``feature_aic[k]`` is the AIC of equation k as an OLS regression with Gaussian errors,
  ``n·log(2π·RSS_k/n) + n + 2·(1 + K·p)`` with ``n = nobs`` (what ``statsmodels.OLS(...).fit().aic`` gives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from satcore.errors import ComponentError


class SeriesError(ComponentError):
    """A location's series cannot be modelled (constant, too short, all NaN or mostly cloud-masked)."""


@dataclass
class VarFit:
    """What :func:`fit_var` found for one location (arrays over the chosen features, in order)."""

    names: list[str]
    observed: np.ndarray  #: (T, K) the input, NaN kept
    n_train: int
    horizon: int
    forecast: np.ndarray  #: (h, K)
    lower: np.ndarray
    upper: np.ndarray
    fitted: np.ndarray  #: (n_train, K) in-sample one-step predictions; NaN for the first p dates
    fitted_lower: np.ndarray
    fitted_upper: np.ndarray
    lag_order: int
    df_resid: int | None
    crit: float | None
    sigma: np.ndarray  #: (K,) the σ̂ of each feature (0 for constant ones)
    aic: float | None
    aic_reason: str | None
    feature_aic: list[float | None]
    feature_aic_reason: list[str | None]
    constant: list[bool] = field(default_factory=list)

    @property
    def held_out(self) -> np.ndarray:
        """``(h, K)``: the observed values of the forecast dates."""
        return self.observed[self.n_train:]


def _fill(train: np.ndarray, names: Sequence[str], nan: str, max_nan_fraction: float) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Training values without gaps and the boolean rows of ``train`` they come from."""
    n = len(train)
    for k, name in enumerate(names):
        bad = int(np.sum(~np.isfinite(train[:, k])))
        if bad == n:
            raise SeriesError(f"feature {name!r} has no value on any of the {n} training dates (all NaN: "
                              "nodata, outside the scene or cloud-masked)")
        if bad / n > max_nan_fraction:
            raise SeriesError(f"feature {name!r} is missing on {bad} of {n} training dates (more than "
                              f"max_nan_fraction={max_nan_fraction}): mostly cloud-masked or nodata")
    if nan == "drop":
        rows = np.isfinite(train).all(axis=1)
        return train[rows], rows
    out = train.copy()
    idx = np.arange(n)
    for k in range(train.shape[1]):
        ok = np.isfinite(train[:, k])
        if not ok.all():
            out[:, k] = np.interp(idx, idx[ok], train[ok, k])  # edges: the nearest value
    return out, np.ones(n, dtype=bool)


def ols_aic(resid: np.ndarray, n_params: int) -> float | None:
    """Gaussian OLS AIC of one equation's residuals; ``None`` when the residual variance is 0."""
    n = len(resid)
    rss = float(np.sum(resid * resid))
    if n == 0 or rss <= 0 or not np.isfinite(rss):
        return None
    return float(n * np.log(2 * np.pi * rss / n) + n + 2 * n_params)


def _fit_model(data: np.ndarray, max_p: int, horizon: int, interval: str, alpha: float) -> tuple[Any, ...]:
    """Statsmodels' VAR (K ≥ 2) or, for one feature (which VAR refuses), AutoReg: the same model, AR(p)."""
    import scipy.stats

    n, k = data.shape
    if k == 1:
        from statsmodels.tsa.ar_model import AutoReg, ar_select_order

        lags = ar_select_order(data[:, 0], maxlag=max_p, ic="aic", trend="c").ar_lags or []
        p = int(max(lags)) if lags else 0
        ar = AutoReg(data[:, 0], lags=p, trend="c").fit()
        fc = np.asarray(ar.forecast(horizon))[:, None]
        resid = np.asarray(ar.resid)[:, None]
        df = int(len(resid) - p - 1)
        sigma_v = np.sqrt([float(np.sum(resid**2)) / df])
        fitted_v = np.asarray(ar.fittedvalues)[:, None]
        aic_model = float(ar.aic)
        if interval == "statsmodels":
            ci = np.asarray(ar.get_prediction(start=n, end=n + horizon - 1).conf_int(alpha=alpha))
            lo, hi = ci[:, :1], ci[:, 1:]
    else:
        from statsmodels.tsa.api import VAR

        res = VAR(data).fit(maxlags=max_p, ic="aic")
        p = int(res.k_ar)
        prior = data[n - p:]
        fc = np.asarray(res.forecast(prior, steps=horizon))
        sigma_v = np.sqrt(np.clip(np.diag(np.asarray(res.sigma_u)), 0, None))
        df = int(res.df_resid)
        fitted_v, resid, aic_model = np.asarray(res.fittedvalues), np.asarray(res.resid), float(res.aic)
        if interval == "statsmodels":
            _mid, lo, hi = (np.asarray(a) for a in res.forecast_interval(prior, steps=horizon, alpha=alpha))
    if interval == "t-fixed":
        crit: float | None = float(scipy.stats.t.ppf(1 - alpha / 2, df))
        lo, hi = fc - crit * sigma_v, fc + crit * sigma_v
        half1 = crit * sigma_v
    else:
        crit = None
        half1 = hi[0] - fc[0]  # the one-step half width, for in-sample fits
    return p, fc, lo, hi, half1, fitted_v, resid, aic_model, df, crit, sigma_v


def fit_var(values: Any, names: Sequence[str], *, horizon: int = 12, max_lags: int = 4,
            interval: str = "t-fixed", alpha: float = 0.05, nan: str = "interpolate",
            max_nan_fraction: float = 0.5) -> VarFit:
    """Fit a VAR on all but the last ``horizon`` dates and forecast them (definitions: module docstring).

    Args:
        values: ``(T, K)`` series (NaN = unknown).
        names: the K feature names (for messages).
        horizon: dates held out and forecast.
        max_lags: the largest lag order AIC may choose.
        interval: ``t-fixed`` or ``statsmodels``.
        alpha: 1 − the interval's confidence.
        nan: ``interpolate`` or ``drop`` (training gaps).
        max_nan_fraction: the largest share of NaN training dates a feature may have.

    Returns:
        A :class:`VarFit`.

    Raises:
        SeriesError: the series is too short, constant, all NaN or mostly missing, or statsmodels fails.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    t_all, k_all = y.shape
    n_train = t_all - horizon
    if n_train < 4:
        raise SeriesError(f"the series has {t_all} dates: too short to hold out horizon={horizon} and fit "
                          "a VAR "
                          f"on the rest (at least {horizon + 4} dates needed)")
    train_raw = y[:n_train]
    train, rows = _fill(train_raw, names, nan, max_nan_fraction)
    span = np.ptp(train, axis=0) if len(train) else np.zeros(k_all)
    constant = [bool(s <= 1e-12 * max(1.0, float(np.abs(train[:, k]).max()))) for k, s in enumerate(span)]
    varying = [k for k in range(k_all) if not constant[k]]
    if not varying:
        raise SeriesError(f"every feature ({', '.join(names)}) is constant over the {n_train} training "
                          "dates: "
                          "nothing to model (an empty or saturated window?)")
    data = train[:, varying]
    n, k = data.shape
    max_p = min(max_lags, (n - 2) // (k + 1))
    if max_p < 1:
        raise SeriesError(f"{n} usable training dates for {k} varying features: too short for a VAR(1) "
                          f"(needs at least {k + 3}); use fewer features or a shorter horizon")
    try:
        m = _fit_model(data, max_p, horizon, interval, alpha)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise SeriesError(f"statsmodels could not fit the VAR: {type(exc).__name__}: {exc}") from exc
    p, fc, lo, hi, half1, fitted_v, resid, aic_model, df, crit, sigma_v = m

    def full(v: np.ndarray, const: np.ndarray) -> np.ndarray:
        out = np.tile(const, (v.shape[0], 1)).astype(np.float64)
        out[:, varying] = v
        return out

    consts = np.array([train[0, j] for j in range(k_all)])
    forecast, lower, upper = full(fc, consts), full(lo, consts), full(hi, consts)
    # in-sample: fitted values for the training dates from p on (interpolation keeps every date; `drop`
    # puts them back on the dates they came from)
    fit_rows = np.flatnonzero(rows)[p:]
    fitted = np.full((n_train, k_all), np.nan)
    fitted[fit_rows] = full(fitted_v, consts)
    f_lo, f_hi = fitted.copy(), fitted.copy()
    f_lo[fit_rows[:, None], np.asarray(varying)[None, :]] -= half1
    f_hi[fit_rows[:, None], np.asarray(varying)[None, :]] += half1
    sigma = np.zeros(k_all)
    sigma[varying] = sigma_v
    feat_aic: list[float | None] = [None] * k_all
    feat_reason: list[str | None] = ["constant over the training dates: not modelled"] * k_all
    for j, col in enumerate(varying):
        a = ols_aic(resid[:, j], 1 + k * p)
        feat_aic[col] = a
        feat_reason[col] = None if a is not None else "residual variance 0 (a perfect in-sample fit)"
    aic: float | None = aic_model if np.isfinite(aic_model) else None
    aic_reason = None if aic is not None else "statsmodels' AIC is not finite (singular residual covariance)"
    return VarFit(list(names), y, n_train, horizon, forecast, lower, upper, fitted, f_lo, f_hi, p, df, crit,
                  sigma, aic, aic_reason, feat_aic, feat_reason, constant)


def fall_in_ci(fit: VarFit, k: int, over: str = "forecast") -> tuple[float | None, int]:
    """Share of observed values of feature ``k`` inside the interval, and the denominator.

    ``over="forecast"``: the held-out dates with an observed (non-NaN) value. ``"in_sample"``: the training
    dates from the lag order on that were observed (interpolated values are not observations).
    """
    if over == "forecast":
        obs, lo, hi = fit.held_out[:, k], fit.lower[:, k], fit.upper[:, k]
    else:
        obs, lo, hi = fit.observed[: fit.n_train, k], fit.fitted_lower[:, k], fit.fitted_upper[:, k]
    ok = np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
    n = int(ok.sum())
    if n == 0:
        return None, 0
    return float(np.mean((obs[ok] >= lo[ok]) & (obs[ok] <= hi[ok]))), n


def forecast_rmse(fit: VarFit, k: int) -> float | None:
    """RMSE of feature ``k``'s forecast over its observed held-out dates (``None``: none observed)."""
    obs = fit.held_out[:, k]
    ok = np.isfinite(obs)
    if not ok.any():
        return None
    return float(np.sqrt(np.mean((fit.forecast[ok, k] - obs[ok]) ** 2)))
