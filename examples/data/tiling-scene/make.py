"""Write this folder's synthetic pair: a 640 × 512 px, 3-band UTM GeoTIFF scene.

Before (A/) and after (B/) three rectangles are brightened, with their change mask (label/). Rerun to
recreate: python make.py
"""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

H, W = 512, 640
here = Path(__file__).parent
rng = np.random.default_rng(0)
rows, cols = np.mgrid[0:H, 0:W]
base = np.stack([90 + 40 * np.sin(rows / 37.0 + k) * np.cos(cols / 53.0 - k) for k in range(3)])
a = base + rng.integers(-1, 2, base.shape)
mask = np.zeros((H, W), bool)
for r, c, h, w in ((60, 80, 90, 160), (300, 400, 120, 140), (380, 40, 70, 70)):
    mask[r:r + h, c:c + w] = True
b = a + rng.integers(-1, 2, a.shape) + 45 * mask
prof = {"driver": "GTiff", "height": H, "width": W, "dtype": "uint8", "crs": "EPSG:32633",
        "transform": from_origin(500000, 5000000, 10, 10), "tiled": True, "blockxsize": 128,
        "blockysize": 128, "compress": "deflate", "predictor": 2}
for name, arr in (("A", a), ("B", b), ("label", mask[None])):
    (here / name).mkdir(exist_ok=True)
    with rasterio.open(here / name / "scene.tif", "w", count=arr.shape[0], **prof) as ds:
        ds.write(np.clip(arr, 0, 255).astype(np.uint8))
