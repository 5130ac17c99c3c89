"""``satcore compare RUN_DIR…``: the same steps and splits of several runs side by side, runs as columns.

The thesis's Tables 3–4 put datasets in columns and add an "average" column; a run per dataset and this
table give the same layout from the runs' ``metrics.json`` alone (nothing is recomputed):

- a row per (step, split, metric): the step's own decision (``image``) and, where the step fitted one
  threshold per metric (``image.by_objective``), each metric at its own threshold ("own threshold" rows);
- the always-change baseline and each run's class balance beside them;
- the mean over runs ("average"), and a 95% interval for it where every run has a bootstrap interval
  (normal approximation over independent runs: SE = √(Σ SEᵢ²) / n with SEᵢ = interval width / 3.92);
- a step or split that a run lacks is a gap (``None``), listed under ``gaps``; the average then covers the
  runs that have the cell, and says how many.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from satcore.errors import UsageError
from satcore.evaluate.split import SPLIT_ORDER

__all__ = ["DEFAULT_METRICS", "compare_runs", "render_html", "render_text"]

#: The image metrics a comparison shows unless told (``--metric``).
DEFAULT_METRICS = ("accuracy", "precision", "recall", "f1")
BASELINE = "always change (baseline)"
#: the z of a two-sided 95% normal interval
_Z = 1.959963984540054


def _read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise UsageError(f"{run_dir}: no metrics.json — is this a finished satcore run folder with truth? "
                         "Run `satcore run SPEC` first, or pass the run's output.dir.")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise UsageError(f"{path}: not readable JSON ({exc}); rerun the run or restore the file") from None
    if not isinstance(data, dict) or "steps" not in data:
        raise UsageError(f"{path}: not a satcore metrics.json (no `steps`); pass a run folder")
    return data


def _names(run_dirs: Sequence[Path]) -> list[str]:
    """Column names: each folder's name, made unique with its parent's name where two are alike."""
    names = [p.name or str(p) for p in run_dirs]
    for i, p in enumerate(run_dirs):
        if names.count(names[i]) > 1:
            names[i] = f"{p.parent.name}/{p.name}"
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n} ({seen[n]})"
    return names


def _cells(m: dict[str, Any], metrics: Sequence[str]) -> dict[tuple[str, str, str, str], tuple[Any, Any]]:
    """(step, split, metric, kind) → (value, ci95 pair or None) of one run's metrics.json."""
    out: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
    for split, base in (m.get("baseline") or {}).items():
        for k in metrics:
            out[(BASELINE, split, k, "image")] = ((base.get("image") or {}).get(k), None)
    for sid, per in m["steps"].items():
        for split, e in (per or {}).items():
            if not isinstance(e, dict) or "n_items" not in e:
                continue  # only detector blocks (recognition/captions blocks have other metrics)
            img = e.get("image") or {}
            ci = ((e.get("ci95") or {}).get("image") or {})
            for k in metrics:
                iv = ci.get(k)
                out[(sid, split, k, "image")] = (img.get(k), list(iv) if iv else None)
            for obj, b in (img.get("by_objective") or {}).items():
                if obj in metrics:
                    out[(sid, split, obj, "own threshold")] = (b.get(obj), None)
    return out


def _order(keys: set[tuple[str, str, str, str]], step_order: list[str], metrics: Sequence[str]
           ) -> list[tuple[str, str, str, str]]:
    splits = [*SPLIT_ORDER, *sorted({k[1] for k in keys} - set(SPLIT_ORDER))]
    steps = [BASELINE, *step_order]
    return sorted(keys, key=lambda k: (splits.index(k[1]), steps.index(k[0]), k[3] != "image",
                                       list(metrics).index(k[2])))


def compare_runs(run_dirs: Sequence[str | Path], metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, Any]:
    """The comparison table of several runs' ``metrics.json`` (see the module docstring).

    Args:
        run_dirs: finished run folders (one per dataset, as the thesis's columns).
        metrics: image metrics to show: ``accuracy``, ``precision``, ``recall``, ``f1``.

    Returns:
        ``{"runs": [column names], "metrics": [...], "rows": [{"step", "split", "metric", "kind", "values":
        {run: value|None}, "ci95": {run: [lo, hi]|None}, "average", "average_n", "average_ci95"}],
        "class_balance": {run: metrics.json's class_balance}, "gaps": [{"run", "step", "split"}]}``.

    Raises:
        UsageError: fewer than two runs, an unknown metric, or a folder without a readable metrics.json.
    """
    bad = [k for k in metrics if k not in DEFAULT_METRICS]
    if bad:
        raise UsageError(f"--metric {bad[0]!r} is not an image metric; "
                         f"use one of {', '.join(DEFAULT_METRICS)}")
    if len(run_dirs) < 2:
        raise UsageError("satcore compare needs two or more run folders (one per dataset)")
    dirs = [Path(p) for p in run_dirs]
    data = [_read(p) for p in dirs]
    names = _names(dirs)
    cells = [_cells(m, metrics) for m in data]
    step_order: list[str] = []
    for m in data:
        step_order += [s for s in m["steps"] if s not in step_order]
    keys = _order(set().union(*[set(c) for c in cells]), step_order, metrics)
    rows = []
    for key in keys:
        values = {n: c.get(key, (None, None))[0] for n, c in zip(names, cells, strict=True)}
        cis = {n: c.get(key, (None, None))[1] for n, c in zip(names, cells, strict=True)}
        present = [v for v in values.values() if v is not None]
        avg = sum(present) / len(present) if present else None
        avg_ci = None
        if avg is not None and all(cis[n] is not None and values[n] is not None for n in names):
            se = math.sqrt(sum(((hi - lo) / (2 * _Z)) ** 2 for lo, hi in cis.values())) / len(names)
            avg_ci = [avg - _Z * se, avg + _Z * se]
        rows.append({"step": key[0], "split": key[1], "metric": key[2], "kind": key[3], "values": values,
                     "ci95": cis, "average": avg, "average_n": len(present), "average_ci95": avg_ci})
    gaps = []
    pairs = sorted({(k[0], k[1]) for k in keys}, key=lambda p: keys.index(next(k for k in keys
                                                                              if k[:2] == p)))
    for n, c in zip(names, cells, strict=True):
        have = {(k[0], k[1]) for k in c}
        gaps += [{"run": n, "step": s, "split": sp} for s, sp in pairs if (s, sp) not in have]
    return {"runs": names, "run_dirs": [str(p) for p in dirs], "metrics": list(metrics), "rows": rows,
            "class_balance": {n: m.get("class_balance") for n, m in zip(names, data, strict=True)},
            "gaps": gaps}


def _f(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}"


def _label(r: dict[str, Any]) -> str:
    own = " @own thr" if r["kind"] == "own threshold" else ""
    return f"{r['split']:<6} {r['step']}{own} {r['metric']}"


def _balance(cmp: dict[str, Any], run: str) -> str:
    cb = cmp["class_balance"].get(run) or {}
    parts = [f"{s} {v['items_changed']}/{v['items']}" for s, v in (cb.get("splits") or {}).items()]
    return ", ".join(parts) or "—"


def render_text(cmp: dict[str, Any]) -> str:
    """A plain-text table (runs as columns, then the average)."""
    runs = cmp["runs"]
    w = max([len(_label(r)) for r in cmp["rows"]] + [10])
    cw = max([len(n) for n in runs] + [9])
    lines = [f"{'':<{w}}  " + "  ".join(f"{n:>{cw}}" for n in runs) + f"  {'average':>{cw}}"]
    for r in cmp["rows"]:
        avg = _f(r["average"]) + ("" if r["average_n"] == len(runs) else f" ({r['average_n']})")
        lines.append(f"{_label(r):<{w}}  " + "  ".join(f"{_f(r['values'][n]):>{cw}}" for n in runs)
                     + f"  {avg:>{cw}}")
    lines.append("")
    lines.append("class balance (changed/items per split): "
                 + "; ".join(f"{n}: {_balance(cmp, n)}" for n in runs))
    if any(r["kind"] == "own threshold" for r in cmp["rows"]):
        lines.append("'@own thr' rows: each metric at its own optimal threshold (thesis-style); "
                     "such rows mix thresholds.")
    for g in cmp["gaps"]:
        lines.append(f"gap: run {g['run']} has no {g['step']} on {g['split']}")
    return "\n".join(lines) + "\n"


def render_html(cmp: dict[str, Any]) -> str:
    """A standalone HTML page of the table, bootstrap intervals under the values."""
    runs = cmp["runs"]
    e = html.escape

    def cell(v: Any, ci: Any, gap: bool = False) -> str:
        if gap:
            return '<td class="gap" title="not in this run">gap</td>'
        s = _f(v)
        if ci:
            s += f"<br><small>[{ci[0]:.3f}, {ci[1]:.3f}]</small>"
        return f"<td>{s}</td>"

    gaps = {(g["run"], g["step"], g["split"]) for g in cmp["gaps"]}
    body = []
    for r in cmp["rows"]:
        kind = " (own threshold)" if r["kind"] == "own threshold" else ""
        tds = "".join(cell(r["values"][n], r["ci95"][n], (n, r["step"], r["split"]) in gaps) for n in runs)
        n_note = ("" if r["average_n"] == len(runs)
                  else f"<br><small>{r['average_n']} of {len(runs)} runs</small>")
        body.append(f"<tr><td>{e(r['split'])}</td><td>{e(r['step'])}{kind}</td><td>{e(r['metric'])}</td>{tds}"
                    f"{cell(r['average'], r['average_ci95'])[:-5]}{n_note}</td></tr>")
    bal = "".join(f"<td>{e(_balance(cmp, n))}</td>" for n in runs)
    head = "".join(f"<th>{e(n)}</th>" for n in runs)
    return (
        "<!doctype html><meta charset='utf-8'><title>satcore compare</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "td:nth-child(-n+3){text-align:left}.gap{background:#fee}table{border-collapse:collapse}</style>"
        f"<h1>satcore compare</h1><p>Runs: {e(', '.join(cmp['run_dirs']))}</p>"
        f"<table><tr><th>split</th><th>step</th><th>metric</th>{head}<th>average</th></tr>"
        f"<tr><td colspan=3>class balance (changed/items)</td>{bal}<td></td></tr>"
        f"{''.join(body)}</table>"
        "<p><small>Brackets: bootstrap 95% intervals over items; the average's is a normal approximation "
        "over independent runs, shown only where every run has one. Rows marked <i>own threshold</i> give "
        "each metric at the threshold that maximises it on the train split: such a thesis-style row mixes "
        "thresholds. Compare each step with the always-change baseline.</small></p>")
