"""The local executor: this process runs the steps, reading items ahead in threads or processes."""

from __future__ import annotations

from satcore.data import ItemRef
from satcore.engine.executors.base import batches_of
from satcore.engine.journal import Journal
from satcore.engine.rows import rows_for
from satcore.engine.steps import Engine


class LocalExecutor:
    """``execution.executor: local`` (the default)."""

    def run(self, engine: Engine, todo: list[ItemRef], splits: dict[str, str], journal: Journal) -> None:
        """Stream ``todo`` through the steps batch by batch ( :class:`~satcore.engine.executors.Executor`)."""
        bar = engine.bar(len(todo), engine.pipeline.name)
        try:
            for refs, loaded in engine.loader.iter_loaded(batches_of(todo, engine.spec.execution.batch_size)):
                journal.add(rows_for(engine, refs, loaded, splits))
                bar.update(len(refs))
        finally:
            journal.flush()  # an error stopping the run keeps what was finished
        bar.close()
