"""Classic unsupervised change detectors (per-image statistics, no training, no weights)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from satcore.components import Batch, Detection, Detector, DetectorParams


class ClassicParams(DetectorParams):
    """Parameters shared by the classic detectors."""

    normalise: Literal["none", "zscore", "match"] = Field(
        "zscore", description="Per-image radiometric normalisation before comparing: `zscore` standardises each "
        "band of each date, `match` matches B's band means/stds to A's, `none` compares raw values.")
    smooth: float = Field(1.0, ge=0, description="Gaussian sigma (pixels) applied to the difference; 0 = none.")
    threshold: Literal["otsu"] | float = Field(
        "otsu", description="`otsu` (per image, on the change magnitude) or a fixed magnitude.")
    morphology: int = Field(1, ge=0, description="Radius of a binary opening then closing on the change mask "
                            "(removes speckle); 0 = none.")
    min_changed_fraction: float = Field(0.0, ge=0, le=1, description="Image-level label is 1 when more than this "
                                        "fraction of pixels changed.")


def _normalise(a: np.ndarray, b: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    if how == "none":
        return a, b
    ma, sa = a.mean(axis=(1, 2), keepdims=True), a.std(axis=(1, 2), keepdims=True) + 1e-6
    mb, sb = b.mean(axis=(1, 2), keepdims=True), b.std(axis=(1, 2), keepdims=True) + 1e-6
    if how == "zscore":
        return (a - ma) / sa, (b - mb) / sb
    return a, (b - mb) / sb * sa + ma


class _MagnitudeDetector(Detector):
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    params: ClassicParams

    def magnitude(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _detect(self, mag: np.ndarray) -> Detection:
        from skimage.filters import threshold_otsu

        p = self.params
        if p.threshold == "otsu":
            t = float(threshold_otsu(mag)) if np.ptp(mag) > 0 else float(mag.max())
        else:
            t = float(p.threshold)
        label = mag > t
        if p.morphology:
            from scipy.ndimage import binary_closing, binary_opening
            from skimage.morphology import disk

            fp = disk(p.morphology)
            label = binary_closing(binary_opening(label, fp), fp)
        # score comparable across images: 0.5 at the image's own threshold
        score = mag / (mag + t) if t > 0 else (mag > 0).astype(np.float32)
        frac = float(label.mean())
        return Detection(score=frac, label=int(frac > p.min_changed_fraction), score_map=score.astype(np.float32),
                         label_map=label, threshold=None, extra={"magnitude_threshold": t, "changed_fraction": frac})

    def process(self, batch: Batch) -> list[Detection]:
        out = []
        for item in batch:
            a, b = item.pair_arrays()
            a, b = _normalise(a, b, self.params.normalise)
            mag = self.magnitude(a, b)
            if self.params.smooth:
                from scipy.ndimage import gaussian_filter

                mag = gaussian_filter(mag, self.params.smooth)
            out.append(self._detect(mag))
        return out


class ImageDiffDetector(_MagnitudeDetector):
    """Absolute difference of the band means, thresholded per image with Otsu."""

    name = "image-diff"
    params_model = ClassicParams

    def magnitude(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.abs(b.mean(axis=0) - a.mean(axis=0))


class CVADetector(_MagnitudeDetector):
    """Change vector analysis: length of the per-pixel spectral change vector, thresholded with Otsu."""

    name = "cva"
    params_model = ClassicParams

    def magnitude(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((b - a) ** 2).sum(axis=0))
