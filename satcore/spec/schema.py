"""The JSON Schema of a pipeline spec, built from the installed components' params."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from satcore.kinds import STEP_KINDS
from satcore.spec.model import ComponentSpec, PipelineSpec, StepSpec

if TYPE_CHECKING:
    from satcore.components import Component
    from satcore.plugins import SatcorePluginManager


def _component_model(cls: type[Component], kind: str) -> type[BaseModel]:
    fields: dict[str, Any] = {"type": (Literal[cls.name], Field(description=cls.summary()))}
    if kind != "source":
        fields["id"] = (str | None, Field(None, description=StepSpec.model_fields["id"].description))
        fields["input"] = (str | list[str] | None,
                           Field(None, description=StepSpec.model_fields["input"].description))
        fields["allow_remote_code"] = (bool, Field(
            False, description=StepSpec.model_fields["allow_remote_code"].description))
    model = create_model(f"{''.join(p.title() for p in cls.name.split('-'))}{kind.title()}Spec",
                         __base__=cls.params_model, **fields)
    model.__doc__ = cls.__doc__
    return model


def pipeline_schema(pm: SatcorePluginManager | None = None) -> dict[str, Any]:
    """JSON Schema of a pipeline spec with every installed component's params."""
    from satcore.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    cat = pm.catalogue()
    src_models = [_component_model(c, "source") for c in cat["source"].values()]
    step_models = [_component_model(c, k) for k in STEP_KINDS for c in cat[k].values()]

    def union(models: list[type[BaseModel]], fallback: type[BaseModel]) -> Any:
        if not models:
            return fallback
        if len(models) == 1:
            return models[0]
        return typing.Annotated[Union[tuple(models)], Field(discriminator="type")]  # noqa: UP007

    schema_model = create_model(
        "PipelineSpecSchema",
        __base__=PipelineSpec,
        source=(union(src_models, ComponentSpec), Field(description="Where items come from.")),
        steps=(list[union(step_models, StepSpec)], Field(min_length=1, description="Steps in order.")),  # type: ignore[misc,arg-type]
    )
    schema = schema_model.model_json_schema()
    schema["title"] = "satcore pipeline spec"
    return schema
