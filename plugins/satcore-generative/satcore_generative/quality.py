"""Extractor ``image-quality``: Inception features of generated and real images, and CLIPScore.

Reads a generator step (``input: <generator>``) and the item: the generated image (``images[0]``) and the
real one (the item's ``target``) go through torchmetrics' Inception-v3 (``NoTrainInceptionV3``, the FID
network of torch-fidelity: 2048-D pool features and the unbiased logits), so the core's ``image_quality``
block computes FID, KID and the Inception Score. With ``clip_model:``, the CLIPScore (torchmetrics
``CLIPScore``: ``100 · max(cos(image, text), 0)``) between the caption/prompt and the generated image joins
the block as ``clip_score`` (its mean over items).

The Inception weights are torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (a download,
never fetched here): the alias ``inception-v3-fid``, or a local file as ``inception:``/``weights:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from satcore.components import Batch, Extractor, Params, resolve_spec_path
from satcore.data import Item, Raster
from satcore.errors import ComponentError, MissingDependencyError

INCEPTION_ALIAS = "inception-v3-fid"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


class ImageQualityParams(Params):
    """Parameters of ``image-quality``."""

    inception: str = Field(INCEPTION_ALIAS, description="The Inception-v3 FID weights: the alias "
                           "inception-v3-fid or a local torch-fidelity .pth file.")
    weights: str | None = Field(None, description="Explicit Inception weights file (searched first).")
    clip_model: str | None = Field(None, description="A CLIP model (transformers folder or alias) for the "
                                   "CLIPScore of the prompt/caption and the generated image. Unset: none.")
    inception_scores: bool = Field(True, description="Compute Inception features (FID, KID, IS); false: only "
                                   "the CLIPScore.")

    @field_validator("inception", "weights", "clip_model")
    @classmethod
    def _spec_relative(cls, v: str | None, info: ValidationInfo) -> str | None:
        from satcore.registry import get_registry, looks_like_path

        if v is None or (v in get_registry().models or not looks_like_path(v)):
            return v
        return str(resolve_spec_path(Path(os.path.expandvars(v)), info))


def to_uint8_rgb(r: Raster) -> np.ndarray:
    """``(3, H, W)`` uint8: RGB bands by name (``red green blue`` / ``B04 B03 B02``) or the first three.

    uint8 as it is; RGB on the 8-bit scale (a generator's ``[0, 255]`` floats) rounded; anything else
    stretched between its 2nd and 98th percentiles.
    """
    names = tuple(r.band_names)
    idx = [0, 1, 2] if r.array.shape[0] >= 3 else [0, 0, 0]
    for want in (("red", "green", "blue"), ("B04", "B03", "B02")):
        if all(n in names for n in want):
            idx = [names.index(n) for n in want]
    a = np.nan_to_num(r.array[idx].astype(np.float32))
    rgb8 = names[:3] == ("red", "green", "blue") and a.min() >= 0 and a.max() <= 255
    if r.array.dtype == np.uint8 or rgb8:
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    lo, hi = np.percentile(a, [2, 98])
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def real_image(item: Item) -> Raster | None:
    """The item's target raster (``targets["target"]``, else its only target)."""
    t = item.targets or {}
    return t.get("target") or (next(iter(t.values())) if len(t) == 1 else None)


class ImageQualityExtractor(Extractor):
    """Inception features (FID, KID, IS) and CLIPScore of a generator's images (``image_quality`` block)."""

    name = "image-quality"
    params_model: ClassVar[type[Params]] = ImageQualityParams
    params: ImageQualityParams
    consumes: ClassVar[tuple[str, ...]] = ("images",)
    produces: ClassVar[tuple[str, ...]] = ("features",)

    def setup(self) -> None:
        """Load the Inception network (and the CLIP model) from local files."""
        try:
            import torch
            import torchmetrics  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("torchmetrics", self.name,
                                         "pip install torchmetrics torch-fidelity") from exc
        p = self.params
        self._torch = torch
        self._models: list[dict[str, Any]] = []
        self._net = None
        if p.inception_scores:
            res = self.context.resolve_model(p.inception, p.weights)
            self._models.append({**res.manifest(), "step": self.step_id, "role": "inception"})
            self._net = self.build_network(Path(res.path or ""))
        self._clip = None
        if p.clip_model:
            res = self.context.resolve_model(p.clip_model)
            self._models.append({**res.manifest(), "step": self.step_id, "role": "clip"})
            self._clip = self.build_clip(Path(res.path or ""))

    def build_network(self, weights: Path) -> Any:
        """``images uint8 (N, 3, H, W) → (features (N, F), logits (N, C))``: torchmetrics' FID Inception.

        Tests override this with a tiny module (the Inception weights are a 92 MB download).
        """
        from torchmetrics.image.fid import NoTrainInceptionV3

        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048", "logits_unbiased"],
                                 feature_extractor_weights_path=str(weights))
        # NoTrainInceptionV3.forward returns only the first feature; this returns both in one pass
        return lambda x: tuple(t.reshape(x.shape[0], -1) for t in net._torch_fidelity_forward(x))

    def build_clip(self, folder: Path) -> Any:
        """Torchmetrics' ``CLIPScore`` on a local transformers CLIP folder."""
        import torch
        from torchmetrics.multimodal.clip_score import CLIPScore
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(str(folder))
        # torchmetrics 1.9 expects tensors from get_*_features; transformers 5 returns an output object whose
        # pooler_output is the projected embedding
        for name in ("get_image_features", "get_text_features"):
            fn = getattr(model, name)
            setattr(model, name, lambda *a, _fn=fn, **k: (
                out if isinstance(out := _fn(*a, **k), torch.Tensor) else out.pooler_output))
        return CLIPScore(model_name_or_path=lambda: (model, CLIPProcessor.from_pretrained(str(folder))))

    def models_used(self) -> list[dict[str, Any]]:
        """The Inception weights and CLIP model used."""
        return list(getattr(self, "_models", []))

    def _features(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            feats, logits = self._net(torch.from_numpy(img)[None])  # type: ignore[misc]
            probs = torch.softmax(logits.double(), dim=1)
        return feats[0].double().numpy(), probs[0].numpy()

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Per item: ``features``, ``real_features`` (with a target), ``probabilities``, ``clip_score``."""
        out = []
        for item, upstream in batch.with_inputs():
            images = upstream.get("images") if isinstance(upstream, dict) else None
            if not images:
                raise ComponentError(f"{self.step_id} reads a generator step's images; its input gave none "
                                     f"for item {item.item_id!r} (set `input:` to the generator)",
                                     item_id=item.item_id)
            gen = to_uint8_rgb(images[0])
            rec: dict[str, Any] = {}
            if self._net is not None:
                rec["features"], rec["probabilities"] = self._features(gen)
                real = real_image(item)
                if real is not None:
                    rec["real_features"] = self._features(to_uint8_rgb(real))[0]
            if self._clip is not None:
                text = upstream.get("prompt") or item.text or (item.texts[0] if item.texts else None)
                if text:
                    self._clip.reset()
                    with self._torch.inference_mode():
                        rec["clip_score"] = float(self._clip(self._torch.from_numpy(gen), str(text)))
            out.append(rec)
        return out

    def metric_truth(self, block: str, item: Item, output: Any) -> Any | None:
        """``real_features``, or an empty vector when only generated-side values (IS, CLIPScore) exist."""
        if block != "image_quality" or not isinstance(output, dict):
            return None
        return output.get("real_features") if output.get("real_features") is not None else ()

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """``features`` (empty when the Inception scores are off)."""
        if block != "image_quality" or not isinstance(output, dict):
            return None
        return output.get("features") if output.get("features") is not None else ()

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """``probabilities`` (for IS) and ``clip_score``."""
        if block != "image_quality" or not isinstance(output, dict):
            return {}
        return {k2: output[k] for k, k2 in (("probabilities", "probs"), ("clip_score", "clip_score"))
                if output.get(k) is not None}
