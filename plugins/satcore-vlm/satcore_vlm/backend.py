"""One generic image + text → text generator over transformers (imported only when a model is loaded).

Three shapes of model, told apart by the checkpoint's ``config.json``:

* ``blip`` (BLIP captioning): ``BlipForConditionalGeneration`` + ``BlipProcessor``;
* ``vision-encoder-decoder`` (ViT + GPT-2 and the like): the model + its image processor and tokenizer;
* anything else: ``AutoModelForImageTextToText`` + ``AutoProcessor`` (Qwen2-VL, LLaVA, Idefics, …), the
  prompt wrapped by the processor's own chat template when it has one; :meth:`Generator.generate_joint`
  puts several images (a pair) into one chat message.

Greedy decoding runs batched; sampling runs one item at a time with the generator seeded from
``(seed, item_id)``, so an item's text never depends on its batch.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from satcore.errors import MissingDependencyError, SatcoreError

PromptMode = Literal["auto", "chat", "prefix", "none"]


class ModelLoadError(SatcoreError):
    """A checkpoint could not be loaded as an image-text-to-text model; the message says what to do."""


def item_seed(seed: int, item_id: str) -> int:
    """A 63-bit seed from the run seed and the item id (stable across processes and batches)."""
    h = hashlib.sha256(f"{seed}\0{item_id}".encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


def to_rgb_uint8(array: np.ndarray, band_names: tuple[str, ...] = ()) -> np.ndarray:
    """``(bands, H, W)`` → ``(H, W, 3)`` uint8 RGB.

    RGB bands by name or the first three; other dtypes stretched between the 2nd and 98th percentiles.
    """
    idx: list[int] | None = None
    for names in (("red", "green", "blue"), ("B04", "B03", "B02"), ("R", "G", "B")):
        if all(n in band_names for n in names):
            idx = [band_names.index(n) for n in names]
            break
    if idx is None:
        idx = [0, 0, 0] if array.shape[0] < 3 else [0, 1, 2]
    rgb = array[idx]
    if rgb.dtype != np.uint8:
        x = np.nan_to_num(rgb.astype(np.float32))
        lo, hi = np.percentile(x, [2, 98])
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        rgb = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(np.transpose(rgb, (1, 2, 0)))


def check_transformers(entry: dict[str, Any], alias: str) -> None:
    """Refuse, with what to do, an alias whose code needs another transformers than the installed one.

    The alias's ``transformers:`` field is a version range (``"<4.42"`` for MiniCPM-Llama3-V 2.5, whose
    remote code was written for 4.40).
    """
    spec = entry.get("transformers")
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("transformers", f"model {alias!r}",
                                     "pip install -c constraints.txt -e plugins/satcore-vlm") from exc
    if not spec:
        return
    from packaging.specifiers import SpecifierSet

    if transformers.__version__ not in SpecifierSet(str(spec)):
        raise ModelLoadError(
            f"model {alias!r} needs transformers{spec} (its repository's own code was written for that), but "
            f"transformers {transformers.__version__} is installed. Run it in a separate environment: "
            f"`python -m venv vlm-old && vlm-old/bin/pip install 'transformers{spec}' satcore "
            f"plugins/satcore-vlm`, or use another model alias (qwen2-vl-2b-instruct, blip-large)")


@dataclass
class Generator:
    """A loaded model + processor with a :meth:`generate` for lists of images."""

    model: Any
    processor: Any
    kind: str
    device: str
    dtype: Any
    tokenizer: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, entry: dict[str, Any], device: str, dtype: str, trust_remote_code: bool,
             log: logging.Logger) -> Generator:
        """Load the checkpoint folder ``path`` (a transformers ``save_pretrained`` folder or hub snapshot)."""
        import torch
        import transformers as tf

        folder = path if path.is_dir() else path.parent
        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        try:
            config = tf.AutoConfig.from_pretrained(folder, **kw)
        except Exception as exc:
            raise ModelLoadError(f"{folder}: not a transformers model folder ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}); it needs a config.json "
                                 "beside the weights (a `save_pretrained` folder or a hub snapshot)") from exc
        if dtype == "auto":
            tdtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) \
                if device.startswith("cuda") else torch.float32
        else:
            tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        kind = str(getattr(config, "model_type", ""))
        tokenizer: Any = None
        model: Any
        processor: Any
        if kind == "blip":
            model = tf.BlipForConditionalGeneration.from_pretrained(folder, dtype=tdtype)
            processor = tf.BlipProcessor.from_pretrained(folder)
        elif kind == "vision-encoder-decoder":
            model = tf.VisionEncoderDecoderModel.from_pretrained(folder, dtype=tdtype)
            processor = tf.AutoImageProcessor.from_pretrained(folder)  # type: ignore[no-untyped-call]
            tokenizer = tf.AutoTokenizer.from_pretrained(folder)
        else:
            model = tf.AutoModelForImageTextToText.from_pretrained(folder, dtype=tdtype, **kw)
            processor = tf.AutoProcessor.from_pretrained(folder, **kw)  # type: ignore[no-untyped-call]
            tok = getattr(processor, "tokenizer", None)
            if tok is not None:
                tok.padding_side = "left"  # decoder-only: new tokens follow the prompt directly
        model = model.to(device).eval()
        log.info("loaded %s (%s) on %s in %s", folder, kind, device, tdtype)
        return cls(model, processor, kind, device, tdtype, tokenizer,
                   {"model_type": kind, "transformers": tf.__version__, "dtype": str(tdtype).split(".")[-1]})

    def prompt_mode(self, mode: PromptMode) -> str:
        """The mode ``auto`` resolves to.

        ``chat`` with a chat template, ``none`` for BLIP and encoder-decoders (they caption unconditionally; a
        text there is a caption prefix, not an instruction), else ``prefix``.
        """
        if mode != "auto":
            return mode
        if getattr(self.processor, "chat_template", None):
            return "chat"
        return "none" if self.kind in ("blip", "vision-encoder-decoder") else "prefix"

    def chat_text(self, n_images: int, prompt: str) -> str:
        """The chat-template text of one user message: ``n_images`` images in order, then ``prompt``."""
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
        conv = [{"role": "user", "content": [*content, {"type": "text", "text": prompt}]}]
        return str(self.processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False))

    def _inputs(self, groups: list[list[np.ndarray]], prompt: str, mode: str) -> Any:
        """Processor inputs for one conversation per group (a group of several images: chat mode only)."""
        from PIL import Image

        pil = [Image.fromarray(a) for g in groups for a in g]
        if self.kind == "vision-encoder-decoder":
            return self.processor(images=pil, return_tensors="pt")
        if mode == "chat":
            # the processor matches the flat image list to the texts' image placeholders, in order
            text = [self.chat_text(len(g), prompt) for g in groups]
            return self.processor(images=pil, text=text, return_tensors="pt", padding=True)
        if mode == "prefix":
            return self.processor(images=pil, text=[prompt] * len(pil), return_tensors="pt", padding=True)
        return self.processor(images=pil, return_tensors="pt")

    def _decode(self, out: Any, inputs: Any) -> list[str]:
        tok = self.tokenizer or getattr(self.processor, "tokenizer", None) or self.processor
        if self.kind not in ("blip", "vision-encoder-decoder") and "input_ids" in inputs:
            out = out[:, inputs["input_ids"].shape[1]:]  # decoder-only: drop the echoed prompt
        return [t.strip() for t in tok.batch_decode(out, skip_special_tokens=True)]

    def generate(self, images: list[np.ndarray], prompt: str, *, mode: PromptMode = "auto",
                 max_new_tokens: int = 64, temperature: float = 0.0,
                 seeds: list[int] | None = None) -> list[str]:
        """One text per image: greedy and batched when ``temperature`` is 0, else sampled per image."""
        return self._generate([[a] for a in images], prompt, self.prompt_mode(mode), max_new_tokens,
                              temperature, seeds)

    def generate_joint(self, groups: list[list[np.ndarray]], prompt: str, *, max_new_tokens: int = 64,
                       temperature: float = 0.0, seeds: list[int] | None = None) -> list[str]:
        """One text per group: all of a group's images in one chat message, in order, then ``prompt``.

        Needs a chat template that takes several images (:func:`satcore_vlm.pairs.joint_problem`).
        """
        return self._generate(groups, prompt, "chat", max_new_tokens, temperature, seeds)

    def _generate(self, groups: list[list[np.ndarray]], prompt: str, m: str, max_new_tokens: int,
                  temperature: float, seeds: list[int] | None) -> list[str]:
        import torch

        if not groups:
            return []
        gen: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        with torch.inference_mode():
            if temperature <= 0:
                inputs = self._inputs(groups, prompt, m).to(self.device)
                inputs = _cast_pixels(inputs, self.dtype)
                out = self.model.generate(**inputs, do_sample=False, num_beams=1, **gen)
                return self._decode(out, inputs)
            texts = []
            for g, s in zip(groups, seeds or [0] * len(groups), strict=True):
                torch.manual_seed(s)
                inputs = _cast_pixels(self._inputs([g], prompt, m).to(self.device), self.dtype)
                out = self.model.generate(**inputs, do_sample=True, temperature=temperature, **gen)
                texts.extend(self._decode(out, inputs))
            return texts


def _cast_pixels(inputs: Any, dtype: Any) -> Any:
    """Pixel tensors in the model's precision (token ids stay integers)."""
    for k in ("pixel_values",):
        if k in inputs and inputs[k].is_floating_point():
            inputs[k] = inputs[k].to(dtype)
    return inputs
