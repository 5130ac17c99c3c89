"""Recognizers: image → labels with scores."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component


class Recognizer(Component):
    """Recognises scene labels.

    :meth:`process` returns one ``dict`` per item with ``labels`` (list of label names, best first) and
    ``scores`` (same length).
    """

    kind: ClassVar[str] = "recognizer"
    produces: ClassVar[tuple[str, ...]] = ("labels",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Labels for each item of the batch."""
        raise NotImplementedError
