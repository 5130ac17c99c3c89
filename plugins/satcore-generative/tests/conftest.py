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
