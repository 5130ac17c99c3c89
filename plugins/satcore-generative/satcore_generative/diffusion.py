"""Generator ``text-to-image``: a diffusers text-to-image pipeline (Stable Diffusion 2.1 base by default).

The pipeline comes from a model alias (``sd-2-1-base``: the community mirror of the removed official
repository, at a pinned revision; ``registry.yaml``), any local diffusers folder (``save_pretrained``
output, with ``model_index.json``), or a ``satcore train text-to-image`` folder (its base pipeline with the
fine-tuned UNet or LoRA adapter). torch and diffusers are imported in ``setup()`` only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from satcore.components import Batch, Generator, Params, resolve_spec_path
from satcore.data import Item, Raster
from satcore.errors import ComponentError, MissingDependencyError, MissingWeightsError, SpecError

DEFAULT_MODEL = "sd-2-1-base"


def item_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the run seed and an item key (stable across processes, batches and devices)."""
    h = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


class TextToImageParams(Params):
    """Parameters of ``text-to-image``."""

    model: str = Field(DEFAULT_MODEL, description="A diffusers model alias from registry.yaml (sd-2-1-base), "
                       "a local diffusers pipeline folder, or a `satcore train text-to-image` folder.")
    weights: str | None = Field(None, description="Explicit pipeline folder for the alias (searched first).")
    prompt: str | None = Field(
        None, description="The prompt when no caption step is the input. With `{caption}` in it, a template "
        "the input caption (or the item's text) is put into.")
    negative_prompt: str | None = Field(None, description="What the image should not show (classifier-free "
                                        "guidance's negative prompt).")
    steps: int = Field(50, ge=1, le=1000, description="Denoising steps.")
    guidance: float = Field(7.5, ge=0.0, description="Classifier-free guidance scale (≤ 1: no guidance).")
    height: int | None = Field(None, ge=8, multiple_of=8, description="Image height (default: the model's).")
    width: int | None = Field(None, ge=8, multiple_of=8, description="Image width (default: the model's).")
    images_per_prompt: int = Field(1, ge=1, le=16, description="Images generated for each item.")
    seed: int | None = Field(None, description="Seed (default: execution.seed). Each image's noise is drawn "
                             "from (seed, item id, image index), so an item's images never depend on its "
                             "batch.")
    batch_size: int | None = Field(None, ge=1, description="Images per pipeline call (default: "
                                   "execution.batch_size).")
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Precision; auto = fp16 on CUDA (bf16 where supported), fp32 on the CPU.")

    @field_validator("model", "weights")
    @classmethod
    def _spec_relative(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        from satcore.registry import get_registry, looks_like_path

        if info.field_name == "model" and (v in get_registry().models or not looks_like_path(v)):
            return v
        return str(resolve_spec_path(Path(os.path.expandvars(v)), info))


def caption_of(upstream: Any) -> str | None:
    """The caption an input step produced (``caption``, else the first of ``captions``), if any.

    A list input (``dict`` step id → output) is searched in the spec's order.
    """
    if isinstance(upstream, dict):
        if isinstance(upstream.get("caption"), str):
            return str(upstream["caption"])
        caps = upstream.get("captions")
        if isinstance(caps, (list, tuple)) and caps and isinstance(caps[0], str):
            return str(caps[0])
        for v in upstream.values():
            if isinstance(v, dict) and (found := caption_of(v)):
                return found
    return None


class TextToImageGenerator(Generator):
    """Text → RGB image with a diffusers pipeline (Stable Diffusion 2.1 base by default).

    The prompt: the input caption step's caption, else the spec's ``prompt``, else the item's ``text``
    (a ``prompt`` with ``{caption}`` is a template for the other two). Output: ``red green blue``,
    float32 in [0, 255].
    """

    name = "text-to-image"
    params_model: ClassVar[type[Params]] = TextToImageParams
    params: TextToImageParams
    consumes: ClassVar[tuple[str, ...]] = ("text",)
    #: a caption step's output is a prompt too
    consumes_any: ClassVar[tuple[tuple[str, ...], ...]] = (("text",), ("captions",))

    def setup(self) -> None:
        """Resolve the pipeline (alias, folder or training folder) and load it on the run's device."""
        try:
            import diffusers  # noqa: F401
            import torch
        except ImportError as exc:
            raise MissingDependencyError(
                "diffusers", self.name, "pip install -c constraints.txt -e plugins/satcore-generative"
            ) from exc
        p = self.params
        try:
            self._resolved = self.context.resolve_model(p.model, p.weights)
        except MissingWeightsError as exc:
            fix = how_to_supply(exc.alias, self._entry(p.model))
            raise MissingWeightsError(exc.alias, exc.searched, fix) from exc
        self._device = self.context.torch_device()
        if self._device == "cpu":
            torch.set_num_threads(self.context.cpu_threads())
        self._dtype = pick_dtype(p.dtype, self._device)
        self._pipe, self._info = load_pipeline(Path(self._resolved.path or ""), dict(self._resolved.entry),
                                               self._dtype, self._device)
        self._torch = torch

    def _entry(self, alias: str) -> dict[str, Any]:
        reg = self.context.registry
        if reg is None:
            from satcore.registry import get_registry

            reg = get_registry()
        return dict(reg.models.get(alias) or {})

    def models_used(self) -> list[dict[str, Any]]:
        """The pipeline (alias or folder), with its class, scheduler, precision and any fine-tuning."""
        r = getattr(self, "_resolved", None)
        if r is None:
            return []
        rec = r.manifest()
        rec.update({"step": self.step_id, **self._info, "dtype": str(self._dtype).replace("torch.", "")})
        return [rec]

    def prompt_for(self, item: Item, upstream: Any) -> str:
        """The item's prompt (see the class docstring)."""
        cap = caption_of(upstream)
        text = cap if cap is not None else item.text or (item.texts[0] if item.texts else None)
        tpl = self.params.prompt
        if tpl and "{caption}" in tpl:
            if text is None:
                raise ComponentError(f"{self.step_id}: prompt {tpl!r} has {{caption}}, but item "
                                     f"{item.item_id!r} has no caption input and no text",
                                     item_id=item.item_id)
            return tpl.replace("{caption}", text)
        found = cap if cap is not None else tpl or text
        if not found:
            raise ComponentError(f"{self.step_id}: no prompt for item {item.item_id!r}: give the step a "
                                 "caption step as `input:`, a `prompt:`, or items with text",
                                 item_id=item.item_id)
        return found

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Images for each item, generated ``batch_size`` at a time."""
        p = self.params
        seed = self.context.seed if p.seed is None else p.seed
        jobs: list[tuple[int, str, int]] = []  # (item index, prompt, image seed)
        prompts = []
        for i, (item, upstream) in enumerate(batch.with_inputs()):
            prompt = self.prompt_for(item, upstream)
            prompts.append(prompt)
            jobs += [(i, prompt, item_seed(seed, f"{item.item_id}/{k}")) for k in range(p.images_per_prompt)]
        images: list[np.ndarray] = []
        bs = p.batch_size or self.context.batch_size
        for k in range(0, len(jobs), bs):
            images += self.generate([j[1] for j in jobs[k:k + bs]], [j[2] for j in jobs[k:k + bs]])
        out: list[dict[str, Any]] = [{"images": [], "prompt": pr, "seed": seed} for pr in prompts]
        for (i, _, _), img in zip(jobs, images, strict=True):
            out[i]["images"].append(Raster(img, band_names=("red", "green", "blue")))
        return out

    def generate(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray]:
        """``(3, H, W)`` float32 images in [0, 255], one per prompt, each from its own CPU-seeded noise."""
        torch = self._torch
        p = self.params
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        with torch.inference_mode():
            res = self._pipe(prompt=prompts, negative_prompt=[p.negative_prompt] * len(prompts)
                             if p.negative_prompt else None, num_inference_steps=p.steps,
                             guidance_scale=p.guidance, height=p.height, width=p.width, generator=gens,
                             output_type="np")
        arr = np.asarray(res.images, dtype=np.float32)  # (N, H, W, 3) in [0, 1]
        # float32 on the 8-bit scale, not rounded to uint8: rounding would turn the last-bit noise of batched
        # convolutions into whole steps, and an item's image must not depend on its batch
        return [np.ascontiguousarray(np.clip(a, 0, 1).transpose(2, 0, 1) * np.float32(255)) for a in arr]

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """The ``spectral`` block's units: 8-bit RGB."""
        return {"units": "8-bit"} if block == "spectral" else {}


def pick_dtype(name: str, device: str) -> Any:
    """The torch dtype for ``dtype:`` on ``device`` (fp16/bf16 only where they compute: CUDA)."""
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name in ("fp16", "bf16") and not device.startswith("cuda"):
        raise SpecError(f"text-to-image: dtype {name} needs a CUDA device (this run uses {device}); use fp32 "
                        "or auto on the CPU")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def how_to_supply(alias: str, entry: dict[str, Any]) -> str:
    """How to put a diffusers pipeline in place (the whole folder, not one file)."""
    from satcore.registry import models_dir

    target = models_dir() / alias
    lines = [f"put the whole diffusers pipeline folder (with model_index.json, unet/, vae/, text_encoder/, "
             f"tokenizer/, scheduler/) at {target}"]
    if entry.get("hf_repo"):
        rev = f" --revision {entry['revision']}" if entry.get("revision") else ""
        lines.append(f"on a machine with internet: `hf download {entry['hf_repo']}{rev} --local-dir "
                     f"{target}` (or copy a populated Hugging Face cache)")
    lines.append("or set `model: /path/to/diffusers-folder` (any save_pretrained pipeline) or `weights:` on "
                 "the step")
    return "; ".join(lines)


def load_pipeline(path: Path, entry: dict[str, Any], dtype: Any, device: str) -> tuple[Any, dict[str, Any]]:
    """The pipeline in ``path`` (a diffusers folder, or a training checkpoint on its base), on ``device``."""
    from diffusers import DiffusionPipeline

    info: dict[str, Any] = {}
    base = path
    if entry.get("training_folder"):
        base = Path(str(entry.get("base_path") or ""))
        info.update(training_folder=entry["training_folder"], finetune=entry.get("mode"), base=str(base))
    if not (base / "model_index.json").is_file():
        where = f"{base} (the base pipeline of {path})" if base != path else str(path)
        raise SpecError(f"text-to-image: {where} is not a diffusers pipeline folder (no model_index.json); "
                        "give a `save_pretrained` folder, a model alias, or a `satcore train text-to-image` "
                        "folder")
    try:
        pipe = DiffusionPipeline.from_pretrained(str(base), dtype=dtype, local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise SpecError(f"text-to-image: {base} could not be loaded as a diffusers pipeline: {exc}") from exc
    if entry.get("training_folder"):
        apply_finetune(pipe, path, str(entry.get("mode")))
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    info.update(pipeline=type(pipe).__name__, scheduler=type(pipe.scheduler).__name__)
    return pipe, info


def apply_finetune(pipe: Any, checkpoint: Path, mode: str) -> None:
    """Put a ``satcore train text-to-image`` checkpoint's UNet (full) or LoRA adapter (lora) into ``pipe``."""
    if mode == "lora":
        pipe.unet.load_lora_adapter(str(checkpoint / "lora"), prefix=None, use_safetensors=True,
                                    adapter_name="default")
    elif mode == "full":
        from diffusers import UNet2DConditionModel

        pipe.unet = UNet2DConditionModel.from_pretrained(str(checkpoint / "unet"), dtype=pipe.unet.dtype)
    else:
        raise SpecError(f"text-to-image: the training checkpoint {checkpoint} has mode {mode!r}; expected "
                        "full or lora")
