"""satcore.evaluate.metrics against scikit-learn on random data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from satcore.evaluate.metrics import (
    PixelStats,
    auc_from_hist,
    bootstrap_ci,
    confusion_metrics,
    image_metrics,
    quantise,
)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bins", [10, 1000])
def test_auc_from_hist_equals_roc_auc_on_quantised_scores(seed, bins):
    rng = np.random.default_rng(seed)
    y = rng.random(5000) < rng.uniform(0.05, 0.5)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)  # overlapping classes, many ties after quantising
    idx, centres = quantise(s, bins)
    pos = np.bincount(idx[y], minlength=bins)
    neg = np.bincount(idx[~y], minlength=bins)
    auc, why = auc_from_hist(pos, neg)
    assert why is None
    assert auc == pytest.approx(roc_auc_score(y, centres), abs=1e-12)
    assert auc == pytest.approx(roc_auc_score(y, idx), abs=1e-12)


def test_quantise_bins_and_centres():
    idx, c = quantise(np.array([0.0, 0.0009, 0.001, 0.5, 0.9999, 1.0, np.nan]), 1000)
    assert idx.tolist() == [0, 0, 1, 500, 999, 999, 0]
    assert c.dtype == np.float32
    np.testing.assert_allclose(c, (idx + 0.5) / 1000, rtol=1e-6)


def test_auc_one_class_is_none_with_reason():
    assert auc_from_hist(np.zeros(10), np.ones(10)) == (None, "only one class present")
    assert auc_from_hist(np.ones(10), np.zeros(10)) == (None, "only one class present")


@pytest.mark.parametrize("seed", range(8))
def test_confusion_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 3000))
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    p = np.where(rng.random(n) < 0.7, y, rng.random(n) < 0.3)
    tp, fp = int(np.sum(y & p)), int(np.sum(~y & p))
    fn, tn = int(np.sum(y & ~p)), int(np.sum(~y & ~p))
    m = confusion_metrics(tp, fp, fn, tn)
    assert m["precision"] == pytest.approx(precision_score(y, p), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, p), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, p), abs=1e-12)
    assert m["iou"] == pytest.approx(jaccard_score(y, p), abs=1e-12)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p), abs=1e-12)
    im = image_metrics(y.astype(int), p.astype(int), 0.5)
    assert im["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert im["f1"] == pytest.approx(f1_score(y, p), abs=1e-12)
    assert im["threshold"] == 0.5


def test_undefined_confusion_metrics_are_none_with_reasons():
    m = confusion_metrics(0, 0, 0, 50)  # no positive truth, no positive prediction
    assert m["precision"] is None and m["precision_reason"] == "no positive predictions"
    assert m["recall"] is None and m["recall_reason"] == "no positive truth"
    assert m["f1"] is None and m["iou"] is None
    assert m["kappa"] is None and m["kappa_reason"] == "chance agreement is 1 (one class only)"
    assert confusion_metrics(0, 0, 0, 0)["kappa_reason"] == "no pixels"
    # sklearn agrees these are degenerate: it warns and returns 0 where we return None
    im = image_metrics(np.zeros(5, int), np.zeros(5, int))
    assert im["accuracy"] == 1.0 and im["f1"] is None and "f1_reason" in im


def test_pixel_stats_respect_the_valid_mask():
    rng = np.random.default_rng(3)
    t = rng.random((40, 40)) < 0.3
    p = rng.random((40, 40)) < 0.4
    s = rng.random((40, 40))
    v = rng.random((40, 40)) < 0.8
    st = PixelStats.from_maps(t, p, s, v, 100)
    assert [st.tp, st.fp, st.fn, st.tn] == [
        int(np.sum(t & p & v)),
        int(np.sum(~t & p & v)),
        int(np.sum(t & ~p & v)),
        int(np.sum(~t & ~p & v)),
    ]
    auc, _ = auc_from_hist(st.hist_pos, st.hist_neg)
    assert auc == pytest.approx(roc_auc_score(t[v], quantise(s[v], 100)[1]), abs=1e-12)


def test_bootstrap_interval_contains_the_point_estimate():
    rng = np.random.default_rng(0)
    n = 60
    counts = np.stack(
        [rng.integers(50, 100, n), rng.integers(0, 40, n), rng.integers(0, 40, n), rng.integers(500, 900, n)],
        axis=1,
    )
    y = rng.integers(0, 2, n)
    yhat = np.where(rng.random(n) < 0.8, y, 1 - y)
    ci = bootstrap_ci(counts, None, (y, yhat), 500, 0)
    tp, fp, fn, tn = counts.sum(0)
    point = confusion_metrics(tp, fp, fn, tn)
    for k in ("f1", "iou", "precision", "recall", "kappa"):
        lo, hi = ci["pixel"][k]
        assert lo < point[k] < hi, k
    acc = accuracy_score(y, yhat)
    lo, hi = ci["image"]["accuracy"]
    assert lo < acc < hi
    assert hi - lo < 0.4  # a real interval, not [0, 1]
    assert ci["resamples"] == 500 and ci["unit"] == "items"
    assert bootstrap_ci(counts[:1], None, None, 100, 0) == {"reason": "fewer than 2 items"}
    # same seed, same interval
    assert bootstrap_ci(counts, None, (y, yhat), 500, 0) == ci


def test_streaming_bootstrap_is_order_free_and_constant_memory():
    from satcore.evaluate.metrics import ItemBootstrap

    rng = np.random.default_rng(5)
    n, bins = 80, 50
    ids = [f"item{i}" for i in range(n)]
    counts = rng.integers(0, 500, (n, 4))
    pos, neg = rng.integers(0, 20, (n, bins)), rng.integers(0, 40, (n, bins))
    y, yhat = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = bootstrap_ci(counts, (pos, neg), (y, yhat), 300, 1, keys=ids)
    order = rng.permutation(n)
    b = bootstrap_ci(
        counts[order], (pos[order], neg[order]), (y[order], yhat[order]), 300, 1, keys=[ids[i] for i in order]
    )
    assert a == b  # the same intervals whatever order the items arrive in
    assert bootstrap_ci(counts, (pos, neg), (y, yhat), 300, 2, keys=ids) != a  # the seed matters
    # the AUC interval contains the pooled AUC
    auc, _ = auc_from_hist(pos.sum(0), neg.sum(0))
    lo, hi = a["pixel"]["auc"]
    assert lo < auc < hi
    assert a["method"] == "poisson" and a["resamples"] == 300
    # state is resamples × bins, not items × bins
    boot = ItemBootstrap(100, 0)
    for i in range(n):
        boot.add(ids[i], counts[i], (pos[i], neg[i]), (y[i], yhat[i]))
    assert boot.pos.shape == (100, bins) and boot.counts.shape == (100, 4) and boot.image.shape == (100, 4)
    # each resample's weights average 1 per item (a bootstrap over items)
    w = np.stack([boot.weights(k) for k in ids])
    assert abs(w.mean() - 1) < 0.05


# --- bootstrap intervals against an independent reference (the ``ci_reference`` fixture) -------------


def _implementation_ci(items, n_boot, seed, bins):
    from satcore.evaluate.metrics import ItemBootstrap

    boot = ItemBootstrap(n_boot, seed)
    for iid, t, p, s, y, yhat in items:
        st = PixelStats.from_maps(t, p, s, None, bins)
        boot.add(iid, [st.tp, st.fp, st.fn, st.tn], (st.hist_pos, st.hist_neg), (y, yhat))
    return boot.result()


def _varied_items(seed, n_items=24, side=8):
    """Items that differ: class balance, score separation and threshold per item, so every metric varies."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_items) % 2)
    yhat = y.copy()
    yhat[rng.choice(np.flatnonzero(y == 0), 6, replace=False)] = 1  # 6 false positives, 2 false negatives
    yhat[rng.choice(np.flatnonzero(y == 1), 2, replace=False)] = 0
    items = []
    for i in range(n_items):
        t = rng.random((side, side)) < rng.uniform(0.1, 0.6)
        s = np.clip(rng.normal(0.35 + rng.uniform(0.0, 0.4) * t, 0.2), 0, 1)
        p = s > rng.uniform(0.35, 0.65)
        items.append((f"tile{i:02d}_0_0", t, p, s, int(y[i]), int(yhat[i])))
    return items


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_intervals_equal_sklearn_on_reweighted_items(seed, ci_reference):
    n_boot, bins = 200, 20
    items = _varied_items(seed)
    ci = _implementation_ci(items, n_boot, 7, bins)
    ref_pixel, ref_image = ci_reference.intervals(items, n_boot, 7, bins)
    for ref in (ref_pixel, ref_image):  # the data exercise the intervals: all defined, none degenerate
        for k, (iv, n_defined) in ref.items():
            assert n_defined == n_boot and iv[1] - iv[0] > 0.01, k
    # precision and recall intervals differ, so swapping them is caught
    for ref in (ref_pixel, ref_image):
        assert np.abs(np.subtract(ref["precision"][0], ref["recall"][0])).max() > 0.02
    ci_reference.check(ci, ref_pixel, ref_image)
    assert (ci["resamples"], ci["unit"], ci["method"]) == (n_boot, "items", "poisson")


def test_bootstrap_leaves_out_resamples_where_a_metric_is_undefined(ci_reference):
    """One item holds all changed pixels and the only positive image: resamples without it are undefined."""
    rng = np.random.default_rng(4)
    items = []
    for i in range(15):
        t = np.zeros((6, 6), bool)
        if i == 0:
            t[:3] = True
        s = np.clip(rng.normal(0.3 + 0.3 * t, 0.2), 0, 1)
        items.append((f"x{i}", t, s > 0.5, s, int(i == 0), int(i in (0, 1, 2))))
    for n_boot, seed in ((300, 0), (14, 2)):
        ci = _implementation_ci(items, n_boot, seed, 50)
        ref_pixel, ref_image = ci_reference.intervals(items, n_boot, seed, 50)
        if n_boot == 300:  # some resamples undefined, enough defined for an interval
            assert 10 <= ref_pixel["auc"][1] < n_boot and 10 <= ref_image["recall"][1] < n_boot
        else:  # fewer than 10 defined: no interval, a reason
            assert ref_pixel["auc"][1] < 10 and ref_image["recall"][1] < 10
        assert ref_image["accuracy"][1] == n_boot
        ci_reference.check(ci, ref_pixel, ref_image)


def test_bootstrap_auc_of_zero_is_an_interval_not_undefined():
    """Fully inverted scores: pooled AUC 0.0 and every resample's AUC 0.0, a defined value (it was None)."""
    from satcore.evaluate.metrics import ItemBootstrap

    rng = np.random.default_rng(0)
    n, bins = 20, 100
    hp, hn = np.zeros((n, bins), np.int64), np.zeros((n, bins), np.int64)
    for i in range(n):
        t = rng.random(50) < 0.4
        s = np.where(t, rng.uniform(0.0, 0.4, 50), rng.uniform(0.6, 1.0, 50))
        idx = np.minimum((s * bins).astype(int), bins - 1)
        hp[i], hn[i] = np.bincount(idx[t], minlength=bins), np.bincount(idx[~t], minlength=bins)
        assert roc_auc_score(t, idx) == 0.0
    assert auc_from_hist(hp.sum(0), hn.sum(0)) == (0.0, None)
    boot = ItemBootstrap(100, 0)
    for i in range(n):
        boot.add(f"x{i}", hist=(hp[i], hn[i]))
    assert boot.result()["pixel"] == {"auc": [0.0, 0.0]}


def test_bootstrap_ci_from_histograms_alone():
    """``bootstrap_ci`` counted items from the confusion counts or image labels only: histograms gave none."""
    from satcore.evaluate.metrics import ItemBootstrap

    rng = np.random.default_rng(1)
    hp, hn = rng.integers(0, 20, (12, 10)), rng.integers(0, 20, (12, 10))
    ci = bootstrap_ci(None, (hp, hn), None, 50, 0)
    boot = ItemBootstrap(50, 0)
    for i in range(12):
        boot.add(str(i), hist=(hp[i], hn[i]))
    assert set(ci["pixel"]) == {"auc"} and ci == boot.result()
