"""The Dubai aerial segmentation data (Humans in the Loop / MBRSC) and the segmentation scores.

Standalone on purpose: numpy, Pillow and scikit-learn only (no satcore, no torch), so the benchmark
``benchmarks/segmentation_dubai.py`` can load this file on a machine without satcore's dependencies.

Layout: ``<root>/Semantic segmentation dataset/Tile N/images/*.jpg`` with ``masks/*.png`` of the same stem.
The class colours are those of the data's ``SOURCE.txt`` (its ``classes.json`` lists other, wrong colours).
Masks of tiles 2 and 4 are palette PNGs; every mask is converted to RGB before its colours are decoded.
Pixels of any other colour (pure black, ~0.6 %) get :data:`IGNORE` and count in neither losses nor scores.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

#: The six classes, in the order of the model's output channels.
CLASSES: tuple[str, ...] = ("building", "land", "road", "vegetation", "water", "unlabeled")
#: Mask colour (R, G, B) of each class, from SOURCE.txt.
COLOURS: dict[str, tuple[int, int, int]] = {
    "building": (60, 16, 152),      # #3C1098
    "land": (132, 41, 246),         # #8429F6
    "road": (110, 193, 228),        # #6EC1E4
    "vegetation": (254, 221, 58),   # #FEDD3A
    "water": (226, 169, 41),        # #E2A929
    "unlabeled": (155, 155, 155),   # #9B9B9B
}
#: Label of pixels whose colour is no class (excluded from losses and scores).
IGNORE = 255
DATA_SUBDIR = "Semantic segmentation dataset"


def mask_to_classes(mask: Any) -> np.ndarray:
    """Class indices ``(H, W)`` uint8 of a colour mask; unknown colours → :data:`IGNORE`.

    Args:
        mask: a PIL image (RGB, RGBA or palette ``P``; converted to RGB first) or an ``(H, W, 3)`` array.
    """
    if hasattr(mask, "convert"):
        mask = np.asarray(mask.convert("RGB"))
    rgb = np.asarray(mask)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"a colour mask must be (H, W, 3), got {rgb.shape}")
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    out = np.full(code.shape, IGNORE, dtype=np.uint8)
    for k, name in enumerate(CLASSES):
        r, g, b = COLOURS[name]
        out[code == ((r << 16) | (g << 8) | b)] = k
    return out


def tile_folders(root: str | Path) -> dict[int, Path]:
    """``{N: folder}`` of the ``Tile N`` folders under ``root`` or ``root/Semantic segmentation dataset``."""
    base = Path(root)
    if (base / DATA_SUBDIR).is_dir():
        base = base / DATA_SUBDIR
    found = {}
    for d in sorted(base.glob("Tile *")):
        m = re.fullmatch(r"Tile (\d+)", d.name)
        if m and d.is_dir():
            found[int(m.group(1))] = d
    if not found:
        raise FileNotFoundError(f"no 'Tile N' folders under {base}; give the dubai-segmentation folder")
    return found


def load_tiles(root: str | Path, tiles: list[int] | tuple[int, ...], max_images: int | None = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image (H, W, 3) uint8, labels (H, W) uint8)`` pairs of the given tiles, in file order.

    Args:
        root: the dataset folder.
        tiles: tile numbers to read.
        max_images: at most this many images per tile (``None``: all).
    """
    from PIL import Image

    folders = tile_folders(root)
    pairs = []
    for t in tiles:
        if t not in folders:
            raise FileNotFoundError(f"Tile {t} is not in {root} (found tiles {sorted(folders)})")
        images = sorted((folders[t] / "images").glob("*.jpg"))[:max_images]
        for img_path in images:
            mask_path = folders[t] / "masks" / f"{img_path.stem}.png"
            if not mask_path.is_file():
                raise FileNotFoundError(f"{img_path} has no mask {mask_path}")
            with Image.open(img_path) as im, Image.open(mask_path) as mk:
                img = np.asarray(im.convert("RGB"), dtype=np.uint8)
                lab = mask_to_classes(mk)
            if img.shape[:2] != lab.shape:
                raise ValueError(f"{img_path} is {img.shape[:2]} but its mask is {lab.shape}")
            pairs.append((img, lab))
    return pairs


def class_counts(pairs: list[tuple[np.ndarray, np.ndarray]], n_classes: int = len(CLASSES)) -> np.ndarray:
    """Pixels per class over the labels of ``pairs`` (ignored pixels not counted)."""
    total = np.zeros(n_classes, dtype=np.int64)
    for _, lab in pairs:
        v = lab[lab != IGNORE]
        total += np.bincount(v.ravel(), minlength=n_classes)[:n_classes]
    return total


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Confusion matrix ``(n_classes, n_classes)`` (rows: truth) over pixels whose truth is not ignored."""
    from sklearn.metrics import confusion_matrix

    t = np.asarray(truth).ravel()
    p = np.asarray(pred).ravel()
    keep = t != IGNORE
    return np.asarray(confusion_matrix(t[keep], p[keep], labels=list(range(n_classes))), dtype=np.int64)


def scores(cm: np.ndarray) -> dict[str, Any]:
    """Pixel accuracy, per-class IoU and mIoU from a confusion matrix.

    IoU of class c = TP / (TP + FP + FN). mIoU is the mean over the classes with a non-empty union (present
    in the truth or the prediction); a class absent from both is left out (``None`` in ``iou``), as
    scikit-learn's ``jaccard_score(average="macro")`` does over the labels it sees.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = [float(tp[c] / union[c]) if union[c] > 0 else None for c in range(len(cm))]
    present = [v for v in iou if v is not None]
    total = cm.sum()
    return {"pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "miou": float(np.mean(present)) if present else float("nan"),
            "iou": iou, "pixels": int(total)}


def majority_baseline(train_pairs: list[tuple[np.ndarray, np.ndarray]],
                      test_pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Scores of predicting the training data's most frequent class everywhere on ``test_pairs``."""
    major = int(np.argmax(class_counts(train_pairs)))
    cm = sum(confusion(lab, np.full_like(lab, major)) for _, lab in test_pairs)
    out = scores(np.asarray(cm))
    out["class"] = CLASSES[major]
    return out
