"""Write the Sentinel-2 Slovenia patch (eo-learn's TestEOPatch) as a dated GeoTIFF series.

The patch (``../shared/data/sentinel2-eopatch-slovenia/example_data/TestEOPatch``, see its SOURCE.txt) is
a ~1 × 1 km area at 10 m: ``data/NDVI.npy`` and ``data/CLP.npy`` (cloud probability 0–1), both
``(68, 101, 100, 1)`` float32, ``mask/IS_DATA.npy``, ``timestamps.json`` and ``bbox.geojson`` in
EPSG:32633. This script writes one file per date, ``S2_YYYY-MM-DD.tif``, with two float32 bands described
``NDVI`` and ``CLP``, CRS EPSG:32633, the transform from the bbox and the array size, NaN as nodata
(also where ``IS_DATA`` is false), deflate-compressed. ``geotiff-series`` then reads it as
``{root: series, cloud_band: CLP}`` (CLP is a float band, so its scale is 1).

One rule: two acquisitions fall on 2015-12-08 (10:04 and 10:11). A series has one file per date, so the
one with the lower mean cloud probability is kept and the other is reported: 67 files from 68 dates.

Usage::

    python examples/timeseries/slovenia/make_series.py [--src DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SRC = REPO.parent / "shared" / "data" / "sentinel2-eopatch-slovenia" / "example_data" / "TestEOPatch"
CRS = "EPSG:32633"
BANDS = ("NDVI", "CLP")


def read_patch(src: Path) -> tuple[list[datetime], np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """``(times, cube (T, 2, H, W) float32 with NaN where IS_DATA is false, is_data (T, H, W), bounds)``."""
    times = [datetime.fromisoformat(t) for t in json.loads((src / "timestamps.json").read_text())]
    ndvi = np.load(src / "data" / "NDVI.npy")[..., 0]
    clp = np.load(src / "data" / "CLP.npy")[..., 0]
    is_data = np.load(src / "mask" / "IS_DATA.npy")[..., 0].astype(bool)
    cube = np.stack([ndvi, clp], axis=1).astype(np.float32)
    cube[np.broadcast_to(~is_data[:, None], cube.shape)] = np.nan
    geo = json.loads((src / "bbox.geojson").read_text())
    crs_name = geo["crs"]["properties"]["name"]
    if not crs_name.endswith("32633"):
        raise SystemExit(f"{src / 'bbox.geojson'}: expected EPSG:32633, found {crs_name}")
    xs, ys = zip(*geo["coordinates"][0], strict=True)
    if len(times) != cube.shape[0]:
        raise SystemExit(f"{src}: {len(times)} timestamps for {cube.shape[0]} images")
    return times, cube, is_data, (min(xs), min(ys), max(xs), max(ys))


def one_per_day(times: list[datetime], cube: np.ndarray) -> list[int]:
    """Indexes to keep: per calendar day, the acquisition with the lowest mean cloud probability."""
    best: dict[str, int] = {}
    for i, t in enumerate(times):
        day = t.date().isoformat()
        j = best.get(day)
        if j is None or np.nanmean(cube[i, 1]) < np.nanmean(cube[j, 1]):
            best[day] = i
    return sorted(best.values())


def write_series(src: Path = SRC, out: Path = HERE / "series") -> list[Path]:
    """Write the series; returns the files written (sorted by date)."""
    import rasterio
    from rasterio.transform import from_bounds

    times, cube, _is_data, (west, south, east, north) = read_patch(src)
    t, _, h, w = cube.shape
    transform = from_bounds(west, south, east, north, w, h)
    out.mkdir(parents=True, exist_ok=True)
    keep = one_per_day(times, cube)
    for i in sorted(set(range(t)) - set(keep)):
        print(f"skipped {times[i].isoformat()}: another acquisition that day has less cloud")
    files = []
    for i in keep:
        path = out / f"S2_{times[i]:%Y-%m-%d}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=len(BANDS), dtype="float32",
                           crs=CRS, transform=transform, nodata=float("nan"), compress="deflate", predictor=3,
                           zlevel=9) as ds:
            ds.write(cube[i])
            for b, name in enumerate(BANDS, 1):
                ds.set_band_description(b, name)
            ds.update_tags(ACQUISITION_TIME=times[i].isoformat())
        files.append(path)
    print(f"wrote {len(files)} files to {out}")
    return files


def main() -> None:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=SRC, help="the TestEOPatch folder")
    ap.add_argument("--out", type=Path, default=HERE / "series", help="where to write S2_YYYY-MM-DD.tif")
    args = ap.parse_args()
    write_series(args.src, args.out)


if __name__ == "__main__":
    main()
