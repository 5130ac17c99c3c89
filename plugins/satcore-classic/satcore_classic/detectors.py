"""Classic unsupervised change detectors: per-image statistics, no training, no weights.

Every detector here returns, per item, a change **score map in [0, 1] that is comparable across images**:

* thresholded detectors (``image-diff``, ``cva``, ``index-diff``) map a change magnitude ``m`` to
  ``s = m / (m + t)`` where ``t`` is the item's own threshold (Otsu by default), so ``s = 0.5`` exactly at
  each image's decision boundary and pixel AUC pooled over images ranks "how far past its own threshold";
* ``pca-kmeans`` uses the relative distance to the two k-means centroids, ``s = d_unchanged / (d_unchanged +
  d_changed)``, which is 0.5 on the k-means decision boundary.

The label map is ``s > 0.5`` cleaned by an optional morphological opening then closing; the image-level score
is the changed fraction of pixels and the image label says whether it exceeds ``min_changed_fraction``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from satcore.components import Batch, Detection, Detector, DetectorParams
from satcore.components.detector import core_slices
from satcore.components.filters import (
    Moments,
    band_moments,
    merge_moments,
    nan_where,
    normalise_pair,
    normalise_pair_with,
    smooth,
    smooth_halo,
)
from satcore.components.thresholds import otsu_from_histogram, otsu_histogram, resolve_threshold, value_range
from satcore.components.thresholds import otsu_threshold as otsu_threshold  # moved to the core; kept here
from satcore.errors import ComponentError, MissingDependencyError

# ----------------------------------------------------------------------------------------------- parameters


class _SharedParams(DetectorParams):
    """What every classic detector accepts."""

    smooth: float = Field(
        1.0,
        ge=0,
        description="Gaussian sigma (pixels) applied to the change magnitude "
        "before thresholding (suppresses single-pixel noise and small misregistration); 0 = none.",
    )
    morphology: int = Field(
        1,
        ge=0,
        description="Radius (pixels) of a disk-shaped binary opening then closing "
        "on the change mask (removes speckle, fills pinholes); 0 = none.",
    )
    min_changed_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Image-level label is 1 when more than this fraction of the pixels is labelled change.",
    )


Normalise = Literal["none", "zscore", "match"]
_NORMALISE_DESCRIPTION = (
    "Per-image radiometric normalisation before comparing: `zscore` standardises each band of "
    "each date (mean 0, std 1), `match` rescales B's band means/stds to A's, `none` compares "
    "raw values."
)
_THRESHOLD_DESCRIPTION = (
    "`otsu`: Otsu's threshold on the item's change magnitude (per image); a number: a fixed "
    "magnitude (in normalised units, or index units for `index-diff`)."
)


class ClassicParams(_SharedParams):
    """Parameters of ``image-diff`` and ``cva``."""

    normalise: Normalise = Field("zscore", description=_NORMALISE_DESCRIPTION)
    threshold: Literal["otsu"] | float = Field("otsu", description=_THRESHOLD_DESCRIPTION)


class PCAKMeansParams(_SharedParams):
    """Parameters of ``pca-kmeans`` (Celik 2009)."""

    normalise: Normalise = Field("zscore", description=_NORMALISE_DESCRIPTION)
    block_size: int = Field(
        4,
        ge=2,
        le=16,
        description="h: side of the non-overlapping h×h blocks of the "
        "difference image used to learn the PCA eigenvector space, and of the neighbourhood "
        "projected onto it for each pixel.",
    )
    n_components: int | None = Field(
        3,
        ge=1,
        description="S: number of leading eigenvectors kept (at most h²); "
        "null = as many as explain 90% of the block variance.",
    )
    difference: Literal["cva", "absmean"] = Field(
        "cva",
        description="How the (grey-level) difference image is made from multi-band pairs: `cva` = length "
        "of the spectral change vector, `absmean` = |mean(B) − mean(A)| over bands "
        "(Celik's |X2 − X1| for one band).",
    )
    n_init: int = Field(10, ge=1, description="k-means restarts (the best inertia is kept).")
    sample_step: int | None = Field(
        None,
        ge=1,
        description="Fit the PCA on the scene's block moments and k-means on a deterministic sample (every "
        "`sample_step`-th row and column of the scene), then assign every pixel to the nearest centroid: the "
        "same result whole or tiled, so a tiled source (`tiling:`) requires it. null = k-means on every "
        "pixel (whole images only).",
    )
    smooth: float = Field(
        0.0,
        ge=0,
        description="Gaussian sigma (pixels) applied to the difference image before "
        "PCA; 0 = none (Celik's method already averages over the h×h neighbourhood).",
    )
    morphology: int = Field(
        0,
        ge=0,
        description="Radius (pixels) of a disk-shaped binary opening then closing on "
        "the k-means change mask; 0 = none (as in Celik 2009).",
    )


IndexName = Literal["ndvi", "ndwi", "ndbi"]


class IndexDiffParams(_SharedParams):
    """Parameters of ``index-diff``."""

    index: Literal["auto", "ndvi", "ndwi", "ndbi"] = Field(
        "auto",
        description="Spectral index to difference: `ndvi` (nir, red), `ndwi` (green, nir; McFeeters), "
        "`ndbi` (swir1, nir), or `auto` = every one of them whose bands the item has, combined as the "
        "length of "
        "the index change vector.",
    )
    threshold: Literal["otsu"] | float = Field("otsu", description=_THRESHOLD_DESCRIPTION)


# ----------------------------------------------------------------------------------------------- helpers


def cva_magnitude(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Length of the per-pixel spectral change vector ``b - a`` (over the band axis 0)."""
    d = b - a
    return np.sqrt(np.einsum("bhw,bhw->hw", d, d))


def absmean_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|mean(b) - mean(a)|`` over bands: the grey-level absolute difference image."""
    return np.abs(b.mean(axis=0) - a.mean(axis=0))


def relative_score(magnitude: np.ndarray, t: float) -> np.ndarray:
    """``m / (m + t)``: in [0, 1), monotone in ``m``, 0.5 exactly at the threshold ``t``."""
    m = np.maximum(np.nan_to_num(magnitude, nan=0.0), 0.0).astype(np.float64)
    if t <= 0:
        return (m > 0).astype(np.float32)
    return (m / (m + t)).astype(np.float32)


def clean_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary opening then closing with a disk of ``radius`` (0 = unchanged)."""
    if not radius:
        return mask
    from scipy.ndimage import binary_closing, binary_opening
    from skimage.morphology import disk

    fp = disk(radius)
    # pad with the edge values so that change touching the image border is treated like change inside it
    padded = np.pad(np.asarray(mask, bool), radius, mode="edge")
    cleaned = binary_closing(binary_opening(padded, fp), fp)
    return cleaned[radius:-radius, radius:-radius]


def neighbourhood_vectors(image: np.ndarray, h: int) -> np.ndarray:
    """The h×h neighbourhood of every pixel as a row vector, ``(H*W, h*h)`` (reflect-padded at the borders).

    For even ``h`` the pixel sits at offset ``(h-1)//2`` inside its window.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    before, after = (h - 1) // 2, h // 2
    padded = np.pad(image, ((before, after), (before, after)), mode="symmetric")
    win = sliding_window_view(padded, (h, h))
    return win.reshape(image.shape[0] * image.shape[1], h * h)


def block_vectors(image: np.ndarray, h: int) -> np.ndarray:
    """Non-overlapping h×h blocks of ``image`` as row vectors (the ragged right/bottom edge is dropped)."""
    hh, ww = image.shape[0] // h, image.shape[1] // h
    if hh == 0 or ww == 0:
        return neighbourhood_vectors(image, h)
    return image[: hh * h, : ww * h].reshape(hh, h, ww, h).swapaxes(1, 2).reshape(hh * ww, h * h)


def pca_kmeans_change(
    diff: np.ndarray, h: int, n_components: int | None, seed: int, n_init: int = 10
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Celik (2009): PCA on h×h blocks of the difference image, k-means (k=2) on neighbourhood projections.

    Returns ``(score_map, change_mask, info)``; the cluster whose pixels have the larger mean difference is
    change, and the score is the relative distance ``d_unchanged / (d_unchanged + d_changed)``.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    diff = np.asarray(diff, dtype=np.float64)
    finite = np.isfinite(diff)
    if not finite.any() or np.ptp(diff[finite]) == 0:
        # nothing to cluster: no change anywhere
        return np.zeros(diff.shape, np.float32), np.zeros(diff.shape, bool), {"n_components": 0}
    if not finite.all():
        # invalid pixels (nodata, NaN) take the median difference: neutral, so they neither pull the PCA
        # space nor the k-means centroids; their own score is zeroed by the caller
        diff = np.where(finite, diff, float(np.median(diff[finite])))
    blocks = block_vectors(diff, h)
    max_s = min(h * h, blocks.shape[0])
    pca = PCA(
        n_components=None if n_components is None else min(n_components, max_s), svd_solver="covariance_eigh"
    )
    pca.fit(blocks)
    if n_components is None:
        cum = np.cumsum(pca.explained_variance_ratio_)
        s = int(np.searchsorted(cum, 0.9) + 1)
    else:
        s = pca.n_components_
    s = max(1, min(s, pca.n_components_))
    vecs = neighbourhood_vectors(diff, h)
    feats = (vecs - pca.mean_) @ pca.components_[:s].T
    if not np.ptp(feats, axis=0).any():  # all pixels share one feature vector: nothing to split
        return np.zeros(diff.shape, np.float32), np.zeros(diff.shape, bool), {"n_components": s}
    # one thread: the same result on every machine (and no oversubscription under the engine's loader
    # threads or a Dask worker); k=2 on a few features is fast anyway
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=2, n_init=n_init, random_state=seed).fit(feats)
    lab = km.labels_
    flat = diff.ravel()
    means = [flat[lab == k].mean() if np.any(lab == k) else -np.inf for k in (0, 1)]
    changed = int(np.argmax(means))
    d = np.linalg.norm(feats[:, None, :] - km.cluster_centers_[None, :, :], axis=2)
    d_changed, d_unchanged = d[:, changed], d[:, 1 - changed]
    total = d_changed + d_unchanged
    score = np.divide(d_unchanged, total, out=np.full_like(total, 0.5), where=total > 0)
    info = {"n_components": s, "explained_variance": float(np.sum(pca.explained_variance_ratio_[:s]))}
    return (score.reshape(diff.shape).astype(np.float32), (lab == changed).reshape(diff.shape), info)


# Band roles: the first name found (case-insensitive) is used. Sentinel-2 names in ESA order; Landsat files
# are named through the source's `bands:` (e.g. [blue, green, red, nir, swir1, swir2] for TM bands 1-5, 7).
BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "blue": ("blue", "B02"),
    "green": ("green", "B03"),
    "red": ("red", "B04"),
    "nir": ("nir", "B08", "B8A"),
    "swir1": ("swir1", "swir", "B11"),
}

#: index → (first band, second band): index = (first - second) / (first + second)
INDICES: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),  # Rouse et al. 1974
    "ndwi": ("green", "nir"),  # McFeeters 1996
    "ndbi": ("swir1", "nir"),  # Zha et al. 2003
}


def find_band(band_names: tuple[str, ...] | list[str], role: str) -> int | None:
    """Index of the band playing ``role`` (see :data:`BAND_ALIASES`), or ``None``."""
    lower = [str(n).lower() for n in band_names]
    for alias in BAND_ALIASES[role]:
        if alias.lower() in lower:
            return lower.index(alias.lower())
    return None


def normalized_difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x - y) / (x + y)``, 0 where the denominator is 0."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    den = x + y
    return np.divide(x - y, den, out=np.zeros_like(den), where=den != 0)


def spectral_index(array: np.ndarray, band_names: tuple[str, ...] | list[str], index: str) -> np.ndarray:
    """One normalised-difference index of a ``(bands, H, W)`` array; ``KeyError`` listing missing roles."""
    roles = INDICES[index]
    idx = [find_band(band_names, r) for r in roles]
    missing = [r for r, i in zip(roles, idx, strict=True) if i is None]
    if missing:
        raise KeyError(missing)
    return normalized_difference(array[idx[0]], array[idx[1]])


def _missing_bands_message(index: str, band_names: tuple[str, ...], missing: list[str]) -> str:
    need = ", ".join(INDICES[index])
    alias = "; ".join(f"{r}: {' / '.join(BAND_ALIASES[r])}" for r in missing)
    return (
        f"index-diff: {index.upper()} needs the bands {need}, but the item's bands are {list(band_names)} "
        f"(missing: {', '.join(missing)}; accepted names: {alias}). Name the bands with `bands:` on the "
        "source, e.g. `bands: [blue, green, red, nir, swir1, swir2]` for Landsat TM/ETM+ bands 1-5 and 7, "
        "or `[red, green, blue, nir]` for RGBN; Sentinel-2 files in ESA order "
        "(B01..B12, B8A) work as they are."
    )


# ----------------------------------------------------------------------------------------------- detectors


class _ClassicDetector(Detector):
    """Shared machinery: per item, a change magnitude → threshold → score map, label map, image score."""

    consumes: ClassVar[tuple[str, ...]] = ("pair",)

    def setup(self) -> None:
        """Check that scipy, scikit-image and scikit-learn import (before any item streams)."""
        for module, package in (
            ("scipy.ndimage", "scipy"),
            ("skimage.filters", "scikit-image"),
            ("sklearn.cluster", "scikit-learn"),
        ):
            try:
                __import__(module)
            except ImportError as exc:
                raise MissingDependencyError(
                    package, f"satcore-classic ({self.name})", f"pip install {package}"
                ) from exc

    def process(self, batch: Batch) -> list[Detection]:
        """One :class:`Detection` per item, in order; each item is handled on its own."""
        return [self.detect(item) for item in batch]

    def detect(self, item: Any) -> Detection:
        """The detection for one item."""
        raise NotImplementedError

    def pair(self, item: Any) -> tuple[np.ndarray, np.ndarray]:
        """The item's two dates as float64, NaN at its invalid pixels (nodata, non-finite).

        Raises:
            ComponentError: every pixel is invalid, so there is nothing to compare.
        """
        invalid = item.invalid_pixels()
        if invalid is not None and invalid.all():
            raise ComponentError("every pixel of the pair is nodata or not finite; nothing to compare",
                                 item.item_id, self.step_id)
        a, b = item.pair_arrays(np.float64)
        return nan_where(a, invalid), nan_where(b, invalid)

    @property
    def halo(self) -> int:
        """Smoothing radius plus the morphology's reach (opening then closing: four radii)."""
        p = self.params
        return smooth_halo(p.smooth) + 4 * p.morphology  # type: ignore[attr-defined]

    def normalised(self, item: Any, scene: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """The pair normalised on its own statistics, or on the scene's (``moments`` stage) when given."""
        how = self.params.normalise  # type: ignore[attr-defined]
        a, b = self.pair(item)
        if scene and "a" in scene:
            ma, mb = (Moments(*(np.asarray(scene[k][f]) for f in ("n", "mean", "m2"))) for k in ("a", "b"))
            return normalise_pair_with(a, b, how, ma, mb)
        return normalise_pair(a, b, how)

    def moments_part(self, item: Any) -> tuple[Moments, Moments]:
        """The ``moments`` stage of one tile: each date's per-band moments over the tile's core."""
        rows, cols = core_slices(item)
        a, b = self.pair(item)
        return band_moments(a[:, rows, cols]), band_moments(b[:, rows, cols])

    @staticmethod
    def merge_moments_parts(parts: list[Any], scene: dict[str, Any]) -> dict[str, Any]:
        """The ``moments`` stage merged: ``scene["a"]``, ``scene["b"]``."""
        return {**scene, "a": merge_moments([p[0] for p in parts]).to_lists(),
                "b": merge_moments([p[1] for p in parts]).to_lists()}

    def finish(self, score: np.ndarray, label: np.ndarray, extra: dict[str, Any],
               invalid: np.ndarray | None = None) -> Detection:
        """Clean the mask, compute the image-level score/label and pack a :class:`Detection`.

        ``invalid`` pixels (nodata, NaN) get score 0 and no change, and are left out of the changed fraction.
        """
        p = self.params
        label = clean_mask(np.asarray(label, bool), p.morphology)  # type: ignore[attr-defined]
        if invalid is not None and invalid.any():
            label = label & ~invalid
            score = np.where(invalid, 0.0, score)
            frac = float(label[~invalid].mean())
            extra = {**extra, "invalid_pixels": int(invalid.sum())}
        else:
            frac = float(label.mean()) if label.size else 0.0
        return Detection(
            score=frac,
            label=int(frac > p.min_changed_fraction),  # type: ignore[attr-defined]
            score_map=np.clip(score, 0.0, 1.0).astype(np.float32),
            label_map=label,
            extra={**extra, "changed_fraction": frac},
        )


class _ThresholdDetector(_ClassicDetector):
    """A magnitude thresholded with Otsu (per image) or a fixed value; score ``m / (m + t)``.

    On a tiled scene the normalisation and Otsu's threshold are the scene's: stages ``moments`` (when
    normalising), then ``range`` and ``histogram`` (Otsu over the scene's fixed value range).
    """

    def magnitude(self, item: Any, scene: dict[str, Any] | None = None) -> np.ndarray:
        """The per-pixel change magnitude (non-negative) for one item."""
        raise NotImplementedError

    def detect(self, item: Any) -> Detection:
        """Magnitude → smoothing → threshold → relative score."""
        scene = self.scene_statistics(item)
        return self.threshold_magnitude(self.magnitude(item, scene), {}, scene)

    def statistics_stages(self) -> tuple[str, ...]:
        """``moments`` when normalising, ``range`` and ``histogram`` for Otsu."""
        stages = ("moments",) if getattr(self.params, "normalise", "none") != "none" else ()
        return stages + (("range", "histogram") if self.params.threshold == "otsu" else ())  # type: ignore[attr-defined]

    def partial_statistics(self, item: Any, stage: str, scene: dict[str, Any]) -> Any:
        """One tile's moments, magnitude range or fixed-range histogram (over its core)."""
        if stage == "moments":
            return self.moments_part(item)
        rows, cols = core_slices(item)
        mag = smooth(self.magnitude(item, scene), self.params.smooth)[rows, cols]  # type: ignore[attr-defined]
        if stage == "range":
            return value_range(mag)
        return otsu_histogram(mag, scene["lo"], scene["hi"])

    def merge_statistics(self, stage: str, partials: list[Any], scene: dict[str, Any]) -> dict[str, Any]:
        """Moments merged; the range as min/max; Otsu's threshold from the summed histogram."""
        if stage == "moments":
            return self.merge_moments_parts(partials, scene)
        if stage == "range":
            ranges = [r for r in partials if r is not None]
            lo = min((r[0] for r in ranges), default=0.0)
            hi = max((r[1] for r in ranges), default=0.0)
            return {**scene, "lo": lo, "hi": hi, "empty": not ranges}
        counts = np.sum([np.asarray(c) for c in partials], axis=0)
        t = 0.0 if scene["empty"] else otsu_from_histogram(counts, scene["lo"], scene["hi"])
        return {**scene, "threshold": t}

    def threshold_magnitude(self, magnitude: np.ndarray, extra: dict[str, Any],
                            scene: dict[str, Any] | None = None) -> Detection:
        """Smooth, threshold (Otsu, fixed, or the scene's Otsu threshold when given), score a magnitude."""
        invalid = ~np.isfinite(magnitude)
        mag = smooth(magnitude, self.params.smooth)  # type: ignore[attr-defined]
        if scene and "threshold" in scene:
            t = float(scene["threshold"])
        else:
            t = resolve_threshold(mag, self.params.threshold)  # type: ignore[attr-defined]  # Otsu skips NaN
        score = relative_score(mag, t)
        return self.finish(score, score > 0.5, {**extra, "magnitude_threshold": t}, invalid)


class ImageDiffDetector(_ThresholdDetector):
    """Absolute difference of the band means (grey-level differencing), thresholded per image with Otsu."""

    name = "image-diff"
    params_model = ClassicParams
    params: ClassicParams

    def magnitude(self, item: Any, scene: dict[str, Any] | None = None) -> np.ndarray:
        """``|mean(B) - mean(A)|`` after normalisation."""
        return absmean_difference(*self.normalised(item, scene))


class CVADetector(_ThresholdDetector):
    """Change vector analysis: length of the per-pixel spectral change vector, Otsu threshold per image."""

    name = "cva"
    params_model = ClassicParams
    params: ClassicParams

    def magnitude(self, item: Any, scene: dict[str, Any] | None = None) -> np.ndarray:
        """``||B - A||`` over bands after normalisation."""
        return cva_magnitude(*self.normalised(item, scene))


class PCAKMeansDetector(_ClassicDetector):
    """PCA on h×h blocks of the difference image, k-means (k=2) on neighbourhood projections (Celik 2009)."""

    name = "pca-kmeans"
    params_model = PCAKMeansParams
    params: PCAKMeansParams

    @property
    def halo(self) -> int:
        """Smoothing radius, the h×h neighbourhood and the morphology's reach."""
        p = self.params
        return smooth_halo(p.smooth) + p.block_size + 4 * p.morphology

    def difference(self, item: Any, scene: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The (smoothed) difference image and its invalid pixels."""
        p = self.params
        a, b = self.normalised(item, scene)
        diff = cva_magnitude(a, b) if p.difference == "cva" else absmean_difference(a, b)
        invalid = ~np.isfinite(diff)
        return smooth(diff, p.smooth), invalid

    def statistics_stages(self) -> tuple[str, ...]:
        """``moments`` when normalising, then ``pca`` (block co-moments) and ``sample`` (k-means)."""
        return (("moments",) if self.params.normalise != "none" else ()) + ("pca", "sample")

    def partial_statistics(self, item: Any, stage: str, scene: dict[str, Any]) -> Any:
        """One tile's moments, block co-moments or k-means sample (over its core)."""
        from satcore_classic.scene import block_comoments, sample_part

        p = self.params
        if p.sample_step is None:
            raise ComponentError("pca-kmeans on a tiled scene fits k-means on a sample of the scene: set "
                                 "`sample_step` (e.g. 4: every 4th row and column) on the step",
                                 item.item_id, self.step_id)
        if stage == "moments":
            return self.moments_part(item)
        diff, _invalid = self.difference(item, scene)
        if stage == "pca":
            return block_comoments(diff, item, p.block_size)
        if scene["pca"].get("degenerate"):
            return None
        return sample_part(diff, item, p.block_size, scene["pca"], p.sample_step)

    def merge_statistics(self, stage: str, partials: list[Any], scene: dict[str, Any]) -> dict[str, Any]:
        """Moments merged; the PCA from the merged co-moments; k-means fitted on the merged sample."""
        from satcore_classic.scene import fit_kmeans, merge_comoments, pca_from_comoments

        if stage == "moments":
            return self.merge_moments_parts(partials, scene)
        if stage == "pca":
            return {**scene, "pca": pca_from_comoments(*merge_comoments(partials), self.params.n_components)}
        parts = [x for x in partials if x is not None]
        km = fit_kmeans(parts, self.context.seed, self.params.n_init) if parts else {"degenerate": True}
        return {**scene, "kmeans": km}

    def detect(self, item: Any) -> Detection:
        """Difference image → PCA eigenvector space → k-means → change cluster."""
        p = self.params
        scene = self.scene_statistics(item)
        if scene is None and p.sample_step is not None:
            scene = self.own_statistics(item)  # the tiled path's code on one part: the same result
        if scene is not None:
            from satcore_classic.scene import score_maps

            diff, invalid = self.difference(item, scene)
            pca, km = scene["pca"], scene["kmeans"]
            if pca.get("degenerate") or km.get("degenerate"):
                score, label = np.zeros(diff.shape, np.float32), np.zeros(diff.shape, bool)
                info: dict[str, Any] = {"n_components": 0}
            else:
                score, label = score_maps(diff, p.block_size, pca, km)
                info = {"n_components": pca["n_components"], "explained_variance": pca["explained_variance"],
                        "kmeans_sample": km["sample_size"]}
            return self.finish(score, label, info, invalid)
        a, b = normalise_pair(*self.pair(item), p.normalise)
        diff = cva_magnitude(a, b) if p.difference == "cva" else absmean_difference(a, b)
        invalid = ~np.isfinite(diff)
        diff = smooth(diff, p.smooth)
        score, label, info = pca_kmeans_change(
            diff, p.block_size, p.n_components, self.context.seed, p.n_init
        )
        return self.finish(score, label, info, invalid)


class IndexDiffDetector(_ThresholdDetector):
    """Spectral-index differencing (NDVI, NDWI, NDBI) thresholded per image with Otsu."""

    name = "index-diff"
    params_model = IndexDiffParams
    params: IndexDiffParams

    def indices_for(self, band_names: tuple[str, ...]) -> list[str]:
        """The indices this step computes for an item with these bands (``auto``: all that apply)."""
        if self.params.index != "auto":
            return [self.params.index]
        return [k for k, roles in INDICES.items() if all(find_band(band_names, r) is not None for r in roles)]

    def index_magnitude(self, item: Any) -> tuple[np.ndarray, list[str]]:
        """``|ΔI|`` for one index (the index-change vector's length for ``auto``), and the indices used."""
        a, b = self.pair(item)
        names = tuple(item.images[0].band_names)
        chosen = self.indices_for(names)
        if not chosen:
            missing = sorted({r for roles in INDICES.values() for r in roles if find_band(names, r) is None})
            raise ComponentError(
                "index-diff: no spectral index can be computed: NDVI needs nir, red; NDWI green, nir; "
                f"NDBI swir1, nir; the item's bands are {list(names)} (missing: {', '.join(missing)}). "
                "Name the bands with `bands:` on the source, e.g. `bands: [blue, green, red, nir, swir1, "
                "swir2]` for Landsat TM/ETM+ bands 1-5 and 7, or `[red, green, blue, nir]` for RGBN.",
                item.item_id,
                self.step_id,
            )
        sq = np.zeros(a.shape[1:], np.float64)
        for index in chosen:
            try:
                d = spectral_index(b, names, index) - spectral_index(a, names, index)
            except KeyError as exc:
                raise ComponentError(
                    _missing_bands_message(index, names, list(exc.args[0])), item.item_id, self.step_id
                ) from None
            sq += d * d
        return np.sqrt(sq), chosen

    def magnitude(self, item: Any, scene: dict[str, Any] | None = None) -> np.ndarray:
        """See :meth:`index_magnitude` (indices need no scene statistics)."""
        return self.index_magnitude(item)[0]

    def detect(self, item: Any) -> Detection:
        """As the other thresholded detectors, recording which indices were used."""
        mag, chosen = self.index_magnitude(item)
        return self.threshold_magnitude(mag, {"indices": ",".join(chosen)}, self.scene_statistics(item))
