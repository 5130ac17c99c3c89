"""Captioners: image → text."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Captioner(Component):
    """Writes a caption for each image of an item.

    :meth:`process` returns one ``dict`` per item with ``captions``: a list of strings, one per image. It
    may add ``caption``: one string for the item as a whole (e.g. a change caption of a pair).

    Scored in the ``captions`` block of ``metrics.json`` against the item's ``texts``: ``caption`` when
    given, else the first image's caption (the only one for a scene).
    """

    kind: ClassVar[str] = "captioner"
    produces: ClassVar[tuple[str, ...]] = ("captions",)
    metric_blocks: ClassVar[tuple[str, ...]] = ("captions",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Captions for each item of the batch."""
        raise NotImplementedError

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """The caption scored: ``caption``, else the first of ``captions``."""
        if block != "captions" or not isinstance(output, dict):
            return None
        if isinstance(output.get("caption"), str):
            return output["caption"]
        caps = output.get("captions")
        if isinstance(caps, str):
            return caps
        if caps is not None and len(caps) > 0 and isinstance(caps[0], str):
            return caps[0]
        return None
