"""``satcore train segmentation``: a UNet over the six Dubai classes, scored on held-out tiles.

Whole ``Tile N`` folders are held out (default tiles 1 and 2); the rest train on random crops. At every
checkpoint the held-out pixel accuracy and mIoU are logged beside the losses (so ``report.html`` plots them),
and the final scores, with the majority-class baseline, go into ``train.json``'s ``data.heldout``.
"""

from __future__ import annotations

from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict, Field

from satcore.errors import SpecError
from satcore.training import TrainingRun, train_command

DEFAULT_DATA = "../shared/data/dubai-segmentation"


class SegmentationTrainConfig(BaseModel):
    """The training config (``CONFIG.yaml``; every key may also be given by ``--set``)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(DEFAULT_DATA, description="The dubai-segmentation folder (with the 'Tile N' folders).")
    holdout_tiles: list[int] = Field([1, 2], min_length=1, description="Tile numbers kept out of training "
                                     "and scored (whole 'Tile N' folders).")
    train_tiles: list[int] | None = Field(None, description="Tiles to train on (default: all the others).")
    max_images_per_tile: int | None = Field(None, ge=1, description="Use at most N images of each tile.")
    arch: Literal["small", "smp"] = Field("small", description="`small`: this plugin's small UNet (CPU); "
                                          "`smp`: segmentation-models-pytorch Unet, encoder_weights=None.")
    encoder: str = Field("resnet18", description="smp encoder name (arch smp only).")
    base: int = Field(16, ge=1, description="Width of the small UNet's first level.")
    depth: int = Field(3, ge=1, le=6, description="Poolings of the small UNet.")
    loss: Literal["ce", "dice", "jaccard", "focal"] = Field("ce", description="Loss (thesis 3.5): "
                                                            "cross-entropy, Dice, Jaccard or focal.")
    crop: int = Field(128, ge=16, description="Side of the random square training crops.")
    batch: int = Field(8, ge=1, description="Crops per step.")
    steps: int = Field(500, ge=1, description="Training steps.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints (and held-out scores).")
    input_max: float = Field(255.0, gt=0, description="Input value mapped to 1 (255 for 8-bit RGB).")
    seed: int = Field(0, description="Random seed (crops and initial weights).")


def train_segmentation(run: TrainingRun, cfg: SegmentationTrainConfig, device: str = "cpu") -> dict[str, Any]:
    """The loop: crops → step → checkpoint + held-out scores; returns the final held-out scores."""
    import torch

    from satcore_timeseries import dubai, unet

    try:
        tiles = dubai.tile_folders(cfg.data)
    except FileNotFoundError as exc:
        raise SpecError(f"data: {exc}") from exc
    bad = sorted(set(cfg.holdout_tiles) - set(tiles))
    if bad:
        raise SpecError(f"holdout_tiles: {bad} not in {cfg.data} (tiles there: {sorted(tiles)})")
    train_ids = cfg.train_tiles or [t for t in sorted(tiles) if t not in cfg.holdout_tiles]
    if not train_ids or set(train_ids) & set(cfg.holdout_tiles):
        raise SpecError(f"train_tiles {train_ids} must be non-empty and apart from holdout_tiles "
                        f"{cfg.holdout_tiles}")
    train = dubai.load_tiles(cfg.data, train_ids, cfg.max_images_per_tile)
    held = dubai.load_tiles(cfg.data, cfg.holdout_tiles, cfg.max_images_per_tile)
    baseline = dubai.majority_baseline(train, held)
    run.describe_data(root=cfg.data, train_tiles=train_ids, holdout_tiles=list(cfg.holdout_tiles),
                      train_images=len(train), holdout_images=len(held), classes=list(dubai.CLASSES),
                      ignored="mask pixels of no class colour (pure black)", baseline=baseline)

    torch.manual_seed(run.seed)
    meta = {"arch": cfg.arch, "classes": list(dubai.CLASSES), "base": cfg.base, "depth": cfg.depth,
            "encoder": cfg.encoder, "input_max": cfg.input_max}
    model = unet.build_model(cfg.arch, len(dubai.CLASSES), base=cfg.base, depth=cfg.depth,
                             encoder=cfg.encoder).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(run.seed)
    if ckpt := run.latest_checkpoint():
        state = torch.load(ckpt.path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["crop_rng"])
        torch.set_rng_state(state["torch_rng"])
    loss_fn = unet.make_loss(cfg.loss, dubai.IGNORE)
    stride = unet.stride_of(cfg.arch, cfg.depth)
    final: dict[str, Any] = {}
    with run.progress(cfg.steps, initial=run.start_step) as bar:
        for step in range(run.start_step + 1, cfg.steps + 1):
            x, y = unet.random_crops(train, cfg.batch, cfg.crop, gen)
            loss = unet.train_step(model, opt, loss_fn, x, y, device, cfg.input_max)
            extra: dict[str, float] = {}
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                final = dubai.scores(unet.evaluate(model, held, device, stride, dubai.confusion,
                                                   cfg.input_max))
                extra = {"heldout_pixel_accuracy": final["pixel_accuracy"], "heldout_miou": final["miou"]}
            run.log_losses(step, None, **{f"loss_{cfg.loss}": loss}, **extra)
            if extra:
                state = unet.checkpoint_state(model, opt, gen, meta)
                run.save_checkpoint(step, lambda p: torch.save(state, p))  # noqa: B023
            bar.update(1)
    if not final:  # resumed at the last step: score the checkpoint
        final = dubai.scores(unet.evaluate(model, held, device, stride, dubai.confusion, cfg.input_max))
    heldout = {**final, "iou": dict(zip(dubai.CLASSES, final["iou"], strict=True)),
               "beats_baseline": {"pixel_accuracy": final["pixel_accuracy"] - baseline["pixel_accuracy"],
                                  "miou": final["miou"] - baseline["miou"]}}
    run.describe_data(heldout=heldout)
    run.set_model(family="unet-segmentation", architecture=cfg.arch, classes=list(dubai.CLASSES),
                  input_max=cfg.input_max, bands=["red", "green", "blue"])
    return heldout


@train_command("segmentation", config_model=SegmentationTrainConfig, keep_checkpoints=3)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
def segmentation(run: TrainingRun, device: str) -> None:
    """Train a UNet over the six Dubai classes; scores held-out tiles against the majority class."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    h = train_segmentation(run, run.params, device)
    base = run.info["data"]["baseline"]
    click.echo(f"held-out tiles {run.params.holdout_tiles}: pixel accuracy {h['pixel_accuracy']:.4f} "
               f"(majority class {base['pixel_accuracy']:.4f}), mIoU {h['miou']:.4f} "
               f"(majority class {base['miou']:.4f})", err=True)
