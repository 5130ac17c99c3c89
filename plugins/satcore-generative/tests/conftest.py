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
    import torch
    from satcore_vlm.testing import wordpiece_tokenizer
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    ft = wordpiece_tokenizer()
    cfg = BlipConfig(
        text_config={"vocab_size": len(ft), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 64,
                     "bos_token_id": ft.cls_token_id,
                     "pad_token_id": ft.pad_token_id, "sep_token_id": ft.sep_token_id,
                     "eos_token_id": ft.sep_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=32)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(cfg).eval()
    proc = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=ft)
    d = tmp_path_factory.mktemp("models") / "tiny-blip"
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d
