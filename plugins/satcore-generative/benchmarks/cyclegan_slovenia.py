"""Benchmark: train the thesis's CycleGAN on the Slovenia scenes for a time budget and judge it, paired.

    python plugins/satcore-generative/benchmarks/cyclegan_slovenia.py --minutes 12 --json out.json
    python plugins/satcore-generative/benchmarks/cyclegan_slovenia.py --device cuda --minutes 8 \
        --batch 16 --base 32 --n-res 6 --json gpu.json

Trains G (RGB → 13 bands) and F (13 → RGB) exactly as ``satcore train cyclegan`` does (random
``crop``×``crop`` crops, unpaired: the RGB crops are the training scenes' own B04/B03/B02 drawn
independently of the multispectral crops; least-squares GAN losses; spectral-angle cycle loss, λ = 10; Adam
2e-4, β 0.5/0.999) until ``--minutes`` or ``--steps`` runs out, with the last ``--holdout`` dates held out.
It prints (and writes with ``--json``) for the initial weights and the trained ones:

- ``heldout_cycle``: the cycle spectral angle G(F(b)) vs b on the held-out date (unpaired, as training
  measures it);
- ``paired_heldout`` (a): the held-out date's own B04/B03/B02 through G against its real 13 bands;
- ``paired_cloudmask`` (b), spatially independent: G's B02/B03/B04/B08/B11/B12 against the real bands of
  ``../shared/data/sentinel2-cloudmask`` (another place, 512×512; its six bands Blue, Green, Red, NIR,
  SWIR16, SWIR22 in reflectance), clear pixels only (mask codes 1, 2, 3; 0 = cloud shadow and 4 = cloud
  are left out);
- ``baseline_linear``: the same paired checks for a per-band least-squares fit of each band on
  (B04, B03, B02, 1) over the training dates' pixels. It uses pairs, which CycleGAN never sees: context for
  what "paired" numbers mean, not a competitor.

Metrics as the core's ``spectral`` block defines them (pooled over pixels; ``tests/test_benchmark.py`` checks
they agree): spectral angle (degrees), SID (ε = 1e-10), ERGAS (ratio 1), MAE (reflectance). These come from
small patches, not EuroSAT: the thesis's 10.20° / 0.0727 / 22.93 are context only, never like-for-like.

Imports: numpy and torch only. The plugin's model modules (``cyclegan.py``, ``window.py``, ``bands.py``)
are loaded by file path, so neither satcore nor its dependencies (pydantic, rasterio, pluggy) are needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
PKG = HERE.parent / "satcore_generative"
DATA = HERE.parents[2].parent / "shared" / "data"
SCENES = DATA / "sentinel2-eopatch-slovenia" / "example_data" / "REFERENCE_SCENES.npy"
CLOUDMASK = DATA / "sentinel2-cloudmask" / "tests" / "testfiles" / "sentinel2.npz"
#: the cloud-mask file's six bands, in its order (SOURCE.txt: Blue, Green, Red, NIR, SWIR16, SWIR22)
CLOUDMASK_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
CLEAR_CODES = (1, 2, 3)
EPS = 1e-10
THESIS = {"spectral_angle_deg": 10.20, "sid": 0.0727, "ergas": 22.93}


def _load(name: str) -> ModuleType:
    """A plugin module by file path (no package ``__init__``, so no satcore import)."""
    full = f"_satcore_generative_bench_{name}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.spec_from_file_location(full, PKG / f"{name}.py")
    assert spec is not None and spec.loader is not None  # noqa: S101 - our own files
    mod = importlib.util.module_from_spec(spec)
    sys.modules[full] = mod  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


cg, win, bands = _load("cyclegan"), _load("window"), _load("bands")
ESA = bands.ESA_BANDS
RGB_IDX = [ESA.index(b) for b in bands.RGB_FROM_S2]


# ----------------------------------------------------------------- metrics (the core `spectral` block's)
def spectral_metrics(truth: np.ndarray, pred: np.ndarray,
                     valid: np.ndarray | None = None) -> dict[str, float]:
    """Spectral angle (°), SID, ERGAS (ratio 1), MAE and MSE of ``pred`` vs ``truth`` ``(bands, H, W)``.

    Pooled over valid pixels: the definitions of satcore's ``spectral`` block (docs/metrics.md).
    """
    t, p = truth.astype(np.float64), pred.astype(np.float64)
    m = np.all(np.isfinite(t) & np.isfinite(p), axis=0)
    if valid is not None:
        m &= valid
    x, y = t[:, m], p[:, m]
    nx, ny = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
    ok = (nx > 0) & (ny > 0)
    cos = np.clip((x[:, ok] * y[:, ok]).sum(0) / (nx[ok] * ny[ok]), -1, 1)
    pos = np.all(x >= 0, axis=0) & np.all(y >= 0, axis=0) & (x.sum(0) > 0) & (y.sum(0) > 0)
    pp, qq = x[:, pos] / x[:, pos].sum(0) + EPS, y[:, pos] / y[:, pos].sum(0) + EPS
    sid = ((pp - qq) * (np.log(pp) - np.log(qq))).sum(0)
    d = y - x
    rmse2, mu = (d * d).mean(1), x.mean(1)
    return {"spectral_angle_deg": float(np.degrees(np.arccos(cos)).mean()), "sid": float(sid.mean()),
            "ergas": float(100 * np.sqrt(np.mean(rmse2 / mu ** 2))), "mae": float(np.abs(d).mean()),
            "mse": float((d * d).mean()), "pixels": int(m.sum())}


# ----------------------------------------------------------------- model helpers
def _apply(net: torch.nn.Module, x01: np.ndarray, out_bands: int, device: str, window: int) -> np.ndarray:
    """``net`` over a ``(C, H, W)`` image in [0, 1] by blended sliding windows; output in [0, 1]."""
    def predict(t: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out: np.ndarray = net(torch.from_numpy(t).to(device)).float().cpu().numpy()
            return out

    x = (np.clip(x01, 0, 1) * 2 - 1).astype(np.float32)
    y = win.sliding_window(x, predict, out_bands=out_bands, window=window, overlap=window // 2)
    return (np.clip(y, -1, 1) + 1) / 2


def evaluate(models: dict[str, torch.nn.Module], held: np.ndarray, cloud: tuple[np.ndarray, np.ndarray],
             device: str, window: int) -> dict[str, Any]:
    """Held-out cycle angle and both paired checks for one set of weights."""
    for m in models.values():
        m.eval()
    g, f = models["G"], models["F"]
    cyc = _apply(g, _apply(f, held, 3, device, window), 13, device, window)
    fake = _apply(g, held[RGB_IDX], 13, device, window)
    img, clear = cloud
    cloud_fake = _apply(g, img[[2, 1, 0]], 13, device, window)[[ESA.index(b) for b in CLOUDMASK_BANDS]]
    for m in models.values():
        m.train()
    return {"heldout_cycle": spectral_metrics(held, cyc), "paired_heldout": spectral_metrics(held, fake),
            "paired_cloudmask": _with_bands(spectral_metrics(img, cloud_fake, clear), img, cloud_fake, clear)}


def _with_bands(rec: dict[str, Any], truth: np.ndarray, pred: np.ndarray,
                valid: np.ndarray) -> dict[str, Any]:
    rec["band_mae"] = {b: float(np.abs(pred[i][valid] - truth[i][valid]).mean())
                       for i, b in enumerate(CLOUDMASK_BANDS)}
    return rec


def linear_baseline(train: np.ndarray, held: np.ndarray,
                    cloud: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Paired least squares band ~ (B04, B03, B02, 1) on the training dates' pixels (context only)."""
    px = train.transpose(1, 0, 2, 3).reshape(13, -1)
    design = np.vstack([px[RGB_IDX], np.ones(px.shape[1])]).T
    coef, *_ = np.linalg.lstsq(design, px.T, rcond=None)  # (4, 13)

    def predict(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[1:]
        d = np.vstack([rgb.reshape(3, -1), np.ones(h * w)]).T
        return np.asarray((d @ coef).T.reshape(13, h, w))

    img, clear = cloud
    cloud_fake = predict(img[[2, 1, 0]])[[ESA.index(b) for b in CLOUDMASK_BANDS]]
    return {"paired_heldout": spectral_metrics(held, predict(held[RGB_IDX])),
            "paired_cloudmask": _with_bands(spectral_metrics(img, cloud_fake, clear), img, cloud_fake, clear)}


def load_cloudmask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The cloud-mask crop as ``(6, H, W)`` reflectance and its clear-pixel mask."""
    z = np.load(path)
    img = np.asarray(z["img"], dtype=np.float32).transpose(2, 0, 1)
    clear = np.isin(z["msk"][..., 0], CLEAR_CODES)
    return img, clear


# ----------------------------------------------------------------- training
def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train for the budget and return the before/after numbers."""
    device = args.device
    torch.manual_seed(args.seed)
    if device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    scenes = np.load(args.scenes).astype(np.float32)
    scenes = scenes if scenes.shape[1] == 13 else scenes.transpose(0, 3, 1, 2)
    scenes = np.clip(scenes / args.ms_max, 0, 1)
    train_s, held = scenes[: len(scenes) - args.holdout], scenes[len(scenes) - args.holdout]
    cloud = load_cloudmask(args.cloudmask)
    arch = cg.CycleGanConfig(base=args.base, n_res=args.n_res, se_reduction=8, disc_base=args.base)
    models = {k: m.to(device) for k, m in cg.build_models(arch).items()}
    before = evaluate(models, held, cloud, device, args.crop)
    ms = torch.from_numpy(train_s * 2 - 1)
    rgb = ms[:, RGB_IDX]
    gen = torch.Generator().manual_seed(args.seed)
    opt_g = torch.optim.Adam([*models["G"].parameters(), *models["F"].parameters()], lr=args.lr,
                             betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*models["D_ms"].parameters(), *models["D_rgb"].parameters()], lr=args.lr,
                             betas=(0.5, 0.999))

    def crops(stack: torch.Tensor) -> torch.Tensor:
        n, _, h, w = stack.shape
        c = args.crop
        idx = torch.randint(n, (args.batch,), generator=gen).tolist()
        ys = torch.randint(h - c + 1, (args.batch,), generator=gen).tolist()
        xs = torch.randint(w - c + 1, (args.batch,), generator=gen).tolist()
        out = [stack[i, :, y:y + c, x:x + c] for i, y, x in zip(idx, ys, xs, strict=True)]
        return torch.stack(out).to(device)

    t0, step, curve = time.monotonic(), 0, []
    deadline = t0 + args.minutes * 60
    while step < args.steps and time.monotonic() < deadline:
        step += 1
        rgb_b, ms_b = crops(rgb), crops(ms)
        opt_g.zero_grad(set_to_none=True)
        loss_g, parts, fakes = cg.generator_loss(models, rgb_b, ms_b, args.lambda_cycle)
        loss_g.backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        loss_d = (cg.discriminator_loss(models["D_ms"], ms_b, fakes["fake_ms"])
                  + cg.discriminator_loss(models["D_rgb"], rgb_b, fakes["fake_rgb"]))
        loss_d.backward()
        opt_d.step()
        if step % args.log_every == 0:
            curve.append({"step": step, "seconds": round(time.monotonic() - t0, 1), **parts,
                          "loss_d": float(loss_d.detach())})
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    seconds = time.monotonic() - t0
    after = evaluate(models, held, cloud, device, args.crop)
    return {
        "device": device, "steps": step, "train_seconds": round(seconds, 1),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"},
        "initial": before, "trained": after, "baseline_linear": linear_baseline(train_s, held, cloud),
        "curve": curve,
        "context_only_thesis_eurosat": THESIS,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the options, train, print the numbers as JSON (and write them with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", type=Path, default=SCENES, help="Sentinel-2 scenes (N, H, W, 13), ESA order.")
    ap.add_argument("--ms-max", type=float, default=1.0, help="Scene value at full scale (1: reflectance).")
    ap.add_argument("--cloudmask", type=Path, default=CLOUDMASK, help="The cloud-mask .npz (img, msk).")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--minutes", type=float, default=12.0, help="Training time budget.")
    ap.add_argument("--steps", type=int, default=10**9, help="Training step budget (whichever ends first).")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--base", type=int, default=16, help="Generator and discriminator width.")
    ap.add_argument("--n-res", type=int, default=3, help="SE residual blocks per generator.")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--lambda-cycle", type=float, default=10.0)
    ap.add_argument("--holdout", type=int, default=1, help="Last dates held out (the first is judged).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default).")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", type=Path, help="Also write the result here.")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device")
    out = train(args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
