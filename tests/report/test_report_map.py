"""The report's map in headless Chromium, offline: it renders its layers (screenshot) and lists them (DOM).

With CI=true the Chromium tests run, never skip; elsewhere they skip only when Chromium is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

import satcore
from satcore.outputs.report import build_report
from satcore.plugins import set_plugin_manager

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
                 if p and Path(p).exists()), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                                    reason="chromium is not installed (CI installs it and sets CI=true)")

# the network off: every host name fails to resolve and every connection goes to a closed local port
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--hide-scrollbars"]


def _chromium(tmp_path: Path, url: str, *args: str) -> str:
    assert CHROMIUM is not None, "CI=true but chromium is not installed: .ci/run installs it with apt"
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", "--virtual-time-budget=4000",
                           *args, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _pairs(root: Path, h, georeferenced: bool) -> None:
    """Two 64×64 RGB pairs with a changed square (the test detector finds it exactly)."""
    rng = np.random.default_rng(1)
    crs = "EPSG:32633" if georeferenced else None
    ext = ".tif" if georeferenced else ".png"
    for k, iid in enumerate(("north", "south")):
        transform = Affine(10.0, 0, 500000.0, 0, -10.0, 5200000.0 - 2000.0 * k)
        a = rng.integers(40, 90, (3, 64, 64), dtype=np.uint8)
        b = a.copy()
        b[:, 16:40, 20:48] = 250
        lab = np.zeros((64, 64), np.uint8)
        lab[16:40, 20:48] = 1
        for folder, arr in (("A", a), ("B", b), ("label", lab)):
            h.write_raster(root / folder / f"{iid}{ext}", arr, crs=crs, transform=transform if crs else None)


def _run(tmp_path: Path, h, pm, georeferenced: bool) -> Path:
    _pairs(tmp_path / "d", h, georeferenced)
    out = tmp_path / "o"
    satcore.run(h.spec_dict(tmp_path / "d", out), progress=False, pm=pm)
    set_plugin_manager(pm)  # the report loads the source again through the plugin manager
    build_report(out)
    return out / "report.html"


def _colour_share(png: Path, rgb: tuple[int, int, int], tol: int = 40) -> float:
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return float((np.abs(a - np.array(rgb)).max(axis=-1) <= tol).mean())


def test_the_page_loads_nothing_from_the_network(tmp_path, h, pm):
    page = _run(tmp_path, h, pm, georeferenced=True).read_text(encoding="utf-8")
    assert "L.map(" in page and "leaflet-control-layers" in page  # Leaflet's JS and CSS, inlined
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]?(https?:)?//", page)
    assert "<link" not in page and "@import" not in page


@needs_chromium
def test_the_map_renders_its_layers_offline(tmp_path, h, pm):
    page = _run(tmp_path, h, pm, georeferenced=True)
    url = page.as_uri() + "#map-only"  # the map section alone
    shot = tmp_path / "map.png"
    _chromium(tmp_path, url, "--window-size=1000,800", f"--screenshot={shot}")
    from PIL import Image

    a = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert a.std() > 20  # not a blank page
    # the change overlay (red over the bright square) and the polygon outlines (yellow) are drawn
    assert _colour_share(shot, (240, 60, 60), tol=45) > 0.002
    assert _colour_share(shot, (255, 212, 0), tol=50) > 0.0005
    dom = _chromium(tmp_path, url, "--dump-dom")
    labels = re.findall(r"<span>\s*([^<]+?)\s*</span>", dom.split("leaflet-control-layers-list", 1)[1])
    assert {"before", "after", "change: diff", "polygons: diff"} <= set(labels)
    assert dom.count('class="leaflet-image-layer') >= 2  # the after image and the change map are on
    assert "leaflet-interactive" in dom  # the polygons (SVG paths)


@needs_chromium
def test_png_pairs_use_a_pixel_crs(tmp_path, h, pm):
    page = _run(tmp_path, h, pm, georeferenced=False)
    shot = tmp_path / "map.png"
    _chromium(tmp_path, page.as_uri() + "#map-only", "--window-size=1000,800", f"--screenshot={shot}")
    assert _colour_share(shot, (240, 60, 60), tol=45) > 0.002
