"""Tree-model change detectors over upstream class probabilities or feature vectors.

Each detector is fitted once on the train split (the engine calls :meth:`fit_records` on every training
item, then :meth:`fit`), saved with joblib in the run folder, and reused on ``--resume``. Heavy libraries
(scikit-learn estimators, xgboost) are imported in :meth:`setup`, never at import time.

joblib files are pickles: loading one runs whatever code it names. So the sha256 of the state file is
written beside it when the run saves it (``<step>.joblib.sha256``) and a file whose hash differs (replaced,
edited, corrupt) or that has no recorded hash is refused before it is unpickled. This stops a file dropped
or swapped into ``fitted/``; it cannot stop someone who rewrites both files, so treat a run folder from an
untrusted source like code and rerun it with ``--overwrite``.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from satcore.components import Batch, Detection, Detector, DetectorParams
from satcore.errors import ComponentError, MissingDependencyError, RunStopped, SpecError

#: The feature blocks built from per-image probabilities ``p`` shaped ``(2, K)``.
FEATURE_BLOCKS = ("p1", "p2", "absdiff")

#: Exact command that installs the optional XGBoost dependency.
XGBOOST_INSTALL = 'pip install "xgboost-cpu>=2"'

#: Version of the joblib state layout.
STATE_FORMAT = 1


class TabularParams(DetectorParams):
    """Parameters shared by the tree detectors."""

    features: list[Literal["p1", "p2", "absdiff"]] = Field(
        default_factory=lambda: ["p1", "p2", "absdiff"],
        min_length=1,
        description="Blocks of the feature vector built from upstream `probabilities` shaped (2, K): "
        "`p1` (before), `p2` (after), `absdiff` = |p1 - p2|; concatenated in this order. Ignored when the "
        "upstream step gives a per-item `features` vector instead (that vector is used as is).",
    )
    seed: int | None = Field(None, description="Estimator random_state; defaults to the spec's `seed`.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Hyperparameters passed to the estimator as is (e.g. `{max_depth: 3}`); "
        "an unknown key stops the run at setup with the estimator's valid keys.",
    )
    proba_threshold: float = Field(
        0.5, ge=0, le=1, description="Label = predicted probability of change > this."
    )

    #: ``module:Class`` of the estimator whose hyperparameters ``params`` holds (set per detector)
    estimator_path: ClassVar[str] = ""

    @field_validator("features")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({f for f in v if v.count(f) > 1})
        if dup:
            raise ValueError(f"feature blocks listed twice: {dup}")
        return v

    @field_validator("params")
    @classmethod
    def _known_hyperparameters(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Check ``params`` against a scikit-learn estimator when the spec is validated.

        That is before any upstream model loads; importing scikit-learn costs `satcore validate` about 1.5 s.

        xgboost (a 2 s import, and perhaps not installed) is checked in ``setup()``, which also says how to
        install it.
        """
        if not cls.estimator_path or not cls.estimator_path.startswith("sklearn."):
            return v
        module, name = cls.estimator_path.split(":")
        try:
            estimator = getattr(importlib.import_module(module), name)
        except ImportError:
            return v
        check_hyperparameters(estimator, v, name)
        return v


def check_hyperparameters(estimator: Any, params: dict[str, Any], name: str) -> None:
    """Raise a :class:`SpecError` naming ``name`` and each key of ``params`` the estimator does not take."""
    if "random_state" in params:
        raise SpecError("set the estimator seed with the step's `seed:` instead of `params.random_state`")
    valid = set(estimator().get_params())
    bad = sorted(set(params) - valid)
    if bad:
        hints = []
        for key in bad:
            close = difflib.get_close_matches(key, sorted(valid), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SpecError(f"{name} has no parameter {', '.join(hints)}; valid keys: {', '.join(sorted(valid))}")


class DecisionTreeParams(TabularParams):
    """Parameters of ``decision-tree`` (``params``: DecisionTreeClassifier's)."""

    estimator_path: ClassVar[str] = "sklearn.tree:DecisionTreeClassifier"


class RandomForestParams(TabularParams):
    """Parameters of ``random-forest`` (``params``: RandomForestClassifier's)."""

    estimator_path: ClassVar[str] = "sklearn.ensemble:RandomForestClassifier"


class GradientBoostingParams(TabularParams):
    """Parameters of ``gradient-boosting`` (``params``: GradientBoostingClassifier's)."""

    estimator_path: ClassVar[str] = "sklearn.ensemble:GradientBoostingClassifier"


class XGBoostParams(TabularParams):
    """Parameters of ``xgboost`` (``params``: XGBClassifier's)."""

    estimator_path: ClassVar[str] = "xgboost:XGBClassifier"


def feature_vector(upstream: Any, blocks: list[str] | tuple[str, ...] = FEATURE_BLOCKS) -> np.ndarray:
    """One item's feature vector from an upstream output (``probabilities`` or ``features``).

    Args:
        upstream: the upstream step's output for the item, a mapping with ``probabilities`` shaped
            ``(2, K)`` (one row per image of the pair) or ``features`` (any shape, flattened).
        blocks: which of ``p1``, ``p2``, ``absdiff`` to concatenate (probabilities only).

    Returns:
        A 1-D float64 vector.

    Raises:
        ComponentError: the upstream output has neither key, the wrong shape, or non-finite values.
    """
    if not isinstance(upstream, dict) or ("probabilities" not in upstream and "features" not in upstream):
        keys = sorted(upstream) if isinstance(upstream, dict) else type(upstream).__name__
        raise ComponentError(f"expected upstream `probabilities` or `features`, got {keys}")
    if upstream.get("probabilities") is not None:
        p = np.asarray(upstream["probabilities"], dtype=np.float64)
        if p.ndim != 2 or p.shape[0] != 2:
            raise ComponentError(
                f"expected `probabilities` shaped (2, n_classes) for an image pair, got {p.shape}"
            )
        parts = {"p1": p[0], "p2": p[1], "absdiff": np.abs(p[0] - p[1])}
        x = np.concatenate([parts[b] for b in blocks])
    else:
        x = np.asarray(upstream["features"], dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ComponentError(f"feature vector is empty or has non-finite values (size {x.size})")
    return x


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_path(path: Path) -> Path:
    """Where the sha256 of the state file ``path`` is recorded: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def check_state_hash(path: Path) -> None:
    """Raise :class:`RunStopped` unless ``path`` has the sha256 recorded when the run wrote it."""
    record = hash_path(path)
    fix = "delete the fitted/ folder to fit again with --resume, or rerun with --overwrite"
    try:
        want = record.read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        raise RunStopped(f"{path}: refusing to load fitted state without its recorded sha256 ({record}): "
                         f"joblib files are pickles and can run code; {fix}") from None
    got = file_sha256(path)
    if got != want:
        raise RunStopped(f"{path}: refusing to load fitted state whose sha256 {got[:12]}… differs from the "
                         f"one recorded when the run wrote it ({want[:12]}…): the file was replaced or "
                         f"changed, and joblib files are pickles that can run code; {fix}")


class TabularDetector(Detector):
    """Base of the tree detectors: fit a classifier on the train split, score = P(change)."""

    consumes: ClassVar[tuple[str, ...]] = ("probabilities",)
    #: read by the spec validator: either upstream kind is enough
    consumes_any: ClassVar[tuple[tuple[str, ...], ...]] = (("probabilities",), ("features",))
    params_model = TabularParams
    fittable: ClassVar[bool] = True
    state_suffix: ClassVar[str] = ".joblib"
    #: ``module:Class`` of the estimator
    estimator_path: ClassVar[str] = ""
    params: TabularParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._estimator_cls: Any = None
        self.model: Any = None
        self.constant: float | None = None  # P(change) when the train split held one class only
        self.n_features: int | None = None

    # ------------------------------------------------------------------ setup
    @property
    def estimator_name(self) -> str:
        """The estimator class name, e.g. ``DecisionTreeClassifier``."""
        return self.estimator_path.rsplit(":", 1)[1]

    @property
    def seed(self) -> int:
        """The estimator's ``random_state``: the step's ``seed`` or the run seed."""
        return self.params.seed if self.params.seed is not None else self.context.seed

    def import_estimator(self) -> Any:
        """Import the estimator class (in :meth:`setup`)."""
        module, cls = self.estimator_path.split(":")
        return getattr(importlib.import_module(module), cls)

    def setup(self) -> None:
        """Import the estimator and check the hyperparameters against it."""
        self._estimator_cls = self.import_estimator()
        self.check_params()

    def check_params(self) -> None:
        """Raise a :class:`SpecError` naming the estimator and each unknown key of ``params``.

        Specs are checked when validated; this covers params built in code and estimators (xgboost) that were
        not installed at validation.
        """
        try:
            check_hyperparameters(self._estimator_cls, self.params.params, self.estimator_name)
        except SpecError as exc:
            raise SpecError(f"params: {exc}") from None

    def build_estimator(self) -> Any:
        """A fresh, unfitted estimator with the step's hyperparameters and seed."""
        if self._estimator_cls is None:
            self.setup()
        return self._estimator_cls(**{**self.params.params, "random_state": self.seed})

    # ------------------------------------------------------------------ fitting
    def fit_records(self, batch: Batch) -> list[Any]:
        """The feature vector of each training item."""
        return [feature_vector(inp, self.params.features) for _item, inp in batch.with_inputs()]

    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        """Fit the estimator on the training vectors; a one-class train split gives a constant model."""
        sizes = sorted({len(r) for r in records})
        if len(sizes) != 1:
            raise RunStopped(
                f"step {self.step_id!r}: training feature vectors differ in length {sizes}; the "
                "upstream step must give every item the same number of features"
            )
        x = np.vstack(records)
        y = np.asarray(labels, dtype=int)
        self.n_features = int(x.shape[1])
        classes = sorted(set(y.tolist()))
        summary: dict[str, Any] = {
            "estimator": self.estimator_name,
            "n_features": self.n_features,
            "seed": self.seed,
            "params": dict(self.params.params),
        }
        if len(classes) < 2:
            self.model, self.constant = None, float(classes[0]) if classes else 0.0
            self.context.logger.warning(
                "step %s: the train split has only class %s; predicting it everywhere", self.step_id, classes
            )
            return {**summary, "constant": self.constant}
        est = self.build_estimator()
        try:
            est.fit(x, y)
        except (
            ValueError,
            TypeError,
        ) as exc:  # sklearn's InvalidParameterError and XGBoostError are ValueErrors
            raise RunStopped(
                f"step {self.step_id!r}: {self.estimator_name} could not fit with params "
                f"{dict(self.params.params)}: {exc}"
            ) from exc
        self.model, self.constant = est, None
        summary["train_accuracy"] = float(np.mean((self.predict(x) > self.params.proba_threshold) == y))
        if hasattr(est, "get_depth"):
            summary.update(depth=int(est.get_depth()), leaves=int(est.get_n_leaves()))
        return summary

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(change) for each row of ``x``."""
        if self.constant is not None:
            return np.full(len(x), self.constant)
        if self.model is None:
            raise ComponentError(
                f"step {self.step_id!r} is not fitted (fittable steps need labelled train items)"
            )
        classes = list(self.model.classes_)
        proba = self.model.predict_proba(x)
        return np.asarray(proba[:, classes.index(1)] if 1 in classes else np.zeros(len(x)), dtype=np.float64)

    # ------------------------------------------------------------------ state
    def save_state(self, path: Path) -> None:
        """Write the fitted model with joblib (atomically), and its sha256 beside it (see the module doc)."""
        import joblib

        from satcore.io import atomic_path, write_text

        state = {
            "format": STATE_FORMAT,
            "detector": self.name,
            "estimator": self.estimator_name,
            "model": self.model,
            "constant": self.constant,
            "n_features": self.n_features,
            "features": list(self.params.features),
            "params": dict(self.params.params),
            "seed": self.seed,
        }
        with atomic_path(path) as tmp:
            joblib.dump(state, tmp)
        write_text(hash_path(path), f"{file_sha256(path)}  {path.name}\n")

    def load_state(self, path: Path) -> None:
        """Read a model written by :meth:`save_state`, refusing it unless its sha256 is the one recorded.

        Raises:
            RunStopped: no recorded hash, or the file's hash differs from it (never unpickled then).
        """
        import joblib

        check_state_hash(path)
        state = joblib.load(path)
        if not isinstance(state, dict) or state.get("detector") != self.name:
            found = state.get("detector") if isinstance(state, dict) else type(state).__name__
            raise RunStopped(f"{path} holds state of {found!r}, not of a {self.name!r} step; use --overwrite")
        self.model, self.constant, self.n_features = state["model"], state["constant"], state["n_features"]

    # ------------------------------------------------------------------ inference
    def process(self, batch: Batch) -> list[Detection]:
        """Score = predicted probability of change; label = score > ``proba_threshold``."""
        if not len(batch):
            return []
        x = np.vstack([feature_vector(inp, self.params.features) for _item, inp in batch.with_inputs()])
        if self.n_features is not None and x.shape[1] != self.n_features:
            raise ComponentError(f"{x.shape[1]} features per item, the model was fitted on {self.n_features}")
        scores = self.predict(x)
        t = self.params.proba_threshold
        return [Detection(score=float(s), label=int(s > t), threshold=t) for s in scores]


class DecisionTreeDetector(TabularDetector):
    """A scikit-learn decision tree on the upstream features (thesis baseline)."""

    name = "decision-tree"
    params_model = DecisionTreeParams
    estimator_path = DecisionTreeParams.estimator_path


class RandomForestDetector(TabularDetector):
    """A scikit-learn random forest on the upstream features (thesis baseline)."""

    name = "random-forest"
    params_model = RandomForestParams
    estimator_path = RandomForestParams.estimator_path


class GradientBoostingDetector(TabularDetector):
    """scikit-learn gradient boosting on the upstream features (thesis baseline)."""

    name = "gradient-boosting"
    params_model = GradientBoostingParams
    estimator_path = GradientBoostingParams.estimator_path


class XGBoostDetector(TabularDetector):
    """XGBoost on the upstream features (thesis baseline; needs the ``[xgboost]`` extra)."""

    name = "xgboost"
    params_model = XGBoostParams
    estimator_path = XGBoostParams.estimator_path

    def import_estimator(self) -> Any:
        """Import xgboost, or say exactly how to install it."""
        try:
            from xgboost import XGBClassifier
        except ImportError as exc:
            raise MissingDependencyError(
                "xgboost-cpu", f"the `xgboost` step {self.step_id!r}", XGBOOST_INSTALL
            ) from exc
        return XGBClassifier


DETECTORS: list[type[TabularDetector]] = [
    DecisionTreeDetector,
    RandomForestDetector,
    GradientBoostingDetector,
    XGBoostDetector,
]
