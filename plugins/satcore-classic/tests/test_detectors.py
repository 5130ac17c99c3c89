"""Behaviour of image-diff, cva and pca-kmeans against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from satcore_classic.detectors import (
    CVADetector,
    ImageDiffDetector,
    IndexDiffDetector,
    PCAKMeansDetector,
    block_vectors,
    clean_mask,
    neighbourhood_vectors,
    otsu_threshold,
)
from scipy import stats
from skimage.filters import threshold_otsu
from sklearn.metrics import f1_score, roc_auc_score

from satcore.components import Batch

DETECTORS = [ImageDiffDetector, CVADetector, PCAKMeansDetector]


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_planted_square_is_found(cls, build, synth):
    a, b, truth = synth.planted_pair(seed=1)
    det = build(cls).process(Batch([synth.make_item(a, b, truth)]))[0]
    assert det.score_map.shape == truth.shape and det.label_map.shape == truth.shape
    assert roc_auc_score(truth.ravel(), det.score_map.ravel()) > 0.97
    assert f1_score(truth.ravel(), det.label_map.ravel()) > 0.85
    # a pair with no change gets a far lower changed fraction than the planted one
    same = build(cls).process(Batch([synth.make_item(a, a + 0.0, np.zeros_like(truth))]))[0]
    assert same.score < det.score


def test_otsu_matches_scikit_image_on_bimodal_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(2.0, 0.5, 3000), rng.normal(8.0, 1.0, 1000)])
    t = otsu_threshold(x)
    assert t == pytest.approx(float(threshold_otsu(x)))
    assert 3.0 < t < 7.0  # between the modes
    assert otsu_threshold(np.full(10, 4.0)) == 4.0  # constant: no split, nothing above it


def test_detector_thresholds_with_otsu_per_image(build, synth):
    a, b, _ = synth.planted_pair(seed=2, bands=1)
    det = build(CVADetector, normalise="none", smooth=0, morphology=0).process(
        Batch([synth.make_item(a, b)])
    )[0]
    mag = np.abs(b[0].astype(np.float64) - a[0])
    t = threshold_otsu(mag)
    assert det.extra["magnitude_threshold"] == pytest.approx(t, rel=1e-6)
    np.testing.assert_array_equal(det.label_map, mag > t)


@pytest.mark.parametrize("normalise", ["none", "zscore"])
def test_cva_magnitude_matches_numpy(build, synth, normalise):
    a, b, _ = synth.planted_pair(seed=3, bands=4)
    det = build(CVADetector, normalise=normalise, smooth=0, morphology=0, threshold=2.5).process(
        Batch([synth.make_item(a, b)])
    )[0]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if normalise == "zscore":
        a64 = stats.zscore(a64.reshape(4, -1), axis=1).reshape(a.shape)
        b64 = stats.zscore(b64.reshape(4, -1), axis=1).reshape(b.shape)
    mag = np.sqrt(((b64 - a64) ** 2).sum(axis=0))
    np.testing.assert_allclose(det.score_map, mag / (mag + 2.5), atol=1e-5)
    np.testing.assert_array_equal(det.label_map, det.score_map > 0.5)


def test_image_diff_is_the_difference_of_band_means(build, synth):
    a, b, _ = synth.planted_pair(seed=4)
    det = build(ImageDiffDetector, normalise="none", smooth=0, morphology=0, threshold=1.0).process(
        Batch([synth.make_item(a, b)])
    )[0]
    mag = np.abs(b.astype(np.float64).mean(axis=0) - a.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(det.score_map, mag / (mag + 1.0), atol=1e-5)


def test_match_normalisation_maps_b_onto_a_statistics(build, synth):
    a, b, _ = synth.planted_pair(seed=5, bands=2)
    b_scaled = b * 3.0 + 20.0  # a radiometric gain/offset only: `match` undoes it, `none` does not
    kw = dict(smooth=0, morphology=0, threshold=1.0)
    ref = build(CVADetector, normalise="match", **kw).process(Batch([synth.make_item(a, b)]))[0]
    matched = build(CVADetector, normalise="match", **kw).process(Batch([synth.make_item(a, b_scaled)]))[0]
    raw = build(CVADetector, normalise="none", **kw).process(Batch([synth.make_item(a, b_scaled)]))[0]
    np.testing.assert_allclose(matched.score_map, ref.score_map, atol=1e-4)
    assert np.abs(raw.score_map - ref.score_map).max() > 0.1


def test_pca_kmeans_features_are_sklearn_pca_projections(synth):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    img = rng.normal(size=(12, 16))
    blocks = block_vectors(img, 4)
    # naive references for the block and neighbourhood layouts
    naive_blocks = np.array(
        [img[r : r + 4, c : c + 4].ravel() for r in range(0, 12, 4) for c in range(0, 16, 4)]
    )
    np.testing.assert_array_equal(blocks, naive_blocks)
    padded = np.pad(img, ((1, 2), (1, 2)), mode="symmetric")
    naive_nb = np.array([padded[r : r + 4, c : c + 4].ravel() for r in range(12) for c in range(16)])
    np.testing.assert_array_equal(neighbourhood_vectors(img, 4), naive_nb)
    pca = PCA(n_components=3).fit(naive_blocks)
    assert pca.transform(naive_nb).shape == (12 * 16, 3)


def test_pca_kmeans_change_cluster_is_the_nearest_centroid_cluster(build, synth):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    a, b, truth = synth.planted_pair(seed=6, size=48, square=(8, 24, 12))
    det = build(PCAKMeansDetector, normalise="none", seed=3).process(Batch([synth.make_item(a, b, truth)]))[0]
    # independent reference: Celik's steps written out with scikit-learn
    diff = np.sqrt(((b.astype(np.float64) - a) ** 2).sum(axis=0))
    blocks = np.array([diff[r : r + 4, c : c + 4].ravel() for r in range(0, 48, 4) for c in range(0, 48, 4)])
    padded = np.pad(diff, ((1, 2), (1, 2)), mode="symmetric")
    nb = np.array([padded[r : r + 4, c : c + 4].ravel() for r in range(48) for c in range(48)])
    feats = PCA(n_components=3, svd_solver="full").fit(blocks).transform(nb)
    km = KMeans(2, n_init=10, random_state=3).fit(feats)
    change = int(np.argmax([diff.ravel()[km.labels_ == k].mean() for k in (0, 1)]))
    np.testing.assert_array_equal(det.label_map, (km.labels_ == change).reshape(48, 48))
    assert f1_score(truth.ravel(), det.label_map.ravel()) > 0.8
    assert ((det.score_map > 0.5) == det.label_map).mean() > 0.999


def test_pca_kmeans_is_deterministic_for_a_seed(build, synth):
    a, b, truth = synth.planted_pair(seed=7)
    item = synth.make_item(a, b, truth)
    r1 = build(PCAKMeansDetector, seed=11).process(Batch([item]))[0]
    r2 = build(PCAKMeansDetector, seed=11).process(Batch([item]))[0]
    np.testing.assert_array_equal(r1.score_map, r2.score_map)
    np.testing.assert_array_equal(r1.label_map, r2.label_map)
    assert r1.score == r2.score


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
def test_one_result_per_item_in_order_independent_of_batch(build, synth, cls):
    items = []
    sizes = [40, 64, 48, 56]  # distinct sizes identify each item's result
    for k, size in enumerate(sizes):
        a, b, truth = synth.planted_pair(seed=10 + k, size=size, square=(5, 5, 12 + 4 * k))
        items.append(synth.make_item(a, b, truth, item_id=f"i{k}"))
    det = build(cls)
    together = det.process(Batch(items))
    assert len(together) == len(items)
    assert [r.score_map.shape for r in together] == [(s, s) for s in sizes]
    for item, res in zip(items, together, strict=True):
        alone = det.process(Batch([item]))[0]
        np.testing.assert_array_equal(res.score_map, alone.score_map)
        np.testing.assert_array_equal(res.label_map, alone.label_map)
        assert res.score == alone.score


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.name)
@pytest.mark.parametrize("case", ["planted", "identical", "constant", "huge-values"])
def test_scores_are_in_unit_interval(build, synth, cls, case):
    a, b, truth = synth.planted_pair(seed=20)
    if case == "identical":
        b = a.copy()
    elif case == "constant":
        a, b = np.full_like(a, 5.0), np.full_like(b, 5.0)
    elif case == "huge-values":
        a, b = a * 1e4, b * 1e4
    det = build(cls).process(Batch([synth.make_item(a, b, truth)]))[0]
    assert 0.0 <= det.score <= 1.0
    assert det.label in (0, 1)
    assert np.isfinite(det.score_map).all()
    assert det.score_map.min() >= 0.0 and det.score_map.max() <= 1.0
    assert det.score_map.dtype == np.float32 and det.label_map.dtype == bool


def test_clean_mask_removes_speckle_and_keeps_blobs_at_the_border():
    m = np.zeros((40, 40), bool)
    m[0:10, 0:10] = True  # a blob touching the border
    m[20:30, 20:30] = True
    m[25, 25] = False  # a pinhole
    m[5, 35] = True  # speckle
    out = clean_mask(m, 1)
    assert not out[5, 35]  # speckle removed by the opening
    assert out[25, 25]  # pinhole filled by the closing
    assert out[1:9, 1:9].all() and out[21:29, 21:29].all()
    assert out[0, 1:9].all() and out[1:9, 0].all()  # the blob's border rows survive
    assert out.sum() >= 200 - 8  # at most the corners go (a radius-1 disk is a cross)
    np.testing.assert_array_equal(clean_mask(m, 0), m)


@pytest.mark.parametrize("cls", [*DETECTORS, IndexDiffDetector], ids=lambda c: c.name)
def test_params_are_documented_and_strict(cls):
    for name, f in cls.params_model.model_fields.items():
        assert f.description, f"{cls.name}.{name} has no description"
    with pytest.raises(ValidationError):
        cls.params_model(no_such_param=1)
    with pytest.raises(ValidationError):
        cls.params_model(smooth=-1)


def test_cva_sees_a_colour_change_that_image_diff_misses(build, synth):
    # opposite shifts in alternate bands: the band mean barely moves, the change vector is long
    a, b, truth = synth.planted_pair(seed=8, bands=4, alternate=True)
    item = synth.make_item(a, b, truth)
    cva = build(CVADetector).process(Batch([item]))[0]
    diff = build(ImageDiffDetector).process(Batch([item]))[0]
    assert roc_auc_score(truth.ravel(), cva.score_map.ravel()) > 0.97
    assert roc_auc_score(truth.ravel(), diff.score_map.ravel()) < 0.8
