"""Embedding cache: one small ``.npy`` per (model, image content), so a second run never re-encodes an image.

Location: ``$SATCORE_CACHE/embeddings`` (default ``~/.cache/satcore/embeddings``), one folder per model key (a
hash of the weight file's sha256, architecture, preprocessing and dtype), files named by the sha256 of the RGB
uint8 pixels (shape included); the class embeddings of a prompt list in ``text/``. Writes are atomic; a
corrupt entry is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def cache_root() -> Path:
    """``$SATCORE_CACHE`` or ``~/.cache/satcore`` (:func:`satcore.registry.cache_dir`)."""
    from satcore.registry import cache_dir

    return cache_dir()


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

    def describe(self, what: str, **details: Any) -> None:
        """Write ``about.json`` (once) so that ``satcore cache`` can say which model a folder belongs to."""
        about = self.dir / "about.json"
        if about.exists():
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = about.with_name(f".about.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"what": what, **details}, indent=2, default=str))
            os.replace(tmp, about)
        except OSError:
            pass

    def get_text(self, prompts: list[str]) -> np.ndarray | None:
        """The stored class embeddings for exactly these prompts (in this order), or ``None``."""
        try:
            return np.load(self._text_path(prompts), allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put_text(self, prompts: list[str], feats: np.ndarray) -> None:
        """Store class embeddings for these prompts (the tokenizer and text tower are skipped next time)."""
        self._save(self._text_path(prompts), feats)

    def _text_path(self, prompts: list[str]) -> Path:
        h = hashlib.sha256(json.dumps(prompts).encode()).hexdigest()[:40]
        return self.dir / "text" / f"{h}.npy"

    def put(self, h: str, emb: np.ndarray) -> None:
        """Store atomically (best effort: a read-only cache only costs speed)."""
        self._save(self._path(h), emb)

    @staticmethod
    def _save(p: Path, emb: np.ndarray) -> None:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, np.asarray(emb, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, p)
        except OSError:
            pass
