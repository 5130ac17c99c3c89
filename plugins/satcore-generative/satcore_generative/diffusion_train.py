"""``satcore train text-to-image``: fine-tune a diffusers Stable Diffusion UNet on image–caption pairs.

Full fine-tuning or LoRA (peft ``LoraConfig`` on the UNet's attention projections); the thesis's batch 4 and
learning rate 1e-5 are the defaults. The standard noise-prediction objective: VAE latents of the images,
noise at a random timestep, the UNet conditioned on the caption's text embeddings predicts the noise (or the
velocity, for v-prediction schedulers), mean squared error. torch and diffusers are imported inside the
command.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict, Field

from satcore.errors import SpecError
from satcore.training import TrainingRun, train_command

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


class TextToImageTrainConfig(BaseModel):
    """The training config (``CONFIG.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field("sd-2-1-base", description="The pipeline fine-tuned: an alias or a diffusers folder.")
    data: str = Field(..., description="Image–caption pairs: a folder of images each with a same-named .txt "
                      "caption, or a .csv/.jsonl manifest with `image` and `caption` columns (paths relative "
                      "to the manifest).")
    mode: Literal["full", "lora"] = Field("full", description="Train the whole UNet, or LoRA adapters on its "
                                          "attention projections (to_q, to_k, to_v, to_out.0).")
    resolution: int = Field(512, ge=8, multiple_of=8, description="Square training size (centre crop).")
    batch: int = Field(4, ge=1, description="Pairs per step (thesis: 4).")
    lr: float = Field(1e-5, gt=0, description="AdamW learning rate (thesis: 1e-5).")
    steps: int = Field(1000, ge=1, description="Training steps.")
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints.")
    lora_rank: int = Field(4, ge=1, description="LoRA rank r.")
    lora_alpha: int = Field(4, ge=1, description="LoRA alpha (scale alpha / r).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    seed: int = Field(0, description="Random seed (order of pairs, noise, timesteps, LoRA init).")


def read_pairs(data: str) -> list[tuple[Path, str]]:
    """``(image path, caption)`` pairs from a folder or a manifest (:class:`SpecError` if unusable)."""
    p = Path(data)
    pairs: list[tuple[Path, str]] = []
    if p.is_dir():
        for img in sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES):
            txt = img.with_suffix(".txt")
            if txt.is_file():
                pairs.append((img, txt.read_text(encoding="utf-8").strip()))
    elif p.suffix in (".csv", ".jsonl") and p.is_file():
        with open(p, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f)) if p.suffix == ".csv" else [json.loads(x) for x in f if x.strip()]
        for i, row in enumerate(rows, 1):
            if not row.get("image") or not row.get("caption"):
                raise SpecError(f"data: {p} row {i} lacks `image` or `caption`; every row needs both")
            pairs.append((p.parent / str(row["image"]), str(row["caption"])))
    else:
        raise SpecError(f"data: {p} is neither a folder nor a .csv/.jsonl manifest (relative paths are from "
                        "the working directory); fix it")
    if not pairs:
        raise SpecError(f"data: {p} holds no image–caption pair (images need a same-named .txt caption)")
    return pairs


def load_image(path: Path, size: int) -> Any:
    """``(3, size, size)`` float tensor in [-1, 1]: RGB (first 3 bands, or a 2–98 % stretch), centre crop."""
    import numpy as np
    import torch
    import torch.nn.functional as nnf

    from satcore.data import read_raster

    a = read_raster(path).array
    a = a[:3] if a.shape[0] >= 3 else np.repeat(a[:1], 3, axis=0)
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    else:
        x = np.nan_to_num(a.astype(np.float32))
        lo, hi = np.percentile(x, [2, 98])
        x = np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x)
    _, h, w = x.shape
    s = min(h, w)
    x = x[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    t = nnf.interpolate(torch.from_numpy(np.ascontiguousarray(x))[None], size=(size, size), mode="bilinear",
                        align_corners=False, antialias=True)[0]
    return t * 2 - 1


def train_text_to_image(run: TrainingRun, cfg: TextToImageTrainConfig, device: str = "cpu") -> None:
    """The loop: noise-prediction MSE on the UNet (or its LoRA adapters); checkpoints, resume, losses."""
    import torch
    import torch.nn.functional as nnf
    from diffusers import DDPMScheduler, DiffusionPipeline, UNet2DConditionModel

    from satcore.registry import get_registry

    pairs = read_pairs(cfg.data)
    base = Path(get_registry().resolve(cfg.base).path or "")
    if not (base / "model_index.json").is_file():
        raise SpecError(f"base: {cfg.base!r} resolved to {base}, which is not a diffusers pipeline folder")
    run.describe_data(data=cfg.data, pairs=len(pairs), base=cfg.base)
    torch.manual_seed(run.seed)
    pipe = DiffusionPipeline.from_pretrained(str(base), local_files_only=True)
    unet, vae, text, tok = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    vae.requires_grad_(False)
    text.requires_grad_(False)
    if cfg.mode == "lora":
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, init_lora_weights="gaussian",
                                    target_modules=LORA_TARGETS))
    for m in (unet, vae, text):
        m.to(device)
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(run.seed)
    if ckpt := run.latest_checkpoint():
        state = torch.load(ckpt.path / "state.pt", map_location=device, weights_only=False)
        if cfg.mode == "full":
            unet.load_state_dict(UNet2DConditionModel.from_pretrained(str(ckpt.path / "unet")).state_dict())
        else:
            unet.load_state_dict(state["trainable"], strict=False)
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
    unet.train()
    scaling = float(getattr(vae.config, "scaling_factor", 0.18215))

    def write(path: Path, step: int) -> None:
        path.mkdir(parents=True)
        if cfg.mode == "full":
            unet.save_pretrained(str(path / "unet"))
        else:
            unet.save_lora_adapter(str(path / "lora"))
        trainable = {n: p.detach().cpu() for n, p in unet.named_parameters() if p.requires_grad}
        torch.save({"step": step, "opt": opt.state_dict(), "rng": gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "trainable": trainable if cfg.mode == "lora" else {}},
                   path / "state.pt")

    with run.progress(cfg.steps, initial=run.start_step) as bar:
        for step in range(run.start_step + 1, cfg.steps + 1):
            idx = torch.randint(len(pairs), (cfg.batch,), generator=gen).tolist()
            pixels = torch.stack([load_image(pairs[i][0], cfg.resolution) for i in idx]).to(device)
            ids = tok([pairs[i][1] for i in idx], padding="max_length", truncation=True,
                      max_length=tok.model_max_length, return_tensors="pt").input_ids.to(device)
            with torch.no_grad():
                latents = vae.encode(pixels).latent_dist.sample(generator=None) * scaling
                cond = text(ids)[0]
            noise = torch.randn(latents.shape, generator=gen).to(device)
            t = torch.randint(noise_sched.config.num_train_timesteps, (cfg.batch,), generator=gen).to(device)
            noisy = noise_sched.add_noise(latents, noise, t)
            target = noise if noise_sched.config.prediction_type == "epsilon" else \
                noise_sched.get_velocity(latents, noise, t)
            pred = unet(noisy, t, cond).sample
            loss = nnf.mse_loss(pred.float(), target.float())
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            opt.step()
            run.log_losses(step, None, loss=float(loss.detach()), grad_norm=grad_norm)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                run.save_checkpoint(step, lambda p: write(p, step))  # noqa: B023
            bar.update(1)
    run.set_model(family="diffusers", architecture="stable-diffusion", mode=cfg.mode, base=cfg.base,
                  base_path=str(base.resolve()), resolution=cfg.resolution)


@train_command("text-to-image", config_model=TextToImageTrainConfig, checkpoint_suffix="", keep_checkpoints=2)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
def text_to_image(run: TrainingRun, device: str) -> None:
    """Fine-tune a Stable Diffusion UNet (full or LoRA) on image–caption pairs."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    train_text_to_image(run, run.params, device)
