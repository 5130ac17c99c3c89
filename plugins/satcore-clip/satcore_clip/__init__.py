"""satcore-clip: CLIP zero-shot probabilities (``clip-zeroshot``) and the ``probability-delta`` detector.

Importing this package (and listing plugins) never imports torch or open_clip: the component modules import
them inside ``setup()`` / ``process()`` only.
"""

from __future__ import annotations

from typing import Any

from satcore import hookimpl

__version__ = "0.1.0"


@hookimpl
def satcore_register_extractors() -> list[type[Any]]:
    """The CLIP zero-shot extractor."""
    from satcore_clip.extractor import ClipZeroShotExtractor

    return [ClipZeroShotExtractor]


@hookimpl
def satcore_register_detectors() -> list[type[Any]]:
    """The probability-delta detector (Δ = Σ|p1 − p2| with an optimised threshold)."""
    from satcore_clip.delta import ProbabilityDeltaDetector

    return [ProbabilityDeltaDetector]
