"""``clip-zeroshot``: per-image class probabilities (softmax over class prompts) and image embeddings."""

from __future__ import annotations

import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from satcore.components import Batch, Extractor, Params
from satcore.errors import ComponentError, MissingDependencyError, MissingWeightsError, SpecError

BUNDLED_CLASSES = ("satellite-32",)
BUNDLED_TEMPLATES = ("default", "ensemble", "names")


class ClipZeroShotParams(Params):
    """Parameters of ``clip-zeroshot``."""

    model: str = Field(
        "clip-vit-b32",
        description="A model alias from registry.yaml (clip-vit-b32, "
        "remoteclip-vit-b32, georsclip-vit-b32, skyclip-vit-l14, …) or a local checkpoint path. "
        "Changing this line is the whole swap between CLIP families.",
    )
    weights: str | None = Field(
        None,
        description="Explicit weight file or open_clip folder for the alias (searched "
        "first); default: $SATCORE_MODELS/<alias>/, then the Hugging Face cache.",
    )
    architecture: str | None = Field(
        None,
        validate_default=True,
        description="open_clip architecture when `model` is a bare checkpoint "
        "path (aliases carry their own).",
    )
    classes: str | list[str] = Field(
        "satellite-32",
        description="Class names: a bundled set (satellite-32: the "
        "thesis's 32 classes), a list, or a text file with one class per line.",
    )
    templates: str | list[str] = Field(
        "default",
        description="Prompt templates with `{}` for the class: `default` "
        "('a satellite image of {}'), `ensemble` (text embeddings averaged over "
        "several templates), `names` (the bare class names, as the thesis fed them), a list, or a text file.",
    )
    batch_size: int | None = Field(
        None, ge=1, description="Images per forward pass (default: execution.batch_size)."
    )
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Model precision; auto = bf16 on CUDA when supported (else fp16), fp32 on the CPU.",
    )
    cache: bool = Field(
        True,
        description="Reuse image embeddings across runs ($SATCORE_CACHE/embeddings, keyed by "
        "model weights and image content).",
    )
    compile: bool = Field(False, description="torch.compile the image encoder (worth it for long GPU runs).")
    top_k: int = Field(3, ge=1, le=32, description="Classes listed in the top_classes columns.")
    save_probabilities: bool = Field(
        True,
        description="Write each image's class probabilities to results.parquet (`probabilities_before` / "
        "`probabilities_after`, or `probabilities` for one image; lists in the order of the classes).",
    )
    value_max: float | None = Field(
        None,
        gt=0,
        description="For non-uint8 images: the value mapped to white "
        "(e.g. 3000 for Sentinel-2 L1C); default: a 2–98 percentile stretch per image.",
    )

    # checked when the spec is validated (`satcore validate`, exit 2), not after a model has loaded
    @field_validator("classes")
    @classmethod
    def _classes_resolve(cls, v: str | list[str], info: ValidationInfo) -> str | list[str]:
        try:
            resolve_classes(v, _base_dir(info))
        except SpecError as exc:  # located at the field already: no "classes: " in front
            raise ValueError(str(exc).removeprefix("classes: ")) from None
        return v

    @field_validator("templates")
    @classmethod
    def _templates_resolve(cls, v: str | list[str], info: ValidationInfo) -> str | list[str]:
        try:
            resolve_templates(v, _base_dir(info))
        except SpecError as exc:
            raise ValueError(str(exc).removeprefix("templates: ")) from None
        return v

    @field_validator("model")
    @classmethod
    def _model_spec_relative(cls, v: str, info: ValidationInfo) -> str:
        # unknown aliases are the core's to report (it checks every step's `model:`, with did-you-mean)
        from satcore.registry import get_registry, looks_like_path

        if v in get_registry().models or not looks_like_path(v):
            return v
        return _spec_relative(v, info)

    @field_validator("weights")
    @classmethod
    def _weights_spec_relative(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _spec_relative(v, info)

    @field_validator("architecture")
    @classmethod
    def _path_has_architecture(cls, v: str | None, info: ValidationInfo) -> str | None:
        from satcore.registry import get_registry, looks_like_path

        model = info.data.get("model")
        if v or model is None or model in get_registry().models or not looks_like_path(model):
            return v  # an unknown alias is reported by the core
        if not Path(model).expanduser().is_dir():
            raise ValueError(
                f"model {model!r} is a checkpoint path, not an alias: add `architecture:` (its "
                "open_clip name, e.g. ViT-B-32-quickgelu for OpenAI-initialised weights), or register it as "
                "an alias with its architecture and loading settings (docs/models.md)"
            )
        return v


def _spec_relative(value: str, info: ValidationInfo) -> str:
    """A relative checkpoint path is relative to the spec file, like every path in a spec.

    Variables such as ``$SATCORE_MODELS`` are expanded first, as the registry does.
    """
    from satcore.spec.model import resolve_spec_path

    return str(resolve_spec_path(Path(os.path.expandvars(value)), info))


def _base_dir(info: ValidationInfo) -> Path | None:
    base = (info.context or {}).get("base_dir")
    return Path(base) if base is not None else None


def _read_lines(path: Path) -> list[str]:
    return [
        ln.strip()
        for ln in path.read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _resolve_list(
    value: str | list[str], kind: str, bundled: tuple[str, ...], base: Path | None
) -> list[str]:
    if isinstance(value, list):
        out = [str(v) for v in value]
    elif value in bundled:
        out = _read_lines(Path(str(resources.files("satcore_clip") / "data" / kind / f"{value}.txt")))
    else:
        p = Path(value).expanduser()
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.exists():
            raise SpecError(
                f"{kind}: {value!r} is neither a bundled set ({', '.join(bundled)}) nor an existing file "
                f"({p})"
            )
        out = _read_lines(p)
    if not out:
        raise SpecError(f"{kind}: {value!r} gives an empty list; give at least two {kind}")
    dupes = sorted({x for x in out if out.count(x) > 1})
    if dupes:
        raise SpecError(
            f"{kind}: {value!r} lists {', '.join(map(repr, dupes))} more than once; keep one of each")
    return out


def resolve_classes(value: str | list[str], base: Path | None = None) -> list[str]:
    """Class names from a bundled set name, a list or a file (at least two, each once)."""
    out = _resolve_list(value, "classes", BUNDLED_CLASSES, base)
    if len(out) < 2:
        raise SpecError(
            f"classes: {value!r} gives one class ({out[0]!r}); a softmax over one class is always 1, so "
            "nothing could change — add the classes it should be told apart from"
        )
    return out


def resolve_templates(value: str | list[str], base: Path | None = None) -> list[str]:
    """Prompt templates (each containing ``{}``)."""
    out = _resolve_list(value, "templates", BUNDLED_TEMPLATES, base)
    bad = [t for t in out if "{}" not in t]
    if bad:
        raise SpecError(f"templates: each template needs '{{}}' for the class name; got {bad[:3]}")
    return out


class ClipZeroShotExtractor(Extractor):
    """CLIP zero-shot: per-image softmax over class prompts (probabilities) and the image embedding."""

    name = "clip-zeroshot"
    params_model = ClipZeroShotParams
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    consumes_any: ClassVar[tuple[tuple[str, ...], ...]] = (("pair",), ("scene",), ("series",))
    produces: ClassVar[tuple[str, ...]] = ("probabilities", "embedding")
    params: ClipZeroShotParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.images_encoded = 0
        self._loaded: Any = None
        self._resolved: Any = None
        self.cache_: Any = None
        self._base_resolved: Any = None
        self._threads_before: int | None = None
        self._tuner: Any = None
        self.text_cached = False

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Resolve and load the weights, encode the prompts once, open the embedding cache."""
        p = self.params
        base = self.context.spec_dir
        self.classes = resolve_classes(p.classes, base)
        self.templates = resolve_templates(p.templates, base)
        # weights first: a missing file stops the run before torch is even imported
        self._resolved = self.context.resolve_model(p.model, p.weights)
        try:
            import open_clip  # noqa: F401
            import torch
        except ImportError as exc:
            raise MissingDependencyError(
                exc.name or "open_clip_torch",
                "clip-zeroshot",
                "pip install 'torch>=2.4' torchvision 'open_clip_torch>=3.3,<4'",
            ) from exc
        from satcore_clip.cache import EmbeddingCache, cache_root, model_key
        from satcore_clip.loader import load_clip

        entry = dict(self._resolved.entry)
        if p.architecture:
            entry["architecture"] = p.architecture
        log = self.context.logger
        base = (entry.get("load") or {}).get("base")
        if base:  # GeoRSCLIP: base weights first; a missing base stops the run here too
            try:
                self._base_resolved = self.context.resolve_model(base)
            except MissingWeightsError as exc:
                from satcore.registry import get_registry, how_to_supply

                base_entry = (self.context.registry or get_registry()).models.get(base, {})
                how = how_to_supply(base, base_entry, step_weights=False)
                raise MissingWeightsError(
                    exc.alias,
                    exc.searched,
                    f"{self._resolved.alias!r} loads its checkpoint over the weights of {base!r} (its "
                    f"`load.base`), and those are missing: {how}",
                ) from None
        loaded = load_clip(
            self._resolved.alias,
            entry,
            Path(self._resolved.path),
            log,
            cache_root(),
            resolve=lambda a: self.context.resolve_model(a),
        )
        self.device = self.context.torch_device()
        self._tuner = None
        if self.device == "cpu":
            # execution.threads, or the faster of torch's default and the cores the loader threads leave,
            # measured on the first batches (satcore.components.tuning); torch's count is restored in teardown
            self._threads_before = torch.get_num_threads()
            if self.context.threads is not None:
                torch.set_num_threads(self.context.threads)
            else:
                from satcore.components.tuning import ThreadTuner

                ctx = self.context
                self._tuner = ThreadTuner(
                    [self._threads_before, ctx.cpu_threads()],
                    torch.set_num_threads,
                    side_work=lambda: ctx.reading_s_per_item,
                )
        self.dtype_name = self._pick_dtype(self.device)
        self.torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            self.dtype_name
        ]
        loaded.model.to(self.device, self.torch_dtype)
        self._loaded = loaded
        self._encode_image = loaded.model.encode_image
        if p.compile:
            self._encode_image = torch.compile(loaded.model.encode_image)
        self.cache_ = None
        if p.cache:
            base_sha = None
            if self._base_resolved is not None and Path(self._base_resolved.path).is_file():
                from satcore.registry import sha256_file

                base_sha = sha256_file(Path(self._base_resolved.path), cache_root())
            key = model_key(
                sha256=loaded.weights_sha256,
                base=base_sha,
                architecture=loaded.architecture,
                load=entry.get("load"),
                preprocess=loaded.preprocess,
                dtype=self.dtype_name,
                model_cfg=entry.get("model_cfg"),
            )
            self.cache_ = EmbeddingCache(key)
            self.cache_.describe(
                f"clip-zeroshot embeddings: {self._resolved.alias} ({loaded.architecture}, "
                f"{self.dtype_name}, {loaded.preprocess['size']} px, "
                f"weights {str(loaded.weights_sha256)[:12]})",
                alias=self._resolved.alias,
                architecture=loaded.architecture,
                weights_sha256=loaded.weights_sha256,
                dtype=self.dtype_name,
                preprocess=loaded.preprocess,
            )
        self.text_features = self._text_features()
        log.info(
            "clip-zeroshot %s: %s (%s) on %s/%s, %d classes × %d templates",
            self.step_id,
            self._resolved.alias,
            loaded.architecture,
            self.device,
            self.dtype_name,
            len(self.classes),
            len(self.templates),
        )

    def teardown(self) -> None:
        """Give torch back the CPU thread count it had before ``setup()``."""
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)
            self._threads_before = None

    def _pick_dtype(self, device: str) -> str:
        if self.params.dtype != "auto":
            return self.params.dtype
        if device.startswith("cuda"):
            import torch

            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"

    def _text_features(self) -> np.ndarray:
        """Normalised class embeddings ``(K, D)``, averaged over the templates (computed once per run).

        With the embedding cache on, they are stored under the model's key and the exact prompt list, so a
        later run with the same model and prompts builds no tokenizer and runs no text tower.
        """
        import torch

        prompts = [t.format(c) for c in self.classes for t in self.templates]
        self.text_cached = False
        if self.cache_ is not None:
            hit = self.cache_.get_text(prompts)
            if hit is not None and hit.shape[0] == len(self.classes):
                self.text_cached = True
                return hit
        m, tok = self._loaded.model, self._loaded.tokenizer
        with torch.inference_mode():
            feats = []
            for i in range(0, len(prompts), 256):
                f = m.encode_text(tok(prompts[i : i + 256]).to(self.device)).float()
                feats.append(torch.nn.functional.normalize(f, dim=-1))
            f = torch.cat(feats).view(len(self.classes), len(self.templates), -1).mean(dim=1)
            f = torch.nn.functional.normalize(f, dim=-1)
        out = f.cpu().numpy().astype(np.float32)
        if self.cache_ is not None:
            self.cache_.put_text(prompts, out)
        return out

    def models_used(self) -> list[dict[str, Any]]:
        """Alias, source, sha256 and licence of the loaded weights, plus how they were loaded."""
        if self._resolved is None or self._loaded is None:
            return []
        rec = self._resolved.manifest(sha256=self._loaded.weights_sha256)
        if self._base_resolved is not None:
            rec["base"] = self._base_resolved.manifest()
        rec.update(
            {
                "step": self.step_id,
                "architecture": self._loaded.architecture,
                "preprocess": self._loaded.preprocess,
                "logit_scale": self._loaded.logit_scale,
                "device": self.device,
                "dtype": self.dtype_name,
                "missing_keys": len(self._loaded.load_report.get("missing", [])),
                "unexpected_keys": len(self._loaded.load_report.get("unexpected", [])),
                "classes": len(self.classes),
                "templates": self.templates,
            }
        )
        if self._threads_before is not None:  # on the CPU
            import torch

            rec["cpu_threads"] = (
                self._tuner.summary() if self._tuner is not None else {"chosen": torch.get_num_threads()}
            )
        if self.cache_ is not None:
            rec["embedding_cache"] = {
                "dir": str(self.cache_.dir),
                "hits": self.cache_.hits,
                "misses": self.cache_.misses,
                "encoded": self.images_encoded,
                "class_embeddings": "cached" if self.text_cached else "computed",
            }
        return [rec]

    # ------------------------------------------------------------------ inference
    def _encode(self, rgbs: list[np.ndarray]) -> np.ndarray:
        """Normalised float32 embeddings of uint8 RGB images, in forward passes of ``batch_size``."""
        import torch

        from satcore_clip.preprocess import preprocess_batch

        bs = self.params.batch_size or self.context.batch_size
        out = []
        with torch.inference_mode():
            for i in range(0, len(rgbs), bs):
                x = preprocess_batch(rgbs[i : i + bs], self._loaded.preprocess, self.device).to(
                    self.torch_dtype
                )
                f = self._encode_image(x).float()
                out.append(torch.nn.functional.normalize(f, dim=-1).cpu().numpy())
        self.images_encoded += len(rgbs)
        return np.concatenate(out).astype(np.float32)

    def embed(self, rgbs: list[np.ndarray]) -> np.ndarray:
        """Embeddings for uint8 RGB images, from the cache where possible."""
        from satcore_clip.cache import content_hash

        result: list[np.ndarray | None] = [None] * len(rgbs)
        hashes: list[str | None] = [None] * len(rgbs)
        if self.cache_ is not None:
            for i, a in enumerate(rgbs):
                hashes[i] = content_hash(a)
                result[i] = self.cache_.get(hashes[i])  # type: ignore[arg-type]
        todo = [i for i, r in enumerate(result) if r is None]
        if todo:
            emb = self._encode([rgbs[i] for i in todo])
            for j, i in enumerate(todo):
                result[i] = emb[j]
                if self.cache_ is not None:
                    self.cache_.put(hashes[i], emb[j])  # type: ignore[arg-type]
        return np.stack(result).astype(np.float32)  # type: ignore[arg-type]

    def probabilities(self, emb: np.ndarray) -> np.ndarray:
        """Softmax over ``logit_scale * emb @ text.T`` → ``(n, K)`` (rows sum to 1)."""
        logits = self._loaded.logit_scale * (emb.astype(np.float64) @ self.text_features.T.astype(np.float64))
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def _top(self, p: np.ndarray) -> str:
        idx = np.argsort(-p, kind="stable")[: self.params.top_k]
        return ", ".join(f"{self.classes[i]} {p[i]:.2f}" for i in idx)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Probabilities ``(n_images, K)``, embeddings ``(n_images, D)`` and top classes per item."""
        from satcore_clip.preprocess import to_rgb_uint8

        if self._tuner is not None:
            undecided = self._tuner.chosen is None
            self._tuner.tick(len(batch))
            if undecided and self._tuner.chosen is not None:
                tried = ", ".join(
                    f"{c}: {v * 1e3:.2f} ms/item" if v is not None else f"{c}: -"
                    for c, v in self._tuner.summary()["seconds_per_item"].items()
                )
                self.context.logger.info(
                    "clip-zeroshot %s: computing with %d CPU threads (tried %s)%s",
                    self.step_id,
                    self._tuner.chosen,
                    tried,
                    f"; {self._tuner.reason}" if self._tuner.reason else "",
                )
        t0 = time.perf_counter()
        rgbs: list[np.ndarray] = []
        counts: list[int] = []
        for item in batch:
            if not item.images:
                raise ComponentError(
                    "clip-zeroshot needs at least one image; the item has none", item.item_id, self.step_id
                )
            for r in item.images:
                rgbs.append(to_rgb_uint8(r.array, tuple(r.band_names), self.params.value_max))
            counts.append(len(item.images))
        emb = self.embed(rgbs)
        probs = self.probabilities(emb)
        out: list[dict[str, Any]] = []
        k = 0
        for n in counts:
            p, e = probs[k : k + n], emb[k : k + n]
            k += n
            rec: dict[str, Any] = {"probabilities": p, "embedding": e, "classes": tuple(self.classes)}
            if n == 2:
                rec["top_classes_before"] = self._top(p[0])
                rec["top_classes_after"] = self._top(p[1])
            elif n == 1:
                rec["top_classes"] = self._top(p[0])
            else:
                rec["top_classes"] = " | ".join(self._top(row) for row in p)
            out.append(rec)
        self.context.logger.debug(
            "clip-zeroshot %s: %d images in %.3f s", self.step_id, len(rgbs), time.perf_counter() - t0
        )
        return out

    def columns(self, output: Any) -> dict[str, Any]:
        """The ``top_classes*`` strings and, with ``save_probabilities``, each image's probabilities.

        Embeddings stay in memory and in the embedding cache: 512–768 floats per image would dwarf the table.
        """
        cols = {k: v for k, v in output.items() if k.startswith("top_classes")}
        if self.params.save_probabilities:
            p = np.asarray(output["probabilities"], dtype=np.float32)
            names = {1: ("probabilities",), 2: ("probabilities_before", "probabilities_after")}.get(len(p))
            if names is None:
                cols["probabilities"] = p.tolist()
            else:
                cols.update({name: row.tolist() for name, row in zip(names, p, strict=True)})
        return cols
