"""The thesis's CycleGAN (section 6, Fig. 25).

Generators with squeeze-and-excitation residual blocks, PatchGAN discriminators, least-squares GAN losses and
a spectral-angle cycle loss (λ_cycle = 10).

This module imports torch; import it from ``setup()`` or a trainer, never at plugin import time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Weight of the cycle loss against the GAN losses (thesis: λ_cycle = 10).
LAMBDA_CYCLE = 10.0

#: Version tag of the checkpoint layout written by the trainer and read by the generators.
CHECKPOINT_FORMAT = "satcore-cyclegan/1"


@dataclass(frozen=True)
class CycleGanConfig:
    """Architecture of both generators and discriminators.

    Attributes:
        rgb_bands: channels of domain A (RGB).
        ms_bands: channels of domain B (Sentinel-2, 13 bands in ESA order).
        base: feature maps of the generators' first convolution (doubled at each of the two downsamplings).
        n_res: residual blocks with squeeze-and-excitation between the down- and upsampling.
        se_reduction: channel reduction inside the squeeze-and-excitation block.
        disc_base: feature maps of the discriminators' first convolution.
    """

    rgb_bands: int = 3
    ms_bands: int = 13
    base: int = 32
    n_res: int = 6
    se_reduction: int = 8
    disc_base: int = 32

    def to_dict(self) -> dict[str, int]:
        """Plain dict (stored in checkpoints and ``train.json``)."""
        return asdict(self)


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool → bottleneck MLP → sigmoid gates per channel."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each channel scaled by its gate in (0, 1)."""
        out: torch.Tensor = x * self.gate(x)
        return out


class SEResidualBlock(nn.Module):
    """Two 3×3 convolutions with instance norm, channel attention on the residual, then the skip."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
            SqueezeExcitation(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus the attended residual."""
        out: torch.Tensor = x + self.body(x)
        return out


class Generator(nn.Module):
    """ResNet-style generator: 7×7 stem, two stride-2 downsamplings, SE residual blocks, two upsamplings.

    Inputs and outputs are scaled to [-1, 1] (``tanh`` output). Height and width must be multiples of 4.
    """

    def __init__(self, in_ch: int, out_ch: int, base: int = 32, n_res: int = 6, reduction: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_ch, base, 7), nn.InstanceNorm2d(base), nn.ReLU(inplace=True),
        ]
        ch = base
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2),
                       nn.ReLU(inplace=True)]
            ch *= 2
        layers += [SEResidualBlock(ch, reduction) for _ in range(n_res)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.in_ch, self.out_ch = in_ch, out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_ch, H, W)`` in [-1, 1] → ``(N, out_ch, H, W)`` in [-1, 1]."""
        out: torch.Tensor = self.net(x)
        return out


class PatchDiscriminator(nn.Module):
    """PatchGAN: four 4×4 convolutions (three stride 2) with LeakyReLU and instance norm.

    A last 1-channel convolution gives the patch map: each value judges one receptive field as real or
    generated.
    """

    def __init__(self, in_ch: int, base: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base, base * 2, 4, stride=2, padding=1), nn.InstanceNorm2d(base * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 2, base * 4, 4, stride=2, padding=1), nn.InstanceNorm2d(base * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 4, base * 8, 4, stride=1, padding=1), nn.InstanceNorm2d(base * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 8, 1, 4, stride=1, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The patch map ``(N, 1, h, w)`` (unbounded scores; the least-squares loss wants 1 real, 0 fake)."""
        out: torch.Tensor = self.net(x)
        return out


def build_models(cfg: CycleGanConfig) -> dict[str, nn.Module]:
    """``G`` (RGB → MS), ``F`` (MS → RGB), ``D_ms`` and ``D_rgb`` for one config."""
    return {
        "G": Generator(cfg.rgb_bands, cfg.ms_bands, cfg.base, cfg.n_res, cfg.se_reduction),
        "F": Generator(cfg.ms_bands, cfg.rgb_bands, cfg.base, cfg.n_res, cfg.se_reduction),
        "D_ms": PatchDiscriminator(cfg.ms_bands, cfg.disc_base),
        "D_rgb": PatchDiscriminator(cfg.rgb_bands, cfg.disc_base),
    }


def spectral_angle(x: torch.Tensor, y: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Per-pixel spectral angle in radians, ``arccos(⟨x, y⟩ / (‖x‖ ‖y‖))`` along ``dim``.

    ``eps`` keeps the norms away from zero (a zero vector gives cos 0, an angle of π/2, and finite gradients)
    and the cosine is clamped inside (-1, 1), where ``arccos``'s derivative is finite.
    """
    dot = (x * y).sum(dim)
    norm = torch.sqrt((x * x).sum(dim) + eps) * torch.sqrt((y * y).sum(dim) + eps)
    cos = (dot / norm).clamp(-1.0 + 1e-7, 1.0 - 1e-7)
    return torch.acos(cos)


def spectral_angle_loss(x: torch.Tensor, y: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean spectral angle (radians) between two image batches ``(N, C, H, W)``: the thesis's cycle loss."""
    return spectral_angle(x, y, dim).mean()


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """The networks' [-1, 1] scale back to [0, 1] (where spectral angles are taken)."""
    return (x + 1.0) / 2.0


def lsgan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: ``mean((D(x) − 1)²)`` for real targets, ``mean(D(x)²)`` for generated."""
    target = 1.0 if real else 0.0
    return ((pred - target) ** 2).mean()


def generator_loss(
    models: dict[str, nn.Module], rgb: torch.Tensor, ms: torch.Tensor, lambda_cycle: float = LAMBDA_CYCLE
) -> tuple[torch.Tensor, dict[str, float], dict[str, Any]]:
    """The thesis's L_G = L_GAN(G, D_ms) + L_GAN(F, D_rgb) + λ (SA(F(G(a)), a) + SA(G(F(b)), b)).

    ``rgb`` and ``ms`` are in [-1, 1]; the spectral angles SA are taken on them mapped to [0, 1].

    Returns the loss, its parts as floats, and the generated batches (``fake_ms``, ``fake_rgb``) for the
    discriminator step.
    """
    g, f = models["G"], models["F"]
    fake_ms, fake_rgb = g(rgb), f(ms)
    gan_g = lsgan_loss(models["D_ms"](fake_ms), True)
    gan_f = lsgan_loss(models["D_rgb"](fake_rgb), True)
    # angles between the images as values in [0, 1] (reflectance-like, non-negative), not in the networks'
    # [-1, 1]: there a dark pixel is a negative vector, and the angle would not be a spectral angle
    cyc_a = spectral_angle_loss(to_unit(f(fake_ms)), to_unit(rgb))
    cyc_b = spectral_angle_loss(to_unit(g(fake_rgb)), to_unit(ms))
    loss = gan_g + gan_f + lambda_cycle * (cyc_a + cyc_b)
    parts = {"loss_g": float(loss.detach()), "gan_g": float(gan_g.detach()), "gan_f": float(gan_f.detach()),
             "cycle_rgb_deg": float(torch.rad2deg(cyc_a.detach())),
             "cycle_ms_deg": float(torch.rad2deg(cyc_b.detach()))}
    return loss, parts, {"fake_ms": fake_ms.detach(), "fake_rgb": fake_rgb.detach()}


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss, halved as in CycleGAN: ``(LS(D(real), 1) + LS(D(fake), 0)) / 2``."""
    return 0.5 * (lsgan_loss(disc(real), True) + lsgan_loss(disc(fake.detach()), False))


def save_checkpoint(path: Path | str, cfg: CycleGanConfig, models: dict[str, nn.Module],
                    **extra: Any) -> None:
    """Write the checkpoint layout the generators read (``format``, ``config`` and one state dict per net)."""
    state: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), **extra}
    for name, net in models.items():
        state[name] = net.state_dict()
    torch.save(state, path)


def load_generator(path: Path | str, which: str, device: str = "cpu") -> tuple[Generator, CycleGanConfig]:
    """One generator (``G`` or ``F``) of a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ValueError: the file is not such a checkpoint (the caller turns it into a user-facing error).
    """
    state = torch.load(path, map_location=device, weights_only=False)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or which not in state:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint with a {which!r} generator")
    cfg = CycleGanConfig(**state["config"])
    in_ch, out_ch = (cfg.rgb_bands, cfg.ms_bands) if which == "G" else (cfg.ms_bands, cfg.rgb_bands)
    net = Generator(in_ch, out_ch, cfg.base, cfg.n_res, cfg.se_reduction)
    net.load_state_dict(state[which])
    return net.to(device).eval(), cfg
