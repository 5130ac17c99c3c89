"""The local executor: this process runs the steps, reading items ahead in threads or processes."""

from __future__ import annotations

from typing import Any

from satcore.data import ItemRef
from satcore.engine.executors.base import batches_of
from satcore.engine.journal import Journal
from satcore.engine.rows import rows_for
from satcore.engine.steps import Engine


class LocalExecutor:
    """``execution.executor: local`` (the default)."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {"executor": "local", "workers": 1}

    def describe(self) -> dict[str, Any]:
        """``manifest.json`` → ``execution``: one computing process, its readers and its CPU threads."""
        return self.info

    def run(self, engine: Engine, todo: list[ItemRef], splits: dict[str, str], journal: Journal) -> None:
        """Stream ``todo`` through the steps batch by batch ( :class:`~satcore.engine.executors.Executor`)."""
        bar = engine.bar(len(todo), engine.pipeline.name)
        try:
            for refs, loaded in engine.loader.iter_loaded(batches_of(todo, engine.spec.execution.batch_size)):
                journal.add(rows_for(engine, refs, loaded, splits))
                bar.update(len(refs))
        finally:
            journal.flush()  # an error stopping the run keeps what was finished
            loading = engine.loading or {}
            mode = loading.get("mode", "serial" if engine.context.loader_workers <= 0 else "threads")
            # readers: the threads or processes decoding ahead of the model (none when reading serially)
            self.info = {"executor": "local", "workers": 1, "processes": 1 + (
                engine.context.loader_workers if mode == "processes" else 0),
                "loader": mode, "loader_workers": 0 if mode == "serial" else engine.context.loader_workers,
                "cpu_threads": engine.context.cpu_threads()}
        bar.close()
