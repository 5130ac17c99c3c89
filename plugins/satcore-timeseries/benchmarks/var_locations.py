"""Benchmark: var-forecast at N random locations of a 67-date series, local executor vs 2 Dask workers.

    python plugins/satcore-timeseries/benchmarks/var_locations.py [--series DIR] [--n 100] [--out DIR]

The series is the Slovenia one (``examples/timeseries/slovenia/series/``, written by ``make_series.py``)
when it exists, else a synthetic series of the same size (68 dates, 101 × 100 px, bands NDVI and CLP,
EPSG:32633), which the output says. Locations are drawn uniformly (seed 0) inside the scene, at least
the window's half-width from the edge. The pipeline is band-values (NDVI, CLP) → var-forecast (h = 12).
Times are the wall time around ``satcore.run`` (for Dask it includes starting the local cluster); the
output also gives the load average (1, 5, 15 min) before and after, since other jobs skew the times.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
SLOVENIA = REPO / "examples" / "timeseries" / "slovenia" / "series"


def synthetic(root: Path, t: int = 68, seed: int = 0) -> Path:
    """68 dates of a 101 × 100 px NDVI + cloud-probability scene (a VAR signal plus pixel texture)."""
    from satcore_timeseries.synthetic import var_series, write_series

    rng = np.random.default_rng(seed)
    base = var_series(t, 2, seed=seed)
    tex = rng.normal(scale=0.05, size=(2, 101, 100))
    cube = base[:, :, None, None] + tex[None] + rng.normal(scale=0.02, size=(t, 2, 101, 100))
    dates = [str(np.datetime64("2016-01-01") + np.timedelta64(7 * i, "D")) for i in range(t)]
    return write_series(root, dates, cube, ("NDVI", "CLP"))


def random_locations(series: Path, n: int, window: int, seed: int = 0) -> list[dict[str, object]]:
    """``n`` points uniformly inside the first file's scene (WGS84), away from the edges by half a window."""
    import rasterio
    from rasterio.warp import transform

    first = sorted(series.glob("*.tif"))[0]
    with rasterio.open(first) as ds:
        rng = np.random.default_rng(seed)
        half = window // 2 + 1
        rows = rng.integers(half, ds.height - half, n)
        cols = rng.integers(half, ds.width - half, n)
        xs, ys = zip(*(ds.xy(int(r), int(c)) for r, c in zip(rows, cols, strict=True)), strict=True)
        lon, lat = transform(ds.crs, "EPSG:4326", list(xs), list(ys))
    pts = zip(lat, lon, strict=True)
    return [{"id": f"p{i:03d}", "lat": float(a), "lon": float(b)} for i, (a, b) in enumerate(pts)]


def spec(series: Path, locations: list[dict[str, object]], out: Path, executor: dict[str, object]) -> dict:
    """The benchmark pipeline: band-values (NDVI, CLP) → var-forecast, on one executor."""
    return {
        "version": 1, "name": "var-locations-benchmark", "seed": 0,
        "source": {"type": "geotiff-series", "root": str(series), "pattern": "*.tif", "window": 5,
                   "locations": locations},
        "steps": [{"id": "bands", "type": "band-values", "bands": ["NDVI", "CLP"]},
                  {"id": "var", "type": "var-forecast", "input": ["bands"], "horizon": 12,
                   "flag_features": ["NDVI"]}],
        "output": {"dir": str(out), "maps": False, "report": False},
        "execution": {"batch_size": 8, "loader_workers": 0, **executor},
    }


def main() -> None:
    """Run both executors and print the times as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=Path, default=SLOVENIA)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import satcore

    work = args.out or Path(tempfile.mkdtemp(prefix="var-bench-"))
    series, kind = args.series, f"Slovenia ({args.series})"
    if not series.is_dir() or not any(series.glob("*.tif")):
        series = synthetic(work / "synthetic")
        kind = f"synthetic, 68 dates, 101 x 100 px (no Slovenia series in {args.series})"
    n_dates = len(list(series.glob("*.tif")))
    locs = random_locations(series, args.n, 5)
    results = {}
    load_before = [round(x, 2) for x in os.getloadavg()]
    runs = (("local", {"executor": "local", "workers": 1}), ("dask-2", {"executor": "dask", "workers": 2}))
    for name, ex in runs:
        t0 = time.perf_counter()
        res = satcore.run(spec(series, locs, work / name, ex), overwrite=True, progress=False)
        wall = time.perf_counter() - t0
        man = json.loads((work / name / "manifest.json").read_text())
        results[name] = {"wall_s": round(wall, 2), "per_location_ms": round(1000 * wall / args.n, 1),
                         "ok": res.items_ok, "failed": res.items_failed,
                         "step_s": {k: v for k, v in man["wall_time_s"].items() if k != "total"}}
    load = [round(x, 2) for x in os.getloadavg()]  # other jobs on the machine skew the times: say how busy
    print(json.dumps({"series": kind, "dates": n_dates, "locations": args.n, "load_before": load_before,
                      "load_after": load, "results": results}, indent=2))


if __name__ == "__main__":
    main()
