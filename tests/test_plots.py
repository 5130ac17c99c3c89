from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from satcore.data import Raster
from satcore.plots import display_rgb, fig_to_html, stretch


def _reference_stretch(band, valid):
    """The documented stretch, written out once more: 2nd percentile → 0, 98th → 255, invalid → 0."""
    lo, hi = np.percentile(band[valid], 2), np.percentile(band[valid], 98)
    out = np.zeros(band.shape, np.uint8)
    out[valid] = np.round(np.clip((band[valid] - lo) / (hi - lo), 0, 1) * 255)
    return out


def test_named_bands_pick_red_green_blue_in_that_order():
    rng = np.random.default_rng(0)
    arr = rng.normal(100, 30, (4, 10, 12))
    r = Raster(arr, band_names=("blue", "nir", "red", "green"))
    rgb = display_rgb(r)
    assert rgb.dtype == np.uint8 and rgb.shape == (10, 12, 3)
    ok = np.ones((10, 12), bool)
    for ch, band in enumerate((2, 3, 0)):
        np.testing.assert_array_equal(rgb[..., ch], _reference_stretch(arr[band], ok))


def test_sentinel2_names_then_first_three_then_grey():
    rng = np.random.default_rng(1)
    arr = rng.random((5, 6, 7))
    s2 = display_rgb(arr, band_names=["B01", "B02", "B03", "B04", "B08"])
    np.testing.assert_array_equal(s2[..., 0], stretch(arr[3]))
    np.testing.assert_array_equal(s2[..., 2], stretch(arr[1]))
    first3 = display_rgb(arr)  # no names: the first three bands
    np.testing.assert_array_equal(first3, np.stack([stretch(arr[i]) for i in range(3)], -1))
    grey = display_rgb(arr[0])  # one band
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    np.testing.assert_array_equal(grey[..., 0], stretch(arr[0]))


def test_stretch_is_robust_and_ignores_nan_and_nodata():
    rng = np.random.default_rng(2)
    band = rng.normal(0, 1, (40, 40))
    band[0, 0] = 1e9  # one hot pixel must not darken the rest
    band[1, 1] = np.nan
    band[2, 2] = -9999
    rgb = display_rgb(Raster(np.stack([band] * 3), band_names=("red", "green", "blue"), nodata=-9999))
    valid = np.isfinite(band) & (band != -9999)
    np.testing.assert_array_equal(rgb[..., 0], _reference_stretch(band, valid))
    assert rgb[1, 1, 0] == 0 and rgb[2, 2, 0] == 0 and rgb[0, 0, 0] == 255
    assert rgb[..., 0][valid].mean() == pytest.approx(127.5, abs=10)  # mid-grey on average, not black
    assert (np.sum(rgb[..., 0][valid] == 0) / valid.sum()) == pytest.approx(0.02, abs=0.01)


def test_constant_or_empty_bands_are_black_and_bad_shapes_refused():
    assert not display_rgb(np.ones((3, 4, 4))).any()
    assert not display_rgb(np.full((3, 4, 4), np.nan)).any()
    with pytest.raises(ValueError, match="bands, H, W"):
        display_rgb(np.zeros((2, 3, 4, 5)))


def test_fig_to_html_is_a_self_contained_png_and_closes_the_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [1, 0])
    out = fig_to_html(fig, 'step "a" <b>')
    assert out.startswith('<img alt="step &quot;a&quot; &lt;b&gt;" src="data:image/png;base64,')
    assert not plt.fignum_exists(fig.number)
    png = base64.b64decode(out.split("base64,", 1)[1].rstrip('">'))
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size[0] > 50
