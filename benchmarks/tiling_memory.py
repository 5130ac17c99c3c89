"""Peak memory of a tiled whole-scene run: a synthetic 10,000 × 10,000 GeoTIFF pair, processed tile by tile.

Writes the pair (3 bands, uint8, tiled, deflate) window by window under ``--dir`` (default
``/tmp/satcore-tiling-bench``, never the repository), then runs ``cva`` (z-score normalisation and Otsu: both
scene-statistics passes) with ``tiling: {size, overlap}`` in a child process with ``GDAL_CACHEMAX`` bounded,
and reports the child's peak resident memory (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``), the wall
time and the mosaic written. The target (issue 14): peak < 1.5 GB.

    nice -n 10 python benchmarks/tiling_memory.py                 # 10,000², tiles of 1024
    python benchmarks/tiling_memory.py --side 3000 --size 512     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SPEC = """version: 1
name: tiling-memory
seed: 0
source: {{type: folder-pairs, root: data, max_pixels: null, tiling: {{size: {size}, overlap: 8}}}}
steps:
  - {{id: cva, type: cva}}
output: {{dir: run, maps: true, report: false}}
execution: {{batch_size: 1, loader_workers: 0}}
"""


def write_pair(root: Path, side: int, block: int = 1024) -> None:
    """A, B (B = A + noise, brighter in a few rectangles) and a label, written window by window."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    prof = {"driver": "GTiff", "height": side, "width": side, "dtype": "uint8", "crs": "EPSG:32633",
            "transform": from_origin(500000, 5000000, 10, 10), "tiled": True, "blockxsize": 256,
            "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    for d in ("A", "B", "label"):
        (root / d).mkdir(parents=True, exist_ok=True)
    where = ((0.1, 0.2), (0.5, 0.6), (0.8, 0.3))
    changes = [(int(side * f), int(side * g), int(side * 0.08)) for f, g in where]
    with rasterio.open(root / "A/scene.tif", "w", count=3, **prof) as a, \
            rasterio.open(root / "B/scene.tif", "w", count=3, **prof) as b, \
            rasterio.open(root / "label/scene.tif", "w", count=1, **prof) as lab:
        for r in range(0, side, block):
            for c in range(0, side, block):
                h, w = min(block, side - r), min(block, side - c)
                rng = np.random.default_rng(r * side + c)
                img = rng.normal(100, 20, (3, h, w))
                rows, cols = np.mgrid[r:r + h, c:c + w]
                mask = np.zeros((h, w), bool)
                for cr, cc, half in changes:
                    mask |= (abs(rows - cr) < half) & (abs(cols - cc) < half)
                after = img + rng.normal(0, 6, img.shape) + 50 * mask
                win = Window(c, r, w, h)
                a.write(img.clip(0, 255).astype(np.uint8), window=win)
                b.write(after.clip(0, 255).astype(np.uint8), window=win)
                lab.write(mask[None].astype(np.uint8), window=win)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=10_000, help="scene side in pixels")
    ap.add_argument("--size", type=int, default=1024, help="tile size")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/satcore-tiling-bench"))
    ap.add_argument("--cachemax", default="128", help="GDAL_CACHEMAX (MB) of the run")
    args = ap.parse_args()
    root = args.dir
    data = root / "data"
    marker = data / f".side-{args.side}"
    if not marker.exists():
        t = time.perf_counter()
        write_pair(data, args.side)
        marker.write_text("")
        print(f"wrote the {args.side}² pair in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    (root / "spec.yaml").write_text(SPEC.format(size=args.size))
    env = {**os.environ, "GDAL_CACHEMAX": args.cachemax, "OMP_NUM_THREADS": "1"}
    code = ("import satcore; r = satcore.run('spec.yaml', overwrite=True, progress=False); "
            "print(r.items_ok, r.items_failed)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True)
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    mosaic = root / "run/mosaic/scene.tif"
    import rasterio

    with rasterio.open(mosaic) as m:
        layout = m.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
        overviews = m.overviews(1)
    metrics = json.loads((root / "run/metrics.json").read_text())["steps"]["cva"]["all"]["pixel"]
    manifest = json.loads((root / "run/manifest.json").read_text())
    out = {"side": args.side, "tile": args.size, "gdal_cachemax_mb": int(args.cachemax),
           "peak_rss_mb": round(peak_mb, 1), "wall_s": round(wall, 1), "mosaic_layout": layout,
           "mosaic_overviews": overviews, "mosaic_mb": round(mosaic.stat().st_size / 2**20, 1),
           "pixel_f1": metrics["f1"], "items_ok": manifest["items"]["ok"],
           "wall_time_s": manifest["wall_time_s"], "under_1_5_gb": peak_mb < 1536}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
