"""Change pictures (thesis section 3.6): gain/loss maps, magnitude heatmaps, composites and series GIFs.

Each map function draws on a matplotlib ``Axes`` and always adds what reading it needs: a colour bar for
continuous values, a legend for classes. matplotlib is imported only inside the functions that draw.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from satcore.plots import display_rgb, stretch

__all__ = ["band_index", "change_sign", "draw_gain_loss", "draw_label", "draw_magnitude",
           "false_colour", "multitemporal_composite", "series_gif"]

#: band names tried for near-infrared, red and green (case-insensitive), in order
NIR_BANDS = ("nir", "B08", "B8", "B8A")
RED_BANDS = ("red", "B04")
GREEN_BANDS = ("green", "B03")


def band_index(band_names: Sequence[str], aliases: Sequence[str]) -> int | None:
    """The index of the first band whose name is one of ``aliases`` (case-insensitive), or ``None``."""
    lower = [str(n).lower() for n in band_names]
    return next((lower.index(a.lower()) for a in aliases if a.lower() in lower), None)


def change_sign(before: np.ndarray, after: np.ndarray,
                band_names: Sequence[str] = ()) -> tuple[np.ndarray, str]:
    """The signed change per pixel and what it measures.

    NDVI after − before when red and NIR bands are named, else brightness (the mean over bands) after −
    before.

    Returns:
        ``(H, W)`` float64 difference (positive = gain) and its name (``"NDVI"`` or ``"brightness"``).
    """
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.ndim == 2:
        b, a = b[None], a[None]
    nir, red = band_index(band_names, NIR_BANDS), band_index(band_names, RED_BANDS)
    if nir is not None and red is not None:
        def ndvi(x: np.ndarray) -> np.ndarray:
            den = x[nir] + x[red]
            out: np.ndarray = np.divide(x[nir] - x[red], den, out=np.full(den.shape, np.nan), where=den != 0)
            return out

        return ndvi(a) - ndvi(b), "NDVI"
    return a.mean(axis=0) - b.mean(axis=0), "brightness"


def draw_label(ax: Any, label: np.ndarray, title: str = "truth") -> None:
    """A binary mask (white = change) with a legend."""
    from matplotlib.patches import Patch

    ax.imshow(np.asarray(label) > 0, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.legend(handles=[Patch(facecolor="white", edgecolor="k", label="change"),
                       Patch(facecolor="black", edgecolor="k", label="no change")],
              loc="lower center", bbox_to_anchor=(0.5, -0.32), ncol=2, fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)


def draw_magnitude(ax: Any, score: np.ndarray, label: np.ndarray | None = None, title: str = "",
                   vmin: float | None = 0.0, vmax: float | None = 1.0) -> None:
    """A change-magnitude heatmap with a colour bar; the label's outline (cyan) when given, in the legend."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    im = ax.imshow(score, cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
    cb = plt.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label("change score", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    if label is not None and min(np.shape(label)) >= 2 and np.any(label) and not np.all(label):
        ax.contour(np.asarray(label) > 0, levels=[0.5], colors="cyan", linewidths=0.6)
        ax.legend(handles=[Line2D([], [], color="cyan", lw=1, label="predicted change")],
                  loc="lower center", bbox_to_anchor=(0.5, -0.25), fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)


def draw_gain_loss(ax: Any, diff: np.ndarray, what: str, mask: np.ndarray | None = None,
                   title: str = "") -> None:
    """Signed change coloured by direction: green = gain, red = loss, on ``mask`` (grey elsewhere).

    The colour bar spans ± the 98th percentile of ``|diff|`` over the shown pixels.
    """
    import matplotlib.pyplot as plt

    d = np.asarray(diff, dtype=np.float64)
    shown = np.isfinite(d) if mask is None else (np.isfinite(d) & (np.asarray(mask) > 0))
    lim = float(np.percentile(np.abs(d[shown]), 98)) if shown.any() else 1.0
    lim = lim if lim > 0 else 1.0
    ax.imshow(np.full(d.shape, 0.55), cmap="gray", vmin=0, vmax=1)  # the unchanged background
    im = ax.imshow(np.ma.masked_where(~shown, d), cmap="RdYlGn", vmin=-lim, vmax=lim, interpolation="nearest")
    cb = plt.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label(f"{what} change (loss − / gain +)", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    ax.set_title(title or f"gain / loss ({what})", fontsize=9)


def multitemporal_composite(images: Sequence[np.ndarray], band_names: Sequence[str] = ()) -> np.ndarray:
    """One band from three dates as R, G, B (``(H, W, 3)`` uint8): first, middle and last image.

    The band is NIR when named, else the brightness (mean over bands). For a pair the dates are before,
    after, after: unchanged ground is grey, a loss shows red and a gain cyan.
    """
    nir = band_index(band_names, NIR_BANDS)

    def one(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        x = x if x.ndim == 3 else x[None]
        band: np.ndarray = x[nir] if nir is not None else x.mean(axis=0)
        return band

    picks = [images[0], images[len(images) // 2] if len(images) > 2 else images[-1], images[-1]]
    bands = [one(x) for x in picks]
    # one stretch for all three dates, so equal values look equal (a per-date stretch would invent change)
    lo, hi = np.nanpercentile(np.stack(bands), [2, 98])
    scale = hi - lo if hi > lo else 1.0
    return np.stack([np.round(np.clip((b - lo) / scale, 0, 1) * 255) for b in bands], -1).astype(np.uint8)


def false_colour(image: np.ndarray, band_names: Sequence[str]) -> np.ndarray | None:
    """The NIR-red-green false-colour composite (vegetation red), ``None`` without named NIR/red/green."""
    idx = [band_index(band_names, a) for a in (NIR_BANDS, RED_BANDS, GREEN_BANDS)]
    if any(i is None for i in idx):
        return None
    x = np.asarray(image)
    return np.stack([stretch(x[i]) for i in idx if i is not None], -1)


def series_gif(images: Sequence[Any], labels: Sequence[str] | None = None, max_px: int = 256,
               seconds_per_frame: float = 0.8) -> bytes:
    """A time-series animation: one display RGB frame per image (dates drawn on), as GIF bytes (Pillow)."""
    from PIL import Image, ImageDraw

    frames = []
    for k, raster in enumerate(images):
        img = Image.fromarray(display_rgb(raster))
        scale = max(img.size) / max_px
        if scale > 1:
            img = img.resize((max(1, round(img.width / scale)), max(1, round(img.height / scale))))
        if labels is not None:
            ImageDraw.Draw(img).text((4, 4), str(labels[k]), fill=(255, 255, 0))
        frames.append(img.convert("P", palette=Image.Palette.ADAPTIVE))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(seconds_per_frame * 1000), loop=0)
    return buf.getvalue()
