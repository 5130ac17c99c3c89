"""``satcore train cyclegan``: the thesis's CycleGAN on random crops (torch imported inside the command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field

from satcore.errors import SpecError
from satcore.training import TrainingRun, train_command


class CycleGanTrainConfig(BaseModel):
    """The training config (``CONFIG.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    ms: str = Field(..., description="Sentinel-2 scenes: .npy of (N, H, W, 13) or (N, 13, H, W), ESA order.")
    rgb: str | None = Field(
        None, description="RGB images: .npy of (N, H, W, 3) or (N, 3, H, W); default: B04/B03/B02 of `ms`.")
    ms_max: float = Field(1.0, gt=0, description="Sentinel-2 value at full scale (1 reflectance, 10000 L1C).")
    rgb_max: float = Field(255.0, gt=0, description="RGB value at full scale (ignored when `rgb` is unset).")
    holdout: int = Field(0, ge=0, description="Last N scenes of `ms` (and `rgb`) kept out for evaluation.")
    crop: int = Field(64, ge=32, multiple_of=4, description="Side of the random square crops (thesis: 64).")
    batch: int = Field(4, ge=1, description="Crops per step.")
    steps: int = Field(1000, ge=1, description="Training steps.")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate of generators and discriminators.")
    lambda_cycle: float = Field(10.0, ge=0, description="Weight of the spectral-angle cycle loss (10).")
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints.")
    eval_crops: int = Field(8, ge=1, description="Fixed held-out crops the cycle angle is measured on.")
    base: int = Field(32, ge=1, description="Generator width (feature maps of the first convolution).")
    n_res: int = Field(6, ge=0, description="SE residual blocks per generator.")
    se_reduction: int = Field(8, ge=1, description="Squeeze-and-excitation channel reduction.")
    disc_base: int = Field(32, ge=1, description="Discriminator width.")
    seed: int = Field(0, description="Random seed (crops and initial weights).")


def _load_stack(path: str, bands: int, what: str) -> Any:
    """A float32 (N, bands, H, W) array from a .npy file (channels first or last)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{what}: {p} does not exist (relative paths are from the working directory); fix it")
    if p.suffix != ".npy":
        raise SpecError(f"{what}: {p} is not a .npy file; give the scenes as (N, H, W, {bands}) in a .npy")
    a = np.load(p, mmap_mode="r")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or bands not in (a.shape[1], a.shape[-1]):
        raise SpecError(f"{what}: {p} has shape {a.shape}; expected (N, H, W, {bands}) or (N, {bands}, H, W)")
    a = np.asarray(a, dtype=np.float32)
    return np.ascontiguousarray(a if a.shape[1] == bands else a.transpose(0, 3, 1, 2))


def train_cyclegan(run: TrainingRun, cfg: CycleGanTrainConfig, device: str = "cpu") -> None:
    """The training loop: LSGAN + λ·spectral-angle cycle loss on random crops; checkpoints, resume, losses."""
    import numpy as np
    import torch

    from satcore_generative.bands import ESA_BANDS, RGB_FROM_S2
    from satcore_generative.cyclegan import (
        CycleGanConfig,
        build_models,
        discriminator_loss,
        generator_loss,
        save_checkpoint,
        spectral_angle,
        to_unit,
    )

    ms = np.clip(_load_stack(cfg.ms, 13, "ms") / cfg.ms_max, 0, 1) * 2 - 1
    if cfg.rgb:
        rgb = np.clip(_load_stack(cfg.rgb, 3, "rgb") / cfg.rgb_max, 0, 1) * 2 - 1
    else:
        rgb = ms[:, [ESA_BANDS.index(b) for b in RGB_FROM_S2]]
    n_ms, n_rgb = len(ms), len(rgb)
    if cfg.holdout >= n_ms or (cfg.rgb and cfg.holdout >= n_rgb):
        raise SpecError(f"holdout: {cfg.holdout} leaves no training scene ({n_ms} in ms); lower it")
    for name, arr in (("ms", ms), ("rgb", rgb)):
        if min(arr.shape[2:]) < cfg.crop:
            raise SpecError(f"crop: {cfg.crop} is larger than the {name} scenes {arr.shape[2:]}; lower it")
    train_ms, hold_ms = ms[: n_ms - cfg.holdout], ms[n_ms - cfg.holdout:]
    train_rgb = rgb[: n_rgb - cfg.holdout] if cfg.rgb else rgb[: n_ms - cfg.holdout]
    run.describe_data(ms=cfg.ms, rgb=cfg.rgb, ms_scenes=int(n_ms), rgb_scenes=int(n_rgb),
                      holdout_scenes=cfg.holdout)

    torch.manual_seed(run.seed)
    arch = CycleGanConfig(base=cfg.base, n_res=cfg.n_res, se_reduction=cfg.se_reduction,
                          disc_base=cfg.disc_base)
    models = {k: m.to(device) for k, m in build_models(arch).items()}
    opt_g = torch.optim.Adam([*models["G"].parameters(), *models["F"].parameters()], lr=cfg.lr,
                             betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*models["D_ms"].parameters(), *models["D_rgb"].parameters()], lr=cfg.lr,
                             betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(run.seed)
    if ckpt := run.latest_checkpoint():
        state = torch.load(ckpt.path, map_location=device, weights_only=False)
        for k, m in models.items():
            m.load_state_dict(state[k])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["crop_rng"])
        torch.set_rng_state(state["torch_rng"])

    def crops(stack: Any, n: int, g: torch.Generator) -> torch.Tensor:
        _, _, h, w = stack.shape
        idx = torch.randint(len(stack), (n,), generator=g).tolist()
        ys = torch.randint(h - cfg.crop + 1, (n,), generator=g).tolist()
        xs = torch.randint(w - cfg.crop + 1, (n,), generator=g).tolist()
        out = np.stack([stack[i, :, y:y + cfg.crop, x:x + cfg.crop]
                        for i, y, x in zip(idx, ys, xs, strict=True)])
        return torch.from_numpy(out).to(device)

    # fixed held-out crops (their own generator, so evaluation does not move the training crops)
    eval_ms = crops(hold_ms, cfg.eval_crops, torch.Generator().manual_seed(12345)) if cfg.holdout else None

    def evaluate() -> dict[str, float]:
        if eval_ms is None:
            return {}
        for m in models.values():
            m.eval()
        with torch.no_grad():
            rec = models["G"](models["F"](eval_ms))
            angle = float(torch.rad2deg(spectral_angle(to_unit(rec), to_unit(eval_ms))).mean())
        for m in models.values():
            m.train()
        return {"heldout_cycle_ms_deg": angle}

    with run.progress(cfg.steps, initial=run.start_step) as bar:
        for step in range(run.start_step + 1, cfg.steps + 1):
            rgb_b, ms_b = crops(train_rgb, cfg.batch, gen), crops(train_ms, cfg.batch, gen)
            opt_g.zero_grad(set_to_none=True)
            loss_g, parts, fakes = generator_loss(models, rgb_b, ms_b, cfg.lambda_cycle)
            loss_g.backward()  # type: ignore[no-untyped-call]
            opt_g.step()
            opt_d.zero_grad(set_to_none=True)
            loss_d = (discriminator_loss(models["D_ms"], ms_b, fakes["fake_ms"])
                      + discriminator_loss(models["D_rgb"], rgb_b, fakes["fake_rgb"]))
            loss_d.backward()  # type: ignore[no-untyped-call]
            opt_d.step()
            checkpoint = step % cfg.checkpoint_every == 0 or step == cfg.steps
            extra = evaluate() if checkpoint else {}
            values: dict[str, Any] = {**parts, "loss_d": float(loss_d.detach()), **extra}
            run.log_losses(step, None, **values)
            if checkpoint:
                state = {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                         "crop_rng": gen.get_state(), "torch_rng": torch.get_rng_state()}
                run.save_checkpoint(step, lambda p: save_checkpoint(p, arch, models, **state))  # noqa: B023
            bar.update(1)
    run.set_model(family="cyclegan", architecture="se-resnet", bands=13, band_order=list(ESA_BANDS),
                  ms_max=cfg.ms_max, config=arch.to_dict())


@train_command("cyclegan", config_model=CycleGanTrainConfig, keep_checkpoints=3)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
def cyclegan(run: TrainingRun, device: str) -> None:
    """Train the thesis's CycleGAN between RGB and 13-band Sentinel-2 on random crops."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    train_cyclegan(run, run.params, device)
