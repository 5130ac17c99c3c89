"""Captioners: image → text."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Captioner(Component):
    """Writes a caption for each image of an item.

    :meth:`process` returns one ``dict`` per item with ``captions``: a list of strings, one per image.
    """

    kind: ClassVar[str] = "captioner"
    produces: ClassVar[tuple[str, ...]] = ("captions",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Captions for each item of the batch."""
        raise NotImplementedError
