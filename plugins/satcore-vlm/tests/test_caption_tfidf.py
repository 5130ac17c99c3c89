"""``caption-tfidf`` agrees with scikit-learn called directly; its detector contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from satcore_vlm.caption_tfidf import CaptionTfidfDetector

from satcore.components import Batch
from satcore.data import Item
from satcore.testing import DetectorContract, build_component, make_change_items

SAME = ["a dense forest with a road", "a lake beside green fields", "houses along a river"]
NEW = ["new buildings on bare land", "a large parking lot", "construction site with cranes"]


def _captions(item: Item) -> dict[str, Any]:
    if item.item_id == "bad-item":
        return {}
    i = sum(map(ord, item.item_id)) % 3
    after = NEW[i] if item.image_label else SAME[i]
    return {"captions": [SAME[i], after]}


class TestCaptionTfidfContract(DetectorContract):
    component = CaptionTfidfDetector
    params: ClassVar[dict[str, Any]] = {"classifier": "logreg"}

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        return [_captions(it) for it in items]


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    pairs, y = [], []
    for _ in range(n):
        i, j = rng.integers(3), rng.integers(3)
        changed = int(rng.random() < 0.5)
        pairs.append([SAME[i], NEW[j] if changed else SAME[i] + (" today" if rng.random() < 0.3 else "")])
        y.append(changed)
    return pairs, np.asarray(y)


def _reference(classifier, combine, train, y, test):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import LinearSVC

    est = {"logreg": LogisticRegression(max_iter=1000), "nb": MultinomialNB(), "svm": LinearSVC(),
           "knn": KNeighborsClassifier(n_neighbors=5)}[classifier]
    vec = TfidfVectorizer()
    if combine == "before-after":
        X = vec.fit_transform([f"before: {a} after: {b}" for a, b in train])
        Xt = vec.transform([f"before: {a} after: {b}" for a, b in test])
    else:
        vec.fit([c for p in train for c in p])
        X = vec.transform([b for _, b in train]) - vec.transform([a for a, _ in train])
        Xt = vec.transform([b for _, b in test]) - vec.transform([a for a, _ in test])
    est.fit(X, y)
    if classifier == "svm":
        return est.decision_function(Xt)
    return est.predict_proba(Xt)[:, 1]


@pytest.mark.parametrize("classifier,combine", [
    ("logreg", "before-after"), ("nb", "before-after"), ("svm", "before-after"), ("knn", "before-after"),
    ("logreg", "tfidf-diff"), ("svm", "tfidf-diff"), ("knn", "tfidf-diff")])
def test_matches_sklearn(classifier, combine):
    train, y = _data(40, 0)
    test, _ = _data(12, 1)
    comp = build_component(CaptionTfidfDetector, {"classifier": classifier, "combine": combine,
                                                  "validation_fraction": 0})
    summary = comp.fit(train, y)
    assert 0.0 <= summary["train_accuracy"] <= 1.0
    items = make_change_items(len(test))
    out = comp.process(Batch(items, [{"captions": p} for p in test]))
    np.testing.assert_allclose([d.score for d in out], _reference(classifier, combine, train, y, test),
                               rtol=1e-6, atol=1e-9)


def test_nb_with_differences_is_refused():
    from satcore.errors import RunStopped

    with pytest.raises(RunStopped, match="Naive Bayes"):
        build_component(CaptionTfidfDetector, {"classifier": "nb", "combine": "tfidf-diff"})


@pytest.mark.parametrize("classifier", ["logreg", "svm"])
def test_train_and_validation_accuracy_like_tables_5_6(classifier, tmp_path):
    from satcore_vlm.caption_transformer import holdout
    from sklearn.metrics import accuracy_score

    train, y = _data(40, 2)
    comp = build_component(CaptionTfidfDetector, {"classifier": classifier, "validation_fraction": 0.25})
    summary = comp.fit(train, y)
    val = holdout(y, 0.25, comp.context.seed)
    for c in (0, 1):  # a quarter of each class held out
        assert val[y == c].sum() == round(0.25 * (y == c).sum())
    tr = np.flatnonzero(~val)
    fitted = [train[i] for i in tr]
    # the classifier is scikit-learn's fitted on the rest only; accuracies are sklearn's accuracy_score
    ref = _reference(classifier, "before-after", fitted, y[tr], train)
    items = make_change_items(len(train))
    got = np.array([d.score for d in comp.process(Batch(items, [{"captions": p} for p in train]))])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)
    pred = (ref > 0).astype(int) if classifier == "svm" else (ref >= 0.5).astype(int)
    assert summary["train_accuracy"] == pytest.approx(accuracy_score(y[tr], pred[tr]))
    assert summary["validation_accuracy"] == pytest.approx(accuracy_score(y[val], pred[val]))
    assert (summary["n_train"], summary["n_validation"]) == (len(tr), int(val.sum()))
    # report.html's section shows the two numbers from manifest.json
    import json

    (tmp_path / "manifest.json").write_text(json.dumps({"fitted": {"tf": summary}}))
    [(title, body)] = CaptionTfidfDetector.report_sections(tmp_path, "tf", None)
    assert "validation" in title.lower()
    assert f"{summary['train_accuracy']:.4f}" in body and f"{summary['validation_accuracy']:.4f}" in body
    assert "No fit" in CaptionTfidfDetector.report_sections(tmp_path, "other", None)[0][1]
