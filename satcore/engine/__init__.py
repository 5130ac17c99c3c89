"""Execution: the streaming engine, split by job (see CONTRIBUTING.md, "Where things live")."""

from satcore.engine.result import RunResult
from satcore.engine.run import run_pipeline
from satcore.engine.steps import Engine

__all__ = ["Engine", "RunResult", "run_pipeline"]
