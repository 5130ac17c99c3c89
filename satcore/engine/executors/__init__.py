"""Executors: where a run's items are processed (``execution.executor``), behind one small interface."""

from __future__ import annotations

from satcore.engine.executors.base import Executor
from satcore.engine.executors.dask import DaskExecutor
from satcore.engine.executors.local import LocalExecutor

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "get_executor"]


def get_executor(name: str) -> Executor:
    """The executor for ``execution.executor`` (``local`` or ``dask``; the spec has validated the name)."""
    return DaskExecutor() if name == "dask" else LocalExecutor()
