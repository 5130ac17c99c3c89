"""The core's check of a step's ``model:``: a known alias or a path, and the remote-code permission.

Every step with a ``model:`` param gets it, so plugins need not each check their aliases. An alias whose
registry entry says ``needs: [trust_remote_code]`` runs Python code from the model's own repository when it
loads; the core refuses it unless the step says ``allow_remote_code: true``.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcore.registry import NEEDS, Registry, get_registry, looks_like_path, satcore_home

if TYPE_CHECKING:
    from satcore.plugins import SatcorePluginManager
    from satcore.spec.describe import _Problems
    from satcore.spec.yaml_lines import Loc


def _registry_for(pm: SatcorePluginManager) -> Callable[[], Registry]:
    """The registry with ``pm``'s plugin aliases (the cached one when ``pm`` is the process's manager).

    Returned as a function, read on first use: specs without a ``model:`` never read registry files.
    """
    from satcore import plugins

    if pm is plugins._DEFAULT:
        return get_registry
    return functools.cache(lambda: Registry.load(plugin_aliases=plugins.plugin_model_aliases(pm)))


def model_problem(value: Any, allow_remote_code: bool, registry: Registry | Callable[[], Registry],
                  base_dir: Path) -> str | None:
    """What is wrong with a step's ``model:`` value (``None``: nothing, or not a string).

    An alias must be known (did-you-mean otherwise); a value that looks like a path, or names an existing
    file or folder next to the spec, is a path and is left to the component. An alias that needs
    ``trust_remote_code`` needs the step's ``allow_remote_code: true``.
    """
    if not isinstance(value, str) or not value:
        return None
    if not isinstance(registry, Registry):
        registry = registry()
    entry = registry.models.get(value)
    if entry is None:
        if looks_like_path(value) or _exists(base_dir / os.path.expanduser(value)):
            return None
        close = difflib.get_close_matches(value[:200], list(registry.models), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        shown = repr(value) if len(value) <= 80 else repr(value[:80]) + "…"
        return (f"unknown model alias {shown}{hint} (`satcore models` lists them); add your own in "
                f"{satcore_home() / 'registry.yaml'}, or give a checkpoint path")
    needs = entry.get("needs") or []
    if "trust_remote_code" in needs and not allow_remote_code:
        repo = entry.get("hf_repo") or entry.get("url") or value
        return (f"model alias {value!r} needs trust_remote_code: loading it {NEEDS['trust_remote_code']}. "
                f"If you trust {repo}, add this line to the step: `allow_remote_code: true`")
    return None


def _exists(path: Path) -> bool:
    """``path.exists()``, and ``False`` for a name the OS refuses (too long: not a file next to the spec)."""
    try:
        return path.exists()
    except OSError:
        return False


def check_model_alias(value: Any, allow_remote_code: bool, registry: Registry | Callable[[], Registry],
                      base_dir: Path,
                      problems: _Problems, loc: Loc) -> None:
    """Add :func:`model_problem`'s sentence, if any, at ``loc``."""
    msg = model_problem(value, allow_remote_code, registry, base_dir)
    if msg:
        problems.add(loc, msg)
