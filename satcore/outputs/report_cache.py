"""The report's section cache (``report_files/cache/``): ``satcore report`` rebuilds only what changed.

A section's HTML is kept with the size and modification time of every file it was built from, the satcore
version and its settings; it is reused while all of them are the same, and rebuilt (saying which file
changed and how long it took) otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from satcore.io import write_json
from satcore.version import __version__

log = logging.getLogger("satcore")

#: the cache folder, inside the run folder's ``report_files/`` (a run output name)
CACHE_DIR = Path("report_files") / "cache"
#: bumped when a section's HTML changes for the same inputs
CACHE_FORMAT = 1


def _stamp(run_dir: Path, files: Iterable[Path]) -> dict[str, list[int]]:
    out = {}
    for p in sorted(set(files)):
        try:
            st = p.stat()
        except OSError:
            continue
        out[p.relative_to(run_dir).as_posix() if p.is_relative_to(run_dir) else str(p)] = [st.st_size,
                                                                                            st.st_mtime_ns]
    return out


class SectionCache:
    """Reuse or rebuild report sections; :attr:`notes` says what happened to each."""

    def __init__(self, run_dir: Path, rebuild: bool = False) -> None:
        self.run_dir = run_dir
        self.rebuild = rebuild
        #: section name → what makes it slow, added to its note
        self.slow_hint: dict[str, str] = {}
        #: one ``(note, seconds)`` per section: reused, or rebuilt (in how long, and why)
        self.notes: list[tuple[str, float]] = []

    def get(self, name: str, inputs: Iterable[Path], settings: Any, build: Callable[[], Any]) -> Any:
        """``build()``'s result for section ``name``, from the cache while ``inputs`` and ``settings`` hold.

        ``settings`` must be JSON-able; the result (HTML, or a list of ``(title, html)``) is stored as JSON.
        A cache that cannot be read or written is rebuilt or skipped, never an error.
        """
        stamp = _stamp(self.run_dir, inputs)
        key = {"format": CACHE_FORMAT, "satcore": __version__, "settings": settings}
        path = self.run_dir / CACHE_DIR / (hashlib.sha256(name.encode()).hexdigest()[:16] + ".json")
        old: dict[str, Any] = {}
        if path.exists() and not self.rebuild:
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                old = {}
        if old.get("key") == key and old.get("files") == stamp and "value" in old:
            self.notes.append((f"{name}: unchanged, reused", 0.0))
            return old["value"] if not isinstance(old["value"], list) else [tuple(x) for x in old["value"]]
        if self.rebuild:
            why = "--rebuild"
        elif not old:
            why = "first build"
        elif old.get("key") != key:
            why = "settings or satcore version changed"
        else:
            before = old.get("files") or {}
            changed = sorted(k for k in set(before) | set(stamp) if before.get(k) != stamp.get(k))
            why = "changed: " + ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3
                                                          else "")
        t0 = time.perf_counter()
        value = build()
        took = time.perf_counter() - t0
        slow = f"; {self.slow_hint[name]}" if name in self.slow_hint else ""
        self.notes.append((f"{name}: rebuilt in {took:.1f} s ({why}{slow})", took))
        try:
            write_json(path, {"key": key, "files": stamp, "value": value})
        except (OSError, TypeError) as exc:  # a read-only run folder still gets its report on stdout
            log.warning("report cache not written (%s): %s", path, exc)
        return value
