"""Training configs: a YAML file plus ``--set KEY=VALUE`` overrides (the pipeline spec's override rules)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from satcore.errors import SpecError, UsageError


def load_config(path: str | os.PathLike[str], sets: Iterable[str] = ()) -> dict[str, Any]:
    """Read a YAML config file and apply ``--set KEY=VALUE`` overrides (dotted keys, YAML values).

    Raises:
        UsageError: the file does not exist.
        SpecError: the file is not YAML or not a mapping, or an override is malformed.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such config file; give the training config (a YAML file) as CONFIG")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        what = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: not valid YAML ({what}); check the indentation and quoting there") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{p}: a training config is a mapping of settings (key: value), "
                        f"not a {type(data).__name__}")
    pairs = list(sets)
    if pairs:
        from satcore.spec.loader import apply_overrides, parse_overrides

        data = apply_overrides(data, parse_overrides(pairs))
    return dict(data)
