"""Generators: text/image → image."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Generator(Component):
    """Generates images from text or other images.

    :meth:`process` returns one ``dict`` per item with ``images``: a list of :class:`~satcore.data.Raster`
    (written to ``<output.dir>/generated/<item_id>/`` by the engine).
    """

    kind: ClassVar[str] = "generator"
    produces: ClassVar[tuple[str, ...]] = ("images",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Generated images for each item of the batch."""
        raise NotImplementedError
