"""Detectors: features/items → change score, label and optional change map."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from satcore.components.base import Batch, Component, Params, scalar_columns


class DetectorParams(Params):
    """Base for detector parameters."""


@dataclass
class Detection:
    """One item's change result.

    Attributes:
        score: image-level change score (higher = more change).
        label: image-level decision, 1 = change.
        score_map: per-pixel change score in ``[0, 1]`` on the item's grid (``None`` for image-level methods).
            Pixel AUC is computed from it, so scores must be comparable across items.
        label_map: per-pixel boolean change decision.
        threshold: the threshold behind ``label``, if one was used.
        extra: further table cells (explanations, intermediate values).
        by_objective: further image-level decisions, one per named objective: ``{name: (label, threshold)}``
            (e.g. one threshold fitted per metric, as the thesis's "Threshold Optimization" rows). The
            writer computes the image metrics of each under ``image.by_objective.<name>`` in metrics.json;
            ``label`` stays the step's own decision.
    """

    score: float | None = None
    label: int | None = None
    score_map: np.ndarray | None = None
    label_map: np.ndarray | None = None
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    by_objective: dict[str, tuple[int, float | None]] = field(default_factory=dict)


class Detector(Component):
    """Decides whether (and where) an item changed.

    :meth:`process` returns one :class:`Detection` per item, in order. A detector that learns (a threshold,
    a tree model) sets ``fittable = True`` and implements the four fitting methods, which the engine calls in
    this order:

    1. :meth:`fit_records` on each batch of train items (streamed, so the train split need not fit in
       memory): what :meth:`fit` needs from each item, e.g. a feature vector or a score;
    2. :meth:`fit` once, with every record, the items' image labels and their groups;
    3. :meth:`save_state` to :meth:`state_path` in the run folder (write it with :mod:`satcore.io`);
    4. :meth:`load_state` on ``--resume`` and on every executor's worker instead of fitting again.

    ``fittable`` may also be a property when only some params need fitting (``threshold: {optimise: f1}``
    does, a fixed threshold does not).
    """

    kind: ClassVar[str] = "detector"
    produces: ClassVar[tuple[str, ...]] = ("change",)
    params_model: ClassVar[type[Params]] = DetectorParams
    #: whether the engine fits this step on the train split before streaming (see the class docstring).
    fittable: ClassVar[bool] = False
    #: the file suffix of the fitted state in ``fitted/<step_id><suffix>``.
    state_suffix: ClassVar[str] = ".json"

    #: the methods a fittable detector overrides (checked by :func:`satcore.components.checks`).
    FIT_METHODS: ClassVar[tuple[str, ...]] = ("fit_records", "fit", "save_state", "load_state")

    def process(self, batch: Batch) -> list[Detection]:
        """Change results for each item of the batch."""
        raise NotImplementedError

    def fit_records(self, batch: Batch) -> list[Any]:
        """What :meth:`fit` needs from each training item (e.g. its feature vector); default: nothing."""
        return [None] * len(batch)

    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        """Learn from the training records and their image labels; return a summary for the report."""
        return {}

    def save_state(self, path: Path) -> None:
        """Write fitted state to ``path``."""

    def load_state(self, path: Path) -> None:
        """Read fitted state written by :meth:`save_state`."""

    def state_path(self) -> Path:
        """The file in the run folder that holds this step's fitted state."""
        return self.context.state_path(self.step_id, self.state_suffix)

    def columns(self, output: Any) -> dict[str, Any]:
        """Score, label, threshold and the scalar extras."""
        if not isinstance(output, Detection):
            return super().columns(output)
        cols: dict[str, Any] = {
            "score": None if output.score is None else float(output.score),
            "label": None if output.label is None else int(output.label),
        }
        if output.threshold is not None:
            cols["threshold"] = float(output.threshold)
        cols.update(scalar_columns(output.extra))
        return cols
