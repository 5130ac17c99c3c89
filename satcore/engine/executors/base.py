"""The one interface every executor meets: process the items still to do, journaling their rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from satcore.data import ItemRef
    from satcore.engine.journal import Journal
    from satcore.engine.steps import Engine


class Executor(Protocol):
    """Runs the set-up (and fitted) engine's steps over ``todo`` and adds every item's row to ``journal``.

    Whatever happens, rows already made are flushed to the journal before ``run`` returns or raises, so
    ``--resume`` keeps them. Batches hold ``execution.batch_size`` items; rows come from
    :func:`satcore.engine.rows.rows_for`, so every executor writes the same table.
    """

    def run(self, engine: Engine, todo: list[ItemRef], splits: dict[str, str], journal: Journal) -> None:
        """Process ``todo`` (``splits``: item id → split name)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ran, for ``manifest.json`` → ``execution``: ``executor`` and ``workers`` at least."""
        ...


def batches_of(todo: list[ItemRef], size: int) -> list[list[ItemRef]]:
    """``todo`` in consecutive batches of ``size`` items."""
    return [todo[i:i + size] for i in range(0, len(todo), size)]
