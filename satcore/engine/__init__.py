"""Execution: the local streaming engine (and the Dask executor)."""

from satcore.engine.runner import Engine, RunResult, run_pipeline

__all__ = ["Engine", "RunResult", "run_pipeline"]
