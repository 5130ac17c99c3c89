from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from satcore.components.filters import NORMALISE_EPS, normalise_bands, normalise_pair, smooth


def _image(seed=0, bands=3):
    rng = np.random.default_rng(seed)
    return rng.normal(5, 2, (bands, 16, 20)) * np.arange(1, bands + 1)[:, None, None]


def test_zscore_and_minmax_per_band_against_hand_formulas():
    a = _image()
    z = normalise_bands(a, "zscore")
    for b in range(a.shape[0]):
        np.testing.assert_allclose(z[b], (a[b] - a[b].mean()) / (a[b].std() + NORMALISE_EPS))
        assert abs(z[b].mean()) < 1e-9 and z[b].std() == pytest.approx(1, abs=1e-5)
    m = normalise_bands(a, "minmax")
    for b in range(a.shape[0]):
        np.testing.assert_allclose(m[b], (a[b] - a[b].min()) / (np.ptp(a[b]) + NORMALISE_EPS))
    assert m.min() == 0 and m.max() < 1
    assert normalise_bands(a, "none") is a


def test_normalisation_ignores_nan_and_keeps_it():
    a = _image(1)
    a[0, 0, 0] = np.nan
    z = normalise_bands(a, "zscore")
    ok = np.isfinite(a[0])
    assert np.isnan(z[0, 0, 0])
    np.testing.assert_allclose(z[0][ok], (a[0][ok] - a[0][ok].mean()) / (a[0][ok].std() + NORMALISE_EPS))
    assert np.isfinite(normalise_bands(a, "minmax")[0][ok]).all()


def test_constant_band_gives_zeros_not_nan():
    a = np.ones((2, 4, 4))
    assert np.all(normalise_bands(a, "zscore") == 0) and np.all(normalise_bands(a, "minmax") == 0)


def test_match_rescales_the_second_date_to_the_first():
    a, b = _image(2), _image(3) * 3 + 7
    a2, b2 = normalise_pair(a, b, "match")
    assert a2 is a
    np.testing.assert_allclose(b2.mean(axis=(1, 2)), a.mean(axis=(1, 2)))
    np.testing.assert_allclose(b2.std(axis=(1, 2)), a.std(axis=(1, 2)), rtol=1e-5)
    za, zb = normalise_pair(a, b, "zscore")
    np.testing.assert_array_equal(za, normalise_bands(a, "zscore"))
    np.testing.assert_array_equal(zb, normalise_bands(b, "zscore"))


def test_smoothing_against_scipy():
    x = _image(4)[0]
    assert smooth(x, 0) is x
    np.testing.assert_array_equal(smooth(x, 1.5), ndimage.gaussian_filter(x, 1.5, mode="reflect"))
    np.testing.assert_allclose(smooth(x, 1, "mean"), ndimage.uniform_filter(x, size=3, mode="reflect"))
    # the mean filter by hand at an interior pixel: the 3x3 average
    assert smooth(x, 1, "mean")[5, 5] == pytest.approx(x[4:7, 4:7].mean())
    with pytest.raises(ValueError, match="unknown smoothing"):
        smooth(x, 1, "median")  # type: ignore[arg-type]
