"""``segmentation-probs``: per date, the class probabilities of a trained UNet over the location's window.

The model is a ``satcore train segmentation`` folder (``model: runs/seg``) or an alias made from one with
``satcore models add``. Each date's window is read as RGB by band name, scaled by ``input_max`` into [0, 1]
(the scaling the network was trained with), segmented, and summarised:

- ``seg_<class>``: the mean softmax probability of the class over the window's valid pixels;
- ``seg_confidence``: the mean over valid pixels of the highest class probability (mean max-prob).

Pixels that are NaN or equal the raster's nodata in any RGB band are not valid; a date without a valid
pixel gives NaN in every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from satcore.components import Batch, Extractor, Params
from satcore.data import Raster
from satcore.errors import ComponentError, MissingDependencyError, SpecError
from satcore_timeseries.series import feature_output

#: Band-name triples tried in order when ``bands`` is not set.
RGB_CANDIDATES: tuple[tuple[str, str, str], ...] = (("red", "green", "blue"), ("B04", "B03", "B02"),
                                                   ("R", "G", "B"))


def select_rgb(raster: Raster, bands: Sequence[str] | None, item_id: str, step: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """The RGB bands ``(3, H, W)`` float32 and the valid-pixel mask ``(H, W)`` of one window.

    Args:
        raster: the window.
        bands: the three band names (red, green, blue); ``None``: the first of :data:`RGB_CANDIDATES` present.
        item_id: for the error message.
        step: the step id, for the error message.

    Raises:
        ComponentError: the bands are not in the raster.
    """
    names = list(raster.band_names)
    want: Sequence[str] | None = bands
    if want is None:
        want = next((c for c in RGB_CANDIDATES if all(n in names for n in c)), None)
    if want is None or not all(n in names for n in want):
        raise ComponentError(f"{step}: item {item_id!r} has bands {names}, not the RGB bands "
                             f"{list(want) if want else 'red/green/blue or B04/B03/B02'}; set `bands:` to "
                             "the three band names (red, green, blue)", item_id=item_id, step=step)
    x = np.stack([np.asarray(raster.array[names.index(n)], dtype=np.float32) for n in want])
    valid = np.asarray(np.isfinite(x).all(axis=0), dtype=bool)
    if raster.nodata is not None and np.isfinite(raster.nodata):
        valid &= ~(x == np.float32(raster.nodata)).any(axis=0)
    return x, valid


def model_or_path(v: str | None, info: ValidationInfo) -> str | None:
    """A ``model:``/``weights:`` value as the spec means it: an alias stays, a path is spec-relative."""
    import os
    from pathlib import Path

    from satcore.components import resolve_spec_path
    from satcore.registry import get_registry, looks_like_path

    if v is None:
        return v
    if info.field_name == "model" and (v in get_registry().models or not looks_like_path(v)):
        return v
    return str(resolve_spec_path(Path(os.path.expandvars(v)), info))


class SegmentationProbsParams(Params):
    """Parameters of ``segmentation-probs``."""

    model: str = Field(..., description="A `satcore train segmentation` folder, or an alias made from one "
                       "with `satcore models add`.")
    bands: tuple[str, str, str] | None = Field(
        None, description="The red, green and blue band names; default: red/green/blue, else B04/B03/B02.")
    input_max: float | None = Field(
        None, gt=0, description="Band value mapped to 1 (values are divided by it and clipped to [0, 1]); "
        "default: the model's (255, the 8-bit RGB it was trained on). For Sentinel-2 L2A reflectance "
        "(0-10000) a value near 3000 gives a similar look.")

    _spec_relative = field_validator("model")(model_or_path)


class SegmentationProbsExtractor(Extractor):
    """Per date: a trained UNet's class probabilities (window mean) and its confidence (mean max-prob)."""

    name = "segmentation-probs"
    params_model = SegmentationProbsParams
    consumes: ClassVar[tuple[str, ...]] = ("series",)
    produces: ClassVar[tuple[str, ...]] = ("features",)
    params: SegmentationProbsParams

    def setup(self) -> None:
        """Load the trained network (a training folder, an alias made from one, or a checkpoint)."""
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch comes with the `models` extra
            raise MissingDependencyError("torch", self.name,
                                         "pip install 'satcore-timeseries[models]'") from exc
        from satcore_timeseries import unet

        self._resolved = self.context.resolve_model(self.params.model)
        entry, path = self._resolved.entry, self._resolved.path
        if entry.get("family") not in (None, "checkpoint", "unet-segmentation") or path is None \
                or not path.is_file():
            raise SpecError(f"{self.name}: model {self.params.model!r} is not a `satcore train segmentation` "
                            f"model (family {entry.get('family')!r}, path {path}); give its training folder "
                            "or an alias added with `satcore models add`")
        self._device = self.context.torch_device()
        torch.set_num_threads(self.context.cpu_threads())
        try:
            self._net, self._meta = unet.load_checkpoint(path, self._device)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise SpecError(f"{self.name}: {path} is not a segmentation checkpoint ({exc}); give a folder "
                            "written by `satcore train segmentation`") from exc
        self._classes = [str(c) for c in self._meta["classes"]]
        self._stride = unet.stride_of(self._meta["arch"], int(self._meta.get("depth", 3)))
        self._input_max = self.params.input_max or float(self._meta.get("input_max", 255.0))

    @property
    def feature_names(self) -> list[str]:
        """``seg_<class>`` for each class, then ``seg_confidence``."""
        return [f"seg_{c}" for c in self._classes] + ["seg_confidence"]

    def models_used(self) -> list[dict[str, Any]]:
        """The checkpoint with its architecture and classes."""
        r = getattr(self, "_resolved", None)
        if r is None:
            return []
        rec: dict[str, Any] = r.manifest()
        rec.update(step=self.step_id, architecture=self._meta.get("arch"), classes=self._classes)
        return [rec]

    def window_features(self, raster: Raster, item_id: str) -> np.ndarray:
        """The K+1 features of one window (NaN when no pixel is valid)."""
        from satcore_timeseries import unet

        x, valid = select_rgb(raster, self.params.bands, item_id, self.step_id)
        row = np.full(len(self._classes) + 1, np.nan)
        if not valid.any():
            return row
        x = np.where(valid[None], np.clip(np.nan_to_num(x) / self._input_max, 0.0, 1.0), 0.0)
        probs = unet.predict_probs(self._net, x.astype(np.float32), self._device, self._stride)
        p = probs[:, valid].astype(np.float64)  # (C, n_valid)
        row[:-1] = p.mean(axis=1)
        row[-1] = p.max(axis=0).mean()
        return row

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """``feature_output(["seg_<class>", ..., "seg_confidence"], (T, K + 1))`` per item."""
        out = []
        for item in batch:
            if not item.images:
                raise ComponentError(f"{self.name}: item {item.item_id!r} has no image; it reads location "
                                     "series (one window per date)", item_id=item.item_id, step=self.step_id)
            rows = [self.window_features(r, item.item_id) for r in item.images]
            out.append(feature_output(self.feature_names, np.stack(rows)))
        return out
