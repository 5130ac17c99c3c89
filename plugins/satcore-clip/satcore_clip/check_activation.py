"""Which activation do a model's weights expect? Zero-shot accuracy with GELU and QuickGELU, side by side.

OpenAI's CLIP was trained with QuickGELU; most later open_clip models with GELU. The activation has no
parameters, so a checkpoint loads strictly into either architecture and nothing warns: a wrong choice only
shows as worse predictions. RemoteCLIP's activation is not documented (its weights were fine-tuned from
OpenAI's), which is why ``registry.yaml`` leans to QuickGELU for it. With the weights on disk, this check
settles the question on labelled images of your own::

    python -m satcore_clip.check_activation remoteclip-vit-b32 --images scenes/

``scenes/`` holds one folder per class, named by the class (``forest/``, ``river/``, ...), each with a few
images. Both variants classify every image zero-shot over the folder names; the one with clearly higher
accuracy is the activation the weights were trained with. Set the alias's ``architecture`` accordingly (in
your ``registry.yaml``: ``extends:`` the alias and change that one key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: Accuracy gap (absolute) below which the check does not pick a side.
CLEAR_MARGIN = 0.05

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def twin_architecture(arch: str) -> str:
    """The same open_clip architecture with the other activation (``X`` ↔ ``X-quickgelu``)."""
    return arch.removesuffix("-quickgelu") if arch.endswith("-quickgelu") else f"{arch}-quickgelu"


def labelled_images(root: Path, limit: int | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted folder names) and ``(image, class index)`` pairs, at most ``limit`` per class."""
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; give a folder with one sub-folder of images per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    pairs: list[tuple[Path, int]] = []
    for i, name in enumerate(classes):
        files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        pairs += [(f, i) for f in files[:limit]]
    if len(classes) < 2 or not pairs:
        raise ValueError(f"{root} needs at least two class folders holding images "
                         f"({', '.join(IMAGE_SUFFIXES)}); found {len(classes)} folders, {len(pairs)} images")
    return classes, pairs


def compare(model: str, images: Path, weights: str | None = None, templates: str | list[str] = "default",
            limit: int | None = None, batch_size: int = 32, device: str = "auto") -> dict[str, Any]:
    """Zero-shot accuracy of ``model``'s weights under its architecture and under the other activation."""
    from satcore.components import Batch, RunContext
    from satcore.data import Item, read_raster
    from satcore.registry import get_registry
    from satcore_clip.extractor import ClipZeroShotExtractor, ClipZeroShotParams

    classes, pairs = labelled_images(images, limit)
    reg = get_registry()
    arch = reg.entry(model).get("architecture") if model in reg.models else None
    if not arch:
        raise ValueError(f"{model!r} names no open_clip `architecture` to compare (a bare checkpoint path: "
                         "register it as an alias with one)")
    items = [Item(f"{i}", [read_raster(path)]) for i, (path, _) in enumerate(pairs)]
    truth = np.array([c for _, c in pairs])
    rows = []
    for variant in (arch, twin_architecture(arch)):
        ext = ClipZeroShotExtractor(
            ClipZeroShotParams(model=model, weights=weights, architecture=variant, classes=classes,
                               templates=templates, cache=False, save_probabilities=False),
            RunContext(device=device, batch_size=batch_size), "check")
        ext.setup()
        try:
            probs = np.vstack([out["probabilities"] for start in range(0, len(items), batch_size)
                               for out in ext.process(Batch(items[start:start + batch_size]))])
        finally:
            ext.teardown()
        pred = probs.argmax(axis=1)
        rows.append({"architecture": variant, "quickgelu": variant.endswith("-quickgelu"),
                     "accuracy": float(np.mean(pred == truth)),
                     "mean_true_probability": float(probs[np.arange(len(truth)), truth].mean()),
                     "predictions": pred.tolist()})
    best, other = sorted(rows, key=lambda r: -r["accuracy"])
    clear = best["accuracy"] - other["accuracy"] >= CLEAR_MARGIN
    return {"model": model, "images": len(pairs), "classes": classes, "variants": rows,
            "verdict": best["architecture"] if clear else None, "configured": arch}


def _report(res: dict[str, Any]) -> str:
    lines = [f"{res['model']}: zero-shot on {res['images']} images, {len(res['classes'])} classes "
             f"({', '.join(res['classes'])})", f"  {'architecture':<28} {'accuracy':>8}  mean p(true class)"]
    for r in res["variants"]:
        lines.append(f"  {r['architecture']:<28} {r['accuracy']:>8.1%}  {r['mean_true_probability']:.3f}")
    verdict = res["verdict"]
    if verdict is None:
        lines.append(f"  no clear winner (accuracies within {CLEAR_MARGIN:.0%}): use more images or classes")
    elif verdict == res["configured"]:
        lines.append(f"  the configured architecture {verdict} fits these weights")
    else:
        lines.append(f"  these weights fit {verdict} better than the configured {res['configured']}: add "
                     f"to your registry.yaml an alias with `extends: {res['model']}` and "
                     f"`architecture: {verdict}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 0 when the check ran, 2 on bad arguments, 1 when weights are missing."""
    from satcore.errors import SatcoreError

    ap = argparse.ArgumentParser(prog="python -m satcore_clip.check_activation",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("model", help="model alias (e.g. remoteclip-vit-b32)")
    ap.add_argument("--images", type=Path, required=True,
                    help="folder with one sub-folder of images per class")
    ap.add_argument("--weights", default=None, help="explicit weight file for the alias")
    ap.add_argument("--templates", default="default",
                    help="prompt templates (default, ensemble, names, a file)")
    ap.add_argument("--limit", type=int, default=None, help="images per class at most")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args(argv)
    try:
        res = compare(a.model, a.images, a.weights, a.templates, a.limit, device=a.device)
    except ValueError as exc:  # SpecError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SatcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    print(json.dumps(res, indent=2) if a.json else _report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
