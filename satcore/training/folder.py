"""The names in a training folder and how its loss log is read (shared by the run and its report)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# low, because the registry reads them too (`model: <folder>`)
from satcore.registry_folders import CHECKPOINTS as CHECKPOINTS
from satcore.registry_folders import TRAIN_JSON as TRAIN_JSON

LOSSES = "losses.jsonl"
REPORT = "report.html"
#: what a training folder may hold; ``--overwrite`` removes these and refuses anything else
OUTPUT_NAMES = frozenset({TRAIN_JSON, LOSSES, REPORT, CHECKPOINTS})
#: keys of a ``losses.jsonl`` line that are not losses
RESERVED_KEYS = ("step", "epoch", "time")
FORMAT = 1


def read_losses(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines of ``losses.jsonl`` that parse; a line cut short by a killed run is skipped."""
    path = Path(directory) / LOSSES
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            out.append(rec)
    return out
