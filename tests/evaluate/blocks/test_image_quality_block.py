"""The image-quality block against hand formulas (eigendecomposition FID, naive-loop KID, scipy KL)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from satcore.evaluate.blocks import ImageQualityBlock, image_quality_record


def _psd_sqrt(c):
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _fid_reference(r, g):
    # Tr((C1 C2)^½) = Tr((C1^½ C2 C1^½)^½): symmetric, so eigh only (no sqrtm)
    c1, c2 = np.cov(r, rowvar=False), np.cov(g, rowvar=False)
    s1 = _psd_sqrt(c1)
    tr = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ c2 @ s1), 0, None)))
    d = r.mean(0) - g.mean(0)
    return d @ d + np.trace(c1) + np.trace(c2) - 2 * tr


def _mmd2_reference(x, y):
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    m = len(x)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return sxx + syy - 2 * sxy


def _recs(real, fake, probs=None):
    return {f"g{i:03d}": image_quality_record(real[i], fake[i], probs=None if probs is None else probs[i])
            for i in range(len(real))}


@pytest.mark.parametrize("seed", range(3))
def test_fid_and_kid_equal_hand_formulas(seed, block_result):
    rng = np.random.default_rng(seed)
    n, d = 40, 6
    real = rng.normal(size=(n, d))
    fake = rng.normal(0.3, 1.2, size=(n, d)) @ rng.normal(size=(d, d)) * 0.5
    out = block_result(ImageQualityBlock, _recs(real, fake), kid_subsets=1, kid_subset_size=n)
    # features travel as float32 (8 KB per 2048-D item), so compare with the float32 vectors
    r32, f32 = real.astype(np.float32).astype(float), fake.astype(np.float32).astype(float)
    assert out["fid"] == pytest.approx(_fid_reference(r32, f32), rel=1e-6)
    # one subset of every vector: the unbiased MMD² of the two sets, whatever the draw
    assert out["kid_mean"] == pytest.approx(_mmd2_reference(r32, f32), rel=1e-9)
    assert out["kid_std"] == 0.0
    assert out["items"] == n and out["real"] == n and out["generated"] == n


def test_known_fid_cases(block_result):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(50, 4))
    same = block_result(ImageQualityBlock, _recs(real, real), kid_subsets=5, kid_subset_size=20)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0])  # same covariance: FID = |μ1 - μ2|²
    out = block_result(ImageQualityBlock, _recs(real, real + shift), kid_subsets=5, kid_subset_size=20)
    assert out["fid"] == pytest.approx(shift @ shift, rel=1e-5)
    assert out["kid_mean"] > same["kid_mean"]


@pytest.mark.parametrize("seed", range(3))
def test_inception_score_equals_scipy_kl(seed, block_result):
    rng = np.random.default_rng(seed)
    n, c, splits = 30, 5, 3
    probs = rng.dirichlet(np.ones(c) * 0.5, n)
    feats = rng.normal(size=(n, 3))
    out = block_result(ImageQualityBlock, _recs(feats, feats, probs), is_splits=splits, kid_subsets=2,
                       kid_subset_size=10)
    p32 = probs.astype(np.float32).astype(float)
    ref = np.mean([np.exp(np.mean([entropy(p, part.mean(0)) for p in part]))
                   for part in np.array_split(p32, splits)])
    assert out["inception_score"] == pytest.approx(ref, rel=1e-9)
    # one-hot over balanced classes: IS = number of classes
    onehot = np.eye(c)[np.arange(20) % c]
    out = block_result(ImageQualityBlock, _recs(feats[:20], feats[:20], onehot), is_splits=1, kid_subsets=1,
                       kid_subset_size=5)
    assert out["inception_score"] == pytest.approx(c)


def test_order_does_not_matter(block_result):
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(30, 5)), rng.normal(0.2, 1, size=(30, 5))
    probs = rng.dirichlet(np.ones(4), 30)
    kw = {"kid_subsets": 10, "kid_subset_size": 12, "is_splits": 3}
    assert (block_result(ImageQualityBlock, _recs(real, fake, probs), seed=3, **kw)
            == block_result(ImageQualityBlock, _recs(real, fake, probs), **kw))


def test_a_worse_generator_moves_fid_as_the_reference_does(block_result):
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    worse = fake * 2 + 1
    good = block_result(ImageQualityBlock, _recs(real, fake), kid_subsets=3, kid_subset_size=20)
    bad = block_result(ImageQualityBlock, _recs(real, worse), kid_subsets=3, kid_subset_size=20)
    r32, w32 = real.astype(np.float32).astype(float), worse.astype(np.float32).astype(float)
    assert bad["fid"] == pytest.approx(_fid_reference(r32, w32), rel=1e-6)
    assert bad["fid"] > good["fid"] and bad["kid_mean"] > good["kid_mean"]


def test_without_features_everything_is_null_with_a_reason(block_result):
    assert image_quality_record(None, None) is None
    out = block_result(ImageQualityBlock, {}, parquet=False)
    for k in ("fid", "kid_mean", "kid_std", "inception_score"):
        assert out[k] is None and "needs image features from a plugin" in out[f"{k}_reason"]
    # generated features only: nothing to compare with
    out = block_result(ImageQualityBlock, {"a": image_quality_record(None, [1.0, 2.0]),
                                           "b": image_quality_record(None, [0.0, 1.0])})
    assert out["fid"] is None and "real images" in out["fid_reason"]
    out = block_result(ImageQualityBlock, {"a": image_quality_record([1.0], [1.0])})
    assert out["fid"] is None and "fewer than 2" in out["fid_reason"]
    out = block_result(ImageQualityBlock, {"a": image_quality_record([1.0], [1.0], probs=[0.5, 0.5])})
    assert out["inception_score"] is None and "is_splits" in out["inception_score_reason"]
