"""Inputs of ``full-features.yaml``: a synthetic Sentinel-2 series and tiny random models, all offline.

    python examples/timeseries/make_tiny_models.py [--out examples/timeseries/tiny]

Writes, under ``--out`` (default ``tiny/`` beside this script, git-ignored):

- ``series/S2_<date>.tif``: 60 weekly dates, 40 × 40 px at 10 m in EPSG:32633 (the scene of
  ``satcore_timeseries.synthetic``), eleven float32 bands named as Sentinel-2 L1C (digital numbers,
  reflectance × 10000): the ten s2cloudless reads (B01 B02 B04 B05 B08 B8A B09 B10 B11 B12) plus B03, so
  that every extractor runs — ``cloud-probability`` takes the s2cloudless path, ``segmentation-probs`` and
  ``segment-anything-point`` read B04/B03/B02 as RGB. Two locations carry a seeded VAR(1) signal in their
  5 × 5 window: ``steady``, and ``broken`` whose red (B04) jumps by ``BREAK_SHIFT`` from date
  ``60 - 12 + 3`` on, inside the 12 held-out dates (bare soil replacing vegetation). About one date in
  eight has a bright cloud blob somewhere in the scene (high in every band, cirrus B10 too).
- ``seg/``: a ``satcore train segmentation`` folder, the small UNet (base 4, depth 2) trained for 4 steps
  on a few synthetic tiles in the Dubai layout (``seg-data/``): a tiny, untrained-quality model, but
  the real trainer and the real checkpoint format.
- ``sam/``: a random Segment Anything (transformers ``SamModel``, image size 64) saved with its
  processor (``save_pretrained``), the size of the plugin's tests.
- ``locations.json``: the two locations (id, lat, lon, row, col).

The models are random: their features are noise that follows the pixels, which is all a pipeline test
needs. The real models: ``satcore train segmentation`` on the Dubai tiles, ``sam-vit-base``
(plugins/satcore-timeseries/README.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
#: Band order of the files (s2cloudless's ten plus B03).
BANDS = ("B01", "B02", "B03", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
#: A clear-sky level per band (DN), roughly a vegetated Sentinel-2 pixel.
LEVEL = {"B01": 400, "B02": 500, "B03": 700, "B04": 600, "B05": 1200, "B08": 2800, "B8A": 2900,
         "B09": 500, "B10": 15, "B11": 1800, "B12": 1000}
T = 60
HORIZON = 12
SIZE = 40
#: Row, column of each location (pixel centre) in the scene.
PLACES = {"steady": (12, 12), "broken": (26, 28)}
BREAK_AT = T - HORIZON + 3
BREAK_SHIFT = 3000.0


def dates(t: int = T) -> list[str]:
    """``t`` weekly ISO dates from 2020-01-06."""
    return [str(np.datetime64("2020-01-06") + np.timedelta64(7 * i, "D")) for i in range(t)]


def series_cube(seed: int = 0, t: int = T) -> np.ndarray:
    """The scene ``(t, 11, SIZE, SIZE)`` in DN (see the module docstring)."""
    from satcore_timeseries.synthetic import var_series

    rng = np.random.default_rng(seed)
    level = np.array([LEVEL[b] for b in BANDS], dtype=np.float64)
    cube = level[None, :, None, None] * (1 + rng.normal(scale=0.03, size=(t, len(BANDS), SIZE, SIZE)))
    idx = {b: i for i, b in enumerate(BANDS)}
    for j, (name, (r, c)) in enumerate(PLACES.items()):
        s = var_series(t, 2, seed=seed + 10 + j, noise=0.05) - 0.4  # two coupled VAR(1) signals around 0
        sig = {"B04": 1500 * s[:, 1], "B03": 1000 * s[:, 1], "B02": 600 * s[:, 1] + 400 * s[:, 0],
               "B08": 3000 * s[:, 0], "B8A": 3000 * s[:, 0]}
        if name == "broken":
            sig["B04"] = sig["B04"] + np.where(np.arange(t) >= BREAK_AT, BREAK_SHIFT, 0.0)
        for b, v in sig.items():
            cube[:, idx[b], r - 2:r + 3, c - 2:c + 3] += v[:, None, None]
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(t):  # clouds: a bright blob, cirrus band raised as well
        if rng.random() < 0.125:
            cy, cx, rad = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(6, 14)
            alpha = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rad ** 2))
            cube[i] += alpha[None] * np.where(np.array(BANDS) == "B10", 400.0, 4500.0)[:, None, None]
    return np.clip(cube, 1.0, None)


def write_tiles(root: Path, n_tiles: int = 3, per_tile: int = 2, seed: int = 0) -> Path:
    """Tiny tiles in the Dubai layout (images whose colour follows the class, masks in the class colours)."""
    from PIL import Image
    from satcore_timeseries import dubai

    rng = np.random.default_rng(seed)
    colours = np.array([dubai.COLOURS[c] for c in dubai.CLASSES], dtype=np.uint8)
    for t in range(1, n_tiles + 1):
        base = root / "Semantic segmentation dataset" / f"Tile {t}"
        for sub in ("images", "masks"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for i in range(per_tile):
            lab = np.repeat(np.repeat(rng.integers(0, 6, (5, 6)), 8, 0), 8, 1)  # 40 × 48 px, 8-px blocks
            img = (lab[..., None] * 40 + rng.integers(0, 20, (40, 48, 3))).astype(np.uint8)
            Image.fromarray(img).save(base / "images" / f"image_part_{i:03d}.jpg", quality=95)
            Image.fromarray(colours[lab]).save(base / "masks" / f"image_part_{i:03d}.png")
    return root


def train_seg(out: Path, data: Path) -> Path:
    """``satcore train segmentation`` for 4 steps (small UNet, base 4, depth 2) into ``out``."""
    import yaml

    from satcore.cli import cli

    cfg = out.parent / "seg.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data), "crop": 32, "batch": 2, "steps": 4,
                                   "checkpoint_every": 4, "arch": "small", "base": 4, "depth": 2,
                                   "holdout_tiles": [3]}))
    cli.main(["train", "segmentation", str(cfg), "--output", str(out), "--quiet", "--device", "cpu",
              "--overwrite"], standalone_mode=False)
    return out


def write_sam(folder: Path, seed: int = 0) -> Path:
    """A random SAM (image size 64, tiny vision / prompt / mask-decoder configs) and its processor."""
    import torch
    import transformers as tf

    vc = tf.SamVisionConfig(hidden_size=16, output_channels=8, num_hidden_layers=2, num_attention_heads=2,
                            image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1], mlp_dim=32,
                            num_pos_feats=4, initializer_range=0.02)
    pc = tf.SamPromptEncoderConfig(hidden_size=8, image_size=64, patch_size=8, mask_input_channels=4)
    mc = tf.SamMaskDecoderConfig(hidden_size=8, mlp_dim=16, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=8)
    cfg = tf.SamConfig(vision_config=vc.to_dict(), prompt_encoder_config=pc.to_dict(),
                       mask_decoder_config=mc.to_dict(), initializer_range=0.02)
    torch.manual_seed(seed)
    model = tf.SamModel(cfg).eval()
    with torch.no_grad():  # SAM's initialisation is near zero: spread the weights so the outputs vary
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(folder)
    ip = tf.SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                              mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})
    tf.SamProcessor(image_processor=ip).save_pretrained(folder)
    return folder


def make(out: Path, seed: int = 0) -> dict[str, Any]:
    """Write the series, both tiny models and ``locations.json`` under ``out``; return what was written."""
    from satcore_timeseries.synthetic import latlon_of, write_series

    out.mkdir(parents=True, exist_ok=True)
    ds = dates()
    write_series(out / "series", ds, series_cube(seed), BANDS)
    locs = [{"id": k, "lat": latlon_of(r, c)[0], "lon": latlon_of(r, c)[1], "row": r, "col": c}
            for k, (r, c) in PLACES.items()]
    (out / "locations.json").write_text(json.dumps(locs, indent=1) + "\n")
    seg = train_seg(out / "seg", write_tiles(out / "seg-data", seed=seed))
    sam = write_sam(out / "sam", seed)
    return {"series": out / "series", "seg": seg, "sam": sam, "dates": ds, "locations": locs}


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    made = make(args.out, args.seed)
    print(json.dumps({k: str(v) for k, v in made.items() if k in ("series", "seg", "sam")}, indent=1))


if __name__ == "__main__":
    main()
