"""satcore-vlm: vision-language captioners and prompt recognizers over transformers.

Importing this package (and listing plugins) never imports torch or transformers: the component modules
import them inside ``setup()`` only.
"""

from __future__ import annotations

from typing import Any

from satcore import hookimpl

__version__ = "0.1.0"


@hookimpl
def satcore_register_captioners() -> list[type[Any]]:
    """The generic image-text-to-text captioner."""
    from satcore_vlm.steps import VlmCaptioner

    return [VlmCaptioner]


@hookimpl
def satcore_register_recognizers() -> list[type[Any]]:
    """The prompt recognizer (the thesis's four prompts as presets) and labels from class probabilities."""
    from satcore_vlm.clip_labels import ClipLabelsRecognizer
    from satcore_vlm.steps import VlmPromptRecognizer

    return [VlmPromptRecognizer, ClipLabelsRecognizer]


@hookimpl
def satcore_register_detectors() -> list[type[Any]]:
    """Change classified from a pair's two captions (TF-IDF + classifiers, or a fine-tuned transformer)."""
    from satcore_vlm.caption_tfidf import CaptionTfidfDetector
    from satcore_vlm.caption_transformer import CaptionTransformerDetector

    return [CaptionTfidfDetector, CaptionTransformerDetector]
