"""The recognition block against scikit-learn on random data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from sklearn.preprocessing import MultiLabelBinarizer

from satcore.evaluate.blocks import BLOCKS, MetricBlock, RecognitionBlock, recognition_record

LABELS = ["beach", "farm", "forest", "industry", "lake", "river", "urban"]


def _single(seed: int, n: int = 80):
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, n, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1]).tolist()
    scores = rng.random((n, len(LABELS)))
    # make the detector better than chance, so the numbers are not all near 1/7
    for i, lab in enumerate(y):
        scores[i, LABELS.index(lab)] += rng.random() * 0.8
    ranked = [[LABELS[j] for j in np.argsort(-s)] for s in scores]
    return y, scores, ranked


def _none_to_nan(x):
    return np.nan if x is None else x


@pytest.mark.parametrize("seed", range(4))
def test_single_label_equals_sklearn(seed, block_result):
    y, scores, ranked = _single(seed)
    recs = {f"i{i:03d}": recognition_record([y[i]], ranked[i]) for i in range(len(y))}
    out = block_result(RecognitionBlock, recs)
    top1 = [r[0] for r in ranked]
    assert out["items"] == len(y)
    assert out["multilabel"] is False
    assert out["top1"] == pytest.approx(accuracy_score(y, top1))
    assert out["top5"] == pytest.approx(top_k_accuracy_score(y, scores, k=5, labels=LABELS))
    p, r, f, _ = precision_recall_fscore_support(y, top1, average="macro", zero_division=np.nan)
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((p, r, f))
    labs = sorted(set(y) | set(top1))
    pc, rc, fc, sc = precision_recall_fscore_support(y, top1, labels=labs, zero_division=np.nan)
    for i, lab in enumerate(labs):
        e = out["per_class"][lab]
        assert [_none_to_nan(e[k]) for k in ("precision", "recall", "f1")] == pytest.approx(
            [pc[i], rc[i], fc[i]], nan_ok=True)
        assert e["support"] == sc[i]
    assert out["confusion"]["labels"] == labs
    assert out["confusion"]["matrix"] == confusion_matrix(y, top1, labels=labs).tolist()
    majority = Counter(y).most_common(1)[0][0]
    assert out["baseline"]["label"] == majority
    assert out["baseline"]["top1"] == pytest.approx(accuracy_score(y, [majority] * len(y)))


@pytest.mark.parametrize("seed", range(3))
def test_multi_label_equals_sklearn_on_binarised_sets(seed, block_result):
    rng = np.random.default_rng(seed)
    n = 60
    truth = [sorted(rng.choice(LABELS, rng.integers(1, 4), replace=False).tolist()) for _ in range(n)]
    scores = rng.random((n, len(LABELS)))
    ranked_idx = [np.argsort(-s) for s in scores]
    ranked = [[LABELS[j] for j in idx] for idx in ranked_idx]
    ranked_scores = [s[idx].tolist() for s, idx in zip(scores, ranked_idx, strict=True)]
    recs = {f"i{i}": recognition_record(truth[i], ranked[i], ranked_scores[i], threshold=0.6)
            for i in range(n)}
    out = block_result(RecognitionBlock, recs)
    pred_sets = [[lab for lab, sc in zip(LABELS, s, strict=True) if sc >= 0.6] if len(t) > 1 else [r[0]]
                 for t, s, r in zip(truth, scores, ranked, strict=True)]
    seen = {x for t in truth for x in t} | {x for p in pred_sets for x in p}
    mlb = MultiLabelBinarizer(classes=sorted(seen))
    yt, yp = mlb.fit_transform(truth), mlb.transform(pred_sets)
    p, r, f, _ = precision_recall_fscore_support(yt, yp, average="macro", zero_division=np.nan)
    assert out["multilabel"] is True
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((p, r, f))
    pc, rc, fc, sc = precision_recall_fscore_support(yt, yp, zero_division=np.nan)
    for i, lab in enumerate(mlb.classes_):
        e = out["per_class"][lab]
        assert [_none_to_nan(e[k]) for k in ("precision", "recall", "f1")] == pytest.approx(
            [pc[i], rc[i], fc[i]], nan_ok=True)
        assert e["support"] == sc[i]
    # top-k: a hit when any true label is among the first k
    assert out["top1"] == pytest.approx(np.mean([bool(set(t) & set(r[:1])) for t, r in zip(truth, ranked,
                                                                                              strict=True)]))
    assert out["top5"] == pytest.approx(np.mean([bool(set(t) & set(r[:5])) for t, r in zip(truth, ranked,
                                                                                              strict=True)]))
    assert out["confusion"] is None and "one-vs-rest" in out["confusion_reason"]
    # baseline: always the most frequent label of this split's truth
    support = Counter(x for t in truth for x in t)
    top = max(support.values())
    assert out["baseline"]["top1"] == pytest.approx(top / n)


def test_multi_label_without_threshold_predicts_top_truth_size():
    rec = recognition_record(["farm", "river"], ["river", "lake", "farm"])
    assert rec is not None and rec["predicted"] == ["river", "lake"]
    acc = RecognitionBlock()
    acc.add("a", rec)
    out = acc.result()
    assert out["per_class"]["river"]["precision"] == 1.0
    assert out["per_class"]["lake"]["precision"] == 0.0
    assert out["per_class"]["farm"]["recall"] == 0.0
    assert out["per_class"]["lake"]["recall"] is None
    assert out["per_class"]["lake"]["recall_reason"] == "not in this split's truth"


@pytest.mark.parametrize("seed", range(3))
def test_order_does_not_matter(seed, block_result):
    y, _, ranked = _single(seed, n=40)
    recs = {f"i{i}": recognition_record([y[i]], ranked[i]) for i in range(len(y))}
    assert block_result(RecognitionBlock, recs, seed=seed) == block_result(RecognitionBlock, recs)


def test_a_wrong_prediction_moves_the_numbers_as_sklearn_does(block_result):
    y, _, ranked = _single(0, n=30)
    i = next(k for k in range(30) if ranked[k][0] == y[k])  # a correct item, made wrong
    bad = list(ranked)
    bad[i] = [lab for lab in LABELS if lab != y[i]]
    for rk in (ranked, bad):
        out = block_result(RecognitionBlock, {f"i{k}": recognition_record([y[k]], rk[k]) for k in range(30)})
        top1 = [r[0] for r in rk]
        assert out["top1"] == pytest.approx(accuracy_score(y, top1))
        p, r, f, _ = precision_recall_fscore_support(y, top1, average="macro", zero_division=np.nan)
        assert out["f1"] == pytest.approx(f)
    assert accuracy_score(y, [r[0] for r in bad]) < accuracy_score(y, [r[0] for r in ranked])


def test_nothing_scored_is_null_with_reasons(block_result):
    assert recognition_record([], ["a"]) is None
    assert recognition_record(["a"], None) is None
    out = block_result(RecognitionBlock, {}, parquet=False)
    assert out["items"] == 0
    for k in ("top1", "top5", "precision", "recall", "f1"):
        assert out[k] is None and out[f"{k}_reason"] == "no scored items"
    assert out["confusion"] is None and out["baseline"] is None


def test_never_predicted_class_has_null_precision_and_macro_skips_it(block_result):
    recs = {"a": recognition_record(["x"], ["x"]), "b": recognition_record(["y"], ["x"])}
    out = block_result(RecognitionBlock, recs)
    assert out["per_class"]["y"]["precision"] is None
    assert out["per_class"]["y"]["precision_reason"] == "never predicted"
    p, _, _, _ = precision_recall_fscore_support(["x", "y"], ["x", "x"], average="macro",
                                                 zero_division=np.nan)
    assert out["precision"] == pytest.approx(p) == 0.5


def test_per_image_pairs(block_result):
    # per-image truth and predictions: each image is a scored unit
    rec = recognition_record([["farm"], ["urban"]], [["farm", "lake"], ["farm", "urban"]])
    assert rec is not None and rec["units"] == 2
    # one item truth for both images of a pair
    rec2 = recognition_record(["lake"], [["lake"], ["river", "lake"]])
    assert rec2 is not None and rec2["units"] == 2
    out = block_result(RecognitionBlock, {"p1": rec, "p2": rec2})
    assert out["items"] == 2 and out["images"] == 4
    y, yhat = ["farm", "urban", "lake", "lake"], ["farm", "farm", "lake", "river"]
    assert out["top1"] == pytest.approx(accuracy_score(y, yhat))
    assert out["top5"] == 1.0
    labs = sorted(set(y) | set(yhat))
    assert out["confusion"]["matrix"] == confusion_matrix(y, yhat, labels=labs).tolist()
    with pytest.raises(ValueError, match="prediction has 2 images, the item has 3"):
        recognition_record([["a"], ["b"], ["c"]], [["a"], ["b"]])


def test_registry_and_protocol():
    assert list(BLOCKS) == ["recognition", "captions", "spectral", "image_quality", "forecast"]
    for name, cls in BLOCKS.items():
        assert cls.name == name
        assert isinstance(cls(), MetricBlock)
        assert callable(cls.item_record)


def test_importing_the_blocks_is_light():
    import json
    import subprocess
    import sys

    probe = ("import sys, json, satcore.evaluate.blocks\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('scipy', 'sklearn', 'pandas', 'torch', 'nltk', 'pycocoevalcap'))))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_an_empty_prediction_is_a_miss(block_result):
    out = block_result(RecognitionBlock, {"a": recognition_record(["x"], []),
                                          "b": recognition_record(["x"], ["x"])})
    assert out["top1"] == 0.5 and out["no_prediction"] == 1
    assert out["per_class"]["x"]["recall"] == 0.5
    assert out["confusion"]["matrix"] == [[1]]


def test_exact_sum_is_order_free_and_keeps_inf():
    import math

    from satcore.evaluate.blocks import ExactSum

    terms = np.random.default_rng(0).normal(0, 1e6, 1000).tolist() + [1e-9] * 1000
    a, b = ExactSum(), ExactSum()
    for t in terms:
        a.add(t)
    for t in reversed(terms):
        b.add(t)
    assert a.value == b.value == math.fsum(terms)
    a.add(float("inf"))
    assert a.value == float("inf")
