"""Benchmark: a UNet on the Dubai tiles for a fixed time, scored on held-out tiles against the majority class.

    python plugins/satcore-timeseries/benchmarks/segmentation_dubai.py --device cpu --minutes 5 \
        --arch small --json seg.json

Trains on random crops of every tile but the held-out ones (default tiles 1 and 2, whole folders) for
``--minutes`` of training time, then predicts the held-out images whole and reports pixel accuracy and mIoU
(mean IoU over the classes present in truth or prediction; mask pixels of no class colour ignored) beside
the majority-class baseline (the most frequent training class predicted everywhere).

Imports only numpy, Pillow, scikit-learn and torch (plus segmentation-models-pytorch for ``--arch smp`` or
the Dice/Jaccard/focal losses): it loads ``satcore_timeseries/dubai.py`` and ``unet.py`` by file path, not
through the package, so satcore's own dependencies need not be installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
PKG = HERE.parent / "satcore_timeseries"
REPO = HERE.parent.parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_seg_bench_{name}", PKG / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Parse the options, train for ``--minutes``, score the held-out tiles; returns the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "dubai-segmentation"),
                    help="the dubai-segmentation folder (default ../shared/data/dubai-segmentation)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--minutes", type=float, default=5.0, help="training time (evaluation comes after)")
    ap.add_argument("--arch", choices=["small", "smp"], default="small")
    ap.add_argument("--encoder", default="resnet18", help="smp encoder (arch smp)")
    ap.add_argument("--base", type=int, default=16, help="small UNet width")
    ap.add_argument("--depth", type=int, default=3, help="small UNet poolings")
    ap.add_argument("--loss", choices=["ce", "dice", "jaccard", "focal"], default="ce")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--holdout", default="1,2", help="held-out tile numbers, comma-separated")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", dest="json_out", default=None, help="write the results here")
    a = ap.parse_args(argv)

    import numpy as np
    import torch

    dubai, unet = _load("dubai"), _load("unet")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    holdout = [int(t) for t in a.holdout.split(",") if t.strip()]
    tiles = sorted(dubai.tile_folders(a.data))
    train_ids = [t for t in tiles if t not in holdout]
    t0 = time.perf_counter()
    train, held = dubai.load_tiles(a.data, train_ids), dubai.load_tiles(a.data, holdout)
    load_s = time.perf_counter() - t0
    baseline = dubai.majority_baseline(train, held)

    model = unet.build_model(a.arch, len(dubai.CLASSES), base=a.base, depth=a.depth,
                             encoder=a.encoder).to(a.device)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = unet.make_loss(a.loss, dubai.IGNORE)
    gen = torch.Generator().manual_seed(a.seed)
    steps, losses = 0, []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < a.minutes * 60:
        x, y = unet.random_crops(train, a.batch, a.crop, gen)
        losses.append(unet.train_step(model, opt, loss_fn, x, y, a.device))
        steps += 1
        if steps % 50 == 0:
            print(f"step {steps}: loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr)
    if a.device == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cm = unet.evaluate(model, held, a.device, unet.stride_of(a.arch, a.depth), dubai.confusion)
    eval_s = time.perf_counter() - t0
    sc = dubai.scores(cm)
    result: dict[str, object] = {
        "holdout_tiles": holdout, "train_tiles": train_ids, "train_images": len(train),
        "holdout_images": len(held), "holdout_pixels": sc["pixels"],
        "arch": a.arch, "encoder": a.encoder if a.arch == "smp" else None,
        "base": a.base if a.arch == "small" else None, "loss": a.loss, "crop": a.crop, "batch": a.batch,
        "lr": a.lr, "steps": steps, "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
        "load_seconds": round(load_s, 1), "final_loss_mean_last_50": float(np.mean(losses[-50:])),
        "pixel_accuracy": sc["pixel_accuracy"], "miou": sc["miou"],
        "iou": dict(zip(dubai.CLASSES, sc["iou"], strict=True)),
        "baseline": {"class": baseline["class"], "pixel_accuracy": baseline["pixel_accuracy"],
                     "miou": baseline["miou"]},
        "margin": {"pixel_accuracy": sc["pixel_accuracy"] - baseline["pixel_accuracy"],
                   "miou": sc["miou"] - baseline["miou"]},
        "device": a.device, "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None,
    }
    print(json.dumps(result, indent=2))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
