"""Fixtures: a synthetic probability extractor (no CLIP), synthetic folder pairs, independent references."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore import hookimpl
from satcore.components import Batch, Extractor

REPO = Path(__file__).resolve().parents[3]
LEVIR = REPO / "examples" / "data" / "levir-cd"


def probs_of(array: np.ndarray) -> np.ndarray:
    """Four pseudo-class probabilities of one image from its statistics (band means and overall spread)."""
    a = array.astype(np.float64)
    logits = np.concatenate([a.mean(axis=(1, 2))[:3], [a.std()]]) / 40.0
    e = np.exp(logits - logits.max())
    return np.asarray(e / e.sum())


class SyntheticProbsExtractor(Extractor):
    """Per-image class probabilities from image statistics (a stand-in for CLIP zero-shot)."""

    name = "synthetic-probs"
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    produces: ClassVar[tuple[str, ...]] = ("probabilities",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"probabilities": np.stack([probs_of(r.array) for r in item.images])} for item in batch]


class SyntheticFeaturesExtractor(Extractor):
    """A per-item feature vector: the after-minus-before band means and spreads."""

    name = "synthetic-features"
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    produces: ClassVar[tuple[str, ...]] = ("features",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"features": features_of(item.images[0].array, item.images[1].array)} for item in batch]


def features_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.concatenate([b.mean(axis=(1, 2)) - a.mean(axis=(1, 2)), [b.std() - a.std()]])


def synthetic_plugin() -> types.ModuleType:
    module = types.ModuleType("satcore_tabular_tests_synthetic")

    @hookimpl
    def satcore_register_extractors() -> list[type[Extractor]]:
        return [SyntheticProbsExtractor, SyntheticFeaturesExtractor]

    module.satcore_register_extractors = satcore_register_extractors  # type: ignore[attr-defined]
    return module


@pytest.fixture
def pm() -> Any:
    """Built-ins + satcore-tabular + the synthetic extractors (no entry points: independent of siblings)."""
    import satcore_tabular

    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True, entrypoints=False)
    pm.register_plugin(satcore_tabular, "tabular", "satcore-tabular", satcore_tabular.__version__)
    pm.register_plugin(synthetic_plugin(), "synthetic")
    return pm


def write_png(path: Path, array: np.ndarray) -> None:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array if array.ndim == 3 else array[None]
    with rasterio.open(
        path, "w", driver="PNG", height=arr.shape[1], width=arr.shape[2], count=arr.shape[0], dtype="uint8"
    ) as dst:
        dst.write(arr)


def read_png(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return np.asarray(ds.read())


def make_pairs(root: Path, tiles: int = 16, crops: int = 3, size: int = 16, seed: int = 0) -> Path:
    """LEVIR-style pairs ``<tile>_<row>_<col>.png``; about 40% of crops get a planted change."""
    rng = np.random.default_rng(seed)
    for t in range(tiles):
        for c in range(crops):
            stem = f"t{t:02d}_{c * size:04d}_0000"
            a = rng.integers(20, 140, (3, size, size)).astype(np.uint8)
            b = np.clip(a.astype(int) + rng.integers(-25, 26, a.shape), 0, 255).astype(np.uint8)
            mask = np.zeros((size, size), np.uint8)
            if rng.random() < 0.4:
                w = int(rng.integers(2, size // 2))
                r0, c0 = rng.integers(0, size - w, 2)
                b[:, r0 : r0 + w, c0 : c0 + w] = rng.integers(150, 256, 3)[:, None, None]
                mask[r0 : r0 + w, c0 : c0 + w] = 255
            write_png(root / "A" / f"{stem}.png", a)
            write_png(root / "B" / f"{stem}.png", b)
            write_png(root / "label" / f"{stem}.png", mask)
    return root


@pytest.fixture(scope="session")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("pairs"))


def reference_table(
    root: Path, ids: list[str], blocks: tuple[str, ...] = ("p1", "p2", "absdiff"), kind: str = "probs"
) -> tuple[np.ndarray, np.ndarray]:
    """Features and image labels read straight from the files (no satcore code involved)."""
    xs, ys = [], []
    for i in ids:
        a, b = read_png(root / "A" / f"{i}.png"), read_png(root / "B" / f"{i}.png")
        if kind == "probs":
            p1, p2 = probs_of(a), probs_of(b)
            parts = {"p1": p1, "p2": p2, "absdiff": np.abs(p1 - p2)}
            xs.append(np.concatenate([parts[k] for k in blocks]))
        else:
            xs.append(features_of(a, b))
        ys.append(int(read_png(root / "label" / f"{i}.png").any()))
    return np.vstack(xs), np.asarray(ys)


@pytest.fixture
def reference() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return reference_table


def spec_for(
    root: Path, out: Path, steps: list[dict[str, Any]], seed: int = 0, evaluate: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "version": 1,
        "seed": seed,
        "source": {"type": "folder-pairs", "root": str(root)},
        "steps": [{"id": "probs", "type": "synthetic-probs"}, *steps],
        "evaluate": evaluate
        if evaluate is not None
        else {"split": {"test": 0.3, "group_by": "tile"}, "bootstrap": 0},
        "output": {"dir": str(out), "maps": False, "report": False},
        "execution": {"batch_size": 8, "loader_workers": 0},
    }


@pytest.fixture
def make_spec() -> Callable[..., dict[str, Any]]:
    return spec_for
