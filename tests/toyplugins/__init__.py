"""Toy plugins for end-to-end tests: a recognizer, a captioner and a generator with hand-computable outputs.

Import them as ``from tests.toyplugins import ToyRecognizer, ToyCaptioner, ToyGenerator`` (the repository
root is on ``sys.path`` in the test environment) and register them with the test kit's fixture, not an
entry point::

    def test_spec(register_components, run_pipeline):
        register_components(*TOY_COMPONENTS, name="toyplugins")
        out = run_pipeline({... "steps": [{"id": "rec", "type": "toy-recognizer", "labels": ["a", "b"]}]})

Every output is a formula of :func:`brightness` and the band means, so a test can compute the expected
metrics by hand:

* ``toy-recognizer`` (param ``labels``, K of them): the score of label ``k`` for an image is
  ``-|brightness - (k + 0.5) / K|``; labels ranked best first (ties: the order of ``labels``). The item's
  ranking is its reference image's; a pair or series also gets ``images``: one ranking per image.
* ``toy-captioner``: ``"a {bright|dark} {red|green|blue} scene"`` per image: bright when
  ``brightness > 0.5``; the colour is the band (of the first three) with the largest mean.
* ``toy-generator``: from the reference image's first three bands, a 4-band float32 raster ``red``, ``green``,
  ``blue``, ``mean`` (their per-pixel mean), on the input's grid with its CRS and transform (``with_array``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from satcore.components import Batch, Captioner, Generator, Params, Recognizer
from satcore.data import Item, Raster
from satcore.errors import ComponentError

COLOURS = ("red", "green", "blue")


def brightness(raster: Raster) -> float:
    """Mean of all pixels and bands in ``[0, 1]``: integers over their type's maximum, floats as they are."""
    arr = raster.array
    scale = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
    return float(np.clip(arr.astype(np.float64).mean() / scale, 0.0, 1.0))


def _images(item: Item) -> list[Raster]:
    if not item.images:
        raise ComponentError("the item has no image (a toy component needs at least one)", item.item_id)
    return item.images


def _rgb(raster: Raster, item: Item) -> np.ndarray:
    if raster.count < 3:
        raise ComponentError(f"the image has {raster.count} band(s); the toy components need 3", item.item_id)
    return raster.array[:3].astype(np.float64)


class ToyRecognizerParams(Params):
    """Parameters of `toy-recognizer`."""

    labels: list[str] = Field(..., min_length=1, description="Labels, darkest first (K of them).")


class ToyRecognizer(Recognizer):
    """Ranks labels by how close the image's brightness is to each label's band centre."""

    name = "toy-recognizer"
    params_model = ToyRecognizerParams
    params: ToyRecognizerParams

    def rank(self, raster: Raster) -> dict[str, Any]:
        """``{"labels", "scores"}`` of one image, best first."""
        labels, b = self.params.labels, brightness(raster)
        scores = [-abs(b - (k + 0.5) / len(labels)) for k in range(len(labels))]
        order = sorted(range(len(labels)), key=lambda k: -scores[k])  # stable: ties keep the labels' order
        return {"labels": [labels[k] for k in order], "scores": [scores[k] for k in order]}

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            per_image = [self.rank(r) for r in _images(item)]
            result = dict(per_image[0])
            if len(per_image) > 1:
                result["images"] = per_image
            out.append(result)
        return out


class ToyCaptioner(Captioner):
    """Captions each image by its brightness and its strongest colour."""

    name = "toy-captioner"
    params_model = Params

    def caption(self, raster: Raster, item: Item) -> str:
        """``"a {bright|dark} {red|green|blue} scene"``."""
        colour = COLOURS[int(np.argmax(_rgb(raster, item).mean(axis=(1, 2))))]
        return f"a {'bright' if brightness(raster) > 0.5 else 'dark'} {colour} scene"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"captions": [self.caption(r, item) for r in _images(item)]} for item in batch]


class ToyGenerator(Generator):
    """Makes a 4-band float32 raster (red, green, blue, their mean) from the reference image."""

    name = "toy-generator"
    params_model = Params

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            ref = _images(item)[0]
            rgb = _rgb(ref, item).astype(np.float32)
            arr = np.concatenate([rgb, rgb.mean(axis=0, keepdims=True)]).astype(np.float32)
            out.append({"images": [ref.with_array(arr, ("red", "green", "blue", "mean"))]})
        return out


#: Every toy component, for ``register_components(*TOY_COMPONENTS, name="toyplugins")``.
TOY_COMPONENTS: tuple[type[Any], ...] = (ToyRecognizer, ToyCaptioner, ToyGenerator)

__all__ = ["COLOURS", "TOY_COMPONENTS", "ToyCaptioner", "ToyGenerator", "ToyRecognizer",
           "ToyRecognizerParams", "brightness"]
