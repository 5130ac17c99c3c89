"""Reading ahead in threads vs processes while a model computes, side by side in one run.

    python benchmarks/reading_pools.py                    # 1,024 pairs of 256×256 PNGs, tiny CLIP model
    python benchmarks/reading_pools.py --pairs 512 --size 128 --repeat 3

Why it exists: ``execution.loader_workers`` reads in threads (see docs/decisions.md). Threads share the GIL,
and the Python part of a rasterio read (open, environment, metadata) holds it, so a process pool looks like
the obvious next step. This measures it: the folder-pairs source's own ``load`` (the engine's reading) for
every pair, fed in batches of 32 images to the tiny random open_clip model of
``benchmarks/clip_throughput.py`` (satcore_clip's preprocessing + ``encode_image``), with

- ``serial``: reading on the model's thread;
- ``threads``: a thread pool of ``--workers`` (what satcore does);
- ``processes (fork)`` / ``processes (forkserver)``: a process pool of ``--workers`` (``chunksize`` 8), items
  pickled back to the main process;

each with torch computing on 1 thread and on torch's default. Pool start-up is inside the timing, as it
would be in a run. Needs satcore-clip (torch, open_clip).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_SOURCE = None


def _source(root: str):
    global _SOURCE
    if _SOURCE is None:
        from satcore.builtin.sources import FolderPairsParams, FolderPairsSource

        _SOURCE = FolderPairsSource(FolderPairsParams(root=root))
    return _SOURCE


def load(args: tuple[str, object]):
    """Load one item as the engine does (in one GDAL environment); return its RGB uint8 images."""
    from satcore_clip.preprocess import to_rgb_uint8

    from satcore.data import gdal_env

    root, ref = args
    with gdal_env():
        item = _source(root).load(ref)
    return [to_rgb_uint8(r.array, r.band_names) for r in item.images]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1024)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()

    import clip_throughput as ct
    import torch
    from satcore_clip.preprocess import preprocess_batch

    work = Path(tempfile.mkdtemp(prefix="satcore-reading-"))
    ct.make_pairs(work / "data", a.pairs, a.size)
    model, _tok, pre, _dtype, _name = ct.build_model("tiny", "cpu", "fp32", work)
    root = str(work / "data")
    refs = [(root, ref) for ref in _source(root).list_items()]
    default_threads = torch.get_num_threads()

    def consume(images_iter) -> None:
        buf: list = []
        with torch.inference_mode():
            for imgs in images_iter:
                buf.extend(imgs)
                if len(buf) >= 32:
                    model.encode_image(preprocess_batch(buf, pre, "cpu"))
                    buf = []
            if buf:
                model.encode_image(preprocess_batch(buf, pre, "cpu"))

    def serial() -> None:
        consume(map(load, refs))

    def threads() -> None:
        with ThreadPoolExecutor(a.workers) as ex:
            consume(ex.map(load, refs))

    def processes(method: str):
        def run() -> None:
            with ProcessPoolExecutor(a.workers, mp_context=mp.get_context(method)) as ex:
                consume(ex.map(load, refs, chunksize=8))

        return run

    variants = {
        "serial": serial,
        "threads": threads,
        "processes (fork)": processes("fork"),
        "processes (forkserver)": processes("forkserver"),
    }
    best: dict[tuple[str, int], float] = {}
    for r in range(a.repeat + 1):  # round 0 warms caches and is not counted
        for name, fn in variants.items():
            for nt in sorted({1, default_threads}):
                torch.set_num_threads(nt)
                t = time.perf_counter()
                fn()
                took = time.perf_counter() - t
                if r:
                    best[(name, nt)] = min(best.get((name, nt), 1e9), took)
    torch.set_num_threads(default_threads)
    print(f"{a.pairs} pairs of {a.size}×{a.size} PNGs, {a.workers} workers, best of {a.repeat}")
    print(f"{'reading':24s} {'torch threads':>13s} {'pairs/s':>9s}")
    for (name, nt), took in best.items():
        print(f"{name:24s} {nt:13d} {a.pairs / took:9.0f}")


if __name__ == "__main__":
    main()
