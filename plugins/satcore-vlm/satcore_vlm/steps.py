"""``vlm-caption`` (captioner) and ``vlm-prompt`` (recognizer): one transformers model behind both."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from satcore.components import Batch, Captioner, Params, Recognizer, SpecPath
from satcore.errors import ComponentError, SpecError
from satcore_vlm.pairs import PairParams

DEFAULT_PROMPT = "Describe the satellite image!"


class VlmParams(Params):
    """Parameters shared by the vision-language steps."""

    model: str = Field(
        "qwen2-vl-2b-instruct",
        description="A model alias from registry.yaml (qwen2-vl-2b-instruct, blip-large, "
        "minicpm-llama3-v-2.5, …) or a transformers model folder (`save_pretrained` output).",
    )
    weights: str | None = Field(
        None, description="Explicit model folder for the alias (searched first); default: "
        "$SATCORE_MODELS/<alias>/, then the Hugging Face cache.")
    prompt_mode: Literal["auto", "chat", "prefix", "none"] = Field(
        "auto", description="How the prompt reaches the model: `chat` (the processor's chat template), "
        "`prefix` (plain text before the answer), `none` (unconditional captioning); auto = chat when the "
        "model has a chat template, none for BLIP and vision-encoder-decoder models, else prefix.")
    batch_size: int | None = Field(None, ge=1, description="Images per generate() call (default: "
                                   "execution.batch_size). Only greedy decoding is batched.")
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Longest answer, in tokens.")
    temperature: float = Field(
        0.0, ge=0.0, le=5.0, description="0 = greedy (default). Above 0: sampling (the thesis used 0.7), one "
        "image at a time with the generator seeded by (execution.seed, item id, image index), so an item's "
        "text does not depend on its batch.")
    cache: bool = Field(
        True, description="Reuse generated texts across runs ($SATCORE_CACHE/vlm-texts, keyed by the model's "
        "weights, the prompt, the generation settings and the image content).")
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Model precision; auto = bf16 on CUDA when supported (else fp16), fp32 on the CPU.")

    @field_validator("model", "weights")
    @classmethod
    def _spec_relative(cls, v: str | None, info: ValidationInfo) -> str | None:
        return model_or_path(v, info)


class _VlmStep:
    """Loading and generation shared by both steps (mixed into the component classes)."""

    params: VlmParams
    context: Any
    step_id: str

    def _load(self) -> None:
        from satcore_vlm.backend import Generator, check_transformers

        p = self.params
        from satcore.registry import get_registry

        # the version check comes before the weights search: no one should fetch 17 GB to learn it cannot run
        registry = self.context.registry or get_registry()
        check_transformers(dict(registry.models.get(p.model) or {}), p.model)
        self._resolved = self.context.resolve_model(p.model, p.weights)
        entry = dict(self._resolved.entry)
        remote = "trust_remote_code" in (entry.get("needs") or [])  # the core refused it unless allowed
        self._gen = Generator.load(Path(self._resolved.path), entry, self.context.torch_device(), p.dtype,
                                   remote, self.context.logger)
        self._model_key = _model_key(Path(self._resolved.path), self._gen.info) if p.cache else ""

    def _cache_file(self, prompt: str, rgbs: list[np.ndarray], seed: int, joint: bool = False) -> Path:
        """Where the text for one image (or one joint message of several) lives in the cache.

        Every input to generation is in the key: the model, the prompt and how it reaches the model, the
        generation settings, the seed when sampling, and each image's shape and content.
        """
        import hashlib

        from satcore.registry import cache_dir

        p = self.params
        mode = "joint" if joint else self._gen.prompt_mode(p.prompt_mode)
        shape: list[Any] = [list(a.shape) for a in rgbs] if joint else list(rgbs[0].shape)
        h = hashlib.sha256(json.dumps([self._model_key, prompt, mode, p.max_new_tokens, p.temperature,
                                       seed if p.temperature > 0 else None, shape]).encode())
        for a in rgbs:
            h.update(a.tobytes())
        key = h.hexdigest()
        return cache_dir() / "vlm-texts" / key[:2] / f"{key}.json"

    def _described(self, batch: Batch) -> list[list[np.ndarray]]:
        """Each item's images as 8-bit RGB: its input generator's when ``input:`` names one, else its own.

        See :mod:`satcore_vlm.images` for which images and :func:`satcore_vlm.backend.to_rgb_uint8` for the
        8-bit rule (the same for both).
        """
        from satcore_vlm.backend import to_rgb_uint8
        from satcore_vlm.images import batch_pairs, input_images

        return [[to_rgb_uint8(a, names) for a, names in input_images(item, up, self.step_id)]
                for item, up in batch_pairs(batch)]

    def _texts(self, batch: Batch, prompt: str,
               described: list[list[np.ndarray]] | None = None) -> list[list[str]]:
        """One generated text per image of each item, the images of the whole batch generated together.

        ``described``: the items' 8-bit RGB images when already made (default: :meth:`_described`).
        """
        from satcore_vlm.backend import item_seed

        groups: list[list[np.ndarray]] = []
        seeds: list[int] = []
        counts: list[int] = []
        for item, rgbs in zip(batch, described if described is not None else self._described(batch),
                              strict=True):
            for j, rgb in enumerate(rgbs):
                groups.append([rgb])
                seeds.append(item_seed(self.context.seed, f"{item.item_id}/{j}"))
            counts.append(len(rgbs))
        out = self._generate_cached(groups, seeds, prompt, joint=False)
        grouped, k = [], 0
        for n in counts:
            grouped.append(out[k:k + n])
            k += n
        return grouped

    def _generate_cached(self, groups: list[list[np.ndarray]], seeds: list[int], prompt: str, *,
                         joint: bool) -> list[str]:
        """One text per group of images (one image each, or a joint message), from the cache when there."""
        out: list[str | None] = [None] * len(groups)
        files: list[Path | None] = [None] * len(groups)
        if self.params.cache:
            for i, (rgbs, s) in enumerate(zip(groups, seeds, strict=True)):
                f = self._cache_file(prompt, rgbs, s, joint)
                files[i] = f
                if f.is_file():
                    try:
                        out[i] = str(json.loads(f.read_text(encoding="utf-8"))["text"])
                    except (OSError, ValueError, KeyError):  # a damaged entry is generated again
                        out[i] = None
        todo = [i for i, t in enumerate(out) if t is None]
        p = self.params
        bs = p.batch_size or self.context.batch_size
        for k in range(0, len(todo), bs):
            idx = todo[k:k + bs]
            if joint:
                texts = self._gen.generate_joint([groups[i] for i in idx], prompt,
                                                 max_new_tokens=p.max_new_tokens, temperature=p.temperature,
                                                 seeds=[seeds[i] for i in idx])
            else:
                texts = self._gen.generate([groups[i][0] for i in idx], prompt, mode=p.prompt_mode,
                                           max_new_tokens=p.max_new_tokens, temperature=p.temperature,
                                           seeds=[seeds[i] for i in idx])
            for i, t in zip(idx, texts, strict=True):
                out[i] = t
                target = files[i]
                if target is not None:
                    from satcore.io import write_json

                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_json(target, {"text": t})
        return [str(t) for t in out]

    def models_used(self) -> list[dict[str, Any]]:
        """The model alias (or folder) loaded, with what transformers made of it."""
        r = getattr(self, "_resolved", None)
        if r is None:
            return []
        rec: dict[str, Any] = r.manifest()
        gen = getattr(self, "_gen", None)
        if gen is not None:
            rec.update(gen.info, prompt_mode=gen.prompt_mode(self.params.prompt_mode))
        return [rec]


def _model_key(path: Path, info: dict[str, Any]) -> str:
    """What identifies a loaded model for the text cache: its weight files' sha256 and its config."""
    import hashlib

    from satcore.registry import cache_dir, sha256_file

    folder = path if path.is_dir() else path.parent
    weights = sorted(f for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    parts = [[f.name, sha256_file(f, cache_dir())] for f in weights]
    cfg = folder / "config.json"
    parts.append(["config.json", cfg.read_text(encoding="utf-8") if cfg.is_file() else ""])
    parts.append(["info", json.dumps(info, sort_keys=True)])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class VlmCaptionParams(VlmParams):
    """Parameters of ``vlm-caption``."""

    prompt: str = Field(DEFAULT_PROMPT, min_length=1, description="The instruction given with each image "
                        "(the thesis: 'Describe the satellite image!').")
    bertscore_model: SpecPath | None = Field(
        None, description="Opt-in BERTScore: a local BERT-family model folder (save_pretrained output, e.g. "
        "roberta-large); each item's caption gets the F1 against its reference texts (the best over them), "
        "averaged in the captions block. A missing folder stops the run in set-up.")
    bertscore_layer: int | None = Field(
        None, ge=0, description="Which hidden layer BERTScore uses (0 = embeddings); default: the last.")
    clipscore_model: SpecPath | None = Field(
        None, description="Opt-in CLIPScore: a local CLIP model folder (CLIPModel + CLIPProcessor "
        "save_pretrained output); the caption the captions block scores (the item's `caption`, else the "
        "first) against the first image captioned (100 · max(cos, 0)), averaged in the captions block. "
        "A missing folder stops the run in set-up.")
    pair: PairParams | None = Field(
        None, description="Change captions for pairs (README, 'Change captions'): `{mode: joint}` shows both "
        "images in one chat message with a change prompt (`pair.prompt`) and the answer is the item's "
        "`caption`; `{mode: separate, template: 'before: {before} after: {after}'}` captions each image and "
        "fills the template. Both need two images per item. null (default): one caption per image.")

    @model_validator(mode="after")
    def _pair_fits(self) -> VlmCaptionParams:
        # checked by `satcore validate` (exit 2); whether the model's template takes two images is set-up's
        if self.pair is not None and self.pair.mode == "joint":
            if self.prompt_mode not in ("auto", "chat"):
                raise ValueError(f"`pair: {{mode: joint}}` sends both images in one chat message; "
                                 f"`prompt_mode: {self.prompt_mode}` cannot: drop it (or set `chat`), or use "
                                 "`pair: {mode: separate, template: ...}`")
            if "prompt" in self.model_fields_set:
                raise ValueError("with `pair: {mode: joint}` the instruction is `pair.prompt` (the change "
                                 "prompt shown after both images); `prompt` is the single-image one: move it "
                                 "to `pair.prompt`")
        return self


class VlmCaptioner(_VlmStep, Captioner):
    """Captions each image with a transformers vision-language model (BLIP, Qwen2-VL, …).

    The item's own images, or with ``input: <generator step>`` the images that generator made for it
    (:mod:`satcore_vlm.images`).
    """

    name: ClassVar[str] = "vlm-caption"
    params_model: ClassVar[type[Params]] = VlmCaptionParams
    consumes: ClassVar[tuple[str, ...]] = ()  # scenes, pairs and series: one caption per image
    params: VlmCaptionParams
    _bert: Any = None  # BertScorer when bertscore_model is set (setup)
    _clip: Any = None  # ClipScorer when clipscore_model is set (setup)

    def setup(self) -> None:
        """Find the weights (missing → MissingWeightsError naming the alias and the places searched), load.

        The optional BERTScore/CLIPScore folders are checked first: a missing one fails before a big load.
        """
        from satcore_vlm.scores import check_model_folder

        p = self.params
        bert = check_model_folder(p.bertscore_model, "bertscore_model", self.step_id, "a BERT-family model") \
            if p.bertscore_model is not None else None
        clip = check_model_folder(p.clipscore_model, "clipscore_model", self.step_id, "a CLIP model") \
            if p.clipscore_model is not None else None
        self._load()
        if p.pair is not None and p.pair.mode == "joint":
            from satcore_vlm.backend import ModelLoadError
            from satcore_vlm.pairs import joint_problem

            why = joint_problem(self._gen)
            if why is not None:
                raise ModelLoadError(
                    f"step {self.step_id!r}: `pair: {{mode: joint}}` needs a chat model whose template takes "
                    f"both images of a pair in one message, but model {p.model!r} cannot: {why}. Use a chat "
                    "model such as qwen2-vl-2b-instruct, or caption each image and combine the captions: "
                    "`pair: {mode: separate, template: 'before: {before} after: {after}'}`")
        if bert is not None:
            from satcore_vlm.scores import BertScorer

            self._bert = BertScorer(bert, self.context.torch_device(), p.bertscore_layer)
        if clip is not None:
            from satcore_vlm.scores import ClipScorer

            self._clip = ClipScorer(clip, self.context.torch_device())

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """``{"captions": [one per image]}`` per item, with ``bertscore_f1``/``clipscore`` when asked for."""
        described = self._described(batch)
        out = self._captions(batch, described)
        if self._bert is not None:
            # the caption the captions block scores, against the item's references (items without: none)
            todo = [i for i, it in enumerate(batch) if it.texts]
            f1 = self._bert.f1([self.metric_prediction("captions", out[i]) or "" for i in todo],
                               [[str(t) for t in batch[i].texts] for i in todo])
            for i, v in zip(todo, f1, strict=True):
                out[i]["bertscore_f1"] = v
        if self._clip is not None:  # the scored caption against the first image captioned
            imgs = [rgbs[0] for rgbs in described]
            caps = [self.metric_prediction("captions", o) or "" for o in out]
            for o, v in zip(out, self._clip.scores(imgs, caps), strict=True):
                o["clipscore"] = v
        return out

    def _captions(self, batch: Batch, described: list[list[np.ndarray]]) -> list[dict[str, Any]]:
        """Each item's ``captions`` (one per image) and, with ``pair:``, its change ``caption``.

        ``pair: {mode: joint}`` writes no per-image captions (``captions: []``): the model saw both images.
        """
        from satcore_vlm.backend import item_seed
        from satcore_vlm.pairs import fill_template

        p = self.params
        if p.pair is not None:
            for item, rgbs in zip(batch, described, strict=True):
                if len(rgbs) != 2:
                    raise ComponentError(
                        f"item {item.item_id!r} has {len(rgbs)} image(s); `pair:` of {self.step_id} needs "
                        "two (before, after): a pair source, or drop `pair:` for one caption per image",
                        item_id=item.item_id, step=self.step_id)
        if p.pair is not None and p.pair.mode == "joint":
            seeds = [item_seed(self.context.seed, item.item_id) for item in batch]
            texts = self._generate_cached(described, seeds, p.pair.prompt, joint=True)
            return [{"caption": t, "captions": []} for t in texts]
        out: list[dict[str, Any]] = [{"captions": caps} for caps in self._texts(batch, p.prompt, described)]
        if p.pair is not None and p.pair.template is not None:
            for o in out:
                o["caption"] = fill_template(p.pair.template, o["captions"][0], o["captions"][1])
        return out

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """The item's BERTScore F1 and CLIPScore for the captions block, when computed."""
        if block != "captions" or not isinstance(output, dict):
            return {}
        return {k: output[k] for k in ("bertscore_f1", "clipscore") if output.get(k) is not None}


class VlmPromptParams(VlmParams):
    """Parameters of ``vlm-prompt``."""

    preset: Literal["mai", "rsicd", "rsscn7", "merged"] | None = Field(
        "rsscn7",
        description="One of the thesis's four prompts, verbatim, with its vocabulary: mai (prompt 1, "
        "multi-label), rsicd (prompt 2; it omits industrial and parking, which can then never be predicted), "
        "rsscn7 (prompt 3), merged (prompt 4, one or several labels). null: give `prompt` and `vocabulary`.")
    prompt: str | None = Field(None, description="Own prompt (replaces the preset's); `{labels}` is replaced "
                               "by the vocabulary's labels, comma-separated.")
    vocabulary: str | list[str] | None = Field(
        None,
        description="Labels the answer is parsed into: a bundled vocabulary (mai, rsicd, rsscn7, merged), "
        "a YAML file (labels + synonyms) or a list; default: the preset's.")
    multi_label: bool | None = Field(None, description="Keep every label the answer names (true) or only the "
                                     "first (false; later ones go to `extra_labels`); default: the preset's.")

    @model_validator(mode="after")
    def _resolvable(self, info: ValidationInfo) -> VlmPromptParams:
        # checked when the spec is validated (`satcore validate`, exit 2), not after a model has loaded
        from satcore_vlm.vocab import load_vocabulary

        if self.preset is None and (self.prompt is None or self.vocabulary is None):
            raise ValueError("without a `preset`, give both `prompt` and `vocabulary`")
        if self.vocabulary is not None:
            base = (info.context or {}).get("base_dir")
            try:
                load_vocabulary(self.vocabulary, Path(base) if base else None)
            except SpecError as exc:
                raise ValueError(str(exc)) from None
        return self


class VlmPromptRecognizer(_VlmStep, Recognizer):
    """Asks a vision-language model for the scene's labels and parses its answer into a vocabulary."""

    name: ClassVar[str] = "vlm-prompt"
    params_model: ClassVar[type[Params]] = VlmPromptParams
    consumes: ClassVar[tuple[str, ...]] = ("scene",)
    # or a generator's image (`input: <generator step>`); the default input stays the source
    consumes_any: ClassVar[tuple[tuple[str, ...], ...]] = (("scene",), ("images",))
    params: VlmPromptParams

    def setup(self) -> None:
        """Resolve prompt and vocabulary, then load the model."""
        from satcore_vlm.vocab import load_vocabulary, presets

        p = self.params
        preset = presets()[p.preset] if p.preset else None
        self.vocab = load_vocabulary(p.vocabulary if p.vocabulary is not None else preset.vocabulary,  # type: ignore[union-attr]
                                     self.context.spec_dir)
        self.multi_label = p.multi_label if p.multi_label is not None else (
            preset.multi_label if preset else self.vocab.multi_label)
        self.answers = preset.answers if preset else {}
        prompt = p.prompt if p.prompt is not None else preset.prompt  # type: ignore[union-attr]
        self.prompt = prompt.replace("{labels}", ", ".join(self.vocab.labels))
        self._load()

    def parse(self, answer: str) -> dict[str, Any]:
        """One item's output from the model's answer: ranked ``labels``/``scores``, the answer, the rest."""
        from satcore_vlm.vocab import parse_answer

        parsed = parse_answer(answer, self.vocab, self.answers)
        labels = parsed.labels if self.multi_label else parsed.labels[:1]
        return {
            "labels": labels,
            # rank-based: the answer's order is the model's ranking (first named = most confident)
            "scores": [1.0 / (1 + i) for i in range(len(labels))],
            "answer": answer,
            "extra_labels": [] if self.multi_label else parsed.labels[1:],
            "unmatched": parsed.unmatched,
        }

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Labels parsed from the model's answer to the prompt, one ranking per item."""
        described = self._described(batch)
        for item, rgbs in zip(batch, described, strict=True):
            if len(rgbs) != 1:
                raise ComponentError(
                    f"item {item.item_id!r} has {len(rgbs)} images; vlm-prompt labels single scenes "
                    "(one image per item, or one image from its input generator)", item_id=item.item_id,
                    step=self.step_id)
        return [self.parse(texts[0]) for texts in self._texts(batch, self.prompt, described)]


def model_or_path(v: str | None, info: ValidationInfo) -> str | None:
    """A ``model:``/``weights:`` value as the spec means it: an alias stays, a path is spec-relative.

    A relative folder is relative to the spec file, like every path in a spec (shared by the plugin's steps).
    """
    if v is None:
        return v
    from satcore.components import resolve_spec_path
    from satcore.registry import get_registry, looks_like_path

    if info.field_name == "model" and (v in get_registry().models or not looks_like_path(v)):
        return v
    return str(resolve_spec_path(Path(os.path.expandvars(v)), info))
