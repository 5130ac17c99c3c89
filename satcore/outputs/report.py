"""``report.html``: one self-contained page with the run's plots and tables (``satcore report DIR``)."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from satcore.outputs.report_blocks import block_sections, objective_rows, run_header, threshold_cell
from satcore.outputs.report_panels import tex as _tex
from satcore.plots import fig_to_html

log = logging.getLogger("satcore")


def _section(sections: list[tuple[str, str]], title: str, build: Callable[[], Any]) -> None:
    """Add what ``build`` returns (a section body, or a list of ``(title, body)``) to ``sections``.

    A section that raises is shown as "failed: reason" and the reason goes to the log (``run.log`` during a
    run): one bad plot never costs the page, and the report never fails the run.
    """
    try:
        got = build()
    except Exception as exc:
        log.warning("report: section %r failed: %s: %s", title, type(exc).__name__, exc)
        sections.append((title, f"<p class='failed'>failed: {html.escape(f'{type(exc).__name__}: {exc}')}"
                                "</p>"))
        return
    if isinstance(got, list):
        sections.extend(got)
    elif got:
        sections.append((title, got))


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px} "
        "table{border-collapse:collapse;font-size:13px}\n"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right} "
        "td:first-child,th:first-child{text-align:left}")


#: a section rebuilt in this many seconds or more is reported by ``satcore report``, with why
SLOW_S = 10.0
#: ``report.html#map-only`` shows the map section alone (a full-window map, and what the browser test opens)
_MAP_ONLY = ("<script>if (location.hash === '#map-only') {document.querySelectorAll('body > h1, body > "
             "section:not(#map)').forEach(function (e) { e.style.display = 'none'; });}</script>")


def fig_to_img(fig: Any, alt: str) -> str:
    """Deprecated: use :func:`satcore.plots.fig_to_html` (the public helper)."""
    import warnings

    warnings.warn("satcore.outputs.report.fig_to_img is deprecated; use satcore.plots.fig_to_html",
                  DeprecationWarning, stacklevel=2)
    return fig_to_html(fig, alt)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _fmt_field(v: Any) -> str:
    """A manifest or error field as HTML text (escaped; ``None`` as an empty string)."""
    return "" if v is None else html.escape(str(v))


def _metrics_table(metrics: dict[str, Any], results: Any = None) -> str:
    rows = []
    notes: dict[str, str] = {}
    splits = list(metrics.get("baseline", {}))
    for split in splits:
        entries: list[tuple[str, Any, Any, Any]] = [
            ("always change (baseline)", metrics["baseline"][split], None, None)]
        for sid, per in metrics.get("steps", {}).items():
            if split in per and "n_items" in per[split]:  # a detector's change blocks (not only others)
                entries.append((sid, per[split], per[split].get("ci95"), sid))
        for name, e, ci, step in entries:
            img = e.get("image") or {}
            px = e.get("pixel") or {}

            def cell(block: dict[str, Any], key: str, ci_block: str, ci: Any = ci) -> str:
                v = _fmt(block.get(key))
                iv = ((ci or {}).get(ci_block) or {}).get(key)
                if iv:
                    v += f'<br><small>[{iv[0]:.3f}, {iv[1]:.3f}]</small>'
                return f"<td>{v}</td>"

            rows.append(
                f"<tr><td>{html.escape(split)}</td><td>{html.escape(name)}</td>"
                + "".join(cell(img, k, "image") for k in ("accuracy", "precision", "recall", "f1"))
                + threshold_cell(img, step, results, notes)
                + "".join(cell(px, k, "pixel") for k in ("auc", "f1", "iou", "precision", "recall", "kappa"))
                + "</tr>"
            )
    head = ("<tr><th>split</th><th>step</th><th>image acc</th><th>image prec</th><th>image rec</th>"
            "<th>image F1</th><th>threshold</th><th>pixel AUC</th><th>pixel F1</th><th>IoU</th>"
            "<th>pixel prec</th><th>pixel rec</th><th>kappa</th></tr>")
    why = "".join(f"<br><sup>{k}</sup> {v}" for v, k in notes.items())
    return (f"<table>{head}{''.join(rows)}</table>"
            f"<p><small>Brackets: bootstrap 95% intervals over items.{why}</small></p>")


def _change_section(metrics: dict[str, Any], results: Any = None) -> tuple[str, str]:
    cb = metrics["class_balance"]
    frac = cb.get("pixels_changed_fraction")
    return ("Metrics", (
        f"<p>Class balance: {cb['items_changed']} of {cb['items']} items changed"
        + (f"; {100 * frac:.2f}% of pixels changed" if frac is not None else "")
        + ". Compare every step with the <i>always change</i> baseline.</p>"
        + _metrics_table(metrics, results)
        + objective_rows(metrics)))


def _as_text(results: Any) -> Any:
    """The results table for HTML: list cells (recognised labels, captions, scores) as short text."""

    def text(v: Any) -> Any:
        if not isinstance(v, (list, tuple, np.ndarray)):
            return v
        vals = [f"{x:.3f}" if isinstance(x, (float, np.floating)) else str(x) for x in list(v)[:10]]
        return "; ".join(vals) + ("; …" if len(v) > 10 else "")

    shown = results.copy()
    for c in shown.columns:
        if shown[c].dtype == object and shown[c].map(
                lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            shown[c] = shown[c].map(text)
    return shown


def _histograms(run_dir: Path, det_ids: list[str], bins: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow.parquet as pq

    from satcore.evaluate.metrics import dense_hist

    parts = sorted((run_dir / "parts").glob("part-*.parquet"))
    pos = {s: np.zeros(bins) for s in det_ids}
    neg = {s: np.zeros(bins) for s in det_ids}
    found = set()
    for p in parts:
        names = pq.read_schema(p).names
        cols = [c for c in names if c.startswith(("_hp.", "_hn."))]
        if not cols:
            continue
        t = pq.read_table(p, columns=cols).to_pydict()
        for c, vals in t.items():
            sid = c[4:]
            if sid not in pos:
                continue
            found.add(sid)
            target = pos if c.startswith("_hp.") else neg
            for v in vals:
                if v is not None:
                    target[sid] += dense_hist(v, bins)
    if not found:
        return ""
    out = []
    centres = (np.arange(bins) + 0.5) / bins
    for sid in det_ids:
        if sid not in found:
            continue
        fig, ax = plt.subplots(figsize=(6, 3))
        for lab, h, col in (("unchanged pixels", neg[sid], "tab:blue"),
                            ("changed pixels", pos[sid], "tab:red")):
            if h.sum():
                ax.plot(centres, h / h.sum(), color=col, label=lab)
        ax.set_xlabel(_tex(f"{sid} pixel score"))
        ax.set_ylabel("fraction of pixels")
        ax.set_yscale("log")
        ax.legend()
        ax.set_title(_tex(f"{sid}: score distribution by truth"))
        out.append(fig_to_html(fig, f"{sid} score histogram"))
    return "".join(out)


def _image_score_hist(results: Any, det_ids: list[str]) -> str:
    import matplotlib.pyplot as plt

    out = []
    for sid in det_ids:
        col = f"{sid}.score"
        if col not in results.columns or "truth.change" not in results.columns:
            continue
        df = results[results[col].notna() & results["truth.change"].notna()]
        if df.empty:
            continue
        fig, ax = plt.subplots(figsize=(6, 3))
        edges = np.histogram_bin_edges(df[col].astype(float), bins=30)  # one set of bins for both classes
        for v, colr, lab in ((0, "tab:blue", "no change"), (1, "tab:red", "change")):
            vals = df.loc[df["truth.change"] == v, col].astype(float)
            if len(vals):
                ax.hist(vals, bins=cast(Any, edges), alpha=0.6, color=colr, label=f"{lab} ({len(vals)})")
        thr = df.get(f"{sid}.threshold")
        if thr is not None and thr.notna().any():
            ax.axvline(float(thr.dropna().iloc[0]), color="k", ls="--", label="threshold")
        ax.set_xlabel(_tex(f"{sid} image score"))
        ax.set_ylabel("items")
        ax.legend()
        out.append(fig_to_html(fig, f"{sid} image score histogram"))
    return "".join(out)


def _read_run(run_dir: Path) -> dict[str, Any]:
    """The run's manifest, once it is clear the folder holds a finished run's results.

    Raises:
        UsageError: no run here, or a run that wrote no results (stopped in set-up, still going, killed);
            the message says which, from the manifest's status.
    """
    from satcore.errors import UsageError

    man_path = run_dir / "manifest.json"
    if not man_path.exists():
        raise UsageError(f"{run_dir}: no manifest.json, so this is not a satcore run folder; give the "
                         "output.dir of a run")
    try:
        manifest = json.loads(man_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{man_path}: not valid JSON ({exc}); rerun the pipeline with --overwrite") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{man_path}: expected a JSON object; rerun the pipeline with --overwrite")
    if (run_dir / "results.parquet").exists():
        return manifest
    status = manifest.get("status")
    spec = manifest.get("spec_path") or "SPEC"
    head = f"{run_dir}: no results.parquet to build a report from"
    if status == "stopped":
        error = str(manifest.get("error") or "").strip()
        why = f": {error}" if error else ""
        raise UsageError(f"{head}: the run stopped before writing results (manifest.json status "
                         f"'stopped'{why})\nFix that and run it again (satcore run {spec}); the report is "
                         "written at the end of the run.")
    if status == "running":
        raise UsageError(f"{head}: the run has not finished (manifest.json status 'running'): it is still "
                         f"going or was killed; continue it with `satcore run {spec} --resume`")
    raise UsageError(f"{head}, although manifest.json says status {status!r}: it was moved or deleted; "
                     f"run again with `satcore run {spec} --overwrite`")


def build_report(run_dir: str | Path, items: int | None = None, rebuild: bool = False,
                 echo: Callable[[str, float], None] | None = None) -> Path:
    """(Re)build ``report.html`` from the files in a run folder.

    Args:
        run_dir: the run folder.
        items: how many items the pictures and the map show (default: the spec's ``output.report_items``).
        rebuild: ignore the section cache (``report_files/cache/``) and rebuild every section.
        echo: called per cached section with a note (reused, or rebuilt: in how long and why) and the
            seconds it took (``satcore report`` prints those over :data:`SLOW_S`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from satcore.outputs.report_cache import SectionCache
    from satcore.outputs.report_items import load_items, pick_items, report_items
    from satcore.outputs.report_panels import map_section, panels_section

    run_dir = Path(run_dir)
    manifest = _read_run(run_dir)
    metrics = (json.loads((run_dir / "metrics.json").read_text())
               if (run_dir / "metrics.json").exists() else None)
    results = pd.read_parquet(run_dir / "results.parquet")
    errors_path = run_dir / "errors.jsonl"
    errors = ([json.loads(x) for x in errors_path.read_text().splitlines() if x.strip()]
              if errors_path.exists() else [])
    steps = manifest["spec"]["steps"]
    bins = manifest["spec"].get("evaluate", {}).get("bins", 1000)
    det_ids = [sid for sid, per in ((metrics or {}).get("steps") or {}).items()  # detectors: change blocks
               if any(isinstance(e, dict) and "n_items" in e for e in per.values())]
    det_ids = det_ids or [s["id"] for s in steps]
    sections: list[tuple[str, str]] = []
    esc = _fmt_field
    cache = SectionCache(run_dir, rebuild)
    base_inputs = [run_dir / "results.parquet", run_dir / "manifest.json", run_dir / "metrics.json"]

    _section(sections, "Run", lambda: run_header(manifest))
    if metrics and metrics.get("class_balance"):
        _section(sections, "Metrics", lambda: [_change_section(metrics, results)])
        parts = sorted((run_dir / "parts").glob("part-*.parquet"))
        _section(sections, "Score distributions", lambda: cache.get(
            "score distributions", [*base_inputs, *parts], [det_ids, bins],
            lambda: _histograms(run_dir, det_ids, bins) + _image_score_hist(results, det_ids)))
    _section(sections, "Metric blocks", lambda: block_sections(metrics))
    shown = pick_items(results, run_dir / "maps", det_ids, report_items(manifest, items))
    picture_inputs = [*base_inputs, *(run_dir / "maps" / f"{i}.tif" for i in shown.ids),
                      *(run_dir / "artifacts").glob("*/polygons.gpkg")]

    def pictures() -> list[tuple[str, str]]:
        load_items(manifest, shown)  # the slow part: every shown item's images, from the source
        out: list[tuple[str, str]] = []
        _section(out, "Before / after / maps", lambda: panels_section(run_dir, shown))
        _section(out, "Map", lambda: map_section(run_dir, shown))
        return out

    cache.slow_hint["pictures"] = (f"reads {len(shown.ids)} item(s)' images back from the source and draws "
                                   "them; reused while the run's files are unchanged")
    if shown.ids:
        _section(sections, "Pictures", lambda: cache.get("pictures", picture_inputs, shown.ids, pictures))
    # component-specific sections, each step on its own: a plugin's plots must not break the report
    try:
        from satcore.kinds import STEP_KINDS
        from satcore.plugins import get_plugin_manager

        pm = get_plugin_manager()
    except Exception as exc:
        sections.append(("Plugin sections", f"<p>not available: {html.escape(str(exc))}</p>"))
        pm = None
    for s in steps if pm is not None else []:
        def plugin_sections(s: dict[str, Any] = s, pm: Any = pm) -> list[tuple[str, str]]:
            cls = pm.get_component(s["type"], STEP_KINDS)
            return list(cls.report_sections(run_dir, s["id"], results))

        _section(sections, f"{s['id']} ({s['type']})", plugin_sections)

    def results_section() -> str:
        shown = _as_text(results)  # list outputs (labels, captions) shown as text
        return (str(shown.head(200).to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4f}",
                                            classes="results"))
                + ("<p><small>first 200 rows; all in results.parquet</small></p>" if len(results) > 200
                   else ""))

    _section(sections, "Results", results_section)
    if errors:
        def errors_section() -> str:
            err = "".join(f"<tr><td>{esc(e.get('item_id'))}</td><td>{esc(e.get('step'))}</td><td>"
                          f"{esc(e.get('error_type'))}</td><td>{esc(e.get('message'))}</td></tr>"
                          for e in errors)
            return f"<table><tr><th>item</th><th>step</th><th>type</th><th>message</th></tr>{err}</table>"

        _section(sections, f"Failed items ({len(errors)})", errors_section)
    body = "".join(f"<section id=\"{html.escape(t.lower().replace(' ', '-'), quote=True)}\"><h2>"
                   f"{html.escape(t)}</h2>{c}</section>" for t, c in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>satcore report — {_fmt_field(
        manifest.get('name') or '')}</title><style>
{_CSS}
img:not(.leaflet-image-layer){{max-width:100%;margin:4px}} code{{background:#f3f3f3}}</style></head><body>
<h1>satcore report: {_fmt_field(manifest.get('name') or '')}</h1>{body}{_MAP_ONLY}</body></html>"""
    path = run_dir / "report.html"
    tmp = run_dir / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    for note, seconds in cache.notes:
        log.info("report: %s", note)
        if echo is not None:
            echo(note, seconds)
    return path
