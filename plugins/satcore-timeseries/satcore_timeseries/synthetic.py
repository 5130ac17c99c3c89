"""Seeded synthetic series for tests, examples and benchmarks: VAR series and dated GeoTIFF series on disk.

Not imported by the plugin's components; it needs rasterio and pyproj (both installed with satcore).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: The synthetic scene: EPSG:32633, 10 m pixels, origin (500000, 5100000), 60 × 60 px.
CRS = "EPSG:32633"
ORIGIN = (500000.0, 5100000.0)
SIZE = 60


def var_series(t: int = 60, k: int = 2, seed: int = 0, break_at: int | None = None, shift: float = 0.6,
               noise: float = 0.05) -> np.ndarray:
    """A stationary VAR(1) around 0.4 (seeded); from ``break_at`` on feature 0 jumps by ``shift``."""
    rng = np.random.default_rng(seed)
    a = np.array([[0.5, 0.1], [0.05, 0.4]])[:k, :k]
    y = np.zeros((t, k))
    for i in range(1, t):
        y[i] = a @ y[i - 1] + rng.normal(scale=noise, size=k)
    y += 0.4
    if break_at is not None:
        y[break_at:, 0] += shift
    return y


def pixel_of(lat: float, lon: float) -> tuple[int, int]:
    """Row and column of a WGS84 point in the synthetic scene (pyproj, independent of the source)."""
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(lon, lat)
    return int((ORIGIN[1] - y) // 10), int((x - ORIGIN[0]) // 10)


def latlon_of(row: int, col: int) -> tuple[float, float]:
    """The WGS84 point at the centre of a pixel of the synthetic scene."""
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        ORIGIN[0] + 10 * col + 5, ORIGIN[1] - 10 * row - 5)
    return float(lat), float(lon)


def write_series(root: Path, dates: list[str], cubes: np.ndarray, names: tuple[str, ...], nodata: float | None
                 = None) -> Path:
    """Write ``cubes`` ``(T, bands, H, W)`` as ``S2_<date>.tif`` files with band descriptions."""
    import rasterio
    from affine import Affine

    root.mkdir(parents=True, exist_ok=True)
    tr = Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
    for date, cube in zip(dates, cubes, strict=True):
        with rasterio.open(root / f"S2_{date}.tif", "w", driver="GTiff", height=cube.shape[1],
                           width=cube.shape[2], count=cube.shape[0], dtype="float32", crs=CRS, transform=tr,
                           nodata=nodata) as ds:
            ds.write(cube.astype(np.float32))
            ds.descriptions = names
    return root


def geotiff_series(root: Path, t: int = 30, seed: int = 0) -> dict[str, Any]:
    """A synthetic Sentinel-2 series (B02 B03 B04 B08) and three locations: steady, broken, all-nodata.

    Each location's window (5 × 5 px) carries a VAR series of red and NIR reflectance plus pixel noise; the
    ``broken`` one's NIR drops after date ``t - 12`` + 3 (vegetation lost); ``void``'s window is nodata
    (0) on every date. Returns the dates, locations (id → lat, lon, row, col) and the folder.
    """
    rng = np.random.default_rng(seed)
    dates = [f"2020-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(t)]
    cube = 0.1 + rng.normal(scale=0.005, size=(t, 4, SIZE, SIZE))
    cube = np.abs(cube) + 0.01
    places = {"steady": (15, 15), "broken": (30, 40), "void": (45, 20)}
    for j, (name, (r, c)) in enumerate(places.items()):
        s = var_series(t, 2, seed=seed + j, break_at=t - 9 if name == "broken" else None, shift=-0.3)
        red, nir = 0.05 + 0.1 * s[:, 1], 0.1 + s[:, 0]
        cube[:, 2, r - 2:r + 3, c - 2:c + 3] = red[:, None, None]
        cube[:, 3, r - 2:r + 3, c - 2:c + 3] = nir[:, None, None]
        if name == "void":
            cube[:, :, r - 2:r + 3, c - 2:c + 3] = 0.0
    write_series(root, dates, cube, ("B02", "B03", "B04", "B08"), nodata=0.0)
    locs = {n: (*latlon_of(r, c), r, c) for n, (r, c) in places.items()}
    return {"root": root, "dates": dates, "locations": locs}
