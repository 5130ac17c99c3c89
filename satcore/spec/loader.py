"""Compatibility facade: the spec loader now lives in modules named by their job.

``yaml_lines`` (YAML with line numbers, plain-word syntax errors), ``overrides`` (``${ENV}``, ``--set``),
``describe`` (pydantic errors → sentences), ``graph`` (the step graph), ``build`` (validation into a
:class:`Pipeline`) and ``schema`` (JSON Schema). Import from :mod:`satcore.spec` instead.
"""

from __future__ import annotations

from satcore.spec.build import build_pipeline, load_pipeline
from satcore.spec.describe import describe_error
from satcore.spec.overrides import apply_overrides, expand_env, parse_overrides
from satcore.spec.pipeline import Pipeline, ResolvedStep
from satcore.spec.schema import pipeline_schema
from satcore.spec.yaml_lines import Loc, format_loc, load_yaml

__all__ = ["Loc", "Pipeline", "ResolvedStep", "apply_overrides", "build_pipeline", "describe_error",
           "expand_env", "format_loc", "load_pipeline", "load_yaml", "parse_overrides", "pipeline_schema"]
