"""Threshold rules as the built-in detectors use them: fixed, Otsu per item, or optimised on the train split.

A third-party detector offers the same choices with one field::

    class MyParams(DetectorParams):
        threshold: ThresholdRule = Field("otsu", description=THRESHOLD_RULE_DESCRIPTION)

which accepts, in YAML, ``threshold: otsu``, ``threshold: 0.25`` or ``threshold: {optimise: f1}``, and applies
it per item with :func:`apply_threshold` (decision rule ``value > threshold``). An optimised rule needs the
train split: the detector sets ``fittable`` (see :func:`needs_fit`), finds the value in ``fit()`` with
:func:`satcore.evaluate.threshold.optimise_threshold` and passes it as ``fitted=``.

Otsu's method is computed here with numpy alone (the core does not depend on scikit-image); it is
:func:`skimage.filters.threshold_otsu` with its default 256 bins over the value range, step by step, so
results are the same.
"""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from pydantic import Field

from satcore.components.base import Params

__all__ = [
    "OTSU_BINS", "THRESHOLD_RULE_DESCRIPTION", "Optimise", "ThresholdRule", "apply_threshold", "needs_fit",
    "otsu_from_histogram", "otsu_histogram", "otsu_threshold", "resolve_threshold", "value_range",
]

#: Histogram bins of :func:`otsu_threshold` (scikit-image's default).
OTSU_BINS = 256


class Optimise(Params):
    """``{optimise: f1}``: the threshold maximising a metric on the train split (fitted once per run)."""

    optimise: Literal["f1", "accuracy", "recall", "precision"] = Field(
        "f1",
        description="The metric the threshold maximises on the train split (ties → the highest threshold).",
    )


#: A threshold rule: ``"otsu"`` (per item), a fixed number, or :class:`Optimise`.
ThresholdRule = Union[Literal["otsu"], float, Optimise]  # noqa: UP007 - a runtime value (pydantic field type)

#: A ``Field(description=...)`` text for a :data:`ThresholdRule` param.
THRESHOLD_RULE_DESCRIPTION = (
    "`otsu`: Otsu's threshold on each item's own values; a number: a fixed threshold; "
    "`{optimise: f1|accuracy|recall|precision}`: the value maximising that metric on the train split. "
    "Change where the value exceeds the threshold."
)


def needs_fit(rule: ThresholdRule) -> bool:
    """Whether ``rule`` is learnt on the train split (an :class:`Optimise` rule): the detector is fittable."""
    return isinstance(rule, Optimise)


def otsu_threshold(values: np.ndarray, nbins: int = OTSU_BINS) -> float:
    """Otsu's threshold of the finite ``values`` (NaN and infinities are ignored).

    The between-class variance is maximised over a histogram of ``nbins`` equal bins spanning the values'
    range, and the centre of the best bin is returned, exactly as :func:`skimage.filters.threshold_otsu`
    does. Edge cases: no finite value gives ``0.0``; a constant array has no split, so its value is returned.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return hi
    return otsu_from_histogram(np.histogram(v, bins=nbins, range=(lo, hi))[0], lo, hi)


def value_range(values: np.ndarray) -> tuple[float, float] | None:
    """``(min, max)`` of the finite ``values``, or ``None`` when there is none; merge parts with min and max.

    The first of the two passes of Otsu over a tiled scene: the histogram's range is the scene's.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return None if v.size == 0 else (float(v.min()), float(v.max()))


def otsu_histogram(values: np.ndarray, lo: float, hi: float, nbins: int = OTSU_BINS) -> np.ndarray:
    """The counts of the finite ``values`` in ``nbins`` equal bins over the fixed range ``[lo, hi]``.

    Counts of parts of an image over the same range add up to the counts of the whole (each value's bin
    depends on the value and the range only), so Otsu over tiles merged this way equals
    :func:`otsu_threshold` on the whole image when ``lo``/``hi`` are its minimum and maximum.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if hi <= lo:
        return np.array([v.size], dtype=np.int64)
    return np.histogram(v, bins=nbins, range=(lo, hi))[0].astype(np.int64)


def otsu_from_histogram(counts: np.ndarray, lo: float, hi: float) -> float:
    """Otsu's threshold from bin ``counts`` over ``[lo, hi]``: the centre of the best bin.

    :func:`otsu_threshold` is this on the histogram of its values' own range; a constant image
    (``lo == hi``) gives ``hi``, an empty one ``0.0``.
    """
    c64 = np.asarray(counts)
    if c64.sum() == 0:
        return 0.0
    if lo == hi:
        return float(hi)
    edges = np.histogram_bin_edges(np.array([lo, hi]), bins=c64.size, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2.0
    c = c64.astype(np.float32)  # as scikit-image, so that ties between bins break the same way
    w1 = np.cumsum(c)
    w2 = np.cumsum(c[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):  # empty classes at the ends: NaN, never chosen
        m1 = np.cumsum(c * centres) / w1
        m2 = (np.cumsum((c * centres)[::-1]) / w2[::-1])[::-1]
    between = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return float(centres[int(np.nanargmax(between))])


def resolve_threshold(values: np.ndarray, rule: ThresholdRule, fitted: float | None = None) -> float:
    """The threshold ``rule`` gives for these values.

    Args:
        values: one item's values (a score or magnitude map); used by ``otsu`` only.
        rule: ``"otsu"``, a number, or :class:`Optimise`.
        fitted: the value fitted on the train split, required for an :class:`Optimise` rule.

    Raises:
        ValueError: an :class:`Optimise` rule without ``fitted`` (the step was not fitted), or an unknown
            rule.
    """
    if isinstance(rule, Optimise):
        if fitted is None:
            raise ValueError(
                f"threshold {{optimise: {rule.optimise}}} has no fitted value: the step must be fitted on "
                "labelled train items first (is `fittable` set and does `fit()` store the threshold?)"
            )
        return float(fitted)
    if isinstance(rule, str):
        if rule != "otsu":
            raise ValueError(f"unknown threshold rule {rule!r}: use 'otsu', a number or {{optimise: f1}}")
        return otsu_threshold(values)
    return float(rule)


def apply_threshold(
    score_map: np.ndarray, rule: ThresholdRule, fitted: float | None = None
) -> tuple[np.ndarray, float]:
    """``(label_map, threshold)``: where ``score_map > threshold`` under ``rule`` (NaN is never change).

    See :func:`resolve_threshold` for ``rule`` and ``fitted``.
    """
    scores = np.asarray(score_map)
    t = resolve_threshold(scores, rule, fitted)
    with np.errstate(invalid="ignore"):
        return np.asarray(scores > t, dtype=bool), t
