"""Recognizers: image → labels with scores."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Recognizer(Component):
    """Recognises scene labels.

    :meth:`process` returns one ``dict`` per item with ``labels`` (list of label names, best first) and
    ``scores`` (same length); for pairs and series it may instead (or besides) give one such ranking per
    image: ``{"images": [{"labels": [...], "scores": [...]}, ...]}``.

    Scored in the ``recognition`` block of ``metrics.json`` against the item's ``classes``: the item-level
    ``labels`` when the output has them, else the per-image rankings (each image one scored unit).
    """

    kind: ClassVar[str] = "recognizer"
    produces: ClassVar[tuple[str, ...]] = ("labels",)
    metric_blocks: ClassVar[tuple[str, ...]] = ("recognition",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Labels for each item of the batch."""
        raise NotImplementedError

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """The ranked labels: item-level ``labels``, else one list per image from ``images``."""
        if block != "recognition" or not isinstance(output, dict):
            return None
        if output.get("labels") is not None:
            return list(output["labels"])
        if output.get("images") is not None:
            return [list(r.get("labels") or []) for r in output["images"]]
        return None

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """The ``scores`` aligned with :meth:`metric_prediction`'s labels (when every ranking has them)."""
        if block != "recognition" or not isinstance(output, dict):
            return {}
        if output.get("labels") is not None:
            scores = output.get("scores")
        elif output.get("images") is not None and all(r.get("scores") is not None for r in output["images"]):
            scores = [list(r["scores"]) for r in output["images"]]
        else:
            scores = None
        return {} if scores is None else {"scores": list(scores)}
