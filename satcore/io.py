"""Writing files atomically: the one helper for the run folder, fitted state, caches and plugins.

A reader (``--resume``, ``satcore report``, a second process) sees either the old file or the new one, never
half of one: the data goes to a hidden temporary file beside the target (``.<name>.<pid>.tmp``) and is then
renamed over it, which POSIX and Windows make atomic within one folder. A run killed mid-write leaves only
the temporary file, which the engine recognises as its own and removes.

Public API for plugins (``from satcore.io import write_json``); part of the documented plugin toolkit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "is_temp_name", "json_ready", "write_bytes", "write_json", "write_text"]


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def is_temp_name(name: str, targets: Callable[[str], bool] | None = None) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_path` (for a target accepted by ``targets``).

    Both ``.<name>.<pid>.tmp`` and the older ``.<name>.tmp`` are recognised.
    """
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    inner = name[1:-4]
    head, _, pid = inner.rpartition(".")
    target = head if pid.isdigit() and head else inner
    return targets(target) if targets is not None else True


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write to; renamed onto ``path`` when the block ends without an exception.

    For writers that want a file name (``DataFrame.to_parquet``, ``rasterio.open``, ``torch.save``)::

        with atomic_path(run_dir / "table.parquet") as tmp:
            df.to_parquet(tmp)

    The parent folder is created if needed. On an exception the temporary file is removed and ``path`` is
    left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_for(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_ready(x: Any) -> Any:
    """``x`` with numpy scalars and arrays as Python values, paths and dates as strings, NaN/inf as ``None``.

    JSON has no NaN: a metric that cannot be computed is ``null`` (with a ``<name>_reason`` beside it, written
    by whoever computed it), never a non-standard ``NaN`` token that strict readers reject.
    """
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if isinstance(x, (Path, datetime, date)):
        return str(x) if isinstance(x, Path) else x.isoformat()
    tolist = getattr(x, "tolist", None)  # numpy scalars and arrays, without importing numpy here
    if callable(tolist):
        return json_ready(tolist())
    raise TypeError(f"cannot write a {type(x).__name__} as JSON")


def write_json(path: str | os.PathLike[str], data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`json_ready` for what is converted)."""
    text = json.dumps(json_ready(data), indent=indent, allow_nan=False)
    return write_text(path, text + "\n")
