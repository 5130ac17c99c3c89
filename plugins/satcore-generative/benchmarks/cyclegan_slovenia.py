"""Benchmark: the CycleGAN's held-out numbers on the Slovenia scenes, before and after training.

    python benchmarks/cyclegan_slovenia.py RUN_FOLDER [--scenes PATH]

Reads a finished ``satcore train cyclegan`` folder and prints, for the initial weights (the same seed and
architecture, untrained) and for the newest checkpoint:

- the cycle spectral angle G(F(b)) vs b on the held-out scene (unpaired, as training measures it);
- a paired check the thesis could not make: the held-out scene's own B04/B03/B02 through G against its
  real 13 bands (spectral angle in degrees, MAE in reflectance).

These come from small patches, not EuroSAT; the thesis's 10.20° is context only, not a like-for-like number.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from satcore_generative.bands import ESA_BANDS, RGB_FROM_S2
from satcore_generative.cyclegan import (
    CycleGanConfig,
    Generator,
    build_models,
    load_generator,
    spectral_angle,
)
from satcore_generative.window import sliding_window


def _run(net: Generator, x: np.ndarray, out_bands: int, window: int) -> np.ndarray:
    def predict(t: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(t)).numpy()

    return sliding_window(x, predict, out_bands=out_bands, window=window, overlap=window // 2)


def numbers(g: Generator, f: Generator, scene: np.ndarray, ms_max: float, window: int) -> dict[str, float]:
    """Cycle angle and paired G numbers on one (13, H, W) scene in [0, ms_max]."""
    b = np.clip(scene / ms_max, 0, 1) * 2 - 1
    rgb = b[[ESA_BANDS.index(n) for n in RGB_FROM_S2]]
    cyc = _run(g, _run(f, b, 3, window), 13, window)
    fake = _run(g, rgb, 13, window)
    real01, fake01, cyc01 = (b + 1) / 2, (fake + 1) / 2, (cyc + 1) / 2
    t = torch.from_numpy
    return {
        "cycle_angle_deg": float(torch.rad2deg(spectral_angle(t(cyc01)[None], t(real01)[None])).mean()),
        "paired_angle_deg": float(torch.rad2deg(spectral_angle(t(fake01)[None], t(real01)[None])).mean()),
        "paired_mae_reflectance": float(np.abs(fake01 - real01).mean() * ms_max),
    }


def main() -> None:
    """Print the before/after table as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--scenes", type=Path)
    args = ap.parse_args()
    info = json.loads((args.run / "train.json").read_text())
    cfg = info["config"]
    scenes_path = args.scenes or Path(cfg["ms"])
    if not scenes_path.is_absolute() and not scenes_path.exists():
        scenes_path = (args.run.parent / scenes_path)
    scenes = np.load(scenes_path).astype(np.float32)
    scenes = scenes if scenes.shape[1] == 13 else scenes.transpose(0, 3, 1, 2)
    held = scenes[len(scenes) - int(cfg.get("holdout", 1))]
    ckpt = sorted((args.run / "checkpoints").glob("step-*.pt"))[-1]
    g, arch = load_generator(ckpt, "G")
    f, _ = load_generator(ckpt, "F")
    torch.manual_seed(info["seed"])
    init = build_models(CycleGanConfig(**arch.to_dict()))
    window = int(cfg.get("crop", 64))
    out = {
        "initial": numbers(init["G"].eval(), init["F"].eval(), held, float(cfg.get("ms_max", 1.0)), window),
        "trained": numbers(g, f, held, float(cfg.get("ms_max", 1.0)), window),
        "checkpoint": ckpt.name,
        "context_only_thesis": {"spectral_angle_deg": 10.20, "sid": 0.0727, "ergas": 22.93},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
