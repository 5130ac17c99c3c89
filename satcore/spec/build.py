"""Validating spec data into a :class:`Pipeline`, reporting every problem at once."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from satcore.errors import PluginConflictError, SpecError, UnknownComponentError
from satcore.kinds import STEP_KINDS
from satcore.spec import graph
from satcore.spec.describe import _Problems, _short
from satcore.spec.graph import SOURCE
from satcore.spec.model import PipelineSpec
from satcore.spec.models_check import _registry_for, check_model_alias
from satcore.spec.overrides import _apply_overrides, expand_env
from satcore.spec.pipeline import Pipeline, ResolvedStep
from satcore.spec.yaml_lines import Loc, load_yaml, read_spec_text

if TYPE_CHECKING:
    from satcore.components import Component, Params
    from satcore.plugins import SatcorePluginManager


def _component_kinds(kind: str) -> tuple[str, ...]:
    return ("source",) if kind == "source" else STEP_KINDS


def _validate_params(cls: type[Component], data: dict[str, Any], base_dir: Path,
                     problems: _Problems, loc: Loc) -> Params | None:
    version = data.pop("params_version", cls.params_version)
    current = cls.params_version
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= current:
        known = f"an integer from 1 to {current}" if current > 1 else "1"
        newer = "; a newer satcore or plugin wrote it: upgrade" if isinstance(version, int) and \
            not isinstance(version, bool) and version > current else ""
        problems.add((*loc, "params_version"), f"expected {known} (the params versions {cls.name!r} knows), "
                     f"got {_short(version)}{newer}")
        return None
    if version != current:
        try:
            data = cls.upgrade_params(data, version)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # the old params are malformed
            problems.add(loc, f"{cls.name!r} could not upgrade these params from params_version {version}: "
                         f"{type(exc).__name__}: {exc}")
            return None
    try:
        return cls.params_model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        problems.add_validation(err, loc, cls.params_model, data)
    except OSError as exc:  # a validator looked at the disk: a name too long, no permission
        problems.add(loc, f"{exc.strerror or exc}: {_short(exc.filename)}; fix the path")
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
        except (UnknownComponentError, PluginConflictError) as exc:
            problems.add(("source", "type"), str(exc))
        else:
            src_params = _validate_params(src_cls, {k: v for k, v in src.items() if k != "type"}, base_dir,
                                          problems, ("source",))

    steps = _resolve_steps(data, src_cls, pm, base_dir, problems)

    if problems.items or spec is None or src_cls is None or src_params is None:
        if not problems.items:
            problems.add((), "the spec is incomplete")
        raise SpecError(problems.items, filename)
    return Pipeline(spec, src_cls, src_params, steps, path, data)


@dataclass
class _Step:
    """A step while it is being checked."""

    i: int
    id: str
    raw: dict[str, Any]
    cls: type[Component] | None      # None: unknown type (already reported)
    inputs: list[str] = field(default_factory=list)
    explicit: bool = False          # `input:` given
    listed: bool = False            # `input:` given as a list
    checkable: bool = True          # False: fed by an unknown step, or a malformed `input:`


def _resolve_steps(data: dict[str, Any], src_cls: type[Component] | None, pm: SatcorePluginManager,
                   base_dir: Path, problems: _Problems) -> list[ResolvedStep]:
    """Check every step's type, inputs (over the step graph) and params; the valid steps in run order."""
    raw_steps: list[Any] = data["steps"] if isinstance(data.get("steps"), list) else []
    found: list[_Step] = []
    seen: set[str] = {SOURCE}
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            continue  # PipelineSpec already reported it
        step_id = str(raw.get("id") or raw["type"])
        if step_id in seen:
            why = "`source` names the source" if step_id == SOURCE else f"duplicate step id {step_id!r}"
            problems.add(("steps", i, "id"), f"{why}; give each step a unique `id:`")
        seen.add(step_id)
        cls: type[Component] | None = None
        try:
            cls = pm.get_component(raw["type"], STEP_KINDS)
        except (UnknownComponentError, PluginConflictError) as exc:
            problems.add(("steps", i, "type"), str(exc))
        found.append(_Step(i, step_id, raw, cls))
    by_id = {s.id: s for s in found}
    produced: dict[str, tuple[str, ...] | None] = {SOURCE: tuple(src_cls.produces) if src_cls else None}
    produced.update({s.id: tuple(s.cls.produces) if s.cls else None for s in found})

    # each step's inputs: given, or the previous step when it produces what this one consumes, else the source
    for k, s in enumerate(found):
        given = s.raw.get("input")
        s.explicit = given is not None
        if isinstance(given, str):
            s.inputs = [given]
        elif isinstance(given, list) and given and all(isinstance(x, str) for x in given):
            s.inputs, s.listed = list(given), True
            for j, x in enumerate(given):
                if x in given[:j]:
                    problems.add(("steps", s.i, "input", j), f"input {x!r} is listed twice")
        elif given is not None:
            if isinstance(given, list) and not given:
                problems.add(("steps", s.i, "input"), "`input: []` names no step; give `source`, a step id, "
                             "or a list of them")
            s.checkable = False  # PipelineSpec reports other malformed values
            continue
        else:
            prev = found[k - 1] if k else None
            needs = set(s.cls.consumes) if s.cls else set()
            have = set(produced.get(prev.id) or ()) if prev else set()
            s.inputs = [prev.id if prev is not None and needs and needs <= have else SOURCE]
            if prev is not None and prev.cls is None:
                s.checkable = False  # the typo above says it all; "produces nothing" would be its echo
        for j, inp in enumerate(s.inputs):
            loc = ("steps", s.i, "input", j) if s.listed else ("steps", s.i, "input")
            if inp == s.id:
                problems.add(loc, f"step {s.id!r} names itself as its input; use `source` or another step")
                s.checkable = False
            elif inp != SOURCE and inp not in by_id:
                others = [x.id for x in found if x.id != s.id]
                close = difflib.get_close_matches(inp, [SOURCE, *others], n=1)
                hint = f" — did you mean {close[0]!r}?" if close else ""
                problems.add(loc, f"input {inp!r} of step {s.id!r} does not exist{hint}; use `source` or one "
                             f"of: {', '.join(others) or '(no other steps)'}")
                s.checkable = False

    # the graph: no cycles; then what each input produces against what the step consumes
    edges = {s.id: [x for x in s.inputs if x in by_id and x != s.id] for s in found}
    cycle = graph.find_cycle([s.id for s in found], edges)
    if cycle:
        first = by_id[cycle[-1]]
        problems.add(("steps", first.i, "input"),
                     f"the steps form a cycle: {' → '.join(cycle)} (each reads the one before it); a step "
                     "can only read steps that do not depend on it")
    for s in found:
        if s.cls is None or not s.checkable or cycle:
            continue
        for j, inp in enumerate(s.inputs):
            have_t = produced.get(inp)
            if have_t is None:  # unknown type or no source: already reported
                continue
            needs, have = set(s.cls.consumes), set(have_t)
            if needs and not needs <= have and not _any_of(s.cls, have):
                alternatives = [k for k, v in produced.items() if v and needs <= set(v) and k != s.id]
                hint = f"; steps that do: {', '.join(alternatives)}" if alternatives else ""
                where: Loc = ("steps", s.i, "input", j) if s.listed else (
                    ("steps", s.i, "input") if s.explicit else ("steps", s.i, "type"))
                problems.add(where, f"{s.cls.name!r} consumes {sorted(needs - have)} but {inp!r} produces "
                             f"{sorted(have) or 'nothing'}{hint}")

    # params, model aliases, the remote-code permission
    registry = _registry_for(pm)
    resolved: dict[str, ResolvedStep] = {}
    for s in found:
        if s.cls is None:
            continue
        allow = s.raw.get("allow_remote_code") is True
        params = _validate_params(s.cls, {k: v for k, v in s.raw.items() if k not in _STEP_KEYS}, base_dir,
                                  problems, ("steps", s.i))
        check_model_alias(s.raw.get("model"), allow, registry, base_dir, problems, ("steps", s.i, "model"))
        if params is not None and s.inputs:
            resolved[s.id] = ResolvedStep(s.id, s.cls.name, s.inputs[0], s.cls, params, s.i, tuple(s.inputs),
                                          allow, s.listed)
    order = graph.run_order([s.id for s in found], edges)
    return [resolved[x] for x in order if x in resolved]


#: step keys that belong to the core, not to the component's params
_STEP_KEYS = ("type", "id", "input", "allow_remote_code")


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
        shown = str(spec)
        try:
            path = Path(spec).resolve()
        except (OSError, ValueError, RuntimeError) as exc:  # too long, a NUL byte, a symlink loop
            raise SpecError(f"{shown[:200]!r}: not a usable spec path: {exc}") from None
        data, lines = load_yaml(read_spec_text(path, shown), shown)
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

