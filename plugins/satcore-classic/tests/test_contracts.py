"""satcore's detector contract (satcore.testing) for each classic detector."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore_classic.detectors import CVADetector, ImageDiffDetector, IndexDiffDetector, PCAKMeansDetector

from satcore.data import Item, Raster
from satcore.testing import DetectorContract
from satcore.testing.data import make_change_items


class TestImageDiffContract(DetectorContract):
    component = ImageDiffDetector


class TestCVAContract(DetectorContract):
    component = CVADetector


class TestPCAKMeansContract(DetectorContract):
    component = PCAKMeansDetector


class TestIndexDiffContract(DetectorContract):
    component = IndexDiffDetector
    params: ClassVar[dict[str, Any]] = {"index": "ndvi"}

    def make_items(self) -> list[Item]:
        # the contract's pairs are 3-band RGB and NDVI needs nir: name their bands green, red, nir instead
        items = make_change_items(self.n_items, seed=0)
        for it in items:
            it.images = [Raster(r.array, band_names=("green", "red", "nir")) for r in it.images]
        return items
