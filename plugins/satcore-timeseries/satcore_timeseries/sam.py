"""``segment-anything-point``: Segment Anything prompted with the location's point, per date.

Segment Anything (Kirillov et al. 2023) through transformers (``SamModel`` + ``SamProcessor``; alias
``sam-vit-base`` → ``facebook/sam-vit-base``, or any ``save_pretrained`` SAM folder). Each date's window is
read as RGB by band name, scaled to 8 bits (``value / input_max · 255``, clipped), and prompted with one
positive point: the centre of the window's centre pixel ``(W // 2 + 0.5, H // 2 + 0.5)``, which is the
location's pixel in a ``geotiff-series`` window. SAM returns three candidate masks (``multimask_output``)
with a predicted IoU each. The two features (the thesis's SAM features):

- ``sam_iou_pred``: the highest predicted IoU of the three candidates;
- ``sam_mask_score``: for the candidate with that highest predicted IoU, the mean sigmoid mask probability
  over the pixels inside its mask (mask logit > 0, at the window's resolution after
  ``SamProcessor.post_process_masks``); 0 when that mask is empty.

A date whose prompt pixel is NaN/nodata gives NaN in both columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from satcore.components import Batch, Extractor, Params
from satcore.data import Raster
from satcore.errors import ComponentError, MissingDependencyError, SatcoreError
from satcore_timeseries.segmentation import model_or_path, select_rgb
from satcore_timeseries.series import feature_output

FEATURES = ("sam_iou_pred", "sam_mask_score")


class SamPointParams(Params):
    """Parameters of ``segment-anything-point``."""

    model: str = Field("sam-vit-base", description="A Segment Anything alias (sam-vit-base) or a "
                       "transformers SAM folder (`save_pretrained` output or hub snapshot).")
    weights: str | None = Field(None, description="Explicit model folder for the alias (searched first); "
                                "default: $SATCORE_MODELS/<alias>/, then the Hugging Face cache.")
    bands: tuple[str, str, str] | None = Field(
        None, description="The red, green and blue band names; default: red/green/blue, else B04/B03/B02.")
    input_max: float = Field(255.0, gt=0, description="Band value shown as full brightness (255 for 8-bit "
                             "RGB; about 3000 for Sentinel-2 reflectance 0-10000).")

    _spec_relative = field_validator("model", "weights")(model_or_path)


class SamPointExtractor(Extractor):
    """Per date: Segment Anything prompted with the location's point; highest predicted IoU and mask score."""

    name = "segment-anything-point"
    params_model = SamPointParams
    consumes: ClassVar[tuple[str, ...]] = ("series",)
    produces: ClassVar[tuple[str, ...]] = ("features",)
    params: SamPointParams

    def setup(self) -> None:
        """Find the weights (missing: exit 1 naming the alias, the places searched and the fix) and load."""
        try:
            import torch
            import transformers as tf
        except ImportError as exc:  # pragma: no cover - both come with the `models` extra
            raise MissingDependencyError("transformers", self.name,
                                         "pip install 'satcore-timeseries[models]'") from exc
        # missing weights → MissingWeightsError (exit 1) naming the alias, the places searched and the fix
        self._resolved = self.context.resolve_model(self.params.model, self.params.weights)
        path = Path(self._resolved.path) if self._resolved.path is not None else None
        if path is None:  # pragma: no cover - resolve() returns a path or raises
            raise SatcoreError(f"{self.name}: model {self.params.model!r} resolved to no path")
        folder = path if path.is_dir() else path.parent
        self._device = self.context.torch_device()
        torch.set_num_threads(self.context.cpu_threads())
        try:
            model: Any = tf.SamModel.from_pretrained(folder)
            self._model = model.to(self._device).eval()
            self._processor = tf.SamProcessor.from_pretrained(folder)
        except Exception as exc:
            raise SatcoreError(f"{self.name}: {folder} is not a transformers Segment Anything folder "
                                 f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}); it "
                                 "needs config.json, the weights and preprocessor_config.json "
                                 "(hf download facebook/sam-vit-base)") from exc
        self._torch = torch

    def models_used(self) -> list[dict[str, Any]]:
        """The alias (or folder) loaded."""
        r = getattr(self, "_resolved", None)
        if r is None:
            return []
        rec: dict[str, Any] = r.manifest()
        rec["step"] = self.step_id
        return [rec]

    def window_features(self, raster: Raster, item_id: str) -> np.ndarray:
        """``[iou_pred, mask_score]`` of one window (NaN when the prompt pixel is not valid)."""
        x, valid = select_rgb(raster, self.params.bands, item_id, self.step_id)
        h, w = valid.shape
        px, py = w // 2, h // 2
        if not valid[py, px]:
            return np.full(2, np.nan)
        rgb = np.where(valid[None], np.clip(np.nan_to_num(x) / self.params.input_max, 0.0, 1.0), 0.0)
        img = np.round(rgb * 255.0).astype(np.uint8).transpose(1, 2, 0)
        iou, logits = sam_point(self._model, self._processor, img, (px + 0.5, py + 0.5), self._device)
        best = int(np.argmax(iou))
        inside = logits[best] > 0
        prob = 1.0 / (1.0 + np.exp(-logits[best].astype(np.float64)))
        score = float(prob[inside].mean()) if inside.any() else 0.0
        return np.array([float(iou[best]), score])

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """``feature_output(["sam_iou_pred", "sam_mask_score"], (T, 2))`` per item."""
        out = []
        for item in batch:
            if not item.images:
                raise ComponentError(f"{self.name}: item {item.item_id!r} has no image; it reads location "
                                     "series (one window per date)", item_id=item.item_id, step=self.step_id)
            rows = [self.window_features(r, item.item_id) for r in item.images]
            out.append(feature_output(list(FEATURES), np.stack(rows)))
        return out


def sam_point(model: Any, processor: Any, image: np.ndarray, point: tuple[float, float], device: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """One SAM forward with one positive point.

    Args:
        model: a transformers ``SamModel``.
        processor: its ``SamProcessor``.
        image: ``(H, W, 3)`` uint8.
        point: ``(x, y)`` in pixels of ``image``.
        device: the torch device.

    Returns:
        ``(iou_scores (3,), mask_logits (3, H, W))`` of the multimask output, the logits upscaled to the
        image's size by ``processor.post_process_masks``.
    """
    import torch

    inputs = processor(images=image, input_points=[[[float(point[0]), float(point[1])]]], return_tensors="pt")
    with torch.inference_mode():
        out = model(**{k: v.to(device) for k, v in inputs.items()}, multimask_output=True)
    masks = processor.post_process_masks(out.pred_masks.float().cpu(), inputs["original_sizes"],
                                         inputs["reshaped_input_sizes"], binarize=False)
    iou = out.iou_scores[0, 0].float().cpu().numpy()
    return iou, masks[0][0].numpy()
