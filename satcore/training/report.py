"""A training folder's ``report.html``: status, config and one loss-curve figure per loss key.

Self-contained (figures are inline PNGs), so the page can be mailed or archived with the folder.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from satcore.io import write_text
from satcore.training.folder import LOSSES, REPORT, RESERVED_KEYS, TRAIN_JSON, read_losses

_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px} "
        "table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 6px;"
        "text-align:left} pre{background:#f6f6f6;padding:.6em;font-size:12px}")


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` values (missing values skipped), same length as ``values``."""
    out: list[float] = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1): i + 1] if v is not None]
        out.append(sum(chunk) / len(chunk) if chunk else float("nan"))
    return out


def loss_keys(losses: list[dict[str, Any]]) -> list[str]:
    """The loss names logged, in first-seen order."""
    keys: dict[str, None] = {}
    for rec in losses:
        for k in rec:
            if k not in RESERVED_KEYS:
                keys.setdefault(k, None)
    return list(keys)


def _figure(steps: list[int], values: list[Any], key: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from satcore.plots import fig_to_html

    window = max(1, len(values) // 20)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    raw = [float("nan") if v is None else v for v in values]
    ax.plot(steps, raw, color="tab:blue", alpha=0.3, linewidth=1, label="raw")
    ax.plot(steps, smooth(values, window), color="tab:blue", linewidth=2,
            label=f"moving average ({window} steps)" if window > 1 else "value")
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(key)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return fig_to_html(fig, f"{key} against step")


def build_training_report(directory: str | os.PathLike[str]) -> Path:
    """Write a training folder's ``report.html`` (from train.json and losses.jsonl); returns its path."""
    d = Path(directory)
    info = json.loads((d / TRAIN_JSON).read_text(encoding="utf-8"))
    losses = read_losses(d)
    esc = html.escape
    rows = [("trainer", info.get("name")), ("status", info.get("status")),
            ("last step", info.get("last_step")),
            ("last checkpoint", info.get("last_checkpoint")), ("seed", info.get("seed")),
            ("started", info.get("started")), ("ended", info.get("ended")),
            ("resumed", len(info.get("resumes") or [])), ("error", info.get("error")),
            ("versions", ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items()))]
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc('—' if v is None else str(v))}</td></tr>"
                    for k, v in rows)
    title = f"satcore train {esc(str(info.get('name')))}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{title}: {esc(str(info.get('status')))}</h1>",
             f"<table>{table}</table>", "<h2>Losses</h2>"]
    keys = loss_keys(losses)
    if not keys:
        parts.append(f"<p>No losses logged yet ({LOSSES} is empty).</p>")
    for key in keys:
        pts = [(r["step"], r[key]) for r in losses if key in r]
        parts.append(_figure([s for s, _ in pts], [v for _, v in pts], key))
    for title, section in (("Model", "model"), ("Data", "data"), ("Config", "config")):
        body = json.dumps(info.get(section) or {}, indent=2, default=str)
        parts.append(f"<h2>{title}</h2><pre>{esc(body)}</pre>")
    parts.append("</body></html>")
    return write_text(d / REPORT, "\n".join(parts) + "\n")
