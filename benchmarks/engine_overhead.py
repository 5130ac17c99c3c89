"""The engine's cost per item when the work itself is nearly free, side by side in one process.

    python benchmarks/engine_overhead.py                 # 2,048 pairs of 8×8 PNGs, image-diff
    python benchmarks/engine_overhead.py --items 4096 --repeat 3

Each run is ``satcore.run`` of folder-pairs → one cheap detector (default ``image-diff``), no maps or report,
timed end to end (listing, reading, the step, the journal, results, metrics, manifest). Variants:

- ``serial`` / ``loaders 2``: ``execution.loader_workers`` 0 and 2 (threads, probed per run);
- ``loaders 2, processes``: ``execution.loader: processes`` (two worker processes, started in the timing);
- ``GDAL readdir on``: the same with ``GDAL_DISABLE_READDIR_ON_OPEN=FALSE`` in the environment (which
  satcore's own GDAL environment leaves alone), i.e. GDAL listing the folder of N files on every open as it
  does by default — the cost satcore.data.gdal_env() removes.

What is left per item is the framework: Item and Raster objects, the per-item result row, the journal and
the final pass. Needs the classic plugin for ``image-diff`` (or pass ``--step``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_pairs(root: Path, n: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for d in ("A", "B"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        for d in ("A", "B"):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / d / f"t_{i:05d}.png")


def timed(spec: dict, repeat: int) -> float:
    import satcore

    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        satcore.run(spec, progress=False, overwrite=True)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2048)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--step", default="image-diff")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="satcore-engine-bench-"))
    try:
        make_pairs(work / "data", a.items, a.size)

        def spec(loaders: int, loader: str = "threads") -> dict:
            return {
                "version": 1,
                "name": "engine",
                "source": {"type": "folder-pairs", "root": str(work / "data")},
                "steps": [{"id": "d", "type": a.step}],
                "output": {"dir": str(work / "run"), "maps": False, "report": False},
                "execution": {"batch_size": a.batch, "device": "cpu", "loader_workers": loaders,
                              "loader": loader},
            }

        timed(spec(0), 1)  # warm-up: imports, page cache
        rows = []
        for label, loaders, readdir, loader in (
            ("serial", 0, None, "threads"),
            ("loaders 2", 2, None, "threads"),
            ("loaders 2, processes", 2, None, "processes"),
            ("serial, GDAL readdir on", 0, "FALSE", "threads"),
            ("loaders 2, GDAL readdir on", 2, "FALSE", "threads"),
        ):
            if readdir is None:
                os.environ.pop("GDAL_DISABLE_READDIR_ON_OPEN", None)
            else:
                os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] = readdir
            rows.append((label, timed(spec(loaders, loader), a.repeat)))
        os.environ.pop("GDAL_DISABLE_READDIR_ON_OPEN", None)
        print(f"{a.items} pairs of {a.size}×{a.size} PNGs in one folder, step {a.step}, batch {a.batch}, "
              f"best of {a.repeat}; load average {os.getloadavg()[0]:.2f}")
        print(f"{'variant':28s} {'s':>7s} {'ms/item':>8s}")
        for label, s in rows:
            print(f"{label:28s} {s:7.3f} {1e3 * s / a.items:8.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
