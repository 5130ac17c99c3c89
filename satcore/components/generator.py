"""Generators: text/image → image."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component
from satcore.data import Raster


class Generator(Component):
    """Generates images from text or other images.

    :meth:`process` returns one ``dict`` per item with ``images``: a list of :class:`~satcore.data.Raster`
    (written to ``<output.dir>/generated/<item_id>/`` by the engine).

    Scored in the ``spectral`` block of ``metrics.json``: the first image's array against the item's target
    raster (``targets["target"]``, else the only target).
    """

    kind: ClassVar[str] = "generator"
    produces: ClassVar[tuple[str, ...]] = ("images",)
    metric_blocks: ClassVar[tuple[str, ...]] = ("spectral",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Generated images for each item of the batch."""
        raise NotImplementedError

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """The first generated image's array (``images[0]``, or ``image``)."""
        if block != "spectral" or not isinstance(output, dict):
            return None
        images = output.get("images")
        first = images[0] if images else output.get("image")
        return first.array if isinstance(first, Raster) else first
