"""``clip-labels``: scene labels ranked from the class probabilities of an input step (``clip-zeroshot``).

Reads the input's ``probabilities`` (``(n_images, K)``) and ``classes`` (K names); imports nothing from the
step that made them, so any extractor giving that shape will do.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from satcore.components import Batch, Params, Recognizer
from satcore.errors import ComponentError


class ClipLabelsParams(Params):
    """Parameters of ``clip-labels``."""

    top_k: int = Field(5, ge=1, le=64, description="Labels kept per image, best first.")
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="Input class → label (e.g. `residential area: resident`). Classes renamed to the same "
        "label add their probabilities; classes not named keep their own name.")
    drop_unnamed: bool = Field(False, description="Leave out classes `rename` does not name (so only the "
                               "dataset's labels are ranked).")


class ClipLabelsRecognizer(Recognizer):
    """Ranks labels by the class probabilities of an input step (clip-zeroshot's ``probabilities``)."""

    name: ClassVar[str] = "clip-labels"
    params_model: ClassVar[type[Params]] = ClipLabelsParams
    consumes: ClassVar[tuple[str, ...]] = ("probabilities",)
    params: ClipLabelsParams

    def _rank(self, probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
        totals: dict[str, float] = {}
        for c, p in zip(classes, probs, strict=True):
            lab = self.params.rename.get(c)
            if lab is None:
                if self.params.drop_unnamed:
                    continue
                lab = c
            totals[lab] = totals.get(lab, 0.0) + float(p)
        # stable: ties keep the input's class order
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])[: self.params.top_k]
        return {"labels": [k for k, _ in ranked], "scores": [v for _, v in ranked]}

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """One ranking per item for a scene; for pairs and series one per image (``images``)."""
        out = []
        for item, inp in batch.with_inputs():
            if not isinstance(inp, dict) or inp.get("probabilities") is None or inp.get("classes") is None:
                raise ComponentError(
                    f"item {item.item_id!r}: clip-labels needs `probabilities` and `classes` from its input "
                    "step (e.g. `input: <a clip-zeroshot step>`)", item_id=item.item_id, step=self.step_id)
            probs = np.atleast_2d(np.asarray(inp["probabilities"], dtype=np.float64))
            classes = tuple(str(c) for c in inp["classes"])
            if probs.shape[1] != len(classes) or probs.shape[0] == 0:
                raise ComponentError(
                    f"item {item.item_id!r}: probabilities of shape {probs.shape} do not fit {len(classes)} "
                    "classes", item_id=item.item_id, step=self.step_id)
            per_image = [self._rank(p, classes) for p in probs]
            out.append(per_image[0] if len(per_image) == 1 else {"images": per_image})
        return out
