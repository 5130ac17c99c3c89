"""Dask scaling: items per second with 1 and 2 worker processes of an external scheduler, and its overhead.

    OMP_NUM_THREADS=1 python benchmarks/dask_scaling.py                 # 32 pairs of 1024² 4-band GeoTIFFs
    python benchmarks/dask_scaling.py --pairs 48 --size 1024 --step pca-kmeans --repeat 2

A ``dask scheduler`` and N ``dask worker`` processes (``--nworkers 1 --nthreads 1``) are started as separate
commands on 127.0.0.1, as a user would on a cluster, with ``OMP_NUM_THREADS=MKL_NUM_THREADS=
OPENBLAS_NUM_THREADS=1`` so one worker is one core. Runs reach them through ``execution.address``; each
timing is of ``satcore.run`` end to end (listing, the cluster's work, the journal, results, metrics), after
a warm-up run that imports the plugins and builds the worker engines.

- Scaling: a CPU-bound classic detector (default ``pca-kmeans``: PCA on blocks and k-means over every pixel)
  on ``--pairs`` synthetic pairs, ``batch_size: 1`` so tasks spread evenly; items/s with 1 and 2 workers and
  their ratio. In the manifest, ``execution.worker_seconds`` is the time spent inside the workers' tasks:
  ``wall × workers − worker_seconds`` over the items is what each item cost besides its own work (the
  scheduler, transfers, the driver's journal and final pass, and workers idle at the end).
- Scheduler overhead per task: ``--tiny`` pairs of 8×8 PNGs with ``image-diff`` (nearly free work),
  ``batch_size: 1``, through 1 Dask worker against the local executor (one process, serial reading):
  the difference per item is what a round trip through the scheduler costs.

The load average is printed before and after: on a shared machine the ratio means little when other
processes compete for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def make_geotiff_pairs(root: Path, n: int, size: int) -> None:
    """``n`` pairs of ``size``² 4-band uint8 GeoTIFFs (UTM) with a planted change, in ``root/{A,B}``."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    for d in ("A", "B"):
        (root / d).mkdir(parents=True, exist_ok=True)
    prof = {"driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "uint8",
            "crs": "EPSG:32633", "transform": from_origin(500000, 5100000, 10, 10), "tiled": True}
    for i in range(n):
        a = rng.integers(40, 200, (4, size, size), dtype=np.uint8)
        b = a.copy()
        y, x = rng.integers(0, size // 2, 2)
        b[:, y:y + size // 4, x:x + size // 4] = 255 - b[:, y:y + size // 4, x:x + size // 4]
        for d, arr in (("A", a), ("B", b)):
            with rasterio.open(root / d / f"p_{i:03d}.tif", "w", **prof) as dst:
                dst.write(arr)


def make_tiny_pairs(root: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for d in ("A", "B"):
        (root / d).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / d / f"t_{i:04d}.png")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dask_cluster(n_workers: int, log_dir: Path) -> Iterator[str]:
    """A scheduler and ``n_workers`` one-thread worker processes, started as commands; yields the address."""
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    exe = shutil.which("dask", path=str(Path(sys.executable).parent))
    dask = [exe] if exe else [sys.executable, "-m", "dask"]
    env = {**os.environ, **ONE_THREAD}
    procs: list[subprocess.Popen[bytes]] = []
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_dir / "scheduler.log", "wb") as log:
            procs.append(subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                           "--no-dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        for i in range(n_workers):
            with open(log_dir / f"worker-{i}.log", "wb") as log:
                procs.append(subprocess.Popen(
                    [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                     "--no-dashboard", "--memory-limit", "0", "--name", f"w{i}"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield address
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def spec(root: Path, out: Path, step: str, **execution: Any) -> dict[str, Any]:
    return {"version": 1, "seed": 0, "source": {"type": "folder-pairs", "root": str(root)},
            "steps": [{"id": "change", "type": step}],
            "output": {"dir": str(out), "maps": False, "report": False},
            "execution": {"batch_size": 1, **execution}}


def timed_run(s: dict[str, Any], repeat: int) -> tuple[float, dict[str, Any]]:
    """Best wall time of ``repeat`` runs and that run's manifest."""
    import satcore

    best, manifest = float("inf"), {}
    for _ in range(repeat):
        t = time.perf_counter()
        res = satcore.run(s, progress=False, overwrite=True)
        took = time.perf_counter() - t
        if took < best:
            best, manifest = took, json.loads((res.output_dir / "manifest.json").read_text())
    return best, manifest


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--step", default="pca-kmeans")
    ap.add_argument("--tiny", type=int, default=256, help="8×8 pairs for the per-task overhead (0: skip)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "satcore-dask-scaling")
    args = ap.parse_args()
    os.environ.update(ONE_THREAD)  # the driver too (the local executor's run in the overhead comparison)
    data = args.workdir / f"pairs-{args.pairs}x{args.size}"
    if not (data / "B" / f"p_{args.pairs - 1:03d}.tif").exists():
        shutil.rmtree(data, ignore_errors=True)
        make_geotiff_pairs(data, args.pairs, args.size)
    print(f"load average before: {load()}  ({os.cpu_count()} cores)")
    rates: dict[int, float] = {}
    for n in (1, 2):
        with dask_cluster(n, args.workdir / f"logs-{n}") as address:
            out = args.workdir / f"run-{n}"
            timed_run(spec(data, out, args.step, executor="dask", address=address, limit=2 * n), 1)  # warm-up
            wall, man = timed_run(spec(data, out, args.step, executor="dask", address=address), args.repeat)
        ex = man["execution"]
        items = man["items"]["ok"]
        rates[n] = items / wall
        inside = ex["worker_seconds"] / items
        cpu = ex["worker_cpu_seconds"] / items
        besides = (wall * n - ex["worker_seconds"]) / items
        print(f"{n} worker(s): {items} items of {args.size}² {args.step} in {wall:.2f} s = {rates[n]:.3f} "
              f"items/s; in-worker {inside:.3f} s/item (CPU {cpu:.3f} s), besides the work "
              f"{besides:.3f} s/item "
              f"({100 * besides / (inside + besides):.1f} %); items per worker {ex['items_per_worker']}; "
              f"load {load()}")
    print(f"speed-up 2 vs 1 worker: {rates[2] / rates[1]:.2f}x")
    if args.tiny:
        tiny = args.workdir / f"tiny-{args.tiny}"
        if not (tiny / "B" / f"t_{args.tiny - 1:04d}.png").exists():
            shutil.rmtree(tiny, ignore_errors=True)
            make_tiny_pairs(tiny, args.tiny)
        local_wall, _ = timed_run(spec(tiny, args.workdir / "tiny-local", "image-diff", loader_workers=0),
                                  args.repeat + 1)
        with dask_cluster(1, args.workdir / "logs-tiny") as address:
            s = spec(tiny, args.workdir / "tiny-dask", "image-diff", executor="dask", address=address)
            timed_run({**s, "execution": {**s["execution"], "limit": 4}}, 1)  # warm-up
            dask_wall, man = timed_run(s, args.repeat + 1)
        per = (dask_wall - local_wall) / args.tiny
        print(f"scheduler overhead per task ({args.tiny} 8×8 pairs, image-diff, batch_size 1): local "
              f"{1e3 * local_wall / args.tiny:.2f} ms/item, 1 Dask worker {1e3 * dask_wall / args.tiny:.2f} "
              f"ms/item → {1e3 * per:.2f} ms per item through the scheduler "
              f"(in-worker {1e3 * man['execution']['worker_seconds'] / args.tiny:.2f} ms/item)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
