"""satcore-classic: unsupervised change detection that needs no weights."""

from __future__ import annotations

from typing import Any

from satcore import hookimpl

__version__ = "0.1.0"


@hookimpl
def satcore_register_detectors() -> list[type[Any]]:
    """The classic detectors."""
    from satcore_classic.detectors import CVADetector, ImageDiffDetector

    return [ImageDiffDetector, CVADetector]
