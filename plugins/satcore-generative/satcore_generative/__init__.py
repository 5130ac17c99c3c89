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
def satcore_register_train_commands(train: click.Group) -> None:
    """``satcore train cyclegan`` and ``satcore train text-to-image``."""
    from satcore_generative.diffusion_train import text_to_image
    from satcore_generative.trainer import cyclegan

    train.add_command(cyclegan)
    train.add_command(text_to_image)
