"""The CycleGAN generators ``rgb-to-multispectral`` (G) and ``multispectral-to-rgb`` (F).

Both run their network over any image size by sliding windows with overlap blending
(:func:`satcore_generative.window.sliding_window`) and return rasters on the input's grid, built with
``raster.with_array`` so they keep its CRS and transform.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from satcore.components import Batch, Generator, Params
from satcore.data import Raster
from satcore.errors import ComponentError, MissingDependencyError, SpecError
from satcore_generative.bands import ESA_BANDS, RGB_BANDS, RGB_FROM_S2


class CycleGanParams(Params):
    """Parameters shared by both CycleGAN generators."""

    model: str = Field(
        ...,
        description="Model alias, checkpoint file (from `satcore train cyclegan`) or training folder.",
    )
    window: int = Field(64, ge=8, description="Side of the square sliding window in pixels (thesis: 64).")
    overlap: int = Field(
        32, ge=0, description="Pixels shared by neighbouring windows, blended with tent weights (0: none)."
    )
    batch_windows: int = Field(16, ge=1, description="Windows per forward pass.")
    input_max: float | None = Field(
        None, gt=0,
        description="Input value that maps to full scale (default: 255 for RGB, 10000 for Sentinel-2 L1C).",
    )
    output_max: float | None = Field(
        None, gt=0,
        description="Full-scale output value (default: 10000 for Sentinel-2 L1C, 255 for RGB).",
    )

    @model_validator(mode="after")
    def _overlap_below_window(self) -> CycleGanParams:
        if self.overlap >= self.window:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than window ({self.window})")
        return self


class _CycleGanGenerator(Generator):
    """Shared loading and sliding-window inference; subclasses set the direction."""

    params_model: ClassVar[type[Params]] = CycleGanParams
    params: CycleGanParams
    which: ClassVar[str] = "G"
    in_bands: ClassVar[int] = 3
    out_names: ClassVar[tuple[str, ...]] = ESA_BANDS
    default_in_max: ClassVar[float] = 255.0
    default_out_max: ClassVar[float] = 10000.0

    def setup(self) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise MissingDependencyError("torch", self.name, "pip install torch") from exc
        from satcore_generative.cyclegan import load_generator

        self._resolved = self.context.resolve_model(self.params.model)
        path = self._resolved.path
        if path is None or not path.is_file():
            raise SpecError(f"{self.name}: model {self.params.model!r} resolved to {path}, which is not a "
                            "checkpoint file; give a file written by `satcore train cyclegan` or its folder")
        self._device = self.context.torch_device()
        torch.set_num_threads(self.context.cpu_threads())
        try:
            self._net, self._cfg = load_generator(path, self.which, self._device)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise SpecError(f"{self.name}: {exc}; give a checkpoint written by "
                            "`satcore train cyclegan`") from exc
        self._torch = torch

    def models_used(self) -> list[dict[str, Any]]:
        """The checkpoint, with the generator used and its architecture."""
        resolved = getattr(self, "_resolved", None)
        if resolved is None:
            return []
        rec = resolved.manifest()
        rec.update({"step": self.step_id, "generator": self.which, "config": self._cfg.to_dict()})
        return [rec]

    def select_bands(self, raster: Raster, item_id: str) -> np.ndarray:
        """The input bands in the order the network expects, as float32."""
        raise NotImplementedError

    def _predict(self, tiles: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(tiles).to(self._device)
            out: np.ndarray = self._net(x).float().cpu().numpy()
            return out

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        in_max = self.params.input_max or self.default_in_max
        out_max = self.params.output_max or self.default_out_max
        out = []
        pairs = batch.with_inputs() if isinstance(batch, Batch) else ((it, it) for it in batch)
        for item, upstream in pairs:
            ref = input_raster(item, upstream)
            if ref is None:
                raise ComponentError(f"{self.name} needs an image; item {item.item_id!r} has none (and its "
                                     "input step made none)", item_id=item.item_id)
            x = self.select_bands(ref, item.item_id)
            x = np.clip(x / in_max, 0.0, 1.0) * 2.0 - 1.0  # the network's [-1, 1]
            y = sliding_window_run(x, self._predict, out_bands=len(self.out_names), window=self.params.window,
                                   overlap=self.params.overlap, batch=self.params.batch_windows)
            y = (np.clip(y, -1.0, 1.0) + 1.0) / 2.0 * out_max
            out.append({"images": [ref.with_array(y.astype(np.float32), band_names=self.out_names)]})
        return out


    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """The ``spectral`` block's units: what the output's scale means."""
        if block != "spectral":
            return {}
        out_max = self.params.output_max or self.default_out_max
        if self.which == "F":
            units = "8-bit" if out_max == 255 else f"RGB, 0–{out_max:g}"
        else:
            units = "reflectance" if out_max == 1 else f"reflectance ×{out_max:g}"
        return {"units": units}


def input_raster(item: Any, upstream: Any) -> Raster | None:
    """The image a step reads: its input generator's first image (chains), else the item's own image."""
    if isinstance(upstream, dict):
        images = upstream.get("images") or ([upstream["image"]] if upstream.get("image") is not None else [])
        if images and isinstance(images[0], Raster):
            return images[0]
    return item.reference if item.images else None


def sliding_window_run(x: np.ndarray, predict: Any, **kw: Any) -> np.ndarray:
    """:func:`satcore_generative.window.sliding_window` (imported here so tests can swap the model)."""
    from satcore_generative.window import sliding_window

    return sliding_window(x, predict, **kw)


class RgbToMultispectralGenerator(_CycleGanGenerator):
    """CycleGAN generator G: an RGB image → 13 Sentinel-2 bands in ESA order (B01 … B08, B8A, B09 … B12).

    Input bands: ``red green blue`` by name, or ``B04 B03 B02`` of a Sentinel-2 raster, or any 3 bands in
    RGB order. Output: float32 reflectance × ``output_max`` (default 10000, as Sentinel-2 L1C files).
    """

    name = "rgb-to-multispectral"
    which = "G"
    in_bands = 3
    out_names = ESA_BANDS
    default_in_max = 255.0
    default_out_max = 10000.0

    def select_bands(self, raster: Raster, item_id: str) -> np.ndarray:
        """Red, green, blue by name (RGB or Sentinel-2 names), else the raster's 3 bands."""
        names = tuple(raster.band_names)
        for wanted in (RGB_BANDS, RGB_FROM_S2):
            if all(n in names for n in wanted):
                return np.stack([raster.band(n) for n in wanted])
        if raster.array.shape[0] == 3:
            return raster.array.astype(np.float32)
        raise ComponentError(
            f"{self.name} needs an RGB image (bands red/green/blue, B04/B03/B02, or 3 bands); item "
            f"{item_id!r} has bands {list(names)}", item_id=item_id)


class MultispectralToRgbGenerator(_CycleGanGenerator):
    """CycleGAN generator F: 13 Sentinel-2 bands → an RGB image (``red green blue``).

    Input bands by ESA name in any order (reordered to ESA order), or 13 unnamed bands taken as ESA order.
    Output: float32 in ``[0, output_max]`` (default 255).
    """

    name = "multispectral-to-rgb"
    which = "F"
    in_bands = 13
    out_names = RGB_BANDS
    default_in_max = 10000.0
    default_out_max = 255.0

    def select_bands(self, raster: Raster, item_id: str) -> np.ndarray:
        """The 13 bands by ESA name in ESA order, else the raster's 13 bands as they are."""
        names = tuple(raster.band_names)
        if all(n in names for n in ESA_BANDS):
            return np.stack([raster.band(n) for n in ESA_BANDS])
        if raster.array.shape[0] == len(ESA_BANDS):
            return raster.array.astype(np.float32)
        raise ComponentError(
            f"{self.name} needs the 13 Sentinel-2 bands (B01 … B12 with B8A); item {item_id!r} has bands "
            f"{list(names)}", item_id=item_id)
