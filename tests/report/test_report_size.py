"""The report stays small: photographs as JPEG at the page's width, plots as exact palette PNGs, each map
image once. (The quickstart page went from 7.9 MB to 3.1 MB; docs/report.md.)"""

from __future__ import annotations

import base64
import io
import re

import matplotlib
import numpy as np
from PIL import Image

import satcore
from satcore.outputs.report import build_report
from satcore.plots import DISPLAY_WIDTH, fig_to_html
from satcore.plugins import set_plugin_manager

matplotlib.use("Agg")

#: bytes of the page per pictured item (panels, composites, map images and polygons), measured on this run:
#: ≈ 490 kB with PNG panels at 1,700 px (the 7.9 MB quickstart version: the page was 1.18 MB), ≈ 150 kB now
PER_ITEM = 250_000


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(fmt, base64.b64decode(data))
            for fmt, data in re.findall(r"data:image/(\w+);base64,([A-Za-z0-9+/=]+)", page)]


def test_a_small_runs_report_is_small(tmp_path, h, pm):
    h.make_pairs(tmp_path / "d", 2, size=96)
    out = tmp_path / "o"
    spec = h.spec_dict(tmp_path / "d", out)
    spec["output"].update({"report_items": 2})
    satcore.run(spec, progress=False, pm=pm)
    set_plugin_manager(pm)
    page = build_report(out).read_text()
    assert "Showing 2 of 2" in page
    # what is not pictures (Leaflet, tables, the map's JSON) plus a bounded amount per pictured item
    leaflet = 210_000   # Leaflet, the CSS, tables and plots: ≈ 205 kB measured
    assert len(page.encode()) < leaflet + 2 * PER_ITEM, len(page.encode())
    panels = [Image.open(io.BytesIO(b)) for fmt, b in _images(page) if fmt == "jpeg"
              and Image.open(io.BytesIO(b)).width > 600]
    assert len(panels) >= 2 and all(p.width <= DISPLAY_WIDTH for p in panels)


def test_plots_are_exact_palette_pngs_and_photos_jpeg():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.imshow(np.kron(np.eye(4), np.ones((8, 8))), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    full = np.asarray(Image.open(buf).convert("RGB"))
    ((fmt, data),) = _images(fig_to_html(fig, "blocks"))
    small = Image.open(io.BytesIO(data))
    assert fmt == "png" and small.mode == "P"
    assert np.array_equal(np.asarray(small.convert("RGB")), full)     # lossless
    assert len(data) < len(buf.getvalue())

    fig, ax = plt.subplots(figsize=(30, 3))                             # 2,900 px wide at 96 dpi
    ax.imshow(np.random.default_rng(0).random((30, 300, 3)))
    ((fmt, data),) = _images(fig_to_html(fig, "wide photo", fmt="jpeg", max_width=DISPLAY_WIDTH))
    assert fmt == "jpeg" and Image.open(io.BytesIO(data)).width == DISPLAY_WIDTH


def test_each_map_image_is_in_the_page_once():
    from satcore.outputs.webmap import webmap_html

    same = "data:image/png;base64,AAAA"
    entry = {"id": "x", "simple": True, "bounds": [[0, 0], [1, 1]], "polygons": [],
             "images": [{"name": "before", "url": same}, {"name": "after", "url": same}],
             "layers": [{"name": "change: a", "url": same},
                        {"name": "change: b", "url": "data:image/png;base64,BB"}]}
    page = webmap_html([entry, {**entry, "id": "y"}])
    assert page.count(same) == 1 and page.count("data:image/png;base64,BB") == 1
