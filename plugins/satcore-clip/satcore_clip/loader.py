"""Load an open_clip model for a registry alias: every family quirk lives here and in the alias entry.

Alias fields read (``registry.yaml``):

``architecture``
    open_clip model name (``ViT-B-32-quickgelu`` for OpenAI-trained weights: QuickGELU matters).
``model_cfg``
    optional inline open_clip model config (a dict) for architectures open_clip does not ship; registered
    under ``architecture``, with ``quick_gelu: true`` when that name ends in ``-quickgelu`` (as open_clip's
    own twins are named).
``load: {strict, state_dict_key, strip_prefix}``
    ``strict: false`` loads what matches and logs missing/unexpected keys (GeoRSCLIP);
    ``state_dict_key: state_dict`` + ``strip_prefix: "module."`` unwrap training checkpoints (SkyCLIP).
    Without them a nested ``state_dict`` and an all-keys ``module.`` prefix are still recognised (and logged).
``logit_scale``
    fixed temperature (RemoteCLIP scores with ``100 * image @ text.T``); default: the checkpoint's own.
``preprocess: {size, interpolation, mean, std}``
    the image preprocessing; recorded in the manifest (open_clip#1068: offline loading can silently fall
    back to other preprocessing, so we never rely on open_clip's choice).

Weights: a file (``.safetensors``, or ``.pt/.pth/.bin`` read with ``torch.load(weights_only=True)``) or an
open_clip ``local-dir`` folder (``open_clip_config.json`` + weights).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satcore.errors import SatcoreError
from satcore.registry import sha256_file

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
FOLDER_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)


class WeightsMismatchError(SatcoreError):
    """A checkpoint does not fit the alias's architecture (wrong ``architecture`` or ``load:`` settings)."""


@dataclass
class LoadedClip:
    """A model ready for inference plus what the manifest and the cache need to know about it.

    The tokenizer is built on first use (open_clip's BPE tokenizer takes ≈ 0.08 s to build): a run whose
    class embeddings come from the cache never needs it.
    """

    model: Any
    architecture: str
    preprocess: dict[str, Any]
    logit_scale: float
    weights_file: Path | None
    weights_sha256: str | None
    load_report: dict[str, Any] = field(default_factory=dict)
    _tokenizer: Any = field(default=None, repr=False)

    @property
    def tokenizer(self) -> Any:
        """open_clip's tokenizer for :attr:`architecture`."""
        if self._tokenizer is None:
            import open_clip

            self._tokenizer = open_clip.get_tokenizer(self.architecture)
        return self._tokenizer


def _register_config(name: str, cfg: dict[str, Any]) -> None:
    """Make an inline model config known to open_clip under ``name``."""
    import open_clip

    d = Path(tempfile.mkdtemp(prefix="satcore-clip-cfg-"))
    (d / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(str(d / f"{name}.json"))


def read_checkpoint(path: Path) -> Any:
    """Read a weight file safely: safetensors, or ``torch.load(weights_only=True)``."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsMismatchError(
            f"{path}: cannot be read as a plain weights file "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}). "
            "satcore loads checkpoints with torch.load(weights_only=True); a TorchScript (JIT) archive "
            "such as "
            "OpenAI's original ViT-B-32.pt is not accepted — use the open_clip safetensors of the same model "
            "(e.g. hf_repo timm/vit_base_patch32_clip_224.openai); a training checkpoint with "
            "optimizer state "
            "(SkyCLIP's epoch_20.pt) can be reduced once to a safe weights file with `python -m "
            f"satcore_clip.extract {path} {path.with_suffix('.safetensors')}` (only for files you "
            "trust), then "
            "remove the original or point the step's `weights:` at the new file"
        ) from exc


def extract_state_dict(obj: Any, load_cfg: dict[str, Any], log: logging.Logger) -> dict[str, Any]:
    """Unwrap a training checkpoint into a plain state dict following the alias's ``load:`` settings."""
    key = load_cfg.get("state_dict_key")
    if (
        key
        and isinstance(obj, dict)
        and key not in obj
        and obj
        and all(hasattr(v, "shape") for v in obj.values())
    ):
        log.info("checkpoint is already a plain state dict (no %r entry); using it as is", key)
    elif key:
        if not isinstance(obj, dict) or key not in obj:
            have = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
            raise WeightsMismatchError(
                f"the checkpoint has no {key!r} entry (load.state_dict_key); top-level keys: {have}"
            )
        obj = obj[key]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        log.info("checkpoint holds a nested 'state_dict' (training checkpoint); using it")
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsMismatchError(f"the checkpoint is a {type(obj).__name__}, not a state dict")
    prefix = load_cfg.get("strip_prefix")
    if prefix is None and obj and all(k.startswith("module.") for k in obj):
        prefix = "module."
        log.info("every key starts with 'module.' (DataParallel); stripping it")
    if prefix:
        obj = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in obj.items()}
    return obj


def load_state_dict(
    model: Any, sd: dict[str, Any], strict: bool, log: logging.Logger, alias: str
) -> dict[str, Any]:
    """Load ``sd`` into ``model``; strict mismatches become a short error, non-strict ones a log."""
    own = model.state_dict()
    missing = sorted(k for k in own if k not in sd)
    unexpected = sorted(k for k in sd if k not in own)
    bad_shape = sorted(k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape))
    if bad_shape or (strict and (missing or unexpected)):
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)):
            if keys:
                parts.append(f"{len(keys)} {what} (e.g. {', '.join(keys[:4])})")
        raise WeightsMismatchError(
            f"the weights of {alias!r} do not fit its architecture: {'; '.join(parts)}. Check the alias's "
            "`architecture` (ViT-B-32 vs ViT-L-14, -quickgelu) and `load:` "
            "(state_dict_key, strip_prefix, strict)"
        )
    sd = {k: v for k, v in sd.items() if k in own}
    model.load_state_dict(sd, strict=strict)
    if missing or unexpected:
        log.warning(
            "%s: non-strict load: %d missing keys (left as initialised) %s; %d unexpected keys (ignored) %s",
            alias,
            len(missing),
            missing[:10],
            len(unexpected),
            unexpected[:10],
        )
    return {"missing": missing, "unexpected": unexpected, "loaded": len(sd)}


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    """open_clip warns 'initialized randomly' on the root logger; we load the weights right after."""
    f = _DropRandomInitWarning()
    root = logging.getLogger()
    root.addFilter(f)
    try:
        yield
    finally:
        root.removeFilter(f)


_INIT_LOCK = threading.Lock()


@contextmanager
def _no_random_init() -> Iterator[None]:
    """Build a model without drawing random initial weights that a strict load overwrites anyway.

    Replaces the in-place initialisers of ``torch.nn.init`` (``normal_``, ``kaiming_uniform_``, ...) with
    no-ops while open_clip builds the model, the way ``transformers`` builds models it is about to load
    (``no_init_weights``). Parameters then hold whatever ``torch.empty`` gave them until the checkpoint is
    loaded, so this is used only when a strict load follows (every state-dict entry is replaced; buffers
    outside the state dict, such as the text tower's causal mask, are computed without these functions).
    Drawing the random weights costs 0.55 s for ViT-B-32 and 1.3 s for ViT-L-14 on two CPU cores
    (``benchmarks/clip_setup.py``).
    """
    import torch.nn.init as init

    names = [
        n
        for n in dir(init)
        if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))
    ]

    def skip(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    with _INIT_LOCK:
        saved = {n: getattr(init, n) for n in names}
        try:
            for n in names:
                setattr(init, n, skip)
            yield
        finally:
            for n, f in saved.items():
                setattr(init, n, f)


def _folder_parts(folder: Path) -> tuple[dict[str, Any], Path]:
    cfg_path = folder / "open_clip_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    for n in FOLDER_WEIGHTS:
        if (folder / n).exists():
            return cfg, folder / n
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    if len(files) == 1:
        return cfg, files[0]
    raise WeightsMismatchError(
        f"{folder}: expected one weight file ({', '.join(FOLDER_WEIGHTS)}), found "
        f"{[p.name for p in files] or 'none'}"
    )


def load_clip(
    alias: str,
    entry: dict[str, Any],
    path: Path,
    log: logging.Logger,
    hash_cache: Path | None = None,
    resolve: Callable[[str], Any] | None = None,
) -> LoadedClip:
    """Build ``entry['architecture']`` with open_clip and load the weights at ``path`` into it (on the CPU).

    ``load.base: <alias>`` (GeoRSCLIP's recipe) first loads that alias's weights, found with
    ``resolve`` by the     same search order, then loads ``path`` over them (normally non-strictly).
    """
    import open_clip

    arch = entry.get("architecture")
    folder_cfg: dict[str, Any] = {}
    weights = path
    if path.is_dir():
        folder_cfg, weights = _folder_parts(path)
        known = bool(arch) and arch in open_clip.list_models()
        if folder_cfg.get("model_cfg") and not entry.get("model_cfg") and not known:
            entry = {**entry, "model_cfg": folder_cfg["model_cfg"]}
            arch = f"satcore-{alias}"
    if entry.get("model_cfg"):
        arch = arch or f"satcore-{alias}"
        cfg = dict(entry["model_cfg"])
        if arch.endswith("-quickgelu"):  # open_clip's naming: the -quickgelu twin of a config sets it
            cfg.setdefault("quick_gelu", True)
        _register_config(arch, cfg)
    if not arch:
        raise WeightsMismatchError(
            f"model alias {alias!r} sets no `architecture` (an open_clip model name such "
            "as ViT-B-32-quickgelu)"
        )
    if arch not in open_clip.list_models():
        raise WeightsMismatchError(
            f"architecture {arch!r} of {alias!r} is not an open_clip model; give an inline "
            "`model_cfg:` or one of open_clip.list_models()"
        )
    load_cfg = dict(entry.get("load") or {})
    # every weight is overwritten when the load is strict, or when base weights are loaded strictly first
    overwritten = bool(load_cfg.get("strict", True)) or bool(load_cfg.get("base"))
    with _quiet_random_init(), (_no_random_init() if overwritten else nullcontext()):
        model = open_clip.create_model(arch, pretrained=None, device="cpu")
    if load_cfg.get("base"):
        if resolve is None:
            raise WeightsMismatchError(
                f"{alias!r} loads over base weights {load_cfg['base']!r}, but no resolver was given"
            )
        base = resolve(load_cfg["base"])
        base_path = Path(base.path)
        if base_path.is_dir():
            base_path = _folder_parts(base_path)[1]
        base_sd = extract_state_dict(read_checkpoint(base_path), dict(base.entry.get("load") or {}), log)
        load_state_dict(model, base_sd, True, log, load_cfg["base"])
        log.info("%s: base weights %s loaded from %s", alias, load_cfg["base"], base_path)
    raw = read_checkpoint(weights)
    sd = extract_state_dict(raw, load_cfg, log)
    report = load_state_dict(model, sd, bool(load_cfg.get("strict", True)), log, alias)
    model.eval()
    pre = dict(entry.get("preprocess") or folder_cfg.get("preprocess_cfg") or {})
    size = pre.get("size") or pre.get("image_size") or model.visual.image_size
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    preprocess = {
        "size": size,
        "interpolation": pre.get("interpolation", "bicubic"),
        "mean": [float(x) for x in pre.get("mean", OPENAI_MEAN)],
        "std": [float(x) for x in pre.get("std", OPENAI_STD)],
    }
    if entry.get("logit_scale") is not None:
        scale = float(entry["logit_scale"])
    else:
        scale = float(model.logit_scale.detach().exp().item())
    return LoadedClip(
        model, arch, preprocess, scale, weights, sha256_file(weights, hash_cache), report
    )
