"""``satcore train <name>``: training folders for plugin trainers.

A plugin adds a subcommand to the core ``train`` group (hook
:func:`~satcore.hookspecs.satcore_register_train_commands`) and trains with its own libraries (torch); the
core owns the folder: ``train.json``, ``losses.jsonl``, ``checkpoints/`` and ``report.html``, resume, the
progress bar, and the common command-line options (:func:`train_command`). A finished folder is a model:
``model: <folder>`` in a pipeline spec, or an alias with ``satcore models add ALIAS FOLDER``.

Importing this package is cheap (click only); the folder API, YAML and matplotlib load on first use.
See ``docs/training.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satcore.training.cli import train_command
    from satcore.training.config import load_config
    from satcore.training.models import (
        add_model_alias,
        is_training_folder,
        registry_entry,
        training_folder_model,
        user_registry_file,
    )
    from satcore.training.run import Checkpoint, TrainingRun

_WHERE = {
    "train_command": "satcore.training.cli",
    "add_model_alias": "satcore.training.models",
    "is_training_folder": "satcore.training.models",
    "registry_entry": "satcore.training.models",
    "training_folder_model": "satcore.training.models",
    "user_registry_file": "satcore.training.models",
    "Checkpoint": "satcore.training.run",
    "TrainingRun": "satcore.training.run",
    "load_config": "satcore.training.config",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'satcore.training' has no attribute {name!r}")


__all__ = ["Checkpoint", "TrainingRun", "add_model_alias", "is_training_folder", "load_config",
           "registry_entry", "train_command", "training_folder_model", "user_registry_file"]
