"""A finished training folder as a model: ``model: <folder>`` and ``satcore models add ALIAS FOLDER``.

The folder describes itself in ``train.json``'s ``model`` section, which the trainer fills with
:meth:`~satcore.training.TrainingRun.set_model`:

- ``family`` (required): the model family the loading step understands (the registry's ``family``);
- ``architecture``: the architecture within the family;
- ``checkpoint``: the checkpoint to use, relative to the folder (default: the newest in ``checkpoints/``);
- ``licence``: the licence of the weights (default ``trained locally (see train.json)``);
- anything else the loading step needs (``bands``, ``input_size``, ...), passed through.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from satcore.errors import SpecError, UsageError

# the reading lives low, so the registry resolves `model: <folder>` without importing training code
from satcore.registry_folders import DEFAULT_LICENCE, is_training_folder, training_folder_model

__all__ = ["DEFAULT_LICENCE", "add_model_alias", "is_training_folder", "registry_entry",
           "training_folder_model", "user_registry_file"]

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def registry_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``models:`` entry ``satcore models add`` writes: :func:`training_folder_model` without the config.

    The config stays in the folder's ``train.json`` (``training_folder`` points there); ``path:`` is the
    checkpoint, so the registry's explicit-path rule finds the weights.
    """
    entry = training_folder_model(path)
    entry.pop("config", None)
    return {k: v for k, v in entry.items() if v is not None}


def user_registry_file() -> Path:
    """The file ``models add`` writes: ``$SATCORE_REGISTRY``, else ``$SATCORE_HOME/registry.yaml``."""
    from satcore.registry import satcore_home

    env = os.environ.get("SATCORE_REGISTRY")
    return Path(env) if env else satcore_home() / "registry.yaml"


def add_model_alias(alias: str, folder: str | os.PathLike[str], *, force: bool = False,
                    registry_file: str | os.PathLike[str] | None = None) -> Path:
    """Register a finished training folder as model alias ``alias`` in the user's registry file.

    The file is read, changed and written back atomically, with the previous version kept as
    ``registry.yaml.bak``; comments and other aliases are kept (the new entry is inserted as text under
    ``models:``; only when that cannot be done safely is the file re-dumped).

    Args:
        alias: the new alias (letters, digits, ``.``, ``_``, ``-``).
        folder: the training folder.
        force: replace an alias of that name (in this file, or shadow one defined elsewhere).
        registry_file: the file to write (default :func:`user_registry_file`).

    Returns:
        The registry file written.

    Raises:
        UsageError: a malformed alias, or an existing alias without ``force`` (exit 2).
        SpecError: the folder is not a finished training folder, or the file is not a registry.
    """
    import yaml

    from satcore.io import write_text
    from satcore.registry import get_registry

    if not _ALIAS.match(alias):
        raise UsageError(f"alias {alias!r}: use letters, digits, '.', '_' and '-' (e.g. my-cyclegan)")
    entry = registry_entry(folder)
    target = Path(registry_file) if registry_file is not None else user_registry_file()
    text = target.read_text(encoding="utf-8") if target.is_file() else ""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{target}: not valid YAML ({exc}); fix it before adding an alias") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models") or {}, dict):
        raise SpecError(f"{target}: expected a mapping with a `models:` mapping of aliases")
    if not force:
        if alias in (data.get("models") or {}):
            raise UsageError(f"alias {alias!r} already exists in {target}; add --force to replace it")
        reg = get_registry(refresh=True)
        if alias in reg.models:
            raise UsageError(f"alias {alias!r} is already defined ({reg.origins.get(alias, '?')}); choose "
                             "another name, or add --force to shadow it in your registry")
    models = {k: v for k, v in (data.get("models") or {}).items() if k != alias}
    want = {**data, "models": {**models, alias: entry}}
    new = _insert_alias(text, alias, entry)
    if new is None or _safe_load(new) != want:
        new = yaml.safe_dump(want, sort_keys=False, allow_unicode=True)
    if target.is_file():
        shutil.copy2(target, target.with_name(target.name + ".bak"))
    write_text(target, new)
    get_registry(refresh=True)  # this process's cached registry sees the new alias too
    return target


def _safe_load(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None


def _insert_alias(text: str, alias: str, entry: dict[str, Any]) -> str | None:
    """``text`` with ``alias: entry`` as the last item of the block-style top-level ``models:``.

    An existing ``alias:`` block is removed first. ``None`` when ``models:`` is not a plain block mapping
    (flow style, anchors): the caller then re-dumps the whole file.
    """
    import yaml

    body = yaml.safe_dump({alias: entry}, sort_keys=False, allow_unicode=True).splitlines()
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^models:\s*(#.*)?$", ln)), None)
    if start is None:
        if re.search(r"^models:", text, re.M):
            return None  # `models: {}` or flow style
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + "models:\n" + "".join(f"  {ln}\n" for ln in body)
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if lines[i] and not lines[i][0].isspace() and not lines[i].startswith("#"):
            end = i
            break
    block = lines[start + 1:end]
    indents = [len(ln) - len(ln.lstrip()) for ln in block if ln.strip() and not ln.lstrip().startswith("#")]
    ind = " " * (min(indents) if indents else 2)
    # drop an existing entry of that alias (its key line and the deeper lines under it)
    kept: list[str] = []
    skipping = False
    for ln in block:
        depth = len(ln) - len(ln.lstrip())
        if re.match(rf"^{re.escape(ind)}{re.escape(alias)}\s*:", ln) and depth == len(ind):
            skipping = True
            continue
        if skipping and (not ln.strip() or depth > len(ind)):
            continue
        skipping = False
        kept.append(ln)
    after: list[str] = []  # blank lines and unindented comments below the last alias stay below the new one
    while kept and (not kept[-1].strip() or kept[-1].startswith("#")):
        after.insert(0, kept.pop())
    new_block = kept + [ind + ln for ln in body] + after
    return "\n".join(lines[:start + 1] + new_block + lines[end:]) + "\n"
