"""A validated pipeline: its steps (each with its inputs) in run order, and the step graph's queries."""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcore.spec import graph
from satcore.spec.model import PipelineSpec

if TYPE_CHECKING:
    from satcore.components import Component, Params


@dataclass
class ResolvedStep:
    """A validated step: its id, inputs, component class and params.

    Attributes:
        id: the step id (``id:``, default the type).
        type: the component name.
        input: the first of :attr:`inputs` (the only one for a single-input step, as before several inputs
            existed): ``source`` or a step id.
        cls: the component class.
        params: the component's validated params.
        index: the step's position in the spec file's ``steps:`` list.
        inputs: every input in the order the spec lists them; a step with ``input: [a, b]`` gets a mapping
            step id → that step's outputs. ``(input,)`` when not given.
        allow_remote_code: the step's ``allow_remote_code:`` (its model may run its repository's own code).
        multi_input: the spec gave ``input:`` as a list (even of one): the component gets a mapping step
            id → outputs rather than one step's outputs.
    """

    id: str
    type: str
    input: str
    cls: builtins.type[Component]  # the field `type` shadows the builtin in this class body
    params: Params
    index: int
    inputs: tuple[str, ...] = ()
    allow_remote_code: bool = False
    multi_input: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            self.inputs = (self.input,)


@dataclass
class Pipeline:
    """A validated spec, ready to run.

    :attr:`steps` are in run order: a topological order of the step graph that keeps the file's order
    wherever the inputs allow it (a spec whose inputs all name earlier steps runs in file order).
    """

    spec: PipelineSpec
    source_cls: type[Component]
    source_params: Params
    steps: list[ResolvedStep]
    path: Path | None
    raw: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths are taken from."""
        return self.path.parent if self.path else Path.cwd()

    @property
    def name(self) -> str:
        """The run name."""
        return self.spec.name or (self.path.stem if self.path else "pipeline")

    @property
    def order(self) -> list[str]:
        """Step ids in run order (every step after all of its inputs)."""
        return [s.id for s in self.steps]

    @property
    def graph(self) -> dict[str, tuple[str, ...]]:
        """Step id → its input ids (``source`` included where a step reads it)."""
        return {s.id: s.inputs for s in self.steps}

    def dependants(self, step_id: str) -> list[str]:
        """Every step downstream of ``step_id`` (reading its outputs, directly or not), in run order.

        The engine skips these for an item on which ``step_id`` failed; the other steps keep their outputs.
        """
        self.step(step_id)
        down = graph.dependants(self.graph, step_id)
        return [s for s in self.order if s in down]

    def ancestors(self, step_id: str) -> list[str]:
        """Every step upstream of ``step_id`` (``source`` not included), in run order."""
        self.step(step_id)
        up = graph.ancestors(self.graph, step_id)
        return [s for s in self.order if s in up]

    def spec_hash(self) -> str:
        """Hash of what determines results (source, steps, evaluation, seed); not output/execution."""
        keep = {k: self.raw.get(k) for k in ("version", "seed", "source", "steps", "evaluate")}
        blob = json.dumps(keep, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def resolved(self) -> dict[str, Any]:
        """The resolved spec as plain data (defaults filled, paths absolute, steps in run order)."""
        out = self.spec.model_dump(mode="json")
        out["source"] = {"type": self.source_cls.name, **self.source_params.model_dump(mode="json")}
        out["steps"] = [
            {"id": s.id, "type": s.type, "input": list(s.inputs) if s.multi_input else s.input,
             **({"allow_remote_code": True} if s.allow_remote_code else {}),
             **s.params.model_dump(mode="json")}
            for s in self.steps
        ]
        return out

    def step(self, step_id: str) -> ResolvedStep:
        """A step by id (``KeyError`` when there is none)."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)
