"""Detectors: features/items → change score, label and optional change map."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from satcore.components.base import Batch, Component, Params, scalar_columns

if TYPE_CHECKING:
    from satcore.data import Item

#: ``Item.meta`` key of a tile's core: ``[row, col, height, width]`` of the pixels it stands for, inside its
#: array (the rest is the halo read around it); set by a tiling source (``docs/scale.md``).
CORE_KEY = "core"
#: ``Item.meta`` key of the merged scene statistics: ``{step_id: {...}}`` (filled by the engine's first pass).
SCENE_STATISTICS_KEY = "scene_statistics"


def core_slices(item: Item) -> tuple[slice, slice]:
    """The rows and columns of ``item``'s arrays that its tile stands for (all of them for an untiled item).

    A tile of a large scene is read with a halo of context pixels around it; statistics must count each
    scene pixel once, so :meth:`Detector.partial_statistics` reduces ``array[..., rows, cols]`` only.
    """
    core = item.meta.get(CORE_KEY)
    if not core:
        return slice(None), slice(None)
    r, c, h, w = (int(v) for v in core)
    return slice(r, r + h), slice(c, c + w)


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

    **Whole scenes** (a source with ``tiling:``; ``docs/scale.md``). A tile is read with :attr:`halo` pixels
    of context around it and the maps are cropped back afterwards, so smoothing or morphology near a tile's
    edge sees the same neighbours as on the whole scene. A detector that uses statistics of the whole image
    (a normalisation, Otsu's threshold, a PCA) gets them from passes over the scene before the tiles
    stream: it names its passes in :meth:`statistics_stages`, computes one tile's part in
    :meth:`partial_statistics` and merges the parts in :meth:`merge_statistics`; :meth:`scene_statistics`
    then hands the merged result to :meth:`process`. The defaults (no halo, no stages) keep a detector
    working on tiles as before: it just sees each tile as a separate image.
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

    @property
    def halo(self) -> int:
        """Context pixels needed around each output pixel (smoothing radius, morphology); default 0.

        A tiled source reads every tile with at least this many extra pixels on each side (clipped at the
        scene's edge), and the engine crops the maps back to the tile, so the mosaic does not depend on where
        the tile edges fall.
        """
        return 0

    def statistics_stages(self) -> tuple[str, ...]:
        """The names of the passes over a tiled scene this detector needs, in order; default none.

        Each stage may use the result of the earlier ones (a threshold on a normalised magnitude needs the
        normalisation first).
        """
        return ()

    def partial_statistics(self, item: Item, stage: str, scene: dict[str, Any]) -> Any:
        """One tile's part of a stage (e.g. its count, sum and sum of squares, or a fixed-range histogram).

        Reduce only the pixels of :func:`core_slices` (the halo belongs to the neighbouring tiles).

        Args:
            item: the tile, with its halo.
            stage: one of :meth:`statistics_stages`.
            scene: the merged result of the earlier stages.
        """
        raise NotImplementedError(f"{type(self).__name__} names statistics stages but does not compute them")

    def merge_statistics(self, stage: str, partials: list[Any], scene: dict[str, Any]) -> dict[str, Any]:
        """Merge every tile's part of ``stage`` into the scene statistics; return the updated copy.

        The result must be picklable (it travels with the items to Dask workers): numbers, lists, strings.
        """
        return scene

    def scene_statistics(self, item: Item) -> dict[str, Any] | None:
        """The merged statistics of ``item``'s scene for this step, or ``None`` (an untiled item)."""
        stats = item.meta.get(SCENE_STATISTICS_KEY) or {}
        out = stats.get(self.step_id)
        return None if out is None else dict(out)

    def own_statistics(self, item: Item) -> dict[str, Any]:
        """Every stage run over ``item`` alone (one partial each): the untiled path of the same code."""
        scene: dict[str, Any] = {}
        for stage in self.statistics_stages():
            scene = self.merge_statistics(stage, [self.partial_statistics(item, stage, scene)], scene)
        return scene

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
