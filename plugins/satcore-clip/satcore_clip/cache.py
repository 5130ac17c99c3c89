"""Embedding cache: one small ``.npy`` per (model, image content), so a second run never re-encodes an image.

Location: ``$SATCORE_CACHE/embeddings`` (default ``~/.cache/satcore/embeddings``), one folder per model key (a
hash of the weight file's sha256, architecture, preprocessing and dtype), files named by the sha256 of the RGB
uint8 pixels (shape included). Writes are atomic; a corrupt entry is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def cache_root() -> Path:
    """``$SATCORE_CACHE`` or ``~/.cache/satcore``."""
    return Path(os.environ.get("SATCORE_CACHE") or Path.home() / ".cache" / "satcore")


def model_key(**parts: Any) -> str:
    """A short stable hash of what determines an embedding besides the pixels."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def content_hash(rgb: np.ndarray) -> str:
    """Hash of the pixels and their shape."""
    h = hashlib.sha256(str(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:40]


class EmbeddingCache:
    """Get/put image embeddings for one model."""

    def __init__(self, key: str, root: Path | None = None) -> None:
        self.dir = (root or cache_root()) / "embeddings" / key
        self.hits = 0
        self.misses = 0

    def _path(self, h: str) -> Path:
        return self.dir / h[:2] / f"{h}.npy"

    def get(self, h: str) -> np.ndarray | None:
        """The stored embedding, or ``None``."""
        p = self._path(h)
        try:
            v = np.load(p, allow_pickle=False)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return v

    def put(self, h: str, emb: np.ndarray) -> None:
        """Store atomically (best effort: a read-only cache only costs speed)."""
        p = self._path(h)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, np.asarray(emb, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, p)
        except OSError:
            pass
