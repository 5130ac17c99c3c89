"""Pipeline specs: pydantic models, YAML loading with line numbers, overrides and JSON Schema."""

from satcore.spec.loader import (
    Pipeline,
    ResolvedStep,
    apply_overrides,
    build_pipeline,
    load_pipeline,
    parse_overrides,
    pipeline_schema,
)
from satcore.spec.model import PipelineSpec, SpecPath

__all__ = [
    "Pipeline", "PipelineSpec", "ResolvedStep", "SpecPath", "apply_overrides", "build_pipeline", "load_pipeline",
    "parse_overrides", "pipeline_schema",
]
