"""A training folder read as a model: ``train.json``'s ``model`` section and the checkpoint it names.

This sits low (beside :mod:`satcore.registry`, which resolves ``model: <folder>`` with it) and imports no
training code: :mod:`satcore.training` writes these folders and re-exports the names below.

The folder describes itself in ``train.json``'s ``model`` section (filled by
``TrainingRun.set_model``): ``family`` (required), ``architecture``, ``checkpoint`` (relative to the folder;
default: the newest ``checkpoints/step-*``), ``licence``, and anything else the loading step needs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from satcore.errors import SpecError

#: The training folder's record (config, status, model section).
TRAIN_JSON = "train.json"
#: The folder of checkpoints, ``step-<step>[.suffix]``.
CHECKPOINTS = "checkpoints"
#: A checkpoint's file name: ``step-`` and the step it was saved after.
CHECKPOINT_NAME = re.compile(r"^step-(\d+)")
#: The licence recorded for weights a training folder holds when the trainer names none.
DEFAULT_LICENCE = "trained locally (see train.json)"

__all__ = ["CHECKPOINTS", "CHECKPOINT_NAME", "DEFAULT_LICENCE", "TRAIN_JSON", "checkpoint_files",
           "is_training_folder", "training_folder_model"]


def is_training_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with a ``train.json`` (finished or not)."""
    return (Path(os.path.expanduser(str(path))) / TRAIN_JSON).is_file()


def checkpoint_files(folder: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``folder/checkpoints/``, oldest first.

    Temporary files of interrupted writes (names starting with ``.``) are not checkpoints.
    """
    d = Path(folder) / CHECKPOINTS
    found = []
    for p in d.iterdir() if d.is_dir() else []:
        m = CHECKPOINT_NAME.match(p.name)
        if m and not p.name.startswith("."):
            found.append((int(m.group(1)), p))
    return sorted(found)


def training_folder_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What the registry needs to load the model a training folder holds.

    Returns:
        ``{"family", "architecture", "path" (absolute checkpoint path), "licence", "training_folder"
        (absolute), "trainer", "step", "config", **other model fields}``: a ``models:`` entry plus the
        training config.

    Raises:
        SpecError: not a training folder, not complete, no ``model.family``, or no checkpoint (exit 2); the
            message names the folder and the fix.
    """
    folder = Path(os.path.expanduser(str(path))).resolve()
    tj = folder / TRAIN_JSON
    if not tj.is_file():
        raise SpecError(f"{folder} is not a training folder (no {TRAIN_JSON}); give the --output folder of a "
                        "`satcore train` run, or a model alias")
    try:
        info = json.loads(tj.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SpecError(f"{tj} is not valid JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise SpecError(f"{tj} is not a training record (expected a JSON object)")
    name = info.get("name", "<name>")
    if info.get("status") != "complete":
        raise SpecError(f"the training in {folder} is not complete (status {info.get('status')!r}); finish "
                        f"it with `satcore train {name} CONFIG.yaml --output {folder} --resume`")
    model = dict(info.get("model") or {})
    if not model.get("family"):
        raise SpecError(f"{tj}: `model.family` is missing, so no step knows how to load this model; the "
                        f"trainer {name!r} must call run.set_model(family=...) (see docs/training.md)")
    rel = model.pop("checkpoint", None)
    if rel:
        ckpt = folder / rel
        if not ckpt.exists():
            raise SpecError(f"{tj}: model.checkpoint {rel!r} does not exist in {folder}")
    else:
        found = checkpoint_files(folder)
        if not found:
            raise SpecError(f"{folder} holds no checkpoint (no {CHECKPOINTS}/step-*); the trainer {name!r} "
                            "must save one with run.save_checkpoint()")
        ckpt = found[-1][1]
    return {**model, "family": model["family"], "architecture": model.get("architecture"), "path": str(ckpt),
            "licence": model.get("licence") or DEFAULT_LICENCE, "training_folder": str(folder),
            "trainer": name, "step": info.get("last_step"), "config": info.get("config") or {}}
