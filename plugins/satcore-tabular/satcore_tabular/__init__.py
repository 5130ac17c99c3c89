"""satcore-tabular: tree-model change detectors over upstream probabilities or feature vectors."""

from __future__ import annotations

from typing import Any

from satcore import hookimpl

__version__ = "0.1.0"


@hookimpl
def satcore_register_detectors() -> list[type[Any]]:
    """The tree detectors: decision-tree, random-forest, gradient-boosting, xgboost."""
    from satcore_tabular.detectors import DETECTORS

    return list(DETECTORS)
