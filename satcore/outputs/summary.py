"""The end-of-run summary ``satcore run`` prints: change metrics as a table, each other block in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summary_lines(metrics: dict[str, Any] | None, ok: int | None = None, failed: int = 0,
                  errors: Path | None = None) -> list[str]:
    """The run's metrics as lines: change metrics as a table, each other block on one line per step.

    ``ok``/``failed``: the items this run processed; when every one failed (and none was skipped), the
    summary says so instead of "no ground truth".
    """
    out: list[str] = []
    if not metrics:
        if ok == 0 and failed:
            where = f" (see {errors})" if errors is not None else " (see errors.jsonl)"
            out.append(f"every item failed, so nothing was scored: metrics.json not written{where}")
        else:
            out.append("no ground truth: metrics.json not written")
        return out

    def f(v: Any) -> str:
        return "   —  " if v is None else f"{v:6.3f}"

    if metrics.get("class_balance"):
        cb = metrics["class_balance"]
        frac = cb.get("pixels_changed_fraction")
        out.append(f"class balance: {cb['items_changed']}/{cb['items']} items changed"
                   + (f", {100 * frac:.2f}% of pixels changed" if frac is not None else ""))
        out.append(f"{'split':6} {'step':24} {'img F1':>6} {'img acc':>7} {'px AUC':>6} {'px F1':>6} "
                   f"{'IoU':>6} {'kappa':>6}")
        for split, base in metrics["baseline"].items():
            rows = [("always change", base)] + [(sid, per[split]) for sid, per in metrics["steps"].items()
                                                if split in per and "n_items" in per[split]]
            for name, e in rows:
                img, px = e.get("image") or {}, e.get("pixel") or {}
                out.append(f"{split:6} {name[:24]:24} {f(img.get('f1'))} {f(img.get('accuracy')):>7} "
                           f"{f(px.get('auc'))} {f(px.get('f1'))} {f(px.get('iou'))} {f(px.get('kappa'))}")
    out += block_lines(metrics)
    return out


#: per block, the values the run summary shows (name as printed, key in the block)
_SUMMARY_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "recognition": (("top1", "top1"), ("top5", "top5"), ("macro F1", "f1")),
    "captions": (("BLEU-4", "bleu_4"), ("ROUGE-L", "rouge_l"), ("CIDEr-D", "cider_d")),
    "spectral": (("angle°", "spectral_angle_deg"), ("SID", "sid"), ("ERGAS", "ergas"), ("MAE", "mae")),
    "image_quality": (("FID", "fid"), ("KID", "kid_mean"), ("IS", "inception_score")),
    "forecast": (("RMSE", "rmse"), ("in CI", "fall_in_ci"), ("AIC", "aic")),
}


def block_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per step, split and metric block (recognition, captions, …)."""
    lines = []
    for sid, per in (metrics.get("steps") or {}).items():
        for split, entry in per.items():
            for block, keys in _SUMMARY_KEYS.items():
                b = entry.get(block) if isinstance(entry, dict) else None
                if not isinstance(b, dict):
                    continue
                vals = " ".join(f"{name} {'—' if b.get(k) is None else format(b[k], '.3f')}"
                                for name, k in keys)
                extra = ""
                if block == "recognition" and isinstance(b.get("baseline"), dict):
                    extra = f" (majority baseline top1 {b['baseline']['top1']:.3f})"
                if b.get("failed_items"):
                    extra += f"; {b['failed_items']} not scored"
                lines.append(f"{split:6} {sid[:24]:24} {block}: {vals}{extra}, {b.get('items')} items")
    return lines
