"""``tiny-clip``: a small open_clip architecture for offline tests and benchmarks (random weights).

The one definition shared by the plugin's test fixtures (``tests/conftest.py``) and
``benchmarks/clip_throughput.py``. Register it with ``open_clip.add_model_config`` (a JSON file of
:data:`TINY_CFG` named ``tiny-clip.json``) or as a registry alias's inline ``model_cfg``.
"""

from __future__ import annotations

from typing import Any

from satcore_clip.loader import OPENAI_MEAN, OPENAI_STD

#: The architecture name the tests and benchmarks register :data:`TINY_CFG` under.
TINY_NAME = "tiny-clip"

#: open_clip model config: 64-pixel images, a two-layer ViT (16-pixel patches) and a two-layer text tower,
#: 64-dimensional embeddings; CLIP's tokenizer (77 tokens, 49408 words) so real prompts tokenise.
TINY_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

#: Its preprocessing (a registry alias's ``preprocess:``): OpenAI's normalisation at 64 pixels.
TINY_PRE: dict[str, Any] = {
    "size": 64,
    "interpolation": "bicubic",
    "mean": list(OPENAI_MEAN),
    "std": list(OPENAI_STD),
}
