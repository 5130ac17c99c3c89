"""The run folder: create it, refuse one that holds something else, clear it for ``--overwrite``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from satcore.errors import ResumeError, UsageError
from satcore.io import is_temp_name

#: what a run writes at the top of its folder; ``--overwrite`` removes only these
OUTPUT_NAMES = frozenset({"results.parquet", "metrics.json", "errors.jsonl", "manifest.json", "run.log",
                          "report.html", "maps", "parts", "fitted", "generated", "artifacts",
                          "report_files"})


def is_our_temp(name: str) -> bool:
    """``.<name>.<pid>.tmp`` (or the older ``.<name>.tmp``): an atomic write of ours left by a killed run."""
    return is_temp_name(name, OUTPUT_NAMES.__contains__)


def has_maps(out: Path) -> bool:
    """Whether the run wrote at least one map."""
    maps = out / "maps"
    return maps.is_dir() and any(maps.iterdir())


def _run_without_items(out: Path, entries: list[Path]) -> str | None:
    """Why ``out`` holds only what a run that processed no item left (``None`` if it holds more).

    A run that stops in set-up or fitting (missing weights, no labelled items) leaves ``manifest.json``
    (status ``stopped``), ``run.log`` and perhaps empty output folders: nothing a rerun would lose. Results
    (``parts/``, ``results.parquet``, maps, ``generated/``, ``artifacts/``), fitted state (``--resume``
    reuses it, a plain run would fit again), a run still going (status ``running``) or any file satcore did
    not write keep the folder refused.
    """
    folders = {"fitted", "parts", "maps", "generated", "artifacts", "report_files"}  # harmless while empty
    for p in entries:
        if is_our_temp(p.name) or p.name in ("manifest.json", "run.log"):
            continue
        if p.name not in folders or not p.is_dir() or any(p.iterdir()):
            return None
    try:
        man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(man, dict) or man.get("status") != "stopped":
        return None
    items = man.get("items")
    if isinstance(items, dict) and (items.get("ok") or items.get("failed") or items.get("total")):
        return None
    why = man.get("error")
    first = str(why).splitlines()[0] if why else ""
    return f"status {man['status']!r}" + (f": {first}" if first else "")


def prepare_output(out: Path, resume: bool, overwrite: bool, spec_hash: str) -> str | None:
    """Create the folder; refuse a non-empty one unless resuming (same spec) or overwriting (ours only).

    A folder holding only what a run that processed no item left (it stopped in set-up) is reused without
    either flag: its files are removed and the returned note says so, for the run's log.
    """
    if resume and overwrite:
        raise UsageError("choose one of --resume and --overwrite")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output.dir {out} exists and is not a folder")
    entries = list(out.iterdir()) if out.exists() else []
    if entries and resume:
        man = out / "manifest.json"
        if not man.exists():
            raise ResumeError(f"{out} has no manifest.json, so it is not a satcore run to resume; use "
                              "--overwrite or another output.dir")
        old = json.loads(man.read_text()).get("spec_hash")
        if old != spec_hash:
            raise ResumeError(f"the spec changed since the run in {out} began "
                              f"(spec hash {old} → {spec_hash}); "
                              "resuming would mix results of two specs. Use --overwrite to start again, "
                              "or set another output.dir (--set output.dir=...)")
        return None
    note = None
    if entries and not resume:
        if not overwrite:
            earlier = _run_without_items(out, entries)
            if earlier is None:
                raise UsageError(f"output folder {out} is not empty; add --resume to continue that run or "
                                 "--overwrite to replace it")
            note = (f"reusing output folder {out}: it held only an earlier run that processed no items "
                    f"({earlier})")
        foreign = [p.name for p in entries if p.name not in OUTPUT_NAMES and not is_our_temp(p.name)]
        if foreign:
            raise UsageError(f"--overwrite refused: {out} holds files satcore did not write "
                             f"({', '.join(sorted(foreign)[:5])}); choose an empty output.dir")
        for p in entries:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return note
