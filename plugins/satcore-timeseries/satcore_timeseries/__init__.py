"""satcore-timeseries: features and VAR forecasts over location series (the thesis's experiment 1).

Importing this package (and listing plugins) never imports torch, statsmodels or transformers: each
component's module is imported by the hook, and model code only inside ``setup()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from satcore import hookimpl

if TYPE_CHECKING:
    import click

__version__ = "0.1.0"


@hookimpl
def satcore_register_extractors() -> list[type[Any]]:
    """The per-location feature extractors."""
    from satcore_timeseries.bands import BandValuesExtractor
    from satcore_timeseries.cloud import CloudProbabilityExtractor
    from satcore_timeseries.sam import SamPointExtractor
    from satcore_timeseries.segmentation import SegmentationProbsExtractor

    return [
        BandValuesExtractor,
        CloudProbabilityExtractor,
        SegmentationProbsExtractor,
        SamPointExtractor,
    ]


@hookimpl
def satcore_register_detectors() -> list[type[Any]]:
    """The forecast-based change detectors."""
    from satcore_timeseries.diff import SeriesDiffDetector
    from satcore_timeseries.var import VarForecastDetector

    return [
        VarForecastDetector,
        SeriesDiffDetector,
    ]


@hookimpl
def satcore_register_train_commands(train: click.Group) -> None:
    """Training commands of this plugin."""
    from satcore_timeseries.train_segmentation import segmentation

    train.add_command(segmentation)
