"""Offline fixtures: a tiny randomly initialised CycleGAN checkpoint."""

from __future__ import annotations

import pytest

TINY = {"base": 4, "n_res": 1, "se_reduction": 2, "disc_base": 4}


def write_tiny_checkpoint(path, seed: int = 0):
    """A tiny random CycleGAN (G, F, both discriminators) saved where the generators read it."""
    import torch
    from satcore_generative.cyclegan import CycleGanConfig, build_models, save_checkpoint

    torch.manual_seed(seed)
    cfg = CycleGanConfig(**TINY)
    save_checkpoint(path, cfg, build_models(cfg))
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """Path of a tiny random checkpoint (session-wide)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
