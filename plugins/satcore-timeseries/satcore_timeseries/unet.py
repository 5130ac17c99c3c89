"""The segmentation network, its losses, and the training and prediction loops (torch only).

Standalone on purpose: torch and numpy at import (segmentation-models-pytorch only for ``arch="smp"`` and
the Dice, Jaccard and focal losses), no satcore, so ``benchmarks/segmentation_dubai.py`` can load this file
on a machine without satcore's dependencies. ``satcore train segmentation`` (train_segmentation.py) and the
``segmentation-probs`` extractor (segmentation.py) build on it.

Input scaling (training and inference alike): RGB values divided by ``input_max`` (255 for the 8-bit Dubai
JPEGs) and clipped to [0, 1]; no mean/std normalisation (the network learns from scratch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

ARCHS = ("small", "smp")
LOSSES = ("ce", "dice", "jaccard", "focal")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallUNet(nn.Module):
    """A small UNet (Ronneberger et al. 2015): ``depth`` poolings, widths ``base·2^i``, for the CPU."""

    def __init__(self, in_channels: int = 3, classes: int = 6, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, widths[0])]
                                  + [_block(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes, H, W)``; H and W must be multiples of ``2 ** depth``."""
        skips = []
        for i, blk in enumerate(self.down):
            x = blk(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1]), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        out: torch.Tensor = self.head(x)
        return out


def build_model(arch: str = "small", classes: int = 6, *, base: int = 16, depth: int = 3,
                encoder: str = "resnet18") -> nn.Module:
    """The network: ``small`` (:class:`SmallUNet`) or ``smp``.

    ``smp`` is segmentation-models-pytorch's ``Unet`` with ``encoder_weights=None``: no pretrained download,
    trained from scratch.
    """
    if arch == "small":
        return SmallUNet(3, classes, base=base, depth=depth)
    if arch == "smp":
        import segmentation_models_pytorch as smp

        net: nn.Module = smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=3, classes=classes)
        return net
    raise ValueError(f"arch must be one of {ARCHS}, not {arch!r}")


def stride_of(arch: str, depth: int = 3) -> int:
    """Input sides must be multiples of this (the network's total downsampling)."""
    return 32 if arch == "smp" else 2 ** depth


def make_loss(name: str, ignore_index: int = 255) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of thesis section 3.5 by name, on logits ``(N, C, H, W)`` and labels ``(N, H, W)``.

    ``ce``: cross-entropy (torch); ``dice``, ``jaccard`` (soft IoU, 1 − Σpy / (Σp + Σy − Σpy) per class) and
    ``focal`` (γ = 2): segmentation-models-pytorch's multiclass losses. smp's Dice and Jaccard average
    ``1 − score`` over the classes, counting a class absent from the batch's truth as 0; its focal loss is a
    one-vs-rest *sigmoid* focal loss per class, averaged over the classes. Pixels labelled ``ignore_index``
    count in none of them.
    """
    if name == "ce":
        return nn.CrossEntropyLoss(ignore_index=ignore_index)
    if name in ("dice", "jaccard", "focal"):
        from segmentation_models_pytorch import losses as L

        cls = {"dice": L.DiceLoss, "jaccard": L.JaccardLoss, "focal": L.FocalLoss}[name]
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = cls("multiclass",
                                                                        ignore_index=ignore_index)
        return fn
    raise ValueError(f"loss must be one of {LOSSES}, not {name!r}")


def to_input(images: np.ndarray, input_max: float = 255.0) -> np.ndarray:
    """``(N, H, W, 3)`` or ``(H, W, 3)`` RGB → float32 ``(N, 3, H, W)`` in [0, 1] (``/ input_max``)."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    return np.ascontiguousarray(np.clip(a / input_max, 0.0, 1.0).transpose(0, 3, 1, 2))


def random_crops(pairs: list[tuple[np.ndarray, np.ndarray]], n: int, size: int, gen: torch.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random ``size``-px crops ``(images (n, size, size, 3), labels (n, size, size))``.

    The image is drawn with probability proportional to its area (so every pixel is equally likely), then
    the corner uniformly; random horizontal/vertical flips. ``gen`` alone draws them (resumable).
    """
    areas = torch.tensor([float(max(0, img.shape[0] - size + 1) * max(0, img.shape[1] - size + 1))
                          for img, _ in pairs])
    if float(areas.sum()) == 0:
        raise ValueError(f"crop size {size} is larger than every image")
    idx = torch.multinomial(areas, n, replacement=True, generator=gen).tolist()
    xs, ys = [], []
    for i in idx:
        img, lab = pairs[i]
        r = int(torch.randint(img.shape[0] - size + 1, (1,), generator=gen))
        c = int(torch.randint(img.shape[1] - size + 1, (1,), generator=gen))
        flips = torch.randint(2, (2,), generator=gen).tolist()
        a, b = img[r:r + size, c:c + size], lab[r:r + size, c:c + size]
        if flips[0]:
            a, b = a[:, ::-1], b[:, ::-1]
        if flips[1]:
            a, b = a[::-1], b[::-1]
        xs.append(a)
        ys.append(b)
    return np.stack(xs), np.stack(ys)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor],
               images: np.ndarray, labels: np.ndarray, device: str, input_max: float = 255.0) -> float:
    """One optimiser step on a batch; returns the loss."""
    model.train()
    x = torch.from_numpy(to_input(images, input_max)).to(device)
    y = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64)).to(device)
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()
    return float(loss.detach())


def predict_probs(model: nn.Module, x: np.ndarray, device: str, stride: int, tile: int = 512) -> np.ndarray:
    """Softmax class probabilities ``(C, H, W)`` of one float32 image ``(3, H, W)`` (already scaled).

    The image is cut into tiles of at most ``tile`` px, each reflect-padded to a multiple of ``stride``;
    the padding is cut off again.
    """
    model.eval()
    _, h, w = x.shape
    out: np.ndarray | None = None
    with torch.inference_mode():
        for r in range(0, h, tile):
            for c in range(0, w, tile):
                part = torch.from_numpy(np.ascontiguousarray(x[:, r:r + tile, c:c + tile]))[None].to(device)
                ph, pw = part.shape[2], part.shape[3]
                pad_h, pad_w = (-ph) % stride, (-pw) % stride
                if pad_h or pad_w:
                    mode = "reflect" if pad_h < ph and pad_w < pw else "replicate"
                    part = nn.functional.pad(part, (0, pad_w, 0, pad_h), mode=mode)
                prob = torch.softmax(model(part).float(), dim=1)[0, :, :ph, :pw].cpu().numpy()
                if out is None:
                    out = np.zeros((prob.shape[0], h, w), dtype=np.float32)
                out[:, r:r + ph, c:c + pw] = prob
    assert out is not None  # h, w > 0
    return out


def evaluate(model: nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]], device: str, stride: int,
             confusion: Callable[[np.ndarray, np.ndarray], np.ndarray], input_max: float = 255.0
             ) -> np.ndarray:
    """The summed confusion matrix of the argmax prediction over whole images (``confusion(truth, pred)``)."""
    total: np.ndarray | None = None
    for img, lab in pairs:
        pred = predict_probs(model, to_input(img, input_max)[0], device, stride).argmax(0)
        cm = confusion(lab, pred)
        total = cm if total is None else total + cm
    assert total is not None
    return total


def checkpoint_state(model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                     meta: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint holds: weights, optimiser, crop RNG and the self-description.

    ``meta`` (arch, classes, base, depth, encoder, input_max) is what :func:`load_checkpoint` rebuilds the
    model from.
    """
    return {"model": model.state_dict(), "opt": opt.state_dict(), "crop_rng": gen.get_state(),
            "torch_rng": torch.get_rng_state(), "meta": dict(meta)}


def load_checkpoint(path: Any, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The network of a checkpoint (in eval mode) and its ``meta``; ``weights_only`` loading (no pickles)."""
    state = torch.load(path, map_location=device, weights_only=True)
    meta = dict(state["meta"])
    model = build_model(meta["arch"], len(meta["classes"]), base=int(meta.get("base", 16)),
                        depth=int(meta.get("depth", 3)), encoder=str(meta.get("encoder", "resnet18")))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), meta
