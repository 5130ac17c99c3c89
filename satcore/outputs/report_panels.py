"""``report.html`` pictures of single items: panels (before, after, truth, maps), composites, GIFs, the map.

Every map panel carries its legend or colour bar (:mod:`satcore.plots_change`).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from satcore.outputs.report_items import Shown
from satcore.plots import DISPLAY_WIDTH, display_rgb, fig_to_html
from satcore.plots_change import (
    change_sign,
    draw_gain_loss,
    draw_label,
    draw_magnitude,
    false_colour,
    multitemporal_composite,
    series_gif,
)


def tex(text: Any) -> str:
    """``text`` for a matplotlib label: ``$`` escaped, so an id like ``a$b$`` is not parsed as math text."""
    return str(text).replace("$", r"\$")


def _read_map(path: Path) -> tuple[np.ndarray, list[str]]:
    from satcore.raster_files import open_quietly

    with open_quietly(path) as ds:  # maps of PNG pairs carry no CRS
        return ds.read(), [n or "" for n in ds.descriptions]


def item_panels(iid: str, arr: np.ndarray, names: list[str], item: Any) -> str:
    """One item's row: before, after, truth, each step's score heatmap, and a gain/loss map."""
    import matplotlib.pyplot as plt

    label_bands = [i for i, n in enumerate(names) if n.endswith(".label")]
    pair = item is not None and len(item.images) >= 2 and item.images[0].shape == item.images[-1].shape
    n_cols = (2 * (item is not None and bool(item.images)) + (item is not None and item.label is not None)
              + len(label_bands) + bool(pair and label_bands))
    fig, axes = plt.subplots(1, max(n_cols, 1), figsize=(2.9 * max(n_cols, 1), 3.3))
    axes = np.atleast_1d(axes)
    k = 0
    if item is not None and item.images:
        for title, r in (("before", item.images[0]), ("after", item.images[-1])):
            axes[k].imshow(display_rgb(r))
            axes[k].set_title(f"{title} (2–98% stretch)", fontsize=8)
            k += 1
        if item.label is not None:
            draw_label(axes[k], item.label)
            k += 1
    for i in label_bands:
        sid = names[i].rsplit(".", 1)[0]
        score = arr[i - 1] if i >= 1 and names[i - 1] == f"{sid}.score" else None
        if score is not None and np.isfinite(score).any():
            draw_magnitude(axes[k], score, arr[i], title=tex(sid))
        else:
            draw_label(axes[k], arr[i], title=tex(f"{sid} label"))
        k += 1
    if pair and label_bands:
        names_b = item.images[0].band_names
        diff, what = change_sign(item.images[0].array, item.images[-1].array, names_b)
        first = names[label_bands[0]].rsplit(".", 1)[0]
        draw_gain_loss(axes[k], diff, what, mask=arr[label_bands[0]],
                       title=tex(f"gain / loss ({what}) where {first} says change"))
        k += 1
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(tex(iid), fontsize=10)
    # photographs beside the maps: JPEG at the page's width, several times smaller than PNG (docs/report.md)
    return fig_to_html(fig, f"panels for {iid}", fmt="jpeg", max_width=DISPLAY_WIDTH)


def composites(iid: str, item: Any) -> str:
    """Multi-temporal composite, and false colour when NIR is named; a GIF for a series of 3+ images."""
    import matplotlib.pyplot as plt

    if item is None or len(item.images) < 2 or len({r.shape for r in item.images}) != 1:
        return ""
    names = item.images[0].band_names
    fc = false_colour(item.images[-1].array, names)
    fig, axes = plt.subplots(1, 1 + (fc is not None), figsize=(3.2 * (1 + (fc is not None)), 3.3))
    axes = np.atleast_1d(axes)
    axes[0].imshow(multitemporal_composite([r.array for r in item.images], names))
    from matplotlib.patches import Patch

    axes[0].legend(handles=[Patch(color="red", label="brighter before (loss)"),
                            Patch(color="cyan", label="brighter after (gain)"),
                            Patch(color="grey", label="unchanged")],
                   loc="lower center", bbox_to_anchor=(0.5, -0.36), ncol=2, fontsize=7, frameon=False)
    axes[0].set_title("multi-temporal composite\n(R: first, G: middle, B: last date)", fontsize=8)
    if fc is not None:
        axes[1].imshow(fc)
        axes[1].set_title("false colour, last date\n(NIR, red, green: vegetation red)", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    out = fig_to_html(fig, f"composites for {iid}", fmt="jpeg", max_width=DISPLAY_WIDTH)
    if len(item.images) > 2:
        dates = [r.time.isoformat()[:10] if r.time is not None else f"t{k}"
                 for k, r in enumerate(item.images)]
        gif = base64.b64encode(series_gif(item.images, dates)).decode("ascii")
        out += (f'<img alt="{html.escape(f"time series of {iid}", quote=True)}" '
                f'src="data:image/gif;base64,{gif}">')
    return out


def panels_section(run_dir: Path, shown: Shown) -> str:
    """The "Before / after / maps" section: the note, then each shown item's panels and composites."""
    parts = [f"<p>{shown.note}</p>"]
    if shown.source_problem:
        parts.append(f"<p><small>Images not shown: {html.escape(shown.source_problem)}.</small></p>")
    for iid in shown.ids:
        arr, names = _read_map(run_dir / "maps" / f"{iid}.tif")
        item = shown.items.get(iid)
        parts.append(item_panels(iid, arr, names, item))
        parts.append(composites(iid, item))
    return "".join(parts)


def map_section(run_dir: Path, shown: Shown) -> str:
    """The interactive map of the shown items (Leaflet inlined; see :mod:`satcore.outputs.webmap`)."""
    from satcore.outputs.webmap import item_entry, item_polygons, webmap_html

    if not shown.ids:
        return ""
    polys = item_polygons(run_dir, shown.ids)
    entries = [item_entry(i, run_dir / "maps" / f"{i}.tif", shown.items.get(i), polys.get(i, {}))
               for i in shown.ids]
    note = (f"{shown.note} Pick the item; the layer control switches the images (base layers) and the change "
            "maps and polygons (overlays). Works offline: Leaflet is inlined, there is no basemap.")
    return webmap_html(entries, note)
