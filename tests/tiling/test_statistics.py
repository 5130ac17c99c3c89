"""Mergeable scene statistics against independent references: Otsu, moments, co-moments/PCA, the tile grid."""

from __future__ import annotations

import numpy as np
import pytest

from satcore.builtin.tiling import tile_grid
from satcore.components.filters import band_moments, merge_moments
from satcore.components.thresholds import otsu_from_histogram, otsu_histogram, otsu_threshold, value_range


def parts(a: np.ndarray, n: int) -> list[np.ndarray]:
    """``a`` cut into ``n`` uneven column strips (as tiles would)."""
    cuts = np.sort(np.random.default_rng(1).choice(np.arange(1, a.shape[-1]), n - 1, replace=False))
    return np.split(a, cuts, axis=-1)


def test_otsu_from_merged_fixed_range_histograms_is_skimage_on_the_whole() -> None:
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(0)
    v = np.concatenate([rng.gamma(2.0, 1.0, 30000), rng.normal(9.0, 1.5, 8000)]).reshape(76, 500)
    tiles = parts(v, 7)
    ranges = [value_range(t) for t in tiles]
    lo, hi = min(r[0] for r in ranges if r), max(r[1] for r in ranges if r)
    counts = np.sum([otsu_histogram(t, lo, hi) for t in tiles], axis=0)
    t = otsu_from_histogram(counts, lo, hi)
    assert t == threshold_otsu(v) == otsu_threshold(v)
    assert 3.0 < t < 9.0  # between the two modes


def test_otsu_edge_cases_merge_as_the_whole() -> None:
    assert otsu_from_histogram(otsu_histogram(np.full(10, 2.5), 2.5, 2.5), 2.5, 2.5) == otsu_threshold(
        np.full(10, 2.5)) == 2.5
    assert value_range(np.array([np.nan, np.inf])) is None


def test_merged_moments_are_numpy_mean_and_std_nan_left_out() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(50, 12, (3, 40, 90))
    a[1, 5:9, 10:30] = np.nan
    m = merge_moments([band_moments(t) for t in parts(a, 5)])
    np.testing.assert_allclose(m.mean, np.nanmean(a, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(m.std, np.nanstd(a, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(m.n, np.isfinite(a).sum(axis=(1, 2)))


def test_merged_block_comoments_give_sklearns_pca() -> None:
    from satcore_classic.scene import merge_comoments, pca_from_comoments
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    x = rng.normal(size=(900, 16)) @ rng.normal(size=(16, 16))
    chunks = [x[:100], x[100:450], x[450:]]
    ps = []
    for c in chunks:
        mean = c.mean(axis=0)
        ps.append((float(len(c)), mean, (c - mean).T @ (c - mean)))
    n, mean, cm = merge_comoments(ps)
    np.testing.assert_allclose(cm / (n - 1), np.cov(x, rowvar=False), rtol=1e-10, atol=1e-10)
    pca = pca_from_comoments(n, mean, cm, 3)
    ref = PCA(n_components=3, svd_solver="full").fit(x)
    np.testing.assert_allclose(np.abs(pca["components"]), np.abs(ref.components_), atol=1e-8)
    assert pca["explained_variance"] == pytest.approx(ref.explained_variance_ratio_.sum(), rel=1e-10)


@pytest.mark.parametrize(("h", "w", "size"), [(500, 600, 128), (256, 256, 128), (17, 300, 16)])
def test_tile_grid_covers_every_pixel_once(h: int, w: int, size: int) -> None:
    cover = np.zeros((h, w), int)
    for _i, _j, (r, c, th, tw) in tile_grid(h, w, size):
        cover[r:r + th, c:c + tw] += 1
    assert (cover == 1).all()
