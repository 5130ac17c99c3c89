"""report.html sections of the caption-based change classifiers: train/validation accuracy (Tables 5–6)."""

from __future__ import annotations

import html
import json
from pathlib import Path

ROWS = (("train_accuracy", "train accuracy (Table 5)"),
        ("validation_accuracy", "validation accuracy (Table 6)"),
        ("n_train", "pairs fitted"), ("n_validation", "pairs held out"))


def accuracy_section(run_dir: Path, step_id: str) -> list[tuple[str, str]]:
    """One section: the step's fit summary from ``manifest.json`` (``fitted.<step>``) as a table.

    The summary is what the step's ``fit`` returned; a step fitted in an earlier run and loaded from
    ``fitted/`` has none in this run's manifest, and the section says so.
    """
    path = Path(run_dir) / "manifest.json"
    fitted = json.loads(path.read_text(encoding="utf-8")).get("fitted") or {} if path.is_file() else {}
    summary = fitted.get(step_id) if isinstance(fitted, dict) else None
    title = "Train / validation accuracy"
    if not isinstance(summary, dict):
        return [(title, "<p>No fit in this run (the fitted state was loaded, or the step was not fitted): "
                        "see the run that fitted it.</p>")]
    cells = []
    for key, label in ROWS:
        v = summary.get(key)
        text = "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
        cells.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(text)}</td></tr>")
    what = summary.get("classifier") or summary.get("model") or ""
    note = "" if summary.get("validation_accuracy") is not None else (
        "<p>No validation accuracy: <code>validation_fraction</code> is 0 or the train split is too small "
        "to hold a pair of each class out.</p>")
    return [(title, f"<p>{html.escape(str(what))}: accuracy of the change label on the train split's pairs "
                    f"(thesis Tables 5–6).</p><table>{''.join(cells)}</table>{note}")]
