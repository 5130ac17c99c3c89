"""Metric blocks of ``metrics.json`` beyond change detection, streamed per item like the change metrics.

Each block (``recognition``, ``captions``, ``spectral``, ``image_quality``, ``forecast``) is a class in
:data:`BLOCKS` that meets :class:`~satcore.evaluate.blocks.base.MetricBlock`:

1. **While the run streams** (row building), once per item and step::

       record = BLOCKS[name].item_record(truth, prediction, **record_settings)

   reduces the item's truth and the step's output to a small flat dict (numbers, strings, 1-D lists): big
   arrays never reach the journal. ``None`` means the item is not scored (no truth or no prediction). The
   engine stores each key as a hidden journal column, e.g. ``_blk.<step_id>.<name>.<key>``.
2. **At the end** (``writer.compute_metrics``), per step and split::

       acc = BLOCKS[name](**block_settings)
       for each final journal row with that step's record:  acc.add(item_id, record)
       metrics["steps"][step_id][split][name] = acc.result()

   ``add`` takes the record as stored or as read back from Parquet (lists as numpy arrays, absent values as
   ``None``/NaN), in any order, once per item (a second ``add`` of one id raises ``DuplicateItemError``).
   ``result()`` gives the block in the DESIGN.md layout, with ``items`` and ``null`` plus
   ``<key>_reason`` for anything undefined; it never raises on data.

What each block takes (truth from the :class:`~satcore.data.Item`, prediction from the step's output):

- ``recognition``: truth ``item.classes`` (list[str], one or several labels), or one such list per image of a
  pair/series; prediction: ranked labels (list[str], best first) or one list per image. Record settings:
  ``scores=`` (aligned with the labels), ``threshold=`` (multi-label predicted sets).
- ``captions``: truth ``item.texts`` (reference captions); prediction: the caption (str). Record settings:
  per-item ``meteor=``, ``bertscore_f1=``, ``clipscore=`` from a plugin that has the models.
- ``spectral``: truth: the target raster array (bands, H, W) from ``item.targets``; prediction: the generated
  array of the same shape. Record setting: ``valid=`` mask (H, W).
- ``image_quality``: truth: the real image's feature vector; prediction: the generated image's feature
  vector. Record setting: ``probs=`` (class probabilities of the generated image, for IS).
- ``forecast``: truth: observed future values (array); prediction: forecast values. Record settings:
  ``lower=``, ``upper=`` (interval bounds), ``aic=``.

Block settings (accumulator constructor): ``spectral``: ``units``, ``resolution_ratio``; ``image_quality``:
``kid_subsets``, ``kid_subset_size``, ``is_splits``, ``seed``; the others take none (unknown settings are
ignored, so the engine may pass one settings mapping to every block).

Formulas, references and the differences from the usual implementations: ``docs/metrics.md``.
"""

from __future__ import annotations

from satcore.evaluate.blocks.base import DuplicateItemError, ExactSum, MetricBlock, Record
from satcore.evaluate.blocks.captions import CaptionsBlock, captions_record, tokenize
from satcore.evaluate.blocks.forecast import ForecastBlock, forecast_record
from satcore.evaluate.blocks.image_quality import ImageQualityBlock, image_quality_record
from satcore.evaluate.blocks.recognition import RecognitionBlock, recognition_record
from satcore.evaluate.blocks.spectral import SpectralBlock, spectral_record

BLOCKS: dict[str, type[MetricBlock]] = {
    b.name: b  # type: ignore[misc]
    for b in (RecognitionBlock, CaptionsBlock, SpectralBlock, ImageQualityBlock, ForecastBlock)
}
"""Block name (the metrics.json key) → accumulator class, in the order blocks appear in metrics.json."""

__all__ = [
    "BLOCKS",
    "CaptionsBlock",
    "DuplicateItemError",
    "ExactSum",
    "ForecastBlock",
    "ImageQualityBlock",
    "MetricBlock",
    "Record",
    "RecognitionBlock",
    "SpectralBlock",
    "captions_record",
    "forecast_record",
    "image_quality_record",
    "recognition_record",
    "spectral_record",
    "tokenize",
]
