"""Change pictures against hand-computed references: gain/loss sign, composites, the series GIF."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from satcore.data import Raster  # noqa: E402
from satcore.plots_change import (  # noqa: E402
    change_sign,
    draw_gain_loss,
    draw_magnitude,
    false_colour,
    multitemporal_composite,
    series_gif,
)


def test_change_sign_is_ndvi_when_red_and_nir_are_named():
    rng = np.random.default_rng(0)
    before = rng.uniform(0.05, 0.5, (4, 8, 8))
    after = before.copy()
    after[3, :4] *= 1.8  # more NIR on the top half: greener
    names = ("blue", "green", "red", "nir")
    diff, what = change_sign(before, after, names)
    ndvi = lambda x: (x[3] - x[2]) / (x[3] + x[2])  # noqa: E731
    assert what == "NDVI"
    np.testing.assert_allclose(diff, ndvi(after) - ndvi(before))
    assert (diff[:4] > 0).all() and np.allclose(diff[4:], 0)
    diff2, what2 = change_sign(before[:3], after[:3] - 0.1, ("a", "b", "c"))
    assert what2 == "brightness" and np.allclose(diff2, -0.1)


def test_maps_carry_colour_bars_and_gain_loss_colours():
    fig, (a1, a2) = plt.subplots(1, 2)
    diff = np.zeros((10, 10))
    diff[:5] = 0.5   # gain
    diff[5:] = -0.5  # loss
    draw_gain_loss(a1, diff, "NDVI", mask=np.ones((10, 10)))
    draw_magnitude(a2, np.linspace(0, 1, 100).reshape(10, 10), np.eye(10) > 0, title="m")
    assert a1.images[-1].colorbar is not None and a2.images[-1].colorbar is not None
    assert a2.get_legend() is not None
    rgba = a1.images[-1].to_rgba(a1.images[-1].get_array())
    assert rgba[0, 0, 1] > rgba[0, 0, 0]   # gain: green over red
    assert rgba[9, 0, 0] > rgba[9, 0, 1]   # loss: red over green
    plt.close(fig)


def test_composites():
    t0 = np.full((1, 4, 4), 10.0)
    t1 = np.full((1, 4, 4), 10.0)
    t1[0, 0, 0] = 50.0  # brighter after: cyan (G, B high, R low)
    comp = multitemporal_composite([t0, t1], ("nir",))
    assert comp.shape == (4, 4, 3)
    assert comp[0, 0, 0] < comp[0, 0, 1] == comp[0, 0, 2]
    assert comp[2, 2, 0] == comp[2, 2, 1] == comp[2, 2, 2]  # unchanged: grey
    img = np.stack([np.full((4, 4), v) for v in (1.0, 2.0, 3.0, 4.0)])
    img[3, 0, 0] = 9.0
    fc = false_colour(img, ("blue", "green", "red", "nir"))
    assert fc is not None and fc.shape == (4, 4, 3) and fc[0, 0, 0] == 255  # NIR in the red channel
    assert false_colour(img, ("a", "b", "c", "d")) is None


def test_series_gif_has_one_frame_per_image():
    frames = [Raster(np.full((3, 20, 30), v, np.uint8) + np.arange(30, dtype=np.uint8)) for v in (0, 80, 160)]
    gif = Image.open(io.BytesIO(series_gif(frames, ["2020", "2021", "2022"])))
    assert gif.format == "GIF" and gif.n_frames == 3 and gif.size == (30, 20)
