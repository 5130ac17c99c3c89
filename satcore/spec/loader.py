"""Load, expand, override and validate pipeline specs, reporting every problem at once."""

from __future__ import annotations

import builtins
import copy
import difflib
import hashlib
import json
import os
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model

from satcore.errors import SpecError, UnknownComponentError
from satcore.kinds import STEP_KINDS
from satcore.spec.model import ComponentSpec, PipelineSpec, StepSpec

if TYPE_CHECKING:
    from satcore.components import Component, Params
    from satcore.plugins import SatcorePluginManager

Loc = tuple[Any, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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


# ------------------------------------------------------------------------------------------ YAML + lines

def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*loc, key)] = k.start_mark.line + 1
            _node_lines(v, (*loc, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _node_lines(v, (*loc, i), out)


def load_yaml(text: str, filename: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML safely, keeping the line of every key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: not valid YAML: {problem}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return data, lines


def expand_env(data: Any, loc: Loc = (), problems: list[tuple[Loc, str]] | None = None) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in strings; unset variables without default are problems."""
    if problems is None:
        problems = []
    if isinstance(data, dict):
        return {k: expand_env(v, (*loc, k), problems) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, (*loc, i), problems) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append((loc, f"environment variable ${{{name}}} is not set; set it or write "
                                  f"${{{name}:-default}}"))
            return m.group(0)

        return _ENV.sub(sub, data)
    return data


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "steps.x.t=0.4"]`` → ``{"a.b": 1, ...}`` with values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise SpecError(f"--set {p!r}: expected KEY=VALUE, e.g. --set steps.change.threshold=0.4")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
        except yaml.YAMLError:
            out[k.strip()] = v
    return out


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set values by dotted path; inside ``steps`` a segment is a step id (or an index)."""
    return _apply_overrides(data, overrides)[0]


def _apply_overrides(data: dict[str, Any],
                     overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[Loc, str]]:
    """:func:`apply_overrides`, also returning where each override landed and how to name it.

    The second value maps e.g. ``("steps", 1, "threshold")`` to ``--set steps.change.threshold=0.4``.
    """
    data = copy.deepcopy(data)
    where: dict[Loc, str] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        cur: Any = data
        loc: list[Any] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(cur, list):
                idx = _list_index(cur, part, dotted) % len(cur)
                loc.append(idx)
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            elif isinstance(cur, dict):
                loc.append(part)
                if last:
                    cur[part] = value
                else:
                    if not isinstance(cur.get(part), (dict, list)):
                        cur[part] = {}
                    cur = cur[part]
            else:
                raise SpecError(f"--set {dotted}: {'.'.join(parts[:i])} is not a mapping")
        key = tuple(loc)
        for old in [k for k in where if k[:len(key)] == key]:  # replaced by this one
            del where[old]
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        where[key] = f"--set {dotted}={shown}"
    return data, where


def _list_index(seq: list[Any], part: str, dotted: str) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if -len(seq) <= idx < len(seq):
            return idx
        raise SpecError(f"--set {dotted}: index {idx} out of range ({len(seq)} entries)")
    for i, s in enumerate(seq):
        if isinstance(s, dict) and (s.get("id") or s.get("type")) == part:
            return i
    ids = [s.get("id") or s.get("type") for s in seq if isinstance(s, dict)]
    close = difflib.get_close_matches(part, [str(x) for x in ids], n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    raise SpecError(f"--set {dotted}: no step with id {part!r}{hint} (steps: {', '.join(map(str, ids))})")


# ------------------------------------------------------------------------------------------ validation

class _Problems:
    def __init__(self, filename: str, lines: dict[Loc, int],
                 overridden: dict[Loc, str] | None = None) -> None:
        self.filename = filename
        self.lines = lines
        self.overridden = overridden or {}
        self.items: list[str] = []

    def where(self, loc: Loc) -> str:
        """``file:line`` of the key, or the ``--set`` that gave it its value (the file holds the old one)."""
        probe = tuple(loc)
        for n in range(len(probe), 0, -1):
            if probe[:n] in self.overridden:
                return self.overridden[probe[:n]] + ":"
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        return f"{self.filename}:{line}" if line else self.filename

    def add(self, loc: Loc, msg: str) -> None:
        path = format_loc(loc)
        self.items.append(f"{self.where(loc)} {path}: {msg}" if path else f"{self.where(loc)}: {msg}")

    def add_validation(self, err: ValidationError, prefix: Loc, model: type[BaseModel] | None,
                       data: Any = None) -> None:
        """Add pydantic's errors for ``data`` (validated against ``model``), located under ``prefix``.

        ``data`` (the validated input) tells keys from union members in error locations and picks the union
        member whose type the value has (see :func:`_describe_errors`).
        """
        entries = [(tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-"))), e)
                   for e in err.errors(include_url=False)]
        for loc, msg in _describe_errors(entries, data, model):
            self.add((*prefix, *loc), msg)


_MISSING: Any = object()


def _describe_errors(entries: list[tuple[Loc, Any]], data: Any,
                     model: type[BaseModel] | None) -> list[tuple[Loc, str]]:
    """One message per problem from pydantic's errors, with union members resolved.

    A value checked against a union gets errors from every member, located under the member's tag
    (``threshold.float``, ``threshold.OptimiseThreshold.optimise``). Those are grouped by the union's location
    and :func:`_describe_union` keeps what concerns the member the user meant; the tags never show.
    """
    out: list[tuple[Loc, str]] = []
    groups: dict[Loc, dict[Any, list[tuple[Loc, Any]]]] = {}
    order: list[tuple[str, Any]] = []
    for loc, e in entries:
        k = _union_tag_index(loc, data, e)
        if k is None:
            order.append(("one", (loc, describe_error(e, model, loc))))
            continue
        where = loc[:k]
        if where not in groups:
            groups[where] = {}
            order.append(("union", where))
        groups[where].setdefault(loc[k], []).append(((*where, *loc[k + 1:]), e))
    for what, x in order:
        if what == "one":
            out.append(x)
        else:
            out.extend(_describe_union(x, groups[x], data, model))
    return out


#: errors saying the value has the wrong type for a union member (not a wrong value of the right type)
_TYPE_ERRORS = {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float", "bool_parsing",
                "bool_type", "string_type", "dict_type", "model_type", "model_attributes_type", "list_type",
                "tuple_type", "set_type", "none_required", "is_instance_of", "dataclass_type"}


def _describe_union(where: Loc, members: dict[Any, list[tuple[Loc, Any]]], data: Any,
                    model: type[BaseModel] | None) -> list[tuple[Loc, str]]:
    """The problems of one value checked against a union (``members``: tag → errors with the tag removed).

    Members of the value's own kind (a mapping → the model members, a number or string → the scalar ones,
    a list → list members) are kept; if one of them got past the type check (its errors lie deeper), its
    errors are the problems (``threshold.optimise: expected 'f1' or …``), not the other members' type
    mismatches. Otherwise the expectations become one problem, ``expected 'otsu' or a number, got 'high'``,
    listing every member when the value's type fits none.
    """
    value = _lookup(data, where)
    kind = None if value is _MISSING else _value_kind(value)
    fitting = {t: es for t, es in members.items() if _tag_kind(t) in (kind, None)} if kind else {}
    kept = fitting or members
    deep = {t: es for t, es in kept.items() if any(len(loc) > len(where) for loc, _ in es)}
    if deep:
        tag = min(deep, key=lambda t: len(deep[t]))  # the member the value came closest to
        return _describe_errors(deep[tag], data, model)
    errs = [e for es in kept.values() for _, e in es]
    if all(e["type"] in _TYPE_ERRORS for e in errs):
        errs = [e for es in members.values() for _, e in es]
    if len(errs) == 1:
        return [(where, describe_error(errs[0], model, where))]
    wanted = [_expectation(e) for e in errs]
    got = value if value is not _MISSING else errs[0].get("input")
    shown = f"a {type(got).__name__}" if isinstance(got, (dict, list)) else repr(got)
    return [(where, f"expected {' or '.join(dict.fromkeys(wanted))}, got {shown}")]


def _lookup(data: Any, loc: Loc) -> Any:
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and -len(data) <= part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return _MISSING
        data = data[part]
    return data


def _union_tag_index(loc: Loc, data: Any, e: Any) -> int | None:
    """Where the first union-member tag is in ``loc`` (``None``: none); keys present in ``data`` are keys."""
    cur, known = data, data is not None
    for i, seg in enumerate(loc):
        if known and isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
            continue
        if known and isinstance(cur, list) and isinstance(seg, int) and -len(cur) <= seg < len(cur):
            cur = cur[seg]
            continue
        known = False
        # an unknown or missing key at the end is the key itself, whatever it looks like
        if (isinstance(seg, str) and _is_union_tag(seg)
                and not (i == len(loc) - 1 and e["type"] in ("extra_forbidden", "missing"))):
            return i
    return None


def _value_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "mapping"
    return "sequence" if isinstance(value, (list, tuple)) else "scalar"


def _tag_kind(tag: Any) -> str | None:
    """What kind of value a union member takes (``None``: cannot tell, e.g. a nested union)."""
    tag = str(tag)
    if tag.startswith(("list[", "tuple[", "set[", "frozenset[", "generator[")):
        return "sequence"
    if tag.startswith(("dict[", "model-fields", "typed-dict", "dataclass")) or (
            tag[:1].isupper() and tag.isidentifier()):
        return "mapping"
    if tag.startswith(("union[", "nullable[", "default[", "json-or-python[", "lax-or-strict[")):
        return None
    return "scalar"


_UNION_SCALARS = ("str", "int", "float", "bool", "none")
_UNION_PREFIXES = ("list[", "tuple[", "dict[", "literal[", "constrained-", "lax-", "json-or-python[",
                   "is-instance[", "union[", "nullable[", "model-fields", "default[")


def _is_union_tag(seg: str) -> bool:
    """Whether a pydantic error location segment names a union member rather than a key."""
    return seg in _UNION_SCALARS or seg.startswith(_UNION_PREFIXES) or (
        seg[:1].isupper() and seg.isidentifier())  # a model class name in a union of models


def _expectation(e: Any) -> str:
    ctx = e.get("ctx") or {}
    if e["type"] == "literal_error" and "expected" in ctx:
        return str(ctx["expected"])
    names = {"float_parsing": "a number", "float_type": "a number", "int_parsing": "an integer",
             "int_type": "an integer", "bool_parsing": "true/false", "bool_type": "true/false",
             "string_type": "a string", "dict_type": "a mapping", "model_type": "a mapping",
             "list_type": "a list", "tuple_type": "a list"}
    if e["type"] in names:
        return names[e["type"]]
    msg = str(e["msg"])
    return msg[0].lower() + msg[1:].replace("Input should be ", "") if msg else e["type"]


def format_loc(loc: Loc) -> str:
    """``("steps", 1, "threshold")`` → ``steps[1].threshold``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _submodel(model: type[BaseModel] | None, loc: Loc) -> type[BaseModel] | None:
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        f = model.model_fields.get(part)
        if f is None:
            return None
        ann = f.annotation
        cands = [ann, *typing.get_args(ann)]
        model = next((c for c in cands if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return model


def describe_error(e: Any, model: type[BaseModel] | None, loc: Loc) -> str:
    """Turn one pydantic error into 'expected …, got …' with did-you-mean for unknown keys."""
    typ = e["type"]
    if typ == "extra_forbidden":
        parent = _submodel(model, loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        return f"unknown key{hint}" + (f" (allowed: {', '.join(allowed)})" if allowed and not close else "")
    if typ == "missing":
        return "required key is missing"
    if typ == "value_error":  # a validator's own sentence says what is wrong and what to do
        return str(e["msg"]).removeprefix("Value error, ")
    msg = e["msg"]
    msg = msg[0].lower() + msg[1:] if msg else msg
    msg = msg.replace("input should be", "expected")
    got = e.get("input")
    if isinstance(got, (dict, list)):
        return f"{msg}, got a {type(got).__name__}"
    return f"{msg}, got {got!r}"


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


# ------------------------------------------------------------------------------------------ JSON Schema

def _component_model(cls: type[Component], kind: str) -> type[BaseModel]:
    fields: dict[str, Any] = {"type": (Literal[cls.name], Field(description=cls.summary()))}
    if kind != "source":
        fields["id"] = (str | None, Field(None, description=StepSpec.model_fields["id"].description))
        fields["input"] = (str | None, Field(None, description=StepSpec.model_fields["input"].description))
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
