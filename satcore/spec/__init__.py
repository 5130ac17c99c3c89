"""Pipeline specs: pydantic models, YAML loading with line numbers, overrides and JSON Schema.

The loader (PyYAML, difflib, pydantic's ``create_model``) is imported on first use, so components that only
need :data:`SpecPath` (every source) do not pay for it when ``satcore plugins`` lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from satcore.spec.model import PipelineSpec, SpecPath

if TYPE_CHECKING:
    from satcore.spec.loader import (
        Pipeline,
        ResolvedStep,
        apply_overrides,
        build_pipeline,
        load_pipeline,
        parse_overrides,
        pipeline_schema,
    )

_LOADER = {"Pipeline", "ResolvedStep", "apply_overrides", "build_pipeline", "load_pipeline",
           "parse_overrides", "pipeline_schema"}


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        from satcore.spec import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'satcore.spec' has no attribute {name!r}")


__all__ = [
    "Pipeline", "PipelineSpec", "ResolvedStep", "SpecPath", "apply_overrides", "build_pipeline",
    "load_pipeline", "parse_overrides", "pipeline_schema",
]
