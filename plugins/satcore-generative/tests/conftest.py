"""Offline fixtures: a tiny randomly initialised CycleGAN checkpoint."""

from __future__ import annotations

import pytest
from satcore_generative.testing import write_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """Path of a tiny random checkpoint (session-wide)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """A tiny random Stable Diffusion pipeline folder (session-wide)."""
    from satcore_generative.testing import write_tiny_diffusers

    return write_tiny_diffusers(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory):
    """A tiny random BLIP captioner (satcore-vlm's test recipe), saved with ``save_pretrained``."""
    pytest.importorskip("satcore_vlm")
    from satcore_vlm.testing import tiny_blip as tiny_blip_model

    return tiny_blip_model(tmp_path_factory.mktemp("models") / "tiny-blip")
