"""Offline fixtures: a tiny randomly initialised open_clip model registered under temporary aliases."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from satcore_clip.testing import TINY_CFG, TINY_NAME, TINY_PRE

REPO = Path(__file__).resolve().parents[3]
LEVIR = REPO / "examples" / "data" / "levir-cd"


def tiny_model(seed: int):
    """A tiny open_clip model with weights drawn from ``seed``."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    return open_clip.create_model(TINY_NAME, pretrained=None).eval()


def tiny_entry(**extra):
    return {
        "family": "open_clip",
        "architecture": TINY_NAME,
        "model_cfg": TINY_CFG,
        "load": {"strict": True},
        "preprocess": TINY_PRE,
        "licence": "test only",
        **extra,
    }


@pytest.fixture(scope="session")
def tiny_cfg_file(tmp_path_factory):
    import open_clip

    path = tmp_path_factory.mktemp("cfg") / f"{TINY_NAME}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(str(path))
    return path


@pytest.fixture
def tiny_env(tmp_path, monkeypatch, tiny_cfg_file):
    """Two tiny checkpoints (aliases tiny-a, tiny-b) under a temporary $SATCORE_MODELS and user registry."""
    import torch

    from satcore.registry import get_registry

    models = tmp_path / "models"
    for alias, seed in (("tiny-a", 1), ("tiny-b", 2)):
        (models / alias).mkdir(parents=True)
        torch.save(tiny_model(seed).state_dict(), models / alias / "model.pt")
    reg = tmp_path / "user-registry.yaml"
    import yaml

    reg.write_text(yaml.safe_dump({"models": {"tiny-a": tiny_entry(), "tiny-b": tiny_entry()}}))
    monkeypatch.setenv("SATCORE_MODELS", str(models))
    monkeypatch.setenv("SATCORE_REGISTRY", str(reg))
    monkeypatch.setenv("SATCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SATCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_registry(refresh=True)
    yield {"models": models, "registry": reg, "cache": tmp_path / "cache", "tmp": tmp_path}
    monkeypatch.undo()
    get_registry(refresh=True)


@pytest.fixture
def levir_dir() -> Path:
    return LEVIR


def spec(tmp_path: Path, model: str = "tiny-a", out: str = "run", **probs) -> dict:
    """The levir zero-shot pipeline on the bundled sample with a tiny model."""
    return {
        "version": 1,
        "name": "tiny-clip",
        "seed": 0,
        "source": {"type": "folder-pairs", "root": str(LEVIR)},
        "steps": [
            {"id": "probs", "type": "clip-zeroshot", "model": model, **probs},
            {"id": "change", "type": "probability-delta", "input": "probs", "threshold": {"optimise": "f1"}},
        ],
        "evaluate": {"split": {"test": 0.3, "group_by": "tile"}, "bootstrap": 20},
        "output": {"dir": str(tmp_path / out), "maps": False, "report": True},
        "execution": {"batch_size": 4, "device": "cpu"},
    }


@pytest.fixture
def make_spec():
    return spec


@pytest.fixture
def make_extractor(tiny_env):
    """A set-up clip-zeroshot extractor on the CPU (tiny-a unless told)."""
    from satcore_clip.extractor import ClipZeroShotExtractor, ClipZeroShotParams

    from satcore.components import RunContext

    made = []

    def make(**params):
        params.setdefault("model", "tiny-a")
        ext = ClipZeroShotExtractor(
            ClipZeroShotParams(**params), RunContext(device="cpu", batch_size=4), "probs"
        )
        ext.setup()
        made.append(ext)
        return ext

    yield make
    for ext in made:
        ext.teardown()  # gives torch its thread count back


@pytest.fixture
def levir_items():
    """The readable LEVIR-CD sample pairs as satcore Items."""
    from satcore.builtin.sources import FolderPairsParams, FolderPairsSource

    src = FolderPairsSource(FolderPairsParams(root=str(LEVIR)))
    out = []
    for ref in src.list_items():
        with contextlib.suppress(Exception):
            out.append(src.load(ref))
    return out


@pytest.fixture
def make_entry(tiny_cfg_file):
    return tiny_entry


@pytest.fixture
def make_tiny(tiny_cfg_file):
    return tiny_model
