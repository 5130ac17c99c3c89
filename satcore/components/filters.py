"""Smoothing and per-band normalisation as the built-in detectors use them (numpy and scipy only).

Arrays are ``(bands, H, W)`` for images and ``(H, W)`` for maps, as :meth:`satcore.data.Item.pair_arrays`
and a detector's ``score_map`` have them. scipy is imported on first use (it comes with scikit-learn).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

__all__ = [
    "NORMALISE_EPS", "Moments", "Normalise", "Smoothing", "band_moments", "merge_moments", "nan_where",
    "normalise_bands", "normalise_pair", "normalise_pair_with", "smooth", "smooth_halo",
]

#: How :func:`normalise_bands` rescales each band.
Normalise = Literal["none", "zscore", "minmax"]
#: How :func:`smooth` filters a map.
Smoothing = Literal["gaussian", "mean"]
#: Added to a band's standard deviation or range so a constant band gives zeros, not NaN.
NORMALISE_EPS = 1e-6


def nan_where(a: np.ndarray, invalid: np.ndarray | None) -> np.ndarray:
    """``a`` as floats with NaN at the ``invalid`` ``(H, W)`` pixels (every band); ``a`` itself if none.

    The way to hand :meth:`satcore.data.Item.invalid_pixels` (nodata, non-finite) to these functions: they
    all leave NaN out of their statistics.
    """
    if invalid is None or not invalid.any():
        return a
    out = np.array(a, dtype=np.result_type(a.dtype, np.float32), copy=True)
    out[..., invalid] = np.nan
    return out


def smooth_halo(sigma: float, method: Smoothing = "gaussian") -> int:
    """How many pixels around a pixel :func:`smooth` reads (the filter's radius): a tile needs that halo.

    ``gaussian``: scipy's kernel radius ``int(4 * sigma + 0.5)`` (its default ``truncate=4``); ``mean``:
    ``round(sigma)``.
    """
    if not sigma:
        return 0
    return int(4.0 * float(sigma) + 0.5) if method == "gaussian" else round(sigma)


def smooth(x: np.ndarray, sigma: float, method: Smoothing = "gaussian") -> np.ndarray:
    """Low-pass filter a 2-D map; ``sigma`` 0 returns ``x`` itself.

    NaN pixels (invalid: nodata, non-finite) stay NaN and do not spread: the filter is normalised by the
    weight of the valid pixels under it (normalised convolution), so a NaN border does not eat into the map.

    Args:
        x: an ``(H, W)`` array.
        sigma: ``gaussian``: the standard deviation in pixels; ``mean``: the radius ``r`` of the
            ``(2r+1)×(2r+1)`` window, ``r = round(sigma)``.
        method: ``gaussian`` (:func:`scipy.ndimage.gaussian_filter`) or ``mean``
            (:func:`scipy.ndimage.uniform_filter`); both reflect the image at its borders.
    """
    if not sigma:
        return x
    if np.issubdtype(np.asarray(x).dtype, np.floating) and not np.isfinite(x).all():
        ok = np.isfinite(x)
        num = smooth(np.where(ok, x, 0.0), sigma, method)
        den = smooth(ok.astype(np.float64), sigma, method)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(ok, num / den, np.nan)
        return out
    if method == "gaussian":
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(x, sigma, mode="reflect")  # type: ignore[no-any-return]
    if method == "mean":
        from scipy.ndimage import uniform_filter

        size = 2 * round(sigma) + 1
        return uniform_filter(np.asarray(x, dtype=np.float64), size=size, mode="reflect")  # type: ignore[no-any-return]
    raise ValueError(f"unknown smoothing {method!r}: use 'gaussian' or 'mean'")


def normalise_bands(a: np.ndarray, how: Normalise) -> np.ndarray:
    """Rescale each band of a ``(bands, H, W)`` array on its own statistics (NaN is ignored and kept).

    ``zscore``: ``(x - mean) / (std + eps)``, mean 0 and standard deviation 1 per band; ``minmax``:
    ``(x - min) / (max - min + eps)``, in ``[0, 1]`` per band; ``none``: ``a`` itself. ``eps`` is
    :data:`NORMALISE_EPS`.
    """
    if how == "none":
        return a
    has_nan = np.isnan(a).any() if np.issubdtype(np.asarray(a).dtype, np.floating) else False
    if how == "zscore":
        if has_nan:
            m = np.nanmean(a, axis=(1, 2), keepdims=True)
            s = np.nanstd(a, axis=(1, 2), keepdims=True) + NORMALISE_EPS
        else:  # the plain reductions: bit for bit what the classic detectors always computed
            m = a.mean(axis=(1, 2), keepdims=True)
            s = a.std(axis=(1, 2), keepdims=True) + NORMALISE_EPS
        return (a - m) / s  # type: ignore[no-any-return]
    if how == "minmax":
        lo = (np.nanmin if has_nan else np.min)(a, axis=(1, 2), keepdims=True)
        hi = (np.nanmax if has_nan else np.max)(a, axis=(1, 2), keepdims=True)
        return (a - lo) / (hi - lo + NORMALISE_EPS)  # type: ignore[no-any-return]
    raise ValueError(f"unknown normalisation {how!r}: use 'none', 'zscore' or 'minmax'")


def normalise_pair(
    a: np.ndarray, b: np.ndarray, how: Literal["none", "zscore", "minmax", "match"]
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise the two dates of a pair: each on its own (:func:`normalise_bands`), or ``match``.

    ``match`` leaves ``a`` as it is and rescales each band of ``b`` to ``a``'s mean and standard deviation
    (a linear radiometric match of the second date to the first). NaN pixels are left out of the statistics
    in every mode (see :func:`nan_where`).
    """
    if how == "match":
        floats = np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)
        mean, std = (np.nanmean, np.nanstd) if floats and (np.isnan(a).any() or np.isnan(b).any()) else (
            np.mean, np.std)
        ma, sa = mean(a, axis=(1, 2), keepdims=True), std(a, axis=(1, 2), keepdims=True) + NORMALISE_EPS
        mb, sb = mean(b, axis=(1, 2), keepdims=True), std(b, axis=(1, 2), keepdims=True) + NORMALISE_EPS
        return a, (b - mb) / sb * sa + ma
    return normalise_bands(a, how), normalise_bands(b, how)


class Moments(NamedTuple):
    """Per-band count, mean and sum of squared deviations (``m2``) of the finite values: mergeable.

    Parts merge exactly in real arithmetic (Chan et al.'s pairwise update), so the moments of a scene are
    merged from its tiles' (:func:`merge_moments`); ``std`` is the population standard deviation, as
    :func:`numpy.std`.
    """

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per band (0 for a band without values)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, np.sqrt(np.maximum(self.m2, 0.0) / np.maximum(self.n, 1)), 0.0)

    def to_lists(self) -> dict[str, list[float]]:
        """``{"n", "mean", "m2"}`` as lists (picklable, JSON-able)."""
        return {"n": self.n.tolist(), "mean": self.mean.tolist(), "m2": self.m2.tolist()}


def band_moments(a: np.ndarray) -> Moments:
    """:class:`Moments` of each band of a ``(bands, H, W)`` array, NaN left out."""
    x = np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)
    ok = np.isfinite(x)
    n = ok.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, np.where(ok, x, 0.0).sum(axis=1) / np.maximum(n, 1), 0.0)
    dev = np.where(ok, x - mean[:, None], 0.0)
    return Moments(n, mean, np.einsum("bi,bi->b", dev, dev))


def merge_moments(parts: list[Moments]) -> Moments:
    """The moments of the union of the parts' values (Chan, Golub and LeVeque's pairwise update)."""
    if not parts:
        raise ValueError("merge_moments needs at least one part")
    n, mean, m2 = (np.array(v, dtype=np.float64) for v in parts[0])
    for p in parts[1:]:
        n2, mean2, m22 = (np.asarray(v, dtype=np.float64) for v in p)
        tot = n + n2
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = mean2 - mean
            mean = np.where(tot > 0, mean + delta * n2 / np.maximum(tot, 1), 0.0)
            m2 = m2 + m22 + np.where(tot > 0, delta * delta * n * n2 / np.maximum(tot, 1), 0.0)
        n = tot
    return Moments(n, mean, m2)


def normalise_pair_with(
    a: np.ndarray, b: np.ndarray, how: Literal["none", "zscore", "match"], ma: Moments, mb: Moments
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`normalise_pair` with given statistics (a whole scene's, merged from its tiles).

    ``zscore`` uses each date's mean and standard deviation, ``match`` rescales ``b`` to ``a``'s; the
    result equals :func:`normalise_pair` on the whole scene up to floating-point rounding of the moments.
    """
    if how == "none":
        return a, b
    m_a, s_a = ma.mean[:, None, None], ma.std[:, None, None] + NORMALISE_EPS
    m_b, s_b = mb.mean[:, None, None], mb.std[:, None, None] + NORMALISE_EPS
    if how == "match":
        return a, (b - m_b) / s_b * s_a + m_a
    if how == "zscore":
        return (a - m_a) / s_a, (b - m_b) / s_b
    raise ValueError(f"unknown normalisation {how!r}: use 'none', 'zscore' or 'match'")
