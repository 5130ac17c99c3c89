"""``report.html`` sections for the metric blocks of ``metrics.json``: one per block, tables and plots.

Each section builder takes the block's entries (``(step_id, split, block)``) and returns HTML; a builder that
fails shows "not available" with the reason and does not break the report (:func:`block_sections`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from satcore.plots import fig_to_html

Entry = tuple[str, str, dict[str, Any]]  # step id, split, block


def esc(v: Any) -> str:
    """A manifest or error field as HTML text (escaped; ``None`` as an empty string)."""
    return "" if v is None else html.escape(str(v))


def fmt(v: Any) -> str:
    """A table cell: 4 decimals for floats, ``—`` for missing."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _cell(block: dict[str, Any], key: str) -> str:
    v = block.get(key)
    why = block.get(f"{key}_reason")
    title = f' title="{html.escape(str(why))}"' if v is None and why else ""
    return f"<td{title}>{fmt(v)}</td>"


def _table(entries: list[Entry], keys: tuple[str, ...], extra: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("step", "split", "items", *keys, *extra))
    rows = []
    for sid, split, b in entries:
        rows.append(f"<tr><td>{html.escape(sid)}</td><td>{html.escape(split)}</td><td>{fmt(b.get('items'))}</td>"
                    + "".join(_cell(b, k) for k in (*keys, *extra)) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>" + _notes(entries)


def _notes(entries: list[Entry]) -> str:
    """Records that could not be made, and the reasons behind ``—`` cells."""
    notes = []
    for sid, split, b in entries:
        if b.get("failed_items"):
            notes.append(f"{html.escape(sid)} ({html.escape(split)}): {b['failed_items']} item(s) not "
                         f"scored: {html.escape(str(b.get('failed_reason')))}")
        reasons = sorted({str(v) for k, v in b.items() if k.endswith("_reason") and k != "failed_reason"})
        if reasons:
            notes.append(f"{html.escape(sid)} ({html.escape(split)}): — means: "
                         + "; ".join(html.escape(r) for r in reasons))
    return "".join(f"<p><small>{n}</small></p>" for n in notes)


def _confusion_plot(sid: str, split: str, conf: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(conf["labels"])
    mat = np.asarray(conf["matrix"], dtype=float)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(min(2 + 0.5 * n, 12), min(1.6 + 0.5 * n, 11)))
    rows = mat.sum(axis=1, keepdims=True)
    ax.imshow(np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0), cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if mat[i, j]:
                    ax.text(j, i, str(int(mat[i, j])), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{sid} ({split}): confusion matrix, row-normalised", fontsize=9)
    return fig_to_html(fig, f"{sid} confusion matrix ({split})")


def recognition_section(entries: list[Entry]) -> str:
    """Summary table with the majority baseline, per-class tables and confusion-matrix plots."""
    rows = []
    for sid, split, b in entries:
        base = b.get("baseline") or {}
        rows.append(f"<tr><td>{html.escape(sid)}</td><td>{html.escape(split)}</td><td>{fmt(b.get('items'))}"
                    f"</td><td>{fmt(b.get('images'))}</td>"
                    + "".join(_cell(b, k) for k in ("top1", "top5", "precision", "recall", "f1"))
                    + f"<td>{fmt(base.get('top1'))} ({fmt(base.get('label'))})</td></tr>")
    head = ("<tr><th>step</th><th>split</th><th>items</th><th>images</th><th>top-1</th><th>top-5</th>"
            "<th>macro precision</th><th>macro recall</th><th>macro F1</th>"
            "<th>majority baseline top-1</th></tr>")
    parts = [f"<table>{head}{''.join(rows)}</table>", _notes(entries)]
    for sid, split, b in entries:
        per = b.get("per_class") or {}
        if per:
            body = "".join(f"<tr><td>{html.escape(lab)}</td>" + "".join(_cell(e, k) for k in
                                                                          ("precision", "recall", "f1"))
                           + f"<td>{fmt(e.get('support'))}</td></tr>" for lab, e in per.items())
            parts.append(f"<details><summary>{html.escape(sid)} ({html.escape(split)}): per class</summary>"
                         "<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th>"
                         f"</tr>{body}</table></details>")
        conf = b.get("confusion")
        if conf and conf.get("labels"):
            parts.append(_confusion_plot(sid, split, conf))
        elif b.get("confusion_reason"):
            parts.append(f"<p><small>{html.escape(sid)} ({html.escape(split)}): no confusion matrix: "
                         f"{html.escape(str(b['confusion_reason']))}</small></p>")
    return "".join(parts)


def captions_section(entries: list[Entry]) -> str:
    """The caption scores."""
    return _table(entries, ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d",
                            "bertscore_f1", "clipscore"))


def spectral_section(entries: list[Entry]) -> str:
    """The spectral scores, with their units."""
    return _table(entries, ("spectral_angle_deg", "sid", "ergas", "mae", "mse"), ("pixels", "units"))


def image_quality_section(entries: list[Entry]) -> str:
    """FID, KID and Inception Score."""
    return _table(entries, ("fid", "kid_mean", "kid_std", "inception_score"), ("real", "generated"))


def forecast_section(entries: list[Entry]) -> str:
    """Forecast errors, interval coverage and AIC."""
    return _table(entries, ("rmse", "mae", "fall_in_ci", "aic"), ("values",))


#: block name → (section title, builder), in the order of metrics.json's blocks.
SECTIONS: dict[str, tuple[str, Callable[[list[Entry]], str]]] = {
    "recognition": ("Recognition", recognition_section),
    "captions": ("Captions", captions_section),
    "spectral": ("Spectral", spectral_section),
    "image_quality": ("Image quality", image_quality_section),
    "forecast": ("Forecast", forecast_section),
}


def block_sections(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(title, html)`` for each block present in ``metrics``; a failing one says "not available"."""
    if not metrics:
        return []
    out = []
    for name, (title, build) in SECTIONS.items():
        entries = [(sid, split, e[name]) for sid, per in (metrics.get("steps") or {}).items()
                   for split, e in per.items() if isinstance(e, dict) and isinstance(e.get(name), dict)]
        if not entries:
            continue
        try:
            out.append((title, build(entries)))
        except Exception as exc:  # one broken block must not cost the rest of the report
            out.append((title, f"<p>not available: {html.escape(type(exc).__name__)}: "
                               f"{html.escape(str(exc))}</p>"))
    return out


def objective_rows(metrics: dict[str, Any]) -> str:
    """The thesis-style rows: each metric at its own optimal threshold (``image.by_objective``), if any."""
    keys = ("accuracy", "precision", "recall", "f1")
    rows = []
    for sid, per in metrics.get("steps", {}).items():
        for split, e in per.items():
            by = ((e or {}).get("image") or {}).get("by_objective") if isinstance(e, dict) else None
            if not by:
                continue
            cells = "".join(
                f"<td>{fmt(by[k].get(k))}<br><small>at {fmt(by[k].get('threshold'))}</small></td>"
                if k in by else "<td>—</td>" for k in keys)
            rows.append(f"<tr><td>{html.escape(split)}</td><td>{html.escape(sid)}</td>{cells}</tr>")
    if not rows:
        return ""
    return ("<h3>Each metric at its own threshold (thesis-style row)</h3>"
            "<p><b>This thesis-style row mixes thresholds:</b> each cell is one metric at the threshold that "
            "maximises it on the train split, so the cells of a row come from different decision rules and "
            "no single classifier scores them all (e.g. its F1 is not the harmonic mean of its precision and "
            "recall). Use the table above for one rule's numbers; every objective's full metrics are in "
            "metrics.json under <code>image.by_objective</code>.</p>"
            "<table><tr><th>split</th><th>step</th><th>accuracy</th><th>precision</th><th>recall</th>"
            f"<th>F1</th></tr>{''.join(rows)}</table>")



def threshold_reason(name: str | None, results: Any) -> str:
    """Why a step's (or the baseline's) image threshold is missing in ``metrics.json``."""
    if name is None:
        return "no threshold: the baseline says change for every item"
    col = f"{name}.threshold"
    vals = results[col].dropna().astype(float).unique() if results is not None and col in results else []
    if len(vals) > 1:
        return (f"no single threshold: it differs between items ({len(vals)} values, {min(vals):.4g} to "
                f"{max(vals):.4g}; see <code>{html.escape(col)}</code> in results.parquet)")
    return ("no threshold: the step labels each item itself (e.g. Otsu or k-means on each image, or a "
            "fixed rule), so there is no score cut-off to report")


def threshold_cell(img: dict[str, Any], step: str | None, results: Any, notes: dict[str, str]) -> str:
    """The threshold cell; a missing one gets a numbered note saying why (and a tooltip)."""
    if img.get("threshold") is not None:
        return f"<td>{fmt(img.get('threshold'))}</td>"
    why = img.get("threshold_reason") or threshold_reason(step, results)
    mark = notes.setdefault(why, str(len(notes) + 1))
    return f"<td title=\"{html.escape(why)}\">—<sup>{mark}</sup></td>"


def run_header(manifest: dict[str, Any]) -> str:
    """The "Run" section: name, spec hash, versions, executor, item counts and wall time.

    Skipped items are mentioned only when there were some, i.e. when the run was resumed.
    """
    items = manifest.get("items") or {}
    skipped = items.get("skipped") or 0
    resumed = (f", {esc(skipped)} skipped (finished by an earlier session: this run was resumed)"
               if skipped else "")
    workers = f" ({esc(manifest.get('workers'))} workers)" if (manifest.get("workers") or 1) != 1 else ""
    steps = manifest["spec"]["steps"]
    return (
        f"<p><b>{esc(manifest.get('name') or '')}</b> — spec hash <code>{esc(manifest.get('spec_hash'))}"
        f"</code>, satcore {esc((manifest.get('versions') or {}).get('satcore'))}, executor "
        f"{esc(manifest.get('executor'))}{workers}.<br>"
        f"Items: {esc(items.get('ok', '?'))} ok, {esc(items.get('failed', '?'))} failed{resumed}. "
        f"Wall time {esc((manifest.get('wall_time_s') or {}).get('total', '?'))} s.</p>"
        "<p>Steps: " + ", ".join(f"<code>{esc(s['id'])}</code> ({esc(s['type'])})" for s in steps)
        + "</p>")
