"""Pictures for reports: a figure as self-contained HTML, and a display RGB of any raster.

Part of the documented plugin toolkit: a component's
:meth:`~satcore.components.Component.report_sections` builds its HTML with these, as the core report does.
matplotlib and PIL are imported only by :func:`fig_to_html` (whoever made the figure has already imported it).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DISPLAY_WIDTH", "JPEG_QUALITY", "RGB_BANDS", "display_rgb", "fig_to_html", "stretch"]

#: Band names tried for the red, green and blue display channels (case-insensitive), in order.
RGB_BANDS: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    ("red", "B04"), ("green", "B03"), ("blue", "B02"),
)


#: the width (CSS pixels) a report shows a figure at: its body is 1200 px wide; wider figures are downsampled
DISPLAY_WIDTH = 1200
#: JPEG quality of ``fig_to_html(..., fmt="jpeg")``
JPEG_QUALITY = 85


def _palette_if_exact(image: Any) -> Any:
    """An opaque image of at most 256 colours as a palette (``P``) image with exactly those colours."""
    from PIL import Image

    if image.mode == "RGBA" and image.getextrema()[3][0] == 255:
        image = image.convert("RGB")
    if image.mode != "RGB" or image.getcolors(256) is None:
        return image
    rgb = np.asarray(image)
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    out = Image.fromarray(index.reshape(rgb.shape[:2]).astype(np.uint8))
    out.putpalette(colours.astype(np.uint8).ravel().tolist())
    return out


def fig_to_html(fig: Any, alt: str, dpi: int = 96, fmt: str = "png", max_width: int | None = None) -> str:
    """A matplotlib figure as one ``<img src="data:image/…;base64,…">`` element, then closes the figure.

    The image is embedded, so the HTML needs no other file. ``alt`` is escaped (it may hold step ids or band
    names).

    Args:
        fig: the figure.
        alt: the image's alternative text.
        dpi: rendering resolution.
        fmt: ``"png"`` (lossless; a palette PNG when the figure has at most 256 colours, as plots mostly
            do) or ``"jpeg"`` (quality :data:`JPEG_QUALITY`, for figures with photographs: several times
            smaller).
        max_width: a figure rendered wider is downsampled (Lanczos) to this many pixels, e.g.
            :data:`DISPLAY_WIDTH`; ``None`` keeps the rendered size.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fig_to_html: fmt must be 'png' or 'jpeg', got {fmt!r}")
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    image: Any = Image.open(buf)
    image.load()
    if max_width and image.width > max_width:
        height = max(1, round(image.height * max_width / image.width))
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        _palette_if_exact(image).save(out, format="PNG", optimize=True)
    data = base64.b64encode(out.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/{fmt};base64,{data}">'


def stretch(
    band: np.ndarray, valid: np.ndarray | None = None, low: float = 2.0, high: float = 98.0
) -> np.ndarray:
    """One band to ``uint8``: the ``low`` percentile → 0, the ``high`` percentile → 255, linear between.

    Percentiles are taken over the valid pixels (finite, and ``valid`` where given); values outside are
    clipped, invalid pixels are 0, and a band without spread (or without valid pixels) is all 0.
    """
    x = np.asarray(band, dtype=np.float64)
    ok = np.isfinite(x) if valid is None else (np.isfinite(x) & valid)
    out = np.zeros(x.shape, np.uint8)
    if not ok.any():
        return out
    lo, hi = np.percentile(x[ok], [low, high])
    if not hi > lo:
        return out
    scaled = np.clip((x[ok] - lo) / (hi - lo), 0.0, 1.0)
    out[ok] = np.round(scaled * 255.0).astype(np.uint8)
    return out


def _rgb_indices(band_names: Sequence[str], count: int) -> list[int]:
    lower = [str(n).lower() for n in band_names]
    picked: list[int] = []
    for aliases in RGB_BANDS:
        found = next((lower.index(a.lower()) for a in aliases if a.lower() in lower), None)
        if found is None:
            break
        picked.append(found)
    if len(picked) == 3:
        return picked
    if count >= 3:
        return [0, 1, 2]
    return [0, 0, 0]


def display_rgb(
    raster_or_array: Any, band_names: Sequence[str] | None = None, nodata: float | None = None
) -> np.ndarray:
    """A ``(H, W, 3)`` ``uint8`` picture of any raster, for showing (not for measuring).

    Channels: the bands named red/green/blue (or Sentinel-2 ``B04``/``B03``/``B02``), else the first three
    bands, else the first band as grey. Each channel is stretched on its own with :func:`stretch`: its 2nd
    percentile → 0, its 98th → 255 (robust to a few very bright or dark pixels), NaN, infinities and
    ``nodata`` pixels ignored for the percentiles and shown black.

    Args:
        raster_or_array: a :class:`satcore.data.Raster` (its ``band_names`` and ``nodata`` are used), a
            ``(bands, H, W)`` array or an ``(H, W)`` array.
        band_names: names of the bands (overrides the raster's).
        nodata: the nodata value (overrides the raster's).
    """
    array = getattr(raster_or_array, "array", raster_or_array)
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] == 0:
        raise ValueError(f"display_rgb needs a (bands, H, W) or (H, W) array, got shape {np.shape(array)}")
    names = band_names if band_names is not None else getattr(raster_or_array, "band_names", None) or ()
    if nodata is None:
        nodata = getattr(raster_or_array, "nodata", None)
    idx = _rgb_indices(names, a.shape[0])
    channels = []
    for i in idx:
        band = a[i]
        valid = None if nodata is None or np.isnan(nodata) else band != nodata
        channels.append(stretch(band, valid))
    return np.stack(channels, axis=-1)
