"""Extractors: item(s) → features."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Extractor(Component):
    """Turns items into features: probability vectors, embeddings, segmentation probabilities, indices.

    :meth:`process` returns one ``dict`` per item, in order. Keys are the feature names downstream steps
    read (e.g. ``probabilities`` shaped ``(n_images, n_classes)``); scalar and string entries also become
    columns of ``results.parquet``.
    """

    kind: ClassVar[str] = "extractor"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Features for each item of the batch."""
        raise NotImplementedError
