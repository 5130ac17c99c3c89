"""Sliding-window inference: coverage, exactness for per-pixel models, and no seams with a real network."""

from __future__ import annotations

import numpy as np
import pytest
from satcore_generative.testing import TINY
from satcore_generative.window import sliding_window, window_starts


@pytest.mark.parametrize(("size", "window", "stride"),
                         [(512, 64, 32), (100, 64, 48), (64, 64, 32), (30, 64, 32)])
def test_windows_cover_the_image_and_stay_inside(size, window, stride):
    starts = window_starts(size, window, stride)
    covered = np.zeros(max(size, window), bool)
    for s in starts:
        covered[s:s + window] = True
        assert s + window <= max(size, window)
    assert covered[:size].all()


@pytest.mark.parametrize("shape", [(3, 512, 512), (3, 100, 77), (3, 20, 33)])
def test_a_per_pixel_model_is_reproduced_exactly(shape):
    """A model that maps each pixel alone (a 1×1 linear map) gives the same output however it is tiled."""
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    w = rng.normal(size=(13, 3)).astype(np.float32)
    out = sliding_window(x, lambda t: np.einsum("oc,nchw->nohw", w, t), out_bands=13, window=64, overlap=16)
    np.testing.assert_allclose(out, np.einsum("oc,chw->ohw", w, x), rtol=1e-5, atol=1e-5)


def _steps(out: np.ndarray, axis: int, r: int = 4) -> np.ndarray:
    """|mean of the r pixels after position k − mean of the r pixels before it|, averaged over bands and the
    other axis, for every k in [r, size − r]. Box means of 4 pixels cancel the generator's period-4 texture
    (two stride-2 upsamplings), so what remains is the image's own gradient plus any step: a seam."""
    c = np.cumsum(np.pad(np.moveaxis(out, axis, -1), ((0, 0), (0, 0), (1, 0))), axis=-1)
    size = out.shape[axis]
    ks = np.arange(r, size - r + 1)
    left, right = (c[..., ks] - c[..., ks - r]) / r, (c[..., ks + r] - c[..., ks]) / r
    return np.abs(right - left).mean(axis=(0, 1))


def _border_jumps(out: np.ndarray, window: int, overlap: int, r: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The differences across the image split into those across a window border (a window starts or ends
    there) and those inside windows, over both columns and rows."""
    size = out.shape[2]
    assert out.shape[1] == size  # square: the same borders for rows and columns
    starts = window_starts(size, window, window - overlap)
    borders = {s for s in starts if s > 0} | {s + window for s in starts if s + window < size}
    is_border = np.array([k in borders for k in range(r, size - r + 1)])
    steps = [_steps(out, 2, r), _steps(out, 1, r)]
    return (np.concatenate([s[is_border] for s in steps]), np.concatenate([s[~is_border] for s in steps]))


def _tiny_g():
    import torch
    from satcore_generative.cyclegan import Generator

    torch.manual_seed(3)
    g = Generator(3, 13, TINY["base"], TINY["n_res"], TINY["se_reduction"]).eval()

    def predict(t: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return g(torch.from_numpy(t)).numpy()

    return predict


def _smooth_image(size: int = 512) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return np.stack([np.sin(6 * xx + 2 * yy), np.cos(5 * yy - xx), xx * yy * 2 - 1]).astype(np.float32) * 0.9


def test_no_seams_on_512_with_a_random_generator():
    out = sliding_window(_smooth_image(), _tiny_g(), out_bands=13, window=64, overlap=32)
    assert out.shape == (13, 512, 512) and np.isfinite(out).all()
    border, inside = _border_jumps(out, 64, 32)
    assert border.max() <= inside.max()
    assert border.mean() <= 1.1 * inside.mean()


def test_plain_tiling_shows_seams_so_the_seam_check_can_fail():
    """Without overlap each window's instance norm and padding show at its border: the check above fails."""
    out = sliding_window(_smooth_image(), _tiny_g(), out_bands=13, window=64, overlap=0)
    border, inside = _border_jumps(out, 64, 0)
    assert border.mean() > 2 * inside.mean()


def test_overlap_must_be_smaller_than_the_window():
    with pytest.raises(ValueError, match="overlap"):
        sliding_window(np.zeros((3, 8, 8), np.float32), lambda t: t, out_bands=3, window=8, overlap=8)
