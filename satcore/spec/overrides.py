"""``${ENV}`` expansion and ``--set KEY=VALUE`` overrides."""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from satcore.errors import SpecError
from satcore.spec.yaml_lines import Loc, SpecLimitError, load_scalar

#: a list index in a ``--set`` path (ASCII digits: ``int`` would also take "٣"; short: no 5,000-digit int)
_INDEX = re.compile(r"-?[0-9]{1,18}")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
            out[k.strip()] = load_scalar(v) if v.strip() else ""
        except SpecLimitError as exc:  # within YAML's syntax, past satcore's bounds: no plain string meant
            raise SpecError(f"--set {p[:100]}: {exc.problem}") from None
        except yaml.YAMLError:  # not YAML: the text itself (`--set name=a: b`)
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
        shown = shown if len(shown) <= 80 else shown[:79] + "…"  # the message names it, on one line
        where[key] = f"--set {dotted[:120]}={shown}"
    return data, where


def _list_index(seq: list[Any], part: str, dotted: str) -> int:
    if _INDEX.fullmatch(part):
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

