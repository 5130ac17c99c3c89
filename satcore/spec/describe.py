"""Turning pydantic's validation errors into one sentence per problem, located at file:line."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from satcore.spec.yaml_lines import Loc, format_loc


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


def _short(value: Any, n: int = 80) -> str:
    """``repr(value)`` cut to ``n`` characters, so a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= n else text[:n - 1] + "…"


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
    shown = f"a {type(got).__name__}" if isinstance(got, (dict, list)) else _short(got)
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
             "list_type": "a list", "tuple_type": "a list", "finite_number": "a finite number"}
    if e["type"] in names:
        return names[e["type"]]
    msg = str(e["msg"])
    return msg[0].lower() + msg[1:].replace("Input should be ", "") if msg else e["type"]


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
    return f"{msg}, got {_short(got)}"

