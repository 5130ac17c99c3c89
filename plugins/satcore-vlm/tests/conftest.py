"""Offline fixtures: tiny randomly initialised transformers models built from configs, saved to tmp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from satcore_vlm.testing import CORPUS
from satcore_vlm.testing import tiny_blip as tiny_blip_model


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Generated texts are cached under $SATCORE_CACHE: each test gets its own; the user's stays untouched."""
    monkeypatch.setenv("SATCORE_CACHE", str(tmp_path / "satcore-cache"))


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory) -> Path:
    """A tiny random BLIP captioner (32×32 images) saved with ``save_pretrained``."""
    return tiny_blip_model(tmp_path_factory.mktemp("models") / "tiny-blip")


@pytest.fixture
def scenes_manifest(tmp_path) -> Path:
    """Four RGB PNG scenes with class labels and reference captions in a manifest CSV."""
    from PIL import Image

    rows = ["item_id,a,labels,captions"]
    labels = ["parking", "forest", "river", "parking"]
    for i, lab in enumerate(labels):
        arr = np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"s{i}.png")
        rows.append(f"s{i},s{i}.png,{lab},a {lab} seen from above|{lab} near a road")
    path = tmp_path / "items.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="session")
def tiny_qwen2vl(tmp_path_factory) -> Path:
    """A tiny random Qwen2-VL-style chat model: byte-level BPE trained in memory, chat template built here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS + ["Describe the satellite image!"], trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    ft = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"})
    ids = {t: ft.convert_tokens_to_ids(t) for t in specials}
    # 4 merged image tokens per image, whatever its size
    image_proc = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 4)
    proc = Qwen2VLProcessor(image_processor=image_proc, tokenizer=ft, video_processor=Qwen2VLVideoProcessor(),
                            chat_template=CHAT_TEMPLATE)
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(ft), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 2, 4]},
                         bos_token_id=ft.pad_token_id,
                         eos_token_id=ft.eos_token_id, pad_token_id=ft.pad_token_id),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_chans=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(cfg).eval()
    d = tmp_path_factory.mktemp("models") / "tiny-qwen2vl"
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d
