"""Contracts of the kinds that read truth beyond change masks: captioners, recognizers, generators.

Their default items carry that truth (:func:`~satcore.testing.make_class_items`,
:func:`~satcore.testing.make_caption_items`, :func:`~satcore.testing.make_text_items`,
:func:`~satcore.testing.make_target_items`), and each contract checks that a component does not peek at it:
the results are the same when ``classes``, ``texts``, ``targets`` and the change truth are removed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from satcore.data import Item, Raster
from satcore.testing.contracts.steps import StepContract
from satcore.testing.data import make_caption_items, make_class_items, make_target_items, make_text_items
from satcore.testing.helpers import assert_same_outputs

#: Metadata keys sources use for truth (``folder-classes`` ``class``; ``manifest``/``text`` ``labels``,
#: ``captions``), removed with the truth fields by :func:`strip_truth`.
TRUTH_META_KEYS = ("class", "labels", "captions", "change")


def strip_truth(item: Item) -> Item:
    """``item`` without its truth: no ``classes``, ``texts``, ``targets``, change mask or truth metadata."""
    meta = {k: v for k, v in item.meta.items() if k not in TRUTH_META_KEYS}
    return dataclasses.replace(item, classes=None, texts=None, targets=None, label=None, valid=None,
                               image_label=None, meta=meta)


def item_kind_consumed(consumes: tuple[str, ...]) -> str:
    """The item kind default test items take for a component consuming ``consumes``."""
    for kind in ("pair", "series", "scene", "text"):
        if kind in consumes:
            return kind
    return "scene"


class TruthBlindContract(StepContract):
    """A check shared by the truth-carrying kinds: results do not depend on the items' truth."""

    def test_does_not_read_truth(self, tmp_path: Path) -> None:
        """Results are the same with the items' truth (classes, texts, targets, masks) removed."""
        comp = self.fresh(tmp_path)
        items = self.make_items()
        blind = [strip_truth(it) for it in items]
        assert_same_outputs(self.process(comp, blind), self.process(comp, items), self.rtol, self.atol,
                            [it.item_id for it in items])


class CaptionerContract(TruthBlindContract):
    """The captioner contract: ``{"captions": [str, ...]}`` per item, one caption per image.

    Default items: scenes (pairs or series for components consuming those) with reference captions in
    ``item.texts``, from :func:`~satcore.testing.make_caption_items`.
    """

    kind: ClassVar[str] = "captioner"

    def make_items(self) -> list[Item]:
        """Items with reference captions, of the kind the component consumes."""
        return make_caption_items(self.n_items, kind=item_kind_consumed(self.component_class().consumes))

    def check_result(self, result: Any, item: Item) -> None:
        """One caption string per image of the item."""
        assert isinstance(result, dict) and "captions" in result, (
            f"a captioner returns {{'captions': [...]}} per item, got {result!r:.200}")
        caps = result["captions"]
        assert isinstance(caps, (list, tuple)) and all(isinstance(c, str) for c in caps), (
            "captions must be a list of strings")
        assert len(caps) == len(item.images), f"{len(caps)} captions for {len(item.images)} images"


def check_ranking(result: Any, where: str) -> None:
    """``result`` is ``{"labels": [str, ...], "scores": [float, ...]}`` of equal length, scores finite."""
    assert isinstance(result, dict) and "labels" in result and "scores" in result, (
        f"{where}: expected {{'labels': [...], 'scores': [...]}}, got {result!r:.200}")
    labels, scores = result["labels"], result["scores"]
    assert isinstance(labels, (list, tuple)), f"{where}: labels must be a list, got {type(labels).__name__}"
    assert len(labels) == len(scores), f"{where}: {len(labels)} labels but {len(scores)} scores"
    assert all(isinstance(x, str) for x in labels), f"{where}: labels must be strings"
    assert np.all(np.isfinite(np.asarray(scores, dtype=float))), f"{where}: scores must be finite"


class RecognizerContract(TruthBlindContract):
    """The recognizer contract: labels with scores, for the item or for each of its images.

    One result per item, in one of two shapes:

    * ``{"labels": [str, ...], "scores": [float, ...]}``: one ranking for the item (a scene; or a pair or
      series labelled as a whole). Same length, scores finite, best first by convention.
    * ``{"images": [{"labels": [...], "scores": [...]}, ...]}``: one ranking per image of a pair or series,
      ``len(images) == len(item.images)``, each shaped as above. Item-level ``labels``/``scores`` may sit
      beside ``images``.

    Default items: class-labelled scenes (pairs or series when the component consumes those) from
    :func:`~satcore.testing.make_class_items`, with the truth in ``item.classes``.
    """

    kind: ClassVar[str] = "recognizer"

    def make_items(self) -> list[Item]:
        """Class-labelled items of the kind the component consumes."""
        return make_class_items(self.n_items, kind=item_kind_consumed(self.component_class().consumes))

    def check_result(self, result: Any, item: Item) -> None:
        """An item-level ranking, or one ranking per image (see the class docstring)."""
        assert isinstance(result, dict) and ("images" in result or "labels" in result), (
            "a recognizer returns {'labels': [...], 'scores': [...]} per item, or "
            f"{{'images': [{{'labels': [...], 'scores': [...]}}, ...]}} with one entry per image; got "
            f"{result!r:.200}")
        if "labels" in result or "scores" in result:
            check_ranking(result, "result")
        if "images" in result:
            per_image = result["images"]
            assert isinstance(per_image, (list, tuple)) and len(per_image) == len(item.images), (
                f"'images' must hold one {{'labels', 'scores'}} per image: {len(item.images)} images, got "
                f"{len(per_image) if isinstance(per_image, (list, tuple)) else type(per_image).__name__}")
            for i, r in enumerate(per_image):
                check_ranking(r, f"images[{i}]")


class GeneratorContract(TruthBlindContract):
    """The generator contract: ``{"images": [Raster, ...]}`` per item.

    Default items: text-only items with a prompt in ``item.text`` for a component consuming ``text``
    (:func:`~satcore.testing.make_text_items`), else scenes with a target raster in ``item.targets``
    (:func:`~satcore.testing.make_target_items`).
    """

    kind: ClassVar[str] = "generator"

    def make_items(self) -> list[Item]:
        """Prompts for text-to-image generators, scenes with targets for image-to-image ones."""
        if "text" in self.component_class().consumes:
            return make_text_items(self.n_items)
        return make_target_items(self.n_items)

    def make_bad_item(self) -> Item:
        """A text consumer gets an item with neither text nor images; others as for every step."""
        if "text" in self.component_class().consumes:
            return Item("bad-item", [], meta={"kind": "text"})
        return super().make_bad_item()

    def check_result(self, result: Any, item: Item) -> None:
        """Rasters, georeferenced as the input when on its grid (:func:`check_generated`)."""
        problems = check_generated(result, item)
        assert not problems, "; ".join(problems)


def generated_images(result: Any) -> list[Any] | None:
    """A generator result's images: ``result["images"]``, or ``[result["image"]]``; ``None``: neither."""
    if not isinstance(result, dict):
        return None
    if "images" in result:
        images = result["images"]
        return list(images) if isinstance(images, (list, tuple)) else [images]
    if "image" in result:
        return [result["image"]]
    return None


def check_generated(result: Any, item: Item) -> list[str]:
    """Problems with one generator result for ``item`` (empty list: none).

    The result is ``{"images": [Raster, ...]}`` (or ``{"image": Raster}``), non-empty. A raster on the grid
    of the item's first image (same height and width) must carry that image's CRS and transform: the engine
    writes it to ``generated/<item_id>/<step_id>.tif`` with the raster's own georeference, so one that
    dropped it would land nowhere on a map. ``item.reference.with_array(array, band_names)`` keeps it.
    """
    images = generated_images(result)
    if images is None:
        return [f"a generator returns {{'images': [Raster, ...]}} (or {{'image': Raster}}) per item, got "
                f"{result!r:.200}"]
    if not images:
        return ["'images' is empty: a generator returns at least one satcore.data.Raster per item"]
    problems = [f"images[{i}] is a {type(r).__name__}, not a satcore.data.Raster (wrap arrays with "
                "item.reference.with_array(array, band_names))"
                for i, r in enumerate(images) if not isinstance(r, Raster)]
    ref = item.images[0] if item.images else None
    if ref is None or ref.crs is None:
        return problems
    for i, r in enumerate(images):
        if not isinstance(r, Raster) or r.shape != ref.shape:
            continue  # another grid (a super-resolution, a tile): its georeference is the generator's own
        if r.crs != ref.crs or r.transform != ref.transform:
            problems.append(
                f"images[{i}] is on the input's {ref.shape[0]}x{ref.shape[1]} grid but not georeferenced as "
                f"the input (crs {r.crs} vs {ref.crs}, transform {tuple(r.transform or ())} vs "
                f"{tuple(ref.transform or ())}); build it with item.reference.with_array(array, band_names) "
                "so its GeoTIFF in generated/ lies where the input does")
    return problems


__all__ = ["CaptionerContract", "GeneratorContract", "RecognizerContract", "TruthBlindContract",
           "check_generated", "check_ranking", "generated_images", "strip_truth"]
