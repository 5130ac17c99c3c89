"""satcore-generative: the thesis's CycleGAN between RGB and 13-band Sentinel-2.

Components: the generators ``rgb-to-multispectral`` (G, 3 → 13 bands) and ``multispectral-to-rgb``
(F, 13 → 3 bands), with sliding-window inference over any image size. Importing this package (and listing
plugins) never imports torch: the model code is imported inside ``setup()`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from satcore import hookimpl

if TYPE_CHECKING:
    import click

__version__ = "0.1.0"


@hookimpl
def satcore_register_generators() -> list[type[Any]]:
    """The two CycleGAN generators and the diffusers text-to-image generator."""
    from satcore_generative.diffusion import TextToImageGenerator
    from satcore_generative.generators import MultispectralToRgbGenerator, RgbToMultispectralGenerator

    return [RgbToMultispectralGenerator, MultispectralToRgbGenerator, TextToImageGenerator]


@hookimpl
def satcore_register_extractors() -> list[type[Any]]:
    """``image-quality``: Inception features (FID, KID, IS) and CLIPScore of generated images."""
    from satcore_generative.quality import ImageQualityExtractor

    return [ImageQualityExtractor]


@hookimpl
def satcore_locate_weights(alias: str, entry: dict[str, Any]) -> str | None:
    """torch-fidelity weights already in torch's hub cache (``$TORCH_HOME/hub/checkpoints/``)."""
    import os
    from pathlib import Path

    if entry.get("family") != "torch-fidelity" or not entry.get("filename"):
        return None
    home = Path(os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch")
    found = home.expanduser() / "hub" / "checkpoints" / str(entry["filename"])
    return str(found) if found.is_file() else None


@hookimpl
def satcore_register_train_commands(train: click.Group) -> None:
    """``satcore train cyclegan`` and ``satcore train text-to-image``."""
    from satcore_generative.diffusion_train import text_to_image
    from satcore_generative.trainer import cyclegan

    train.add_command(cyclegan)
    train.add_command(text_to_image)
