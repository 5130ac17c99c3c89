"""Tiny random CycleGAN checkpoints for offline tests (this package's and users')."""

from __future__ import annotations

from pathlib import Path

#: Architecture of the tiny test model (a few thousand weights).
TINY: dict[str, int] = {"base": 4, "n_res": 1, "se_reduction": 2, "disc_base": 4}


def write_tiny_checkpoint(path: Path | str, seed: int = 0) -> Path:
    """Write a tiny randomly initialised CycleGAN (G, F and both discriminators) to ``path``.

    The file has the layout the generators and ``satcore train cyclegan`` use, so ``model: <path>`` works.
    """
    import torch

    from satcore_generative.cyclegan import CycleGanConfig, build_models, save_checkpoint

    torch.manual_seed(seed)
    cfg = CycleGanConfig(**TINY)
    save_checkpoint(path, cfg, build_models(cfg))
    return Path(path)
