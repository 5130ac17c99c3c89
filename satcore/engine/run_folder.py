"""The run folder: lock it, create it, refuse one that holds something else, clear it for ``--overwrite``."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from satcore.errors import ResumeError, RunStopped, UsageError
from satcore.io import is_temp_name

#: what a run writes at the top of its folder; ``--overwrite`` removes only these
OUTPUT_NAMES = frozenset({"results.parquet", "metrics.json", "errors.jsonl", "manifest.json", "run.log",
                          "report.html", "maps", "parts", "fitted", "generated", "artifacts",
                          "report_files", "mosaic"})


#: The lock file a run holds for its whole length (never listed as output, never removed by ``--overwrite``
#: while held: the run holding it removes it when it ends).
LOCK_NAME = ".satcore.lock"


class RunFolderBusy(UsageError):
    """Another satcore process holds the run folder (exit 2)."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"process {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not written its name yet)"


@contextmanager
def hold_run_folder(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (``<out>/.satcore.lock``) for the block; create ``out`` if needed.

    A second run on the same folder (plain, ``--resume`` or ``--overwrite``) fails at once with
    :class:`RunFolderBusy` naming the holder (pid, host, start time) instead of overwriting parts of a run
    that is going or deleting it. The lock is ``fcntl.flock`` (released by the OS when the holder dies, even
    by SIGKILL, so a stale file never blocks a rerun); where fcntl is missing (Windows) ``filelock`` is used.

    Raises:
        UsageError: ``out`` exists and is not a folder.
        RunFolderBusy: another process holds the folder.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"output.dir {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield from _hold_with_filelock(path)
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunFolderBusy(f"output folder {out} is in use by {_holder(path)}; wait for that run to "
                                "end (or stop it), or choose another output.dir") from None
        try:  # the holder may have removed the file between our open and lock: lock the one in place
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # while still held, so no one locks a file that is going away
        os.close(fd)


def _hold_with_filelock(path: Path) -> Iterator[None]:  # pragma: no cover - Windows
    try:
        from filelock import FileLock, Timeout
    except ImportError:  # neither fcntl nor filelock: run unlocked rather than not at all
        yield
        return
    lock = FileLock(str(path) + ".lck", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunFolderBusy(f"output folder {path.parent} is in use by another satcore run; wait for it to "
                            "end, or choose another output.dir") from None
    try:
        yield
    finally:
        lock.release()


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
    # harmless while empty
    folders = {"fitted", "parts", "maps", "generated", "artifacts", "report_files", "mosaic"}
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
    locks = (LOCK_NAME, LOCK_NAME + ".lck")
    entries = [p for p in out.iterdir() if p.name not in locks] if out.exists() else []
    if entries and resume:
        man = out / "manifest.json"
        if not man.exists():
            raise ResumeError(f"{out} has no manifest.json, so it is not a satcore run to resume; use "
                              "--overwrite or another output.dir")
        try:
            old = json.loads(man.read_text(encoding="utf-8")).get("spec_hash")
        except (OSError, ValueError, AttributeError) as exc:
            raise RunStopped(f"{man} is unreadable or corrupt ({type(exc).__name__}: {exc}); the run cannot "
                             "be resumed: use --overwrite to start again") from None
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
