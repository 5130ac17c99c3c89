"""Pipeline specs: pydantic models, YAML loading with line numbers, overrides and JSON Schema.

The loader (PyYAML, difflib, pydantic's ``create_model``) is imported on first use, so components that only
need :data:`SpecPath` (every source) do not pay for it when ``satcore plugins`` lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from satcore.spec.model import PipelineSpec, SpecPath

if TYPE_CHECKING:
    from satcore.spec.build import build_pipeline, load_pipeline
    from satcore.spec.overrides import apply_overrides, parse_overrides
    from satcore.spec.pipeline import Pipeline, ResolvedStep
    from satcore.spec.schema import pipeline_schema

#: public name → the module that defines it (imported on first use)
_LAZY = {"Pipeline": "pipeline", "ResolvedStep": "pipeline", "build_pipeline": "build",
         "load_pipeline": "build", "apply_overrides": "overrides", "parse_overrides": "overrides",
         "pipeline_schema": "schema"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"satcore.spec.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'satcore.spec' has no attribute {name!r}")


__all__ = [
    "Pipeline", "PipelineSpec", "ResolvedStep", "SpecPath", "apply_overrides", "build_pipeline",
    "load_pipeline", "parse_overrides", "pipeline_schema",
]
