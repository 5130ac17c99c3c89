"""Sources: list items cheaply, then load each one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from satcore.components.base import Component
from satcore.data import Item, ItemRef


class Source(Component):
    """Yields items: image pairs, time series at locations, single scenes, captions.

    :meth:`list_items` must be cheap (no pixels read): the engine splits, resumes and schedules the refs.
    :meth:`load` reads one item; problems raise :class:`~satcore.errors.ComponentError` naming the file, and
    the item is listed in ``errors.jsonl`` while the run goes on.
    """

    kind: ClassVar[str] = "source"

    def list_items(self) -> Iterable[ItemRef]:
        """Refs of every item, in a stable order."""
        raise NotImplementedError

    def list_problems(self) -> list[tuple[str, str, str]]:
        """Items found unusable while listing, as ``(item_id, error_type, message)``; reported, not fatal."""
        return []

    def load(self, ref: ItemRef) -> Item:
        """Read the pixels (and truth) of one item."""
        raise NotImplementedError
