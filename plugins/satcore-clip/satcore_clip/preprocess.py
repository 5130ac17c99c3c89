"""Image preprocessing as torch ops (CPU or GPU), identical to open_clip's resize → centre crop → normalise.

Input: uint8 RGB ``(3, H, W)`` arrays (or tensors already on the device). Output: float ``(N, 3, S, S)``.
The same function runs on the CPU and on CUDA, so the GPU path decodes nothing twice and the
CPU path matches it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: bands to use as RGB, by the names satcore gives them
RGB_NAMES = (("red", "green", "blue"), ("B04", "B03", "B02"), ("R", "G", "B"))


def to_rgb_uint8(
    array: np.ndarray, band_names: tuple[str, ...] = (), value_max: float | None = None
) -> np.ndarray:
    """``(bands, H, W)`` of any dtype → ``(3, H, W)`` uint8 RGB.

    RGB bands are picked by name (``red green blue`` or Sentinel-2 ``B04 B03 B02``), else the first three;
    one band is repeated. uint8 is kept as is; other dtypes are divided by ``value_max`` when given, else
    stretched between the image's 2nd and 98th percentiles. When the RGB bands are the first three planes of
    a contiguous uint8 array the result is a view of it (the batch is copied once, when it is stacked); treat
    it as read-only.
    """
    idx: list[int] | None = None
    for names in RGB_NAMES:
        if all(n in band_names for n in names):
            idx = [band_names.index(n) for n in names]
            break
    if idx is None:
        idx = [0, 0, 0] if array.shape[0] < 3 else [0, 1, 2]
    rgb = array[:3] if idx == [0, 1, 2] else array[idx]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    x = rgb.astype(np.float32)
    if value_max is not None:
        x = x / float(value_max)
    else:
        lo, hi = np.nanpercentile(x, [2, 98])
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.ascontiguousarray((np.clip(np.nan_to_num(x), 0, 1) * 255 + 0.5).astype(np.uint8))


def preprocess_tensor(img: Any, size: int, mean: Any, std: Any, interpolation: str = "bicubic") -> Any:
    """One uint8 ``(3, H, W)`` tensor → normalised float32 ``(3, size, size)`` on the same device.

    Resize so the shorter side is ``size`` (antialiased, like PIL), centre-crop to ``size``, scale to [0, 1],
    normalise with ``mean``/``std``.
    """
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    mode = {
        "bicubic": InterpolationMode.BICUBIC,
        "bilinear": InterpolationMode.BILINEAR,
        "nearest": InterpolationMode.NEAREST,
    }[interpolation]
    x = img.to(torch.float32)
    h, w = x.shape[-2:]
    if min(h, w) != size:
        x = F.resize(x, [size], interpolation=mode, antialias=True)
    x = F.center_crop(x, [size, size])
    x = x.clamp_(0, 255).div_(255.0)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def preprocess_uint8(x: Any, cfg: dict[str, Any], float_resize: bool | None = None) -> Any:
    """A uint8 ``(N, 3, H, W)`` tensor (on any device) → normalised float32 ``(N, 3, S, S)`` on that device.

    The batched form of :func:`preprocess_tensor`: one resize kernel for the whole batch (each image is still
    resized on its own). On the CPU the antialiased resize runs on uint8 (torch's vectorised kernels, about 4×
    faster than float, rounding like PIL); on other devices in float32 (``float_resize`` forces either).
    Scaling to [0, 1] and normalising are one multiply-add per element, ``x · 1/(255·std) − mean/std``, after
    clamping the resize's overshoot to [0, 255]: two passes over the batch instead of four.
    """
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    size = int(cfg["size"])
    mode = {
        "bicubic": InterpolationMode.BICUBIC,
        "bilinear": InterpolationMode.BILINEAR,
        "nearest": InterpolationMode.NEAREST,
    }[cfg.get("interpolation", "bicubic")]
    given = x
    if float_resize is None:
        float_resize = x.device.type != "cpu"
    if float_resize:
        x = x.to(torch.float32)
    h, w = x.shape[-2:]
    if min(h, w) != size:
        x = F.resize(x, [size], interpolation=mode, antialias=True)
    x = F.center_crop(x, [size, size])
    if x.dtype != torch.float32:  # a uint8 resize rounds and saturates: nothing to clamp
        x = x.to(torch.float32)
    else:  # never write into the caller's tensor
        x = x.clamp(0, 255) if x.data_ptr() == given.data_ptr() else x.clamp_(0, 255)
    mean = torch.as_tensor(cfg["mean"], dtype=torch.float64)
    std = torch.as_tensor(cfg["std"], dtype=torch.float64)
    scale = (1.0 / (255.0 * std)).to(torch.float32, copy=False).to(x.device).view(1, 3, 1, 1)
    shift = (-mean / std).to(torch.float32, copy=False).to(x.device).view(1, 3, 1, 1)
    return torch.addcmul(shift, x, scale)


def preprocess_batch(images: list[np.ndarray], cfg: dict[str, Any], device: str = "cpu") -> Any:
    """uint8 RGB arrays → ``(N, 3, S, S)`` float32 on ``device``; the uint8 goes to the GPU (pinned) first.

    Images of one shape are stacked and preprocessed together by :func:`preprocess_uint8`; a result never
    depends on the batch.
    """
    import torch

    groups: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(images):
        groups.setdefault(tuple(a.shape), []).append(i)
    out: list[Any] = [None] * len(images)
    for idx in groups.values():
        x = torch.from_numpy(np.stack([np.ascontiguousarray(images[i]) for i in idx]))
        if device != "cpu":
            x = x.pin_memory().to(device, non_blocking=True)
        y = preprocess_uint8(x, cfg)
        for k, i in enumerate(idx):
            out[i] = y[k]
    return torch.stack(out)
