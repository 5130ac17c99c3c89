"""Extractors: item(s) → features."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Extractor(Component):
    """Turns items into features: probability vectors, embeddings, segmentation probabilities, indices.

    :meth:`process` returns one ``dict`` per item, in order. Keys are the feature names downstream steps
    read (e.g. ``probabilities`` shaped ``(n_images, n_classes)``); scalar and string entries also become
    columns of ``results.parquet``.

    Scored in the ``image_quality`` block of ``metrics.json`` only when the output carries both sides:
    ``features`` (the generated image's vector, shape ``(F,)`` or ``(1, F)``) and ``real_features`` (the
    real image's vector, e.g. of the item's target, computed by an evaluation extractor reading its
    generator input and the item); ``probabilities`` of the generated image feed the Inception Score.
    Items carry no real-image features, so an ordinary extractor is not scored.
    """

    kind: ClassVar[str] = "extractor"
    metric_blocks: ClassVar[tuple[str, ...]] = ("image_quality",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Features for each item of the batch."""
        raise NotImplementedError

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """``features`` when ``real_features`` sits beside it (else nothing to compare with)."""
        if block != "image_quality" or not isinstance(output, dict) or output.get("real_features") is None:
            return None
        return output.get("features")

    def metric_truth(self, block: str, item: Any, output: Any) -> Any | None:
        """``real_features`` from the output (items carry no feature vectors)."""
        if block != "image_quality" or not isinstance(output, dict):
            return None
        return output.get("real_features")

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """``probabilities`` of the generated image, for the Inception Score."""
        if block != "image_quality" or not isinstance(output, dict) or output.get("probabilities") is None:
            return {}
        return {"probs": output["probabilities"]}
