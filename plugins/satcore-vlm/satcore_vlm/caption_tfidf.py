"""``caption-tfidf``: change classified from the two captions of a pair (thesis experiment 3, Tables 5–6).

The two captions combine into one text, ``"before: <caption 1> after: <caption 2>"`` (default, as the thesis
fed them), or into the difference of their TF-IDF vectors (``combine: tfidf-diff``: tfidf(after) −
tfidf(before), the vectorizer fitted on all captions). A scikit-learn classifier — Logistic Regression, Naive
Bayes, a linear SVM or KNN — is fitted on the train split.

The fitted state is the training texts and labels, stored as JSON and fitted again on load (TF-IDF and these
classifiers are deterministic and fit in milliseconds): no pickle is ever read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from satcore.components import Batch, Detection, Detector, DetectorParams, Params
from satcore.errors import ComponentError, RunStopped

STATE_FORMAT = 1


class CaptionTfidfParams(DetectorParams):
    """Parameters of ``caption-tfidf``."""

    classifier: Literal["logreg", "nb", "svm", "knn"] = Field(
        "logreg", description="logreg (LogisticRegression), nb (MultinomialNB; ComplementNB is not used), "
        "svm (LinearSVC; score = decision function), knn (KNeighborsClassifier).")
    combine: Literal["before-after", "tfidf-diff"] = Field(
        "before-after", description="How a pair's captions combine: one text 'before: … after: …' "
        "(default), or tfidf(after) − tfidf(before) (nb cannot take negative values: use another "
        "classifier).")
    ngram_max: int = Field(1, ge=1, le=3, description="Longest word n-gram in the TF-IDF vocabulary.")
    max_features: int | None = Field(None, ge=1, description="Keep the most frequent terms only.")
    c: float = Field(1.0, gt=0, description="Inverse regularisation strength (logreg, svm).")
    k: int = Field(5, ge=1, description="Neighbours (knn); fewer when the train split is smaller.")
    validation_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of the train split held out (seeded, per class) for the "
        "validation accuracy (thesis Tables 5–6); the classifier is fitted on the rest. 0 = fit on all.")


class CaptionTfidfDetector(Detector):
    """Classifies change from a pair's two captions with TF-IDF and a scikit-learn classifier."""

    name: ClassVar[str] = "caption-tfidf"
    params_model: ClassVar[type[Params]] = CaptionTfidfParams
    consumes: ClassVar[tuple[str, ...]] = ("captions",)
    fittable: ClassVar[bool] = True
    state_suffix: ClassVar[str] = ".json"
    params: CaptionTfidfParams

    def setup(self) -> None:
        """Check scikit-learn is there (imported here, never at import time)."""
        from satcore.errors import MissingDependencyError

        try:
            import sklearn  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("scikit-learn", "caption-tfidf") from exc
        if self.params.combine == "tfidf-diff" and self.params.classifier == "nb":
            raise RunStopped("caption-tfidf: `combine: tfidf-diff` gives negative values, which Naive Bayes "
                             "cannot take; use classifier logreg, svm or knn, or `combine: before-after`")
        self._model: Any = None
        self._vec: Any = None
        self._constant: float | None = None
        self._train: tuple[list[list[str]], list[int]] = ([], [])

    # ------------------------------------------------------------------ records and features
    def fit_records(self, batch: Batch) -> list[Any]:
        """The pair's two captions."""
        return [self._pair(item, inp) for item, inp in batch.with_inputs()]

    def _pair(self, item: Any, inp: Any) -> list[str]:
        caps = inp.get("captions") if isinstance(inp, dict) else None
        if caps is None or len(caps) != 2 or not all(isinstance(c, str) for c in caps):
            raise ComponentError(
                f"item {item.item_id!r}: caption-tfidf needs two captions (before, after) from its input "
                "step; "
                f"got {caps!r:.120}"
                + (" (a vlm-caption step with `pair: {mode: joint}` writes one change caption and no "
                   "per-image captions: use `pair: {mode: separate}` or no `pair:` there)"
                   if isinstance(inp, dict) and inp.get("caption") and not caps else ""),
                item_id=item.item_id, step=self.step_id)
        return [str(caps[0]), str(caps[1])]

    def combined_text(self, pair: list[str]) -> str:
        """The single text a pair becomes with ``combine: before-after``."""
        return f"before: {pair[0]} after: {pair[1]}"

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, self.params.ngram_max), max_features=self.params.max_features)

    def _estimator(self, n_train: int) -> Any:
        p = self.params
        if p.classifier == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=p.c, max_iter=1000)
        if p.classifier == "nb":
            from sklearn.naive_bayes import MultinomialNB

            return MultinomialNB()
        if p.classifier == "svm":
            from sklearn.svm import LinearSVC

            return LinearSVC(C=p.c)
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=min(p.k, n_train))

    def _features(self, pairs: list[list[str]], fit: bool) -> Any:
        vec = self._vec
        if self.params.combine == "before-after":
            texts = [self.combined_text(p) for p in pairs]
            return vec.fit_transform(texts) if fit else vec.transform(texts)
        if fit:
            vec.fit([c for p in pairs for c in p])
        return vec.transform([p[1] for p in pairs]) - vec.transform([p[0] for p in pairs])

    # ------------------------------------------------------------------ fitting
    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        """Fit vectorizer and classifier on the train pairs less a held-out share; train/validation accuracy.

        The held-out share (``validation_fraction``, per class, drawn with the run's seed) gives the
        validation accuracy of thesis Table 6; the train accuracy (Table 5) is on the pairs fitted.
        """
        from satcore_vlm.caption_transformer import holdout

        y = np.asarray(labels, dtype=int)
        self._train = ([list(r) for r in records], [int(v) for v in y])
        val = holdout(y, self.params.validation_fraction, self.context.seed)
        tr = np.flatnonzero(~val)
        self._vec = self._vectorizer()
        summary: dict[str, Any] = {"n_train": len(tr), "n_validation": int(val.sum()),
                                   "classifier": self.params.classifier, "combine": self.params.combine}
        if len(set(y[tr].tolist())) < 2:  # one class among the pairs fitted: a constant model
            self._constant = float(y[tr][0]) if len(tr) else 0.0
            self._model = None
            summary["constant"] = self._constant
        else:
            self._constant = None
            X = self._features([self._train[0][i] for i in tr], fit=True)
            self._model = self._estimator(len(tr)).fit(X, y[tr])
            summary["vocabulary_size"] = len(self._vec.vocabulary_)
        pred = self.labels(self.scores(self._train[0])) if len(y) else np.zeros(0, dtype=int)
        summary["train_accuracy"] = float((pred[tr] == y[tr]).mean()) if len(tr) else None
        summary["validation_accuracy"] = float((pred[val] == y[val]).mean()) if val.any() else None
        return summary

    def save_state(self, path: Path) -> None:
        """The training pairs and labels as JSON (fitted again on load: no pickles)."""
        from satcore.io import write_json

        write_json(path, {"format": STATE_FORMAT, "detector": self.name, "pairs": self._train[0],
                          "labels": self._train[1]})

    def load_state(self, path: Path) -> None:
        """Fit again from the stored training pairs (deterministic)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != STATE_FORMAT or data.get("detector") != self.name:
            raise RunStopped(
                f"{path}: not a caption-tfidf state of format {STATE_FORMAT}; rerun with --overwrite")
        self.fit(data["pairs"], np.asarray(data["labels"], dtype=int))

    # ------------------------------------------------------------------ prediction
    def scores(self, pairs: list[list[str]]) -> np.ndarray:
        """Change scores: P(change) (logreg, nb, knn) or the SVM's decision function."""
        if self._constant is not None:
            return np.full(len(pairs), self._constant)
        if self._model is None:
            raise RunStopped(f"step {self.step_id!r}: caption-tfidf was not fitted (it needs a train split)")
        X = self._features(pairs, fit=False)
        if self.params.classifier == "svm":
            return np.asarray(self._model.decision_function(X), dtype=float)
        return np.asarray(self._model.predict_proba(X)[:, list(self._model.classes_).index(1)], dtype=float)

    def process(self, batch: Batch) -> list[Detection]:
        """Score and label per pair (label: score > 0 for the SVM, ≥ 0.5 otherwise)."""
        pairs = [self._pair(item, inp) for item, inp in batch.with_inputs()]
        s = self.scores(pairs)
        return [Detection(score=float(v), label=int(lab), threshold=self.threshold)
                for v, lab in zip(s, self.labels(s), strict=True)]

    @property
    def threshold(self) -> float:
        """The score a pair needs: above 0 for the SVM's decision function, at least 0.5 otherwise."""
        return 0.0 if self.params.classifier == "svm" and self._constant is None else 0.5

    def labels(self, scores: np.ndarray) -> np.ndarray:
        """0/1 labels from scores (see :attr:`threshold`)."""
        thr = self.threshold
        return (scores > thr if thr == 0.0 else scores >= thr).astype(int)

    @classmethod
    def report_sections(cls, run_dir: Path, step_id: str, results: Any) -> list[tuple[str, str]]:
        """The train/validation accuracy table (thesis Tables 5–6) from manifest.json."""
        from satcore_vlm.report import accuracy_section

        return accuracy_section(run_dir, step_id)
