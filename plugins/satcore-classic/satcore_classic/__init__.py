"""satcore-classic: unsupervised change detection without weights (differencing, CVA, PCA-kmeans, indices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from satcore import hookimpl

if TYPE_CHECKING:
    from satcore.components import Detector

__version__ = "0.1.0"


@hookimpl
def satcore_register_detectors() -> list[type[Detector]]:
    """The classic detectors: ``image-diff``, ``cva``, ``pca-kmeans`` and ``index-diff``."""
    # imported here so that listing plugins stays cheap (scipy/scikit-image/scikit-learn load in setup())
    from satcore_classic.detectors import CVADetector, ImageDiffDetector, IndexDiffDetector, PCAKMeansDetector

    return [ImageDiffDetector, CVADetector, PCAKMeansDetector, IndexDiffDetector]
