"""Validating spec data into a :class:`Pipeline`, reporting every problem at once."""

from __future__ import annotations

import builtins
import copy
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from satcore.errors import SpecError, UnknownComponentError
from satcore.kinds import STEP_KINDS
from satcore.spec.describe import _Problems
from satcore.spec.model import PipelineSpec
from satcore.spec.overrides import _apply_overrides, expand_env
from satcore.spec.yaml_lines import Loc, load_yaml

if TYPE_CHECKING:
    from satcore.components import Component, Params
    from satcore.plugins import SatcorePluginManager


@dataclass
class ResolvedStep:
    """A validated step: its id, input, component class and params."""

    id: str
    type: str
    input: str
    cls: builtins.type[Component]  # the field `type` shadows the builtin in this class body
    params: Params
    index: int


@dataclass
class Pipeline:
    """A validated spec, ready to run."""

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

    def spec_hash(self) -> str:
        """Hash of what determines results (source, steps, evaluation, seed); not output/execution."""
        keep = {k: self.raw.get(k) for k in ("version", "seed", "source", "steps", "evaluate")}
        blob = json.dumps(keep, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def resolved(self) -> dict[str, Any]:
        """The resolved spec as plain data (defaults filled, paths absolute)."""
        out = self.spec.model_dump(mode="json")
        out["source"] = {"type": self.source_cls.name, **self.source_params.model_dump(mode="json")}
        out["steps"] = [
            {"id": s.id, "type": s.type, "input": s.input, **s.params.model_dump(mode="json")}
            for s in self.steps
        ]
        return out

    def step(self, step_id: str) -> ResolvedStep:
        """A step by id."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def _component_kinds(kind: str) -> tuple[str, ...]:
    return ("source",) if kind == "source" else STEP_KINDS


def _validate_params(cls: type[Component], data: dict[str, Any], base_dir: Path,
                     problems: _Problems, loc: Loc) -> Params | None:
    version = data.pop("params_version", cls.params_version)
    if version != cls.params_version:
        data = cls.upgrade_params(data, int(version))
    try:
        return cls.params_model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        problems.add_validation(err, loc, cls.params_model, data)
        return None


def build_pipeline(data: Any, path: Path | None = None, lines: dict[Loc, int] | None = None,
                   pm: SatcorePluginManager | None = None,
                   overridden: dict[Loc, str] | None = None) -> Pipeline:
    """Validate spec data into a :class:`Pipeline`; raise :class:`SpecError` listing every problem.

    ``overridden`` maps the locations that ``--set`` overrides wrote to how to name them, so problems there
    are blamed on the override rather than on the file's line (which holds the value it replaced).
    """
    from satcore.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    filename = str(path) if path else "<spec>"
    problems = _Problems(filename, lines or {}, overridden)
    base_dir = path.parent if path else Path.cwd()
    if not isinstance(data, dict):
        raise SpecError(f"{filename}: expected a mapping with version, source, steps and output; got "
                        f"{type(data).__name__}")
    env_problems: list[tuple[Loc, str]] = []
    data = expand_env(data, (), env_problems)
    for loc, msg in env_problems:
        problems.add(loc, msg)

    spec: PipelineSpec | None = None
    try:
        spec = PipelineSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        problems.add_validation(err, (), PipelineSpec, data)

    # the source
    src_cls: Any = None
    src_params: Any = None
    src = data.get("source")
    if isinstance(src, dict) and isinstance(src.get("type"), str):
        try:
            src_cls = pm.get_component(src["type"], ("source",))
        except UnknownComponentError as exc:
            problems.add(("source", "type"), str(exc))
        else:
            src_params = _validate_params(src_cls, {k: v for k, v in src.items() if k != "type"}, base_dir,
                                          problems, ("source",))

    # the steps
    steps: list[ResolvedStep] = []
    raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    produced: dict[str, tuple[str, ...]] = {"source": tuple(src_cls.produces) if src_cls else ()}
    order: list[str] = []
    unknown: set[str] = set()  # steps of an unknown type: what they produce is unknown, not nothing
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            continue  # PipelineSpec already reported it
        step_id = str(raw.get("id") or raw["type"])
        if step_id in produced:
            problems.add(("steps", i, "id"), f"duplicate step id {step_id!r}; give each step a unique `id:`")
        try:
            cls = pm.get_component(raw["type"], STEP_KINDS)
        except UnknownComponentError as exc:
            problems.add(("steps", i, "type"), str(exc))
            produced[step_id] = ()
            unknown.add(step_id)
            order.append(step_id)
            continue
        # the input chain
        inp = raw.get("input")
        needs = set(cls.consumes)
        prev = order[-1] if order else None
        if inp is None:
            inp = (prev if prev is not None and needs and needs <= set(produced.get(prev, ()))
                   else "source")
        # fed by a step of unknown type (explicitly, or by default when the previous one is): its error says
        # it all, and a "produces nothing" here would be a follow-on of the typo
        if inp in unknown or (raw.get("input") is None and prev in unknown):
            pass
        elif inp not in produced:
            later = [s.get("id") or s.get("type") for s in raw_steps[i + 1:] if isinstance(s, dict)]
            why = "is defined after this step" if inp in later else "does not exist"
            problems.add(("steps", i, "input"), f"input {inp!r} {why}; use `source` or one of: "
                         f"{', '.join(order) or '(no earlier steps)'}")
        elif src_cls is not None or inp != "source":
            have = set(produced[inp])
            missing = needs - have
            alternatives = [k for k, v in produced.items() if needs <= set(v)]
            if needs and not needs <= have and not _any_of(cls, have):
                hint = f"; steps that do: {', '.join(alternatives)}" if alternatives else ""
                problems.add(("steps", i, "input" if raw.get("input") else "type"),
                             f"{cls.name!r} consumes {sorted(missing)} but {inp!r} produces "
                             f"{sorted(have) or 'nothing'}{hint}")
        params = _validate_params(cls, {k: v for k, v in raw.items() if k not in ("type", "id", "input")},
                                  base_dir, problems, ("steps", i))
        produced[step_id] = tuple(cls.produces)
        order.append(step_id)
        if params is not None:
            steps.append(ResolvedStep(step_id, cls.name, str(inp), cls, params, i))

    if problems.items or spec is None or src_cls is None or src_params is None:
        if not problems.items:
            problems.add((), "the spec is incomplete")
        raise SpecError(problems.items, filename)
    return Pipeline(spec, src_cls, src_params, steps, path, data)


def _any_of(cls: type[Component], have: set[str]) -> bool:
    """Components may declare alternatives with ``consumes_any`` (e.g. a pair or a series)."""
    alts: Any = getattr(cls, "consumes_any", None)
    return bool(alts) and any(set(a) <= have for a in alts)


def load_pipeline(spec: str | os.PathLike[str] | Mapping[str, Any],
                  overrides: Mapping[str, Any] | None = None,
                  pm: SatcorePluginManager | None = None) -> Pipeline:
    """Read a spec file (or take a dict), apply ``--set`` overrides and validate it."""
    lines: dict[Loc, int] = {}
    path: Path | None = None
    if isinstance(spec, Mapping):
        data: Any = copy.deepcopy(dict(spec))
    else:
        path = Path(spec).resolve()
        if not path.exists():
            raise SpecError(f"{spec}: spec file does not exist")
        data, lines = load_yaml(path.read_text(encoding="utf-8"), str(Path(spec)))
    overridden: dict[Loc, str] = {}
    if overrides:
        if not isinstance(data, dict):
            raise SpecError(f"{spec}: expected a mapping")
        data, overridden = _apply_overrides(data, overrides)
    pipeline = build_pipeline(data, path, lines, pm, overridden)
    if path is not None:
        # keep the name the user typed in messages, the absolute one for paths
        pipeline.path = path
    return pipeline

